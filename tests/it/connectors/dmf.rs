//! DMF export and import against the simulator: success, "Succeeded" with target errors and PartiallySucceeded as
//! failures, and a resumed engine that polls an execution it journaled without submitting it again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use std::time::Duration;

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::dmf::{ExecutionStatus, ExportRequest, ImportRequest, Poll, package_sha256};

const YAML: &str = r#"
name: dmf
time_scale: 600
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF, USRT]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30, USRT: 20 } }
  dataverse:
    accounts: { key: accountnumber, rows: 50 }
dmf:
  definition_groups:
    CleanImport:
      job: { queued: 5, duration: 30, outcome: Succeeded, error_file_delay: 10 }
      entities: [{ name: Customers V3, entity_set: CustomersV3, rows: { USMF: 5 } }]
    DirtyImport:
      job: { queued: 5, duration: 30, outcome: Succeeded, error_file_delay: 10 }
      entities: [{ name: Customers V3, entity_set: CustomersV3, rows: { USMF: 5 }, target_errors: 2 }]
    PartialImport:
      job: { queued: 5, duration: 30, outcome: PartiallySucceeded, error_file_delay: 10 }
      entities: [{ name: Customers V3, entity_set: CustomersV3, rows: { USMF: 5 }, staging_errors: 1 }]
    Snapshot:
      job: { queued: 5, duration: 30, outcome: Succeeded }
      entities: [{ name: Customers V3, entity_set: CustomersV3 }]
"#;

const POLL: Poll = Poll {
    every: Duration::from_millis(20),
    timeout: Duration::from_secs(20),
};
/// A package the service can read: its manifest names the groups' one entity.
fn package() -> Vec<u8> {
    cutover::util::dmf_package::build_package("G", None, &[("Customers V3", 1, 1, 1)])
}

fn import(group: &str, id: &str) -> ImportRequest {
    ImportRequest {
        definition_group: group.into(),
        execution_id: id.into(),
        legal_entity: "USMF".into(),
        overwrite: false,
        entities: vec!["Customers V3".into()],
    }
}

#[tokio::test]
async fn a_clean_import_succeeds_once_and_loads_rows() {
    let h = start(YAML).await;
    let dmf = h.dmf();
    let out = dmf
        .import(
            &import("CleanImport", "exec-clean-1"),
            "pkg.zip",
            &package(),
            POLL,
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert_eq!(out.entities.len(), 1);
    assert!(!out.entities[0].target_errors);
    assert_eq!(h.side_effect("dmf.import:exec-clean-1").await, 1);
    assert_eq!(
        h.fno()
            .count("CustomersV3", Some("USMF"), &h.cancel)
            .await
            .unwrap(),
        35
    );
    assert_eq!(package_sha256(&package()).len(), 64);
    // The blob upload went out with its SAS, but the journal only has the signature's key.
    let upload = h
        .summaries()
        .into_iter()
        .find(|s| s.call == "dmf.upload")
        .unwrap();
    assert_eq!(upload.method, "PUT");
    assert!(
        upload.path.contains("sig") && !upload.path.contains("sig="),
        "{}",
        upload.path
    );
}

#[tokio::test]
async fn succeeded_with_target_errors_is_a_failure_with_the_details() {
    let h = start(YAML).await;
    let err = h
        .dmf()
        .import(
            &import("DirtyImport", "exec-dirty-1"),
            "pkg.zip",
            &package(),
            POLL,
            &h.cancel,
        )
        .await
        .unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected JobFailed, got {err}")
    };
    assert_eq!(f.handle, "exec-dirty-1");
    assert_eq!(f.status, "Succeeded with errors");
    assert!(
        f.details.iter().any(|d| d.contains("Customers V3")),
        "{:?}",
        f.details
    );
}

#[tokio::test]
async fn partially_succeeded_is_a_failure() {
    let h = start(YAML).await;
    let err = h
        .dmf()
        .import(
            &import("PartialImport", "exec-partial-1"),
            "pkg.zip",
            &package(),
            POLL,
            &h.cancel,
        )
        .await
        .unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected JobFailed, got {err}")
    };
    assert_eq!(f.status, "PartiallySucceeded");
    assert!(!f.details.is_empty());
}

