//! The evidence pack as data: one [`Report`] per run, built by [`super::build::build_report`] and
//! rendered as Markdown, HTML, JSON or CSV. Every time is RFC 3339 UTC with milliseconds (the
//! journal's own format), every duration is in milliseconds. The JSON rendering is this struct
//! serialised; `assets/report.schema.json` is generated from it (see [`super::schema`]).

use schemars::JsonSchema;
use serde::Serialize;

/// Version of the report's JSON shape; bumped when a field changes meaning or disappears.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// The whole evidence pack for one run of a journal.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Report {
    pub schema_version: u32,
    /// `cutover <version>` that produced the report.
    pub generated_by: String,
    /// Whether the journal's hash chain verified when the report was made.
    pub verification: Verification,
    pub run: RunInfo,
    /// Every run in the journal (rehearsals and the real weekend), oldest first.
    pub runs: Vec<RunListing>,
    /// Phases in plan order, with planned and actual durations.
    pub phases: Vec<PhaseRow>,
    pub waves: Vec<WaveRow>,
    /// Steps in plan order (unplanned steps the engine reported are appended).
    pub steps: Vec<StepRow>,
    /// Every operator decision, in journal order.
    pub decisions: Vec<DecisionRow>,
    /// Gate verdicts (the newest [`super::build::GATES_KEPT`]), each with the counts at the time.
    pub gates: Vec<GateRow>,
    /// Gate verdicts in the run (exact, even when `gates` was cut).
    pub gates_total: u64,
    /// Parity per map and company: the first sample (before) and the last (after).
    pub parity: Vec<ParityRow>,
    /// Error-queue totals by map and category at the end of the run.
    pub errors: Vec<ErrorTotal>,
    /// Error-queue entries seen during the run (exact).
    pub errors_seen_total: u64,
    pub alerts: Vec<AlertRow>,
    /// DMF package install records.
    pub installs: Vec<InstallRow>,
    /// Every package install of every run in this journal, newest first, with drift flagged (the same package's
    /// latest installs at different versions in two environments).
    pub package_installs: Vec<super::installs::Install>,
    pub package_drift: Vec<super::installs::Drift>,
    /// Exported packages kept as evidence (`dmf.export` with `download: true`), each with its sha256.
    pub downloads: Vec<DownloadRow>,
    /// Row-level parity (`reconcile`): the latest result per map and company.
    pub rows: Vec<RowsRow>,
    /// Per map, the keys `sample` steps found still differing or missing after the settle (at most
    /// [`super::build::SAMPLE_KEYS_KEPT`], oldest first; `sample_keys_total` counts them all), values
    /// redacted as every text of the report.
    #[serde(default)]
    pub sample_keys: Vec<SampleKeyRow>,
    #[serde(default)]
    pub sample_keys_total: u64,
    /// Dual-write errors seen during the run and later resolved: journaled as an entry of a source, and
    /// absent from that source's last read, which listed every entry it held.
    #[serde(default)]
    pub errors_resolved: Vec<ResolvedErrorRow>,
    /// Plug-in steps and cloud flows the run turned off (`dataverse.disable_automation`): what each was
    /// before, when it went off, when and by what it was put back, and for how long it was off.
    #[serde(default)]
    pub automation: Vec<AutomationRow>,
    /// Maps paused for a batch job (`dualwrite.batch_window`): when, for how long, and what resumed them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_windows: Vec<BatchWindowRow>,
    /// Who owns each map's rows (and the fields owned otherwise) after go-live, as the runbook wrote it down.
    #[serde(default)]
    pub ownership: Vec<OwnershipRow>,
    /// `cutover preflight --journal` results held in the journal (the newest
    /// [`super::PREFLIGHTS_KEPT`]), oldest first: the read-only checks made before the weekend.
    pub preflights: Vec<PreflightRow>,
    pub charts: Charts,
    /// Per map, run by run, across the journal's runs of this runbook (`cutover trend`): empty unless the journal
    /// holds at least [`super::TREND_MIN_RUNS`] of them (a hypercare journal, one run a day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trend: Vec<super::trend::TrendRow>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Verification {
    /// True when the whole chain and every runbook hash verified.
    pub verified: bool,
    /// Events in the journal that verified (all of them when `verified`).
    pub events: u64,
    /// The journal's chain head: record it elsewhere to detect a rewritten chain later.
    pub head_hash: Option<String>,
    pub head_event_id: Option<i64>,
    /// The first event that does not verify, when `verified` is false.
    pub failure: Option<VerifyFailureInfo>,
    /// What the chain proves beyond its own consistency: signed checkpoints and external anchors.
    pub anchoring: super::evidence::Anchoring,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct VerifyFailureInfo {
    pub event_id: i64,
    pub run_id: Option<String>,
    pub seq: Option<u64>,
    pub reason: String,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub runbook: String,
    pub version: String,
    pub runbook_sha256: String,
    /// Everyone who started, resumed or decided something, in order of first appearance.
    pub operators: Vec<String>,
    pub hosts: Vec<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// `succeeded`, `failed`, `aborted` or `unfinished`.
    pub outcome: String,
    /// The failure message or abort reason.
    pub outcome_detail: Option<String>,
    /// From the run's start to its last event.
    pub elapsed_ms: u64,
    pub freeze_window_start: Option<String>,
    pub freeze_window_end: Option<String>,
    pub resumes: u32,
    pub lease_takeovers: u32,
    pub accepted_changed_runbook: bool,
    /// Steps an operator waived after they failed, and steps skipped, in plan order: a run that
    /// "succeeded" with any of these says so.
    pub exceptions: Vec<ExceptionRow>,
    /// Simulator time acceleration (1 on live environments).
    pub time_scale: f64,
    /// What the run used that Microsoft does not support (e.g. the dual-write gateway mode), one label each.
    pub unsupported: Vec<String>,
    pub events: u64,
    pub first_event_id: i64,
    pub last_event_id: i64,
    /// Hash of the run's last journal row.
    pub last_event_hash: Option<String>,
    /// Hash of the journal's chain head (covers this run and everything before it).
    pub chain_head_hash: Option<String>,
}

