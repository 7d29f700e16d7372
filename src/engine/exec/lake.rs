//! The lake's steps (see `runbook::steps::lake` and `docs/lake.md`).
//!
//! - `lake.caught_up` reads the export's folders (never the one `Changelog/changelog.info` names) until a
//!   closed folder is newer than the cut, then, with `databricks`, the pipeline's latest updates until one
//!   created after that folder was last written has COMPLETED. The cut is a wall-clock time carried to the
//!   environment's clock by its age (the same instant on live services; the simulator's clock in `--sim`).
//!   Progress shows the export's lag; at the timeout the step fails naming the newest closed folder and the
//!   one still being written, so a stopped Synapse Link is named where it stopped.
//! - `lake.schema_check` reads the newest closed folder's `model.json`; its outputs are every table's
//!   attributes (`schema.<table>`), and against a `baseline` step's outputs, the tables whose attributes
//!   changed (`changed`, comma-separated, and `changed_count`): each needs a full refresh.
//! - `lake.full_refresh` asks the operator, journals an intent (`lake.update_intent`: pipeline, tables and the
//!   environment's time) before it starts the update, then the update id (`lake.update`) as soon as it has
//!   it, and polls to a terminal state. Resumed, it polls the journaled update; after an intent without an
//!   id it adopts an update the pipeline created since the intent, and starts one only when there is none.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::manual::accept;
use super::{Mode, Res, StepCtx, Stop, fail, interpolate_step, log, poll, poll_with, progress};
use crate::connectors::lake::{Attributes, Export};
use crate::engine::ctx::Ask;
use crate::engine::event::{DecisionKind, Event, Handle, LogLevel};
use crate::runbook::steps::{LakeCaughtUp, LakeFullRefresh, LakeSchemaCheck, TableList};

/// The handle kinds journaled by `lake.full_refresh`.
pub const INTENT_KIND: &str = "lake.update_intent";
pub const UPDATE_KIND: &str = "lake.update";

/// The pipeline id a step names (or the environment's only one).
fn pipeline_id(ctx: &StepCtx, env: &str, name: Option<&str>) -> Res<(String, String)> {
    let info = ctx
        .envs
        .info
        .get(env)
        .and_then(|i| i.lake.clone())
        .ok_or_else(|| fail(format!("environment `{env}` is not a databricks environment")))?;
    match name {
        Some(n) => info
            .pipelines
            .get(n)
            .map(|id| (n.to_owned(), id.clone()))
            .ok_or_else(|| fail(format!("environment `{env}` has no pipeline `{n}`"))),
        None if info.pipelines.len() == 1 => Ok(info
            .pipelines
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default()),
        None => Err(fail(format!(
            "environment `{env}` declares {} pipelines: name one",
            info.pipelines.len()
        ))),
    }
}

fn minutes(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s.abs() < 120 {
        format!("{s} s")
    } else {
        format!("{} min", s / 60)
    }
}

/// The cut on the environment's clock: a wall-clock instant carried by its age.
async fn cut_on_env_clock(ctx: &StepCtx, text: &str) -> Res<DateTime<Utc>> {
    let cut = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| fail(format!("after: `{text}` is not an RFC 3339 time: {e}")))?
        .with_timezone(&Utc);
    let env_now = ctx.envs.env_now(&ctx.cancel).await;
    let age = (Utc::now() - cut).to_std().unwrap_or(Duration::ZERO);
    let age_env = chrono::Duration::from_std(ctx.clock.to_env(age)).unwrap_or_default();
    Ok(env_now - age_env)
}

