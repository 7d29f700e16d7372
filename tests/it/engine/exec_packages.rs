//! `dmf.import` packages at run time: the pin and the manifest are checked on the bytes about to be uploaded, and
//! a package that fails them is refused before anything reaches the service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;
use crate::support::sim::request_log;

use exec_support::{assert_ok, environments, failure, start};

fn runbook(fields: &str) -> String {
    format!(
        r#"runbook: exec-packages
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - id: import
        kind: dmf.import
        env: fno
        definition_group: CutoverDelta
        package_file: packages/reference-data.zip
{fields}"#,
        environments(false)
    )
}

fn dmf_requests(log: &[(String, String)]) -> Vec<String> {
    log.iter()
        .filter(|(_, p)| p.contains("DataManagementDefinitionGroups") || p.contains("/_blob/"))
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

#[tokio::test]
async fn a_package_whose_hash_differs_from_the_pin_is_refused_before_anything_is_sent() {
    let pin = "ab".repeat(32);
    let h = start(None, &runbook(&format!("        package_sha256: \"{pin}\"\n"))).await;
    let msg = failure(&h.run("import").await);
    let zip = std::fs::read(h.dir.path().join("packages/reference-data.zip")).unwrap();
    let actual = cutover::util::sha256_hex(&zip);
    assert!(
        msg.contains("nothing was sent") && msg.contains(&actual) && msg.contains(&pin),
        "{msg}"
    );
    let log = request_log(&h.sim.url()).await;
    assert!(dmf_requests(&log).is_empty(), "{:?}", dmf_requests(&log));

    // The right pin imports.
    let h = start(
        None,
        &runbook(&format!(
            "        package_sha256: {actual}\n        package_version: 1.0.0\n"
        )),
    )
    .await;
    assert_ok(&h.run("import").await);
}

#[tokio::test]
async fn a_manifest_version_that_differs_from_package_version_is_refused_before_anything_is_sent() {
    let h = start(None, &runbook("        package_version: 2.0.0\n")).await;
    let msg = failure(&h.run("import").await);
    assert!(
        msg.contains("is version 1.0.0 (its Manifest.xml), but package_version is 2.0.0"),
        "{msg}"
    );
    assert!(dmf_requests(&request_log(&h.sim.url()).await).is_empty());
}

/// A fresh environment: no customer groups and no customers yet; customers depend on customer groups.
fn fresh_scenario(groups_rows: u64) -> String {
    format!(
        r#"
seed: 5
time_scale: 600
companies: [USMF]
default_company: USMF
entities:
  fno:
    CustomerGroups: {{ key: CustomerGroupId, rows: {groups_rows} }}
    CustomersV3: {{ key: CustomerAccount, rows: {{ USMF: 0 }} }}
  dataverse:
    msdyn_customergroups: {{ key: msdyn_groupid }}
    accounts: {{ key: accountnumber }}
maps:
  - {{ name: customer_groups, source: CustomerGroups, target: msdyn_customergroups }}
  - {{ name: customers, source: CustomersV3, target: accounts, depends_on: [customer_groups] }}
dmf:
  default_job: {{ queued: 10s, duration: 1m, outcome: Succeeded }}
  definition_groups:
    MasterData:
      job: {{ queued: 10s, duration: 1m, outcome: Succeeded }}
      entities:
        - {{ name: Customer groups, entity_set: CustomerGroups, rows: 4 }}
        - {{ name: Customers V3, entity_set: CustomersV3, rows: {{ USMF: 20 }} }}
"#
    )
}

fn master_runbook() -> String {
    format!(
        r#"runbook: master-data
version: 1.0.0
{}
maps:
  customer_groups:
    source: fno:CustomerGroups
    target: dataverse:msdyn_customergroups
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    depends_on: [customer_groups]
phases:
  - id: p
    steps:
      - id: import
        kind: dmf.import
        env: fno
        definition_group: MasterData
        package_file: packages/master.zip
        package_version: 1.4.2
        legal_entity: USMF
"#,
        environments(false)
    )
}

fn customers_first() -> Vec<u8> {
    cutover::util::dmf_package::build_package(
        "MasterData",
        Some("1.4.2"),
        &[("Customers V3", 1, 1, 1), ("Customer groups", 1, 2, 1)],
    )
}

#[tokio::test]
async fn customers_before_customer_groups_is_caught_by_validate_and_fails_in_a_fresh_environment() {
    let text = master_runbook();
    // validate: at the step's line.
    let loaded = cutover::runbook::load(&text, "r.yaml");
    let bytes = customers_first();
    let d = cutover::runbook::validate::package_diagnostics(&loaded, "r.yaml", &|_| {
        cutover::runbook::validate::PackageFile::Bytes(bytes.clone())
    });
    let step_line = text.lines().position(|l| l.contains("- id: import")).unwrap() as u32 + 1;
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].is_error() && d[0].code == "package-entity-order" && d[0].line == step_line,
        "{d:?}"
    );

    // The step refuses it before anything is sent...
    let h = start(Some(&fresh_scenario(0)), &text).await;
    std::fs::write(h.dir.path().join("packages/master.zip"), customers_first()).unwrap();
    let msg = failure(&h.run("import").await);
    assert!(
        msg.contains("nothing was sent") && msg.contains("before `Customer groups`"),
        "{msg}"
    );
    assert!(dmf_requests(&request_log(&h.sim.url()).await).is_empty());

    // ...and the simulator, given the same package through the DMF client (what a tool without the check would
    // do): customers import first and fail their reference to the still empty customer groups; the groups then
    // load. The job is PartiallySucceeded, and the per-entity check names Customers V3.
    let (status, details) = import_directly(&h, customers_first()).await;
    assert_eq!(status, "PartiallySucceeded", "{details:?}");
    assert!(
        details
            .iter()
            .any(|d| d.contains("Customers V3") && d.contains("related table 'CustomerGroups'")),
        "{details:?}"
    );
    let state = h.sim.state();
    let count = |set: &str| state["tables"]["fno"][set].as_u64();
    assert_eq!(count("CustomersV3"), Some(0), "{}", state["tables"]);
    assert_eq!(count("CustomerGroups"), Some(4));

    // The same package where the groups already exist (the development environment) imports cleanly...
    let h = start(Some(&fresh_scenario(3)), &text).await;
    let (status, details) = import_directly(&h, customers_first()).await;
    assert_eq!(status, "Succeeded", "{details:?}");
    assert_eq!(h.sim.state()["tables"]["fno"]["CustomersV3"].as_u64(), Some(20));

    // ...and the package in dependency order imports cleanly into the fresh one, through the step.
    let h = start(Some(&fresh_scenario(0)), &text).await;
    std::fs::write(
        h.dir.path().join("packages/master.zip"),
        cutover::util::dmf_package::build_package(
            "MasterData",
            Some("1.4.2"),
            &[("Customer groups", 1, 1, 1), ("Customers V3", 1, 2, 1)],
        ),
    )
    .unwrap();
    assert_ok(&h.run("import").await);
}

