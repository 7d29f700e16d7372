//! The scheduler against a scripted executor: ordering, waves, gates, operator policies, journal
//! first, cancellation and resume. (End-to-end runs against the simulator live in tests/engine_*.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::operator::{AutoApprove, HeadlessOperator, InteractiveOperator, Questions, Refusals};
use super::*;
use crate::engine::ctx::Ask;
use crate::engine::driver::Command;
use crate::engine::event::{DecisionKind, StepOutcome};
use crate::engine::resume::Resumable;
use crate::journal::{Journal, JournalReader, Redactor};

const RUNBOOK: &str = r"
runbook: sched-test
version: 1.0.0
defaults: { concurrency: 4 }
environments:
  fno: { kind: fno, url: https://f.example.com }
  dataverse: { kind: dataverse, url: https://d.example.com }
maps:
  a: { source: fno:A, target: dataverse:a }
  b: { source: fno:B, target: dataverse:b }
  c: { source: fno:C, target: dataverse:c }
phases:
  - id: prep
    steps:
      - id: approve
        kind: manual
        checklist: [one, two]
      - id: flaky
        kind: wait
        for: 1s
        on_failure: continue
  - id: sync
    gate: { parity: true, retries: 3, retry_every: 10s }
    waves:
      - id: w1
        maps: [a, b, c]
        concurrency: 2
  - id: go
    steps:
      - id: live
        kind: wait
        for: 1s
        point_of_no_return: true
";

type Call = (String, u32, Mode, Option<Handle>);

#[derive(Default)]
struct Fake {
    /// Step id → how many first attempts fail.
    fail: HashMap<String, u32>,
    policy: Option<Reconcile>,
    calls: Mutex<Vec<Call>>,
    wave_now: AtomicUsize,
    wave_max: AtomicUsize,
    /// Steps that never finish by themselves.
    hang: Vec<String>,
}

impl Executor for Fake {
    fn handle_for(&self, step: &PlannedStep, _run: &RunId, attempt: u32) -> Option<Handle> {
        Some(Handle {
            kind: "test".into(),
            id: format!("{}#{attempt}", step.id),
        })
    }
    fn reconcile_policy(&self, _step: &PlannedStep) -> Reconcile {
        self.policy.unwrap_or(Reconcile::Rerun)
    }
    fn execute<'a>(
        &'a self,
        ctx: &'a StepCtx,
        handle: Option<&'a Handle>,
        mode: Mode,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>> {
        Box::pin(async move {
            let id = ctx.step.id.0.to_string();
            self.calls
                .lock()
                .unwrap()
                .push((id.clone(), ctx.attempt, mode, handle.cloned()));
            let outputs = BTreeMap::new();
            if self.hang.contains(&id) {
                ctx.cancel.cancelled().await;
                return StepResult {
                    outcome: StepOutcome::Failed {
                        message: "cancelled".into(),
                        reason: None,
                    },
                    outputs,
                    in_doubt: false,
                };
            }
            if ctx.step.kind == "manual" {
                let ask = Ask {
                    step: Some(ctx.step.id.clone()),
                    kind: DecisionKind::ApproveManual,
                    prompt: "do it".into(),
                    checklist: vec!["one".into(), "two".into()],
                    deadline: None,
                };
                if let Err(e) = ctx.operator.ask(ask).await {
                    return StepResult {
                        outcome: StepOutcome::Failed {
                            message: e.to_string(),
                            reason: None,
                        },
                        outputs,
                        in_doubt: false,
                    };
                }
            }
            let wave = matches!(ctx.step.what, PlannedWhat::WaveMap { .. });
            if wave {
                let now = self.wave_now.fetch_add(1, Ordering::SeqCst) + 1;
                self.wave_max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                self.wave_now.fetch_sub(1, Ordering::SeqCst);
            }
            let fails = self.fail.get(&id).copied().unwrap_or(0);
            let outcome = if ctx.attempt <= fails {
                StepOutcome::Failed {
                    message: format!("{id} failed on attempt {}", ctx.attempt),
                    reason: None,
                }
            } else {
                StepOutcome::Succeeded
            };
            StepResult {
                outcome,
                outputs,
                in_doubt: false,
            }
        })
    }
}

enum Who {
    Headless(Option<AutoApprove>),
    Interactive(Arc<Questions>),
}

struct Run {
    end: RunEnd,
    events: Vec<Event>,
}

fn auto() -> AutoApprove {
    AutoApprove {
        operator: "robot".into(),
        reason: "auto-approved (test)".into(),
    }
}

async fn run_with(
    fake: Arc<Fake>,
    who: Who,
    policy: GatePolicy,
    journal: &std::path::Path,
    starts: Option<BTreeMap<StepId, Start>>,
    control: Arc<Control>,
    cancel: CancellationToken,
) -> Run {
    run_text(RUNBOOK, fake, who, policy, journal, starts, control, cancel).await
}

#[allow(clippy::too_many_arguments)]
async fn run_text(
    text: &str,
    fake: Arc<Fake>,
    who: Who,
    policy: GatePolicy,
    journal: &std::path::Path,
    starts: Option<BTreeMap<StepId, Start>>,
    control: Arc<Control>,
    cancel: CancellationToken,
) -> Run {
    let rb = crate::runbook::load(text, "t.yaml")
        .runbook
        .expect("test runbook loads");
    let plan = crate::runbook::plan::plan(&rb);
    let j = Journal::open(journal, Redactor::new()).unwrap();
    let reader_runs = JournalReader::open_read_only(journal).unwrap().runs().unwrap();
    let run_id = reader_runs
        .last()
        .map_or_else(|| RunId::from("run-1"), |r| r.run_id.clone());
    let emit = Emitter::new(j.writer(), run_id.clone());
    if reader_runs.is_empty() {
        let (steps, maps) = crate::engine::runner::plan_info(&rb, &plan);
        emit.durable(Event::RunStarted {
            run_id: run_id.clone(),
            runbook: crate::engine::event::RunbookInfo {
                name: rb.runbook.clone(),
                version: rb.version.clone(),
                sha256: crate::engine::runner::sha256_hex(text),
                text: text.into(),
            },
            operator: "t".into(),
            host: "h".into(),
            started_at: chrono::Utc::now(),
            freeze_window: None,
            steps,
            maps,
            time_scale: 1000.0,
        })
        .await
        .unwrap();
    }
    let refusals = Arc::new(Refusals::default());
    let operator: Arc<dyn Operator> = match who {
        Who::Headless(a) => Arc::new(HeadlessOperator::new(emit.clone(), a, Arc::clone(&refusals))),
        Who::Interactive(q) => Arc::new(InteractiveOperator::new(emit.clone(), q, cancel.clone())),
    };
    let envs = Envs::build(
        &rb,
        &crate::runbook::ProcessEnv,
        &crate::engine::envs::Target::Live,
        &Redactor::new(),
        &emit,
    )
    .unwrap();
    let starts = starts.unwrap_or_else(|| {
        plan.steps
            .iter()
            .map(|s| (s.id.clone(), Start::Fresh { attempt: 1 }))
            .collect()
    });
    let sched = Scheduler {
        run_id: run_id.clone(),
        run_date: "2026-11-27".into(),
        run_operator: "t".into(),
        runbook: Arc::new(rb),
        runbook_dir: ".".into(),
        work_dir: std::env::temp_dir(),
        plan: Arc::new(plan),
        envs: Arc::new(envs),
        emit,
        clock: Clock::scaled(1000.0),
        cancel,
        operator,
        state: Arc::new(crate::engine::live::LiveState::fixed(
            crate::engine::RunState::default(),
        )),
        executor: fake,
        gate_policy: policy,
        control,
        refusals,
        alerting: None,
    };
    let end = Arc::new(sched).run(starts).await;
    j.close().unwrap();
    let reader = JournalReader::open_read_only(journal).unwrap();
    let v = reader.verify().unwrap();
    assert!(v.is_ok(), "{v:?}");
    let events = reader.events(&run_id).map(|e| e.unwrap().event).collect();
    Run { end, events }
}

/// Headless `--auto-approve`: the runbook's gate re-checks, then a halt.
fn halt() -> GatePolicy {
    GatePolicy::Halt
}

fn tmp() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("j.journal");
    (d, p)
}

fn decisions(events: &[Event], kind: DecisionKind) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::AwaitingOperator { decision, .. } if *decision == kind))
        .count()
}

