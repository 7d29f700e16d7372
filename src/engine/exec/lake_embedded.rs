//! `reconcile … engine: lake` without Databricks (the embedded default): the export folders themselves are
//! read on this machine. For each keyed map, both sides' tables are read from the Synapse Link export (an
//! `adls` environment, through the Blob API): every closed incremental folder in time order (never the one
//! `Changelog/changelog.info` names as still being written), one CSV partition at a time, each record mapped
//! to its columns through that folder's `model.json` and applied to a scratch store keyed by `Id`
//! ([`ExportRows`]: the latest `versionnumber` wins, `IsDelete` removes). Then, per company, the live rows
//! stream into the API engine's comparison ([`RowCompare`]) and are journaled as the same `RowsReconciled`,
//! so the pane, gate and report are shared. Memory holds one partition and one batch.
//!
//! Names are those the Databricks statement uses (`lake_reconcile`): an F&O set is `mserp_<set>` with
//! `mserp_<field>` columns (lower case) and the company in `mserp_dataareaid`; a Dataverse set is its logical
//! name, its company through the map's company lookup column matched to `cdm_company`'s `cdm_companyid`
//! (its `cdm_companycode`). Values compare as text, null (an empty field) as empty; a key seen on two live
//! rows of one side keeps the row with the lowest `Id`.

use std::collections::BTreeMap;

use super::maps::{MapRef, company_lookup};
use super::reconcile::Counts;
use super::{Res, StepCtx, fail, progress};
use crate::connectors::lake::Export;
use crate::connectors::parse::KeyedRow;
use crate::engine::event::Event;
use crate::journal::lake_scratch::{ExportRecord, ExportRows};
use crate::journal::scratch::{RowCompare, Side};
use crate::runbook::EnvKind;

/// Where `engine: lake` runs a step's comparisons.
pub enum Engine<'a> {
    /// The SQL warehouse of this `databricks` environment (`lake_reconcile`).
    Databricks(&'a str),
    /// This machine, over the export in this `adls` environment.
    Export(String),
}

/// Live rows handed to the comparison at once.
const BATCH: usize = 5_000;

/// The `adls` environment a step reads: the one it names, or the runbook's only one.
pub fn export_env(ctx: &StepCtx, named: Option<&str>) -> Res<String> {
    if let Some(n) = named {
        return Ok(n.to_owned());
    }
    let adls: Vec<&String> = ctx
        .envs
        .info
        .iter()
        .filter(|(_, i)| i.kind == EnvKind::Adls)
        .map(|(n, _)| n)
        .collect();
    match adls.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(fail(format!(
            "`engine: lake` without `databricks` reads an `adls` export: name it with `export` (the runbook has {} adls environments)",
            adls.len()
        ))),
    }
}

/// The export's column of a Dataverse field: a lookup read through the Web API as `_x_value` is the
/// attribute `x` in the export; any other field is its own name.
pub fn dv_column(field: &str) -> String {
    field
        .strip_prefix('_')
        .and_then(|f| f.strip_suffix("_value"))
        .unwrap_or(field)
        .to_owned()
}

/// How one side's table is read from the export.
struct TableRead {
    table: String,
    key: String,
    fields: Vec<String>,
    company: Company,
}

enum Company {
    None,
    /// A column holding the company code.
    Code(String),
    /// A lookup column holding a `cdm_companyid`, resolved through `ids` (lower-case id → upper-case code).
    Lookup(String),
}

/// A record's value by column name, through one folder's attributes.
fn column<'a>(attrs: &[(String, String)], rec: &'a [String], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|i| rec.get(i))
        .map(String::as_str)
}

