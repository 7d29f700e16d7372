//! No value reaches a shell as code: a capture a hostile service chose (`ok; touch PWNED; echo $(id -un)`)
//! reaches a `shell` step only as an environment variable, the old interpolated form is refused, and the
//! command inherits only a minimal environment plus what the step names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::support::exec::{assert_ok, environments, failure, start};
use crate::support::hostile;

fn runbook(evil: &str, out: &std::path::Path, passed: &str) -> String {
    let o = out.display();
    format!(
        r#"runbook: shell-safety
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - id: grab
        kind: http
        url: {evil}/value
        capture: {{ v: /v }}
      - id: use-env
        kind: shell
        run: printf '%s' "$CUTOVER_STEP_GRAB_V" > {o}/captured.txt; printf '%s' "$CUTOVER_RUN_ID" > {o}/run.txt
      - id: old-form
        kind: shell
        run: echo ${{steps.grab.v}}
      - id: env-dump
        kind: shell
        run: env > {o}/env.txt
        pass_env: [{passed}]
"#,
        environments(false)
    )
}

/// Two variables of this test process outside the minimal set (cargo sets several `CARGO_*` for tests).
fn outside_minimal() -> Vec<String> {
    let minimal = cutover::runbook::vars::MINIMAL_ENV;
    let mut names: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !minimal.contains(&k.as_str()) && !k.starts_with("CUTOVER_") && !k.contains('='))
        .collect();
    names.sort();
    names.truncate(2);
    names
}

#[tokio::test]
async fn a_hostile_capture_reaches_the_shell_only_as_an_environment_variable() {
    let out = tempfile::tempdir().unwrap();
    let pwned = out.path().join("PWNED");
    let value = format!("ok; touch {}; echo $(id -un)", pwned.display());
    let v2 = value.clone();
    let evil = hostile::start(move |_, _| hostile::json(200, &json!({ "v": v2 }))).await;
    let names = outside_minimal();
    let passed = names.first().cloned().unwrap_or_else(|| "PATH".into());
    let h = start(None, &runbook(&evil.url, out.path(), &passed)).await;

    assert_ok(&h.run("grab").await);
    assert_ok(&h.run("use-env").await);
    let captured = std::fs::read_to_string(out.path().join("captured.txt")).unwrap();
    assert_eq!(captured, value, "the value arrives as data, byte for byte");
    let run = std::fs::read_to_string(out.path().join("run.txt")).unwrap();
    assert_eq!(run, "run-0001");

    let msg = failure(&h.run("old-form").await);
    assert!(msg.contains("CUTOVER_STEP_GRAB_V"), "{msg}");
    assert!(!pwned.exists(), "the service's text ran as a command");

    // The minimal environment: PATH kept, the test's own variables gone unless passed by name.
    assert_ok(&h.run("env-dump").await);
    let env = std::fs::read_to_string(out.path().join("env.txt")).unwrap();
    let has = |n: &str| env.lines().any(|l| l.starts_with(&format!("{n}=")));
    assert!(has("PATH"), "{env}");
    assert!(has("CUTOVER_STEP_GRAB_V"), "{env}");
    if names.len() == 2 {
        assert!(has(&names[0]), "`pass_env` passes {}: {env}", names[0]);
        assert!(!has(&names[1]), "{} was inherited: {env}", names[1]);
    }
    assert!(
        !env.contains(crate::support::exec::SECRET),
        "a secret reached the command"
    );
}
