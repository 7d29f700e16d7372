//! The lake's steps against the simulator's Synapse Link export and Databricks stand-ins, over loopback:
//! an export that lags then catches up (the lag shown while it waits), a stopped Synapse Link (the step
//! fails naming the folder it stopped at), a schema change found against the snapshot's baseline and its
//! full refresh, a resumed full refresh that polls the update it started instead of starting another, and
//! a pipeline update that fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::engine::event::{Event, Handle, StepOutcome};
use cutover::engine::exec::Mode;
use exec_support::{SECRET, assert_ok, failure, start};
use serde_json::{Value, json};

/// A scenario with the lake; `extra` goes under `lake:` (lag, stop, schema changes), `db` under `databricks:`.
fn scenario(extra: &str, db: &str) -> String {
    format!(
        r#"
name: lake
seed: 7
time_scale: 600
companies: [USMF]
entities:
  fno:
    CustomersV3: {{ key: CustomerAccount, rows: {{ USMF: 20 }}, fields: {{ OrganizationName: name }} }}
  dataverse:
    accounts: {{ key: accountnumber, rows: 10, fields: {{ name: name }} }}
lake:
  account: contosolake
  container: dataverse-contoso-unq1
  interval: 1m
{extra}
  databricks:
    pipelines: [p-1]
    update_duration: 30s
{db}
"#
    )
}

fn runbook(steps: &str) -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        r#"runbook: lake
version: 1.0.0
environments:
  lake: {{ kind: adls, account: contosolake, container: dataverse-contoso-unq1, {auth} }}
  dbx: {{ kind: databricks, url: "https://adb-1234567890123456.7.azuredatabricks.net", warehouse_id: w1, pipelines: {{ d365: p-1 }}, {auth} }}
phases:
  - id: p
    steps:
{steps}
"#
    )
}

