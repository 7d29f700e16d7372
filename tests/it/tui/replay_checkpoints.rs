//! Moving back on a long run refolds from the nearest checkpoint, not from the first event: a
//! 12,500-event run (the journal tests' realistic generator) is served to a `Replay` by a stand-in
//! reader that counts what it is asked for. After folding to the end, stepping back is answered
//! from the cached stretch (no read at all), and a jump into the middle reads from the checkpoint
//! below it; at every stop the state equals the plain fold of that many envelopes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;

use std::sync::mpsc::{Receiver, TryRecvError};

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::audit::timeline::IndexEntry;
use cutover::engine::{Envelope, RunState};
use cutover::tui::replay::source::{Reply, Request};
use cutover::tui::replay::{CHECKPOINT_EVERY, Jump, Replay, ReplayMode};
use cutover::tui::{ConsoleConfig, Theme};
use support::{Gen, run_id, run_started, t0};

const N: usize = 12_500;

fn run() -> Vec<Envelope> {
    run_of(N)
}

fn run_of(n: usize) -> Vec<Envelope> {
    let r = run_id("long");
    let mut g = Gen::new(11, 40);
    (0..n)
        .map(|i| Envelope {
            id: i64::try_from(i).unwrap() + 1,
            seq: i as u64 + 1,
            at: t0() + Duration::milliseconds(i64::try_from(i).unwrap() * 250),
            run_id: r.clone(),
            event: if i == 0 {
                run_started("long", 40)
            } else {
                g.next_event()
            },
        })
        .collect()
}

fn fold(evs: &[Envelope]) -> RunState {
    let mut s = RunState::default();
    for e in evs {
        s.apply(e);
    }
    s
}

/// Answers the replay's requests from memory until it is settled; returns the fetches made.
fn serve(r: &mut Replay, requests: &Receiver<Request>, evs: &[Envelope]) -> Vec<(usize, usize)> {
    let mut asked = Vec::new();
    for _ in 0..10_000 {
        while r.has_work() {
            r.pump();
        }
        r.pump();
        match requests.try_recv() {
            Ok(Request::Fetch { from, to }) => {
                asked.push((from, to));
                r.on_reply(Reply::Chunk {
                    from,
                    envelopes: evs[from..to].to_vec(),
                });
            }
            Err(TryRecvError::Empty) if r.is_settled() => return asked,
            Err(e) => panic!("stuck at {} ({e:?})", r.position()),
        }
    }
    panic!("did not settle")
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn replay_of(evs: &[Envelope]) -> (Replay, Receiver<Request>) {
    let (tx, requests) = std::sync::mpsc::channel();
    let mut cfg = ConsoleConfig::new("auditor");
    cfg.theme = Theme { color: false };
    let mut r = Replay::new(cfg, ReplayMode::Replay, false, tx, Some(Jump::End));
    r.on_reply(Reply::Opened {
        index: evs
            .iter()
            .map(|e| IndexEntry {
                id: e.id,
                seq: e.seq,
                at: e.at,
            })
            .collect(),
        landmarks: Vec::new(),
    });
    (r, requests)
}

#[test]
fn stepping_back_refolds_from_the_nearest_checkpoint() {
    let evs = run();
    let (mut r, requests) = replay_of(&evs);
    let first = serve(&mut r, &requests, &evs);
    assert_eq!(r.position(), N);
    assert_eq!(
        first.first().map(|f| f.0),
        Some(0),
        "the first pass reads from the start"
    );
    assert_eq!(r.app.state, fold(&evs));

    // One step back: refolded from the checkpoint at 10,000 with the cached envelopes, no read.
    r.on_key(key(','));
    let asked = serve(&mut r, &requests, &evs);
    assert!(asked.is_empty(), "stepping back read the journal: {asked:?}");
    assert_eq!(r.position(), N - 1);
    assert_eq!(r.app.state, fold(&evs[..N - 1]));

    // Into the middle: read from the checkpoint below (5,000), never from the first event.
    let middle = CHECKPOINT_EVERY + 1_234;
    r.jump(Jump::Position(middle));
    let asked = serve(&mut r, &requests, &evs);
    assert_eq!(r.position(), middle);
    assert_eq!(r.app.state, fold(&evs[..middle]));
    assert!(
        asked.iter().all(|(from, _)| *from >= CHECKPOINT_EVERY),
        "read before the checkpoint: {asked:?}"
    );

    // And back by a few events again: from memory.
    for _ in 0..3 {
        r.on_key(key(','));
    }
    let asked = serve(&mut r, &requests, &evs);
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(r.position(), middle - 3);
    assert_eq!(r.app.state, fold(&evs[..middle - 3]));

    // A time jump lands after the last event recorded at or before that time (4 events a second).
    r.jump(Jump::Time(t0() + Duration::seconds(100)));
    serve(&mut r, &requests, &evs);
    assert_eq!(r.position(), 401);
    assert_eq!(r.app.state, fold(&evs[..401]));
}

/// On a long run the checkpoints stay bounded: a sparse grid for good plus dense ones near the
/// position (made only near where a move stops), which move with it.
#[test]
fn checkpoints_stay_bounded_and_follow_the_position() {
    let n = 62_000;
    let evs = run_of(n);
    let (mut r, requests) = replay_of(&evs);
    serve(&mut r, &requests, &evs);
    assert_eq!(r.position(), n);
    let at_end = r.checkpoint_positions();
    assert_eq!(
        at_end,
        vec![0, 25_000, 30_000, 35_000, 40_000, 45_000, 50_000, 55_000, 60_000],
        "the sparse grid (0, 50,000) and dense ones only near the end (made only there)"
    );
    assert_eq!(r.app.state, fold(&evs));

    // Far back: from the sparse grid, then the dense ones gather around the new position.
    r.jump(Jump::Position(12_345));
    let asked = serve(&mut r, &requests, &evs);
    assert_eq!(asked.first().map(|f| f.0), Some(0));
    assert_eq!(r.app.state, fold(&evs[..12_345]));
    let near = r.checkpoint_positions();
    assert!(near.contains(&5_000) && near.contains(&10_000), "{near:?}");
    assert!(near.contains(&50_000), "the grid stays: {near:?}");
    assert!(near.len() <= 2 + 8, "{near:?}");
    r.on_key(key(','));
    assert!(
        serve(&mut r, &requests, &evs).is_empty(),
        "a step back reads nothing"
    );
    assert_eq!(r.app.state, fold(&evs[..12_344]));
}