/// Applies every closed folder's records of `read.table` to `store`, under the name `tag`.
async fn load(
    ctx: &StepCtx,
    export: &Export<'_>,
    folders: &[String],
    read: &TableRead,
    tag: &str,
    ids: &BTreeMap<String, String>,
    store: &ExportRows,
) -> Res<u64> {
    let mut n = 0u64;
    for folder in folders {
        let model = export.model(folder, &ctx.cancel).await?;
        let Some(attrs) = model
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&read.table))
            .map(|(_, a)| a)
        else {
            continue;
        };
        for part in export.partitions(folder, &read.table, &ctx.cancel).await? {
            let records: Vec<ExportRecord> = export
                .partition(&part, &ctx.cancel)
                .await?
                .iter()
                .map(|rec| {
                    let get = |c: &str| column(attrs, rec, c).unwrap_or("").to_owned();
                    let company = match &read.company {
                        Company::None => String::new(),
                        Company::Code(c) => get(c).to_uppercase(),
                        Company::Lookup(c) => ids.get(&get(c).to_lowercase()).cloned().unwrap_or_default(),
                    };
                    ExportRecord {
                        id: get("Id"),
                        version: get("versionnumber").parse().unwrap_or(0),
                        delete: get("IsDelete").eq_ignore_ascii_case("true"),
                        company,
                        key: get(&read.key),
                        values: read.fields.iter().map(|f| get(f)).collect(),
                    }
                })
                .collect();
            n += records.len() as u64;
            store
                .apply(tag, &records)
                .map_err(|e| fail(format!("reading the export: {e}")))?;
            progress(
                ctx,
                n,
                None,
                Some(format!("{}: folder {folder}: {n} records applied", read.table)),
            );
        }
    }
    Ok(n)
}

/// What both lake engines need of a keyed map before they read: its key, its direction, the compared fields
/// and the Dataverse side's logical name (the export's and the warehouse's table name).
pub(super) struct LakeMap {
    pub key: crate::runbook::model::KeyPair,
    pub fwd: bool,
    pub source_fields: Vec<String>,
    pub target_fields: Vec<String>,
    pub by_company: bool,
    pub logical: String,
}

/// [`LakeMap`] of `m`; `None` for a map without a key. A map with an OData `filter` is refused (`why` says
/// what the engine does not do with it).
pub(super) async fn lake_map(ctx: &StepCtx, m: &MapRef, why: &str) -> Res<Option<LakeMap>> {
    let Some(key) = m.spec.key.clone() else {
        return Ok(None);
    };
    let fwd = super::reconcile::fno_to_dataverse(ctx, m)?;
    if m.spec.filter.is_some() {
        return Err(fail(format!(
            "map {}: its OData `filter` {why}: `engine: lake` cannot reconcile it (use the API engine)",
            m.id
        )));
    }
    let (dv_env, dv_set) = if fwd {
        (&m.target_env, &m.target_set)
    } else {
        (&m.source_env, &m.source_set)
    };
    let logical = ctx
        .envs
        .scoped(Some(&ctx.step.id))
        .dataverse(dv_env)?
        .table(dv_set, &ctx.cancel)
        .await?
        .logical_name;
    Ok(Some(LakeMap {
        key,
        fwd,
        source_fields: m.spec.compare.keys().cloned().collect(),
        target_fields: m.spec.compare.values().cloned().collect(),
        by_company: !m.spec.companies.is_empty(),
        logical,
    }))
}

