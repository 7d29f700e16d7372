//! Dual-write executors against the simulator's gateway: wave initial syncs, the vendors failure at row 2,100
//! finished by Resume (never restarted), reconciles after a crash, gates, pause/resume/stop/run, operator mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::time::{Duration, Instant};

use cutover::connectors::dual_write::{GatewayClient, MapAction, Master};
use cutover::engine::event::{Event, StepOutcome};
use cutover::engine::exec::{self, Mode};
use exec_support::{Harness, assert_ok, environments, failure, reason, start};
use tokio_util::sync::CancellationToken;

fn runbook(operator: bool) -> String {
    format!(
        r#"runbook: exec-dw
version: 1.0.0
{}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies" }}
  currencies: {{ source: "fno:Currencies", target: "dataverse:transactioncurrencies" }}
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    depends_on: [companies, currencies]
    companies: [USMF, USRT, DEMF]
    key: {{ source: CustomerAccount, target: accountnumber }}
  vendors:
    source: fno:VendorsV2
    target: dataverse:msdyn_vendors
    depends_on: [companies, currencies]
    companies: [USMF, USRT, DEMF]
    initial_sync_execution_id: DWM-vendors
phases:
  - id: sync
    gate: {{ parity: true, max_errors: 0 }}
    waves:
      - {{ id: w1, maps: [companies] }}
      - {{ id: w2, maps: [currencies] }}
      - {{ id: w3, maps: [customers, vendors] }}
  - id: ops
    steps:
      - {{ id: pause, kind: dualwrite.pause, maps: [customers] }}
      - {{ id: resume, kind: dualwrite.resume, maps: [customers] }}
      - {{ id: stop, kind: dualwrite.stop, maps: [customers] }}
      - {{ id: live, kind: dualwrite.run, maps: all, initial_sync: false }}
"#,
        environments(operator)
    )
}

fn gateway(h: &Harness) -> GatewayClient {
    GatewayClient::new(h.envs.transport("dualwrite").unwrap())
}

async fn first_two_waves(h: &Harness) {
    for s in ["w1:companies", "w1:gate", "w2:currencies", "w2:gate"] {
        assert_ok(&h.run(s).await);
    }
}

/// Re-runs a gate until it passes (the demo's drift settles in a few real seconds).
async fn gate_passes(h: &Harness, gate: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 1;
    loop {
        let r = h.run_mode(gate, attempt, Mode::Fresh).await;
        if r.outcome == StepOutcome::Succeeded {
            return attempt;
        }
        assert!(Instant::now() < deadline, "gate never passed: {:?}", r.outcome);
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn waves_sync_and_a_failed_initial_sync_is_resumed_not_restarted() {
    let h = start(None, &runbook(false)).await;
    first_two_waves(&h).await;
    let (c, v) = tokio::join!(h.run("w3:customers"), h.run("w3:vendors"));
    assert_ok(&c);
    assert_ok(&v);
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 1, "never restarted");
    assert_eq!(h.effect("dualwrite.resume:vendors"), 1);
    assert_eq!(h.map_state("vendors")["initialSync"]["state"], "Completed");
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorEntries { map, entries, .. } if map == "vendors" && entries.iter().any(|x| x.category == "missing_lookup"))));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::StepProgress { step, total: Some(t), .. } if step.as_str() == "w3:vendors" && *t > 0)));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::StepIntent { step, handle: Some(hd), .. } if step.as_str() == "w3:vendors" && hd.kind == "dualwrite.resume")));
    // The drift of the five new customers fails the gate first; it passes once they arrive, and the resolved
    // vendors error does not count.
    gate_passes(&h, "w3:gate").await;
    let events = h.events().await;
    let last_gate = events
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::GateEvaluated { passed, .. } => Some(*passed),
            _ => None,
        })
        .unwrap();
    assert!(last_gate);
    let samples = events
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::ParitySample { step: Some(s), map, company: Some(_), .. }
            if s.as_str() == "w3:gate" && map == "customers")
        })
        .count();
    assert!(samples >= 3, "a sample per company");

    // pause / resume / stop / run without initial sync, each waiting for the state.
    assert_ok(&h.run("pause").await);
    assert_eq!(h.map_state("customers")["statusName"], "Paused");
    assert_ok(&h.run("resume").await);
    assert_eq!(h.map_state("customers")["statusName"], "Running");
    assert_ok(&h.run("stop").await);
    assert_eq!(h.map_state("customers")["status"], 1);
    assert_ok(&h.run("live").await);
    assert_eq!(h.map_state("customers")["statusName"], "Running");
    assert_eq!(h.effect("dualwrite.start:customers"), 1);
    // Already running: nothing is sent again.
    assert_ok(&h.run_mode("live", 2, Mode::Fresh).await);
    assert_eq!(h.effect("dualwrite.start:customers"), 1);
    assert_eq!(h.effect("dualwrite.initial_sync:customers"), 1);
}

