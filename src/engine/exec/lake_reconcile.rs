//! `reconcile … engine: lake`: row-level parity of a map as ONE SQL statement on the tables Lakeflow Connect
//! ingested, through the SQL warehouse's Statement Execution API (submitted asynchronously, polled, its
//! chunks fetched, cancelled when the step is cancelled or times out). The result is journaled as the
//! API-sourced reconcile's is (`RowsReconciled` per map and company), so the pane, gate and report are the same.
//!
//! Tables and columns are the export's names: an F&O set as `mserp_<set in lower case>` with columns
//! `mserp_<field in lower case>` and the company in `mserp_dataareaid`; a Dataverse set as its logical name
//! (asked of Dataverse's table definitions), the company through the map's company lookup joined to
//! `cdm_company`'s `cdm_companycode`. The statement is Spark SQL that SQLite also runs (`string`, `sha2`,
//! `concat_ws`, `coalesce`, window functions, FULL OUTER JOIN, backquoted names, a `:sample` marker), so the
//! simulator's warehouse and a real one run the same text. Values compare as text, null as empty (as the
//! API reconcile does); a key seen twice on one side keeps its row with the lowest `Id`.

use std::collections::BTreeMap;

use super::maps::{MapRef, company_lookup};
use super::reconcile::Counts;
use super::{Res, StepCtx, fail, log, poll, progress};
use crate::connectors::databricks::StatementRequest;
use crate::engine::event::{Event, FieldDifference, LogLevel, RowClass, RowDifference};

/// `` `name` `` (a backquote inside doubled).
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One side of the comparison as the statement reads it.
pub struct SideSql {
    pub table: String,
    pub key: String,
    pub fields: Vec<String>,
    /// How the company code is read: a column of the table, or a lookup joined to `cdm_company`.
    pub company: CompanySql,
}

pub enum CompanySql {
    None,
    Column(String),
    Lookup(String),
}

fn side_cte(name: &str, s: &SideSql, companies: &[String]) -> String {
    let (company, from) = match &s.company {
        CompanySql::None => ("''".to_owned(), format!("{} x", ident(&s.table))),
        CompanySql::Column(c) => (
            format!("upper(string(x.{}))", ident(c)),
            format!("{} x", ident(&s.table)),
        ),
        CompanySql::Lookup(l) => (
            "upper(string(co.`cdm_companycode`))".to_owned(),
            format!(
                "{} x LEFT JOIN `cdm_company` co ON lower(string(x.{})) = lower(string(co.`cdm_companyid`))",
                ident(&s.table),
                ident(l)
            ),
        ),
    };
    let key = format!("string(x.{})", ident(&s.key));
    let values: Vec<String> = s
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("coalesce(string(x.{}), '') AS v{i}", ident(f)))
        .collect();
    let mut filter = format!("x.{} IS NOT NULL", ident(&s.key));
    if !companies.is_empty() {
        let list: Vec<String> = companies.iter().map(|c| literal(&c.to_uppercase())).collect();
        filter.push_str(&format!(" AND {company} IN ({})", list.join(", ")));
    }
    let vs: Vec<String> = (0..s.fields.len()).map(|i| format!("v{i}")).collect();
    let hash_input = if vs.is_empty() {
        "''".to_owned()
    } else {
        format!("concat_ws(char(31), {})", vs.join(", "))
    };
    format!(
        "{name}0 AS (SELECT {company} AS c, {key} AS k{comma}{values}, row_number() OVER (PARTITION BY {company}, {key} ORDER BY x.`Id`) AS d FROM {from} WHERE {filter}),\n\
         {name} AS (SELECT c, k{comma2}{vs}, sha2({hash_input}, 256) AS h FROM {name}0 WHERE d = 1)",
        comma = if values.is_empty() { "" } else { ", " },
        values = values.join(", "),
        comma2 = if vs.is_empty() { "" } else { ", " },
        vs = vs.join(", "),
    )
}

/// The one statement of a map: counts per company and class, and the first `:sample` keys of each class
/// that is not `matching` (with both sides' values). Columns: company, class, n, rn, k, s0.., t0...
pub fn statement(source: &SideSql, target: &SideSql, companies: &[String]) -> String {
    let n = source.fields.len();
    let pairs: Vec<String> = (0..n)
        .map(|i| format!("s.v{i} AS s{i}, t.v{i} AS t{i}"))
        .collect();
    let cols: Vec<String> = (0..n).map(|i| format!("s{i}, t{i}")).collect();
    format!(
        "WITH {},\n{},\n\
         j AS (SELECT coalesce(s.c, t.c) AS company, coalesce(s.k, t.k) AS k, \
         CASE WHEN t.k IS NULL THEN 'missing' WHEN s.k IS NULL THEN 'extra' WHEN s.h = t.h THEN 'matching' ELSE 'different' END AS class{}{} \
         FROM s FULL OUTER JOIN t ON s.c = t.c AND s.k = t.k),\n\
         r AS (SELECT j.*, row_number() OVER (PARTITION BY company, class ORDER BY k) AS rn, count(*) OVER (PARTITION BY company, class) AS n FROM j)\n\
         SELECT company, class, n, rn, k{}{} FROM r WHERE rn = 1 OR (class <> 'matching' AND rn <= :sample) ORDER BY company, class, k",
        side_cte("s", source, companies),
        side_cte("t", target, companies),
        if pairs.is_empty() { "" } else { ", " },
        pairs.join(", "),
        if cols.is_empty() { "" } else { ", " },
        cols.join(", "),
    )
}

