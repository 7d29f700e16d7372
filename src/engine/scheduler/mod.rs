//! The scheduler: decides what runs when, journals each step's intent and result around the
//! executor, and owns every conversation with the operator.
//!
//! - A step starts when all its `needs` are done (succeeded, skipped, waived, or failed with
//!   `on_failure: continue`) and the run is not paused; a wave's map steps run at most `concurrency`
//!   at once (the wave's, else the defaults'). Phases and `steps:` lists are ordered by the plan's
//!   `needs`.
//! - Each step runs on its own task ([`step`]): confirmations, intent (durable), execution with the
//!   step's timeout, result (durable), then failure handling (gate policy, `on_failure`, the
//!   operator's retry/skip/abort).
//! - A halt (headless, nobody to decide) stops new starts, lets running steps finish, and ends the
//!   process without `RunFinished`, so the run can be resumed. Abort cancels running steps and
//!   journals `RunFinished { Aborted }`. Cancellation (SIGINT, console quit) drops running steps
//!   without journaling their result: resume reconciles them.

pub mod approvals;
pub mod operator;
mod step;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ctx::{Clock, Emitter, Operator, StepCtx};
use super::driver::RunEnd;
use super::envs::Envs;
use super::event::{Event, Handle, OperatorAction, RunOutcome};
use super::exec::{Mode, Reconcile, StepResult};
use super::{RunId, StepId};
use crate::runbook::Runbook;
use crate::runbook::plan::{Plan, PlannedStep, PlannedWhat};

pub use step::Start;

/// What runs a step: [`RealExecutor`] (the `exec` module) in production; tests may script one.
pub trait Executor: Send + Sync + 'static {
    fn handle_for(&self, step: &PlannedStep, run_id: &RunId, attempt: u32) -> Option<Handle>;
    fn reconcile_policy(&self, step: &PlannedStep) -> Reconcile;
    fn execute<'a>(
        &'a self,
        ctx: &'a StepCtx,
        handle: Option<&'a Handle>,
        mode: Mode,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>>;
}

/// The step executors of [`crate::engine::exec`].
pub struct RealExecutor;

impl Executor for RealExecutor {
    fn handle_for(&self, step: &PlannedStep, run_id: &RunId, attempt: u32) -> Option<Handle> {
        super::exec::handle_for(step, run_id, attempt)
    }
    fn reconcile_policy(&self, step: &PlannedStep) -> Reconcile {
        super::exec::reconcile_policy(step)
    }
    fn execute<'a>(
        &'a self,
        ctx: &'a StepCtx,
        handle: Option<&'a Handle>,
        mode: Mode,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>> {
        Box::pin(super::exec::execute(ctx, handle, mode))
    }
}

/// What happens when a gate still fails after the automatic re-checks its runbook asks for
/// (`gate: { retries, retry_every }`, journaled as `GateRecheck`).
#[derive(Debug, Clone, PartialEq)]
pub enum GatePolicy {
    /// Ask the operator (retry, waive with a reason, abort).
    Ask,
    /// Headless `--auto-approve`: halt (exit 1); the operator decides on `resume`.
    Halt,
}

/// Pause / abort requests, shared by the command router and the loop.
#[derive(Default)]
pub struct Control {
    paused: AtomicBool,
    abort: Mutex<Option<String>>,
    wake: Notify,
    /// Maps with a pause or resume from the console in flight (one at a time per map).
    maps_busy: Mutex<std::collections::HashSet<String>>,
    /// The last console map step number this process gave (see `Scheduler::map_action`).
    map_actions: std::sync::atomic::AtomicU32,
}

