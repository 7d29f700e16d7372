//! Dual-write: wave map steps (initial sync of one map) and `dualwrite.run` / `pause` / `resume` / `stop`.
//!
//! Gateway mode (d365-api.md §5a, the wire format of Microsoft's automation tool; unsupported by Microsoft).
//! Maps are found by (left entity = F&O entity set, right entity = Dataverse entity set). The engine's operations
//! map to action codes as the tool's do:
//!
//! | operation | code | parameters |
//! |---|---|---|
//! | run with initial sync (wave map step, `dualwrite.run`) | "1" | `skipInitialSync: false`, `conflictResolution.master` |
//! | run without initial sync (`initial_sync: false`) | "1" | `skipInitialSync: true` |
//! | retry a failed initial sync | "1" again | `skipInitialSync: false`: a new pass from row 1 (the tool has no "continue from the failed row") |
//! | pause / resume (from Paused) / stop | "5" / "6" / "4" | none |
//!
//! Exactly once: the request id is the server's, so before each `POST Start` the engine journals a
//! `StepIntent` whose handle (`dualwrite.intent`) carries an [`ActionIntent`]: the map's entities, the action
//! code, the time, and the request ids the map's `lastRequests` held then. When the answer is lost (a reset, a
//! timeout) or the process dies, the map is read again and a `lastRequests` element of that action that is not
//! among the known ids (and not created before the intent) is the request sent: the engine waits for it instead
//! of sending again. Only when none is found is the action sent again (under a new intent).
//!
//! Initial sync: nothing is sent when the map is Running (synced) or in InitialSync (waited for); otherwise
//! start "1" with initial sync and wait for its request, journaling `StepProgress` (rows upserted, from
//! `ProjectExecutionWithCompanies`). A request that ends in Error is a failed pass: the map's error sources are journaled (`error_sources`),
//! and it is started again up to the step's `retries` times, with an exponential backoff; the same failure
//! (same message, same first failing record) right after a retry stops early.
//! Pause/resume/stop/run-without-initial-sync: nothing is sent when the map is already in the wanted state (or
//! on its way there); otherwise the action is sent and its request and the map's state are waited for.
//!
//! Operator mode. The operator gets `operator_instructions` (through an `ApproveManual` question), then the
//! console verifies by reading both sides (`verify_operator`) and the map's error sources since the question
//! (`error_sources`; sources not available are logged, the counts decide), looking again up to three
//! times one `poll` apart (dual-write lags); a failed verification is journaled and the question asked again
//! with the reasons, at most ten times (then the step fails: an auto-approving operator must not loop).

use super::error_sources::{map_errors, run_watermark};
use super::manual::accept;
use super::maps::{MapRef, count_side, map_ref, primary_id, resolve, side_filter};
use super::{Mode, Res, StepCtx, fail, fail_because, log, poll, progress, sleep_env};
use crate::connectors::ConnectorError;
use crate::connectors::dual_write::{
    ActionIntent, CompanySync, GatewayClient, MapAction, MapInfo, Master, OperatorAction,
    operator_instructions, status, verify_operator,
};
use crate::connectors::error_sources::SourceId;
use crate::engine::ctx::Ask;
use crate::engine::envs::EnvInfo;
use crate::engine::event::{DecisionKind, Event, Handle, LogLevel};
use crate::runbook::steps as kind;
use crate::runbook::{DualWriteMode, InitialSync, Step, StepKind};

/// The handle kind of a journaled [`ActionIntent`].
pub const INTENT_KIND: &str = "dualwrite.intent";

/// The `dualwrite` environment driving a map: one whose `link` names a side of the map, else the first.
fn dw_env(ctx: &StepCtx, m: &MapRef) -> Res<(String, EnvInfo)> {
    let all: Vec<(&String, &EnvInfo)> = ctx
        .envs
        .info
        .iter()
        .filter(|(_, i)| i.kind == crate::runbook::EnvKind::Dualwrite)
        .collect();
    all.iter()
        .find(|(_, i)| i.link.iter().any(|l| *l == m.source_env || *l == m.target_env))
        .or_else(|| all.first())
        .map(|(n, i)| ((*n).clone(), (*i).clone()))
        .ok_or_else(|| fail("the runbook has no dualwrite environment"))
}

