#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The shipped schema must be what the model generates. To regenerate after changing the model:
//! `UPDATE_SCHEMA=1 cargo test --test runbook_schema`.

#[test]
fn shipped_schema_matches_the_model() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/runbook.schema.json");
    let generated = cutover::runbook::schema::generate();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "assets/runbook.schema.json is out of date with the model; regenerate it with\n  UPDATE_SCHEMA=1 cargo test --test runbook_schema"
    );
}

#[test]
fn schema_knows_every_step_kind_and_rejects_unknown_fields() {
    let schema: serde_json::Value = serde_json::from_str(&cutover::runbook::schema::generate()).unwrap();
    let text = schema.to_string();
    for kind in cutover::runbook::steps::STEP_KINDS {
        assert!(
            text.contains(&format!("\"{kind}\"")),
            "schema lacks step kind {kind}"
        );
    }
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false));
    assert_eq!(
        schema["required"],
        serde_json::json!(["runbook", "version", "environments", "phases"])
    );
}
