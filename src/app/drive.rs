//! What `run`, `resume` and `demo` share: the driving flags, where the environments are (the
//! runbook's URLs, `--sim-url`, or the journal's detached simulator), the operator's name, and
//! driving the run in the console or headless, then telling the operator how it ended.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::sim_process::{self, Detached};
use super::{exit, runtime};
use crate::engine::RunEnd;
use crate::engine::event::RunOutcome;
use crate::engine::runner::{RunOptions, SetupError, SimTarget};
use crate::engine::scheduler::operator::AutoApprove;
use crate::journal::JournalReader;
use crate::runbook::EnvLookup;
use crate::tui::ConsoleDriveError;
use crate::util::inert_line;

/// Output of headless runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum HeadlessFormat {
    /// One readable line per meaningful event.
    #[default]
    Text,
    /// Every journaled envelope as one JSON object per line.
    Jsonl,
}

impl From<HeadlessFormat> for crate::headless::Format {
    fn from(f: HeadlessFormat) -> Self {
        match f {
            HeadlessFormat::Text => Self::Text,
            HeadlessFormat::Jsonl => Self::Jsonl,
        }
    }
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
    /// Headless: approve manual steps and confirmations (never answers an ambiguous in-flight step,
    /// a failed step, or a gate still failing after the re-checks its runbook asks for).
    #[arg(long)]
    pub auto_approve: bool,
    /// Rehearse against the simulator and point every environment (and every `notify`) at it: `--sim` serves
    /// the runbook's own estate (derived from its maps, companies, row estimates and DMF projects; the demo
    /// scenario for the demo runbook), `--sim=demo` the demo scenario, `--sim=FILE` a scenario file.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "", value_name = "SCENARIO")]
    pub sim: Option<String>,
    /// Use a simulator already running at this URL.
    #[arg(long, conflicts_with = "sim", value_name = "URL")]
    pub sim_url: Option<String>,
    /// Continue although the runbook changed since the run started (journaled).
    #[arg(long)]
    pub accept_changed_runbook: bool,
    /// With --accept-changed-runbook: also accept this added step although it comes before a step the
    /// run already started (it then runs out of the runbook's order). Repeat for each such step.
    #[arg(long, value_name = "STEP_ID", requires = "accept_changed_runbook")]
    pub accept_inserted_step: Vec<String>,
    /// Take the journal over from a holder that looks dead: a stale heartbeat from another host (a holder on
    /// this host whose pid is gone is taken over without it). Journaled.
    #[arg(long)]
    pub take_over: bool,
    /// Start a new run even though the journal's last run finished.
    #[arg(long)]
    pub new_run: bool,
}

fn operator_name(given: Option<&String>) -> String {
    given
        .cloned()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".into())
}

/// Where the environments are: `--sim-url`, or the journal's detached simulator (`--sim`, or the
/// one recorded beside the journal by an earlier `--sim`/`demo`), or the runbook's own URLs.
fn sim_target(
    d: &DriveArgs,
    journal: &Path,
    runbook: Option<&Path>,
) -> Result<(SimTarget, Option<Detached>), String> {
    if let Some(u) = &d.sim_url {
        return Ok((SimTarget::Url(u.clone()), None));
    }
    let mut note = |m: &str| eprintln!("cutover: {m}");
    let recorded = sim_process::record_path(journal).is_file();
    let scenario = match d.sim.as_deref() {
        None if recorded => {
            // A journal driven against the simulator goes on against it.
            return match sim_process::recorded(journal) {
                Some(det) => {
                    note(&format!(
                        "this journal's simulator at {} (pid {}) is still up; using it",
                        det.url, det.pid
                    ));
                    Ok((SimTarget::Url(det.url.clone()), Some(det)))
                }
                None => Err(format!(
                    "{} was driven against a simulator that has stopped; pass --sim (or --sim=SCENARIO) \
                     to start a fresh one (what the run changed in the old one is lost)",
                    journal.display()
                )),
            };
        }
        None => return Ok((SimTarget::None, None)),
        Some("demo") => None,
        Some("") => derived_scenario(journal, runbook)?,
        Some(path) => Some(PathBuf::from(path)),
    };
    let det = sim_process::ensure(journal, scenario.as_deref(), &mut note)?;
    if recorded && !det.reused {
        note(&format!(
            "the simulator this journal used is gone; a fresh one at {} starts from the scenario, \
             without what the run changed in the old one",
            det.url
        ));
    }
    Ok((SimTarget::Url(det.url.clone()), Some(det)))
}

/// `--sim` for a runbook that is not the demo: its own estate, written beside the journal
/// (`<journal>.scenario.json`) for the detached simulator to serve. The demo runbook (or a resume that names
/// no runbook) keeps the demo scenario.
fn derived_scenario(journal: &Path, runbook: Option<&Path>) -> Result<Option<PathBuf>, String> {
    let Some(path) = runbook else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if super::is_demo_runbook(&text) {
        return Ok(None);
    }
    let file = path.display().to_string();
    let Some(rb) = crate::runbook::load(&text, &file).runbook else {
        // Validation reports it with its line when the run starts.
        return Ok(None);
    };
    let scenario = crate::sim::from_runbook::scenario_text(&rb);
    let out = PathBuf::from(format!("{}.scenario.json", journal.display()));
    crate::journal::open_private(&out, false)
        .and_then(|mut f| std::io::Write::write_all(&mut f, scenario.as_bytes()))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "cutover: rehearsing against the simulator with {}'s own estate (derived: {})",
        rb.runbook,
        out.display()
    );
    Ok(Some(out))
}

