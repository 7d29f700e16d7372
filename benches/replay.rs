//! Replay and verify at scale: a 1,000,000-event journal (realistic mix), then the state rebuild
//! (read + decode + reduce; target < 2 s) and the chain verification (target < 5 s).
//!
//! `cargo bench --bench replay` (release). `REPLAY_BENCH_EVENTS` overrides the event count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/journal_support.rs"]
mod support;

use std::time::Instant;

use cutover::engine::RunState;
use cutover::journal::{Journal, JournalReader, Redactor};
use support::{Gen, run_id, run_started};

fn main() {
    let n: usize = std::env::var("REPLAY_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.journal");
    let r = run_id("big");

    let start = Instant::now();
    let journal = Journal::open(&path, Redactor::with_secrets(["client-secret-value-0001"])).unwrap();
    let w = journal.writer();
    w.append_blocking(r.clone(), run_started("big", 500)).unwrap();
    let mut g = Gen::new(7, 500);
    for _ in 1..n {
        w.append_batched(r.clone(), g.next_event()).unwrap();
    }
    w.flush_blocking().unwrap();
    journal.close().unwrap();
    let gen_secs = start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len();

    let reader = JournalReader::open_read_only(&path).unwrap();
    let start = Instant::now();
    let mut decoded = 0u64;
    for e in reader.events(&r) {
        e.unwrap();
        decoded += 1;
    }
    let decode_secs = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let state: RunState = reader.state_at(&r, None).unwrap();
    let rebuild_secs = start.elapsed().as_secs_f64();
    assert_eq!(state.events_applied, n as u64);

    let start = Instant::now();
    let report = reader.verify().unwrap().unwrap();
    let verify_secs = start.elapsed().as_secs_f64();
    assert_eq!(report.events, n as u64);

    println!("replay bench: {n} events, journal {:.0} MB", size as f64 / 1e6);
    println!(
        "  write (batched)               : {gen_secs:>7.2} s ({:.0} events/s)",
        n as f64 / gen_secs
    );
    println!("  read + decode only            : {decode_secs:>7.2} s ({decoded} envelopes)");
    println!(
        "  state rebuild (read+decode+apply): {rebuild_secs:>7.2} s (target < 2 s) {}",
        verdict(rebuild_secs < 2.0)
    );
    println!(
        "  reducer alone (difference)    : {:>7.2} s",
        (rebuild_secs - decode_secs).max(0.0)
    );
    println!(
        "  verify                        : {verify_secs:>7.2} s (target < 5 s) {}",
        verdict(verify_secs < 5.0)
    );
    println!(
        "  state: {} steps, {} parity rows, {} error entries kept of {}, {} requests",
        state.steps.len(),
        state.parity.rows.len(),
        state.errors.newest.len(),
        state.errors.seen_total,
        state.requests_total
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}
