//! The console's one event loop: a `tokio::select!` over the cancellation token, terminal input,
//! the frame interval (draw only when something changed, so a burst of envelopes costs one frame),
//! the clock tick (spinners, elapsed times, countdowns) and the journal's envelopes (folded into
//! the console's own `RunState`, drained in batches, never awaited on anything slow). Confirmed
//! decisions go to the engine with `try_send`: the UI never waits on the engine, the network or
//! the disk.
//!
//! Generic over the backend and the input stream, so tests run the real loop on a `TestBackend`
//! with scripted keys.

use std::io;
use std::time::Duration;

use crossterm::event::Event as TermEvent;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc::{self, UnboundedReceiver, error::TrySendError};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::action::OperatorCommand;
use super::app::{App, Flow};
use crate::engine::event::Envelope;

/// Envelopes folded per wake-up before the loop looks at input and the clock again.
pub const BATCH: usize = 4096;

/// Loop timings.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Spinner and clock tick.
    pub tick: Duration,
    /// Shortest time between two frames.
    pub frame: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(100),
            frame: Duration::from_millis(33),
        }
    }
}

/// Why the console closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleExit {
    /// The operator quit (confirmed when a step was running).
    Quit,
    /// The cancellation token fired (SIGINT/SIGTERM, or the caller closed the console).
    Cancelled,
}

/// Runs the loop until the operator quits or `cancel` fires.
pub async fn drive<B, S>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut input: S,
    mut envelopes: UnboundedReceiver<Envelope>,
    commands: mpsc::Sender<OperatorCommand>,
    cancel: CancellationToken,
    timing: Timing,
) -> Result<ConsoleExit, B::Error>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
{
    let size = terminal.size()?;
    app.on_resize(size.width, size.height);
    // The first frame at once, before the first interval tick (which waits on the timer driver).
    app.take_dirty();
    terminal.draw(|f| super::panes::draw(f, app))?;
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut frame = tokio::time::interval(timing.frame);
    frame.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut input_open = true;
    let mut envelopes_open = true;
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(ConsoleExit::Cancelled),
            ev = input.next(), if input_open => match ev {
                Some(Ok(TermEvent::Key(key))) => {
                    if app.on_key(key) == Flow::Quit {
                        forward(app, &commands);
                        return Ok(ConsoleExit::Quit);
                    }
                }
                Some(Ok(TermEvent::Mouse(m))) => app.on_mouse(m),
                Some(Ok(TermEvent::Resize(w, h))) => app.on_resize(w, h),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::error!("terminal input failed: {e}");
                    input_open = false;
                }
                None => input_open = false,
            },
            _ = frame.tick() => {
                if app.take_dirty() {
                    terminal.draw(|f| super::panes::draw(f, app))?;
                }
            }
            _ = tick.tick() => {
                ticks += 1;
                // The spinner moves every tick while a step runs; clocks change once a second.
                let per_second = (1000 / timing.tick.as_millis().max(1)).max(1);
                if app.any_running() || u128::from(ticks) % per_second == 0 {
                    app.on_tick();
                }
            }
            env = envelopes.recv(), if envelopes_open => match env {
                Some(env) => {
                    app.apply(&env);
                    for _ in 1..BATCH {
                        match envelopes.try_recv() {
                            Ok(env) => app.apply(&env),
                            Err(_) => break,
                        }
                    }
                    app.after_batch();
                }
                None => {
                    envelopes_open = false;
                    tracing::info!("the journal subscription ended");
                }
            },
        }
        forward(app, &commands);
    }
}

/// Sends the app's confirmed decisions without waiting; a refused one is reported on screen.
fn forward(app: &mut App, commands: &mpsc::Sender<OperatorCommand>) {
    for cmd in app.take_commands() {
        match commands.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(cmd)) => {
                tracing::warn!("engine command queue full; dropped {:?}", cmd.action);
                app.flash = Some(format!(
                    "the engine is busy: {:?} not sent, try again",
                    cmd.action
                ));
                app.mark_dirty();
            }
            Err(TrySendError::Closed(cmd)) => {
                app.flash = Some(format!("the engine is not running: {:?} not sent", cmd.action));
                app.mark_dirty();
            }
        }
    }
}
