//! A hostile service on loopback against the transport's one rule on destinations, its redirect handling and
//! its caps: a token goes only to its environment's scheme, host and port; a token request never follows a
//! redirect; a body, a stream and a listing are bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;

use crate::support::connector::*;
use crate::support::hostile::{self, endless, redirect};
use cutover::connectors::ConnectorError;
use cutover::connectors::auth::{ClientCredentials, Secret};
use cutover::connectors::fno::FnoClient;
use cutover::connectors::transport::{Limits, Request, Transport};

const YAML: &str = r#"
name: hostile
auth:
  client_id: cutover-app
  client_secret: s3cret-value-for-tests
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 3 } }
"#;

/// A transport named `fno` whose base is `base`, with a real token from the simulator's Entra ID.
fn transport_at(h: &Harness, base: &str, limits: Limits) -> Transport {
    Transport::new("fno", h.client.clone(), base, fast_policy())
        .unwrap()
        .with_token(h.tokens.source(h.creds(FNO)).unwrap())
        .with_limits(limits)
}

#[tokio::test]
async fn a_token_is_never_sent_to_an_absolute_url_on_another_host() {
    let h = start(YAML).await;
    let evil = hostile::start(|_, _| hostile::json(200, &json!({"value": []}))).await;
    let t = h.transport("fno", FNO, fast_policy());
    let target = format!("{}/steal", evil.url);
    let e = t
        .send(Request::get("http.step", &target), &h.cancel)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConnectorError::Config { .. }), "{msg}");
    assert!(msg.contains(&evil.authority()), "names the refused host: {msg}");
    let sim_host = h.url.trim_start_matches("http://");
    assert!(msg.contains(sim_host), "names the environment's host: {msg}");
    assert!(
        evil.seen().is_empty(),
        "the foreign host was contacted: {:?}",
        evil.seen()
    );
    // The same target without the token is the caller's business (a bare `url:`): it goes.
    t.send(Request::get("bare", &target).unauthenticated(), &h.cancel)
        .await
        .unwrap();
    assert_eq!(evil.seen().len(), 1);
    assert!(evil.seen()[0].authorization.is_none());
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_before_anything_is_sent_there() {
    let h = start(YAML).await;
    let evil = hostile::start(|_, _| hostile::json(200, &json!({}))).await;
    let to = format!("{}/collect", evil.url);
    let env = hostile::start(move |_, _| redirect(307, &to)).await;
    let t = transport_at(&h, &env.url, Limits::default());
    let e = t
        .send(Request::get("fno.read X", "/data/X"), &h.cancel)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&evil.authority()) && msg.contains(&env.authority()),
        "{msg}"
    );
    assert_eq!(env.seen().len(), 1, "one attempt, not retried");
    assert!(
        evil.seen().is_empty(),
        "followed to the foreign host: {:?}",
        evil.seen()
    );
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_with_the_token() {
    let h = start(YAML).await;
    let env = hostile::start(|base, uri| {
        if uri.starts_with("/old") {
            redirect(308, &format!("{base}/new"))
        } else {
            hostile::json(200, &json!({"ok": true}))
        }
    })
    .await;
    let t = transport_at(&h, &env.url, Limits::default());
    let r = t.send(Request::get("c", "/old"), &h.cancel).await.unwrap();
    assert_eq!(r.status, 200);
    let seen = env.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].uri == "/new" && seen[1].authorization.is_some(),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_token_request_never_follows_a_redirect() {
    let h = start(YAML).await;
    let evil = hostile::start(|_, _| hostile::json(200, &json!({}))).await;
    let to = format!("{}/capture", evil.url);
    // The authority answers the token post with a 307 (which would re-post the form) to the same host and
    // to another one: neither is followed.
    for target in [to.clone(), "/again".to_owned()] {
        let authority = hostile::start(move |_, _| redirect(307, &target)).await;
        let creds = ClientCredentials::for_resource(
            &authority.url,
            "contoso-tenant",
            "cutover-app",
            Secret::new(SECRET),
            FNO,
        );
        let source = h.tokens.source(creds).unwrap();
        let e = source.token(&h.cancel).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("never redirected") || msg.contains("not followed"),
            "{msg}"
        );
        assert!(!msg.contains(SECRET), "{msg}");
        assert_eq!(authority.seen().len(), 1, "the form was posted once");
    }
    assert!(
        evil.seen().is_empty(),
        "the secret was re-posted: {:?}",
        evil.seen()
    );
}

