//! Shared setup for the simulator contract tests (`tests/sim_*.rs`): start the simulator on an
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

/// Client-credentials token from the simulator's Entra ID endpoint (`POST {url}/t/oauth2/v2.0/token`;
/// the simulator ignores the tenant segment). Returns `access_token`; panics if there is none.
pub async fn token(c: &reqwest::Client, url: &str, client_id: &str, secret: &str, scope: &str) -> String {
    let v: Value = c
        .post(format!("{url}/t/oauth2/v2.0/token"))
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

/// Simulator from `yaml`, a plain client from `cutover::connectors::net::client()`, and a token for `scope`
/// (client `a`, secret `s`, which the default scenario auth accepts).
pub async fn sim_with_token(yaml: &str, scope: &str) -> (SimHandle, reqwest::Client, String) {
    let h = start_sim_yaml(yaml).await;
    let c = cutover::connectors::net::client().unwrap();
    let tok = token(&c, &h.url(), "a", "s", scope).await;
    (h, c, tok)
}
