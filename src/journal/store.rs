//! The SQLite side of the writer: file creation (0600), pragmas, migrations, and the one
//! transaction that appends a batch and moves the chain head.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::JournalError;
use super::canon::to_canonical_json;
use super::chain::{
    canonical_envelope_into, canonical_json, chain_hash, envelope_digest, format_at, hex_lower_into,
};
use super::redact::Redactor;
use crate::model::{Envelope, Event, RunId};

/// Migrations in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

fn open_err(path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Opens `path` for writing so that only its owner can read it: created with mode 0600, an existing
/// file tightened to 0600 through the open descriptor; appended to, or truncated when `append` is false.
/// A symbolic link is refused (`O_NOFOLLOW`): a link planted beside a journal must not redirect the write
/// or the chmod to its target. For the files beside a journal (the console log, the simulator's record
/// and log), which name hosts, maps and steps.
pub fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true);
    if append {
        opts.append(true);
    } else {
        // Truncated below, once the descriptor is known to be a regular file of ours.
        opts.write(true);
    }
    no_follow(&mut opts);
    let file = opts.open(path).map_err(|e| link_refused(path, e))?;
    tighten(&file)?;
    if !append {
        file.set_len(0)?;
    }
    Ok(file)
}

/// `O_NOFOLLOW` and mode 0600 for a file about to be created.
fn no_follow(opts: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
}

/// Mode 0600 through the descriptor (never through the path), after checking it is a regular file.
fn tighten(file: &std::fs::File) -> std::io::Result<()> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// `ELOOP` from `O_NOFOLLOW` in words.
fn link_refused(path: &Path, e: std::io::Error) -> std::io::Error {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ELOOP) {
        return std::io::Error::other(format!(
            "{} is a symbolic link; refused (a journal and the files beside it are never followed through links)",
            path.display()
        ));
    }
    let _ = path;
    e
}

/// SQLite's side files of a journal: a link planted under one of these names would be followed by SQLite.
const SIDE_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Refuses a journal whose side files are symbolic links.
fn check_side_files(path: &Path) -> Result<(), JournalError> {
    for suffix in SIDE_SUFFIXES {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if std::fs::symlink_metadata(&side).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(open_err(
                &side,
                "is a symbolic link; refused (a journal's files are never followed through links)",
            ));
        }
    }
    Ok(())
}

/// An existing SQLite file that is not a cutover journal (no `user_version`, but tables of its own) is
/// refused before anything touches it: not converted to WAL, not chmodded, not migrated.
fn refuse_foreign(path: &Path) -> Result<(), JournalError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        return Err(open_err(
            path,
            "is a symbolic link; refused (a journal is never followed through links)",
        ));
    }
    if meta.len() == 0 {
        return Ok(());
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    let found = user_version(&conn).map_err(|e| open_err(path, format!("not a cutover journal: {e}")))?;
    let ours: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'chain_head', 'runs', 'lease')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| open_err(path, format!("not a cutover journal: {e}")))?;
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| open_err(path, e))?;
    if found == 0 && tables > 0 || found > 0 && ours < 4 {
        return Err(open_err(
            path,
            "is an SQLite file but not a cutover journal; left untouched",
        ));
    }
    Ok(())
}

/// Create the file with mode 0600 before SQLite writes a byte to it (SQLite gives the -wal and
/// -shm files the database's mode). An existing file is tightened to 0600 through its descriptor; a
/// symbolic link is refused.
fn ensure_file(path: &Path, must_be_new: bool) -> Result<(), JournalError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if must_be_new {
        opts.create_new(true);
    } else {
        opts.create(true);
    }
    no_follow(&mut opts);
    let file = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(JournalError::AlreadyExists {
                path: path.display().to_string(),
            });
        }
        Err(e) => return Err(open_err(path, link_refused(path, e))),
    };
    tighten(&file).map_err(|e| open_err(path, e))
}

/// Open a journal for writing: WAL, `synchronous=FULL`, foreign keys, migrations applied. A symbolic link
/// (the journal or a side file) and an SQLite file that is not a journal are refused untouched.
pub(crate) fn open_rw(path: &Path, must_be_new: bool) -> Result<Connection, JournalError> {
    check_side_files(path)?;
    if !must_be_new {
        refuse_foreign(path)?;
    }
    ensure_file(path, must_be_new)?;
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_err(path, format!("could not switch to WAL (got {mode})")));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// The schema version this build writes.
pub(crate) fn known_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64, JournalError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Apply every migration newer than `user_version`, each in its own transaction with its version
/// bump, so a crash mid-migration leaves the previous version intact. Idempotent.
fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    let found = user_version(conn)?;
    if found > known_version() {
        return Err(JournalError::SchemaTooNew {
            found,
            known: known_version(),
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX))?;
        tx.commit()?;
    }
    Ok(())
}

