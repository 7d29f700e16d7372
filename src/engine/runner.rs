//! Setting a run up and driving it: read and strictly validate the runbook, open (or create, 0600)
//! the journal, take its lease, pick the run (new, or the unfinished one to resume), build the
//! environments (pointed at the simulator with `--sim`/`--sim-url`), journal `RunStarted` or
//! `RunResumed`, then run the scheduler on its own task. [`start_engine`] is what the console and
//! the headless runner both call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ctx::{Clock, Emitter, LiveState, Operator};
use super::driver::{Command, EngineHandle, RunEnd};
use super::envs::{Envs, Target};
use super::event::{Event, LogLevel, MapInfo, OperatorAction, PlannedStepInfo, RunbookInfo, Tolerance};
use super::resume::{diff_summary, runbook_diff};
use super::scheduler::approvals::Approver;
use super::scheduler::operator::{
    AutoApprove, HeadlessOperator, InteractiveOperator, Questions, Refusals, log_unrouted,
};
use super::scheduler::{Control, GatePolicy, RealExecutor, Scheduler, Start, set_paused};
use super::{Envelope, RunId, RunState, StepId};
use crate::journal::{Journal, Redactor};
use crate::runbook::plan::{Plan, PlannedWhat};
use crate::runbook::{EnvLookup, Runbook};

mod choose;
pub mod lease;
mod rehearsed;

use choose::{Chosen, choose};

/// Where the environments are.
#[derive(Debug, Clone)]
pub enum SimTarget {
    /// The runbook's own URLs.
    None,
    /// A simulator already running at this base URL (the edge starts one for `--sim` and `demo`).
    Url(String),
}

/// Everything `run`, `resume` and `demo` decide before a run is driven.
pub struct RunOptions {
    /// The runbook file. `None` (`cutover resume`): the file the run was started from, else the
    /// journaled text.
    pub runbook: Option<PathBuf>,
    pub journal: PathBuf,
    pub operator: String,
    /// Headless auto-approval (`None` in interactive mode or without `--auto-approve`).
    pub auto_approve: Option<AutoApprove>,
    /// Questions go to the console (commands channel) instead of the headless policy.
    pub interactive: bool,
    pub sim: SimTarget,
    pub accept_changed_runbook: bool,
    /// Added steps accepted although they come before a step the run already started
    /// (`--accept-inserted-step`).
    pub accept_inserted_steps: Vec<String>,
    pub take_over: bool,
    /// Start a new run even though the journal's last run finished.
    pub new_run: bool,
    /// Only resume (`cutover resume`): never start a new run.
    pub resume_only: bool,
    /// `${VAR}` lookups (the process environment, or an overlay such as the demo's secret).
    pub vars: Arc<dyn EnvLookup + Send + Sync>,
    /// Tests only: hold every envelope this long before the subscription `start_engine` returns
    /// delivers it (a slow follower, on purpose; the engine's own state never waits for a
    /// follower, see [`LiveState`](super::live::LiveState)). `None` in the product.
    pub follow_delay: Option<std::time::Duration>,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Invalid input (runbook, flags, files, a changed runbook).
    #[error("{0}")]
    Invalid(String),
    /// The journal's last run already finished: nothing to do without `--new-run`.
    #[error(
        "run {run_id} in {journal} already finished ({outcome}); pass --new-run to start another run in this journal"
    )]
    AlreadyFinished {
        run_id: RunId,
        journal: String,
        outcome: String,
        /// It finished succeeded (the edge exits 0, else 1).
        succeeded: bool,
    },
    /// The journal lease is held by another driver (who holds it).
    #[error("{0}")]
    Lease(String),
    /// The lease could not be read or taken.
    #[error(transparent)]
    LeaseFailed(#[from] crate::journal::LeaseError),
    /// The journal could not be opened or read: invalid input.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// The environments could not be built (an unset secret, a bad URL): invalid input.
    #[error(transparent)]
    Envs(#[from] super::envs::EnvsError),
    /// `--sim-url` does not answer as a simulator: invalid input.
    #[error("--sim-url {url}: {}", sim_url_cause(source))]
    SimUrl { url: String, source: reqwest::Error },
    /// The runbook file could not be read: invalid input.
    #[error("{path}: {source}")]
    RunbookFile { path: String, source: std::io::Error },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(reqwest::Error),
    /// The journal could not be written or followed.
    #[error("{0}")]
    Failed(String),
}

/// A TLS failure in words (an expired or untrusted certificate), else the client's own message.
fn sim_url_cause(e: &reqwest::Error) -> String {
    match crate::connectors::net::tls_failure(e) {
        Some(why) => format!("TLS failed: {why}"),
        None => e.to_string(),
    }
}

fn invalid(e: impl std::fmt::Display) -> SetupError {
    SetupError::Invalid(e.to_string())
}

pub use crate::util::sha256_hex;

/// A `dmf.import` package file, read for validation (relative to the runbook's folder).
pub fn read_package(dir: &Path, p: &str) -> crate::runbook::validate::PackageFile {
    use crate::runbook::validate::PackageFile;
    let path = dir.join(p);
    if !path.is_file() {
        return PackageFile::Missing;
    }
    match std::fs::read(&path) {
        Ok(b) => PackageFile::Bytes(b),
        Err(e) => PackageFile::Unreadable(e.to_string()),
    }
}

/// Loads and strictly validates a runbook; every diagnostic rendered on failure.
pub fn load_strict(text: &str, file: &str, dir: &Path, vars: &dyn EnvLookup) -> Result<Runbook, SetupError> {
    let loaded = crate::runbook::load(text, file);
    let mut diags = crate::runbook::validate_loaded(&loaded, file, vars, true);
    diags.extend(crate::runbook::validate::package_diagnostics(
        &loaded,
        file,
        &|p| read_package(dir, p),
    ));
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(Some(text)))
        .collect();
    match loaded.runbook {
        Some(rb) if errors.is_empty() => Ok(rb),
        _ => Err(SetupError::Invalid(format!(
            "{}\n{file}: the runbook does not validate ({} error(s))",
            errors.join("\n"),
            errors.len().max(1)
        ))),
    }
}

