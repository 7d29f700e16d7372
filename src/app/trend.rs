//! `cutover trend JOURNAL…`: per map, day by day (a hypercare journal holds one run a day), the drift, the
//! dual-write errors by category and the sample results (`audit::trend`); a table, or `--format json|csv`.
//! The weekly review reads it; `cutover report --format html` draws it as a chart.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::exit;

/// How `cutover trend` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TrendFormat {
    #[default]
    Text,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct TrendArgs {
    /// One or more journals (a hypercare journal, and the weekend's if wanted), read only.
    #[arg(required = true)]
    pub journals: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: TrendFormat,
}

/// `cutover trend`.
pub fn run(args: &TrendArgs) -> i32 {
    let paths: Vec<&std::path::Path> = args.journals.iter().map(PathBuf::as_path).collect();
    let rows = match crate::audit::trend::trend(&paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover: {}", crate::util::inert_line(&e.to_string()));
            return exit::INVALID;
        }
    };
    let text = match args.format {
        TrendFormat::Text => crate::audit::trend::text(&rows),
        TrendFormat::Csv => crate::audit::trend::csv(&rows),
        TrendFormat::Json => serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into()),
    };
    // Map names, categories and run ids come from journals: each line made inert before it reaches a terminal.
    let inert: Vec<String> = text
        .lines()
        .map(|l| crate::util::inert_line(l).into_owned())
        .collect();
    super::out!("{}\n", inert.join("\n"));
    exit::OK
}
