//! `cutover replay` and `cutover watch`: the live console's panes over a recorded run, read-only,
//! driven by a timeline instead of the engine.
//!
//! [`Replay`] owns an [`App`] and keeps it equal to the fold of the run's first `position` events
//! through [`App::apply`] (the same reducer as the live console), so at every position the panes
//! show what the live console showed right after that event. The console's clock is the recorded
//! time of the current event, so elapsed times and countdowns read as they did then.
//!
//! - Nothing here touches the disk: the envelopes come from the reader thread
//!   ([`source`]) as [`Reply`]s; what is missing is asked for with a [`Request`]
//!   and folded when it arrives. The index (id, seq, time of every event) is in memory, so time
//!   and landmark jumps are computed without reading the journal.
//! - Moving back restores the nearest in-memory checkpoint ([`Folded`], one every
//!   [`CHECKPOINT_EVERY`] events near the position, sparser elsewhere so their memory stays bounded)
//!   and refolds from there; the envelopes of the current stretch are kept in a bounded cache, so
//!   stepping back is a refold of at most a checkpoint interval with no disk read.
//! - Work is bounded per call ([`Replay::pump`] folds at most [`BATCH`] envelopes), so the loop
//!   keeps answering keys while a long jump is folded.
//! - Keys are handled in [`crate::tui::replay_keys`]. No key produces an
//!   [`OperatorCommand`](crate::tui::OperatorCommand): the decision keys are answered with "read-only"
//!   and the app's outbox stays empty.

pub mod event_loop;
mod jump;
pub mod keys;
pub mod open;
pub mod source;
pub mod view;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

pub use self::jump::{Jump, parse_jump};
use self::source::{Reply, Request};
use crate::audit::timeline::{IndexEntry, Landmark};
use crate::engine::Envelope;
use crate::tui::app::{App, ConsoleConfig, Folded, ListView};
use crate::tui::event_loop::BATCH;

/// Events between two checkpoints near the position.
pub const CHECKPOINT_EVERY: usize = 5_000;
/// Envelopes asked for at a time.
pub const FETCH: usize = 4_096;
/// The play speeds `+` and `-` move between (times the recorded pace).
pub const SPEEDS: [u32; 4] = [1, 10, 60, 600];
/// Checkpoints kept near the position, [`CHECKPOINT_EVERY`] apart.
pub const DENSE_CHECKPOINTS: usize = 8;
/// About how many checkpoints are kept for good over a whole run (at least 50,000 events apart).
pub const SPARSE_CHECKPOINTS: usize = 16;
const CACHE_MAX: usize = 3 * CHECKPOINT_EVERY + FETCH;
/// The clock value meaning "the wall clock" (a watch following the end of a live run).
const WALL_CLOCK: i64 = i64::MIN;

/// Replay of a recorded run, or watch of a run another process drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayMode {
    Replay,
    Watch,
}

impl ReplayMode {
    pub fn label(self) -> &'static str {
        match self {
            ReplayMode::Replay => "REPLAY",
            ReplayMode::Watch => "WATCH",
        }
    }
}

/// What the header shows in place of live status.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayStatus {
    pub mode: ReplayMode,
    /// The journal failed verification and the operator asked to replay it anyway.
    pub unverified: bool,
    /// Events folded: the current event is the `position`-th of the run (0: none yet).
    pub position: usize,
    pub total: usize,
    /// The current event's journal id and recorded time.
    pub event_id: Option<i64>,
    pub at: Option<DateTime<Utc>>,
    pub playing: bool,
    pub speed: u32,
    /// Still reading the journal (the index, or envelopes for a jump).
    pub loading: bool,
}

/// A timeline key's intent (bound in [`crate::tui::keymap::REPLAY_KEYMAP`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplayAction {
    StepForward,
    StepBack,
    NextLandmark,
    PrevLandmark,
    /// Open the prompt for a time or an event id.
    JumpPrompt,
    PlayPause,
    Faster,
    Slower,
    Start,
    End,
}

