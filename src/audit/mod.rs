//! The auditor's side: verify a journal, and export a run's evidence pack, without being able to
//! change anything (every journal is opened with `SQLITE_OPEN_READ_ONLY`).
//!
//! - [`verify_journal`] recomputes the hash chain and every run's runbook hash
//!   ([`JournalReader::verify`]) and lists the runs.
//! - [`build_report`] folds one run's envelopes (streamed, never all in memory) through the one
//!   reducer plus an audit fold ([`build::Fold`]) into a [`Report`], verifying the journal in the
//!   same read of the table; it refuses a journal that fails verification
//!   unless `allow_unverified`, and then the report says UNVERIFIED everywhere.
//! - [`markdown`], [`html`], [`csv`] render it; JSON is the [`Report`] serialised, described by
//!   `assets/report.schema.json` ([`schema::generate`]).
//! - [`durations::measured_step_durations`] gives `plan --from-journal` a rehearsal's timings.
//! - [`timeline`] gives replay its landmarks (decisions, gates, failures, alerts) and event lookups.

pub mod assemble;
pub mod build;
pub mod csv;
pub mod durations;
pub mod evidence;
pub mod html;
pub mod installs;
pub mod markdown;
pub mod model;
pub mod schema;
mod series;
mod svg;
pub mod tables;
pub mod text;
pub mod timeline;
pub mod trend;

use std::path::Path;

pub use self::model::Report;
use self::model::{Verification, VerifyFailureInfo};
use crate::journal::{JournalError, JournalReader, RunSummary, VerifyFailure, VerifyReport};
use crate::model::RunId;

/// Runs of the selected run's runbook a journal needs before the report has a Trend section.
pub const TREND_MIN_RUNS: usize = 3;

/// Preflights the report keeps (the newest).
pub const PREFLIGHTS_KEPT: usize = 20;

/// Why an audit command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file is missing, not SQLite, or not a cutover journal.
    #[error("{0}")]
    NotAJournal(JournalError),
    #[error("the journal holds no run")]
    NoRuns,
    #[error("the journal has no run {0:?} (see `cutover runs`)")]
    UnknownRun(String),
    /// Verification failed and the caller did not allow an unverified report.
    #[error("the journal does not verify: {0} (pass --unverified to report anyway)")]
    Unverified(VerifyFailure),
    #[error("{0}")]
    Journal(#[from] JournalError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// The outcome of [`verify_journal`]: the chain's verdict and the runs it holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalVerdict {
    pub result: Result<VerifyReport, VerifyFailure>,
    pub runs: Vec<RunSummary>,
    /// The checkpoints and anchors, checked (see [`evidence`]).
    pub anchoring: evidence::Anchoring,
}

/// Open read-only (as a snapshot: see [`JournalReader::open_snapshot`]); any failure to open means "not a
/// journal" (exit 2 at the CLI).
pub fn open(path: &Path) -> Result<JournalReader, AuditError> {
    let reader = JournalReader::open_snapshot(path).map_err(AuditError::NotAJournal)?;
    // A file that is not SQLite fails at its first query, not at open: ask for the tables now.
    let has_events = reader.has_events_table().map_err(AuditError::NotAJournal)?;
    if !has_events {
        return Err(AuditError::NotAJournal(JournalError::Open {
            path: path.display().to_string(),
            message: "not a cutover journal (no events table)".into(),
        }));
    }
    Ok(reader)
}

/// Recompute the chain and the runbook hashes (`cutover verify`).
pub fn verify_journal(path: &Path) -> Result<JournalVerdict, AuditError> {
    verify_evidence(path, &evidence::EvidenceInput::default())
}

/// [`verify_journal`], and the checkpoints checked against `input`'s keys, the chain against its
/// anchors (`cutover verify --key --anchor --anchors`).
pub fn verify_evidence(path: &Path, input: &evidence::EvidenceInput) -> Result<JournalVerdict, AuditError> {
    let reader = open(path)?;
    let result = reader.verify()?;
    let runs = reader.runs()?;
    let anchoring = evidence::check(&reader, result.is_ok(), input)?;
    Ok(JournalVerdict {
        result,
        runs,
        anchoring,
    })
}

