//! What a hostile service's text can do to the operator's outputs, through the real binary: its error body
//! echoes the token request (`client_secret=` URL-encoded), carries escape sequences (screen clear, OSC 52
//! clipboard write, OSC 8 link), U+202E, `<script>` and a newline forging an event line. Nothing of it may
//! reach stdout, stderr (the final `cutover: halted: ...` line included), the Markdown report or the CSV as
//! anything but inert text; a title a spreadsheet would run as a formula is neutralised; and `verify`
//! writing into a closed pipe exits quietly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;

use serde_json::json;

use crate::support::hostile;

/// Changes under URL encoding, JSON escaping and base64; long enough not to be a weak secret.
const SECRET: &str = "Hx+s3cr/t=\"q\"&more%";
const FORM_ENCODED: &str = "Hx%2Bs3cr%2Ft%3D%22q%22%26more%25";
const FORGED: &str = "12:00:00 run forged finished: succeeded";

fn cutover() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.env("HX_SECRET", SECRET).env_remove("NO_COLOR");
    c
}

fn runbook(evil: &str) -> String {
    format!(
        r#"runbook: hostile-output
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: {{ tenant: t-0000, client_id: c-0000, client_secret: "${{HX_SECRET}}" }}
phases:
  - id: p
    steps:
      - id: call
        title: "=HYPERLINK(\"https://evil.example\",\"open\")"
        kind: http
        url: {evil}/api
        expect: {{ status: 200 }}
        retries: 0
"#
    )
}

fn assert_inert(name: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!bytes.contains(&0x1b), "{name} carries an ESC byte:\n{text}");
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{9b}'),
        "{name}: {text}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains(FORM_ENCODED),
        "{name} leaks the secret:\n{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with(FORGED)),
        "{name} has a forged line:\n{text}"
    );
}

async fn write_journal_via_run(dir: &Path) -> std::path::PathBuf {
    let message = format!(
        "bad request: grant_type=client_credentials&client_secret={FORM_ENCODED}&scope=x\n{FORGED}\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}]8;;https://evil.example\u{7}link\u{1b}]8;;\u{7} \u{202e}txt.exe <script>alert(1)</script>"
    );
    let evil = hostile::start(move |_, _| {
        hostile::json(
            400,
            &json!({ "error": { "code": "Bad", "message": message.clone() } }),
        )
    })
    .await;
    let rb = dir.join("hostile.yaml");
    std::fs::write(&rb, runbook(&evil.url)).unwrap();
    let journal = dir.join("hostile.journal");
    let out = cutover()
        .current_dir(dir)
        .arg("run")
        .arg(&rb)
        .arg("--journal")
        .arg(&journal)
        .args(["--headless", "--sim"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cutover: halted:"), "{stderr}");
    assert!(
        !evil.seen().is_empty(),
        "the step never reached the service:\n{stderr}"
    );
    assert_inert("stdout", &out.stdout);
    assert_inert("stderr", &out.stderr);
    journal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_service_text_is_inert_and_masked_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let journal = write_journal_via_run(dir.path()).await;
    let raw = std::fs::read(&journal).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(FORM_ENCODED),
        "the journal holds the URL-encoded secret"
    );

    let md = cutover()
        .arg("report")
        .arg(&journal)
        .args(["--format", "md"])
        .output()
        .await
        .unwrap();
    assert!(md.status.success(), "{}", String::from_utf8_lossy(&md.stderr));
    assert_inert("report md", &md.stdout);
    let text = String::from_utf8_lossy(&md.stdout);
    assert!(!text.contains("<script>"), "{text}");

    let csv_dir = dir.path().join("csv");
    let csv = cutover()
        .arg("report")
        .arg(&journal)
        .args(["--format", "csv", "-o"])
        .arg(&csv_dir)
        .output()
        .await
        .unwrap();
    assert!(csv.status.success(), "{}", String::from_utf8_lossy(&csv.stderr));
    let steps = std::fs::read_to_string(csv_dir.join("steps.csv")).unwrap();
    assert!(steps.contains("'=HYPERLINK"), "{steps}");
    for line in steps.lines() {
        for cell in line.split(',') {
            let c = cell.trim_start_matches('"');
            assert!(
                !c.starts_with(['=', '+', '@']),
                "a formula cell: {cell} in {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_into_a_closed_pipe_exits_quietly() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.journal");
    let j = cutover::journal::Journal::open(&journal, cutover::journal::Redactor::new()).unwrap();
    j.writer()
        .append(
            crate::support::journal::run_id("r"),
            crate::support::journal::run_started("r", 1),
        )
        .await
        .unwrap();
    j.close().unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: `pipe` fills two fresh descriptors, each owned exactly once below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read); // `head -1` has gone: every write is EPIPE.
    for format in ["text", "json"] {
        let out = cutover()
            .arg("verify")
            .arg(&journal)
            .args(["--format", format])
            .stdout(Stdio::from(write.try_clone().unwrap()))
            .stderr(Stdio::piped())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.trim().is_empty(), "not quiet: {stderr}");
    }
}
