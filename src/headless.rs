//! Headless mode: the same engine and reducer as the console, printing lines (or JSON) instead of
//! drawing. `cutover run`, `cutover resume`, `cutover demo` and `cutover runs` live here.
//!
//! Text output is one line per event a person wants to read (steps starting and finishing with
//! their duration, gate verdicts, parity samples, decisions, alerts, install records); jsonl is
//! every journaled envelope as one JSON object per line. Both come from the journal subscription,
//! so they show only what is already durable. Exit codes: see [`crate::exit`]; SIGINT/SIGTERM
//! cancel the run, flush the journal and exit 130.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use crate::cli::{DemoArgs, DriveArgs, HeadlessFormat, ResumeArgs, RunArgs, RunsArgs};
use crate::engine::event::{Event, RunOutcome, StepOutcome};
use crate::engine::runner::{RunOptions, SetupError, SimTarget, start_engine};
use crate::engine::scheduler::operator::AutoApprove;
use crate::engine::{Envelope, RunEnd, RunState};
use crate::exit;
use crate::journal::JournalReader;
use crate::runbook::EnvLookup;
use crate::sim::detached::{self, Detached};

/// The demo runbook and its package, embedded so `cutover demo` runs from any directory.
pub const DEMO_RUNBOOK: &str = include_str!("../runbooks/demo.yaml");
pub const DEMO_PACKAGE: &[u8] = include_bytes!("../runbooks/packages/reference-data.zip");
/// Where `cutover demo` journals by default.
pub const DEMO_JOURNAL: &str = "cutover-demo.journal";

fn ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// The text line for one envelope (after `state` applied it), or `None` for events a person does
/// not need to read one by one (requests, progress, error counts).
pub fn text_line(env: &Envelope, state: &RunState) -> Option<String> {
    let t = env.at.format("%H:%M:%S");
    let line = match &env.event {
        Event::RunStarted {
            runbook,
            operator,
            host,
            steps,
            ..
        } => format!(
            "run {} started: {} {} by {operator} on {host}, {} steps",
            env.run_id,
            runbook.name,
            runbook.version,
            steps.len()
        ),
        Event::RunResumed {
            operator,
            host,
            accepted_changed_runbook,
        } => format!(
            "run {} resumed by {operator} on {host}{}",
            env.run_id,
            if *accepted_changed_runbook {
                " (changed runbook accepted)"
            } else {
                ""
            }
        ),
        Event::StepIntent {
            step,
            attempt,
            handle,
        } => {
            let h = handle
                .as_ref()
                .map(|h| format!(" [{} {}]", h.kind, h.id))
                .unwrap_or_default();
            let a = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            format!("start   {step}{a}{h}")
        }
        Event::StepFinished { step, outcome, .. } => {
            let d = state
                .step(step.as_str())
                .and_then(|s| s.duration_ms)
                .map(ms)
                .unwrap_or_default();
            match outcome {
                StepOutcome::Succeeded => format!("done    {step} in {d}"),
                StepOutcome::Failed { message } => format!("FAILED  {step} after {d}: {message}"),
                StepOutcome::Skipped { reason } => format!("skipped {step}: {reason}"),
            }
        }
        Event::GateEvaluated {
            step,
            passed,
            failures,
            ..
        } => {
            if *passed {
                format!("gate    {step} passed")
            } else {
                let f: Vec<String> = failures
                    .iter()
                    .map(|f| {
                        let m = f
                            .company
                            .as_ref()
                            .map_or_else(|| f.map.clone(), |c| format!("{}/{c}", f.map));
                        format!(
                            "{m} source {} target {} allowed {} errors {}",
                            f.source, f.target, f.allowed, f.errors
                        )
                    })
                    .collect();
                format!("gate    {step} FAILED: {}", f.join("; "))
            }
        }
        Event::ParitySample {
            map,
            company,
            source,
            target,
            ..
        } => {
            let m = company
                .as_ref()
                .map_or_else(|| map.clone(), |c| format!("{map}/{c}"));
            let mark = if source == target { "=" } else { "≠" };
            format!("parity  {m}: source {source} {mark} target {target}")
        }
        Event::AwaitingOperator {
            step,
            decision,
            prompt,
            ..
        } => format!(
            "waiting {} for {decision:?}: {}",
            step.as_ref().map_or("run", |s| s.as_str()),
            prompt.lines().next().unwrap_or("")
        ),
        Event::OperatorDecision {
            step,
            action,
            operator,
            reason,
            ..
        } => format!(
            "decided {}: {action:?} by {operator}{}",
            step.as_ref().map_or("run", |s| s.as_str()),
            reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
        ),
        Event::ErrorEntries { map, entries } if !entries.is_empty() => {
            format!("errors  {map}: {} new error-queue entries", entries.len())
        }
        Event::Alert {
            severity, message, ..
        } => format!("ALERT   [{severity:?}] {message}"),
        Event::InstallRecord {
            step,
            package,
            version,
            sha256,
            execution_id,
            result,
        } => format!(
            "install {step}: {package} {version} sha256 {} execution {execution_id}: {result}",
            &sha256[..sha256.len().min(12)]
        ),
        Event::LeaseTakenOver {
            previous_holder,
            previous_host,
            previous_pid,
            holder,
            ..
        } => format!(
            "lease taken over by {holder} from {previous_holder} (pid {previous_pid} on {previous_host})"
        ),
        Event::Log { level, message } if *level >= crate::engine::event::LogLevel::Info => {
            format!("log     {message}")
        }
        Event::RunFinished { outcome } => match outcome {
            RunOutcome::Succeeded => format!("run {} finished: succeeded", env.run_id),
            RunOutcome::Failed { message } => format!("run {} finished: FAILED: {message}", env.run_id),
            RunOutcome::Aborted { reason } => format!("run {} finished: aborted: {reason}", env.run_id),
        },
        _ => return None,
    };
    Some(format!("{t} {line}"))
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
fn sim_target(d: &DriveArgs, journal: &Path) -> Result<(SimTarget, Option<Detached>), String> {
    if let Some(u) = &d.sim_url {
        return Ok((SimTarget::Url(u.clone()), None));
    }
    let mut note = |m: &str| eprintln!("cutover: {m}");
    let recorded = detached::record_path(journal).is_file();
    let scenario = match d.sim.as_deref() {
        None if recorded => {
            // A journal driven against the simulator goes on against it.
            return match detached::recorded(journal) {
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
        Some("" | "demo") => None,
        Some(path) => Some(Path::new(path)),
    };
    let det = detached::ensure(journal, scenario, &mut note)?;
    if recorded && !det.reused {
        note(&format!(
            "the simulator this journal used is gone; a fresh one at {} starts from the scenario, \
             without what the run changed in the old one",
            det.url
        ));
    }
    Ok((SimTarget::Url(det.url.clone()), Some(det)))
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
            detached::IDLE_EXIT.as_secs() / 60
        );
    }
}

/// Drives `opts` in the console or headless, then settles the journal's simulator.
fn drive_and_settle(opts: RunOptions, det: Option<Detached>, headless: bool, format: HeadlessFormat) -> i32 {
    let journal = opts.journal.clone();
    if let Some(d) = &det {
        d.keep_alive();
    }
    let code = if wants_console(headless) {
        block_on(crate::tui::drive_console(opts))
    } else {
        block_on(drive(opts, format))
    };
    settle_sim(det.as_ref(), &journal);
    code
}

fn options(
    d: &DriveArgs,
    runbook: Option<PathBuf>,
    journal: PathBuf,
    vars: Arc<dyn EnvLookup + Send + Sync>,
    reason: &str,
) -> Result<(RunOptions, Option<Detached>), String> {
    let operator = operator_name(d.operator.as_ref());
    let (sim, det) = sim_target(d, &journal)?;
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
        take_over: d.take_over,
        new_run: d.new_run,
        resume_only: false,
        vars,
        follow_delay: None,
    };
    Ok((opts, det))
}