/// Every StepFinished follows an intent of its step with no other result in between.
fn assert_journal_first(events: &[Event]) {
    let mut open: HashMap<String, bool> = HashMap::new();
    for e in events {
        match e {
            Event::StepIntent { step, .. } => {
                open.insert(step.0.to_string(), true);
            }
            Event::StepFinished { step, outcome, .. } => {
                let was_open = open.insert(step.0.to_string(), false).unwrap_or(false);
                let decided_skip = matches!(outcome, StepOutcome::Skipped { .. });
                assert!(was_open || decided_skip, "{step} finished without an open intent");
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn headless_auto_approve_runs_everything_in_order_within_wave_concurrency() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake::default());
    let r = run_with(
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded));
    assert_journal_first(&r.events);
    assert_eq!(fake.wave_max.load(Ordering::SeqCst), 2, "wave concurrency is 2");
    // The point of no return is asked twice, then the manual approval carries the checklist.
    assert_eq!(decisions(&r.events, DecisionKind::Confirm), 1);
    assert_eq!(decisions(&r.events, DecisionKind::PointOfNoReturn), 1);
    let approved = r.events.iter().any(|e| matches!(e, Event::OperatorDecision { action: OperatorAction::Approve, operator, checklist_done, reason, .. }
        if operator == "robot" && checklist_done.len() == 2 && reason.as_deref() == Some("auto-approved (test)")));
    assert!(approved);
    let order: Vec<String> = fake.calls.lock().unwrap().iter().map(|c| c.0.clone()).collect();
    let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
    assert!(pos("approve") < pos("flaky") && pos("flaky") < pos("w1:a"));
    assert!(pos("w1:c") < pos("w1:gate") && pos("w1:gate") < pos("live"));
}

#[tokio::test]
async fn failing_gate_is_rechecked_as_its_runbook_says_then_halts_past_its_retries() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        fail: HashMap::from([("w1:gate".to_owned(), 2)]),
        ..Fake::default()
    });
    let r = run_with(
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded));
    let rechecks: Vec<(u32, u32)> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::GateRecheck { step, check, of, .. } if step.as_str() == "w1:gate" => Some((*check, *of)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rechecks,
        vec![(1, 3), (2, 3)],
        "the gate's `retries: 3`, journaled before each wait"
    );
    let gate_calls = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.0 == "w1:gate")
        .count();
    assert_eq!(gate_calls, 3);

    let (_d2, j2) = tmp();
    let fake = Arc::new(Fake {
        fail: HashMap::from([("w1:gate".to_owned(), 5)]),
        ..Fake::default()
    });
    let text = RUNBOOK.replace("retries: 3", "retries: 2");
    let r = run_text(
        &text,
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j2,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(&r.end, RunEnd::Halted { step, .. } if step.as_str() == "w1:gate"),
        "{:?}",
        r.end
    );
    let gate_calls = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.0 == "w1:gate")
        .count();
    assert_eq!(gate_calls, 3, "one check and the runbook's 2 re-checks, not 10");
    // The exit code of this end (1) is asserted where exit codes live: app::exit's tests.
    assert!(
        !r.events
            .iter()
            .any(|e| matches!(e, Event::StepIntent { step, .. } if step.as_str() == "live"))
    );
    assert!(
        !r.events.iter().any(|e| matches!(e, Event::RunFinished { .. })),
        "a halted run stays open"
    );
}

