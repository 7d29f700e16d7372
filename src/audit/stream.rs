//! Streaming a run's envelopes through a fold without holding them: this thread reads pages of raw
//! rows while a helper thread decodes the previous page's JSON, so a 1,000,000-event run costs
//! about the slower half and at most three pages live at once.

use std::sync::mpsc;

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::engine::{Envelope, Event, RunId};
use crate::journal::{JournalError, JournalReader};

/// Rows per page.
const PAGE: i64 = 4096;

struct RawRow {
    id: i64,
    seq: i64,
    at: String,
    payload: String,
}

fn decode(run_id: &RunId, r: RawRow) -> Result<Envelope, JournalError> {
    let event: Event = serde_json::from_str(&r.payload).map_err(|e| JournalError::Corrupt {
        id: r.id,
        message: format!("payload does not decode: {e}"),
    })?;
    let at = DateTime::parse_from_rfc3339(&r.at)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| JournalError::Corrupt {
            id: r.id,
            message: format!("bad time {:?}: {e}", r.at),
        })?;
    Ok(Envelope {
        id: r.id,
        seq: u64::try_from(r.seq).unwrap_or(0),
        at,
        run_id: run_id.clone(),
        event,
    })
}

fn raw_page(reader: &JournalReader, run_id: &RunId, after_seq: i64) -> Result<Vec<RawRow>, JournalError> {
    let mut stmt = reader.connection().prepare_cached(
        "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![run_id.0, after_seq, PAGE])?;
    let mut out = Vec::with_capacity(usize::try_from(PAGE).unwrap_or(0));
    while let Some(r) = rows.next()? {
        out.push(RawRow {
            id: r.get(0)?,
            seq: r.get(1)?,
            at: r.get(2)?,
            payload: r.get(3)?,
        });
    }
    Ok(out)
}

/// Feed every envelope of `run_id`, in `seq` order, to `f`. Stops at the first row that does not
/// decode (a corrupt row is an error, never skipped silently).
pub fn for_each_envelope(
    reader: &JournalReader,
    run_id: &RunId,
    mut f: impl FnMut(&Envelope),
) -> Result<(), JournalError> {
    type Decoded = Result<Vec<Envelope>, JournalError>;
    std::thread::scope(|scope| -> Result<(), JournalError> {
        let (raw_tx, raw_rx) = mpsc::sync_channel::<Vec<RawRow>>(1);
        let (dec_tx, dec_rx) = mpsc::sync_channel::<Decoded>(1);
        let run = run_id.clone();
        scope.spawn(move || {
            for page in raw_rx {
                let decoded: Decoded = page.into_iter().map(|r| decode(&run, r)).collect();
                if dec_tx.send(decoded).is_err() {
                    break;
                }
            }
        });
        let stopped = || JournalError::Db("report decoder stopped".into());
        let mut after_seq = 0i64;
        let mut in_flight = 0usize;
        let mut finished = false;
        while !finished || in_flight > 0 {
            if !finished {
                let page = raw_page(reader, run_id, after_seq)?;
                finished = i64::try_from(page.len()).unwrap_or(0) < PAGE;
                if let Some(last) = page.last() {
                    after_seq = last.seq;
                    raw_tx.send(page).map_err(|_| stopped())?;
                    in_flight += 1;
                }
            }
            if in_flight >= 2 || (finished && in_flight > 0) {
                let page = dec_rx.recv().map_err(|_| stopped())??;
                in_flight -= 1;
                for env in &page {
                    f(env);
                }
            }
        }
        Ok(())
    })
}