/// Drives a run headless and returns the exit code.
pub async fn drive(opts: RunOptions, format: HeadlessFormat) -> i32 {
    let journal = opts.journal.clone();
    let (handle, mut state, mut sub) = match start_engine(opts).await {
        Ok(v) => v,
        Err(e) => {
            let code = e.exit_code();
            match &e {
                SetupError::AlreadyFinished { .. } => eprintln!("cutover: {e}"),
                _ => eprintln!("cutover: {e}"),
            }
            return code;
        }
    };
    let cancel = handle.cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        cancel.cancel();
    });
    let mut out = std::io::stdout().lock();
    let mut done = handle.done;
    let end = loop {
        tokio::select! {
            biased;
            Some(env) = sub.recv() => {
                state.apply(&env);
                let line = match format {
                    HeadlessFormat::Jsonl => serde_json::to_string(&env).ok(),
                    HeadlessFormat::Text => text_line(&env, &state),
                };
                if let Some(l) = line {
                    // A closed stdout must not stop the run; the journal is the record.
                    let _ = writeln!(out, "{l}");
                }
            }
            end = &mut done => break end.unwrap_or_else(|e| RunEnd::Broken(e.to_string())),
        }
    };
    // Whatever was committed before the end is still queued on the subscription.
    while let Ok(env) = sub.try_recv() {
        state.apply(&env);
        let line = match format {
            HeadlessFormat::Jsonl => serde_json::to_string(&env).ok(),
            HeadlessFormat::Text => text_line(&env, &state),
        };
        if let Some(l) = line {
            let _ = writeln!(out, "{l}");
        }
    }
    let _ = out.flush();
    let j = journal.display();
    match &end {
        RunEnd::Finished(_) => {}
        RunEnd::Halted { message, .. } => eprintln!(
            "cutover: halted: {message}\n  the run stays open; decide it in the console or `cutover resume {j}`"
        ),
        RunEnd::Waiting { message, .. } => eprintln!(
            "cutover: waiting for an operator: {message}\n  headless mode cannot decide this; open the console on {j}"
        ),
        RunEnd::Interrupted => {
            eprintln!("cutover: interrupted; the journal is consistent; `cutover resume {j}` carries on")
        }
        RunEnd::Broken(m) => eprintln!("cutover: stopped: {m}"),
    }
    end.exit_code()
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn block_on(f: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("cutover: cannot start the runtime: {e}");
            exit::FAILED
        }
    }
}

