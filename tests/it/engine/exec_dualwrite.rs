//! Dual-write executors against the simulator's gateway (the tool's wire format): wave initial syncs, the vendors
//! failure at row 2,100 finished by starting the sync again (the gateway has no continue), exactly-once actions
//! across a crash and a lost answer (journaled intent + `lastRequests`), gates, pause/resume/stop/run, operator mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::time::{Duration, Instant};

use crate::support::gateway::{start_codes, start_posts};
use cutover::connectors::dual_write::{ActionIntent, GatewayClient, MapAction, Master};
use cutover::engine::event::{Event, Handle, StepOutcome};
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

const START_SYNC: MapAction = MapAction::Start {
    initial_sync: true,
    master: Master::Fno,
};

/// Journals what a crashed engine journaled before it sent `action` to the map between these entities: the
/// step's own intent, then the action intent (as `act` does).
async fn crashed_intent(h: &Harness, step: &str, left: &str, right: &str, action: MapAction) -> ActionIntent {
    let ctx = h.ctx(step, 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    let intent_event = |hd: Handle| Event::StepIntent {
        step: ctx.step.id.clone(),
        attempt: 1,
        handle: Some(hd),
    };
    h.emit.durable(intent_event(handle)).await.unwrap();
    let map = gateway(h)
        .find_map(left, right, &CancellationToken::new())
        .await
        .unwrap();
    let intent = ActionIntent::new(&map, action, chrono::Utc::now());
    h.emit
        .durable(intent_event(Handle {
            kind: "dualwrite.intent".into(),
            id: intent.encode(),
        }))
        .await
        .unwrap();
    intent
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
async fn waves_sync_and_a_failed_initial_sync_is_started_again() {
    let h = start(None, &runbook(false)).await;
    first_two_waves(&h).await;
    let (c, v) = tokio::join!(h.run("w3:customers"), h.run("w3:vendors"));
    assert_ok(&c);
    assert_ok(&v);
    assert_eq!(
        h.effect("dualwrite.initial_sync:vendors"),
        2,
        "one failed pass, one that upserts to the end"
    );
    assert_eq!(
        h.effect("dualwrite.resume:vendors"),
        0,
        "resume is for paused maps only"
    );
    let s = h.map_state("vendors");
    assert_eq!(s["initialSync"]["state"], "Completed");
    assert_eq!(
        h.sim.state()["tables"]["dataverse"]["msdyn_vendors"],
        h.sim.state()["tables"]["fno"]["VendorsV2"]
    );
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorEntries { map, entries, .. } if map == "vendors" && entries.iter().any(|x| x.category == "missing_lookup"))));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::StepProgress { step, done, .. } if step.as_str() == "w3:vendors" && *done > 0)));
    let intents: Vec<ActionIntent> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepIntent {
                step,
                handle: Some(hd),
                ..
            } if step.as_str() == "w3:vendors" && hd.kind == "dualwrite.intent" => {
                ActionIntent::decode(&hd.id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(intents.len(), 2, "an intent before each Start");
    assert!(
        intents
            .iter()
            .all(|i| i.action == "1" && i.left == "VendorsV2" && i.right == "msdyn_vendors")
    );
    assert!(
        intents[1].known.len() > intents[0].known.len(),
        "the second knows the first's request"
    );
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
    // The codes the gateway saw for customers' pause, resume, stop and run without initial sync.
    let codes = start_codes(&cutover::connectors::net::client().unwrap(), &h.sim.url()).await;
    assert_eq!(codes[codes.len() - 4..], ["5", "6", "4", "1"], "{codes:?}");
}

#[tokio::test]
async fn reconcile_after_a_crash_adopts_the_accepted_request_and_sends_what_was_never_accepted() {
    let h = start(None, &runbook(false)).await;
    assert_ok(&h.run("w1:companies").await);
    let gw = gateway(&h);
    let cancel = CancellationToken::new();
    let url = h.sim.url();
    let c = cutover::connectors::net::client().unwrap();

    // Crash after the intent was journaled, before the Start was sent: resume sends it, once.
    crashed_intent(
        &h,
        "w2:currencies",
        "Currencies",
        "transactioncurrencies",
        START_SYNC,
    )
    .await;
    let posts = start_posts(&c, &url).await;
    assert_ok(&h.run_mode("w2:currencies", 1, Mode::Reconcile).await);
    assert_eq!(start_posts(&c, &url).await, posts + 1);
    assert_eq!(h.effect("dualwrite.initial_sync:currencies"), 1);

    // Crash after the Start for vendors was accepted (and its pass then failed): resume adopts that request
    // (no second Start for it), reads its failure, and starts the one retry pass.
    crashed_intent(&h, "w3:vendors", "VendorsV2", "msdyn_vendors", START_SYNC).await;
    let map = gw.find_map("VendorsV2", "msdyn_vendors", &cancel).await.unwrap();
    let rid = gw.send_action(&map, START_SYNC, &cancel).await.unwrap();
    let poll = cutover::connectors::dmf::Poll {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(20),
    };
    assert!(
        gw.wait_request(&rid, poll, &cancel).await.is_err(),
        "the first pass fails at row 2,100"
    );
    let posts = start_posts(&c, &url).await;
    let r = h.run_mode("w3:vendors", 1, Mode::Reconcile).await;
    assert_ok(&r);
    assert_eq!(
        start_posts(&c, &url).await,
        posts + 1,
        "only the retry pass was sent"
    );
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 2);
    let events = h.events().await;
    assert!(
        events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("was accepted as request") && message.contains(&rid)))
    );
    assert_eq!(h.map_state("vendors")["initialSync"]["state"], "Completed");

    // Reconciled again after it finished (crash before the result): nothing is sent.
    assert_ok(&h.run_mode("w3:vendors", 1, Mode::Reconcile).await);
    assert_eq!(start_posts(&c, &url).await, posts + 1);
    assert_eq!(h.effect("dualwrite.initial_sync:vendors"), 2);
}