/// The run `wanted` names (an exact id, or a unique prefix of one), else the latest run.
pub fn select_run(runs: &[RunSummary], wanted: Option<&str>) -> Result<RunSummary, AuditError> {
    match wanted {
        None => runs.last().cloned().ok_or(AuditError::NoRuns),
        Some(w) => {
            if let Some(r) = runs.iter().find(|r| r.run_id.0 == w) {
                return Ok(r.clone());
            }
            let mut prefixed = runs.iter().filter(|r| r.run_id.0.starts_with(w));
            match (prefixed.next(), prefixed.next()) {
                (Some(r), None) if !w.is_empty() => Ok(r.clone()),
                _ => Err(AuditError::UnknownRun(w.to_owned())),
            }
        }
    }
}

fn verification_of(
    result: &Result<VerifyReport, VerifyFailure>,
    anchoring: evidence::Anchoring,
) -> Verification {
    match result {
        Ok(v) => Verification {
            verified: true,
            events: v.events,
            head_hash: Some(v.head_hash.clone()),
            head_event_id: Some(v.last_id),
            failure: None,
            anchoring,
        },
        Err(f) => Verification {
            verified: false,
            events: u64::try_from(f.event_id.saturating_sub(1)).unwrap_or(0),
            head_hash: None,
            head_event_id: None,
            failure: Some(VerifyFailureInfo {
                event_id: f.event_id,
                run_id: f.run_id.as_ref().map(|r| r.0.clone()),
                seq: f.seq,
                reason: f.reason.clone(),
            }),
            anchoring,
        },
    }
}

/// Build the evidence pack for one run (`run`: id or unique prefix; `None`: the latest run).
///
/// The chain is verified in the same read of the table that folds the run
/// ([`JournalReader::verify_and_for_each`]). With `allow_unverified` false a journal that fails
/// verification is refused with [`AuditError::Unverified`]; with it true the run is folded on its own.
pub fn build_report(path: &Path, run: Option<&str>, allow_unverified: bool) -> Result<Report, AuditError> {
    build_report_with(path, run, allow_unverified, &evidence::EvidenceInput::default())
}

/// [`build_report`] with the auditor's keys and anchors: the report says which checkpoints and
/// anchors verified, and with which key.
pub fn build_report_with(
    path: &Path,
    run: Option<&str>,
    allow_unverified: bool,
    input: &evidence::EvidenceInput,
) -> Result<Report, AuditError> {
    let reader = open(path)?;
    let runs = reader.runs()?;
    let selected = select_run(&runs, run)?;
    // One read of the table verifies the chain and folds the run, while a second connection runs
    // SQLite's own check of the file.
    let checker = open(path)?;
    let mut fold = build::Fold::default();
    let pass = reader.verify_and_for_each(&selected.run_id, Some(checker), |env| fold.apply(env))?;
    let verdict = pass.verdict;
    if let (Err(f), false) = (&verdict, allow_unverified) {
        return Err(AuditError::Unverified(f.clone()));
    }
    let fold = match pass.folded {
        Some(folded) => folded.map(|()| fold)?,
        // The journal does not verify and the pass stopped there: an unverified report folds the
        // run in `seq` order on its own.
        None => {
            let mut fold = build::Fold::default();
            reader.for_each_envelope(&selected.run_id, |env| fold.apply(env))?;
            fold
        }
    };
    let last_hash = last_event_hash(&reader, &selected.run_id)?;
    let anchoring = evidence::check(&reader, verdict.is_ok(), input)?;
    let preflights = reader.preflights(PREFLIGHTS_KEPT)?;
    let mut report = assemble::assemble(
        &fold,
        &runs,
        &selected,
        verification_of(&verdict, anchoring),
        last_hash,
    );
    report.preflights = assemble::preflight_rows(&preflights, &selected.runbook_sha256);
    // A trend is days of one runbook (hypercare): a rehearsal and the weekend are two runs, not a trend.
    if runs.iter().filter(|r| r.runbook == selected.runbook).count() >= TREND_MIN_RUNS {
        report.trend = trend::trend(&[path])?;
        report.trend.retain(|t| t.runbook == selected.runbook);
    }
    // Every run's package installs in this journal, newest first, drift flagged (across the environments the
    // journal's runs imported into); `cutover installs` does the same across journals.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut history = installs::read_with(&reader, &name)?;
    report.package_drift = installs::flag_drift(&mut history);
    installs::sort(&mut history, installs::SortBy::Time);
    report.package_installs = history;
    Ok(report)
}

fn last_event_hash(reader: &JournalReader, run: &RunId) -> Result<Option<String>, AuditError> {
    Ok(reader.last_hash_of_run(run)?)
}