fn default_journal(runbook: &Path) -> PathBuf {
    let name = std::fs::read_to_string(runbook)
        .ok()
        .and_then(|t| crate::runbook::load(&t, "").runbook.map(|r| r.runbook))
        .or_else(|| runbook.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into());
    PathBuf::from(format!("{name}-{}.journal", Utc::now().format("%Y-%m-%d")))
}

fn process_env() -> Arc<dyn EnvLookup + Send + Sync> {
    Arc::new(crate::runbook::ProcessEnv)
}

/// The process environment plus the demo's client secret: the simulator takes any, so the demo
/// makes one up unless `DEMO_CLIENT_SECRET` is set (tests set it to look for it everywhere).
fn demo_env() -> Arc<dyn EnvLookup + Send + Sync> {
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

/// The variables to resume `journal` with: a run of the built-in demo runbook gets the demo's, so
/// `cutover resume` works on a demo journal as the console's quit message says it does.
fn resume_env(journal: &Path) -> Arc<dyn EnvLookup + Send + Sync> {
    let demo_sha = crate::engine::runner::sha256_hex(DEMO_RUNBOOK);
    let is_demo = JournalReader::open_read_only(journal)
        .ok()
        .and_then(|r| r.runs().ok())
        .and_then(|runs| runs.last().map(|r| r.runbook_sha256 == demo_sha))
        .unwrap_or(false);
    if is_demo { demo_env() } else { process_env() }
}

/// True when the console should open: not asked for headless, and stdout is a terminal.
fn wants_console(headless: bool) -> bool {
    !headless && crate::tui::stdout_is_terminal()
}

fn interactive_note(headless: bool) {
    if !headless && !crate::tui::stdout_is_terminal() {
        eprintln!("cutover: stdout is not a terminal; running headless (as with --headless)");
    }
}

/// `cutover run`.
pub fn cmd_run(args: &RunArgs) -> i32 {
    interactive_note(args.drive.headless);
    let journal = args.journal.clone().unwrap_or_else(|| {
        let j = default_journal(&args.runbook);
        eprintln!("cutover: journal {}", j.display());
        j
    });
    let (opts, det) = match options(
        &args.drive,
        Some(args.runbook.clone()),
        journal,
        process_env(),
        "auto-approved (headless --auto-approve)",
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::INVALID;
        }
    };
    drive_and_settle(opts, det, args.drive.headless, args.drive.format)
}

/// `cutover resume`.
pub fn cmd_resume(args: &ResumeArgs) -> i32 {
    interactive_note(args.drive.headless);
    if !args.journal.is_file() {
        eprintln!("cutover: {}: no such journal", args.journal.display());
        return exit::INVALID;
    }
    let (mut opts, det) = match options(
        &args.drive,
        args.runbook.clone(),
        args.journal.clone(),
        resume_env(&args.journal),
        "auto-approved (headless --auto-approve)",
    ) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::INVALID;
        }
    };
    opts.resume_only = true;
    drive_and_settle(opts, det, args.drive.headless, args.drive.format)
}

/// Writes the embedded demo runbook and package into a directory of their own (by content hash).
pub fn materialize_demo() -> std::io::Result<PathBuf> {
    let sha = crate::engine::runner::sha256_hex(DEMO_RUNBOOK);
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
pub fn cmd_demo(args: &DemoArgs) -> i32 {
    interactive_note(args.headless);
    let file = match materialize_demo() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cutover: cannot write the demo runbook: {e}");
            return exit::FAILED;
        }
    };
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
            return exit::INVALID;
        }
    };
    drive_and_settle(opts, det, args.headless, args.format)
}

/// `cutover runs`.
pub fn cmd_runs(args: &RunsArgs) -> i32 {
    let reader = match crate::journal::JournalReader::open_read_only(&args.journal) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::INVALID;
        }
    };
    let runs = match reader.runs() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cutover: {e}");
            return exit::FAILED;
        }
    };
    if args.format == crate::cli::OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_else(|_| "[]".into())
        );
        return exit::OK;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<36}  {:<20} {:<9} {:<20} {:>7}  status",
        "run", "runbook", "version", "started (UTC)", "events"
    );
    for r in &runs {
        let status = match &r.outcome {
            None => "unfinished".to_owned(),
            Some(RunOutcome::Succeeded) => "succeeded".to_owned(),
            Some(RunOutcome::Failed { message }) => format!("failed: {message}"),
            Some(RunOutcome::Aborted { reason }) => format!("aborted: {reason}"),
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<20} {:<9} {:<20} {:>7}  {status}",
            r.run_id,
            r.runbook,
            r.version,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.events
        );
    }
    exit::OK
}
