//! The two [`Operator`]s: headless (auto-approve or halt) and interactive (commands from the console).
//!
//! Both journal `AwaitingOperator` durably before waiting and the `OperatorDecision` durably before
//! returning it, so a decision the engine acts on is always in the journal first.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::engine::ctx::{Ask, AskError, AskFuture, Decision, Emitter, Operator};
use crate::engine::driver::Command;
use crate::engine::event::{DecisionKind, Event, LogLevel, OperatorAction};

use super::approvals::Approver;

/// Journals the question.
async fn journal_ask(emit: &Emitter, ask: &Ask) -> Result<(), AskError> {
    emit.durable(Event::AwaitingOperator {
        step: ask.step.clone(),
        decision: ask.kind,
        prompt: ask.prompt.clone(),
        checklist: ask.checklist.clone(),
        deadline: ask.deadline,
    })
    .await?;
    Ok(())
}

/// Journals the answer and hands it back.
async fn journal_decision(emit: &Emitter, ask: &Ask, d: Decision) -> Result<Decision, AskError> {
    emit.durable(Event::OperatorDecision {
        step: ask.step.clone(),
        action: d.action,
        operator: d.operator.clone(),
        reason: d.reason.clone(),
        checklist_done: d.checklist_done.clone(),
        identity: d.identity.clone(),
    })
    .await?;
    Ok(d)
}

/// What a question is, in words (for exit-3 messages and logs).
pub fn describe(ask: &Ask) -> String {
    let what = match ask.kind {
        DecisionKind::ApproveManual => "approval of a manual step",
        DecisionKind::Confirm => "confirmation before it starts",
        DecisionKind::PointOfNoReturn => "the second confirmation of a point of no return",
        DecisionKind::GateFailure => "a decision on a failed gate (retry, waive or abort)",
        DecisionKind::StepFailed => "a decision on a failed step (retry, skip or abort)",
        DecisionKind::AmbiguousInFlight => {
            "a decision on a step that was in flight when the last process stopped and cannot be checked safely"
        }
    };
    let step = ask
        .step
        .as_ref()
        .map_or_else(|| "the run".to_owned(), |s| format!("step `{s}`"));
    let prompt = ask.prompt.lines().next().unwrap_or("");
    if prompt.is_empty() {
        format!("{step} waits for {what}")
    } else {
        format!("{step} waits for {what}: {prompt}")
    }
}

/// Headless auto-approval: who is journaled as deciding, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApprove {
    pub operator: String,
    /// E.g. "auto-approved (headless demo)".
    pub reason: String,
}

/// Questions headless mode refused, by step: an executor that asked (a manual step) reports a
/// plain failure, and the scheduler turns it into "waiting for an operator" (exit 3) instead.
#[derive(Default)]
pub struct Refusals {
    by_step: Mutex<Vec<(Option<crate::engine::StepId>, String)>>,
}

impl Refusals {
    fn record(&self, step: Option<crate::engine::StepId>, why: String) {
        self.by_step
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((step, why));
    }

    /// The refusal recorded for `step`, if any (removed).
    pub fn take(&self, step: &crate::engine::StepId) -> Option<String> {
        let mut g = self.by_step.lock().unwrap_or_else(PoisonError::into_inner);
        let i = g.iter().position(|(s, _)| s.as_ref() == Some(step))?;
        Some(g.remove(i).1)
    }
}

/// Headless: with auto-approval, approves manual steps and confirms (points of no return too);
/// never answers a failed step, a failed gate or an ambiguous in-flight step. Without it every
/// question is [`AskError::NeedsOperator`].
pub struct HeadlessOperator {
    emit: Emitter,
    auto: Option<AutoApprove>,
    refusals: Arc<Refusals>,
    approver: Option<Arc<Approver>>,
}

impl HeadlessOperator {
    pub fn new(emit: Emitter, auto: Option<AutoApprove>, refusals: Arc<Refusals>) -> Self {
        Self {
            emit,
            auto,
            refusals,
            approver: None,
        }
    }

    /// Decisions carry the signed-in identity and obey the runbook's `approvals`.
    #[must_use]
    pub fn with_approver(mut self, approver: Option<Arc<Approver>>) -> Self {
        self.approver = approver;
        self
    }

    fn refuse(&self, ask: &Ask) -> AskError {
        let why = describe(ask);
        self.refusals.record(ask.step.clone(), why.clone());
        AskError::NeedsOperator(why)
    }
}

impl Operator for HeadlessOperator {
    fn ask(&self, ask: Ask) -> AskFuture<'_> {
        Box::pin(async move {
            journal_ask(&self.emit, &ask).await?;
            let action = match (&self.auto, ask.kind) {
                (Some(_), DecisionKind::ApproveManual) => OperatorAction::Approve,
                (Some(_), DecisionKind::Confirm | DecisionKind::PointOfNoReturn) => OperatorAction::Confirm,
                _ => return Err(self.refuse(&ask)),
            };
            let Some(auto) = &self.auto else {
                return Err(self.refuse(&ask));
            };
            let mut d = Decision {
                action,
                operator: auto.operator.clone(),
                reason: Some(auto.reason.clone()),
                checklist_done: ask.checklist.clone(),
                identity: None,
            };
            if let Some(ap) = &self.approver
                && let Err(why) = ap.apply(&self.emit, &ask, &mut d).await
            {
                let why = format!("{}; {why}", describe(&ask));
                self.refusals.record(ask.step.clone(), why.clone());
                return Err(AskError::NeedsOperator(why));
            }
            journal_decision(&self.emit, &ask, d).await
        })
    }
}

