//! The device authorization grant end to end: `cutover login` shows the code and URL on stderr, the
//! simulator sees three polls before a test approves the code, the refresh token lands in a 0600 cache
//! file, and a run then needs no sign-in: its token comes from the refresh grant, and again after the
//! short-lived access token expires mid-run. A declined sign-in fails with its reason. Nothing the
//! run leaves behind holds a token, a refresh token or the device code.
use std::time::Duration;

use crate::support::auth::*;
use serde_json::json;

const PUBLIC: &str = "d0d0c0de-0000-4000-8000-000000000002";

fn directory() -> String {
    format!(
        "  principals:\n    - {{ client_id: {PUBLIC}, public_client: true }}\n  users:\n    - {{ upn: lead@contoso.com, name: Cutover Lead, groups: [0f0f0f0f-0000-4000-8000-000000000001] }}\n  device_code: {{ interval: 1, expires_in: 120 }}\n  user_token_ttl: 3\n"
    )
}

const DC_AUTH: &str = r#"{ credential: device_code, tenant: "${TENANT_ID}", client_id: "${PUBLIC_CLIENT}" }"#;

fn envs() -> Vec<(&'static str, String)> {
    vec![
        ("TENANT_ID", TENANT.to_owned()),
        ("PUBLIC_CLIENT", PUBLIC.to_owned()),
    ]
}

async fn polls(sim: &str) -> Vec<(String, u64, String)> {
    let v = sim_get(sim, "/_sim/devicecode").await;
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["user_code"].as_str().unwrap().to_owned(),
                d["polls"].as_u64().unwrap(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn login(dir: &std::path::Path, sim: &str) -> tokio::process::Command {
    let mut c = cutover(dir);
    c.args(["login", "dv", "--runbook", "rb.yaml", "--sim-url", sim]);
    for (k, v) in envs() {
        c.env(k, v);
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_after_three_polls_then_refresh_when_the_token_expires_mid_run() {
    let sim = start_sim(&scenario(&directory())).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        "dv",
        "dataverse",
        DV,
        DC_AUTH,
        &two_reads("dv", "/api/data/v9.2/WhoAmI", "4s"),
        "",
    );
    std::fs::write(dir.path().join("rb.yaml"), &rb).unwrap();

    let child = login(dir.path(), &url).spawn().unwrap();
    until(
        "three polls of the device code",
        Duration::from_secs(30),
        || async { polls(&url).await.first().is_some_and(|(_, n, _)| *n >= 3) },
    )
    .await;
    let code = polls(&url).await[0].0.clone();
    let (status, _) = sim_post(
        &url,
        "/_sim/devicecode/approve",
        json!({"user_code": code, "upn": "lead@contoso.com"}),
    )
    .await;
    assert_eq!(status, 204);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prompt = format!("sign-in code {code} at https://microsoft.com/devicelogin for environment `dv`");
    assert!(stderr.lines().any(|l| l.starts_with(&prompt)), "{t}");
    assert!(
        stderr.contains("signed in for `dv` as lead@contoso.com (oid "),
        "{t}"
    );
    let polled = polls(&url).await[0].1;
    assert!(
        (4..=6).contains(&polled),
        "three pending polls, then the one that got the token: {polled}"
    );

    let cache = dir.path().join("cache/cutover/tokens.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The run signs in with the cached refresh token, and again once the 3-second token expires.
    let before = sim_get(&url, "/_sim/auth").await;
    let out = run(dir.path(), &rb, &url, &envs()).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains("devicelogin"), "no new sign-in was needed: {t}");
    let after = sim_get(&url, "/_sim/auth").await;
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let refreshes = n(&after, "refresh_token") - n(&before, "refresh_token");
    // At the start, then once the 3-second token expired (a third only if it lapsed in flight on a loaded machine).
    assert!((2..=3).contains(&refreshes), "{before} -> {after}");
    assert_eq!(
        n(&after, "device_code"),
        n(&before, "device_code"),
        "no polling during the run"
    );

    reports(dir.path()).await;
    let mut scan = Scan::default();
    scan.bytes("login stdout", &out.stdout);
    scan.bytes("login stderr", &out.stderr);
    scan.dir(dir.path(), &[&dir.path().join("cache")]);
    scan.assert_clean();

    // `cutover logout` removes the cache file.
    let o = cutover(dir.path()).args(["logout"]).output().await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!cache.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_sign_in_fails_with_its_reason() {
    let sim = start_sim(&scenario(&directory())).await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let rb = runbook(
        "dv",
        "dataverse",
        DV,
        DC_AUTH,
        "      - { id: one, kind: http, env: dv, path: /api/data/v9.2/WhoAmI }",
        "",
    );
    std::fs::write(dir.path().join("rb.yaml"), &rb).unwrap();
    let child = login(dir.path(), &url).spawn().unwrap();
    until("a device code", Duration::from_secs(30), || async {
        !polls(&url).await.is_empty()
    })
    .await;
    let code = polls(&url).await[0].0.clone();
    let (status, _) = sim_post(&url, "/_sim/devicecode/decline", json!({"user_code": code})).await;
    assert_eq!(status, 204);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("the sign-in was declined (authorization_declined)"),
        "{t}"
    );
    assert!(!dir.path().join("cache/cutover/tokens.json").exists());
}