fn notes(events: &[cutover::engine::Envelope], step: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepProgress {
                step: s,
                note: Some(n),
                ..
            } if s.as_str() == step => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_export_that_lags_is_waited_for_with_its_lag_shown_until_it_and_the_pipeline_pass_the_cut() {
    let steps = r#"      - { id: cut, kind: wait, for: 1m }
      - { id: caught, kind: lake.caught_up, export: lake, after: "${steps.cut.finished_at}", databricks: dbx, every: 20s, timeout: 2h }"#;
    let h = start(Some(&scenario("  lag: 10m", "    schedule: 2m")), &runbook(steps)).await;
    assert_ok(&h.run("cut").await);
    let r = h.run("caught").await;
    assert_ok(&r);
    let events = h.events().await;
    let n = notes(&events, "caught");
    assert!(
        n.iter()
            .any(|x| x.starts_with("export not past the cut") && x.contains("lag")),
        "the lag was shown while waiting: {n:?}"
    );
    assert!(n.last().unwrap().contains("completed after folder"), "{n:?}");
    // The folder it passed is closed and newer than the cut; the update that ingested it completed.
    let lake = lake_state(&h).await;
    let folder = &r.outputs["folder"];
    assert!(
        lake["folders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == folder.as_str() && f["closed"] == true)
    );
    let upd = &r.outputs["update_id"];
    let states: Vec<&Value> = lake["pipelines"]["p-1"]["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["update_id"] == upd.as_str())
        .collect();
    assert_eq!(states[0]["state"], "COMPLETED");
    // No secret reached the journal.
    let text = serde_json::to_string(&events.iter().map(|e| &e.event).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains(SECRET));
}

async fn lake_state(h: &exec_support::Harness) -> Value {
    let c = cutover::connectors::net::client().unwrap();
    c.get(format!("{}/_sim/lake", h.sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn lake_control(h: &exec_support::Harness, body: Value) {
    let c = cutover::connectors::net::client().unwrap();
    let r = c
        .post(format!("{}/_sim/lake", h.sim.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn a_stopped_synapse_link_fails_the_step_naming_the_folder_it_stopped_at() {
    let steps = r#"      - { id: cut, kind: wait, for: 4m }
      - { id: caught, kind: lake.caught_up, export: lake, after: "${steps.cut.finished_at}", every: 30s, timeout: 10m }"#;
    let h = start(Some(&scenario("  stop_at: 2m", "")), &runbook(steps)).await;
    assert_ok(&h.run("cut").await);
    let r = h.run("caught").await;
    let msg = failure(&r);
    assert!(
        msg.contains("the newest closed folder is 2026-11-27T18.01.00Z"),
        "{msg}"
    );
    assert!(
        msg.contains("the folder still being written is 2026-11-27T18.02.00Z"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_schema_change_is_found_against_the_snapshot_baseline_and_refreshed_in_full() {
    let steps = r#"      - { id: settle, kind: wait, for: 2m }
      - { id: snapshot-schema, kind: lake.schema_check, export: lake }
      - { id: ingest, kind: lake.full_refresh, databricks: dbx, tables: [account, mserp_customersv3] }
      - { id: package, kind: wait, for: 3m }
      - { id: monday-schema, kind: lake.schema_check, export: lake, baseline: snapshot-schema }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, pipeline: d365, tables: "${steps.monday-schema.changed}" }"#;
    let h = start(Some(&scenario("", "")), &runbook(steps)).await;
    assert_ok(&h.run("settle").await);
    let base = h.run("snapshot-schema").await;
    assert_ok(&base);
    assert_eq!(base.outputs["changed"], "");
    assert!(
        base.outputs["schema.account"].starts_with("Id:guid,SinkCreatedOn:dateTime"),
        "{:?}",
        base.outputs
    );
    assert_ok(&h.run("ingest").await);
    // The weekend's package adds a column to accounts.
    lake_control(&h, json!({"add_column": {"side": "dataverse", "entity": "accounts", "field": "cr_rating", "kind": "int"}})).await;
    assert_ok(&h.run("package").await);
    let check = h.run("monday-schema").await;
    assert_ok(&check);
    assert!(check.outputs.contains_key("changed"), "{:?}", check.outputs);
    assert_eq!(check.outputs["changed"], "account");
    assert_eq!(check.outputs["changed_count"], "1");
    // An incremental update now fails on the changed table; the full refresh of it succeeds.
    let r = h.run("refresh").await;
    assert_ok(&r);
    assert_eq!(r.outputs["tables"], "account");
    let lake = lake_state(&h).await;
    let updates = lake["pipelines"]["p-1"]["updates"].as_array().unwrap().clone();
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[1]["full_refresh_selection"], json!(["account"]));
    // The operator was asked before each update started.
    let asks = h.operator.asks.lock().unwrap();
    assert_eq!(asks.len(), 2);
    assert!(
        asks[1].prompt.contains("full refresh of account"),
        "{}",
        asks[1].prompt
    );
}

#[tokio::test]
async fn a_resumed_full_refresh_polls_the_update_it_started_instead_of_starting_another() {
    let steps = r#"      - { id: settle, kind: wait, for: 2m }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, tables: [account] }"#;
    let h = start(Some(&scenario("", "")), &runbook(steps)).await;
    assert_ok(&h.run("settle").await);
    // A process journaled the intent, started the update, and died before journaling its id.
    let c = cutover::connectors::net::client().unwrap();
    let tok = crate::support::sim::token(
        &c,
        &h.sim.url(),
        "c-0000",
        SECRET,
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    )
    .await;
    let now = h.envs.env_now(&tokio_util::sync::CancellationToken::new()).await;
    let intent = json!({"pipeline": "p-1", "tables": ["account"], "at": now});
    h.emit
        .durable(Event::StepIntent {
            step: "refresh".into(),
            attempt: 1,
            handle: Some(Handle {
                kind: "lake.update_intent".into(),
                id: intent.to_string(),
            }),
        })
        .await
        .unwrap();
    let started: Value = c
        .post(format!("{}/api/2.0/pipelines/p-1/updates", h.sim.url()))
        .bearer_auth(&tok)
        .json(&json!({"full_refresh_selection": ["account"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = h.run_mode("refresh", 1, Mode::Reconcile).await;
    assert_ok(&r);
    assert_eq!(r.outputs["update_id"], started["update_id"].as_str().unwrap());
    let lake = lake_state(&h).await;
    assert_eq!(
        lake["pipelines"]["p-1"]["updates"].as_array().unwrap().len(),
        1,
        "no second update"
    );
    assert!(
        h.operator.asks.lock().unwrap().is_empty(),
        "an adopted update is not asked about again"
    );
    // Its id is journaled now: another resume polls it too.
    let r2 = h.run_mode("refresh", 1, Mode::Reconcile).await;
    assert_ok(&r2);
    assert_eq!(
        lake_state(&h).await["pipelines"]["p-1"]["updates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_pipeline_update_that_fails_fails_the_step_with_the_reason() {
    let steps = r#"      - { id: settle, kind: wait, for: 2m }
      - { id: refresh, kind: lake.full_refresh, databricks: dbx, tables: [account] }"#;
    let h = start(Some(&scenario("", "    fail_updates: 1")), &runbook(steps)).await;
    assert_ok(&h.run("settle").await);
    let r = h.run("refresh").await;
    let msg = failure(&r);
    assert!(msg.contains("ended FAILED"), "{msg}");
    match &r.outcome {
        StepOutcome::Failed { reason, .. } => {
            assert!(
                reason.as_deref().unwrap_or("").contains("simulated failure"),
                "{reason:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

pub(crate) const PARITY: &str = r#"
name: lake-parity
seed: 11
time_scale: 600
companies: [USMF, USRT]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 2, fields: { Name: name } }
    CustomersV3:
      key: CustomerAccount
      rows: { USMF: 60, USRT: 40 }
      fields: { OrganizationName: name, CreditLimit: amount }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: customers
    source: CustomersV3
    target: accounts
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name, CreditLimit: creditlimit }
    corrupt_share: 0.1
    initial: { status: stopped, preloaded: true }
lake:
  account: contosolake
  container: dataverse-contoso-unq1
  interval: 1m
  databricks:
    pipelines: [p-1]
    update_duration: 30s
    statement_duration: STATEMENT
"#;

fn parity_runbook() -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        r#"runbook: lake-parity
version: 1.0.0
environments:
  fno: {{ kind: fno, url: {}, {auth} }}
  dataverse: {{ kind: dataverse, url: {}, {auth} }}
  lake: {{ kind: adls, account: contosolake, container: dataverse-contoso-unq1, {auth} }}
  dbx: {{ kind: databricks, url: "https://adb-1234567890123456.7.azuredatabricks.net", warehouse_id: w1, pipelines: {{ d365: p-1 }}, {auth} }}
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name, CreditLimit: creditlimit }}
phases:
  - id: p
    steps:
      - {{ id: settle, kind: wait, for: 2m }}
      - {{ id: ingest, kind: lake.full_refresh, databricks: dbx, tables: [account, cdm_company, mserp_customersv3] }}
      - {{ id: rows-api, kind: reconcile, maps: [customers], sample: 5, max_differences: 1000 }}
      - {{ id: rows-lake, kind: reconcile, engine: lake, databricks: dbx, maps: [customers], sample: 5, max_differences: 1000 }}
"#,
        exec_support::FNO,
        exec_support::DV
    )
}

/// (company, matching, missing, extra, different, sample keys with their differing fields).
pub(crate) type Reconciled = (Option<String>, u64, u64, u64, u64, Vec<String>);

/// The `RowsReconciled` of one step.
pub(crate) fn reconciled(events: &[cutover::engine::Envelope], step: &str) -> Vec<Reconciled> {
    reconciled_of(events.iter().map(|e| &e.event), step)
}

/// [`reconciled`] of events not (yet) journaled.
pub(crate) fn reconciled_of<'a>(events: impl Iterator<Item = &'a Event>, step: &str) -> Vec<Reconciled> {
    let mut v: Vec<_> = events
        .filter_map(|e| match e {
            Event::RowsReconciled {
                step: s,
                company,
                matching,
                missing,
                extra,
                different,
                sample,
                ..
            } if s.as_str() == step => Some((
                company.clone(),
                *matching,
                *missing,
                *extra,
                *different,
                sample
                    .iter()
                    .map(|d| {
                        let f: Vec<String> = d
                            .fields
                            .iter()
                            .map(|f| format!("{}={}/{}", f.field, f.source, f.target))
                            .collect();
                        format!("{:?} {} {}", d.class, d.key, f.join(";"))
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_lake_engine_finds_what_the_api_engine_finds_in_one_statement_per_map() {
    let h = start(Some(&PARITY.replace("STATEMENT", "20s")), &parity_runbook()).await;
    assert_ok(&h.run("settle").await);
    // The exporter looks at the tables when asked: every table's rows in a closed folder before the ingest.
    until_exported(&h, "mserp_customersv3", "the customers", |_| true).await;
    assert_ok(&h.run("ingest").await);
    let api = h.run("rows-api").await;
    assert_ok(&api);
    let lake = h.run("rows-lake").await;
    assert_ok(&lake);
    let events = h.events().await;
    let (a, l) = (reconciled(&events, "rows-api"), reconciled(&events, "rows-lake"));
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(a.iter().any(|r| r.4 > 0), "the corrupt rows are found: {a:?}");
    assert_eq!(a, l, "the API engine and the lake engine agree row for row");
    assert_eq!(api.outputs, lake.outputs);
    // One statement for the map, whatever the number of companies and rows.
    let statements = crate::support::sim::request_log(&h.sim.url())
        .await
        .into_iter()
        .filter(|(m, p)| m == "POST" && p == "/api/2.0/sql/statements")
        .count();
    assert_eq!(statements, 1);
}

#[tokio::test]
async fn a_cancelled_lake_reconcile_cancels_its_statement_on_the_warehouse() {
    let h = start(Some(&PARITY.replace("STATEMENT", "10h")), &parity_runbook()).await;
    assert_ok(&h.run("settle").await);
    // The exporter looks at the tables when asked: every table's rows in a closed folder before the ingest.
    until_exported(&h, "mserp_customersv3", "the customers", |_| true).await;
    assert_ok(&h.run("ingest").await);
    let ctx = h.ctx("rows-lake", 1).await;
    let cancel = ctx.cancel.clone();
    let url = h.sim.url();
    tokio::spawn(async move {
        // Cancel once the statement is on the warehouse.
        loop {
            let log = crate::support::sim::request_log(&url).await;
            if log
                .iter()
                .any(|(m, p)| m == "POST" && p == "/api/2.0/sql/statements")
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        cancel.cancel();
    });
    let r = cutover::engine::exec::execute(&ctx, None, Mode::Fresh).await;
    let msg = failure(&r);
    assert!(msg.contains("cancelled with the step (cancel sent)"), "{msg}");
    let log = crate::support::sim::request_log(&h.sim.url()).await;
    let cancels: Vec<&(String, String)> = log.iter().filter(|(_, p)| p.ends_with("/cancel")).collect();
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    // The warehouse says so.
    let id = cancels[0]
        .1
        .trim_start_matches("/api/2.0/sql/statements/")
        .trim_end_matches("/cancel");
    let c = cutover::connectors::net::client().unwrap();
    let tok = crate::support::sim::token(
        &c,
        &h.sim.url(),
        "c-0000",
        SECRET,
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    )
    .await;
    let v: Value = c
        .get(format!("{}/api/2.0/sql/statements/{id}", h.sim.url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"]["state"], "CANCELED");
}

/// The parity scenario's runbook with the export as an `adls` environment and three reconciles of the same
/// map: through the APIs, on this machine over the export folders, and on the SQL warehouse.
fn embedded_runbook() -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        r#"runbook: lake-embedded
version: 1.0.0
environments:
  fno: {{ kind: fno, url: {}, {auth} }}
  dataverse: {{ kind: dataverse, url: {}, {auth} }}
  lake: {{ kind: adls, account: contosolake, container: dataverse-contoso-unq1, {auth} }}
  dbx: {{ kind: databricks, url: "https://adb-1234567890123456.7.azuredatabricks.net", warehouse_id: w1, pipelines: {{ d365: p-1 }}, {auth} }}
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name, CreditLimit: creditlimit }}
phases:
  - id: p
    steps:
      - {{ id: ingest, kind: lake.full_refresh, databricks: dbx, tables: [account, cdm_company, mserp_customersv3] }}
      - {{ id: rows-api, kind: reconcile, maps: [customers], sample: 1000, max_differences: 1000 }}
      - {{ id: rows-here, kind: reconcile, engine: lake, maps: [customers], sample: 1000, max_differences: 1000 }}
      - {{ id: rows-warehouse, kind: reconcile, engine: lake, databricks: dbx, maps: [customers], sample: 1000, max_differences: 1000 }}
"#,
        exec_support::FNO,
        exec_support::DV
    )
}

/// The first `n` customer accounts of a company in F&O, in key order.
pub(crate) async fn customer_keys(h: &exec_support::Harness, company: &str, n: usize) -> Vec<String> {
    let fno = h.envs.fno("fno").unwrap();
    fno.read(
        "CustomersV3",
        Some(&format!("dataAreaId eq '{company}'")),
        &[],
        Some("CustomerAccount"),
        n,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| r["CustomerAccount"].as_str().unwrap().to_owned())
    .collect()
}

/// The `accountid` of a company's account, and the company's `cdm_companyid`.
pub(crate) async fn account_id(h: &exec_support::Harness, key: &str, company: &str) -> (String, String) {
    let (dv, c) = (
        h.envs.dataverse("dataverse").unwrap(),
        tokio_util::sync::CancellationToken::new(),
    );
    let cid = dv.company_id(company, &c).await.unwrap().unwrap();
    let rows = dv
        .find_by_key_where(
            "accounts",
            "accountnumber",
            key,
            Some(&cutover::connectors::dataverse::company_filter(
                "msdyn_company",
                &cid,
            )),
            &[],
            &c,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{key}");
    (rows[0]["accountid"].as_str().unwrap().to_owned(), cid)
}

/// Renames an account through the Web API (`PATCH accounts(id)`), as a user would.
pub(crate) async fn rename_account(h: &exec_support::Harness, id: &str, name: &str) {
    let c = cutover::connectors::net::client().unwrap();
    let tok = crate::support::sim::token(
        &c,
        &h.sim.url(),
        "c-0000",
        SECRET,
        &format!("{}/.default", exec_support::DV),
    )
    .await;
    let r = c
        .patch(format!("{}/api/data/v9.2/accounts({id})", h.sim.url()))
        .bearer_auth(&tok)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
}

/// One exported record: (folder, Id, IsDelete, the record).
pub(crate) type Exported = (String, String, bool, Vec<String>);

/// Every record of `table` in the export's closed folders, in folder order.
pub(crate) async fn exported(h: &exec_support::Harness, table: &str) -> Vec<Exported> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let (blob, root) = h.envs.scoped(None).blob("lake").unwrap();
    let export = cutover::connectors::lake::Export { blob: &blob, root };
    let mut out = Vec::new();
    for f in export.state(&cancel).await.unwrap().folders {
        if !f.closed {
            continue;
        }
        for r in export.records(&f.name, table, &cancel).await.unwrap() {
            out.push((f.name.clone(), r[0].clone(), r[4] == "True", r));
        }
    }
    out
}

/// Waits (reading the export is what makes the simulator's exporter look at its tables) until the closed
/// folders hold a record of `table` that `pred` accepts; returns every record.
pub(crate) async fn until_exported(
    h: &exec_support::Harness,
    table: &str,
    what: &str,
    pred: impl Fn(&Exported) -> bool,
) -> Vec<Exported> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let records = exported(h, table).await;
        if records.iter().any(&pred) {
            return records;
        }
        assert!(std::time::Instant::now() < deadline, "never exported: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_embedded_lake_engine_reads_the_export_folders_and_agrees_with_the_api_and_the_warehouse_row_for_row()
 {
    let h = start(Some(&PARITY.replace("STATEMENT", "20s")), &embedded_runbook()).await;
    let Planted {
        usmf,
        usrt,
        gone,
        twice,
        records,
        ..
    } = plant(&h).await;

    // The export holds what the engine must get right: the deleted row exported, then an IsDelete record of
    // it in a later folder; the renamed row in two later folders, one name each.
    let of = |id: &str| -> Vec<&Exported> { records.iter().filter(|r| r.1 == id).collect() };
    let deleted = of(&gone);
    assert!(deleted.len() >= 2 && !deleted[0].2, "{deleted:?}");
    assert!(deleted.last().unwrap().2, "an IsDelete record last: {deleted:?}");
    assert!(
        deleted.last().unwrap().0 > deleted[0].0,
        "in a later folder: {deleted:?}"
    );
    let renamed = of(&twice);
    let folder_of = |name: &str| {
        renamed
            .iter()
            .find(|r| r.3.iter().any(|v| v == name))
            .map(|r| r.0.clone())
            .unwrap()
    };
    assert!(
        folder_of("First Rename Ltd") < folder_of("Second Rename Ltd"),
        "two folders: {renamed:?}"
    );

    assert_ok(&h.run("ingest").await);
    let api = h.run("rows-api").await;
    assert_ok(&api);
    let here = h.run("rows-here").await;
    assert_ok(&here);
    let warehouse = h.run("rows-warehouse").await;
    assert_ok(&warehouse);
    let events = h.events().await;
    let (a, e, w) = (
        reconciled(&events, "rows-api"),
        reconciled(&events, "rows-here"),
        reconciled(&events, "rows-warehouse"),
    );
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(
        a, e,
        "the API engine and the embedded lake engine agree row for row"
    );
    assert_eq!(e, w, "the embedded engine and the warehouse agree row for row");
    assert_eq!(api.outputs, here.outputs);
    // The planted rows, each in its class and company (and the corrupt ones as different).
    let usmf_row = e.iter().find(|r| r.0.as_deref() == Some("USMF")).unwrap();
    let usrt_row = e.iter().find(|r| r.0.as_deref() == Some("USRT")).unwrap();
    assert_eq!((usmf_row.2, usmf_row.3), (1, 1), "{usmf_row:?}");
    assert_eq!((usrt_row.2, usrt_row.3), (1, 1), "{usrt_row:?}");
    assert!(usmf_row.4 > 1 && usrt_row.4 > 0, "{usmf_row:?} {usrt_row:?}");
    assert!(
        usmf_row.5.contains(&format!("Missing {} ", usmf[0])),
        "{usmf_row:?}"
    );
    assert!(
        usmf_row.5.contains(&"Extra ZZ-EXTRA-1 ".to_owned()),
        "{usmf_row:?}"
    );
    assert!(
        usmf_row
            .5
            .iter()
            .any(|s| s.starts_with(&format!("Different {} ", usmf[1])) && s.ends_with("/Second Rename Ltd")),
        "the latest name wins: {usmf_row:?}"
    );
    assert!(
        usrt_row.5.contains(&format!("Missing {} ", usrt[0])),
        "{usrt_row:?}"
    );
    // Nothing of the comparison is left beside the journal.
    let left: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".lake.") || n.contains(".reconcile."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// What [`plant`] planted: the first USMF and USRT keys, the ids of the deleted and renamed accounts, and
/// every exported account record (USRT's deleted row among them, its `IsDelete` record exported) once the last change is in a closed folder.
pub(crate) struct Planted {
    pub usmf: Vec<String>,
    pub usrt: Vec<String>,
    pub gone: String,
    pub twice: String,
    pub records: Vec<Exported>,
}

/// Plants differences on the Dataverse side of the parity scenario, each exported before the next:
/// USMF: a row deleted after its export (missing), one created (extra), one renamed twice across folders;
/// USRT: a swap (one deleted, one created).
pub(crate) async fn plant(h: &exec_support::Harness) -> Planted {
    let usmf = customer_keys(h, "usmf", 2).await;
    let usrt = customer_keys(h, "usrt", 1).await;
    let dv = h.envs.dataverse("dataverse").unwrap();
    let c = tokio_util::sync::CancellationToken::new();
    let (gone, usmf_id) = account_id(h, &usmf[0], "USMF").await;
    let (twice, _) = account_id(h, &usmf[1], "USMF").await;
    // Every account is in a closed folder before anything is planted.
    until_exported(h, "account", "the account to delete", |r| r.1 == gone).await;
    // USMF: a row deleted after its export (missing), one created (extra), one renamed twice across folders.
    dv.delete("accounts", &gone, &c).await.unwrap();
    let body = json!({"accountnumber": "ZZ-EXTRA-1", "name": "Nobody Ltd", "msdyn_company@odata.bind": format!("/cdm_companies({usmf_id})")});
    dv.create("accounts", &body, None, &c).await.unwrap();
    rename_account(h, &twice, "First Rename Ltd").await;
    until_exported(h, "account", "the first rename", |r| {
        r.3.iter().any(|v| v == "First Rename Ltd")
    })
    .await;
    rename_account(h, &twice, "Second Rename Ltd").await;
    // USRT: a swap, so its counts still agree.
    let (gone2, usrt_id) = account_id(h, &usrt[0], "USRT").await;
    dv.delete("accounts", &gone2, &c).await.unwrap();
    let body = json!({"accountnumber": "ZZ-EXTRA-2", "name": "Swapped In Ltd", "msdyn_company@odata.bind": format!("/cdm_companies({usrt_id})")});
    dv.create("accounts", &body, None, &c).await.unwrap();
    until_exported(h, "account", "the second rename", |r| {
        r.3.iter().any(|v| v == "Second Rename Ltd")
    })
    .await;
    // The delete came after the rename and may land in a later folder: waited for on its own.
    let records = until_exported(h, "account", "the swapped-out row's delete", |r| {
        r.1 == gone2 && r.2
    })
    .await;
    assert!(
        records
            .iter()
            .any(|r| r.3.iter().any(|v| v == "Second Rename Ltd")),
        "{records:?}"
    );

    Planted {
        usmf,
        usrt,
        gone,
        twice,
        records,
    }
}