#[tokio::test]
async fn a_resumed_engine_polls_a_journaled_import_without_resubmitting() {
    let h = start(YAML).await;
    let req = import("CleanImport", "exec-resume-1");
    {
        // The first engine uploads and submits, then "dies" before seeing the result.
        let dmf = h.dmf();
        let w = dmf.write_url("exec-resume-1-pkg.zip", &h.cancel).await.unwrap();
        dmf.upload(&w.blob_url, &package(), &h.cancel).await.unwrap();
        assert_eq!(
            dmf.submit_import(&req, &w.blob_url, &h.cancel).await.unwrap(),
            "exec-resume-1"
        );
    }
    // The resumed engine has only the journaled executionId: it asks, then polls to the end, twice over.
    let dmf = h.dmf();
    let status = dmf.status("exec-resume-1", &h.cancel).await.unwrap();
    assert_ne!(
        status,
        ExecutionStatus::Unknown,
        "the service knows the execution"
    );
    for _ in 0..2 {
        let out = dmf
            .finish_import("exec-resume-1", &req.entities, POLL, &h.cancel)
            .await
            .unwrap();
        assert_eq!(out.status, ExecutionStatus::Succeeded);
    }
    assert_eq!(
        h.side_effect("dmf.import:exec-resume-1").await,
        1,
        "polling never re-submits"
    );
    assert_eq!(
        dmf.status("never-submitted", &h.cancel).await.unwrap(),
        ExecutionStatus::Unknown
    );
}

#[tokio::test]
async fn an_export_returns_a_downloadable_package_url() {
    let h = start(YAML).await;
    let req = ExportRequest {
        definition_group: "Snapshot".into(),
        package_name: "Snapshot-2026-11-27".into(),
        execution_id: "exec-export-1".into(),
        legal_entity: "USMF".into(),
        re_execute: false,
    };
    let out = h.dmf().export(&req, POLL, &h.cancel).await.unwrap();
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    let bytes = h
        .client
        .get(&out.package_url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(bytes.starts_with(b"PK"), "a zip archive");
    assert_eq!(h.side_effect("dmf.export:exec-export-1").await, 1);
}

#[tokio::test]
async fn a_submit_with_its_execution_id_is_retried_through_5xx_and_runs_once() {
    let h = start(YAML).await;
    h.faults(serde_json::json!([{"service": "fno", "path_prefix": "/data/DataManagementDefinitionGroups", "server_error_rate": 0.5}])).await;
    let out = h
        .dmf()
        .import(
            &import("CleanImport", "exec-5xx-1"),
            "pkg.zip",
            &package(),
            POLL,
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExecutionStatus::Succeeded);
    assert!(
        h.summaries().iter().any(|s| s.status.is_some_and(|c| c >= 500)),
        "the burst happened"
    );
    assert_eq!(
        h.side_effect("dmf.import:exec-5xx-1").await,
        1,
        "retried submits with the same executionId act once"
    );
}

/// The service documents a re-sent executionId as "Execution Id if it is a rerun": a submit whose answer was
/// lost asks the execution's status first and is not sent again when the service already knows it.
#[tokio::test]
async fn a_submit_whose_answer_was_lost_is_reconciled_by_status_not_re_sent() {
    let h = start(YAML).await;
    h.faults(serde_json::json!([{
        "service": "fno",
        "path_prefix": "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.ExportToPackage",
        "lost_rate": 1.0
    }]))
    .await;
    let req = ExportRequest {
        definition_group: "Snapshot".into(),
        package_name: "Snapshot-lost".into(),
        execution_id: "exec-export-lost".into(),
        legal_entity: "USMF".into(),
        re_execute: false,
    };
    let id = h.dmf().submit_export(&req, &h.cancel).await.unwrap();
    assert_eq!(id, "exec-export-lost");
    assert_eq!(
        h.side_effect("dmf.export:exec-export-lost").await,
        1,
        "one execution: the submit was not repeated"
    );
    let submits = h
        .summaries()
        .iter()
        .filter(|s| s.path.contains("ExportToPackage"))
        .count();
    let statuses = h
        .summaries()
        .iter()
        .filter(|s| s.path.contains("GetExecutionSummaryStatus"))
        .count();
    assert_eq!((submits, statuses), (1, 1));
    h.faults(serde_json::json!([])).await;
    let out = h
        .dmf()
        .finish_export("exec-export-lost", POLL, &h.cancel)
        .await
        .unwrap();
    assert_eq!(out.status, ExecutionStatus::Succeeded);
}
