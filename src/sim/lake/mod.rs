//! The lake: the Azure Synapse Link for Dataverse export the simulator writes of its own tables, served
//! through a Blob API stand-in ([`blob`]), and the Databricks workspace that ingests it: Lakeflow Connect
//! pipelines and a SQL warehouse's Statement Execution API ([`databricks`]).
//!
//! The export follows the documented incremental-update layout (`../shared/reference/d365-api.md` §7): one
//! folder per interval named by its UTC creation time, each with `model.json` (entities, attributes with data
//! types, partitions) and a subfolder per table of headerless CSV partitions whose first columns are `Id`,
//! `SinkCreatedOn`, `SinkModifiedOn`, `versionnumber` and `IsDelete`; `Changelog/changelog.info` names the
//! folder still being written.
//!
//! Our model (also in `docs/simulator.md`):
//! - The export observes the tables at most every tenth of `interval` (simulated), and on every lake request;
//!   every change observed goes into the folder being written then: the one of `now - lag`. A folder closes
//!   when the exporter's clock passes its end (its `closed_at` is that instant). Intervals without changes
//!   still get a folder (with `model.json` only).
//! - Folder names are `yyyy-MM-ddTHH.mm.ssZ`; `SinkCreatedOn`/`SinkModifiedOn` are RFC 3339 with
//!   milliseconds; `IsDelete` is `True` on a delete and empty otherwise; a partition is named by the year
//!   of the row's first export; values are written as the service's JSON gives them (strings as is, numbers
//!   and booleans as JSON writes them, null as an empty field), RFC 4180 quoted where needed.
//! - F&O sets are exported as `mserp_<set in lower case>` with columns `mserp_<field in lower case>`
//!   (the virtual-entity naming); Dataverse sets as their logical name, a lookup `_x_value` as `x`. An F&O
//!   row's `Id` is a GUID derived from the set, the company and the row number.
//! - A stopped export (`stop_at`, or `POST /_sim/lake {"stopped": true}`) closes no folder and exports no
//!   change; resumed, it exports everything missed into the folder then open.

pub mod blob;
pub mod config;
pub mod databricks;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::faults::{hash_str, mix};
use super::scenario::Side;
use super::tables::{FieldKind, Table, Tables, guid_from};
pub use config::LakeConfig;

/// The system columns every exported row starts with, and their CDM data types.
pub const SYSTEM_COLUMNS: [(&str, &str); 5] = [
    ("Id", "guid"),
    ("SinkCreatedOn", "dateTime"),
    ("SinkModifiedOn", "dateTime"),
    ("versionnumber", "int64"),
    ("IsDelete", "boolean"),
];

/// One incremental-update folder.
#[derive(Debug, Clone)]
pub struct Folder {
    pub name: String,
    /// Simulated seconds since the start: when it was created, and when the exporter closed it.
    pub start: f64,
    pub closed_at: Option<f64>,
    /// The attributes of every exported table as this folder's `model.json` gives them (system columns first).
    pub schema: BTreeMap<String, Vec<(String, String)>>,
    /// Rows per table, each as long as the table's attributes were when it was written.
    pub rows: BTreeMap<String, Vec<Vec<String>>>,
    /// The year of each row's first export, per table, parallel to `rows` (the partition it goes to).
    pub years: BTreeMap<String, Vec<i32>>,
}

/// What the export knows of one table.
#[derive(Debug, Clone)]
pub struct ExportTable {
    pub side: Side,
    pub index: usize,
    /// Data columns after the system columns: (name, CDM data type).
    pub columns: Vec<(String, String)>,
    /// Id → (hash of the values last exported, first export time, its year).
    pub seen: HashMap<String, (u64, String, i32)>,
}

/// A Lakeflow Connect update.
#[derive(Debug, Clone)]
pub struct Update {
    pub id: String,
    pub created: f64,
    pub ends: f64,
    pub full_refresh: bool,
    pub selection: Vec<String>,
    pub cause: String,
    /// Set when it ended: COMPLETED, FAILED or CANCELED, with the error's message.
    pub ended: Option<(String, Option<String>)>,
}

