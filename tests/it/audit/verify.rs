//! `cutover verify` (the binary): a clean journal passes with its head hash; every kind of
//! tampering (edited payload, deleted row, swapped rows, cut tail, rewritten runbook) fails with
//! exit 1 naming the right event; a file that is not a journal is exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;
use crate::support::rechain as rechain_support;

use std::path::Path;

use cutover::journal::JournalReader;
use rechain_support::rechain;
use rusqlite::Connection;
use support::{REHEARSAL, WEEKEND, build_demo, cutover, tamper};

fn verify(path: &Path) -> (i32, String) {
    let (code, out, err) = cutover(&["verify", path.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

fn verify_json(path: &Path) -> (i32, serde_json::Value) {
    let (code, out, _) = cutover(&["verify", "--format", "json", path.to_str().unwrap()]);
    (code, serde_json::from_str(&out).unwrap())
}

/// The event id, run and seq of the n-th event of the weekend run (the rehearsal holds ids 1..=8).
fn weekend_id(seq: i64) -> i64 {
    8 + seq
}

#[test]
fn clean_journal_passes_with_its_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let expected = JournalReader::open_read_only(&path)
        .unwrap()
        .verify()
        .unwrap()
        .unwrap();
    let (code, out) = verify(&path);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&expected.head_hash), "{out}");
    assert!(
        out.contains(&format!("{} events, 2 run(s)", expected.events)),
        "{out}"
    );
    assert!(out.contains(WEEKEND) && out.contains(REHEARSAL), "{out}");
    let (code, json) = verify_json(&path);
    assert_eq!(code, 0);
    assert_eq!(json["verified"], true);
    assert_eq!(json["report"]["head_hash"], expected.head_hash.as_str());
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn an_edited_payload_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    // The waiver's reason, rewritten after the fact.
    let (id, seq): (i64, i64) = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT id, seq FROM events WHERE kind = 'operator_decision' AND payload LIKE '%FIN-42%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    tamper(
        &path,
        &format!("UPDATE events SET payload = replace(payload, 'FIN-42', 'FIN-43') WHERE id = {id}"),
    );
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("event {id} (run {WEEKEND}, seq {seq})")),
        "{out}"
    );
    assert!(out.contains("edited"), "{out}");
    let (_, json) = verify_json(&path);
    assert_eq!(json["verified"], false);
    assert_eq!(json["failure"]["event_id"], id);
    assert_eq!(json["failure"]["seq"], seq);
    assert_eq!(json["failure"]["run_id"], WEEKEND);
}

#[test]
fn a_deleted_row_is_named_at_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let gone = weekend_id(5);
    tamper(&path, &format!("DELETE FROM events WHERE id = {gone}"));
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("event {} (run {WEEKEND}, seq 6)", gone + 1)),
        "{out}"
    );
    assert!(out.contains(&format!("{gone} to {gone} are missing")), "{out}");
}

#[test]
fn swapped_rows_are_named_at_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let (a, b) = (weekend_id(10), weekend_id(11));
    tamper(
        &path,
        &format!(
            "UPDATE events SET id = -1 WHERE id = {a}; UPDATE events SET id = {a} WHERE id = {b}; UPDATE events SET id = {b} WHERE id = -1;"
        ),
    );
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    // Row `a` now holds what was seq 11: named by its position, with the chain reason.
    assert!(
        out.contains(&format!("event {a} (run {WEEKEND}, seq 11)")),
        "{out}"
    );
    assert!(out.contains("prev_hash"), "{out}");
}

#[test]
fn a_truncated_tail_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let last: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT MAX(id) FROM events", [], |r| r.get(0))
        .unwrap();
    tamper(&path, &format!("DELETE FROM events WHERE id > {}", last - 3));
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("event {} (run -, seq -)", last - 2)),
        "{out}"
    );
    assert!(out.contains("truncated"), "{out}");
}

#[test]
fn a_rewritten_chain_with_a_changed_runbook_is_named_at_its_run_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let c = Connection::open(&path).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update;").unwrap();
    let start = weekend_id(1);
    c.execute(
        &format!(
            "UPDATE events SET payload = replace(payload, 'phases: []', 'phases: [x]') WHERE id = {start}"
        ),
        [],
    )
    .unwrap();
    rechain(&c);
    drop(c);
    let (code, out) = verify(&path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("event {start} (run {WEEKEND}, seq 1)")),
        "{out}"
    );
    assert!(out.contains("runbook"), "{out}");
}

#[test]
fn verify_never_writes_to_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let before = std::fs::read(&path).unwrap();
    assert_eq!(verify(&path).0, 0);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn what_is_not_a_journal_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a journal\n".repeat(100)).unwrap();
    assert_eq!(verify(&text).0, 2);
    assert_eq!(verify(&dir.path().join("missing.journal")).0, 2);
    let empty_db = dir.path().join("empty.sqlite");
    Connection::open(&empty_db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x); PRAGMA user_version = 1;")
        .unwrap();
    let (code, out) = verify(&empty_db);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not a cutover journal"), "{out}");
}
