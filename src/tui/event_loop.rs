//! The console's one event loop, for the live console and the replay alike ([`run`], generic over
//! the [`Screen`] it drives): a `tokio::select!` over the cancellation token, terminal input, the
//! frame interval (draw only when something changed, so a burst of envelopes costs one frame), the
//! clock tick (spinners, elapsed times, countdowns, the replay's playback), the screen's source
//! (the journal's envelopes for the live console, folded into its own `RunState` and drained in
//! batches; the replay reader's replies) and, for the replay, its bounded folding work between
//! wake-ups. Nothing is awaited on anything slow: confirmed decisions go to the engine with
//! `try_send`, the replay's requests to its reader with a non-blocking send.
//!
//! Generic over the backend and the input stream, so tests run the real loop on a `TestBackend`
//! with scripted keys.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyEvent, MouseEvent};
use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::{Frame, Terminal};
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

/// What the one event loop drives: the live console ([`drive`]) or a replay
/// (`replay::event_loop::drive_replay`).
pub trait Screen {
    /// What the screen's source delivers.
    type Item;
    /// Items folded per wake-up before the loop looks at input again.
    const BATCH: usize;
    /// What the log says when the source ends.
    const SOURCE_ENDED: &'static str;
    fn resize(&mut self, width: u16, height: u16);
    fn key(&mut self, key: KeyEvent) -> Flow;
    /// After a key that did not quit.
    fn after_key(&mut self);
    fn mouse(&mut self, m: MouseEvent);
    /// The clock tick; `ticks` counts them from the start.
    fn tick(&mut self, ticks: u64, timing: Timing);
    fn item(&mut self, item: Self::Item);
    /// After a batch of items.
    fn after_items(&mut self);
    /// Work the screen can do without waiting (run when nothing else is ready).
    fn has_work(&self) -> bool;
    fn work(&mut self);
    /// After every wake-up, and before quitting.
    fn after_wake(&mut self);
    /// Whether something changed since the last draw (and forget it).
    fn take_dirty(&mut self) -> bool;
    fn draw(&self, f: &mut Frame);
}

/// Runs `screen` until the operator quits or `cancel` fires.
pub async fn run<B, S, T>(
    terminal: &mut Terminal<B>,
    screen: &mut T,
    mut input: S,
    mut source: UnboundedReceiver<T::Item>,
    cancel: CancellationToken,
    timing: Timing,
) -> Result<ConsoleExit, B::Error>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
    T: Screen,
{
    let size = terminal.size()?;
    screen.resize(size.width, size.height);
    screen.take_dirty();
    terminal.draw(|f| screen.draw(f))?;
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut frame = tokio::time::interval(timing.frame);
    frame.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut input_open = true;
    let mut source_open = true;
    let mut ticks: u64 = 0;
    loop {
        let work = screen.has_work();
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(ConsoleExit::Cancelled),
            ev = input.next(), if input_open => match ev {
                Some(Ok(TermEvent::Key(key))) => {
                    if screen.key(key) == Flow::Quit {
                        screen.after_wake();
                        return Ok(ConsoleExit::Quit);
                    }
                    screen.after_key();
                }
                Some(Ok(TermEvent::Mouse(m))) => screen.mouse(m),
                Some(Ok(TermEvent::Resize(w, h))) => screen.resize(w, h),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::error!("terminal input failed: {e}");
                    input_open = false;
                }
                None => input_open = false,
            },
            _ = frame.tick() => {
                if screen.take_dirty() {
                    terminal.draw(|f| screen.draw(f))?;
                }
            }
            _ = tick.tick() => {
                ticks += 1;
                screen.tick(ticks, timing);
            }
            item = source.recv(), if source_open => match item {
                Some(item) => {
                    screen.item(item);
                    for _ in 1..T::BATCH {
                        match source.try_recv() {
                            Ok(item) => screen.item(item),
                            Err(_) => break,
                        }
                    }
                    screen.after_items();
                }
                None => {
                    source_open = false;
                    tracing::info!("{}", T::SOURCE_ENDED);
                }
            },
            () = std::future::ready(()), if work => screen.work(),
        }
        screen.after_wake();
    }
}

/// The live console as a [`Screen`]: the app, and the channel its confirmed decisions go out on.
struct Live<'a> {
    app: &'a mut App,
    commands: &'a mpsc::Sender<OperatorCommand>,
}

impl Screen for Live<'_> {
    type Item = Arc<Envelope>;
    const BATCH: usize = BATCH;
    const SOURCE_ENDED: &'static str = "the journal subscription ended";

    fn resize(&mut self, width: u16, height: u16) {
        self.app.on_resize(width, height);
    }
    fn key(&mut self, key: KeyEvent) -> Flow {
        self.app.on_key(key)
    }
    fn after_key(&mut self) {}
    fn mouse(&mut self, m: MouseEvent) {
        self.app.on_mouse(m);
    }
    fn tick(&mut self, ticks: u64, timing: Timing) {
        // Once a second when nothing runs; every tick while a spinner turns.
        let per_second = (1000 / timing.tick.as_millis().max(1)).max(1);
        if self.app.any_running() || u128::from(ticks) % per_second == 0 {
            self.app.on_tick();
        }
    }
    fn item(&mut self, env: Arc<Envelope>) {
        self.app.apply(&env);
    }
    fn after_items(&mut self) {
        self.app.after_batch();
    }
    fn has_work(&self) -> bool {
        false
    }
    fn work(&mut self) {}
    fn after_wake(&mut self) {
        forward(self.app, self.commands);
    }
    fn take_dirty(&mut self) -> bool {
        self.app.take_dirty()
    }
    fn draw(&self, f: &mut Frame) {
        super::panes::draw(f, self.app);
    }
}

/// Runs the live console until the operator quits or `cancel` fires.
pub async fn drive<B, S>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    input: S,
    envelopes: UnboundedReceiver<Arc<Envelope>>,
    commands: mpsc::Sender<OperatorCommand>,
    cancel: CancellationToken,
    timing: Timing,
) -> Result<ConsoleExit, B::Error>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
{
    let mut live = Live {
        app,
        commands: &commands,
    };
    run(terminal, &mut live, input, envelopes, cancel, timing).await
}

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
