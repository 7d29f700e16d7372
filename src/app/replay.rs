//! `cutover replay JOURNAL`: the console as it was, event by event, read-only: verified first
//! (refused unless `--unverified`), then step, jump to landmarks or times, play.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{exit, runtime};
use crate::tui::Theme;
use crate::tui::replay::open::{Prepared, ReplayError, check_event, prepare, run_replay};
use crate::tui::replay::{Jump, ReplayMode, parse_jump};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    /// The run to replay: its id or a unique prefix (default: the latest run).
    #[arg(long)]
    pub run: Option<String>,
    /// Replay a journal that does not verify; every screen then says UNVERIFIED.
    #[arg(long)]
    pub unverified: bool,
    /// Start at this time: HH:MM[:SS] (UTC, on the run's first day or the next) or RFC 3339.
    #[arg(long, value_name = "TIME", conflicts_with = "event")]
    pub at: Option<String>,
    /// Start right after this journal event (the id `cutover verify` and reports print).
    #[arg(long, value_name = "ID")]
    pub event: Option<i64>,
    /// Start playing at this many times the recorded pace (keys + and - change it).
    #[arg(long, value_name = "X", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub speed: Option<u32>,
}

/// `cutover replay JOURNAL`: 0 after the operator quits, 1 refused (does not verify), 2 invalid.
pub fn run(args: &ReplayArgs) -> color_eyre::Result<i32> {
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
            Ok(exit::of_replay(&e))
        }
    }
}

/// Runs the replay console on the terminal; 0 after the operator quits, 1 when the journal could
/// not be read part way or the terminal failed, 2 without a terminal.
pub(super) fn open_console(
    path: &Path,
    prep: &Prepared,
    mode: ReplayMode,
    first: Option<Jump>,
    speed: Option<u32>,
    name: &str,
) -> color_eyre::Result<i32> {
    if !std::io::stdout().is_terminal() {
        eprintln!(
            "cutover {name}: needs a terminal (stdout is not one); `cutover report` writes the run as text"
        );
        return Ok(exit::INVALID);
    }
    if prep.unverified {
        eprintln!("cutover {name}: WARNING: the journal does not verify; every screen says UNVERIFIED");
    }
    let theme = Theme {
        color: super::colour_enabled(),
    };
    let result = runtime::block_on(|interrupt| run_replay(path, prep, mode, first, speed, theme, interrupt))?;
    Ok(match result {
        Ok(None) => exit::OK,
        Ok(Some(failure)) => {
            eprintln!("cutover {name}: the journal could not be read: {failure}");
            exit::FAILED
        }
        Err(e) => {
            eprintln!("cutover {name}: terminal: {e}");
            exit::FAILED
        }
    })
}
