//! The replay's event loop: the live console's `tokio::select!` (cancellation, terminal input,
//! frame and tick intervals) with the reader thread's replies in place of the engine's envelopes,
//! and the bounded folding work of [`Replay::pump`] between wake-ups. Nothing here waits on the
//! disk: requests go to the reader with a non-blocking send, replies arrive on a channel.
//!
//! Generic over the backend and the input stream, so tests run it on a `TestBackend`.

use std::io;

use crossterm::event::Event as TermEvent;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Replay;
use super::source::Reply;
use crate::tui::app::Flow;
use crate::tui::event_loop::{ConsoleExit, Timing};

/// Replies folded per wake-up before the loop looks at input again.
const REPLIES_PER_WAKE: usize = 8;

/// Runs the replay until the operator quits or `cancel` fires.
pub async fn drive_replay<B, S>(
    terminal: &mut Terminal<B>,
    replay: &mut Replay,
    mut input: S,
    mut replies: UnboundedReceiver<Reply>,
    cancel: CancellationToken,
    timing: Timing,
) -> Result<ConsoleExit, B::Error>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
{
    let size = terminal.size()?;
    replay.on_resize(size.width, size.height);
    replay.app.take_dirty();
    terminal.draw(|f| super::view::draw(f, replay))?;
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut frame = tokio::time::interval(timing.frame);
    frame.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut input_open = true;
    let mut replies_open = true;
    loop {
        let work = replay.has_work();
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(ConsoleExit::Cancelled),
            ev = input.next(), if input_open => match ev {
                Some(Ok(TermEvent::Key(key))) => {
                    if replay.on_key(key) == Flow::Quit {
                        return Ok(ConsoleExit::Quit);
                    }
                    replay.pump();
                }
                Some(Ok(TermEvent::Mouse(m))) => replay.on_mouse(m),
                Some(Ok(TermEvent::Resize(w, h))) => replay.on_resize(w, h),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::error!("terminal input failed: {e}");
                    input_open = false;
                }
                None => input_open = false,
            },
            _ = frame.tick() => {
                if replay.app.take_dirty() {
                    terminal.draw(|f| super::view::draw(f, replay))?;
                }
            }
            _ = tick.tick() => {
                replay.on_tick(std::time::Instant::now());
                replay.pump();
            }
            reply = replies.recv(), if replies_open => match reply {
                Some(r) => {
                    replay.on_reply(r);
                    for _ in 1..REPLIES_PER_WAKE {
                        match replies.try_recv() {
                            Ok(r) => replay.on_reply(r),
                            Err(_) => break,
                        }
                    }
                    replay.pump();
                }
                None => {
                    replies_open = false;
                    tracing::info!("the journal reader stopped");
                }
            },
            () = std::future::ready(()), if work => replay.pump(),
        }
    }
}
