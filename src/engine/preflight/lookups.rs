//! Lookups nobody syncs: the lookup columns of each map's Dataverse table that its key or compare fields
//! touch (`LookupAttributeMetadata` with its `Targets`, read with the table's attributes), and the tables they
//! point to. A referenced table that no map covers, or that only a map of the same or a later wave loads, is
//! a warning naming both: dual-write fails the records whose lookup it cannot resolve (the delivery mode on
//! sales order lines). The company lookup (`cdm_company`) is the company check's.

use std::collections::BTreeMap;

use super::values::sides;
use super::{Ctx, fix, line};
use crate::connectors::metadata;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::{InitialSync, MapId, Runbook};

const CHECK: &str = "lookup";
const COMPANY_TABLE: &str = "cdm_company";

/// Each map's wave position (phase, wave) in run order; maps in no wave are absent.
fn wave_order(rb: &Runbook) -> BTreeMap<&MapId, (usize, usize, &str)> {
    let mut out = BTreeMap::new();
    for (p, phase) in rb.phases.iter().enumerate() {
        for (w, wave) in phase.waves.iter().flatten().enumerate() {
            for m in &wave.maps {
                out.entry(m).or_insert((p, w, wave.id.as_str()));
            }
        }
    }
    out
}

/// A Dataverse field as the runbook may write it: `_x_value` is the lookup `x`.
fn logical(field: &str) -> &str {
    field
        .strip_prefix('_')
        .and_then(|f| f.strip_suffix("_value"))
        .unwrap_or(field)
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let rb = cx.opts.runbook;
    let order = wave_order(rb);
    let mut out = Vec::new();
    // Each map's Dataverse table logical name (read once per map).
    let mut tables: BTreeMap<&MapId, metadata::DvTable> = BTreeMap::new();
    for (id, map) in &rb.maps {
        let Some((_, _, denv, dset, _)) = sides(cx, map) else {
            continue;
        };
        let Ok(t) = cx.ready(denv) else { continue };
        if let Ok(Some(table)) = metadata::dataverse_table(t, dset, &cx.cancel).await {
            tables.insert(id, table);
        }
    }
    for (id, map) in &rb.maps {
        let Some((_, _, denv, dset, fwd)) = sides(cx, map) else {
            continue;
        };
        let Some(table) = tables.get(id) else {
            if let Err(why) = cx.ready(denv) {
                out.push(line(CHECK, id.as_str(), CheckStatus::Skipped, why));
            }
            continue;
        };
        let mut touched: Vec<&str> = Vec::new();
        if let Some(k) = &map.key {
            touched.push(if fwd { &k.target } else { &k.source });
        }
        touched.extend(
            map.compare
                .iter()
                .map(|(s, t)| if fwd { t.as_str() } else { s.as_str() }),
        );
        for field in touched {
            let Some(attr) = table.attribute(logical(field)) else {
                continue;
            };
            if attr.attribute_type != "Lookup" {
                continue;
            }
            for target in &attr.targets {
                if target.eq_ignore_ascii_case(COMPANY_TABLE) {
                    continue;
                }
                let subject = format!("{id}: {dset}.{} → {target}", attr.logical_name);
                let covering: Vec<&MapId> = tables
                    .iter()
                    .filter(|(m, t)| **m != id && t.logical_name.eq_ignore_ascii_case(target))
                    .map(|(m, _)| *m)
                    .collect();
                if covering.is_empty() {
                    out.push(fix(
                        line(
                            CHECK,
                            subject,
                            CheckStatus::Warning,
                            format!(
                                "map `{id}` compares `{field}`, a lookup to {target}, and no map syncs {target}: dual-write fails each record whose {target} it cannot find"
                            ),
                        ),
                        format!(
                            "add a map for {target} in an earlier wave (and `depends_on` it from `{id}`), or load {target} before the weekend (a map with `initial_sync: none` loaded by a DMF step)"
                        ),
                    ));
                    continue;
                }
                let mine = order.get(id);
                let before = covering.iter().find(|m| {
                    rb.maps
                        .get(**m)
                        .is_some_and(|s| s.initial_sync() == InitialSync::None)
                        || matches!((order.get(**m), mine), (Some(a), Some(b)) if (a.0, a.1) < (b.0, b.1))
                        || mine.is_none()
                });
                out.push(match before {
                    Some(m) => line(
                        CHECK,
                        subject,
                        CheckStatus::Ok,
                        format!("`{field}` looks up {target}, which map `{m}` loads first"),
                    ),
                    None => {
                        let m = covering[0];
                        let where_ = order.get(m).map_or_else(
                            || "in no wave".to_owned(),
                            |(_, _, w)| format!("in wave `{w}`"),
                        );
                        fix(
                            line(
                                CHECK,
                                subject,
                                CheckStatus::Warning,
                                format!(
                                    "`{field}` looks up {target}, which map `{m}` loads {where_}, not before map `{id}`{}",
                                    mine.map(|(_, _, w)| format!(" (wave `{w}`)")).unwrap_or_default()
                                ),
                            ),
                            format!("move map `{m}` to an earlier wave than `{id}` and add it to `{id}`'s `depends_on`"),
                        )
                    }
                });
            }
        }
    }
    out
}
