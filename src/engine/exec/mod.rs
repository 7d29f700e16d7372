//! Step executors: one per step kind, each running a step against the environments and reporting facts
//! through the [`Emitter`](super::ctx::Emitter). The scheduler journals intent and result around them.
//!
//! Time: runbook durations (`poll`, `within`, `every`, `for`, step `timeout`) are environment time and are
//! converted with [`StepCtx::clock`](super::ctx::StepCtx); a polling budget never drops below
//! [`MIN_REAL_BUDGET`] of real time, so the real-time retries of a throttled service cannot eat a budget the
//! simulator's time scale made tiny.

pub(crate) mod automation;
pub(crate) mod batch_window;
mod dmf;
mod dual_write;
mod error_queue;
mod error_sources;
mod gate;
pub mod handle;
mod http;
mod lake;
mod lake_embedded;
mod lake_reconcile;
mod manual;
mod maps;
mod monitor;
mod notify;
mod parity;
mod reconcile;
mod roundtrip;
mod sample;
mod shell;
mod wait;

use std::collections::BTreeMap;
use std::time::Duration;

use super::RunId;
use super::ctx::{AskError, StepCtx};
use super::envs::EnvsError;
use super::event::{Event, Handle, LogLevel, StepOutcome};
use crate::connectors::ConnectorError;
use crate::connectors::dmf::Poll;
use crate::journal::JournalError;
use crate::runbook::plan::{PlannedStep, PlannedWhat};
use crate::runbook::steps as kind;
use crate::runbook::vars::{VarContext, VarError, interpolate};
use crate::runbook::{Step, StepKind};

pub use handle::{canary_key, derive_id, uuid_like};

/// The least real time a polling budget gets (see the module docs).
pub const MIN_REAL_BUDGET: Duration = Duration::from_secs(120);
/// The shortest real polling interval (a scaled `poll` can come out at microseconds).
pub const MIN_REAL_POLL: Duration = Duration::from_millis(10);

/// Whether the step starts fresh or picks up an in-flight attempt found on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fresh,
    /// The intent was journaled, the result was not: ask the environment what became of `handle`
    /// before doing anything that is not idempotent.
    Reconcile,
}

/// How an in-flight step is picked up on resume (declared by each step kind).
pub use crate::runbook::steps::Reconcile;

/// The result of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub outcome: StepOutcome,
    /// Captured values, `${steps.<id>.<name>}`.
    pub outputs: BTreeMap<String, String>,
    /// A failure of the way to the environment (unreachable, throttled past the budget, timed out,
    /// an unreadable or HTML answer, refused credentials), not of the work itself: whether the
    /// external operation happened is unknown. The scheduler then leaves the attempt open (no
    /// `StepFinished`), so a retry or a resume reconciles it through the same handle instead of
    /// starting it again under a new one.
    pub in_doubt: bool,
}

/// The external handle a step will use, computed before its intent is journaled. Deterministic in
/// (run id, step id, attempt), so a resumed process computes the same one.
pub fn handle_for(step: &PlannedStep, run_id: &RunId, attempt: u32) -> Option<Handle> {
    handle::handle_for(step, run_id, attempt)
}

/// How `step` is reconciled when found in flight on resume.
pub fn reconcile_policy(step: &PlannedStep) -> Reconcile {
    match &step.what {
        PlannedWhat::Gate { .. } => Reconcile::Rerun,
        PlannedWhat::WaveMap { .. } => Reconcile::ByHandle,
        PlannedWhat::Step(s) => s.kind.spec().reconcile(),
    }
}

