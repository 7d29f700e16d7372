//! The facts a run produces. Every event is journaled (by the journal layer) before anything acts
//! on it, then fed to the reducer (`state::RunState::apply`) wrapped in the [`Envelope`] the journal
//! returned, so the live screen and a replay see byte-for-byte the same input.
//!
//! Events carry no timestamp of their own: the time lives on the envelope (the journal row) and is
//! assigned by the journal writer. Events never carry a header value or a request/response body:
//! anything that could hold a secret stays out, and the journal's redactor masks what slips in.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunId, StepId};

/// One journaled event with its place in the journal.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The journal row id: global across runs, strictly increasing, contiguous.
    pub id: i64,
    /// Position inside its run, from 1, contiguous.
    pub seq: u64,
    /// When the writer journaled it (UTC, millisecond precision, non-decreasing within a journal).
    pub at: DateTime<Utc>,
    pub run_id: RunId,
    pub event: Event,
}

/// The runbook a run was started from, kept whole so an auditor can check it against its hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RunbookInfo {
    pub name: String,
    pub version: String,
    /// Hex sha256 of `text`.
    pub sha256: String,
    pub text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FreezeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One step of the plan as the engine expanded it (waves already expanded into per-map steps,
/// gates included as steps of kind `gate`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PlannedStepInfo {
    pub id: StepId,
    /// Shared with the plan (one allocation per phase).
    pub phase: Arc<str>,
    pub wave: Option<String>,
    /// The runbook step kind (`manual`, `dmf.import`, `dualwrite.run`, `gate`, ...): the step kind's
    /// own name when planned, allocated only when read back from a journal.
    pub kind: Cow<'static, str>,
    /// The step's title, else its id (then shared with it).
    pub title: Arc<str>,
    #[serde(default)]
    pub needs: Vec<StepId>,
    #[serde(default)]
    pub point_of_no_return: bool,
    #[serde(default)]
    pub confirm: bool,
    pub map: Option<String>,
    /// A planner's estimate (e.g. from a rehearsal), used by the ETA before any step of this kind
    /// has been measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_ms: Option<u64>,
    /// Where `estimate_ms` was measured: the earlier run (a rehearsal in the same journal) whose
    /// duration of this step it is; absent when it is the plan's estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_from: Option<String>,
}

/// Allowed |source - target| at a gate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    Count(u64),
    /// Percent of the source count (`0.1` means 0.1%).
    Percent(f64),
}

