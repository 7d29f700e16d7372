//! The lease at the moment of writing: an append checks, inside its transaction, that the journal's lease is
//! still this driver's (a driver frozen while another took over appends nothing on waking); a driver whose
//! heartbeat lapsed sends nothing; a stopped driver holding SQLite's write lock is named, not reported as
//! "database is locked".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use cutover::engine::runner::lease::{FRESH_FOR, Liveness};
use cutover::journal::{Journal, JournalError, JournalReader, Lease, LeaseError, LeaseHolder, Redactor};

use crate::support::journal::{run_id, run_started};

fn holder(name: &str, pid: u32, host: &str) -> LeaseHolder {
    LeaseHolder {
        name: name.into(),
        pid,
        host: host.into(),
    }
}

#[tokio::test]
async fn an_append_after_the_lease_was_taken_over_is_refused_in_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let journal = Journal::open(&path, Redactor::new()).unwrap();
    let stale = chrono::Duration::seconds(30);
    let mine = Lease::acquire(&path, &holder("ana", 1111, "ops-1"), Utc::now(), stale).unwrap();
    journal.bind_lease(mine.token());
    let w = journal.writer();
    w.append(run_id("r"), run_started("r", 1)).await.unwrap();
    // Another driver takes the journal over while this one is frozen; its heartbeat thread has not run.
    let (_theirs, _event) =
        Lease::take_over(&path, &holder("ben", 2222, "ops-2"), Utc::now(), stale, true).unwrap();
    let e = w
        .append(
            run_id("r"),
            cutover::engine::Event::Log {
                level: cutover::engine::event::LogLevel::Info,
                message: "after the takeover".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, JournalError::LeaseLost) || e.to_string().contains("lease"),
        "{e}"
    );
    drop(w);
    journal.close().ok();
    let r = JournalReader::open_read_only(&path).unwrap();
    assert_eq!(
        r.events(&run_id("r")).count(),
        1,
        "nothing was appended after the takeover"
    );
}

#[test]
fn a_lapsed_heartbeat_stops_sending_until_the_next_beat() {
    let live = Liveness::new();
    let t0 = Instant::now();
    assert!(live.lapsed_at(t0).is_none());
    let late = t0 + FRESH_FOR + Duration::from_secs(1);
    let why = live.lapsed_at(late).expect("a lapsed heartbeat stops sending");
    assert!(why.contains("heartbeat"), "{why}");
    live.beat_at(late);
    assert!(live.lapsed_at(late + Duration::from_secs(1)).is_none());
}

#[test]
fn a_stopped_driver_holding_the_write_lock_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let journal = Journal::open(&path, Redactor::new()).unwrap();
    journal.close().unwrap();
    let stale = chrono::Duration::seconds(30);
    let frozen = Lease::acquire(&path, &holder("ana", 4242, "ops-laptop"), Utc::now(), stale).unwrap();
    // The frozen driver stopped in the middle of a write transaction.
    let mut lock = rusqlite::Connection::open(&path).unwrap();
    let tx = lock
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let e = Lease::acquire(&path, &holder("ben", 5151, "ops-2"), Utc::now(), stale)
        .err()
        .expect("the write lock is held");
    let msg = e.to_string();
    assert!(matches!(e, LeaseError::Locked { .. }), "{msg}");
    assert!(
        msg.contains("pid 4242") && msg.contains("ops-laptop") && msg.contains("ana"),
        "{msg}"
    );
    assert!(!msg.contains("database is locked"), "{msg}");
    drop(tx);
    drop(frozen);
}

#[test]
fn a_takeover_of_a_dead_holder_is_rechecked_inside_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    Journal::open(&path, Redactor::new()).unwrap().close().unwrap();
    let stale = chrono::Duration::seconds(30);
    let t0 = Utc::now();
    let mut a = Lease::acquire(&path, &holder("ana", 4242, "ops-1"), t0, stale).unwrap();
    // Ben's driver found ana's pid gone and is about to take over; ana beats again first.
    let seen = Lease::current(&path).unwrap().unwrap();
    a.heartbeat(t0 + chrono::Duration::seconds(1)).unwrap();
    let ben = holder("ben", 5151, "ops-1");
    let e = Lease::take_over_dead(&path, &ben, t0 + chrono::Duration::seconds(2), stale, &seen)
        .err()
        .expect("a holder that beat again keeps the journal");
    assert!(matches!(e, LeaseError::Held { .. }), "{e}");
    // Unchanged since it was seen: taken.
    let seen = Lease::current(&path).unwrap().unwrap();
    let (b, _event) =
        Lease::take_over_dead(&path, &ben, t0 + chrono::Duration::seconds(3), stale, &seen).unwrap();
    assert_eq!(b.info().holder.name, "ben");
    assert!(matches!(
        a.heartbeat(t0 + chrono::Duration::seconds(4)),
        Err(LeaseError::Lost)
    ));
}