fn tolerance(t: Option<&crate::runbook::Tolerance>) -> Tolerance {
    match t {
        Some(crate::runbook::Tolerance::Count(n)) => Tolerance::Count(*n),
        Some(crate::runbook::Tolerance::Percent(p)) => {
            Tolerance::Percent(p.trim_end_matches('%').trim().parse().unwrap_or(0.0))
        }
        None => Tolerance::Count(0),
    }
}

/// The plan as `RunStarted` lists it.
pub fn plan_info(rb: &Runbook, plan: &Plan) -> (Vec<Arc<PlannedStepInfo>>, Vec<MapInfo>) {
    let steps = plan
        .steps
        .iter()
        .map(|s| {
            let confirm = match &s.what {
                PlannedWhat::Step(st) => st.confirm,
                PlannedWhat::Gate { .. } => rb
                    .phases
                    .iter()
                    .find(|p| *p.id == *s.phase)
                    .and_then(|p| p.gate.as_ref())
                    .is_some_and(|g| g.confirm),
                PlannedWhat::WaveMap { .. } => false,
            };
            Arc::new(PlannedStepInfo {
                id: s.id.clone(),
                phase: Arc::clone(&s.phase),
                wave: s.wave.clone(),
                kind: std::borrow::Cow::Borrowed(s.kind),
                title: s.title.as_deref().map_or_else(|| Arc::clone(&s.id.0), Arc::from),
                needs: s.needs.clone(),
                point_of_no_return: s.point_of_no_return,
                confirm,
                map: match &s.what {
                    PlannedWhat::WaveMap { map } => Some(map.0.clone()),
                    _ => None,
                },
                estimate_ms: Some(s.estimate_secs.saturating_mul(1000)),
                estimate_from: None,
            })
        })
        .collect();
    let maps = rb
        .maps
        .iter()
        .map(|(id, m)| MapInfo {
            id: id.0.clone(),
            companies: m.companies.clone(),
            tolerance: tolerance(m.tolerance.as_ref()),
        })
        .collect();
    (steps, maps)
}

/// Prefix of the `Log` line that records the runbook file a run was started from.
const RUNBOOK_FILE_LOG: &str = "runbook file: ";

