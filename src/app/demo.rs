//! `cutover demo`: the sample cutover (runbooks/demo.yaml, embedded) against the simulator.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};
use clap::Args;
use color_eyre::eyre::WrapErr;

use super::HeadlessFormat;
use super::drive::{DriveArgs, drive_and_settle, interactive_note, options};
use super::exit;
use crate::engine::event::Event;
use crate::journal::JournalReader;
use crate::runbook::EnvLookup;

/// The demo runbook and its package, embedded so `cutover demo` runs from any directory.
pub const DEMO_RUNBOOK: &str = include_str!("../../runbooks/demo.yaml");
pub const DEMO_PACKAGE: &[u8] = include_bytes!("../../runbooks/packages/reference-data.zip");
/// Where `cutover demo` journals by default.
pub const DEMO_JOURNAL: &str = "cutover-demo.journal";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// No console: print events and exit with a code (auto-approval is on).
    #[arg(long)]
    pub headless: bool,
    /// Journal file.
    #[arg(long, default_value = "cutover-demo.journal")]
    pub journal: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: HeadlessFormat,
    /// Operator name (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Start a new demo run when the journal's last run finished.
    #[arg(long)]
    pub new_run: bool,
    /// Take the journal over from a holder that looks dead (a stale heartbeat from another host).
    #[arg(long)]
    pub take_over: bool,
    /// Use a simulator already running at this URL instead of an in-process one.
    #[arg(long, value_name = "URL")]
    pub sim_url: Option<String>,
}

/// The process environment plus the demo's client secret: the simulator takes any, so the demo
/// makes one up unless `DEMO_CLIENT_SECRET` is set (tests set it to look for it everywhere).
pub(super) fn demo_env() -> Arc<dyn EnvLookup + Send + Sync> {
    let secret = std::env::var("DEMO_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("demo-{}", uuid::Uuid::new_v4().simple()));
    Arc::new(move |name: &str| {
        if name == "DEMO_CLIENT_SECRET" {
            Some(secret.clone())
        } else {
            std::env::var(name).ok()
        }
    })
}

/// The embedded demo's freeze window, as written in `runbooks/demo.yaml`.
const DEMO_FREEZE: &str = "freeze_window:\n  start: 2026-11-27T18:00:00Z\n  end: 2026-11-30T08:00:00Z\n";
/// Its length: a weekend, Friday 18:00 to Monday 08:00.
const DEMO_FREEZE_HOURS: i64 = 62;

/// The demo runbook with its freeze window starting at `start` (to the minute), as long as the
/// written one: a demo started now is inside its window, not days past it.
pub fn demo_runbook_at(start: DateTime<Utc>) -> String {
    let start = start
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(start);
    let end = start + chrono::Duration::hours(DEMO_FREEZE_HOURS);
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    DEMO_RUNBOOK.replacen(
        DEMO_FREEZE,
        &format!("freeze_window:\n  start: {}\n  end: {}\n", fmt(start), fmt(end)),
        1,
    )
}

/// Whether `text` is the demo runbook (whatever its freeze window).
pub fn is_demo_runbook(text: &str) -> bool {
    let window = |t: &str| {
        t.find("freeze_window:\n").map(|i| {
            let rest = &t[i..];
            let len = rest.match_indices('\n').nth(2).map_or(rest.len(), |(j, _)| j + 1);
            (i, len)
        })
    };
    match (window(text), window(DEMO_RUNBOOK)) {
        (Some((i, n)), Some((j, m))) => {
            text[..i] == DEMO_RUNBOOK[..j] && text[i + n..] == DEMO_RUNBOOK[j + m..]
        }
        _ => false,
    }
}

/// The runbook text of the journal's unfinished demo run, if it has one: a demo carried on keeps
/// the window it started with (the runbook's hash is journaled).
pub(super) fn unfinished_demo_text(journal: &std::path::Path) -> Option<String> {
    let reader = JournalReader::open_read_only(journal).ok()?;
    let last = reader.runs().ok()?.pop()?;
    if last.outcome.is_some() {
        return None;
    }
    match reader.events(&last.run_id).next()?.ok()?.event {
        Event::RunStarted { runbook, .. } if is_demo_runbook(&runbook.text) => Some(runbook.text),
        _ => None,
    }
}

/// Writes the embedded demo runbook and package into a directory of their own (by content hash).
pub fn materialize_demo() -> std::io::Result<PathBuf> {
    materialize_demo_text(DEMO_RUNBOOK)
}

/// Writes a demo runbook `text` and the package into a directory of their own (by content hash).
pub fn materialize_demo_text(text: &str) -> std::io::Result<PathBuf> {
    let sha = crate::util::sha256_hex(text);
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", &sha[..12]));
    std::fs::create_dir_all(dir.join("packages"))?;
    let file = dir.join("demo.yaml");
    write_atomically(&dir.join("packages").join("reference-data.zip"), DEMO_PACKAGE)?;
    write_atomically(&file, text.as_bytes())?;
    Ok(file)
}

/// Writes through a process-unique temporary file and a rename, so two demos starting at once never
/// read each other's half-written file.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `cutover demo`.
pub fn run(args: &DemoArgs) -> color_eyre::Result<i32> {
    interactive_note(args.headless);
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEMO_JOURNAL));
    let text = unfinished_demo_text(&journal).unwrap_or_else(|| demo_runbook_at(Utc::now()));
    let file = materialize_demo_text(&text).wrap_err("cannot write the demo runbook")?;
    let vars = demo_env();
    eprintln!("cutover: demo journal {}", journal.display());
    let drive_args = DriveArgs {
        headless: true,
        format: args.format,
        operator: args.operator.clone(),
        auto_approve: true,
        sim: if args.sim_url.is_some() {
            None
        } else {
            Some("demo".into())
        },
        sim_url: args.sim_url.clone(),
        accept_changed_runbook: false,
        accept_inserted_step: Vec::new(),
        take_over: args.take_over,
        new_run: args.new_run,
    };
    let (opts, det) = match options(
        &drive_args,
        Some(file),
        journal,
        vars,
        "auto-approved (headless demo)",
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cutover: {e}");
            return Ok(exit::INVALID);
        }
    };
    drive_and_settle(opts, det, args.headless, args.format)
}
