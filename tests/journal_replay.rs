//! The key property: the state rebuilt from the journal equals the state the writer's caller built
//! live, from the envelopes the writer returned (durable appends) or published (subscription).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "journal_support.rs"]
mod support;

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

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn any_generated_run_replays_to_the_live_state(seed in any::<u64>(), n in 0usize..600, maps in 1usize..12, durable_every in 1usize..40, secret in any::<bool>()) {
        live_equals_replay(seed, n, maps, durable_every, secret);
    }
}
