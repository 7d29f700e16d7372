//! Damaged JSON bodies (truncated or malformed, as a flaky proxy or a dropped connection leaves
//! them): retried like a transient fault for idempotent calls, within the retry budget, then a
//! `BadBody` naming environment, call and "invalid JSON"; never repeated for a create without a
//! handle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::fno::FnoClient;
use cutover::connectors::transport::RetryPolicy;
use serde_json::json;

const YAML: &str = r#"
name: bad-json
time_scale: 600
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF, USRT]
fno:
  page_size: 10
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30, USRT: 20 } }
  dataverse:
    accounts: { key: accountnumber, rows: 70, fields: { name: name } }
"#;

#[tokio::test]
async fn intermittently_truncated_pages_are_retried_and_the_read_is_exact() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "truncated_rate": 0.4}])).await;
    let policy = RetryPolicy {
        retries: 8,
        ..fast_policy()
    };
    let fno = FnoClient::new(h.transport("fno", FNO, policy));
    for _ in 0..3 {
        let rows = fno
            .read("CustomersV3", None, &[], None, usize::MAX, &h.cancel)
            .await
            .unwrap();
        assert_eq!(rows.len(), 50);
    }
    let retried: Vec<_> = h
        .summaries()
        .into_iter()
        .filter(|s| {
            s.error
                .as_deref()
                .is_some_and(|e| e.starts_with("invalid JSON: truncated JSON"))
        })
        .collect();
    assert!(!retried.is_empty(), "the damage happened");
    assert!(
        retried.iter().all(|s| s.retry_in_ms.is_some()),
        "each damaged body was retried: {retried:?}"
    );
}

#[tokio::test]
async fn a_body_that_stays_malformed_fails_naming_env_call_and_invalid_json_after_the_budget() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "dataverse", "malformed_rate": 1.0}]))
        .await;
    let policy = RetryPolicy {
        retries: 2,
        ..fast_policy()
    };
    let dv =
        cutover::connectors::dataverse::DataverseClient::new(h.transport("dataverse", DATAVERSE, policy));
    let err = dv.who_am_i(&h.cancel).await.unwrap_err();
    assert!(matches!(err, ConnectorError::BadBody { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("dataverse: dataverse.")
            && text.contains("invalid JSON: malformed JSON")
            && text.contains("(after 3 attempts)"),
        "{text}"
    );
    let gets = h
        .summaries()
        .iter()
        .filter(|s| s.env == "dataverse" && s.method == "GET")
        .count();
    assert_eq!(gets, 3, "one attempt plus two retries");
}

#[tokio::test]
async fn a_create_without_a_handle_whose_answer_is_damaged_is_not_repeated() {
    let h = start(YAML).await;
    h.faults(
        json!([{"service": "dataverse", "path_prefix": "/api/data/v9.2/accounts", "truncated_rate": 1.0}]),
    )
    .await;
    let err = h
        .dataverse()
        .create(
            "accounts",
            &json!({"accountnumber": "CANARY-2", "name": "x"}),
            None,
            &h.cancel,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::BadBody { .. }), "{err}");
    assert!(err.to_string().contains("not repeated"), "{err}");
    let posts = h
        .summaries()
        .iter()
        .filter(|s| s.method == "POST" && s.env == "dataverse")
        .count();
    assert_eq!(posts, 1, "a create with no handle must not be sent twice");
    assert_eq!(h.side_effect("canary.create:CANARY-2").await, 1);
}

/// A long job's status reads failing for a while (a throttling or failing status endpoint) do not
/// give the job up: the poll carries on until its own deadline and sees the job finish.
#[tokio::test]
async fn a_dmf_poll_rides_out_failing_status_reads_until_its_deadline() {
    use cutover::connectors::dmf::{DmfClient, ExecutionStatus, ExportRequest, Poll};
    const DMF: &str = r#"
name: dmf-poll
time_scale: 600
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30 } }
dmf:
  definition_groups:
    Snapshot:
      job: { queued: 5, duration: 30, outcome: Succeeded }
      entities: [{ name: Customers V3, entity_set: CustomersV3 }]
"#;
    let h = start(DMF).await;
    let policy = RetryPolicy {
        retries: 1,
        ..fast_policy()
    };
    let dmf = DmfClient::new(h.transport("fno", FNO, policy));
    let req = ExportRequest {
        definition_group: "Snapshot".into(),
        package_name: "Snapshot-poll".into(),
        execution_id: "exec-poll-1".into(),
        legal_entity: "USMF".into(),
        re_execute: false,
    };
    let id = dmf.submit_export(&req, &h.cancel).await.unwrap();
    // Every status read fails now; the fault is lifted only after several reads have failed.
    h.faults(json!([{"service": "fno", "path_prefix": "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionSummaryStatus", "server_error_rate": 1.0}]))
        .await;
    let poll = Poll {
        every: std::time::Duration::from_millis(20),
        timeout: std::time::Duration::from_secs(30),
    };
    let failing_reads = || {
        h.summaries()
            .iter()
            .filter(|s| s.call.contains("GetExecutionSummaryStatus") && s.status == Some(503))
            .count()
    };
    let waited = dmf.wait_terminal(&id, poll, &h.cancel, |_| {});
    let lift = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while failing_reads() < 6 {
            assert!(
                std::time::Instant::now() < deadline,
                "the status reads never failed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        h.faults(json!([])).await;
    };
    let (status, ()) = tokio::join!(waited, lift);
    assert_eq!(status.unwrap(), ExecutionStatus::Succeeded);
    assert!(failing_reads() >= 6);
    assert_eq!(h.side_effect("dmf.export:exec-poll-1").await, 1);
}
