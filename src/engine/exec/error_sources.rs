//! The dual-write errors of a map, read from the sources that exist (see `connectors::error_sources`): each
//! source's figure is journaled as `ErrorCounts { source, unavailable }` and its entries not seen before as
//! `ErrorEntries { source }`.
//!
//! - Which sources: the map's `error_sources` when the runbook names them, else those of the dual-write
//!   mode of the map's `dualwrite` environment: operator mode `dataverse.asyncoperations`,
//!   `dataverse.plugintracelogs`, and `dmf.execution_errors` when the map has an
//!   `initial_sync_execution_id`; gateway mode adds `gateway.initial_sync`.
//! - The watermark: Dataverse rows count when `createdon` ≥ the run's start, in the environment's clock
//!   (the run's wall-clock start moved back by the run's elapsed time at the clock's scale; the same instant
//!   on a real tenant). Failed system jobs are never resolved, so "since the run started" is the only honest
//!   window. A DMF execution's errors all count (the execution is the map's initial sync).
//! - A source that is not available is never zero: [`MapErrors::available_total`] is `None` when no source
//!   of the map could be read, and [`settle_blind`] asks the operator what to do about such maps.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::maps::{MapRef, error_env};
use super::{Res, StepCtx, fail, log};
use crate::connectors::ConnectorError;
use crate::connectors::error_sources::{self as src, SourceId, SourceReport};
use crate::engine::ctx::Ask;
use crate::engine::event::{DecisionKind, ErrorEntry, Event, LogLevel, OperatorAction};
use crate::runbook::{DualWriteMode, EnvKind};

/// What every source of one map said.
#[derive(Debug, Clone)]
pub struct MapErrors {
    pub map: String,
    pub reports: Vec<(SourceId, SourceReport)>,
}

impl MapErrors {
    /// The sum over the available sources; `None` when none is available. The two initial-sync sources (the
    /// DWM project's DMF errors and the gateway's initial-sync details) describe the same failed rows: they
    /// count once, as the larger of the two.
    pub fn available_total(&self) -> Option<u64> {
        self.available_total_of(|_| true)
    }

    /// [`MapErrors::available_total`] over the sources `keep` lets through.
    pub fn available_total_of(&self, keep: impl Fn(SourceId) -> bool) -> Option<u64> {
        let mut out = None;
        let mut initial: Option<u64> = None;
        for (s, r) in &self.reports {
            if let (true, Some(n)) = (keep(*s), r.total()) {
                if matches!(s, SourceId::DmfExecutionErrors | SourceId::GatewayInitialSync) {
                    initial = Some(initial.map_or(n, |m| m.max(n)));
                    out.get_or_insert(0);
                } else {
                    *out.get_or_insert(0) += n;
                }
            }
        }
        out.map(|o: u64| o + initial.unwrap_or(0))
    }

    /// `<source>: <reason>` for every unavailable source.
    pub fn unavailable(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter_map(|(s, r)| match r {
                SourceReport::Unavailable { reason } => Some(format!("{}: {reason}", s.name())),
                SourceReport::Available { .. } => None,
            })
            .collect()
    }

    /// `customers: 2 (dataverse.asyncoperations), not available (HTTP 403) (dataverse.plugintracelogs)`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .reports
            .iter()
            .map(|(s, r)| match r {
                SourceReport::Available { total, .. } => format!("{total} ({})", s.name()),
                SourceReport::Unavailable { reason } => {
                    format!("not available ({reason}) ({})", s.name())
                }
            })
            .collect();
        format!("{}: {}", self.map, parts.join(", "))
    }
}

/// The `dualwrite` environment's mode for a map (operator when the runbook has no `dualwrite` environment).
fn mode_of(ctx: &StepCtx, m: &MapRef) -> DualWriteMode {
    let dws: Vec<_> = ctx
        .envs
        .info
        .values()
        .filter(|i| i.kind == EnvKind::Dualwrite)
        .collect();
    dws.iter()
        .find(|i| i.link.iter().any(|l| *l == m.source_env || *l == m.target_env))
        .or_else(|| dws.first())
        .map_or(DualWriteMode::Operator, |i| i.mode)
}

/// The gateway-mode dual-write environment linked to the map's sides.
fn gateway_env(ctx: &StepCtx, m: &MapRef) -> Option<String> {
    let dws: Vec<(&String, &crate::engine::envs::EnvInfo)> = ctx
        .envs
        .info
        .iter()
        .filter(|(_, i)| i.kind == EnvKind::Dualwrite && i.mode == DualWriteMode::Gateway)
        .collect();
    dws.iter()
        .find(|(_, i)| i.link.iter().any(|l| *l == m.source_env || *l == m.target_env))
        .or_else(|| dws.first())
        .map(|(n, _)| (*n).clone())
}

