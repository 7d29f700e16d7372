//! `reconcile`: row-level parity. For each map with a `key`, and each of its companies, both sides are read in
//! full (`$select` of the key and the compare fields, the map's `filter`, the company through `dataAreaId` on
//! F&O and the company lookup on Dataverse), a page at a time, into a scratch SQLite database beside the
//! journal ([`RowCompare`]: 0600, never the journal, removed afterwards); one query per class then finds the keys missing on
//! the target, extra on the target, and present on both with a compared field that differs. Memory holds one
//! page and the per-class sample, whatever the row count.
//!
//! Values compare as text (a JSON string as is, a number or boolean as written, null as empty). Journaled:
//! one `RowsReconciled` per map and company with the counts and the first `sample` keys of each class, the
//! differing fields of the "different" ones. The step fails when missing + extra + different exceed
//! `max_differences` (0 by default). Maps without a key are skipped with a warning.

use super::maps::{MapRef, dataverse_company_filter, resolve, side_filter};
use super::{Res, StepCtx, fail, log, progress};
use crate::connectors::dataverse::and_filters;
use crate::connectors::fno::company_filter as fno_company_filter;
use crate::engine::event::{Event, LogLevel};
use crate::journal::scratch::{RowCompare, Side};
use crate::runbook::{EnvKind, MapSelection};

/// The counts of one map and company.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub source_rows: u64,
    pub target_rows: u64,
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
}

impl Counts {
    /// Keys that do not match, whatever the class.
    pub fn not_matching(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}

pub async fn run(
    ctx: &StepCtx,
    maps: &MapSelection,
    sample: usize,
    max: u64,
    lake: Option<super::lake_embedded::Engine<'_>>,
) -> Res {
    let maps = resolve(ctx, maps)?;
    let mut bad = 0u64;
    let mut worst: Vec<String> = Vec::new();
    let mut totals = Counts::default();
    for m in &maps {
        if m.spec.key.is_none() {
            log(
                ctx,
                LogLevel::Warn,
                format!("map {} has no key: not reconciled row by row", m.id),
            );
            continue;
        }
        let per_company: Vec<(Option<String>, Counts)> = match &lake {
            Some(super::lake_embedded::Engine::Databricks(db)) => {
                super::lake_reconcile::map(ctx, m, db, sample).await?
            }
            Some(super::lake_embedded::Engine::Export(env)) => {
                super::lake_embedded::map(ctx, m, env, sample).await?
            }
            None => {
                let mut v = Vec::new();
                for company in m.companies() {
                    let c = reconcile_one(ctx, m, company.as_deref(), sample).await?;
                    v.push((company, c));
                }
                v
            }
        };
        for (company, c) in per_company {
            let n = c.not_matching();
            bad += n;
            totals.source_rows += c.source_rows;
            totals.target_rows += c.target_rows;
            totals.matching += c.matching;
            totals.missing += c.missing;
            totals.extra += c.extra;
            totals.different += c.different;
            if n > 0 {
                worst.push(format!(
                    "{}{}: {} missing, {} extra, {} different",
                    m.id,
                    company.as_deref().map(|c| format!("@{c}")).unwrap_or_default(),
                    c.missing,
                    c.extra,
                    c.different
                ));
            }
        }
    }
    let outputs = [
        ("source_rows", totals.source_rows),
        ("target_rows", totals.target_rows),
        ("matching", totals.matching),
        ("missing", totals.missing),
        ("extra", totals.extra),
        ("different", totals.different),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_string()))
    .collect();
    if bad > max {
        return Err(fail(format!(
            "{bad} rows do not match (max {max}): {}",
            worst.join("; ")
        )));
    }
    Ok(outputs)
}

