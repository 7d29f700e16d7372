//! `cutover resume JOURNAL`: carry on with a journal's unfinished run exactly where it stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::demo::{demo_env, unfinished_demo_text};
use super::drive::{DriveArgs, drive_and_settle, interactive_note, options, process_env};
use super::exit;
use crate::runbook::EnvLookup;

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The journal of the run to resume.
    pub journal: PathBuf,
    /// The runbook file (default: the file the run was started from, else the journaled text).
    #[arg(long)]
    pub runbook: Option<PathBuf>,
    #[command(flatten)]
    pub drive: DriveArgs,
}

/// The variables to resume `journal` with: a run of the built-in demo runbook gets the demo's, so
/// `cutover resume` works on a demo journal as the console's quit message says it does.
fn resume_env(journal: &Path) -> Arc<dyn EnvLookup + Send + Sync> {
    if unfinished_demo_text(journal).is_some() {
        demo_env()
    } else {
        process_env()
    }
}

/// `cutover resume`.
pub fn run(args: &ResumeArgs) -> color_eyre::Result<i32> {
    interactive_note(args.drive.headless);
    if !args.journal.is_file() {
        eprintln!("cutover: {}: no such journal", args.journal.display());
        return Ok(exit::INVALID);
    }
    let (mut opts, det) = match options(
        &args.drive,
        args.runbook.clone(),
        args.journal.clone(),
        resume_env(&args.journal),
        "auto-approved (headless --auto-approve)",
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cutover: {e}");
            return Ok(exit::INVALID);
        }
    };
    opts.resume_only = true;
    drive_and_settle(opts, det, args.drive.headless, args.drive.format)
}
