//! One test per event kind's effect on the reducer, plus determinism and the ETA.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::model::event::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn step(id: &str, kind: &str, wave: Option<&str>, map: Option<&str>) -> std::sync::Arc<PlannedStepInfo> {
    std::sync::Arc::new(PlannedStepInfo {
        id: id.into(),
        phase: "p1".into(),
        wave: wave.map(Into::into),
        kind: kind.to_owned().into(),
        title: id.into(),
        needs: vec![],
        point_of_no_return: false,
        confirm: false,
        map: map.map(Into::into),
        estimate_ms: None,
        estimate_from: None,
    })
}

struct Feed {
    state: RunState,
    seq: u64,
    at: DateTime<Utc>,
}

impl Feed {
    fn new() -> Self {
        let mut f = Feed {
            state: RunState::default(),
            seq: 0,
            at: t0(),
        };
        f.push(
            0,
            Event::RunStarted {
                run_id: "r1".into(),
                runbook: RunbookInfo {
                    name: "demo".into(),
                    version: "1.0.0".into(),
                    sha256: "ab".into(),
                    text: "x".into(),
                },
                operator: "alice".into(),
                host: "laptop".into(),
                started_at: t0(),
                freeze_window: None,
                steps: vec![
                    step("approve", "manual", None, None),
                    step("import", "dmf.import", None, None),
                    step("w1.customers", "dualwrite.run", Some("wave-1"), Some("customers")),
                    step("w1.gate", "gate", Some("wave-1"), None),
                ],
                maps: vec![MapInfo {
                    id: "customers".into(),
                    companies: vec![],
                    tolerance: Tolerance::Count(2),
                }],
                time_scale: 1.0,
            },
        );
        f
    }

    fn push(&mut self, after_secs: i64, event: Event) -> Envelope {
        self.seq += 1;
        self.at += Duration::seconds(after_secs);
        let env = Envelope {
            id: i64::try_from(self.seq).unwrap(),
            seq: self.seq,
            at: self.at,
            run_id: "r1".into(),
            event,
        };
        self.state.apply(&env);
        env
    }

    fn status(&self, id: &str) -> StepStatus {
        self.state.step(id).unwrap().status.clone()
    }
}

#[test]
fn run_started_lays_out_header_and_steps() {
    let f = Feed::new();
    assert_eq!(f.state.header.runbook, "demo");
    assert_eq!(f.state.header.operators, ["alice"]);
    assert_eq!(f.state.steps.len(), 4);
    assert!(
        f.state
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Pending && s.planned)
    );
}

#[test]
fn intent_progress_finish_track_status_attempts_duration_and_phase() {
    let mut f = Feed::new();
    f.push(
        10,
        Event::StepIntent {
            step: "w1.customers".into(),
            attempt: 1,
            handle: None,
        },
    );
    assert!(matches!(
        f.status("w1.customers"),
        StepStatus::Running { attempt: 1, .. }
    ));
    assert_eq!(f.state.header.wave.as_deref(), Some("wave-1"));
    f.push(
        5,
        Event::StepProgress {
            step: "w1.customers".into(),
            done: 50,
            total: Some(100),
            note: None,
        },
    );
    assert_eq!(
        f.state
            .step("w1.customers")
            .unwrap()
            .progress
            .as_ref()
            .unwrap()
            .done,
        50
    );
    let outputs = BTreeMap::from([("rows".to_string(), "100".to_string())]);
    f.push(
        25,
        Event::StepFinished {
            step: "w1.customers".into(),
            outcome: StepOutcome::Succeeded,
            outputs,
        },
    );
    let s = f.state.step("w1.customers").unwrap();
    assert_eq!(s.status, StepStatus::Succeeded);
    assert_eq!(s.duration_ms, Some(30_000));
    assert_eq!(s.outputs["rows"], "100");
    assert_eq!(f.state.header.elapsed_ms, 40_000);
}

#[test]
fn intent_keeps_the_handle_and_max_attempt() {
    let mut f = Feed::new();
    let handle = Handle {
        kind: "dmf.import".into(),
        id: "exec-1".into(),
    };
    f.push(
        1,
        Event::StepIntent {
            step: "import".into(),
            attempt: 2,
            handle: Some(handle.clone()),
        },
    );
    f.push(
        1,
        Event::StepIntent {
            step: "import".into(),
            attempt: 1,
            handle: None,
        },
    );
    let s = f.state.step("import").unwrap();
    assert_eq!(s.attempts, 2);
    assert_eq!(s.handle.as_ref(), Some(&handle));
}

