//! `cutover init`: a first runbook for an estate, from flags or (at a terminal) a few questions. The text
//! comes from [`crate::runbook::starter`]; this file asks, checks the answer validates, and writes the file
//! (never over an existing one).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use chrono::{Datelike, Duration, Utc};
use clap::Args;

use super::exit;
use crate::runbook::starter::{self, CATALOG, CORE, StarterOptions};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the runbook (refused when the file exists).
    #[arg(short, long, value_name = "FILE", default_value = "runbook.yaml")]
    pub out: PathBuf,
    /// The runbook's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Legal entities (F&O company codes), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub companies: Vec<String>,
    /// Maps to sync, comma-separated (their dependencies are added); `all` for every common map.
    #[arg(long, value_delimiter = ',')]
    pub maps: Vec<String>,
    /// Dual-write control: `operator` (Microsoft's supported way) or `gateway` (unsupported).
    #[arg(long, default_value = "operator")]
    pub mode: String,
    /// Freeze window start (RFC 3339, UTC; default: next Friday 18:00).
    #[arg(long, value_name = "TIME")]
    pub freeze_start: Option<String>,
    /// Freeze window end (RFC 3339, UTC; default: the Monday after at 08:00).
    #[arg(long, value_name = "TIME")]
    pub freeze_end: Option<String>,
    /// List the common maps `--maps` can name, in dependency order, and exit.
    #[arg(long)]
    pub list_maps: bool,
    /// Never ask (take the defaults for what the flags leave out), even at a terminal.
    #[arg(long)]
    pub no_input: bool,
}

/// The next Friday 18:00 UTC (a week later when today is Friday) and the Monday after at 08:00.
fn default_freeze() -> (String, String) {
    let today = Utc::now().date_naive();
    let ahead = (4 + 7 - i64::from(today.weekday().num_days_from_monday())) % 7;
    let friday = today + Duration::days(if ahead == 0 { 7 } else { ahead });
    let monday = friday + Duration::days(3);
    (format!("{friday}T18:00:00Z"), format!("{monday}T08:00:00Z"))
}

/// Asks one question on stderr; an empty answer keeps `default`.
fn ask(question: &str, default: &str) -> String {
    eprint!("{question} [{default}]: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(n) if n > 0 && !line.trim().is_empty() => line.trim().to_owned(),
        _ => default.to_owned(),
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// `cutover init`.
pub fn run(args: &InitArgs) -> i32 {
    if args.list_maps {
        for m in CATALOG {
            let deps = if m.depends_on.is_empty() {
                String::new()
            } else {
                format!(" (needs {})", m.depends_on.join(", "))
            };
            super::outln!(
                "{:<24} fno:{} → dataverse:{}  {}{deps}",
                m.id,
                m.source,
                m.target,
                m.what
            );
        }
        return exit::OK;
    }
    if args.out.exists() {
        eprintln!(
            "error: {} exists: cutover init never overwrites a runbook (name another file with -o)",
            args.out.display()
        );
        return exit::INVALID;
    }
    let interactive = !args.no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let name = match (&args.name, interactive) {
        (Some(n), _) => n.clone(),
        (None, true) => ask("Runbook name", "cutover-weekend"),
        (None, false) => "cutover-weekend".to_owned(),
    };
    let companies = match (args.companies.is_empty(), interactive) {
        (false, _) => args.companies.clone(),
        (true, true) => list(&ask("Legal entities (comma-separated)", "USMF")),
        (true, false) => vec!["USMF".to_owned()],
    };
    let core = CORE.join(",");
    let maps_text = match (args.maps.is_empty(), interactive) {
        (false, _) => args.maps.join(","),
        (true, true) => {
            eprintln!("Common maps (`cutover init --list-maps` for what each needs):");
            let ids: Vec<&str> = CATALOG.iter().map(|m| m.id).collect();
            eprintln!("  {}", ids.join(", "));
            ask("Maps to sync (comma-separated, or all)", &core)
        }
        (true, false) => core,
    };
    let maps = if maps_text.trim() == "all" {
        CATALOG.iter().map(|m| m.id.to_owned()).collect()
    } else {
        list(&maps_text)
    };
    let (start, end) = default_freeze();
    let opts = StarterOptions {
        name,
        companies,
        maps,
        mode: args.mode.clone(),
        freeze: (
            args.freeze_start.clone().unwrap_or(start),
            args.freeze_end.clone().unwrap_or(end),
        ),
    };
    let text = match starter::render(&opts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    // What init writes must validate (variables may be unset here: that is the operator's to fill).
    let file = args.out.display().to_string();
    let loaded = crate::runbook::load(&text, &file);
    let diags = crate::runbook::validate_loaded(&loaded, &file, &crate::runbook::ProcessEnv, false);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        eprintln!(
            "error: the runbook init would write does not validate: {}",
            d.render(Some(&text))
        );
        return exit::INVALID;
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        eprintln!("error: {file}: {e}");
        return exit::INVALID;
    }
    eprintln!(
        "wrote {file}: {} maps in {} waves. Next: set the variables it names, then `cutover validate {file}` and `cutover plan {file}`.",
        text.matches("    source: fno:").count(),
        text.matches("      - id: wave-").count()
    );
    exit::OK
}
