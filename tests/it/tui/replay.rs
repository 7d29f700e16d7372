//! The replay shows what the live console showed. A demo run (the shortened demo: DMF, two waves,
//! a drifting gate that fails and passes after a retry, operator decisions) is driven against the
//! simulator on loopback while a live console `App` folds the engine's envelopes, its clock at the
//! time of each event; its screen at 200×60 and its state are captured at every event. Then the
//! replay machinery (the reader thread and `Replay`) opens the recorded journal read-only and is
//! moved to 20 sampled events (spread over the run, including a gate failure, an operator decision
//! and the finish), in a scrambled order, by jumps, single steps and landmark jumps; at each the
//! screen (except the header line that says REPLAY, and the footer that lists the timeline's keys)
//! and the state must equal the live capture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::driver::Command;
use cutover::engine::event::{DecisionKind, Envelope, Event, OperatorAction, RunOutcome};
use cutover::engine::runner::{SimTarget, start_engine};
use cutover::engine::{RunEnd, RunState};
use cutover::sim::Scenario;
use cutover::tui::replay::source as replay_source;
use cutover::tui::replay::{Jump, Replay, ReplayMode, settle};
use cutover::tui::{App, ConsoleConfig, Theme};
use engine_support::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const W: u16 = 200;
const H: u16 = 60;
const DEADLINE: Duration = Duration::from_secs(120);

fn cfg() -> ConsoleConfig {
    let mut c = ConsoleConfig::new("tester");
    c.theme = Theme { color: false };
    c
}

fn screen_of(draw: impl FnOnce(&mut ratatui::Frame)) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(W, H)).unwrap();
    t.draw(draw).unwrap();
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect())
        .collect()
}

/// The screen without the first header line (REPLAY and the position) and the footer (keys).
fn comparable(lines: &[String]) -> String {
    lines[1..lines.len() - 1].join("\n")
}

struct Live {
    id: i64,
    kind: &'static str,
    state: RunState,
    screen: Vec<String>,
}

fn kind_of(e: &Event) -> &'static str {
    match e {
        Event::GateEvaluated { passed: false, .. } => "gate-failed",
        Event::GateEvaluated { passed: true, .. } => "gate-passed",
        Event::OperatorDecision { .. } => "decision",
        Event::AwaitingOperator { .. } => "question",
        Event::RunFinished { .. } => "finish",
        _ => "other",
    }
}

/// Drives the short demo, answering every question as an operator would, and captures the live
/// console after every event.
async fn record(f: &Fixture) -> Vec<Live> {
    let s = cutover::sim::start(Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (handle, initial, mut sub) = start_engine(options(f, SimTarget::Url(s.url()), true))
        .await
        .unwrap();
    let clock: Arc<Mutex<DateTime<Utc>>> = Arc::new(Mutex::new(Utc::now()));
    let read = Arc::clone(&clock);
    let mut app = App::new(initial, cfg(), Box::new(move || *read.lock().unwrap()));
    app.on_resize(W, H);
    let tx = handle.commands.clone();
    let mut done = handle.done;
    let mut live = Vec::new();
    let stop = tokio::time::Instant::now() + DEADLINE;
    let mut on_env = |env: &Envelope, app: &mut App| {
        *clock.lock().unwrap() = env.at;
        app.apply(env);
        app.after_batch();
        live.push(Live {
            id: env.id,
            kind: kind_of(&env.event),
            state: app.state.clone(),
            screen: screen_of(|fr| cutover::tui::draw(fr, app)),
        });
    };
    let end = loop {
        tokio::select! {
            Some(env) = sub.recv() => {
                on_env(&env, &mut app);
                if let Event::AwaitingOperator { step, decision, .. } = &env.event {
                    let action = match decision {
                        DecisionKind::Confirm | DecisionKind::PointOfNoReturn => OperatorAction::Confirm,
                        DecisionKind::ApproveManual => OperatorAction::Approve,
                        DecisionKind::GateFailure => {
                            // The drift needs simulated time to settle before the re-check.
                            tokio::time::sleep(Duration::from_millis(700)).await;
                            OperatorAction::Retry
                        }
                        other => panic!("unexpected question {other:?} for {step:?}"),
                    };
                    tx.send(Command::new(action, step.clone(), "alice")).await.unwrap();
                }
            }
            end = &mut done => break end.unwrap(),
            () = tokio::time::sleep_until(stop) => panic!("the demo run did not finish in time"),
        }
    };
    // Envelopes journaled just before the end.
    while let Ok(env) = sub.try_recv() {
        on_env(&env, &mut app);
    }
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded));
    live
}

