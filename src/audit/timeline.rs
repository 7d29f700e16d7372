//! What `cutover replay` needs to move through a recorded run without holding it: the landmarks
//! (operator decisions, questions asked, gate verdicts, failures, alerts, resumes, the finish) to
//! jump between, and event lookups by seq and by time. The state at any point is
//! [`JournalReader::state_at`] (the one reducer); stepping forward is one [`RunState::apply`] of
//! [`event_by_seq`]; stepping back rebuilds with `state_at(run, Some(previous_id))`.
//!
//! `cutover replay` itself (src/tui/replay.rs) places events with [`index_after`] and reads them a
//! chunk at a time with [`envelopes_between`].
//!
//! [`RunState::apply`]: crate::engine::RunState::apply

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::text::{at as fmt_at, enum_name, scrub};
use crate::engine::event::StepOutcome;
use crate::engine::{Envelope, Event, RunId};
use crate::journal::chain::format_at;
use crate::journal::{JournalError, JournalReader};

/// Why a replay would stop at an event.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LandmarkKind {
    Decision,
    Question,
    Gate,
    Failure,
    Alert,
    Resume,
    Finish,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Landmark {
    pub event_id: i64,
    pub seq: u64,
    pub at: String,
    pub kind: LandmarkKind,
    /// One line for a timeline list (already scrubbed of credentials).
    pub label: String,
}

fn landmark_of(env: &Envelope) -> Option<(LandmarkKind, String)> {
    let step =
        |s: &Option<crate::engine::StepId>| s.as_ref().map_or_else(|| "run".to_owned(), |s| s.0.clone());
    Some(match &env.event {
        Event::OperatorDecision {
            step: s,
            action,
            operator,
            reason,
            ..
        } => (
            LandmarkKind::Decision,
            format!(
                "{operator}: {} {}{}",
                enum_name(action),
                step(s),
                reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        ),
        Event::ApprovalRefused {
            step: s,
            action,
            operator,
            reason,
            ..
        } => (
            LandmarkKind::Decision,
            format!("{operator}: {} {} REFUSED ({reason})", enum_name(action), step(s)),
        ),
        Event::AwaitingOperator {
            step: s, decision, ..
        } => (
            LandmarkKind::Question,
            format!("asks {} for {}", enum_name(decision), step(s)),
        ),
        Event::GateEvaluated {
            step: s,
            passed,
            failures,
            ..
        } => (
            LandmarkKind::Gate,
            if *passed {
                format!("{s} passed")
            } else {
                format!("{s} FAILED for {} row(s)", failures.len())
            },
        ),
        Event::StepFinished {
            step: s,
            outcome: StepOutcome::Failed { message },
            ..
        } => (LandmarkKind::Failure, format!("{s} failed: {message}")),
        Event::Alert {
            severity, message, ..
        } => (LandmarkKind::Alert, format!("{}: {message}", enum_name(severity))),
        Event::RunResumed { operator, host, .. } => {
            (LandmarkKind::Resume, format!("resumed by {operator} on {host}"))
        }
        Event::RunFinished { outcome } => {
            let (name, detail) = super::assemble::outcome_parts(Some(outcome));
            let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
            (LandmarkKind::Finish, format!("finished: {name}{detail}"))
        }
        _ => return None,
    })
}

/// The landmark an envelope is, if it is one (the replay checks events a watched run appends).
pub fn landmark(env: &Envelope) -> Option<Landmark> {
    landmark_of(env).map(|(kind, label)| Landmark {
        event_id: env.id,
        seq: env.seq,
        at: fmt_at(env.at),
        kind,
        label: scrub(&label),
    })
}

/// One event of a run's index: enough to place it on the timeline without decoding its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: i64,
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// The run's events with `seq > after_seq` as (id, seq, at), in order: the replay's timeline
/// (about 24 bytes an event, so a million-event run's index fits in memory while its envelopes
/// stay on disk).
pub fn index_after(
    reader: &JournalReader,
    run: &RunId,
    after_seq: u64,
) -> Result<Vec<IndexEntry>, JournalError> {
    let mut stmt = reader
        .connection()
        .prepare_cached("SELECT id, seq, at FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq")?;
    let mut rows = stmt.query(params![run.0, i64::try_from(after_seq).unwrap_or(i64::MAX)])?;
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
    reader: &JournalReader,
    run: &RunId,
    from_seq: u64,
    to_seq: u64,
) -> Result<Vec<Envelope>, JournalError> {
    let mut stmt = reader.connection().prepare_cached(
        "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq",
    )?;
    let seq = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![run.0, seq(from_seq), seq(to_seq)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(envelope(
            run,
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            &r.get::<_, String>(3)?,
        )?);
    }
    Ok(out)
}

/// Every landmark of a run, in order. Reads only the rows whose `kind` can be one (a scan of the
/// table, decoding a small fraction of it).
pub fn landmarks(reader: &JournalReader, run: &RunId) -> Result<Vec<Landmark>, JournalError> {
    let mut stmt = reader.connection().prepare(
        "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND kind IN ('operator_decision', 'awaiting_operator', 'gate_evaluated', 'step_finished', 'alert', 'run_resumed', 'run_finished') ORDER BY seq",
    )?;
    let mut rows = stmt.query([&run.0])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let env = envelope(
            run,
            r.get(0)?,
            r.get(1)?,
            &r.get::<_, String>(2)?,
            &r.get::<_, String>(3)?,
        )?;
        out.extend(landmark(&env));
    }
    Ok(out)
}