/// A table as a pipeline ingested it (SCD type 1: one row per `Id`, deletes applied).
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    pub columns: Vec<String>,
    pub rows: BTreeMap<String, Vec<String>>,
}

/// A Lakeflow Connect pipeline over the whole export.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    /// Closed folders ingested (a prefix of the folders).
    pub cursor: usize,
    pub tables: BTreeMap<String, Ingested>,
    pub updates: Vec<Update>,
}

/// A statement's result: (columns with their type names, rows), or (error code, message, SQLSTATE).
pub type Outcome = Result<(Vec<(String, String)>, Vec<Vec<Value>>), (String, String, String)>;

/// A submitted SQL statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub submitted: f64,
    pub ends: f64,
    /// (columns with their type names, rows) or (error code, message, SQLSTATE).
    pub outcome: Outcome,
    pub canceled: bool,
}

/// The lake's state, inside the simulator's one mutex.
#[derive(Debug)]
pub struct LakeRt {
    pub cfg: LakeConfig,
    pub lag: f64,
    pub stop_at: Option<f64>,
    pub folders: Vec<Folder>,
    pub tables: BTreeMap<String, ExportTable>,
    pub version: u64,
    pub last_obs: Option<f64>,
    pub schema_applied: usize,
    pub pipelines: BTreeMap<String, Pipeline>,
    pub statements: HashMap<String, Statement>,
    pub fail_updates: u32,
    pub next_schedule: f64,
}

/// The export table name of a scenario set.
pub fn export_name(t: &Table) -> String {
    match t.side {
        Side::Fno => format!("mserp_{}", t.name.to_lowercase()),
        Side::Dataverse => t.logical.clone(),
    }
}

/// The export column of a service field.
fn export_column(side: Side, field: &str) -> Option<String> {
    if field.starts_with('@') {
        return None;
    }
    Some(match side {
        Side::Fno => format!("mserp_{}", field.to_lowercase()),
        Side::Dataverse => field
            .strip_prefix('_')
            .and_then(|f| f.strip_suffix("_value"))
            .unwrap_or(field)
            .to_owned(),
    })
}

fn cdm_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "decimal",
        Value::Number(_) => "int64",
        _ => "string",
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `yyyy-MM-ddTHH.mm.ssZ` of a simulated instant.
pub fn folder_name(start: chrono::DateTime<chrono::Utc>, t: f64) -> String {
    let at = start + chrono::Duration::milliseconds((t * 1000.0) as i64);
    at.format("%Y-%m-%dT%H.%M.%SZ").to_string()
}

impl LakeRt {
    pub fn new(mut cfg: LakeConfig) -> LakeRt {
        cfg.schema_changes.sort_by(schema_order);
        let pipelines = cfg
            .databricks
            .pipelines
            .iter()
            .map(|p| (p.clone(), Pipeline::default()))
            .collect();
        LakeRt {
            lag: cfg.lag.0,
            stop_at: cfg.stop_at.map(|d| d.0),
            fail_updates: cfg.databricks.fail_updates,
            next_schedule: cfg.databricks.schedule.map_or(f64::INFINITY, |d| d.0),
            cfg,
            folders: Vec::new(),
            tables: BTreeMap::new(),
            version: 0,
            last_obs: None,
            schema_applied: 0,
            pipelines,
            statements: HashMap::new(),
        }
    }

    /// The folder still being written (what `Changelog/changelog.info` names).
    pub fn open_folder(&self) -> Option<&Folder> {
        self.folders.last().filter(|f| f.closed_at.is_none())
    }

    /// The export root inside the container (`folder/` or empty).
    pub fn root(&self) -> String {
        let f = self.cfg.folder.trim_matches('/');
        if f.is_empty() {
            String::new()
        } else {
            format!("{f}/")
        }
    }
}

/// Which scenario sets the export carries.
fn exported(cfg: &LakeConfig, t: &Table) -> bool {
    if cfg.tables.is_empty() {
        !matches!(
            t.name.as_str(),
            super::world::ASYNC_OPERATIONS_SET | super::world::PLUGIN_TRACE_SET
        )
    } else {
        cfg.tables.iter().any(|n| n == &t.name)
    }
}