#[tokio::test]
async fn a_body_over_the_cap_fails_naming_the_call_and_the_cap() {
    let h = start(YAML).await;
    let env = hostile::start(|_, _| hostile::json(200, &json!({ "v": "x".repeat(4096) }))).await;
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let t = transport_at(&h, &env.url, limits);
    let e = t
        .send(Request::get("fno.read Big", "/big"), &h.cancel)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("fno.read Big") && msg.contains("1024 bytes"),
        "{msg}"
    );
    assert_eq!(env.seen().len(), 1, "a body too large is not asked for again");
    // At the limit exactly, the body is read.
    let exact = hostile::start(|_, _| hostile::json(200, &json!({ "v": "x".repeat(1024 - 8) }))).await;
    let t = transport_at(&h, &exact.url, limits);
    let r = t.send(Request::get("c", "/exact"), &h.cancel).await.unwrap();
    assert_eq!(r.body.len(), 1024);
}

#[tokio::test]
async fn an_endless_chunked_stream_stops_at_the_cap() {
    let h = start(YAML).await;
    let env = hostile::start(|_, _| endless()).await;
    let limits = Limits {
        max_body_bytes: 1 << 20,
        ..Limits::default()
    };
    let t = transport_at(&h, &env.url, limits);
    let e = t
        .send(Request::get("fno.read Endless", "/endless"), &h.cancel)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("fno.read Endless") && msg.contains("1048576 bytes"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_self_pointing_next_link_is_refused() {
    let h = start(YAML).await;
    let env = hostile::start(|base, _| {
        hostile::json(
            200,
            &json!({ "value": [{"k": 1}], "@odata.nextLink": format!("{base}/data/Loop?page=same") }),
        )
    })
    .await;
    let fno = FnoClient::new(transport_at(&h, &env.url, Limits::default()));
    let e = fno
        .read("Loop", None, &[], None, usize::MAX, &h.cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("repeated a nextLink"), "{e}");
    assert_eq!(env.seen().len(), 2, "the first page and the link once");
}

#[tokio::test]
async fn a_listing_stops_at_the_page_cap() {
    let h = start(YAML).await;
    let n = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let env = hostile::start(move |base, _| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        hostile::json(
            200,
            &json!({ "value": [{"k": i}], "@odata.nextLink": format!("{base}/data/Many?page={}", i + 1) }),
        )
    })
    .await;
    let limits = Limits {
        max_pages: 5,
        ..Limits::default()
    };
    let fno = FnoClient::new(transport_at(&h, &env.url, limits));
    let e = fno
        .read("Many", None, &[], None, usize::MAX, &h.cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("more than 5 pages"), "{e}");
    assert_eq!(env.seen().len(), 5, "exactly the cap was read");
}

#[tokio::test]
async fn a_transport_whose_guard_says_stop_sends_nothing() {
    let h = start(YAML).await;
    let env = hostile::start(|_, _| hostile::json(200, &json!({}))).await;
    let t = transport_at(&h, &env.url, Limits::default())
        .with_guard(Arc::new(|| Some("the lease heartbeat is 40s old".to_owned())));
    let e = t
        .send(Request::get("fno.read X", "/x"), &h.cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("heartbeat"), "{e}");
    assert!(env.seen().is_empty(), "a request went out: {:?}", env.seen());
}
