//! Read-only access: runs, envelopes, state at any event, and chain verification.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::Serialize;

use super::JournalError;
use super::chain::{
    GENESIS_HASH, canonical_envelope_into, chain_hash, envelope_digest, hex_lower_into, sha256_hex,
};
use super::decode::{decode_event, known_kind};
use super::store::{known_version, user_version};
use crate::model::event::RunOutcome;
use crate::model::{Envelope, Event, RunId};
use crate::state::RunState;

/// Envelopes fetched per query while streaming.
const PAGE: i64 = 4096;

/// A run's rows in `id` order: a range scan of the table (`+run_id` keeps SQLite off the index).
const ID_ORDER: &str = "SELECT id, seq, at, payload, kind FROM events WHERE id > ?2 AND id <= ?3 AND +run_id = ?1 ORDER BY id LIMIT ?4";
/// A run's rows in `seq` order, through the `(run_id, seq)` index.
const SEQ_ORDER: &str = "SELECT id, seq, at, payload, kind FROM events WHERE run_id = ?1 AND seq > ?2 AND id <= ?3 ORDER BY seq LIMIT ?4";

/// One run as `cutover runs` lists it (from the `runs` index).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub run_id: RunId,
    pub runbook: String,
    pub version: String,
    pub runbook_sha256: String,
    pub operator: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub first_event_id: i64,
    pub last_event_id: i64,
    /// Events in the run (its last seq).
    pub events: u64,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<RunOutcome>,
}

/// A journal that verified: how many events, and the chain head to record elsewhere.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub runs: usize,
    pub last_id: i64,
    pub head_hash: String,
}

/// The first event that does not verify. `seq` and `run_id` are absent when the event is missing
/// altogether (a truncated tail).
#[derive(Serialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event_id} does not verify: {reason}")]
pub struct VerifyFailure {
    pub event_id: i64,
    pub seq: Option<u64>,
    pub run_id: Option<RunId>,
    pub reason: String,
}

/// A journal opened with `SQLITE_OPEN_READ_ONLY`: nothing done through it can change the file.
pub struct JournalReader {
    conn: Connection,
}

/// The `at` column as the writer formats it (`2026-11-28T03:12:45.120Z`), without the general
/// RFC 3339 parser; `None` for any other shape (leap seconds included), which then takes it.
fn parse_at_fast(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let (sec, ms) = (num(17..19)?, num(20..23)?);
    if sec >= 60 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)?
        .and_hms_milli_opt(num(11..13)?, num(14..16)?, sec, ms)
        .map(|t| t.and_utc())
}

fn parse_at(id: i64, s: &str) -> Result<DateTime<Utc>, JournalError> {
    if let Some(t) = parse_at_fast(s) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| JournalError::Corrupt {
            id,
            message: format!("bad time {s:?}: {e}"),
        })
}

