//! What `cutover replay` needs to move through a recorded run without holding it: the landmarks
//! (operator decisions, questions asked, gate verdicts, failures, alerts, resumes, the finish) to
//! jump between, and event lookups by seq and by time. The state at any point is
//! [`JournalReader::state_at`] (the one reducer); stepping forward is one [`RunState::apply`] of
//! [`event_by_seq`]; stepping back rebuilds with `state_at(run, Some(previous_id))`.
//!
//! `cutover replay` itself (src/tui/replay.rs) places events with [`index_after`] and reads them a
//! chunk at a time with [`envelopes_between`].
//!
//! [`RunState::apply`]: crate::state::RunState::apply

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::text::{at as fmt_at, scrub};
use crate::journal::{JournalError, JournalReader};
use crate::model::{Envelope, RunId};
use crate::state::wording::{self, Class, Form};

pub use crate::state::wording::LandmarkKind;

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Landmark {
    pub event_id: i64,
    pub seq: u64,
    pub at: String,
    pub kind: LandmarkKind,
    /// One line for a timeline list (already scrubbed of credentials).
    pub label: String,
}

/// The landmark an envelope is, if it is one (the replay checks events a watched run appends).
/// Its label is the event's wording (see [`crate::state::wording`]), as headless text says it.
pub fn landmark(env: &Envelope) -> Option<Landmark> {
    let w = wording::describe(env, None, Form::Line);
    let Class::Landmark(kind) = w.class else {
        return None;
    };
    Some(Landmark {
        event_id: env.id,
        seq: env.seq,
        at: fmt_at(env.at),
        kind,
        label: scrub(&w.sentence()),
    })
}

pub use crate::journal::IndexEntry;

/// The run's events with `seq > after_seq` as (id, seq, at), in order (see
/// [`JournalReader::index_after`]).
pub fn index_after(
    reader: &JournalReader,
    run: &RunId,
    after_seq: u64,
) -> Result<Vec<IndexEntry>, JournalError> {
    reader.index_after(run, after_seq)
}

/// The run's envelopes with `from_seq <= seq <= to_seq`, in order.
pub fn envelopes_between(
    reader: &JournalReader,
    run: &RunId,
    from_seq: u64,
    to_seq: u64,
) -> Result<Vec<Envelope>, JournalError> {
    reader.envelopes_between(run, from_seq, to_seq)
}

/// The kinds of event that can be a landmark.
const LANDMARK_KINDS: &[&str] = &[
    "operator_decision",
    "approval_refused",
    "awaiting_operator",
    "gate_evaluated",
    "step_finished",
    "alert",
    "run_resumed",
    "run_finished",
];

/// Every landmark of a run, in order. Reads only the rows whose `kind` can be one (a scan of the
/// table, decoding a small fraction of it).
pub fn landmarks(reader: &JournalReader, run: &RunId) -> Result<Vec<Landmark>, JournalError> {
    Ok(reader
        .envelopes_of_kinds(run, LANDMARK_KINDS)?
        .iter()
        .filter_map(landmark)
        .collect())
}

/// An envelope of `run` from its row's columns (the watch decodes the rows it checked itself).
pub fn decode(run: &RunId, id: i64, seq: u64, at: &str, payload: &str) -> Result<Envelope, JournalError> {
    crate::journal::decode_row(run, id, seq, at, payload)
}

/// The run's envelope at `seq` (1-based), if the run has that many.
pub fn event_by_seq(reader: &JournalReader, run: &RunId, seq: u64) -> Result<Option<Envelope>, JournalError> {
    reader.envelope_by_seq(run, seq)
}

/// The run's first event at or after `when` as (event id, seq); `None` past the end.
pub fn event_at_or_after(
    reader: &JournalReader,
    run: &RunId,
    when: DateTime<Utc>,
) -> Result<Option<(i64, u64)>, JournalError> {
    reader.event_at_or_after(run, when)
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
