//! The SQLite side of the writer: file creation (0600), pragmas, migrations, and the one
//! transaction that appends a batch and moves the chain head.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::JournalError;
use super::canon::to_canonical_json;
use super::chain::{canonical_json, format_at};
use super::redact::Redactor;
use super::sequence::{Chain, Placed};
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
        })
    }

    /// Append `items` in one transaction (ids, seqs, times and hashes assigned here) and move the
    /// chain head; returns the rows written (`items` and the checkpoints the writer added). On error
    /// nothing was written.
    pub(crate) fn append(
        &mut self,
        items: Vec<Encoded>,
        now: &dyn Fn() -> DateTime<Utc>,
    ) -> Result<Written, JournalError> {
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
    ) -> Result<Written, JournalError> {
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
        let (last_id, head_hash): (i64, String) =
            tx.query_row("SELECT last_id, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        if last_id != self.head_id {
            // Someone else appended (or this is the first batch): forget cached seqs.
            self.seqs.clear();
        }
        // The cached seqs move into the batch and come back with it; a batch that fails leaves the
        // cache empty, and the next batch reads each run's last seq from the file again.
        let mut chain = Chain::new(std::mem::take(&mut self.seqs), self.last_at, last_id, head_hash);
        // What each item became, in item order, and the checkpoint rows added after the items they
        // sign (by index).
        let mut placed: Vec<Placed> = Vec::with_capacity(items.len());
        let mut added: Vec<(usize, Encoded, Placed)> = Vec::new();
        {
            let mut insert = Inserter::new(&tx, items.len())?;
            let mut max_seq =
                tx.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?1")?;
            let mut last_seq = |run: &RunId| -> Result<u64, JournalError> {
                let s: i64 = max_seq.query_row([&run.0], |r| r.get(0))?;
                Ok(u64::try_from(s).unwrap_or(0))
            };
            let mut start = 0;
            while start < items.len() {
                // A segment: the items up to and including the next one a checkpoint is due after.
                // They chain on one another alone, so they are numbered and timed first and hashed
                // beside their inserts (see `sequence`).
                let mut plans = Vec::new();
                let mut due = None;
                for item in &items[start..] {
                    plans.push(chain.plan(&item.run_id, now, &mut last_seq)?);
                    due = self.checkpoints.as_mut().and_then(|cp| cp.due(&item.event));
                    if due.is_some() {
                        break;
                    }
                }
                let segment = &items[start..start + plans.len()];
                start += plans.len();
                chain.write(segment, &plans, &mut placed, |row, item| {
                    insert.push(row, &segment[row.index])?;
                    if indexed(&item.event) {
                        // `runs` refers to the row: it goes in first.
                        insert.flush()?;
                        index_run(&tx, row.id, &item.run_id, &item.event, row.at)?;
                    }
                    Ok(())
                })?;
                insert.flush()?;
                // The checkpoint due after the segment's last item, signed over its hash, is the next row.
                let (Some(why), Some(cp)) = (due, self.checkpoints.as_mut()) else {
                    continue;
                };
                let (signed, at) = (placed[start - 1], chain.last_at_text().to_owned());
                let run_id = &items[start - 1].run_id;
                let Some(event) = cp.checkpoint(run_id, signed.id, &at, chain.head_hex(), why) else {
                    continue;
                };
                let payload = to_canonical_json(&event).map_err(|e| JournalError::Encode(e.to_string()))?;
                let row = Encoded {
                    run_id: run_id.clone(),
                    event,
                    payload,
                };
                let plan = chain.plan(&row.run_id, now, &mut last_seq)?;
                let mut one = Vec::with_capacity(1);
                chain.write(std::slice::from_ref(&row), &[plan], &mut one, |r, item| {
                    insert.insert_now(r, item)
                })?;
                // A checkpoint row is counted too (it restarts a local signer's count).
                cp.due(&row.event);
                added.push((start - 1, row, one[0]));
            }
        }
        let last_id = chain.last_id();
        for (run, id) in chain.touched() {
            tx.execute(
                "UPDATE runs SET last_event_id = ?1 WHERE run_id = ?2",
                params![id, run.0],
            )?;
        }
        tx.execute(
            "UPDATE chain_head SET last_id = ?1, hash = ?2 WHERE id = 1",
            params![last_id, chain.head_hex()],
        )?;
        tx.commit()?;
        if let Some(cp) = self.checkpoints.as_ref() {
            let made: Vec<(RunId, &Event)> = items
                .iter()
                .chain(added.iter().map(|(_, row, _)| row))
                .filter(|row| matches!(row.event, Event::Checkpoint { .. }))
                .map(|row| (row.run_id.clone(), &row.event))
                .collect();
            cp.witness(&made);
        }
        let (seqs, last_at) = chain.finish();
        self.seqs = seqs;
        self.head_id = last_id;
        self.last_at = last_at;
        Ok(Written { items, placed, added })
    }
}

