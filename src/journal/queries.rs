//! The reads the console's replay and the audit need beyond streaming a run: the run's index (id,
//! seq, time of each event, without decoding payloads), envelopes by seq range, by kind, by seq and
//! by time, the rows appended after a known one (for `cutover watch`), and a few lookups. Every SQL
//! statement of the crate lives in `journal/`; readers above it call these.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::chain::{GENESIS_HASH, format_at};
use super::{JournalError, JournalReader};
use crate::model::{Envelope, RunId};

/// One event of a run's index: enough to place it on a timeline without decoding its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: i64,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// One row as stored, every column (what `cutover watch` checks before it trusts a new row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    pub id: i64,
    pub run_id: String,
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

fn seq_param(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// An envelope of `run` from its row's columns.
pub fn decode_row(run: &RunId, id: i64, seq: u64, at: &str, payload: &str) -> Result<Envelope, JournalError> {
    let corrupt = |message: String| JournalError::Corrupt { id, message };
    Ok(Envelope {
        id,
        seq,
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|e| corrupt(format!("bad time {at:?}: {e}")))?
            .with_timezone(&Utc),
        run_id: run.clone(),
        event: serde_json::from_str(payload).map_err(|e| corrupt(format!("payload does not decode: {e}")))?,
    })
}

fn envelope_of(run: &RunId, r: &rusqlite::Row<'_>) -> Result<Envelope, JournalError> {
    let seq = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
    decode_row(
        run,
        r.get(0)?,
        seq,
        &r.get::<_, String>(2)?,
        &r.get::<_, String>(3)?,
    )
}