fn master(ctx: &StepCtx, m: &MapRef) -> Master {
    let step_master = match &ctx.step.what {
        crate::runbook::plan::PlannedWhat::Step(s) => match &s.kind {
            StepKind::DualwriteRun(kind::DualwriteRun { master, .. }) => *master,
            _ => None,
        },
        _ => None,
    };
    match step_master.or(m.spec.master) {
        Some(crate::runbook::Master::Dataverse) => Master::Dataverse,
        _ => Master::Fno,
    }
}

/// The action intent in flight when a step is reconciled: the step's latest journaled handle, when it is one.
pub(super) fn pending_intent(handle: Option<&Handle>, mode: Mode) -> Option<ActionIntent> {
    match handle {
        Some(h) if mode == Mode::Reconcile && h.kind == INTENT_KIND => ActionIntent::decode(&h.id),
        _ => None,
    }
}

/// A wave map step: the initial sync of one map.
pub async fn wave_map(ctx: &StepCtx, map: &str, handle: Option<&Handle>, mode: Mode) -> Res {
    let m = map_ref(ctx, map)?;
    let with_sync = m.spec.initial_sync() == InitialSync::DualWrite;
    let mut pending = pending_intent(handle, mode);
    run_map(ctx, &m, &mut pending, Kind::Run { with_sync }).await?;
    Ok(Default::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Run { with_sync: bool },
    Pause,
    Resume,
    Stop,
}

/// `dualwrite.run` / `pause` / `resume` / `stop` over the selected maps, in dependency order for `run`.
pub async fn step(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    let (sel, kind) = match &step.kind {
        StepKind::DualwriteRun(kind::DualwriteRun {
            maps, initial_sync, ..
        }) => (
            maps,
            Kind::Run {
                with_sync: initial_sync.unwrap_or(true),
            },
        ),
        StepKind::DualwritePause(kind::DualwritePause { maps }) => (maps, Kind::Pause),
        StepKind::DualwriteResume(kind::DualwriteResume { maps }) => (maps, Kind::Resume),
        StepKind::DualwriteStop(kind::DualwriteStop { maps }) => (maps, Kind::Stop),
        _ => return Err(fail("not a dualwrite step")),
    };
    let mut maps = resolve(ctx, sel)?;
    if matches!(kind, Kind::Run { .. }) {
        maps = dependency_order(maps);
    }
    let mut pending = pending_intent(handle, mode);
    for m in &maps {
        run_map(ctx, m, &mut pending, kind).await?;
    }
    Ok(Default::default())
}

/// Maps whose `depends_on` (within the selection) come first; cycles keep their listed order.
fn dependency_order(mut rest: Vec<MapRef>) -> Vec<MapRef> {
    let mut out: Vec<MapRef> = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let ready = rest.iter().position(|m| {
            m.spec
                .depends_on
                .iter()
                .all(|d| !rest.iter().any(|r| r.id == d.as_str()))
        });
        out.push(rest.remove(ready.unwrap_or(0)));
    }
    out
}

