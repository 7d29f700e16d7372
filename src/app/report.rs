//! `cutover report JOURNAL`: a run's evidence pack as Markdown, HTML, JSON or CSV; exit 0 written,
//! 1 refused (the journal does not verify, without `--unverified`), 2 invalid input.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::exit;
use crate::audit::{AuditError, build_report_with, csv, html, markdown};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    #[default]
    Md,
    Html,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    /// The run to report on: its id or a unique prefix (default: the latest run).
    #[arg(long)]
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
    /// Output file (md, html, json; default stdout) or directory (csv; required).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Report on a journal that does not verify; every page and section then says UNVERIFIED.
    #[arg(long)]
    pub unverified: bool,
    /// Check the checkpoints and the chain against these keys and anchors (as `cutover verify`); the
    /// report says which verified. The report is written either way; exit 1 when one does not verify.
    #[command(flatten)]
    pub evidence: super::verify::EvidenceArgs,
}

fn code_of(e: &AuditError) -> i32 {
    match e {
        AuditError::Unverified(_) => exit::FAILED,
        _ => exit::INVALID,
    }
}

fn write_out(path: Option<&Path>, text: &str) -> Result<(), AuditError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|e| AuditError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        }),
        None => {
            super::write_stdout(text);
            Ok(())
        }
    }
}

/// `cutover report JOURNAL`: 0 written, 1 refused (the journal does not verify), 2 invalid input.
pub fn run(args: &ReportArgs) -> i32 {
    if args.format == ReportFormat::Csv && args.output.is_none() {
        eprintln!("cutover report: --format csv writes one file per table: give a directory with -o DIR");
        return exit::INVALID;
    }
    let input = match args.evidence.input() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("cutover report: {e}");
            return exit::INVALID;
        }
    };
    let report = match build_report_with(&args.journal, args.run.as_deref(), args.unverified, &input) {
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
        Ok(()) if !report.verification.anchoring.ok => {
            eprintln!(
                "cutover report: the checkpoints or anchors do NOT verify: {}",
                report.verification.anchoring.statement
            );
            exit::FAILED
        }
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("cutover report: {e}");
            exit::INVALID
        }
    }
}
