//! Entra ID tokens against the simulator: caching, sharing under concurrency, refresh before expiry, one refresh on
//! 401, and the service's own message on refused credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use std::time::{Duration, Instant};

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::auth::{ClientCredentials, Secret, TokenSource};
use cutover::connectors::fno::FnoClient;

const YAML: &str = r#"
name: auth
time_scale: 600
auth:
  token_ttl: 2
  client_id: cutover-app
  client_secret: s3cret-value-for-tests
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF, USRT]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30, USRT: 20 } }
  dataverse:
    accounts: { key: accountnumber, rows: 50 }
"#;

#[tokio::test]
async fn concurrent_callers_share_one_cached_token() {
    let h = start(YAML).await;
    let fno = h.fno();
    let calls = (0..20).map(|_| fno.count("CustomersV3", None, &h.cancel));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap(), 50);
    }
    let source = h.tokens.source(h.creds(FNO)).unwrap();
    assert_eq!(
        source.fetch_count(),
        1,
        "twenty concurrent calls must share one token request"
    );
    let tokens = h.seen_tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "the redactor hears of every token obtained");
    // Nothing the journal would receive carries the secret or the token.
    let journal = format!("{:?}", h.summaries());
    assert!(!journal.contains(SECRET) && !journal.contains(&tokens[0]));
    assert!(!format!("{source:?}").contains(SECRET));
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let h = start(YAML).await;
    let fno = h.fno();
    let source = h.tokens.source(h.creds(FNO)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while source.fetch_count() < 2 {
        assert!(Instant::now() < deadline, "the 2 s token was never refreshed");
        assert_eq!(
            fno.count("CustomersV3", Some("USMF"), &h.cancel).await.unwrap(),
            30
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Refreshed early (at 90% of its 2 s life), so the service never had to refuse an expired token.
    assert!(
        h.summaries().iter().all(|s| s.status != Some(401)),
        "{:?}",
        h.summaries()
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_then_fails_with_the_services_message() {
    let h = start(YAML).await;
    // A token for Dataverse's audience is refused by F&O: every attempt gets 401.
    let t = h.transport("fno", DATAVERSE, fast_policy());
    let source = t.token_source().unwrap().clone();
    let err = FnoClient::new(t)
        .count("CustomersV3", None, &h.cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnectorError::Auth {
                status: Some(401),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        source.fetch_count(),
        2,
        "one refresh after the first 401, no more"
    );
    let unauthorized = h
        .summaries()
        .iter()
        .filter(|s| s.env == "fno" && s.status == Some(401))
        .count();
    assert_eq!(unauthorized, 2);
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_with_the_aadsts_message() {
    let h = start(YAML).await;
    let creds =
        ClientCredentials::for_resource(&h.url, "contoso-tenant", "cutover-app", Secret::new("wrong"), FNO);
    let source = TokenSource::new(creds, h.client.clone(), fast_policy(), None, None).unwrap();
    let err = source.token(&h.cancel).await.unwrap_err();
    match &err {
        ConnectorError::Auth { message, .. } => assert!(message.contains("AADSTS7000215"), "{message}"),
        other => panic!("expected Auth, got {other}"),
    }
    assert!(
        !err.to_string().contains("wrong"),
        "the secret must not appear in the error"
    );
}
