//! `cutover validate` on the lake's environments and steps: each problem named at its field, with a code;
//! the same runbook passes once fixed.
use cutover::runbook::{Severity, validate};

const BAD: &str = r#"runbook: lake-bad
version: 1.0.0
environments:
  lake: { kind: adls, account: Contoso-Lake, container: "-bad--name", folder: "../up", warehouse_id: w1 }
  dbx: { kind: databricks, token: dapi-literal-token-value, pipelines: { a: p-1, b: p-2 } }
  fno: { kind: fno, url: "https://contoso.operations.dynamics.com" }
phases:
  - id: p
    steps:
      - { id: snap, kind: lake.schema_check, export: lake, baseline: later }
      - { id: later, kind: lake.schema_check, export: fno }
      - { id: caught, kind: lake.caught_up, export: lake, after: yesterday, databricks: dbx }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, pipeline: c, tables: [account] }
      - { id: rows, kind: reconcile, maps: all, engine: lake, export: fno }
      - { id: rows-api, kind: reconcile, maps: all, export: lake }
      - { id: rows-both, kind: reconcile, maps: all, engine: lake, export: lake, databricks: dbx }
"#;

/// No `adls` environment: `engine: lake` has nothing to read.
const NO_EXPORT: &str = r#"runbook: lake-none
version: 1.0.0
environments:
  fno: { kind: fno, url: "https://contoso.operations.dynamics.com" }
phases:
  - id: p
    steps:
      - { id: rows, kind: reconcile, maps: all, engine: lake }
"#;

const GOOD: &str = r#"runbook: lake-good
version: 1.0.0
environments:
  lake: { kind: adls, account: contosolake, container: dataverse-contoso-unq1, folder: exports/prod }
  dbx: { kind: databricks, url: "https://adb-1.azuredatabricks.net", token: "${DBX_TOKEN}", warehouse_id: w1, pipelines: { d365: p-1 } }
phases:
  - id: p
    steps:
      - { id: snap, kind: lake.schema_check, export: lake }
      - { id: caught, kind: lake.caught_up, export: lake, after: "${steps.snap.finished_at}", databricks: dbx }
      - { id: later, kind: lake.schema_check, export: lake, baseline: snap }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, tables: "${steps.later.changed}" }
      - { id: rows, kind: reconcile, maps: all, engine: lake, databricks: dbx }
      - { id: rows-here, kind: reconcile, maps: all, engine: lake }
      - { id: rows-named, kind: reconcile, maps: all, engine: lake, export: lake }
"#;

