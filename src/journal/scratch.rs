//! A scratch SQLite database for one row-level comparison (`reconcile`): both sides' `(key, hash of the
//! compared values, the values)` stream in a page at a time, and one query per class finds the keys missing on
//! the target, extra on it, and different. It lives beside the journal (created 0600 without following links,
//! replaced if a killed run left one, removed on drop) and is never the journal itself. Memory holds one page.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::model::event::{FieldDifference, RowClass, RowDifference};

/// Which side a page is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

/// The counts of one comparison.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClassCounts {
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
}

/// The scratch database of one comparison: created 0600 without following links, removed on drop.
pub struct RowCompare {
    path: PathBuf,
    /// Locked per page (the page callbacks run inside the step's future, which must be `Send`).
    conn: std::sync::Mutex<Connection>,
}

impl RowCompare {
    /// A new, empty comparison database at `path` (one left by a killed run is replaced).
    pub fn create(path: &Path) -> Result<Self, String> {
        let path = path.to_path_buf();
        let _ = std::fs::remove_file(&path);
        super::open_private(&path, false).map_err(|e| format!("scratch file {}: {e}", path.display()))?;
        let conn = Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
                     CREATE TABLE src (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;
                     CREATE TABLE tgt (k TEXT PRIMARY KEY, h INTEGER NOT NULL, v TEXT NOT NULL) WITHOUT ROWID;",
                )?;
                Ok(c)
            })
            .map_err(|e| format!("scratch database {}: {e}", path.display()))?;
        Ok(Self {
            path,
            conn: std::sync::Mutex::new(conn),
        })
    }

    /// The file's size now.
    pub fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

impl Drop for RowCompare {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A value as compared: a string as is, null as empty, anything else as JSON writes it.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Inserts one page of one side: key, the hash of the compared values, and the values (for the sample's
/// field-by-field differences). A key seen twice on one side keeps its first row.
pub fn insert_page(
    conn: &std::sync::Mutex<Connection>,
    side: Side,
    key: &str,
    fields: &[String],
    page: Vec<Map<String, Value>>,
) -> Result<(), String> {
    let table = match side {
        Side::Source => "src",
        Side::Target => "tgt",
    };
    let conn = conn
        .lock()
        .map_err(|_| "the scratch database lock is poisoned".to_owned())?;
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    {
        let mut stmt = tx
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (k, h, v) VALUES (?1, ?2, ?3)"
            ))
            .map_err(|e| e.to_string())?;
        for row in page {
            let k = text(row.get(key));
            if k.is_empty() {
                continue;
            }
            let values: Vec<String> = fields.iter().map(|f| text(row.get(f))).collect();
            let mut h = DefaultHasher::new();
            values.hash(&mut h);
            // SQLite integers are signed: keep the hash's bits.
            let hash = i64::from_ne_bytes(h.finish().to_ne_bytes());
            let v = serde_json::to_string(&values).map_err(|e| e.to_string())?;
            stmt.execute(params![k, hash, v]).map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

impl RowCompare {
    /// One page of one side (see [`insert_page`]).
    pub fn insert(
        &self,
        side: Side,
        key: &str,
        fields: &[String],
        page: Vec<Map<String, Value>>,
    ) -> Result<(), String> {
        insert_page(&self.conn, side, key, fields, page)
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

/// One query per class; the sample keeps the first `sample` keys of each (in key order).
pub fn classify_keys(
    conn: &Connection,
    fields: &[String],
    sample: usize,
) -> rusqlite::Result<(ClassCounts, Vec<RowDifference>)> {
    let count = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let counts = ClassCounts {
        matching: count("SELECT count(*) FROM src JOIN tgt USING (k) WHERE src.h = tgt.h")?,
        missing: count("SELECT count(*) FROM src WHERE NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.k = src.k)")?,
        extra: count("SELECT count(*) FROM tgt WHERE NOT EXISTS (SELECT 1 FROM src WHERE src.k = tgt.k)")?,
        different: count("SELECT count(*) FROM src JOIN tgt USING (k) WHERE src.h <> tgt.h")?,
    };
    let limit = i64::try_from(sample).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    let keys = |sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([limit], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    for k in keys(
        "SELECT k FROM src WHERE NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.k = src.k) ORDER BY k LIMIT ?1",
    )? {
        out.push(RowDifference {
            class: RowClass::Missing,
            key: k,
            fields: Vec::new(),
        });
    }
    for k in keys(
        "SELECT k FROM tgt WHERE NOT EXISTS (SELECT 1 FROM src WHERE src.k = tgt.k) ORDER BY k LIMIT ?1",
    )? {
        out.push(RowDifference {
            class: RowClass::Extra,
            key: k,
            fields: Vec::new(),
        });
    }
    let mut stmt = conn.prepare(
        "SELECT k, src.v, tgt.v FROM src JOIN tgt USING (k) WHERE src.h <> tgt.h ORDER BY k LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (k, sv, tv) = row?;
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
