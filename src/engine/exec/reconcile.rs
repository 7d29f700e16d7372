//! `reconcile`: row-level parity. For each map with a `key`, and each of its companies, both sides are read in
//! full (`$select` of the key and the compare fields, the map's `filter`, the company through `dataAreaId` on
//! F&O and the company lookup on Dataverse), a page at a time, into a scratch SQLite database beside the
//! journal (0600, never the journal, removed afterwards); one query per class then finds the keys missing on
//! the target, extra on the target, and present on both with a compared field that differs. Memory holds one
//! page and the per-class sample, whatever the row count.
//!
//! Values compare as text (a JSON string as is, a number or boolean as written, null as empty). Journaled:
//! one `RowsReconciled` per map and company with the counts and the first `sample` keys of each class, the
//! differing fields of the "different" ones. The step fails when missing + extra + different exceed
//! `max_differences` (0 by default). Maps without a key are skipped with a warning.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::maps::{MapRef, dataverse_company_filter, resolve, side_filter};
use super::{Res, StepCtx, fail, log};
use crate::connectors::dataverse::and_filters;
use crate::connectors::fno::company_filter as fno_company_filter;
use crate::engine::event::{Event, FieldDifference, LogLevel, RowClass, RowDifference};
use crate::runbook::{EnvKind, MapSelection};

/// The counts of one map and company.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    source_rows: u64,
    target_rows: u64,
    matching: u64,
    missing: u64,
    extra: u64,
    different: u64,
}

