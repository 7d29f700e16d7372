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
  130  interrupted; the journal is consistent and the run resumes next time

Environment:
  NO_COLOR   disables colour everywhere";

/// A terminal console that runs a D365 F&O → Dataverse dual-write cutover weekend from a YAML runbook.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
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

/// Whether colour may be used on stderr/stdout (`NO_COLOR` set to anything non-empty disables it).
pub fn colour_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate(args) => crate::runbook::cmd_validate(&args),
        Command::Plan(args) => crate::runbook::cmd_plan(&args),
        Command::Sim(args) => crate::sim::cmd_sim(&args),
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
