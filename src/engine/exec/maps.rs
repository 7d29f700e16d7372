//! Maps as the executors use them: resolution of `maps:` selections, counts of both sides (per company where
//! the map names companies), and the dual-write error queue (new entries journaled once, Active totals).
//!
//! - Entity sets come from `MapSpec.source`/`target` (`env:EntitySet`); the side's environment kind decides
//!   how it is counted (F&O OData `$count` cross-company, Dataverse exact count).
//! - A Dataverse table's primary id is derived like the platform names it: the logical name (the set minus
//!   its plural ending: `accounts` → `account`, `transactioncurrencies` → `transactioncurrency`) plus `id`.
//! - A Dataverse company filter is `cdm_companyid eq '<COMPANY>'`; F&O's is `dataAreaId eq '<company>'`.
//! - Error-queue entries count against gates only while `Status eq 'Active'` (our model: a Resumed initial
//!   sync that completes resolves its map's entries). A queue without a `Status` column (400) is counted whole.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;

use super::{Res, StepCtx, fail};
use crate::connectors::ConnectorError;
use crate::connectors::fno::{ERROR_CATEGORIES, ERROR_QUEUE_SET, FnoClient, eq_filter};
use crate::engine::event::{ErrorEntry, Event, Tolerance};
use crate::runbook::{EnvKind, MapSelection, MapSpec};

/// The Dataverse column holding a row's company code.
pub const COMPANY_COLUMN: &str = "cdm_companyid";

/// One map, resolved.
#[derive(Debug, Clone)]
pub struct MapRef {
    pub id: String,
    pub spec: MapSpec,
    pub source_env: String,
    pub source_set: String,
    pub target_env: String,
    pub target_set: String,
    pub tolerance: Tolerance,
}

impl MapRef {
    /// The companies counted separately, or one `None` for the whole set.
    pub fn companies(&self) -> Vec<Option<String>> {
        if self.spec.companies.is_empty() {
            vec![None]
        } else {
            self.spec.companies.iter().cloned().map(Some).collect()
        }
    }
}

/// A runbook tolerance as the events carry it (`"0.1%"` → 0.1 percent; unparseable → 0, the strictest).
pub fn tolerance(t: Option<&crate::runbook::Tolerance>) -> Tolerance {
    match t {
        None => Tolerance::Count(0),
        Some(crate::runbook::Tolerance::Count(n)) => Tolerance::Count(*n),
        Some(crate::runbook::Tolerance::Percent(p)) => p
            .trim_end_matches('%')
            .trim()
            .parse::<f64>()
            .map_or(Tolerance::Count(0), Tolerance::Percent),
    }
}

/// The Dataverse primary id column of an entity set (see the module docs).
pub fn primary_id(set: &str) -> String {
    let logical = if let Some(s) = set.strip_suffix("ies") {
        format!("{s}y")
    } else if let Some(s) = set.strip_suffix("ses") {
        format!("{s}s")
    } else {
        set.strip_suffix('s').unwrap_or(set).to_owned()
    };
    format!("{logical}id")
}

fn split(side: &str) -> (String, String) {
    match side.split_once(':') {
        Some((e, s)) => (e.to_owned(), s.to_owned()),
        None => (String::new(), side.to_owned()),
    }
}

/// One map by id.
pub fn map_ref(ctx: &StepCtx, id: &str) -> Res<MapRef> {
    let spec = ctx
        .runbook
        .maps
        .get(id)
        .ok_or_else(|| fail(format!("map `{id}` is not in the runbook")))?;
    let (source_env, source_set) = split(&spec.source);
    let (target_env, target_set) = split(&spec.target);
    Ok(MapRef {
        id: id.to_owned(),
        spec: spec.clone(),
        source_env,
        source_set,
        target_env,
        target_set,
        tolerance: tolerance(spec.tolerance.as_ref()),
    })
}

/// The maps of a selection, `all` in id order.
pub fn resolve(ctx: &StepCtx, sel: &MapSelection) -> Res<Vec<MapRef>> {
    sel.resolve(ctx.runbook.maps.keys())
        .iter()
        .map(|m| map_ref(ctx, m.as_str()))
        .collect()
}