async fn sim_clock(url: &str) -> Result<f64, SetupError> {
    // The same rule as every connector request: no plain http off this machine.
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(format!("--sim-url {url}: {e}")))?;
    if !crate::connectors::transport::url_allowed(&parsed) {
        return Err(invalid(format!(
            "--sim-url {url}: refused: only https, or plain http to a loopback host (127.0.0.0/8, ::1, localhost)"
        )));
    }
    let client = crate::connectors::net::client().map_err(SetupError::Client)?;
    let v: serde_json::Value = client
        .get(format!("{}/_sim/clock", url.trim_end_matches('/')))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|source| SetupError::SimUrl {
            url: url.to_owned(),
            source,
        })?
        .json()
        .await
        .map_err(|source| SetupError::SimUrl {
            url: url.to_owned(),
            source,
        })?;
    Ok(v["time_scale"].as_f64().unwrap_or(1.0))
}

/// A run set up and ready to drive.
struct Prepared {
    scheduler: Scheduler,
    starts: BTreeMap<StepId, Start>,
    journal: Journal,
    lease: lease::Heartbeat,
    questions: Option<Arc<Questions>>,
    /// Who is signed in, for the decisions the router journals itself (pause, resume, abort).
    approver: Option<Arc<Approver>>,
    /// The run's secrets: the end's message passes through it before it reaches stderr or the screen.
    redactor: Redactor,
    /// The sender of checkpoints to `notify` witnesses, drained at the run's end.
    witnesses: Option<Arc<super::witness::Witnesses>>,
    /// The task that has a vault sign the checkpoints, drained at the run's end (before the witnesses).
    signer: Option<Arc<super::vault_signer::VaultSigner>>,
}

/// Starts the engine: sets the run up, then drives it on its own task. Returns the handle, the
/// state as it stood before this process journaled anything (a resumed run's rebuilt state), and a
/// subscription to every envelope this process journals, in order (fold them into that state).
pub async fn start_engine(
    opts: RunOptions,
) -> Result<(EngineHandle, RunState, mpsc::UnboundedReceiver<Arc<Envelope>>), SetupError> {
    let cancel = CancellationToken::new();
    let (p, initial, sub) = prepare(&opts, cancel.clone()).await?;
    let state = Arc::clone(&p.scheduler.state);
    let run_id = p.scheduler.run_id.clone();
    let emit = p.scheduler.emit.clone();
    let control = Arc::clone(&p.scheduler.control);
    let (tx, mut rx) = mpsc::channel::<Command>(64);
    let sub = match opts.follow_delay {
        Some(d) => delayed(sub, d),
        None => sub,
    };
    let questions = p.questions.clone();
    let approver = p.approver.clone();
    let router_cancel = cancel.clone();
    let Prepared {
        scheduler,
        starts,
        journal,
        lease,
        questions: _,
        approver: _,
        redactor,
        witnesses,
        signer,
    } = p;
    // Shared with the router: a map's pause or resume from the console runs as a step of the scheduler's.
    let scheduler = Arc::new(scheduler);
    let for_maps = Arc::clone(&scheduler);
    tokio::spawn(async move {
        loop {
            let cmd = tokio::select! {
                c = rx.recv() => match c { Some(c) => c, None => break },
                () = router_cancel.cancelled() => break,
            };
            // Only the decisions the router journals itself; the others get theirs where they are asked.
            let own = matches!(cmd.action, OperatorAction::Pause | OperatorAction::Resume)
                || cmd.action == OperatorAction::Abort && cmd.step.is_none();
            let identity = match &approver {
                Some(a) if own => a.identity().await,
                _ => None,
            };
            if cmd.map.is_some() && matches!(cmd.action, OperatorAction::Pause | OperatorAction::Resume) {
                for_maps.map_action(cmd, identity).await;
                continue;
            }
            route(&emit, &control, questions.as_deref(), cmd, identity).await;
        }
    });
    let writer = journal.writer();
    let journal_path = opts.journal.clone();
    let done = tokio::spawn(async move {
        let alerting = scheduler.alerting.clone();
        let end = scheduler.run(starts).await;
        // A run that halts or is interrupted still sends what its targets are owed (idempotent after `finish`).
        if let Some(a) = alerting {
            a.drain().await;
        }
        // A run that stops without finishing is signed up to its last event (a finished one was at `run_finished`).
        let flushed = match end {
            RunEnd::Halted { .. } | RunEnd::Waiting { .. } | RunEnd::Interrupted => {
                writer
                    .checkpoint_head(crate::journal::checkpoint::reason::HALT)
                    .await
            }
            RunEnd::Finished(_) | RunEnd::Broken(_) => writer.flush().await,
        };
        // A vault signs the last checkpoint on its own task: wait for it (bounded).
        if let Some(s) = signer {
            s.drain().await;
        }
        // The last checkpoint is committed: send what the notify witnesses are still owed (bounded wait).
        if let Some(w) = witnesses {
            w.drain().await;
        }
        let end = match (flushed, end) {
            (Err(e), RunEnd::Finished(_)) => RunEnd::Broken(e.to_string()),
            (_, end) => end,
        };
        // A failed journal cancelled the run; say so instead of "interrupted".
        let end = match writer.failure() {
            Some(cause) => RunEnd::Broken(journal_failure(&journal_path, &cause)),
            None => end,
        };
        let end = match lease.stop() {
            Some(lost) if !matches!(end, RunEnd::Broken(_)) => RunEnd::Broken(lost),
            _ => end,
        };
        let close = tokio::task::spawn_blocking(move || journal.close()).await;
        let end = match (close, end) {
            (Ok(Ok(())), end) | (_, end @ RunEnd::Broken(_)) => end,
            (Ok(Err(e)), _) => RunEnd::Broken(e.to_string()),
            (Err(e), _) => RunEnd::Broken(e.to_string()),
        };
        end.redacted(&redactor)
    });
    Ok((
        EngineHandle {
            run_id,
            commands: tx,
            cancel,
            state,
            done,
        },
        initial,
        sub,
    ))
}

