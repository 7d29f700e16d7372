//! `roundtrip`: a canary keyed by the step handle (`CANARY-…`, in the map's `key` field) is created on the
//! `from` side, looked for on the other side by the same key until `within` (environment time, at least
//! [`MIN_REAL_WAIT`] of real time), then deleted on both sides (a row already gone counts as deleted).
//!
//! Stages are journaled durably as progress (1 created, 2 seen, 3 deleted). Every run looks before it writes:
//! the canary is created only when it exists on neither side; Reconcile additionally trusts a journaled stage
//! 3 (both gone because both were deleted) and a stage 2 (seen: only the deletes remain), so a resumed step
//! never creates a second canary. The canary carries `record`'s fields (strings interpolated) and, on a
//! per-company F&O map, `dataAreaId` of the map's first company.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::maps::{MapRef, company_lookup, dataverse_company_filter, map_ref, primary_id, side_filter, text};
use super::{Mode, Res, StepCtx, fail, interpolate_step, log, sleep_env};
use crate::connectors::ConnectorError;
use crate::connectors::dataverse::and_filters;
use crate::connectors::fno::odata_string;
use crate::connectors::transport::{Idempotency, Request};
use crate::engine::event::{Event, Handle, LogLevel};
use crate::runbook::steps as kind;
use crate::runbook::{EnvKind, Step, StepKind};

/// The least real time the other side gets to show the canary.
pub const MIN_REAL_WAIT: Duration = Duration::from_secs(2);

struct Side<'a> {
    ctx: &'a StepCtx,
    map: MapRef,
    env: String,
    set: String,
    key_field: String,
    kind: EnvKind,
}

