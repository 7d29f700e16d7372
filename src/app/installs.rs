//! `cutover installs JOURNAL…`: every package install across journals and environments, newest first (or by
//! package or version), with drift flagged: the same package at different versions in two environments.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::exit;
use crate::audit::installs::{self, SortBy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum InstallsFormat {
    #[default]
    Text,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct InstallsArgs {
    /// The journals to read (one per environment, or several runs each).
    #[arg(required = true)]
    pub journals: Vec<PathBuf>,
    /// Order: time (newest first), package, or version (highest first within a package).
    #[arg(long, value_enum, default_value_t)]
    pub sort: SortBy,
    #[arg(long, value_enum, default_value_t)]
    pub format: InstallsFormat,
}

/// `cutover installs`: exit 0, or 1 when a package drifted, 2 when a journal cannot be read.
pub fn run(args: &InstallsArgs) -> i32 {
    let (list, drifts) = match installs::collect(&args.journals, args.sort) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {}", crate::util::inert_line(&e));
            return exit::INVALID;
        }
    };
    let clean = |s: &str| crate::util::inert_line(s).into_owned();
    match args.format {
        InstallsFormat::Json => {
            let v = serde_json::json!({"installs": list, "drift": drifts});
            super::outln!(
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())
            );
        }
        InstallsFormat::Csv => {
            let f = crate::audit::csv::field;
            let mut out = String::from(
                "at,environment,package,version,sha256,execution_id,result,record_count,drift,journal,run_id,runbook,step\r\n",
            );
            for i in &list {
                let cells = [
                    f(&i.at),
                    f(&i.environment),
                    f(&i.package),
                    f(&i.version),
                    f(&i.sha256),
                    f(&i.execution_id),
                    f(&i.result),
                    i.record_count.map(|n| n.to_string()).unwrap_or_default(),
                    i.drift.to_string(),
                    f(&i.journal),
                    f(&i.run_id),
                    f(&i.runbook),
                    f(&i.step),
                ];
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            }
            super::out!("{out}");
        }
        InstallsFormat::Text => {
            let mut out = String::new();
            if list.is_empty() {
                out.push_str("no package installs in these journals\n");
            } else {
                out.push_str(&format!(
                    "{:<20}  {:<34} {:<24} {:<12} {:<12} {:<18} DRIFT\n",
                    "TIME", "ENVIRONMENT", "PACKAGE", "VERSION", "SHA256", "RESULT"
                ));
            }
            for i in &list {
                out.push_str(&format!(
                    "{:<20}  {:<34} {:<24} {:<12} {:<12} {:<18} {}\n",
                    i.at,
                    clean(&i.environment),
                    clean(&i.package),
                    clean(&i.version),
                    &i.sha256[..i.sha256.len().min(12)],
                    clean(&i.result),
                    if i.drift { "drift" } else { "" }
                ));
            }
            for d in &drifts {
                let vs: Vec<String> = d
                    .versions
                    .iter()
                    .map(|(e, v)| format!("{} at {}", clean(e), clean(v)))
                    .collect();
                out.push_str(&format!("drift: {}: {}\n", clean(&d.package), vs.join(", ")));
            }
            super::out!("{out}");
        }
    }
    if drifts.is_empty() { exit::OK } else { exit::FAILED }
}
