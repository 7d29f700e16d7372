//! The real engine (scheduler, executors, journal) against the simulator on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;

use std::time::Duration;

use cutover::engine::driver::Command;
use cutover::engine::event::{DecisionKind, Event, OperatorAction, RunOutcome, StepOutcome};
use cutover::engine::runner::{SetupError, SimTarget, start_engine};
use cutover::engine::{RunEnd, RunState};
use cutover::sim::Scenario;
use engine_support::*;

async fn sim(scenario: Scenario) -> cutover::sim::SimHandle {
    cutover::sim::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn scenario_file(name: &str) -> Scenario {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runbooks/scenarios")
        .join(name);
    Scenario::from_yaml(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The console's part: answers every question through the EngineHandle's command channel, like
/// the TUI will. Failed gates are retried after a pause (the drift needs simulated time to settle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_run_is_driven_by_commands_and_a_drifting_gate_passes_after_retry() {
    // No automatic re-checks: the operator retries the gate.
    let text = SHORT_DEMO.replace("retries: 6, retry_every: 10m", "retries: 0");
    assert_ne!(text, SHORT_DEMO);
    let f = fixture(&text);
    let s = sim(Scenario::demo()).await;
    let opts = options(&f, SimTarget::Url(s.url()), true);
    let (handle, mut state, mut sub) = start_engine(opts).await.unwrap();
    let tx = handle.commands.clone();
    let mut done = handle.done;
    let end = loop {
        tokio::select! {
            Some(env) = sub.recv() => {
                state.apply(&env);
                if let Event::AwaitingOperator { step, decision, .. } = &env.event {
                    let action = match decision {
                        DecisionKind::Confirm | DecisionKind::PointOfNoReturn => OperatorAction::Confirm,
                        DecisionKind::ApproveManual => OperatorAction::Approve,
                        DecisionKind::GateFailure => {
                            tokio::time::sleep(Duration::from_millis(700)).await;
                            OperatorAction::Retry
                        }
                        other => panic!("unexpected question {other:?} for {step:?}"),
                    };
                    tx.send(Command::new(action, step.clone(), "alice")).await.unwrap();
                }
            }
            end = &mut done => break end.unwrap(),
        }
    };
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded));
    let (_, evs) = events(&f.journal);
    let gate = |passed: bool| {
        count(
            &evs,
            |e| matches!(e, Event::GateEvaluated { step, passed: p, .. } if step.as_str() == "wave-2:gate" && *p == passed),
        )
    };
    assert!(gate(false) >= 1, "the drift fails the gate first");
    assert_eq!(gate(true), 1);
    assert!(
        count(
            &evs,
            |e| matches!(e, Event::OperatorDecision { action: OperatorAction::Retry, operator, .. } if operator == "alice")
        ) >= 1
    );
    // The state folded from the subscription equals the one rebuilt from the journal.
    let reader = cutover::journal::JournalReader::open_read_only(&f.journal).unwrap();
    let replayed: RunState = reader.state_at(&handle.run_id, None).unwrap();
    assert_eq!(replayed, state);
    assert_no_secret(&f.journal, &[SECRET]);
}

/// An initial sync that fails part way is started again once (the gateway has no continue-from-the-failed-row),
/// also across a crash of the console: the second engine picks the run up and the simulator counts the failed
/// pass and one retry pass, never a third.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_initial_sync_is_started_again_once_across_an_interrupted_console_and_a_changed_runbook_is_refused()
 {
    let f = fixture(SHORT_DEMO);
    let s = sim(Scenario::demo()).await;
    let (handle, _state, mut sub) = start_engine(options(&f, SimTarget::Url(s.url()), false))
        .await
        .unwrap();
    // Stop the console as soon as the vendors initial sync is known to have failed.
    while let Some(env) = sub.recv().await {
        if matches!(&env.event, Event::ErrorEntries { map, .. } if map == "vendors") {
            handle.cancel.cancel();
            break;
        }
    }
    assert_eq!(handle.done.await.unwrap(), RunEnd::Interrupted);
    assert_eq!(side_effect(&s.state(), "dualwrite.initial_sync:vendors"), 1);

    // A changed runbook is refused without --accept-changed-runbook, and says what changed.
    std::fs::write(&f.runbook, format!("{SHORT_DEMO}# edited after the start\n")).unwrap();
    match start_engine(options(&f, SimTarget::Url(s.url()), false)).await {
        Err(SetupError::Invalid(m)) => assert!(m.contains("changed") && m.contains("+ # edited"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a changed runbook must be refused"),
    }
    let mut opts = options(&f, SimTarget::Url(s.url()), false);
    opts.accept_changed_runbook = true;
    let end = drive(opts).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded));
    let st = s.state();
    assert_eq!(
        side_effect(&st, "dualwrite.initial_sync:vendors"),
        2,
        "the failed pass and one retry pass"
    );
    assert_eq!(
        side_effect(&st, "dualwrite.resume:vendors"),
        0,
        "resume is for paused maps"
    );
    let (_, evs) = events(&f.journal);
    assert!(
        count(&evs, |e| matches!(
            e,
            Event::RunResumed {
                accepted_changed_runbook: true,
                ..
            }
        )) == 1
    );
    // Finished steps were not re-run: one successful result per planned step.
    let finished_ok = |id: &str| {
        count(
            &evs,
            |e| matches!(e, Event::StepFinished { step, outcome: StepOutcome::Succeeded, .. } if step.as_str() == id),
        )
    };
    assert_eq!(finished_ok("export-snapshot"), 1);
    assert_eq!(finished_ok("import-reference-data"), 1);
    assert_eq!(finished_ok("wave-1:companies"), 1);
}

