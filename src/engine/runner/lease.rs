//! The journal lease for the driving process: acquire (or take over with `--take-over`), heartbeat
//! on a thread, release at the end.
//!
//! A holder on this host whose pid no longer runs is dead for certain (a crash, a SIGKILL): it is
//! treated like a stale heartbeat, so `--take-over` works at once instead of after `STALE_AFTER`.

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
            let dead = stale || pid_gone(&info, me);
            if take_over && dead {
                let (l, ev) = Lease::take_over(path, me, Utc::now(), stale_after, true)?;
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

/// The heartbeat thread. Losing the lease cancels the run.
pub struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<Option<String>>>,
}

impl Heartbeat {
    pub fn start(mut lease: Lease, cancel: CancellationToken) -> Self {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cutover-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(BEAT) {
                    // A busy database misses one beat; the next one retries. A lost lease stops us.
                    if let Err(LeaseError::Lost) = lease.heartbeat(Utc::now()) {
                        cancel.cancel();
                        return Some(LeaseError::Lost.to_string());
                    }
                }
                match lease.release() {
                    Err(LeaseError::Lost) => Some(LeaseError::Lost.to_string()),
                    _ => None,
                }
            })
            .ok();
        Self { stop, thread }
    }

    /// Stops beating and releases the lease; `Some(message)` if it had been lost.
    pub fn stop(mut self) -> Option<String> {
        let _ = self.stop.send(());
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}