#[test]
fn requests_are_bounded_per_step_with_exact_counts() {
    let mut f = Feed::new();
    for i in 0..(REQUESTS_PER_STEP + 10) {
        let status = if i == 0 { Some(503) } else { Some(200) };
        f.push(
            0,
            Event::Request {
                step: Some("import".into()),
                env: "fno".into(),
                method: "GET".into(),
                path: format!("/data/{i}"),
                status,
                duration_ms: 3,
                error: None,
            },
        );
    }
    f.push(
        0,
        Event::Request {
            step: None,
            env: "dv".into(),
            method: "GET".into(),
            path: "/".into(),
            status: None,
            duration_ms: 1,
            error: Some("reset".into()),
        },
    );
    let s = f.state.step("import").unwrap();
    assert_eq!(s.requests.len(), REQUESTS_PER_STEP);
    assert_eq!(s.request_count, REQUESTS_PER_STEP as u64 + 10);
    assert_eq!(
        s.requests.back().unwrap().path,
        format!("/data/{}", REQUESTS_PER_STEP + 9)
    );
    assert_eq!(f.state.requests_total, REQUESTS_PER_STEP as u64 + 11);
    assert_eq!(f.state.requests_failed, 2);
    assert_eq!(f.state.unattached_requests.len(), 1);
}

#[test]
fn failure_then_retry_then_skip() {
    let mut f = Feed::new();
    f.push(
        1,
        Event::StepIntent {
            step: "import".into(),
            attempt: 1,
            handle: None,
        },
    );
    f.push(
        1,
        Event::StepFinished {
            step: "import".into(),
            outcome: StepOutcome::Failed {
                message: "bad".into(),
                reason: None,
            },
            outputs: BTreeMap::new(),
        },
    );
    f.push(
        0,
        Event::AwaitingOperator {
            step: Some("import".into()),
            decision: DecisionKind::StepFailed,
            prompt: "retry?".into(),
            checklist: vec![],
            deadline: None,
        },
    );
    assert_eq!(
        f.status("import"),
        StepStatus::Failed {
            message: "bad".into(),
            reason: None
        }
    );
    assert_eq!(f.state.pending.len(), 1);
    f.push(
        5,
        Event::OperatorDecision {
            step: Some("import".into()),
            action: OperatorAction::Retry,
            operator: "bob".into(),
            reason: None,
            checklist_done: vec![],
            identity: None,
        },
    );
    assert_eq!(f.status("import"), StepStatus::Pending);
    assert!(f.state.pending.is_empty());
    assert_eq!(f.state.header.operators, ["alice", "bob"]);
    f.push(
        1,
        Event::OperatorDecision {
            step: Some("import".into()),
            action: OperatorAction::Skip,
            operator: "bob".into(),
            reason: Some("done by hand".into()),
            checklist_done: vec![],
            identity: None,
        },
    );
    assert_eq!(
        f.status("import"),
        StepStatus::Skipped {
            reason: "done by hand".into()
        }
    );
    assert_eq!(f.state.decisions_total, 2);
}

#[test]
fn manual_step_waits_then_approval_clears_the_decision() {
    let mut f = Feed::new();
    let deadline = Some(t0() + Duration::hours(1));
    f.push(
        1,
        Event::AwaitingOperator {
            step: Some("approve".into()),
            decision: DecisionKind::ApproveManual,
            prompt: "ok?".into(),
            checklist: vec!["a".into()],
            deadline,
        },
    );
    assert!(matches!(
        f.status("approve"),
        StepStatus::AwaitingOperator {
            decision: DecisionKind::ApproveManual,
            ..
        }
    ));
    assert_eq!(f.state.pending[0].deadline, deadline);
    f.push(
        1,
        Event::OperatorDecision {
            step: Some("approve".into()),
            action: OperatorAction::Approve,
            operator: "alice".into(),
            reason: None,
            checklist_done: vec!["a".into()],
            identity: None,
        },
    );
    assert_eq!(f.status("approve"), StepStatus::Pending);
    assert!(f.state.pending.is_empty());
}

#[test]
fn gate_failure_waived_with_reason() {
    let mut f = Feed::new();
    let failure = GateFailure {
        map: "customers".into(),
        company: None,
        source: 10,
        target: 5,
        allowed: 2,
        errors: 0,
    };
    f.push(
        1,
        Event::GateEvaluated {
            step: "w1.gate".into(),
            wave: Some("wave-1".into()),
            passed: false,
            failures: vec![failure],
        },
    );
    assert!(matches!(f.status("w1.gate"), StepStatus::Failed { .. }));
    assert_eq!(f.state.gates.len(), 1);
    f.push(
        0,
        Event::AwaitingOperator {
            step: Some("w1.gate".into()),
            decision: DecisionKind::GateFailure,
            prompt: "waive?".into(),
            checklist: vec![],
            deadline: None,
        },
    );
    f.push(
        1,
        Event::OperatorDecision {
            step: Some("w1.gate".into()),
            action: OperatorAction::Waive,
            operator: "alice".into(),
            reason: Some("known drift".into()),
            checklist_done: vec![],
            identity: None,
        },
    );
    assert_eq!(
        f.status("w1.gate"),
        StepStatus::Waived {
            reason: Some("known drift".into())
        }
    );
    assert!(f.state.pending.is_empty());
}

