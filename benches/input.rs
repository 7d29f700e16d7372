//! Input-to-frame latency and skipped frames through the REAL console event loop
//! (`cutover::tui::event_loop::drive`, default timings: 33 ms frame interval, 100 ms tick), on the
//! full console of benches/render.rs (2,000 steps, 100,000 error entries, 500 parity rows, 200×60)
//! while 64 background polls feed the envelope channel.
//!
//! - Keys: a synthetic stream of arrow and page keys, one every 30 to 90 ms (a held or fast-typed
//!   key), sent into the loop's input stream. A key's latency is from its send to the flush of the
//!   first frame whose drawing started after the loop took the key from the stream (the loop is one
//!   task, so that frame is the first one that can show it). The backend is a `TestBackend` that
//!   notes when each frame starts (`size()`, called first by `Terminal::draw`) and ends (`flush()`).
//! - Envelopes: 64 tasks, each a step being polled every 125 to 375 ms (4 polls a second on
//!   average, as a console sees a busy wave of DMF jobs and initial syncs): each poll journals a
//!   `Request` summary and a `StepProgress`, every 10th poll an `ErrorEntries` batch of 20 and every
//!   20th a `ParitySample`: about 530 envelopes a second, all through the same unbounded channel
//!   the journal subscription uses.
//! - Skipped frame, precisely: the loop draws at most once per frame tick and only when the state
//!   is dirty. Between two consecutive frames f_i and f_{i+1} (flush times), round(gap / 33 ms) - 1
//!   ticks went by without drawing; they count as skipped when something was already pending a
//!   whole frame interval before f_{i+1} (a key or envelope sent after f_i started and at least one
//!   interval before f_{i+1}), i.e. a tick found the state dirty and no frame came of it. The
//!   figure also carries the frames drawn against the ticks in the window.
//!
//! Figures: `input key to frame p99` (target < 50 ms) and `input frames skipped` (target = 0).
//! `cargo bench --bench input` (`CUTOVER_BENCH_QUICK=1`: 3 s instead of 20 s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/support/tui.rs"]
mod tui_support;

#[path = "console_data.rs"]
mod console_data;
#[path = "figure.rs"]
mod figure;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::event::{Envelope, ErrorEntry, Event};
use cutover::tui::event_loop::{ConsoleExit, Timing, drive};
use futures::Stream;
use futures::channel::mpsc as fmpsc;
use rand::{Rng, SeedableRng};
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const POLLS: usize = 64;
const P99_TARGET_MS: f64 = 50.0;

/// Frame start and end times, shared between the backend (inside the loop) and the bench.
#[derive(Default)]
struct Clock {
    starts: Vec<Instant>,
    flushes: Vec<Instant>,
}

/// A `TestBackend` that notes when each frame starts and is flushed.
struct Clocked {
    inner: TestBackend,
    clock: Arc<Mutex<Clock>>,
}

impl Backend for Clocked {
    type Error = <TestBackend as Backend>::Error;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    /// `Terminal::draw` asks the size first (autoresize): that is the frame's start.
    fn size(&self) -> Result<Size, Self::Error> {
        self.clock.lock().unwrap().starts.push(Instant::now());
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let r = self.inner.flush();
        self.clock.lock().unwrap().flushes.push(Instant::now());
        r
    }
}

/// The key stream as the loop sees it, noting when the loop takes each key.
struct Pulled {
    inner: fmpsc::UnboundedReceiver<io::Result<TermEvent>>,
    taken: Arc<Mutex<Vec<Instant>>>,
}

impl Stream for Pulled {
    type Item = io::Result<TermEvent>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let r = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(_)) = &r {
            self.taken.lock().unwrap().push(Instant::now());
        }
        r
    }
}

/// Envelope numbering shared by the poll tasks (ids and seqs stay increasing in send order).
struct Feed {
    next: u64,
    tx: mpsc::UnboundedSender<Arc<Envelope>>,
    run: cutover::engine::RunId,
    sent: Vec<Instant>,
}

impl Feed {
    fn send(&mut self, event: Event) {
        self.next += 1;
        let env = Envelope {
            id: self.next as i64,
            seq: self.next,
            at: tui_support::at(0),
            run_id: self.run.clone(),
            event,
        };
        if self.tx.send(Arc::new(env)).is_ok() {
            self.sent.push(Instant::now());
        }
    }
}

