//! `dataverse.disable_automation` / `dataverse.enable_automation`, and the abort's restore.
//!
//! Disable: every named plug-in step and flow is found by name (`connectors::automation::list`); for each, its
//! current state is journaled (`AutomationOff`) *before* it is switched off. Re-running the step (resume of an
//! in-flight step) keeps the state journaled first: a step already journaled and not yet put back is only
//! switched off again. Enable, and the abort of a run: every one the run turned off and did not put back is
//! `PATCH`ed to its journaled state, then `AutomationRestored` is journaled (setting a state is idempotent, so a
//! crash between the two only repeats the `PATCH`).

use super::{Res, StepCtx, fail, log};
use crate::connectors::automation::{self, Automation};
use crate::engine::ctx::Emitter;
use crate::engine::envs::Envs;
use crate::engine::event::{Event, LogLevel};
use crate::engine::live::LiveState;
use crate::model::StepId;

pub async fn disable(ctx: &StepCtx, env: &str, plugin_steps: &[String], flows: &[String]) -> Res {
    let dv = ctx.envs.scoped(Some(&ctx.step.id)).dataverse(env)?;
    let t = dv.transport();
    let found = automation::list(t, None, &ctx.cancel).await?;
    let mut chosen: Vec<&Automation> = Vec::new();
    for (kind, names) in [("plugin_step", plugin_steps), ("flow", flows)] {
        for name in names {
            let hits: Vec<&Automation> = found
                .iter()
                .filter(|a| a.kind == kind && a.name == *name)
                .collect();
            if hits.is_empty() {
                return Err(fail(format!(
                    "`{env}` has no {} named `{name}` (nothing was changed)",
                    kind.replace('_', " ")
                )));
            }
            chosen.extend(hits);
        }
    }
    let mut turned_off = 0u64;
    for a in chosen {
        let key = format!("{env}/{}/{}", a.kind, a.id);
        let journaled = ctx
            .state
            .read()
            .automation
            .get(&key)
            .is_some_and(|v| v.restored_at.is_none());
        if !journaled {
            ctx.emit
                .durable(Event::AutomationOff {
                    step: ctx.step.id.clone(),
                    env: env.to_owned(),
                    what: a.kind.to_owned(),
                    id: a.id.clone(),
                    name: a.name.clone(),
                    table: a.table.clone(),
                    prior_statecode: a.statecode,
                    prior_statuscode: a.statuscode,
                })
                .await?;
        }
        if a.is_on() {
            automation::set_state(t, a.kind, &a.id, a.off_state(), &ctx.cancel).await?;
            turned_off += 1;
        }
    }
    Ok([("turned_off".to_owned(), turned_off.to_string())]
        .into_iter()
        .collect())
}

pub async fn enable(ctx: &StepCtx, env: &str) -> Res {
    let n = restore(
        &ctx.envs,
        &ctx.emit,
        &ctx.state,
        Some(&ctx.step.id),
        Some(env),
        &ctx.cancel,
    )
    .await
    .map_err(fail)?;
    log(
        ctx,
        LogLevel::Info,
        format!("{n} plug-in steps and flows of `{env}` are back as they were"),
    );
    Ok([("restored".to_owned(), n.to_string())].into_iter().collect())
}

/// Puts back every plug-in step and flow the run turned off and did not put back (in `env`, or everywhere),
/// journaling each. The first failure stops it and is returned (what was put back stays journaled).
pub async fn restore(
    envs: &Envs,
    emit: &Emitter,
    state: &LiveState,
    step: Option<&StepId>,
    env: Option<&str>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<u64, String> {
    let open: Vec<_> = state
        .read()
        .automation
        .values()
        .filter(|v| v.restored_at.is_none() && env.is_none_or(|e| e == v.env))
        .cloned()
        .collect();
    let mut n = 0;
    for v in open {
        let dv = envs.scoped(step).dataverse(&v.env).map_err(|e| e.to_string())?;
        automation::set_state(
            dv.transport(),
            &v.kind,
            &v.id,
            (v.prior_statecode, v.prior_statuscode),
            cancel,
        )
        .await
        .map_err(|e| {
            format!(
                "{} `{}` could not be put back: {e}",
                v.kind.replace('_', " "),
                v.name
            )
        })?;
        emit.durable(Event::AutomationRestored {
            step: step.cloned(),
            env: v.env.clone(),
            what: v.kind.clone(),
            id: v.id.clone(),
            name: v.name.clone(),
            statecode: v.prior_statecode,
            statuscode: v.prior_statuscode,
        })
        .await
        .map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}
