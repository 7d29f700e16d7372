//! One step's lifecycle on its own task: confirmations, intent, execution, result, failure handling.
//!
//! Journal first: the `StepIntent` is durable before the executor runs, and the `StepFinished` is
//! durable before the task reports back (so before the next step can start or the UI can show it).
//! A step that acts on nothing outside this process (a `wait`) has both committed before, fsynced by
//! the next durable event (see `acts_on_nothing`).
//! When the task is cancelled mid-step nothing more is journaled: the intent stays open and resume
//! reconciles it through its handle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{GatePolicy, Scheduler, TaskEnd};
use crate::engine::ctx::{Ask, AskError, Decision, StepCtx};
use crate::engine::event::{DecisionKind, Event, Handle, OperatorAction, StepOutcome};
use crate::engine::exec::{Mode, Reconcile, StepResult};
use crate::runbook::plan::{PlannedStep, PlannedWhat};
use crate::runbook::steps::DefaultTimeout;

/// How a step's task begins.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// A new attempt (confirmations are asked before attempt 1 only).
    Fresh { attempt: u32 },
    /// Resume found this attempt in flight (intent journaled, no result).
    Reconcile { attempt: u32, handle: Option<Handle> },
    /// Resume found this attempt failed with no decision yet: go straight to failure handling.
    AfterFailure { attempt: u32, message: String },
}

enum Next {
    Attempt(Start),
    End(TaskEnd),
}

fn journal_err(e: &impl std::fmt::Display) -> TaskEnd {
    TaskEnd::Broken(format!("the journal refused a write: {e}"))
}

fn ask_err(e: AskError, failing: bool) -> TaskEnd {
    match e {
        // A failure nobody here can decide is a failed run (exit 1); anything else waits (exit 3).
        AskError::NeedsOperator(m) if failing => TaskEnd::Halt(m),
        AskError::NeedsOperator(m) => TaskEnd::Waiting(m),
        AskError::Cancelled => TaskEnd::Cancelled,
        AskError::Journal(e) => journal_err(&e),
    }
}

/// A step that acts on nothing outside this process (a `wait`): its intent and result are committed
/// without waiting for an fsync of their own (a killed process keeps them; the next durable event, at
/// most a batch window later, makes them power-safe). A step with a side effect journals its intent
/// durably before acting, always.
fn acts_on_nothing(step: &PlannedStep) -> bool {
    matches!(
        runbook_step(step).map(|s| &s.kind),
        Some(crate::runbook::StepKind::Wait(_))
    )
}

/// The runbook step behind a planned step (none for wave maps and gates).
fn runbook_step(step: &PlannedStep) -> Option<&crate::runbook::Step> {
    match &step.what {
        PlannedWhat::Step(s) => Some(s),
        _ => None,
    }
}

impl Scheduler {
    pub(super) fn ctx(
        self: &Arc<Self>,
        step: &PlannedStep,
        attempt: u32,
        cancel: &CancellationToken,
    ) -> StepCtx {
        StepCtx {
            run_id: self.run_id.clone(),
            run_date: self.run_date.clone(),
            run_operator: self.run_operator.clone(),
            step: step.clone(),
            runbook: Arc::clone(&self.runbook),
            runbook_dir: self.runbook_dir.clone(),
            work_dir: self.work_dir.clone(),
            envs: Arc::clone(&self.envs),
            emit: self.emit.clone(),
            clock: self.clock,
            cancel: cancel.clone(),
            attempt,
            operator: Arc::clone(&self.operator),
            state: Arc::clone(&self.state),
        }
    }

    fn gate_spec(&self, step: &PlannedStep) -> Option<&crate::runbook::Gate> {
        self.runbook
            .phases
            .iter()
            .find(|p| *p.id == *step.phase)
            .and_then(|p| p.gate.as_ref())
    }

    /// The step's timeout in environment time; `None` for steps that legitimately wait for a
    /// person or a long duration (manual, wait, monitor) unless the runbook sets one.
    fn timeout(&self, step: &PlannedStep) -> Option<Duration> {
        let d = self.runbook.defaults.timeout().as_std();
        match runbook_step(step) {
            Some(s) => match (&s.timeout, s.kind.spec().default_timeout()) {
                (Some(t), _) => Some(t.as_std()),
                (None, DefaultTimeout::Unbounded) => None,
                (None, DefaultTimeout::Runbook) => Some(d),
            },
            None => Some(d),
        }
    }

