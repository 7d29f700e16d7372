//! The contract between the scheduler and the step executors.
//!
//! The scheduler (`engine::scheduler`) decides what runs when, journals each step's intent and result,
//! and owns every conversation with the operator. An executor (`engine::exec`) runs one step against
//! the environments and reports facts through the [`Emitter`]; when it needs a person (an operator-mode
//! dual-write action, a manual checklist) it asks through [`Operator`], which the scheduler implements
//! for the console (a modal) and for headless mode (auto-approve or halt with exit 3).
//!
//! Journal first: [`Emitter::durable`] returns only once the event is committed (synchronous=FULL), so
//! an executor that awaits it before a side effect can never act on something the journal lacks.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::RunId;
use super::event::{DecisionKind, Envelope, Event, OperatorAction};
pub use super::live::LiveState;
use crate::journal::{JournalError, JournalWriter};
use crate::runbook::Runbook;
use crate::runbook::plan::PlannedStep;

/// Environment time vs real time. Runbook durations (`poll`, `within`, `monitor.every`, `wait.for`)
/// are environment time; against the simulator a weekend runs `scale` times faster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    scale: f64,
}

impl Clock {
    /// Real time: one environment second is one real second.
    pub fn real() -> Self {
        Self { scale: 1.0 }
    }

    /// `scale` environment seconds pass per real second (the simulator scenario's `time_scale`).
    /// Non-finite or non-positive scales are treated as 1.
    pub fn scaled(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        Self { scale }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration an environment duration takes.
    pub fn to_real(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }

    /// The environment duration a real duration stands for.
    pub fn to_env(&self, real: Duration) -> Duration {
        real.mul_f64(self.scale)
    }

    /// Sleeps for an environment duration; returns `false` when cancelled first.
    pub async fn sleep(&self, d: Duration, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = tokio::time::sleep(self.to_real(d)) => true,
            () = cancel.cancelled() => false,
        }
    }
}

/// Journals events for one run. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    writer: JournalWriter,
    run_id: RunId,
    /// The engine's own state, folded before `durable` returns (see [`LiveState`]).
    live: Option<Arc<LiveState>>,
}

impl Emitter {
    pub fn new(writer: JournalWriter, run_id: RunId) -> Self {
        Self {
            writer,
            run_id,
            live: None,
        }
    }

    /// The same emitter, folding every envelope it journals durably into `live` before returning it.
    #[must_use]
    pub fn with_state(mut self, live: Arc<LiveState>) -> Self {
        self.live = Some(live);
        self
    }

    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Journals `event` durably and returns its envelope once committed. Use for intents, results,
    /// decisions, gate evaluations, parity samples and anything the next action depends on.
    /// When an engine state is attached ([`Emitter::with_state`]), it holds the envelope (and every
    /// one before it) by the time this returns: the engine reads its own writes.
    pub async fn durable(&self, event: Event) -> Result<Arc<Envelope>, JournalError> {
        let env = self.writer.append(self.run_id.clone(), event).await?;
        if let Some(live) = &self.live {
            live.catch_up();
        }
        Ok(env)
    }

    /// [`Emitter::durable`] without waiting for the disk ([`JournalWriter::append_committed`]): for the
    /// intent and result of a step that acts on nothing outside this process. Ordered as `durable` is, and
    /// folded into the engine state the same way.
    pub async fn committed(&self, event: Event) -> Result<Arc<Envelope>, JournalError> {
        let env = self.writer.append_committed(self.run_id.clone(), event).await?;
        if let Some(live) = &self.live {
            live.catch_up();
        }
        Ok(env)
    }

    /// Journals a high-rate event (request summaries, progress) with the next group commit.
    pub fn batched(&self, event: Event) -> Result<(), JournalError> {
        self.writer.append_batched(self.run_id.clone(), event)
    }

    pub fn writer(&self) -> &JournalWriter {
        &self.writer
    }
}

/// A question for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub step: Option<crate::engine::StepId>,
    pub kind: DecisionKind,
    /// What to do / what is being asked, in full (operator-mode instructions go here).
    pub prompt: String,
    pub checklist: Vec<String>,
    pub deadline: Option<DateTime<Utc>>,
}

/// The operator's answer, already journaled as an `OperatorDecision` when it is returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: OperatorAction,
    pub operator: String,
    pub reason: Option<String>,
    pub checklist_done: Vec<String>,
    /// The signed-in person (see `scheduler::approvals`).
    pub identity: Option<crate::model::Identity>,
}

/// Why an answer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// Headless without `--auto-approve` (or a question auto-approval must not answer): the run halts
    /// with exit 3 and says why.
    #[error("waiting for an operator: {0}")]
    NeedsOperator(String),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Journal(#[from] JournalError),
}

pub type AskFuture<'a> = Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send + 'a>>;

/// Implemented by the scheduler: journals `AwaitingOperator`, waits for the console (or auto-approves
/// in headless `--auto-approve`), journals the `OperatorDecision`, and returns it.
pub trait Operator: Send + Sync {
    fn ask(&self, ask: Ask) -> AskFuture<'_>;
}

/// Everything one step execution gets. Built by the scheduler per attempt.
#[derive(Clone)]
pub struct StepCtx {
    pub run_id: RunId,
    /// `${run.date}` (YYYY-MM-DD of the run's start, UTC).
    pub run_date: String,
    /// `${run.operator}`.
    pub run_operator: String,
    pub step: PlannedStep,
    pub runbook: Arc<Runbook>,
    /// The runbook's directory: relative paths (`package_file`) resolve against it.
    pub runbook_dir: PathBuf,
    /// The journal's directory: a step's scratch files (a reconcile's comparison database) go here.
    pub work_dir: PathBuf,
    pub envs: Arc<super::envs::Envs>,
    pub emit: Emitter,
    pub clock: Clock,
    pub cancel: CancellationToken,
    /// 1 for the first attempt; operator retries and automatic re-tries count up.
    pub attempt: u32,
    pub operator: Arc<dyn Operator>,
    /// The engine's own state of the run, with everything journaled so far (see [`LiveState`]).
    pub state: Arc<LiveState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_converts_both_ways() {
        let c = Clock::scaled(600.0);
        assert_eq!(c.to_real(Duration::from_secs(600)), Duration::from_secs(1));
        assert_eq!(c.to_env(Duration::from_secs(2)), Duration::from_secs(1200));
        assert!((Clock::scaled(-3.0).scale() - 1.0).abs() < f64::EPSILON);
        assert!((Clock::scaled(f64::NAN).scale() - 1.0).abs() < f64::EPSILON);
    }
}
