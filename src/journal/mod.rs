//! The journal: an append-only, hash-chained SQLite record of every run in one file.
//!
//! - [`Journal`] opens (or creates, mode 0600) a journal and starts its writer thread; clone its
//!   [`JournalWriter`] into whatever appends. [`JournalWriter::append`] returns only after the event
//!   is committed with `synchronous=FULL` (journal first: the engine acts after it returns), and
//!   hands back the exact [`Envelope`](crate::model::Envelope) it wrote, for the reducer.
//!   [`JournalWriter::append_batched`] is for high-rate events; they are committed with the next
//!   durable append or within the batch window (50 ms). [`JournalWriter::append_committed`] returns once
//!   the event is committed but before its fsync (for events that precede no side effect: a `wait`
//!   step's); the next synced commit, or the writer within the batch window, fsyncs it (WAL order: no
//!   synced event can follow an unsynced one). The writer group-commits: everything queued
//!   goes into one transaction, then every waiter is acknowledged.
//! - [`JournalReader`] opens a journal read-only (also while another process writes) to list runs,
//!   stream a run's envelopes, rebuild the state at any event, and [`verify`](JournalReader::verify).
//! - [`lease`] keeps one driver at a time; [`redact`] keeps secrets out.
//!
//! # Schema
//! `events(id, run_id, seq, at, kind, payload, prev_hash, hash)`, `chain_head(id = 1, last_id,
//! hash)`, `runs(..)` (an index derivable from the events) and `lease(..)`; versioned migrations in
//! `src/journal/migrations/NNNN_*.sql`, applied in order and recorded in `PRAGMA user_version`.
//! `id` is contiguous from 1 over the whole file; `seq` is contiguous from 1 within a run; `at` is
//! RFC 3339 UTC with milliseconds and a `Z` (`2026-11-28T03:12:45.120Z`); `kind` is the event's
//! snake_case tag; `payload` is the event in canonical JSON (it includes the `kind` tag).
//!
//! # Hash rule (for auditors)
//! One chain runs through every row of the file, across runs, in `id` order:
//!
//! ```text
//! canonical = canonical JSON of {"at": at, "kind": kind, "payload": <payload as JSON>, "run_id": run_id, "seq": seq}
//! hash      = lowercase_hex( sha256( unhex(prev_hash) || utf8(canonical) ) )
//! ```
//!
//! where `unhex(prev_hash)` is the 32 raw bytes of the previous row's `hash` (for the first row,
//! 64 `0`s: 32 zero bytes). Canonical JSON is compact (no whitespace), with object keys sorted by
//! their UTF-8 bytes at every level, strings escaped as serde_json does (`\"`, `\\`, `\b`, `\f`,
//! `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else raw UTF-8) and numbers
//! as serde_json prints them. Because the stored `payload` is already canonical, `canonical` is
//! the text `{"at":"<at>","kind":"<kind>","payload":<payload>,"run_id":"<run_id>","seq":<seq>}`.
//! A row verifies when its `prev_hash` equals the previous row's `hash`, its `hash` is the one
//! recomputed, its `id` follows the previous `id`, its `seq` follows its run's previous `seq`; and
//! the journal verifies when `chain_head` names the last row and its hash. Editing, deleting,
//! inserting or reordering rows, or cutting the tail, breaks one of these; [`VerifyFailure`] names
//! the first row that does not verify. (Someone who rewrites the whole chain and the head can only
//! be caught against a head hash recorded elsewhere, or a signature they cannot make: see
//! [`checkpoint`] for the signed checkpoints and the anchors `verify` checks.)

pub mod canon;
pub mod chain;
pub mod checkpoint;
pub mod decode;
pub mod lake_scratch;
pub mod lease;
mod queries;
pub mod reader;
pub mod redact;
pub mod scratch;
mod sequence;
mod store;
pub mod writer;

pub use lease::{Lease, LeaseError, LeaseHolder, LeaseInfo};
pub use queries::{IndexEntry, RawRow, decode_row};
pub use reader::{EventIter, JournalReader, RunSummary, VerifiedFold, VerifyFailure, VerifyReport};
pub use redact::Redactor;
pub use store::open_private;
pub use writer::{Clock, Journal, JournalOptions, JournalWriter};

/// Errors of the journal layer. `Clone` so that one failed commit can be reported to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {message}")]
    Open { path: String, message: String },
    #[error("journal {path} already exists")]
    AlreadyExists { path: String },
    #[error("journal schema version {found} is newer than this cutover understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("journal database error: {0}")]
    Db(String),
    #[error("journal write failed; nothing more can be journaled in this process: {0}")]
    WriteFailed(String),
    #[error("journal writer has stopped")]
    Closed,
    #[error("journal event could not be encoded: {0}")]
    Encode(String),
    #[error("journal row {id} is corrupt: {message}")]
    Corrupt { id: i64, message: String },
    /// The lease this writer was bound to is no longer in the file (another driver took the journal over):
    /// the append was refused inside its transaction.
    #[error(
        "the journal lease was taken over by another driver; nothing more is journaled from this process"
    )]
    LeaseLost,
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> Self {
        JournalError::Db(e.to_string())
    }
}
