//! Append/read round trip, durability, batching, permissions, migrations, read-only, runs, lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;

use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use cutover::engine::event::{LogLevel, RunOutcome};
use cutover::engine::{Event, RunState};
use cutover::journal::lease::{Lease, LeaseError, LeaseHolder};
use cutover::journal::{Journal, JournalError, JournalOptions, JournalReader, Redactor};
use support::{Gen, run_id, run_started, stepping_clock, t0};

fn opts() -> JournalOptions {
    JournalOptions {
        clock: stepping_clock(),
        ..JournalOptions::default()
    }
}

#[tokio::test]
async fn append_returns_committed_envelopes_that_read_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.journal");
    let journal = Journal::open_with(&path, Redactor::new(), opts()).unwrap();
    let w = journal.writer();
    let r1 = run_id("r1");
    let mut live = Vec::new();
    live.push((*w.append(r1.clone(), run_started("r1", 3)).await.unwrap()).clone());
    let mut g = Gen::new(1, 3);
    for _ in 0..50 {
        live.push((*w.append(r1.clone(), g.next_event()).await.unwrap()).clone());
    }
    // Durable: a separate read-only connection sees every acknowledged event while the writer is open.
    let reader = JournalReader::open_read_only(&path).unwrap();
    let read: Vec<_> = reader.events(&r1).map(Result::unwrap).collect();
    assert_eq!(read, live);
    assert_eq!(
        live.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=51).collect::<Vec<u64>>()
    );
    assert!(
        live.windows(2)
            .all(|w| w[0].at < w[1].at && w[1].id == w[0].id + 1)
    );
    assert_eq!(live[0].at, t0());
    assert_eq!(reader.last_event(Some(&r1)).unwrap().unwrap(), live[50]);
    journal.close().unwrap();
}

#[test]
fn blocking_appends_and_seq_continue_per_run_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    {
        let j = Journal::open(&path, Redactor::new()).unwrap();
        let w = j.writer();
        w.append_blocking(run_id("a"), run_started("a", 1)).unwrap();
        w.append_blocking(run_id("b"), run_started("b", 1)).unwrap();
        let e = w
            .append_blocking(
                run_id("a"),
                Event::Log {
                    level: LogLevel::Info,
                    message: "x".into(),
                },
            )
            .unwrap();
        assert_eq!((e.id, e.seq), (3, 2));
    }
    let j = Journal::open(&path, Redactor::new()).unwrap();
    let e = j
        .writer()
        .append_blocking(
            run_id("b"),
            Event::RunFinished {
                outcome: RunOutcome::Succeeded,
            },
        )
        .unwrap();
    assert_eq!((e.id, e.seq), (4, 2));
    drop(j);
    let reader = JournalReader::open_read_only(&path).unwrap();
    let runs = reader.runs().unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.0.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(runs[0].events, 2);
    assert_eq!(runs[1].outcome, Some(RunOutcome::Succeeded));
    assert_eq!(runs[1].last_event_id, 4);
    assert!(reader.verify().unwrap().is_ok());
}

