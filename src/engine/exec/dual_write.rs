//! Dual-write: wave map steps (initial sync of one map) and `dualwrite.run` / `pause` / `resume` / `stop`.
//!
//! Gateway mode. Maps are found by (source entity set, target entity set). A wave map step's requestId is
//! the step handle; a `dualwrite.*` step derives one per map (`derive_id(handle, map)`), and one per resume
//! (`derive_id(map request, "resume-<n>")`), each resume journaled as a new `StepIntent` handle
//! (`dualwrite.resume`) before it is sent. Initial sync: action 8 unless the map is already initialising or
//! running; wait for Running with `StepProgress` (rows copied / total); a failed initial sync journals the
//! map's error sources (`error_sources`) and is Resumed (action 4) up to the step's `retries` times: never action 8 again.
//! Reconcile asks `Status/{requestId}` for the map request and each resume id in turn (404 = never received),
//! waits for whatever was received, then continues from the map's state with the same rules.
//! Pause/resume/stop/run-without-initial-sync: nothing is sent when the map is already in the wanted state;
//! otherwise the action is sent with its requestId (the gateway dedups a repeated id) and the map is waited on.
//!
//! Operator mode. The operator gets `operator_instructions` (through an `ApproveManual` question), then the
//! console verifies by reading both sides (`verify_operator`) and the map's error sources since the question
//! (`error_sources`; sources not available are logged, the counts decide), looking again up to three
//! times one `poll` apart (dual-write lags); a failed verification is journaled and the question asked again
//! with the reasons, at most ten times (then the step fails: an auto-approving operator must not loop).

use super::error_sources::{map_errors, run_watermark};
use super::handle::derive_id;
use super::manual::accept;
use super::maps::{MapRef, count_side, map_ref, primary_id, resolve, side_filter};
use super::{Mode, Res, StepCtx, fail, fail_because, log, poll, progress, sleep_env};
use crate::connectors::ConnectorError;
use crate::connectors::dual_write::{
    GatewayClient, MapAction, MapInfo, Master, OperatorAction, RequestState, initial_sync_next_action,
    operator_instructions, status, verify_operator,
};
use crate::connectors::error_sources::SourceId;
use crate::engine::ctx::Ask;
use crate::engine::envs::EnvInfo;
use crate::engine::event::{DecisionKind, Event, Handle, LogLevel};
use crate::runbook::steps as kind;
use crate::runbook::{DualWriteMode, InitialSync, Step, StepKind};

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

/// A wave map step: the initial sync of one map.
pub async fn wave_map(ctx: &StepCtx, map: &str, handle: Option<&Handle>, mode: Mode) -> Res {
    let m = map_ref(ctx, map)?;
    let base = base_request(ctx, handle)?;
    let with_sync = m.spec.initial_sync() == InitialSync::DualWrite;
    run_map(ctx, &m, &base, mode, Kind::Run { with_sync }).await?;
    Ok(Default::default())
}

