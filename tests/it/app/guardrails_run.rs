//! The guardrails estate run end to end by the real binary (headless, auto-approved) against the simulator:
//! `runbooks/guardrails.yaml`, which fixes each dual-write problem, runs clean (every map synced, row parity
//! at every gate, automation back as it was); `runbooks/guardrails-broken.yaml` fails where the estate says it
//! must, one problem after the other: on sales orders while the plug-in that throws on dual-write pushes is on;
//! with the plug-in off, at the wave's row-level gate (its value map sends Invoiced to Delivered's option and
//! misses Canceled); with the value map fixed too, on sales order lines, whose delivery-mode lookup points at a
//! table no map has loaded.
//!
//! Both runbooks drive dual-write in operator mode (a person clicks in the UI); here their `dualwrite`
//! environment is switched to gateway mode so the console drives the simulator's gateway itself, with nobody
//! clicking. Nothing else in them is changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use cutover::engine::event::{Event, RunOutcome, StepOutcome};
use cutover::journal::JournalReader;
use serde_json::json;

use crate::support::sim as sim_support;

const SECRET: &str = "guardrails-run-secret-value";

fn scenario() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/scenarios/guardrails.yaml"
    ))
    .unwrap()
}

/// The shipped runbook with its dual-write environment in gateway mode.
fn gateway_mode(name: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/runbooks/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let operator = "  dualwrite:\n    kind: dualwrite\n    link: [fno, dataverse]\n    mode: operator\n";
    assert!(
        text.contains(operator),
        "{name} no longer has the operator-mode block"
    );
    text.replace(
        operator,
        "  dualwrite:\n    kind: dualwrite\n    link: [fno, dataverse]\n    mode: gateway\n    url: https://contoso.dualwrite.example\n    auth: { tenant: \"${TENANT_ID}\", client_id: \"${FNO_CLIENT_ID}\", client_secret: \"${FNO_CLIENT_SECRET}\" }\n",
    )
}

/// Runs `name` against the simulator at `sim`, journaling into a journal of its own (`tag`).
async fn run(dir: &Path, name: &str, tag: &str, sim: &str) -> (Output, Vec<Event>) {
    run_text(dir, &gateway_mode(name), tag, sim).await
}

async fn run_text(dir: &Path, text: &str, tag: &str, sim: &str) -> (Output, Vec<Event>) {
    let runbook = dir.join(format!("{tag}.yaml"));
    std::fs::write(&runbook, text).unwrap();
    let journal = dir.join(format!("{tag}.journal"));
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.arg("run")
        .arg(&runbook)
        .arg("--journal")
        .arg(&journal)
        .args([
            "--headless",
            "--auto-approve",
            "--operator",
            "tester",
            "--sim-url",
            sim,
        ])
        .env("NO_COLOR", "1")
        .envs([
            ("TENANT_ID", "11111111-2222-4333-8444-555555555555"),
            ("FNO_CLIENT_ID", "c-fno"),
            ("DV_CLIENT_ID", "c-dv"),
            ("FNO_CLIENT_SECRET", SECRET),
            ("DV_CLIENT_SECRET", SECRET),
            ("FNO_URL", "https://contoso.operations.dynamics.com"),
            ("DATAVERSE_URL", "https://contoso.crm.dynamics.com"),
        ]);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let r = JournalReader::open_read_only(&journal).unwrap();
    assert!(r.verify().unwrap().is_ok());
    let id = r.runs().unwrap().last().unwrap().run_id.clone();
    let events = r.events(&id).map(|e| e.unwrap().event).collect();
    (out, events)
}

