//! Dual-write errors from the sources that exist (issue 13): operator mode through a whole wave without any
//! request to the invented `/data/DualWriteErrorLogs` (which the simulator answers 404, like F&O), a failed
//! live-sync write counted as a Dataverse failed system job with its source named, a source that answers
//! 403 shown as "not available" (never 0), and a gate whose sources are all unavailable asking the operator,
//! the question and the decision journaled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover::connectors::dual_write::{GatewayClient, MapAction, Master};
use cutover::engine::driver::Command;
use cutover::engine::event::{DecisionKind, Event, OperatorAction, StepOutcome};
use cutover::engine::exec::{self, Mode};
use cutover::engine::scheduler::operator::{
    AutoApprove, HeadlessOperator, InteractiveOperator, Questions, Refusals,
};
use exec_support::{Harness, assert_ok, environments, failure, start};
use tokio_util::sync::CancellationToken;

/// Three independent maps; `customers` can carry live failures and Dataverse can deny tables.
fn scenario(customers_extra: &str, dataverse: &str, live: &str) -> String {
    format!(
        r#"
name: errsrc
seed: 11
time_scale: 600
companies: [USMF]
default_company: USMF
entities:
  fno:
    CustomersV3: {{ key: CustomerAccount, rows: {{ USMF: 40 }}, fields: {{ OrganizationName: name }} }}
    VendorsV2: {{ key: VendorAccountNumber, rows: {{ USMF: 30 }}, fields: {{ VendorOrganizationName: name }} }}
    ProductsV2: {{ key: ProductNumber, key_prefix: P, rows: 20, fields: {{ ProductName: name }} }}
  dataverse:
    accounts: {{ key: accountnumber }}
    msdyn_vendors: {{ key: msdyn_vendoraccountnumber }}
    products: {{ key: productnumber }}
maps:
  - name: customers
    source: CustomersV3
    target: accounts
    key: {{ source: CustomerAccount, target: accountnumber }}
    fields: {{ OrganizationName: name }}
    rate: 400
{customers_extra}
  - {{ name: vendors, source: VendorsV2, target: msdyn_vendors, key: {{ source: VendorAccountNumber, target: msdyn_vendoraccountnumber }}, rate: 400 }}
  - {{ name: products, source: ProductsV2, target: products, key: {{ source: ProductNumber, target: productnumber }}, fields: {{ ProductName: name }}, rate: 400 }}
dual_write: {{ lag: 5s, request_delay: 1s }}
{dataverse}
{live}
"#
    )
}

fn runbook(operator: bool) -> String {
    format!(
        r#"runbook: errsrc
version: 1.0.0
{}
maps:
  customers: {{ source: "fno:CustomersV3", target: "dataverse:accounts" }}
  vendors: {{ source: "fno:VendorsV2", target: "dataverse:msdyn_vendors" }}
  products: {{ source: "fno:ProductsV2", target: "dataverse:products" }}
phases:
  - id: sync
    gate: {{ parity: true, max_errors: 0 }}
    waves:
      - {{ id: w1, maps: [customers, vendors, products] }}
  - id: ops
    steps:
      - {{ id: errors, kind: error_queue, maps: all }}
"#,
        environments(operator)
    )
}

