//! Shared setup for the end-to-end engine tests: a runbook in a temp directory (with the demo's
//! package), the engine started through `start_engine` against a simulator on loopback, and the
//! journal read back.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cutover::engine::event::Event;
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;
use cutover::engine::{EngineHandle, Envelope, RunEnd, RunId};
use cutover::journal::JournalReader;

pub const SECRET: &str = "engine-test-secret-value";

/// The shortened demo of the crash test: DMF export and import, two waves (vendors fails at row
/// 2,100 and is resumed; customers drifts after wave-2), live sync and a canary.
pub const SHORT_DEMO: &str = include_str!("short-demo.yaml");

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub runbook: PathBuf,
    pub journal: PathBuf,
}

pub fn fixture(runbook_text: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("packages")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/packages/reference-data.zip"),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let runbook = dir.path().join("runbook.yaml");
    std::fs::write(&runbook, runbook_text).unwrap();
    let journal = dir.path().join("run.journal");
    Fixture {
        dir,
        runbook,
        journal,
    }
}

pub fn options(f: &Fixture, sim: SimTarget, interactive: bool) -> RunOptions {
    RunOptions {
        runbook: Some(f.runbook.clone()),
        journal: f.journal.clone(),
        operator: "tester".into(),
        auto_approve: (!interactive).then(|| AutoApprove {
            operator: "tester".into(),
            reason: "auto-approved (test)".into(),
        }),
        interactive,
        sim,
        accept_changed_runbook: false,
        accept_inserted_steps: Vec::new(),
        take_over: true,
        new_run: false,
        resume_only: false,
        vars: Arc::new(|name: &str| (name == "DEMO_CLIENT_SECRET").then(|| SECRET.to_owned())),
        follow_delay: None,
    }
}

/// Drives a headless run to its end.
pub async fn drive(opts: RunOptions) -> RunEnd {
    let (handle, _state, _sub) = start_engine(opts).await.unwrap();
    handle.done.await.unwrap()
}

pub fn events(journal: &Path) -> (RunId, Vec<Envelope>) {
    let r = JournalReader::open_read_only(journal).unwrap();
    let v = r.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    let run = r.runs().unwrap().last().unwrap().run_id.clone();
    let evs = r.events(&run).map(Result::unwrap).collect();
    (run, evs)
}

pub fn side_effect(state: &serde_json::Value, key: &str) -> u64 {
    state["side_effects"][key].as_u64().unwrap_or(0)
}

/// The journal file's bytes hold no secret value.
pub fn assert_no_secret(journal: &Path, secrets: &[&str]) {
    for ext in ["", "-wal"] {
        let p = PathBuf::from(format!("{}{ext}", journal.display()));
        if let Ok(bytes) = std::fs::read(&p) {
            for s in secrets {
                let found = bytes.windows(s.len()).any(|w| w == s.as_bytes());
                assert!(!found, "{} holds a secret", p.display());
            }
        }
    }
}

pub fn count<F: Fn(&Event) -> bool>(evs: &[Envelope], f: F) -> usize {
    evs.iter().filter(|e| f(&e.event)).count()
}

/// Starts the engine on the run a killed process left in `journal`, taking its lease over, as
/// `cutover resume --take-over` would: `auto_approve` answers every decision as `tester` (as
/// `--headless --auto-approve` does), otherwise decisions wait for commands. `secret` is the value
/// `${DEMO_CLIENT_SECRET}` has.
pub async fn resume(
    journal: &Path,
    sim_url: String,
    secret: &'static str,
    auto_approve: bool,
) -> EngineHandle {
    let opts = RunOptions {
        runbook: None,
        journal: journal.to_path_buf(),
        operator: "tester".into(),
        auto_approve: auto_approve.then(|| AutoApprove {
            operator: "tester".into(),
            reason: "auto-approved (test)".into(),
        }),
        interactive: !auto_approve,
        sim: SimTarget::Url(sim_url),
        accept_changed_runbook: false,
        accept_inserted_steps: Vec::new(),
        take_over: true,
        new_run: false,
        resume_only: true,
        vars: Arc::new(move |name: &str| (name == "DEMO_CLIENT_SECRET").then(|| secret.to_owned())),
        follow_delay: None,
    };
    let (handle, _state, _sub) = start_engine(opts).await.unwrap();
    handle
}

/// Resumes the run a killed process left in `journal` ([`resume`], no auto-approval) and aborts it
/// at once, as an operator would after a crash; returns how the run ended.
pub async fn resume_and_abort(journal: &Path, sim_url: String, secret: &'static str, reason: &str) -> RunEnd {
    use cutover::engine::driver::Command as EngineCommand;
    use cutover::engine::event::OperatorAction;
    let handle = resume(journal, sim_url, secret, false).await;
    handle
        .commands
        .send(EngineCommand::new(OperatorAction::Abort, None, "tester").with_reason(reason))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), handle.done)
        .await
        .unwrap()
        .unwrap()
}
