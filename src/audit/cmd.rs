//! `cutover verify` and `cutover report`: argument handling, output and exit codes. The work is in
//! [`super::verify_journal`] and [`super::build_report`].

use std::io::Write as _;
use std::path::Path;

use super::{AuditError, build_report, csv, html, markdown, verify_journal};
use crate::cli::{OutputFormat, ReportArgs, ReportFormat, VerifyArgs};
use crate::exit;

fn code_of(e: &AuditError) -> i32 {
    match e {
        AuditError::Unverified(_) => exit::FAILED,
        _ => exit::INVALID,
    }
}

/// `cutover verify JOURNAL`: 0 intact, 1 the first event that does not verify, 2 not a journal.
pub fn cmd_verify(args: &VerifyArgs) -> i32 {
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
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return code;
    }
    match &verdict.result {
        Ok(r) => {
            println!(
                "journal intact: {} events, {} run(s), chain head {} (event {})",
                r.events, r.runs, r.head_hash, r.last_id
            );
            for run in &verdict.runs {
                println!(
                    "  run {}  {} {}  runbook sha256 {} ok  {} events  started {}",
                    run.run_id,
                    run.runbook,
                    run.version,
                    run.runbook_sha256,
                    run.events,
                    super::text::at(run.started_at)
                );
            }
        }
        Err(f) => {
            let run = f
                .run_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
            println!(
                "journal does NOT verify: event {} (run {run}, seq {seq}): {}",
                f.event_id, f.reason
            );
        }
    }
    code
}

fn write_out(path: Option<&Path>, text: &str) -> Result<(), AuditError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| AuditError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| AuditError::Io {
                    path: "stdout".into(),
                    message: e.to_string(),
                })
        }
    }
}

/// `cutover report JOURNAL`: 0 written, 1 refused (the journal does not verify), 2 invalid input.
pub fn cmd_report(args: &ReportArgs) -> i32 {
    if args.format == ReportFormat::Csv && args.output.is_none() {
        eprintln!("cutover report: --format csv writes one file per table: give a directory with -o DIR");
        return exit::INVALID;
    }
    let report = match build_report(&args.journal, args.run.as_deref(), args.unverified) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover report: {}: {e}", args.journal.display());
            return code_of(&e);
        }
    };
    if !report.verification.verified {
        eprintln!("cutover report: WARNING: the journal does not verify; the report is marked UNVERIFIED");
    }
    let out = args.output.as_deref();
    let written = match args.format {
        ReportFormat::Md => write_out(out, &markdown::render(&report)),
        ReportFormat::Html => write_out(out, &html::render(&report)),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(mut t) => {
                t.push('\n');
                write_out(out, &t)
            }
            Err(e) => Err(AuditError::Io {
                path: "json".into(),
                message: e.to_string(),
            }),
        },
        ReportFormat::Csv => out.map_or(Ok(()), |dir| csv::write(&report, dir)),
    };
    match written {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("cutover report: {e}");
            exit::INVALID
        }
    }
}
