//! The writer thread: owns the read-write connection, fed by a channel, group-commits.
//!
//! Loop: wait for a message; drain everything already queued (up to `max_batch`); if anything in
//! hand is durable (an `append` or a `flush` waiter) or the oldest batched event has waited
//! `batch_window`, commit it all in ONE transaction and acknowledge every waiter with its envelope.
//! When the previous commit served several waiters, a durable batch first lingers up to 1 ms for
//! as many (concurrent appenders woken by that commit), so one fsync serves them all. Redaction
//! and canonical JSON happen on the caller's thread, beside the writer's inserts.
//! A failed commit poisons the writer: every later append fails, so the engine stops acting
//! before its next side effect (nothing is ever executed unjournaled). Tokens registered with
//! [`JournalWriter::cancel_on_failure`] are cancelled before any waiter hears of the failure, so
//! work running concurrently (requests between two appends) stops too.
//!
//! Test hook: with `CUTOVER_TEST_JOURNAL_GROWTH_PAGES=N` in the environment, the writer's
//! connection may grow the file by at most N pages from its size at open (`PRAGMA
//! max_page_count`), which makes SQLite answer "database or disk is full" part way through a run:
//! a full disk, without needing one. Other connections (readers, the lease) are not limited.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc as tmpsc, oneshot};

use super::JournalError;
use super::redact::Redactor;
use super::store::{Encoded, Store, encode, open_rw};
use crate::model::{Envelope, Event, RunId};

/// The time source for envelope timestamps (injectable for tests). Times are truncated to
/// milliseconds and never go backwards within a journal.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How a journal is opened and how its writer batches.
#[derive(Clone)]
pub struct JournalOptions {
    pub clock: Clock,
    /// The longest a batched event waits for a commit when nothing durable comes along.
    pub batch_window: Duration,
    /// The most events committed in one transaction.
    pub max_batch: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(Utc::now),
            batch_window: Duration::from_millis(50),
            max_batch: 8192,
        }
    }
}

type Reply<T> = Result<T, JournalError>;

enum Ack {
    Async(oneshot::Sender<Reply<Arc<Envelope>>>),
    Blocking(mpsc::SyncSender<Reply<Arc<Envelope>>>),
}

impl Ack {
    fn send(self, r: Reply<Arc<Envelope>>) {
        // A caller that stopped waiting is not an error for the writer.
        match self {
            Ack::Async(tx) => drop(tx.send(r)),
            Ack::Blocking(tx) => drop(tx.send(r)),
        }
    }
}

enum FlushAck {
    Async(oneshot::Sender<Reply<()>>),
    Blocking(mpsc::SyncSender<Reply<()>>),
}

impl FlushAck {
    fn send(self, r: Reply<()>) {
        match self {
            FlushAck::Async(tx) => drop(tx.send(r)),
            FlushAck::Blocking(tx) => drop(tx.send(r)),
        }
    }
}

// Appends dominate the channel. Boxing the event was tried (2026-12-05): the writer then freed
// each box as it made an envelope for a waiting appender, and 64 durable appenders went about
// 20% slower, for no gain on batched appends.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// `sync`: the commit that carries it is fsynced before `ack` is answered; otherwise it is committed
    /// (a killed process keeps it) and made power-safe by the next synced commit, at most a batch window later.
    Append {
        item: Encoded,
        ack: Option<Ack>,
        sync: bool,
    },
    Flush(FlushAck),
    /// Commit what is queued, then sign a checkpoint of the chain head unless the head already is one.
    CheckpointHead(&'static str, FlushAck),
    Subscribe(tmpsc::UnboundedSender<Arc<Envelope>>),
    Checkpoints(Box<super::checkpoint::Checkpointer>),
    Shutdown,
}

/// A handle for appending to a journal; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<Msg>,
    failed: Arc<Failure>,
    redactor: Redactor,
    lease: Arc<std::sync::Mutex<Option<String>>>,
}