/// 20 samples spread over the run, with the first failed gate, a decision and the finish.
fn samples(live: &[Live]) -> Vec<usize> {
    let find = |k: &str| live.iter().position(|l| l.kind == k).unwrap();
    let mut picks = vec![
        find("gate-failed"),
        find("decision"),
        live.iter().rposition(|l| l.kind == "decision").unwrap(),
        find("finish"),
        0,
    ];
    let n = live.len();
    for i in 0..20 {
        let p = i * (n - 1) / 19;
        if picks.len() < 20 && !picks.contains(&p) {
            picks.push(p);
        }
    }
    let mut k = 1;
    while picks.len() < 20 {
        let p = (k * 37) % n;
        if !picks.contains(&p) {
            picks.push(p);
        }
        k += 1;
    }
    picks
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_shows_what_the_live_console_showed_at_20_sampled_events() {
    // No automatic re-checks: the operator's retry of the failed gate is one of the samples.
    let f = fixture(&SHORT_DEMO.replace("retries: 6, retry_every: 10m", "retries: 0"));
    let live = record(&f).await;
    assert!(live.len() > 100, "a real run: {} events", live.len());
    let picks = samples(&live);
    assert_eq!(picks.len(), 20);

    let (run, evs) = events(&f.journal);
    assert_eq!(
        evs.len(),
        live.len(),
        "the live console saw every journaled event"
    );
    let (requests, mut replies) = replay_source::spawn(f.journal.clone(), run, false);
    let mut r = Replay::new(cfg(), ReplayMode::Replay, false, requests, None);
    r.on_resize(W, H);
    assert!(settle(&mut r, &mut replies).await);
    assert_eq!(r.position(), 1);
    assert_eq!(r.total(), live.len());

    // Scrambled: forward and backward jumps, so checkpoints and refolds are both exercised.
    let mut order = picks.clone();
    order.sort_unstable();
    let (low, high): (Vec<usize>, Vec<usize>) = order.iter().partition(|&&p| p < live.len() / 2);
    let mut visit: Vec<usize> = high.into_iter().rev().collect();
    visit.extend(low);
    for (n, &i) in visit.iter().enumerate() {
        let want = &live[i];
        match n % 3 {
            // A jump to the event id (as --event and the `t` prompt's #ID do).
            0 => r.jump(Jump::Event(want.id)),
            // One event before, then `.` (step forward).
            1 if i > 0 => {
                r.jump(Jump::Event(live[i - 1].id));
                assert!(settle(&mut r, &mut replies).await);
                r.on_key(key('.'));
            }
            // One event after, then `,` (step back).
            _ if i + 1 < live.len() => {
                r.jump(Jump::Event(live[i + 1].id));
                assert!(settle(&mut r, &mut replies).await);
                r.on_key(key(','));
            }
            _ => r.jump(Jump::Event(want.id)),
        }
        assert!(settle(&mut r, &mut replies).await, "{:?}", r.failure());
        assert_eq!(r.position(), i + 1, "sample {n}: event #{}", want.id);
        assert_eq!(
            r.app.state, want.state,
            "state at event #{} ({})",
            want.id, want.kind
        );
        let got = screen_of(|fr| cutover::tui::replay::view::draw(fr, &r));
        assert_eq!(
            comparable(&got),
            comparable(&want.screen),
            "screen at event #{} ({})",
            want.id,
            want.kind
        );
        assert!(got[0].contains(" REPLAY "), "{}", got[0]);
        assert!(
            got[0].contains(&format!("event {}/{}", i + 1, live.len())),
            "{}",
            got[0]
        );
        assert!(!got[0].contains("UNVERIFIED"));
    }

    // Landmark jumps land on the recorded landmarks: from the start, `n` reaches the failed gate.
    r.jump(Jump::Position(1));
    assert!(settle(&mut r, &mut replies).await);
    let gate = picks[0];
    let mut presses = 0;
    while r.position() < gate + 1 {
        r.on_key(key('n'));
        assert!(settle(&mut r, &mut replies).await);
        presses += 1;
        assert!(presses < 500, "no landmark at the failed gate");
    }
    assert_eq!(r.position(), gate + 1, "a landmark at the failed gate");
    assert_eq!(r.app.state, live[gate].state);
    assert!(r.take_commands().is_empty());
}