impl Tolerance {
    /// The largest allowed absolute difference for a given source count.
    pub fn allowed(&self, source: u64) -> u64 {
        match *self {
            Tolerance::Count(n) => n,
            // Counts are far below 2^52, so the f64 round trip is exact enough; floor is the strict reading.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            Tolerance::Percent(p) => ((source as f64) * p / 100.0).floor().max(0.0) as u64,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MapInfo {
    pub id: String,
    #[serde(default)]
    pub companies: Vec<String>,
    pub tolerance: Tolerance,
}

/// The external handle a step will use, journaled with its intent so resume can reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Handle {
    /// `dmf.import`, `dmf.export`, `dualwrite.request`, `canary`, `http`, ...
    pub kind: String,
    pub id: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded,
    Failed {
        message: String,
        /// The service's own words for why (an initial sync's failed lookup, a DMF execution's
        /// errors), when the failure came from the service; absent in journals written before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Skipped {
        reason: String,
    },
}

impl StepOutcome {
    /// A failure as one line: its message, and the service's reason when the message does not
    /// already say it.
    pub fn failure_text(message: &str, reason: Option<&str>) -> String {
        match reason {
            Some(r) if !r.is_empty() && !message.contains(r) => format!("{message} (the service said: {r})"),
            _ => message.to_owned(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Failed { message: String },
    Aborted { reason: String },
}

/// What the engine is asking the operator.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A manual step: approve once done (with its checklist).
    ApproveManual,
    /// A `confirm: true` step, before it starts.
    Confirm,
    /// The second ask of a point-of-no-return step.
    PointOfNoReturn,
    /// A wave gate failed: retry, waive with a reason, or abort.
    GateFailure,
    /// A step failed: retry, skip with a reason, or abort.
    StepFailed,
    /// Resume found an in-flight step with no safe way to reconcile it.
    AmbiguousInFlight,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    Approve,
    Retry,
    Skip,
    Waive,
    Abort,
    Pause,
    Resume,
    Confirm,
    TakeOverLease,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GateFailure {
    pub map: String,
    pub company: Option<String>,
    pub source: u64,
    pub target: u64,
    /// The allowed absolute difference at this source count.
    pub allowed: u64,
    /// Error-queue entries counted against `max_errors`.
    pub errors: u64,
}

/// What an alert is about: `(kind, map, company)` is its de-duplication key; `clear` marks the all-clear of
/// an alert of that key raised earlier; `facts` are the figures a notify card shows (name, value).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct AlertSubject {
    /// `errors_per_hour`, `drift`, `sample`, `errors_unknown`, `gate`, `step_failed`, `decision_waiting`, `notify`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
}

impl AlertSubject {
    /// The de-duplication key of an alert of this subject on `map`.
    pub fn key(&self, map: Option<&str>) -> String {
        format!(
            "{}|{}|{}",
            self.kind,
            map.unwrap_or("-"),
            self.company.as_deref().unwrap_or("-")
        )
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ErrorEntry {
    /// The service's id for the entry (deduplication is the connector's job).
    pub id: String,
    pub at: DateTime<Utc>,
    pub map: String,
    /// The record key (e.g. the customer account).
    pub key: String,
    pub category: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// How one preflight check came out. Ordered by weight: the worst status decides the exit code.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    /// Not asked: what it needs failed in an earlier check (which says why).
    Skipped,
    Warning,
    Error,
}

impl CheckStatus {
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Skipped => "skipped",
            CheckStatus::Warning => "warning",
            CheckStatus::Error => "error",
        }
    }
}

/// Which side a row-level difference is about.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RowClass {
    Missing,
    Extra,
    Different,
}

/// One key a `reconcile` found not matching, with its differing fields (for `different`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RowDifference {
    pub class: RowClass,
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDifference>,
}

/// One key a `sample` step found differing: its company (for a map with companies), its class
/// (`missing`: on the map's source, not on its target; `extra`: the other way round; `different`), and
/// the compared fields that differ.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SampledKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    pub class: RowClass,
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDifference>,
}

/// A compared field whose values differ: (source field, source value, target value).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FieldDifference {
    pub field: String,
    pub source: String,
    pub target: String,
}

