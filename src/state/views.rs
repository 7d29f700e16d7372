//! The rows and records the console reads from [`super::RunState`].

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::event::{
    DecisionKind, FreezeWindow, GateFailure, Handle, LogLevel, OperatorAction, PlannedStepInfo, RunOutcome,
    Severity, StepOutcome,
};
use crate::model::{RunId, StepId};

#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running {
        since: DateTime<Utc>,
        attempt: u32,
    },
    AwaitingOperator {
        since: DateTime<Utc>,
        decision: DecisionKind,
    },
    Succeeded,
    Failed {
        message: String,
        /// The service's own words for why, when it gave any.
        reason: Option<String>,
    },
    Skipped {
        reason: String,
    },
    Waived {
        reason: Option<String>,
    },
}

impl StepStatus {
    /// Done for scheduling purposes: succeeded, skipped or waived.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Skipped { .. } | StepStatus::Waived { .. }
        )
    }
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// One HTTP call as the detail pane lists it.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RequestSummary {
    pub at: DateTime<Utc>,
    pub env: String,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct InstallView {
    pub at: DateTime<Utc>,
    pub step: StepId,
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub execution_id: String,
    pub result: String,
    /// The F&O environment imported into (empty for older journals).
    pub environment: String,
    pub record_count: Option<u64>,
    /// The install record's write (`record_install`): `target: written` / `target: failed: ...`, if any.
    pub record: Option<String>,
}

/// An exported package kept as evidence (`dmf.export` with `download: true`).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DownloadView {
    pub at: DateTime<Utc>,
    pub step: StepId,
    pub execution_id: String,
    pub package: String,
    /// Relative to the journal's folder.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StepView {
    /// The plan's entry, shared with `RunStarted`'s list (serialised as the plain struct).
    pub info: std::sync::Arc<PlannedStepInfo>,
    /// False for a step the engine reported that was not in `RunStarted`'s plan.
    pub planned: bool,
    pub status: StepStatus,
    /// The highest attempt number seen in a `StepIntent` (0: never started).
    pub attempts: u32,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Duration of the latest finished attempt.
    pub duration_ms: Option<u64>,
    /// Boxed: most steps never report progress, and a pending step should be small.
    pub progress: Option<Box<Progress>>,
    pub handle: Option<Handle>,
    /// The last [`REQUESTS_PER_STEP`] requests, oldest first.
    pub requests: VecDeque<RequestSummary>,
    pub request_count: u64,
    pub outputs: BTreeMap<String, String>,
    pub install: Option<Box<InstallView>>,
    /// A failed gate's next automatic re-check, until its next attempt starts.
    pub next_check: Option<Recheck>,
    /// Where the step's latest attempt stands in the journal, for resume.
    #[serde(skip)]
    pub journal: AttemptRecord,
}

/// A failed gate's next automatic re-check: number `check` of `of`, due at `at` (wall clock).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recheck {
    pub check: u32,
    pub of: u32,
    pub at: DateTime<Utc>,
}

/// Where a step's latest attempt stands in the journal, as resume needs it (see
/// `engine::resume::Resumable`, derived from this): a `StepIntent` opens an attempt; a
/// `StepFinished` closes it with its outcome; a `Skip` or `Waive` decision after the result (a
/// `Waive` at any time) settles the step; a `Retry` decision after the result asks for a new attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptRecord {
    /// An intent without a result.
    pub open: bool,
    /// The last result, once the attempt closed.
    pub outcome: Option<StepOutcome>,
    /// Skipped or waived by a decision after the result.
    pub settled: bool,
    /// A Retry decision came after the last failure.
    pub retry_decided: bool,
}