/// Runs one step (gates included: kind `gate`). A handle missing from the journal is recomputed.
pub async fn execute(ctx: &StepCtx, handle: Option<&Handle>, mode: Mode) -> StepResult {
    let handle = handle
        .cloned()
        .or_else(|| handle_for(&ctx.step, &ctx.run_id, ctx.attempt));
    let result = match &ctx.step.what {
        PlannedWhat::Gate { wave } => gate::run(ctx, wave).await,
        PlannedWhat::WaveMap { map } => dual_write::wave_map(ctx, map.as_str(), handle.as_ref(), mode).await,
        PlannedWhat::Step(step) => run_step(ctx, step, handle.as_ref(), mode).await,
    };
    match result {
        Ok(outputs) => StepResult {
            outcome: StepOutcome::Succeeded,
            outputs,
            in_doubt: false,
        },
        Err(Stop::Skipped(reason)) => StepResult {
            outcome: StepOutcome::Skipped { reason },
            outputs: BTreeMap::new(),
            in_doubt: false,
        },
        Err(Stop::Failed {
            message,
            reason,
            outputs,
        }) => StepResult {
            outcome: StepOutcome::Failed { message, reason },
            outputs,
            in_doubt: false,
        },
        Err(Stop::InDoubt(message)) => StepResult {
            outcome: StepOutcome::Failed {
                message,
                reason: None,
            },
            outputs: BTreeMap::new(),
            in_doubt: true,
        },
    }
}

async fn run_step(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    match &step.kind {
        StepKind::Manual(kind::Manual {
            instructions,
            checklist,
        }) => manual::run(ctx, step, instructions.as_deref(), checklist).await,
        StepKind::Wait(kind::Wait { until, for_ }) => wait::run(ctx, until.as_ref(), for_.as_ref()).await,
        StepKind::Http(_) => http::run(ctx, step).await,
        StepKind::Shell(kind::Shell { run, env, pass_env }) => shell::run(ctx, run, env, pass_env).await,
        StepKind::Parity(kind::Parity {
            maps,
            record_baseline,
            tolerance,
        }) => parity::run(ctx, maps, *record_baseline, tolerance.as_ref()).await,
        StepKind::ErrorQueue(kind::ErrorQueue { maps, max, since }) => {
            let since = since.as_ref().map(crate::runbook::Duration::as_std);
            error_queue::run(ctx, maps, max.unwrap_or(0), since).await
        }
        StepKind::DmfExport(kind::DmfExport { .. }) => dmf::export(ctx, step, handle, mode).await,
        StepKind::DmfImport(_) => dmf::import(ctx, step, handle, mode).await,
        StepKind::DualwriteRun(kind::DualwriteRun { .. })
        | StepKind::DualwritePause(kind::DualwritePause { .. })
        | StepKind::DualwriteResume(kind::DualwriteResume { .. })
        | StepKind::DualwriteStop(kind::DualwriteStop { .. }) => {
            dual_write::step(ctx, step, handle, mode).await
        }
        StepKind::DualwriteBatchWindow(_) => batch_window::run(ctx, step, handle, mode).await,
        StepKind::Roundtrip(kind::Roundtrip { .. }) => roundtrip::run(ctx, step, handle, mode).await,
        StepKind::Sample(kind::Sample { maps, size, from }) => {
            sample::run(ctx, maps, size.unwrap_or(100), from.as_deref()).await
        }
        StepKind::Reconcile(kind::RowReconcile {
            maps,
            sample,
            max_differences,
            ranges,
            engine,
            databricks,
            export,
        }) => {
            let sample = usize::try_from(sample.unwrap_or(100)).unwrap_or(100);
            let ranges = ranges.unwrap_or(crate::runbook::steps::reconcile::RANGES_DEFAULT);
            let lake = match (engine, databricks) {
                (Some(kind::ReconcileEngine::Lake), Some(db)) => Some(lake_embedded::Engine::Databricks(db)),
                (Some(kind::ReconcileEngine::Lake), None) => Some(lake_embedded::Engine::Export(
                    lake_embedded::export_env(ctx, export.as_deref())?,
                )),
                _ => None,
            };
            reconcile::run(ctx, maps, sample, max_differences.unwrap_or(0), ranges, lake).await
        }
        StepKind::Monitor(_) => monitor::run(ctx, step).await,
        StepKind::Notify(kind::Notify { url, to, text }) => {
            notify::run(ctx, step, url.as_deref(), to.as_deref(), text, mode).await
        }
        StepKind::DisableAutomation(kind::DisableAutomation {
            env,
            plugin_steps,
            flows,
        }) => automation::disable(ctx, env, plugin_steps, flows).await,
        StepKind::EnableAutomation(kind::EnableAutomation { env }) => automation::enable(ctx, env).await,
        StepKind::LakeCaughtUp(k) => lake::caught_up(ctx, k).await,
        StepKind::LakeSchemaCheck(k) => lake::schema_check(ctx, k).await,
        StepKind::LakeFullRefresh(k) => lake::full_refresh(ctx, k, handle, mode).await,
    }
}