#[tokio::test]
async fn reconcile_after_a_crash_continues_the_journaled_request_and_resumes_a_failed_sync() {
    let h = start(None, &runbook(false)).await;
    assert_ok(&h.run("w1:companies").await);
    let gw = gateway(&h);
    let cancel = CancellationToken::new();

    // Crash right after action 8 was sent for currencies: resume waits for it, sends nothing new.
    let ctx = h.ctx("w2:currencies", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 1,
            handle: Some(handle.clone()),
        })
        .await
        .unwrap();
    let map = gw
        .find_map("Currencies", "transactioncurrencies", &cancel)
        .await
        .unwrap();
    gw.send_action(&map.id, MapAction::InitialSync, Master::Fno, &handle.id, &cancel)
        .await
        .unwrap();
    assert_ok(&h.run_mode("w2:currencies", 1, Mode::Reconcile).await);
    assert_eq!(h.effect("dualwrite.initial_sync:currencies"), 1);

    // Crash while the vendors sync ran into its failure: resume Resumes it from row 2,100.
    let ctx = h.ctx("w3:vendors", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 1,
            handle: Some(handle.clone()),
        })
        .await
        .unwrap();
    let map = gw.find_map("VendorsV2", "msdyn_vendors", &cancel).await.unwrap();
    gw.send_action(&map.id, MapAction::InitialSync, Master::Fno, &handle.id, &cancel)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.map(&map.id, &cancel).await.unwrap().initial_sync.state != "Failed" {
        assert!(Instant::now() < deadline, "the vendors sync never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = h.run_mode("w3:vendors", 1, Mode::Reconcile).await;
    assert_ok(&r);
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 1);
    assert_eq!(h.effect("dualwrite.resume:vendors"), 1);
    let s = h.map_state("vendors");
    assert_eq!(s["initialSync"]["state"], "Completed");
    assert_eq!(s["initialSync"]["rowsCopied"], 3500, "{s}");

    // Reconciled again after it finished (crash before the result): nothing is sent.
    assert_ok(&h.run_mode("w3:vendors", 1, Mode::Reconcile).await);
    assert_eq!(h.effect("dualwrite.resume:vendors"), 1);
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 1);
}

#[tokio::test]
async fn a_failed_sync_with_no_retries_left_fails_with_the_services_words() {
    let rb = runbook(false).replace("version: 1.0.0\n", "version: 1.0.0\ndefaults: { retries: 0 }\n");
    let h = start(None, &rb).await;
    first_two_waves(&h).await;
    let msg = failure(&h.run("w3:vendors").await);
    assert!(msg.contains("2100") && msg.contains("V-OTHER"), "{msg}");
    assert_eq!(h.effect("dualwrite.resume:vendors"), 0);
    // The gate counts the failed row of the map's initial-sync DMF execution against max_errors, naming
    // the source beside the figure.
    let msg = failure(&h.run("w3:gate").await);
    assert!(
        msg.contains("vendors: ") && msg.contains("1 (dmf.execution_errors)"),
        "{msg}"
    );
}