/// An open journal: its writer thread and the handle to it. Dropping it (or [`Journal::close`])
/// commits what is queued and stops the thread; later appends through clones fail with `Closed`.
pub struct Journal {
    writer: JournalWriter,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Journal {
    /// Create a new journal file (mode 0600); fails if `path` exists.
    pub fn create(path: impl AsRef<Path>, redactor: Redactor) -> Result<Journal, JournalError> {
        Self::start(path.as_ref(), redactor, JournalOptions::default(), true)
    }

    /// Open a journal, creating it (mode 0600) when missing; migrations are applied.
    pub fn open(path: impl AsRef<Path>, redactor: Redactor) -> Result<Journal, JournalError> {
        Self::start(path.as_ref(), redactor, JournalOptions::default(), false)
    }

    /// [`Journal::open`] with a clock and batching of your choice.
    pub fn open_with(
        path: impl AsRef<Path>,
        redactor: Redactor,
        options: JournalOptions,
    ) -> Result<Journal, JournalError> {
        Self::start(path.as_ref(), redactor, options, false)
    }

    fn start(
        path: &Path,
        redactor: Redactor,
        options: JournalOptions,
        new: bool,
    ) -> Result<Journal, JournalError> {
        let conn = open_rw(path, new)?;
        limit_growth_for_tests(&conn)?;
        let store = Store::new(conn)?;
        let lease = Arc::clone(&store.lease);
        let (tx, rx) = mpsc::channel();
        let failed = Arc::new(Failure::default());
        let thread_failed = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("cutover-journal".into())
            .spawn(move || run(store, &rx, &options, &thread_failed))
            .map_err(|e| JournalError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Journal {
            writer: JournalWriter {
                tx,
                failed,
                redactor,
                lease,
            },
            thread: Some(thread),
            path: path.to_owned(),
        })
    }

    pub fn writer(&self) -> JournalWriter {
        self.writer.clone()
    }

    /// From now on every append checks, inside its transaction, that the journal's lease is still the one
    /// with `token` (this driver's); otherwise it fails with [`JournalError::LeaseLost`].
    pub fn bind_lease(&self, token: &str) {
        *self
            .writer
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.to_owned());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commit what is queued, stop the writer thread and wait for it.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), JournalError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // The thread may already be gone (all senders dropped); that is fine.
        drop(self.writer.tx.send(Msg::Shutdown));
        thread
            .join()
            .map_err(|_| JournalError::WriteFailed("the journal writer thread panicked".into()))?;
        if let Some(cause) = self.writer.failed.cause() {
            return Err(JournalError::WriteFailed(format!(
                "an earlier commit failed: {cause}"
            )));
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Errors were already reported to the appenders that were waiting.
        drop(self.stop());
    }
}

impl JournalWriter {
    fn send(&self, msg: Msg) -> Result<(), JournalError> {
        if let Some(cause) = self.failed.cause() {
            return Err(JournalError::WriteFailed(format!(
                "an earlier commit failed: {cause}"
            )));
        }
        self.tx.send(msg).map_err(|_| JournalError::Closed)
    }

    /// Redact and canonicalise on the caller's thread: CPU work that runs in parallel with the
    /// writer's inserts (the writer only assigns ids, times and hashes, and writes).
    fn send_event(&self, run_id: RunId, event: Event, ack: Option<Ack>) -> Result<(), JournalError> {
        let item = encode(&self.redactor, run_id, event)?;
        self.send(Msg::Append {
            item,
            ack,
            sync: true,
        })
    }