/// The step's request id. On resume the journaled handle may be a resume's (`dualwrite.resume`): the step's own
/// is recomputed from (run id, step id, attempt), which is what it was derived from.
fn base_request(ctx: &StepCtx, handle: Option<&Handle>) -> Res<String> {
    match handle {
        Some(h) if h.kind == "dualwrite.request" => Ok(h.id.clone()),
        _ => super::handle_for(&ctx.step, &ctx.run_id, ctx.attempt)
            .map(|h| h.id)
            .ok_or_else(|| fail("no requestId handle for this step")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
    let base = base_request(ctx, handle)?;
    let mut maps = resolve(ctx, sel)?;
    if matches!(kind, Kind::Run { .. }) {
        maps = dependency_order(maps);
    }
    for m in &maps {
        run_map(ctx, m, &derive_id(&base, &m.id), mode, kind).await?;
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

async fn run_map(ctx: &StepCtx, m: &MapRef, request_id: &str, mode: Mode, kind: Kind) -> Res<()> {
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
    match kind {
        Kind::Run { with_sync: true } => initial_sync(ctx, &gw, m, &map, request_id, mode).await,
        Kind::Run { with_sync: false } => {
            transition(ctx, &gw, &map, MapAction::Start, request_id, status::RUNNING).await
        }
        Kind::Pause => transition(ctx, &gw, &map, MapAction::Pause, request_id, status::PAUSED).await,
        Kind::Resume => transition(ctx, &gw, &map, MapAction::Resume, request_id, status::RUNNING).await,
        Kind::Stop => transition(ctx, &gw, &map, MapAction::Stop, request_id, status::STOPPED).await,
    }
}

/// Whether `map` is already where `action` would take it (or on its way there).
fn settled(map: &MapInfo, want: i64) -> bool {
    map.status == want
        || (want == status::STOPPED && map.status == status::NOT_RUNNING)
        || (want == status::RUNNING && (map.status == status::RESUMING || map.status == status::INITIAL_SYNC))
}

async fn transition(
    ctx: &StepCtx,
    gw: &GatewayClient,
    map: &MapInfo,
    action: MapAction,
    request_id: &str,
    want: i64,
) -> Res<()> {
    let sent = gw.find_request(request_id, &ctx.cancel).await?;
    if sent.is_none()
        && (map.status == want || (want == status::STOPPED && map.status == status::NOT_RUNNING))
    {
        return Ok(());
    }
    if sent.is_none() && !settled(map, want) {
        gw.send_action(&map.id, action, Master::Fno, request_id, &ctx.cancel)
            .await?;
    }
    if sent.is_some() || !settled(map, want) {
        gw.wait_request(request_id, poll(ctx), &ctx.cancel).await?;
    }
    wait_status(ctx, gw, map, want).await?;
    Ok(())
}

/// Waits for a map status, journaling initial-sync progress when it changes.
async fn wait_status(
    ctx: &StepCtx,
    gw: &GatewayClient,
    map: &MapInfo,
    want: i64,
) -> Result<MapInfo, ConnectorError> {
    let mut last = (u64::MAX, u64::MAX, String::new());
    gw.wait_map_status(&map.id, want, poll(ctx), &ctx.cancel, |m| {
        let s = &m.initial_sync;
        let now = (s.rows_copied, s.rows_total, m.status_name.clone());
        if now != last {
            progress(
                ctx,
                s.rows_copied,
                (s.rows_total > 0).then_some(s.rows_total),
                Some(format!("{} {}", m.name, m.status_name)),
            );
            last = now;
        }
    })
    .await
}

fn resume_id(base: &str, n: u32) -> String {
    derive_id(base, &format!("resume-{n}"))
}

async fn settle_request(ctx: &StepCtx, gw: &GatewayClient, id: &str) -> Res<()> {
    gw.wait_request(id, poll(ctx), &ctx.cancel).await?;
    Ok(())
}

/// Brings a map's initial sync to completion (see the module docs).
async fn initial_sync(
    ctx: &StepCtx,
    gw: &GatewayClient,
    m: &MapRef,
    map: &MapInfo,
    base: &str,
    mode: Mode,
) -> Res<()> {
    let retries = super::retries(ctx);
    let mut base_sent = false;
    let mut resumes = 0u32;
    if mode == Mode::Reconcile {
        if let Some(s) = gw.find_request(base, &ctx.cancel).await? {
            base_sent = true;
            if s.state == RequestState::Waiting {
                settle_request(ctx, gw, base).await?;
            }
        }
        while resumes < retries {
            match gw
                .find_request(&resume_id(base, resumes + 1), &ctx.cancel)
                .await?
            {
                Some(_) => resumes += 1,
                None => break,
            }
        }
        if resumes > 0 {
            settle_request(ctx, gw, &resume_id(base, resumes)).await?;
        }
        log(
            ctx,
            LogLevel::Info,
            format!(
                "reconciling {}: initial-sync request {}received, {resumes} resume(s) received",
                m.id,
                if base_sent { "" } else { "not " }
            ),
        );
    }
    // The failure each automatic resume answered: the same one back right after a resume will not
    // clear by resuming again.
    let mut resumed_on: Option<SyncFailure> = None;
    loop {
        let cur = gw.map(&map.id, &ctx.cancel).await?;
        match initial_sync_next_action(&cur) {
            None if cur.status == status::RUNNING
                || cur.status == status::INITIAL_SYNC
                || cur.status == status::RESUMING =>
            {
                match wait_status(ctx, gw, &cur, status::RUNNING).await {
                    Ok(_) => return Ok(()),
                    // The map now shows the failure: the next turn reads it and decides.
                    Err(ConnectorError::JobFailed(j)) if j.call == "dualwrite.initial_sync" => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                // Synced before but not running now (stopped since): start live sync, no initial sync.
                let id = derive_id(base, "start");
                transition(ctx, gw, &cur, MapAction::Start, &id, status::RUNNING).await?;
                return Ok(());
            }
            Some(MapAction::InitialSync) if !base_sent => {
                gw.send_action(&cur.id, MapAction::InitialSync, master(ctx, m), base, &ctx.cancel)
                    .await?;
                base_sent = true;
                settle_request(ctx, gw, base).await?;
            }
            Some(MapAction::InitialSync) => {
                return Err(fail(format!(
                    "map {} shows no initial sync although request {base} was accepted: refusing to restart it",
                    m.id
                )));
            }
            Some(_) => {
                let failure = SyncFailure::of(m, &cur);
                log(ctx, LogLevel::Warn, failure.message.clone());
                map_errors(ctx, m, run_watermark(ctx).await).await?;
                if resumed_on.as_ref().is_some_and(|r| r.same_as(&failure)) {
                    return Err(fail_because(
                        format!(
                            "{}: the same failure came back after resume {resumes}, so resuming again will not \
                             clear it; stopped early (resumed {resumes} of {retries} times)",
                            failure.message
                        ),
                        failure.reason,
                    ));
                }
                if resumes >= retries {
                    return Err(fail_because(
                        format!("{} (resumed {resumes} times, retries {retries})", failure.message),
                        failure.reason,
                    ));
                }
                resumes += 1;
                let wait = resume_backoff(ctx.runbook.defaults.poll().as_std(), resumes);
                log(
                    ctx,
                    LogLevel::Info,
                    format!(
                        "resuming the initial sync of {} in {} ({resumes}/{retries})",
                        m.id,
                        crate::util::duration::compact_ms(
                            u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
                        )
                    ),
                );
                sleep_env(ctx, wait).await?;
                let id = resume_id(base, resumes);
                ctx.emit
                    .durable(Event::StepIntent {
                        step: ctx.step.id.clone(),
                        attempt: ctx.attempt,
                        handle: Some(Handle {
                            kind: "dualwrite.resume".into(),
                            id: id.clone(),
                        }),
                    })
                    .await?;
                gw.send_action(&cur.id, MapAction::Resume, master(ctx, m), &id, &ctx.cancel)
                    .await?;
                settle_request(ctx, gw, &id).await?;
                resumed_on = Some(failure);
            }
        }
    }
}

/// How long to wait before automatic resume `n` (from 1) of a failed initial sync: the runbook's
/// `poll`, doubled for each resume before it (environment time), so a cause that clears slowly
/// (a dependency still syncing) gets the time to clear.
fn resume_backoff(poll: std::time::Duration, n: u32) -> std::time::Duration {
    poll.saturating_mul(1u32 << n.saturating_sub(1).min(10))
}

/// A failed initial sync as the gateway reports it: where, and the service's words for why.
#[derive(Debug, Clone)]
struct SyncFailure {
    message: String,
    reason: Option<String>,
    at_row: Option<u64>,
    category: Option<String>,
}

impl SyncFailure {
    /// The same row failing for the same reason (the row count may have grown meanwhile).
    fn same_as(&self, other: &Self) -> bool {
        (self.at_row, &self.category, &self.reason) == (other.at_row, &other.category, &other.reason)
    }
}

impl SyncFailure {
    fn of(m: &MapRef, cur: &MapInfo) -> Self {
        let s = &cur.initial_sync;
        let reason = s
            .message
            .clone()
            .filter(|r| !r.trim().is_empty())
            .or_else(|| s.category.clone());
        let row = s.failed_at_row.map_or_else(|| "?".into(), |r| r.to_string());
        let message = format!(
            "the initial sync of {} failed at row {row} of {}{}: {}",
            m.id,
            s.rows_total,
            s.category.as_ref().map(|c| format!(" ({c})")).unwrap_or_default(),
            reason.as_deref().unwrap_or("the gateway gave no reason")
        );
        Self {
            message,
            reason,
            at_row: s.failed_at_row,
            category: s.category.clone(),
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

    use super::resume_backoff;

    #[test]
    fn resumes_back_off_exponentially_from_the_poll() {
        let poll = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=4).map(|n| resume_backoff(poll, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240]);
        assert_eq!(resume_backoff(poll, 40), poll * 1024, "capped, never overflowing");
    }
}