pub async fn run(ctx: &StepCtx, maps: &MapSelection, sample: usize, max: u64) -> Res {
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
        for company in m.companies() {
            let c = reconcile_one(ctx, m, company.as_deref(), sample).await?;
            let n = c.missing + c.extra + c.different;
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

/// The scratch database of one comparison: created 0600 without following links, removed on drop.
struct Scratch {
    path: PathBuf,
    /// Locked per page (the page callbacks run inside the step's future, which must be `Send`).
    conn: std::sync::Mutex<Connection>,
}

impl Scratch {
    fn create(ctx: &StepCtx, m: &MapRef, company: Option<&str>) -> Res<Self> {
        let name = format!(
            ".{}-{}-{}{}.reconcile.sqlite",
            ctx.run_id.0,
            ctx.step.id.0.replace(['/', ':'], "_"),
            m.id,
            company.map(|c| format!("-{c}")).unwrap_or_default()
        );
        let path = ctx.work_dir.join(name);
        let _ = std::fs::remove_file(&path);
        crate::journal::open_private(&path, false)
            .map_err(|e| fail(format!("reconcile scratch file {}: {e}", path.display())))?;
        let conn = Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
                     CREATE TABLE src (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;
                     CREATE TABLE tgt (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;",
                )?;
                Ok(c)
            })
            .map_err(|e| fail(format!("reconcile scratch database {}: {e}", path.display())))?;
        Ok(Self {
            path,
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A value as compared: a string as is, null as empty, anything else as JSON writes it.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Inserts one page of one side: key, the hash of the compared values, and the values (for the sample's
/// field-by-field differences). A key seen twice on one side keeps its first row.
fn insert(
    conn: &std::sync::Mutex<Connection>,
    table: &str,
    key: &str,
    fields: &[String],
    page: Vec<Map<String, Value>>,
) -> Result<(), String> {
    let conn = conn
        .lock()
        .map_err(|_| "the scratch database lock is poisoned".to_owned())?;
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    {
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (k, h, v) VALUES (?1, ?2, ?3)"
            ))
            .map_err(|e| e.to_string())?;
        for row in page {
            let k = text(row.get(key));
            if k.is_empty() {
                continue;
            }
            let values: Vec<String> = fields.iter().map(|f| text(row.get(f))).collect();
            let mut h = DefaultHasher::new();
            values.hash(&mut h);
            // SQLite integers are signed: keep the hash's bits.
            let hash = i64::from_ne_bytes(h.finish().to_ne_bytes());
            let v = serde_json::to_string(&values).map_err(|e| e.to_string())?;
            stmt.execute(params![k, hash, v]).map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

async fn reconcile_one(ctx: &StepCtx, m: &MapRef, company: Option<&str>, sample: usize) -> Res<Counts> {
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

    let scratch = Scratch::create(ctx, m, company)?;
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (fno, dv) = (scope.fno(fno_env)?, scope.dataverse(dv_env)?);
    let (fno_table, dv_table) = if fwd { ("src", "tgt") } else { ("tgt", "src") };

    let mut fno_select: Vec<&str> = vec![fno_key.as_str()];
    fno_select.extend(fno_fields.iter().map(String::as_str));
    let conn = &scratch.conn;
    let mut on_fno = |page| insert(conn, fno_table, &fno_key, &fno_fields, page);
    let fno_rows = fno
        .read_pages(
            fno_set,
            fno_filter.as_deref(),
            &fno_select,
            &ctx.cancel,
            &mut on_fno,
        )
        .await?;
    let mut dv_select: Vec<&str> = vec![dv_key.as_str()];
    dv_select.extend(dv_fields.iter().map(String::as_str));
    let mut on_dv = |page| insert(conn, dv_table, &dv_key, &dv_fields, page);
    let dv_rows = dv
        .read_pages(dv_set, dv_filter.as_deref(), &dv_select, &ctx.cancel, &mut on_dv)
        .await?;
    let (source_rows, target_rows) = if fwd {
        (fno_rows, dv_rows)
    } else {
        (dv_rows, fno_rows)
    };

    let (counts, diffs) = scratch
        .conn
        .lock()
        .map_err(|_| rusqlite::Error::InvalidQuery)
        .and_then(|c| classify(&c, &source_fields, sample))
        .map_err(|e| fail(format!("reconcile {}: the comparison failed: {e}", m.id)))?;
    let counts = Counts {
        source_rows,
        target_rows,
        ..counts
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

/// One query per class; the sample keeps the first `sample` keys of each (in key order).
fn classify(
    conn: &Connection,
    fields: &[String],
    sample: usize,
) -> rusqlite::Result<(Counts, Vec<RowDifference>)> {
    let count = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let counts = Counts {
        matching: count("SELECT count(*) FROM src JOIN tgt USING (k) WHERE src.h = tgt.h")?,
        missing: count("SELECT count(*) FROM src WHERE NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.k = src.k)")?,
        extra: count("SELECT count(*) FROM tgt WHERE NOT EXISTS (SELECT 1 FROM src WHERE src.k = tgt.k)")?,
        different: count("SELECT count(*) FROM src JOIN tgt USING (k) WHERE src.h <> tgt.h")?,
        ..Counts::default()
    };
    let limit = i64::try_from(sample).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let keys = |sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    for k in keys(
        "SELECT k FROM src WHERE NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.k = src.k) ORDER BY k LIMIT ?1",
    )? {
        out.push(RowDifference {
            class: RowClass::Missing,
            key: k,
            fields: Vec::new(),
        });
    }
    for k in keys(
        "SELECT k FROM tgt WHERE NOT EXISTS (SELECT 1 FROM src WHERE src.k = tgt.k) ORDER BY k LIMIT ?1",
    )? {
        out.push(RowDifference {
            class: RowClass::Extra,
            key: k,
            fields: Vec::new(),
        });
    }
    let mut stmt = conn.prepare(
        "SELECT k, src.v, tgt.v FROM src JOIN tgt USING (k) WHERE src.h <> tgt.h ORDER BY k LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (k, sv, tv) = row?;
        let s: Vec<String> = serde_json::from_str(&sv).unwrap_or_default();
        let t: Vec<String> = serde_json::from_str(&tv).unwrap_or_default();
        let fields_differing = fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (a, b) = (
                    s.get(i).cloned().unwrap_or_default(),
                    t.get(i).cloned().unwrap_or_default(),
                );
                (a != b).then(|| FieldDifference {
                    field: f.clone(),
                    source: a,
                    target: b,
                })
            })
            .collect();
        out.push(RowDifference {
            class: RowClass::Different,
            key: k,
            fields: fields_differing,
        });
    }
    Ok((counts, out))
}
