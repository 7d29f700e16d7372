//! `cutover run RUNBOOK`: drive a runbook (the console on a terminal, headless otherwise); on a
//! journal whose last run is unfinished, resume it.

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Args;

use super::drive::{DriveArgs, drive_and_settle, interactive_note, options, process_env};
use super::exit;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook to run.
    pub runbook: PathBuf,
    /// Journal file (default ./<runbook>-<date>.journal).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub drive: DriveArgs,
}

fn default_journal(runbook: &Path) -> PathBuf {
    let name = std::fs::read_to_string(runbook)
        .ok()
        .and_then(|t| crate::runbook::load(&t, "").runbook.map(|r| r.runbook))
        .or_else(|| runbook.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into());
    PathBuf::from(format!("{name}-{}.journal", Utc::now().format("%Y-%m-%d")))
}

/// `cutover run`.
pub fn run(args: &RunArgs) -> color_eyre::Result<i32> {
    interactive_note(args.drive.headless);
    let journal = args.journal.clone().unwrap_or_else(|| {
        let j = default_journal(&args.runbook);
        eprintln!("cutover: journal {}", j.display());
        j
    });
    let (opts, det) = match options(
        &args.drive,
        Some(args.runbook.clone()),
        journal,
        process_env(),
        "auto-approved (headless --auto-approve)",
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cutover: {e}");
            return Ok(exit::INVALID);
        }
    };
    drive_and_settle(opts, det, args.drive.headless, args.drive.format)
}
