//! Fault injection, the `/_sim/` inspection API, and the `cutover sim` command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::sim::{FaultRule, Faults, Scenario, Service, SimHandle};
use serde_json::{Value, json};

const YAML: &str = r#"
seed: 9
companies: [USMF]
entities:
  fno: { CustomersV3: { key: CustomerAccount, rows: { USMF: 50 }, fields: { OrganizationName: name } } }
  dataverse: { accounts: { rows: 10 } }
"#;

async fn sim(faults: &str) -> (SimHandle, reqwest::Client, String) {
    sim_support::sim_with_token(&format!("{YAML}{faults}"), "https://x/.default").await
}

#[tokio::test]
async fn throttle_every_nth_with_and_without_retry_after() {
    let (h, c, tok) = sim("faults: [{ service: fno, throttle_every: 3, retry_after: 4 }]").await;
    let url = format!("{}/data/CustomersV3", h.url());
    let mut got = Vec::new();
    for _ in 0..6 {
        let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "4");
        }
        got.push(r.status().as_u16());
    }
    assert_eq!(got, [200, 200, 429, 200, 200, 429]);
    // Dataverse is not in the rule's scope.
    let r = c
        .get(format!("{}/api/data/v9.2/accounts", h.url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.set_faults(Faults(vec![FaultRule {
        throttle_every: Some(1),
        retry_after_header: Some(false),
        ..Default::default()
    }]));
    let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(!r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn budget_per_window_throttles_the_excess() {
    let (h, c, tok) =
        sim("faults: [{ path_prefix: /data/, budget: { requests: 3, window: 60 }, retry_after: 2 }]").await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(
            c.get(format!("{}/data/CustomersV3/$count", h.url()))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn damaged_responses_resets_html_and_5xx() {
    let (h, c, tok) = sim("").await;
    let url = format!("{}/data/CustomersV3", h.url());
    let set = |rule: FaultRule| h.set_faults(Faults(vec![rule]));
    set(FaultRule {
        server_error_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(c.get(&url).bearer_auth(&tok).send().await.unwrap().status(), 503);
    set(FaultRule {
        reset_rate: 1.0,
        ..Default::default()
    });
    assert!(
        c.get(&url).bearer_auth(&tok).send().await.is_err(),
        "the connection is dropped"
    );
    set(FaultRule {
        html_signin_rate: 1.0,
        ..Default::default()
    });
    let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("Sign in"));
    set(FaultRule {
        truncated_rate: 1.0,
        ..Default::default()
    });
    let body = c
        .get(&url)
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    set(FaultRule {
        malformed_rate: 1.0,
        ..Default::default()
    });
    let body = c
        .get(&url)
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    set(FaultRule {
        slow_rate: 1.0,
        slow_chunk_ms: Some(1),
        service: Some(Service::Fno),
        ..Default::default()
    });
    let v: Value = c
        .get(&url)
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        50,
        "a trickled body is still whole"
    );
    // Faults through the API: replace with none.
    let r = c
        .post(format!("{}/_sim/faults", h.url()))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.get(&url).bearer_auth(&tok).send().await.unwrap().status(), 200);
    let r = c
        .post(format!("{}/_sim/faults", h.url()))
        .json(&json!([{"nonsense": 1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn inspection_endpoints() {
    let (h, c, _) = sim("").await;
    let st: Value = c
        .get(format!("{}/_sim/state", h.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["tables"]["fno"]["CustomersV3"], 50);
    assert_eq!(st["tables"]["dataverse"]["accounts"], 10);
    assert!(st["side_effects"].is_object());
    assert!(st["requests"].as_u64().unwrap() >= 1);
    let clock: Value = c
        .get(format!("{}/_sim/clock", h.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["time_scale"], 1.0);
    assert!(clock["sim_now"].as_str().unwrap().starts_with("2026-11-27T18:00"));
    let card = json!({"@type": "MessageCard", "text": "wave-3 done"});
    let r = c
        .post(format!("{}/_sim/webhook", h.url()))
        .json(&card)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.state()["side_effects"]["notify:1"], 1);
    assert_eq!(h.time_scale(), 1.0);
    h.shutdown().await;
}

#[test]
fn cli_prints_the_address_first_and_rejects_a_bad_scenario() {
    let exe = env!("CARGO_BIN_EXE_cutover");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "companies: [USMF]\nentities: {}\nseeed: 1\n").unwrap();
    let out = Command::new(exe)
        .args(["sim", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    let mut child = Command::new(exe)
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let url = line.trim().trim_start_matches("listening on ").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let st: Value = rt.block_on(async {
        cutover::connectors::net::client()
            .unwrap()
            .get(format!("{url}/_sim/state"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(
        st["tables"]["fno"]["SalesOrderLines"], 60000,
        "the demo scenario by default"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert_eq!(s.code(), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "sim did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_bundled_scenario_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            Scenario::from_yaml(&text).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "{n}");
}

#[tokio::test]
async fn corrupt_share_makes_sampling_find_mismatches() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/scenarios/sample-drift.yaml"
    ))
    .unwrap();
    let (h, c, tok) = sim_support::sim_with_token(&text, "https://x/.default").await;
    let tok = tok.as_str();
    let src: Value = c
        .get(format!(
            "{}/data/CustomersV3?cross-company=true&$top=500&$select=CustomerAccount,OrganizationName",
            h.url()
        ))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut mismatches = 0;
    for r in src["value"].as_array().unwrap().iter().step_by(5) {
        let q = format!(
            "{}/api/data/v9.2/accounts?$select=name&$filter=accountnumber eq '{}'",
            h.url(),
            r["CustomerAccount"].as_str().unwrap()
        );
        let t: Value = c
            .get(q)
            .bearer_auth(tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t = &t["value"][0];
        if t["name"] != r["OrganizationName"] {
            mismatches += 1;
        }
    }
    assert!((1..=10).contains(&mismatches), "{mismatches} of 100 sampled");
}