/// The row's `kind` column as one of the kinds the fast decoder knows, else `""` (which sends
/// the payload to the plain decoder; the column never changes what a payload decodes to).
fn row_kind(r: &Row<'_>, i: usize) -> &'static str {
    r.get_ref(i)
        .ok()
        .and_then(|v| v.as_str().ok())
        .and_then(known_kind)
        .unwrap_or("")
}

fn envelope_from_row(r: &Row<'_>) -> Result<Envelope, JournalError> {
    let id: i64 = r.get(0)?;
    let run_id: String = r.get(1)?;
    let seq: i64 = r.get(2)?;
    let at: String = r.get(3)?;
    let payload: String = r.get(4)?;
    let kind = row_kind(r, 5);
    let event: Event = decode_event(kind, &payload).map_err(|e| JournalError::Corrupt {
        id,
        message: format!("payload does not decode: {e}"),
    })?;
    Ok(Envelope {
        id,
        seq: u64::try_from(seq).unwrap_or(0),
        at: parse_at(id, &at)?,
        run_id: RunId(run_id),
        event,
    })
}

impl JournalReader {
    /// Open read-only; works while another process is writing (WAL readers do not block writers).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let open_err = |e: &dyn std::fmt::Display| JournalError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        // A journal on read-only media, or a copy without write permission, cannot have its WAL index
        // created: read it as an immutable file instead (nothing can change it while we read).
        let conn = match Self::connect(path, false) {
            Ok(c) => c,
            Err(first) => Self::connect(path, true).map_err(|_| open_err(&first))?,
        };
        Self::checked(path, conn)
    }

    /// A journal opened for `verify` and `report`: when no `-wal` file is beside it (no writer has it open,
    /// every commit is in the main file), as an immutable file, so nothing is created or changed beside a
    /// copy and read-only media work; otherwise as [`Self::open_read_only`] (which falls back to immutable).
    pub fn open_snapshot(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if std::fs::symlink_metadata(std::path::PathBuf::from(wal)).is_ok() {
            return Self::open_read_only(path);
        }
        let conn = Self::connect(path, true).map_err(|e| JournalError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::checked(path, conn)
    }

    fn checked(path: &Path, conn: Connection) -> Result<Self, JournalError> {
        let found = user_version(&conn)?;
        if found > known_version() {
            return Err(JournalError::SchemaTooNew {
                found,
                known: known_version(),
            });
        }
        if found == 0 {
            return Err(JournalError::Open {
                path: path.display().to_string(),
                message: "not a cutover journal".into(),
            });
        }
        Ok(Self { conn })
    }

    /// A read-only connection that has read the schema (so a file SQLite cannot open read-only fails here);
    /// `immutable`: through a `file:` URI with `immutable=1`.
    fn connect(path: &Path, immutable: bool) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable {
            let mut uri = String::from("file:");
            for c in path.to_string_lossy().chars() {
                match c {
                    '%' => uri.push_str("%25"),
                    '?' => uri.push_str("%3f"),
                    '#' => uri.push_str("%23"),
                    c => uri.push(c),
                }
            }
            uri.push_str("?immutable=1");
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)?
        } else {
            Connection::open_with_flags(path, flags)?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
        Ok(conn)
    }

    /// The underlying read-only connection (for reports that need their own queries).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Every run in the journal, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, runbook, version, runbook_sha256, operator, host, started_at, first_event_id, last_event_id, finished_at, outcome, (SELECT MAX(seq) FROM events e WHERE e.run_id = runs.run_id) FROM runs ORDER BY first_event_id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let first: i64 = r.get(7)?;
            let finished: Option<String> = r.get(9)?;
            let outcome: Option<String> = r.get(10)?;
            out.push(RunSummary {
                run_id: RunId(r.get(0)?),
                runbook: r.get(1)?,
                version: r.get(2)?,
                runbook_sha256: r.get(3)?,
                operator: r.get(4)?,
                host: r.get(5)?,
                started_at: parse_at(first, &r.get::<_, String>(6)?)?,
                first_event_id: first,
                last_event_id: r.get(8)?,
                events: u64::try_from(r.get::<_, Option<i64>>(11)?.unwrap_or(0)).unwrap_or(0),
                finished_at: finished.map(|f| parse_at(first, &f)).transpose()?,
                outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
            });
        }
        Ok(out)
    }

    /// The run's envelopes in order, fetched a page at a time (memory stays flat for any length).
    pub fn events(&self, run_id: &RunId) -> EventIter<'_> {
        self.events_upto(run_id, i64::MAX)
    }

    /// The run's envelopes with `id <= upto_event_id`.
    pub fn events_upto(&self, run_id: &RunId, upto_event_id: i64) -> EventIter<'_> {
        EventIter {
            reader: self,
            run_id: run_id.clone(),
            after_seq: 0,
            upto: upto_event_id,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The last envelope of a run, or of the whole journal when `run_id` is `None`.
    pub fn last_event(&self, run_id: Option<&RunId>) -> Result<Option<Envelope>, JournalError> {
        let cols = "SELECT id, run_id, seq, at, payload, kind FROM events";
        let row = match run_id {
            Some(r) => self
                .conn
                .query_row(
                    &format!("{cols} WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1"),
                    [&r.0],
                    |row| Ok(envelope_from_row(row)),
                )
                .optional()?,
            None => self
                .conn
                .query_row(&format!("{cols} ORDER BY id DESC LIMIT 1"), [], |row| {
                    Ok(envelope_from_row(row))
                })
                .optional()?,
        };
        row.transpose()
    }

    /// The state the console showed right after event `upto_event_id` (`None`: after the last).
    ///
    /// Pipelined: this thread reads pages and folds them while a helper thread decodes the next
    /// page's JSON, so a long run rebuilds in about the time of the slower half. Rows are read in
    /// `id` order (a range scan of the table itself, from the run's first event), which is the
    /// run's `seq` order in every journal the writer made; should a row's `seq` not follow in `id`
    /// order, the fold starts over in `seq` order through the `(run_id, seq)` index, so the result
    /// is always the fold of the run's events in `seq` order.
    pub fn state_at(&self, run_id: &RunId, upto_event_id: Option<i64>) -> Result<RunState, JournalError> {
        let upto = upto_event_id.unwrap_or(i64::MAX);
        let first: Option<i64> = self
            .conn
            .query_row(
                "SELECT first_event_id FROM runs WHERE run_id = ?1",
                [&run_id.0],
                |r| r.get(0),
            )
            .optional()?;
        let start = first.map_or(0, |f| f.saturating_sub(1));
        let mut last_seq = 0i64;
        let by_id = self.fold(run_id, |after, buf| {
            let page = self.raw_page(ID_ORDER, run_id, after.unwrap_or(start), upto, buf)?;
            let ordered = page.rows.iter().all(|r| {
                let ok = r.seq > last_seq;
                last_seq = r.seq;
                ok
            });
            let after = page.rows.last().map(|r| r.id);
            let last = page.is_short();
            Ok(ordered.then_some((page, after, last)))
        })?;
        if let Some(state) = by_id {
            return Ok(state);
        }
        let by_seq = self.fold(run_id, |after, buf| {
            let page = self.raw_page(SEQ_ORDER, run_id, after.unwrap_or(0), upto, buf)?;
            let after = page.rows.last().map(|r| r.seq);
            let last = page.is_short();
            Ok(Some((page, after, last)))
        })?;
        by_seq.ok_or_else(|| JournalError::Db("replay in seq order was interrupted".into()))
    }

    /// Fold the pages `next(after, buffer)` returns (`after` is `None` for the first page, then
    /// what the previous call returned; `buffer` an emptied page to fill) until the page `next`
    /// marks as the last; `None` when `next` gives up (returns `None`).
    fn fold(
        &self,
        run_id: &RunId,
        next: impl FnMut(Option<i64>, RawPage) -> Result<Option<NextPage>, JournalError>,
    ) -> Result<Option<RunState>, JournalError> {
        let mut state = RunState::default();
        let completed = self.pipeline(run_id, next, |env| state.apply(env))?;
        Ok(completed.then_some(state))
    }

    /// Every envelope of `run_id`, in `seq` order, handed to `f` as it is decoded (the same
    /// pipelined, kind-directed decoding as [`Self::state_at`]), without holding the run. Stops at
    /// the first row that does not decode: a corrupt row is an error, never skipped.
    pub fn for_each_envelope(&self, run_id: &RunId, f: impl FnMut(&Envelope)) -> Result<(), JournalError> {
        self.pipeline(
            run_id,
            |after, buf| {
                let page = self.raw_page(SEQ_ORDER, run_id, after.unwrap_or(0), i64::MAX, buf)?;
                let after = page.rows.last().map(|r| r.seq);
                let last = page.is_short();
                Ok(Some((page, after, last)))
            },
            f,
        )
        .map(|_| ())
    }

    /// [`Self::verify`] and [`Self::for_each_envelope`] in one read of the table (what `report` needs):
    /// every row is read once, in `id` order, and checked against the chain, and the rows of `run_id`
    /// are decoded on a helper thread and handed to `apply` in order.
    ///
    /// The verdict is the one [`Self::verify`] gives. The fold's result is the one
    /// `for_each_envelope` gives, and is there only when every row passed the chain's checks: then
    /// every run's `seq` follows `id` order, so the run's rows met in `id` order are the run in `seq`
    /// order. Otherwise the pass stops at the first row that fails, `apply` has seen part of the run
    /// at most, and a caller that wants the fold anyway reads the run again with `for_each_envelope`.
    /// A row of the run that does not decode ends the fold (with `for_each_envelope`'s error; what
    /// `apply` saw before it is a prefix of the run, not necessarily the same one), not the check:
    /// the rest of the table is still verified, so the verdict never depends on the fold.
    ///
    /// The pass is one read transaction: one snapshot of a journal another process is appending to.
    /// `beside`, a second reader of the same file, runs SQLite's own check (the first thing `verify`
    /// does, `PRAGMA quick_check`) on a thread of its own meanwhile; without it the check runs here
    /// first. A file that fails that check has its verdict, whatever the pass met.
    pub fn verify_and_for_each(
        &self,
        run_id: &RunId,
        beside: Option<JournalReader>,
        apply: impl FnMut(&Envelope),
    ) -> Result<VerifiedFold, JournalError> {
        let damaged = |f| VerifiedFold {
            verdict: Err(f),
            folded: None,
        };
        let Some(other) = beside else {
            if let Some(f) = self.damaged() {
                return Ok(damaged(f));
            }
            return self.snapshot(|r| r.verify_and_for_each_now(run_id, apply))?;
        };
        std::thread::scope(|scope| {
            let check = scope.spawn(move || other.damaged());
            let pass = self.snapshot(|r| r.verify_and_for_each_now(run_id, apply));
            let found = check
                .join()
                .map_err(|_| JournalError::Db("the SQLite check stopped".into()))?;
            match found {
                Some(f) => Ok(damaged(f)),
                None => pass?,
            }
        })
    }

    /// The pass of [`Self::verify_and_for_each`], after SQLite's own check.
    fn verify_and_for_each_now(
        &self,
        run_id: &RunId,
        apply: impl FnMut(&Envelope),
    ) -> Result<VerifiedFold, JournalError> {
        let mut check = ChainCheck::default();
        // The last id read; `None` before the first page.
        let mut scanned: Option<i64> = None;
        // One page of the table after `scanned`: each row checked, the run's rows kept in `buf` for
        // decoding; the first row that fails, else whether it was the last page.
        let mut chain_page =
            |buf: &mut Option<RawPage>| -> Result<Result<bool, VerifyFailure>, JournalError> {
                let mut stmt = match scanned {
                    None => self.conn.prepare_cached(CHAIN_FIRST)?,
                    Some(_) => self.conn.prepare_cached(CHAIN_AFTER)?,
                };
                let mut rows = match scanned {
                    None => stmt.query([PAGE])?,
                    Some(after) => stmt.query([after, PAGE])?,
                };
                let mut n = 0i64;
                while let Some(r) = rows.next()? {
                    n += 1;
                    let row = ChainRow::read(r)?;
                    scanned = Some(row.id);
                    if let Err(f) = check.row(&row) {
                        return Ok(Err(f));
                    }
                    if let Some(page) = buf.as_mut()
                        && row.run_id == run_id.0.as_str()
                    {
                        let from = page.text.len();
                        page.text.push_str(&row.payload);
                        page.rows.push(RawRow {
                            id: row.id,
                            seq: i64::try_from(row.seq).unwrap_or(i64::MAX),
                            at: parse_at(row.id, &row.at),
                            payload: from..page.text.len(),
                            kind: known_kind(&row.kind).unwrap_or(""),
                        });
                    }
                }
                Ok(Ok(n < PAGE))
            };
        let mut failure: Option<VerifyFailure> = None;
        let folded = self.pipeline(
            run_id,
            |_, buf| {
                let mut buf = Some(buf);
                if let Some(page) = buf.as_mut() {
                    page.rows.clear();
                    page.text.clear();
                }
                match chain_page(&mut buf)? {
                    Ok(last) => Ok(buf.map(|page| (page, None, last))),
                    Err(f) => {
                        failure = Some(f);
                        Ok(None)
                    }
                }
            },
            apply,
        );
        let folded = match folded {
            Ok(true) => Ok(()),
            // The chain failed (`failure` says where): the fold stops there.
            Ok(false) => Ok(()),
            Err(e) => {
                // Either a row of the run that does not decode (the check goes on over the rest of
                // the table) or a read that failed (which the check meets again, and returns).
                let mut none = None;
                while failure.is_none() {
                    match chain_page(&mut none)? {
                        Ok(true) => break,
                        Ok(false) => {}
                        Err(f) => failure = Some(f),
                    }
                }
                Err(e)
            }
        };
        if let Some(f) = failure {
            return Ok(VerifiedFold {
                verdict: Err(f),
                folded: None,
            });
        }
        Ok(VerifiedFold {
            verdict: check.finish(&self.conn)?,
            folded: Some(folded),
        })
    }

    /// Reads the pages `next` gives on this thread while a helper thread decodes them, and hands
    /// each envelope to `apply` in order; `false` when `next` gave up.
    ///
    /// Buffers go round rather than being freed: the helper hands a decoded page's raw buffers back
    /// for the next read, and this thread hands each applied page back to the helper, which drops
    /// its envelopes there (beside its own decoding, in the allocator arena they came from) and
    /// fills the same vector again. Freeing a page of envelopes on this thread was a tenth of its
    /// time, and this thread is the slower half.
    fn pipeline(
        &self,
        run_id: &RunId,
        mut next: impl FnMut(Option<i64>, RawPage) -> Result<Option<NextPage>, JournalError>,
        mut apply: impl FnMut(&Envelope),
    ) -> Result<bool, JournalError> {
        type Decoded = Result<Vec<Envelope>, JournalError>;
        std::thread::scope(|scope| -> Result<bool, JournalError> {
            let (raw_tx, raw_rx) = mpsc::sync_channel::<RawPage>(2);
            let (dec_tx, dec_rx) = mpsc::sync_channel::<(Decoded, RawPage)>(2);
            let (done_tx, done_rx) = mpsc::channel::<Vec<Envelope>>();
            scope.spawn(move || {
                for mut page in raw_rx {
                    let mut out = done_rx.try_recv().unwrap_or_default();
                    out.clear();
                    out.reserve(page.rows.len());
                    let mut decoded: Decoded = Ok(out);
                    for r in page.rows.drain(..) {
                        match (r.decode(run_id, &page.text), &mut decoded) {
                            (Ok(env), Ok(out)) => out.push(env),
                            (Err(e), _) => {
                                decoded = Err(e);
                                break;
                            }
                            (Ok(_), Err(_)) => break,
                        }
                    }
                    page.rows.clear();
                    page.text.clear();
                    if dec_tx.send((decoded, page)).is_err() {
                        break;
                    }
                }
                // The pages still being applied come back here to be freed.
                drop(dec_tx);
                for page in done_rx {
                    drop(page);
                }
            });
            let stopped = || JournalError::Db("replay decoder stopped".into());
            let mut after: Option<i64> = None;
            let mut in_flight = 0usize;
            let mut finished = false;
            let mut spare: Vec<RawPage> = Vec::new();
            while !finished || in_flight > 0 {
                if !finished {
                    let buf = spare.pop().unwrap_or_default();
                    let Some((page, next_after, last)) = next(after, buf)? else {
                        return Ok(false);
                    };
                    finished = last;
                    if page.rows.is_empty() {
                        spare.push(page);
                    } else {
                        after = next_after;
                        raw_tx.send(page).map_err(|_| stopped())?;
                        in_flight += 1;
                    }
                }
                if in_flight >= 2 || (finished && in_flight > 0) {
                    let (page, raw) = dec_rx.recv().map_err(|_| stopped())?;
                    spare.push(raw);
                    let page = page?;
                    in_flight -= 1;
                    for env in &page {
                        apply(env);
                    }
                    // A helper that has stopped (an error above) leaves the page to be freed here.
                    drop(done_tx.send(page));
                }
            }
            Ok(true)
        })
    }

    /// One page of the run's rows after `after` (an id or a seq, per `sql`), with `id <= upto`.
    /// `buf` is an emptied page whose buffers are reused (or a new, empty one).
    fn raw_page(
        &self,
        sql: &str,
        run_id: &RunId,
        after: i64,
        upto: i64,
        buf: RawPage,
    ) -> Result<RawPage, JournalError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![run_id.0, after, upto, PAGE])?;
        // Every payload of the page goes into one buffer (one allocation and one free per page,
        // not per row: the per-row Strings were a visible share of the rebuild's malloc/free),
        // and that buffer is the previous page's, passed back.
        let RawPage {
            rows: mut out,
            mut text,
        } = buf;
        out.clear();
        text.clear();
        out.reserve(usize::try_from(PAGE).unwrap_or(0));
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            // Parsed here, from SQLite's own buffer; an error surfaces when the row is decoded.
            let at = match r.get_ref(2)?.as_str() {
                Ok(at) => parse_at(id, at),
                // Not text: fails here exactly as reading it as a String always did.
                Err(_) => parse_at(id, &r.get::<_, String>(2)?),
            };
            out.push(RawRow {
                id,
                seq: r.get(1)?,
                at,
                payload: {
                    let from = text.len();
                    match r.get_ref(3)?.as_str() {
                        Ok(p) => text.push_str(p),
                        // Not text: fails here exactly as reading it as a String always did.
                        Err(_) => text.push_str(&r.get::<_, String>(3)?),
                    }
                    from..text.len()
                },
                kind: row_kind(r, 4),
            });
        }
        Ok(RawPage { rows: out, text })
    }

    /// Recompute the whole chain (see the [module docs](super) for the rule). The outer error is
    /// for I/O; the inner one names the first event that does not verify.
    pub fn verify(&self) -> Result<Result<VerifyReport, VerifyFailure>, JournalError> {
        if let Some(damaged) = self.damaged() {
            return Ok(Err(damaged));
        }
        let mut stmt = self.conn.prepare(CHAIN_ORDER)?;
        let mut rows = stmt.query([])?;
        let mut check = ChainCheck::default();
        while let Some(r) = rows.next()? {
            if let Err(f) = check.row(&ChainRow::read(r)?) {
                return Ok(Err(f));
            }
        }
        check.finish(&self.conn)
    }

    /// SQLite's own check, before the chain's: a flipped bit in a page the chain never reads (an index,
    /// free space, a page header) is damage too. `None` when the file is sound.
    fn damaged(&self) -> Option<VerifyFailure> {
        let check = || -> Result<Vec<String>, rusqlite::Error> {
            let mut stmt = self.conn.prepare("PRAGMA quick_check")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        };
        let problems = check().unwrap_or_else(|e| vec![e.to_string()]);
        problems.iter().any(|p| p != "ok").then(|| VerifyFailure {
            event_id: 0,
            seq: None,
            run_id: None,
            reason: format!(
                "the SQLite file is damaged (quick_check: {})",
                problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
            ),
        })
    }
}