/// The failed steps of a run, with their messages.
fn failures(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished {
                step,
                outcome: StepOutcome::Failed { message, .. },
                ..
            } => Some((step.as_str().to_owned(), message.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixed_guardrails_runbook_runs_clean_and_the_broken_one_fails_where_the_estate_says() {
    let dir = tempfile::tempdir().unwrap();

    // Fixed: every wave synced, every gate passed on rows, automation back as it was.
    let sim = sim_support::start_sim_yaml(&scenario()).await;
    let before = sim.state()["automation"].clone();
    let (out, events) = run(dir.path(), "guardrails.yaml", "fixed", &sim.url()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(failures(&events).is_empty(), "{:?}", failures(&events));
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RunFinished {
                outcome: RunOutcome::Succeeded
            }
        )),
        "{stderr}"
    );
    for map in [
        "companies",
        "delivery_modes",
        "sales_order_headers",
        "sales_order_lines",
    ] {
        assert_eq!(sim.state()["maps"][map]["statusName"], "Running", "{map}");
    }
    assert_eq!(sim.state()["tables"]["dataverse"]["salesorderdetails"], 500);
    // The price update's batch window paused the order headers once and resumed them once.
    assert_eq!(
        sim.state()["side_effects"]["dualwrite.pause:sales_order_headers"],
        1
    );
    assert_eq!(
        sim.state()["side_effects"]["dualwrite.resume:sales_order_headers"],
        1
    );
    let windows: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::BatchWindow { phase, .. } => Some(phase.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(windows, ["paused", "confirmed", "resumed"]);
    assert_eq!(sim.state()["automation"], before, "automation is back as it was");
    let gates = events
        .iter()
        .filter(|e| matches!(e, Event::GateEvaluated { passed: true, .. }))
        .count();
    assert_eq!(gates, 3);

    // Broken, as it is: the plug-in on sales orders throws on every record dual-write pushes.
    let sim = sim_support::start_sim_yaml(&scenario()).await;
    let (out, events) = run(dir.path(), "guardrails-broken.yaml", "broken", &sim.url()).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "wave-2:sales_order_headers");
    assert!(
        failed[0].1.contains(
            "Plug-in step 'Contoso.Plugins.SalesOrderCheck: Create of salesorder' threw an exception"
        ),
        "{failed:?}"
    );

    // Broken, with the plug-in turned off: the value map mistakes show at the wave's row-level gate.
    let sim = plugin_off().await;
    let (out, events) = run(
        dir.path(),
        "guardrails-broken.yaml",
        "broken-plugin-off",
        &sim.url(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "wave-2:gate", "{failed:?}");
    assert!(
        failed[0].1.contains("rows sales_order_headers@USMF") && failed[0].1.contains("different"),
        "{failed:?}"
    );

    // And with the value map fixed too: the order lines' lookup to delivery modes, which no map loads, fails them.
    let sim = plugin_off().await;
    let broken = gateway_mode("guardrails-broken.yaml");
    let wrong = "SalesOrderStatus: { Backorder: 192350000, Delivered: 192350001, Invoiced: 192350001, Cancelled: 192350003 }";
    assert!(broken.contains(wrong));
    let text = broken.replace(
        wrong,
        "SalesOrderStatus: { Backorder: 192350000, Delivered: 192350001, Invoiced: 192350002, Canceled: 192350003 }",
    );
    let (out, events) = run_text(dir.path(), &text, "broken-lookup-only", &sim.url()).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed = failures(&events);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "wave-3:sales_order_lines", "{failed:?}");
    assert!(
        failed[0].1.contains(
            "Lookup for 'msdyn_deliverymodeid' could not be resolved: msdyn_deliverymodes has no record"
        ),
        "{failed:?}"
    );
    assert_eq!(sim.state()["tables"]["dataverse"]["salesorderdetails"], 0);
}

/// A guardrails simulator whose plug-in steps are off (as `dataverse.disable_automation` would leave them).
async fn plugin_off() -> cutover::sim::SimHandle {
    let (sim, c, tok) =
        sim_support::sim_with_token(&scenario(), "https://contoso.crm.dynamics.com/.default").await;
    let steps: serde_json::Value = c
        .get(format!(
            "{}/api/data/v9.2/sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid",
            sim.url()
        ))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(steps["value"].as_array().map(Vec::len), Some(2), "{steps}");
    for s in steps["value"].as_array().unwrap() {
        let r = c
            .patch(format!(
                "{}/api/data/v9.2/sdkmessageprocessingsteps({})",
                sim.url(),
                s["sdkmessageprocessingstepid"].as_str().unwrap()
            ))
            .bearer_auth(&tok)
            .json(&json!({"statecode": 1, "statuscode": 2}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    sim
}
