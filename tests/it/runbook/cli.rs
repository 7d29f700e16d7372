#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cutover validate` and `cutover plan` as a user runs them: exit codes, the `FILE:LINE:COL: error:`
//! lines on stderr, the JSON forms on stdout.

use std::process::Command;

fn cutover() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    for v in [
        "DEMO_CLIENT_SECRET",
        "FNO_URL",
        "DATAVERSE_URL",
        "TENANT_ID",
        "FNO_CLIENT_ID",
    ] {
        c.env_remove(v);
    }
    c
}

#[test]
fn sample_runbooks_validate_and_strict_needs_the_variables() {
    let out = cutover()
        .args(["validate", "runbooks/demo.yaml", "runbooks/contoso-weekend.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "runbooks/demo.yaml:25:22: warning: environment variable `DEMO_CLIENT_SECRET` is not set"
        ),
        "{err}"
    );
    assert!(
        err.lines().last().unwrap().starts_with("2 runbooks valid"),
        "{err}"
    );

    let strict = cutover()
        .args(["validate", "--strict", "runbooks/demo.yaml"])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("runbooks/demo.yaml:25:22: error: "));

    let set = cutover()
        .args(["validate", "--strict", "runbooks/demo.yaml"])
        .env("DEMO_CLIENT_SECRET", "x")
        .output()
        .unwrap();
    assert_eq!(
        set.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
}

#[test]
fn an_invalid_runbook_exits_2_with_located_errors_and_json() {
    let file = "tests/malformed/dependency-same-wave.yaml";
    let out = cutover().args(["validate", file]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}:36:27: error: map `customers` depends on `companies`"
        )),
        "{err}"
    );
    assert!(err.contains("    hint: "), "{err}");
    assert!(
        err.contains("  36 |         maps: [companies, customers]"),
        "{err}"
    );

    let json = cutover()
        .args(["validate", "--format", "json", file])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "dependency-order")
        .unwrap();
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(36), Some(27)));
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], file);
}

#[test]
fn plan_prints_json_in_execution_order() {
    let out = cutover()
        .args(["plan", "--format", "json", "runbooks/demo.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runbook"], "contoso-demo");
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    let at = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    assert!(at("wave-1:gate") < at("wave-2:currencies"));
    assert!(at("wave-7:gate") < at("enable-live-sync"));

    let text = cutover().args(["plan", "runbooks/demo.yaml"]).output().unwrap();
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("wave-3:gate") && t.contains("── gate ──") && t.contains("point of no return"),
        "{t}"
    );
    // The demo drives the dual-write gateway: the text plan says it is unsupported (on stderr).
    let note = String::from_utf8_lossy(&text.stderr);
    assert!(
        note.contains("dual-write gateway mode: unsupported by Microsoft")
            && note.contains("environment dualwrite"),
        "{note}"
    );
    let plain = cutover()
        .args(["plan", "runbooks/contoso-weekend.yaml"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&plain.stderr).contains("unsupported"),
        "operator mode: no note"
    );

    let bad = cutover()
        .args(["plan", "tests/malformed/map-dependency-cycle.yaml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_missing_dmf_package_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let demo =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/demo.yaml"))
            .unwrap();
    let path = dir.path().join("demo.yaml");
    std::fs::write(&path, &demo).unwrap();
    let line = demo.lines().position(|l| l.contains("package_file:")).unwrap() + 1;
    let out = cutover().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            ":{line}:23: error: package `packages/reference-data.zip` does not exist"
        )),
        "{err}"
    );

    std::fs::create_dir(dir.path().join("packages")).unwrap();
    std::fs::write(dir.path().join("packages/reference-data.zip"), b"PK").unwrap();
    let bad = cutover().arg("validate").arg(&path).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("cannot be read: it is not a zip archive") && err.contains("but package_sha256 pins"),
        "{err}"
    );
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/packages/reference-data.zip"),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let ok = cutover().arg("validate").arg(&path).output().unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn an_unquoted_variable_in_a_flow_mapping_gets_a_plain_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flow.yaml");
    std::fs::write(
        &path,
        "runbook: x\nversion: 1.0.0\nenvironments:\n  fno: { kind: fno, url: ${FNO_URL} }\nphases: []\n",
    )
    .unwrap();
    let out = cutover().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4:27: error: ") && err.contains("must be quoted"),
        "{err}"
    );
}

#[test]
fn the_top_level_help_lists_schema() {
    let out = cutover().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.lines().any(|l| l.trim_start().starts_with("schema ")),
        "{help}"
    );
}

#[test]
fn every_file_a_command_help_names_exists() {
    let top = cutover().arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout).to_string();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.iter().any(|c| c == "sim"), "{top}");
    for c in commands {
        let out = cutover().args([c.as_str(), "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        for word in help.split_whitespace() {
            let word = word.trim_matches(|ch: char| matches!(ch, '(' | ')' | ',' | '`' | '.' | ':'));
            let named = ["runbooks/", "assets/", "docs/"]
                .iter()
                .any(|p| word.starts_with(p));
            if named && !word.contains('*') {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(word);
                assert!(
                    path.exists(),
                    "`cutover {c} --help` names {word}, which does not exist"
                );
            }
        }
    }
}
