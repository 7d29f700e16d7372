//! The real event loop on a `TestBackend` with scripted input: keys become commands on the
//! channel, `q` ends the loop, the cancellation token ends it too, and a frame is drawn.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::tui as tui_support;

use std::io;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::RunState;
use cutover::engine::event::OperatorAction;
use cutover::tui::event_loop::{ConsoleExit, Timing, drive};
use futures::channel::mpsc as fmpsc;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tui_support::*;

fn key(c: char) -> io::Result<TermEvent> {
    Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

#[tokio::test]
async fn keys_become_commands_and_q_quits() {
    let (keys, input) = fmpsc::unbounded::<io::Result<TermEvent>>();
    let (env_tx, env_rx) = mpsc::unbounded_channel();
    let (cmd_tx, mut cmd_rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let mut app = app(RunState::default(), true);
    let task = tokio::spawn(async move {
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let r = drive(
            &mut term,
            &mut app,
            input,
            env_rx,
            cmd_tx,
            cancel,
            Timing::default(),
        )
        .await;
        (r, term)
    });
    keys.unbounded_send(key('p')).unwrap();
    keys.unbounded_send(key('y')).unwrap();
    let cmd = tokio::time::timeout(Duration::from_secs(10), cmd_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cmd.action, OperatorAction::Pause);
    assert_eq!(cmd.operator, "alice");
    // Nothing is running (no run yet): q quits without asking.
    keys.unbounded_send(key('q')).unwrap();
    let (r, term) = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.unwrap(), ConsoleExit::Quit);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("cutover"), "a frame was drawn:\n{screen}");
    drop(env_tx);
}

/// Single-threaded runtime: the loop runs whenever the test yields, so after one yield it has
/// folded every queued envelope (the input is still empty); the retry key then has something to
/// answer, which proves the envelopes reached the console's state.
#[tokio::test]
async fn envelopes_are_folded_then_a_decision_answers_them_and_cancel_ends_the_loop() {
    let (keys, input) = fmpsc::unbounded::<io::Result<TermEvent>>();
    let (env_tx, env_rx) = mpsc::unbounded_channel();
    let (cmd_tx, mut cmd_rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let script = mid_run(30 * 3600);
    let n = script.envelopes.len() as u64;
    for e in script.envelopes {
        env_tx.send(std::sync::Arc::new(e)).unwrap();
    }
    let stop = cancel.clone();
    let mut app = app(RunState::default(), true);
    let task = tokio::spawn(async move {
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let r = drive(
            &mut term,
            &mut app,
            input,
            env_rx,
            cmd_tx,
            stop,
            Timing::default(),
        )
        .await;
        (r, app)
    });
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    keys.unbounded_send(key('r')).unwrap();
    keys.unbounded_send(key('y')).unwrap();
    let cmd = tokio::time::timeout(Duration::from_secs(10), cmd_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cmd.action, OperatorAction::Retry);
    assert_eq!(cmd.step.unwrap().as_str(), "wave-1:vendors");
    cancel.cancel();
    let (r, app) = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.unwrap(), ConsoleExit::Cancelled);
    assert_eq!(app.state.events_applied, n);
    drop(env_tx);
}
