//! One driver at a time: a single-row lease in the journal, with holder, pid, host and heartbeat.
//!
//! The driving process [`Lease::acquire`]s it before its first append, calls
//! [`Lease::heartbeat`] well within `stale_after` (e.g. every 5 s with `stale_after` 30 s) and
//! [`Lease::release`]s it on exit. A second process gets [`LeaseError::Held`] (with whether the
//! holder looks dead) and can only watch read-only, unless the operator explicitly
//! [`Lease::take_over`]s a stale lease; that returns an [`Event::LeaseTakenOver`] which the new
//! driver journals. A holder whose lease was taken over finds out at its next heartbeat
//! ([`LeaseError::Lost`]) and must stop driving.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::JournalError;
use super::chain::format_at;
use crate::model::Event;

/// Who holds (or wants) the lease.
/// Whether `pid` is a live process on this host. A zombie is not: a driver killed with SIGKILL
/// stays a zombie until its parent reaps it, and it will never write again.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z" && st != "X"))
        })
        .unwrap_or(false)
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The operator's name.
    pub name: String,
    pub pid: u32,
    pub host: String,
}

impl LeaseHolder {
    /// This process, on this host, driven by `name`.
    pub fn this_process(name: impl Into<String>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown-host".into());
        Self {
            name: name.into(),
            pid: std::process::id(),
            host,
        }
    }
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    pub holder: LeaseHolder,
    pub acquired_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

impl LeaseInfo {
    /// No heartbeat for longer than `stale_after`: the holder is presumed dead.
    pub fn is_stale(&self, now: DateTime<Utc>, stale_after: Duration) -> bool {
        now - self.heartbeat_at > stale_after
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the journal is being driven by {} (pid {} on {}), last heartbeat {}{}",
        info.holder.name, info.holder.pid, info.holder.host, format_at(info.heartbeat_at),
        if *stale { "; it looks dead and can be taken over explicitly" } else { "" }
    )]
    Held { info: LeaseInfo, stale: bool },
    #[error("the lease is no longer ours: another process took it over")]
    Lost,
    /// SQLite's write lock stayed taken (a driver stopped mid-write: SIGSTOP, a debugger, a hung disk).
    #[error(
        "the journal's write lock is held by another process{}; it is probably stopped (suspended, in a debugger): resume or end it, then try again",
        match info {
            Some(i) => format!(
                ", most likely {} (pid {} on {}, lease heartbeat {}s ago)",
                i.holder.name,
                i.holder.pid,
                i.holder.host,
                (Utc::now() - i.heartbeat_at).num_seconds().max(0)
            ),
            None => String::new(),
        }
    )]
    Locked { info: Option<LeaseInfo> },
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// SQLite's "database is locked" / "busy" after the busy timeout.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl From<rusqlite::Error> for LeaseError {
    fn from(e: rusqlite::Error) -> Self {
        LeaseError::Journal(e.into())
    }
}

/// A held lease (its own connection to the journal file).
pub struct Lease {
    conn: Connection,
    token: String,
    info: LeaseInfo,
}

fn connect(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| JournalError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA synchronous=FULL;")?;
    Ok(conn)
}

fn read(conn: &Connection) -> Result<Option<LeaseInfo>, JournalError> {
    let row = conn
        .query_row(
            "SELECT holder, pid, host, acquired_at, heartbeat_at FROM lease WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((name, pid, host, acquired, beat)) = row else {
        return Ok(None);
    };
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| JournalError::Db(format!("lease time {s:?}: {e}")))
    };
    Ok(Some(LeaseInfo {
        holder: LeaseHolder {
            name,
            pid: u32::try_from(pid).unwrap_or(0),
            host,
        },
        acquired_at: parse(&acquired)?,
        heartbeat_at: parse(&beat)?,
    }))
}