/// An event ready to be written: redacted, with its canonical payload.
pub(crate) struct Encoded {
    pub run_id: RunId,
    pub event: Event,
    pub payload: String,
}

/// Redact and canonicalise an event. When redaction changed anything, the returned event is the
/// redacted one, so the caller's reducer sees exactly what was written.
///
/// Fast path (nearly every event): canonical JSON written straight from the event, then one scan
/// of that text proves there is nothing to mask ([`Redactor::may_redact_canonical`]); the text is
/// then exactly what the `Value` path below would produce. Otherwise (something may need masking,
/// or the writer refused the value) the `Value` path masks every string and re-serialises.
pub(crate) fn encode(redactor: &Redactor, run_id: RunId, event: Event) -> Result<Encoded, JournalError> {
    let run_id = match redactor.redact_str(&run_id.0) {
        Some(r) => RunId(r),
        None => run_id,
    };
    if let Ok(payload) = to_canonical_json(&event)
        && !redactor.may_redact_canonical(&payload)
    {
        return Ok(Encoded {
            run_id,
            event,
            payload,
        });
    }
    let mut value = serde_json::to_value(&event).map_err(|e| JournalError::Encode(e.to_string()))?;
    let event = if redactor.redact_value(&mut value) {
        serde_json::from_value(value.clone())
            .map_err(|e| JournalError::Encode(format!("redacted {} no longer decodes: {e}", event.kind())))?
    } else {
        event
    };
    Ok(Encoded {
        run_id,
        event,
        payload: canonical_json(&value),
    })
}

/// The writer's connection plus what it remembers between batches.
pub(crate) struct Store {
    conn: Connection,
    /// Last seq per run, valid while `head_id` still matches the file's chain head.
    seqs: HashMap<RunId, u64>,
    head_id: i64,
    last_at: DateTime<Utc>,
    /// The lease token this writer appends under ([`super::JournalWriter::bind_lease`]); every append checks
    /// it inside its transaction.
    pub(crate) lease: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Signed checkpoints of the chain head, once a run set them up.
    pub(crate) checkpoints: Option<Box<super::checkpoint::Checkpointer>>,
    /// Whether the connection is at `synchronous=FULL` (as opened).
    full_sync: bool,
    /// The payloads of the rows written since the writer last took them: freed off the writer
    /// thread (see `writer::Spent`), where dropping them one by one cost as much as hashing them.
    pub(crate) spent: Vec<String>,
}