/// `reconcile … engine: lake` on another engine than the warehouse (Apache Spark in the tests and in
/// `scripts/lake-spark-bench`): the statement the step sends for map `map` (`None` for a map without a key),
/// with the `:sample` marker it binds.
pub async fn lake_statement(ctx: &StepCtx, map: &str) -> Result<Option<String>, String> {
    let m = maps::map_ref(ctx, map).map_err(stop_text)?;
    Ok(lake_reconcile::map_statement(ctx, &m)
        .await
        .map_err(stop_text)?
        .map(|(sql, _)| sql))
}

/// The `RowsReconciled` events the step journals for map `map` from the statement's result `rows` (each
/// cell a JSON string or null, as the Statement Execution API returns them), one per company.
pub async fn lake_result(
    ctx: &StepCtx,
    map: &str,
    sample: usize,
    rows: &[Vec<serde_json::Value>],
) -> Result<Vec<Event>, String> {
    let m = maps::map_ref(ctx, map).map_err(stop_text)?;
    let (_, fields) = lake_reconcile::map_statement(ctx, &m)
        .await
        .map_err(stop_text)?
        .ok_or_else(|| format!("map {map} has no key"))?;
    Ok(
        lake_reconcile::result_events(ctx, &m, "(elsewhere)", &fields, sample, rows)
            .map_err(stop_text)?
            .into_iter()
            .map(|(_, _, e)| e)
            .collect(),
    )
}

fn stop_text(s: Stop) -> String {
    match s {
        Stop::Failed { message, .. } | Stop::Skipped(message) | Stop::InDoubt(message) => message,
    }
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `reason`: the service's own words for why, when it gave any (journaled with the failure).
    Failed {
        message: String,
        reason: Option<String>,
        /// What the step measured before it failed (a `sample`'s counts), journaled with the failure.
        outputs: BTreeMap<String, String>,
    },
    Skipped(String),
    /// The environment could not be reached or understood: see [`StepResult::in_doubt`].
    InDoubt(String),
}

pub(crate) fn fail(msg: impl Into<String>) -> Stop {
    Stop::Failed {
        message: msg.into(),
        reason: None,
        outputs: BTreeMap::new(),
    }
}

/// A failure with the service's reason for it.
pub(crate) fn fail_because(msg: impl Into<String>, reason: Option<String>) -> Stop {
    Stop::Failed {
        message: msg.into(),
        reason,
        outputs: BTreeMap::new(),
    }
}

impl From<ConnectorError> for Stop {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::TransientExhausted { .. }
            | ConnectorError::Ambiguous { .. }
            | ConnectorError::Auth { .. }
            | ConnectorError::UnexpectedHtml { .. }
            | ConnectorError::BadBody { .. }
            | ConnectorError::Timeout { .. } => Stop::InDoubt(e.to_string()),
            _ => fail_because(e.to_string(), e.service_reason()),
        }
    }
}
impl From<EnvsError> for Stop {
    fn from(e: EnvsError) -> Self {
        fail(e.to_string())
    }
}
impl From<JournalError> for Stop {
    fn from(e: JournalError) -> Self {
        fail(format!("journal: {e}"))
    }
}
impl From<AskError> for Stop {
    fn from(e: AskError) -> Self {
        fail(e.to_string())
    }
}
impl From<VarError> for Stop {
    fn from(e: VarError) -> Self {
        fail(e.to_string())
    }
}