impl Control {
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        self.wake.notify_one();
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
    pub fn request_abort(&self, reason: String) {
        let mut a = self.abort.lock().unwrap_or_else(PoisonError::into_inner);
        if a.is_none() {
            *a = Some(reason);
        }
        drop(a);
        self.wake.notify_one();
    }
    fn abort_reason(&self) -> Option<String> {
        self.abort.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Everything the scheduler needs for one run.
pub struct Scheduler {
    pub run_id: RunId,
    pub run_date: String,
    pub run_operator: String,
    pub runbook: Arc<Runbook>,
    pub runbook_dir: PathBuf,
    /// The journal's directory (see [`crate::engine::ctx::StepCtx::work_dir`]).
    pub work_dir: PathBuf,
    pub plan: Arc<Plan>,
    pub envs: Arc<Envs>,
    pub emit: Emitter,
    pub clock: Clock,
    /// Cancelled on SIGINT/SIGTERM or when the console quits.
    pub cancel: CancellationToken,
    pub operator: Arc<dyn Operator>,
    pub state: Arc<crate::engine::live::LiveState>,
    pub executor: Arc<dyn Executor>,
    pub gate_policy: GatePolicy,
    pub control: Arc<Control>,
    /// Questions the headless operator refused (shared with it).
    pub refusals: Arc<operator::Refusals>,
    /// The `notify_targets` dispatcher, drained before `RunFinished` (none without targets).
    pub alerting: Option<Arc<crate::engine::alerting::Alerting>>,
}

/// How a step's task ended.
#[derive(Debug)]
enum TaskEnd {
    /// Done for `needs`: succeeded, skipped, waived, or failed with `on_failure: continue` (`false`).
    Done {
        ok: bool,
    },
    Halt(String),
    Waiting(String),
    Abort(String),
    Cancelled,
    Broken(String),
}

#[derive(Debug, Clone)]
enum Status {
    Waiting(Start),
    Running,
    Done,
    Stuck,
}

impl Scheduler {
    fn wave_concurrency(&self, wave: &str) -> usize {
        let w = self
            .runbook
            .phases
            .iter()
            .flat_map(|p| p.waves.iter().flatten())
            .find(|w| w.id == wave);
        let n = w
            .and_then(|w| w.concurrency)
            .unwrap_or_else(|| self.runbook.defaults.concurrency());
        usize::try_from(n.max(1)).unwrap_or(1)
    }

    /// Drives the run until it finishes, halts, waits for a person, or is cancelled. `starts` says
    /// how each step not yet done begins (all `Start::Fresh { attempt: 1 }` for a new run; resume
    /// computes it from the journal); steps absent from `starts` are done already.
    pub async fn run(self: Arc<Self>, starts: BTreeMap<StepId, Start>) -> RunEnd {
        let this = self;
        let steps_cancel = this.cancel.child_token();
        // Every decision below costs O(what changed), never O(steps): a run of 100,000 steps is
        // not slower per step than a run of ten (see benches/steps.rs).
        let n = this.plan.steps.len();
        let index: HashMap<&StepId, usize> = this
            .plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.id, i))
            .collect();
        let mut status: Vec<Status> = this
            .plan
            .steps
            .iter()
            .map(|s| match starts.get(&s.id) {
                Some(start) => Status::Waiting(start.clone()),
                None => Status::Done,
            })
            .collect();
        let mut not_done = status.iter().filter(|s| !matches!(s, Status::Done)).count();
        // Per step: its `needs` not done yet (a need that is not a planned step counts as done), and
        // who needs it.
        let mut unmet: Vec<usize> = vec![0; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in this.plan.steps.iter().enumerate() {
            let mut seen: Vec<usize> = Vec::with_capacity(s.needs.len());
            for need in &s.needs {
                if let Some(&j) = index.get(need)
                    && !seen.contains(&j)
                {
                    seen.push(j);
                    dependents[j].push(i);
                    if !matches!(status[j], Status::Done) {
                        unmet[i] += 1;
                    }
                }
            }
        }
        // Waiting steps whose needs are all done, in plan order.
        let mut ready: std::collections::BTreeSet<usize> = (0..n)
            .filter(|&i| unmet[i] == 0 && matches!(status[i], Status::Waiting(_)))
            .collect();
        let mut set: JoinSet<(usize, TaskEnd)> = JoinSet::new();
        // A map's pause or resume from the console that the journal left in flight (or failed without a
        // decision) is carried on as the plan's steps are, before anything new starts: asked of the
        // environment through its handle, never sent blind. Task `n + k` is `console[k]`.
        let console: Vec<(StepId, String)> = starts
            .iter()
            .filter_map(|(id, start)| {
                let (pause, map) = crate::model::parse_console_map_step(id)?;
                let verb = if pause { "Pause" } else { "Resume" };
                let title = format!("{verb} map {map} (from the console, carried on by resume)");
                let planned = console_step(id.clone(), pause, map, title);
                this.control
                    .maps_busy
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(map.to_owned());
                let k = n + set.len();
                let (me, start, cancel) = (Arc::clone(&this), start.clone(), steps_cancel.child_token());
                set.spawn(async move { (k, step::drive(me, planned, start, cancel).await) });
                Some((id.clone(), map.to_owned()))
            })
            .collect();
        // Read in full by now: not held (one entry a step) for the rest of the run.
        drop(starts);
        let mut running_per_wave: HashMap<String, usize> = HashMap::new();
        let mut stop: Option<RunEnd> = None;
        let mut failed_continue: Vec<StepId> = Vec::new();
        loop {
            if let Some(reason) = this.control.abort_reason() {
                steps_cancel.cancel();
                while set.join_next().await.is_some() {}
                this.restore_automation().await;
                this.close_batch_windows().await;
                return this.finish(RunOutcome::Aborted { reason }).await;
            }
            if this.cancel.is_cancelled() {
                while set.join_next().await.is_some() {}
                return RunEnd::Interrupted;
            }
            if stop.is_none() && !this.control.is_paused() {
                let mut started: Vec<usize> = Vec::new();
                for &i in &ready {
                    let s = &this.plan.steps[i];
                    let Status::Waiting(start) = &status[i] else {
                        continue;
                    };
                    if let (PlannedWhat::WaveMap { .. }, Some(w)) = (&s.what, &s.wave) {
                        let n = running_per_wave.get(w).copied().unwrap_or(0);
                        if n >= this.wave_concurrency(w) {
                            continue;
                        }
                        running_per_wave.insert(w.clone(), n + 1);
                    }
                    let start = start.clone();
                    status[i] = Status::Running;
                    started.push(i);
                    let (me, step, cancel) = (Arc::clone(&this), s.clone(), steps_cancel.child_token());
                    set.spawn(async move { (i, step::drive(me, step, start, cancel).await) });
                }
                for i in started {
                    ready.remove(&i);
                }
            }
            if set.is_empty() {
                if let Some(end) = stop {
                    return end;
                }
                if not_done == 0 {
                    let outcome = if failed_continue.is_empty() {
                        RunOutcome::Succeeded
                    } else {
                        let ids: Vec<&str> = failed_continue.iter().map(StepId::as_str).collect();
                        RunOutcome::Failed {
                            message: format!("failed with on_failure: continue: {}", ids.join(", ")),
                        }
                    };
                    return this.finish(outcome).await;
                }
                if !this.control.is_paused() {
                    let blocked: Vec<&str> = this
                        .plan
                        .steps
                        .iter()
                        .zip(&status)
                        .filter(|(_, st)| !matches!(st, Status::Done))
                        .map(|(s, _)| s.id.as_str())
                        .collect();
                    return RunEnd::Halted {
                        step: StepId(blocked.first().copied().unwrap_or("").into()),
                        message: format!("no step can start; blocked: {}", blocked.join(", ")),
                    };
                }
            }
            tokio::select! {
                joined = set.join_next(), if !set.is_empty() => {
                    let Some(joined) = joined else { continue };
                    let (i, end) = match joined {
                        Ok(v) => v,
                        Err(e) => {
                            stop.get_or_insert(RunEnd::Broken(format!("a step task failed: {e}")));
                            continue;
                        }
                    };
                    if let Some((id, map)) = i.checked_sub(n).and_then(|k| console.get(k)) {
                        this.control
                            .maps_busy
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(map);
                        match end {
                            TaskEnd::Done { .. } | TaskEnd::Cancelled => {}
                            TaskEnd::Halt(message) => {
                                stop.get_or_insert(RunEnd::Halted { step: id.clone(), message });
                            }
                            TaskEnd::Waiting(message) => {
                                stop.get_or_insert(RunEnd::Waiting { step: Some(id.clone()), message });
                            }
                            TaskEnd::Abort(reason) => this.control.request_abort(reason),
                            TaskEnd::Broken(message) => {
                                stop.get_or_insert(RunEnd::Broken(message));
                                steps_cancel.cancel();
                            }
                        }
                        continue;
                    }
                    let s = &this.plan.steps[i];
                    let id = s.id.clone();
                    if let (PlannedWhat::WaveMap { .. }, Some(w)) = (&s.what, &s.wave)
                        && let Some(n) = running_per_wave.get_mut(w)
                    {
                        *n = n.saturating_sub(1);
                    }
                    match end {
                        TaskEnd::Done { ok } => {
                            if !ok {
                                failed_continue.push(id);
                            }
                            if !matches!(status[i], Status::Done) {
                                status[i] = Status::Done;
                                not_done -= 1;
                                for &d in &dependents[i] {
                                    unmet[d] = unmet[d].saturating_sub(1);
                                    if unmet[d] == 0 && matches!(status[d], Status::Waiting(_)) {
                                        ready.insert(d);
                                    }
                                }
                            }
                        }
                        TaskEnd::Halt(message) => {
                            status[i] = Status::Stuck;
                            stop.get_or_insert(RunEnd::Halted { step: id, message });
                        }
                        TaskEnd::Waiting(message) => {
                            status[i] = Status::Stuck;
                            stop.get_or_insert(RunEnd::Waiting { step: Some(id), message });
                        }
                        TaskEnd::Abort(reason) => this.control.request_abort(reason),
                        TaskEnd::Cancelled => {
                            status[i] = Status::Stuck;
                        }
                        TaskEnd::Broken(message) => {
                            status[i] = Status::Stuck;
                            stop.get_or_insert(RunEnd::Broken(message));
                            steps_cancel.cancel();
                        }
                    }
                }
                () = this.control.wake.notified() => {}
                () = this.cancel.cancelled() => {}
            }
        }
    }

    /// An aborted run puts back every plug-in step and flow it turned off (journaled each); a failure is
    /// journaled as an error and left to the operator (the report lists what is still off).
    async fn restore_automation(&self) {
        let open = self
            .state
            .read()
            .automation
            .values()
            .any(|v| v.restored_at.is_none());
        if !open {
            return;
        }
        if let Err(why) =
            super::exec::automation::restore(&self.envs, &self.emit, &self.state, None, None, &self.cancel)
                .await
        {
            let _ = self
                .emit
                .durable(Event::Log {
                    level: super::event::LogLevel::Error,
                    message: format!("abort: automation the run turned off is not all back: {why}"),
                })
                .await;
        }
    }

    /// An aborted run resumes the maps of every `dualwrite.batch_window` it left paused (journaled each); a
    /// failure is journaled as an error and left to the operator.
    async fn close_batch_windows(self: &Arc<Self>) {
        let open: Vec<String> = self
            .state
            .read()
            .batch_windows
            .iter()
            .filter(|(_, v)| v.open())
            .map(|(k, _)| k.clone())
            .collect();
        for id in open {
            let Some(step) = self.plan.steps.iter().find(|s| s.id.as_str() == id) else {
                continue;
            };
            let attempt = self
                .state
                .read()
                .steps
                .iter()
                .find(|v| v.info.id.as_str() == id)
                .map_or(1, |v| v.attempts.max(1));
            let ctx = self.ctx(step, attempt, &self.cancel);
            if let Err(why) = super::exec::batch_window::close(&ctx).await {
                let _ = self
                    .emit
                    .durable(Event::Log {
                        level: super::event::LogLevel::Error,
                        message: format!("abort: {id}: the batch window's maps are not all resumed: {why}"),
                    })
                    .await;
            }
        }
    }

    async fn finish(&self, outcome: RunOutcome) -> RunEnd {
        if let Some(a) = &self.alerting {
            a.drain().await;
        }
        match self
            .emit
            .durable(Event::RunFinished {
                outcome: outcome.clone(),
            })
            .await
        {
            Ok(_) => RunEnd::Finished(outcome),
            Err(e) => RunEnd::Broken(e.to_string()),
        }
    }
}

impl Scheduler {
    /// Why the console may not pause (`pause`) or resume `map` now, or `None`: the runbook has the map,
    /// it is live (a step that starts it, its wave's map step or a `dualwrite.run` selecting it, succeeded),
    /// no other console action on it is in flight, and a pause is not of a map paused from the console.
    fn map_refusal(&self, map: &str, pause: bool) -> Option<String> {
        if !self.runbook.maps.keys().any(|m| m.as_str() == map) {
            return Some(format!("the runbook has no map `{map}`"));
        }
        let st = self.state.read();
        let starters: Vec<&PlannedStep> = self
            .plan
            .steps
            .iter()
            .filter(|s| match &s.what {
                PlannedWhat::WaveMap { map: m } => m.as_str() == map,
                PlannedWhat::Step(step) => match &step.kind {
                    crate::runbook::StepKind::DualwriteRun(r) => r
                        .maps
                        .resolve(self.runbook.maps.keys())
                        .iter()
                        .any(|m| m.as_str() == map),
                    _ => false,
                },
                PlannedWhat::Gate { .. } => false,
            })
            .collect();
        let live = starters.iter().any(|s| {
            st.step(s.id.as_str())
                .is_some_and(|v| v.status == crate::state::StepStatus::Succeeded)
        });
        if !live {
            return Some(match starters.first() {
                Some(s) => format!("map `{map}` is not live yet: `{}` has not succeeded", s.id),
                None => format!("map `{map}` is not live: no step of the runbook starts it"),
            });
        }
        if pause && st.paused_maps.contains(map) {
            return Some(format!("map `{map}` is already paused from the console"));
        }
        if !pause && !st.paused_maps.contains(map) {
            return Some(format!(
                "map `{map}` was not paused from the console (a runbook step resumes what a runbook step paused)"
            ));
        }
        None
    }