/// `sub`, each envelope held for `d` first (see [`RunOptions::follow_delay`]).
fn delayed(
    mut sub: mpsc::UnboundedReceiver<Arc<Envelope>>,
    d: std::time::Duration,
) -> mpsc::UnboundedReceiver<Arc<Envelope>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(env) = sub.recv().await {
            tokio::time::sleep(d).await;
            if tx.send(env).is_err() {
                break;
            }
        }
    });
    rx
}

async fn route(
    emit: &Emitter,
    control: &Control,
    questions: Option<&Questions>,
    cmd: Command,
    identity: Option<crate::model::Identity>,
) {
    use super::event::OperatorAction as A;
    match cmd.action {
        A::Pause | A::Resume => {
            let paused = cmd.action == A::Pause;
            if set_paused(emit, control, paused, &cmd.operator, cmd.reason.clone(), identity)
                .await
                .is_err()
            {
                control.request_abort("the journal refused a write".into());
            }
        }
        A::Abort if cmd.step.is_none() => {
            let decided = emit
                .durable(Event::OperatorDecision {
                    step: None,
                    action: A::Abort,
                    operator: cmd.operator.clone(),
                    reason: cmd.reason.clone(),
                    checklist_done: Vec::new(),
                    identity,
                })
                .await;
            let why = cmd.reason.clone().unwrap_or_else(|| "no reason given".into());
            if decided.is_ok() {
                control.request_abort(format!("aborted by {}: {why}", cmd.operator));
            }
        }
        _ => match questions {
            Some(q) => {
                if let Err(why) = q.route(cmd.clone()) {
                    log_unrouted(emit, &cmd, &why);
                }
            }
            None => log_unrouted(emit, &cmd, &super::scheduler::operator::Unrouted::NothingWaiting),
        },
    }
}

type PrepareOut = (Prepared, RunState, mpsc::UnboundedReceiver<Arc<Envelope>>);

