//! Count requests per second against the in-process simulator with zero injected latency.
//!
//! Run with `cargo bench --bench sim`. A plain reqwest client with a few concurrent tasks asks
//! `GET /data/CustomersV3/$count?cross-company=true` (F&O) and `GET /api/data/v9.2/accounts/$count`
//! (Dataverse) of the demo scenario for a fixed time and prints the rate. The client runs in the
//! same process on the same cores, so the rate is a lower bound of what the server alone serves.
//!
//! Figure `sim requests per second`: the slower of the two, held against the highest request rate
//! any other bench asks of the simulator, [`DEMAND`], so the simulator is never what a bench
//! measures. Target ratio ≥ 5. The demands, per bench:
//! - sweep: 16 requests in flight, each answered after 20 ms: 16 / 0.020 s = 800 requests/s, for
//!   the whole 1.25 s ideal (the throttled sweep asks less: slots sleep through Retry-After).
//! - wave and demo_rss (the demo at time scale 600): polls every 10 s scaled to 16.7 ms for the
//!   few steps running at once, plus the gates' and the monitor's counts; benches/wave.rs prints
//!   the demo's busiest second as journaled (150 to 310 requests in the runs so far), under 800.
//! - input and render: no simulator (their 64 polls are synthetic envelopes).
//! - demo_rss: the same demo as wave.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "figure.rs"]
mod figure;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cutover::sim::{Scenario, start};
use serde_json::Value;

const TASKS: usize = 8;
/// The highest request rate another bench asks of the simulator (the sweep's, see above).
const DEMAND: f64 = 16.0 / 0.020;
const TARGET_RATIO: f64 = 5.0;

fn run_for() -> Duration {
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = run_for();
    let rates = rt.block_on(async {
        // The demo estate, with Dataverse's 6,000-requests-per-5-minutes limit lifted: this measures
        // the server, not the service-protection model.
        let mut scenario = Scenario::demo();
        scenario.dataverse.service_protection.requests = u64::MAX;
        scenario.dataverse.service_protection.concurrent = u64::MAX;
        let h = start(scenario, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let c = cutover::connectors::net::client_builder()
            .pool_max_idle_per_host(TASKS)
            .build()
            .unwrap();
        let mut tokens = Vec::new();
        for scope in [
            "https://contoso-demo.operations.dynamics.com/.default",
            "https://contoso-demo.crm.dynamics.com/.default",
        ] {
            let v: Value = c
                .post(format!("{}/t/oauth2/v2.0/token", h.url()))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", "bench"),
                    ("client_secret", "x"),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.push(v["access_token"].as_str().unwrap().to_string());
        }
        let targets = [
            (
                format!("{}/data/CustomersV3/$count?cross-company=true", h.url()),
                tokens[0].clone(),
                "F&O $count",
            ),
            (
                format!("{}/api/data/v9.2/accounts/$count", h.url()),
                tokens[1].clone(),
                "Dataverse $count",
            ),
            // Diagnostics, not in the figure: the demo's heavier reads (a gate's per-company
            // count on the 60,000-row lines table; the sample's `$orderby/$skip/$top=1` pick).
            (
                format!(
                    "{}/data/SalesOrderLines/$count?cross-company=true&$filter=dataAreaId%20eq%20'usmf'",
                    h.url()
                ),
                tokens[0].clone(),
                "diagnostic: F&O per-company $count, 60,000 rows",
            ),
            (
                format!(
                    "{}/data/CustomersV3?cross-company=true&$orderby=CustomerAccount&$skip=5000&$top=1&$select=CustomerAccount",
                    h.url()
                ),
                tokens[0].clone(),
                "diagnostic: F&O sample pick ($orderby/$skip/$top=1)",
            ),
        ];
        let mut rates = Vec::new();
        for (url, tok, label) in targets {
            let run = if label.starts_with("diagnostic") {
                run / 4
            } else {
                run
            };
            let done = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            let start_at = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (c, url, tok, done, errors) =
                        (c.clone(), url.clone(), tok.clone(), done.clone(), errors.clone());
                    tokio::spawn(async move {
                        while start_at.elapsed() < run {
                            match c.get(&url).bearer_auth(&tok).send().await {
                                Ok(r) if r.status().is_success() => {
                                    let _ = r.bytes().await;
                                    done.fetch_add(1, Ordering::Relaxed);
                                }
                                _ => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let secs = start_at.elapsed().as_secs_f64();
            let n = done.load(Ordering::Relaxed);
            println!(
                "{label}: {n} requests in {secs:.1}s with {TASKS} tasks = {:.0} requests/s ({} errors)",
                n as f64 / secs,
                errors.load(Ordering::Relaxed)
            );
            if !label.starts_with("diagnostic") {
                rates.push(n as f64 / secs);
            }
        }
        h.shutdown().await;
        rates
    });
    let slowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let ratio = slowest / DEMAND;
    println!(
        "slowest: {slowest:.0} requests/s = {ratio:.1}x the sweep's {DEMAND:.0} requests/s (target >= {TARGET_RATIO}x)"
    );
    figure::emit(
        "sim requests per second",
        slowest,
        "req/s",
        Some((DEMAND, "highest rate a bench asks: sweep, 16 in flight / 20 ms")),
        Some(ratio),
        ">= 5",
        ratio >= TARGET_RATIO,
    );
}