fn fno_side(set: &str, key: &str, fields: &[String], by_company: bool) -> SideSql {
    let col = |f: &str| format!("mserp_{}", f.to_lowercase());
    SideSql {
        table: format!("mserp_{}", set.to_lowercase()),
        key: col(key),
        fields: fields.iter().map(|f| col(f)).collect(),
        company: if by_company {
            CompanySql::Column("mserp_dataareaid".into())
        } else {
            CompanySql::None
        },
    }
}

/// The one statement of a keyed map (`None` for a map without a key) and its compared source fields, in
/// the order of the result's `s0, t0, ...` columns. Apache Spark runs the same text in the tests
/// (`tests/it/engine/lake_spark.rs`) and in `scripts/lake-spark-bench`.
pub async fn map_statement(ctx: &StepCtx, m: &MapRef) -> Res<Option<(String, Vec<String>)>> {
    let Some(super::lake_embedded::LakeMap {
        key,
        fwd,
        source_fields,
        target_fields,
        by_company,
        logical,
    }) = super::lake_embedded::lake_map(ctx, m, "is not translated to SQL").await?
    else {
        return Ok(None);
    };
    let dv_side = |k: &str, fields: &[String]| SideSql {
        table: logical.clone(),
        key: super::lake_embedded::dv_column(k),
        fields: fields
            .iter()
            .map(|f| super::lake_embedded::dv_column(f))
            .collect(),
        company: if by_company {
            CompanySql::Lookup(company_lookup(m).to_owned())
        } else {
            CompanySql::None
        },
    };
    let (source, target) = if fwd {
        (
            fno_side(&m.source_set, &key.source, &source_fields, by_company),
            dv_side(&key.target, &target_fields),
        )
    } else {
        (
            dv_side(&key.source, &source_fields),
            fno_side(&m.target_set, &key.target, &target_fields, by_company),
        )
    };
    Ok(Some((
        statement(&source, &target, &m.spec.companies),
        source_fields,
    )))
}

/// Row-level parity of one map on the lake: one statement, one `RowsReconciled` per company.
pub async fn map(
    ctx: &StepCtx,
    m: &MapRef,
    db_env: &str,
    sample: usize,
) -> Res<Vec<(Option<String>, Counts)>> {
    let Some((sql, source_fields)) = map_statement(ctx, m).await? else {
        return Ok(Vec::new());
    };
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let lake = ctx
        .envs
        .info
        .get(db_env)
        .and_then(|i| i.lake.clone())
        .unwrap_or_default();
    let warehouse = lake
        .warehouse_id
        .clone()
        .ok_or_else(|| fail(format!("environment `{db_env}` has no `warehouse_id`")))?;
    let db = scope.databricks(db_env)?;
    let req = StatementRequest {
        statement: sql,
        warehouse_id: warehouse,
        catalog: lake.catalog.clone(),
        schema: lake.schema.clone(),
        parameters: vec![("sample".into(), sample.to_string(), "INT".into())],
    };
    // The submit is not cut short by a cancel: a statement the warehouse accepted must be known to be
    // cancelled (the loop below cancels it at once when the step already is).
    let submitted = db
        .submit(&req, &tokio_util::sync::CancellationToken::new())
        .await?;
    let id = submitted.statement_id.clone();
    log(
        ctx,
        LogLevel::Info,
        format!(
            "map {}: statement {id} submitted to warehouse {}",
            m.id, req.warehouse_id
        ),
    );
    let sched = poll(ctx);
    let deadline = tokio::time::Instant::now() + sched.timeout;
    let mut info = submitted;
    let mut last = String::new();
    while !info.is_terminal() {
        if info.state != last {
            progress(
                ctx,
                0,
                None,
                Some(format!("{}: statement {id} {}", m.id, info.state)),
            );
            last = info.state.clone();
        }
        let mut cancelled = tokio::select! {
            () = ctx.cancel.cancelled() => true,
            () = tokio::time::sleep(sched.every) => false,
        };
        if !cancelled && tokio::time::Instant::now() <= deadline {
            match db.statement(&id, &ctx.cancel).await {
                Ok(next) => {
                    info = next;
                    continue;
                }
                // Cancelled while the poll was on the wire: the statement still runs; cancel it below.
                Err(_) if ctx.cancel.is_cancelled() => cancelled = true,
                Err(e) => return Err(e.into()),
            }
        }
        // Cancelled or past the step's timeout: nothing is left running on the customer's warehouse.
        let sent = db.cancel(&id).await;
        return Err(fail(format!(
            "map {}: statement {id} {} ({})",
            m.id,
            if cancelled {
                "cancelled with the step"
            } else {
                "cancelled at the step's timeout"
            },
            match sent {
                Ok(()) => "cancel sent".to_owned(),
                Err(e) => format!("the cancel failed: {e}"),
            }
        )));
    }
    match info.state.as_str() {
        "SUCCEEDED" => {}
        "FAILED" => {
            return Err(super::fail_because(
                format!("map {}: statement {id} FAILED", m.id),
                info.error.clone(),
            ));
        }
        other => {
            return Err(fail(format!(
                "map {}: statement {id} ended {other} before its result was read",
                m.id
            )));
        }
    }
    let mut rows = info.rows.clone();
    for c in 1..info.chunks {
        rows.extend(db.chunk(&id, c, &ctx.cancel).await?);
    }
    let mut out = Vec::new();
    for (company, c, event) in result_events(ctx, m, &id, &source_fields, sample, &rows)? {
        ctx.emit.durable(event).await?;
        out.push((company, c));
    }
    Ok(out)
}