/// The rows one transaction wrote: the items appended and the checkpoint rows the writer added,
/// each after the item (by index) it signs. Envelopes are made of them only for those who hear of
/// them ([`Written::envelopes`]): a batch nobody waits for or listens to is discarded as it is.
#[derive(Default)]
pub(crate) struct Written {
    items: Vec<Encoded>,
    placed: Vec<Placed>,
    added: Vec<(usize, Encoded, Placed)>,
}

impl Written {
    pub(crate) fn len(&self) -> usize {
        self.items.len() + self.added.len()
    }

    /// Every row as an envelope, in journal order, each with whether it is one of the items (the
    /// others are checkpoints the writer added). The payloads go to `payloads`, to be freed elsewhere.
    pub(crate) fn envelopes(self, payloads: &mut Vec<String>) -> Envelopes<'_> {
        Envelopes {
            items: self.items.into_iter().zip(self.placed).enumerate(),
            added: self.added.into_iter().peekable(),
            after: None,
            payloads,
        }
    }
}

/// See [`Written::envelopes`].
pub(crate) struct Envelopes<'a> {
    items: std::iter::Enumerate<std::iter::Zip<std::vec::IntoIter<Encoded>, std::vec::IntoIter<Placed>>>,
    added: std::iter::Peekable<std::vec::IntoIter<(usize, Encoded, Placed)>>,
    /// The index of the last item given out.
    after: Option<usize>,
    payloads: &'a mut Vec<String>,
}

impl Iterator for Envelopes<'_> {
    type Item = (Envelope, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(i) = self.after
            && let Some((_, row, p)) = self.added.next_if(|(after, _, _)| *after == i)
        {
            return Some((self.envelope(row, p), false));
        }
        let (i, (item, p)) = self.items.next()?;
        self.after = Some(i);
        Some((self.envelope(item, p), true))
    }
}

impl Envelopes<'_> {
    fn envelope(&mut self, row: Encoded, p: Placed) -> Envelope {
        let Encoded {
            run_id,
            event,
            payload,
        } = row;
        self.payloads.push(payload);
        Envelope {
            id: p.id,
            seq: p.seq,
            at: p.at,
            run_id,
            event,
        }
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
        let mut payloads = Vec::new();
        Ok(written.envelopes(&mut payloads).next().map(|(e, _)| e))
    }
}

/// In a large batch, rows are inserted this many to a statement: one statement of many rows costs
/// SQLite less per row (one step, one program run, one reset) than as many statements of one row.
const ROWS_PER_INSERT: usize = 32;

/// Batches of at least this many rows insert [`ROWS_PER_INSERT`] to a statement. Smaller ones (group
/// commits of durable appends) insert a row per statement: measured with 64 and 256 concurrent
/// durable appenders, many-row statements made them 20-30% slower (and large batches 15-20% faster).
const BULK_FROM: usize = 512;

const INSERT_COLUMNS: &str =
    "INSERT INTO events (id, run_id, seq, at, kind, payload, prev_hash, hash) VALUES ";

/// The `events` inserts of one transaction. In a bulk batch, rows are held until [`ROWS_PER_INSERT`]
/// of them go in one statement, or until [`Inserter::flush`] (the end of a segment, or a row that
/// another table refers to), which inserts the rest one statement each; otherwise each row goes in
/// as it comes.
struct Inserter<'c, 'i> {
    /// The many-row statement, in a bulk batch.
    many: Option<rusqlite::CachedStatement<'c>>,
    one: rusqlite::CachedStatement<'c>,
    /// The rows held, and how many of `held` are in use (the strings are reused).
    held: Vec<Held<'i>>,
    len: usize,
}