/// Uploads and imports `package` into `MasterData` with the DMF client, bypassing the step's checks; returns the
/// terminal status and the failure's details (empty on success).
async fn import_directly(h: &exec_support::Harness, package: Vec<u8>) -> (String, Vec<String>) {
    use cutover::connectors::ConnectorError;
    use cutover::connectors::dmf::{ImportRequest, Poll};
    let dmf = h.envs.dmf("fno").unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let names = cutover::util::dmf_package::read(&package).unwrap().entity_names();
    let req = ImportRequest {
        definition_group: "MasterData".into(),
        execution_id: "direct-1".into(),
        legal_entity: "USMF".into(),
        overwrite: false,
        entities: names,
    };
    let poll = Poll {
        every: std::time::Duration::from_millis(50),
        timeout: std::time::Duration::from_secs(30),
    };
    match dmf.import(&req, "master", &package, poll, &cancel).await {
        Ok(o) => (o.status.as_str().to_owned(), Vec::new()),
        Err(ConnectorError::JobFailed(j)) => (j.status.clone(), j.details.clone()),
        Err(e) => panic!("{e}"),
    }
}

fn imports_seen(h: &exec_support::Harness) -> u64 {
    h.sim.state()["side_effects"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("dmf.import:"))
        .map(|(_, v)| v.as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn a_failed_install_record_retried_writes_the_record_and_never_imports_again() {
    let h = start(
        None,
        &runbook("        package_version: 1.0.0\n        record_install: { env: dataverse, table: cutover_packageinstall }\n"),
    )
    .await;
    // The table does not exist yet: the import succeeds, the record fails, the step fails saying so.
    let msg = failure(&h.run("import").await);
    assert!(
        msg.contains("succeeded, but its install record could not be written")
            && msg.contains("cutover_packageinstalls"),
        "{msg}"
    );
    assert_eq!(imports_seen(&h), 1);
    let writes = |events: &[cutover::engine::Envelope]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match &e.event {
                cutover::engine::event::Event::InstallRecordWrite { status, target, .. } => {
                    Some(format!("{target} {status}"))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        writes(&h.events().await),
        [
            "dataverse:cutover_packageinstall intent",
            "dataverse:cutover_packageinstall failed"
        ]
    );

    // What `cutover preflight --create-install-table` does: the table and its columns, through the Web API.
    let dv = h.envs.dataverse("dataverse").unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    assert!(
        !cutover::connectors::install_table::exists(&dv, "cutover_packageinstall", &cancel)
            .await
            .unwrap()
    );
    assert!(
        cutover::connectors::install_table::create(&dv, "cutover_packageinstall", &cancel)
            .await
            .unwrap()
    );
    assert!(
        !cutover::connectors::install_table::create(&dv, "cutover_packageinstall", &cancel)
            .await
            .unwrap()
    );

    // The retry (attempt 2): the record is written under the first import's execution id; no second import.
    let first = {
        let ctx = h.ctx("import", 1).await;
        cutover::engine::exec::handle_for(&ctx.step, &h.run_id, 1)
            .unwrap()
            .id
    };
    let r = h.run_mode("import", 2, cutover::engine::exec::Mode::Fresh).await;
    assert_ok(&r);
    assert_eq!(r.outputs["execution_id"], first);
    assert_eq!(imports_seen(&h), 1, "the simulator counts exactly one import");
    let rows = dv
        .find_by_key(
            "cutover_packageinstalls",
            "cutover_executionid",
            &first,
            &[],
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let zip = std::fs::read(h.dir.path().join("packages/reference-data.zip")).unwrap();
    assert_eq!(rows[0]["cutover_sha256"], cutover::util::sha256_hex(&zip));
    assert_eq!(rows[0]["cutover_status"], "Succeeded");
    assert_eq!(rows[0]["cutover_version"], "1.0.0");
    assert_eq!(rows[0]["cutover_name"], "reference-data");
    assert_eq!(rows[0]["cutover_recordcount"], 2);
    assert!(
        rows[0]["cutover_environment"]
            .as_str()
            .unwrap()
            .starts_with("fno@")
    );
    let w = writes(&h.events().await);
    assert_eq!(
        w.last().map(String::as_str),
        Some("dataverse:cutover_packageinstall written")
    );
}

#[test]
fn validation_knows_which_environments_take_a_record() {
    let case = |ri: &str| -> Vec<String> {
        let text = runbook(&format!("        record_install: {ri}\n"));
        cutover::runbook::validate(&text, "r.yaml", &|_: &str| Some("x".to_owned()), false)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{} {}", d.code, d.message))
            .collect()
    };
    assert!(case("{ env: dataverse }").is_empty());
    assert!(case("{ env: fno, entity: CutoverInstallRecords }").is_empty());
    let e = case("{ env: dualwrite, table: cutover_x }");
    assert!(
        e.iter()
            .any(|m| m.contains("record-install-target")
                && m.contains("only an F&O entity or a Dataverse table")),
        "{e:?}"
    );
    let e = case("{ env: fno }");
    assert!(e.iter().any(|m| m.contains("needs `entity`")), "{e:?}");
    let e = case("{ env: dataverse, entity: X }");
    assert!(e.iter().any(|m| m.contains("takes `table`")), "{e:?}");
}

#[tokio::test]
async fn a_downloaded_snapshot_is_kept_beside_the_journal_with_its_hash_in_the_journal_and_the_report() {
    let text = format!(
        r#"runbook: snapshot
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - {{ id: snapshot, kind: dmf.export, env: fno, definition_group: CutoverSnapshot, package: Friday, download: true }}
"#,
        environments(false)
    );
    let h = start(None, &text).await;
    let r = h.run("snapshot").await;
    assert_ok(&r);
    let rel = r.outputs["package_file"].clone();
    assert_eq!(rel, "evidence/run-0001/snapshot-Friday.zip");
    let bytes = std::fs::read(h.dir.path().join(&rel)).unwrap();
    let sha = cutover::util::sha256_hex(&bytes);
    assert_eq!(r.outputs["package_sha256"], sha);
    // The very bytes of the snapshot: the exported package's manifest lists the group's entities.
    let m = cutover::util::dmf_package::read(&bytes).unwrap();
    assert_eq!(m.entity_names(), ["Customers V3", "Vendors V2"]);
    // Journaled...
    let journaled: Vec<(String, String, u64)> = h
        .events()
        .await
        .iter()
        .filter_map(|e| match &e.event {
            cutover::engine::event::Event::PackageDownloaded {
                file, sha256, bytes, ..
            } => Some((file.clone(), sha256.clone(), *bytes)),
            _ => None,
        })
        .collect();
    assert_eq!(journaled, [(rel.clone(), sha.clone(), bytes.len() as u64)]);
    // ...and in the report (the JSON model and the Markdown).
    let report = cutover::audit::build_report(&h.journal_path, None, true).unwrap();
    assert_eq!(report.downloads.len(), 1);
    assert_eq!(report.downloads[0].sha256, sha);
    assert_eq!(report.downloads[0].file, rel);
    let md = cutover::audit::markdown::render(&report);
    assert!(md.contains("Exported packages kept") && md.contains(&sha), "{md}");
}