#[tokio::test]
async fn headless_without_auto_approve_waits_for_the_manual_step_with_exit_3() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake::default());
    let r = run_with(
        fake,
        Who::Headless(None),
        GatePolicy::Ask,
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    match &r.end {
        RunEnd::Waiting { step, message } => {
            assert_eq!(step.as_ref().map(StepId::as_str), Some("approve"));
            assert!(message.contains("approve"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The exit code of this end (3) is asserted where exit codes live: app::exit's tests.
    assert!(
        !r.events.iter().any(|e| matches!(e, Event::StepFinished { .. })),
        "the attempt stays open"
    );
}

#[tokio::test]
async fn on_failure_continue_goes_on_and_the_run_ends_failed() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        fail: HashMap::from([("flaky".to_owned(), 9)]),
        ..Fake::default()
    });
    let r = run_with(
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    match &r.end {
        RunEnd::Finished(RunOutcome::Failed { message }) => assert!(message.contains("flaky")),
        other => panic!("{other:?}"),
    }
    assert!(fake.calls.lock().unwrap().iter().any(|c| c.0 == "live"));
}

#[tokio::test]
async fn a_failed_halting_step_stops_headless_with_exit_1() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        fail: HashMap::from([("w1:b".to_owned(), 9)]),
        ..Fake::default()
    });
    let r = run_with(
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(&r.end, RunEnd::Halted { step, .. } if step.as_str() == "w1:b"),
        "{:?}",
        r.end
    );
    // The other maps of the wave still finished; nothing after the wave started.
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::StepFinished { step, .. } if step.as_str() == "w1:c"))
    );
    assert!(!fake.calls.lock().unwrap().iter().any(|c| c.0 == "w1:gate"));
}