/// Every row of the file in `id` order, with what the chain rule reads.
const CHAIN_ORDER: &str =
    "SELECT id, run_id, seq, at, kind, payload, prev_hash, hash FROM events ORDER BY id";
/// [`CHAIN_ORDER`] a page at a time: the first page, then the page after an id.
const CHAIN_FIRST: &str =
    "SELECT id, run_id, seq, at, kind, payload, prev_hash, hash FROM events ORDER BY id LIMIT ?1";
const CHAIN_AFTER: &str = "SELECT id, run_id, seq, at, kind, payload, prev_hash, hash FROM events WHERE id > ?1 ORDER BY id LIMIT ?2";

/// What [`JournalReader::verify_and_for_each`] found.
#[derive(Debug)]
pub struct VerifiedFold {
    /// What [`JournalReader::verify`] says.
    pub verdict: Result<VerifyReport, VerifyFailure>,
    /// The fold's result (`Err`: the first row of the run that does not decode) when every row passed
    /// the chain's checks (the verdict can still fail after them, on the chain head); `None` when the
    /// pass stopped at a row that failed, or the file failed SQLite's check.
    pub folded: Option<Result<(), JournalError>>,
}

/// A text column borrowed from SQLite's buffer; any other value fails exactly as reading it as a
/// `String` does.
fn text_col<'a>(r: &'a Row<'_>, i: usize) -> Result<Cow<'a, str>, rusqlite::Error> {
    match r.get_ref(i)?.as_str() {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(_) => r.get::<_, String>(i).map(Cow::Owned),
    }
}

