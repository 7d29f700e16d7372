//! `cutover runs JOURNAL`: the runs of a journal (id, runbook, version, started, events, status).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, exit};
use crate::engine::event::RunOutcome;

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The journal to list.
    pub journal: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `cutover runs`.
pub fn run(args: &RunsArgs) -> i32 {
    let reader = match crate::journal::JournalReader::open_read_only(&args.journal) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::INVALID;
        }
    };
    let runs = match reader.runs() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::FAILED;
        }
    };
    if args.format == OutputFormat::Json {
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_else(|_| "[]".into())
        );
        return exit::OK;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<36}  {:<20} {:<9} {:<20} {:>7}  status",
        "run", "runbook", "version", "started (UTC)", "events"
    );
    for r in &runs {
        let status = match &r.outcome {
            None => "unfinished".to_owned(),
            Some(RunOutcome::Succeeded) => "succeeded".to_owned(),
            Some(RunOutcome::Failed { message }) => format!("failed: {message}"),
            Some(RunOutcome::Aborted { reason }) => format!("aborted: {reason}"),
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<20} {:<9} {:<20} {:>7}  {status}",
            r.run_id,
            r.runbook,
            r.version,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.events
        );
    }
    exit::OK
}