pub(super) async fn run_map(
    ctx: &StepCtx,
    m: &MapRef,
    pending: &mut Option<ActionIntent>,
    kind: Kind,
) -> Res<()> {
    let (env, info) = dw_env(ctx, m)?;
    if info.mode == DualWriteMode::Operator {
        let action = match kind {
            Kind::Run { with_sync } => OperatorAction::Run {
                initial_sync: with_sync,
                master: master(ctx, m),
            },
            Kind::Pause => OperatorAction::Pause,
            Kind::Resume => OperatorAction::Resume,
            Kind::Stop => OperatorAction::Stop,
        };
        return operator(ctx, m, &info, action).await;
    }
    let gw = ctx.envs.scoped(Some(&ctx.step.id)).gateway(&env)?;
    let map = gw.find_map(&m.source_set, &m.target_set, &ctx.cancel).await?;
    // The intent in flight is about one map: only that map's turn may adopt it.
    let mine = pending.as_ref().is_some_and(|p| p.is_for(&map));
    let pending = if mine { pending.take() } else { None };
    let start = MapAction::Start {
        initial_sync: false,
        master: master(ctx, m),
    };
    match kind {
        Kind::Run { with_sync: true } => initial_sync(ctx, &gw, m, map, pending).await,
        Kind::Run { with_sync: false } => transition(ctx, &gw, map, start, status::RUNNING, pending).await,
        Kind::Pause => transition(ctx, &gw, map, MapAction::Pause, status::PAUSED, pending).await,
        Kind::Resume => transition(ctx, &gw, map, MapAction::Resume, status::RUNNING, pending).await,
        Kind::Stop => transition(ctx, &gw, map, MapAction::Stop, status::STOPPED, pending).await,
    }
}

/// Whether `map` is already where an action would take it.
fn arrived(map: &MapInfo, want: i64) -> bool {
    map.state() == want || (want == status::STOPPED && map.state() == status::NOT_RUNNING)
}

/// On its way to `want` without another action (Running after CatchUp or InitialSync).
fn on_its_way(map: &MapInfo, want: i64) -> bool {
    want == status::RUNNING && matches!(map.state(), status::CATCH_UP | status::INITIAL_SYNC)
}

/// Sends `action` exactly once: adopts the request of an intent in flight when the gateway accepted it, else
/// journals a new intent and sends; a lost answer is looked up in `lastRequests` before it is given up on.
/// Returns the server's request id.
async fn act(
    ctx: &StepCtx,
    gw: &GatewayClient,
    map: &MapInfo,
    action: MapAction,
    pending: Option<ActionIntent>,
) -> Res<String> {
    if let Some(p) = pending.filter(|p| p.action == action.code()) {
        if let Some(r) = p.accepted_by(map) {
            log(
                ctx,
                LogLevel::Info,
                format!(
                    "reconciling {}: action {} was accepted as request {} (not sent again)",
                    map.name(),
                    p.action,
                    r.request_id
                ),
            );
            return Ok(r.request_id.clone());
        }
        log(
            ctx,
            LogLevel::Info,
            format!(
                "reconciling {}: action {} was never accepted: sending it",
                map.name(),
                p.action
            ),
        );
    }
    let intent = ActionIntent::new(map, action, chrono::Utc::now());
    ctx.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: ctx.attempt,
            handle: Some(Handle {
                kind: INTENT_KIND.into(),
                id: intent.encode(),
            }),
        })
        .await?;
    match gw.send_action(map, action, &ctx.cancel).await {
        Ok(id) => Ok(id),
        Err(e) => {
            // The answer may be lost while the action was taken: ask the map before giving up.
            let again = gw.find_map(&intent.left, &intent.right, &ctx.cancel).await;
            if let Some(r) = again.as_ref().ok().and_then(|m| intent.accepted_by(m)) {
                log(
                    ctx,
                    LogLevel::Warn,
                    format!(
                        "the answer to action {} on {} was lost ({e}); the gateway accepted it as request {}",
                        intent.action,
                        map.name(),
                        r.request_id
                    ),
                );
                return Ok(r.request_id.clone());
            }
            Err(e.into())
        }
    }
}

async fn transition(
    ctx: &StepCtx,
    gw: &GatewayClient,
    map: MapInfo,
    action: MapAction,
    want: i64,
    pending: Option<ActionIntent>,
) -> Res<()> {
    let adopt = pending.as_ref().and_then(|p| p.accepted_by(&map)).is_some();
    if !adopt && arrived(&map, want) {
        return Ok(());
    }
    if adopt || !on_its_way(&map, want) {
        let id = act(ctx, gw, &map, action, pending).await?;
        gw.wait_request(&id, poll(ctx), &ctx.cancel).await?;
    }
    let mut wanted = vec![want];
    if want == status::STOPPED {
        wanted.push(status::NOT_RUNNING);
    }
    gw.wait_map_state(
        &map.left_entity.name,
        &map.right_entity.name,
        &wanted,
        poll(ctx),
        &ctx.cancel,
    )
    .await?;
    Ok(())
}