async fn poll_task(k: usize, feed: Arc<Mutex<Feed>>, stop: CancellationToken) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(k as u64);
    let step = format!("step-{:04}", console_data::STEPS / 2 + k);
    let mut polls: u64 = 0;
    loop {
        let wait = Duration::from_millis(rng.random_range(125..=375));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        polls += 1;
        let mut f = feed.lock().unwrap();
        f.send(Event::Request {
            step: Some(step.as_str().into()),
            env: "fno".into(),
            method: "GET".into(),
            path: "/data/DataManagementDefinitionGroups/GetExecutionSummaryStatus".into(),
            status: Some(200),
            duration_ms: rng.random_range(40..400),
            error: None,
        });
        f.send(Event::StepProgress {
            step: step.as_str().into(),
            done: polls * 37,
            total: Some(100_000),
            note: None,
        });
        if polls % 10 == 0 {
            let entries = (0..20)
                .map(|n| ErrorEntry {
                    id: format!("p{k}-{polls}-{n}"),
                    at: tui_support::at(0),
                    map: format!("map-{:03}", k % 100),
                    key: format!("K-{k}-{polls}-{n}"),
                    category: "lookup".into(),
                    message: "Record rejected: the related record was not found".into(),
                })
                .collect();
            f.send(Event::ErrorEntries {
                map: format!("map-{:03}", k % 100),
                entries,
                source: None,
            });
        }
        if polls % 20 == 0 {
            f.send(Event::ParitySample {
                step: None,
                map: format!("map-{:03}", k % 100),
                company: Some(format!("C{:02}", k % 5)),
                source: 10_000 + polls,
                target: 10_000 + polls - 1,
            });
        }
    }
}

async fn key_task(
    keys: fmpsc::UnboundedSender<io::Result<TermEvent>>,
    sent: Arc<Mutex<Vec<Instant>>>,
    stop: CancellationToken,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let codes = [
        KeyCode::Down,
        KeyCode::Down,
        KeyCode::Up,
        KeyCode::PageDown,
        KeyCode::PageUp,
        KeyCode::Tab,
    ];
    loop {
        let wait = Duration::from_millis(rng.random_range(30..=90));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let code = codes[rng.random_range(0..codes.len())];
        let key = TermEvent::Key(KeyEvent::new(code, KeyModifiers::NONE));
        let mut s = sent.lock().unwrap();
        if keys.unbounded_send(Ok(key)).is_ok() {
            s.push(Instant::now());
        }
    }
}

