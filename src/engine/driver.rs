//! The engine's driver (the console or headless mode): what it sends the engine, the handle it
//! holds, and how a run ended for it.
//!
//! What an operator (the console) sends the engine, and the handle it gets to send it.
//!
//! The TUI maps keys to [`Command`]s and sends them on [`EngineHandle::commands`]; the engine routes
//! each one to the question it answers (see `scheduler::operator`), journals the decision with the
//! operator's name and reason, and acts on it. Nothing big flows back on this path: the console reads
//! journaled envelopes from the subscription `start_engine` returns and folds them into its own
//! [`RunState`](super::RunState).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::event::OperatorAction;
use super::{RunId, StepId};

/// One operator intent. `step` names the step a decision is about (`None` for pause/resume/abort,
/// or to answer the oldest open question).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub action: OperatorAction,
    pub step: Option<StepId>,
    /// Who decided (journaled with the decision).
    pub operator: String,
    /// Required for `Skip` and `Waive`; journaled.
    pub reason: Option<String>,
    /// Checklist items the operator ticked (manual steps).
    pub checklist_done: Vec<String>,
    /// With `Pause`/`Resume`: the one map to pause or resume (dual-write), not the run.
    pub map: Option<String>,
}

impl Command {
    /// A command with no reason and no checklist.
    pub fn new(action: OperatorAction, step: Option<StepId>, operator: impl Into<String>) -> Self {
        Self {
            action,
            step,
            operator: operator.into(),
            reason: None,
            checklist_done: Vec::new(),
            map: None,
        }
    }

    /// Pause (`pause`) or resume one dual-write map, from the console.
    pub fn for_map(pause: bool, map: impl Into<String>, operator: impl Into<String>) -> Self {
        let action = if pause {
            OperatorAction::Pause
        } else {
            OperatorAction::Resume
        };
        Self {
            map: Some(map.into()),
            ..Self::new(action, None, operator)
        }
    }

    /// The same command with a reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// How a run ended, for this process.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// `RunFinished` was journaled with this outcome.
    Finished(super::event::RunOutcome),
    /// A step or gate failed and nobody here can decide (headless): the run stays open, exit 1.
    Halted { step: StepId, message: String },
    /// A decision only a person can take (headless): the run stays open, exit 3.
    Waiting { step: Option<StepId>, message: String },
    /// SIGINT/SIGTERM or the console's cancel: the journal is consistent, the run resumes next time.
    Interrupted,
    /// The journal refused a write (or the lease was lost): nothing more was done.
    Broken(String),
}

impl RunEnd {
    /// The same end with every message passed through `redactor` (what reaches stderr and the screen).
    pub fn redacted(self, redactor: &crate::journal::Redactor) -> Self {
        let r = |m: String| redactor.redact_str(&m).unwrap_or(m);
        match self {
            Self::Halted { step, message } => Self::Halted {
                step,
                message: r(message),
            },
            Self::Waiting { step, message } => Self::Waiting {
                step,
                message: r(message),
            },
            Self::Broken(m) => Self::Broken(r(m)),
            other => other,
        }
    }
}

/// What the console holds while a run is driven: send commands, cancel (quit without aborting:
/// the run resumes next time), read the live state, and await the end.
pub struct EngineHandle {
    pub run_id: RunId,
    pub commands: mpsc::Sender<Command>,
    /// Cancelling stops the engine without journaling an abort (like SIGINT).
    pub cancel: CancellationToken,
    /// The engine's own state of the run (see [`LiveState`](super::live::LiveState)); read briefly.
    pub state: Arc<super::live::LiveState>,
    /// Resolves when the engine stopped, with how it ended.
    pub done: JoinHandle<RunEnd>,
}