/// The actions that answer each kind of question.
pub fn allowed(kind: DecisionKind, action: OperatorAction) -> bool {
    use OperatorAction as A;
    match kind {
        DecisionKind::ApproveManual => matches!(action, A::Approve | A::Skip | A::Abort),
        DecisionKind::Confirm | DecisionKind::PointOfNoReturn => {
            matches!(action, A::Confirm | A::Approve | A::Skip | A::Abort)
        }
        DecisionKind::GateFailure => matches!(action, A::Retry | A::Waive | A::Abort),
        DecisionKind::StepFailed => matches!(action, A::Retry | A::Skip | A::Abort),
        DecisionKind::AmbiguousInFlight => matches!(action, A::Retry | A::Skip | A::Approve | A::Abort),
    }
}

struct Open {
    id: u64,
    step: Option<crate::engine::StepId>,
    kind: DecisionKind,
    tx: oneshot::Sender<Command>,
}

/// The open questions of an interactive run, answered by [`Command`]s routed here.
#[derive(Default)]
pub struct Questions {
    open: Mutex<(u64, Vec<Open>)>,
}

/// Why a command answered nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrouted {
    NothingWaiting,
    NotAllowed(DecisionKind),
    ReasonRequired,
}

impl Questions {
    fn register(
        &self,
        step: Option<crate::engine::StepId>,
        kind: DecisionKind,
    ) -> (u64, oneshot::Receiver<Command>) {
        let (tx, rx) = oneshot::channel();
        let mut g = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        let id = g.0;
        g.1.push(Open { id, step, kind, tx });
        (id, rx)
    }

    fn forget(&self, id: u64) {
        let mut g = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.retain(|o| o.id != id);
    }

    /// Hands `cmd` to the oldest open question it answers (same step, or any when `cmd.step` is None).
    pub fn route(&self, cmd: Command) -> Result<(), Unrouted> {
        if matches!(cmd.action, OperatorAction::Skip | OperatorAction::Waive)
            && cmd.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(Unrouted::ReasonRequired);
        }
        let mut g = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wrong_kind = None;
        let pos = g.1.iter().position(|o| {
            let step_ok = cmd.step.is_none() || cmd.step == o.step;
            if step_ok && !allowed(o.kind, cmd.action) {
                wrong_kind = Some(o.kind);
            }
            step_ok && allowed(o.kind, cmd.action)
        });
        match pos {
            Some(i) => {
                let open = g.1.remove(i);
                // The asker may have been cancelled meanwhile; then the command answers nothing.
                open.tx.send(cmd).map_err(|_| Unrouted::NothingWaiting)
            }
            None => Err(wrong_kind.map_or(Unrouted::NothingWaiting, Unrouted::NotAllowed)),
        }
    }

    /// How many questions are open.
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Interactive: every question waits for a routed [`Command`] (or cancellation).
pub struct InteractiveOperator {
    emit: Emitter,
    questions: Arc<Questions>,
    cancel: CancellationToken,
    approver: Option<Arc<Approver>>,
}

impl InteractiveOperator {
    pub fn new(emit: Emitter, questions: Arc<Questions>, cancel: CancellationToken) -> Self {
        Self {
            emit,
            questions,
            cancel,
            approver: None,
        }
    }

    /// Decisions carry the signed-in identity and obey the runbook's `approvals`.
    #[must_use]
    pub fn with_approver(mut self, approver: Option<Arc<Approver>>) -> Self {
        self.approver = approver;
        self
    }
}

impl Operator for InteractiveOperator {
    fn ask(&self, ask: Ask) -> AskFuture<'_> {
        Box::pin(async move {
            // Registered before it is journaled: a console that answers as soon as it sees the
            // question always finds it open.
            let (mut id, mut rx) = self.questions.register(ask.step.clone(), ask.kind);
            if let Err(e) = journal_ask(&self.emit, &ask).await {
                self.questions.forget(id);
                return Err(e);
            }
            loop {
                let cmd = tokio::select! {
                    c = rx => c.map_err(|_| AskError::Cancelled)?,
                    () = self.cancel.cancelled() => {
                        self.questions.forget(id);
                        return Err(AskError::Cancelled);
                    }
                };
                let mut d = Decision {
                    action: cmd.action,
                    operator: cmd.operator,
                    reason: cmd.reason,
                    checklist_done: cmd.checklist_done,
                    identity: None,
                };
                match &self.approver {
                    Some(ap) if ap.apply(&self.emit, &ask, &mut d).await.is_err() => {
                        // Refused (journaled): the question stays open for someone who may answer it.
                        (id, rx) = self.questions.register(ask.step.clone(), ask.kind);
                    }
                    _ => return journal_decision(&self.emit, &ask, d).await,
                }
            }
        })
    }
}

/// Journals why a command was ignored (the console shows the log line).
pub fn log_unrouted(emit: &Emitter, cmd: &Command, why: &Unrouted) {
    let step = cmd
        .step
        .as_ref()
        .map_or_else(|| "any step".to_owned(), |s| format!("`{s}`"));
    let message = match why {
        Unrouted::NothingWaiting => format!("{:?} for {step} ignored: nothing is waiting for it", cmd.action),
        Unrouted::NotAllowed(k) => format!("{:?} does not answer {k:?} for {step}", cmd.action),
        Unrouted::ReasonRequired => format!("{:?} for {step} needs a reason", cmd.action),
    };
    // A log line that cannot be journaled changes nothing the engine does.
    let _ = emit.batched(Event::Log {
        level: LogLevel::Warn,
        message,
    });
}