    /// Journal `event` and return once its transaction is committed, without waiting for the disk: a
    /// killed process keeps it (WAL), a power cut may lose it, and never anything after it that was
    /// synced ([`JournalWriter::append`] and flushes fsync every frame before theirs). The writer syncs it
    /// within the batch window on its own. For events that precede no side effect of their own: the
    /// intent and result of a step that acts on nothing outside this process (a `wait`).
    pub async fn append_committed(&self, run_id: RunId, event: Event) -> Result<Arc<Envelope>, JournalError> {
        let (tx, rx) = oneshot::channel();
        let item = encode(&self.redactor, run_id, event)?;
        self.send(Msg::Append {
            item,
            ack: Some(Ack::Async(tx)),
            sync: false,
        })?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Journal `event` durably: returns after its transaction committed with `synchronous=FULL`,
    /// with the envelope as written (redacted, with id, seq and time). Act on it only after this.
    pub async fn append(&self, run_id: RunId, event: Event) -> Result<Arc<Envelope>, JournalError> {
        let (tx, rx) = oneshot::channel();
        self.send_event(run_id, event, Some(Ack::Async(tx)))?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// [`JournalWriter::append`] for threads that are not async (blocks the calling thread).
    pub fn append_blocking(&self, run_id: RunId, event: Event) -> Result<Arc<Envelope>, JournalError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send_event(run_id, event, Some(Ack::Blocking(tx)))?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    /// Queue a high-rate event (request summary, progress): committed with the next durable append
    /// or flush, or within the batch window. Its envelope reaches [`JournalWriter::subscribe`]rs.
    /// Fails only when the event cannot be encoded or the writer has stopped or failed.
    pub fn append_batched(&self, run_id: RunId, event: Event) -> Result<(), JournalError> {
        self.send_event(run_id, event, None)
    }

    /// Returns once everything queued before it is committed durably.
    pub async fn flush(&self) -> Result<(), JournalError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush(FlushAck::Async(tx)))?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// [`JournalWriter::flush`] for threads that are not async.
    pub fn flush_blocking(&self) -> Result<(), JournalError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Msg::Flush(FlushAck::Blocking(tx)))?;
        rx.recv().map_err(|_| JournalError::Closed)?
    }

    /// [`JournalWriter::flush`], then a signed checkpoint of the last event (reason `why`) unless the
    /// last event already is a checkpoint or no checkpoints are set up: a run that stops without
    /// finishing (halted, waiting for a person, interrupted) is covered up to its last event.
    pub async fn checkpoint_head(&self, why: &'static str) -> Result<(), JournalError> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::CheckpointHead(why, FlushAck::Async(tx)))?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Every envelope committed after this call, in journal order (durable and batched alike):
    /// what a live console feeds its reducer so that it equals a replay.
    pub fn subscribe(&self) -> Result<tmpsc::UnboundedReceiver<Arc<Envelope>>, JournalError> {
        let (tx, rx) = tmpsc::unbounded_channel();
        self.send(Msg::Subscribe(tx))?;
        Ok(rx)
    }

    /// From the next append on, sign checkpoints of the chain head (see [`super::checkpoint`]).
    pub fn set_checkpoints(&self, c: super::checkpoint::Checkpointer) -> Result<(), JournalError> {
        self.send(Msg::Checkpoints(Box::new(c)))
    }

    /// True once a commit has failed (every later append is refused).
    pub fn has_failed(&self) -> bool {
        self.failed.is_set()
    }

    /// Why the writer failed (the first failed commit's error), once it has.
    pub fn failure(&self) -> Option<String> {
        self.failed.cause()
    }

    /// Cancel `token` as soon as a commit fails (at once if one already has), before the failure
    /// is reported to any appender: the engine passes its run token, so no request starts after
    /// the journal stopped recording.
    pub fn cancel_on_failure(&self, token: tokio_util::sync::CancellationToken) {
        self.failed.watch(token);
    }
}

/// The writer's failure state, shared by the thread and every handle.
#[derive(Default)]
struct Failure {
    set: AtomicBool,
    inner: std::sync::Mutex<FailureInner>,
}

#[derive(Default)]
struct FailureInner {
    cause: Option<String>,
    watchers: Vec<tokio_util::sync::CancellationToken>,
}

