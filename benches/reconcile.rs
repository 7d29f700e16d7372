//! Row-level parity at scale (issue 17).
//!
//! 1. **The comparison alone**: 10,000,000 keys per side (1,000,000 with `CUTOVER_BENCH_QUICK`) generated in
//!    memory a page at a time and streamed into the scratch database (`RowCompare`), one in 1,000 missing on
//!    the target, one in 1,000 extra, one in 1,000 different; then the classification. Figure
//!    `reconcile classify` in keys classified per second (target >= 1,000,000 on this 2-core machine); the
//!    load rate and the file's size are printed.
//! 2. **A 1,000,000-row map per side through the engine** (100,000 with `CUTOVER_BENCH_QUICK`): a `reconcile`
//!    step against the simulator (serving from a runtime of its own with one worker, as a remote service would
//!    not share the console's async workers or cores) with 100 ms per response (`CUTOVER_BENCH_LATENCY_MS`), F&O 10,000 rows a page (one link after
//!    another), Dataverse 5,000 a page in 4 `createdon` ranges, both sides at once. The ideal is what the
//!    service imposes: the longer of F&O pages × latency (they cannot overlap: each link comes with the page
//!    before it) and the Dataverse pages of the longest range (after the two bound reads) × latency; the service protection limits (52
//!    concurrent requests, 6,000 per 5 minutes per user) do not bind at 4 ranges and ~300 requests, and the
//!    ideal says so when they would. Figures: `reconcile 1m ratio` (step time / ideal, target <= 1.2),
//!    `reconcile 1m rss` (peak RSS of this process, which also holds the simulator's tables, target
//!    < 300 MB); rows/s per side and the scratch file's size are printed.
//!
//! Run: `cargo bench --bench reconcile` (or `scripts/bench --only reconcile`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "figure.rs"]
mod figure;

use std::sync::Arc;
use std::time::Instant;

use cutover::engine::event::{Event, StepOutcome};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;
use cutover::journal::scratch::{RowCompare, Side};
use serde_json::{Map, Value, json};

