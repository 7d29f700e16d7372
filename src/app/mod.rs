//! The edge: the command line and everything that only a process has. One file per command (its
//! clap arguments and its `run`); this module holds the top-level parser and the dispatch. Only here:
//! clap, the tokio runtime and the signal handlers (built once, [`runtime`]), `NO_COLOR`,
//! `color_eyre` reports, printing to the operator, and exit codes ([`exit`]). Nothing below imports
//! this module: the layers return typed results and errors, and each command maps them to what a
//! person reads and to the process's exit code.

mod completions;
mod demo;
mod drive;
pub mod exit;
mod init;
mod installs;
mod login;
mod plan;
mod preflight;
mod replay;
mod report;
mod resume;
mod run;
mod runs;
pub mod runtime;
mod schema;
mod sim;
pub mod sim_process;
mod trend;
mod validate;
mod verify;
mod watch;

use clap::{Parser, Subcommand, ValueEnum};

pub use demo::{
    DEMO_JOURNAL, DEMO_PACKAGE, DEMO_RUNBOOK, demo_runbook_at, is_demo_runbook, materialize_demo,
};
pub use drive::{DriveArgs, HeadlessFormat};

const AFTER_HELP: &str = "\
Exit codes:
  0    finished / valid / preflight all ok
  1    a step or gate failed / preflight warnings only
  2    invalid input (runbook, flags, files) / a preflight error
  3    waiting for an operator decision (headless)
  4    another process drives the journal (watch it with `cutover watch`)
  130  interrupted; the journal is consistent and the run resumes next time

Environment:
  NO_COLOR            disables colour everywhere
  HTTPS_PROXY         proxy for https requests (CONNECT); also HTTP_PROXY, ALL_PROXY
  NO_PROXY            hosts reached directly, e.g. `.contoso.com,10.0.0.0/8`
  CUTOVER_CA_BUNDLE   same as --ca-bundle";

