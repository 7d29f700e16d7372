//! The key property: the state rebuilt from the journal equals the state the writer's caller built
//! live, from the envelopes the writer returned (durable appends) or published (subscription).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;

use cutover::engine::RunState;
use cutover::journal::{Journal, JournalOptions, JournalReader, Redactor};
use proptest::prelude::*;
use support::{Gen, run_id, run_started, stepping_clock};

/// Append `n` generated events, `durable_every`-th durably, and compare live with replayed state.
/// Returns the number of events journaled.
fn live_equals_replay(seed: u64, n: usize, maps: usize, durable_every: usize, secret: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let redactor = Redactor::with_secrets(["the-client-secret-1234"]);
    let opts = JournalOptions {
        clock: stepping_clock(),
        ..JournalOptions::default()
    };
    let journal = Journal::open_with(&path, redactor, opts).unwrap();
    let w = journal.writer();
    let mut sub = w.subscribe().unwrap();
    let r = run_id("run");
    // Live state A: the engine's view, from envelopes returned by durable appends only when all are durable;
    // live state B: the console's view, from the subscription (every committed envelope).
    let mut from_returns = RunState::default();
    let all_durable = durable_every == 1;
    from_returns.apply(&w.append_blocking(r.clone(), run_started("run", maps)).unwrap());
    let mut g = Gen::new(seed, maps);
    if secret {
        g.secret = Some("the-client-secret-1234".into());
    }
    for i in 0..n {
        let e = g.next_event();
        if i % durable_every == 0 {
            let env = w.append_blocking(r.clone(), e).unwrap();
            if all_durable {
                from_returns.apply(&env);
            }
        } else {
            w.append_batched(r.clone(), e).unwrap();
        }
    }
    w.flush_blocking().unwrap();
    let mut from_stream = RunState::default();
    while let Ok(env) = sub.try_recv() {
        from_stream.apply(&env);
    }
    let reader = JournalReader::open_read_only(&path).unwrap();
    let replayed = reader.state_at(&r, None).unwrap();
    assert_eq!(replayed.events_applied, n as u64 + 1);
    assert_eq!(replayed, from_stream);
    if all_durable {
        assert_eq!(replayed, from_returns);
    }
    assert!(reader.verify().unwrap().is_ok());
    n + 1
}

#[test]
fn durable_appends_replay_to_the_live_state() {
    assert_eq!(live_equals_replay(7, 300, 4, 1, true), 301);
}

#[test]
fn a_long_mixed_run_replays_to_the_live_state() {
    live_equals_replay(11, 20_000, 50, 97, true);
}

/// The fold of `events()` (seq order, one page query at a time): what `state_at` must equal.
fn fold_in_seq_order(reader: &JournalReader, r: &cutover::engine::RunId) -> RunState {
    let mut s = RunState::default();
    for e in reader.events(r) {
        s.apply(&e.unwrap());
    }
    s
}

#[test]
fn interleaved_runs_replay_each_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let journal = Journal::open(&path, Redactor::new()).unwrap();
    let w = journal.writer();
    let (a, b) = (run_id("a"), run_id("b"));
    w.append_blocking(a.clone(), run_started("a", 3)).unwrap();
    let mut g = Gen::new(3, 3);
    for i in 0..9_000 {
        w.append_batched(a.clone(), g.next_event()).unwrap();
        if i == 100 {
            w.append_blocking(b.clone(), run_started("b", 2)).unwrap();
        }
        if i > 100 && i % 3 == 0 {
            w.append_batched(b.clone(), g.next_event()).unwrap();
        }
    }
    journal.close().unwrap();
    let reader = JournalReader::open_read_only(&path).unwrap();
    for r in [&a, &b] {
        let replayed = reader.state_at(r, None).unwrap();
        assert_eq!(replayed, fold_in_seq_order(&reader, r));
        assert_eq!(replayed.header.run_id, *r);
    }
    assert_eq!(reader.state_at(&a, None).unwrap().events_applied, 9_001);
    let upto = reader.state_at(&b, Some(5_000)).unwrap();
    let mut expected = RunState::default();
    for e in reader.events_upto(&b, 5_000) {
        expected.apply(&e.unwrap());
    }
    assert!(upto.last_event_id <= 5_000 && upto.events_applied > 1_000);
    assert_eq!(upto, expected);
}

#[test]
fn a_run_whose_seq_does_not_follow_its_ids_replays_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let journal = Journal::open(&path, Redactor::new()).unwrap();
    let w = journal.writer();
    let r = run_id("run");
    w.append_blocking(r.clone(), run_started("run", 4)).unwrap();
    let mut g = Gen::new(5, 4);
    for _ in 0..5_000 {
        w.append_batched(r.clone(), g.next_event()).unwrap();
    }
    journal.close().unwrap();
    // Swap the seqs of the last two rows (an edit `verify` would name): in seq order, the run
    // now ends with row 5000, not 5001.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET seq = -seq WHERE id IN (5000, 5001);
         UPDATE events SET seq = 5001 WHERE id = 5000;
         UPDATE events SET seq = 5000 WHERE id = 5001;",
    )
    .unwrap();
    drop(c);
    let reader = JournalReader::open_read_only(&path).unwrap();
    let replayed = reader.state_at(&r, None).unwrap();
    assert_eq!(replayed.last_event_id, 5_000);
    assert_eq!(replayed.last_seq, 5_001);
    assert_eq!(replayed, fold_in_seq_order(&reader, &r));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn any_generated_run_replays_to_the_live_state(seed in any::<u64>(), n in 0usize..600, maps in 1usize..12, durable_every in 1usize..40, secret in any::<bool>()) {
        live_equals_replay(seed, n, maps, durable_every, secret);
    }
}
