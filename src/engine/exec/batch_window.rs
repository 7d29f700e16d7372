//! `dualwrite.batch_window`: pause the maps, wait for the operator's batch job, optionally import a DMF
//! package for the changed rows, resume the maps (see `runbook::steps::batch_window`).
//!
//! Journal first, exactly once. Each pause and resume goes through the `dualwrite.pause`/`resume` code path
//! (`dual_write::run_map`): its action is journaled as a `dualwrite.intent` before it is sent, a map already
//! where the action would take it is left alone, and a lost answer is looked up in the map's `lastRequests`.
//! The window's phases are journaled (`BatchWindow`: `paused` with the environments' time, `confirmed`,
//! `resumed`), so a resumed run carries on from the last one: it does not pause again after the operator
//! confirmed, nor ask again after an import started. The package's executionId is derived from the step's
//! handle (`derive_id(handle, "import")`): a reconciled import is polled, never submitted twice.
//!
//! A failure while the maps are paused (the operator refuses, the import fails) resumes them before the step
//! fails; an operator's skip resumes them too, and so does headless mode's refusal of the question (the
//! attempt stays open for a person: the next process finds a window closed without a confirmation and opens a
//! new one, so maps are never left paused while nobody is there to confirm). The abort of the run resumes every window still open
//! (`close_open`, from the scheduler), as it restores automation. A cancellation (shutdown, a kill) leaves them
//! paused for resume to reconcile.
//!
//! While the maps are paused the pause's age (environment time since `paused_at`) is watched every `poll`:
//! an alert at 80% of dual-write's 1-day pause limit, another when it is passed (records are blocked until the
//! maps resume), and one when the pause outlasts the runbook's `max_window`. Queued bytes (the 1 GB limit) are
//! not watched: no public API reads them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::dual_write::{Kind, pending_intent, run_map};
use super::maps::{MapRef, resolve};
use super::{Mode, Res, StepCtx, Stop, derive_id, fail, log, sleep_env, uuid_like};
use crate::engine::ctx::Ask;
use crate::engine::event::{AlertSubject, DecisionKind, Event, Handle, LogLevel, Severity};
use crate::runbook::steps::batch_window::{BatchWindow, PAUSE_ALERT_PERCENT, PAUSE_LIMIT_SECS};
use crate::runbook::{Step, StepKind};

const PAUSED: &str = "paused";
const CONFIRMED: &str = "confirmed";
const RESUMED: &str = "resumed";

