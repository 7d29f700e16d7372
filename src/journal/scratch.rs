//! A scratch SQLite database for one row-level comparison (`reconcile`): both sides' `(key, hash of the
//! compared values, the values)` stream in a page at a time, and one query per class finds the keys missing on
//! the target, extra on it, and different. It lives beside the journal (created 0600 without following links,
//! removed on drop) and is never the journal itself. Memory holds one page.
//!
//! **Resumable.** A read is planned as ranges per side (the F&O set whole; Dataverse split by `createdon`), and
//! each page goes in with the range's next link in one transaction (rollback-safe: WAL), so a process killed
//! at any point leaves a file that says exactly which pages are in. Opened again for the same comparison (the
//! same fingerprint: run, step, map, company, sets, filters, fields), it is kept and the read goes on from
//! each range's link; anything else (another comparison, a damaged file) starts afresh. The value hash is
//! FNV-1a, fixed, so a file written by one build compares equal under the next.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::connectors::parse::{KeyedRow, value_text};
use crate::model::event::{FieldDifference, RowClass, RowDifference};

/// Which side a page is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Side::Source => "src",
            Side::Target => "tgt",
        }
    }
    /// The name stored in the ranges table and the journal.
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "source" => Some(Side::Source),
            "target" => Some(Side::Target),
            _ => None,
        }
    }
}

/// The counts of one comparison.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClassCounts {
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
}

/// One range of one side's read, as planned: its id and the filter that selects it (besides the map's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeDef {
    pub side: Side,
    pub id: String,
    pub filter: Option<String>,
}

/// A planned range and how far its read got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeState {
    pub def: RangeDef,
    /// The link of the next page to read; `None` with `done` false: not started.
    pub cursor: Option<String>,
    pub done: bool,
    /// Rows read into the database so far.
    pub rows: u64,
}

/// The scratch database of one comparison: created 0600 without following links, removed on drop.
pub struct RowCompare {
    path: PathBuf,
    /// Locked per page (the page callbacks run inside the step's future, which must be `Send`).
    conn: std::sync::Mutex<Connection>,
}

