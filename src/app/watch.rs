//! `cutover watch JOURNAL`: follow a run another process is driving, read-only (the replay's
//! console, labelled WATCH, polling the journal).

use std::path::PathBuf;

use clap::Args;

use crate::tui::replay::ReplayMode;
use crate::tui::replay::open::prepare;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The journal file another process is driving (opened read-only).
    pub journal: PathBuf,
    /// The run to follow: its id or a unique prefix (default: the latest run).
    #[arg(long)]
    pub run: Option<String>,
    /// Watch a journal that does not verify; every screen then says UNVERIFIED.
    #[arg(long)]
    pub unverified: bool,
}

/// `cutover watch JOURNAL`: follow a run another process drives, read-only.
pub fn run(args: &WatchArgs) -> color_eyre::Result<i32> {
    match prepare(&args.journal, args.run.as_deref(), args.unverified) {
        Ok(prep) => super::replay::open_console(&args.journal, &prep, ReplayMode::Watch, None, None, "watch"),
        Err(e) => {
            eprintln!("cutover watch: {}: {e}", args.journal.display());
            Ok(super::exit::of_replay(&e))
        }
    }
}