impl Failure {
    fn lock(&self) -> std::sync::MutexGuard<'_, FailureInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
    fn cause(&self) -> Option<String> {
        if !self.is_set() {
            return None;
        }
        Some(self.lock().cause.clone().unwrap_or_default())
    }
    /// Record the first failure and cancel every watcher.
    fn fail(&self, cause: String) {
        let watchers = {
            let mut g = self.lock();
            g.cause.get_or_insert(cause);
            self.set.store(true, Ordering::SeqCst);
            std::mem::take(&mut g.watchers)
        };
        watchers
            .iter()
            .for_each(tokio_util::sync::CancellationToken::cancel);
    }
    fn watch(&self, token: tokio_util::sync::CancellationToken) {
        let mut g = self.lock();
        if self.is_set() {
            drop(g);
            token.cancel();
        } else {
            g.watchers.push(token);
        }
    }
}

/// See the module docs: `CUTOVER_TEST_JOURNAL_GROWTH_PAGES=N` caps the writer's file at its
/// current size plus N pages.
fn limit_growth_for_tests(conn: &rusqlite::Connection) -> Result<(), JournalError> {
    let Some(extra) = std::env::var("CUTOVER_TEST_JOURNAL_GROWTH_PAGES")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return Ok(());
    };
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let _: i64 = conn.query_row(
        &format!("PRAGMA max_page_count = {}", pages.saturating_add(extra.max(0))),
        [],
        |r| r.get(0),
    )?;
    Ok(())
}

struct Pending {
    /// Checkpoint settings to hand the store before the next commit.
    checkpoints: Option<Box<super::checkpoint::Checkpointer>>,
    /// A checkpoint of the head to sign after this batch commits (its reason).
    checkpoint_head: Option<&'static str>,
    /// Something in this batch must be on disk before it is acknowledged (a durable append, a flush,
    /// a batch whose window ran out).
    sync: bool,
    /// Since when a commit has been waiting for its fsync (made without one).
    unsynced: Option<Instant>,
    /// The events of this batch, and beside them (same order) who waits for each: two vectors, so
    /// the events are not moved once more to be split from their acknowledgements.
    items: Vec<Encoded>,
    acks: Vec<Option<Ack>>,
    flushes: Vec<FlushAck>,
    urgent: bool,
    oldest: Option<Instant>,
    /// Durable appends and flushes waiting in this batch.
    waiters: usize,
}

/// What a committed batch leaves behind: the rows nobody waits for or listens to (as written, or
/// as envelopes), and the payloads written. Freeing them row by row (memory the appenders allocated) cost the writer
/// thread about as much as hashing the rows, so a large batch's are handed to a thread of their
/// own, started with the first large batch. A small batch (durable appends) frees them in place.
#[derive(Default)]
struct Spent {
    tx: Option<mpsc::Sender<Box<dyn Send>>>,
}

/// Batches of at least this many rows free what they leave behind off the writer thread.
const SPENT_OFF_THREAD: usize = 256;

impl Spent {
    fn discard(&mut self, rows: usize, garbage: Box<dyn Send>) {
        if rows < SPENT_OFF_THREAD {
            drop(garbage);
            return;
        }
        if self.tx.is_none() {
            let (tx, rx) = mpsc::channel::<Box<dyn Send>>();
            let started = std::thread::Builder::new()
                .name("cutover-jr-free".into())
                // Ends when the writer thread (the only sender) ends.
                .spawn(move || rx.into_iter().for_each(drop));
            if started.is_ok() {
                self.tx = Some(tx);
            }
        }
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(garbage)) = tx.send(garbage) {
                    drop(garbage);
                }
            }
            None => drop(garbage),
        }
    }
}

/// The longest a durable batch lingers for more concurrent appenders (see `run`).
const LINGER: Duration = Duration::from_millis(1);