async fn requests(h: &Harness) -> Vec<String> {
    crate::support::sim::request_log(&h.sim.url())
        .await
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

/// The operator does what the instructions say (runs the named map with initial sync), once per map.
fn operator_runs_maps(h: &Harness) {
    let gw = GatewayClient::new(h.envs.transport("dualwrite").unwrap());
    let done: Arc<Mutex<HashSet<String>>> = Arc::default();
    *h.operator.on_ask.lock().unwrap() = Some(Box::new(move |ask| {
        let Some(line) = ask
            .prompt
            .lines()
            .find(|l| l.contains("Find the table map from "))
        else {
            return;
        };
        let rest = line.split("Find the table map from ").nth(1).unwrap();
        let (source, rest) = rest.split_once(" to ").unwrap();
        let target = rest.split_whitespace().next().unwrap().to_owned();
        if !done.lock().unwrap().insert(source.to_owned()) {
            return;
        }
        let (gw, source) = (gw.clone(), source.to_owned());
        tokio::spawn(async move {
            let c = CancellationToken::new();
            let m = gw.find_map(&source, &target, &c).await.unwrap();
            let start = MapAction::Start {
                initial_sync: true,
                master: Master::Fno,
            };
            gw.send_action(&m, start, &c).await.unwrap();
        });
    }));
    *h.operator.delay.lock().unwrap() = Some(Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_mode_runs_a_whole_wave_without_the_invented_error_queue() {
    let h = start(Some(&scenario("", "", "")), &runbook(true)).await;
    operator_runs_maps(&h);
    for s in ["w1:customers", "w1:vendors", "w1:products", "w1:gate", "errors"] {
        assert_ok(&h.run(s).await);
    }
    let log = requests(&h).await;
    assert!(
        !log.iter().any(|r| r.contains("DualWriteErrorLogs")),
        "no request to the invented entity set: {log:?}"
    );
    assert!(
        log.iter().any(|r| r == "GET /api/data/v9.2/asyncoperations"),
        "{log:?}"
    );
    assert!(
        log.iter().any(|r| r == "GET /api/data/v9.2/plugintracelogs"),
        "{log:?}"
    );
    // Each map's figures are journaled per source, available and zero.
    let events = h.events().await;
    for map in ["customers", "vendors", "products"] {
        for source in ["dataverse.asyncoperations", "dataverse.plugintracelogs"] {
            assert!(
                events.iter().any(|e| matches!(&e.event,
                    Event::ErrorCounts { map: m, source: Some(s), unavailable: None, by_category, .. }
                        if m == map && s == source && by_category.is_empty())),
                "{map} {source}"
            );
        }
    }
    let state = h.state().await;
    assert!(
        state
            .errors
            .source_lines()
            .contains(&"vendors: 0 (dataverse.asyncoperations), 0 (dataverse.plugintracelogs)".to_owned()),
        "{:?}",
        state.errors.source_lines()
    );
}

#[tokio::test]
async fn the_simulator_answers_404_for_the_invented_error_queue_like_fno() {
    let h = start(Some(&scenario("", "", "")), &runbook(true)).await;
    let fno = h.envs.transport("fno").unwrap();
    let c = CancellationToken::new();
    let req = cutover::connectors::transport::Request::get("probe", "/data/DualWriteErrorLogs")
        .query("cross-company", "true");
    let err = fno.send(req, &c).await.unwrap_err();
    assert!(
        matches!(&err, cutover::connectors::ConnectorError::NotFound { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("No HTTP resource was found that matches the request URI '/data/DualWriteErrorLogs'"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_live_sync_write_is_a_failed_system_job_counted_with_its_source() {
    let customers = "    live_fail_every: 2\n    live_fail_plugin: true\n    message: \"Plug-in DualWrite.PostCreate failed: the record could not be written.\"\n    initial: { status: running, preloaded: true }";
    let live = "live_writes:\n  - { side: fno, entity: CustomersV3, burst: 4 }";
    let h = start(Some(&scenario(customers, "", live)), &runbook(true)).await;
    // Wait for the four creates to be carried (two fail): the failed system jobs appear in Dataverse.
    let deadline = Instant::now() + Duration::from_secs(20);
    let jobs = loop {
        let n = h.sim.state()["tables"]["dataverse"]["asyncoperations"]
            .as_u64()
            .unwrap_or(0);
        if n >= 2 {
            break n;
        }
        assert!(Instant::now() < deadline, "the live failures never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(jobs, 2);
    let msg = failure(&h.run("errors").await);
    assert!(
        msg.contains("2 (dataverse.asyncoperations)") && msg.contains("2 (dataverse.plugintracelogs)"),
        "{msg}"
    );
    let events = h.events().await;
    let entries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ErrorEntries {
                map,
                entries,
                source: Some(s),
            } if map == "customers" && s == "dataverse.asyncoperations" => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|e| e.category == "plugin_exception" && e.message.contains("DualWrite.PostCreate"))
    );
    // What the error pane shows: each figure with its source.
    let state = h.state().await;
    let lines = state.errors.source_lines();
    assert!(
        lines.contains(&"customers: 2 (dataverse.asyncoperations), 2 (dataverse.plugintracelogs)".to_owned()),
        "{lines:?}"
    );
    // Read again: the same jobs are not journaled twice.
    let _ = h.run_mode("errors", 2, Mode::Fresh).await;
    let again = h
        .events()
        .await
        .iter()
        .filter(|e| matches!(&e.event, Event::ErrorEntries { map, source: Some(s), .. } if map == "customers" && s == "dataverse.asyncoperations"))
        .count();
    assert_eq!(again, 1);
}

const DENIED: &str = "dataverse: { forbidden: [asyncoperations, plugintracelogs] }";

fn gate_only_runbook() -> String {
    runbook(true).replace(
        "gate: { parity: true, max_errors: 0 }",
        "gate: { parity: false, max_errors: 0 }",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_over_sources_that_403_asks_the_operator_and_journals_the_waiver() {
    let h = start(Some(&scenario("", DENIED, "")), &gate_only_runbook()).await;
    let mut ctx = h.ctx("w1:gate", 1).await;
    let questions = Arc::new(Questions::default());
    ctx.operator = Arc::new(InteractiveOperator::new(
        h.emit.clone(),
        questions.clone(),
        CancellationToken::new(),
    ));
    let run = tokio::spawn(async move { exec::execute(&ctx, None, Mode::Fresh).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while questions.is_empty() {
        assert!(Instant::now() < deadline, "the gate never asked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut cmd = Command::new(OperatorAction::Waive, None, "olga");
    cmd.reason = Some("errors checked in the Dataverse UI".into());
    questions.route(cmd).unwrap();
    let r = run.await.unwrap();
    assert_eq!(r.outcome, StepOutcome::Succeeded, "{:?}", r.outcome);
    let events = h.events().await;
    let asked = events.iter().find_map(|e| match &e.event {
        Event::AwaitingOperator {
            decision: DecisionKind::GateFailure,
            prompt,
            ..
        } => Some(prompt.clone()),
        _ => None,
    });
    let asked = asked.expect("the question is journaled");
    assert!(
        asked.contains("not available")
            && asked.contains("(dataverse.asyncoperations)")
            && asked.contains("not zero"),
        "{asked}"
    );
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::OperatorDecision { action: OperatorAction::Waive, operator, reason: Some(r), .. }
            if operator == "olga" && r.contains("Dataverse UI"))));
    // Every source of every map is journaled as not available, with the service's reason.
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorCounts { map, source: Some(s), unavailable: Some(why), .. }
            if map == "customers" && s == "dataverse.plugintracelogs" && why.contains("403"))));
    let state = h.state().await;
    let lines = state.errors.source_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("products: not available (") && l.ends_with("(dataverse.plugintracelogs)")),
        "{lines:?}"
    );
    assert_eq!(state.errors.total_for_map("products"), 0);
    assert!(
        !state.errors.reported.contains_key("products"),
        "not available is not zero"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_with_auto_approve_a_blind_gate_does_not_pass() {
    let h = start(Some(&scenario("", DENIED, "")), &gate_only_runbook()).await;
    let mut ctx = h.ctx("w1:gate", 1).await;
    ctx.operator = Arc::new(HeadlessOperator::new(
        h.emit.clone(),
        Some(AutoApprove {
            operator: "ci".into(),
            reason: "rehearsal".into(),
        }),
        Arc::new(Refusals::default()),
    ));
    let r = exec::execute(&ctx, None, Mode::Fresh).await;
    let StepOutcome::Failed { message, .. } = &r.outcome else {
        panic!(
            "a gate that cannot read any error source must not pass: {:?}",
            r.outcome
        )
    };
    assert!(message.contains("failed gate"), "{message}");
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::AwaitingOperator { decision: DecisionKind::GateFailure, prompt, .. } if prompt.contains("not available"))));
}

#[tokio::test]
async fn dmf_execution_errors_of_an_initial_sync_are_read_when_the_runbook_names_the_execution() {
    let customers = "    fail_at_row: 7\n    category: missing_lookup\n    message: \"Lookup value 'X' for msdyn_company could not be resolved.\"";
    let rb = runbook(false).replace(
        "customers: { source: \"fno:CustomersV3\", target: \"dataverse:accounts\" }",
        "customers: { source: \"fno:CustomersV3\", target: \"dataverse:accounts\", initial_sync_execution_id: DWM-customers }",
    );
    let h = start(Some(&scenario(customers, "", "")), &rb).await;
    let gw = GatewayClient::new(h.envs.transport("dualwrite").unwrap());
    let c = CancellationToken::new();
    let m = gw.find_map("CustomersV3", "accounts", &c).await.unwrap();
    let start = MapAction::Start {
        initial_sync: true,
        master: Master::Fno,
    };
    let rid = gw.send_action(&m, start, &c).await.unwrap();
    let poll = cutover::connectors::dmf::Poll {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(20),
    };
    assert!(
        gw.wait_request(&rid, poll, &c).await.is_err(),
        "the pass fails at row 7"
    );
    let msg = failure(&h.run("errors").await);
    assert!(msg.contains("1 (dmf.execution_errors)"), "{msg}");
    assert!(msg.contains("1 (gateway.initial_sync)"), "{msg}");
    let log = requests(&h).await;
    assert!(
        log.iter()
            .any(|r| r.ends_with("Microsoft.Dynamics.DataEntities.GetExecutionErrors")),
        "{log:?}"
    );
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorEntries { map, entries, source: Some(s) }
            if map == "customers" && s == "dmf.execution_errors" && entries.len() == 1 && entries[0].category == "missing_lookup")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_alerts_that_errors_are_not_known_when_no_source_can_be_read() {
    let rb = gate_only_runbook().replace(
        "      - { id: errors, kind: error_queue, maps: all }",
        "      - { id: errors, kind: error_queue, maps: all }\n      - { id: watch, kind: monitor, every: 5m, for: 10m, maps: [vendors], alert: { errors_per_hour: 0 } }",
    );
    let h = start(Some(&scenario("", DENIED, "")), &rb).await;
    assert_ok(&h.run("watch").await);
    let events = h.events().await;
    assert!(
        events.iter().any(|e| matches!(&e.event,
            Event::Alert { map: Some(m), message, .. }
                if m == "vendors" && message.contains("not known") && message.contains("not available (HTTP 403"))),
        "a blind map is alerted, not counted as zero"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.event, Event::Alert { message, .. } if message.contains("per hour"))),
        "no rate is computed from figures that could not be read"
    );
}
