//! Checkpoints sent to a `notify` witness (issue 15): every checkpoint the run makes reaches the webhook
//! target named by `journal.checkpoints.witness: [{notify: ...}]` as it is made, the body being the witness
//! line itself (so the received bodies are an `--anchors` file that `verify` accepts); a webhook that
//! fails is one journaled warning (not one per checkpoint) and the run still finishes. The real engine against the
//! simulator's webhook stand-in, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, LogLevel, RunOutcome};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use serde_json::Value;

use crate::support::engine::{events, fixture};
use crate::support::exec::{SECRET, environments};

fn runbook(key_var: &str) -> String {
    let steps: String = (1..=6)
        .map(|i| format!("      - {{ id: w{i}, kind: wait, for: 0s }}\n"))
        .collect();
    format!(
        r#"runbook: notify-witness
version: 1.0.0
journal:
  checkpoints:
    key: ${{{key_var}}}
    every: 3
    witness:
      - notify: auditors
{}
notify_targets:
  auditors: {{ kind: webhook, url: "${{HOOK_URL}}", on: [alert] }}
phases:
  - id: one
    steps:
{steps}"#,
        environments(true)
    )
}

async fn get(url: &str) -> Value {
    cutover::connectors::net::client()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(url: &str, body: Value) {
    let r = cutover::connectors::net::client()
        .unwrap()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Runs the runbook against a fresh simulator whose webhook answers `status`; the end, the events, the
/// bodies the webhook took and the dir (kept alive).
async fn run(
    status: Option<u16>,
) -> (
    RunEnd,
    Vec<cutover::engine::Envelope>,
    Vec<Value>,
    crate::support::engine::Fixture,
) {
    let s = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = s.url();
    if let Some(st) = status {
        post(
            &format!("{url}/_sim/webhook/behaviour"),
            serde_json::json!({"status": st}),
        )
        .await;
    }
    let f = fixture(&runbook("CP_KEY"));
    let key = f.dir.path().join("keys");
    std::fs::create_dir_all(&key).unwrap();
    let key = key.join("cp.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let key = key.display().to_string();
    let hook = url.clone();
    let opts = RunOptions {
        runbook: Some(f.runbook.clone()),
        journal: f.journal.clone(),
        operator: "tester".into(),
        auto_approve: Some(cutover::engine::scheduler::operator::AutoApprove {
            operator: "tester".into(),
            reason: "test".into(),
        }),
        interactive: false,
        sim: SimTarget::Url(url.clone()),
        accept_changed_runbook: false,
        accept_inserted_steps: Vec::new(),
        take_over: true,
        new_run: false,
        resume_only: false,
        vars: Arc::new(move |n: &str| match n {
            "TEST_SECRET" => Some(SECRET.to_owned()),
            "HOOK_URL" => Some(format!("{hook}/_sim/webhook?code=witness-key-0815")),
            "CP_KEY" => Some(key.clone()),
            _ => None,
        }),
        follow_delay: None,
    };
    let (handle, _, _) = start_engine(opts).await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(120), handle.done)
        .await
        .expect("the run ends")
        .unwrap();
    let (_, evs) = events(&f.journal);
    let cards = get(&format!("{url}/_sim/webhook")).await["cards"]
        .as_array()
        .unwrap()
        .clone();
    (end, evs, cards, f)
}

fn checkpoints(evs: &[cutover::engine::Envelope]) -> Vec<(i64, String)> {
    evs.iter()
        .filter_map(|e| match &e.event {
            Event::Checkpoint {
                event_id, chain_hash, ..
            } => Some((*event_id, chain_hash.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checkpoint_reaches_the_notify_witness_and_its_bodies_verify_as_anchors() {
    let (end, evs, cards, f) = run(None).await;
    assert_eq!(
        end,
        RunEnd::Finished(RunOutcome::Succeeded),
        "{:?}",
        evs.iter().map(|e| e.event.kind()).collect::<Vec<_>>()
    );
    let made = checkpoints(&evs);
    assert!(made.len() >= 3, "every 3 events and at the end: {made:?}");
    // The bodies are the witness lines, in the order the checkpoints were made.
    let sent: Vec<(i64, String)> = cards
        .iter()
        .map(|c| {
            (
                c["event_id"].as_i64().unwrap(),
                c["chain_hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(sent, made, "{cards:?}");
    assert!(
        cards
            .iter()
            .all(|c| c["signature"].as_str().is_some_and(|s| s.len() == 128))
    );
    assert_eq!(cards[0]["journal"], "run.journal");
    // Nothing after the run's signed end: deliveries that worked are not journaled.
    assert!(matches!(evs.last().unwrap().event, Event::Checkpoint { .. }));
    // The received bodies, one a line, are an anchors file `verify` accepts.
    let anchors = f.dir.path().join("received.jsonl");
    let text: String = cards.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(&anchors, text).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args([
            "verify",
            f.journal.to_str().unwrap(),
            "--anchors",
            anchors.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{n} of {n} matched", n = made.len())),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_notify_witness_is_a_journaled_warning_and_the_run_finishes() {
    let (end, evs, cards, _f) = run(Some(503)).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{end:?}");
    assert!(cards.is_empty(), "{cards:?}");
    let made = checkpoints(&evs);
    let warned: Vec<&str> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::Log {
                level: LogLevel::Warn,
                message,
            } if message.starts_with("checkpoint witness `auditors` did not take") => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert!(made.len() >= 3, "{made:?}");
    // One warning when it starts failing, not one per checkpoint (each would call for more checkpoints).
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("HTTP 503"), "{warned:?}");
    assert!(
        !warned.iter().any(|w| w.contains("witness-key-0815")),
        "the webhook's key is never journaled"
    );
}

/// `validate`: a witness is a `file:` or a `notify:` naming a target the runbook has, exactly one.
#[test]
fn validate_takes_a_notify_witness_only_when_its_target_exists() {
    let check = |text: &str| -> Vec<(&'static str, String)> {
        cutover::runbook::validate(
            text,
            "w.yaml",
            &|n: &str| (n == "TEST_SECRET").then(|| SECRET.to_owned()),
            false,
        )
        .into_iter()
        .filter(|d| d.message.contains("witness"))
        .map(|d| (d.code, d.message.clone()))
        .collect()
    };
    let good = runbook("CP_KEY");
    assert!(check(&good).is_empty(), "{:?}", check(&good));
    let unknown = good.replace("- notify: auditors", "- notify: nobody");
    let d = check(&unknown);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, "unknown-notify-target");
    let both = good.replace("- notify: auditors", "- { notify: auditors, file: /tmp/w.jsonl }");
    let d = check(&both);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].1.contains("exactly one"), "{d:?}");
}