/// A step that did not succeed and did not stop the run.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ExceptionRow {
    pub step: String,
    /// `waived` or `skipped`.
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct RunListing {
    pub run_id: String,
    pub runbook: String,
    pub version: String,
    pub operator: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: String,
    pub events: u64,
    /// True for the run this report is about.
    pub selected: bool,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PhaseRow {
    pub phase: String,
    pub steps: usize,
    /// `done`, `failed`, `running`, `waiting`, `pending` or `partial`.
    pub status: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub actual_ms: Option<u64>,
    /// Steps outside waves add up; a wave counts its longest map step (the maps run at once) plus
    /// its gate. Each step's estimate is its plan `estimate_ms`, else the reducer's default.
    pub planned_ms: u64,
    /// `actual_ms - planned_ms` (positive: the phase overran its plan).
    pub over_ms: Option<i64>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct WaveRow {
    pub phase: String,
    pub wave: String,
    pub maps: Vec<String>,
    pub steps: usize,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub actual_ms: Option<u64>,
    pub planned_ms: u64,
    /// The last gate verdict for this wave, if any.
    pub gate_passed: Option<bool>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct StepRow {
    pub id: String,
    pub phase: String,
    pub wave: Option<String>,
    pub kind: String,
    pub title: String,
    pub map: Option<String>,
    /// False for a step the engine reported that was not in the plan.
    pub planned: bool,
    /// `pending`, `running`, `awaiting_operator`, `succeeded`, `failed`, `skipped` or `waived`.
    pub status: String,
    /// The failure message, skip reason or waiver reason.
    pub detail: Option<String>,
    pub attempts: u32,
    /// Start of the first attempt.
    pub first_started_at: Option<String>,
    /// Start of the latest attempt.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Duration of the latest finished attempt.
    pub duration_ms: Option<u64>,
    /// From the first attempt's start to the final finish (retries and waits included).
    pub elapsed_ms: Option<u64>,
    pub estimate_ms: u64,
    pub requests: u64,
    /// The external handle of the latest attempt (`kind:id`).
    pub handle: Option<String>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct DecisionRow {
    pub at: String,
    pub event_id: i64,
    pub step: Option<String>,
    /// What was asked (`approve_manual`, `gate_failure`, ...), when the engine asked.
    pub asked: Option<String>,
    pub prompt: Option<String>,
    /// `approve`, `retry`, `skip`, `waive`, `abort`, `pause`, `resume`, `confirm` or `take_over_lease`.
    pub action: String,
    pub operator: String,
    pub reason: Option<String>,
    pub checklist_done: Vec<String>,
    /// Who was signed in (device code or Azure CLI) when the decision was taken: object id, UPN, tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<SignedIn>,
}

/// A signed-in identity as the evidence pack shows it (the journaled `model::Identity`).
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[schemars(
    rename = "Identity",
    description = "The person behind a delegated token (device code, Azure CLI)."
)]
pub struct SignedIn {
    /// Object id of the user in the tenant (`oid`).
    pub oid: String,
    /// `upn`, else `preferred_username`, else `unique_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Tenant id (`tid`).
    pub tid: String,
    /// Display name (`name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<&crate::model::Identity> for SignedIn {
    fn from(i: &crate::model::Identity) -> Self {
        Self {
            oid: i.oid.clone(),
            upn: i.upn.clone(),
            tid: i.tid.clone(),
            name: i.name.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct GateRow {
    pub at: String,
    pub event_id: i64,
    pub step: String,
    pub wave: Option<String>,
    pub passed: bool,
    /// True on a failed verdict that an operator then waived (the gate step's last verdict, the step
    /// ended waived): the run went on past it.
    pub waived: bool,
    /// The counts of the wave's maps at the moment of the verdict (every map of the run when the
    /// gate names no wave), failing rows included.
    pub counts: Vec<GateCount>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct GateCount {
    pub map: String,
    pub company: Option<String>,
    pub source: u64,
    pub target: u64,
    pub difference: i64,
    pub allowed: u64,
    /// Error-queue entries counted against the gate's `max_errors`.
    pub errors: u64,
    /// True when the gate named this row among its failures.
    pub failed: bool,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ParityRow {
    pub map: String,
    pub company: Option<String>,
    pub first_at: String,
    pub first_source: u64,
    pub first_target: u64,
    pub first_difference: i64,
    pub last_at: String,
    pub last_source: u64,
    pub last_target: u64,
    pub last_difference: i64,
    /// The allowed absolute difference at the last source count.
    pub allowed: u64,
    /// `within` or `drift` at the last sample.
    pub status: String,
    pub samples: u64,
    /// The largest |difference| sampled.
    pub peak_difference: u64,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct ErrorTotal {
    pub map: String,
    pub category: String,
    pub count: u64,
    /// The error source the figure comes from (`dataverse.asyncoperations`, `dmf.execution_errors`, ...);
    /// in journals written before error sources `reported` (the old queue's totals) or `seen` (entries the
    /// run counted).
    pub source: String,
    /// Why the source could not be read (then `count` means nothing: the figure is not available, not 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct AlertRow {
    pub at: String,
    pub event_id: i64,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub map: Option<String>,
    pub message: String,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct InstallRow {
    pub at: String,
    pub step: String,
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub execution_id: String,
    pub result: String,
}

/// The owner of one map, or of one field of it.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct OwnershipRow {
    pub map: String,
    /// The field; absent for the map's own row.
    pub field: Option<String>,
    /// `fno`, `dataverse`, or `none` (a map the runbook gave no owner).
    pub owner: String,
    pub why: Option<String>,
    /// The map's initial-sync master (`fno` by default).
    pub master: String,
}

/// One plug-in step or cloud flow the run turned off.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct AutomationRow {
    pub env: String,
    /// `plugin_step` or `flow`.
    pub kind: String,
    pub name: String,
    /// The table's logical name.
    pub table: String,
    /// The step that turned it off.
    pub step: String,
    /// Its state before the run: `on` or `off` (an automation already off stays off).
    pub before: String,
    pub off_at: String,
    /// When it was put back; absent while it is still off.
    pub restored_at: Option<String>,
    /// What put it back: a step id, or `abort`.
    pub restored_by: Option<String>,
    /// How long it was off (to the end of the journal while still off), readable.
    pub off_for: String,
}

/// One `dualwrite.batch_window`: the maps it paused, when, for how long, and what resumed them.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct BatchWindowRow {
    pub step: String,
    pub maps: Vec<String>,
    pub paused_at: String,
    /// When the maps were resumed; absent while they are still paused.
    pub resumed_at: Option<String>,
    /// What resumed them: the step, or `abort`.
    pub resumed_by: Option<String>,
    /// Whether the operator confirmed the batch job in the window.
    pub confirmed: bool,
    /// How long the maps were paused (to the end of the journal while still paused), readable; dual-write
    /// queues a paused map's changes for at most 1 day.
    pub paused_for: String,
}

/// An exported package kept beside the journal.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct DownloadRow {
    pub at: String,
    pub step: String,
    pub execution_id: String,
    pub package: String,
    /// Relative to the journal's folder.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// The latest row-level parity of one map (and company), with the keys it sampled.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct RowsRow {
    pub at: String,
    pub step: String,
    pub map: String,
    pub company: Option<String>,
    pub source_rows: u64,
    pub target_rows: u64,
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub scratch_bytes: u64,
    pub sample: Vec<RowSampleRow>,
}

/// One key a `sample` step found differing: `missing` (on the map's source, not its target), `extra` (the
/// other way round) or `different`, with the fields that differ.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct SampleKeyRow {
    pub at: String,
    pub step: String,
    pub map: String,
    pub company: Option<String>,
    pub class: String,
    pub key: String,
    /// `field: source ≠ target`, one per differing field.
    pub differences: Vec<String>,
}

/// A dual-write error seen during the run and gone from its source by the end.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct ResolvedErrorRow {
    pub map: String,
    /// The error source that listed it, then no longer did.
    pub source: String,
    /// The source's id of the entry.
    pub id: String,
    pub key: String,
    pub category: String,
    pub message: String,
    /// When it was first journaled.
    pub seen_at: String,
    /// The first read of the source (that listed every entry) without it, after which it never came back.
    pub resolved_by: String,
}

/// One sampled key: `missing`, `extra` or `different`, and for `different` the fields that differ.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct RowSampleRow {
    pub class: String,
    pub key: String,
    /// `field: source ≠ target`, one per differing field.
    pub differences: Vec<String>,
}

/// One `cutover preflight --journal`: who ran it against what, and every line it printed.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PreflightRow {
    pub at: String,
    pub event_id: i64,
    pub runbook: String,
    pub version: String,
    pub runbook_sha256: String,
    /// True when the preflight checked the very runbook this run ran (the same sha256).
    pub same_runbook: bool,
    pub operator: String,
    pub host: String,
    /// `live`, or `simulator`.
    pub target: String,
    pub ok: u64,
    pub warnings: u64,
    pub errors: u64,
    pub skipped: u64,
    pub checks: Vec<PreflightLine>,
}

/// One line of a preflight.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct PreflightLine {
    pub check: String,
    pub subject: String,
    /// `ok`, `warning`, `error` or `skipped`.
    pub status: String,
    pub message: String,
    pub fix: Option<String>,
}

/// Down-sampled series for the HTML charts (at most [`super::build::CHART_POINTS`] points each).
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Charts {
    /// Milliseconds from the run's start to its last event (the x axis).
    pub span_ms: u64,
    /// Parity difference (source - target) over time for the rows that drifted most, each from its map's
    /// initial sync on (before it, the difference is the copy's progress, not drift).
    pub parity: Vec<Series>,
    /// Parity rows left out of `parity` (they drifted less).
    pub parity_omitted: usize,
    /// Cumulative error-queue entries seen over time.
    pub errors: Vec<Point>,
}

#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Series {
    /// `map` or `map/company`.
    pub label: String,
    pub points: Vec<Point>,
}

#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// Milliseconds since the run's start.
    pub t_ms: u64,
    pub value: i64,
}
