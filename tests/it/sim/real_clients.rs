//! Real client libraries work against the simulator unmodified (issue 13, must-show).
//!
//! Runs `tests/clients/run.sh` with this build's `cutover`: `@azure/msal-node` and
//! `dynamics-web-api` (npm), node's `fetch` for F&O, and Python `msal`/`azure-identity` (PyPI), each
//! on its own default endpoints, through a TLS front on the real host names inside a private
//! network namespace (loopback only). Every check must be `ok`. The diagnostic crutch
//! (`CLIENTS_CRUTCH`) is never used here.
//!
//! Needs node >= 20 with npm, openssl, unshare/mount (util-linux), ip (iproute2) and python3 with
//! venv: `.ci/run` installs what a fresh machine lacks. A missing tool fails this test (run.sh
//! exits 2), it is never skipped.

use std::process::Command;

/// Each group of checks, and the least number of checks the run must report: a script that stops
/// early fails the run instead of passing with fewer checks.
const GROUPS: &[&str] = &["msal.", "entra.", "dv.", "fno.", "py."];
const MIN_CHECKS: usize = 78;

#[test]
fn real_clients_work_against_the_simulator_unmodified() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/tests/clients/run.sh"))
        .current_dir(root)
        .env("CUTOVER_BIN", env!("CARGO_BIN_EXE_cutover"))
        .env("CLIENTS_PYTHON", "1")
        .env_remove("CLIENTS_CRUTCH")
        .env_remove("CLIENTS_SCENARIO")
        .env_remove("CLIENTS_KEEP")
        .output()
        .expect("bash runs tests/clients/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let report = format!(
        "run.sh exited {:?}\n--- stdout\n{stdout}\n--- stderr (last lines)\n{}",
        out.status.code(),
        stderr
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !stdout.contains("CLIENTS_CRUTCH"),
        "the diagnostic crutch ran:\n{report}"
    );
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL "))
        .collect();
    let failed: Vec<&&str> = checks.iter().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(failed.is_empty(), "{} check(s) failed:\n{report}", failed.len());
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        checks.len() >= MIN_CHECKS,
        "only {} checks ran (at least {MIN_CHECKS} expected):\n{report}",
        checks.len()
    );
    for g in GROUPS {
        assert!(
            checks.iter().any(|l| l.starts_with(&format!("ok {g}"))),
            "no {g}* check ran:\n{report}"
        );
    }
    let summary = format!("# {} checks, 0 failed", checks.len());
    assert!(
        stdout.lines().any(|l| l == summary),
        "no summary line `{summary}`:\n{report}"
    );
}
