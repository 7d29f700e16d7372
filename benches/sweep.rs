//! Sweep throughput: a `parity` step over 500 maps (1,000 counts, both sides) through the real
//! engine against the simulator with 20 ms latency per response, at `concurrency: 16`.
//!
//! 1. Clean: held against the ideal (1,000 counts + M metadata reads) × 20 ms / 16; target ratio ≤ 1.2.
//!    The Dataverse counts need each table's primary id, read from `EntityDefinitions`. The step reads
//!    every table's definition first in a few batched requests (an `or` of `EntitySetName eq`, chunked to
//!    2,048 encoded filter characters: M ≈ 11 for 500 tables) instead of one per table, which made 1,500
//!    requests. Those M requests are real work on a real tenant too, so the ideal counts them (M is read
//!    from the run's journal): (1,000 + 11) × 20 ms / 16 ≈ 1.26 s.
//! 2. Throttled: the simulator answers 429 with `Retry-After: 1` to every 10th F&O request and
//!    every 10th Dataverse request (two `faults` rules, each counting its own service's requests,
//!    retries included). The run must finish; the ratio to the throttled ideal is printed.
//!
//! The throttled ideal. The counts run through one `buffer_unordered(16)`: 16 slots, and a
//! throttled count keeps its slot while it sleeps the Retry-After (the transport retries inside the
//! call). Every attempt costs its slot the 20 ms latency (429s are answered after the latency too),
//! and each 429 adds its 1 s wait. With R attempts of which T were throttled, no schedule can
//! finish sooner than (R × 20 ms + T × 1 s) / 16. R and T are read from the run's own journal
//! (one `Request` per attempt, metadata reads included); with every 10th attempt throttled,
//! R − T ≈ 1,011 gives T ≈ 112, R ≈ 1,123 and an ideal of about (22.5 s + 112 s) / 16 ≈ 8.4 s. It is a lower bound:
//! a 1 s wait that starts near the end cannot be hidden behind other slots' work (Graham's bound
//! puts the best list schedule within one longest job, about 1 s, above it).
//!
//! Figures: `sweep ratio` (target ≤ 1.2) and `sweep throttled ratio` (printed against the
//! throttled ideal; the target is that the run finishes, every count succeeded). The figure is the
//! parity step's duration as journaled (StepIntent to StepFinished), so it includes the scheduler,
//! journaling of every request summary and the token requests.
//!
//! Run: `cargo bench --bench sweep` (`CUTOVER_BENCH_QUICK=1`: 100 maps).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "figure.rs"]
mod figure;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, StepOutcome};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;

const LATENCY_MS: u64 = 20;
const CONCURRENCY: u64 = 16;
const THROTTLE_EVERY: u64 = 10;
const RETRY_AFTER_S: u64 = 1;
const TARGET: f64 = 1.2;

fn maps() -> usize {
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        100
    } else {
        500
    }
}

