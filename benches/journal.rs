//! Journal append throughput: JournalWriter (batched and durable paths, many concurrent appenders)
//! against a plain rusqlite insert of the same rows with the same pragmas, in the same run.
//! Targets: >= 20,000 events/s and a ratio >= 0.7.
//!
//! What "the same rows" means for the baseline (`plain`):
//! - the same column values byte for byte: the rows are read back from the journal the writer
//!   just made (same ids, run ids, seqs, times, canonical payloads, prev hashes and hashes);
//! - the same schema: the journal's own migration (table, unique index, triggers, other tables);
//! - the same pragmas: WAL, `synchronous=FULL`, `foreign_keys=ON`;
//! - the same transaction batching as the writer: a commit when 8,192 rows are pending or when
//!   the oldest pending row has waited the batch window (50 ms), each moving `chain_head`.
//!
//! What it does not do is the journal's own work: redaction, canonical JSON, the sha256 chain,
//! the channel to the writer thread, the envelope handed back. That is what the ratio prices.
//! Batched and plain runs alternate (`ROUNDS` pairs) and the median ratio is reported, so a burst
//! of load from other processes on this shared machine does not decide the figure.
//!
//! `cargo bench --bench journal` (release). `JOURNAL_BENCH_EVENTS` overrides the event count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/it/support/journal.rs"]
mod support;

#[path = "figure.rs"]
mod figure;
use std::path::Path;
use std::time::Instant;

use cutover::engine::Event;
use cutover::journal::{Journal, JournalReader, Redactor};
use rusqlite::{Connection, params};
use support::{Gen, run_id, run_started};

const MAX_BATCH: usize = 8192;
/// The writer's default batch window (`JournalOptions::default().batch_window`).
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);
/// Alternating batched/plain pairs; the median ratio is the figure.
const ROUNDS: usize = 3;

type Row = (i64, String, i64, String, String, String, String, String);

fn events(n: usize, seed: u64) -> Vec<Event> {
    let mut g = Gen::new(seed, 50);
    (0..n).map(|_| g.next_event()).collect()
}

fn redactor() -> Redactor {
    Redactor::with_secrets(["client-secret-value-0001", "client-secret-value-0002"])
}

/// Batched path: `tasks` appenders share the events, then one flush.
fn batched(dir: &Path, evs: &[Event], tasks: usize, round: usize) -> (f64, std::path::PathBuf) {
    let path = dir.join(format!("batched-{round}.journal"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let journal = Journal::open(&path, redactor()).unwrap();
    let w = journal.writer();
    rt.block_on(w.append(run_id("r"), run_started("r", 50))).unwrap();
    let chunks: Vec<Vec<Event>> = evs
        .chunks(evs.len().div_ceil(tasks))
        .map(<[Event]>::to_vec)
        .collect();
    let start = Instant::now();
    let cpu0 = thread_cpu_secs(None);
    rt.block_on(async {
        let mut handles = Vec::new();
        for chunk in chunks {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                for e in chunk {
                    w.append_batched(run_id("r"), e).unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        w.flush().await.unwrap();
    });
    let secs = start.elapsed().as_secs_f64();
    let writer_cpu = thread_cpu_secs(Some("cutover-journal"));
    let all_cpu = thread_cpu_secs(None) - cpu0;
    journal.close().unwrap();
    println!(
        "  round {round}: {secs:.2} s wall; CPU: writer thread {writer_cpu:.2} s, whole process {all_cpu:.2} s (from /proc, 10 ms ticks)"
    );
    (evs.len() as f64 / secs, path)
}

/// CPU seconds (user + system) used so far by this process's threads named `name` (all: `None`).
fn thread_cpu_secs(name: Option<&str>) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            name.is_none_or(|name| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
        })
        .map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let f: Vec<f64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            f.get(10).zip(f.get(11)).map_or(0.0, |(u, s)| (u + s) / 100.0)
        })
        .sum()
}