const SCHEMA: &str = "
    CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE ranges (side TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, filter TEXT, cursor TEXT,
                         done INTEGER NOT NULL DEFAULT 0, rows INTEGER NOT NULL DEFAULT 0,
                         PRIMARY KEY (side, id)) WITHOUT ROWID;
    CREATE TABLE src (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE tgt (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;";

/// Rollback-safe against a killed process (WAL), not against a power cut (`synchronous = OFF`): a file that
/// fails its check on reopening is simply started afresh.
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;";

fn sidecars(path: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [with("-wal"), with("-shm")]
}

fn remove_all(path: &Path) {
    let _ = std::fs::remove_file(path);
    for p in sidecars(path) {
        let _ = std::fs::remove_file(p);
    }
}

impl RowCompare {
    /// A new, empty comparison database at `path` (one left by a killed run is replaced).
    pub fn create(path: &Path) -> Result<Self, String> {
        Self::fresh(path, "")
    }

    fn fresh(path: &Path, fingerprint: &str) -> Result<Self, String> {
        let path = path.to_path_buf();
        remove_all(&path);
        super::open_private(&path, false).map_err(|e| format!("scratch file {}: {e}", path.display()))?;
        let conn = Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(PRAGMAS)?;
                c.execute_batch(SCHEMA)?;
                c.execute(
                    "INSERT INTO meta (k, v) VALUES ('fingerprint', ?1)",
                    [fingerprint],
                )?;
                Ok(c)
            })
            .map_err(|e| format!("scratch database {}: {e}", path.display()))?;
        Ok(Self {
            path,
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// The comparison at `path` for `fingerprint`: the one a killed read left there when it is for the same
    /// comparison and intact (`true`: resumed), else a new, empty one.
    pub fn open(path: &Path, fingerprint: &str) -> Result<(Self, bool), String> {
        if let Some(kept) = Self::reopen(path, fingerprint) {
            return Ok((kept, true));
        }
        Self::fresh(path, fingerprint).map(|c| (c, false))
    }

    fn reopen(path: &Path, fingerprint: &str) -> Option<Self> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() || meta.len() == 0 {
            return None;
        }
        // Ours and private: opened without following links, tightened to 0600.
        super::open_private(path, true).ok()?;
        let conn = Connection::open(path).ok()?;
        conn.execute_batch(PRAGMAS).ok()?;
        let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).ok()?;
        let kept: Option<String> = conn
            .query_row("SELECT v FROM meta WHERE k = 'fingerprint'", [], |r| r.get(0))
            .optional()
            .ok()?;
        (ok == "ok" && kept.as_deref() == Some(fingerprint) && !fingerprint.is_empty()).then(|| Self {
            path: path.to_path_buf(),
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, String> {
        self.conn
            .lock()
            .map_err(|_| "the scratch database lock is poisoned".to_owned())
    }

    /// Records the ranges a read is split into, unless a killed read already planned them (its plan is kept:
    /// the ranges already read stay read). Returns the plan in force, with each range's progress.
    pub fn plan(&self, ranges: &[RangeDef]) -> Result<Vec<RangeState>, String> {
        {
            let conn = self.lock()?;
            for side in [Side::Source, Side::Target] {
                let planned: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM ranges WHERE side = ?1",
                        [side.name()],
                        |r| r.get(0),
                    )
                    .map_err(|e| e.to_string())?;
                if planned > 0 {
                    continue;
                }
                for (seq, r) in ranges.iter().filter(|r| r.side == side).enumerate() {
                    conn.execute(
                        "INSERT INTO ranges (side, id, seq, filter) VALUES (?1, ?2, ?3, ?4)",
                        params![side.name(), r.id, i64::try_from(seq).unwrap_or(0), r.filter],
                    )
                    .map_err(|e| e.to_string())?;
                }
            }
        }
        self.ranges()
    }

    /// Every planned range and its progress, in plan order.
    pub fn ranges(&self) -> Result<Vec<RangeState>, String> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT side, id, filter, cursor, done, rows FROM ranges ORDER BY side, seq")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (side, id, filter, cursor, done, n) = row.map_err(|e| e.to_string())?;
            let Some(side) = Side::parse(&side) else { continue };
            out.push(RangeState {
                def: RangeDef { side, id, filter },
                cursor,
                done: done != 0,
                rows: u64::try_from(n).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// The file's size now (with its write-ahead log).
    pub fn bytes(&self) -> u64 {
        std::iter::once(self.path.clone())
            .chain(sidecars(&self.path))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Drop for RowCompare {
    fn drop(&mut self) {
        remove_all(&self.path);
    }
}

/// A value as compared: a string as is, null as empty, anything else as JSON writes it.
/// FNV-1a over the values, each followed by a unit separator: fixed across builds (unlike `DefaultHasher`), so a
/// kept file compares the same after an upgrade.
fn values_hash(values: &[String]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // SQLite integers are signed: keep the hash's bits.
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// Inserts one page of one side: key, the hash of the compared values, and the values (for the sample's
/// field-by-field differences). A key seen twice on one side keeps its first row. With `range`, the range's
/// next link (`next`; `None`: the range is read) and row count move in the same transaction.
pub fn insert_page(
    conn: &std::sync::Mutex<Connection>,
    side: Side,
    key: &str,
    fields: &[String],
    page: Vec<Map<String, Value>>,
    range: Option<(&str, Option<&str>)>,
) -> Result<(), String> {
    let rows = page.into_iter().map(|row| KeyedRow {
        key: value_text(row.get(key)),
        values: fields.iter().map(|f| value_text(row.get(f))).collect(),
    });
    insert_keyed(conn, side, rows, range)
}

/// Inserts rows already reduced to their key and compared values' text (see [`insert_page`]); a row with an
/// empty key is left out.
pub fn insert_keyed(
    conn: &std::sync::Mutex<Connection>,
    side: Side,
    rows: impl IntoIterator<Item = KeyedRow>,
    range: Option<(&str, Option<&str>)>,
) -> Result<(), String> {
    let table = side.table();
    let conn = conn
        .lock()
        .map_err(|_| "the scratch database lock is poisoned".to_owned())?;
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    let mut n = 0i64;
    {
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (k, h, v) VALUES (?1, ?2, ?3)"
            ))
            .map_err(|e| e.to_string())?;
        // The values are kept as a JSON array of strings (for the sample's field-by-field differences), written
        // into one buffer kept between rows.
        let mut v: Vec<u8> = Vec::new();
        for row in rows {
            n += 1;
            if row.key.is_empty() {
                continue;
            }
            let hash = values_hash(&row.values);
            v.clear();
            serde_json::to_writer(&mut v, &row.values).map_err(|e| e.to_string())?;
            let v = std::str::from_utf8(&v).map_err(|e| e.to_string())?;
            stmt.execute(params![row.key, hash, v])
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some((id, next)) = range {
        tx.execute(
            "UPDATE ranges SET cursor = ?3, done = ?4, rows = rows + ?5 WHERE side = ?1 AND id = ?2",
            params![side.name(), id, next, i64::from(next.is_none()), n],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

impl RowCompare {
    /// Rows of one side, already keyed (see [`insert_keyed`]).
    pub fn insert_keyed(&self, side: Side, rows: Vec<KeyedRow>) -> Result<(), String> {
        insert_keyed(&self.conn, side, rows, None)
    }

    /// One page of one range of one side, already keyed, with the link of the range's next page (`None`: the
    /// range is read): the rows and the cursor in one transaction.
    pub fn insert_keyed_in_range(
        &self,
        side: Side,
        range: &str,
        next: Option<&str>,
        rows: Vec<KeyedRow>,
    ) -> Result<(), String> {
        insert_keyed(&self.conn, side, rows, Some((range, next)))
    }

    /// One page of one side (see [`insert_page`]).
    pub fn insert(
        &self,
        side: Side,
        key: &str,
        fields: &[String],
        page: Vec<Map<String, Value>>,
    ) -> Result<(), String> {
        insert_page(&self.conn, side, key, fields, page, None)
    }

    /// One page of one range of one side, with the link of the range's next page (`None`: the range is read).
    pub fn insert_in_range(
        &self,
        side: Side,
        range: &str,
        next: Option<&str>,
        key: &str,
        fields: &[String],
        page: Vec<Map<String, Value>>,
    ) -> Result<(), String> {
        insert_page(&self.conn, side, key, fields, page, Some((range, next)))
    }

    /// The counts per class and the first `sample` keys of each, with the differing fields of the different.
    pub fn classify(
        &self,
        fields: &[String],
        sample: usize,
    ) -> Result<(ClassCounts, Vec<RowDifference>), String> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| "the scratch database lock is poisoned".to_owned())?;
        classify_keys(&conn, fields, sample).map_err(|e| e.to_string())
    }
}

/// One merge of the two sides in key order: both tables are read once, front to back along their primary keys
/// (no lookup per key), and every key is classified as the cursors pass it. The sample keeps the first `sample`
/// keys of each class in key order: the missing ones, then the extra ones, then the different ones with their
/// fields.
pub fn classify_keys(
    conn: &Connection,
    fields: &[String],
    sample: usize,
) -> rusqlite::Result<(ClassCounts, Vec<RowDifference>)> {
    use std::cmp::Ordering;
    let mut src = conn.prepare("SELECT k, h, v FROM src ORDER BY k")?;
    let mut tgt = conn.prepare("SELECT k, h, v FROM tgt ORDER BY k")?;
    let mut src_rows = src.query([])?;
    let mut tgt_rows = tgt.query([])?;
    let mut counts = ClassCounts::default();
    let (mut missing, mut extra, mut different) = (Vec::new(), Vec::new(), Vec::new());
    let key = |r: &rusqlite::Row<'_>| -> rusqlite::Result<String> { r.get::<_, String>(0) };
    let mut s = src_rows.next()?;
    let mut t = tgt_rows.next()?;
    loop {
        let order = match (s, t) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.get_ref(0)?.as_bytes()?.cmp(b.get_ref(0)?.as_bytes()?),
        };
        match order {
            Ordering::Less => {
                counts.missing += 1;
                if let (Some(a), true) = (s, missing.len() < sample) {
                    missing.push(key(a)?);
                }
                s = src_rows.next()?;
            }
            Ordering::Greater => {
                counts.extra += 1;
                if let (Some(b), true) = (t, extra.len() < sample) {
                    extra.push(key(b)?);
                }
                t = tgt_rows.next()?;
            }
            Ordering::Equal => {
                if let (Some(a), Some(b)) = (s, t) {
                    if a.get::<_, i64>(1)? == b.get::<_, i64>(1)? {
                        counts.matching += 1;
                    } else {
                        counts.different += 1;
                        if different.len() < sample {
                            different.push((key(a)?, a.get::<_, String>(2)?, b.get::<_, String>(2)?));
                        }
                    }
                }
                s = src_rows.next()?;
                t = tgt_rows.next()?;
            }
        }
    }
    let mut out: Vec<RowDifference> = Vec::with_capacity(missing.len() + extra.len() + different.len());
    out.extend(missing.into_iter().map(|key| RowDifference {
        class: RowClass::Missing,
        key,
        fields: Vec::new(),
    }));
    out.extend(extra.into_iter().map(|key| RowDifference {
        class: RowClass::Extra,
        key,
        fields: Vec::new(),
    }));
    for (k, sv, tv) in different {
        let s: Vec<String> = serde_json::from_str(&sv).unwrap_or_default();
        let t: Vec<String> = serde_json::from_str(&tv).unwrap_or_default();
        let fields_differing = fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let (a, b) = (
                    s.get(i).cloned().unwrap_or_default(),
                    t.get(i).cloned().unwrap_or_default(),
                );
                (a != b).then(|| FieldDifference {
                    field: f.clone(),
                    source: a,
                    target: b,
                })
            })
            .collect();
        out.push(RowDifference {
            class: RowClass::Different,
            key: k,
            fields: fields_differing,
        });
    }
    Ok((counts, out))
}
