//! The demo scenario's troubles, driven the way the engine will: waves 1–3 through the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use std::time::{Duration, Instant};

use cutover::sim::Scenario;
use serde_json::{Value, json};

#[tokio::test]
async fn vendors_fail_at_2100_resume_and_customers_drift_then_catch_up() {
    let h = sim_support::start_sim(Scenario::demo()).await;
    let c = cutover::connectors::net::client().unwrap();
    let tok = sim_support::token(
        &c,
        &h.url(),
        "demo",
        "demo",
        "https://contoso-demo.dualwrite.dynamics.com/.default",
    )
    .await;
    let gw = format!("{}/api/DualWriteManagement/1.0", h.url());
    let maps: Value = c
        .get(format!("{gw}/Entities"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = |name: &str| {
        maps.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let status = |name: &'static str| {
        let (c, tok, gw, id) = (c.clone(), tok.clone(), gw.clone(), id(name));
        async move {
            let m: Value = c
                .get(format!("{gw}/Entities/{id}"))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            m
        }
    };
    let act = |name: &str, action: u64| {
        let (c, tok, gw, id) = (c.clone(), tok.clone(), gw.clone(), id(name));
        async move {
            let r = c
                .post(format!("{gw}/Start"))
                .bearer_auth(&tok)
                .json(&json!({"entityId": id, "action": action, "master": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let tick = || async {
        assert!(Instant::now() < deadline, "demo timing too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for wave in [&["companies"][..], &["currencies", "exchange_rates"][..]] {
        for m in wave {
            act(m, 8).await;
        }
        for m in wave {
            let name: &'static str = m;
            while status(name).await["status"] != 4 {
                tick().await;
            }
        }
    }
    act("customers", 8).await;
    act("vendors", 8).await;
    loop {
        let v = status("vendors").await;
        if v["initialSync"]["state"] == "Failed" {
            assert_eq!(v["initialSync"]["failedAtRow"], 2100);
            assert_eq!(v["initialSync"]["category"], "missing_lookup");
            break;
        }
        tick().await;
    }
    act("vendors", 4).await;
    while status("vendors").await["status"] != 4 || status("customers").await["status"] != 4 {
        tick().await;
    }
    let tables = |st: Value| {
        (
            st["tables"]["fno"]["CustomersV3"].as_u64().unwrap(),
            st["tables"]["dataverse"]["accounts"].as_u64().unwrap(),
        )
    };
    let (src, tgt) = tables(h.state());
    assert_eq!((src, tgt), (12_005, 12_000), "the burst drifts customers by 5");
    let caught_up = Instant::now();
    loop {
        let (src, tgt) = tables(h.state());
        if src == tgt {
            break;
        }
        tick().await;
    }
    // 45 simulated minutes at time_scale 600 is 4.5 real seconds.
    assert!(
        caught_up.elapsed() > Duration::from_secs(3),
        "the drift must last long enough for a gate to see it"
    );
    let st = h.state();
    assert_eq!(st["tables"]["dataverse"]["msdyn_vendors"], 3500);
    assert_eq!(st["side_effects"]["dualwrite.initial_sync:vendors"], 1);
    assert_eq!(st["side_effects"]["dualwrite.resume:vendors"], 1);
}