/// Row-level parity of one map and company, journaled as `RowsReconciled` (also a gate's `level: rows`).
pub(super) async fn reconcile_one(
    ctx: &StepCtx,
    m: &MapRef,
    company: Option<&str>,
    sample: usize,
) -> Res<Counts> {
    let Some(key) = m.spec.key.clone() else {
        return Ok(Counts::default());
    };
    let kind = |e: &str| ctx.envs.info.get(e).map(|i| i.kind);
    let fwd = match (kind(&m.source_env), kind(&m.target_env)) {
        (Some(EnvKind::Fno), Some(EnvKind::Dataverse)) => true,
        (Some(EnvKind::Dataverse), Some(EnvKind::Fno)) => false,
        _ => {
            return Err(fail(format!(
                "map {}: row-level parity needs an fno and a dataverse side",
                m.id
            )));
        }
    };
    // (F&O field, Dataverse field) pairs, source first in the journal's words.
    let source_fields: Vec<String> = m.spec.compare.keys().cloned().collect();
    let target_fields: Vec<String> = m.spec.compare.values().cloned().collect();
    let (fno_env, fno_set, fno_key, fno_fields, dv_env, dv_set, dv_key, dv_fields) = if fwd {
        (
            &m.source_env,
            &m.source_set,
            key.source.clone(),
            source_fields.clone(),
            &m.target_env,
            &m.target_set,
            key.target.clone(),
            target_fields.clone(),
        )
    } else {
        (
            &m.target_env,
            &m.target_set,
            key.target.clone(),
            target_fields.clone(),
            &m.source_env,
            &m.source_set,
            key.source.clone(),
            source_fields.clone(),
        )
    };
    let fno_filter = {
        let parts = [
            company.map(fno_company_filter),
            side_filter(m, fwd).map(|f| format!("({f})")),
        ];
        let joined: Vec<String> = parts.into_iter().flatten().collect();
        (!joined.is_empty()).then(|| joined.join(" and "))
    };
    let dv_company = match company {
        Some(c) => match dataverse_company_filter(ctx, dv_env, m, c).await? {
            Some(f) => Some(f),
            // No cdm_companies row for the company: no Dataverse row can be in it.
            None => Some("false".to_owned()),
        },
        None => None,
    };
    let dv_filter = and_filters(&[dv_company.as_deref(), side_filter(m, !fwd)]);

    let name = format!(
        ".{}-{}-{}{}.reconcile.sqlite",
        ctx.run_id.0,
        ctx.step.id.0.replace(['/', ':'], "_"),
        m.id,
        company.map(|c| format!("-{c}")).unwrap_or_default()
    );
    let scratch =
        RowCompare::create(&ctx.work_dir.join(name)).map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (fno, dv) = (scope.fno(fno_env)?, scope.dataverse(dv_env)?);
    let (fno_side, dv_side) = if fwd {
        (Side::Source, Side::Target)
    } else {
        (Side::Target, Side::Source)
    };

    let mut fno_select: Vec<&str> = vec![fno_key.as_str()];
    fno_select.extend(fno_fields.iter().map(String::as_str));
    // Progress as pages arrive: rows read on each side so far (journaled batched, shown in the console).
    let where_ = format!("{}{}", m.id, company.map(|c| format!("@{c}")).unwrap_or_default());
    let read_so_far = std::sync::atomic::AtomicU64::new(0);
    let note = |side: &str, n: u64| {
        progress(ctx, n, None, Some(format!("{where_}: {n} rows read ({side})")));
    };
    let mut on_fno = |page: crate::connectors::rows::Page| {
        let n = read_so_far.fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed)
            + page.len() as u64;
        scratch.insert(fno_side, &fno_key, &fno_fields, page)?;
        note("F&O", n);
        Ok(())
    };
    let fno_rows = fno
        .read_pages(
            fno_set,
            fno_filter.as_deref(),
            &fno_select,
            &ctx.cancel,
            &mut on_fno,
        )
        .await?;
    read_so_far.store(0, std::sync::atomic::Ordering::Relaxed);
    let mut dv_select: Vec<&str> = vec![dv_key.as_str()];
    dv_select.extend(dv_fields.iter().map(String::as_str));
    let mut on_dv = |page: crate::connectors::rows::Page| {
        let n = read_so_far.fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed)
            + page.len() as u64;
        scratch.insert(dv_side, &dv_key, &dv_fields, page)?;
        note("Dataverse", n);
        Ok(())
    };
    let dv_rows = dv
        .read_pages(dv_set, dv_filter.as_deref(), &dv_select, &ctx.cancel, &mut on_dv)
        .await?;
    let (source_rows, target_rows) = if fwd {
        (fno_rows, dv_rows)
    } else {
        (dv_rows, fno_rows)
    };

    let (counts, diffs) = scratch
        .classify(&source_fields, sample)
        .map_err(|e| fail(format!("reconcile {}: the comparison failed: {e}", m.id)))?;
    let counts = Counts {
        source_rows,
        target_rows,
        matching: counts.matching,
        missing: counts.missing,
        extra: counts.extra,
        different: counts.different,
    };
    ctx.emit
        .durable(Event::RowsReconciled {
            step: ctx.step.id.clone(),
            map: m.id.clone(),
            company: company.map(str::to_owned),
            source_rows,
            target_rows,
            matching: counts.matching,
            missing: counts.missing,
            extra: counts.extra,
            different: counts.different,
            sample: diffs,
            scratch_bytes: scratch.bytes(),
        })
        .await?;
    Ok(counts)
}