const STORM: &str = r#"
runbook: storm
version: 1.0.0
defaults: { retries: 6, poll: 10s }
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: t-storm, client_id: c-fno, client_secret: "${DEMO_CLIENT_SECRET}" }
  dataverse:
    kind: dataverse
    url: https://contoso-demo.crm.dynamics.com
    auth: { tenant: t-storm, client_id: c-dv, client_secret: "${DEMO_CLIENT_SECRET}" }
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, DEMF]
    key: { source: CustomerAccount, target: accountnumber }
    compare: { OrganizationName: name }
phases:
  - id: check
    steps:
      - { id: count-1, kind: parity, maps: [customers] }
      - { id: errors, kind: error_queue, maps: [customers], max: 0 }
      - { id: sample-1, kind: sample, maps: [customers], size: 30 }
      - { id: count-2, kind: parity, maps: [customers] }
"#;

/// Throttling (429 with and without Retry-After), 5xx, connection resets and damaged bodies: the
/// run rides them out, and the journal shows that it met them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_and_5xx_storm_is_ridden_out() {
    let f = fixture(STORM);
    // The whole storm, damaged bodies included: a truncated or malformed answer to an idempotent
    // call (or one with a handle) is retried like any transient fault.
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/scenarios/throttle-storm.yaml");
    let text = std::fs::read_to_string(p).unwrap();
    assert!(
        text.contains("truncated_rate") && text.contains("malformed_rate"),
        "the storm scenario changed"
    );
    let s = sim(Scenario::from_yaml(&text).unwrap()).await;
    let end = drive(options(&f, SimTarget::Url(s.url()), false)).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded));
    let (_, evs) = events(&f.journal);
    let faults = count(&evs, |e| {
        matches!(e, Event::Request { status: Some(c), .. } if *c == 429 || *c >= 500)
            || matches!(e, Event::Request { error: Some(_), .. })
    });
    assert!(
        faults >= 3,
        "the storm left {faults} faulted requests in the journal"
    );
    assert_no_secret(&f.journal, &[SECRET]);
}

/// Tokens that live one real second expire many times during the run; it still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expiring_mid_run_are_renewed() {
    let f = fixture(SHORT_DEMO);
    let mut sc = Scenario::demo();
    sc.auth.token_ttl = 1;
    let s = sim(sc).await;
    let end = drive(options(&f, SimTarget::Url(s.url()), false)).await;
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded));
    let (_, evs) = events(&f.journal);
    let tokens = count(
        &evs,
        |e| matches!(e, Event::Request { path, .. } if path.contains("oauth2")),
    );
    assert!(
        tokens >= 4,
        "only {tokens} token requests: tokens were not renewed"
    );
}

const DMF_ERRORS: &str = r#"
runbook: dmf-errors
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: t-dmf, client_id: c-fno, client_secret: "${DEMO_CLIENT_SECRET}" }
phases:
  - id: load
    steps:
      - id: load-customers
        kind: dmf.import
        env: fno
        definition_group: CustomerLoad
        package_file: packages/reference-data.zip
        package_version: 1.0.0
        legal_entity: USMF
      - { id: after, kind: wait, for: 1s }
"#;

/// A DMF job that reports Succeeded while an entity has target errors fails the step; headless
/// cannot decide a failed step, so the run halts (exit 1) and the next step never starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmf_succeeded_with_target_errors_fails_the_step() {
    let f = fixture(DMF_ERRORS);
    let s = sim(scenario_file("dmf-target-errors.yaml")).await;
    let end = drive(options(&f, SimTarget::Url(s.url()), false)).await;
    match &end {
        RunEnd::Halted { step, message } => {
            assert_eq!(step.as_str(), "load-customers");
            assert!(message.to_lowercase().contains("error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cutover::app::exit::of_end(&end), cutover::app::exit::FAILED);
    let (_, evs) = events(&f.journal);
    assert!(
        count(
            &evs,
            |e| matches!(e, Event::StepFinished { step, outcome: StepOutcome::Failed { .. }, .. } if step.as_str() == "load-customers")
        ) == 1
    );
    assert_eq!(
        count(
            &evs,
            |e| matches!(e, Event::StepIntent { step, .. } if step.as_str() == "after")
        ),
        0
    );
    assert_eq!(
        count(&evs, |e| matches!(e, Event::RunFinished { .. })),
        0,
        "the run stays open for a decision"
    );
}

/// A journal driven by a live process is refused, naming the holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lease_holder_is_refused() {
    let f = fixture(SHORT_DEMO);
    drop(cutover::journal::Journal::open(&f.journal, cutover::journal::Redactor::new()).unwrap());
    let me = cutover::journal::LeaseHolder::this_process("someone-else");
    // pid 1 always runs: a live holder on this host.
    let other = cutover::journal::LeaseHolder { pid: 1, ..me };
    let _held = cutover::journal::Lease::acquire(
        &f.journal,
        &other,
        chrono::Utc::now(),
        chrono::Duration::seconds(30),
    )
    .unwrap();
    let s = sim(Scenario::demo()).await;
    match start_engine(options(&f, SimTarget::Url(s.url()), false)).await {
        Err(SetupError::Lease(m)) => assert!(m.contains("someone-else") && m.contains("pid 1"), "{m}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a live holder must be refused"),
    }
}
