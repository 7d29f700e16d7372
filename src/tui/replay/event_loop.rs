//! The replay as a [`Screen`] of the console's one event loop: the reader thread's replies in place
//! of the engine's envelopes, and the bounded folding work of [`Replay::pump`] between wake-ups.
//! Nothing here waits on the disk: requests go to the reader with a non-blocking send, replies
//! arrive on a channel.

use std::io;

use crossterm::event::{Event as TermEvent, KeyEvent, MouseEvent};
use futures::Stream;
use ratatui::backend::Backend;
use ratatui::{Frame, Terminal};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::Replay;
use super::source::Reply;
use crate::tui::app::Flow;
use crate::tui::event_loop::{ConsoleExit, Screen, Timing, run};

/// Replies folded per wake-up before the loop looks at input again.
const REPLIES_PER_WAKE: usize = 8;

impl Screen for Replay {
    type Item = Reply;
    const BATCH: usize = REPLIES_PER_WAKE;
    const SOURCE_ENDED: &'static str = "the journal reader stopped";

    fn resize(&mut self, width: u16, height: u16) {
        self.on_resize(width, height);
    }
    fn key(&mut self, key: KeyEvent) -> Flow {
        self.on_key(key)
    }
    fn after_key(&mut self) {
        self.pump();
    }
    fn mouse(&mut self, m: MouseEvent) {
        self.on_mouse(m);
    }
    fn tick(&mut self, _ticks: u64, _timing: Timing) {
        self.on_tick(std::time::Instant::now());
        self.pump();
    }
    fn item(&mut self, reply: Reply) {
        self.on_reply(reply);
    }
    fn after_items(&mut self) {
        self.pump();
    }
    fn has_work(&self) -> bool {
        Replay::has_work(self)
    }
    fn work(&mut self) {
        self.pump();
    }
    fn after_wake(&mut self) {}
    fn take_dirty(&mut self) -> bool {
        self.app.take_dirty()
    }
    fn draw(&self, f: &mut Frame) {
        super::view::draw(f, self);
    }
}

/// Runs the replay until the operator quits or `cancel` fires.
pub async fn drive_replay<B, S>(
    terminal: &mut Terminal<B>,
    replay: &mut Replay,
    input: S,
    replies: UnboundedReceiver<Reply>,
    cancel: CancellationToken,
    timing: Timing,
) -> Result<ConsoleExit, B::Error>
where
    B: Backend,
    S: Stream<Item = io::Result<TermEvent>> + Unpin,
{
    run(terminal, replay, input, replies, cancel, timing).await
}