async fn answer(q: &Questions, cmd: Command) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if q.route(cmd.clone()).is_ok() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing asked for {cmd:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn interactive_decisions_drive_the_run_and_are_journaled_with_names() {
    let (_d, j) = tmp();
    // The gate fails its check and the runbook's 3 re-checks before the operator is asked.
    let fake = Arc::new(Fake {
        fail: HashMap::from([("w1:gate".to_owned(), 4), ("w1:a".to_owned(), 1)]),
        ..Fake::default()
    });
    let q = Arc::new(Questions::default());
    let q2 = Arc::clone(&q);
    let driver = tokio::spawn(async move {
        let mut c = Command::new(OperatorAction::Approve, Some("approve".into()), "alice");
        c.checklist_done = vec!["one".into(), "two".into()];
        answer(&q2, c).await;
        answer(
            &q2,
            Command::new(OperatorAction::Retry, Some("w1:a".into()), "alice"),
        )
        .await;
        // Waive needs a reason: refused without one, accepted with it.
        let bare = Command::new(OperatorAction::Waive, Some("w1:gate".into()), "bob");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while q2.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(q2.route(bare.clone()).is_err());
        answer(&q2, bare.with_reason("counts agree in the source report")).await;
        answer(
            &q2,
            Command::new(OperatorAction::Confirm, Some("live".into()), "carol"),
        )
        .await;
        answer(
            &q2,
            Command::new(OperatorAction::Confirm, Some("live".into()), "carol"),
        )
        .await;
    });
    let r = run_with(
        fake,
        Who::Interactive(q),
        GatePolicy::Ask,
        &j,
        None,
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    driver.await.unwrap();
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded));
    let waived = r.events.iter().any(|e| matches!(e, Event::OperatorDecision { action: OperatorAction::Waive, operator, reason: Some(_), .. } if operator == "bob"));
    assert!(waived);
    assert_eq!(decisions(&r.events, DecisionKind::StepFailed), 1);
    assert_eq!(decisions(&r.events, DecisionKind::GateFailure), 1);
    let asked = r
        .events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::AwaitingOperator {
                    decision: DecisionKind::GateFailure,
                    ..
                }
            )
        })
        .unwrap();
    let rechecks = r.events[..asked]
        .iter()
        .filter(|e| matches!(e, Event::GateRecheck { of: 3, .. }))
        .count();
    assert_eq!(
        rechecks, 3,
        "the console re-checks as the runbook says before it asks"
    );
}

#[tokio::test]
async fn pause_holds_new_steps_and_abort_finishes_the_run_aborted() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake::default());
    let control = Arc::new(Control::default());
    control.set_paused(true);
    let c2 = Arc::clone(&control);
    let f2 = Arc::clone(&fake);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(f2.calls.lock().unwrap().is_empty(), "nothing starts while paused");
        c2.request_abort("test abort".into());
    });
    let r = run_with(
        fake,
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        control,
        CancellationToken::new(),
    )
    .await;
    stopper.await.unwrap();
    assert_eq!(
        r.end,
        RunEnd::Finished(RunOutcome::Aborted {
            reason: "test abort".into()
        })
    );
}