/// A terminal console that runs a D365 F&O → Dataverse dual-write cutover weekend from a YAML runbook.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// Also trust the CA certificates of this PEM file (a corporate root CA, a private CA), in addition
    /// to the operating system's store.
    #[arg(long, global = true, value_name = "FILE", env = "CUTOVER_CA_BUNDLE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a first, commented runbook for an estate (common dual-write maps in dependency order).
    #[command(
        after_help = "Examples:\n  cutover init\n  cutover init -o contoso.yaml --name contoso-weekend --companies USMF,USRT --maps customers,vendors,sales_order_lines\n  cutover init --list-maps\n\nAt a terminal it asks for what the flags leave out (--no-input takes the defaults). Never overwrites a file."
    )]
    Init(init::InitArgs),
    /// Check a runbook and report every problem with its line and column.
    #[command(
        after_help = "Examples:\n  cutover validate runbooks/demo.yaml\n  cutover validate --strict runbooks/*.yaml\n  cutover validate --format json runbooks/contoso-weekend.yaml"
    )]
    Validate(validate::ValidateArgs),
    /// Show the execution order (phases → waves → steps, gates) and the critical path.
    #[command(
        after_help = "Examples:\n  cutover plan runbooks/demo.yaml\n  cutover plan --format json runbooks/demo.yaml"
    )]
    Plan(plan::PlanArgs),
    /// Check a runbook's environments read-only before the weekend: tokens, entities, DMF projects, packages,
    /// dual-write maps, webhooks, clocks, service-protection headroom.
    #[command(
        after_help = "Examples:\n  cutover preflight runbooks/contoso-weekend.yaml\n  cutover preflight runbooks/contoso-weekend.yaml --format json --journal weekend.journal\n  cutover preflight runbooks/contoso-weekend.yaml --sim=runbooks/scenarios/contoso-weekend.yaml\n\nWrites nothing to any environment: GETs, a HEAD to each webhook, and token requests.\nOne line per check (ok / warning / error, with the fix). Exit codes: 0 all ok, 1 warnings only, 2 an error."
    )]
    Preflight(preflight::PreflightArgs),
    /// Serve the simulated F&O, Dataverse, dual-write and Entra ID endpoints on loopback.
    #[command(
        after_help = "Examples:\n  cutover sim\n  cutover sim --scenario runbooks/scenarios/throttle-storm.yaml --listen 127.0.0.1:8080\n\nThe first line on stdout is `listening on http://HOST:PORT`."
    )]
    Sim(sim::SimArgs),
    /// Run a runbook against its environments (or the simulator), journaling every step.
    #[command(
        after_help = "Examples:\n  cutover run runbooks/demo.yaml --headless --sim --auto-approve\n  cutover run runbooks/contoso-weekend.yaml --headless --journal weekend.journal --operator alice\n  cutover run runbooks/demo.yaml --headless --sim=runbooks/scenarios/throttle-storm.yaml --format jsonl\n  cutover run runbooks/demo.yaml --headless --sim-url http://127.0.0.1:8080 --journal j --take-over\n\nOn a journal whose last run is unfinished, `run` resumes it (same as `cutover resume`)."
    )]
    Run(run::RunArgs),
    /// Carry on with a journal's unfinished run exactly where it stopped.
    #[command(
        after_help = "Examples:\n  cutover resume weekend.journal --headless\n  cutover resume weekend.journal --headless --take-over --operator bob\n  cutover resume weekend.journal --headless --runbook runbooks/contoso-weekend.yaml --accept-changed-runbook\n\nFinished steps are never re-run; an in-flight step is reconciled through its journaled handle."
    )]
    Resume(resume::ResumeArgs),
    /// Run the demo cutover (runbooks/demo.yaml, embedded) against the in-process simulator.
    #[command(
        after_help = "Examples:\n  cutover demo --headless\n  cutover demo --headless --journal /tmp/demo.journal\n  cutover demo --headless --new-run\n\nA second `cutover demo` on the same journal resumes an unfinished run; when the last run\nfinished it says so and exits, unless --new-run starts another run in the same journal."
    )]
    Demo(demo::DemoArgs),
    /// List every DMF package install across journals and environments, with drift flagged.
    #[command(
        after_help = "Examples:\n  cutover installs uat.journal prod.journal\n  cutover installs uat.journal prod.journal --sort version --format csv\n\nDrift: the same package's latest installs are at different versions in two environments.\nExit codes: 0 no drift, 1 drift, 2 a journal cannot be read."
    )]
    Installs(installs::InstallsArgs),
    /// List the runs of a journal (id, runbook, version, started, status).
    #[command(
        after_help = "Examples:\n  cutover runs cutover-demo.journal\n  cutover runs weekend.journal --format json"
    )]
    Runs(runs::RunsArgs),
    /// Per map, day by day: drift, dual-write errors by category, sample results (the weekly review).
    #[command(
        after_help = "Examples:\n  cutover trend hypercare.journal\n  cutover trend hypercare.journal --format csv > trend.csv\n  cutover trend weekend.journal hypercare.journal --format json"
    )]
    Trend(trend::TrendArgs),
    /// Print the runbook JSON schema (the same as assets/runbook.schema.json), for editors.
    #[command(after_help = "Examples:\n  cutover schema > runbook.schema.json")]
    Schema,
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  cutover completions bash > /etc/bash_completion.d/cutover\n  cutover completions zsh > ~/.zfunc/_cutover"
    )]
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
    /// Recompute a journal's hash chain and runbook hashes (read-only); name the first bad event.
    #[command(
        after_help = "Examples:\n  cutover verify weekend.journal\n  cutover verify --format json weekend.journal\n\nExit codes: 0 intact, 1 an event does not verify (named), 2 not a journal."
    )]
    Verify(verify::VerifyArgs),
    /// Export a run's evidence pack (summary, timeline, decisions, gates, parity, errors, alerts).
    #[command(
        after_help = "Examples:\n  cutover report weekend.journal > evidence.md\n  cutover report --format html -o evidence.html weekend.journal\n  cutover report --format csv -o evidence/ --run 3f2a weekend.journal\n\nRefuses a journal that does not verify (exit 1) unless --unverified."
    )]
    Report(report::ReportArgs),
    /// Replay a recorded run in the console, read-only: step, jump to landmarks or times, play.
    #[command(
        after_help = "Examples:\n  cutover replay weekend.journal\n  cutover replay weekend.journal --run 3f2a --at 23:15\n  cutover replay weekend.journal --event 1234\n  cutover replay weekend.journal --at 2026-11-28T02:00:00Z --speed 60\n  cutover replay tampered.journal --unverified\n\nKeys: . , next/previous event · n N next/previous landmark (decision, question, gate,\nfailure, alert, resume, finish) · t jump to HH:MM, RFC 3339 or #event-id · space play/pause ·\n+ - speed 1×/10×/60×/600× · home end · ? help · q quit. The decision keys do nothing.\n\nRefuses a journal that does not verify (exit 1, naming the first bad event) unless --unverified;\nthen every screen says UNVERIFIED."
    )]
    Replay(replay::ReplayArgs),
    /// Follow a run another process is driving, read-only (the console's panes, labelled WATCH).
    #[command(
        after_help = "Examples:\n  cutover watch weekend.journal\n  cutover watch weekend.journal --run 3f2a\n\nNew events appear as the driving process journals them (polled every 250 ms). The timeline\nkeys of `cutover replay` work; end goes back to following. Nothing can be decided from here."
    )]
    Watch(watch::WatchArgs),
    /// Sign in for an environment whose `auth` is `credential: device_code` (before the weekend).
    #[command(
        after_help = "Examples:\n  cutover login gateway --runbook runbooks/contoso-weekend.yaml\n\nShows a code and a URL on stderr; open the URL on any device, enter the code and sign in.\nThe refresh token is kept in a 0600 file in your cache directory ($XDG_CACHE_HOME/cutover,\n~/.cache/cutover, ~/Library/Caches/cutover or %LOCALAPPDATA%\\cutover; CUTOVER_TOKEN_CACHE\nnames another file), never in the journal."
    )]
    Login(login::LoginArgs),
    /// Forget device-code sign-ins (the whole token cache, or one environment's).
    #[command(
        after_help = "Examples:\n  cutover logout\n  cutover logout gateway --runbook runbooks/contoso-weekend.yaml"
    )]
    Logout(login::LogoutArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Writes to stdout. A closed pipe (`cutover verify J | head -1`) is not an error and no panic: the rest of
/// the output is dropped and the command finishes with its own exit code. Any other failure is said once
/// on stderr.
pub(crate) fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("cutover: cannot write to stdout: {e}");
    }
}

