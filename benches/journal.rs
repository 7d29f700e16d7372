//! Journal append throughput: JournalWriter (batched and durable paths, many concurrent appenders)
//! against a plain rusqlite insert of the same rows with the same pragmas, one transaction per
//! flush, in the same run. Targets: >= 20,000 events/s and a ratio >= 0.7.
//!
//! `cargo bench --bench journal` (release). `JOURNAL_BENCH_EVENTS` overrides the event count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/journal_support.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use cutover::engine::Event;
use cutover::journal::{Journal, JournalReader, Redactor};
use rusqlite::{Connection, params};
use support::{Gen, run_id, run_started};

const MAX_BATCH: usize = 8192;

type Row = (i64, String, i64, String, String, String, String, String);

fn events(n: usize, seed: u64) -> Vec<Event> {
    let mut g = Gen::new(seed, 50);
    (0..n).map(|_| g.next_event()).collect()
}

fn redactor() -> Redactor {
    Redactor::with_secrets(["client-secret-value-0001", "client-secret-value-0002"])
}

/// Batched path: `tasks` appenders share the events, then one flush.
fn batched(dir: &Path, evs: &[Event], tasks: usize) -> (f64, std::path::PathBuf) {
    let path = dir.join("batched.journal");
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
    journal.close().unwrap();
    (evs.len() as f64 / secs, path)
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

/// The baseline: the same rows inserted with the same schema and pragmas, `MAX_BATCH` per transaction.
fn plain(dir: &Path, rows: &[Row]) -> f64 {
    let path = dir.join("plain.sqlite");
    let mut c = Connection::open(&path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .unwrap();
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .unwrap();
    c.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (run_id, seq));
         CREATE TABLE chain_head (id INTEGER PRIMARY KEY, last_id INTEGER NOT NULL, hash TEXT NOT NULL);
         INSERT INTO chain_head VALUES (1, 0, '');",
    )
    .unwrap();
    let start = Instant::now();
    for chunk in rows.chunks(MAX_BATCH) {
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
                .unwrap();
            for r in chunk {
                ins.execute(params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7])
                    .unwrap();
            }
            let last = chunk.last().unwrap();
            tx.execute(
                "UPDATE chain_head SET last_id = ?1, hash = ?2 WHERE id = 1",
                params![last.0, last.7],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    rows.len() as f64 / start.elapsed().as_secs_f64()
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
    let (batched_rate, batched_path) = batched(dir.path(), &evs, 8);
    let rows = rows_of(&batched_path);
    assert_eq!(rows.len(), n);
    let plain_rate = plain(dir.path(), &rows);
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
    println!("  plain rusqlite, same rows, {MAX_BATCH}/txn  : {plain_rate:>10.0} events/s");
    println!(
        "  ratio batched / plain                  : {:>10.2} (target >= 0.70)",
        batched_rate / plain_rate
    );
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
        verdict(batched_rate / plain_rate >= 0.7)
    );
    println!("  (durable appends cost one fsync per group commit; they scale with concurrent appenders)");
}