/// Row-level parity of one map on the export folders: one `RowsReconciled` per company.
pub async fn map(
    ctx: &StepCtx,
    m: &MapRef,
    export_env: &str,
    sample: usize,
) -> Res<Vec<(Option<String>, Counts)>> {
    let Some(LakeMap {
        key,
        fwd,
        source_fields,
        target_fields,
        by_company,
        logical,
    }) = lake_map(ctx, m, "is not applied to the export's rows").await?
    else {
        return Ok(Vec::new());
    };
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let fno_set = if fwd { &m.source_set } else { &m.target_set };
    let fno_read = |k: &str, fields: &[String]| TableRead {
        table: format!("mserp_{}", fno_set.to_lowercase()),
        key: format!("mserp_{}", k.to_lowercase()),
        fields: fields
            .iter()
            .map(|f| format!("mserp_{}", f.to_lowercase()))
            .collect(),
        company: if by_company {
            Company::Code("mserp_dataareaid".into())
        } else {
            Company::None
        },
    };
    let dv_read = |k: &str, fields: &[String]| TableRead {
        table: logical.clone(),
        key: dv_column(k),
        fields: fields.iter().map(|f| dv_column(f)).collect(),
        company: if by_company {
            Company::Lookup(company_lookup(m).to_owned())
        } else {
            Company::None
        },
    };
    let (source, target) = if fwd {
        (
            fno_read(&key.source, &source_fields),
            dv_read(&key.target, &target_fields),
        )
    } else {
        (
            dv_read(&key.source, &source_fields),
            fno_read(&key.target, &target_fields),
        )
    };

    let (blob, root) = scope.blob(export_env)?;
    let export = Export { blob: &blob, root };
    let state = export.state(&ctx.cancel).await?;
    let folders: Vec<String> = state
        .folders
        .iter()
        .filter(|f| f.closed)
        .map(|f| f.name.clone())
        .collect();
    if folders.is_empty() {
        return Err(fail(format!(
            "map {}: the export in `{export_env}` has no closed folder yet{}",
            m.id,
            state
                .open
                .as_deref()
                .map(|o| format!(" (the folder still being written is {o})"))
                .unwrap_or_default()
        )));
    }
    let base = format!(
        ".{}-{}-{}",
        ctx.run_id.0,
        ctx.step.id.0.replace(['/', ':'], "_"),
        m.id
    );
    let store = ExportRows::create(&ctx.work_dir.join(format!("{base}.lake.sqlite")))
        .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
    // The companies' ids, from cdm_company as the export leaves it (a handful of rows).
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    if by_company {
        let companies = TableRead {
            table: "cdm_company".into(),
            key: "cdm_companyid".into(),
            fields: vec!["cdm_companycode".into()],
            company: Company::None,
        };
        load(ctx, &export, &folders, &companies, "cdm_company", &ids, &store).await?;
        store
            .rows("cdm_company", None, BATCH, &mut |b| {
                for (k, v) in b {
                    let code = v.first().cloned().unwrap_or_default().to_uppercase();
                    ids.entry(k.to_lowercase()).or_insert(code);
                }
                Ok(())
            })
            .map_err(|e| fail(format!("reading the export: {e}")))?;
    }
    load(ctx, &export, &folders, &source, "source", &ids, &store).await?;
    load(ctx, &export, &folders, &target, "target", &ids, &store).await?;

    let mut out = Vec::new();
    for company in m.companies() {
        let code = company.as_deref().map(str::to_uppercase);
        let cmp_name = format!(
            "{base}{}.reconcile.sqlite",
            company.as_deref().map(|c| format!("-{c}")).unwrap_or_default()
        );
        let cmp = RowCompare::create(&ctx.work_dir.join(cmp_name))
            .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
        for (tag, side) in [("source", Side::Source), ("target", Side::Target)] {
            store
                .rows(tag, code.as_deref().or(Some("")), BATCH, &mut |b| {
                    let rows = b
                        .into_iter()
                        .map(|(key, values)| KeyedRow { key, values })
                        .collect();
                    cmp.insert_keyed(side, rows)
                })
                .map_err(|e| fail(format!("reconcile {}: {e}", m.id)))?;
        }
        let (counts, diffs) = cmp
            .classify(&source_fields, sample)
            .map_err(|e| fail(format!("reconcile {}: the comparison failed: {e}", m.id)))?;
        let c = Counts {
            source_rows: counts.matching + counts.different + counts.missing,
            target_rows: counts.matching + counts.different + counts.extra,
            matching: counts.matching,
            missing: counts.missing,
            extra: counts.extra,
            different: counts.different,
        };
        ctx.emit
            .durable(Event::RowsReconciled {
                step: ctx.step.id.clone(),
                map: m.id.clone(),
                company: company.clone(),
                source_rows: c.source_rows,
                target_rows: c.target_rows,
                matching: c.matching,
                missing: c.missing,
                extra: c.extra,
                different: c.different,
                sample: diffs,
                scratch_bytes: store.bytes() + cmp.bytes(),
            })
            .await?;
        out.push((company, c));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lookup_is_read_under_its_attribute_name() {
        assert_eq!(super::dv_column("_parentaccountid_value"), "parentaccountid");
        assert_eq!(super::dv_column("name"), "name");
        assert_eq!(super::dv_column("_value"), "_value");
    }
}