/// One line of a preflight: which check, about what, how it came out, and what to do about it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PreflightCheck {
    /// The check's name in the registry (`token`, `entity`, `company_lookup`, ...).
    pub check: String,
    /// What it is about (`fno`, `customers: dataverse:accounts`, `CutoverSnapshot`, ...).
    pub subject: String,
    pub status: CheckStatus,
    pub message: String,
    /// What to do, for a warning or an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A fact about a run. Serialised internally tagged: `{"kind": "step_intent", ...}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The first event of a run: everything the reducer needs to lay out the screen.
    RunStarted {
        run_id: RunId,
        runbook: RunbookInfo,
        operator: String,
        host: String,
        started_at: DateTime<Utc>,
        freeze_window: Option<FreezeWindow>,
        /// Shared with the reducer's step table (`state::StepView::info`): a plan of 100,000 steps is
        /// held once. Serialised as the plain list.
        steps: Vec<Arc<PlannedStepInfo>>,
        maps: Vec<MapInfo>,
        /// Simulator time acceleration (1.0 on live environments).
        time_scale: f64,
    },
    /// The environment's clock when this process started (or resumed) the run: the simulator's clock in a
    /// rehearsal (a scaled day passes in seconds), else the wall clock. `cutover trend` dates a run by it.
    EnvironmentTime {
        at: DateTime<Utc>,
    },
    /// A process picked up an unfinished run.
    RunResumed {
        operator: String,
        host: String,
        accepted_changed_runbook: bool,
    },
    /// About to act on a step; journaled durably before the first side effect.
    StepIntent {
        step: StepId,
        attempt: u32,
        handle: Option<Handle>,
    },
    StepProgress {
        step: StepId,
        done: u64,
        total: Option<u64>,
        note: Option<String>,
    },
    /// A summary of one HTTP call: never headers or bodies.
    Request {
        step: Option<StepId>,
        env: String,
        method: String,
        path: String,
        status: Option<u16>,
        duration_ms: u64,
        error: Option<String>,
    },
    StepFinished {
        step: StepId,
        outcome: StepOutcome,
        outputs: BTreeMap<String, String>,
    },
    AwaitingOperator {
        step: Option<StepId>,
        decision: DecisionKind,
        prompt: String,
        checklist: Vec<String>,
        deadline: Option<DateTime<Utc>>,
    },
    OperatorDecision {
        step: Option<StepId>,
        action: OperatorAction,
        operator: String,
        reason: Option<String>,
        checklist_done: Vec<String>,
        /// Who was signed in when the key was pressed (device code or Azure CLI), from the token's claims;
        /// `operator` stays the `--operator` label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<crate::model::Identity>,
    },
    /// A decision the runbook's `approvals` did not allow (no signed-in identity, or one not on the list):
    /// it was not acted on and the question stays open.
    ApprovalRefused {
        step: Option<StepId>,
        action: OperatorAction,
        operator: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<crate::model::Identity>,
        reason: String,
    },
    /// A wave gate's verdict (`step` is the gate step's id).
    GateEvaluated {
        step: StepId,
        wave: Option<String>,
        passed: bool,
        failures: Vec<GateFailure>,
    },
    /// A failed gate will be checked again at `at` (wall-clock time), automatic re-check `check` of
    /// the gate's `retries` (`of`), `retry_every` after the failure.
    GateRecheck {
        step: StepId,
        check: u32,
        of: u32,
        at: DateTime<Utc>,
    },
    ParitySample {
        step: Option<StepId>,
        map: String,
        company: Option<String>,
        source: u64,
        target: u64,
    },
    /// Error entries not seen before, for one map, from one error source (`source`, e.g.
    /// `dataverse.asyncoperations`; absent in journals written before error sources: the old error queue).
    ErrorEntries {
        map: String,
        entries: Vec<ErrorEntry>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// One error source's totals for one map (authoritative over counted entries). `unavailable` is the
    /// reason the source could not be read (then `by_category` is empty and means nothing: not zero).
    /// Journals written before error sources have neither field (the old error queue).
    ErrorCounts {
        map: String,
        by_category: BTreeMap<String, u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unavailable: Option<String>,
        /// The ids of every entry the source holds at this read, when the read listed them all (its total
        /// is no more than the entries it returned): an entry seen earlier and absent here was resolved.
        /// Absent when the read listed only a sample, the source is not available, and in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        present: Option<Vec<String>>,
    },
    /// The keys a `sample` step found still differing or missing after the settle, for one map: the
    /// evidence of what differed (its `ErrorEntries` carry the same keys as `sample_mismatch` entries).
    SampleDiffered {
        step: StepId,
        map: String,
        keys: Vec<SampledKey>,
    },
    Alert {
        severity: Severity,
        message: String,
        map: Option<String>,
        /// What the alert is about (its kind, company and figures), for de-duplication and the notify card;
        /// absent in journals written before notify targets and on alerts with no subject.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<AlertSubject>,
    },
    /// One delivery attempt of a notification to a runbook `notify_targets` entry, with the answer it got
    /// (`status`) or why there was none (`error`). The target is named, never its URL.
    Notified {
        target: String,
        /// The de-duplication key: `<kind>|<map>|<company>`, or `step:<id>` for a `notify` step.
        key: String,
        /// `firing`, `clear`, `reminder` or `message`.
        state: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        delivered: bool,
    },
    /// Row-level parity of one map (and company), by a `reconcile` step: every key of both sides classified.
    RowsReconciled {
        step: StepId,
        map: String,
        company: Option<String>,
        source_rows: u64,
        target_rows: u64,
        matching: u64,
        /// On the source, not on the target.
        missing: u64,
        /// On the target, not on the source.
        extra: u64,
        /// On both sides with a compared field that differs.
        different: u64,
        /// The first keys of each class (at most the step's `sample` per class), with the differing fields.
        sample: Vec<RowDifference>,
        /// Size of the scratch database the comparison used (removed afterwards).
        scratch_bytes: u64,
    },
    /// One range of a `reconcile` step's read is wholly in its scratch database (`side` is `source` or
    /// `target`; `range` the filter that selects it, or `all`). A resumed read does not read it again.
    RowsRangeRead {
        step: StepId,
        map: String,
        company: Option<String>,
        side: String,
        range: String,
        rows: u64,
        /// The read went on from a page link a stopped run left.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// A plug-in step or cloud flow about to be turned off by `dataverse.disable_automation`, with the state
    /// it had: journaled before the change, so a resume or an abort puts back exactly what was on.
    AutomationOff {
        step: StepId,
        env: String,
        /// `plugin_step` or `flow`.
        what: String,
        /// `sdkmessageprocessingstepid` / `workflowid`.
        id: String,
        name: String,
        /// The table's logical name.
        table: String,
        prior_statecode: i64,
        prior_statuscode: i64,
    },
    /// A plug-in step or flow put back in the state it had before the run turned it off (by
    /// `dataverse.enable_automation`, or by the abort of the run when `step` is `None`).
    AutomationRestored {
        step: Option<StepId>,
        env: String,
        /// `plugin_step` or `flow`.
        what: String,
        id: String,
        name: String,
        statecode: i64,
        statuscode: i64,
    },
    /// A `dualwrite.batch_window` step reached a phase, journaled when its actions are done and before
    /// the next begins: `paused` (every map paused; `paused_at` is the environments' time of it, which the
    /// pause limit counts from), `confirmed` (the operator confirmed the batch job), `resumed` (every map
    /// resumed: by the step, or by the abort of the run when `step` is the window's and `by_abort`).
    BatchWindow {
        step: StepId,
        phase: String,
        maps: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_abort: bool,
    },
    /// The audit row every package import leaves.
    InstallRecord {
        step: StepId,
        package: String,
        version: String,
        sha256: String,
        execution_id: String,
        result: String,
        /// The F&O environment imported into (`<env>@<host>`); empty in journals written before it was recorded.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        environment: String,
        /// Data rows in the package's data files, when they could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record_count: Option<u64>,
    },
    /// A `dmf.export` with `download: true` kept the exported package: `file` is relative to the journal's folder.
    PackageDownloaded {
        step: StepId,
        execution_id: String,
        package: String,
        file: String,
        sha256: String,
        bytes: u64,
    },
    /// Writing an import's install record (`record_install`), an operation of its own: journaled as `intent`
    /// before the write, then `written` or `failed`. Its handle is the import's `execution_id` (the record is
    /// looked up by it before it is written), so a retried step writes the record and never imports again.
    InstallRecordWrite {
        step: StepId,
        execution_id: String,
        /// `env:table` or `env:Entity`.
        target: String,
        /// `intent`, `written` or `failed`.
        status: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// The journal lease was taken over from a stale holder (see `journal::lease`).
    LeaseTakenOver {
        previous_holder: String,
        previous_host: String,
        previous_pid: u32,
        previous_heartbeat_at: DateTime<Utc>,
        holder: String,
        host: String,
        pid: u32,
    },
    Log {
        level: LogLevel,
        message: String,
    },
    RunFinished {
        outcome: RunOutcome,
    },
    /// A signed checkpoint of the chain (see `journal::checkpoint`): the writer journals it right after
    /// the row it signs, event `event_id`, whose hash is `chain_hash` and whose time is `at`. The
    /// signature is Ed25519 by the key whose public half and fingerprint are given; the private key is
    /// never journaled.
    Checkpoint {
        event_id: i64,
        chain_hash: String,
        at: String,
        key_fingerprint: String,
        /// The 32-byte public key, lowercase hex.
        public_key: String,
        /// Lowercase hex of the 64-byte signature.
        signature: String,
        /// `every`, `decision`, `gate`, `phase_end`, `resume`, `runbook_changed` or `run_end`.
        reason: String,
        /// `ES256` for a checkpoint an Azure Key Vault key signed (then `public_key` is empty: the key's
        /// JWK is the run's `checkpoint_key` event with the same fingerprint; `signature` is the raw
        /// 64-byte R || S in hex); absent for Ed25519.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alg: Option<String>,
    },
    /// The public key that signs this run's checkpoints in a vault, journaled once at the run's start
    /// (before any checkpoint it signs): its fingerprint (see `journal::checkpoint`), the algorithm, the
    /// public JWK (`kty`, `crv`, `x`, `y`) and the key's identifier in the vault. Never a token.
    CheckpointKey {
        key_fingerprint: String,
        alg: String,
        jwk: serde_json::Value,
        kid: String,
    },
    /// `resume --accept-changed-runbook` with a runbook that differs from the one the run started with:
    /// journaled before anything acts on the new text. Step ids by plan order.
    RunbookChanged {
        old_sha256: String,
        new_sha256: String,
        added: Vec<StepId>,
        removed: Vec<StepId>,
        changed: Vec<StepId>,
        /// Added steps that come before a step that already started (run out of order unless accepted
        /// with `--accept-inserted-step`), each accepted explicitly.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        accepted_inserted: Vec<StepId>,
        /// The new runbook's full text (its sha256 is `new_sha256`).
        text: String,
    },
    /// `cutover preflight --journal`: the read-only checks of a runbook's environments, journaled under a
    /// run id of its own (`preflight-...`) that has no `RunStarted`; the evidence report shows them.
    PreflightChecked {
        runbook: String,
        version: String,
        runbook_sha256: String,
        operator: String,
        host: String,
        /// `live`, or `simulator` when `--sim`/`--sim-url` stood in for the environments.
        target: String,
        checks: Vec<PreflightCheck>,
    },
}

impl Event {
    /// The snake_case tag, as stored in the journal's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::EnvironmentTime { .. } => "environment_time",
            Event::RunResumed { .. } => "run_resumed",
            Event::StepIntent { .. } => "step_intent",
            Event::StepProgress { .. } => "step_progress",
            Event::Request { .. } => "request",
            Event::StepFinished { .. } => "step_finished",
            Event::AwaitingOperator { .. } => "awaiting_operator",
            Event::OperatorDecision { .. } => "operator_decision",
            Event::ApprovalRefused { .. } => "approval_refused",
            Event::GateEvaluated { .. } => "gate_evaluated",
            Event::GateRecheck { .. } => "gate_recheck",
            Event::ParitySample { .. } => "parity_sample",
            Event::ErrorEntries { .. } => "error_entries",
            Event::ErrorCounts { .. } => "error_counts",
            Event::SampleDiffered { .. } => "sample_differed",
            Event::Alert { .. } => "alert",
            Event::Notified { .. } => "notified",
            Event::InstallRecord { .. } => "install_record",
            Event::AutomationOff { .. } => "automation_off",
            Event::AutomationRestored { .. } => "automation_restored",
            Event::BatchWindow { .. } => "batch_window",
            Event::InstallRecordWrite { .. } => "install_record_write",
            Event::PackageDownloaded { .. } => "package_downloaded",
            Event::RowsReconciled { .. } => "rows_reconciled",
            Event::RowsRangeRead { .. } => "rows_range_read",
            Event::LeaseTakenOver { .. } => "lease_taken_over",
            Event::Log { .. } => "log",
            Event::RunFinished { .. } => "run_finished",
            Event::PreflightChecked { .. } => "preflight_checked",
            Event::Checkpoint { .. } => "checkpoint",
            Event::CheckpointKey { .. } => "checkpoint_key",
            Event::RunbookChanged { .. } => "runbook_changed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_matches_serde_tag() {
        let events = vec![
            Event::RunResumed {
                operator: "a".into(),
                host: "h".into(),
                accepted_changed_runbook: false,
            },
            Event::StepProgress {
                step: "s".into(),
                done: 1,
                total: None,
                note: None,
            },
            Event::Log {
                level: LogLevel::Info,
                message: "m".into(),
            },
            Event::RunFinished {
                outcome: RunOutcome::Aborted { reason: "r".into() },
            },
            Event::ErrorCounts {
                map: "m".into(),
                by_category: BTreeMap::new(),
                source: Some("dataverse.asyncoperations".into()),
                unavailable: Some("HTTP 403".into()),
                present: None,
            },
            Event::SampleDiffered {
                step: "s".into(),
                map: "m".into(),
                keys: vec![SampledKey {
                    company: Some("USMF".into()),
                    class: RowClass::Different,
                    key: "K".into(),
                    fields: vec![FieldDifference {
                        field: "Name".into(),
                        source: "a".into(),
                        target: "b".into(),
                    }],
                }],
            },
        ];
        for e in events {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["kind"], e.kind());
            let back: Event = serde_json::from_value(v).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn percent_tolerance_is_floor_of_share_of_source() {
        assert_eq!(Tolerance::Percent(0.1).allowed(10_000), 10);
        assert_eq!(Tolerance::Percent(0.1).allowed(999), 0);
        assert_eq!(Tolerance::Count(3).allowed(0), 3);
    }
}