async fn prepare(opts: &RunOptions, cancel: CancellationToken) -> Result<PrepareOut, SetupError> {
    let redactor = Redactor::new();
    let journal = Journal::open(&opts.journal, redactor.clone())?;
    // A journal that cannot be written cancels the run at once: no request starts after that.
    journal.writer().cancel_on_failure(cancel.clone());
    let holder = crate::journal::LeaseHolder::this_process(opts.operator.clone());
    let (lease, takeover) = lease::acquire(&opts.journal, &holder, opts.take_over)?;
    // Every append checks, inside its transaction, that this lease is still the journal's.
    journal.bind_lease(lease.token());
    // Beat (and release) from here on, so a setup refused below (a changed runbook, a full disk)
    // gives the lease back instead of leaving one that looks like a dead driver's.
    let heartbeat = lease::Heartbeat::start(lease, cancel.clone());
    let held = async {
    let chosen = choose(&opts.journal, opts)?;
    // The runbook: the file given, the file the run was started from, else the journaled text.
    let (file, text, dir, journaled) = match (&chosen, &opts.runbook) {
        (_, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|source| SetupError::RunbookFile {
                path: f.display().to_string(),
                source,
            })?;
            (
                f.clone(),
                text,
                folder_of(f),
                None,
            )
        }
        (Chosen::Resume { started, file, .. }, None) => {
            let Event::RunStarted { runbook, .. } = &started.event else {
                return Err(invalid("the run's first event is not RunStarted"));
            };
            match file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok().map(|t| (f.clone(), t)))
            {
                Some((f, t)) => {
                    let dir = folder_of(&f);
                    (f, t, dir, Some(runbook.clone()))
                }
                None => {
                    let dir = folder_of(&opts.journal);
                    (
                        PathBuf::from(format!("{} (journaled)", runbook.name)),
                        runbook.text.clone(),
                        dir,
                        Some(runbook.clone()),
                    )
                }
            }
        }
        (Chosen::New, None) => return Err(invalid("no runbook given")),
    };
    let file_label = file.display().to_string();
    let rb = load_strict(&text, &file_label, &dir, opts.vars.as_ref())?;
    let plan = crate::runbook::plan::plan(&rb);
    let sha = sha256_hex(&text);
    let host = holder.host.clone();
    let (run_id, started_at, accepted, change) = match &chosen {
        Chosen::New => (super::new_run_id(), Utc::now(), false, None),
        Chosen::Resume {
            run_id,
            started,
            record,
            state,
            ..
        } => {
            let Event::RunStarted {
                runbook,
                started_at,
                steps: old_steps,
                ..
            } = &started.event
            else {
                return Err(invalid("the run's first event is not RunStarted"));
            };
            let _ = journaled;
            if runbook.name != rb.runbook {
                return Err(invalid(format!(
                    "the journal's unfinished run {run_id} is of runbook `{}`, not `{}`; finish it or use another journal",
                    runbook.name, rb.runbook
                )));
            }
            // The text this run runs now: as it started, or as last accepted (`runbook_changed`), so an
            // accepted change is not asked about again on every resume.
            let current = state
                .header
                .accepted_runbook_sha256
                .clone()
                .unwrap_or_else(|| runbook.sha256.clone());
            let changed = current != sha;
            if changed && !opts.accept_changed_runbook {
                return Err(invalid(format!(
                    "{}the runbook changed since run {run_id} started (sha256 {} → {}); pass --accept-changed-runbook to continue with the new text",
                    diff_summary(&runbook.text, &text, 20),
                    &current[..12.min(current.len())],
                    &sha[..12]
                )));
            }
            let change = if changed {
                let old_ids: Vec<StepId> = old_steps.iter().map(|s| s.id.clone()).collect();
                let diff = runbook_diff(&runbook.text, &old_ids, &plan, record);
                let refused: Vec<String> = diff
                    .inserted_behind
                    .iter()
                    .filter(|(id, _)| !opts.accept_inserted_steps.iter().any(|a| a == id.as_str()))
                    .map(|(id, pos)| {
                        format!("step `{id}` was added before `{pos}`, which run {run_id} has already started")
                    })
                    .collect();
                if !refused.is_empty() {
                    let flags: Vec<String> = diff
                        .inserted_behind
                        .iter()
                        .map(|(id, _)| format!("--accept-inserted-step {id}"))
                        .collect();
                    return Err(invalid(format!(
                        "{}; it would run out of the runbook's order, behind the run's position. Move it after `{}`, or pass {} to run it anyway (journaled)",
                        refused.join("; "),
                        diff.inserted_behind[0].1,
                        flags.join(" ")
                    )));
                }
                Some(Event::RunbookChanged {
                    old_sha256: current.clone(),
                    new_sha256: sha.clone(),
                    added: diff.added,
                    removed: diff.removed,
                    changed: diff.changed,
                    accepted_inserted: diff.inserted_behind.into_iter().map(|(id, _)| id).collect(),
                    text: text.clone(),
                })
            } else {
                None
            };
            (run_id.clone(), *started_at, changed, change)
        }
    };
    let writer = journal.writer();
    let initial = match &chosen {
        Chosen::Resume { state, .. } => (**state).clone(),
        Chosen::New => RunState::default(),
    };
    // The engine's own state: subscribed before this process journals anything, so it folds every
    // envelope after `initial`; `durable` folds each one before it returns.
    let mine = writer
        .subscribe()
        .map_err(|e| SetupError::Failed(e.to_string()))?;
    let live = Arc::new(LiveState::following(initial.clone(), mine));
    let emit = Emitter::new(writer.clone(), run_id.clone()).with_state(Arc::clone(&live));
    let mut checkpoint_notes: Vec<(LogLevel, String)> = Vec::new();
    let mut witness_targets: Vec<String> = Vec::new();
    let checkpoints = {
        let var_ctx = crate::runbook::vars::VarContext {
            env: opts.vars.as_ref(),
            run_id: run_id.0.clone(),
            run_date: run_date(started_at),
            run_operator: opts.operator.clone(),
            captures: BTreeMap::new(),
            figures: BTreeMap::new(),
        };
        super::checkpoints::setup(&rb, &plan, &opts.journal, opts.vars.as_ref(), &var_ctx).map_err(invalid)?
    };
    // A vault key is read once the environments are built; a key file's checkpointer starts now.
    let mut vault_checkpoints = None;
    if let Some(mut cp) = checkpoints {
        checkpoint_notes.push((LogLevel::Info, std::mem::take(&mut cp.summary)));
        witness_targets = std::mem::take(&mut cp.notify);
        checkpoint_notes.extend(cp.warnings.drain(..).map(|w| (LogLevel::Warn, w)));
        if cp.vault.is_some() {
            vault_checkpoints = Some(cp);
        } else {
            writer
                .set_checkpoints(cp.checkpointer)
                .map_err(|e| SetupError::Failed(e.to_string()))?;
        }
    }
    let (target, scale) = match &opts.sim {
        SimTarget::None => (Target::Live, 1.0),
        SimTarget::Url(u) => (
            Target::Sim {
                url: u.trim_end_matches('/').to_owned(),
            },
            sim_clock(u).await?,
        ),
    };
    // While the console draws the screen, a device-code prompt is its log line, not a stderr line.
    super::envs_auth::set_prompt_on_stderr(!opts.interactive);
    let mut envs = Envs::build(&rb, opts.vars.as_ref(), &target, &redactor, &emit)?;
    // A driver whose heartbeat lapsed (frozen, suspended) sends nothing more: another may own the run now.
    envs.set_guard(heartbeat.guard());
    let envs = Arc::new(envs);
    // Checkpoints signed in a vault: its key read (an EC P-256 key that may sign) before anything runs.
    let mut key_event = None;
    let signer = match vault_checkpoints {
        None => None,
        Some(mut cp) => {
            let Some(v) = cp.vault.take() else {
                return Err(SetupError::Failed("checkpoints: the vault setup is missing".into()));
            };
            let where_ = format!(
                "journal.checkpoints.key_vault: key `{}` of environment `{}`",
                v.spec.key, v.spec.environment
            );
            let client = envs
                .scoped(None)
                .keyvault(&v.spec.environment)
                .map_err(|e| invalid(format!("{where_}: {e}")))?;
            let key = client
                .get_key(&v.spec.key, v.spec.version.as_deref(), &cancel)
                .await
                .map_err(|e| invalid(format!("{where_}: {e}")))?;
            let key = super::vault_signer::KeyInfo::from_vault(&v.spec.key, key)
                .map_err(|e| invalid(format!("{where_}: {e}")))?;
            cp.checkpointer.signer = crate::journal::checkpoint::Signer::Vault {
                fingerprint: key.fingerprint.clone(),
                requests: v.requests,
            };
            writer
                .set_checkpoints(cp.checkpointer)
                .map_err(|e| SetupError::Failed(e.to_string()))?;
            key_event = Some(key.event());
            Some(super::vault_signer::VaultSigner::start(
                client,
                key,
                emit.clone(),
                v.queue,
            ))
        }
    };
    let targets = super::alerting::resolve_targets(&rb, &envs).map_err(invalid)?;
    let witness_to: Vec<super::alerting::Resolved> = targets
        .iter()
        .filter(|t| witness_targets.contains(&t.name))
        .cloned()
        .collect();
    let witnesses = if witness_to.is_empty() {
        None
    } else {
        let feed = writer
            .subscribe()
            .map_err(|e| SetupError::Failed(e.to_string()))?;
        let journal_name = opts
            .journal
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        super::witness::Witnesses::start(
            witness_to,
            &rb.runbook,
            journal_name,
            Arc::clone(&envs),
            emit.clone(),
            feed,
        )
    };
    let alert_feed = writer
        .subscribe()
        .map_err(|e| SetupError::Failed(e.to_string()))?;
    let alerting = super::alerting::Alerting::start(
        targets,
        &rb,
        run_id.clone(),
        Arc::clone(&envs),
        emit.clone(),
        Clock::scaled(scale),
        alert_feed,
    );
    let sub = writer
        .subscribe()
        .map_err(|e| SetupError::Failed(e.to_string()))?;
    let journal_err = |e: crate::journal::JournalError| {
        SetupError::Failed(journal_failure(&opts.journal, &e.to_string()))
    };
    let starts = match &chosen {
        Chosen::New => {
            let earlier = rehearsed::earlier_durations(&opts.journal, &rb.runbook);
            let (steps, maps) = rehearsed::planned_steps(&rb, &plan, &earlier);
            let learned = rehearsed::source_note(&steps);
            let fw = rb.freeze_window.as_ref().map(|f| super::event::FreezeWindow {
                start: f.start.at().with_timezone(&Utc),
                end: f.end.at().with_timezone(&Utc),
            });
            emit.durable(Event::RunStarted {
                run_id: run_id.clone(),
                runbook: RunbookInfo {
                    name: rb.runbook.clone(),
                    version: rb.version.clone(),
                    sha256: sha.clone(),
                    text: text.clone(),
                },
                operator: opts.operator.clone(),
                host: host.clone(),
                started_at,
                freeze_window: fw,
                steps,
                maps,
                time_scale: scale,
            })
            .await
            .map_err(journal_err)?;
            emit.durable(Event::EnvironmentTime {
                at: envs.env_now(&cancel).await,
            })
            .await
            .map_err(journal_err)?;
            if let Some(ev) = takeover {
                emit.durable(ev).await.map_err(journal_err)?;
            }
            if let Some(message) = learned {
                emit.durable(Event::Log {
                    level: LogLevel::Info,
                    message,
                })
                .await
                .map_err(journal_err)?;
            }
            if let Some(ev) = key_event.take() {
                emit.durable(ev).await.map_err(journal_err)?;
            }
            for (level, message) in &checkpoint_notes {
                emit.durable(Event::Log {
                    level: *level,
                    message: message.clone(),
                })
                .await
                .map_err(journal_err)?;
            }
            if let Ok(abs) = std::fs::canonicalize(&file) {
                emit.durable(Event::Log {
                    level: LogLevel::Info,
                    message: format!("{RUNBOOK_FILE_LOG}{}", abs.display()),
                })
                .await
                .map_err(journal_err)?;
            }
            plan.steps
                .iter()
                .map(|s| (s.id.clone(), Start::Fresh { attempt: 1 }))
                .collect()
        }
        Chosen::Resume { record, .. } => {
            emit.durable(Event::RunResumed {
                operator: opts.operator.clone(),
                host: host.clone(),
                accepted_changed_runbook: accepted,
            })
            .await
            .map_err(journal_err)?;
            // What changed, by step id, before anything acts on the new text.
            if let Some(ev) = change.clone() {
                emit.durable(ev).await.map_err(journal_err)?;
            }
            emit.durable(Event::EnvironmentTime {
                at: envs.env_now(&cancel).await,
            })
            .await
            .map_err(journal_err)?;
            if let Some(ev) = takeover {
                emit.durable(ev).await.map_err(journal_err)?;
            }
            if let Some(ev) = key_event.take() {
                emit.durable(ev).await.map_err(journal_err)?;
            }
            for (level, message) in &checkpoint_notes {
                emit.durable(Event::Log {
                    level: *level,
                    message: message.clone(),
                })
                .await
                .map_err(journal_err)?;
            }
            record.starts(&plan)
        }
    };
    let control = Arc::new(Control::default());
    if let Chosen::Resume { record, .. } = &chosen
        && record.paused
        && opts.interactive
    {
        control.set_paused(true);
    }
    let refusals = Arc::new(Refusals::default());
    let approver = Approver::for_run(&rb, &envs, cancel.clone());
    let router_approver = approver.clone();
    let (operator, questions, gate_policy): (Arc<dyn Operator>, _, _) = if opts.interactive {
        let q = Arc::new(Questions::default());
        let op = InteractiveOperator::new(emit.clone(), Arc::clone(&q), cancel.clone()).with_approver(approver);
        (Arc::new(op), Some(q), GatePolicy::Ask)
    } else {
        let policy = if opts.auto_approve.is_some() {
            GatePolicy::Halt
        } else {
            GatePolicy::Ask
        };
        let op = HeadlessOperator::new(emit.clone(), opts.auto_approve.clone(), Arc::clone(&refusals))
            .with_approver(approver);
        (Arc::new(op), None, policy)
    };
    let scheduler = Scheduler {
        run_id,
        run_date: started_at.format("%Y-%m-%d").to_string(),
        run_operator: opts.operator.clone(),
        runbook: Arc::new(rb),
        runbook_dir: dir,
        work_dir: opts
            .journal
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        plan: Arc::new(plan),
        envs,
        emit,
        clock: Clock::scaled(scale),
        cancel: cancel.clone(),
        operator,
        state: live,
        executor: Arc::new(RealExecutor),
        gate_policy,
        control,
        refusals,
        alerting,
    };
    Ok((scheduler, starts, journal, (questions, router_approver, witnesses, signer), initial, sub))
    }
    .await;
    match held {
        Ok((scheduler, starts, journal, (questions, approver, witnesses, signer), initial, sub)) => Ok((
            Prepared {
                scheduler,
                starts,
                journal,
                lease: heartbeat,
                questions,
                approver,
                redactor,
                witnesses,
                signer,
            },
            initial,
            sub,
        )),
        Err(e) => {
            drop(heartbeat.stop());
            Err(e)
        }
    }
}

/// What the operator reads when the journal cannot be written: which file, why, that nothing
/// unjournaled was done, and how to carry on.
pub fn journal_failure(journal: &Path, cause: &str) -> String {
    let j = journal.display();
    format!(
        "the journal {j} cannot be written ({cause}); cutover stopped before its next action and executed nothing the journal does not record. Free space (or fix the file system), then run `cutover resume {j}`"
    )
}

/// The folder a file named on the command line is in: `.` for a bare file name (whose parent is the empty
/// path, which the file system cannot canonicalise: a `dmf.import` of `cutover run runbook.yaml` could not
/// find its package).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// When a run started, for `${run.date}` (UTC).
pub fn run_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod folder_tests {
    #[test]
    fn a_bare_file_name_is_in_the_current_folder() {
        use std::path::Path;
        assert_eq!(super::folder_of(Path::new("runbook.yaml")), Path::new("."));
        assert!(std::fs::canonicalize(super::folder_of(Path::new("runbook.yaml"))).is_ok());
        assert_eq!(super::folder_of(Path::new("a/runbook.yaml")), Path::new("a"));
        assert_eq!(super::folder_of(Path::new("/r.yaml")), Path::new("/"));
    }
}