/// Schema changes in the order they happen: by time, those waiting on an import last.
fn schema_order(a: &config::SchemaChange, b: &config::SchemaChange) -> std::cmp::Ordering {
    (a.after_import.is_some(), a.at.0)
        .partial_cmp(&(b.after_import.is_some(), b.at.0))
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// An import of DMF definition group `group` loaded its rows at simulated time `now`: the schema
/// changes waiting on it are due `at` from now.
pub fn import_loaded(st: &mut super::world::SimState, group: &str, now: f64) {
    let Some(lake) = st.lake.as_mut() else {
        return;
    };
    let waiting = &mut lake.cfg.schema_changes[lake.schema_applied..];
    let mut moved = false;
    for c in waiting.iter_mut() {
        if c.after_import
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case(group))
        {
            c.at = super::scenario::Dur(now + c.at.0);
            c.after_import = None;
            moved = true;
        }
    }
    if moved {
        waiting.sort_by(schema_order);
    }
}

/// The world's side of the lake: schema changes, the export, the pipelines' updates, up to simulated time `now`.
pub fn advance(st: &mut super::world::SimState, now: f64, force: bool) {
    let Some(lake) = st.lake.as_mut() else {
        return;
    };
    // Schema changes: a column added to a set (the services' rows and the export both carry it).
    let due: Vec<config::SchemaChange> = lake
        .cfg
        .schema_changes
        .iter()
        .skip(lake.schema_applied)
        .take_while(|c| c.after_import.is_none() && c.at.0 <= now)
        .cloned()
        .collect();
    lake.schema_applied += due.len();
    for c in due {
        let table = match c.side {
            Side::Fno => st.fno_idx.get(&c.entity).map(|&i| &mut st.fno[i]),
            Side::Dataverse => st.dv_idx.get(&c.entity).map(|&i| &mut st.dv[i]),
        };
        if let (Some(t), Ok(kind)) = (table, FieldKind::parse(&c.kind))
            && !t.gens.iter().any(|(f, _)| f == &c.field)
        {
            t.gens.push((c.field.clone(), kind));
        }
    }
    let Some(lake) = st.lake.as_ref() else {
        return;
    };
    let every = (lake.cfg.interval.0 / 10.0).max(0.001);
    if force || lake.last_obs.is_none_or(|o| now - o >= every) {
        observe(st, now);
    }
    pipelines(st, now);
}

/// One table's changes in an observation: its name, attributes, and rows with their partition years.
type Pending = (String, Vec<(String, String)>, Vec<(Vec<String>, i32)>);