/// The replay's state machine; see the [module docs](self).
pub struct Replay {
    pub app: App,
    pub(super) mode: ReplayMode,
    pub(super) unverified: bool,
    pub(super) clock: Arc<AtomicI64>,
    pub(super) requests: Sender<Request>,
    pub(super) index: Vec<IndexEntry>,
    /// (position after the landmark's event, landmark), in order.
    pub(super) landmarks: Vec<(usize, Landmark)>,
    pub(super) opened: bool,
    pub(super) pos: usize,
    pub(super) target: usize,
    pub(super) cache: VecDeque<Envelope>,
    pub(super) cache_start: usize,
    pub(super) in_flight: Option<usize>,
    pub(super) checkpoints: BTreeMap<usize, Folded>,
    /// The spacing of the checkpoints kept for good (see [`Replay::thin_checkpoints`]).
    pub(super) every: usize,
    pub(super) pending_jump: Option<Jump>,
    pub(super) playing: bool,
    pub(super) speed: u32,
    pub(super) play_at: Option<DateTime<Utc>>,
    pub(super) last_tick: Option<Instant>,
    /// The jump prompt's text while it is open.
    pub prompt: Option<String>,
    /// The help overlay (the replay's own: timeline keys first, decisions marked inert).
    pub help: bool,
    pub(super) failed: Option<String>,
}

impl Replay {
    /// A replay whose reader answers on `requests`; `first`: where to go once the index is known
    /// (default: the first event for a replay, the end for a watch).
    pub fn new(
        cfg: ConsoleConfig,
        mode: ReplayMode,
        unverified: bool,
        requests: Sender<Request>,
        first: Option<Jump>,
    ) -> Self {
        let clock = Arc::new(AtomicI64::new(WALL_CLOCK));
        let read = Arc::clone(&clock);
        let now = Box::new(move || match read.load(Ordering::Relaxed) {
            WALL_CLOCK => Utc::now(),
            ms => DateTime::from_timestamp_millis(ms).unwrap_or_else(Utc::now),
        });
        let mut app = App::new(crate::engine::RunState::default(), cfg, now);
        let mut checkpoints = BTreeMap::new();
        checkpoints.insert(0, app.folded());
        app.flash = Some("reading the journal…".into());
        let mut r = Self {
            app,
            mode,
            unverified,
            clock,
            requests,
            index: Vec::new(),
            landmarks: Vec::new(),
            opened: false,
            pos: 0,
            target: 0,
            cache: VecDeque::new(),
            cache_start: 0,
            in_flight: None,
            checkpoints,
            every: 10 * CHECKPOINT_EVERY,
            pending_jump: Some(first.unwrap_or(match mode {
                ReplayMode::Replay => Jump::Position(1),
                ReplayMode::Watch => Jump::End,
            })),
            playing: false,
            speed: 1,
            play_at: None,
            last_tick: None,
            prompt: None,
            help: false,
            failed: None,
        };
        r.sync_status();
        r
    }

    pub fn mode(&self) -> ReplayMode {
        self.mode
    }

    /// Events folded (the current event's 1-based position in the run).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Events of the run known so far.
    pub fn total(&self) -> usize {
        self.index.len()
    }

    /// The run's index (id, seq, time of every event known so far).
    pub fn index(&self) -> &[IndexEntry] {
        &self.index
    }

    /// Landmarks with the position right after each.
    pub fn landmarks(&self) -> &[(usize, Landmark)] {
        &self.landmarks
    }

    /// Where the in-memory checkpoints are (positions), in order.
    pub fn checkpoint_positions(&self) -> Vec<usize> {
        self.checkpoints.keys().copied().collect()
    }

    /// The reader's error, if reading the journal failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// The index is known and the app shows exactly the position asked for.
    pub fn is_settled(&self) -> bool {
        self.opened && self.pending_jump.is_none() && self.pos == self.target
    }

    /// Starts playing at `speed` times the recorded pace.
    pub fn play(&mut self, speed: u32) {
        self.speed = speed.max(1);
        self.start_playing();
    }

