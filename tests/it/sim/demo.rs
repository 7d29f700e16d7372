//! The demo scenario's troubles, driven the way the engine does: waves 1–3 through the gateway's wire format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use std::time::{Duration, Instant};

use crate::support::gateway::Gw;
use cutover::sim::Scenario;
use serde_json::Value;

#[tokio::test]
async fn vendors_fail_at_2100_a_restart_finishes_them_and_customers_drift_then_catch_up() {
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
    let g = Gw { h, c, tok };
    let deadline = Instant::now() + Duration::from_secs(30);
    let tick = || async {
        assert!(Instant::now() < deadline, "demo timing too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let start = |name: &'static str| {
        let g = &g;
        async move {
            let (l, r) = g.entities_of(name).await;
            g.act_ok(&l, &r, "1", false).await
        }
    };
    let state = |name: &'static str| {
        let g = &g;
        async move {
            let (l, r) = g.entities_of(name).await;
            g.map(&l, &r).await["detail"]["state"].clone()
        }
    };
    for wave in [&["companies"][..], &["currencies", "exchange_rates"][..]] {
        for m in wave {
            start(m).await;
        }
        for m in wave {
            while state(m).await != "4" {
                tick().await;
            }
        }
    }
    start("customers").await;
    let first = start("vendors").await;
    let r = g.settle(&first).await;
    assert_eq!(r["state"], "3", "{r}");
    let v = g.inspect("vendors");
    assert_eq!(v["initialSync"]["failedAtRow"], 2100);
    assert_eq!(v["initialSync"]["category"], "missing_lookup");
    start("vendors").await;
    while state("vendors").await != "4" || state("customers").await != "4" {
        tick().await;
    }
    let h = &g.h;
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
    assert_eq!(
        st["side_effects"]["dualwrite.initial_sync:vendors"], 2,
        "the failed pass and the restart"
    );
}