#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct Header {
    pub run_id: RunId,
    pub runbook: String,
    pub version: String,
    pub runbook_sha256: String,
    /// Every operator that started, resumed or decided something, in order of first appearance.
    pub operators: Vec<String>,
    /// The signed-in person (UPN, else object id) the latest decision was journaled with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<String>,
    pub hosts: Vec<String>,
    /// Phase and wave of the step that started most recently.
    pub phase: Option<String>,
    pub wave: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    /// `last_event_at - started_at`.
    pub elapsed_ms: u64,
    pub freeze_window: Option<FreezeWindow>,
    pub time_scale: f64,
    pub resumes: u32,
    pub accepted_changed_runbook: bool,
    /// The sha256 of the runbook text last accepted for this run (`runbook_changed`), when it changed since
    /// it started: a resume with that same text needs no new acceptance.
    pub accepted_runbook_sha256: Option<String>,
    pub lease_takeovers: u32,
    pub outcome: Option<RunOutcome>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PendingDecision {
    pub step: Option<StepId>,
    pub decision: DecisionKind,
    pub prompt: String,
    pub checklist: Vec<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub since: DateTime<Utc>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    pub at: DateTime<Utc>,
    pub step: Option<StepId>,
    pub action: OperatorAction,
    pub operator: String,
    pub reason: Option<String>,
    pub checklist_done: Vec<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AlertView {
    pub at: DateTime<Utc>,
    pub severity: Severity,
    pub message: String,
    pub map: Option<String>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct GateView {
    pub at: DateTime<Utc>,
    pub step: StepId,
    pub wave: Option<String>,
    pub passed: bool,
    pub failures: Vec<GateFailure>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
}

/// The remaining time of the run as [`RunState::eta`] estimates it.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eta {
    pub remaining_ms: u64,
    /// Remaining steps (pending, running or waiting).
    pub remaining_steps: usize,
    /// How many of those were estimated from measured durations of the same kind.
    pub measured: usize,
    /// How many of those were estimated from their own duration in an earlier run in the same journal
    /// (a rehearsal; `PlannedStepInfo::estimate_from`).
    pub rehearsed: usize,
}

/// Where a step's estimate comes from.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "source", content = "run")]
pub enum EstimateSource {
    /// The step's own duration in an earlier run in the same journal (a rehearsal), by run id.
    EarlierRun(String),
    /// The mean of this run's succeeded steps of the same kind.
    ThisRun,
    /// The plan's estimate.
    Plan,
    /// Nothing measured or planned: the kind's typical duration.
    Default,
}

impl EstimateSource {
    /// How the console says it, after the duration.
    pub fn words(&self) -> String {
        match self {
            Self::EarlierRun(run) => format!("measured in earlier run {run}"),
            Self::ThisRun => "measured in this run".into(),
            Self::Plan => "the plan's".into(),
            Self::Default => "the kind's default".into(),
        }
    }
}

/// A `dualwrite.batch_window`'s maps paused for a batch job: the last phase and its times.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct BatchWindowView {
    pub maps: Vec<String>,
    /// The last phase journaled: `paused`, `confirmed` or `resumed`.
    pub phase: String,
    /// The environments' time the maps were paused (the pause limit counts from it).
    pub paused_at: Option<DateTime<Utc>>,
    /// When the maps were paused and resumed (journal time).
    pub opened_at: DateTime<Utc>,
    pub resumed_at: Option<DateTime<Utc>>,
    pub resumed_by_abort: bool,
    /// The operator confirmed the batch job in this window (a window resumed without it did not do its work).
    pub confirmed: bool,
}

impl BatchWindowView {
    /// The maps are paused by the window and not resumed yet.
    pub fn open(&self) -> bool {
        self.phase != "resumed"
    }
}

/// A plug-in step or flow the run turned off: its state before, and when it was turned off and put back.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AutomationView {
    pub env: String,
    pub kind: String,
    pub id: String,
    pub name: String,
    pub table: String,
    pub step: StepId,
    pub prior_statecode: i64,
    pub prior_statuscode: i64,
    pub off_at: DateTime<Utc>,
    pub restored_at: Option<DateTime<Utc>>,
    /// Who put it back: the step, or `None` for the abort.
    pub restored_by: Option<StepId>,
}

impl AutomationView {
    /// Whether it was on (enabled / activated) before the run turned it off.
    pub fn was_on(&self) -> bool {
        match self.kind.as_str() {
            "flow" => self.prior_statecode == 1,
            _ => self.prior_statecode == 0,
        }
    }
}
