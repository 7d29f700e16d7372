//! A scratch SQLite database for `reconcile … engine: lake` without Databricks: the rows of the Synapse Link
//! export's tables as the incremental folders leave them. Every record of every closed folder is applied in
//! folder order, keyed by table and `Id`: a record with a `versionnumber` at least the stored one replaces
//! it (the latest version wins), an `IsDelete` record leaves a tombstone (so nothing older brings the row
//! back). Each kept row is (company, key, the compared values). Beside the journal like [`super::scratch`]:
//! created 0600 without following links, replaced if a killed run left one, removed on drop. Memory holds
//! one batch of records.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// One exported record, reduced to what the comparison needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    pub id: String,
    /// `versionnumber` (0 when absent or not a number: then the record read later wins).
    pub version: i64,
    pub delete: bool,
    /// The company as the comparison names it (upper case), or empty.
    pub company: String,
    pub key: String,
    pub values: Vec<String>,
}

/// A live row as the comparison takes it: (key, the compared values).
pub type LiveRow = (String, Vec<String>);

/// The latest version of each exported row, per table.
pub struct ExportRows {
    path: PathBuf,
    conn: std::sync::Mutex<Connection>,
}

impl ExportRows {
    /// A new, empty store at `path` (one left by a killed run is replaced).
    pub fn create(path: &Path) -> Result<Self, String> {
        let path = path.to_path_buf();
        let _ = std::fs::remove_file(&path);
        super::open_private(&path, false).map_err(|e| format!("scratch file {}: {e}", path.display()))?;
        let conn = Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
                     CREATE TABLE r (t TEXT NOT NULL, id TEXT NOT NULL, ver INTEGER NOT NULL, del INTEGER NOT NULL,
                                     c TEXT NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL, PRIMARY KEY (t, id)) WITHOUT ROWID;",
                )?;
                Ok(c)
            })
            .map_err(|e| format!("scratch database {}: {e}", path.display()))?;
        Ok(Self {
            path,
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, String> {
        self.conn
            .lock()
            .map_err(|_| "the scratch database lock is poisoned".to_owned())
    }

    /// Applies a batch of one table's records, in the order given.
    pub fn apply(&self, table: &str, records: &[ExportRecord]) -> Result<(), String> {
        let conn = self.lock()?;
        let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO r (t, id, ver, del, c, k, v) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (t, id) DO UPDATE SET ver = excluded.ver, del = excluded.del, c = excluded.c,
                        k = excluded.k, v = excluded.v
                     WHERE excluded.ver >= r.ver",
                )
                .map_err(|e| e.to_string())?;
            for rec in records {
                if rec.id.is_empty() {
                    continue;
                }
                let (c, k, v) = if rec.delete {
                    (String::new(), String::new(), "[]".to_owned())
                } else {
                    (
                        rec.company.clone(),
                        rec.key.clone(),
                        serde_json::to_string(&rec.values).map_err(|e| e.to_string())?,
                    )
                };
                stmt.execute(params![
                    table,
                    rec.id,
                    rec.version,
                    i64::from(rec.delete),
                    c,
                    k,
                    v
                ])
                .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Every live row of `table` (not deleted, with a key), as (key, values): one company's (`company`, or
    /// all with `None`), in key order, a key's rows in `Id` order; `each` gets them a batch at a time.
    pub fn rows(
        &self,
        table: &str,
        company: Option<&str>,
        batch: usize,
        each: &mut dyn FnMut(Vec<LiveRow>) -> Result<(), String>,
    ) -> Result<(), String> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT k, v FROM r WHERE t = ?1 AND del = 0 AND k <> '' AND (?2 IS NULL OR c = ?2) ORDER BY k, id",
            )
            .map_err(|e| e.to_string())?;
        let mut rows = stmt.query(params![table, company]).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(batch);
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let k: String = r.get(0).map_err(|e| e.to_string())?;
            let v: String = r.get(1).map_err(|e| e.to_string())?;
            out.push((k, serde_json::from_str(&v).unwrap_or_default()));
            if out.len() >= batch {
                each(std::mem::take(&mut out))?;
            }
        }
        if !out.is_empty() {
            each(out)?;
        }
        Ok(())
    }

    /// The file's size now.
    pub fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

impl Drop for ExportRows {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, version: i64, delete: bool, key: &str, value: &str) -> ExportRecord {
        ExportRecord {
            id: id.into(),
            version,
            delete,
            company: "USMF".into(),
            key: key.into(),
            values: vec![value.into()],
        }
    }

    #[test]
    fn the_latest_version_wins_and_a_delete_is_not_undone_by_an_older_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = ExportRows::create(&dir.path().join("x.sqlite")).unwrap();
        s.apply(
            "t",
            &[rec("1", 1, false, "A", "a1"), rec("2", 2, false, "B", "b1")],
        )
        .unwrap();
        s.apply("t", &[rec("1", 3, false, "A", "a2"), rec("2", 4, true, "", "")])
            .unwrap();
        // Older records read later change nothing.
        s.apply(
            "t",
            &[rec("1", 2, false, "A", "stale"), rec("2", 2, false, "B", "b1")],
        )
        .unwrap();
        let mut all = Vec::new();
        s.rows("t", Some("USMF"), 1, &mut |b| {
            all.extend(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(all, vec![("A".to_owned(), vec!["a2".to_owned()])]);
        let mut none = 0;
        s.rows("t", Some("USRT"), 10, &mut |b| {
            none += b.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(none, 0);
        let p = dir.path().join("x.sqlite");
        drop(s);
        assert!(!p.exists());
    }
}