/// One row of [`CHAIN_ORDER`], its text borrowed from SQLite.
struct ChainRow<'a> {
    id: i64,
    run_id: Cow<'a, str>,
    seq: u64,
    at: Cow<'a, str>,
    kind: Cow<'a, str>,
    payload: Cow<'a, str>,
    prev: Cow<'a, str>,
    hash: Cow<'a, str>,
}

impl<'a> ChainRow<'a> {
    fn read(r: &'a Row<'_>) -> Result<Self, rusqlite::Error> {
        Ok(Self {
            id: r.get(0)?,
            run_id: text_col(r, 1)?,
            seq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            at: text_col(r, 3)?,
            kind: text_col(r, 4)?,
            payload: text_col(r, 5)?,
            prev: text_col(r, 6)?,
            hash: text_col(r, 7)?,
        })
    }
}

/// The chain rule, one row at a time in `id` order: what [`JournalReader::verify`] applies to every row.
struct ChainCheck {
    /// The previous row's `hash` (the genesis hash before the first row).
    head: String,
    /// `head` as its 32 bytes, when it is 64 hex digits.
    head_raw: Option<[u8; 32]>,
    last_id: i64,
    events: u64,
    /// The last `seq` of each run seen.
    seqs: HashMap<String, u64>,
    /// The canonical envelope, built only for a `prev_hash` that is not 64 hex digits.
    canonical: String,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            head: GENESIS_HASH.to_owned(),
            head_raw: Some([0u8; 32]),
            last_id: 0,
            events: 0,
            seqs: HashMap::new(),
            canonical: String::new(),
        }
    }
}

