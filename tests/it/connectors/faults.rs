//! Transport behaviour under the simulator's faults: throttling storms with and without Retry-After, 5xx bursts,
//! HTML sign-in pages, truncated JSON, non-idempotent calls in the ambiguous window, exhaustion and cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use std::time::{Duration, Instant};

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::dataverse::DataverseClient;
use cutover::connectors::fno::FnoClient;
use cutover::connectors::transport::RetryPolicy;
use serde_json::json;

const YAML: &str = r#"
name: faults
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
    accounts: { key: accountnumber, rows: 7000 }
"#;

#[tokio::test]
async fn a_429_storm_with_retry_after_is_ridden_out_honouring_the_header() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "throttle_every": 2, "retry_after": 1}]))
        .await;
    let fno = h.fno();
    for _ in 0..3 {
        assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    }
    let throttled: Vec<_> = h
        .summaries()
        .into_iter()
        .filter(|s| s.status == Some(429))
        .collect();
    assert!(!throttled.is_empty());
    assert!(
        throttled.iter().all(|s| s.retry_in_ms == Some(1000)),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn a_429_storm_without_retry_after_uses_backoff_or_the_documented_fallback() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "throttle_every": 2, "retry_after_header": false}]))
        .await;
    let fno = h.fno();
    assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    let waits: Vec<u64> = h
        .summaries()
        .iter()
        .filter(|s| s.status == Some(429))
        .filter_map(|s| s.retry_in_ms)
        .collect();
    assert!(
        !waits.is_empty() && waits.iter().all(|w| *w <= 200),
        "backoff is capped at 200 ms here: {waits:?}"
    );

    let policy = RetryPolicy {
        retry_after_fallback: Some(Duration::from_millis(300)),
        ..fast_policy()
    };
    let fno = FnoClient::new(h.transport("fno-fallback", FNO, policy));
    assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    let waits: Vec<u64> = h
        .summaries()
        .iter()
        .filter(|s| s.env == "fno-fallback" && s.status == Some(429))
        .filter_map(|s| s.retry_in_ms)
        .collect();
    assert!(!waits.is_empty() && waits.iter().all(|w| *w == 300), "{waits:?}");
}

#[tokio::test]
async fn a_5xx_burst_is_ridden_out_and_counts_stay_exact() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "dataverse", "server_error_rate": 0.4}, {"service": "fno", "server_error_rate": 0.4}])).await;
    let dv = h.dataverse();
    let fno = h.fno();
    for _ in 0..4 {
        assert_eq!(
            dv.count("accounts", "accountid", None, &h.cancel)
                .await
                .unwrap()
                .rows,
            7000
        );
        assert_eq!(
            fno.count("CustomersV3", Some("usrt"), &h.cancel).await.unwrap(),
            20
        );
    }
    assert!(
        h.summaries().iter().any(|s| s.status.is_some_and(|c| c >= 500)),
        "the burst happened"
    );
}

#[tokio::test]
async fn an_html_sign_in_page_is_a_clear_error() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "html_signin_rate": 1.0}]))
        .await;
    let err = h
        .fno()
        .read("CustomersV3", None, &[], None, 100, &h.cancel)
        .await
        .unwrap_err();
    match &err {
        ConnectorError::UnexpectedHtml {
            env, path, sign_in, ..
        } => {
            assert_eq!(env, "fno");
            assert!(path.starts_with("/data/CustomersV3"));
            assert!(sign_in);
        }
        other => panic!("expected UnexpectedHtml, got {other}"),
    }
    assert!(err.to_string().contains("sign-in page"), "{err}");
}

#[tokio::test]
async fn truncated_json_is_a_bad_body_naming_env_and_call() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "truncated_rate": 1.0}])).await;
    let err = h
        .fno()
        .read("CustomersV3", None, &[], None, 100, &h.cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::BadBody { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("fno: fno.read CustomersV3"), "{text}");
}

#[tokio::test]
async fn a_create_without_a_handle_is_not_repeated_after_a_5xx() {
    let h = start(YAML).await;
    h.faults(
        json!([{"service": "dataverse", "path_prefix": "/api/data/v9.2/accounts", "server_error_rate": 1.0}]),
    )
    .await;
    let dv = h.dataverse();
    let err = dv
        .create(
            "accounts",
            &json!({"accountnumber": "CANARY-1", "name": "x"}),
            None,
            &h.cancel,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectorError::Ambiguous { .. }), "{err}");
    let posts = h
        .summaries()
        .iter()
        .filter(|s| s.method == "POST" && s.env == "dataverse")
        .count();
    assert_eq!(posts, 1, "a create with no handle must not be sent twice");
}

#[tokio::test]
async fn exhausted_retries_say_how_many_attempts() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "server_error_rate": 1.0}]))
        .await;
    let policy = RetryPolicy {
        retries: 2,
        ..fast_policy()
    };
    let err = FnoClient::new(h.transport("fno", FNO, policy))
        .count("CustomersV3", None, &h.cancel)
        .await
        .unwrap_err();
    match err {
        ConnectorError::TransientExhausted {
            attempts, ref last, ..
        } => {
            assert_eq!(attempts, 3);
            assert!(last.starts_with("HTTP 5"), "{last}");
        }
        other => panic!("expected TransientExhausted, got {other}"),
    }
}

#[tokio::test]
async fn a_long_retry_after_wait_is_cancellable() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "dataverse", "throttle_every": 1, "retry_after": 60}]))
        .await;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_secs(120),
        ..fast_policy()
    };
    let dv = DataverseClient::new(h.transport("dataverse", DATAVERSE, policy));
    let cancel = h.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = dv.who_am_i(&h.cancel).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Cancelled { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the 60 s wait was not cancelled"
    );
    assert!(
        h.summaries().iter().any(|s| s.retry_in_ms == Some(60_000)),
        "the wait was reported before it began"
    );
}

#[tokio::test]
async fn connection_resets_are_ridden_out_for_reads() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "reset_rate": 0.4}])).await;
    let fno = h.fno();
    for _ in 0..4 {
        let rows = fno
            .read("CustomersV3", None, &[], None, usize::MAX, &h.cancel)
            .await
            .unwrap();
        assert_eq!(rows.len(), 50);
    }
    assert!(
        h.summaries()
            .iter()
            .any(|s| s.status.is_none() && s.error.is_some()),
        "resets happened"
    );
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_a_timeout() {
    let h = start(YAML).await;
    h.faults(json!([{"service": "fno", "slow_rate": 1.0, "slow_chunk_ms": 400}]))
        .await;
    let policy = RetryPolicy {
        retries: 1,
        timeout: Duration::from_millis(300),
        ..fast_policy()
    };
    let err = FnoClient::new(h.transport("fno", FNO, policy))
        .read("CustomersV3", None, &[], None, 100, &h.cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Timeout { after_ms: 300, .. }),
        "{err}"
    );
}