struct Held<'i> {
    id: i64,
    seq: i64,
    at: std::sync::Arc<str>,
    item: Option<&'i Encoded>,
    prev_hash: String,
    hash: String,
}

impl<'c, 'i> Inserter<'c, 'i> {
    fn new(tx: &'c rusqlite::Transaction<'_>, rows: usize) -> Result<Self, JournalError> {
        static MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; ROWS_PER_INSERT];
            format!("{INSERT_COLUMNS}{}", rows.join(", "))
        });
        static ONE: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("{INSERT_COLUMNS}(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
        Ok(Self {
            many: if rows >= BULK_FROM {
                Some(tx.prepare_cached(&MANY)?)
            } else {
                None
            },
            one: tx.prepare_cached(&ONE)?,
            held: Vec::with_capacity(ROWS_PER_INSERT),
            len: 0,
        })
    }

    fn push(&mut self, row: &super::sequence::Row<'_>, item: &'i Encoded) -> Result<(), JournalError> {
        let seq = row.seq_i64()?;
        if self.len == self.held.len() {
            self.held.push(Held {
                id: 0,
                seq: 0,
                at: std::sync::Arc::from(""),
                item: None,
                prev_hash: String::with_capacity(64),
                hash: String::with_capacity(64),
            });
        }
        let h = &mut self.held[self.len];
        h.id = row.id;
        h.seq = seq;
        h.at = std::sync::Arc::clone(row.at);
        h.item = Some(item);
        h.prev_hash.clear();
        h.prev_hash.push_str(row.prev_hash);
        h.hash.clear();
        h.hash.push_str(row.hash);
        self.len += 1;
        let Some(many) = self.many.as_mut() else {
            return self.flush();
        };
        if self.len == ROWS_PER_INSERT {
            bind_rows(many, &self.held[..self.len])?;
            many.raw_execute()?;
            self.len = 0;
        }
        Ok(())
    }

    /// Insert every row held, then `row` (which is not held: its item need not outlive the call).
    fn insert_now(&mut self, row: &super::sequence::Row<'_>, item: &Encoded) -> Result<(), JournalError> {
        self.flush()?;
        let one = &mut self.one;
        one.raw_bind_parameter(1, row.id)?;
        one.raw_bind_parameter(2, item.run_id.0.as_str())?;
        one.raw_bind_parameter(3, row.seq_i64()?)?;
        one.raw_bind_parameter(4, &**row.at)?;
        one.raw_bind_parameter(5, item.event.kind())?;
        one.raw_bind_parameter(6, item.payload.as_str())?;
        one.raw_bind_parameter(7, row.prev_hash)?;
        one.raw_bind_parameter(8, row.hash)?;
        one.raw_execute()?;
        Ok(())
    }

    /// Insert every row held.
    fn flush(&mut self) -> Result<(), JournalError> {
        for h in &self.held[..self.len] {
            bind_rows(&mut self.one, std::slice::from_ref(h))?;
            self.one.raw_execute()?;
        }
        self.len = 0;
        Ok(())
    }
}

fn bind_rows(stmt: &mut rusqlite::Statement<'_>, rows: &[Held<'_>]) -> Result<(), JournalError> {
    let mut i = 0;
    for h in rows {
        let Some(item) = h.item else {
            return Err(JournalError::Encode("a held row lost its event".into()));
        };
        stmt.raw_bind_parameter(i + 1, h.id)?;
        stmt.raw_bind_parameter(i + 2, item.run_id.0.as_str())?;
        stmt.raw_bind_parameter(i + 3, h.seq)?;
        stmt.raw_bind_parameter(i + 4, &*h.at)?;
        stmt.raw_bind_parameter(i + 5, item.event.kind())?;
        stmt.raw_bind_parameter(i + 6, item.payload.as_str())?;
        stmt.raw_bind_parameter(i + 7, h.prev_hash.as_str())?;
        stmt.raw_bind_parameter(i + 8, h.hash.as_str())?;
        i += 8;
    }
    Ok(())
}

/// Whether writing `event` also writes the `runs` index (see [`index_run`]).
fn indexed(event: &Event) -> bool {
    matches!(event, Event::RunStarted { .. } | Event::RunFinished { .. })
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
