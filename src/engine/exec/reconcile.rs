//! `reconcile`: row-level parity. For each map with a `key`, and each of its companies, both sides are read in
//! full (`$select` of the key and the compare fields, the map's `filter`, the company through `dataAreaId` on
//! F&O and the company lookup on Dataverse), a page at a time, into a scratch SQLite database beside the
//! journal ([`RowCompare`]: 0600, never the journal, removed when the step ends); one query per class then finds the
//! keys missing on the target, extra on the target, and present on both with a compared field that differs.
//! Memory holds a page per range being read, a few pages queued for the writer, and the per-class sample,
//! whatever the row count.
//!
//! Pages are parsed straight into (key, compared values' text) rows ([`crate::connectors::parse::keyed_collection`],
//! value maps applied on the way) and stored by a writer of their own (a blocking thread), so reading, parsing and
//! storing overlap: F&O's link chain, which sets the step's pace, never waits for SQLite.
//!
//! Dataverse is read in `ranges` `createdon` ranges at once (the bounds from two one-row reads, split in equal
//! time; the first and last open-ended so no row falls between), F&O a nextLink after another, both sides
//! at the same time. Each page goes
//! into the scratch file with its range's next link in one transaction, and each finished range is journaled
//! (`RowsRangeRead`): a run killed part way is re-run on resume, finds its file (same fingerprint), and reads
//! only what it had not kept.
//!
//! Values compare as text (a JSON string as is, a number or boolean as written, null as empty). An F&O enum
//! field with a value map (`values`) compares through it: its F&O member is replaced by the mapped Dataverse
//! option before the comparison (a member the map lacks stays as `<member> (unmapped)`, a difference). A
//! compared Dataverse column that is a choice, a lookup or a state/status (from the table's attribute
//! metadata) with no value map is *not comparable*: F&O holds a name or code, Dataverse an option number or a
//! GUID, so it is left out of the comparison and a warning names it, rather than every row counting as
//! different. Journaled:
//! one `RowsReconciled` per map and company with the counts and the first `sample` keys of each class, the
//! differing fields of the "different" ones. The step fails when missing + extra + different exceed
//! `max_differences` (0 by default). Maps without a key are skipped with a warning.