/// The first index in ascending `times` strictly after `t`.
fn first_after(times: &[Instant], t: Instant) -> Option<usize> {
    let i = times.partition_point(|x| *x <= t);
    (i < times.len()).then_some(i)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let run_for = if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(20)
    };
    let script = console_data::build(POLLS);
    let mut app = tui_support::app(cutover::engine::RunState::default(), true);
    for e in &script.envelopes {
        app.apply(e);
    }
    app.after_batch();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(Mutex::new(Clock::default()));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let keys_sent = Arc::new(Mutex::new(Vec::new()));
    let (env_tx, env_rx) = mpsc::unbounded_channel();
    let feed = Arc::new(Mutex::new(Feed {
        next: script.envelopes.len() as u64,
        tx: env_tx,
        run: script.envelopes[0].run_id.clone(),
        sent: Vec::new(),
    }));
    let timing = Timing::default();
    let (window_start, window_end) = rt.block_on(async {
        let (keys, key_rx) = fmpsc::unbounded();
        let input = Pulled {
            inner: key_rx,
            taken: taken.clone(),
        };
        let (cmd_tx, _cmd_rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let backend = Clocked {
            inner: TestBackend::new(200, 60),
            clock: clock.clone(),
        };
        let stop_loop = cancel.clone();
        let console = tokio::spawn(async move {
            let mut term = Terminal::new(backend).unwrap();
            drive(&mut term, &mut app, input, env_rx, cmd_tx, stop_loop, timing).await
        });
        // Let the first frame go out, then start the load.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stop = CancellationToken::new();
        let start = Instant::now();
        let mut tasks: Vec<_> = (0..POLLS)
            .map(|k| tokio::spawn(poll_task(k, feed.clone(), stop.clone())))
            .collect();
        tasks.push(tokio::spawn(key_task(keys, keys_sent.clone(), stop.clone())));
        tokio::time::sleep(run_for).await;
        stop.cancel();
        for t in tasks {
            t.await.unwrap();
        }
        let end = Instant::now();
        // Frames for the last events, then close the console.
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        let exit = console.await.unwrap().unwrap();
        assert_eq!(exit, ConsoleExit::Cancelled);
        (start, end)
    });
    let clock = clock.lock().unwrap();
    let (starts, flushes) = (&clock.starts, &clock.flushes);
    let taken = taken.lock().unwrap();
    let keys_sent = keys_sent.lock().unwrap();
    let env_sent = feed.lock().unwrap().sent.clone();
    assert_eq!(taken.len(), keys_sent.len(), "every key reached the loop");

    // Key to frame: from the send to the flush of the first frame started after the loop took it.
    let mut key_lat: Vec<Duration> = Vec::new();
    for (sent, took) in keys_sent.iter().zip(taken.iter()) {
        let Some(i) = first_after(starts, *took) else {
            continue;
        };
        // `drive` asks the size once before its first frame: a start with no flush of its own, so
        // take the first flush after the start rather than pairing them by index.
        let flush = flushes.iter().find(|f| **f > starts[i]).copied();
        if let Some(f) = flush {
            key_lat.push(f - *sent);
        }
    }
    let drawn_keys = key_lat.len();
    key_lat.sort();

    // Skipped ticks, as defined in the doc comment, over the load window.
    let frame = timing.frame;
    let mut events: Vec<Instant> = env_sent.iter().chain(keys_sent.iter()).copied().collect();
    events.sort();
    let in_window: Vec<Instant> = flushes
        .iter()
        .copied()
        .filter(|f| *f >= window_start && *f <= window_end)
        .collect();
    let mut skipped = 0u64;
    let mut worst_gap = Duration::ZERO;
    for pair in in_window.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let gap = b - a;
        worst_gap = worst_gap.max(gap);
        let missed = (gap.as_secs_f64() / frame.as_secs_f64()).round() as u64;
        if missed < 2 {
            continue;
        }
        // Anything pending a whole interval before the late frame: sent after `a`'s frame began.
        let a_start = starts.iter().rev().find(|s| **s <= a).copied().unwrap_or(a);
        let pending = events.iter().any(|e| *e > a_start && *e + frame <= b);
        if pending {
            skipped += missed - 1;
        }
    }
    let window = window_end - window_start;
    let ticks = (window.as_secs_f64() / frame.as_secs_f64()).floor();
    let drawn = in_window.len() as f64;

    // Envelope to frame (upper estimate: the first frame started after the send).
    let mut env_lat: Vec<Duration> = env_sent
        .iter()
        .filter_map(|s| {
            let i = first_after(starts, *s)?;
            flushes.iter().find(|f| **f > starts[i]).map(|f| *f - *s)
        })
        .collect();
    env_lat.sort();

    let p50 = ms(figure::percentile(&key_lat, 50.0).unwrap_or_default());
    let p99 = ms(figure::percentile(&key_lat, 99.0).unwrap_or_default());
    let max = ms(key_lat.last().copied().unwrap_or_default());
    println!(
        "console loop at 200x60 for {:.1} s with {POLLS} polls: {} envelopes ({:.0}/s), {} keys ({} drawn)",
        window.as_secs_f64(),
        env_sent.len(),
        env_sent.len() as f64 / window.as_secs_f64(),
        keys_sent.len(),
        drawn_keys
    );
    println!("key to frame: median {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (target p99 < 50 ms)");
    println!(
        "envelope to frame: median {:.1} ms, p99 {:.1} ms",
        ms(figure::percentile(&env_lat, 50.0).unwrap_or_default()),
        ms(figure::percentile(&env_lat, 99.0).unwrap_or_default())
    );
    println!(
        "frames: {} drawn in the window vs {ticks:.0} frame ticks; longest gap {:.1} ms; {skipped} tick(s) skipped while dirty",
        in_window.len(),
        ms(worst_gap)
    );
    figure::emit(
        "input key to frame p99",
        p99,
        "ms",
        None,
        Some(p99 / P99_TARGET_MS),
        "< 50 ms",
        p99 < P99_TARGET_MS && drawn_keys == keys_sent.len(),
    );
    figure::emit(
        "input frames skipped",
        skipped as f64,
        "frames",
        Some((ticks, "frame ticks (33 ms) in the load window")),
        Some(drawn / ticks),
        "= 0",
        skipped == 0,
    );
}
