//! The fault matrix: for each fault the real engine drives a small runbook (DMF export and import,
//! an initial sync of two maps through the gateway, a parity count) against the simulator on
//! 127.0.0.1 while the fault lasts. The run must finish, or halt with a message naming the
//! environment and the call; it must never journal a step as succeeded whose operation did not
//! happen, nor execute an operation whose intent is not journaled. Then the fault is lifted and
//! `resume` (headless, auto-approve) must finish with every operation executed exactly once
//! according to `/_sim/state`. Cases run concurrently, each with its own simulator and journal.
//!
//! `CUTOVER_FAULT_MATRIX=full` (used by `scripts/torture`): heavier rates, longer storms (F&O's
//! 30 s fallback without Retry-After included) and three scenario seeds per fault. Each case prints
//! `fault <name>: finished|halted(<message>) resumed=ok ops_once=ok` (run with `--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;
use crate::support::fault as fault_support;

use std::time::Instant;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, RunOutcome};
use cutover::engine::runner::SimTarget;
use cutover::sim::{Faults, Scenario};
use engine_support::{Fixture, count, drive, events, fixture, options};
use fault_support::{Case, Expect, Shape};

async fn sim_at(sc: Scenario, addr: &str) -> cutover::sim::SimHandle {
    cutover::sim::start(sc, addr.parse().unwrap()).await.unwrap()
}

fn scenario(seed: u64) -> Scenario {
    let mut sc = Scenario::demo();
    sc.seed = seed;
    sc
}

/// A port nothing listens on: bound, then dropped.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs one case; `Ok(summary line)` or `Err(why)`.
async fn run_case(case: Case, seed: u64) -> Result<String, String> {
    let name = case.name;
    let mut sc = scenario(seed);
    if name == "401-token-expiry" {
        sc.auth.token_ttl = 2;
    }
    // The environment's address: the simulator, except for a closed port (the run then uses the
    // runbook's own URLs, all pointing at that port, and the simulator is started there later).
    let (f, sim, target, restore): (
        Fixture,
        Option<cutover::sim::SimHandle>,
        SimTarget,
        Option<String>,
    ) = match name {
        "connection-refused" => {
            let port = closed_port();
            let base = format!("http://127.0.0.1:{port}");
            let shape = Shape {
                fno_url: base.clone(),
                dv_url: base.clone(),
                dw_url: base.clone(),
                authority: format!("authority: \"{base}\", "),
                poll: "1s",
                retries: 2,
                ..Shape::default()
            };
            (
                fixture(&fault_support::runbook(&shape)),
                None,
                SimTarget::None,
                Some(base),
            )
        }
        "wrong-audience" => {
            // F&O's URL (the token audience) set to the Dataverse resource: tokens are issued,
            // and F&O refuses them.
            let wrong = Shape {
                fno_url: "https://contoso-demo.crm.dynamics.com".into(),
                ..Shape::default()
            };
            let s = sim_at(sc.clone(), "127.0.0.1:0").await;
            let url = s.url();
            (
                fixture(&fault_support::runbook(&wrong)),
                Some(s),
                SimTarget::Url(url),
                Some(fault_support::runbook(&Shape::default())),
            )
        }
        _ => {
            let s = sim_at(sc.clone(), "127.0.0.1:0").await;
            let url = s.url();
            (
                fixture(&fault_support::runbook(&Shape::default())),
                Some(s),
                SimTarget::Url(url),
                None,
            )
        }
    };
    if let Some(s) = &sim {
        let rules: Faults =
            serde_json::from_value(case.faults.clone()).map_err(|e| format!("{name}: {e}"))?;
        s.set_faults(rules);
    }
    let first = drive(options(&f, target.clone(), false)).await;
    let (_, evs) = events(&f.journal);
    match (&first, case.expect) {
        (RunEnd::Finished(RunOutcome::Succeeded), Expect::Finish | Expect::Either) => {}
        (RunEnd::Halted { message, .. }, Expect::Halt | Expect::Either) => {
            fault_support::clear_message(message, case.env, case.text).map_err(|e| format!("{name}: {e}"))?;
        }
        (other, want) => return Err(format!("{name}: expected {want:?}, got {other:?}")),
    }
    if let Some(s) = &sim {
        let st = s.state();
        fault_support::no_false_success(&evs, &st).map_err(|e| format!("{name}: {e}"))?;
        fault_support::every_effect_journaled(&evs, &st).map_err(|e| format!("{name}: {e}"))?;
    }
    // The fault really happened (and is in the journal).
    let faulted = count(&evs, |e| match e {
        Event::Request { status, error, .. } => {
            error.is_some() || status.is_some_and(|c| c == 429 || c == 401 || c >= 500)
        }
        _ => false,
    });
    // (A halt with the expected text already proves it; a slow body is not an error.)
    if faulted == 0 && matches!(first, RunEnd::Finished(_)) && name != "slow-trickle" {
        return Err(format!(
            "{name}: no faulted request in the journal: the fault did not happen"
        ));
    }

    // Lift the fault, then resume (only a halted run needs it).
    let (sim, mut opts) = match (sim, restore) {
        (None, Some(base)) => {
            let mut lifted = scenario(seed);
            lifted.auth.resources = Default::default();
            let addr = base.trim_start_matches("http://");
            (sim_at(lifted, addr).await, options(&f, SimTarget::None, false))
        }
        (Some(s), Some(fixed)) => {
            std::fs::write(&f.runbook, fixed).unwrap();
            let mut o = options(&f, target, false);
            o.accept_changed_runbook = true;
            (s, o)
        }
        (Some(s), None) => {
            s.set_faults(Faults::default());
            (s, options(&f, target, false))
        }
        (None, None) => unreachable!("every case has a simulator or a restore"),
    };
    opts.resume_only = true;
    let resumed = if matches!(first, RunEnd::Finished(_)) {
        "not-needed"
    } else {
        let second = drive(opts).await;
        if second != RunEnd::Finished(RunOutcome::Succeeded) {
            return Err(format!(
                "{name}: resume after the fault was lifted ended {second:?}"
            ));
        }
        "ok"
    };
    let st = sim.state();
    let (_, evs) = events(&f.journal);
    fault_support::no_false_success(&evs, &st).map_err(|e| format!("{name}: {e}"))?;
    fault_support::every_effect_journaled(&evs, &st).map_err(|e| format!("{name}: {e}"))?;
    fault_support::ops_once(&st).map_err(|e| format!("{name}: after resume: {e}"))?;
    engine_support::assert_no_secret(&f.journal, &[engine_support::SECRET]);
    Ok(format!(
        "fault {name}: {} resumed={resumed} ops_once=ok",
        fault_support::describe(&first)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_finishes_or_halts_clearly_and_resumes_exactly_once() {
    let full = std::env::var("CUTOVER_FAULT_MATRIX").is_ok_and(|v| v == "full");
    let seeds: &[u64] = if full { &[42, 7, 1234] } else { &[42] };
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for &seed in seeds {
        for case in fault_support::cases(full) {
            set.spawn(run_case(case, seed));
        }
    }
    let mut failures = Vec::new();
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        n += 1;
        match r.unwrap() {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("FAILED {e}");
                failures.push(e);
            }
        }
    }
    println!(
        "fault matrix ({}): {n} cases in {:.1}s, {} failed",
        if full { "full" } else { "quick" },
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
