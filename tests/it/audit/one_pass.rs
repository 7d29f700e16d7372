//! The report verifies the chain and folds its run in one read of the table
//! (`JournalReader::verify_and_for_each`): its verdict is `verify`'s, its fold is
//! `for_each_envelope`'s, over pages of two interleaved runs; a tampered journal fails the report
//! exactly as `verify` names it, and a damaged file gets SQLite's verdict.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit::tamper;
use crate::support::journal::{Gen, run_id, run_started};
use crate::support::rechain::{damage_an_index_root_page, rechain};

use std::path::{Path, PathBuf};

use cutover::audit::{AuditError, build_report};
use cutover::engine::Envelope;
use cutover::journal::{Journal, JournalError, JournalReader, Redactor, VerifiedFold};
use rusqlite::Connection;

/// Two runs whose rows interleave over several 4,096-row pages: `a` (4,001 events) and `b` (7,001),
/// ids 1..=11,002.
fn build(dir: &Path) -> PathBuf {
    let path = dir.join("two.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    let w = j.writer();
    w.append_blocking(run_id("a"), run_started("a", 20)).unwrap();
    w.append_blocking(run_id("b"), run_started("b", 20)).unwrap();
    let mut g = Gen::new(11, 20);
    for i in 0..11_000 {
        let run = if i % 11 < 4 { "a" } else { "b" };
        w.append_batched(run_id(run), g.next_event()).unwrap();
    }
    w.flush_blocking().unwrap();
    j.close().unwrap();
    path
}

fn reader(path: &Path) -> JournalReader {
    JournalReader::open_read_only(path).unwrap()
}

/// The one pass over `run`: what it found and the envelopes it handed over. Run twice, with SQLite's
/// check beside it on a second connection and before it on the same one, which must agree (and hand
/// over the same run when the fold went through; what a stopped fold saw is thrown away).
fn one_pass(path: &Path, run: &str) -> (VerifiedFold, Vec<Envelope>) {
    let pass = |beside: Option<JournalReader>| {
        let mut seen = Vec::new();
        let pass = reader(path)
            .verify_and_for_each(&run_id(run), beside, |e| seen.push(e.clone()))
            .unwrap();
        (pass, seen)
    };
    let (first, seen) = pass(Some(reader(path)));
    let (second, seen_too) = pass(None);
    assert_eq!(first.verdict, second.verdict);
    assert_eq!(format!("{:?}", first.folded), format!("{:?}", second.folded));
    if matches!(first.folded, Some(Ok(()))) {
        assert_eq!(seen, seen_too);
    }
    (first, seen)
}

/// The run as `for_each_envelope` reads it (in seq order, through the index).
fn by_seq(path: &Path, run: &str) -> (Result<(), JournalError>, Vec<Envelope>) {
    let mut seen = Vec::new();
    let r = reader(path).for_each_envelope(&run_id(run), |e| seen.push(e.clone()));
    (r, seen)
}

#[test]
fn one_pass_verifies_as_verify_and_folds_as_for_each_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let verdict = reader(&path).verify().unwrap();
    assert_eq!(verdict.as_ref().unwrap().events, 11_002);
    for run in ["a", "b"] {
        let (pass, seen) = one_pass(&path, run);
        assert_eq!(pass.verdict, verdict, "{run}");
        assert!(matches!(pass.folded, Some(Ok(()))), "{run}: {:?}", pass.folded);
        let (r, expected) = by_seq(&path, run);
        r.unwrap();
        assert!(expected.len() > 4_000, "{run}: {}", expected.len());
        assert_eq!(seen, expected, "{run}");
    }
    let (pass, seen) = one_pass(&path, "no-such-run");
    assert_eq!(pass.verdict, verdict);
    assert!(seen.is_empty());
}