    /// Pauses or resumes one map from the console (`cmd.map`), as a step of its own
    /// ([`crate::model::console_map_step`]) run by the same executor and checks as `dualwrite.pause` /
    /// `dualwrite.resume`: a refusal is journaled (a warning) and nothing is sent; otherwise the decision is
    /// journaled, then the step runs (intent, the call, its result; a failure is asked about like any step's).
    pub async fn map_action(
        self: &Arc<Self>,
        cmd: crate::engine::driver::Command,
        identity: Option<crate::model::Identity>,
    ) {
        let Some(map) = cmd.map.clone() else { return };
        let pause = cmd.action == OperatorAction::Pause;
        let verb = if pause { "pause" } else { "resume" };
        let refusal = self.map_refusal(&map, pause).or_else(|| {
            let mut busy = self
                .control
                .maps_busy
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (!busy.insert(map.clone())).then(|| format!("a console action on map `{map}` is still running"))
        });
        if let Some(why) = refusal {
            let _ = self
                .emit
                .durable(Event::Log {
                    level: crate::model::event::LogLevel::Warn,
                    message: format!(
                        "console: {verb} of map `{map}` by {} refused: {why}",
                        cmd.operator
                    ),
                })
                .await;
            return;
        }
        let journaled = {
            let st = self.state.read();
            st.steps
                .iter()
                .filter(|s| crate::model::parse_console_map_step(&s.info.id).is_some())
                .count()
        };
        // Past every console step journaled and every number this process gave: unique, in order.
        let journaled = u32::try_from(journaled).unwrap_or(u32::MAX);
        let next = |c: u32| Some(c.max(journaled).saturating_add(1));
        let n = self
            .control
            .map_actions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, next)
            .map_or(journaled.saturating_add(1), |c| {
                c.max(journaled).saturating_add(1)
            });
        let id = crate::model::console_map_step(pause, &map, n);
        let decided = self
            .emit
            .durable(Event::OperatorDecision {
                step: Some(id.clone()),
                action: cmd.action,
                operator: cmd.operator.clone(),
                reason: Some(
                    cmd.reason
                        .clone()
                        .unwrap_or_else(|| format!("{verb} map {map} from the console")),
                ),
                checklist_done: Vec::new(),
                identity,
            })
            .await;
        if decided.is_err() {
            self.control.request_abort("the journal refused a write".into());
            return;
        }
        let title = format!(
            "{} map {map} (from the console, by {})",
            if pause { "Pause" } else { "Resume" },
            cmd.operator
        );
        let planned = console_step(id, pause, &map, title);
        let me = Arc::clone(self);
        let cancel = self.cancel.child_token();
        tokio::spawn(async move {
            let end = step::drive(Arc::clone(&me), planned, Start::Fresh { attempt: 1 }, cancel).await;
            me.control
                .maps_busy
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&map);
            if let TaskEnd::Abort(reason) = end {
                me.control.request_abort(reason);
            }
        });
    }
}