/// A dependency that is not running fails the sync at the same row for the same reason after every
/// resume: the step resumes once (after the runbook's `poll`), sees the same failure again and stops,
/// saying so, with the service's reason journaled beside the message.
#[tokio::test]
async fn a_failure_that_comes_back_after_a_resume_stops_early_with_the_services_reason() {
    let rb = runbook(false).replace("version: 1.0.0\n", "version: 1.0.0\ndefaults: { retries: 3 }\n");
    let h = start(None, &rb).await;
    // No earlier wave: companies and currencies are not running, so no customer's lookup resolves.
    let r = h.run("w3:customers").await;
    let msg = failure(&r);
    let why = reason(&r).expect("the service's reason is journaled");
    assert!(why.contains("could not be resolved"), "{why}");
    assert!(msg.contains(&why), "{msg}");
    assert!(msg.contains("same failure came back after resume 1"), "{msg}");
    assert!(msg.contains("stopped early (resumed 1 of 3 times)"), "{msg}");
    assert_eq!(h.effect("dualwrite.resume:customers"), 1, "one resume, not three");
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::StepFinished { outcome: StepOutcome::Failed { reason: Some(r), .. }, .. } if *r == why)));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("resuming the initial sync of customers in ") && message.contains("(1/3)"))));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("failed at row") && message.contains(&why))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_mode_asks_then_verifies_by_reading_the_environment() {
    let h = start(None, &runbook(true)).await;
    let gw = gateway(&h);
    *h.operator.delay.lock().unwrap() = Some(Duration::from_millis(300));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    *h.operator.on_ask.lock().unwrap() = Some(Box::new(move |_ask| {
        if d2.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let gw = gw.clone();
        // The operator does what the instructions say, in the dual-write workspace.
        tokio::spawn(async move {
            let c = CancellationToken::new();
            let m = gw.find_map("Companies", "cdm_companies", &c).await.unwrap();
            gw.send_action(&m.id, MapAction::InitialSync, Master::Fno, "op-1", &c)
                .await
                .unwrap();
        });
    }));
    assert_ok(&h.run("w1:companies").await);
    let asks = h.operator.asks.lock().unwrap().clone();
    assert!(!asks.is_empty());
    assert!(
        asks[0].prompt.contains("Dual Write tile") && asks[0].prompt.contains("Companies to cdm_companies")
    );
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ParitySample { map, source: 3, target: 3, .. } if map == "companies")));
}

#[tokio::test]
async fn an_operator_who_confirms_without_acting_is_asked_again_then_the_step_fails() {
    let h = start(None, &runbook(true)).await;
    let msg = failure(&h.run("w2:currencies").await);
    assert!(msg.contains("still not done after 10 confirmations"), "{msg}");
    let asks = h.operator.asks.lock().unwrap().clone();
    assert_eq!(asks.len(), 10);
    assert!(
        asks[1].prompt.contains("not done yet") && asks[1].prompt.contains("40 rows"),
        "{}",
        asks[1].prompt
    );
    assert_eq!(h.effect("dualwrite.initial_sync:currencies"), 0);
}

#[tokio::test]
async fn reconcile_with_a_journaled_resume_handle_waits_for_that_resume() {
    let h = start(None, &runbook(false)).await;
    first_two_waves(&h).await;
    let gw = gateway(&h);
    let cancel = CancellationToken::new();
    let ctx = h.ctx("w3:vendors", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    let intent = |hd: cutover::engine::event::Handle| Event::StepIntent {
        step: ctx.step.id.clone(),
        attempt: 1,
        handle: Some(hd),
    };
    h.emit.durable(intent(handle.clone())).await.unwrap();
    let map = gw.find_map("VendorsV2", "msdyn_vendors", &cancel).await.unwrap();
    gw.send_action(&map.id, MapAction::InitialSync, Master::Fno, &handle.id, &cancel)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while gw.map(&map.id, &cancel).await.unwrap().initial_sync.state != "Failed" {
        assert!(Instant::now() < deadline, "the vendors sync never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The crashed process had journaled its first resume and sent it.
    let resume = cutover::engine::event::Handle {
        kind: "dualwrite.resume".into(),
        id: exec::derive_id(&handle.id, "resume-1"),
    };
    h.emit.durable(intent(resume.clone())).await.unwrap();
    gw.send_action(&map.id, MapAction::Resume, Master::Fno, &resume.id, &cancel)
        .await
        .unwrap();
    assert_ok(&h.run_mode("w3:vendors", 1, Mode::Reconcile).await);
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 1);
    assert_eq!(h.effect("dualwrite.resume:vendors"), 1);
    assert_eq!(h.map_state("vendors")["initialSync"]["state"], "Completed");
}