fn run(mut store: Store, rx: &mpsc::Receiver<Msg>, opts: &JournalOptions, failed: &Failure) {
    let mut subscribers: Vec<tmpsc::UnboundedSender<Arc<Envelope>>> = Vec::new();
    let mut p = Pending {
        checkpoints: None,
        checkpoint_head: None,
        sync: false,
        unsynced: None,
        items: Vec::new(),
        acks: Vec::new(),
        flushes: Vec::new(),
        urgent: false,
        oldest: None,
        waiters: 0,
    };
    let mut spent = Spent::default();
    let mut closing = false;
    // Waiters in the previous commit: when several appenders were waiting together, the next
    // batch lingers up to LINGER for as many (they are being woken by the last acknowledgement),
    // so one fsync serves them all instead of the first few.
    let mut last_waiters = 0usize;
    while !closing {
        let first = if p.items.is_empty() && p.flushes.is_empty() {
            match p.unsynced {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(t) => {
                    let r =
                        rx.recv_timeout((t + opts.batch_window).saturating_duration_since(Instant::now()));
                    if matches!(r, Err(mpsc::RecvTimeoutError::Timeout)) {
                        // Nothing came to carry the fsync: make the unsynced commits power-safe now.
                        sync_now(&mut store, &mut p, failed);
                        continue;
                    }
                    r
                }
            }
        } else {
            let deadline = p.oldest.map_or_else(Instant::now, |t| t + opts.batch_window);
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        };
        match first {
            Ok(msg) => {
                closing |= take(msg, &mut p, &mut subscribers);
                while !closing && p.items.len() < opts.max_batch {
                    match rx.try_recv() {
                        Ok(msg) => closing |= take(msg, &mut p, &mut subscribers),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => closing = true,
                    }
                }
                if p.urgent && last_waiters >= 2 {
                    let until = Instant::now() + LINGER;
                    while !closing && p.waiters < last_waiters && p.items.len() < opts.max_batch {
                        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                            Ok(msg) => closing |= take(msg, &mut p, &mut subscribers),
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => closing = true,
                        }
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                p.urgent = true;
                p.sync = true;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => closing = true,
        }
        let window_over = p.oldest.is_some_and(|t| t.elapsed() >= opts.batch_window);
        if p.urgent || closing || window_over || p.items.len() >= opts.max_batch {
            p.sync |= closing || window_over || p.items.len() >= opts.max_batch;
            last_waiters = p.waiters;
            commit(&mut store, &mut p, &mut subscribers, opts, failed, &mut spent);
        }
    }
}

/// Add one message to the pending batch; true on shutdown.
fn take(msg: Msg, p: &mut Pending, subs: &mut Vec<tmpsc::UnboundedSender<Arc<Envelope>>>) -> bool {
    match msg {
        Msg::Append { item, ack, sync } => {
            p.urgent |= ack.is_some();
            p.sync |= sync && ack.is_some();
            p.waiters += usize::from(ack.is_some());
            if p.oldest.is_none() {
                p.oldest = Some(Instant::now());
            }
            p.items.push(item);
            p.acks.push(ack);
        }
        Msg::Flush(ack) => {
            p.urgent = true;
            p.sync = true;
            p.waiters += 1;
            p.flushes.push(ack);
        }
        Msg::CheckpointHead(why, ack) => {
            p.urgent = true;
            p.sync = true;
            p.waiters += 1;
            p.checkpoint_head = Some(why);
            p.flushes.push(ack);
        }
        Msg::Subscribe(tx) => subs.push(tx),
        Msg::Checkpoints(c) => {
            p.urgent = true;
            p.sync = true;
            p.checkpoints = Some(c);
        }
        Msg::Shutdown => return true,
    }
    false
}

/// Make the commits made without an fsync power-safe (a passive WAL checkpoint syncs the WAL first).
fn sync_now(store: &mut Store, p: &mut Pending, failed: &Failure) {
    p.unsynced = None;
    if failed.is_set() {
        return;
    }
    if let Err(e) = store.sync_wal() {
        failed.fail(e.to_string());
        tracing::error!(error = %e, "journal sync failed; the writer refuses further events");
    }
}

fn commit(
    store: &mut Store,
    p: &mut Pending,
    subs: &mut Vec<tmpsc::UnboundedSender<Arc<Envelope>>>,
    opts: &JournalOptions,
    failed: &Failure,
    spent: &mut Spent,
) {
    let encoded = std::mem::take(&mut p.items);
    let acks = std::mem::take(&mut p.acks);
    let checkpoints = p.checkpoints.take();
    let head = p.checkpoint_head.take();
    let sync = std::mem::take(&mut p.sync);
    let flushes = std::mem::take(&mut p.flushes);
    p.urgent = false;
    p.oldest = None;
    p.waiters = 0;
    if let Some(cause) = failed.cause() {
        let e = JournalError::WriteFailed(format!("an earlier commit failed: {cause}"));
        acks.into_iter().flatten().for_each(|a| a.send(Err(e.clone())));
        flushes.into_iter().for_each(|f| f.send(Err(e.clone())));
        return;
    }
    if checkpoints.is_some() {
        // The batch it arrived in is signed too (the run's first events follow it at once).
        store.checkpoints = checkpoints;
    }
    // A synced commit fsyncs the WAL, every earlier unsynced frame included.
    if let Err(e) = store.set_sync(sync) {
        failed.fail(e.to_string());
        tracing::error!(error = %e, "journal commit failed; the writer refuses further events");
        let e = JournalError::WriteFailed(e.to_string());
        acks.into_iter().flatten().for_each(|a| a.send(Err(e.clone())));
        flushes.into_iter().for_each(|f| f.send(Err(e.clone())));
        return;
    }
    if sync {
        p.unsynced = None;
    } else if !encoded.is_empty() && p.unsynced.is_none() {
        p.unsynced = Some(Instant::now());
    }
    let result = if encoded.is_empty() {
        Ok(super::store::Written::default())
    } else {
        store.append(encoded, opts.clock.as_ref())
    };
    match result {
        Ok(written) => {
            let rows = written.len();
            if subs.is_empty() && acks.iter().all(Option::is_none) {
                // Batched events nobody listens to (a burst of appends before any subscriber): the
                // rows go as they are, no envelope made.
                spent.discard(rows, Box::new(written));
                return finish_batch(store, head, flushes, subs, opts, failed);
            }
            let mut unheard = Vec::new();
            let mut payloads = Vec::with_capacity(rows);
            let mut acks = acks.into_iter();
            for (env, is_item) in written.envelopes(&mut payloads) {
                let ack = if is_item { acks.next().flatten() } else { None };
                if ack.is_none() && subs.is_empty() {
                    // A batched event nobody listens to: nothing to share.
                    unheard.push(env);
                    continue;
                }
                // One shared envelope for every subscriber: a `RunStarted` of a large plan is not copied
                // once per subscriber.
                let env = Arc::new(env);
                subs.retain(|s| s.send(Arc::clone(&env)).is_ok());
                if let Some(ack) = ack {
                    ack.send(Ok(env));
                }
            }
            spent.discard(rows, Box::new((unheard, payloads)));
            finish_batch(store, head, flushes, subs, opts, failed);
        }
        Err(e) => {
            failed.fail(e.to_string());
            tracing::error!(error = %e, "journal commit failed; the writer refuses further events");
            let e = JournalError::WriteFailed(e.to_string());
            acks.into_iter().flatten().for_each(|a| a.send(Err(e.clone())));
            flushes.into_iter().for_each(|f| f.send(Err(e.clone())));
        }
    }
}

/// After a batch committed: the checkpoint of its head when one was asked for (one more
/// transaction), then the flushes waiting on it.
fn finish_batch(
    store: &mut Store,
    head: Option<&'static str>,
    flushes: Vec<FlushAck>,
    subs: &mut Vec<tmpsc::UnboundedSender<Arc<Envelope>>>,
    opts: &JournalOptions,
    failed: &Failure,
) {
    let signed = match head {
        Some(why) => store.checkpoint_head(why, opts.clock.as_ref()),
        None => Ok(None),
    };
    match signed {
        Ok(made) => {
            if let Some(env) = made {
                let env = Arc::new(env);
                subs.retain(|s| s.send(Arc::clone(&env)).is_ok());
            }
            flushes.into_iter().for_each(|f| f.send(Ok(())));
        }
        Err(e) => {
            failed.fail(e.to_string());
            tracing::error!(error = %e, "journal commit failed; the writer refuses further events");
            let e = JournalError::WriteFailed(e.to_string());
            flushes.into_iter().for_each(|f| f.send(Err(e.clone())));
        }
    }
}
