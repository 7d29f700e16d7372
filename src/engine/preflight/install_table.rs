//! Every Dataverse table a `dmf.import` records its installs in (`record_install: {env: <dataverse>, table}`)
//! exists; `cutover preflight --create-install-table` creates a missing one (and only then: creating a table is a
//! change to the customer's environment). An F&O target is the customer's own entity and is not checked here.

use std::collections::BTreeMap;

use super::{Ctx, fix, line};
use crate::connectors::dataverse::{DataverseClient, dataverse_transport};
use crate::connectors::install_table;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::steps::StepKind;
use crate::runbook::steps::dmf_import::RecordTarget;

const CHECK: &str = "install_table";

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for step in cx
        .opts
        .runbook
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().flatten())
    {
        let StepKind::DmfImport(s) = &step.kind else {
            continue;
        };
        let Some(r) = &s.record_install else {
            continue;
        };
        let Some(kind) = cx.opts.runbook.environments.get(&r.env).map(|e| e.kind) else {
            continue;
        };
        if let Ok(RecordTarget::Dataverse { table }) = r.target(kind) {
            tables
                .entry((r.env.clone(), table))
                .or_default()
                .push(step.id.to_string());
        }
    }
    let mut out = Vec::new();
    for ((env, table), steps) in tables {
        let subject = format!("{env}: {table}");
        let t = match cx.ready(&env) {
            Ok(t) => t.clone(),
            Err(why) => {
                out.push(line(CHECK, subject, CheckStatus::Skipped, why));
                continue;
            }
        };
        let dv = DataverseClient::new(dataverse_transport(t));
        let used = format!("install records of {}", steps.join(", "));
        let exists = install_table::exists(&dv, &table, &cx.cancel).await;
        out.push(match exists {
            Ok(true) => line(CHECK, subject, CheckStatus::Ok, format!("table exists ({used})")),
            Ok(false) if cx.opts.create_install_table => match install_table::create(&dv, &table, &cx.cancel).await {
                Ok(_) => line(
                    CHECK,
                    subject,
                    CheckStatus::Ok,
                    format!("table created with its {} columns ({used})", install_table::COLUMNS.len()),
                ),
                Err(e) => line(CHECK, subject, CheckStatus::Error, format!("creating the table failed: {e}")),
            },
            Ok(false) => fix(
                line(CHECK, subject, CheckStatus::Error, format!("no table `{table}` on `{env}` ({used})")),
                format!(
                    "run `cutover preflight {} --create-install-table` to create it (its columns are in the README), or record to an existing table",
                    cx.opts.file
                ),
            ),
            Err(e) => line(CHECK, subject, CheckStatus::Error, e.to_string()),
        });
    }
    out
}