impl ChainCheck {
    /// Check the next row; the failure names it.
    fn row(&mut self, r: &ChainRow<'_>) -> Result<(), VerifyFailure> {
        let fail = |reason: String| VerifyFailure {
            event_id: r.id,
            seq: Some(r.seq),
            run_id: Some(RunId(r.run_id.clone().into_owned())),
            reason,
        };
        if r.id != self.last_id + 1 {
            return Err(fail(format!(
                "event(s) {} to {} are missing",
                self.last_id + 1,
                r.id - 1
            )));
        }
        if r.prev != self.head {
            return Err(fail(
                "its prev_hash is not the previous event's hash (rows removed, inserted or reordered)".into(),
            ));
        }
        // `prev` equals `head`, which is always 64 hex digits after the first row; the rule for any
        // other text is `chain_hash`'s. The envelope is hashed piece by piece (the same bytes as
        // `canonical_envelope`), not copied.
        // With the recomputed digest, when the row's `hash` is its lowercase hex.
        let (matches, digest) = match self.head_raw {
            Some(raw) => {
                let digest = envelope_digest(&raw, &r.run_id, r.seq, &r.at, &r.kind, &r.payload);
                let mut hex = [0u8; 64];
                (hex_lower_into(&digest, &mut hex) == r.hash, Some(digest))
            }
            None => {
                canonical_envelope_into(&mut self.canonical, &r.run_id, r.seq, &r.at, &r.kind, &r.payload);
                (chain_hash(&r.prev, &self.canonical) == r.hash, None)
            }
        };
        if !matches {
            return Err(fail(
                "its hash does not match its contents (the row was edited)".into(),
            ));
        }
        let expected = self.seqs.get(r.run_id.as_ref()).map_or(1, |s| s + 1);
        if r.seq != expected {
            return Err(fail(format!(
                "seq {} where {expected} was expected in run {}",
                r.seq, r.run_id
            )));
        }
        if r.kind == "run_started" {
            match serde_json::from_str::<Event>(&r.payload) {
                Ok(Event::RunStarted { runbook, .. }) if sha256_hex(&runbook.text) == runbook.sha256 => {}
                Ok(_) => return Err(fail("the runbook text does not match its recorded sha256".into())),
                Err(e) => return Err(fail(format!("the payload does not decode: {e}"))),
            }
        }
        match self.seqs.get_mut(r.run_id.as_ref()) {
            Some(s) => *s = r.seq,
            None => {
                self.seqs.insert(r.run_id.clone().into_owned(), r.seq);
            }
        }
        // The hash matched: it is the hex of `digest` when there is one, which needs no decoding.
        self.head_raw = digest.or_else(|| {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(r.hash.as_bytes(), &mut raw)
                .ok()
                .map(|()| raw)
        });
        self.head.clear();
        self.head.push_str(&r.hash);
        self.last_id = r.id;
        self.events += 1;
        Ok(())
    }