/// `println!` through [`write_stdout`].
macro_rules! outln {
    ($($t:tt)*) => { $crate::app::write_stdout(&format!("{}\n", format_args!($($t)*))) };
}
/// `print!` through [`write_stdout`].
macro_rules! out {
    ($($t:tt)*) => { $crate::app::write_stdout(&format!($($t)*)) };
}
pub(crate) use {out, outln};

/// Whether colour may be used on stderr/stdout (`NO_COLOR` set to anything non-empty disables it).
pub fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The process: parse the command line, install the error report, run the command, exit with its
/// code. `main.rs` calls only this.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let theme = if colour_enabled() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    // A second install (a test calling `main` twice) keeps the first hook, which is as good.
    let _ = color_eyre::config::HookBuilder::default().theme(theme).install();
    let code = match run(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("cutover: {report:?}");
            exit::FAILED
        }
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Runs a parsed command line and returns the process exit code. Expected failures (an invalid
/// runbook, a held lease, a journal that does not verify) are reported by the command with their
/// own code; an `Err` is something that should not happen here (no runtime, an unwritable file)
/// and exits 1 with its report.
pub fn run(cli: Cli) -> color_eyre::Result<i32> {
    if let Some(path) = &cli.ca_bundle
        && let Err(e) = crate::connectors::net::add_ca_bundle(path)
    {
        eprintln!("error: {e}");
        return Ok(exit::INVALID);
    }
    match cli.command {
        Command::Init(args) => Ok(init::run(&args)),
        Command::Validate(args) => Ok(validate::run(&args)),
        Command::Plan(args) => Ok(plan::run(&args)),
        Command::Preflight(args) => preflight::run(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Resume(args) => resume::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Runs(args) => Ok(runs::run(&args)),
        Command::Trend(args) => Ok(trend::run(&args)),
        Command::Installs(args) => Ok(installs::run(&args)),
        Command::Schema => Ok(schema::run()),
        Command::Completions { shell } => Ok(completions::run(shell)),
        Command::Verify(args) => Ok(verify::run(&args)),
        Command::Report(args) => Ok(report::run(&args)),
        Command::Replay(args) => replay::run(&args),
        Command::Watch(args) => watch::run(&args),
        Command::Login(args) => Ok(login::run_login(&args)),
        Command::Logout(args) => Ok(login::run_logout(&args)),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
