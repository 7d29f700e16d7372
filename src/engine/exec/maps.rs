//! Maps as the executors use them: resolution of `maps:` selections and counts of both sides (per company where
//! the map names companies). Their dual-write errors are read in `error_sources`.
//!
//! - Entity sets come from `MapSpec.source`/`target` (`env:EntitySet`); the side's environment kind decides
//!   how it is counted (F&O OData `$count` cross-company, Dataverse exact count).
//! - A Dataverse table's primary id is read from its metadata (`EntityDefinitions` by `EntitySetName`:
//!   `PrimaryIdAttribute`), once per environment and run, never guessed from the set name. Counting many maps
//!   reads every table's metadata first, in a few batched requests (an `or` of `EntitySetName eq`), not one
//!   per table.
//! - A Dataverse company filter goes through the map's company lookup (`company_lookup`, default
//!   `msdyn_company`): `_msdyn_company_value eq <cdm_companyid>`, the id read once per environment from
//!   `cdm_companies` by `cdm_companycode`; F&O's is `dataAreaId eq '<company>'`. A company that has no
//!   `cdm_companies` row yet has no rows on the Dataverse side (counted 0, and asked again next time).
//! - A map's `filter` (per side) is added to every count and read of that side.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::Value;

use super::{Res, StepCtx, fail, log};
use crate::connectors::dataverse::{DEFAULT_COMPANY_LOOKUP, and_filters, company_filter};
use crate::connectors::fno::company_filter as fno_company_filter;
use crate::engine::event::{Event, LogLevel, Tolerance};
use crate::runbook::{EnvKind, MapSelection, MapSpec};

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

/// The Dataverse primary id column of an entity set, from the table's metadata (see the module docs).
pub async fn primary_id(ctx: &StepCtx, env: &str, set: &str) -> Res<String> {
    let dv = ctx.envs.scoped(Some(&ctx.step.id)).dataverse(env)?;
    Ok(dv.table(set, &ctx.cancel).await?.primary_id)
}

/// The company lookup of a map's Dataverse side.
pub fn company_lookup(m: &MapRef) -> &str {
    m.spec.company_lookup.as_deref().unwrap_or(DEFAULT_COMPANY_LOOKUP)
}

/// The map's own filter on one side.
pub fn side_filter(m: &MapRef, source: bool) -> Option<&str> {
    let f = m.spec.filter.as_ref()?;
    if source {
        f.source.as_deref()
    } else {
        f.target.as_deref()
    }
}

/// The Dataverse filter of one company through the map's company lookup: `Ok(None)` when the company has no
/// `cdm_companies` row (so no row can point at it).
pub async fn dataverse_company_filter(
    ctx: &StepCtx,
    env: &str,
    m: &MapRef,
    company: &str,
) -> Res<Option<String>> {
    let dv = ctx.envs.scoped(Some(&ctx.step.id)).dataverse(env)?;
    Ok(dv
        .company_id(company, &ctx.cancel)
        .await?
        .map(|id| company_filter(company_lookup(m), &id)))
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

/// Counts one side of a map (its filter applied), in one company when `company` is given.
pub async fn count_side(ctx: &StepCtx, m: &MapRef, source: bool, company: Option<&str>) -> Res<u64> {
    let (env, set) = if source {
        (&m.source_env, &m.source_set)
    } else {
        (&m.target_env, &m.target_set)
    };
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let kind = ctx.envs.info.get(env.as_str()).map(|i| i.kind);
    let own = side_filter(m, source);
    match kind {
        Some(EnvKind::Fno) => {
            let company = company.map(fno_company_filter);
            let filter = and_filters(&[own, company.as_deref()]);
            Ok(scope.fno(env)?.count_where(set, filter, &ctx.cancel).await?)
        }
        Some(EnvKind::Dataverse) => {
            let company = match company {
                Some(c) => match dataverse_company_filter(ctx, env, m, c).await? {
                    Some(f) => Some(f),
                    None => {
                        log(
                            ctx,
                            LogLevel::Info,
                            format!(
                                "{env}:{set}: company {c} has no cdm_companies row yet, so no {set} row belongs to it (counted 0)"
                            ),
                        );
                        return Ok(0);
                    }
                },
                None => None,
            };
            let dv = scope.dataverse(env)?;
            let pid = dv.table(set, &ctx.cancel).await?.primary_id;
            let filter = and_filters(&[own, company.as_deref()]);
            Ok(dv.count(set, &pid, filter.as_deref(), &ctx.cancel).await?.rows)
        }
        _ => Err(fail(format!(
            "cannot count `{env}:{set}`: `{env}` is not an fno or dataverse environment"
        ))),
    }
}

/// Reads the metadata of every Dataverse table the maps count in a few batched requests per environment
/// (see `DataverseClient::tables`), so that each count does not first read its own table's definition.
pub async fn prefetch_tables(ctx: &StepCtx, maps: &[MapRef], concurrency: usize) -> Res<()> {
    let mut by_env: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in maps {
        for (env, set) in [(&m.source_env, &m.source_set), (&m.target_env, &m.target_set)] {
            if ctx.envs.info.get(env.as_str()).map(|i| i.kind) == Some(EnvKind::Dataverse) {
                by_env.entry(env.as_str()).or_default().push(set.as_str());
            }
        }
    }
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    for (env, sets) in by_env {
        scope
            .dataverse(env)?
            .tables(&sets, concurrency, &ctx.cancel)
            .await?;
    }
    Ok(())
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
            jobs.push((i, j, true, c.clone()));
            jobs.push((i, j, false, c));
        }
    }
    let conc = usize::try_from(ctx.runbook.defaults.concurrency().max(1)).unwrap_or(1);
    // The first Dataverse count reads every table's metadata (batched) and the others wait for it, while the
    // F&O counts go on: the metadata round trip overlaps with them instead of delaying the whole step.
    let tables_read = tokio::sync::OnceCell::new();
    let tables_read = &tables_read;
    let is_dataverse = |env: &str| ctx.envs.info.get(env).map(|i| i.kind) == Some(EnvKind::Dataverse);
    let results: Vec<_> = futures::stream::iter(jobs)
        .map(|(i, j, src, c)| async move {
            let m = &maps[i];
            let env = if src { &m.source_env } else { &m.target_env };
            if is_dataverse(env)
                && let Err(e) = tables_read
                    .get_or_try_init(|| prefetch_tables(ctx, maps, conc))
                    .await
            {
                return (i, j, src, Err(e));
            }
            let n = count_side(ctx, m, src, c.as_deref()).await;
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

/// The F&O environment that runs a map's initial-sync (DWM) DMF projects: its source or target F&O side,
/// else the first F&O environment of the runbook.
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
        .ok_or_else(|| fail("no fno environment runs the map's initial-sync DMF projects"))
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