    /// After the last row: `chain_head` must name it and its hash.
    fn finish(self, conn: &Connection) -> Result<Result<VerifyReport, VerifyFailure>, JournalError> {
        let (head_id, head_hash): (i64, String) =
            conn.query_row("SELECT last_id, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if head_id != self.last_id || head_hash != self.head {
            let reason = if head_id > self.last_id {
                format!(
                    "the chain head names event {head_id} but the journal ends at {} (tail truncated)",
                    self.last_id
                )
            } else {
                format!(
                    "the chain head (event {head_id}) does not match the last event {}",
                    self.last_id
                )
            };
            return Ok(Err(VerifyFailure {
                event_id: self.last_id + 1,
                seq: None,
                run_id: None,
                reason,
            }));
        }
        Ok(Ok(VerifyReport {
            events: self.events,
            runs: self.seqs.len(),
            last_id: self.last_id,
            head_hash: self.head,
        }))
    }
}

/// One page of rows as read: the rows, and their payloads one after another in `text`.
#[derive(Default)]
struct RawPage {
    rows: Vec<RawRow>,
    text: String,
}

impl RawPage {
    /// Fewer rows than a query's [`PAGE`]: the query's last page.
    fn is_short(&self) -> bool {
        i64::try_from(self.rows.len()).unwrap_or(0) < PAGE
    }
}