fn scenario(throttle: bool) -> String {
    let n = maps();
    let mut s = format!(
        "name: sweep\nseed: 1\ntime_scale: 1\nlatency: {{ ms: {LATENCY_MS}, jitter_ms: 0 }}\ncompanies: [USMF]\ndataverse:\n  service_protection: {{ requests: 1000000, window: 300, concurrent: 1000 }}\nentities:\n  fno:\n"
    );
    for i in 0..n {
        let _ = writeln!(s, "    Set{i}: {{ key: K{i}, rows: {} }}", 10 + i);
    }
    s.push_str("  dataverse:\n");
    for i in 0..n {
        let _ = writeln!(s, "    set{i}s: {{ key: k{i}, rows: {} }}", 10 + i);
    }
    if throttle {
        s.push_str("faults:\n");
        for service in ["fno", "dataverse"] {
            let _ = writeln!(
                s,
                "  - {{ service: {service}, throttle_every: {THROTTLE_EVERY}, retry_after: {RETRY_AFTER_S} }}"
            );
        }
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
    for i in 0..maps() {
        let _ = writeln!(s, "  m{i}: {{ source: fno:Set{i}, target: dataverse:set{i}s }}");
    }
    s.push_str("phases:\n  - id: sweep\n    steps:\n      - { id: count-all, kind: parity, maps: all }\n");
    s
}

/// What one sweep run journaled.
struct Sweep {
    end: RunEnd,
    succeeded: bool,
    step_ms: f64,
    /// Count attempts (token requests excluded) and how many of them got a 429.
    attempts: u64,
    /// Of `attempts`, the table metadata reads (`EntityDefinitions`).
    metadata: u64,
    throttled: u64,
    wall_s: f64,
    /// Milliseconds from StepIntent to the first and to the last count's journaled summary.
    first_ms: f64,
    last_ms: f64,
}

fn run(rt: &tokio::runtime::Runtime, throttle: bool) -> Sweep {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("sweep.yaml");
    std::fs::write(&rb, runbook()).unwrap();
    let journal = dir.path().join("sweep.journal");
    let sc = cutover::sim::Scenario::from_yaml(&scenario(throttle)).unwrap();
    let wall = Instant::now();
    let cpu0 = figure::process_cpu();
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
            accept_inserted_steps: Vec::new(),
            take_over: false,
            new_run: false,
            resume_only: false,
            vars: Arc::new(|n: &str| (n == "SWEEP_SECRET").then(|| "sweep-secret-value".to_owned())),
            follow_delay: None,
        };
        let (h, _, _) = start_engine(opts).await.unwrap();
        let end = h.done.await.unwrap();
        sim.shutdown().await;
        end
    });
    let wall_s = wall.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (cpu0, figure::process_cpu()) {
        println!(
            "  (process CPU for this run, engine + simulator + journal: {:.2} s over {wall_s:.2} s wall; load average {})",
            (b - a).as_secs_f64(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
    let reader = cutover::journal::JournalReader::open_read_only(&journal).unwrap();
    let run = reader.runs().unwrap()[0].run_id.clone();
    let (mut start, mut finish, mut succeeded) = (None, None, false);
    let (mut attempts, mut throttled, mut metadata) = (0u64, 0u64, 0u64);
    let (mut first, mut last) = (None, None);
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for e in reader.events(&run).map(Result::unwrap) {
        if !matches!(e.event, Event::Request { .. }) {
            let mut d = format!("{:?}", e.event);
            d.truncate(300);
            tail.push_back(d);
            if tail.len() > 8 {
                tail.pop_front();
            }
        }
        match e.event {
            Event::StepIntent { .. } => start = Some(e.at),
            Event::StepFinished { outcome, .. } => {
                finish = Some(e.at);
                succeeded = outcome == StepOutcome::Succeeded;
            }
            Event::Request { path, status, .. } if !path.contains("oauth2") => {
                attempts += 1;
                throttled += u64::from(status == Some(429));
                metadata += u64::from(path.contains("EntityDefinitions"));
                first = first.or(Some(e.at));
                last = Some(e.at);
            }
            _ => {}
        }
    }
    let start = start.unwrap();
    let Some(finish) = finish else {
        panic!(
            "the parity step never finished: the run ended {end:?}; its last events:\n{}",
            Vec::from(tail).join("\n")
        );
    };
    let step_ms = (finish - start).num_milliseconds() as f64;
    let since = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or(f64::NAN, |t| (t - start).num_milliseconds() as f64)
    };
    Sweep {
        first_ms: since(first),
        last_ms: since(last),
        end,
        succeeded,
        step_ms,
        attempts,
        metadata,
        throttled,
        wall_s,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = maps() as u64;
    let clean = run(&rt, false);
    let ideal_ms = ((2 * n + clean.metadata) * LATENCY_MS) as f64 / CONCURRENCY as f64;
    let ratio = clean.step_ms / ideal_ms;
    println!(
        "sweep: {:?}; {n} maps, {} requests journaled ({} counts, {} table metadata reads); parity step {:.0} ms vs ideal {ideal_ms:.0} ms = {ratio:.2}x (target <= {TARGET:.2}x); whole run {:.2} s",
        clean.end,
        clean.attempts,
        clean.attempts - clean.metadata,
        clean.metadata,
        clean.step_ms,
        clean.wall_s
    );
    println!(
        "  within the step: first count journaled at +{:.0} ms, last at +{:.0} ms, step finished at +{:.0} ms",
        clean.first_ms, clean.last_ms, clean.step_ms
    );
    figure::emit(
        "sweep ratio",
        clean.step_ms,
        "ms",
        Some((
            ideal_ms,
            &format!(
                "ideal ({} counts + {} metadata reads) x {LATENCY_MS} ms / {CONCURRENCY}",
                2 * n,
                clean.metadata
            ),
        )),
        Some(ratio),
        "<= 1.2",
        clean.succeeded && ratio <= TARGET,
    );

    let thr = run(&rt, true);
    let t_ideal_ms =
        (thr.attempts * LATENCY_MS + thr.throttled * RETRY_AFTER_S * 1000) as f64 / CONCURRENCY as f64;
    let t_ratio = thr.step_ms / t_ideal_ms;
    println!(
        "sweep with a 429 (Retry-After {RETRY_AFTER_S} s) on every {THROTTLE_EVERY}th request: {:?}, step {}; {} attempts of which {} throttled; parity step {:.0} ms vs throttled ideal ({} x {LATENCY_MS} ms + {} x {RETRY_AFTER_S} s) / {CONCURRENCY} = {t_ideal_ms:.0} ms: {t_ratio:.2}x; whole run {:.2} s",
        thr.end,
        if thr.succeeded { "succeeded" } else { "FAILED" },
        thr.attempts,
        thr.throttled,
        thr.step_ms,
        thr.attempts,
        thr.throttled,
        thr.wall_s
    );
    figure::emit(
        "sweep throttled ratio",
        thr.step_ms,
        "ms",
        Some((
            t_ideal_ms,
            &format!(
                "throttled ideal ({} attempts x {LATENCY_MS} ms + {} 429s x {RETRY_AFTER_S} s) / {CONCURRENCY}",
                thr.attempts, thr.throttled
            ),
        )),
        Some(t_ratio),
        "finishes (ratio printed)",
        thr.succeeded && thr.throttled > 0,
    );
}