use super::maps::{MapRef, dataverse_company_filter, resolve, side_filter};
use super::{Res, StepCtx, fail, log, progress};
use crate::connectors::dataverse::and_filters;
use crate::connectors::fno::company_filter as fno_company_filter;
use crate::connectors::parse::{KeyedField, KeyedRow};
use crate::connectors::rows::{From, Keyed};
use crate::engine::event::{Event, LogLevel};
use crate::journal::scratch::{RangeDef, RangeState, RowCompare, Side};
use crate::runbook::{EnvKind, MapSelection};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the readers hand the scratch file's writer.
enum Write {
    /// One page of one range, with the link of the range's next page.
    Page {
        side: Side,
        range: String,
        next: Option<String>,
        rows: Vec<KeyedRow>,
    },
    /// Answered once every page sent before it is stored.
    Flush(tokio::sync::oneshot::Sender<()>),
}

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
    ranges: u32,
    lake: Option<super::lake_embedded::Engine<'_>>,
) -> Res {
    let maps = resolve(ctx, maps)?;
    // Every map's comparison stays on disk until the step ends: a kill before then resumes from it.
    let mut held: Vec<RowCompare> = Vec::new();
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
                    let (c, scratch) =
                        reconcile_one(ctx, m, company.as_deref(), sample, ranges, Keep::Resumable).await?;
                    held.push(scratch);
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

/// Row-level parity of one map and company, journaled as `RowsReconciled` (also a gate's `level: rows`), with
/// Dataverse read in `ranges` concurrent `createdon` ranges. The scratch database comes back with the counts: the
/// caller keeps it until the whole step is done, so a run killed before then goes on from what it had read.
pub(super) async fn reconcile_one(
    ctx: &StepCtx,
    m: &MapRef,
    company: Option<&str>,
    sample: usize,
    ranges: u32,
    keep: Keep,
) -> Res<(Counts, RowCompare)> {
    let Some(key) = m.spec.key.clone() else {
        return Err(fail(format!("map {} has no key", m.id)));
    };
    let fwd = fno_to_dataverse(ctx, m)?;
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
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (fno, dv) = (scope.fno(fno_env)?, scope.dataverse(dv_env)?);

    let path = ctx.work_dir.join(name);
    // Fields compared through a value map, and fields that cannot be compared as they are. The Dataverse
    // `createdon` bounds the ranges need are read in the same round trip, unless a kept file (a resume) may
    // already hold the plan: then they are read only if it does not.
    let speculate = ranges > 1 && !(matches!(keep, Keep::Resumable) && path.exists());
    let bounds_read = async {
        if speculate {
            dv.created_bounds(dv_set, dv_filter.as_deref(), &ctx.cancel)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    // F&O's token is asked for in the same round trip, so that F&O's first page waits on nothing else. A token
    // that cannot be had is asked for again by the read, which reports it.
    let fno_token = async {
        if let Some(ts) = fno.transport().token_source() {
            let _ = ts.token(&ctx.cancel).await;
        }
    };
    let (coded, read_bounds, ()) = tokio::join!(coded_columns(ctx, &dv, dv_set), bounds_read, fno_token);
    let read_bounds = read_bounds?;
    let mut compared: Vec<usize> = Vec::new();
    let mut not_comparable: Vec<String> = Vec::new();
    for (i, (sf, tf)) in source_fields.iter().zip(&target_fields).enumerate() {
        let dv_field = if fwd { tf } else { sf };
        let what = coded
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(lookup_name(dv_field)));
        match what {
            Some((_, ty)) if !m.spec.values.contains_key(sf) => {
                not_comparable.push(format!("{sf} ↔ {tf} ({ty})"));
            }
            _ => compared.push(i),
        }
    }
    if !not_comparable.is_empty() && company.is_none_or(|c| m.spec.companies.first().is_some_and(|f| f == c))
    {
        log(
            ctx,
            LogLevel::Warn,
            format!(
                "map {}: not comparable without a value map, left out of row parity: {} (add `values` for an enum, or compare the lookup's key column)",
                m.id,
                not_comparable.join(", ")
            ),
        );
    }
    let pick = |v: &[String]| -> Vec<String> { compared.iter().map(|&i| v[i].clone()).collect() };
    let (source_fields, fno_fields, dv_fields) = (pick(&source_fields), pick(&fno_fields), pick(&dv_fields));
    // F&O field → its value map (through the compare's source field).
    let value_maps: Vec<(String, &std::collections::BTreeMap<String, i64>)> = m
        .spec
        .values
        .iter()
        .filter_map(|(sf, vm)| {
            let fno_field = if fwd {
                sf.clone()
            } else {
                m.spec.compare.get(sf)?.clone()
            };
            Some((fno_field, vm))
        })
        .collect();
    let mut fno_select: Vec<&str> = vec![fno_key.as_str()];
    fno_select.extend(fno_fields.iter().map(String::as_str));
    let mut dv_select: Vec<&str> = vec![dv_key.as_str()];
    dv_select.extend(dv_fields.iter().map(String::as_str));
    // Everything that decides what the file holds: a kept file with another fingerprint is started afresh.
    let fingerprint = crate::util::sha256_hex(format!(
        "reconcile/1|{}|{}|{}|{}|{fno_env}:{fno_set}|{}|{}|{dv_env}:{dv_set}|{}|{}|{ranges}|{value_maps:?}",
        ctx.run_id.0,
        ctx.step.id.0,
        m.id,
        company.unwrap_or(""),
        fno_filter.as_deref().unwrap_or(""),
        fno_select.join(","),
        dv_filter.as_deref().unwrap_or(""),
        dv_select.join(","),
    ));
    let (scratch, kept) = match keep {
        Keep::Resumable => RowCompare::open(&path, &fingerprint),
        Keep::Fresh => RowCompare::create(&path).map(|c| (c, false)),
    }
    .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    let (fno_side, dv_side) = if fwd {
        (Side::Source, Side::Target)
    } else {
        (Side::Target, Side::Source)
    };

    // The plan: F&O whole; Dataverse in `createdon` ranges read at once. A kept file keeps its plan.
    let mut plan = scratch
        .ranges()
        .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    if !plan.iter().any(|r| r.def.side == dv_side) {
        let bounds = match read_bounds {
            Some(b) => b,
            None if ranges > 1 => {
                dv.created_bounds(dv_set, dv_filter.as_deref(), &ctx.cancel)
                    .await?
            }
            None => None,
        };
        let mut defs = vec![RangeDef {
            side: fno_side,
            id: "all".into(),
            filter: None,
        }];
        defs.extend(
            created_ranges(bounds.as_ref(), ranges)
                .into_iter()
                .map(|filter| RangeDef {
                    side: dv_side,
                    id: filter.clone().unwrap_or_else(|| "all".into()),
                    filter,
                }),
        );
        plan = scratch
            .plan(&defs)
            .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    }
    let where_ = format!("{}{}", m.id, company.map(|c| format!("@{c}")).unwrap_or_default());
    if kept {
        let side_of = |s: Side| if s == fno_side { "F&O" } else { "Dataverse" };
        let done: Vec<String> = plan
            .iter()
            .filter(|r| r.done || r.cursor.is_some())
            .map(|r| {
                format!(
                    "{} {} {} ({} rows)",
                    side_of(r.def.side),
                    r.def.id,
                    if r.done { "read" } else { "part read" },
                    r.rows
                )
            })
            .collect();
        log(
            ctx,
            LogLevel::Info,
            format!(
                "{where_}: resuming the read a stopped run left ({} of {} ranges read): {}",
                plan.iter().filter(|r| r.done).count(),
                plan.len(),
                if done.is_empty() {
                    "nothing kept".to_owned()
                } else {
                    done.join("; ")
                }
            ),
        );
    }

    // A range the killed run had wholly kept but not yet journaled (killed in between): journaled now.
    if kept {
        let unjournaled: Vec<&RangeState> = {
            let st = ctx.state.read();
            plan.iter()
                .filter(|r| r.done)
                .filter(|r| {
                    !st.ranges_read.contains(&(
                        ctx.step.id.0.to_string(),
                        m.id.clone(),
                        company.map(str::to_owned),
                        r.def.side.name().to_owned(),
                        r.def.id.clone(),
                    ))
                })
                .collect()
        };
        for r in unjournaled {
            ctx.emit
                .durable(Event::RowsRangeRead {
                    step: ctx.step.id.clone(),
                    map: m.id.clone(),
                    company: company.map(str::to_owned),
                    side: r.def.side.name().to_owned(),
                    range: r.def.id.clone(),
                    rows: r.rows,
                    resumed: true,
                })
                .await?;
        }
    }

    // Progress as pages arrive: rows read on each side so far (journaled batched, shown in the console).
    let kept_rows = |side: Side| {
        plan.iter()
            .filter(|r| r.def.side == side)
            .map(|r| r.rows)
            .sum::<u64>()
    };
    let fno_read = AtomicU64::new(kept_rows(fno_side));
    let dv_read = AtomicU64::new(kept_rows(dv_side));
    let note = |side: &str, n: u64| {
        progress(ctx, n, None, Some(format!("{where_}: {n} rows read ({side})")));
    };
    // The F&O fields go through the map's value maps as they are read; Dataverse's are read as they are.
    let fno_keyed: Vec<KeyedField<'_>> = fno_fields
        .iter()
        .map(|f| KeyedField {
            name: f,
            values: value_maps.iter().find(|(vf, _)| vf == f).map(|(_, vm)| *vm),
        })
        .collect();
    let dv_keyed: Vec<KeyedField<'_>> = dv_fields
        .iter()
        .map(|f| KeyedField {
            name: f,
            values: None,
        })
        .collect();
    // Pages are stored by a writer of their own, so that reading (and parsing) both sides and storing them
    // overlap: a few pages queue at most, and each is kept with its range's next link in one transaction.
    let scratch = std::sync::Arc::new(scratch);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Write>(4);
    let writer = {
        let scratch = std::sync::Arc::clone(&scratch);
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            while let Some(w) = rx.blocking_recv() {
                match w {
                    Write::Page {
                        side,
                        range,
                        next,
                        rows,
                    } => scratch.insert_keyed_in_range(side, &range, next.as_deref(), rows)?,
                    Write::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
            Ok(())
        })
    };
    let read_range = |r: RangeState| {
        let (fno, dv, tx) = (&fno, &dv, &tx);
        let (fno_key, dv_key, fno_keyed, dv_keyed) = (&fno_key, &dv_key, &fno_keyed, &dv_keyed);
        let (fno_filter, dv_filter) = (&fno_filter, &dv_filter);
        let (fno_read, dv_read, note) = (&fno_read, &dv_read, &note);
        async move {
            let resumed = r.cursor.is_some();
            let from = r.cursor.as_deref().map_or(From::Start, From::Link);
            let side = r.def.side;
            let is_fno = side == fno_side;
            let (counter, label) = if is_fno {
                (fno_read, "F&O")
            } else {
                (dv_read, "Dataverse")
            };
            let on_page = |rows: Vec<KeyedRow>, next: Option<String>| {
                let len = rows.len() as u64;
                note(label, counter.fetch_add(len, Ordering::Relaxed) + len);
                let page = Write::Page {
                    side,
                    range: r.def.id.clone(),
                    next,
                    rows,
                };
                let tx = tx.clone();
                async move {
                    tx.send(page)
                        .await
                        .map_err(|_| "the scratch file's writer stopped".to_owned())
                }
            };
            let rows = if is_fno {
                fno.read_keyed(
                    fno_set,
                    fno_filter.as_deref(),
                    Keyed {
                        key: fno_key,
                        fields: fno_keyed,
                    },
                    from,
                    &ctx.cancel,
                    on_page,
                )
                .await?
            } else {
                let filter = and_filters(&[dv_filter.as_deref(), r.def.filter.as_deref()]);
                dv.read_keyed(
                    dv_set,
                    filter.as_deref(),
                    Keyed {
                        key: dv_key,
                        fields: dv_keyed,
                    },
                    from,
                    &ctx.cancel,
                    on_page,
                )
                .await?
            };
            // The range is journaled as read once its last page is stored.
            let (done, stored) = tokio::sync::oneshot::channel();
            let flushed = tx.send(Write::Flush(done)).await.is_ok() && stored.await.is_ok();
            if !flushed {
                return Err(fail(format!(
                    "reconcile {}: the scratch file's writer stopped",
                    m.id
                )));
            }
            ctx.emit
                .durable(Event::RowsRangeRead {
                    step: ctx.step.id.clone(),
                    map: m.id.clone(),
                    company: company.map(str::to_owned),
                    side: side.name().to_owned(),
                    range: r.def.id.clone(),
                    rows: r.rows + rows,
                    resumed,
                })
                .await?;
            Res::Ok(())
        }
    };
    let pending = |side: Side| -> Vec<RangeState> {
        plan.iter()
            .filter(|r| r.def.side == side && !r.done)
            .cloned()
            .collect()
    };
    // Both sides at once: F&O one link after another, every Dataverse range at the same time.
    let fno_chain = async {
        for r in pending(fno_side) {
            read_range(r).await?;
        }
        Res::Ok(())
    };
    let dv_ranges = futures::future::try_join_all(pending(dv_side).into_iter().map(read_range));
    let read = futures::try_join!(fno_chain, dv_ranges);
    drop(tx);
    // The writer's own error says more than a reader's "the writer stopped".
    match writer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(format!("reconcile {}: storing the rows: {e}", m.id))),
        Err(e) => {
            return Err(fail(format!(
                "reconcile {}: the scratch file's writer failed: {e}",
                m.id
            )));
        }
    }
    read?;
    let scratch = std::sync::Arc::try_unwrap(scratch)
        .map_err(|_| fail(format!("reconcile {}: the scratch file is still in use", m.id)))?;
    let read = scratch
        .ranges()
        .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    let rows_of = |side: Side| {
        read.iter()
            .filter(|r| r.def.side == side)
            .map(|r| r.rows)
            .sum::<u64>()
    };
    let (source_rows, target_rows) = (rows_of(Side::Source), rows_of(Side::Target));

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
    Ok((counts, scratch))
}