/// Real milliseconds the simulator adds to every response (`CUTOVER_BENCH_LATENCY_MS` to change it: a real
/// 10,000-row F&O page takes seconds, so 100 ms is the harsh case for the console's own costs).
fn latency_ms() -> u64 {
    std::env::var("CUTOVER_BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}
const RANGES: u64 = 4;

fn quick() -> bool {
    std::env::var_os("CUTOVER_BENCH_QUICK").is_some()
}

fn row(k: u64, name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("k".into(), json!(format!("C-{k:09}")));
    m.insert("name".into(), json!(name));
    m.insert("city".into(), json!(format!("City {}", k % 977)));
    m
}

fn comparison_alone() {
    let n: u64 = if quick() { 1_000_000 } else { 10_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let scratch = RowCompare::create(&dir.path().join("bench.reconcile.sqlite")).unwrap();
    let fields = vec!["name".to_owned(), "city".to_owned()];
    let page = 5_000u64;
    let load = Instant::now();
    for side in [Side::Source, Side::Target] {
        let mut k = 0u64;
        while k < n {
            let rows: Vec<Map<String, Value>> = (k..(k + page).min(n))
                .filter_map(|i| match side {
                    Side::Source if i % 1000 == 1 => None, // extra on the target
                    Side::Target if i % 1000 == 0 => None, // missing on the target
                    Side::Target if i % 1000 == 2 => Some(row(i, "Changed Ltd")),
                    _ => Some(row(i, "Contoso Ltd")),
                })
                .collect();
            scratch.insert(side, "k", &fields, rows).unwrap();
            k += page;
        }
    }
    let load_s = load.elapsed().as_secs_f64();
    let classify = Instant::now();
    let (counts, sample) = scratch.classify(&fields, 100).unwrap();
    let classify_s = classify.elapsed().as_secs_f64();
    let keys = counts.matching + counts.missing + counts.extra + counts.different;
    let per_thousand = n / 1000;
    assert_eq!(
        (counts.missing, counts.extra, counts.different),
        (per_thousand, per_thousand, per_thousand),
        "the planted differences"
    );
    assert_eq!(sample.len(), 300);
    let rate = keys as f64 / classify_s;
    println!(
        "reconcile (comparison alone): {n} keys per side loaded in {load_s:.1} s ({:.0} rows/s, both sides), classified in {classify_s:.2} s ({rate:.0} keys/s); {counts:?}; scratch file {:.0} MB",
        2.0 * n as f64 / load_s,
        scratch.bytes() as f64 / 1e6
    );
    figure::emit(
        "reconcile classify",
        rate,
        "keys/s",
        None,
        None,
        ">= 1000000",
        rate >= 1_000_000.0,
    );
}

fn scenario(n: u64) -> String {
    [
        "name: rows".to_owned(),
        "seed: 3".to_owned(),
        "time_scale: 1".to_owned(),
        format!("latency: {{ ms: {}, jitter_ms: 0 }}", latency_ms()),
        "companies: [USMF]".to_owned(),
        "default_company: USMF".to_owned(),
        "entities:".to_owned(),
        "  fno:".to_owned(),
        "    Companies: { key: DataArea, rows: 1, fields: { Name: name } }".to_owned(),
        format!("    CustomersV3: {{ key: CustomerAccount, rows: {{ USMF: {n} }}, fields: {{ OrganizationName: name, City: city }} }}"),
        "  dataverse:".to_owned(),
        "    cdm_companies: { key: cdm_companycode }".to_owned(),
        "    accounts: { key: accountnumber }".to_owned(),
        "maps:".to_owned(),
        "  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }".to_owned(),
        "  - { name: customers, source: CustomersV3, target: accounts, key: { source: CustomerAccount, target: accountnumber }, fields: { OrganizationName: name, City: address1_city }, corrupt_share: 0.001, initial: { status: stopped, preloaded: true } }".to_owned(),
    ]
    .join("\n")
}

fn runbook() -> String {
    let auth = "auth: { tenant: t, client_id: c, client_secret: \"${RECONCILE_SECRET}\" }";
    [
        "runbook: rows".to_owned(),
        "version: 1.0.0".to_owned(),
        "environments:".to_owned(),
        format!("  fno: {{ kind: fno, url: https://rows.operations.dynamics.com, {auth} }}"),
        format!("  dataverse: {{ kind: dataverse, url: https://rows.crm.dynamics.com, {auth} }}"),
        "maps:".to_owned(),
        "  companies: { source: \"fno:Companies\", target: \"dataverse:cdm_companies\" }".to_owned(),
        "  customers:".to_owned(),
        "    source: fno:CustomersV3".to_owned(),
        "    target: dataverse:accounts".to_owned(),
        "    companies: [USMF]".to_owned(),
        "    key: { source: CustomerAccount, target: accountnumber }".to_owned(),
        "    compare: { OrganizationName: name, City: address1_city }".to_owned(),
        "phases:".to_owned(),
        "  - id: p".to_owned(),
        "    steps:".to_owned(),
        format!("      - {{ id: rows, kind: reconcile, maps: [customers], max_differences: 100000000, ranges: {RANGES} }}"),
    ]
    .join("\n")
}

fn through_the_engine(rt: &tokio::runtime::Runtime, sim_rt: &tokio::runtime::Runtime) {
    let n: u64 = if quick() { 100_000 } else { 1_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("rows.yaml");
    std::fs::write(&rb, runbook()).unwrap();
    let journal = dir.path().join("rows.journal");
    let sc = cutover::sim::Scenario::from_yaml(&scenario(n)).unwrap();
    let rss0 = figure::peak_rss_mb();
    let cpu0 = figure::process_cpu();
    // The simulator stands in for services on other machines: it serves from a runtime of its own, with one
    // worker (`CUTOVER_BENCH_SIM_THREADS`), so that its page building (60% of the run's CPU: it builds 2M rows of
    // JSON) never holds up the console's tasks and leaves the console one of the two cores. The process's CPU
    // time below still counts both.
    let sim = sim_rt
        .block_on(cutover::sim::start(sc, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    rt.block_on(async {
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
            vars: Arc::new(|n: &str| (n == "RECONCILE_SECRET").then(|| "reconcile-secret-value".to_owned())),
            follow_delay: None,
        };
        let (h, _, _) = start_engine(opts).await.unwrap();
        h.done.await.unwrap();
    });
    sim_rt.block_on(sim.shutdown());
    // CPU time of the whole process (simulator included): on a loaded machine the step's wall time says
    // little, and this says what the run cost.
    let cpu_s = match (cpu0, figure::process_cpu()) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    let reader = cutover::journal::JournalReader::open_read_only(&journal).unwrap();
    let run = reader.runs().unwrap()[0].run_id.clone();
    let (mut start, mut finish, mut ok) = (None, None, false);
    let (mut result, mut pages_fno, mut pages_dv, mut scratch) = (None, 0u64, 0u64, 0u64);
    // Where the time went: when each side's last page was journaled, and F&O's requests' own durations (its
    // pages come one after another, so what is not in them is the console's time between pages).
    let (mut fno_ms, mut fno_last, mut dv_last) = (0u64, None, None);
    for e in reader.events(&run).map(Result::unwrap) {
        match e.event {
            Event::StepIntent { .. } => start = Some(e.at),
            Event::StepFinished { outcome, .. } => {
                finish = Some(e.at);
                ok = outcome == StepOutcome::Succeeded;
            }
            Event::Request {
                path, duration_ms, ..
            } if path.contains("/data/CustomersV3") => {
                pages_fno += 1;
                fno_ms += duration_ms;
                fno_last = Some(e.at);
            }
            Event::Request { path, .. } if path.contains("/accounts") => {
                pages_dv += 1;
                dv_last = Some(e.at);
            }
            Event::RowsReconciled {
                source_rows,
                target_rows,
                different,
                scratch_bytes,
                ..
            } => {
                result = Some((source_rows, target_rows, different));
                scratch = scratch_bytes;
            }
            _ => {}
        }
    }
    assert!(ok, "the reconcile step did not succeed");
    let (source_rows, target_rows, different) = result.unwrap();
    assert_eq!((source_rows, target_rows), (n, n));
    let step_s = (finish.unwrap() - start.unwrap()).num_milliseconds() as f64 / 1000.0;
    // The service's floor: both sides are read at once, so the longer of F&O's pages one after another and
    // Dataverse's busiest range after its two bound reads.
    let fno_pages = n.div_ceil(10_000);
    let dv_pages_per_range = (n / RANGES).div_ceil(5_000);
    let requests = fno_pages + dv_pages_per_range * RANGES + 2;
    let window_floor = (requests as f64 / 6000.0).floor() * 300.0; // 0 unless > 6,000 requests
    let critical = fno_pages.max(dv_pages_per_range + 2);
    let ideal_s = (critical * latency_ms()) as f64 / 1000.0 + window_floor;
    let ratio = step_s / ideal_s;
    let rss = figure::peak_rss_mb().unwrap_or(f64::NAN);
    println!(
        "reconcile (1 map, {n} rows per side, {} ms a response): step {step_s:.1} s vs ideal {ideal_s:.1} s = {ratio:.2}x (target <= 1.2); {cpu_s:.1} s of CPU (both cores, simulator included; load average {:.1}); {:.0} rows/s per side; {pages_fno} F&O and {pages_dv} Dataverse requests journaled; {different} different; scratch file {:.0} MB; peak RSS {rss:.0} MB (before the run {:.0} MB; includes the simulator's tables)",
        latency_ms(),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()))
            .unwrap_or(f64::NAN),
        n as f64 / step_s,
        scratch as f64 / 1e6,
        rss0.unwrap_or(f64::NAN)
    );
    let since = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or(f64::NAN, |t| {
            (t - start.unwrap()).num_milliseconds() as f64 / 1000.0
        })
    };
    println!(
        "  F&O read by {:.1} s ({pages_fno} requests, {:.1} s in them); Dataverse read by {:.1} s",
        since(fno_last),
        fno_ms as f64 / 1000.0,
        since(dv_last)
    );
    figure::emit(
        "reconcile 1m ratio",
        ratio,
        "x",
        Some((ideal_s, "latency x pages on the critical path")),
        Some(ratio),
        "<= 1.2",
        ratio <= 1.2,
    );
    figure::emit("reconcile 1m rss", rss, "MB", None, None, "< 300 MB", rss < 300.0);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // CUTOVER_BENCH_PART=engine or =compare runs one half (when profiling one of them).
    let part = std::env::var("CUTOVER_BENCH_PART").unwrap_or_default();
    if part != "compare" {
        let sim_rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("sim")
            .worker_threads(
                std::env::var("CUTOVER_BENCH_SIM_THREADS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            )
            .enable_all()
            .build()
            .unwrap();
        through_the_engine(&rt, &sim_rt);
    }
    if part != "engine" {
        comparison_alone();
    }
}
