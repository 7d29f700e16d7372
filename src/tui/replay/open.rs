//! Opening a replay or a watch: the journal read-only and verified (one that does not verify is
//! refused unless `--unverified`), the run picked, then the replay console on the terminal until the
//! operator quits. The edge's `cutover replay` and `cutover watch` call these.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Jump, Replay, ReplayMode};
use super::{event_loop as replay_loop, source as replay_source};
use crate::audit::{self, AuditError};
use crate::engine::RunId;
use crate::journal::{JournalReader, RunSummary, VerifyFailure};
use crate::tui::app::ConsoleConfig;
use crate::tui::event_loop::Timing;
use crate::tui::terminal;

/// A journal checked and ready to replay.
pub struct Prepared {
    pub run: RunSummary,
    /// Verification failed and `--unverified` was given.
    pub unverified: bool,
}

/// Why a replay does not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Audit(#[from] AuditError),
    /// The journal does not verify and `--unverified` was not given.
    #[error(
        "the journal does not verify: event {} (run {}, seq {}): {} (pass --unverified to replay it anyway; every screen then says UNVERIFIED)",
        .0.event_id,
        .0.run_id.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
        .0.seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        .0.reason
    )]
    Unverified(VerifyFailure),
    #[error("event #{0} is not in run {1}")]
    EventNotInRun(i64, RunId),
    #[error("{0}")]
    BadFlag(String),
}

/// Verifies the journal (one read transaction, so a writer appending meanwhile cannot make an
/// intact journal look cut) and picks the run (`run`: id or unique prefix; default the latest).
pub fn prepare(path: &Path, run: Option<&str>, allow_unverified: bool) -> Result<Prepared, ReplayError> {
    let reader = audit::open(path)?;
    let (verdict, runs) = reader
        .snapshot(|r| (r.verify(), r.runs()))
        .map_err(AuditError::Journal)?;
    let verdict = verdict.map_err(AuditError::Journal);
    let runs = runs.map_err(AuditError::Journal);
    let unverified = match verdict? {
        Ok(_) => false,
        Err(f) if allow_unverified => {
            tracing::warn!("replaying a journal that does not verify: {f}");
            true
        }
        Err(f) => return Err(ReplayError::Unverified(f)),
    };
    let run = audit::select_run(&runs?, run)?;
    Ok(Prepared { run, unverified })
}

/// Checks that `--event ID` names an event of the run.
pub fn check_event(path: &Path, run: &RunId, id: i64) -> Result<(), ReplayError> {
    let reader = JournalReader::open_read_only(path).map_err(AuditError::Journal)?;
    match reader.run_of_event(id).ok().flatten() {
        Some(r) if r == *run => Ok(()),
        _ => Err(ReplayError::EventNotInRun(id, run.clone())),
    }
}

/// Runs the replay (or watch) console on the terminal over a prepared journal until the operator
/// quits or `cancel` fires. `Ok(Some(reason))`: the journal could not be read part way.
pub async fn run_replay(
    path: &Path,
    prep: &Prepared,
    mode: ReplayMode,
    first: Option<Jump>,
    speed: Option<u32>,
    theme: crate::tui::Theme,
    cancel: CancellationToken,
) -> Result<Option<String>, crate::tui::ConsoleError> {
    let path: PathBuf = path.to_path_buf();
    let run = prep.run.run_id.clone();
    let (requests, replies) = replay_source::spawn(path.clone(), run, mode == ReplayMode::Watch);
    let mut cfg = ConsoleConfig::new(mode.label().to_lowercase());
    cfg.theme = theme;
    cfg.journal_path = Some(path.clone());
    let mut replay = Replay::new(cfg, mode, prep.unverified, requests, first);
    if let Some(s) = speed {
        replay.play(s);
    }
    terminal::install_panic_hook(Some(path), None);
    let (mut term, guard) = terminal::enter()?;
    let input = crossterm::event::EventStream::new();
    let r =
        replay_loop::drive_replay(&mut term, &mut replay, input, replies, cancel, Timing::default()).await;
    drop(guard);
    r?;
    Ok(replay.failure().map(str::to_owned))
}