impl JournalReader {
    /// True when the file holds the journal's `events` table (a file that is not SQLite fails here,
    /// at its first query, not at open).
    pub fn has_events_table(&self) -> Result<bool, JournalError> {
        let found: Option<i64> = self
            .connection()
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Runs `f` inside one read transaction, so everything it reads is one snapshot of the file
    /// while another process appends.
    pub fn snapshot<T>(&self, f: impl FnOnce(&Self) -> T) -> Result<T, JournalError> {
        self.connection().execute_batch("BEGIN")?;
        let out = f(self);
        self.connection().execute_batch("COMMIT")?;
        Ok(out)
    }

    /// The hash of the run's last event.
    pub fn last_hash_of_run(&self, run: &RunId) -> Result<Option<String>, JournalError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT hash FROM events WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                [&run.0],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The run the event with this id belongs to.
    pub fn run_of_event(&self, id: i64) -> Result<Option<RunId>, JournalError> {
        let run: Option<String> = self
            .connection()
            .query_row("SELECT run_id FROM events WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        Ok(run.map(RunId))
    }

    /// The row with this id as (run_id, at, hash), as stored.
    pub fn row_place(&self, id: i64) -> Result<Option<(String, String, String)>, JournalError> {
        Ok(self
            .connection()
            .query_row("SELECT run_id, at, hash FROM events WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    }

    /// Every `checkpoint` row as (id, run_id, payload), in id order.
    pub fn checkpoint_rows(&self) -> Result<Vec<(i64, String, String)>, JournalError> {
        let mut stmt = self
            .connection()
            .prepare("SELECT id, run_id, payload FROM events WHERE kind = 'checkpoint' ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every `checkpoint_key` row's payload (the vault keys' public JWKs), in id order.
    pub fn checkpoint_key_rows(&self) -> Result<Vec<String>, JournalError> {
        let mut stmt = self
            .connection()
            .prepare("SELECT payload FROM events WHERE kind = 'checkpoint_key' ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The file's last row as (id, hash); (0, the genesis hash) when it holds none.
    pub fn chain_tip(&self) -> Result<(i64, String), JournalError> {
        let row = self
            .connection()
            .query_row("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(row.unwrap_or_else(|| (0, GENESIS_HASH.to_owned())))
    }

    /// At most `limit` rows with `id > after_id`, of any run, in id order, every column as stored.
    pub fn rows_after(&self, after_id: i64, limit: usize) -> Result<Vec<RawRow>, JournalError> {
        let mut stmt = self.connection().prepare_cached(
            "SELECT id, run_id, seq, at, kind, payload, prev_hash, hash FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after_id, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(RawRow {
                id: r.get(0)?,
                run_id: r.get(1)?,
                seq: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                at: r.get(3)?,
                kind: r.get(4)?,
                payload: r.get(5)?,
                prev_hash: r.get(6)?,
                hash: r.get(7)?,
            });
        }
        Ok(out)
    }

    /// The run's events with `seq > after_seq` as (id, seq, at), in order: a replay's timeline
    /// (about 24 bytes an event, so a million-event run's index fits in memory while its envelopes
    /// stay on disk).
    pub fn index_after(&self, run: &RunId, after_seq: u64) -> Result<Vec<IndexEntry>, JournalError> {
        let mut stmt = self
            .connection()
            .prepare_cached("SELECT id, seq, at FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq")?;
        let mut rows = stmt.query(params![run.0, seq_param(after_seq)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let at: String = r.get(2)?;
            out.push(IndexEntry {
                id,
                seq: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                at: DateTime::parse_from_rfc3339(&at)
                    .map_err(|e| JournalError::Corrupt {
                        id,
                        message: format!("bad time {at:?}: {e}"),
                    })?
                    .with_timezone(&Utc),
            });
        }
        Ok(out)
    }

    /// The run's envelopes with `from_seq <= seq <= to_seq`, in order.
    pub fn envelopes_between(
        &self,
        run: &RunId,
        from_seq: u64,
        to_seq: u64,
    ) -> Result<Vec<Envelope>, JournalError> {
        let mut stmt = self.connection().prepare_cached(
            "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![run.0, seq_param(from_seq), seq_param(to_seq)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(envelope_of(run, r)?);
        }
        Ok(out)
    }

    /// The run's envelopes whose `kind` is one of `kinds`, in order (a scan of the table that
    /// decodes only those rows).
    pub fn envelopes_of_kinds(&self, run: &RunId, kinds: &[&str]) -> Result<Vec<Envelope>, JournalError> {
        let marks = (0..kinds.len())
            .map(|i| format!("?{}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.connection().prepare_cached(&format!(
            "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND kind IN ({marks}) ORDER BY seq"
        ))?;
        let values = std::iter::once(run.0.as_str()).chain(kinds.iter().copied());
        let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(envelope_of(run, r)?);
        }
        Ok(out)
    }

    /// Every envelope whose `kind` is `kind`, of any run, in id order: one scan of the table that
    /// decodes only those rows (each envelope carries its own run).
    pub fn envelopes_of_kind(&self, kind: &str) -> Result<Vec<Envelope>, JournalError> {
        let mut stmt = self
            .connection()
            .prepare_cached("SELECT id, seq, at, payload, run_id FROM events WHERE kind = ?1 ORDER BY id")?;
        let mut rows = stmt.query([kind])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let run = RunId(r.get(4)?);
            out.push(envelope_of(&run, r)?);
        }
        Ok(out)
    }

    /// The newest `limit` `cutover preflight --journal` results in the journal (each under a run id of its
    /// own), oldest first.
    pub fn preflights(&self, limit: usize) -> Result<Vec<Envelope>, JournalError> {
        let mut stmt = self.connection().prepare_cached(
            "SELECT id, seq, at, payload, run_id FROM events WHERE kind = 'preflight_checked' ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows = stmt.query(params![i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let run = RunId(r.get(4)?);
            out.push(envelope_of(&run, r)?);
        }
        out.reverse();
        Ok(out)
    }

    /// The run's envelope at `seq` (1-based), if the run has that many.
    pub fn envelope_by_seq(&self, run: &RunId, seq: u64) -> Result<Option<Envelope>, JournalError> {
        let mut stmt = self
            .connection()
            .prepare_cached("SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND seq = ?2")?;
        let mut rows = stmt.query(params![run.0, seq_param(seq)])?;
        rows.next()?.map(|r| envelope_of(run, r)).transpose()
    }

    /// The run's first event at or after `when` as (event id, seq); `None` past the end. Times in
    /// the journal are fixed-width RFC 3339 UTC, so text order is time order.
    pub fn event_at_or_after(
        &self,
        run: &RunId,
        when: DateTime<Utc>,
    ) -> Result<Option<(i64, u64)>, JournalError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT id, seq FROM events WHERE run_id = ?1 AND at >= ?2 ORDER BY seq LIMIT 1",
                params![run.0, format_at(when)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                },
            )
            .optional()?)
    }
}