impl Store {
    pub(crate) fn new(conn: Connection) -> Result<Self, JournalError> {
        let last_at = conn
            .query_row("SELECT at FROM events ORDER BY id DESC LIMIT 1", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc));
        Ok(Self {
            conn,
            seqs: HashMap::new(),
            head_id: -1,
            last_at,
            lease: std::sync::Arc::default(),
            checkpoints: None,
            full_sync: true,
            spent: Vec::new(),
        })
    }

    /// Append `items` in one transaction (ids, seqs, times and hashes assigned here) and move the
    /// chain head; returns every row written in order, each with whether it is one of `items` (the
    /// others are the checkpoints the writer added). On error nothing was written.
    pub(crate) fn append(
        &mut self,
        items: Vec<Encoded>,
        now: &dyn Fn() -> DateTime<Utc>,
    ) -> Result<Vec<(Envelope, bool)>, JournalError> {
        let since = self.checkpoints.as_ref().map(|c| c.since);
        let written = self.append_inner(items, now);
        // Nothing was written: count again from where the batch started.
        if let (Err(_), Some(cp), Some(since)) = (&written, self.checkpoints.as_mut(), since) {
            cp.since = since;
        }
        written
    }

    fn append_inner(
        &mut self,
        items: Vec<Encoded>,
        now: &dyn Fn() -> DateTime<Utc>,
    ) -> Result<Vec<(Envelope, bool)>, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let bound = self
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(token) = bound {
            // Under the write lock: a driver that lost the lease (taken over while it was frozen) appends
            // nothing, whatever its heartbeat thread has noticed yet.
            let held: Option<String> = tx
                .query_row("SELECT token FROM lease WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if held.as_deref() != Some(token.as_str()) {
                return Err(JournalError::LeaseLost);
            }
        }
        let (mut last_id, head_hash): (i64, String) =
            tx.query_row("SELECT last_id, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if last_id != self.head_id {
            // Someone else appended (or this is the first batch): forget cached seqs.
            self.seqs.clear();
        }
        let mut seqs = self.seqs.clone();
        let mut last_at = self.last_at;
        let mut out = Vec::with_capacity(items.len());
        let mut touched: Vec<(RunId, i64)> = Vec::new();
        // The previous hash as bytes (what the rule hashes), `None` when the head is not 64 hex
        // digits: that row then hashes the head's text, as `chain_hash` does.
        let mut prev_raw: Option<[u8; 32]> = {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(&head_hash, &mut raw).ok().map(|()| raw)
        };
        // The previous row's hash as hex, once a row of this batch has been hashed (before that,
        // the head's text): two stack buffers, so no row allocates its hashes.
        let mut prev_hex = [0u8; 64];
        let mut hex_buf = [0u8; 64];
        let mut hashed_one = false;
        let mut canonical = String::with_capacity(1024);
        // `at` changes at most once per millisecond: format it only then.
        let mut at = String::new();
        let mut at_ms = i64::MIN;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, run_id, seq, at, kind, payload, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut max_seq =
                tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?1")?;
            let mut items = items.into_iter();
            // A checkpoint the previous row made due: written next, before the following item.
            let mut checkpoint: Option<Encoded> = None;
            loop {
                let (item, is_item) = match checkpoint.take() {
                    Some(c) => (c, false),
                    None => match items.next() {
                        Some(i) => (i, true),
                        None => break,
                    },
                };
                let seq = match seqs.get_mut(&item.run_id) {
                    Some(s) => {
                        *s += 1;
                        *s
                    }
                    None => {
                        let s: i64 = max_seq.query_row([&item.run_id.0], |r| r.get(0))?;
                        let s = u64::try_from(s).unwrap_or(0) + 1;
                        seqs.insert(item.run_id.clone(), s);
                        s
                    }
                };
                let t = now();
                let t = DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t);
                last_at = last_at.max(t);
                if last_at.timestamp_millis() != at_ms || at.is_empty() {
                    at = format_at(last_at);
                    at_ms = last_at.timestamp_millis();
                }
                let kind = item.event.kind();
                let prev_hash: &str = if hashed_one {
                    std::str::from_utf8(&prev_hex).unwrap_or_default()
                } else {
                    &head_hash
                };
                let raw = match prev_raw {
                    Some(p) => envelope_digest(&p, &item.run_id.0, seq, &at, kind, &item.payload),
                    None => {
                        canonical_envelope_into(
                            &mut canonical,
                            &item.run_id.0,
                            seq,
                            &at,
                            kind,
                            &item.payload,
                        );
                        let h = chain_hash(prev_hash, &canonical);
                        let mut d = [0u8; 32];
                        hex::decode_to_slice(&h, &mut d).map_err(|e| JournalError::Encode(e.to_string()))?;
                        d
                    }
                };
                let hash = hex_lower_into(&raw, &mut hex_buf);
                prev_raw = Some(raw);
                last_id += 1;
                let seq_i = i64::try_from(seq).map_err(|e| JournalError::Encode(e.to_string()))?;
                insert.execute(params![
                    last_id,
                    item.run_id.0,
                    seq_i,
                    at,
                    kind,
                    item.payload,
                    prev_hash,
                    hash
                ])?;
                index_run(&tx, last_id, &item.run_id, &item.event, &at)?;
                match touched.iter_mut().find(|(r, _)| *r == item.run_id) {
                    Some(t) => t.1 = last_id,
                    None => touched.push((item.run_id.clone(), last_id)),
                }
                if let Some(cp) = self.checkpoints.as_mut()
                    && let Some(why) = cp.due(&item.event)
                    && let Some(event) = cp.checkpoint(&item.run_id, last_id, &at, hash, why)
                {
                    let payload =
                        to_canonical_json(&event).map_err(|e| JournalError::Encode(e.to_string()))?;
                    let run_id = item.run_id.clone();
                    checkpoint = Some(Encoded {
                        run_id,
                        event,
                        payload,
                    });
                }
                prev_hex = hex_buf;
                hashed_one = true;
                out.push((
                    Envelope {
                        id: last_id,
                        seq,
                        at: last_at,
                        run_id: item.run_id,
                        event: item.event,
                    },
                    is_item,
                ));
                self.spent.push(item.payload);
            }
        }
        let prev_hash: &str = if hashed_one {
            std::str::from_utf8(&prev_hex).unwrap_or_default()
        } else {
            &head_hash
        };
        for (run, id) in &touched {
            tx.execute(
                "UPDATE runs SET last_event_id = ?1 WHERE run_id = ?2",
                params![id, run.0],
            )?;
        }
        tx.execute(
            "UPDATE chain_head SET last_id = ?1, hash = ?2 WHERE id = 1",
            params![last_id, prev_hash],
        )?;
        tx.commit()?;
        if let Some(cp) = self.checkpoints.as_ref() {
            let made: Vec<(RunId, &Event)> = out
                .iter()
                .filter(|(e, _)| matches!(e.event, Event::Checkpoint { .. }))
                .map(|(e, _)| (e.run_id.clone(), &e.event))
                .collect();
            cp.witness(&made);
        }
        self.seqs = seqs;
        self.head_id = last_id;
        self.last_at = last_at;
        Ok(out)
    }
}