pub async fn caught_up(ctx: &StepCtx, k: &LakeCaughtUp) -> Res {
    let after = interpolate_step(ctx, &k.after)?;
    let cut = cut_on_env_clock(ctx, &after).await?;
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (blob, root) = scope.blob(&k.export)?;
    let export = Export { blob: &blob, root };
    let pipeline = match &k.databricks {
        Some(env) => Some((
            scope.databricks(env)?,
            pipeline_id(ctx, env, k.pipeline.as_deref())?,
        )),
        None => None,
    };
    let every = k.every.as_ref().map_or_else(
        || ctx.runbook.defaults.poll().as_std(),
        crate::runbook::Duration::as_std,
    );
    // A wait, not a read that may be throttled: the step's timeout as it is (at least 5 looks and 2 s).
    let sched = poll_with(ctx, every);
    let budget = ctx
        .clock
        .to_real(super::timeout(ctx))
        .max(sched.every * 5)
        .max(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + budget;
    let mut last_note = String::new();
    loop {
        let state = export.state(&ctx.cancel).await?;
        let env_now = ctx.envs.env_now(&ctx.cancel).await;
        let newest = state.newest_closed().cloned();
        let past = state.folders.iter().find(|f| f.closed && f.at > cut).cloned();
        let lag = newest.as_ref().map(|n| env_now - n.at);
        let (note, done) = match (&past, &pipeline) {
            (None, _) => (
                format!(
                    "export not past the cut {}: newest closed folder {} (lag {}), being written {}",
                    cut.format("%Y-%m-%dT%H:%M:%SZ"),
                    newest.as_ref().map_or("none", |n| n.name.as_str()),
                    lag.map_or_else(|| "unknown".to_owned(), minutes),
                    state
                        .open
                        .as_deref()
                        .unwrap_or("unknown (no Changelog/changelog.info)")
                ),
                None,
            ),
            (Some(f), None) => (
                format!("export past the cut: folder {} is closed", f.name),
                Some(None),
            ),
            (Some(f), Some((db, (pname, pid)))) => {
                let written = export.written(&f.name, &ctx.cancel).await?.unwrap_or(f.at);
                let updates = db.latest_updates(pid, &ctx.cancel).await?;
                let done = updates
                    .iter()
                    .find(|u| u.state == "COMPLETED" && u.creation_time.is_some_and(|t| t >= written));
                match done {
                    Some(u) => (
                        format!(
                            "pipeline {pname}: update {} completed after folder {}",
                            u.update_id, f.name
                        ),
                        Some(Some(u.update_id.clone())),
                    ),
                    None => (
                        format!(
                            "export past the cut (folder {}); pipeline {pname} has completed no update since (latest: {})",
                            f.name,
                            updates.first().map_or_else(
                                || "none".to_owned(),
                                |u| format!("{} {}", u.update_id, u.state)
                            )
                        ),
                        None,
                    ),
                }
            }
        };
        if note != last_note {
            progress(ctx, 0, None, Some(note.clone()));
            last_note = note.clone();
        }
        if let Some(update) = done {
            let mut out = BTreeMap::new();
            let f = past.map(|f| f.name).unwrap_or_default();
            out.insert("folder".to_owned(), f);
            out.insert(
                "lag_seconds".to_owned(),
                lag.map_or(0, |l| l.num_seconds().max(0)).to_string(),
            );
            out.insert("update_id".to_owned(), update.unwrap_or_default());
            log(ctx, LogLevel::Info, note);
            return Ok(out);
        }
        if tokio::time::Instant::now() + sched.every > deadline {
            return Err(fail(match past {
                None => format!(
                    "Synapse Link has not exported past {}: the newest closed folder is {} and the folder still being written is {} (stopped or lagging: see the Power Apps maker portal)",
                    cut.format("%Y-%m-%dT%H:%M:%SZ"),
                    newest.map_or_else(|| "none".to_owned(), |n| n.name),
                    state.open.unwrap_or_else(|| "unknown".into())
                ),
                Some(_) => note,
            }));
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => return Err(fail("cancelled")),
            () = tokio::time::sleep(sched.every) => {}
        }
    }
}

/// `name:type,name:type` of a table's attributes.
fn attrs_text(a: &Attributes) -> String {
    a.iter()
        .map(|(n, t)| format!("{n}:{t}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn schema_check(ctx: &StepCtx, k: &LakeSchemaCheck) -> Res {
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (blob, root) = scope.blob(&k.export)?;
    let export = Export { blob: &blob, root };
    let state = export.state(&ctx.cancel).await?;
    let newest = state
        .newest_closed()
        .ok_or_else(|| fail("the export has no closed folder yet: nothing to compare"))?
        .clone();
    let model = export.model(&newest.name, &ctx.cancel).await?;
    if let Some(missing) = k.tables.iter().find(|t| !model.contains_key(*t)) {
        return Err(fail(format!(
            "table `{missing}` is not in the export ({}/model.json)",
            newest.name
        )));
    }
    let wanted: Vec<(&String, &Attributes)> = model
        .iter()
        .filter(|(t, _)| k.tables.is_empty() || k.tables.contains(t))
        .collect();
    let mut out: BTreeMap<String, String> = wanted
        .iter()
        .map(|(t, a)| (format!("schema.{t}"), attrs_text(a)))
        .collect();
    out.insert("folder".into(), newest.name.clone());
    let mut changed = Vec::new();
    if let Some(b) = &k.baseline {
        let base: BTreeMap<String, String> = ctx
            .state
            .read()
            .steps
            .iter()
            .find(|s| &s.info.id == b)
            .map(|s| s.outputs.clone())
            .ok_or_else(|| fail(format!("the baseline step `{b}` has no result in this run")))?;
        let base_tables: BTreeMap<&str, &String> = base
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("schema.").map(|t| (t, v)))
            .collect();
        if base_tables.is_empty() {
            return Err(fail(format!("the baseline step `{b}` recorded no table")));
        }
        for (t, a) in &wanted {
            let now = attrs_text(a);
            match base_tables.get(t.as_str()) {
                Some(old) if **old == now => {}
                Some(old) => {
                    let olds: Vec<&str> = old.split(',').collect();
                    let news: Vec<&str> = now.split(',').collect();
                    let added: Vec<&str> = news.iter().filter(|c| !olds.contains(c)).copied().collect();
                    let removed: Vec<&str> = olds.iter().filter(|c| !news.contains(c)).copied().collect();
                    log(
                        ctx,
                        LogLevel::Warn,
                        format!(
                            "table {t}: schema changed since `{b}` (added {added:?}, removed {removed:?}): needs a full refresh"
                        ),
                    );
                    changed.push((*t).clone());
                }
                None => {
                    log(ctx, LogLevel::Info, format!("table {t}: new since `{b}`"));
                }
            }
        }
        progress(
            ctx,
            changed.len() as u64,
            Some(wanted.len() as u64),
            Some(format!(
                "{} of {} tables changed schema since `{b}` (folder {})",
                changed.len(),
                wanted.len(),
                newest.name
            )),
        );
    }
    out.insert("changed".into(), changed.join(","));
    out.insert("changed_count".into(), changed.len().to_string());
    Ok(out)
}

/// An update the step started or is about to start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Intent {
    pipeline: String,
    tables: Vec<String>,
    /// The environment's time when the intent was journaled.
    at: DateTime<Utc>,
}

async fn journal_handle(ctx: &StepCtx, kind: &str, id: String) -> Res<()> {
    ctx.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: ctx.attempt,
            handle: Some(Handle {
                kind: kind.into(),
                id,
            }),
        })
        .await?;
    Ok(())
}