/// (F&O entity set, Dataverse entity set) of a map: the gateway's left and right entities.
fn fno_and_dataverse_sets(ctx: &StepCtx, m: &MapRef) -> (String, String) {
    let is_fno = ctx
        .envs
        .info
        .get(&m.source_env)
        .is_some_and(|i| i.kind == EnvKind::Fno);
    if is_fno {
        (m.source_set.clone(), m.target_set.clone())
    } else {
        (m.target_set.clone(), m.source_set.clone())
    }
}

/// The sources read for a map (see the module docs).
pub fn sources_for(ctx: &StepCtx, m: &MapRef) -> Vec<SourceId> {
    if let Some(named) = &m.spec.error_sources {
        return named.iter().filter_map(|n| SourceId::parse(n)).collect();
    }
    let mut out = vec![SourceId::AsyncOperations, SourceId::PluginTraceLogs];
    if m.spec.initial_sync_execution_id.is_some() {
        out.push(SourceId::DmfExecutionErrors);
    }
    if mode_of(ctx, m) == DualWriteMode::Gateway {
        out.push(SourceId::GatewayInitialSync);
    }
    out
}

/// The Dataverse side of a map (environment, entity set): its target when that is Dataverse, else its source.
fn dataverse_side(ctx: &StepCtx, m: &MapRef) -> Option<(String, String)> {
    let is_dv = |e: &str| ctx.envs.info.get(e).is_some_and(|i| i.kind == EnvKind::Dataverse);
    if is_dv(&m.target_env) {
        Some((m.target_env.clone(), m.target_set.clone()))
    } else if is_dv(&m.source_env) {
        Some((m.source_env.clone(), m.source_set.clone()))
    } else {
        None
    }
}

/// The run's start in the environment's clock (see the module docs).
pub async fn run_watermark(ctx: &StepCtx) -> DateTime<Utc> {
    let now = ctx.envs.env_now(&ctx.cancel).await;
    let started = ctx.state.read().header.started_at;
    let Some(started) = started else { return now };
    let real = (Utc::now() - started).to_std().unwrap_or_default();
    let env = chrono::Duration::from_std(ctx.clock.to_env(real)).unwrap_or_default();
    now - env
}

/// Reads one source for one map.
pub async fn read(ctx: &StepCtx, m: &MapRef, s: SourceId, since: DateTime<Utc>) -> Res<SourceReport> {
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    Ok(match s {
        SourceId::AsyncOperations | SourceId::PluginTraceLogs => {
            let Some((env, set)) = dataverse_side(ctx, m) else {
                return Ok(SourceReport::unavailable("the map has no Dataverse side"));
            };
            let dv = scope.dataverse(&env)?;
            let logical = match dv.table(&set, &ctx.cancel).await {
                Ok(t) => t.logical_name,
                Err(e @ ConnectorError::NotFound { .. }) => {
                    return Ok(SourceReport::unavailable(format!("no table definition: {e}")));
                }
                Err(e) => return Err(e.into()),
            };
            if s == SourceId::AsyncOperations {
                src::async_operations(&dv, &logical, since, &ctx.cancel).await?
            } else {
                src::plugin_trace_logs(&dv, &logical, since, &ctx.cancel).await?
            }
        }
        SourceId::DmfExecutionErrors => {
            let Some(id) = &m.spec.initial_sync_execution_id else {
                return Ok(SourceReport::unavailable(
                    "the runbook gives no initial_sync_execution_id for this map",
                ));
            };
            let env = error_env(ctx, m)?;
            let dmf = scope.dmf(&env)?;
            src::dmf_execution_errors(&dmf, id, &ctx.cancel).await?
        }
        SourceId::GatewayInitialSync => {
            let Some(env) = gateway_env(ctx, m) else {
                return Ok(SourceReport::unavailable(
                    "no dual-write environment in gateway mode",
                ));
            };
            let gw = scope.gateway(&env)?;
            let (left, right) = fno_and_dataverse_sets(ctx, m);
            src::gateway_initial_sync(&gw, &left, &right, &ctx.cancel).await?
        }
    })
}

/// Reads every source of one map and journals what each said.
pub async fn map_errors(ctx: &StepCtx, m: &MapRef, since: DateTime<Utc>) -> Res<MapErrors> {
    let seen: HashSet<String> = {
        let st = ctx.state.read();
        st.errors
            .newest
            .iter()
            .filter(|e| e.map == m.id)
            .map(|e| e.id.clone())
            .collect()
    };
    let mut reports = Vec::new();
    for s in sources_for(ctx, m) {
        let r = read(ctx, m, s, since).await?;
        let (by_category, unavailable, present) = match &r {
            SourceReport::Available {
                by_category,
                entries,
                total,
            } => {
                let new: Vec<ErrorEntry> = entries
                    .iter()
                    .filter(|e| !seen.contains(&e.id))
                    .map(|e| ErrorEntry {
                        id: e.id.clone(),
                        at: DateTime::parse_from_rfc3339(&e.at)
                            .map_or_else(|_| Utc::now(), |d| d.with_timezone(&Utc)),
                        map: m.id.clone(),
                        key: e.key.clone(),
                        category: e.category.clone(),
                        message: e.message.clone(),
                    })
                    .collect();
                if !new.is_empty() {
                    ctx.emit
                        .durable(Event::ErrorEntries {
                            map: m.id.clone(),
                            entries: new,
                            source: Some(s.name().to_owned()),
                        })
                        .await?;
                }
                // Every entry the source holds, when the read listed them all: what is gone since was resolved.
                let complete = u64::try_from(entries.len()).unwrap_or(u64::MAX) >= *total;
                let present = complete.then(|| entries.iter().map(|e| e.id.clone()).collect());
                (by_category.clone(), None, present)
            }
            SourceReport::Unavailable { reason } => (BTreeMap::new(), Some(reason.clone()), None),
        };
        ctx.emit
            .durable(Event::ErrorCounts {
                map: m.id.clone(),
                by_category,
                source: Some(s.name().to_owned()),
                unavailable,
                present,
            })
            .await?;
        reports.push((s, r));
    }
    Ok(MapErrors {
        map: m.id.clone(),
        reports,
    })
}

