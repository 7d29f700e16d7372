//! `cutover replay` and `cutover watch`: open the journal read-only, verify it (refusing one that
//! does not verify unless `--unverified`), pick the run, and run the replay console on the
//! terminal until the operator quits.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::app::ConsoleConfig;
use super::event_loop::Timing;
use super::replay::{Jump, Replay, ReplayMode, parse_jump};
use super::{replay_loop, replay_source, terminal};
use crate::audit::{self, AuditError};
use crate::cli::{ReplayArgs, WatchArgs};
use crate::engine::RunId;
use crate::exit;
use crate::journal::{JournalReader, RunSummary, VerifyFailure};

/// A journal checked and ready to replay.
pub struct Prepared {
    pub run: RunSummary,
    /// Verification failed and `--unverified` was given.
    pub unverified: bool,
}

/// Why a replay does not start, with the exit code it maps to.
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

impl ReplayError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ReplayError::Unverified(_) => exit::FAILED,
            _ => exit::INVALID,
        }
    }
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
fn check_event(path: &Path, run: &RunId, id: i64) -> Result<(), ReplayError> {
    let reader = JournalReader::open_read_only(path).map_err(AuditError::Journal)?;
    match reader.run_of_event(id).ok().flatten() {
        Some(r) if r == *run => Ok(()),
        _ => Err(ReplayError::EventNotInRun(id, run.clone())),
    }
}

/// `cutover replay JOURNAL`: 0 after the operator quits, 1 refused (does not verify), 2 invalid.
pub fn cmd_replay(args: &ReplayArgs) -> i32 {
    let first = || -> Result<(Prepared, Option<Jump>), ReplayError> {
        let prep = prepare(&args.journal, args.run.as_deref(), args.unverified)?;
        let first = match (&args.at, args.event) {
            (Some(at), _) => Some(parse_jump(at, prep.run.started_at).map_err(ReplayError::BadFlag)?),
            (None, Some(id)) => {
                check_event(&args.journal, &prep.run.run_id, id)?;
                Some(Jump::Event(id))
            }
            (None, None) => None,
        };
        Ok((prep, first))
    };
    match first() {
        Ok((prep, jump)) => open_console(
            &args.journal,
            &prep,
            ReplayMode::Replay,
            jump,
            args.speed,
            "replay",
        ),
        Err(e) => {
            eprintln!("cutover replay: {}: {e}", args.journal.display());
            e.exit_code()
        }
    }
}

/// `cutover watch JOURNAL`: follow a run another process drives, read-only.
pub fn cmd_watch(args: &WatchArgs) -> i32 {
    match prepare(&args.journal, args.run.as_deref(), args.unverified) {
        Ok(prep) => open_console(&args.journal, &prep, ReplayMode::Watch, None, None, "watch"),
        Err(e) => {
            eprintln!("cutover watch: {}: {e}", args.journal.display());
            e.exit_code()
        }
    }
}

fn open_console(
    path: &Path,
    prep: &Prepared,
    mode: ReplayMode,
    first: Option<Jump>,
    speed: Option<u32>,
    name: &str,
) -> i32 {
    if !super::stdout_is_terminal() {
        eprintln!(
            "cutover {name}: needs a terminal (stdout is not one); `cutover report` writes the run as text"
        );
        return exit::INVALID;
    }
    if prep.unverified {
        eprintln!("cutover {name}: WARNING: the journal does not verify; every screen says UNVERIFIED");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover {name}: {e}");
            return exit::FAILED;
        }
    };
    let path: PathBuf = path.to_path_buf();
    let run = prep.run.run_id.clone();
    let unverified = prep.unverified;
    let result = runtime.block_on(async move {
        let (requests, replies) = replay_source::spawn(path.clone(), run, mode == ReplayMode::Watch);
        let mut cfg = ConsoleConfig::new(mode.label().to_lowercase());
        cfg.journal_path = Some(path.clone());
        let mut replay = Replay::new(cfg, mode, unverified, requests, first);
        if let Some(s) = speed {
            replay.play(s);
        }
        terminal::install_panic_hook(Some(path), None);
        let (mut term, guard) = terminal::enter()?;
        let cancel = CancellationToken::new();
        let on_signal = cancel.clone();
        let signals = tokio::spawn(async move {
            super::console::wait_for_terminate().await;
            on_signal.cancel();
        });
        let input = crossterm::event::EventStream::new();
        let r = replay_loop::drive_replay(&mut term, &mut replay, input, replies, cancel, Timing::default())
            .await;
        signals.abort();
        drop(guard);
        r.map(|_| replay.failure().map(str::to_owned))
    });
    match result {
        Ok(None) => exit::OK,
        Ok(Some(failure)) => {
            eprintln!("cutover {name}: the journal could not be read: {failure}");
            exit::FAILED
        }
        Err(e) => {
            eprintln!("cutover {name}: terminal: {e}");
            exit::FAILED
        }
    }
}