/// After a drive: a finished run no longer needs its simulator; an open one keeps it for the resume.
fn settle_sim(det: Option<&Detached>, journal: &Path) {
    let Some(det) = det else { return };
    let last = JournalReader::open_read_only(journal)
        .ok()
        .and_then(|r| r.runs().ok())
        .and_then(|runs| runs.last().cloned());
    let done = last.map_or(!det.reused, |r| r.outcome.is_some());
    if done {
        det.stop();
    } else {
        eprintln!(
            "cutover: the simulator stays up at {} (pid {}, log {}) holding this run's environment for the \
             resume; it exits after {} min unused",
            det.url,
            det.pid,
            det.log.display(),
            sim_process::IDLE_EXIT.as_secs() / 60
        );
    }
}

/// Drives `opts` in the console or headless, then settles the journal's simulator; reports the end
/// to the operator and returns the exit code.
pub(super) fn drive_and_settle(
    opts: RunOptions,
    det: Option<Detached>,
    headless: bool,
    format: HeadlessFormat,
) -> color_eyre::Result<i32> {
    let journal = opts.journal.clone();
    if let Some(d) = &det {
        d.keep_alive();
    }
    let console = wants_console(headless);
    let j = journal.clone();
    let code = runtime::block_on(|interrupt| async move {
        let journal = j;
        if console {
            let theme = crate::tui::Theme {
                color: super::colour_enabled(),
            };
            match crate::tui::drive_console(opts, theme, interrupt).await {
                Ok(end) => console_end(&end, &journal),
                Err(ConsoleDriveError::Setup(e)) => setup_failed(&e),
                Err(ConsoleDriveError::Console(e)) => {
                    eprintln!(
                        "cutover: {e}; the journal {} is consistent and the run resumes next time",
                        journal.display()
                    );
                    exit::FAILED
                }
            }
        } else {
            match crate::headless::drive(opts, format.into(), interrupt).await {
                Ok(end) => headless_end(&end, &journal),
                Err(e) => setup_failed(&e),
            }
        }
    })?;
    settle_sim(det.as_ref(), &journal);
    Ok(code)
}

/// A run that could not be set up: the reason, and its exit code.
fn setup_failed(e: &SetupError) -> i32 {
    eprintln!("cutover: {}", inert_line(&e.to_string()));
    exit::of_setup(e)
}

/// What headless mode says when the run stops short of finishing.
fn headless_end(end: &RunEnd, journal: &Path) -> i32 {
    let j = journal.display();
    // The message holds a service's text: inert, on one line (the engine already masked the secrets).
    let inert = |m: &str| inert_line(m).into_owned();
    match end {
        RunEnd::Finished(_) => {}
        RunEnd::Halted { message, .. } => eprintln!(
            "cutover: halted: {}\n  the run stays open; decide it in the console or `cutover resume {j}`",
            inert(message)
        ),
        RunEnd::Waiting { message, .. } => eprintln!(
            "cutover: waiting for an operator: {}\n  headless mode cannot decide this; open the console on {j}",
            inert(message)
        ),
        RunEnd::Interrupted => {
            eprintln!("cutover: interrupted; the journal is consistent; `cutover resume {j}` carries on")
        }
        RunEnd::Broken(m) => eprintln!("cutover: stopped: {}", inert(m)),
    }
    exit::of_end(end)
}

/// What the console says when it closes.
fn console_end(end: &RunEnd, journal: &Path) -> i32 {
    let j = journal.display();
    match end {
        RunEnd::Finished(RunOutcome::Succeeded) => eprintln!("cutover: run finished: succeeded"),
        RunEnd::Finished(RunOutcome::Failed { message }) => {
            eprintln!("cutover: run finished: failed: {message}")
        }
        // The engine's reasons read "aborted by NAME: why"; say it once.
        RunEnd::Finished(RunOutcome::Aborted { reason }) if reason.starts_with("aborted") => {
            eprintln!("cutover: run finished: {reason}");
        }
        RunEnd::Finished(RunOutcome::Aborted { reason }) => {
            eprintln!("cutover: run finished: aborted: {reason}");
        }
        RunEnd::Interrupted | RunEnd::Halted { .. } | RunEnd::Waiting { .. } => eprintln!(
            "cutover: console closed; the journal is consistent; run the same command (or `cutover resume {j}`) to carry on"
        ),
        RunEnd::Broken(m) => eprintln!("cutover: stopped: {}", inert_line(m)),
    }
    exit::of_end(end)
}

pub(super) fn options(
    d: &DriveArgs,
    runbook: Option<PathBuf>,
    journal: PathBuf,
    vars: Arc<dyn EnvLookup + Send + Sync>,
    reason: &str,
) -> Result<(RunOptions, Option<Detached>), String> {
    let operator = operator_name(d.operator.as_ref());
    let (sim, det) = sim_target(d, &journal, runbook.as_deref())?;
    let opts = RunOptions {
        runbook,
        journal,
        auto_approve: d.auto_approve.then(|| AutoApprove {
            operator: operator.clone(),
            reason: reason.to_owned(),
        }),
        operator,
        interactive: false,
        sim,
        accept_changed_runbook: d.accept_changed_runbook,
        accept_inserted_steps: d.accept_inserted_step.clone(),
        take_over: d.take_over,
        new_run: d.new_run,
        resume_only: false,
        vars,
        follow_delay: None,
    };
    Ok((opts, det))
}

pub(super) fn process_env() -> Arc<dyn EnvLookup + Send + Sync> {
    Arc::new(crate::runbook::ProcessEnv)
}

/// True when the console should open: not asked for headless, and stdout is a terminal.
fn wants_console(headless: bool) -> bool {
    !headless && std::io::IsTerminal::is_terminal(&std::io::stdout())
}

pub(super) fn interactive_note(headless: bool) {
    if !headless && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eprintln!("cutover: stdout is not a terminal; running headless (as with --headless)");
    }
}
