//! Shared setup for the simulator contract tests (`tests/it/sim/`): start the simulator on an
//! ephemeral 127.0.0.1 port and fetch a token with a plain form POST, so each test file states only
//! what it checks. Deliberately a plain reqwest client and hand-written requests, never our
//! connectors: these tests pin the wire contract the connectors are written against.
//!
//! Each test file is its own crate and uses only some of these helpers, hence `dead_code` allows.
#![allow(dead_code)]

use cutover::sim::{Scenario, SimHandle, start};
use serde_json::Value;

/// Starts the simulator for `scenario` on `127.0.0.1:0`; panics (test setup) if it cannot.
pub async fn start_sim(scenario: Scenario) -> SimHandle {
    start(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Starts the simulator from scenario YAML text; panics if the YAML does not parse.
pub async fn start_sim_yaml(yaml: &str) -> SimHandle {
    start_sim(Scenario::from_yaml(yaml).unwrap()).await
}

/// Client-credentials token from the simulator's Entra ID endpoint for tenant `t` (`POST
/// {url}/t/oauth2/v2.0/token`; a scenario without `auth.tenants` accepts any tenant segment).
/// Returns `access_token`; panics if there is none.
pub async fn token(c: &reqwest::Client, url: &str, client_id: &str, secret: &str, scope: &str) -> String {
    token_in(c, url, "t", client_id, secret, scope).await
}

/// [`token`] from `POST {url}/{tenant}/oauth2/v2.0/token`, for a scenario that declares its tenants.
pub async fn token_in(
    c: &reqwest::Client,
    url: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> String {
    let v: Value = c
        .post(format!("{url}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

/// Percent-encodes every byte but ASCII letters and digits (a query value: `$filter`, `fetchXml`).
pub fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Simulator from `yaml`, a plain client from `cutover::connectors::net::client()`, and a token for `scope`
/// (client `a`, secret `s`, which the default scenario auth accepts).
pub async fn sim_with_token(yaml: &str, scope: &str) -> (SimHandle, reqwest::Client, String) {
    let h = start_sim_yaml(yaml).await;
    let c = cutover::connectors::net::client().unwrap();
    let tok = token(&c, &h.url(), "a", "s", scope).await;
    (h, c, tok)
}

/// The simulator's request log (`GET /_sim/requests`): (method, path) of every request it served, oldest first.
pub async fn request_log(url: &str) -> Vec<(String, String)> {
    request_log_with_query(url)
        .await
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect()
}

/// The request log with each F&O and Dataverse request's query, percent-decoded.
pub async fn request_log_with_query(url: &str) -> Vec<(String, String, String)> {
    let c = cutover::connectors::net::client().unwrap();
    let v: Value = c
        .get(format!("{}/_sim/requests", url.trim_end_matches('/')))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or("").to_owned(),
                r["path"].as_str().unwrap_or("").to_owned(),
                percent_decode(r["query"].as_str().unwrap_or("")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