pub async fn run(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    let StepKind::DualwriteBatchWindow(k) = &step.kind else {
        return Err(fail("not a dualwrite.batch_window step"));
    };
    let maps = resolve(ctx, &k.maps)?;
    let names: Vec<String> = maps.iter().map(|m| m.id.clone()).collect();
    // A fresh attempt opens a new window; a reconciled one carries on from the journaled phase.
    let journaled = (mode == Mode::Reconcile)
        .then(|| ctx.state.read().batch_windows.get(ctx.step.id.as_str()).cloned())
        .flatten();
    if journaled.as_ref().is_some_and(|v| !v.open() && v.confirmed) {
        log(
            ctx,
            LogLevel::Info,
            "the batch window was done and its maps resumed before the process stopped: nothing more to do"
                .to_owned(),
        );
        return Ok(Default::default());
    }
    // A window closed before the operator confirmed (headless refused the question and the maps were resumed
    // meanwhile): a new window, from the pause.
    let journaled = journaled.filter(crate::state::BatchWindowView::open);
    let mut pending = pending_intent(handle, mode);
    let (phase, paused_at) = match journaled {
        Some(v) => {
            log(
                ctx,
                LogLevel::Info,
                format!(
                    "carrying on with the batch window from its journaled phase `{}`",
                    v.phase
                ),
            );
            (v.phase, v.paused_at)
        }
        None => (String::new(), None),
    };
    let paused_at = if phase.is_empty() {
        for (i, m) in maps.iter().enumerate() {
            if let Err(stop) = run_map(ctx, m, &mut pending, Kind::Pause).await {
                // The maps paused before this one are resumed: a window that did not open holds nothing.
                let paused = &maps[..i];
                let names: Vec<String> = paused.iter().map(|m| m.id.clone()).collect();
                return Err(if paused.is_empty() {
                    stop
                } else {
                    resume_after(ctx, paused, &names, &mut pending, stop).await
                });
            }
        }
        let at = ctx.envs.env_now(&ctx.cancel).await;
        phase_event(ctx, PAUSED, &names, Some(at), false).await?;
        at
    } else {
        paused_at.unwrap_or_else(Utc::now)
    };
    let raised = Raised::default();
    if phase != CONFIRMED {
        let work = async {
            confirm(ctx, step, k).await?;
            phase_event(ctx, CONFIRMED, &names, None, false).await
        };
        if let Err(stop) = watched(ctx, k, paused_at, &raised, work).await {
            return Err(resume_after(ctx, &maps, &names, &mut pending, stop).await);
        }
    }
    let mut outputs = std::collections::BTreeMap::new();
    if let Some(spec) = &k.import {
        // The step's own handle for this attempt (the latest journaled one may be a pause's intent).
        let base = uuid_like(&ctx.run_id, ctx.step.id.as_str(), ctx.attempt);
        let id = derive_id(&base, "import");
        // Known to the service already (a resumed run): polled, not submitted again.
        let work = super::dmf::import_spec(ctx, spec, id, Mode::Reconcile);
        match watched(ctx, k, paused_at, &raised, work).await {
            Ok(o) => outputs = o,
            Err(stop) => return Err(resume_after(ctx, &maps, &names, &mut pending, stop).await),
        }
    }
    for m in &maps {
        run_map(ctx, m, &mut pending, Kind::Resume).await?;
    }
    phase_event(ctx, RESUMED, &names, None, false).await?;
    outputs.insert("paused_at".to_owned(), rfc(paused_at));
    Ok(outputs)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn phase_event(
    ctx: &StepCtx,
    phase: &str,
    maps: &[String],
    paused_at: Option<DateTime<Utc>>,
    by_abort: bool,
) -> Res<()> {
    ctx.emit
        .durable(Event::BatchWindow {
            step: ctx.step.id.clone(),
            phase: phase.to_owned(),
            maps: maps.to_vec(),
            paused_at,
            by_abort,
        })
        .await?;
    Ok(())
}

/// The operator runs the batch job and confirms (as a `manual` step).
async fn confirm(ctx: &StepCtx, step: &Step, k: &BatchWindow) -> Res<()> {
    let title = step.title.as_deref().unwrap_or(step.id.as_str());
    let mut prompt = format!(
        "{title}\n\nThe maps are paused (dual-write queues their changes, for at most 1 day). Run the batch job, \
         then confirm; the maps resume after the confirmation{}.",
        if k.import.is_some() {
            " and the package's import"
        } else {
            ""
        }
    );
    if let Some(i) = k.instructions.as_deref().filter(|i| !i.trim().is_empty()) {
        prompt = format!("{prompt}\n\n{i}");
    }
    let d = ctx
        .operator
        .ask(Ask {
            step: Some(ctx.step.id.clone()),
            kind: DecisionKind::ApproveManual,
            prompt,
            checklist: k.checklist.clone(),
            deadline: None,
        })
        .await?;
    super::manual::accept(&d)
}

/// Runs `work` while the pause's age is watched (see the module docs).
async fn watched<T>(
    ctx: &StepCtx,
    k: &BatchWindow,
    paused_at: DateTime<Utc>,
    raised: &Raised,
    work: impl std::future::Future<Output = Res<T>>,
) -> Res<T> {
    tokio::select! {
        r = work => r,
        Err(stop) = watch(ctx, k, paused_at, raised) => Err(stop),
    }
}

/// The alerts this step raised (the state it was given may be a snapshot without them).
type Raised = std::sync::Mutex<std::collections::BTreeSet<&'static str>>;

fn lock(r: &Raised) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<&'static str>> {
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The alerts a pause of `age_secs` has earned: (key, severity, message).
fn due_alerts(step: &str, age_secs: u64, window_secs: u64) -> Vec<(&'static str, Severity, String)> {
    let mut out = Vec::new();
    let age = crate::runbook::Duration::from_secs(age_secs);
    if age_secs >= PAUSE_LIMIT_SECS {
        out.push((
            "pause_limit_passed",
            Severity::Critical,
            format!(
                "{step}: the maps have been paused for {age}, past dual-write's 1-day pause limit: their \
                 changes are no longer queued but blocked until they are resumed"
            ),
        ));
    } else if age_secs * 100 >= PAUSE_LIMIT_SECS * PAUSE_ALERT_PERCENT {
        out.push((
            "pause_limit_near",
            Severity::Warning,
            format!(
                "{step}: the maps have been paused for {age}, {PAUSE_ALERT_PERCENT}% of dual-write's 1-day pause \
                 limit: resume them before {} more or their changes are blocked",
                crate::runbook::Duration::from_secs(PAUSE_LIMIT_SECS - age_secs)
            ),
        ));
    }
    if window_secs > 0 && age_secs > window_secs {
        out.push((
            "window_overrun",
            Severity::Warning,
            format!(
                "{step}: the maps have been paused for {age}, longer than the planned window ({})",
                crate::runbook::Duration::from_secs(window_secs)
            ),
        ));
    }
    out
}

/// Every `poll` (environment time): the pause's age against the limits; returns only when cancelled.
async fn watch(ctx: &StepCtx, k: &BatchWindow, paused_at: DateTime<Utc>, raised_here: &Raised) -> Res<()> {
    let every = ctx.runbook.defaults.poll().as_std().max(Duration::from_secs(1));
    let step = ctx.step.id.as_str().to_owned();
    let tag = |key: &str| format!("[{key}]");
    loop {
        let now = ctx.envs.env_now(&ctx.cancel).await;
        let age = u64::try_from((now - paused_at).num_seconds()).unwrap_or(0);
        for (key, severity, message) in due_alerts(&step, age, k.max_window.as_secs()) {
            let message = format!("{message} {}", tag(key));
            let raised =
                lock(raised_here).contains(key)
                    || ctx.state.read().alerts.iter().any(|a| {
                        a.message.starts_with(&format!("{step}: ")) && a.message.ends_with(&tag(key))
                    });
            if raised {
                continue;
            }
            lock(raised_here).insert(key);
            ctx.emit
                .durable(Event::Alert {
                    severity,
                    message,
                    map: None,
                    subject: Some(AlertSubject {
                        kind: key.to_owned(),
                        company: None,
                        facts: vec![
                            (
                                "Paused for".to_owned(),
                                crate::runbook::Duration::from_secs(age).to_string(),
                            ),
                            ("Pause limit".to_owned(), "1d (documented)".to_owned()),
                            ("Planned window".to_owned(), k.max_window.to_string()),
                        ],
                        clear: false,
                    }),
                })
                .await?;
        }
        sleep_env(ctx, every).await?;
    }
}

/// A failure (or a skip) while the maps are paused: they are resumed first; the step then ends as `stop`
/// says, or fails naming the maps still paused when they could not all be resumed. A cancellation leaves
/// them paused (resume reconciles them; the abort resumes them).
async fn resume_after(
    ctx: &StepCtx,
    maps: &[MapRef],
    names: &[String],
    pending: &mut Option<crate::connectors::dual_write::ActionIntent>,
    stop: Stop,
) -> Stop {
    if ctx.cancel.is_cancelled() {
        return stop;
    }
    log(
        ctx,
        LogLevel::Warn,
        "the batch window did not complete: resuming its maps".to_owned(),
    );
    for m in maps {
        if let Err(e) = run_map(ctx, m, pending, Kind::Resume).await {
            let why = match e {
                Stop::Failed { message, .. } | Stop::InDoubt(message) | Stop::Skipped(message) => message,
            };
            return fail(format!(
                "{}; and map {} could not be resumed ({why}): resume it (dualwrite.resume) before the pause \
                 reaches dual-write's 1-day limit",
                describe(&stop),
                m.id
            ));
        }
    }
    if let Err(e) = phase_event(ctx, RESUMED, names, None, false).await {
        return e;
    }
    match stop {
        // The window is over (its maps resumed): a retry opens a new one, it does not reconcile this one.
        Stop::InDoubt(message) => fail(format!(
            "{message} (the maps were resumed; whether the last request reached the service is not known)"
        )),
        other => other,
    }
}

fn describe(s: &Stop) -> String {
    match s {
        Stop::Failed { message, .. } | Stop::InDoubt(message) | Stop::Skipped(message) => message.clone(),
    }
}

/// The abort of the run: resumes the maps of the window of `ctx`'s step when it is still open, journaled
/// `resumed` with `by_abort` (each resume's action journaled before it is sent, as in the step).
pub async fn close(ctx: &StepCtx) -> Result<(), String> {
    let Some(v) = ctx
        .state
        .read()
        .batch_windows
        .get(ctx.step.id.as_str())
        .filter(|v| v.open())
        .cloned()
    else {
        return Ok(());
    };
    let mut pending = None;
    for id in &v.maps {
        let m = super::maps::map_ref(ctx, id).map_err(|e| describe(&e))?;
        run_map(ctx, &m, &mut pending, Kind::Resume)
            .await
            .map_err(|e| format!("map {id} could not be resumed: {}", describe(&e)))?;
    }
    phase_event(ctx, RESUMED, &v.maps, None, true)
        .await
        .map_err(|e| describe(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_come_at_eighty_percent_at_the_limit_and_past_the_window() {
        let keys = |age, w| {
            due_alerts("bw", age, w)
                .into_iter()
                .map(|(k, _, _)| k)
                .collect::<Vec<_>>()
        };
        assert!(keys(3_600, 7_200).is_empty());
        assert_eq!(keys(7_201, 7_200), ["window_overrun"]);
        assert_eq!(keys(69_120, 0), ["pause_limit_near"]);
        assert!(keys(69_119, 0).is_empty());
        assert_eq!(keys(86_400, 90_000), ["pause_limit_passed"]);
    }
}
