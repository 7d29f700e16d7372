//! The simulator's Entra ID grants on the wire (wire-facts A4-A8), with a plain HTTP client: each
//! refusal has Entra's status, `error`, AADSTS code and body shape (`error_codes`, `trace_id`,
//! `correlation_id`, `timestamp`).
use std::time::Duration;

use crate::support::auth::*;
use cutover::connectors::auth::certificate::{KeyDer, SigningCertificate};
use cutover::runbook::SigningAlgorithm;
use cutover::util::{b64url, b64url_decode};
use serde_json::{Value, json};

const APP: &str = "5a5a5a5a-0000-4000-8000-000000000004";
const PUBLIC: &str = "d0d0c0de-0000-4000-8000-000000000005";

fn principal(cert_pem: &str) -> String {
    let pem: String = cert_pem.lines().map(|l| format!("            {l}\n")).collect();
    format!(
        "  principals:\n    - client_id: {APP}\n      certificates:\n        - pem: |\n{pem}    - {{ client_id: {PUBLIC}, public_client: true }}\n  users:\n    - {{ upn: lead@contoso.com }}\n"
    )
}

async fn post(url: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = cutover::connectors::net::client()
        .unwrap()
        .post(format!("{url}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn assertion_grant(url: &str, assertion: &str) -> (u16, Value) {
    let scope = format!("{FNO}/.default");
    post(
        url,
        "/t1/oauth2/v2.0/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("scope", &scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn poll(url: &str, code: &str) -> (u16, Value) {
    post(
        url,
        "/t1/oauth2/v2.0/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", PUBLIC),
            ("device_code", code),
        ],
    )
    .await
}

fn aadsts(v: &Value, error: &str, code: u64) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], json!([code]), "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(
        d.starts_with(&format!("AADSTS{code}: ")) && d.contains("\r\nTrace ID: "),
        "{d}"
    );
    for k in ["trace_id", "correlation_id", "timestamp"] {
        assert!(v[k].is_string(), "{k}: {v}");
    }
}

