//! The journal lease for the driving process: acquire (or take over with `--take-over`), heartbeat
//! on a thread, release at the end.
//!
//! A holder on this host whose pid no longer runs is dead for certain (a crash, a SIGKILL): the lease is
//! taken over at once, without `--take-over`, and the takeover journaled like any other. `--take-over` stays
//! for what cannot be proven from here: a stale heartbeat from another host.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use tokio_util::sync::CancellationToken;

use super::SetupError;
use crate::engine::Event;
use crate::journal::{Lease, LeaseError, LeaseHolder, LeaseInfo};

/// No heartbeat for this long: the holder is presumed dead.
pub const STALE_AFTER_SECS: i64 = 30;
/// Heartbeat period.
const BEAT: StdDuration = StdDuration::from_secs(5);

fn pid_gone(info: &LeaseInfo, me: &LeaseHolder) -> bool {
    info.holder.host == me.host
        && info.holder.pid != me.pid
        && !crate::journal::lease::process_alive(info.holder.pid)
}

/// Takes the lease; returns the `LeaseTakenOver` event to journal when it was taken over.
pub fn acquire(path: &Path, me: &LeaseHolder, take_over: bool) -> Result<(Lease, Option<Event>), SetupError> {
    let stale_after = Duration::seconds(STALE_AFTER_SECS);
    match Lease::acquire(path, me, Utc::now(), stale_after) {
        Ok(l) => Ok((l, None)),
        Err(LeaseError::Held { info, stale }) => {
            let gone = pid_gone(&info, me);
            let dead = stale || gone;
            if dead && (take_over || gone) {
                // The transaction rechecks: stale still, or the very holder whose pid was found gone.
                let taken = if stale {
                    Lease::take_over(path, me, Utc::now(), stale_after, false)
                } else {
                    Lease::take_over_dead(path, me, Utc::now(), stale_after, &info)
                };
                let (l, ev) = match taken {
                    Ok(t) => t,
                    Err(LeaseError::Held { info, .. }) => {
                        return Err(SetupError::Lease(refusal(path, &info, false, false)));
                    }
                    Err(e) => return Err(SetupError::LeaseFailed(e)),
                };
                return Ok((l, Some(ev)));
            }
            Err(SetupError::Lease(refusal(path, &info, dead, pid_gone(&info, me))))
        }
        Err(e) => Err(SetupError::LeaseFailed(e)),
    }
}

/// How old a heartbeat is, in words (`3s`, `2m05s`, `1h02m`).
fn age(at: chrono::DateTime<Utc>) -> String {
    let s = (Utc::now() - at).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The refusal of a second driver: who holds the journal (holder, pid, host, heartbeat age), and
/// what to do instead: watch read-only, or (only for a dead holder) take over explicitly.
fn refusal(path: &Path, info: &LeaseInfo, dead: bool, pid_gone: bool) -> String {
    let j = path.display();
    let who = format!(
        "{} (pid {} on {}, last heartbeat {} ago at {})",
        info.holder.name,
        info.holder.pid,
        info.holder.host,
        age(info.heartbeat_at),
        info.heartbeat_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if dead {
        let why = if pid_gone {
            "that process no longer runs"
        } else {
            "its heartbeat is stale"
        };
        format!(
            "{j}: the journal is held by {who}, which looks dead ({why}); pass --take-over to drive it from here (the takeover is journaled), or run `cutover watch {j}` to follow it read-only"
        )
    } else {
        format!(
            "{j}: the journal is being driven by {who}; refusing to drive it from here too: run `cutover watch {j}` to follow it read-only, or stop that process first"
        )
    }
}

/// When this driver last renewed its lease, and whether that is recent enough to act: a driver whose
/// last beat is older than [`FRESH_FOR`] (it was frozen, suspended, starved) may have lost the journal to a
/// `--take-over` it has not noticed yet, so it sends nothing until a beat succeeds again.
#[derive(Debug, Clone)]
pub struct Liveness {
    origin: std::time::Instant,
    /// Milliseconds after `origin` of the last successful beat.
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How old the last beat may be for the driver to keep sending: a beat period short of the staleness
/// another driver needs to take over.
pub const FRESH_FOR: StdDuration = StdDuration::from_secs(STALE_AFTER_SECS.unsigned_abs() - BEAT.as_secs());

impl Liveness {
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
            last: std::sync::Arc::default(),
        }
    }
    fn ms(&self, at: std::time::Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }
    /// A beat succeeded at `at`.
    pub fn beat_at(&self, at: std::time::Instant) {
        self.last
            .fetch_max(self.ms(at), std::sync::atomic::Ordering::SeqCst);
    }
    /// Why nothing may be sent at `at`, if so.
    pub fn lapsed_at(&self, at: std::time::Instant) -> Option<String> {
        let last = self.last.load(std::sync::atomic::Ordering::SeqCst);
        let age = StdDuration::from_millis(self.ms(at).saturating_sub(last));
        (age > FRESH_FOR).then(|| {
            format!(
                "this driver's lease heartbeat is {}s old (more than {}s): another driver may hold the journal; nothing is sent",
                age.as_secs(),
                FRESH_FOR.as_secs()
            )
        })
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

/// The heartbeat thread. Losing the lease cancels the run.
pub struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<Option<String>>>,
    live: Liveness,
}

impl Heartbeat {
    pub fn start(mut lease: Lease, cancel: CancellationToken) -> Self {
        let (stop, rx) = mpsc::channel::<()>();
        let live = Liveness::new();
        let beat = live.clone();
        let thread = std::thread::Builder::new()
            .name("cutover-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(BEAT) {
                    // A busy database misses one beat; the next one retries. A lost lease stops us.
                    match lease.heartbeat(Utc::now()) {
                        Ok(()) => beat.beat_at(std::time::Instant::now()),
                        Err(LeaseError::Lost) => {
                            cancel.cancel();
                            return Some(LeaseError::Lost.to_string());
                        }
                        Err(_) => {}
                    }
                }
                match lease.release() {
                    Err(LeaseError::Lost) => Some(LeaseError::Lost.to_string()),
                    _ => None,
                }
            })
            .ok();
        Self { stop, thread, live }
    }

    /// The check every request makes before it is sent (see [`Liveness`]).
    pub fn guard(&self) -> crate::connectors::transport::SendGuard {
        let live = self.live.clone();
        std::sync::Arc::new(move || live.lapsed_at(std::time::Instant::now()))
    }

    /// Stops beating and releases the lease; `Some(message)` if it had been lost.
    pub fn stop(mut self) -> Option<String> {
        let _ = self.stop.send(());
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}