#[tokio::test]
async fn a_failed_sync_with_no_retries_left_fails_with_the_services_words() {
    let rb = runbook(false).replace("version: 1.0.0\n", "version: 1.0.0\ndefaults: { retries: 0 }\n");
    let h = start(None, &rb).await;
    first_two_waves(&h).await;
    let msg = failure(&h.run("w3:vendors").await);
    assert!(msg.contains("V-OTHER") && msg.contains("at record "), "{msg}");
    assert_eq!(
        h.effect("dualwrite.initial_sync:vendors"),
        1,
        "no retry left: one pass"
    );
    // The gate counts the failed row of the map's initial-sync DMF execution against max_errors, naming
    // the source beside the figure.
    let msg = failure(&h.run("w3:gate").await);
    assert!(
        msg.contains("vendors: ") && msg.contains("1 (dmf.execution_errors)"),
        "{msg}"
    );
}

/// A dependency that is not running fails the sync at the same record for the same reason after every
/// restart: the step starts it again once (after the runbook's `poll`), sees the same failure again and stops,
/// saying so, with the service's reason journaled beside the message.
#[tokio::test]
async fn a_failure_that_comes_back_after_a_restart_stops_early_with_the_services_reason() {
    let rb = runbook(false).replace("version: 1.0.0\n", "version: 1.0.0\ndefaults: { retries: 3 }\n");
    let h = start(None, &rb).await;
    // No earlier wave: companies and currencies are not running, so no customer's lookup resolves.
    let r = h.run("w3:customers").await;
    let msg = failure(&r);
    let why = reason(&r).expect("the service's reason is journaled");
    assert!(why.contains("could not be resolved"), "{why}");
    assert!(msg.contains(&why), "{msg}");
    assert!(msg.contains("same failure came back after restart 1"), "{msg}");
    assert!(msg.contains("stopped early (restarted 1 of 3 times)"), "{msg}");
    assert_eq!(
        h.effect("dualwrite.initial_sync:customers"),
        2,
        "one restart, not three"
    );
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::StepFinished { outcome: StepOutcome::Failed { reason: Some(r), .. }, .. } if *r == why)));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("starting the initial sync of customers again in ") && message.contains("(1/3)"))));
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("failed at record") && message.contains(&why))));
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
            gw.send_action(&m, START_SYNC, &c).await.unwrap();
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

/// The answer to `POST Start` is lost after the gateway took the action: the engine finds its request in the
/// map's `lastRequests` and waits for it, and the gateway sees exactly one Start.
#[tokio::test]
async fn a_lost_start_answer_is_reconciled_through_last_requests_without_a_second_start() {
    let h = start(None, &runbook(false)).await;
    assert_ok(&h.run("w1:companies").await);
    let (c, url) = (cutover::connectors::net::client().unwrap(), h.sim.url());
    let before = start_posts(&c, &url).await;
    h.sim
        .set_faults(cutover::sim::Faults(vec![cutover::sim::FaultRule {
            path_prefix: Some("/api/DualWriteManagement/1.0/Start".into()),
            lost_rate: 1.0,
            ..Default::default()
        }]));
    assert_ok(&h.run("w2:currencies").await);
    assert_eq!(
        start_posts(&c, &url).await,
        before + 1,
        "exactly one Start reached the gateway"
    );
    assert_eq!(h.effect("dualwrite.initial_sync:currencies"), 1);
    assert_eq!(h.map_state("currencies")["statusName"], "Running");
    let f: serde_json::Value = c
        .get(format!("{url}/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(
        f["injected"],
        serde_json::json!(0),
        "the answer was really lost: {f}"
    );
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Log { message, .. } if message.contains("was lost") && message.contains("accepted it as request"))));
}
