//! A scenario derived from a runbook (`cutover sim --from-runbook R`, and `run R --sim` for a runbook that is
//! not the demo): the estate the runbook names, so a lead can rehearse the real runbook before writing a
//! scenario. Every map's source and target set with its key, compared fields and company striping; rows as
//! the runbook estimates them (1,000 per company when it does not); the initial sync at 5 rows per simulated
//! second per map (the rate the plan assumes); every DMF definition group a step names; the legal entities
//! of every map. Nothing fails on purpose: faults belong to scenarios written for them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Scenario, SimError};
use crate::runbook::steps::StepKind;
use crate::runbook::{Rows, Runbook};

/// Rows per company (or in all) when the runbook gives no estimate.
const DEFAULT_ROWS: u64 = 1000;
/// Initial-sync rows per simulated second per map: the plan's rate.
const RATE: u64 = crate::runbook::plan::INITIAL_SYNC_ROWS_PER_SEC;

fn set_name(side: &str) -> &str {
    side.split_once(':').map_or(side, |(_, s)| s)
}

/// The scenario of `rb`'s estate.
pub fn scenario_from_runbook(rb: &Runbook) -> Result<Scenario, SimError> {
    Scenario::from_yaml(&scenario_text(rb))
}

/// The scenario as text (JSON, which the scenario reader takes as YAML), for a detached simulator's file.
pub fn scenario_text(rb: &Runbook) -> String {
    let mut companies: Vec<String> = Vec::new();
    for m in rb.maps.values() {
        for c in &m.companies {
            let c = c.to_uppercase();
            if !companies.contains(&c) {
                companies.push(c);
            }
        }
    }
    if let Some(Rows::PerCompany(r)) = rb
        .maps
        .values()
        .find_map(|m| m.rows.as_ref().filter(|r| matches!(r, Rows::PerCompany(_))))
    {
        for c in r.keys() {
            let c = c.to_uppercase();
            if !companies.contains(&c) {
                companies.push(c);
            }
        }
    }
    if companies.is_empty() {
        companies.push("USMF".into());
    }
    let mut fno: BTreeMap<String, Value> = BTreeMap::new();
    let mut dv: BTreeMap<String, Value> = BTreeMap::new();
    dv.insert("cdm_companies".into(), json!({ "key": "cdm_companycode" }));
    let mut maps = Vec::new();
    for (id, m) in &rb.maps {
        let source = set_name(&m.source).to_owned();
        let target = set_name(&m.target).to_owned();
        let rows = match (&m.rows, m.companies.is_empty()) {
            (Some(Rows::Total(n)), _) => json!(n),
            (Some(Rows::PerCompany(r)), _) => {
                json!(
                    r.iter()
                        .map(|(c, n)| (c.to_uppercase(), *n))
                        .collect::<BTreeMap<_, _>>()
                )
            }
            (None, true) => json!(DEFAULT_ROWS),
            (None, false) => json!(
                m.companies
                    .iter()
                    .map(|c| (c.to_uppercase(), DEFAULT_ROWS))
                    .collect::<BTreeMap<_, _>>()
            ),
        };
        let mut src = json!({ "rows": rows });
        if let Some(k) = &m.key {
            src["key"] = json!(k.source);
        }
        if !m.compare.is_empty() {
            src["fields"] = json!(
                m.compare
                    .keys()
                    .map(|f| (f.clone(), "text"))
                    .collect::<BTreeMap<_, _>>()
            );
        }
        fno.entry(source.clone()).or_insert(src);
        let mut tgt = json!({});
        if let Some(k) = &m.key {
            tgt["key"] = json!(k.target);
        }
        if !m.companies.is_empty() {
            let lookup = m.company_lookup.clone().unwrap_or_else(|| "msdyn_company".into());
            tgt["lookups"] = json!({ lookup.clone(): "cdm_companies" });
            if lookup != "msdyn_company" {
                tgt["company_lookup"] = json!(lookup);
            }
        }
        if !m.compare.is_empty() {
            tgt["fields"] = json!(
                m.compare
                    .values()
                    .map(|f| (f.clone(), "text"))
                    .collect::<BTreeMap<_, _>>()
            );
        }
        dv.entry(target.clone()).or_insert(tgt);
        let mut map = json!({
            "name": id.as_str(),
            "source": source,
            "target": target,
            "depends_on": m.depends_on.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "rate": RATE,
        });
        if let Some(k) = &m.key {
            map["key"] = json!({ "source": k.source, "target": k.target });
        }
        if !m.compare.is_empty() {
            map["fields"] = json!(m.compare);
        }
        if let Some(f) = m.filter.as_ref().and_then(|f| f.source.clone()) {
            map["filter"] = json!(f);
        }
        maps.push(map);
    }
    let mut groups: BTreeMap<String, Value> = BTreeMap::new();
    for step in rb.phases.iter().flat_map(|p| p.steps.iter().flatten()) {
        let group = match &step.kind {
            StepKind::DmfExport(d) => Some(d.definition_group.clone()),
            StepKind::DmfImport(d) => Some(d.definition_group.clone()),
            _ => None,
        };
        if let Some(g) = group {
            groups.entry(g).or_insert_with(|| json!({}));
        }
    }
    let start = rb.freeze_window.as_ref().map_or_else(
        || "2026-11-27T18:00:00Z".to_owned(),
        |w| {
            w.start
                .at()
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        },
    );
    let scenario = json!({
        "name": format!("from-runbook-{}", rb.runbook),
        "time_scale": 600,
        "start": start,
        "latency": { "ms": 0 },
        "companies": companies,
        "entities": { "fno": fno, "dataverse": dv },
        "maps": maps,
        "dmf": { "definition_groups": groups },
    });
    serde_json::to_string_pretty(&scenario).unwrap_or_else(|_| "{}".into())
}