#[test]
fn pause_resume_abort_and_finish() {
    let mut f = Feed::new();
    let decide = |action| Event::OperatorDecision {
        step: None,
        action,
        operator: "alice".into(),
        reason: None,
        checklist_done: vec![],
        identity: None,
    };
    f.push(1, decide(OperatorAction::Pause));
    assert!(f.state.paused);
    f.push(1, decide(OperatorAction::Resume));
    assert!(!f.state.paused);
    f.push(
        0,
        Event::AwaitingOperator {
            step: None,
            decision: DecisionKind::AmbiguousInFlight,
            prompt: "?".into(),
            checklist: vec![],
            deadline: None,
        },
    );
    f.push(1, decide(OperatorAction::Abort));
    assert!(f.state.pending.is_empty());
    f.push(
        1,
        Event::RunFinished {
            outcome: RunOutcome::Aborted {
                reason: "stop".into(),
            },
        },
    );
    assert_eq!(
        f.state.header.outcome,
        Some(RunOutcome::Aborted {
            reason: "stop".into()
        })
    );
    assert_eq!(f.state.eta().remaining_steps, 0);
}

#[test]
fn parity_samples_use_the_map_tolerance() {
    let mut f = Feed::new();
    f.push(
        1,
        Event::ParitySample {
            step: None,
            map: "customers".into(),
            company: Some("USMF".into()),
            source: 100,
            target: 98,
        },
    );
    f.push(
        1,
        Event::ParitySample {
            step: None,
            map: "unknown".into(),
            company: None,
            source: 100,
            target: 99,
        },
    );
    let k = |m: &str, c: Option<&str>| ParityKey {
        map: m.into(),
        company: c.map(Into::into),
    };
    assert_eq!(
        f.state.parity.rows[&k("customers", Some("USMF"))].status,
        ParityStatus::Within
    );
    assert_eq!(
        f.state.parity.rows[&k("unknown", None)].status,
        ParityStatus::Drift
    );
}

#[test]
fn error_entries_and_counts_feed_the_queue() {
    let mut f = Feed::new();
    let e = ErrorEntry {
        id: "1".into(),
        at: t0(),
        map: "customers".into(),
        key: "C1".into(),
        category: "lookup".into(),
        message: "m".into(),
    };
    f.push(
        1,
        Event::ErrorEntries {
            map: "customers".into(),
            entries: vec![e.clone(), ErrorEntry { id: "2".into(), ..e }],
            source: None,
        },
    );
    assert_eq!(f.state.errors.seen_total, 2);
    assert_eq!(f.state.errors.newest[0].id, "2");
    f.push(
        1,
        Event::ErrorCounts {
            map: "customers".into(),
            by_category: BTreeMap::from([("lookup".to_string(), 5)]),
            source: None,
            unavailable: None,
            present: None,
        },
    );
    assert_eq!(f.state.errors.total_for_map("customers"), 5);
}

#[test]
fn alerts_logs_installs_resume_and_lease_takeover() {
    let mut f = Feed::new();
    f.push(
        1,
        Event::Alert {
            severity: Severity::Warning,
            message: "drift".into(),
            map: Some("customers".into()),
            subject: None,
        },
    );
    f.push(
        1,
        Event::Log {
            level: LogLevel::Info,
            message: "hello".into(),
        },
    );
    f.push(
        1,
        Event::InstallRecord {
            step: "import".into(),
            package: "p.zip".into(),
            version: "1".into(),
            sha256: "ff".into(),
            execution_id: "e1".into(),
            result: "Succeeded".into(),
            environment: String::new(),
            record_count: None,
        },
    );
    f.push(
        1,
        Event::RunResumed {
            operator: "carol".into(),
            host: "desk".into(),
            accepted_changed_runbook: true,
        },
    );
    f.push(
        1,
        Event::LeaseTakenOver {
            previous_holder: "alice".into(),
            previous_host: "laptop".into(),
            previous_pid: 1,
            previous_heartbeat_at: t0(),
            holder: "dave".into(),
            host: "desk2".into(),
            pid: 2,
        },
    );
    assert_eq!(f.state.alerts_total, 1);
    assert_eq!(f.state.logs.back().unwrap().message, "hello");
    assert_eq!(
        f.state
            .step("import")
            .unwrap()
            .install
            .as_ref()
            .unwrap()
            .execution_id,
        "e1"
    );
    assert_eq!(f.state.installs.len(), 1);
    assert_eq!(f.state.header.resumes, 1);
    assert!(f.state.header.accepted_changed_runbook);
    assert_eq!(f.state.header.operators, ["alice", "carol", "dave"]);
    assert_eq!(f.state.header.lease_takeovers, 1);
}

#[test]
fn unknown_steps_become_unplanned_rows_and_other_runs_are_ignored() {
    let mut f = Feed::new();
    f.push(
        1,
        Event::StepIntent {
            step: "extra".into(),
            attempt: 1,
            handle: None,
        },
    );
    assert!(!f.state.step("extra").unwrap().planned);
    let before = f.state.clone();
    let foreign = Envelope {
        id: 99,
        seq: 99,
        at: t0(),
        run_id: "other".into(),
        event: Event::Log {
            level: LogLevel::Info,
            message: "x".into(),
        },
    };
    f.state.apply(&foreign);
    assert_eq!(f.state, before);
}

mod more;