/// One observation of the tables by the exporter (see the module docs).
fn observe(st: &mut super::world::SimState, now: f64) {
    let start = st.scenario.start;
    let companies = st.companies.clone();
    let Some(lake) = st.lake.as_mut() else {
        return;
    };
    let t = lake.stop_at.map_or(now, |s| now.min(s));
    if lake.last_obs.is_some_and(|o| t <= o) {
        return;
    }
    // Every exported table is known (with its declared columns) before any folder lists the schema.
    let sides: [(Side, &Vec<Table>); 2] = [(Side::Fno, &st.fno), (Side::Dataverse, &st.dv)];
    for (side, list) in sides {
        for (index, table) in list.iter().enumerate() {
            if exported(&lake.cfg, table) {
                lake.tables
                    .entry(export_name(table))
                    .or_insert_with(|| ExportTable {
                        side,
                        index,
                        columns: declared_columns(table),
                        seen: HashMap::new(),
                    });
            }
        }
    }
    lake.last_obs = Some(t);
    let stamp = {
        let at = start + chrono::Duration::milliseconds((t * 1000.0) as i64);
        (
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            chrono::Datelike::year(&at),
        )
    };
    // The changes since the last observation (new columns found on the way).
    let mut pending: Vec<Pending> = Vec::new();
    let tables = Tables { fno: &st.fno };
    let sides: [(Side, &Vec<Table>); 2] = [(Side::Fno, &st.fno), (Side::Dataverse, &st.dv)];
    for (side, list) in sides {
        for (index, table) in list.iter().enumerate() {
            if !exported(&lake.cfg, table) {
                continue;
            }
            let name = export_name(table);
            let et = lake.tables.entry(name.clone()).or_insert_with(|| ExportTable {
                side,
                index,
                // The declared columns, so an empty table has its attributes too (types: from the first value).
                columns: declared_columns(table),
                seen: HashMap::new(),
            });
            let mut present: HashMap<String, ()> = HashMap::with_capacity(table.rows.len());
            let mut out: Vec<(Vec<String>, i32)> = Vec::new();
            for row in &table.rows {
                let m: Map<String, Value> = tables.materialize(table, row, &companies);
                let id = match (side, table.id_field.as_deref().and_then(|f| m.get(f))) {
                    (Side::Dataverse, Some(Value::String(g))) => g.clone(),
                    _ => guid_from(
                        mix(hash_str(&table.name), u64::from(row.company)),
                        mix(hash_str(&table.name) ^ 0x1A4E, u64::from(row.n)),
                    ),
                };
                let mut by_col: HashMap<String, &Value> = HashMap::new();
                for (k, v) in &m {
                    if let Some(c) = export_column(side, k) {
                        if !et.columns.iter().any(|(n, _)| n == &c) {
                            et.columns.push((c.clone(), cdm_type(v).to_owned()));
                        }
                        by_col.insert(c, v);
                    }
                }
                let values: Vec<String> = et
                    .columns
                    .iter()
                    .map(|(c, _)| text(by_col.get(c).copied()))
                    .collect();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                values.hash(&mut h);
                let hash = h.finish();
                present.insert(id.clone(), ());
                let (created, year) = match et.seen.get(&id) {
                    Some((old, _, _)) if *old == hash => continue,
                    Some((_, c, y)) => (c.clone(), *y),
                    None => (stamp.0.clone(), stamp.1),
                };
                et.seen.insert(id.clone(), (hash, created.clone(), year));
                lake.version += 1;
                let mut line = vec![
                    id,
                    created,
                    stamp.0.clone(),
                    lake.version.to_string(),
                    String::new(),
                ];
                line.extend(values);
                out.push((line, year));
            }
            let gone: Vec<String> = et
                .seen
                .keys()
                .filter(|k| !present.contains_key(*k))
                .cloned()
                .collect();
            for id in gone {
                if let Some((_, created, year)) = et.seen.remove(&id) {
                    lake.version += 1;
                    let mut line = vec![
                        id,
                        created,
                        stamp.0.clone(),
                        lake.version.to_string(),
                        "True".into(),
                    ];
                    line.extend(et.columns.iter().map(|_| String::new()));
                    out.push((line, year));
                }
            }
            pending.push((name, attributes(et), out));
        }
    }
    // The folders up to now (their schemas as the tables are now), then the changes into the open one.
    let interval = lake.cfg.interval.0.max(1.0);
    let eff = (t - lake.lag).max(0.0);
    let k_now = (eff / interval).floor() as u64;
    let k_last = lake.folders.len() as u64;
    // Close the open folder and open the ones up to now (at most 10,000 at once).
    for k in k_last..=k_now.min(k_last + 10_000) {
        let created = k as f64 * interval;
        if let Some(open) = lake.folders.last_mut()
            && open.closed_at.is_none()
        {
            open.closed_at = Some((created + lake.lag).min(t));
        }
        let schema = lake
            .tables
            .iter()
            .map(|(n, et)| (n.clone(), attributes(et)))
            .collect();
        lake.folders.push(Folder {
            name: folder_name(start, created),
            start: created,
            closed_at: None,
            schema,
            rows: BTreeMap::new(),
            years: BTreeMap::new(),
        });
    }
    for (name, attrs, out) in pending {
        if let Some(open) = lake.folders.last_mut()
            && open.closed_at.is_none()
        {
            open.schema.insert(name.clone(), attrs);
            if !out.is_empty() {
                let (rows, years): (Vec<_>, Vec<_>) = out.into_iter().unzip();
                open.rows.entry(name.clone()).or_default().extend(rows);
                open.years.entry(name).or_default().extend(years);
            }
        }
    }
}

