//! Plug-ins and flows on the tables dual-write writes: every plug-in step registered on `Create`/`Update` of a
//! map's Dataverse table and every cloud flow triggered on one (`connectors::automation`). One that is on and
//! that no `dataverse.disable_automation` step of the runbook turns off is a warning: a plug-in that throws on
//! a record dual-write pushes fails that record, and a flow fires once per synced row.

use std::collections::{BTreeMap, BTreeSet};

use super::values::sides;
use super::{Ctx, fix, line};
use crate::connectors::{automation, metadata};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::steps::StepKind;

const CHECK: &str = "automation";

/// (env, kind, name) of what the runbook's disable steps turn off.
fn disabled(cx: &Ctx<'_>) -> BTreeSet<(String, &'static str, String)> {
    let mut out = BTreeSet::new();
    for phase in &cx.opts.runbook.phases {
        for step in phase.steps.iter().flatten() {
            if let StepKind::DisableAutomation(d) = &step.kind {
                out.extend(
                    d.plugin_steps
                        .iter()
                        .map(|n| (d.env.clone(), "plugin_step", n.clone())),
                );
                out.extend(d.flows.iter().map(|n| (d.env.clone(), "flow", n.clone())));
            }
        }
    }
    out
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let rb = cx.opts.runbook;
    // Dataverse env → (table logical name → maps).
    let mut tables: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (id, map) in &rb.maps {
        let Some((_, _, denv, dset, _)) = sides(cx, map) else {
            continue;
        };
        let Ok(t) = cx.ready(denv) else { continue };
        if let Ok(Some(table)) = metadata::dataverse_table(t, dset, &cx.cancel).await {
            tables
                .entry(denv.to_owned())
                .or_default()
                .entry(table.logical_name)
                .or_default()
                .push(id.to_string());
        }
    }
    let off = disabled(cx);
    let mut out = Vec::new();
    for (env, by_table) in tables {
        let t = match cx.ready(&env) {
            Ok(t) => t,
            Err(why) => {
                out.push(line(CHECK, &env, CheckStatus::Skipped, why));
                continue;
            }
        };
        let names: Vec<String> = by_table.keys().cloned().collect();
        let found = match automation::list(t, Some(&names), &cx.cancel).await {
            Ok(f) => f,
            Err(e) => {
                out.push(fix(
                    line(CHECK, &env, CheckStatus::Error, e.to_string()),
                    "the console's user needs read access to sdkmessageprocessingsteps and workflows (System Customizer)",
                ));
                continue;
            }
        };
        let mut active = 0;
        for a in found.iter().filter(|a| a.is_on()) {
            active += 1;
            let maps = by_table.get(&a.table).map(|m| m.join(", ")).unwrap_or_default();
            let what = match &a.message {
                Some(m) => format!("plug-in step `{}` on {m} of {}", a.name, a.table),
                None => format!("cloud flow `{}` triggered on {}", a.name, a.table),
            };
            let subject = format!("{env}: {}", a.name);
            out.push(if off.contains(&(env.clone(), a.kind, a.name.clone())) {
                line(
                    CHECK,
                    subject,
                    CheckStatus::Ok,
                    format!("{what} (maps {maps}) is on; the runbook turns it off for the sync"),
                )
            } else {
                fix(
                    line(
                        CHECK,
                        subject,
                        CheckStatus::Warning,
                        format!(
                            "{what} is on and runs on every record dual-write pushes for maps {maps}; no `dataverse.disable_automation` step turns it off"
                        ),
                    ),
                    format!(
                        "add it to a `dataverse.disable_automation` step (env `{env}`, `{}: [\"{}\"]`) before the waves and a `dataverse.enable_automation` after them, or confirm it tolerates dual-write's writes",
                        if a.kind == "flow" { "flows" } else { "plugin_steps" },
                        a.name
                    ),
                )
            });
        }
        if active == 0 {
            out.push(line(
                CHECK,
                &env,
                CheckStatus::Ok,
                format!(
                    "no plug-in step or cloud flow is on for the {} mapped tables",
                    names.len()
                ),
            ));
        }
    }
    out
}
