//! Command-line interface: clap definitions and dispatch. Each command's work lives in its layer;
//! this file only parses, sets up the front end (colours, error reports) and maps results to exit codes.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::exit;

const AFTER_HELP: &str = "\
Exit codes:
  0    finished / valid
  1    a step or gate failed
  2    invalid input (runbook, flags, files)
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
    pub ca_bundle: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a runbook and report every problem with its line and column.
    #[command(
        after_help = "Examples:\n  cutover validate runbooks/demo.yaml\n  cutover validate --strict runbooks/*.yaml\n  cutover validate --format json runbooks/contoso-weekend.yaml"
    )]
    Validate(ValidateArgs),
    /// Show the execution order (phases → waves → steps, gates) and the critical path.
    #[command(
        after_help = "Examples:\n  cutover plan runbooks/demo.yaml\n  cutover plan --format json runbooks/demo.yaml"
    )]
    Plan(PlanArgs),
    /// Serve the simulated F&O, Dataverse, dual-write and Entra ID endpoints on loopback.
    #[command(
        after_help = "Examples:\n  cutover sim\n  cutover sim --scenario runbooks/demo.sim.yaml --listen 127.0.0.1:8080\n\nThe first line on stdout is `listening on http://HOST:PORT`."
    )]
    Sim(SimArgs),
    /// Run a runbook against its environments (or the simulator), journaling every step.
    #[command(
        after_help = "Examples:\n  cutover run runbooks/demo.yaml --headless --sim --auto-approve\n  cutover run runbooks/contoso-weekend.yaml --headless --journal weekend.journal --operator alice\n  cutover run runbooks/demo.yaml --headless --sim=runbooks/scenarios/throttle-storm.yaml --format jsonl\n  cutover run runbooks/demo.yaml --headless --sim-url http://127.0.0.1:8080 --journal j --take-over\n\nOn a journal whose last run is unfinished, `run` resumes it (same as `cutover resume`)."
    )]
    Run(RunArgs),
    /// Carry on with a journal's unfinished run exactly where it stopped.
    #[command(
        after_help = "Examples:\n  cutover resume weekend.journal --headless\n  cutover resume weekend.journal --headless --take-over --operator bob\n  cutover resume weekend.journal --headless --runbook runbooks/contoso-weekend.yaml --accept-changed-runbook\n\nFinished steps are never re-run; an in-flight step is reconciled through its journaled handle."
    )]
    Resume(ResumeArgs),
    /// Run the demo cutover (runbooks/demo.yaml, embedded) against the in-process simulator.
    #[command(
        after_help = "Examples:\n  cutover demo --headless\n  cutover demo --headless --journal /tmp/demo.journal\n  cutover demo --headless --new-run\n\nA second `cutover demo` on the same journal resumes an unfinished run; when the last run\nfinished it says so and exits, unless --new-run starts another run in the same journal."
    )]
    Demo(DemoArgs),
    /// List the runs of a journal (id, runbook, version, started, status).
    #[command(
        after_help = "Examples:\n  cutover runs cutover-demo.journal\n  cutover runs weekend.journal --format json"
    )]
    Runs(RunsArgs),
    /// Print the runbook JSON schema (the same as assets/runbook.schema.json).
    #[command(hide = true)]
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
    Verify(VerifyArgs),
    /// Export a run's evidence pack (summary, timeline, decisions, gates, parity, errors, alerts).
    #[command(
        after_help = "Examples:\n  cutover report weekend.journal > evidence.md\n  cutover report --format html -o evidence.html weekend.journal\n  cutover report --format csv -o evidence/ --run 3f2a weekend.journal\n\nRefuses a journal that does not verify (exit 1) unless --unverified."
    )]
    Report(ReportArgs),
    /// Replay a recorded run in the console, read-only: step, jump to landmarks or times, play.
    #[command(
        after_help = "Examples:\n  cutover replay weekend.journal\n  cutover replay weekend.journal --run 3f2a --at 23:15\n  cutover replay weekend.journal --event 1234\n  cutover replay weekend.journal --at 2026-11-28T02:00:00Z --speed 60\n  cutover replay tampered.journal --unverified\n\nKeys: . , next/previous event · n N next/previous landmark (decision, question, gate,\nfailure, alert, resume, finish) · t jump to HH:MM, RFC 3339 or #event-id · space play/pause ·\n+ - speed 1×/10×/60×/600× · home end · ? help · q quit. The decision keys do nothing.\n\nRefuses a journal that does not verify (exit 1, naming the first bad event) unless --unverified;\nthen every screen says UNVERIFIED."
    )]
    Replay(ReplayArgs),
    /// Follow a run another process is driving, read-only (the console's panes, labelled WATCH).
    #[command(
        after_help = "Examples:\n  cutover watch weekend.journal\n  cutover watch weekend.journal --run 3f2a\n\nNew events appear as the driving process journals them (polled every 250 ms). The timeline\nkeys of `cutover replay` work; end goes back to following. Nothing can be decided from here."
    )]
    Watch(WatchArgs),
    /// Sign in for an environment whose `auth` is `credential: device_code` (before the weekend).
    #[command(
        after_help = "Examples:\n  cutover login gateway --runbook runbooks/contoso-weekend.yaml\n\nShows a code and a URL on stderr; open the URL on any device, enter the code and sign in.\nThe refresh token is kept in a 0600 file in your cache directory ($XDG_CACHE_HOME/cutover,\n~/.cache/cutover, ~/Library/Caches/cutover or %LOCALAPPDATA%\\cutover; CUTOVER_TOKEN_CACHE\nnames another file), never in the journal."
    )]
    Login(crate::login::LoginArgs),
    /// Forget device-code sign-ins (the whole token cache, or one environment's).
    #[command(
        after_help = "Examples:\n  cutover logout\n  cutover logout gateway --runbook runbooks/contoso-weekend.yaml"
    )]
    Logout(crate::login::LogoutArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runbook files to check.
    #[arg(required = true)]
    pub runbooks: Vec<PathBuf>,
    /// Treat unset `${VAR}`s as errors (as `run` does).
    #[arg(long)]
    pub strict: bool,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook to plan.
    pub runbook: PathBuf,
    /// Replace estimates with the step durations measured in a journal's run (a rehearsal), and
    /// show where the plan would overrun the freeze window.
    #[arg(long, value_name = "JOURNAL")]
    pub from_journal: Option<PathBuf>,
    /// The run of `--from-journal` to measure (id or unique prefix; default: the latest).
    #[arg(long, value_name = "ID", requires = "from_journal")]
    pub journal_run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Scenario file (YAML). Without it the demo scenario is served.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Exit after this many seconds without a request (the detached simulator of `demo`/`--sim`).
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<u64>,
    /// Exit once this file (the `<journal>.sim` record naming this process) is gone: the journal was
    /// deleted or its run finished.
    #[arg(long, value_name = "FILE", hide = true)]
    pub exit_without: Option<PathBuf>,
}