/// The step a map's pause or resume from the console runs as: the `dualwrite.pause` / `dualwrite.resume`
/// executor over that one map, outside the plan (phase `console`).
fn console_step(id: StepId, pause: bool, map: &str, title: String) -> PlannedStep {
    let maps = crate::runbook::steps::MapSelection::List(vec![map.into()]);
    let kind = if pause {
        crate::runbook::StepKind::DualwritePause(crate::runbook::steps::DualwritePause { maps })
    } else {
        crate::runbook::StepKind::DualwriteResume(crate::runbook::steps::DualwriteResume { maps })
    };
    let step = crate::runbook::Step {
        id: id.clone(),
        title: Some(title.clone()),
        needs: Vec::new(),
        timeout: None,
        retries: None,
        on_failure: None,
        confirm: false,
        point_of_no_return: false,
        kind,
    };
    PlannedStep {
        id,
        phase: "console".into(),
        wave: None,
        kind: step.kind_name(),
        needs: Vec::new(),
        title: Some(title),
        point_of_no_return: false,
        estimate_secs: 0,
        lanes: None,
        what: PlannedWhat::Step(std::sync::Arc::new(step)),
    }
}

/// Journals a pause/resume decision and applies it.
pub async fn set_paused(
    emit: &Emitter,
    control: &Control,
    paused: bool,
    operator: &str,
    reason: Option<String>,
    identity: Option<crate::model::Identity>,
) -> Result<(), crate::journal::JournalError> {
    let action = if paused {
        OperatorAction::Pause
    } else {
        OperatorAction::Resume
    };
    emit.durable(Event::OperatorDecision {
        step: None,
        action,
        operator: operator.to_owned(),
        reason,
        checklist_done: Vec::new(),
        identity,
    })
    .await?;
    control.set_paused(paused);
    Ok(())
}

#[cfg(test)]
mod tests;
