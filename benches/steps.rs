//! Scale in steps: a runbook of 130,000 trivial steps (`wait` for 0s, 13 phases of 10,000) run by the
//! real engine against the in-process simulator, headless with auto-approval, journal on a temp
//! file. Step cost must not grow with the number of steps: the figure is the whole run's rate, and
//! the rate of the first and the last 10% of steps (from the journal's own times) shows a cost
//! that grows with the run's position.
//!
//! Figures: `steps rate` (steps/s, target >= 1,000), `steps peak rss` (MB, target < 300), and
//! `steps last/first rate` (the last 10%'s rate over the first 10%'s; flat is 1.0, target >= 0.5).
//!
//! Run: `cargo bench --bench steps` (`CUTOVER_BENCH_QUICK=1`: 20,000 steps; `CUTOVER_BENCH_STEPS=N`
//! any number).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "figure.rs"]
mod figure;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, RunOutcome};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;

const TARGET_RATE: f64 = 1000.0;
const TARGET_RSS_MB: f64 = 300.0;
const PER_PHASE: usize = 10_000;

fn steps() -> usize {
    if let Some(n) = std::env::var("CUTOVER_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        20_000
    } else {
        130_000
    }
}

/// Flow style and base-36 ids: 130,000 steps must fit the 4 MiB a runbook file may have.
fn runbook(n: usize) -> String {
    let mut s = String::with_capacity(n * 32);
    s.push_str(
        "runbook: many-steps\nversion: 1.0.0\nenvironments:\n  fno:\n    kind: fno\n    url: https://contoso.operations.dynamics.com\n    auth: { tenant: t, client_id: c, client_secret: \"${STEPS_SECRET}\" }\nphases:\n",
    );
    for i in 0..n {
        if i % PER_PHASE == 0 {
            let _ = write!(s, "  - id: p{}\n    steps: [", i / PER_PHASE);
        }
        let _ = write!(s, "{{id: s{},kind: wait,for: 0s}}", base36(i));
        if i % PER_PHASE == PER_PHASE - 1 || i == n - 1 {
            s.push_str("]\n");
        } else {
            s.push(',');
        }
    }
    s
}

fn base36(mut i: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[i % 36]);
        i /= 36;
        if i == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

fn main() {
    let n = steps();
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("steps.yaml");
    std::fs::write(&rb, runbook(n)).unwrap();
    let journal = dir.path().join("steps.journal");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wall = Instant::now();
    let end = rt.block_on(async {
        let sim = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let opts = RunOptions {
            runbook: Some(rb),
            journal: journal.clone(),
            operator: "bench".into(),
            auto_approve: Some(AutoApprove {
                operator: "bench".into(),
                reason: "bench".into(),
            }),
            interactive: false,
            sim: SimTarget::Url(sim.url()),
            accept_changed_runbook: false,
            accept_inserted_steps: Vec::new(),
            take_over: false,
            new_run: false,
            resume_only: false,
            vars: Arc::new(|n: &str| (n == "STEPS_SECRET").then(|| "steps-secret-value".to_owned())),
            follow_delay: None,
        };
        let (h, _, _) = start_engine(opts).await.unwrap();
        // Where the peak is reached: setting the run up (load, validate, plan, RunStarted) or running it.
        println!(
            "steps: set up in {:.1} s, peak RSS so far {:.0} MB",
            wall.elapsed().as_secs_f64(),
            figure::peak_rss_mb().unwrap_or(f64::NAN)
        );
        let end = h.done.await.unwrap();
        sim.shutdown().await;
        end
    });
    let wall_s = wall.elapsed().as_secs_f64();
    let peak = figure::peak_rss_mb().unwrap_or(f64::NAN);
    assert!(
        matches!(end, RunEnd::Finished(RunOutcome::Succeeded)),
        "the run did not succeed: {end:?}"
    );
    // Step finish times from the journal: the rate over the first and the last tenth.
    let reader = cutover::journal::JournalReader::open_read_only(&journal).unwrap();
    let run = reader.runs().unwrap()[0].run_id.clone();
    let mut finished = Vec::with_capacity(n);
    let mut started = None;
    for e in reader.events(&run).map(Result::unwrap) {
        match e.event {
            Event::RunStarted { .. } => started = Some(e.at),
            Event::StepFinished { .. } => finished.push(e.at),
            _ => {}
        }
    }
    assert_eq!(finished.len(), n, "every step finished once");
    let tenth = (n / 10).max(1);
    let rate = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        let s = (to - from).num_milliseconds().max(1) as f64 / 1000.0;
        tenth as f64 / s
    };
    let first = rate(started.unwrap(), finished[tenth - 1]);
    let last = rate(finished[n - tenth - 1], finished[n - 1]);
    let overall = n as f64 / wall_s;
    println!(
        "steps: {n} trivial steps in {wall_s:.1} s = {overall:.0} steps/s; first 10% {first:.0} steps/s, last 10% {last:.0} steps/s; peak RSS {peak:.0} MB"
    );
    figure::emit(
        "steps rate",
        overall,
        "steps/s",
        None,
        None,
        ">= 1000",
        overall >= TARGET_RATE,
    );
    figure::emit(
        "steps peak rss",
        peak,
        "MB",
        None,
        None,
        "< 300",
        peak < TARGET_RSS_MB,
    );
    let ratio = last / first;
    figure::emit(
        "steps last/first rate",
        ratio,
        "x",
        None,
        Some(ratio),
        ">= 0.5",
        ratio >= 0.5,
    );
}
