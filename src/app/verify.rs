//! `cutover verify JOURNAL`: recompute the hash chain and the runbook hashes, read-only; exit 0
//! intact, 1 naming the first event that does not verify, 2 not a journal.

use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, exit};
use crate::audit::verify_journal;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `cutover verify JOURNAL`: 0 intact, 1 the first event that does not verify, 2 not a journal.
pub fn run(args: &VerifyArgs) -> i32 {
    let verdict = match verify_journal(&args.journal) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cutover verify: {}: {e}", args.journal.display());
            return exit::INVALID;
        }
    };
    let code = if verdict.result.is_ok() {
        exit::OK
    } else {
        exit::FAILED
    };
    if args.format == OutputFormat::Json {
        let value = match &verdict.result {
            Ok(r) => serde_json::json!({"verified": true, "report": r, "runs": verdict.runs}),
            Err(f) => serde_json::json!({"verified": false, "failure": f, "runs": verdict.runs}),
        };
        super::outln!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return code;
    }
    match &verdict.result {
        Ok(r) => {
            super::outln!(
                "journal intact: {} events, {} run(s), chain head {} (event {})",
                r.events,
                r.runs,
                r.head_hash,
                r.last_id
            );
            for run in &verdict.runs {
                super::outln!(
                    "  run {}  {} {}  runbook sha256 {} ok  {} events  started {}",
                    run.run_id,
                    run.runbook,
                    run.version,
                    run.runbook_sha256,
                    run.events,
                    crate::audit::text::at(run.started_at)
                );
            }
        }
        Err(f) => {
            let run = f
                .run_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
            super::outln!(
                "journal does NOT verify: event {} (run {run}, seq {seq}): {}",
                f.event_id,
                f.reason
            );
        }
    }
    code
}
