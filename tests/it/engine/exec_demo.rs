//! `runbooks/demo.yaml` against the demo scenario with the executors alone (a minimal stand-in for the
//! scheduler: steps in plan order, a wave's maps at once, a failed gate re-checked): every step must succeed by
//! itself, which is what `cutover demo --headless` relies on. Also rides out a throttling and 5xx storm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::time::{Duration, Instant};

use cutover::engine::event::{Event, StepOutcome};
use cutover::engine::exec::Mode;
use cutover::runbook::plan::PlannedWhat;
use cutover::sim::{FaultRule, Faults};
use exec_support::{Harness, assert_ok, start};

const DEMO: &str = include_str!("../../../runbooks/demo.yaml");

async fn run_until_ok(h: &Harness, step: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 1;
    loop {
        let r = h.run_mode(step, attempt, Mode::Fresh).await;
        if r.outcome == StepOutcome::Succeeded {
            return;
        }
        assert!(Instant::now() < deadline, "{step}: {:?}", r.outcome);
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runbook_runs_to_the_end_on_its_scenario() {
    let text = DEMO.replace("${DEMO_CLIENT_SECRET}", "\"${TEST_SECRET}\"");
    // The 6-hour monitor is 36 real seconds at the demo's scale; an hour keeps the test short.
    let text = text.replace("for: 6h", "for: 1h");
    let h = start(None, &text).await;
    let steps = h.plan.steps.clone();
    let mut i = 0;
    while i < steps.len() {
        let s = &steps[i];
        if let PlannedWhat::WaveMap { .. } = s.what {
            let wave: Vec<String> = steps[i..]
                .iter()
                .take_while(|x| matches!(x.what, PlannedWhat::WaveMap { .. }) && x.wave == s.wave)
                .map(|x| x.id.as_str().to_owned())
                .collect();
            let results = futures::future::join_all(wave.iter().map(|id| h.run(id))).await;
            for r in &results {
                assert_ok(r);
            }
            i += wave.len();
            continue;
        }
        if matches!(s.what, PlannedWhat::Gate { .. }) {
            run_until_ok(&h, s.id.as_str()).await;
        } else {
            let r = h.run(s.id.as_str()).await;
            assert_ok(&r);
        }
        i += 1;
    }
    assert_eq!(
        h.effect("dualwrite.initial_sync:vendors"),
        2,
        "the failed pass and the one retry pass"
    );
    for m in h.runbook.maps.keys() {
        assert_eq!(h.map_state(m.as_str())["statusName"], "Running", "{m}");
    }
    let events = h.events().await;
    for m in h.runbook.maps.keys() {
        assert!(
            events.iter().any(|e| matches!(&e.event,
                Event::ParitySample { step: Some(s), map, .. } if map == m.as_str() && s.as_str().ends_with(":gate"))),
            "a gate parity sample for {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_and_5xx_storm_is_ridden_out() {
    let text = DEMO
        .replace("${DEMO_CLIENT_SECRET}", "\"${TEST_SECRET}\"")
        .replace("retries: 3", "retries: 8");
    let h = start(None, &text).await;
    h.sim.set_faults(Faults(vec![
        FaultRule {
            throttle_every: Some(4),
            retry_after: Some(0),
            ..Default::default()
        },
        FaultRule {
            server_error_rate: 0.1,
            ..Default::default()
        },
    ]));
    assert_ok(&h.run("baseline").await);
    let events = h.events().await;
    let retried = events
        .iter()
        .filter(|e| {
            matches!(
                &e.event,
                Event::Request {
                    status: Some(429 | 500 | 503),
                    ..
                }
            )
        })
        .count();
    assert!(retried > 0, "the storm happened");
}