fn signer(c: &TestCert, alg: SigningAlgorithm) -> SigningCertificate {
    SigningCertificate::from_der(&KeyDer::Pkcs8(c.key_der.clone()), &c.cert_der, alg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_assertions_are_checked_like_entra() {
    let a = rsa_cert(&rsa_key(), 2020, 2090);
    let b = rsa_cert(&rsa_key(), 2020, 2090);
    let sim = start_sim(&scenario(&principal(&a.cert_pem))).await;
    let url = sim.url();
    let host = url.trim_start_matches("http://");
    let aud = format!("{url}/t1/oauth2/v2.0/token");
    for alg in [SigningAlgorithm::Ps256, SigningAlgorithm::Rs256] {
        let (s, v) = assertion_grant(&url, signer(&a, alg).assertion(APP, &aud).unwrap().expose()).await;
        assert_eq!(s, 200, "{alg:?}: {v}");
        assert!(v["access_token"].as_str().unwrap().starts_with("sim."));
    }
    // The same endpoint reached as https (behind a TLS front) is the same audience.
    let (s, _) = assertion_grant(
        &url,
        signer(&a, SigningAlgorithm::Ps256)
            .assertion(APP, &format!("https://{host}/t1/oauth2/v2.0/token"))
            .unwrap()
            .expose(),
    )
    .await;
    assert_eq!(s, 200);

    let (s, v) = assertion_grant(
        &url,
        signer(&a, SigningAlgorithm::Ps256)
            .assertion(APP, &format!("{url}/other-tenant/oauth2/v2.0/token"))
            .unwrap()
            .expose(),
    )
    .await;
    assert_eq!(s, 401);
    aadsts(&v, "invalid_client", 50012);

    let (s, v) = assertion_grant(
        &url,
        signer(&b, SigningAlgorithm::Ps256)
            .assertion(APP, &aud)
            .unwrap()
            .expose(),
    )
    .await;
    assert_eq!(s, 401);
    aadsts(&v, "invalid_client", 700027);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("The key was not found"),
        "{v}"
    );

    // B's signature under a header naming A's thumbprint.
    let forged = {
        let real = signer(&b, SigningAlgorithm::Ps256)
            .assertion(APP, &aud)
            .unwrap()
            .expose()
            .to_owned();
        let parts: Vec<&str> = real.split('.').collect();
        let mut h: Value = serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
        h["x5t#S256"] = json!(signer(&a, SigningAlgorithm::Ps256).thumbprint_sha256);
        format!("{}.{}.{}", b64url(h.to_string().as_bytes()), parts[1], parts[2])
    };
    let (s, v) = assertion_grant(&url, &forged).await;
    assert_eq!(s, 401);
    aadsts(&v, "invalid_client", 700027);
    assert!(
        v["error_description"].as_str().unwrap().contains("did not match"),
        "{v}"
    );

    let (s, v) = assertion_grant(&url, "not.a-jwt").await;
    assert_eq!(s, 401, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_outside_its_time_range_on_entras_clock_is_refused() {
    let a = rsa_cert(&rsa_key(), 2020, 2090);
    // Entra's clock runs an hour ahead of this machine: a fresh 10-minute assertion has expired there.
    let sim = start_sim(&scenario(&format!(
        "{}  clock_skew: 3600\n",
        principal(&a.cert_pem)
    )))
    .await;
    let url = sim.url();
    let aud = format!("{url}/t1/oauth2/v2.0/token");
    let (s, v) = assertion_grant(
        &url,
        signer(&a, SigningAlgorithm::Ps256)
            .assertion(APP, &aud)
            .unwrap()
            .expose(),
    )
    .await;
    assert_eq!(s, 401);
    aadsts(&v, "invalid_client", 700024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_authorization_grant_answers_pending_slow_down_declined_expired() {
    let a = rsa_cert(&rsa_key(), 2020, 2090);
    let yaml = format!(
        "{}  device_code: {{ interval: 1, expires_in: 2 }}\n",
        principal(&a.cert_pem)
    );
    let sim = start_sim(&scenario(&yaml)).await;
    let url = sim.url();
    let scope = format!("{DV}/.default openid profile offline_access");
    let devicecode = [("client_id", PUBLIC), ("scope", scope.as_str())];
    let (s, d) = post(&url, "/t1/oauth2/v2.0/devicecode", &devicecode).await;
    assert_eq!(s, 200, "{d}");
    for k in [
        "device_code",
        "user_code",
        "verification_uri",
        "expires_in",
        "interval",
        "message",
    ] {
        assert!(!d[k].is_null(), "{k}: {d}");
    }
    assert_eq!(d["verification_uri"], "https://microsoft.com/devicelogin");
    let code = d["device_code"].as_str().unwrap().to_owned();
    let (s, v) = poll(&url, &code).await;
    assert_eq!(s, 400);
    aadsts(&v, "authorization_pending", 70016);
    let (s, v) = poll(&url, &code).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("slow_down")),
        "a poll sooner than the interval: {v}"
    );
    let (s, v) = poll(&url, "simdc.unknown").await;
    assert_eq!(s, 400);
    aadsts(&v, "bad_verification_code", 70018);
    // The code lives two seconds.
    let started = std::time::Instant::now();
    let last = loop {
        let (_, v) = poll(&url, &code).await;
        if v["error"] == "expired_token" {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never expired: {v}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    };
    aadsts(&last, "expired_token", 70020);

    let (_, d) = post(&url, "/t1/oauth2/v2.0/devicecode", &devicecode).await;
    let user_code = d["user_code"].as_str().unwrap();
    let (s, _) = sim_post(&url, "/_sim/devicecode/decline", json!({"user_code": user_code})).await;
    assert_eq!(s, 204);
    let (s, v) = poll(&url, d["device_code"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("authorization_declined")),
        "{v}"
    );

    let (s, v) = post(
        &url,
        "/t1/oauth2/v2.0/devicecode",
        &[("client_id", APP), ("scope", scope.as_str())],
    )
    .await;
    assert_eq!(s, 400, "a confidential client cannot use the device flow: {v}");
    let (s, v) = post(
        &url,
        "/t1/oauth2/v2.0/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC),
            ("refresh_token", "simrt.nope"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    aadsts(&v, "invalid_grant", 70000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_needs_its_header_and_an_assigned_identity() {
    let mi = "  managed_identity:\n    system: { client_id: 5e1f0000-0000-4000-8000-00000000aaaa, object_id: 0b0b0000-0000-4000-8000-00000000bbbb }\n";
    let sim = start_sim(&scenario(mi)).await;
    let c = cutover::connectors::net::client().unwrap();
    let get = |q: String, header: bool| {
        let mut r = c.get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={FNO}{q}",
            sim.url()
        ));
        if header {
            r = r.header("Metadata", "true");
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = get(String::new(), false).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request_102")), "{v}");
    let (s, v) = get(String::new(), true).await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["expires_in"].is_string() && v["expires_on"].is_string() && v["resource"] == FNO,
        "{v}"
    );
    let (s, _) = get("&object_id=0b0b0000-0000-4000-8000-00000000bbbb".into(), true).await;
    assert_eq!(s, 200);
    let (s, v) = get("&client_id=00000000-0000-4000-8000-000000000000".into(), true).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
}