#[tokio::test]
async fn batched_events_commit_within_the_window_or_with_the_next_durable_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let journal = Journal::open(&path, Redactor::new()).unwrap();
    let w = journal.writer();
    let r = run_id("r");
    let mut sub = w.subscribe().unwrap();
    w.append(r.clone(), run_started("r", 1)).await.unwrap();
    for i in 0..10 {
        w.append_batched(
            r.clone(),
            Event::Log {
                level: LogLevel::Debug,
                message: format!("{i}"),
            },
        )
        .unwrap();
    }
    // Without any durable append, the window commits them: poll with a deadline.
    let reader = JournalReader::open_read_only(&path).unwrap();
    let deadline = Instant::now() + StdDuration::from_secs(5);
    while reader.events(&r).count() < 11 {
        assert!(
            Instant::now() < deadline,
            "batched events were not committed within 5 s"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    w.append_batched(
        r.clone(),
        Event::Log {
            level: LogLevel::Debug,
            message: "late".into(),
        },
    )
    .unwrap();
    let durable = w
        .append(
            r.clone(),
            Event::Log {
                level: LogLevel::Info,
                message: "durable".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(durable.seq, 13, "the batched event before it was committed first");
    w.flush().await.unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = sub.try_recv() {
        seen.push((*e).clone());
    }
    let read: Vec<_> = reader.events(&r).map(Result::unwrap).collect();
    assert_eq!(seen, read, "subscribers get every committed envelope in order");
}

#[cfg(unix)]
#[tokio::test]
async fn journal_files_are_created_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let journal = Journal::create(&path, Redactor::new()).unwrap();
    journal
        .writer()
        .append(run_id("r"), run_started("r", 1))
        .await
        .unwrap();
    for p in [path.clone(), dir.path().join("j.journal-wal")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", p.display());
    }
    assert!(matches!(
        Journal::create(&path, Redactor::new()),
        Err(JournalError::AlreadyExists { .. })
    ));
}

#[test]
fn migrations_are_idempotent_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    for _ in 0..3 {
        let j = Journal::open(&path, Redactor::new()).unwrap();
        j.writer()
            .append_blocking(
                run_id("r"),
                Event::Log {
                    level: LogLevel::Info,
                    message: "m".into(),
                },
            )
            .unwrap();
        j.close().unwrap();
    }
    let reader = JournalReader::open_read_only(&path).unwrap();
    let v: i64 = reader
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(reader.events(&run_id("r")).count(), 3);
    assert_eq!(reader.verify().unwrap().unwrap().events, 3);
}

#[test]
fn read_only_cannot_write_and_does_not_block_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    let w = j.writer();
    w.append_blocking(run_id("r"), run_started("r", 1)).unwrap();
    let reader = JournalReader::open_read_only(&path).unwrap();
    let err = reader.connection().execute(
        "INSERT INTO chain_head (id, last_id, hash) VALUES (2, 0, 'x')",
        [],
    );
    assert!(err.is_err());
    assert!(reader.connection().execute("DELETE FROM lease", []).is_err());
    // The writer keeps going while the reader is open, and the reader sees the new event.
    w.append_blocking(
        run_id("r"),
        Event::Log {
            level: LogLevel::Info,
            message: "after".into(),
        },
    )
    .unwrap();
    assert_eq!(reader.events(&run_id("r")).count(), 2);
}

#[test]
fn events_stream_across_pages_and_state_at_stops_at_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let j = Journal::open(&path, Redactor::new()).unwrap();
    let w = j.writer();
    let r = run_id("r");
    let mut live = RunState::default();
    let mut snapshots = Vec::new();
    live.apply(&w.append_blocking(r.clone(), run_started("r", 4)).unwrap());
    let mut g = Gen::new(9, 4);
    for i in 0..9_000 {
        w.append_batched(r.clone(), g.next_event()).unwrap();
        if i % 3_000 == 0 {
            let e = w.append_blocking(r.clone(), g.next_event()).unwrap();
            snapshots.push(e.id);
        }
    }
    w.flush_blocking().unwrap();
    let reader = JournalReader::open_read_only(&path).unwrap();
    let mut state = RunState::default();
    let mut n = 0;
    for e in reader.events(&r) {
        let e = e.unwrap();
        state.apply(&e);
        n += 1;
        if snapshots.contains(&e.id) {
            assert_eq!(reader.state_at(&r, Some(e.id)).unwrap(), state);
        }
    }
    assert_eq!(n, 9_004);
    assert_eq!(reader.state_at(&r, None).unwrap(), state);
}

