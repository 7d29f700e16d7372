//! `lake.full_refresh` across a SIGKILL: the real binary runs a runbook against the in-process simulator, is
//! killed as soon as the refresh's intent (or its update id) is in the journal, and `resume` finishes the
//! run. The pipeline then has exactly one update: the resumed process polled the one the killed process
//! started (or started it, when the kill came before the request), never a second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::engine::event::Event;
use cutover::journal::JournalReader;

const SCENARIO: &str = r#"
name: lake-kill
seed: 9
time_scale: 600
companies: [USMF]
entities:
  fno: {}
  dataverse:
    accounts: { key: accountnumber, rows: 10, fields: { name: name } }
lake:
  account: contosolake
  container: dataverse-contoso-unq1
  interval: 1m
  databricks:
    pipelines: [p-1]
    update_duration: 1h
"#;

const RUNBOOK: &str = r#"runbook: lake-kill
version: 1.0.0
environments:
  dbx:
    kind: databricks
    url: "https://adb-1234567890123456.7.azuredatabricks.net"
    pipelines: { d365: p-1 }
    auth: { tenant: t-0000, client_id: c-0000, client_secret: "${LAKE_SECRET}" }
phases:
  - id: p
    steps:
      - { id: settle, kind: wait, for: 2m }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, tables: [account], timeout: 10h }
"#;

/// The kind of the refresh step's latest lake handle in the journal, if any.
fn lake_handle(journal: &Path) -> Option<String> {
    let r = JournalReader::open_read_only(journal).ok()?;
    let run = r.runs().ok()?.last()?.clone();
    r.events(&run.run_id)
        .filter_map(Result::ok)
        .filter_map(|e| match e.event {
            Event::StepIntent {
                step,
                handle: Some(h),
                ..
            } if step.as_str() == "refresh" && h.kind.starts_with("lake.update") => Some(h.kind),
            _ => None,
        })
        .last()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_killed_in_flight_is_resumed_without_a_second_update() {
    let sim = cutover::sim::start(
        cutover::sim::Scenario::from_yaml(SCENARIO).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("lake.yaml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    let journal = dir.path().join("lake.journal");
    let url = sim.url();
    let launch = |resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
        if resume {
            cmd.arg("resume").arg(&journal);
        } else {
            cmd.arg("run").arg(&runbook).arg("--journal").arg(&journal);
        }
        cmd.args([
            "--headless",
            "--auto-approve",
            "--take-over",
            "--operator",
            "kill-test",
        ])
        .args(["--sim-url", &url])
        .env("LAKE_SECRET", "lake-kill-secret-value-0123")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let mut child = launch(false);
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        if let Some(kind) = lake_handle(&journal) {
            child.kill().unwrap();
            child.wait().unwrap();
            break kind;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the refresh started"
        );
        assert!(
            Instant::now() < deadline,
            "the refresh never journaled its intent"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let out = tokio::task::spawn_blocking({
        let mut c = launch(true);
        move || {
            let stderr = {
                use std::io::Read;
                let mut s = String::new();
                c.stderr.take().unwrap().read_to_string(&mut s).unwrap();
                s
            };
            (c.wait().unwrap(), stderr)
        }
    })
    .await
    .unwrap();
    assert!(
        out.0.success(),
        "resume failed (killed at {killed_at}): {}",
        out.1
    );
    let c = cutover::connectors::net::client().unwrap();
    let lake: serde_json::Value = c
        .get(format!("{url}/_sim/lake"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let updates = lake["pipelines"]["p-1"]["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "killed at {killed_at}: {updates:?}");
    assert_eq!(updates[0]["state"], "COMPLETED");
    assert_eq!(
        updates[0]["full_refresh_selection"],
        serde_json::json!(["account"])
    );
}