/// The statement's result rows read as the step journals them: one `RowsReconciled` per company (with its
/// counts), not yet emitted. `id` names the statement in errors.
pub fn result_events(
    ctx: &StepCtx,
    m: &MapRef,
    id: &str,
    source_fields: &[String],
    sample: usize,
    rows: &[Vec<serde_json::Value>],
) -> Res<Vec<(Option<String>, Counts, Event)>> {
    let text = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(o) => o.to_string(),
    };
    let num = |v: Option<&serde_json::Value>| text(v).parse::<u64>().unwrap_or(0);
    // (company) → counts and sample.
    let mut per: BTreeMap<String, (Counts, Vec<RowDifference>)> = BTreeMap::new();
    for c in &m.spec.companies {
        per.entry(c.to_uppercase()).or_default();
    }
    if m.spec.companies.is_empty() {
        per.entry(String::new()).or_default();
    }
    let n_fields = source_fields.len();
    for r in rows {
        let company = text(r.first());
        let class = text(r.get(1));
        let n = num(r.get(2));
        let rn = num(r.get(3));
        let entry = per.entry(company).or_default();
        let (counts, diffs) = (&mut entry.0, &mut entry.1);
        let row_class = match class.as_str() {
            "matching" => {
                counts.matching = n;
                continue;
            }
            "missing" => {
                counts.missing = n;
                RowClass::Missing
            }
            "extra" => {
                counts.extra = n;
                RowClass::Extra
            }
            "different" => {
                counts.different = n;
                RowClass::Different
            }
            other => {
                return Err(fail(format!(
                    "map {}: statement {id} returned class `{other}`",
                    m.id
                )));
            }
        };
        if usize::try_from(rn).unwrap_or(usize::MAX) > sample {
            continue;
        }
        let fields = if row_class == RowClass::Different {
            (0..n_fields)
                .filter_map(|i| {
                    let (s, t) = (text(r.get(5 + 2 * i)), text(r.get(6 + 2 * i)));
                    (s != t).then(|| FieldDifference {
                        field: source_fields[i].clone(),
                        source: s,
                        target: t,
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        diffs.push(RowDifference {
            class: row_class,
            key: text(r.get(4)),
            fields,
        });
    }
    let mut out = Vec::new();
    for (company, (mut c, mut sample_rows)) in per {
        c.source_rows = c.matching + c.different + c.missing;
        c.target_rows = c.matching + c.different + c.extra;
        sample_rows.sort_by(|a, b| (class_order(a.class), &a.key).cmp(&(class_order(b.class), &b.key)));
        let company = (!m.spec.companies.is_empty()).then(|| {
            m.spec
                .companies
                .iter()
                .find(|x| x.eq_ignore_ascii_case(&company))
                .cloned()
                .unwrap_or(company)
        });
        let event = Event::RowsReconciled {
            step: ctx.step.id.clone(),
            map: m.id.clone(),
            company: company.clone(),
            source_rows: c.source_rows,
            target_rows: c.target_rows,
            matching: c.matching,
            missing: c.missing,
            extra: c.extra,
            different: c.different,
            sample: sample_rows,
            scratch_bytes: 0,
        };
        out.push((company, c, event));
    }
    Ok(out)
}

fn class_order(c: RowClass) -> u8 {
    match c {
        RowClass::Missing => 0,
        RowClass::Extra => 1,
        RowClass::Different => 2,
    }
}