/// Whether the map runs F&O → Dataverse (`true`) or Dataverse → F&O (`false`): row-level parity (on any
/// engine) needs one side of each.
pub(super) fn fno_to_dataverse(ctx: &StepCtx, m: &MapRef) -> Res<bool> {
    let kind = |e: &str| ctx.envs.info.get(e).map(|i| i.kind);
    match (kind(&m.source_env), kind(&m.target_env)) {
        (Some(EnvKind::Fno), Some(EnvKind::Dataverse)) => Ok(true),
        (Some(EnvKind::Dataverse), Some(EnvKind::Fno)) => Ok(false),
        _ => Err(fail(format!(
            "map {}: row-level parity needs an fno and a dataverse side",
            m.id
        ))),
    }
}

/// Whether a comparison may go on from a file a killed run left (a `reconcile` step), or always reads afresh
/// (a gate's `level: rows` check: each check is a new look).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Resumable,
    Fresh,
}

/// The `createdon` filters that split `[oldest, newest]` into `n` ranges of equal time: the first open below,
/// the last open above (rows created while the read runs land in it), each boundary to the second. One range
/// (no filter) when there is nothing to split.
fn created_ranges(bounds: Option<&(String, String)>, n: u32) -> Vec<Option<String>> {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc))
    };
    let Some((Some(lo), Some(hi))) = bounds.map(|(a, b)| (parse(a), parse(b))) else {
        return vec![None];
    };
    let span = (hi - lo).num_seconds();
    if n <= 1 || span < i64::from(n) {
        return vec![None];
    }
    let mut cuts: Vec<String> = (1..i64::from(n))
        .map(|i| {
            (lo + chrono::Duration::seconds(span * i / i64::from(n)))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .collect();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    out.push(Some(format!("createdon lt {}", cuts[0])));
    for w in cuts.windows(2) {
        out.push(Some(format!("createdon ge {} and createdon lt {}", w[0], w[1])));
    }
    out.push(Some(format!("createdon ge {}", cuts[cuts.len() - 1])));
    out
}

/// A Dataverse field as the runbook may write it: `_x_value` is the lookup `x`.
fn lookup_name(field: &str) -> &str {
    field
        .strip_prefix('_')
        .and_then(|f| f.strip_suffix("_value"))
        .unwrap_or(field)
}

/// The table's columns whose values are codes (choice, lookup, state, status), with their type; empty when
/// the attribute metadata cannot be read (a warning says so).
async fn coded_columns(
    ctx: &StepCtx,
    dv: &crate::connectors::dataverse::DataverseClient,
    set: &str,
) -> Vec<(String, String)> {
    match crate::connectors::metadata::dataverse_table(dv.transport(), set, &ctx.cancel).await {
        Ok(Some(t)) => t
            .attributes
            .into_iter()
            .filter(|a| {
                matches!(
                    a.attribute_type.as_str(),
                    "Picklist" | "Lookup" | "Customer" | "Owner" | "State" | "Status"
                )
            })
            .map(|a| (a.logical_name, a.attribute_type))
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            log(
                ctx,
                LogLevel::Warn,
                format!(
                    "{set}: the attribute metadata could not be read ({e}): choice and lookup columns are compared as they are"
                ),
            );
            Vec::new()
        }
    }
}
