//! Every map's entity sets exist, with their key and compared fields (F&O from the metadata service,
//! Dataverse from `EntityDefinitions` and the attribute metadata), and a company-striped map's Dataverse table
//! carries the company lookup to `cdm_company` (`msdyn_company`, read as `_msdyn_company_value`).

use super::{Ctx, fix, line};
use crate::connectors::dataverse::DEFAULT_COMPANY_LOOKUP;
use crate::connectors::metadata::{self, DvTable, FnoEntity};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::{EnvKind, MapSpec};

const COMPANY_TABLE: &str = "cdm_company";

/// The map's company lookup: its `company_lookup`, else Dataverse's default.
fn company_lookup(map: &MapSpec) -> &str {
    map.company_lookup.as_deref().unwrap_or(DEFAULT_COMPANY_LOOKUP)
}

/// One side of a map: which fields it must have.
struct Side<'a> {
    env: &'a str,
    set: &'a str,
    key: Option<&'a str>,
    compare: Vec<&'a str>,
    source: bool,
}

enum Found {
    Fno(FnoEntity),
    Dv(DvTable),
}

impl Found {
    fn has(&self, f: &str) -> bool {
        match self {
            Found::Fno(e) => e.has(f),
            // A lookup is read as `_<name>_value`.
            Found::Dv(t) => {
                t.attribute(f).is_some()
                    || f.strip_prefix('_')
                        .and_then(|x| x.strip_suffix("_value"))
                        .and_then(|l| t.attribute(l))
                        .is_some_and(|a| a.attribute_type == "Lookup")
            }
        }
    }
}

fn split(s: &str) -> (&str, &str) {
    s.split_once(':').unwrap_or(("", s))
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for (id, map) in &cx.opts.runbook.maps {
        let (senv, sset) = split(&map.source);
        let (tenv, tset) = split(&map.target);
        let sides = [
            Side {
                env: senv,
                set: sset,
                key: map.key.as_ref().map(|k| k.source.as_str()),
                compare: map.compare.keys().map(String::as_str).collect(),
                source: true,
            },
            Side {
                env: tenv,
                set: tset,
                key: map.key.as_ref().map(|k| k.target.as_str()),
                compare: map.compare.values().map(String::as_str).collect(),
                source: false,
            },
        ];
        for side in sides {
            let subject = format!("{id}: {}:{}", side.env, side.set);
            let field = if side.source { "source" } else { "target" };
            let found = match lookup(cx, &side).await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    let place = match cx.envs.get(side.env).map(|e| e.kind) {
                        Some(EnvKind::Dataverse) => "no table in EntityDefinitions has that EntitySetName",
                        _ => "the metadata service lists no public entity with that collection name",
                    };
                    out.push(fix(
                        line("entity", subject, CheckStatus::Error, format!("no entity set `{}` on `{}`: {place}", side.set, side.env)),
                        format!(
                            "correct the map's `{field}` (set names are case-sensitive; Dataverse uses the plural set name, e.g. `accounts`), or install the solution/entity that provides it"
                        ),
                    ));
                    continue;
                }
                Err((status, why)) => {
                    out.push(line("entity", subject, status, why));
                    continue;
                }
            };
            let mut missing: Vec<String> = Vec::new();
            if let Some(k) = side.key
                && !found.has(k)
            {
                missing.push(format!("key `{k}`"));
            }
            for f in &side.compare {
                if !found.has(f) {
                    missing.push(format!("compare field `{f}`"));
                }
            }
            let mut company_line = None;
            if !map.companies.is_empty() {
                match &found {
                    Found::Fno(e) if !e.has("dataAreaId") => {
                        missing.push("`dataAreaId` (the map lists companies)".into())
                    }
                    Found::Dv(t) => company_line = Some(company(id.as_str(), &subject, map, t)),
                    Found::Fno(_) => {}
                }
            }
            let what = match &found {
                Found::Fno(e) => format!("entity {}", e.name),
                Found::Dv(t) => format!("table {} (primary id {})", t.logical_name, t.primary_id),
            };
            out.push(if missing.is_empty() {
                let mut checked: Vec<String> = side.key.map(|k| format!("key {k}")).into_iter().collect();
                if !side.compare.is_empty() {
                    checked.push(format!("compare {}", side.compare.join(", ")));
                }
                let extra = if checked.is_empty() { String::new() } else { format!("; {} found", checked.join("; ")) };
                line("entity", subject, CheckStatus::Ok, format!("{what}{extra}"))
            } else {
                fix(
                    line("entity", subject, CheckStatus::Error, format!("{what} has no {}", missing.join(", "))),
                    format!("correct map `{id}`'s `key`/`compare`/`companies` to the field names the {field} really has"),
                )
            });
            out.extend(company_line);
        }
    }
    out
}