/// What a pipeline's `next` hands over: a page, where the next one starts, and whether it is the last.
type NextPage = (RawPage, Option<i64>, bool);

/// A row as read, before its JSON is decoded (decoding happens on another thread in `state_at`).
struct RawRow {
    id: i64,
    seq: i64,
    at: Result<DateTime<Utc>, JournalError>,
    /// Where the payload is in its page's `text`.
    payload: std::ops::Range<usize>,
    kind: &'static str,
}

impl RawRow {
    fn decode(self, run_id: &RunId, text: &str) -> Result<Envelope, JournalError> {
        let id = self.id;
        let payload = text.get(self.payload).unwrap_or_default();
        let event: Event = decode_event(self.kind, payload).map_err(|e| JournalError::Corrupt {
            id,
            message: format!("payload does not decode: {e}"),
        })?;
        Ok(Envelope {
            id,
            seq: u64::try_from(self.seq).unwrap_or(0),
            at: self.at?,
            run_id: run_id.clone(),
            event,
        })
    }
}

/// Streams a run's envelopes page by page; see [`JournalReader::events`].
pub struct EventIter<'a> {
    reader: &'a JournalReader,
    run_id: RunId,
    after_seq: i64,
    upto: i64,
    page: std::vec::IntoIter<Result<Envelope, JournalError>>,
    done: bool,
}

impl EventIter<'_> {
    fn fetch(&mut self) -> Result<Vec<Result<Envelope, JournalError>>, JournalError> {
        let mut stmt = self.reader.conn.prepare_cached(
            "SELECT id, run_id, seq, at, payload, kind FROM events WHERE run_id = ?1 AND seq > ?2 AND id <= ?3 ORDER BY seq LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![self.run_id.0, self.after_seq, self.upto, PAGE])?;
        let mut out = Vec::with_capacity(usize::try_from(PAGE).unwrap_or(0));
        while let Some(r) = rows.next()? {
            self.after_seq = r.get(2)?;
            out.push(envelope_from_row(r));
        }
        Ok(out)
    }
}

impl Iterator for EventIter<'_> {
    type Item = Result<Envelope, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.page.next() {
            return Some(e);
        }
        if self.done {
            return None;
        }
        match self.fetch() {
            Ok(page) => {
                if i64::try_from(page.len()).unwrap_or(0) < PAGE {
                    self.done = true;
                }
                self.page = page.into_iter();
                self.page.next()
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
