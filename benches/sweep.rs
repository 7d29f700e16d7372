//! Sweep throughput: a `parity` step over 500 maps (1,000 counts, both sides) through the real
//! engine against the simulator with 20 ms latency per response, at `concurrency: 16`.
//! Ideal: 1,000 requests x 20 ms / 16 = 1.25 s. Target: within 1.2x of it.
//!
//! Run: `cargo bench --bench sweep`. The figure is the parity step's duration as journaled
//! (StepIntent to StepFinished), so it includes the scheduler, journaling of every request summary
//! and the token requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use cutover::engine::event::Event;
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;

const MAPS: usize = 500;
const LATENCY_MS: u64 = 20;
const CONCURRENCY: u64 = 16;

fn scenario() -> String {
    let mut s = format!(
        "name: sweep\nseed: 1\ntime_scale: 1\nlatency: {{ ms: {LATENCY_MS}, jitter_ms: 0 }}\ncompanies: [USMF]\ndataverse:\n  service_protection: {{ requests: 1000000, window: 300, concurrent: 1000 }}\nentities:\n  fno:\n"
    );
    for i in 0..MAPS {
        let _ = writeln!(s, "    Set{i}: {{ key: K{i}, rows: {} }}", 10 + i);
    }
    s.push_str("  dataverse:\n");
    for i in 0..MAPS {
        let _ = writeln!(s, "    set{i}s: {{ key: k{i}, rows: {} }}", 10 + i);
    }
    s
}

fn runbook() -> String {
    let auth = |c: &str| {
        format!("    auth: {{ tenant: t, client_id: {c}, client_secret: \"${{SWEEP_SECRET}}\" }}\n")
    };
    let mut s = format!(
        "runbook: sweep\nversion: 1.0.0\ndefaults: {{ concurrency: {CONCURRENCY} }}\nenvironments:\n  fno:\n    kind: fno\n    url: https://sweep.operations.dynamics.com\n{}  dataverse:\n    kind: dataverse\n    url: https://sweep.crm.dynamics.com\n{}maps:\n",
        auth("f"),
        auth("d")
    );
    for i in 0..MAPS {
        let _ = writeln!(s, "  m{i}: {{ source: fno:Set{i}, target: dataverse:set{i}s }}");
    }
    s.push_str("phases:\n  - id: sweep\n    steps:\n      - { id: count-all, kind: parity, maps: all }\n");
    s
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("sweep.yaml");
    std::fs::write(&rb, runbook()).unwrap();
    let journal = dir.path().join("sweep.journal");
    let sc = cutover::sim::Scenario::from_yaml(&scenario()).unwrap();
    let wall = Instant::now();
    let end = rt.block_on(async {
        let sim = cutover::sim::start(sc, "127.0.0.1:0".parse().unwrap())
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
            take_over: false,
            new_run: false,
            resume_only: false,
            vars: Arc::new(|n: &str| (n == "SWEEP_SECRET").then(|| "sweep-secret-value".to_owned())),
        };
        let (h, _, _) = start_engine(opts).await.unwrap();
        h.done.await.unwrap()
    });
    let wall = wall.elapsed();
    let reader = cutover::journal::JournalReader::open_read_only(&journal).unwrap();
    let run = reader.runs().unwrap()[0].run_id.clone();
    let (mut start, mut finish, mut requests) = (None, None, 0u64);
    for e in reader.events(&run).map(Result::unwrap) {
        match e.event {
            Event::StepIntent { .. } => start = Some(e.at),
            Event::StepFinished { .. } => finish = Some(e.at),
            Event::Request { .. } => requests += 1,
            _ => {}
        }
    }
    let step_ms = (finish.unwrap() - start.unwrap()).num_milliseconds();
    #[allow(clippy::cast_precision_loss)]
    let ideal_ms = (2 * MAPS as u64 * LATENCY_MS / CONCURRENCY) as f64;
    #[allow(clippy::cast_precision_loss)]
    let ratio = step_ms as f64 / ideal_ms;
    println!(
        "sweep: {end:?}; {MAPS} maps, {requests} requests journaled; parity step {step_ms} ms vs ideal {ideal_ms:.0} ms = {ratio:.2}x (target <= 1.20x); whole run {:.2} s",
        wall.as_secs_f64()
    );
}
