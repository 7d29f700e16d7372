//! `dmf.export` / `dmf.import` against the simulator: install records, "Succeeded" with target errors and
//! PartiallySucceeded as failures, and a reconciled in-flight import that is polled, never re-submitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::connectors::dmf::ImportRequest;
use cutover::engine::event::Event;
use cutover::engine::exec::{self, Mode};
use exec_support::{Harness, assert_ok, environments, failure, reason, start};
use tokio_util::sync::CancellationToken;

fn runbook() -> String {
    format!(
        r#"runbook: exec-dmf
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - {{ id: export, kind: dmf.export, env: fno, definition_group: CutoverSnapshot, package: "Snapshot-${{run.date}}" }}
      - id: import
        kind: dmf.import
        env: fno
        definition_group: CutoverDelta
        package_file: packages/reference-data.zip
        package_version: 1.0.0
        legal_entity: USMF
      - id: recorded-import
        kind: dmf.import
        env: fno
        definition_group: CutoverDelta
        package_file: packages/reference-data.zip
        record_install: {{ env: fno, entity: CutoverInstallRecords }}
      - id: bad-import
        kind: dmf.import
        env: fno
        definition_group: CustomerLoad
        package_file: packages/reference-data.zip
      - id: partial-import
        kind: dmf.import
        env: fno
        definition_group: VendorLoad
        package_file: packages/reference-data.zip
"#,
        environments(false)
    )
}

fn installs(events: &[cutover::engine::Envelope]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::InstallRecord {
                step,
                sha256,
                execution_id,
                result,
                ..
            } => Some((
                step.as_str().to_owned(),
                sha256.clone(),
                execution_id.clone(),
                result.clone(),
            )),
            _ => None,
        })
        .collect()
}

async fn handle_id(h: &Harness, step: &str, attempt: u32) -> String {
    let ctx = h.ctx(step, attempt).await;
    exec::handle_for(&ctx.step, &h.run_id, attempt).unwrap().id
}

#[tokio::test]
async fn export_and_import_leave_install_records() {
    let h = start(None, &runbook()).await;
    let r = h.run("export").await;
    assert_ok(&r);
    let id = handle_id(&h, "export", 1).await;
    assert_eq!(r.outputs["execution_id"], id);
    assert!(!r.outputs["package_path"].contains("sig="), "no SAS in outputs");
    assert_eq!(h.effect(&format!("dmf.export:{id}")), 1);

    let r = h.run("import").await;
    assert_ok(&r);
    let id = handle_id(&h, "import", 1).await;
    assert_eq!(h.effect(&format!("dmf.import:{id}")), 1);
    let ins = installs(&h.events().await);
    assert_eq!(ins.len(), 1);
    let zip = std::fs::read(h.dir.path().join("packages/reference-data.zip")).unwrap();
    assert_eq!(ins[0].1, cutover::connectors::dmf::package_sha256(&zip));
    assert_eq!((ins[0].2.as_str(), ins[0].3.as_str()), (id.as_str(), "Succeeded"));
}

#[tokio::test]
async fn reconcile_polls_a_known_import_and_submits_an_unknown_one_once() {
    let h = start(None, &runbook()).await;
    // The "crash": intent journaled, the package uploaded and the import submitted, no result journaled.
    let ctx = h.ctx("import", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 1,
            handle: Some(handle.clone()),
        })
        .await
        .unwrap();
    let dmf = h.envs.dmf("fno").unwrap();
    let cancel = CancellationToken::new();
    let zip = std::fs::read(h.dir.path().join("packages/reference-data.zip")).unwrap();
    let w = dmf
        .write_url(&format!("{}-reference-data", handle.id), &cancel)
        .await
        .unwrap();
    dmf.upload(&w.blob_url, &zip, &cancel).await.unwrap();
    let req = ImportRequest {
        definition_group: "CutoverDelta".into(),
        execution_id: handle.id.clone(),
        legal_entity: "USMF".into(),
        overwrite: false,
        entities: vec![],
    };
    dmf.submit_import(&req, &w.blob_url, &cancel).await.unwrap();
    assert_eq!(h.effect(&format!("dmf.import:{}", handle.id)), 1);

    let r = h.run_mode("import", 1, Mode::Reconcile).await;
    assert_ok(&r);
    assert_eq!(
        h.effect(&format!("dmf.import:{}", handle.id)),
        1,
        "a known executionId is polled, not re-submitted"
    );

    // A crash before the submit: the service does not know the id, so it is submitted once with it.
    let id2 = handle_id(&h, "import", 2).await;
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 2,
            handle: Some(cutover::engine::event::Handle {
                kind: "dmf.import".into(),
                id: id2.clone(),
            }),
        })
        .await
        .unwrap();
    assert_ok(&h.run_mode("import", 2, Mode::Reconcile).await);
    assert_eq!(h.effect(&format!("dmf.import:{id2}")), 1);
}

const TARGET_ERRORS: &str = include_str!("../../../runbooks/scenarios/dmf-target-errors.yaml");

#[tokio::test]
async fn succeeded_with_target_errors_and_partially_succeeded_fail() {
    let h = start(Some(TARGET_ERRORS), &runbook()).await;
    let (bad, partial) = tokio::join!(h.run("bad-import"), h.run("partial-import"));
    let msg = failure(&bad);
    assert!(msg.contains("Succeeded with errors"), "{msg}");
    assert!(msg.contains("Customers V3"), "{msg}");
    let why = reason(&bad).expect("the execution's errors are journaled as the reason");
    assert!(
        why.contains("Customers V3") && !why.contains("finished as"),
        "{why}"
    );
    let msg = failure(&partial);
    assert!(msg.contains("PartiallySucceeded"), "{msg}");
    assert!(reason(&partial).is_some());
    let ins = installs(&h.events().await);
    let result_of = |s: &str| ins.iter().find(|i| i.0 == s).map(|i| i.3.clone());
    assert_eq!(result_of("bad-import").as_deref(), Some("Succeeded with errors"));
    assert_eq!(result_of("partial-import").as_deref(), Some("PartiallySucceeded"));
}

#[tokio::test]
async fn an_install_record_that_cannot_be_written_back_fails_the_step_after_the_journal_has_it() {
    let h = start(None, &runbook()).await;
    let msg = failure(&h.run("recorded-import").await);
    assert!(
        msg.contains("succeeded, but its install record could not be written")
            && msg.contains("CutoverInstallRecords"),
        "{msg}"
    );
    let ins = installs(&h.events().await);
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].3, "Succeeded");
}