impl Store {
    /// `synchronous=FULL` (every commit fsyncs the WAL) or `NORMAL` (a commit only writes it; the next
    /// FULL commit or checkpoint fsyncs everything before it) for the next commits.
    pub(crate) fn set_sync(&mut self, full: bool) -> Result<(), JournalError> {
        if self.full_sync != full {
            self.conn.execute_batch(if full {
                "PRAGMA synchronous=FULL"
            } else {
                "PRAGMA synchronous=NORMAL"
            })?;
            self.full_sync = full;
        }
        Ok(())
    }

    /// Fsync what was committed without it: a passive WAL checkpoint syncs the WAL before it copies
    /// anything (SQLite does so at `synchronous=NORMAL` and above).
    pub(crate) fn sync_wal(&mut self) -> Result<(), JournalError> {
        self.set_sync(true)?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// A checkpoint of the chain head's row, in a transaction of its own (through [`Store::append`]:
    /// the lease is checked, the chain extended, the witnesses told). Nothing when no checkpoints are
    /// set up, the journal is empty, or the head row is a checkpoint already. With a vault signing, the
    /// row is the last one that is not a checkpoint, and nothing is done when the vault was asked for it.
    pub(crate) fn checkpoint_head(
        &mut self,
        why: &'static str,
        now: &dyn Fn() -> DateTime<Utc>,
    ) -> Result<Option<Envelope>, JournalError> {
        let Some(vault) = self
            .checkpoints
            .as_ref()
            .map(|c| matches!(c.signer, super::checkpoint::Signer::Vault { .. }))
        else {
            return Ok(None);
        };
        // A vault's checkpoints land after the rows they sign: one at the head may sign an earlier
        // row, so the row to sign is the last one that is not a checkpoint.
        let sql = if vault {
            "SELECT id, run_id, at, hash, kind FROM events WHERE kind <> 'checkpoint' ORDER BY id DESC LIMIT 1"
        } else {
            "SELECT e.id, e.run_id, e.at, e.hash, e.kind FROM chain_head h JOIN events e ON e.id = h.last_id WHERE h.id = 1"
        };
        let head: Option<(i64, String, String, String, String)> = self
            .conn
            .query_row(sql, [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((id, run_id, at, hash, kind)) = head else {
            return Ok(None);
        };
        let Some(cp) = self.checkpoints.as_mut() else {
            return Ok(None);
        };
        // The head is signed already, or a vault was asked to sign it.
        if kind == "checkpoint" || cp.requested >= id {
            return Ok(None);
        }
        let run_id = RunId(run_id);
        let Some(event) = cp.checkpoint(&run_id, id, &at, &hash, why) else {
            return Ok(None);
        };
        let payload = to_canonical_json(&event).map_err(|e| JournalError::Encode(e.to_string()))?;
        let written = self.append(
            vec![Encoded {
                run_id,
                event,
                payload,
            }],
            now,
        )?;
        Ok(written.into_iter().next().map(|(e, _)| e))
    }
}

fn index_run(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    run_id: &RunId,
    event: &Event,
    at: &str,
) -> Result<(), JournalError> {
    match event {
        Event::RunStarted {
            runbook,
            operator,
            host,
            started_at,
            ..
        } => {
            tx.execute(
                    "INSERT OR IGNORE INTO runs (run_id, runbook, version, runbook_sha256, operator, host, started_at, first_event_id, last_event_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                    params![run_id.0, runbook.name, runbook.version, runbook.sha256, operator, host, format_at(*started_at), id],
                )?;
        }
        Event::RunFinished { outcome } => {
            let outcome = serde_json::to_string(outcome).map_err(|e| JournalError::Encode(e.to_string()))?;
            tx.execute(
                "UPDATE runs SET finished_at = ?1, outcome = ?2 WHERE run_id = ?3",
                params![at, outcome, run_id.0],
            )?;
        }
        _ => {}
    }
    Ok(())
}