/// Every map's errors since the run started.
pub async fn errors_of(ctx: &StepCtx, maps: &[MapRef]) -> Res<Vec<MapErrors>> {
    errors_since(ctx, maps, None).await
}

/// Every map's errors since the run started, or over the last `lookback` (environment time: an
/// `error_queue`'s `since`, e.g. a daily hypercare sweep over the last day).
pub async fn errors_since(
    ctx: &StepCtx,
    maps: &[MapRef],
    lookback: Option<std::time::Duration>,
) -> Res<Vec<MapErrors>> {
    let since = match lookback {
        Some(d) => ctx.envs.env_now(&ctx.cancel).await - chrono::Duration::from_std(d).unwrap_or_default(),
        None => run_watermark(ctx).await,
    };
    let mut out = Vec::with_capacity(maps.len());
    // One line per call: which sources could not be read for which maps (the figures use the others).
    let mut blind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in maps {
        let e = map_errors(ctx, m, since).await?;
        if e.available_total().is_some() {
            for u in e.unavailable() {
                blind.entry(u).or_default().push(e.map.clone());
            }
        }
        out.push(e);
    }
    if !blind.is_empty() {
        let parts: Vec<String> = blind
            .iter()
            .map(|(u, maps)| format!("{u} (for {})", maps.join(", ")))
            .collect();
        log(
            ctx,
            LogLevel::Warn,
            format!(
                "errors decided on the sources that could be read; not available: {}",
                parts.join("; ")
            ),
        );
    }
    Ok(out)
}

/// Reads the maps' errors; when no source of some map is available, asks the operator (a `gate_failure`
/// question: waive to decide without those maps' errors, retry to read again, abort) instead of counting
/// them as zero or failing quietly. Headless, the question is refused like any gate's and the step fails.
/// Returns every map's errors and the maps the operator waived.
pub async fn settle_blind(
    ctx: &StepCtx,
    maps: &[MapRef],
    what: &str,
    lookback: Option<std::time::Duration>,
) -> Res<(Vec<MapErrors>, Vec<String>)> {
    loop {
        let errs = errors_since(ctx, maps, lookback).await?;
        let blind: Vec<&MapErrors> = errs.iter().filter(|e| e.available_total().is_none()).collect();
        if blind.is_empty() {
            return Ok((errs, Vec::new()));
        }
        let lines: Vec<String> = blind.iter().map(|e| e.describe()).collect();
        let prompt = format!(
            "{what}: no error source could be read for {}, so their errors are unknown (not zero). \
             Waive with a reason to decide without them, retry to read again, or abort.",
            lines.join("; ")
        );
        let d = ctx
            .operator
            .ask(Ask {
                step: Some(ctx.step.id.clone()),
                kind: DecisionKind::GateFailure,
                prompt,
                checklist: Vec::new(),
                deadline: None,
            })
            .await?;
        match d.action {
            OperatorAction::Retry => {}
            OperatorAction::Waive => {
                let waived: Vec<String> = blind.iter().map(|e| e.map.clone()).collect();
                log(
                    ctx,
                    LogLevel::Warn,
                    format!(
                        "{} waived the unknown errors of {}: {}",
                        d.operator,
                        waived.join(", "),
                        d.reason.clone().unwrap_or_default()
                    ),
                );
                return Ok((errs, waived));
            }
            other => {
                return Err(fail(format!(
                    "{what}: errors not available for {}; {} answered {other:?}",
                    lines.join("; "),
                    d.operator
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_names_the_same_sources_as_the_connectors() {
        let names: Vec<&str> = SourceId::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, crate::runbook::ERROR_SOURCES.to_vec());
    }

    #[test]
    fn a_map_with_no_available_source_has_no_total() {
        let e = MapErrors {
            map: "m".into(),
            reports: vec![(SourceId::PluginTraceLogs, SourceReport::unavailable("HTTP 403"))],
        };
        assert_eq!(e.available_total(), None);
        assert_eq!(
            e.describe(),
            "m: not available (HTTP 403) (dataverse.plugintracelogs)"
        );
    }
}