#[test]
fn lake_environments_and_steps_are_checked_field_by_field() {
    let env = |n: &str| (n == "DBX_TOKEN").then(|| "dapi-0123456789abcdef".to_owned());
    let d = validate(BAD, "bad.yaml", &env, false);
    let errors: Vec<(u32, &str, &str)> = d
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| (x.line, x.code, x.message.as_str()))
        .collect();
    let has = |code: &str, text: &str| errors.iter().any(|(_, c, m)| *c == code && m.contains(text));
    assert!(has("invalid-value", "not a storage account name"), "{errors:#?}");
    assert!(has("invalid-value", "not a container name"), "{errors:#?}");
    assert!(
        has("invalid-value", "not a folder inside the container"),
        "{errors:#?}"
    );
    assert!(
        has("invalid-field", "`warehouse_id` applies only to databricks"),
        "{errors:#?}"
    );
    assert!(
        has("missing-field", "databricks environment `dbx` has no `url`"),
        "{errors:#?}"
    );
    assert!(has("literal-secret", "literal token"), "{errors:#?}");
    assert!(
        has("needs-forward", "`later` comes after this step"),
        "{errors:#?}"
    );
    assert!(
        has("wrong-env-kind", "needs an adls environment; `fno` is fno"),
        "{errors:#?}"
    );
    assert!(
        has("invalid-timestamp", "`yesterday` is not an RFC 3339 time"),
        "{errors:#?}"
    );
    assert!(has("missing-field", "name the pipeline"), "{errors:#?}");
    assert!(has("unknown-pipeline", "no pipeline `c`"), "{errors:#?}");
    assert_eq!(
        errors
            .iter()
            .filter(
                |(_, c, m)| *c == "wrong-env-kind" && m.contains("needs an adls environment; `fno` is fno")
            )
            .count(),
        2,
        "`export: fno` on the reconcile step too: {errors:#?}"
    );
    assert!(
        has("invalid-field", "`export` applies only to `engine: lake`"),
        "{errors:#?}"
    );
    assert!(
        has("invalid-field", "`export` and `databricks` are two ways"),
        "{errors:#?}"
    );
    let none: Vec<_> = validate(NO_EXPORT, "none.yaml", &env, false)
        .into_iter()
        .filter(|x| x.severity == Severity::Error)
        .collect();
    assert!(
        none.iter().any(|x| x.code == "missing-field"
            && x.message
                .contains("reads the Synapse Link export of an `adls` environment")
            && x.message.contains("the runbook has 0 adls environments")
            && x.line == 8),
        "{none:#?}"
    );
    // Every error points at a line of the file.
    assert!(errors.iter().all(|(l, _, _)| *l > 0), "{errors:#?}");
    let good: Vec<_> = validate(GOOD, "good.yaml", &env, false)
        .into_iter()
        .filter(|x| x.severity == Severity::Error)
        .collect();
    assert!(good.is_empty(), "{good:#?}");
}

#[test]
fn an_adls_shared_access_signature_is_a_var_and_not_beside_auth() {
    let bad = r#"runbook: lake-sas
version: 1.0.0
environments:
  literal: { kind: adls, account: lakeone, container: exports, sas: "sv=2021-08-06&sp=rl&sig=c2VjcmV0" }
  both: { kind: adls, account: laketwo, container: exports, sas: "${LAKE_SAS}", auth: { tenant: t, client_id: c, client_secret: "${S}" } }
  dbx: { kind: databricks, url: "https://adb-1.azuredatabricks.net", token: "${DBX_TOKEN}", sas: "${LAKE_SAS}" }
phases:
  - id: p
    steps:
      - { id: snap, kind: lake.schema_check, export: literal }
"#;
    let env = |_: &str| Some("x".repeat(24));
    let errors: Vec<(u32, &str, String)> = validate(bad, "sas.yaml", &env, false)
        .into_iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| (x.line, x.code, x.message))
        .collect();
    let at = |code: &str, text: &str, line: u32| {
        errors
            .iter()
            .any(|(l, c, m)| *c == code && m.contains(text) && *l == line)
    };
    assert!(
        at(
            "literal-secret",
            "`literal` has a literal shared access signature",
            4
        ),
        "{errors:#?}"
    );
    assert!(
        at("invalid-field", "`both` has both `auth` and `sas`", 5),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|(l, c, m)| *c == "invalid-field" && m.contains("`sas`") && m.contains("adls") && *l == 6),
        "{errors:#?}"
    );
    // The signature's text is not repeated in any message.
    assert!(
        errors.iter().all(|(_, _, m)| !m.contains("c2VjcmV0")),
        "{errors:#?}"
    );
    let good = r#"runbook: lake-sas
version: 1.0.0
environments:
  lake: { kind: adls, url: "http://127.0.0.1:10000/devstoreaccount1", account: devstoreaccount1, container: exports, sas: "${LAKE_SAS}" }
phases:
  - id: p
    steps:
      - { id: snap, kind: lake.schema_check, export: lake }
"#;
    let good: Vec<_> = validate(good, "good.yaml", &env, false)
        .into_iter()
        .filter(|x| x.severity == Severity::Error)
        .collect();
    assert!(good.is_empty(), "{good:#?}");
}
