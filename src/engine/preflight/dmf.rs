//! Every DMF data project (definition group) a `dmf.export` or `dmf.import` step names exists in its F&O
//! environment (`GET /data/DataManagementDefinitionGroups?$filter=Name eq '<group>'`).

use std::collections::BTreeMap;

use super::{Ctx, fix, line};
use crate::connectors::metadata;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::steps::StepKind;

const CHECK: &str = "dmf_group";

/// (env, group) → the steps that use it, with whether any imports.
fn groups(cx: &Ctx<'_>) -> BTreeMap<(String, String), (Vec<String>, bool)> {
    let mut out: BTreeMap<(String, String), (Vec<String>, bool)> = BTreeMap::new();
    for phase in &cx.opts.runbook.phases {
        for step in phase.steps.iter().flatten() {
            let (env, group, import) = match &step.kind {
                StepKind::DmfExport(s) => (&s.env, &s.definition_group, false),
                StepKind::DmfImport(s) => (&s.env, &s.definition_group, true),
                _ => continue,
            };
            let e = out.entry((env.clone(), group.clone())).or_default();
            e.0.push(step.id.to_string());
            e.1 |= import;
        }
    }
    out
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for ((env, group), (steps, import)) in groups(cx) {
        let subject = format!("{env}: {group}");
        let t = match cx.ready(&env) {
            Ok(t) => t,
            Err(why) => {
                out.push(line(CHECK, subject, CheckStatus::Skipped, why));
                continue;
            }
        };
        let used = format!("used by {}", steps.join(", "));
        out.push(match metadata::definition_group_exists(t, &group, &cx.cancel).await {
            Ok(true) => line(CHECK, subject, CheckStatus::Ok, format!("data project exists ({used})")),
            Ok(false) => fix(
                line(CHECK, subject, CheckStatus::Error, format!("no data project `{group}` on `{env}` ({used})")),
                format!(
                    "create it in F&O (Workspaces → Data management → {}, name `{group}`, with the package's entities), or correct `definition_group` in {}",
                    if import { "Import" } else { "Export" },
                    steps.join(", ")
                ),
            ),
            Err(e) => line(CHECK, subject, CheckStatus::Error, e.to_string()),
        });
    }
    out
}