/// Each tampering, anywhere in the table: the pass's verdict is `verify`'s (the same event, the same
/// reason), and the report is refused with exactly that failure.
#[test]
fn a_tampered_row_fails_the_report_exactly_as_verify_names_it() {
    let cases = [
        // An edited payload of the other run, on the first page.
        "UPDATE events SET payload = replace(payload, '\"done\":', '\"done\": ') WHERE id = (SELECT MIN(id) FROM events WHERE run_id = 'a' AND kind = 'step_progress')",
        // An edited row of the folded run, on the third page.
        "UPDATE events SET at = '2030-01-01T00:00:00.000Z' WHERE id = 9000",
        // A deleted row on a page boundary, and swapped rows.
        "DELETE FROM events WHERE id = 4097",
        "UPDATE events SET id = -1 WHERE id = 5000; UPDATE events SET id = 5000 WHERE id = 5001; UPDATE events SET id = 5001 WHERE id = -1;",
        // A cut tail.
        "DELETE FROM events WHERE id > 10990",
    ];
    for sql in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = build(dir.path());
        tamper(&path, sql);
        let expected = reader(&path).verify().unwrap().expect_err(sql);
        let (pass, _) = one_pass(&path, "b");
        assert_eq!(pass.verdict.as_ref().err(), Some(&expected), "{sql}");
        // A row that fails stops the pass; a cut tail is found after it (every row checked, the fold whole).
        assert_eq!(pass.folded.is_none(), expected.seq.is_some(), "{sql}");
        match build_report(&path, Some("b"), false) {
            Err(AuditError::Unverified(f)) => assert_eq!(f, expected, "{sql}"),
            other => panic!("{sql}: {:?}", other.map(|r| r.verification)),
        }
        // Reported anyway, the run is folded in full and the failure is the one verify names.
        let report = build_report(&path, Some("b"), true).unwrap();
        let failure = report.verification.failure.unwrap();
        assert_eq!(
            (failure.event_id, failure.reason.as_str()),
            (expected.event_id, expected.reason.as_str()),
            "{sql}"
        );
        assert!(report.run.events > 6_000, "{sql}");
    }
}

/// A payload that no longer decodes under a rewritten (consistent) chain ends the fold with the error
/// `for_each_envelope` gives (what each handed over before it differs with their page boundaries), while the rest of the table is still verified: a later edit is the
/// verdict, and the report is refused for it, not for the payload.
#[test]
fn an_undecodable_row_ends_the_fold_not_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    let c = Connection::open(&path).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update;").unwrap();
    c.execute(
        "UPDATE events SET payload = '{\"kind\":\"step_progress\",\"nonsense\":1}' WHERE id = 5002",
        [],
    )
    .unwrap();
    rechain(&c);
    drop(c);
    let run: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT run_id FROM events WHERE id = 5002", [], |r| r.get(0))
        .unwrap();
    let (pass, _) = one_pass(&path, &run);
    assert!(pass.verdict.is_ok(), "{:?}", pass.verdict);
    let (expected, _) = by_seq(&path, &run);
    let (Some(Err(got)), Err(expected)) = (pass.folded, expected) else {
        panic!("the fold went through");
    };
    assert_eq!(got.to_string(), expected.to_string());
    assert!(got.to_string().contains("5002"), "{got}");

    // The same payload, and a later row edited without rechaining: the check went on past the payload.
    tamper(
        &path,
        "UPDATE events SET at = '2030-01-01T00:00:00.000Z' WHERE id = 10000",
    );
    let (pass, _) = one_pass(&path, &run);
    assert_eq!(pass.verdict.as_ref().err().map(|f| f.event_id), Some(10_000));
    match build_report(&path, Some(&run), false) {
        Err(AuditError::Unverified(f)) => assert_eq!(f.event_id, 10_000),
        other => panic!("{:?}", other.map(|r| r.verification)),
    }
}

/// A page the chain never reads, damaged: SQLite's check (run beside the pass, or before it) gives the
/// verdict `verify` gives, and the fold is not taken.
#[test]
fn a_damaged_file_fails_the_report_as_verify_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path());
    damage_an_index_root_page(&path);
    let expected = reader(&path).verify().unwrap().expect_err("damaged");
    assert!(expected.reason.contains("quick_check"), "{}", expected.reason);
    let (pass, _) = one_pass(&path, "b");
    assert_eq!(pass.verdict.as_ref().err(), Some(&expected));
    assert!(pass.folded.is_none());
    // (The report itself stops earlier on this file: the run list it reads first goes through the
    // damaged index.)
    assert!(build_report(&path, Some("b"), true).is_err());
}