    /// Goes to `jump` (resolved against the index; before the index arrives, once it does).
    /// An unresolvable jump (an event of another run) is reported on the footer.
    pub fn jump(&mut self, jump: Jump) {
        if !self.opened {
            self.pending_jump = Some(jump);
            return;
        }
        match self.resolve(jump) {
            Ok(p) => self.target = p,
            Err(m) => self.app.flash = Some(m),
        }
        self.app.mark_dirty();
    }

    fn resolve(&self, jump: Jump) -> Result<usize, String> {
        let len = self.index.len();
        let first = len.min(1);
        Ok(match jump {
            Jump::Position(p) => p.clamp(first, len),
            Jump::End => len,
            Jump::Event(id) => match self.index.binary_search_by_key(&id, |e| e.id) {
                Ok(i) => i + 1,
                Err(_) => {
                    let range = match (self.index.first(), self.index.last()) {
                        (Some(a), Some(b)) => format!("#{} to #{}", a.id, b.id),
                        _ => "none".into(),
                    };
                    return Err(format!("event #{id} is not in this run (its events: {range})"));
                }
            },
            Jump::Time(t) => self.index.partition_point(|e| e.at <= t).clamp(first, len),
        })
    }

    /// Folds a reply from the reader in.
    pub fn on_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Opened { index, landmarks } => {
                self.index = index;
                let sparse = (10 * CHECKPOINT_EVERY).max(self.index.len() / SPARSE_CHECKPOINTS);
                self.every = sparse.div_ceil(CHECKPOINT_EVERY) * CHECKPOINT_EVERY;
                self.landmarks.clear();
                self.add_landmarks(landmarks);
                self.opened = true;
                self.app.flash = None;
                if let Some(j) = self.pending_jump.take() {
                    self.jump(j);
                }
                if self.index.is_empty() {
                    self.app.flash = Some("the run has no events yet".into());
                }
            }
            Reply::Chunk { from, envelopes } => {
                if self.in_flight == Some(from) {
                    self.in_flight = None;
                }
                self.cache_chunk(from, envelopes);
            }
            Reply::Appended {
                index,
                envelopes,
                landmarks,
            } => {
                let was_at_end = self.target == self.index.len();
                let from = self.index.len();
                self.index.extend(index);
                self.add_landmarks(landmarks);
                if self.cache_start + self.cache.len() == from || self.cache.is_empty() {
                    self.cache_chunk(from, envelopes);
                }
                if was_at_end && self.mode == ReplayMode::Watch {
                    self.target = self.index.len();
                }
            }
            Reply::Failed(m) => {
                self.playing = false;
                self.app.flash = Some(format!("cannot read the journal: {m}"));
                self.failed = Some(m);
            }
        }
        self.sync_status();
        self.app.mark_dirty();
    }

    fn add_landmarks(&mut self, marks: Vec<Landmark>) {
        for m in marks {
            if let Ok(i) = self.index.binary_search_by_key(&m.event_id, |e| e.id) {
                self.landmarks.push((i + 1, m));
            }
        }
    }

    fn cache_chunk(&mut self, from: usize, envelopes: Vec<Envelope>) {
        let end = self.cache_start + self.cache.len();
        if from == end && !self.cache.is_empty() {
            self.cache.extend(envelopes);
        } else if self.cached(self.pos).is_none() || self.cache.is_empty() {
            self.cache = envelopes.into();
            self.cache_start = from;
        } else {
            return;
        }
        // Keep the stretch from the checkpoint below the position (stepping back refolds it).
        let keep_from = self
            .checkpoints
            .range(..=self.pos.min(self.target))
            .next_back()
            .map_or(0, |(k, _)| *k);
        while self.cache.len() > CACHE_MAX && self.cache_start < keep_from {
            self.cache.pop_front();
            self.cache_start += 1;
        }
    }

    fn cached(&self, position: usize) -> Option<&Envelope> {
        position
            .checked_sub(self.cache_start)
            .and_then(|i| self.cache.get(i))
    }

    /// True when [`Replay::pump`] can make progress without waiting for the reader.
    pub fn has_work(&self) -> bool {
        self.opened
            && self.pos != self.target
            && (self.target < self.pos
                || self.better_checkpoint().is_some()
                || self.cached(self.pos).is_some())
    }

    fn better_checkpoint(&self) -> Option<usize> {
        if self.target <= self.pos {
            return None;
        }
        self.checkpoints
            .range(self.pos + 1..=self.target)
            .next_back()
            .map(|(k, _)| *k)
    }

    /// Moves toward the target: restores a checkpoint when that is shorter, folds cached envelopes
    /// (at most [`BATCH`]), asks the reader for what is missing, and reads ahead a little.
    pub fn pump(&mut self) {
        if !self.opened {
            return;
        }
        let mut budget = BATCH;
        let mut moved = false;
        while self.pos != self.target && budget > 0 {
            let restore = if self.target < self.pos {
                self.checkpoints
                    .range(..=self.target)
                    .next_back()
                    .map(|(k, _)| *k)
            } else {
                self.better_checkpoint()
            };
            if let Some(k) = restore
                && let Some(f) = self.checkpoints.get(&k)
            {
                self.app.restore_folded(f.clone());
                if self.app.follow {
                    // Following: the selection is where the live console's follow put it.
                    self.app.steps_view = ListView::default();
                }
                self.pos = k;
                moved = true;
                continue;
            }
            let Some(i) = self.pos.checked_sub(self.cache_start) else {
                self.ask(self.pos);
                break;
            };
            let Some(env) = self.cache.get(i) else {
                self.ask(self.pos);
                break;
            };
            self.app.apply(env);
            self.pos += 1;
            moved = true;
            budget -= 1;
            // Dense checkpoints only where they will be kept: near where this move stops.
            let wanted = self.pos % self.every.max(1) == 0
                || self.target.saturating_sub(self.pos) <= DENSE_CHECKPOINTS * CHECKPOINT_EVERY;
            if wanted && self.pos % CHECKPOINT_EVERY == 0 && !self.checkpoints.contains_key(&self.pos) {
                self.checkpoints.insert(self.pos, self.app.folded());
                self.thin_checkpoints();
            }
        }
        if moved {
            self.app.after_batch();
        }
        // Read ahead of the position so stepping and playing rarely wait.
        let end = self.cache_start + self.cache.len();
        if self.pos == self.target
            && self.in_flight.is_none()
            && end < self.index.len()
            && end.saturating_sub(self.pos) < FETCH / 4
            && self.cached(self.pos.saturating_sub(1)).is_some()
        {
            self.ask(end);
        }
        self.sync_status();
    }

    /// Bounds the checkpoints' memory (a checkpoint is a copy of the whole folded state, tens of
    /// MB on a very large run): those on the sparse grid (every [`Replay::every`] events, about
    /// [`SPARSE_CHECKPOINTS`] over a run) are kept for good; of the others, the [`DENSE_CHECKPOINTS`]
    /// nearest the position are kept, so stepping back near here refolds at most
    /// [`CHECKPOINT_EVERY`] events and a far jump at most one sparse interval.
    fn thin_checkpoints(&mut self) {
        let every = self.every.max(1);
        let mut dense: Vec<usize> = self
            .checkpoints
            .keys()
            .copied()
            .filter(|k| k % every != 0)
            .collect();
        if dense.len() <= DENSE_CHECKPOINTS {
            return;
        }
        let here = self.pos;
        dense.sort_by_key(|k| std::cmp::Reverse(k.abs_diff(here)));
        for k in dense.iter().take(dense.len() - DENSE_CHECKPOINTS) {
            self.checkpoints.remove(k);
        }
    }

    fn ask(&mut self, from: usize) {
        if self.in_flight == Some(from) || from >= self.index.len() {
            return;
        }
        let to = (from + FETCH).min(self.index.len());
        if self.requests.send(Request::Fetch { from, to }).is_ok() {
            self.in_flight = Some(from);
        } else if self.failed.is_none() {
            self.failed = Some("the journal reader stopped".into());
            self.app.flash = self.failed.clone();
        }
    }

    /// Puts the position, the clock and the play state where the header and `App::now` read them.
    pub(super) fn sync_status(&mut self) {
        let current = self.pos.checked_sub(1).and_then(|i| self.index.get(i));
        let following = self.mode == ReplayMode::Watch && self.opened && self.pos == self.index.len();
        let clock = match current {
            _ if following => WALL_CLOCK,
            Some(e) => e.at.timestamp_millis(),
            None => self.index.first().map_or(WALL_CLOCK, |e| e.at.timestamp_millis()),
        };
        self.clock.store(clock, Ordering::Relaxed);
        let status = self::ReplayStatus {
            mode: self.mode,
            unverified: self.unverified,
            position: self.pos,
            total: self.index.len(),
            event_id: current.map(|e| e.id),
            at: current.map(|e| e.at),
            playing: self.playing,
            speed: self.speed,
            loading: !self.opened || (self.pos != self.target && !self.has_work()),
        };
        if self.app.replay.as_ref() != Some(&status) {
            self.app.replay = Some(status);
            self.app.mark_dirty();
        }
    }

    /// A clock tick: advances play (the recorded time moves `speed` times as fast as the wall
    /// clock) and the spinner.
    pub fn on_tick(&mut self, now: Instant) {
        // The recorded clock stands still: redraw for the spinner only (a watch at the end shows
        // the wall clock, whose countdowns move).
        if self.app.any_running() || self.mode == ReplayMode::Watch {
            self.app.on_tick();
        }
        let last = self.last_tick.replace(now);
        if !self.playing {
            return;
        }
        if self.play_at.is_none() {
            // Asked to play before the index arrived: start from wherever the replay is now.
            self.play_at = self.current_at();
            return;
        }
        let (Some(last), Some(at)) = (last, self.play_at) else {
            return;
        };
        let real = now.saturating_duration_since(last);
        let ms = real.as_millis().saturating_mul(u128::from(self.speed));
        let at = at + TimeDelta::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2));
        self.play_at = Some(at);
        let due = self.index.partition_point(|e| e.at <= at);
        self.target = self.target.max(due.min(self.index.len()));
        if self.target >= self.index.len() && self.mode == ReplayMode::Replay {
            self.playing = false;
            self.app.flash = Some("end of the run".into());
        }
        self.sync_status();
    }

    pub(super) fn start_playing(&mut self) {
        if self.mode == ReplayMode::Replay && self.opened && self.target >= self.index.len() {
            self.app.flash = Some("at the end of the run: home goes back to its start".into());
            return;
        }
        self.play_at = self.current_at();
        self.playing = true;
        self.last_tick = None;
        self.app.flash = Some(format!("playing at {}×", self.speed));
        self.sync_status();
    }

    /// The recorded time of the target event (the first event's before any), if known.
    pub(super) fn current_at(&self) -> Option<DateTime<Utc>> {
        let at = self.target.checked_sub(1).and_then(|i| self.index.get(i));
        at.or(self.index.first()).map(|e| e.at)
    }

    /// Commands the app produced; always empty (kept to let tests prove it).
    pub fn take_commands(&mut self) -> Vec<crate::tui::OperatorCommand> {
        self.app.take_commands()
    }
}

/// Waits (without blocking the runtime) until the replay shows the position it was asked for, or
/// the reader fails or stops. For tests and tools that drive a [`Replay`] without a terminal.
pub async fn settle(replay: &mut Replay, replies: &mut tokio::sync::mpsc::UnboundedReceiver<Reply>) -> bool {
    loop {
        while replay.has_work() {
            replay.pump();
        }
        replay.pump();
        if replay.is_settled() {
            return true;
        }
        if replay.failure().is_some() {
            return false;
        }
        match replies.recv().await {
            Some(r) => replay.on_reply(r),
            None => return false,
        }
    }
}