/// An envelope of `run` from its row's columns (the watch decodes the rows it checked itself).
pub fn decode(run: &RunId, id: i64, seq: u64, at: &str, payload: &str) -> Result<Envelope, JournalError> {
    envelope(run, id, i64::try_from(seq).unwrap_or(i64::MAX), at, payload)
}

fn envelope(run: &RunId, id: i64, seq: i64, at: &str, payload: &str) -> Result<Envelope, JournalError> {
    let corrupt = |message: String| JournalError::Corrupt { id, message };
    Ok(Envelope {
        id,
        seq: u64::try_from(seq).unwrap_or(0),
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|e| corrupt(format!("bad time {at:?}: {e}")))?
            .with_timezone(&Utc),
        run_id: run.clone(),
        event: serde_json::from_str(payload).map_err(|e| corrupt(format!("payload does not decode: {e}")))?,
    })
}

/// The run's envelope at `seq` (1-based), if the run has that many.
pub fn event_by_seq(reader: &JournalReader, run: &RunId, seq: u64) -> Result<Option<Envelope>, JournalError> {
    let row = reader
        .connection()
        .query_row(
            "SELECT id, seq, at, payload FROM events WHERE run_id = ?1 AND seq = ?2",
            params![run.0, i64::try_from(seq).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, s, at, p)| envelope(run, id, s, &at, &p))
        .transpose()
}

/// The run's first event at or after `when` as (event id, seq); `None` past the end. Times in the
/// journal are fixed-width RFC 3339 UTC, so text order is time order.
pub fn event_at_or_after(
    reader: &JournalReader,
    run: &RunId,
    when: DateTime<Utc>,
) -> Result<Option<(i64, u64)>, JournalError> {
    Ok(reader
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

/// The next landmark after `event_id` of one of `kinds` (any kind when empty).
pub fn next_landmark<'a>(
    marks: &'a [Landmark],
    event_id: i64,
    kinds: &[LandmarkKind],
) -> Option<&'a Landmark> {
    marks
        .iter()
        .find(|m| m.event_id > event_id && (kinds.is_empty() || kinds.contains(&m.kind)))
}

/// The previous landmark before `event_id` of one of `kinds` (any kind when empty).
pub fn previous_landmark<'a>(
    marks: &'a [Landmark],
    event_id: i64,
    kinds: &[LandmarkKind],
) -> Option<&'a Landmark> {
    marks
        .iter()
        .rev()
        .find(|m| m.event_id < event_id && (kinds.is_empty() || kinds.contains(&m.kind)))
}