impl Side<'_> {
    /// On a per-company map, the Dataverse filter of the canary's company (the map's first): a key alone can
    /// match another company's row. `Some(None)`: the company has no `cdm_companies` row (nothing can match).
    async fn dataverse_company(&self) -> Res<Option<Option<String>>> {
        match self.map.spec.companies.first() {
            Some(c) => Ok(Some(
                dataverse_company_filter(self.ctx, &self.env, &self.map, c).await?,
            )),
            None => Ok(None),
        }
    }

    async fn find(&self, key: &str) -> Res<Option<Map<String, Value>>> {
        let scope = self.ctx.envs.scoped(Some(&self.ctx.step.id));
        let rows = match self.kind {
            EnvKind::Fno => {
                scope
                    .fno(&self.env)?
                    .find_eq(&self.set, &self.key_field, key, None, &self.ctx.cancel)
                    .await?
            }
            EnvKind::Dataverse => {
                let company = match self.dataverse_company().await? {
                    Some(None) => return Ok(None),
                    Some(Some(f)) => Some(f),
                    None => None,
                };
                let also = and_filters(&[
                    side_filter(&self.map, self.set == self.map.source_set),
                    company.as_deref(),
                ]);
                scope
                    .dataverse(&self.env)?
                    .find_by_key_where(
                        &self.set,
                        &self.key_field,
                        key,
                        also.as_deref(),
                        &[],
                        &self.ctx.cancel,
                    )
                    .await?
            }
            _ => {
                return Err(fail(format!(
                    "`{}` is not an fno or dataverse environment",
                    self.env
                )));
            }
        };
        Ok(rows.into_iter().next())
    }

    async fn create(&self, body: &Value, key: &str) -> Res<()> {
        let scope = self.ctx.envs.scoped(Some(&self.ctx.step.id));
        if self.kind == EnvKind::Dataverse {
            let dv = scope.dataverse(&self.env)?;
            let mut body = body.clone();
            if let (Some(c), Value::Object(o)) = (self.map.spec.companies.first(), &mut body) {
                let id = dv.company_id(c, &self.ctx.cancel).await?.ok_or_else(|| {
                    fail(format!(
                        "company {c} has no cdm_companies row in {}: the canary cannot name it",
                        self.env
                    ))
                })?;
                o.entry(format!("{}@odata.bind", company_lookup(&self.map)))
                    .or_insert_with(|| json!(format!("/cdm_companies({id})")));
            }
            if self.find(key).await?.is_some() {
                return Ok(());
            }
            return match dv.create(&self.set, &body, None, &self.ctx.cancel).await {
                Ok(_) => Ok(()),
                // The outcome is unknown: look (with the company) before anything is repeated.
                Err(ConnectorError::Ambiguous { detail, .. }) => match self.find(key).await? {
                    Some(_) => Ok(()),
                    None => Err(fail(format!(
                        "creating the canary {key}: outcome unknown ({detail}) and it is not there"
                    ))),
                },
                Err(e) => Err(e.into()),
            };
        }
        let fno = scope.fno(&self.env)?;
        let req = Request::post(format!("fno.create {}", self.set), format!("/data/{}", self.set))
            .json(body.clone())
            .idempotency(Idempotency::Unsafe);
        match fno.transport().send(req, &self.ctx.cancel).await {
            Ok(_) => Ok(()),
            // The outcome is unknown: look before anything is repeated.
            Err(ConnectorError::Ambiguous { detail, .. }) => match self.find(key).await? {
                Some(_) => Ok(()),
                None => Err(fail(format!(
                    "creating the canary {key}: outcome unknown ({detail}) and it is not there"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Res<()> {
        let Some(row) = self.find(key).await? else {
            return Ok(());
        };
        let scope = self.ctx.envs.scoped(Some(&self.ctx.step.id));
        if self.kind == EnvKind::Dataverse {
            let pid = primary_id(self.ctx, &self.env, &self.set).await?;
            let id = row
                .get(&pid)
                .map(text)
                .ok_or_else(|| fail(format!("the canary row in {} has no {pid}", self.set)))?;
            scope
                .dataverse(&self.env)?
                .delete(&self.set, &id, &self.ctx.cancel)
                .await?;
            return Ok(());
        }
        let mut pred = Vec::new();
        if let Some(c) = row.get("dataAreaId").map(text) {
            pred.push(format!("dataAreaId={}", odata_string(&c)));
        }
        pred.push(format!("{}={}", self.key_field, odata_string(key)));
        let req = Request::new(
            format!("fno.delete {}", self.set),
            reqwest::Method::DELETE,
            format!("/data/{}({})", self.set, pred.join(",")),
        );
        let fno = scope.fno(&self.env)?;
        match fno.transport().send(req, &self.ctx.cancel).await {
            Ok(_) | Err(ConnectorError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn sides<'a>(ctx: &'a StepCtx, m: &MapRef, from: &str) -> Res<(Side<'a>, Side<'a>)> {
    let key = m
        .spec
        .key
        .as_ref()
        .ok_or_else(|| fail(format!("map `{}` has no `key`: a canary needs one", m.id)))?;
    let kind = |e: &str| ctx.envs.info.get(e).map_or(EnvKind::Http, |i| i.kind);
    let source = Side {
        ctx,
        map: m.clone(),
        env: m.source_env.clone(),
        set: m.source_set.clone(),
        key_field: key.source.clone(),
        kind: kind(&m.source_env),
    };
    let target = Side {
        ctx,
        map: m.clone(),
        env: m.target_env.clone(),
        set: m.target_set.clone(),
        key_field: key.target.clone(),
        kind: kind(&m.target_env),
    };
    if from == m.source_env {
        Ok((source, target))
    } else if from == m.target_env {
        Ok((target, source))
    } else {
        Err(fail(format!("`from: {from}` is neither side of map `{}`", m.id)))
    }
}

async fn stage(ctx: &StepCtx, n: u64, note: &str) -> Res<()> {
    ctx.emit
        .durable(Event::StepProgress {
            step: ctx.step.id.clone(),
            done: n,
            total: Some(3),
            note: Some(format!("canary {note}")),
        })
        .await?;
    Ok(())
}

fn journaled_stage(ctx: &StepCtx) -> u64 {
    ctx.state
        .read()
        .step(ctx.step.id.as_str())
        .and_then(|v| v.progress.as_deref())
        .filter(|p| p.note.as_deref().is_some_and(|n| n.starts_with("canary ")))
        .map_or(0, |p| p.done)
}

pub async fn run(ctx: &StepCtx, step: &Step, handle: Option<&Handle>, mode: Mode) -> Res {
    let StepKind::Roundtrip(kind::Roundtrip {
        map,
        from,
        within,
        record,
    }) = &step.kind
    else {
        return Err(fail("not a roundtrip step"));
    };
    let key = handle
        .map(|h| h.id.clone())
        .ok_or_else(|| fail("no canary handle for this step"))?;
    let m = map_ref(ctx, map.as_str())?;
    let (a, b) = sides(ctx, &m, from)?;
    let journaled = if mode == Mode::Reconcile {
        journaled_stage(ctx)
    } else {
        0
    };
    let (on_a, on_b) = (a.find(&key).await?.is_some(), b.find(&key).await?.is_some());
    if !on_a && !on_b && journaled >= 3 {
        log(
            ctx,
            LogLevel::Info,
            format!("canary {key} was already seen and deleted"),
        );
        return Ok(Default::default());
    }
    let mut seen = on_b || journaled >= 2;
    if !on_a && !seen {
        let mut body = Map::new();
        for (k, v) in record.iter().flatten() {
            let v = match v {
                Value::String(s) => Value::String(interpolate_step(ctx, s)?),
                other => other.clone(),
            };
            body.insert(k.clone(), v);
        }
        body.insert(a.key_field.clone(), json!(key));
        if a.kind == EnvKind::Fno
            && let Some(c) = m.spec.companies.first()
        {
            body.entry("dataAreaId")
                .or_insert_with(|| json!(c.to_ascii_lowercase()));
        }
        a.create(&Value::Object(body), &key).await?;
        stage(ctx, 1, "created").await?;
    }
    let within_env = within.as_ref().map_or(Duration::from_secs(120), |w| w.as_std());
    let budget = ctx.clock.to_real(within_env).max(MIN_REAL_WAIT);
    let started = Instant::now();
    while !seen {
        if b.find(&key).await?.is_some() {
            seen = true;
            break;
        }
        if started.elapsed() > budget {
            break;
        }
        sleep_env(ctx, (within_env / 20).max(Duration::from_millis(1))).await?;
    }
    if seen {
        stage(ctx, 2, "seen").await?;
    }
    a.delete(&key).await?;
    b.delete(&key).await?;
    stage(ctx, 3, "deleted").await?;
    if !seen {
        return Err(fail(format!(
            "canary {key} written to {} did not reach {}:{} within {}",
            a.env,
            b.env,
            b.set,
            within
                .as_ref()
                .map_or_else(|| "2m".to_owned(), ToString::to_string)
        )));
    }
    Ok(Default::default())
}
