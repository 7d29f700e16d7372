//! `cutover demo`: the sample cutover (runbooks/demo.yaml, embedded) against the simulator.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use color_eyre::eyre::WrapErr;

use super::HeadlessFormat;
use super::drive::{DriveArgs, drive_and_settle, interactive_note, options};
use super::exit;
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
    /// Take the journal over from a holder that looks dead.
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

/// Writes the embedded demo runbook and package into a directory of their own (by content hash).
pub fn materialize_demo() -> std::io::Result<PathBuf> {
    let sha = crate::util::sha256_hex(DEMO_RUNBOOK);
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", &sha[..12]));
    std::fs::create_dir_all(dir.join("packages"))?;
    let file = dir.join("demo.yaml");
    write_atomically(&dir.join("packages").join("reference-data.zip"), DEMO_PACKAGE)?;
    write_atomically(&file, DEMO_RUNBOOK.as_bytes())?;
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
    let file = materialize_demo().wrap_err("cannot write the demo runbook")?;
    let vars = demo_env();
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEMO_JOURNAL));
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