#[test]
fn lease_one_driver_heartbeat_stale_takeover_and_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    drop(Journal::open(&path, Redactor::new()).unwrap());
    let stale_after = Duration::seconds(30);
    let a = LeaseHolder {
        name: "alice".into(),
        pid: 100,
        host: "laptop".into(),
    };
    let b = LeaseHolder {
        name: "bob".into(),
        pid: 200,
        host: "desk".into(),
    };
    let mut la = Lease::acquire(&path, &a, t0(), stale_after).unwrap();
    assert_eq!(Lease::current(&path).unwrap().unwrap().holder, a);
    // A second driver is refused while the heartbeat is fresh, even with take_over.
    la.heartbeat(t0() + Duration::seconds(20)).unwrap();
    match Lease::acquire(&path, &b, t0() + Duration::seconds(40), stale_after) {
        Err(LeaseError::Held { info, stale }) => assert!(info.holder == a && !stale),
        other => panic!("expected Held, got {:?}", other.map(|l| l.info().clone())),
    }
    assert!(Lease::take_over(&path, &b, t0() + Duration::seconds(40), stale_after, false).is_err());
    // Stale: plain acquire still refuses but says so; take_over succeeds and returns the event.
    let later = t0() + Duration::seconds(60);
    assert!(matches!(
        Lease::acquire(&path, &b, later, stale_after),
        Err(LeaseError::Held { stale: true, .. })
    ));
    let (lb, event) = Lease::take_over(&path, &b, later, stale_after, false).unwrap();
    match event {
        Event::LeaseTakenOver {
            previous_holder,
            previous_pid,
            holder,
            ..
        } => {
            assert_eq!(
                (previous_holder.as_str(), previous_pid, holder.as_str()),
                ("alice", 100, "bob")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(la.heartbeat(later), Err(LeaseError::Lost)));
    lb.release().unwrap();
    assert!(Lease::current(&path).unwrap().is_none());
}

/// Large batches take the writer's bulk path: many rows to an INSERT statement, hashes made on a
/// helper thread beside the inserts, and (once checkpoints are on) segments that end at each
/// checkpoint. A second run starts and finishes inside a batch (its `runs` row refers to rows of
/// the same statement batch). Everything must verify, and each checkpoint must name the row just
/// before it with that row's hash and time.
#[test]
fn large_batches_with_runs_and_checkpoints_inside_them_verify() {
    use cutover::journal::checkpoint::{Checkpointer, SigningKey};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bulk.journal");
    let options = JournalOptions {
        clock: stepping_clock(),
        // Nothing commits until a flush: each phase below is one transaction of thousands of rows.
        batch_window: StdDuration::from_secs(600),
        ..JournalOptions::default()
    };
    let journal = Journal::open_with(&path, Redactor::new(), options).unwrap();
    let w = journal.writer();
    let (a, b) = (run_id("a"), run_id("b"));
    w.append_blocking(a.clone(), run_started("a", 3)).unwrap();
    let mut g = Gen::new(17, 3);
    let mut b_started = false;
    for phase in 0..2 {
        if phase == 1 {
            let key = SigningKey::from_bytes(&[7u8; 32]).unwrap();
            w.set_checkpoints(Checkpointer::new(key, 100)).unwrap();
        }
        for i in 0..3_000 {
            w.append_batched(a.clone(), g.next_event()).unwrap();
            if phase == 0 && i == 1_000 {
                w.append_batched(b.clone(), run_started("b", 2)).unwrap();
                b_started = true;
            }
            if b_started && i % 2 == 0 {
                w.append_batched(b.clone(), g.next_event()).unwrap();
            }
            if phase == 1 && i == 2_000 {
                let done = Event::RunFinished {
                    outcome: RunOutcome::Succeeded,
                };
                w.append_batched(b.clone(), done).unwrap();
                b_started = false;
            }
        }
        w.flush_blocking().unwrap();
    }
    journal.close().unwrap();

    let reader = JournalReader::open_read_only(&path).unwrap();
    let report = reader.verify().unwrap().unwrap();
    let c = reader.connection();
    let rows: i64 = c
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(u64::try_from(rows).unwrap(), report.events);
    // Checkpoints: after every 100th event of the second phase (and after b's RunFinished).
    let mut stmt = c
        .prepare("SELECT id, payload FROM events WHERE kind = 'checkpoint' ORDER BY id")
        .unwrap();
    let checkpoints: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(checkpoints.len() >= 40, "{} checkpoints", checkpoints.len());
    for (id, payload) in &checkpoints {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let body = &v;
        let signed = body["event_id"].as_i64().unwrap();
        assert_eq!(signed, id - 1, "checkpoint {id} signs the row before it");
        let (hash, at): (String, String) = c
            .query_row("SELECT hash, at FROM events WHERE id = ?1", [signed], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(
            body["chain_hash"].as_str(),
            Some(hash.as_str()),
            "checkpoint {id}"
        );
        assert_eq!(body["at"].as_str(), Some(at.as_str()), "checkpoint {id}");
    }
    // The runs index: b's first row is its RunStarted, written in the middle of the first batch.
    let runs = reader.runs().unwrap();
    let rb = runs.iter().find(|r| r.run_id == b).unwrap();
    let kind: String = c
        .query_row(
            "SELECT kind FROM events WHERE id = ?1",
            [rb.first_event_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "run_started");
    assert!(rb.first_event_id > 1_000 && rb.finished_at.is_some());
    let ra = runs.iter().find(|r| r.run_id == a).unwrap();
    assert_eq!(ra.last_event_id, report.last_id);
}