#[tokio::test]
async fn cancel_leaves_the_running_step_in_flight_and_resume_reconciles_it_by_handle() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        hang: vec!["w1:b".into()],
        ..Fake::default()
    });
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let f2 = Arc::clone(&fake);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !f2.calls.lock().unwrap().iter().any(|c| c.0 == "w1:b")
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c2.cancel();
    });
    let r = run_with(
        fake,
        Who::Headless(Some(auto())),
        halt(),
        &j,
        None,
        Arc::default(),
        cancel,
    )
    .await;
    assert_eq!(r.end, RunEnd::Interrupted);
    assert!(
        !r.events
            .iter()
            .any(|e| matches!(e, Event::StepFinished { step, .. } if step.as_str() == "w1:b"))
    );

    // Resume: only unfinished steps run; w1:b is reconciled with its journaled handle.
    let rb = crate::runbook::load(RUNBOOK, "t.yaml").runbook.unwrap();
    let plan = crate::runbook::plan::plan(&rb);
    let reader = JournalReader::open_read_only(&j).unwrap();
    let run_id = reader.runs().unwrap()[0].run_id.clone();
    let envs: Vec<_> = reader.events(&run_id).map(Result::unwrap).collect();
    let starts = Resumable::from_envelopes(&envs).starts(&plan);
    assert!(!starts.contains_key("approve") && !starts.contains_key("flaky"));
    assert!(matches!(
        starts.get("w1:b"),
        Some(Start::Reconcile {
            attempt: 1,
            handle: Some(_)
        })
    ));
    let fake2 = Arc::new(Fake {
        policy: Some(Reconcile::ByHandle),
        ..Fake::default()
    });
    let r = run_with(
        fake2.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        Some(starts),
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded));
    let calls = fake2.calls.lock().unwrap();
    assert!(
        !calls.iter().any(|c| c.0 == "approve" || c.0 == "flaky"),
        "finished steps never re-run"
    );
    let b = calls.iter().find(|c| c.0 == "w1:b").unwrap();
    assert_eq!(b.2, Mode::Reconcile);
    assert_eq!(b.3.as_ref().map(|h| h.id.as_str()), Some("w1:b#1"));
}

#[tokio::test]
async fn an_ambiguous_in_flight_step_is_never_auto_answered() {
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        policy: Some(Reconcile::AskOperator),
        ..Fake::default()
    });
    let mut starts: BTreeMap<StepId, Start> = BTreeMap::new();
    starts.insert(
        "approve".into(),
        Start::Reconcile {
            attempt: 1,
            handle: None,
        },
    );
    let r = run_with(
        fake.clone(),
        Who::Headless(Some(auto())),
        halt(),
        &j,
        Some(starts),
        Arc::default(),
        CancellationToken::new(),
    )
    .await;
    assert!(
        matches!(&r.end, RunEnd::Waiting { step: Some(s), .. } if s.as_str() == "approve"),
        "{:?}",
        r.end
    );
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_gate_with_confirm_waits_for_the_operator_and_a_skipped_failure_lets_the_run_go_on() {
    let text = RUNBOOK
        .replace("gate: { parity: true,", "gate: { confirm: true, parity: true,")
        .replace("        on_failure: continue\n", "");
    let (_d, j) = tmp();
    let fake = Arc::new(Fake {
        fail: HashMap::from([("flaky".to_owned(), 9)]),
        ..Fake::default()
    });
    let q = Arc::new(Questions::default());
    let q2 = Arc::clone(&q);
    let driver = tokio::spawn(async move {
        answer(
            &q2,
            Command::new(OperatorAction::Approve, Some("approve".into()), "alice"),
        )
        .await;
        answer(
            &q2,
            Command::new(OperatorAction::Skip, Some("flaky".into()), "alice").with_reason("known flaky"),
        )
        .await;
        answer(
            &q2,
            Command::new(OperatorAction::Confirm, Some("w1:gate".into()), "bob"),
        )
        .await;
        answer(
            &q2,
            Command::new(OperatorAction::Confirm, Some("live".into()), "bob"),
        )
        .await;
        answer(
            &q2,
            Command::new(OperatorAction::Confirm, Some("live".into()), "bob"),
        )
        .await;
    });
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let watchdog = tokio::spawn(async move {
        let r = driver.await;
        if r.is_err() {
            c2.cancel();
        }
        r
    });
    let r = run_text(
        &text,
        fake,
        Who::Interactive(q),
        GatePolicy::Ask,
        &j,
        None,
        Arc::default(),
        cancel,
    )
    .await;
    watchdog.await.unwrap().unwrap();
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded));
    let skipped = r.events.iter().any(|e| matches!(e, Event::StepFinished { step, outcome: StepOutcome::Skipped { reason }, .. } if step.as_str() == "flaky" && reason == "known flaky"));
    assert!(skipped);
    // The gate's confirmation comes before its result, so the next wave waits for it.
    let pos = |f: &dyn Fn(&Event) -> bool| r.events.iter().position(f).unwrap();
    let confirm = pos(
        &|e| matches!(e, Event::AwaitingOperator { step: Some(s), decision: DecisionKind::Confirm, .. } if s.as_str() == "w1:gate"),
    );
    let done = pos(&|e| matches!(e, Event::StepFinished { step, .. } if step.as_str() == "w1:gate"));
    assert!(confirm < done);
}
