//! A journal written by an older cutover still verifies and reads the same: the fixture
//! `tests/fixtures/short-demo-eb63eba.journal` was written by the binary of commit eb63eba (the
//! short demo of the crash test, headless `--auto-approve --sim`: 536 events of 13 kinds). Every
//! row's payload is decoded and encoded again by this code, byte for byte: the canonical JSON of
//! an event must never change, or journals already written would stop verifying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cutover::journal::JournalReader;
use cutover::journal::canon::to_canonical_json;
use cutover::journal::decode::decode_event;

const HEAD: &str = "d972f731c1549805e8eebab8f2ee7e57e17bfbd45ae7c1a4295bfdd71ef71a5a";

/// A private copy: opening a journal may create its `-wal` and `-shm` files beside it.
fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.journal");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/short-demo-eb63eba.journal"
        ),
        &path,
    )
    .unwrap();
    (dir, path)
}

#[test]
fn a_journal_written_by_eb63eba_verifies_with_its_recorded_chain_head() {
    let (_dir, path) = fixture();
    let r = JournalReader::open_read_only(&path).unwrap();
    let v = r.verify().unwrap().unwrap();
    assert_eq!((v.events, v.runs, v.last_id), (536, 1, 536));
    assert_eq!(v.head_hash, HEAD);
    let runs = r.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].runbook, "crash-demo");
    assert_eq!(
        runs[0].outcome,
        Some(cutover::engine::event::RunOutcome::Succeeded)
    );
    let state = r.state_at(&runs[0].run_id, None).unwrap();
    assert_eq!(state.events_applied, 536);
    assert_eq!(state.installs.len(), 1);
}

#[test]
fn every_old_payload_is_encoded_again_byte_for_byte() {
    let (_dir, path) = fixture();
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, kind, payload FROM events ORDER BY id")
        .unwrap();
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 536);
    let mut kinds = std::collections::BTreeSet::new();
    for (id, kind, payload) in rows {
        let event = decode_event(&kind, &payload).unwrap_or_else(|e| panic!("event {id}: {e}"));
        assert_eq!(event.kind(), kind, "event {id}");
        assert_eq!(to_canonical_json(&event).unwrap(), payload, "event {id}");
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 13, "{kinds:?}");
}

#[test]
fn cutover_verify_accepts_it() {
    let (_dir, path) = fixture();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "journal intact: 536 events, 1 run(s), chain head {HEAD} (event 536)"
        )),
        "{text}"
    );
}

/// A failure journaled before failures carried the service's reason decodes with none, and is
/// encoded again byte for byte (the field is left out when absent).
#[test]
fn a_failure_without_a_reason_still_decodes_and_encodes_the_same() {
    let old = r#"{"kind":"step_finished","outcome":{"message":"boom","status":"failed"},"outputs":{},"step":"w1:vendors"}"#;
    let event = decode_event("step_finished", old).unwrap();
    match &event {
        cutover::engine::event::Event::StepFinished {
            outcome: cutover::engine::event::StepOutcome::Failed { message, reason },
            ..
        } => {
            assert_eq!(message, "boom");
            assert_eq!(*reason, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(to_canonical_json(&event).unwrap(), old);
    let new = old.replace(
        r#""message":"boom","#,
        r#""message":"boom","reason":"Lookup failed","#,
    );
    let event = decode_event("step_finished", &new).unwrap();
    assert_eq!(to_canonical_json(&event).unwrap(), new);
}