/// A set's declared columns in export names: id, company, key, generated fields.
fn declared_columns(t: &Table) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let names = t
        .id_field
        .iter()
        .chain(t.company_field.iter())
        .chain(t.key.iter())
        .chain(t.gens.iter().map(|(f, _)| f));
    for f in names {
        if let Some(c) = export_column(t.side, f)
            && !out.iter().any(|(n, _)| n == &c)
        {
            let ty = match t.gens.iter().find(|(g, _)| g == f).map(|(_, k)| k) {
                Some(FieldKind::Amount) => "decimal",
                Some(FieldKind::Int | FieldKind::Choice(_)) => "int64",
                Some(FieldKind::Bool) => "boolean",
                _ => "string",
            };
            out.push((c, ty.to_owned()));
        }
    }
    out
}

/// The system columns and a table's data columns.
fn attributes(et: &ExportTable) -> Vec<(String, String)> {
    SYSTEM_COLUMNS
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .chain(et.columns.iter().cloned())
        .collect()
}

/// The state of an update at `now`: its terminal state, or the phase its elapsed share puts it in.
pub fn update_state(u: &Update, now: f64) -> &'static str {
    if let Some((s, _)) = &u.ended {
        return match s.as_str() {
            "FAILED" => "FAILED",
            "CANCELED" => "CANCELED",
            _ => "COMPLETED",
        };
    }
    let share = if u.ends > u.created {
        (now - u.created) / (u.ends - u.created)
    } else {
        1.0
    };
    match share {
        s if s < 0.1 => "QUEUED",
        s if s < 0.2 => "INITIALIZING",
        s if s < 0.3 && (u.full_refresh || !u.selection.is_empty()) => "RESETTING",
        s if s < 0.4 => "SETTING_UP_TABLES",
        _ => "RUNNING",
    }
}

/// Scheduled updates and the end of updates whose time has come, in time order.
fn pipelines(st: &mut super::world::SimState, now: f64) {
    let seed = st.scenario.seed;
    let Some(lake) = st.lake.as_mut() else {
        return;
    };
    let ids: Vec<String> = lake.pipelines.keys().cloned().collect();
    for _ in 0..10_000 {
        // The earliest pending event: an update's end or a scheduled start.
        let mut next: Option<(f64, String, bool)> = None;
        for id in &ids {
            if let Some(u) = lake.pipelines[id].updates.iter().find(|u| u.ended.is_none())
                && u.ends <= now
                && next.as_ref().is_none_or(|(t, _, _)| u.ends < *t)
            {
                next = Some((u.ends, id.clone(), true));
            }
        }
        if lake.next_schedule <= now && next.as_ref().is_none_or(|(t, _, _)| lake.next_schedule < *t) {
            next = Some((lake.next_schedule, String::new(), false));
        }
        let Some((at, id, is_end)) = next else {
            return;
        };
        if is_end {
            finish_update(lake, &id, at);
        } else {
            for pid in &ids {
                let active = lake.pipelines[pid].updates.iter().any(|u| u.ended.is_none());
                if !active {
                    let n = lake.pipelines[pid].updates.len() as u64;
                    let uid = guid_from(mix(seed, hash_str(pid) ^ n), mix(seed ^ 0x5CED, n));
                    start_update(lake, pid, uid, at, false, Vec::new(), "SCHEDULER_ACTION");
                }
            }
            let every = lake
                .cfg
                .databricks
                .schedule
                .map_or(f64::INFINITY, |d| d.0.max(1.0));
            lake.next_schedule += every;
        }
    }
}

/// Starts an update of pipeline `pid` at simulated time `at`.
pub fn start_update(
    lake: &mut LakeRt,
    pid: &str,
    id: String,
    at: f64,
    full_refresh: bool,
    selection: Vec<String>,
    cause: &str,
) {
    let dur = lake.cfg.databricks.update_duration.0;
    if let Some(p) = lake.pipelines.get_mut(pid) {
        p.updates.push(Update {
            id,
            created: at,
            ends: at + dur,
            full_refresh,
            selection,
            cause: cause.to_owned(),
            ended: None,
        });
    }
}