/// Durable path: `tasks` concurrent appenders, each awaiting every append (group commit at work).
fn durable(dir: &Path, evs: &[Event], tasks: usize) -> f64 {
    let path = dir.join(format!("durable-{tasks}.journal"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let journal = Journal::open(&path, redactor()).unwrap();
    let w = journal.writer();
    let chunks: Vec<Vec<Event>> = evs
        .chunks(evs.len().div_ceil(tasks))
        .map(<[Event]>::to_vec)
        .collect();
    let start = Instant::now();
    rt.block_on(async {
        let mut handles = Vec::new();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                let r = run_id(&format!("r{i}"));
                for e in chunk {
                    w.append(r.clone(), e).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    let secs = start.elapsed().as_secs_f64();
    journal.close().unwrap();
    evs.len() as f64 / secs
}

fn rows_of(path: &Path) -> Vec<Row> {
    let reader = JournalReader::open_read_only(path).unwrap();
    let mut stmt = reader
        .connection()
        .prepare(
            "SELECT id, run_id, seq, at, kind, payload, prev_hash, hash FROM events WHERE id > 1 ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The baseline (see the module docs): the same rows, schema, pragmas and batching, no encoding.
fn plain(dir: &Path, rows: &[Row], round: usize) -> f64 {
    let path = dir.join(format!("plain-{round}.sqlite"));
    let mut c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .unwrap();
    c.execute_batch(include_str!("../src/journal/migrations/0001_init.sql"))
        .unwrap();
    let start = Instant::now();
    let cpu0 = thread_cpu_secs(None);
    let mut i = 0;
    while i < rows.len() {
        let oldest = Instant::now();
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO events (id, run_id, seq, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .unwrap();
            let end = (i + MAX_BATCH).min(rows.len());
            while i < end && oldest.elapsed() < BATCH_WINDOW {
                let r = &rows[i];
                ins.execute(params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7])
                    .unwrap();
                i += 1;
            }
            let last = &rows[i - 1];
            tx.execute(
                "UPDATE chain_head SET last_id = ?1, hash = ?2 WHERE id = 1",
                params![last.0, last.7],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  round {round}: plain {secs:.2} s wall, CPU {:.2} s",
        thread_cpu_secs(None) - cpu0
    );
    rows.len() as f64 / secs
}

/// The same rows, built in the loop the way the writer builds them (redact, canonical JSON,
/// sha256 chain) on one thread, then inserted `MAX_BATCH` per transaction: the cost of the
/// journal's work without its thread and channel.
fn plain_with_encoding(dir: &Path, evs: &[Event]) -> f64 {
    use cutover::journal::chain::{GENESIS_HASH, canonical_envelope, canonical_json, chain_hash};
    let path = dir.join("plain-encoded.sqlite");
    let c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    c.execute_batch("PRAGMA synchronous=FULL;").unwrap();
    c.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (run_id, seq));",
    )
    .unwrap();
    let mut c = c;
    let red = redactor();
    let start = Instant::now();
    let mut prev = GENESIS_HASH.to_string();
    let mut id = 0i64;
    for chunk in evs.chunks(MAX_BATCH) {
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .unwrap();
            for e in chunk {
                let mut v = serde_json::to_value(e).unwrap();
                red.redact_value(&mut v);
                let payload = canonical_json(&v);
                id += 1;
                let at = "2026-11-28T03:12:45.120Z";
                let hash = chain_hash(
                    &prev,
                    &canonical_envelope("r", id.unsigned_abs(), at, e.kind(), &payload),
                );
                ins.execute(params![id, "r", id, at, e.kind(), payload, prev, hash])
                    .unwrap();
                prev = hash;
            }
        }
        tx.commit().unwrap();
    }
    evs.len() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("JOURNAL_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let evs = events(n, 42);
    let (mut batched_rates, mut plain_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (b, path) = batched(dir.path(), &evs, 8, round);
        let rows = rows_of(&path);
        assert_eq!(rows.len(), n);
        let p = plain(dir.path(), &rows, round);
        println!(
            "  round {round}: batched {b:.0} events/s, plain {p:.0} events/s, ratio {:.2}",
            b / p
        );
        batched_rates.push(b);
        plain_rates.push(p);
        ratios.push(b / p);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (batched_rate, plain_rate, ratio) = (
        median(&mut batched_rates),
        median(&mut plain_rates),
        median(&mut ratios),
    );
    let encoded_rate = plain_with_encoding(dir.path(), &evs);
    let n_durable = n / 4;
    let one_rate = durable(dir.path(), &evs[..500], 1);
    let durable_rate = durable(dir.path(), &evs[..n_durable], 64);
    let durable_256 = durable(dir.path(), &evs[..n_durable], 256);
    println!("journal bench: {n} events (realistic mix, 50 maps), WAL + synchronous=FULL");
    println!("  JournalWriter batched, 8 appenders     : {batched_rate:>10.0} events/s");
    println!(
        "  JournalWriter durable, 64 appenders    : {durable_rate:>10.0} events/s ({n_durable} events, each awaited)"
    );
    println!(
        "  JournalWriter durable, 1 appender      : {one_rate:>10.0} events/s ({:.2} ms per durable append)",
        1000.0 / one_rate
    );
    println!("  JournalWriter durable, 256 appenders   : {durable_256:>10.0} events/s");
    println!("  plain rusqlite, same rows and batching : {plain_rate:>10.0} events/s");
    println!("  ratio batched / plain (median of {ROUNDS})   : {ratio:>10.2} (target >= 0.70)");
    println!(
        "  ratio durable / plain                  : {:>10.2}",
        durable_rate / plain_rate
    );
    println!("  plain rusqlite + same encoding, 1 thread: {encoded_rate:>10.0} events/s");
    println!(
        "  ratio batched / (plain + encoding)     : {:>10.2}",
        batched_rate / encoded_rate
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "  target >= 20,000 events/s (batched)    : {}",
        verdict(batched_rate >= 20_000.0)
    );
    println!(
        "  target ratio >= 0.7 (vs plain insert)  : {}",
        verdict(ratio >= 0.7)
    );
    println!("  (durable appends cost one fsync per group commit; they scale with concurrent appenders)");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  load average                           : {} (2 cores, shared)",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    figure(
        "journal append rate",
        batched_rate,
        "events/s",
        None,
        "",
        None,
        ">= 20000 events/s",
        batched_rate >= 20_000.0,
    );
    figure(
        "journal append ratio",
        batched_rate,
        "events/s",
        Some(plain_rate),
        "plain rusqlite insert, same rows, schema, pragmas and batching, same run",
        Some(ratio),
        ">= 0.7",
        ratio >= 0.7,
    );
}

/// One `FIGURE {json}` line for `scripts/bench`, through `benches/figure.rs`; the label is given
/// apart from the limit so the call sites read as a table.
#[allow(clippy::too_many_arguments)]
fn figure(
    name: &str,
    value: f64,
    unit: &str,
    limit: Option<f64>,
    limit_label: &str,
    ratio: Option<f64>,
    target: &str,
    pass: bool,
) {
    figure::emit(
        name,
        value,
        unit,
        limit.map(|l| (l, limit_label)),
        ratio,
        target,
        pass,
    );
}