async fn lookup(cx: &Ctx<'_>, side: &Side<'_>) -> Result<Option<Found>, (CheckStatus, String)> {
    let t = cx.ready(side.env).map_err(|why| (CheckStatus::Skipped, why))?;
    let kind = cx.envs.get(side.env).map(|e| e.kind);
    let r = match kind {
        Some(EnvKind::Dataverse) => metadata::dataverse_table(t, side.set, &cx.cancel)
            .await
            .map(|o| o.map(Found::Dv)),
        Some(EnvKind::Fno) => metadata::fno_entity(t, side.set, &cx.cancel)
            .await
            .map(|o| o.map(Found::Fno)),
        _ => {
            return Err((
                CheckStatus::Skipped,
                format!("`{}` is not an F&O or Dataverse environment", side.env),
            ));
        }
    };
    r.map_err(|e| (CheckStatus::Error, e.to_string()))
}

/// The company lookup line of a company-striped Dataverse table.
fn company(id: &str, subject: &str, map: &MapSpec, t: &DvTable) -> PreflightCheck {
    let want = company_lookup(map);
    let wire = format!("_{want}_value");
    let others: Vec<&str> = t
        .lookups_to(COMPANY_TABLE)
        .into_iter()
        .map(|a| a.logical_name.as_str())
        .filter(|n| !n.eq_ignore_ascii_case(want))
        .collect();
    match t.attribute(want) {
        Some(a)
            if a.attribute_type == "Lookup"
                && a.targets.iter().any(|x| x.eq_ignore_ascii_case(COMPANY_TABLE)) =>
        {
            line(
                "company_lookup",
                subject,
                CheckStatus::Ok,
                format!("`{want}` → {COMPANY_TABLE}: per-company filters use `{wire}`"),
            )
        }
        Some(a) => fix(
            line(
                "company_lookup",
                subject,
                CheckStatus::Error,
                format!(
                    "`{want}` is a {} attribute{}, not a lookup to {COMPANY_TABLE}: per-company parity and key lookups would compare the wrong column",
                    if a.attribute_type.is_empty() {
                        "?"
                    } else {
                        &a.attribute_type
                    },
                    if a.targets.is_empty() {
                        String::new()
                    } else {
                        format!(" to {}", a.targets.join(", "))
                    }
                ),
            ),
            company_fix(id, &others),
        ),
        None => fix(
            line(
                "company_lookup",
                subject,
                CheckStatus::Error,
                format!(
                    "{} has no company lookup `{want}` (`{wire}`){}",
                    t.logical_name,
                    if others.is_empty() {
                        format!("; no attribute of it looks up {COMPANY_TABLE}")
                    } else {
                        format!("; its lookup to {COMPANY_TABLE} is `{}`", others.join("`, `"))
                    }
                ),
            ),
            company_fix(id, &others),
        ),
    }
}

fn company_fix(id: &str, others: &[&str]) -> String {
    match others.first() {
        Some(o) => format!(
            "this table's company lookup is `{o}`: name it for map `{id}` (the map's `company_lookup: {o}`), or add `msdyn_company` to the table"
        ),
        None => format!(
            "the table is not company-striped in Dataverse: remove `companies` from map `{id}`, or install the dual-write solution that adds `msdyn_company` to it"
        ),
    }
}
