//! Tampering is caught and named: edited, deleted, swapped, reordered rows, a cut tail, a runbook
//! that no longer matches its hash; a clean journal passes; the documented hash rule recomputes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;
use crate::support::rechain as rechain_support;

use std::path::{Path, PathBuf};

use cutover::engine::Event;
use cutover::engine::event::LogLevel;
use cutover::journal::chain::GENESIS_HASH;
use cutover::journal::{Journal, JournalReader, Redactor, VerifyFailure};
use rechain_support::rechain;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use support::{run_id, run_started};

/// Two runs, 10 events each (ids 1..=20): run a holds ids 1..=10, run b 11..=20.
fn build(dir: &Path) -> PathBuf {
    let path = dir.join("j.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    let w = j.writer();
    for run in ["a", "b"] {
        w.append_blocking(run_id(run), run_started(run, 2)).unwrap();
        for i in 2..=10 {
            w.append_blocking(
                run_id(run),
                Event::Log {
                    level: LogLevel::Info,
                    message: format!("{run}{i}"),
                },
            )
            .unwrap();
        }
    }
    j.close().unwrap();
    path
}

/// Open for tampering the way an attacker would: drop the append-only triggers first.
fn tamper(path: &Path, sql: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA foreign_keys=OFF; DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")
        .unwrap();
    c.execute_batch(sql).unwrap();
}

fn verify(path: &Path) -> Result<u64, VerifyFailure> {
    JournalReader::open_read_only(path)
        .unwrap()
        .verify()
        .unwrap()
        .map(|r| r.events)
}

#[test]
fn clean_journal_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let report = JournalReader::open_read_only(&path)
        .unwrap()
        .verify()
        .unwrap()
        .unwrap();
    assert_eq!((report.events, report.runs, report.last_id), (20, 2, 20));
    assert_eq!(report.head_hash.len(), 64);
}

#[test]
fn the_append_only_triggers_refuse_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let c = Connection::open(&path).unwrap();
    assert!(
        c.execute("UPDATE events SET payload = '{}' WHERE id = 3", [])
            .is_err()
    );
    assert!(c.execute("DELETE FROM events WHERE id = 3", []).is_err());
}

#[test]
fn edited_payload_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    tamper(
        &path,
        "UPDATE events SET payload = replace(payload, 'a7', 'a8') WHERE id = 7",
    );
    let f = verify(&path).unwrap_err();
    assert_eq!(
        (f.event_id, f.seq, f.run_id.as_ref().map(|r| r.0.as_str())),
        (7, Some(7), Some("a"))
    );
    assert!(f.reason.contains("edited"), "{}", f.reason);
}

#[test]
fn edited_kind_or_time_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    tamper(
        &path,
        "UPDATE events SET at = '2020-01-01T00:00:00.000Z' WHERE id = 12",
    );
    assert_eq!(verify(&path).unwrap_err().event_id, 12);
}

#[test]
fn deleted_row_is_named_at_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    tamper(&path, "DELETE FROM events WHERE id = 5");
    let f = verify(&path).unwrap_err();
    assert_eq!(f.event_id, 6);
    assert!(f.reason.contains("5 to 5 are missing"), "{}", f.reason);
}

#[test]
fn swapped_payloads_are_named_at_the_first() {
    // Exchange the two payloads through a temporary table.
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = build(dir2.path());
    tamper(
        &path2,
        "CREATE TEMP TABLE t AS SELECT id, payload FROM events WHERE id IN (13, 14);
         UPDATE events SET payload = (SELECT payload FROM t WHERE id = 14) WHERE id = 13;
         UPDATE events SET payload = (SELECT payload FROM t WHERE id = 13) WHERE id = 14;",
    );
    assert_eq!(verify(&path2).unwrap_err().event_id, 13);
}

#[test]
fn swapped_rows_are_named_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    tamper(
        &path,
        "UPDATE events SET id = -1 WHERE id = 3; UPDATE events SET id = 3 WHERE id = 4; UPDATE events SET id = 4 WHERE id = -1;",
    );
    let f = verify(&path).unwrap_err();
    assert_eq!(f.event_id, 3);
    assert!(f.reason.contains("prev_hash"), "{}", f.reason);
}

#[test]
fn truncated_tail_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    tamper(&path, "DELETE FROM events WHERE id > 17");
    let f = verify(&path).unwrap_err();
    assert_eq!((f.event_id, f.seq, f.run_id), (18, None, None));
    assert!(f.reason.contains("truncated"), "{}", f.reason);
}

/// Recompute every hash the way the module docs tell an auditor to, without the crate's helpers.
fn recompute(path: &Path) -> Vec<(i64, String)> {
    let c = Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT id, run_id, seq, at, kind, payload FROM events ORDER BY id")
        .unwrap();
    let rows: Vec<(i64, String, i64, String, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = GENESIS_HASH.to_string();
    let mut out = Vec::new();
    for (id, run, seq, at, kind, payload) in rows {
        let obj = serde_json::json!({
            "at": at, "kind": kind, "payload": serde_json::from_str::<serde_json::Value>(&payload).unwrap(),
            "run_id": run, "seq": seq,
        });
        let mut h = Sha256::new();
        h.update(hex::decode(&prev).unwrap());
        h.update(serde_json::to_string(&obj).unwrap().as_bytes());
        prev = hex::encode(h.finalize());
        out.push((id, prev.clone()));
    }
    out
}

#[test]
fn the_documented_rule_recomputes_every_stored_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let c = Connection::open(&path).unwrap();
    let stored: Vec<(i64, String)> = c
        .prepare("SELECT id, hash FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(recompute(&path), stored);
}

#[test]
fn a_rewritten_chain_with_a_changed_runbook_is_still_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    // The attacker edits run b's runbook text and rewrites every later hash and the head.
    let c = Connection::open(&path).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update;").unwrap();
    c.execute(
        "UPDATE events SET payload = replace(payload, '# 2 maps', '# 3 maps') WHERE id = 11",
        [],
    )
    .unwrap();
    rechain(&c);
    drop(c);
    let f = verify(&path).unwrap_err();
    assert_eq!(f.event_id, 11);
    assert!(f.reason.contains("runbook"), "{}", f.reason);
}