    async fn ask(
        self: &Arc<Self>,
        step: &PlannedStep,
        kind: DecisionKind,
        prompt: String,
    ) -> Result<Decision, AskError> {
        self.operator
            .ask(Ask {
                step: Some(step.id.clone()),
                kind,
                prompt,
                checklist: Vec::new(),
                deadline: None,
            })
            .await
    }

    async fn finished(
        &self,
        step: &PlannedStep,
        outcome: StepOutcome,
        outputs: BTreeMap<String, String>,
    ) -> Result<(), TaskEnd> {
        let event = Event::StepFinished {
            step: step.id.clone(),
            outcome,
            outputs,
        };
        if acts_on_nothing(step) {
            self.emit.committed(event).await
        } else {
            self.emit.durable(event).await
        }
        .map(|_| ())
        .map_err(|e| journal_err(&e))
    }

    /// Confirmations before attempt 1: `confirm` asks once, `point_of_no_return` twice.
    /// `Ok(None)` to go on, `Ok(Some(end))` when the operator skipped or aborted.
    async fn confirm(self: &Arc<Self>, step: &PlannedStep) -> Result<Option<TaskEnd>, TaskEnd> {
        let confirm = runbook_step(step).is_some_and(|s| s.confirm);
        let title = step.title.clone().unwrap_or_else(|| step.id.0.to_string());
        let mut asks = Vec::new();
        if confirm || step.point_of_no_return {
            asks.push((DecisionKind::Confirm, format!("Start `{}`: {title}?", step.id)));
        }
        if step.point_of_no_return {
            asks.push((
                DecisionKind::PointOfNoReturn,
                format!(
                    "`{}` is a POINT OF NO RETURN: {title}. Confirm again to start it.",
                    step.id
                ),
            ));
        }
        for (kind, prompt) in asks {
            let d = self
                .ask(step, kind, prompt)
                .await
                .map_err(|e| ask_err(e, false))?;
            match d.action {
                OperatorAction::Abort => return Ok(Some(TaskEnd::Abort(abort_reason(&d, step)))),
                OperatorAction::Skip => {
                    let reason = d.reason.unwrap_or_else(|| "skipped by the operator".into());
                    self.finished(step, StepOutcome::Skipped { reason }, BTreeMap::new())
                        .await?;
                    return Ok(Some(TaskEnd::Done { ok: true }));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Journals the intent, then runs the executor under the step's timeout. `None` when cancelled.
    async fn attempt(
        self: &Arc<Self>,
        step: &PlannedStep,
        attempt: u32,
        handle: Option<Handle>,
        mode: Mode,
        cancel: &CancellationToken,
    ) -> Result<Option<StepResult>, TaskEnd> {
        let intent = Event::StepIntent {
            step: step.id.clone(),
            attempt,
            handle: handle.clone(),
        };
        if acts_on_nothing(step) {
            self.emit.committed(intent).await
        } else {
            self.emit.durable(intent).await
        }
        .map_err(|e| journal_err(&e))?;
        let ctx = self.ctx(step, attempt, cancel);
        let run = self.executor.execute(&ctx, handle.as_ref(), mode);
        let timeout = self.timeout(step);
        let result = tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(None),
            r = run => r,
            () = async {
                match timeout {
                    Some(t) => tokio::time::sleep(real_timeout(&self.clock, t)).await,
                    None => std::future::pending().await,
                }
            } => StepResult {
                outcome: StepOutcome::Failed {
                    message: format!(
                        "timed out after {}{}",
                        crate::runbook::duration::Duration::from_secs(timeout.map_or(0, |t| t.as_secs())),
                        self.last_call(step).map(|c| format!(" (last call {c})")).unwrap_or_default()
                    ),
                    reason: None,
                },
                outputs: BTreeMap::new(),
                // A handle step that ran out of time may still be running out there.
                in_doubt: self.executor.reconcile_policy(step) == Reconcile::ByHandle,
            },
        };
        if cancel.is_cancelled() {
            return Ok(None);
        }
        Ok(Some(result))
    }

    /// The step's latest request as `env: METHOD path: outcome`, so a timeout names where it was.
    fn last_call(&self, step: &PlannedStep) -> Option<String> {
        let st = self.state.read();
        let r = st.step(step.id.as_str())?.requests.back()?;
        let outcome = match (&r.error, r.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no answer".into(),
        };
        Some(format!("{}: {} {}: {outcome}", r.env, r.method, r.path))
    }

    /// The failed gate's numbers, from the latest `GateEvaluated` of this step.
    fn gate_numbers(&self, step: &PlannedStep) -> String {
        let st = self.state.read();
        let Some(g) = st.gates.iter().rev().find(|g| g.step == step.id) else {
            return String::new();
        };
        g.failures
            .iter()
            .map(|f| {
                let map = match &f.company {
                    Some(c) => format!("{}/{c}", f.map),
                    None => f.map.clone(),
                };
                format!(
                    "{map}: source {} target {} (allowed diff {}), errors {}",
                    f.source, f.target, f.allowed, f.errors
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A gate's automatic re-checks, as its phase's `gate:` says: `retries` (built-in 0) every
    /// `retry_every` (built-in: the defaults' `poll`), in environment time.
    fn gate_rechecks(&self, step: &PlannedStep) -> (u32, Duration) {
        let gate = self
            .runbook
            .phases
            .iter()
            .find(|p| *p.id == *step.phase)
            .and_then(|p| p.gate.as_ref());
        let retries = gate.and_then(|g| g.retries).unwrap_or(0);
        let every = gate
            .and_then(|g| g.retry_every.clone())
            .unwrap_or_else(|| self.runbook.defaults.poll())
            .as_std();
        (retries, every)
    }

    /// After a failed attempt: decide the next move.
    async fn on_failed(
        self: &Arc<Self>,
        step: &PlannedStep,
        attempt: u32,
        message: &str,
        rechecks: &mut u32,
        cancel: &CancellationToken,
    ) -> Next {
        if matches!(step.what, PlannedWhat::Gate { .. }) {
            let numbers = self.gate_numbers(step);
            let detail = if numbers.is_empty() {
                message.to_owned()
            } else {
                numbers
            };
            let (retries, every) = self.gate_rechecks(step);
            if *rechecks < retries {
                *rechecks += 1;
                let at = chrono::Utc::now()
                    + chrono::Duration::from_std(self.clock.to_real(every)).unwrap_or_default();
                let planned = self
                    .emit
                    .durable(Event::GateRecheck {
                        step: step.id.clone(),
                        check: *rechecks,
                        of: retries,
                        at,
                    })
                    .await;
                if let Err(e) = planned {
                    return Next::End(journal_err(&e));
                }
                if !self.clock.sleep(every, cancel).await {
                    return Next::End(TaskEnd::Cancelled);
                }
                return Next::Attempt(Start::Fresh { attempt: attempt + 1 });
            }
            return match &self.gate_policy {
                GatePolicy::Halt => Next::End(TaskEnd::Halt(format!(
                    "gate `{}` still failing after {retries} automatic re-check(s) (the gate's `retries`): {detail}",
                    step.id
                ))),
                GatePolicy::Ask => {
                    let prompt = format!(
                        "Gate `{}` failed: {detail}. Retry, waive with a reason, or abort.",
                        step.id
                    );
                    match self.ask(step, DecisionKind::GateFailure, prompt).await {
                        Err(e) => Next::End(ask_err(e, true)),
                        Ok(d) => match d.action {
                            OperatorAction::Retry => Next::Attempt(Start::Fresh { attempt: attempt + 1 }),
                            OperatorAction::Waive => Next::End(TaskEnd::Done { ok: true }),
                            _ => Next::End(TaskEnd::Abort(abort_reason(&d, step))),
                        },
                    }
                }
            };
        }
        let on_failure = runbook_step(step).and_then(|s| s.on_failure).unwrap_or_default();
        if on_failure == crate::runbook::OnFailure::Continue {
            return Next::End(TaskEnd::Done { ok: false });
        }
        let prompt = format!(
            "`{}` failed: {message}. Retry, skip with a reason, or abort.",
            step.id
        );
        match self.ask(step, DecisionKind::StepFailed, prompt).await {
            Err(AskError::NeedsOperator(_)) => {
                Next::End(TaskEnd::Halt(format!("step `{}` failed: {message}", step.id)))
            }
            Err(e) => Next::End(ask_err(e, true)),
            Ok(d) => match d.action {
                OperatorAction::Retry => Next::Attempt(Start::Fresh { attempt: attempt + 1 }),
                OperatorAction::Skip => {
                    let reason = d.reason.unwrap_or_else(|| "skipped by the operator".into());
                    match self
                        .finished(step, StepOutcome::Skipped { reason }, BTreeMap::new())
                        .await
                    {
                        Ok(()) => Next::End(TaskEnd::Done { ok: true }),
                        Err(end) => Next::End(end),
                    }
                }
                _ => Next::End(TaskEnd::Abort(abort_reason(&d, step))),
            },
        }
    }

    /// A failure on the way to the environment ([`StepResult::in_doubt`]): the attempt stays open
    /// (no `StepFinished`), so nothing is marked done or failed that may have happened. Retry
    /// reconciles the same attempt through its handle; headless halts, and `resume` reconciles.
    async fn in_doubt(self: &Arc<Self>, step: &PlannedStep, attempt: u32, message: &str) -> Next {
        let prompt = match nothing_happened(self.executor.reconcile_policy(step), message) {
            Some(why) => format!(
                "`{}` could not reach or understand its environment: {message}. {why}: Retry runs it again, \
                 or skip it with a reason, or abort.",
                step.id
            ),
            None => format!(
                "`{}` could not reach or understand its environment: {message}. Whether its operation happened is unknown: \
                 Retry checks it through its handle and carries on (never starting it twice), or skip it with a reason, or abort.",
                step.id
            ),
        };
        match self.ask(step, DecisionKind::StepFailed, prompt).await {
            Err(AskError::NeedsOperator(_)) => Next::End(TaskEnd::Halt(format!(
                "step `{}` stopped: {message} (not marked done; `cutover resume` checks it through its handle)",
                step.id
            ))),
            Err(e) => Next::End(ask_err(e, true)),
            Ok(d) => match d.action {
                OperatorAction::Retry => Next::Attempt(Start::Reconcile {
                    attempt,
                    handle: None,
                }),
                OperatorAction::Skip => {
                    let reason = d.reason.unwrap_or_else(|| "skipped by the operator".into());
                    match self
                        .finished(step, StepOutcome::Skipped { reason }, BTreeMap::new())
                        .await
                    {
                        Ok(()) => Next::End(TaskEnd::Done { ok: true }),
                        Err(end) => Next::End(end),
                    }
                }
                _ => Next::End(TaskEnd::Abort(abort_reason(&d, step))),
            },
        }
    }

    /// An in-flight step with no safe way to check it: the operator decides.
    async fn ambiguous(self: &Arc<Self>, step: &PlannedStep, attempt: u32) -> Next {
        let prompt = format!(
            "`{}` (attempt {attempt}) was in flight when the last process stopped and cannot be checked safely: \
             find out whether it ran, then approve it as done, retry it, or skip it with a reason.",
            step.id
        );
        match self.ask(step, DecisionKind::AmbiguousInFlight, prompt).await {
            Err(e) => Next::End(ask_err(e, false)),
            Ok(d) => match d.action {
                OperatorAction::Retry => Next::Attempt(Start::Fresh { attempt: attempt + 1 }),
                OperatorAction::Approve | OperatorAction::Skip => {
                    let outcome = if d.action == OperatorAction::Skip {
                        StepOutcome::Skipped {
                            reason: d.reason.unwrap_or_else(|| "skipped by the operator".into()),
                        }
                    } else {
                        StepOutcome::Succeeded
                    };
                    match self.finished(step, outcome, BTreeMap::new()).await {
                        Ok(()) => Next::End(TaskEnd::Done { ok: true }),
                        Err(end) => Next::End(end),
                    }
                }
                _ => Next::End(TaskEnd::Abort(abort_reason(&d, step))),
            },
        }
    }
}

/// The real time a step may take: its timeout in environment time, but never less than the
/// timeout itself capped at two minutes. Against an accelerated simulator requests still take real
/// time (a 100-record sample is 100 real round trips), so a 30-minute timeout at 600x must not
/// fire after 3 real seconds; at real time (scale 1) this is exactly the timeout.
pub(super) fn real_timeout(clock: &crate::engine::ctx::Clock, t: Duration) -> Duration {
    clock.to_real(t).max(t.min(Duration::from_secs(120)))
}

fn abort_reason(d: &Decision, step: &PlannedStep) -> String {
    match &d.reason {
        Some(r) => format!("aborted by {} at `{}`: {r}", d.operator, step.id),
        None => format!("aborted by {} at `{}`", d.operator, step.id),
    }
}

/// Runs one step to a resolution.
pub(super) async fn drive(
    s: Arc<Scheduler>,
    step: PlannedStep,
    start: Start,
    cancel: CancellationToken,
) -> TaskEnd {
    let mut next = start;
    let mut rechecks = 0u32;
    loop {
        let (attempt, result) = match next {
            Start::Fresh { attempt } => {
                if attempt <= 1 {
                    match s.confirm(&step).await {
                        Ok(None) => {}
                        Ok(Some(end)) | Err(end) => return end,
                    }
                }
                let handle = s.executor.handle_for(&step, &s.run_id, attempt);
                match s.attempt(&step, attempt, handle, Mode::Fresh, &cancel).await {
                    Ok(Some(r)) => (attempt, r),
                    Ok(None) => return TaskEnd::Cancelled,
                    Err(end) => return end,
                }
            }
            Start::Reconcile { attempt, handle } => {
                let (handle, mode) = match s.executor.reconcile_policy(&step) {
                    Reconcile::Rerun => (s.executor.handle_for(&step, &s.run_id, attempt), Mode::Fresh),
                    Reconcile::ByHandle => (
                        handle.or_else(|| s.executor.handle_for(&step, &s.run_id, attempt)),
                        Mode::Reconcile,
                    ),
                    Reconcile::AskOperator => match s.ambiguous(&step, attempt).await {
                        Next::Attempt(st) => {
                            next = st;
                            continue;
                        }
                        Next::End(end) => return end,
                    },
                };
                match s.attempt(&step, attempt, handle, mode, &cancel).await {
                    Ok(Some(r)) => (attempt, r),
                    Ok(None) => return TaskEnd::Cancelled,
                    Err(end) => return end,
                }
            }
            Start::AfterFailure { attempt, message } => {
                match s
                    .on_failed(&step, attempt, &message, &mut rechecks, &cancel)
                    .await
                {
                    Next::Attempt(st) => {
                        next = st;
                        continue;
                    }
                    Next::End(end) => return end,
                }
            }
        };
        // The executor failed because headless mode refused its question: wait for a person
        // (exit 3) and leave the attempt open, so the next process asks again.
        if matches!(result.outcome, StepOutcome::Failed { .. })
            && let Some(why) = s.refusals.take(&step.id)
        {
            return TaskEnd::Waiting(why);
        }
        if result.in_doubt
            && let StepOutcome::Failed { message, .. } = &result.outcome
        {
            match s.in_doubt(&step, attempt, message).await {
                Next::Attempt(st) => {
                    next = st;
                    continue;
                }
                Next::End(end) => return end,
            }
        }
        // A passed gate with `confirm: true` waits for the operator before the next wave.
        if result.outcome == StepOutcome::Succeeded
            && matches!(step.what, PlannedWhat::Gate { .. })
            && s.gate_spec(&step).is_some_and(|g| g.confirm)
        {
            let prompt = format!("Gate `{}` passed. Start the next wave?", step.id);
            match s.ask(&step, DecisionKind::Confirm, prompt).await {
                Err(e) => return ask_err(e, false),
                Ok(d) if d.action == OperatorAction::Abort => return TaskEnd::Abort(abort_reason(&d, &step)),
                Ok(_) => {}
            }
        }
        if let Err(end) = s.finished(&step, result.outcome.clone(), result.outputs).await {
            return end;
        }
        match result.outcome {
            StepOutcome::Succeeded | StepOutcome::Skipped { .. } => return TaskEnd::Done { ok: true },
            StepOutcome::Failed { message, reason } => {
                let message = StepOutcome::failure_text(&message, reason.as_deref());
                match s
                    .on_failed(&step, attempt, &message, &mut rechecks, &cancel)
                    .await
                {
                    Next::Attempt(st) => next = st,
                    Next::End(end) => return end,
                }
            }
        }
    }
}

/// Why nothing can have happened on the service, when that is certain: a step that only reads, credentials
/// refused before any work, or a request that never left this machine (the name did not resolve, the
/// connection was refused). `None`: the operation may have happened.
fn nothing_happened(policy: Reconcile, message: &str) -> Option<&'static str> {
    if policy == Reconcile::Rerun {
        return Some("It only reads, so nothing changed on the service");
    }
    let m = message.to_ascii_lowercase();
    if m.contains("authentication failed") {
        return Some("Its credentials were refused, so nothing was done");
    }
    let never_sent = [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "connection refused",
    ];
    if never_sent.iter().any(|p| m.contains(p)) {
        return Some("The request never reached the service, so nothing was done");
    }
    None
}

#[cfg(test)]
mod wording_tests {
    use super::*;

    #[test]
    fn unknown_is_said_only_where_it_can_be_true() {
        assert!(nothing_happened(Reconcile::Rerun, "fno: count: timed out after 30000 ms").is_some());
        assert!(
            nothing_happened(
                Reconcile::ByHandle,
                "notify: still failing after 3 attempts: error sending request: dns error: failed to lookup address information"
            )
            .is_some()
        );
        assert!(
            nothing_happened(
                Reconcile::ByHandle,
                "fno: start: authentication failed: AADSTS7000222"
            )
            .is_some()
        );
        assert_eq!(
            nothing_happened(Reconcile::ByHandle, "fno: dmf.import: timed out after 30000 ms"),
            None,
            "a timeout after sending may have taken effect"
        );
    }
}