pub async fn full_refresh(ctx: &StepCtx, k: &LakeFullRefresh, handle: Option<&Handle>, mode: Mode) -> Res {
    let tables: Vec<String> = match &k.tables {
        TableList::List(l) => l.clone(),
        TableList::Text(t) => interpolate_step(ctx, t)?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    if tables.is_empty() {
        return Err(Stop::Skipped("no table needs a full refresh".into()));
    }
    let (pname, pid) = pipeline_id(ctx, &k.databricks, k.pipeline.as_deref())?;
    let db = ctx.envs.scoped(Some(&ctx.step.id)).databricks(&k.databricks)?;
    // Resumed: the journaled update, else one the pipeline created since the journaled intent.
    let mut update_id: Option<String> = None;
    if mode == Mode::Reconcile
        && let Some(h) = handle
    {
        if h.kind == UPDATE_KIND {
            update_id = h.id.split_once('/').map(|(_, u)| u.to_owned());
        } else if h.kind == INTENT_KIND
            && let Ok(intent) = serde_json::from_str::<Intent>(&h.id)
        {
            let updates = db.latest_updates(&intent.pipeline, &ctx.cancel).await?;
            let slack = chrono::Duration::seconds(60);
            if let Some(u) = updates
                .iter()
                .find(|u| u.creation_time.is_some_and(|t| t + slack >= intent.at))
            {
                log(
                    ctx,
                    LogLevel::Info,
                    format!(
                        "reconciling: pipeline {pname} created update {} after the journaled intent: polling it (not starting another)",
                        u.update_id
                    ),
                );
                journal_handle(ctx, UPDATE_KIND, format!("{}/{}", intent.pipeline, u.update_id)).await?;
                update_id = Some(u.update_id.clone());
            } else {
                log(
                    ctx,
                    LogLevel::Info,
                    format!(
                        "reconciling: pipeline {pname} has no update since the journaled intent: starting it"
                    ),
                );
            }
        }
    }
    let update_id = match update_id {
        Some(u) => u,
        None => {
            let d = ctx
                .operator
                .ask(Ask {
                    step: Some(ctx.step.id.clone()),
                    kind: DecisionKind::Confirm,
                    prompt: format!(
                        "Start a full refresh of {} in Lakeflow Connect pipeline {pname} ({pid})? Each table is emptied and re-read from the whole Synapse Link export.",
                        tables.join(", ")
                    ),
                    checklist: Vec::new(),
                    deadline: None,
                })
                .await?;
            accept(&d)?;
            let intent = Intent {
                pipeline: pid.clone(),
                tables: tables.clone(),
                at: ctx.envs.env_now(&ctx.cancel).await,
            };
            let text = serde_json::to_string(&intent).map_err(|e| fail(e.to_string()))?;
            journal_handle(ctx, INTENT_KIND, text).await?;
            let id = db.start_update(&pid, &tables, &ctx.cancel).await?;
            journal_handle(ctx, UPDATE_KIND, format!("{pid}/{id}")).await?;
            id
        }
    };
    let sched = poll(ctx);
    let deadline = tokio::time::Instant::now() + sched.timeout;
    let mut last = String::new();
    loop {
        let u = db.get_update(&pid, &update_id, &ctx.cancel).await?;
        if u.state != last {
            progress(
                ctx,
                0,
                None,
                Some(format!("pipeline {pname}: update {update_id} {}", u.state)),
            );
            last = u.state.clone();
        }
        match u.state.as_str() {
            "COMPLETED" => {
                let mut out = BTreeMap::new();
                out.insert("update_id".into(), update_id);
                out.insert("tables".into(), tables.join(","));
                return Ok(out);
            }
            "FAILED" | "CANCELED" => {
                return Err(super::fail_because(
                    format!(
                        "pipeline {pname}: the full refresh update {update_id} of {} ended {}",
                        tables.join(", "),
                        u.state
                    ),
                    u.error,
                ));
            }
            _ => {}
        }
        if tokio::time::Instant::now() + sched.every > deadline {
            return Err(fail(format!(
                "pipeline {pname}: update {update_id} is still {} at the step's timeout",
                u.state
            )));
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => return Err(fail("cancelled")),
            () = tokio::time::sleep(sched.every) => {}
        }
    }
}
