//! Plug-ins and flows turned off for the sync come back exactly as they were, whatever happens between: the
//! real binary disables them (their states journaled first), is killed with SIGKILL before it enables them,
//! the run is resumed and then aborted, and the simulator shows every plug-in step and flow in its state from
//! before the run: what was on is on, and the flow that was already off is still off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, RunOutcome, StepOutcome};
use cutover::journal::JournalReader;

use crate::support::sim as sim_support;

const SECRET: &str = "automation-test-secret-value";

const RUNBOOK: &str = r#"runbook: automation-crash
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: 00000000-0000-0000-0000-00000000demo, client_id: 00000000-0000-0000-0000-0000000fno01, client_secret: "${DEMO_CLIENT_SECRET}" }
  dataverse:
    kind: dataverse
    url: https://contoso-demo.crm.dynamics.com
    auth: { tenant: 00000000-0000-0000-0000-00000000demo, client_id: 00000000-0000-0000-0000-00000000dv01, client_secret: "${DEMO_CLIENT_SECRET}" }
maps:
  sales_order_headers:
    source: fno:SalesOrderHeadersV2
    target: dataverse:salesorders
    master: fno
    owner: fno
    field_owners: { SalesOrderStatus: { owner: dataverse, why: "order desk confirms in Sales" } }
phases:
  - id: prepare
    steps:
      - id: automation-off
        kind: dataverse.disable_automation
        env: dataverse
        plugin_steps: ["Contoso.Plugins.SalesOrderCheck: Create of salesorder", "Contoso.Plugins.SalesOrderCheck: Update of salesorder"]
        flows: [Notify sales of a new order, Old order export]
      - { id: hold, kind: wait, for: 30d }
      - { id: automation-on, kind: dataverse.enable_automation, env: dataverse }
"#;

fn scenario() -> cutover::sim::Scenario {
    let path = format!(
        "{}/runbooks/scenarios/guardrails.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    cutover::sim::Scenario::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn finished(journal: &Path, step: &str) -> bool {
    let Ok(r) = JournalReader::open_read_only(journal) else {
        return false;
    };
    let Some(run) = r.runs().ok().and_then(|v| v.last().cloned()) else {
        return false;
    };
    r.events(&run.run_id).filter_map(Result::ok).any(|e| {
        matches!(&e.event, Event::StepFinished { step: s, outcome: StepOutcome::Succeeded, .. } if s.as_str() == step)
    })
}

fn statecode(state: &serde_json::Value, set: &str, name: &str) -> i64 {
    state["automation"][set][name]["statecode"].as_i64().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_disable_and_enable_then_resume_then_abort_puts_every_plugin_and_flow_back() {
    let sim = sim_support::start_sim(scenario()).await;
    let before = sim.state()["automation"].clone();
    let (create, update) = (
        "Contoso.Plugins.SalesOrderCheck: Create of salesorder",
        "Contoso.Plugins.SalesOrderCheck: Update of salesorder",
    );
    assert_eq!(
        statecode(&sim.state(), "sdkmessageprocessingsteps", create),
        0,
        "{before}"
    );
    assert_eq!(
        statecode(&sim.state(), "workflows", "Old order export"),
        0,
        "{before}"
    );

    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("runbook.yaml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    let journal = dir.path().join("run.journal");
    let url = sim.url();
    let (rb, jr) = (runbook.clone(), journal.clone());
    let mut child = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .arg("run")
            .arg(&rb)
            .arg("--journal")
            .arg(&jr)
            .args([
                "--headless",
                "--auto-approve",
                "--operator",
                "tester",
                "--sim-url",
                &url,
            ])
            .env("DEMO_CLIENT_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !finished(&journal, "automation-off") {
        assert!(Instant::now() < deadline, "automation-off never finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let off = sim.state();
    assert_eq!(statecode(&off, "sdkmessageprocessingsteps", create), 1, "{off}");
    assert_eq!(statecode(&off, "sdkmessageprocessingsteps", update), 1, "{off}");
    assert_eq!(
        statecode(&off, "workflows", "Notify sales of a new order"),
        0,
        "{off}"
    );
    assert_eq!(statecode(&off, "workflows", "Old order export"), 0, "{off}");

    // Resume, then abort: the abort puts back what the killed process turned off.
    let end =
        crate::support::engine::resume_and_abort(&journal, sim.url(), SECRET, "test: abort after the crash")
            .await;
    assert!(
        matches!(end, RunEnd::Finished(RunOutcome::Aborted { .. })),
        "{end:?}"
    );

    let after = sim.state()["automation"].clone();
    assert_eq!(
        after, before,
        "every plug-in step and flow is back in its state from before the run"
    );

    let r = JournalReader::open_read_only(&journal).unwrap();
    assert!(r.verify().unwrap().is_ok());
    let run = r.runs().unwrap().last().unwrap().run_id.clone();
    let evs: Vec<Event> = r.events(&run).map(|e| e.unwrap().event).collect();
    let offs = evs
        .iter()
        .filter(|e| matches!(e, Event::AutomationOff { .. }))
        .count();
    let back: Vec<&Event> = evs
        .iter()
        .filter(|e| matches!(e, Event::AutomationRestored { step: None, .. }))
        .collect();
    assert_eq!(offs, 4, "one prior state journaled per plug-in step and flow");
    assert_eq!(back.len(), 4, "the abort put each back: {back:?}");
    let old_export = evs.iter().find_map(|e| match e {
        Event::AutomationOff {
            name,
            prior_statecode,
            ..
        } if name == "Old order export" => Some(*prior_statecode),
        _ => None,
    });
    assert_eq!(old_export, Some(0), "the flow that was off was journaled off");

    // The report lists what was off, what it was before, and for how long.
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("report")
        .arg(&journal)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["automation"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for row in rows {
        assert_eq!(row["restored_by"], "abort", "{row}");
        assert!(row["off_for"].as_str().is_some_and(|s| !s.is_empty()), "{row}");
        let before = if row["name"] == "Old order export" {
            "off"
        } else {
            "on"
        };
        assert_eq!(row["before"], before, "{row}");
    }
    // And the ownership the runbook wrote down.
    assert_eq!(
        r["ownership"],
        serde_json::json!([
            {"map": "sales_order_headers", "field": null, "owner": "fno", "why": null, "master": "fno"},
            {"map": "sales_order_headers", "field": "SalesOrderStatus", "owner": "dataverse", "why": "order desk confirms in Sales", "master": "fno"}
        ])
    );
    let md = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("report")
        .arg(&journal)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("Plug-ins and flows turned off") && md.contains("Notify sales of a new order"),
        "{md}"
    );
}