/// Counts one side of a map.
pub async fn count_side(ctx: &StepCtx, env: &str, set: &str, company: Option<&str>) -> Res<u64> {
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let kind = ctx.envs.info.get(env).map(|i| i.kind);
    match kind {
        Some(EnvKind::Fno) => Ok(scope.fno(env)?.count(set, company, &ctx.cancel).await?),
        Some(EnvKind::Dataverse) => {
            let filter = company.map(|c| eq_filter(COMPANY_COLUMN, &c.to_ascii_uppercase()));
            let c = scope
                .dataverse(env)?
                .count(set, &primary_id(set), filter.as_deref(), &ctx.cancel)
                .await?;
            Ok(c.rows)
        }
        _ => Err(fail(format!(
            "cannot count `{env}:{set}`: `{env}` is not an fno or dataverse environment"
        ))),
    }
}

/// One parity figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub map: String,
    pub company: Option<String>,
    pub source: u64,
    pub target: u64,
    pub allowed: u64,
}

impl Pair {
    pub fn within(&self) -> bool {
        self.source.abs_diff(self.target) <= self.allowed
    }
}

/// Counts both sides of every map (per company), at most `defaults.concurrency` requests at once, and
/// journals a `ParitySample` for every pair. `tol` overrides the maps' tolerances.
pub async fn count_pairs(ctx: &StepCtx, maps: &[MapRef], tol: Option<Tolerance>) -> Res<Vec<Pair>> {
    let mut jobs = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        for (j, c) in m.companies().into_iter().enumerate() {
            jobs.push((i, j, true, m.source_env.clone(), m.source_set.clone(), c.clone()));
            jobs.push((i, j, false, m.target_env.clone(), m.target_set.clone(), c));
        }
    }
    let conc = usize::try_from(ctx.runbook.defaults.concurrency().max(1)).unwrap_or(1);
    let results: Vec<_> = futures::stream::iter(jobs)
        .map(|(i, j, src, env, set, c)| async move {
            let n = count_side(ctx, &env, &set, c.as_deref()).await;
            (i, j, src, n)
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    let mut figures: BTreeMap<(usize, usize), (u64, u64)> = BTreeMap::new();
    for (i, j, src, n) in results {
        let n = n?;
        let e = figures.entry((i, j)).or_default();
        if src {
            e.0 = n;
        } else {
            e.1 = n;
        }
    }
    let mut pairs = Vec::with_capacity(figures.len());
    for ((i, j), (source, target)) in figures {
        let m = &maps[i];
        let company = m.companies().get(j).cloned().flatten();
        let allowed = tol.unwrap_or(m.tolerance).allowed(source);
        pairs.push(Pair {
            map: m.id.clone(),
            company,
            source,
            target,
            allowed,
        });
    }
    let appends = pairs.iter().map(|p| {
        ctx.emit.durable(Event::ParitySample {
            step: Some(ctx.step.id.clone()),
            map: p.map.clone(),
            company: p.company.clone(),
            source: p.source,
            target: p.target,
        })
    });
    for r in futures::future::join_all(appends).await {
        r?;
    }
    Ok(pairs)
}

/// The F&O environment whose error queue covers a map: its source or target F&O side, else the first
/// F&O environment of the runbook.
pub fn error_env(ctx: &StepCtx, m: &MapRef) -> Res<String> {
    let is_fno = |e: &str| ctx.envs.info.get(e).is_some_and(|i| i.kind == EnvKind::Fno);
    if is_fno(&m.source_env) {
        return Ok(m.source_env.clone());
    }
    if is_fno(&m.target_env) {
        return Ok(m.target_env.clone());
    }
    ctx.envs
        .info
        .iter()
        .find(|(_, i)| i.kind == EnvKind::Fno)
        .map(|(n, _)| n.clone())
        .ok_or_else(|| fail("no fno environment holds the dual-write error queue"))
}

fn state_mark(ctx: &StepCtx) -> Option<i64> {
    let s = ctx.state.read();
    s.errors
        .newest
        .iter()
        .filter(|e| e.category != "sample_mismatch")
        .filter_map(|e| e.id.parse::<i64>().ok())
        .max()
}

/// Journals the error-queue entries of `env` not journaled before (grouped by map) and returns them.
pub async fn journal_new_entries(ctx: &StepCtx, env: &str) -> Res<Vec<ErrorEntry>> {
    let fno = ctx.envs.scoped(Some(&ctx.step.id)).fno(env)?;
    let after = match (ctx.envs.error_mark(env), state_mark(ctx)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let rows = fno.error_queue_since(after, 10_000, &ctx.cancel).await?;
    let mut by_map: BTreeMap<String, Vec<ErrorEntry>> = BTreeMap::new();
    let mut all = Vec::with_capacity(rows.len());
    for r in rows {
        ctx.envs.raise_error_mark(env, r.error_id);
        let at = DateTime::parse_from_rfc3339(&r.log_date_time)
            .map_or_else(|_| Utc::now(), |d| d.with_timezone(&Utc));
        let e = ErrorEntry {
            id: r.error_id.to_string(),
            at,
            map: r.map_name.clone(),
            key: r.record_key,
            category: r.category,
            message: r.error_message,
        };
        by_map.entry(r.map_name).or_default().push(e.clone());
        all.push(e);
    }
    for (map, entries) in by_map {
        ctx.emit.durable(Event::ErrorEntries { map, entries }).await?;
    }
    Ok(all)
}

async fn active_count(fno: &FnoClient, filter: String, ctx: &StepCtx) -> Result<u64, ConnectorError> {
    let active = format!("{filter} and Status eq 'Active'");
    match fno.count_where(ERROR_QUEUE_SET, Some(active), &ctx.cancel).await {
        Err(ConnectorError::Service { status: 400, .. }) => {
            fno.count_where(ERROR_QUEUE_SET, Some(filter), &ctx.cancel).await
        }
        other => other,
    }
}

/// The Active error-queue entries of one map by category; journals `ErrorCounts` for it.
pub async fn active_errors(ctx: &StepCtx, m: &MapRef) -> Res<BTreeMap<String, u64>> {
    let env = error_env(ctx, m)?;
    let fno = ctx.envs.scoped(Some(&ctx.step.id)).fno(&env)?;
    let map_filter = eq_filter("MapName", &m.id);
    let total = active_count(&fno, map_filter.clone(), ctx).await?;
    let mut by_category = BTreeMap::new();
    if total > 0 {
        for cat in ERROR_CATEGORIES {
            let f = format!("{map_filter} and {}", eq_filter("Category", cat));
            let n = active_count(&fno, f, ctx).await?;
            if n > 0 {
                by_category.insert((*cat).to_owned(), n);
            }
        }
        let known: u64 = by_category.values().sum();
        if known < total {
            by_category.insert("other".into(), total - known);
        }
    }
    ctx.emit
        .durable(Event::ErrorCounts {
            map: m.id.clone(),
            by_category: by_category.clone(),
        })
        .await?;
    Ok(by_category)
}

/// Journals new entries of every error queue the maps use, then each map's Active counts. Returns the Active
/// total per map.
pub async fn error_totals(ctx: &StepCtx, maps: &[MapRef]) -> Res<BTreeMap<String, u64>> {
    let mut envs: Vec<String> = Vec::new();
    for m in maps {
        let e = error_env(ctx, m)?;
        if !envs.contains(&e) {
            envs.push(e);
        }
    }
    for e in &envs {
        journal_new_entries(ctx, e).await?;
    }
    let mut out = BTreeMap::new();
    for m in maps {
        let by = active_errors(ctx, m).await?;
        out.insert(m.id.clone(), by.values().sum());
    }
    Ok(out)
}

/// A scalar JSON value as text (strings unquoted).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_ids_follow_the_simulators_and_the_platforms_naming() {
        assert_eq!(primary_id("accounts"), "accountid");
        assert_eq!(primary_id("transactioncurrencies"), "transactioncurrencyid");
        assert_eq!(primary_id("cdm_companies"), "cdm_companyid");
        assert_eq!(primary_id("salesorderdetails"), "salesorderdetailid");
        assert_eq!(primary_id("msdyn_exchangerates"), "msdyn_exchangerateid");
    }

    #[test]
    fn tolerances_convert() {
        use crate::runbook::Tolerance as T;
        assert_eq!(
            tolerance(Some(&T::Percent("0.1%".into()))),
            Tolerance::Percent(0.1)
        );
        assert_eq!(tolerance(Some(&T::Count(3))), Tolerance::Count(3));
        assert_eq!(tolerance(None), Tolerance::Count(0));
    }
}
