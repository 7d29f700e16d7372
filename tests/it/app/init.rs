#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cutover init` as a new lead runs it: the runbook it writes validates and plans, brings the maps a chosen
//! map depends on in waves that respect them, never overwrites a file, and refuses what it cannot write.

use std::path::Path;
use std::process::Command;

fn cutover(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_first_runbook_validates_plans_and_syncs_dependencies_first() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cutover(
        dir.path(),
        &[
            "init",
            "--no-input",
            "-o",
            "weekend.yaml",
            "--name",
            "fabrikam-weekend",
            "--companies",
            "USMF,DEMF",
            "--maps",
            "sales_order_lines",
            "--freeze-start",
            "2027-03-05T18:00:00Z",
            "--freeze-end",
            "2027-03-08T08:00:00Z",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("wrote weekend.yaml"), "{err}");
    let text = std::fs::read_to_string(dir.path().join("weekend.yaml")).unwrap();
    assert!(text.contains("runbook: fabrikam-weekend"));
    assert!(text.contains("companies: [USMF, DEMF]"));
    assert!(text.contains("# added because a chosen map depends on them:"));

    let (code, _, err) = cutover(dir.path(), &["validate", "--format", "json", "weekend.yaml"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cutover(dir.path(), &["plan", "--format", "json", "weekend.yaml"]);
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Every map's initial sync comes after the waves of the maps it depends on.
    let rb = cutover::runbook::load(&text, "weekend.yaml").runbook.unwrap();
    let wave_of = |map: &str| -> usize {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"].as_str().unwrap().ends_with(&format!(":{map}")))
            .and_then(|s| s["wave"].as_str())
            .and_then(|w| w.trim_start_matches("wave-").parse().ok())
            .unwrap_or_else(|| panic!("no wave step for {map}"))
    };
    for (id, m) in &rb.maps {
        for d in &m.depends_on {
            assert!(
                wave_of(d.as_str()) < wave_of(id.as_str()),
                "{id} syncs in a wave before its dependency {d}"
            );
        }
    }
    assert!(
        rb.maps.len() >= 10,
        "sales order lines need headers, customers, products, warehouses..."
    );
}

#[test]
fn it_never_overwrites_and_refuses_an_unknown_map_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runbook.yaml"), "mine").unwrap();
    let (code, _, err) = cutover(dir.path(), &["init", "--no-input"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("runbook.yaml")).unwrap(),
        "mine"
    );

    let (code, _, err) = cutover(
        dir.path(),
        &["init", "--no-input", "-o", "x.yaml", "--maps", "customerz"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("unknown map `customerz`") && err.contains("--list-maps"),
        "{err}"
    );
    assert!(!dir.path().join("x.yaml").exists());

    let (code, out, _) = cutover(dir.path(), &["init", "--list-maps"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("customers") && out.contains("fno:CustomersV3 → dataverse:accounts"),
        "{out}"
    );
}

#[test]
fn gateway_mode_signs_a_person_in_and_says_it_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cutover(
        dir.path(),
        &["init", "--no-input", "-o", "g.yaml", "--mode", "gateway"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cutover(dir.path(), &["validate", "--format", "json", "g.yaml"]);
    assert_eq!(code, 0, "{err}");
    let diags: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = diags
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"gateway-unsupported"), "{codes:?}");
    assert!(
        !codes.contains(&"gateway-needs-user"),
        "a device-code environment is a user's sign-in: {codes:?}"
    );
}