/// What an executor returns: the step's outputs, or why it stopped.
pub(crate) type Res<T = BTreeMap<String, String>> = Result<T, Stop>;

/// The runbook step's own `retries`, else the defaults'.
pub(crate) fn retries(ctx: &StepCtx) -> u32 {
    match &ctx.step.what {
        PlannedWhat::Step(s) => s.retries,
        _ => None,
    }
    .unwrap_or_else(|| ctx.runbook.defaults.retries())
}

/// The step's timeout (environment time).
pub(crate) fn timeout(ctx: &StepCtx) -> Duration {
    match &ctx.step.what {
        PlannedWhat::Step(s) => s.timeout.as_ref().map(crate::runbook::Duration::as_std),
        PlannedWhat::WaveMap { .. } | PlannedWhat::Gate { .. } => None,
    }
    .unwrap_or_else(|| ctx.runbook.defaults.timeout().as_std())
}

/// A real-time polling schedule for an environment-time interval within the step's timeout.
pub(crate) fn poll_with(ctx: &StepCtx, every_env: Duration) -> Poll {
    Poll {
        every: ctx.clock.to_real(every_env).max(MIN_REAL_POLL),
        timeout: ctx.clock.to_real(timeout(ctx)).max(MIN_REAL_BUDGET),
    }
}

/// The runbook's `defaults.poll` as a real-time schedule.
pub(crate) fn poll(ctx: &StepCtx) -> Poll {
    poll_with(ctx, ctx.runbook.defaults.poll().as_std())
}

/// `${...}` in `text`, against the run's captures and the variables resolved when the environments were built.
pub(crate) fn interpolate_step(ctx: &StepCtx, text: &str) -> Result<String, VarError> {
    let (captures, figures) = {
        let st = ctx.state.read();
        let captures: BTreeMap<String, BTreeMap<String, String>> = st
            .steps
            .iter()
            .map(|v| {
                let mut out = v.outputs.clone();
                // Every step's times, as `${steps.<id>.started_at}` / `finished_at` (a capture of the same name wins).
                let rfc = |t: &chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                };
                if let Some(t) = &v.started_at {
                    out.entry("started_at".into()).or_insert_with(|| rfc(t));
                }
                if let Some(t) = &v.finished_at {
                    out.entry("finished_at".into()).or_insert_with(|| rfc(t));
                }
                (v.info.id.as_str().to_owned(), out)
            })
            .filter(|(_, o)| !o.is_empty())
            .collect();
        (captures, st.figures(chrono::Utc::now()))
    };
    let lookup = |n: &str| ctx.envs.var(n);
    let vc = VarContext {
        env: &lookup,
        run_id: ctx.run_id.as_str().to_owned(),
        run_date: ctx.run_date.clone(),
        run_operator: ctx.run_operator.clone(),
        captures,
        figures,
    };
    interpolate(text, &vc)
}

/// Journals a log line with the next group commit.
pub(crate) fn log(ctx: &StepCtx, level: LogLevel, message: impl Into<String>) {
    let message = format!("{}: {}", ctx.step.id, message.into());
    let _ = ctx.emit.batched(Event::Log { level, message });
}

/// Journals progress with the next group commit.
pub(crate) fn progress(ctx: &StepCtx, done: u64, total: Option<u64>, note: Option<String>) {
    let _ = ctx.emit.batched(Event::StepProgress {
        step: ctx.step.id.clone(),
        done,
        total,
        note,
    });
}

/// Sleeps an environment duration; a cancellation is a failure.
pub(crate) async fn sleep_env(ctx: &StepCtx, d: Duration) -> Res<()> {
    if ctx.clock.sleep(d, &ctx.cancel).await {
        Ok(())
    } else {
        Err(fail("cancelled"))
    }
}