/// Output of headless runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum HeadlessFormat {
    /// One readable line per meaningful event.
    #[default]
    Text,
    /// Every journaled envelope as one JSON object per line.
    Jsonl,
}

/// Flags shared by `run` and `resume`.
#[derive(Debug, Args, Clone)]
pub struct DriveArgs {
    /// No console: print events, auto-decide only with --auto-approve, exit with a code.
    #[arg(long)]
    pub headless: bool,
    /// Headless output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: HeadlessFormat,
    /// Operator name journaled with the run and its decisions (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Headless: approve manual steps and confirmations, re-check failed gates (never answers an
    /// ambiguous in-flight step or a failed step).
    #[arg(long)]
    pub auto_approve: bool,
    /// Start the simulator in-process (the demo scenario, or a scenario file) and point every
    /// environment at it.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "demo", value_name = "SCENARIO")]
    pub sim: Option<String>,
    /// Use a simulator already running at this URL.
    #[arg(long, conflicts_with = "sim", value_name = "URL")]
    pub sim_url: Option<String>,
    /// Continue although the runbook changed since the run started (journaled).
    #[arg(long)]
    pub accept_changed_runbook: bool,
    /// Take the journal over from a holder that looks dead (journaled).
    #[arg(long)]
    pub take_over: bool,
    /// Start a new run even though the journal's last run finished.
    #[arg(long)]
    pub new_run: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The runbook to run.
    pub runbook: PathBuf,
    /// Journal file (default ./<runbook>-<date>.journal).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    #[command(flatten)]
    pub drive: DriveArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The journal of the run to resume.
    pub journal: PathBuf,
    /// The runbook file (default: the file the run was started from, else the journaled text).
    #[arg(long)]
    pub runbook: Option<PathBuf>,
    #[command(flatten)]
    pub drive: DriveArgs,
}

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

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The journal to list.
    pub journal: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

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
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    /// The run to replay: its id or a unique prefix (default: the latest run).
    #[arg(long)]
    pub run: Option<String>,
    /// Replay a journal that does not verify; every screen then says UNVERIFIED.
    #[arg(long)]
    pub unverified: bool,
    /// Start at this time: HH:MM[:SS] (UTC, on the run's first day or the next) or RFC 3339.
    #[arg(long, value_name = "TIME", conflicts_with = "event")]
    pub at: Option<String>,
    /// Start right after this journal event (the id `cutover verify` and reports print).
    #[arg(long, value_name = "ID")]
    pub event: Option<i64>,
    /// Start playing at this many times the recorded pace (keys + and - change it).
    #[arg(long, value_name = "X", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub speed: Option<u32>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The journal file another process is driving (opened read-only).
    pub journal: PathBuf,
    /// The run to follow: its id or a unique prefix (default: the latest run).
    #[arg(long)]
    pub run: Option<String>,
    /// Watch a journal that does not verify; every screen then says UNVERIFIED.
    #[arg(long)]
    pub unverified: bool,
}

/// Whether colour may be used on stderr/stdout (`NO_COLOR` set to anything non-empty disables it).
pub fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    if let Some(path) = &cli.ca_bundle
        && let Err(e) = crate::net::add_ca_bundle(path)
    {
        eprintln!("error: {e}");
        return exit::INVALID;
    }
    match cli.command {
        Command::Validate(args) => crate::runbook::cmd_validate(&args),
        Command::Plan(args) => crate::runbook::cmd_plan(&args),
        Command::Sim(args) => crate::sim::cmd_sim(&args),
        Command::Run(args) => crate::headless::cmd_run(&args),
        Command::Resume(args) => crate::headless::cmd_resume(&args),
        Command::Demo(args) => crate::headless::cmd_demo(&args),
        Command::Runs(args) => crate::headless::cmd_runs(&args),
        Command::Schema => {
            print!("{}", crate::runbook::schema::generate());
            exit::OK
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cutover", &mut std::io::stdout());
            exit::OK
        }
        Command::Verify(args) => crate::audit::cmd::cmd_verify(&args),
        Command::Report(args) => crate::audit::cmd::cmd_report(&args),
        Command::Replay(args) => crate::tui::replay_cmd::cmd_replay(&args),
        Command::Watch(args) => crate::tui::replay_cmd::cmd_watch(&args),
        Command::Login(args) => crate::login::cmd_login(&args),
        Command::Logout(args) => crate::login::cmd_logout(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