/// Waits for an initial-sync request, journaling progress (rows upserted per the legal entities' figures).
async fn wait_sync(
    ctx: &StepCtx,
    gw: &GatewayClient,
    m: &MapRef,
    map: &MapInfo,
    id: &str,
) -> Res<Result<(), String>> {
    let pid = map.detail.pid.clone().unwrap_or_default();
    let last = std::sync::Mutex::new(u64::MAX);
    let res = gw
        .wait_request_with(id, poll(ctx), &ctx.cancel, |_| {
            let (pid, last) = (pid.clone(), &last);
            async move {
                if pid.is_empty() {
                    return;
                }
                if let Ok(d) = gw.initial_sync_details(&pid, &ctx.cancel).await {
                    let done: u64 = d.iter().map(|c| c.upsert_count).sum();
                    let mut l = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *l != done {
                        progress(ctx, done, None, Some(format!("{} InitialSync", m.id)));
                        *l = done;
                    }
                }
            }
        })
        .await;
    match res {
        Ok(_) => Ok(Ok(())),
        Err(ConnectorError::JobFailed(j)) if j.call == "dualwrite.request" => {
            Ok(Err(j.details.first().cloned().unwrap_or_default()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings a map's initial sync to completion (see the module docs).
async fn initial_sync(
    ctx: &StepCtx,
    gw: &GatewayClient,
    m: &MapRef,
    map: MapInfo,
    mut pending: Option<ActionIntent>,
) -> Res<()> {
    let retries = super::retries(ctx);
    let action = MapAction::Start {
        initial_sync: true,
        master: master(ctx, m),
    };
    let mut restarts = 0u32;
    // The failure each automatic restart answered: the same one back right after a restart will not clear.
    let mut restarted_on: Option<SyncFailure> = None;
    let mut cur = map;
    loop {
        let adopt = pending
            .as_ref()
            .and_then(|p| p.accepted_by(&cur))
            .map(|r| r.request_id.clone());
        let id = match (adopt, cur.state()) {
            (None, status::RUNNING) => return Ok(()),
            (None, status::CATCH_UP) => {
                gw.wait_map_state(
                    &m.source_set,
                    &m.target_set,
                    &[status::RUNNING],
                    poll(ctx),
                    &ctx.cancel,
                )
                .await?;
                return Ok(());
            }
            (None, status::PAUSED) => {
                return Err(fail(format!(
                    "map {} is Paused: resume it (dualwrite.resume) rather than start it",
                    m.id
                )));
            }
            (None, status::INITIAL_SYNC) => {
                // Running already (started before this step, or by a request whose intent was not ours):
                // wait for the newest start request still waiting, else for the state to change.
                let running = cur
                    .detail
                    .last_requests
                    .iter()
                    .find(|r| matches!(r.action.as_str(), "1" | "8") && r.state == "1")
                    .map(|r| r.request_id.clone());
                match running {
                    Some(id) => id,
                    None => {
                        cur = gw
                            .wait_map_state(
                                &m.source_set,
                                &m.target_set,
                                &[status::RUNNING, status::NOT_RUNNING, status::STOPPED],
                                poll(ctx),
                                &ctx.cancel,
                            )
                            .await?;
                        continue;
                    }
                }
            }
            (Some(_), _) | (None, _) => act(ctx, gw, &cur, action, pending.take()).await?,
        };
        pending = None;
        match wait_sync(ctx, gw, m, &cur, &id).await? {
            Ok(()) => {
                gw.wait_map_state(
                    &m.source_set,
                    &m.target_set,
                    &[status::RUNNING],
                    poll(ctx),
                    &ctx.cancel,
                )
                .await?;
                return Ok(());
            }
            Err(message) => {
                let details = match cur.detail.pid.as_deref() {
                    Some(pid) => gw
                        .initial_sync_details(pid, &ctx.cancel)
                        .await
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                let failure = SyncFailure::of(m, &message, &details);
                log(ctx, LogLevel::Warn, failure.message.clone());
                map_errors(ctx, m, run_watermark(ctx).await).await?;
                if restarted_on.as_ref().is_some_and(|r| r.same_as(&failure)) {
                    return Err(fail_because(
                        format!(
                            "{}: the same failure came back after restart {restarts}, so starting it again will not \
                             clear it; stopped early (restarted {restarts} of {retries} times)",
                            failure.message
                        ),
                        failure.reason,
                    ));
                }
                if restarts >= retries {
                    return Err(fail_because(
                        format!(
                            "{} (restarted {restarts} times, retries {retries})",
                            failure.message
                        ),
                        failure.reason,
                    ));
                }
                restarts += 1;
                let wait = restart_backoff(ctx.runbook.defaults.poll().as_std(), restarts);
                log(
                    ctx,
                    LogLevel::Info,
                    format!(
                        "starting the initial sync of {} again in {} ({restarts}/{retries}): the gateway has no \
                         continue-from-the-failed-row, a new pass upserts from row 1",
                        m.id,
                        crate::util::duration::compact_ms(
                            u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                        )
                    ),
                );
                sleep_env(ctx, wait).await?;
                restarted_on = Some(failure);
                cur = gw.find_map(&m.source_set, &m.target_set, &ctx.cancel).await?;
            }
        }
    }
}

/// How long to wait before automatic restart `n` (from 1) of a failed initial sync: the runbook's
/// `poll`, doubled for each restart before it (environment time), so a cause that clears slowly
/// (a dependency still syncing) gets the time to clear.
fn restart_backoff(poll: std::time::Duration, n: u32) -> std::time::Duration {
    poll.saturating_mul(1u32 << n.saturating_sub(1).min(10))
}

/// A failed initial-sync pass as the gateway reports it: the request's `errorMessage` and the first failing
/// record of `ProjectExecutionWithCompanies`.
#[derive(Debug, Clone)]
struct SyncFailure {
    message: String,
    reason: Option<String>,
    first_record: Option<String>,
}

impl SyncFailure {
    /// The same record failing for the same reason.
    fn same_as(&self, other: &Self) -> bool {
        (&self.first_record, &self.reason) == (&other.first_record, &other.reason)
    }

    fn of(m: &MapRef, request_message: &str, details: &[CompanySync]) -> Self {
        let first = details.iter().flat_map(CompanySync::errors).next();
        let errors: u64 = details.iter().map(|c| c.error_count).sum();
        let reason = Some(request_message.trim().to_owned())
            .filter(|r| !r.is_empty())
            .or_else(|| first.map(|e| e.error_message.clone()));
        let at = first
            .map(|e| format!(" at record {}", e.record_id))
            .unwrap_or_default();
        let message = format!(
            "the initial sync of {} failed{at} ({errors} error(s) in the legal entities' figures): {}",
            m.id,
            reason.as_deref().unwrap_or("the gateway gave no reason")
        );
        Self {
            message,
            reason,
            first_record: first.map(|e| e.record_id.clone()),
        }
    }
}

/// Re-checks (one `poll` apart) after a confirmation before the operator is asked again.
const VERIFY_CHECKS: u32 = 3;
/// Confirmations that did not verify before the step fails (an auto-approving operator would loop forever).
const MAX_ASKS: u32 = 10;

/// The counts of both sides, then the map's error sources since `since`: new errors in an available source
/// fail the verification; sources that cannot be read are logged as not available (the counts decide).
async fn verify(
    ctx: &StepCtx,
    m: &MapRef,
    fno: &crate::connectors::fno::FnoClient,
    dv: &crate::connectors::dataverse::DataverseClient,
    spec: &crate::connectors::dual_write::MapSpec,
    action: OperatorAction,
    since: chrono::DateTime<chrono::Utc>,
) -> Res<crate::connectors::dual_write::Verification> {
    let mut v = verify_operator(fno, dv, spec, action, &ctx.cancel).await?;
    let errs = map_errors(ctx, m, since).await?;
    // The initial sync's DMF execution speaks only for a run with initial sync; the other actions are judged
    // by what failed since the question.
    let with_initial_sync = matches!(
        action,
        OperatorAction::Run {
            initial_sync: true,
            ..
        }
    );
    let judged = errs.available_total_of(|s| with_initial_sync || s != SourceId::DmfExecutionErrors);
    match judged {
        Some(n) if n > 0 => {
            v.reasons
                .push(format!("new dual-write errors {}", errs.describe()));
            v.satisfied = false;
        }
        Some(_) => {}
        None => log(
            ctx,
            LogLevel::Warn,
            format!(
                "errors could not be checked, the counts decide: {}",
                errs.describe()
            ),
        ),
    }
    Ok(v)
}

async fn operator(ctx: &StepCtx, m: &MapRef, info: &EnvInfo, action: OperatorAction) -> Res<()> {
    let fno_env = info.link.first().cloned().unwrap_or_else(|| m.source_env.clone());
    let dv_env = info.link.get(1).cloned().unwrap_or_else(|| m.target_env.clone());
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (fno, dv) = (scope.fno(&fno_env)?, scope.dataverse(&dv_env)?);
    let source = count_side(ctx, m, true, None).await?;
    let spec = crate::connectors::dual_write::MapSpec {
        name: m.id.clone(),
        source_set: m.source_set.clone(),
        target_set: m.target_set.clone(),
        target_primary_id: primary_id(ctx, &dv_env, &m.target_set).await?,
        source_filter: side_filter(m, true).map(str::to_owned),
        target_filter: side_filter(m, false).map(str::to_owned),
        tolerance: m.tolerance.allowed(source),
    };
    let fno_url = ctx
        .envs
        .info
        .get(&fno_env)
        .and_then(|i| i.url.clone())
        .unwrap_or_default();
    let instructions = operator_instructions(&spec, action, &fno_url);
    // Errors count from just before the question: failed system jobs since then, and the map's initial-sync
    // execution when the runbook names it (see `error_sources`).
    let errors_since = ctx.envs.env_now(&ctx.cancel).await;
    let mut reasons: Vec<String> = Vec::new();
    let mut asks = 0u32;
    loop {
        let prompt = if reasons.is_empty() {
            instructions.clone()
        } else {
            format!(
                "The console checked and it is not done yet: {}\n\n{instructions}",
                reasons.join("; ")
            )
        };
        let d = ctx
            .operator
            .ask(Ask {
                step: Some(ctx.step.id.clone()),
                kind: DecisionKind::ApproveManual,
                prompt,
                checklist: Vec::new(),
                deadline: None,
            })
            .await?;
        accept(&d)?;
        asks += 1;
        // Dual-write propagates with a lag: look a few times before asking again.
        let mut v = verify(ctx, m, &fno, &dv, &spec, action, errors_since).await?;
        for _ in 0..VERIFY_CHECKS {
            if v.satisfied {
                break;
            }
            sleep_env(ctx, ctx.runbook.defaults.poll().as_std()).await?;
            v = verify(ctx, m, &fno, &dv, &spec, action, errors_since).await?;
        }
        ctx.emit
            .durable(Event::ParitySample {
                step: Some(ctx.step.id.clone()),
                map: m.id.clone(),
                company: None,
                source: v.source_rows,
                target: v.target_rows,
            })
            .await?;
        if v.satisfied {
            return Ok(());
        }
        log(
            ctx,
            LogLevel::Warn,
            format!("verification of {} failed: {}", m.id, v.reasons.join("; ")),
        );
        if asks >= MAX_ASKS {
            return Err(fail(format!(
                "{}: still not done after {asks} confirmations: {}",
                m.id,
                v.reasons.join("; ")
            )));
        }
        reasons = v.reasons;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::restart_backoff;

    #[test]
    fn restarts_back_off_exponentially_from_the_poll() {
        let poll = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=4).map(|n| restart_backoff(poll, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240]);
        assert_eq!(
            restart_backoff(poll, 40),
            poll * 1024,
            "capped, never overflowing"
        );
    }
}