impl Lease {
    /// The current lease of a journal, if any (read-only peek).
    pub fn current(path: impl AsRef<Path>) -> Result<Option<LeaseInfo>, JournalError> {
        let path = path.as_ref();
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
            JournalError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })?;
        read(&conn)
    }

    /// Take the lease if nobody holds it (or this same process does). The journal must exist.
    pub fn acquire(
        path: impl AsRef<Path>,
        me: &LeaseHolder,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<Lease, LeaseError> {
        Self::take(path.as_ref(), me, now, stale_after, false).map(|(l, _)| l)
    }

    /// Take the lease from a holder whose heartbeat is stale (or from any holder when `force`).
    /// Returns the event to journal (who took it from whom). With no current holder this is a
    /// plain acquire and the event still records it.
    pub fn take_over(
        path: impl AsRef<Path>,
        me: &LeaseHolder,
        now: DateTime<Utc>,
        stale_after: Duration,
        force: bool,
    ) -> Result<(Lease, Event), LeaseError> {
        let stale_after = if force { Duration::MIN } else { stale_after };
        let (lease, previous) = Self::take(path.as_ref(), me, now, stale_after, true)?;
        let prev = previous.unwrap_or_else(|| lease.info.clone());
        let event = Event::LeaseTakenOver {
            previous_holder: prev.holder.name,
            previous_host: prev.holder.host,
            previous_pid: prev.holder.pid,
            previous_heartbeat_at: prev.heartbeat_at,
            holder: me.name.clone(),
            host: me.host.clone(),
            pid: me.pid,
        };
        Ok((lease, event))
    }

    /// Take the lease from a holder found dead for certain (its pid gone on this host), but only if the lease
    /// row is still exactly `seen` inside the transaction: a holder that beat again in the meantime keeps it.
    pub fn take_over_dead(
        path: impl AsRef<Path>,
        me: &LeaseHolder,
        now: DateTime<Utc>,
        stale_after: Duration,
        seen: &LeaseInfo,
    ) -> Result<(Lease, Event), LeaseError> {
        let (lease, previous) = Self::take_with(path.as_ref(), me, now, stale_after, true, Some(seen))?;
        let prev = previous.unwrap_or_else(|| lease.info.clone());
        let event = Event::LeaseTakenOver {
            previous_holder: prev.holder.name,
            previous_host: prev.holder.host,
            previous_pid: prev.holder.pid,
            previous_heartbeat_at: prev.heartbeat_at,
            holder: me.name.clone(),
            host: me.host.clone(),
            pid: me.pid,
        };
        Ok((lease, event))
    }

    fn take(
        path: &Path,
        me: &LeaseHolder,
        now: DateTime<Utc>,
        stale_after: Duration,
        takeover: bool,
    ) -> Result<(Lease, Option<LeaseInfo>), LeaseError> {
        Self::take_with(path, me, now, stale_after, takeover, None)
    }

    fn take_with(
        path: &Path,
        me: &LeaseHolder,
        now: DateTime<Utc>,
        stale_after: Duration,
        takeover: bool,
        seen_dead: Option<&LeaseInfo>,
    ) -> Result<(Lease, Option<LeaseInfo>), LeaseError> {
        let mut conn = connect(path)?;
        let token = uuid::Uuid::new_v4().to_string();
        let previous;
        {
            let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                Ok(tx) => tx,
                Err(e) if is_busy(&e) => {
                    // Readers are not blocked in WAL mode: say who holds the journal instead of "database is locked".
                    let info = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                        .ok()
                        .and_then(|c| read(&c).ok().flatten());
                    return Err(LeaseError::Locked { info });
                }
                Err(e) => return Err(e.into()),
            };
            previous = read(&tx)?;
            if let Some(cur) = &previous {
                let ours = cur.holder.pid == me.pid && cur.holder.host == me.host;
                // Rechecked here, under the write lock: the holder may have beaten since it looked dead.
                let stale = cur.is_stale(now, stale_after) || seen_dead == Some(cur);
                if !(ours || (takeover && stale)) {
                    return Err(LeaseError::Held {
                        info: cur.clone(),
                        stale,
                    });
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO lease (id, holder, pid, host, token, acquired_at, heartbeat_at) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?5)",
                params![me.name, i64::from(me.pid), me.host, token, format_at(now)],
            )?;
            tx.commit()?;
        }
        let info = LeaseInfo {
            holder: me.clone(),
            acquired_at: now,
            heartbeat_at: now,
        };
        Ok((Lease { conn, token, info }, previous))
    }

    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// This holding's token (what [`crate::journal::Journal::bind_lease`] checks every append against).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Record that the holder is alive; [`LeaseError::Lost`] if someone took the lease over.
    pub fn heartbeat(&mut self, now: DateTime<Utc>) -> Result<(), LeaseError> {
        let n = self.conn.execute(
            "UPDATE lease SET heartbeat_at = ?1 WHERE id = 1 AND token = ?2",
            params![format_at(now), self.token],
        )?;
        if n == 0 {
            return Err(LeaseError::Lost);
        }
        self.info.heartbeat_at = now;
        Ok(())
    }

    /// Give the lease up (only if it is still ours).
    pub fn release(self) -> Result<(), LeaseError> {
        let n = self.conn.execute(
            "DELETE FROM lease WHERE id = 1 AND token = ?1",
            params![self.token],
        )?;
        if n == 0 {
            return Err(LeaseError::Lost);
        }
        Ok(())
    }
}