/// Ends the active update of `pid` at `at`: ingests the folders closed by then, or fails.
fn finish_update(lake: &mut LakeRt, pid: &str, at: f64) {
    let closed = lake
        .folders
        .iter()
        .take_while(|f| f.closed_at.is_some_and(|c| c <= at))
        .count();
    let fail_now = lake.fail_updates > 0;
    if fail_now {
        lake.fail_updates -= 1;
    }
    let newest: BTreeMap<String, Vec<String>> = lake
        .folders
        .get(closed.wrapping_sub(1))
        .filter(|_| closed > 0)
        .map(|f| {
            f.schema
                .iter()
                .map(|(t, a)| (t.clone(), a.iter().map(|(n, _)| n.clone()).collect()))
                .collect()
        })
        .unwrap_or_default();
    let folders = &lake.folders;
    let Some(p) = lake.pipelines.get_mut(pid) else {
        return;
    };
    let Some(u) = p.updates.iter().position(|u| u.ended.is_none()) else {
        return;
    };
    let (full, selection) = (p.updates[u].full_refresh, p.updates[u].selection.clone());
    let refresh = |t: &str| full || selection.iter().any(|s| s.eq_ignore_ascii_case(t));
    let error = if fail_now {
        Some("The update failed: the cluster could not be started (simulated failure).".to_owned())
    } else {
        newest
            .iter()
            .find(|(t, cols)| !refresh(t) && p.tables.get(*t).is_some_and(|i| &i.columns != *cols))
            .map(|(t, cols)| {
                let had = &p.tables[t].columns;
                let added: Vec<&String> = cols.iter().filter(|c| !had.contains(c)).collect();
                let removed: Vec<&String> = had.iter().filter(|c| !cols.contains(c)).collect();
                format!(
                    "The schema of table `{t}` changed (added {added:?}, removed {removed:?}): a full refresh of the table is required."
                )
            })
    };
    if let Some(e) = error {
        p.updates[u].ended = Some(("FAILED".into(), Some(e)));
        return;
    }
    for (t, cols) in &newest {
        let from = if refresh(t) || !p.tables.contains_key(t) {
            p.tables.insert(
                t.clone(),
                Ingested {
                    columns: cols.clone(),
                    rows: BTreeMap::new(),
                },
            );
            0
        } else {
            p.cursor.min(closed)
        };
        let Some(ing) = p.tables.get_mut(t) else { continue };
        for f in &folders[from..closed] {
            let (Some(rows), Some(attrs)) = (f.rows.get(t), f.schema.get(t)) else {
                continue;
            };
            for r in rows {
                let id = r.first().cloned().unwrap_or_default();
                if r.get(4).is_some_and(|d| d == "True") {
                    ing.rows.remove(&id);
                    continue;
                }
                let by: HashMap<&str, &String> =
                    attrs.iter().map(|(n, _)| n.as_str()).zip(r.iter()).collect();
                let line = ing
                    .columns
                    .iter()
                    .map(|c| by.get(c.as_str()).map(|v| (*v).clone()).unwrap_or_default())
                    .collect();
                ing.rows.insert(id, line);
            }
        }
    }
    p.cursor = closed;
    p.updates[u].ended = Some(("COMPLETED".into(), None));
}

/// `GET /_sim/lake`: folders, pipelines and statements, for tests.
pub fn inspect(lake: &LakeRt, now: f64) -> Value {
    json!({
        "lag": lake.lag,
        "stopped": lake.stop_at.is_some_and(|s| s <= now),
        "folders": lake.folders.iter().map(|f| json!({
            "name": f.name,
            "closed": f.closed_at.is_some(),
            "rows": f.rows.values().map(Vec::len).sum::<usize>(),
        })).collect::<Vec<_>>(),
        "pipelines": lake.pipelines.iter().map(|(id, p)| (id.clone(), json!({
            "cursor": p.cursor,
            "tables": p.tables.iter().map(|(t, i)| (t.clone(), json!(i.rows.len()))).collect::<Map<String, Value>>(),
            "updates": p.updates.iter().map(|u| json!({
                "update_id": u.id,
                "state": update_state(u, now),
                "full_refresh_selection": u.selection,
            })).collect::<Vec<_>>(),
        }))).collect::<Map<String, Value>>(),
        "statements": lake.statements.len(),
    })
}
