//! Dual-write: the map state machine, initial sync, and the management gateway in the wire format of
//! Microsoft's public automation tool (d365-api.md §5a; unsupported by Microsoft).
//!
//! Wire (from the tool): `GET Environments` (a list whose first element has `cid`, `cname`), `GET Entities`
//! (maps: `leftEntity` = F&O, `rightEntity` = Dataverse, `detail{tid, tName, pid, state, actions, template,
//! lastRequest, lastRequests}`), `POST Start` with `{"action":"<code>","details":[{tid,pid,cid,parameters}]}`
//! answering a server-generated `{"requestId"}`, `GET Status/{requestId}` (the list of maps the request
//! touched; its outcome is their `lastRequests[]` element), `GET api/ProjectExecutionWithCompanies/{pid}`
//! (host-relative). Action codes "1" start (`skipInitialSync`, `conflictResolution.master` "AX"|"CRM"),
//! "4" stop, "5" pause, "6" resume, "8" initial sync of an existing map. States: None 0, Stopped 1,
//! InitialSync 2, CatchUp 3, Running 4, Paused 5, NotRunning 6.
//!
//! Our model (no public source): a request reads Waiting ("1") for `dual_write.request_delay` (simulated)
//! and then Completed ("2"); a start with initial sync stays Waiting until the sync ends, then Completed or
//! Error ("3") with the failure's message. A start without initial sync whose `depends_on` maps are not
//! Running ends in Error. Invalid transitions are a synchronous 409, an unknown action code a 400, both
//! `{"error":{"code","message"}}`. Initial sync copies source rows in table order at `rate` rows per
//! simulated second; `fail_at_row` fails the first pass only (the data is "fixed" after it), leaving the rows
//! before it copied. There is no "continue from the failed row" (the tool has none): a new pass (start with
//! initial sync, or "8") starts at row 1 and upserts: rows this map copied before count as updated, rows on
//! the target that it did not copy are `duplicate_key` errors. An initial sync started while a `depends_on`
//! map is not Running fails at row 1 with `missing_lookup`, and so does one into a table whose lookup points at
//! a table that holds no rows (nothing to resolve it to). Resume plays a paused map's queue back in
//! CatchUp ("3", from the tool's enum) and then shows Running.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::live::Change;
use super::scenario::{InitialStatus, MapDef};
use super::server::{App, json_error};
use super::tables::Row;
use super::world::SimState;

pub const NONE: u8 = 0;
pub const STOPPED: u8 = 1;
pub const INITIAL_SYNC: u8 = 2;
pub const RUNNING: u8 = 4;
pub const PAUSED: u8 = 5;
pub const NOT_RUNNING: u8 = 6;
/// Playing back a paused map's queue; on the wire "3" (CatchUp in the tool's enum).
pub const RESUMING: u8 = 7;
/// The wire value of [`RESUMING`].
pub const CATCH_UP: u8 = 3;

/// A map status as the gateway's `detail.state` shows it (a numeric string).
pub fn wire_state(s: u8) -> String {
    if s == RESUMING { CATCH_UP } else { s }.to_string()
}

pub fn status_name(s: u8) -> &'static str {
    match s {
        STOPPED => "Stopped",
        INITIAL_SYNC => "Initializing",
        RUNNING => "Running",
        PAUSED => "Paused",
        NOT_RUNNING => "NotRunning",
        RESUMING => "Resuming",
        _ => "None",
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncRt {
    pub state: &'static str,
    /// Source rows processed (the next row to copy is at this position).
    pub cursor: u64,
    /// Rows this map's initial syncs actually wrote to the target.
    pub copied: u64,
    pub total: u64,
    pub errors: u64,
    /// Rows of this pass that were already on the target (a restart).
    pub dups: u64,
    pub failed_at: Option<u64>,
    pub category: Option<String>,
    pub message: Option<String>,
    /// Rows of this pass that were already copied by an earlier pass of this map (upserted).
    pub updated: u64,
    /// This pass's figures per company (`ProjectExecutionWithCompanies`).
    pub by_company: BTreeMap<u16, CompanyRt>,
    /// The gateway request that started this pass.
    pub request: Option<String>,
    started_at: f64,
    start_cursor: u64,
    dup: Option<HashSet<(u16, u32)>>,
}

/// One company's share of an initial-sync pass.
#[derive(Debug, Clone, Default)]
pub struct CompanyRt {
    pub exported: u64,
    pub inserted: u64,
    pub updated: u64,
    pub errors: u64,
    /// `(recordId, sourceField, errorMessage)`, the first 100.
    pub import_errors: Vec<(String, String, String)>,
}

#[derive(Debug, Clone)]
pub struct MapRt {
    pub def: MapDef,
    /// The project id (`detail.pid`).
    pub id: String,
    /// The template id (`detail.tid`).
    pub tid: String,
    /// Rows this map's initial syncs (or the preload) put on the target: a new pass upserts them.
    pub own: HashSet<(u16, u32)>,
    /// Gateway request ids that touched this map, newest first (`detail.lastRequests`).
    pub requests: Vec<String>,
    pub src: usize,
    pub tgt: usize,
    pub status: u8,
    pub sync: SyncRt,
    pub fail_armed: bool,
    pub dep_failure: bool,
    pub queue: Vec<Change>,
    pub queue_blocked: u64,
    pub paused_at: f64,
    pub replay_started: f64,
    pub replayed: u64,
    /// The map's source filter, parsed (`None`: every row is carried).
    pub filter: Option<super::odata::filter::Expr>,
}

impl MapRt {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.def.name,
            "sourceEntity": self.def.source,
            "targetEntity": self.def.target,
            "status": self.status,
            "statusName": status_name(self.status),
            "initialSync": {
                "state": if self.sync.state.is_empty() { "NotStarted" } else { self.sync.state },
                "rowsCopied": self.sync.copied,
                "rowsTotal": self.sync.total,
                "errorCount": self.sync.errors,
                "failedAtRow": self.sync.failed_at,
                "category": self.sync.category,
                "message": self.sync.message,
            },
            "queued": self.queue.len(),
            "queueBlocked": self.queue_blocked,
        })
    }
}

impl SimState {
    /// Builds the maps, wires each target table to its source, and pre-loads targets.
    pub fn init_maps(&mut self) {
        let defs = self.scenario.maps.clone();
        for (i, def) in defs.into_iter().enumerate() {
            let (Some(&src), Some(&tgt)) = (self.fno_idx.get(&def.source), self.dv_idx.get(&def.target))
            else {
                continue;
            };
            let id = super::tables::guid_from(
                super::faults::mix(self.scenario.seed, 0xD0A1 + i as u64),
                super::faults::hash_str(&def.name),
            );
            let t = &mut self.dv[tgt];
            t.origin = Some(super::tables::Origin {
                source: src,
                key: def.key.as_ref().map(|k| (k.source.clone(), k.target.clone())),
                fields: def.fields.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                values: def.values.clone(),
            });
            if t.company_field.is_none() && self.fno[src].company_specific {
                t.company_field = Some(super::tables::lookup_column(
                    super::tables::DEFAULT_COMPANY_LOOKUP,
                ));
                t.company_specific = true;
            }
            let status = match def.initial.status {
                InitialStatus::NotRunning => NOT_RUNNING,
                InitialStatus::Running => RUNNING,
                InitialStatus::Paused => PAUSED,
                InitialStatus::Stopped => STOPPED,
            };
            let tid = super::tables::guid_from(
                super::faults::mix(self.scenario.seed, 0x7E37 + i as u64),
                super::faults::hash_str(&def.name),
            );
            let mut m = MapRt {
                fail_armed: def.fail_at_row.is_some(),
                def,
                id,
                tid,
                own: HashSet::new(),
                requests: Vec::new(),
                src,
                tgt,
                status,
                sync: SyncRt::default(),
                dep_failure: false,
                queue: Vec::new(),
                queue_blocked: 0,
                paused_at: 0.0,
                replay_started: 0.0,
                replayed: 0,
                filter: None,
            };
            m.filter = match m.def.filter.as_deref().map(super::odata::filter::parse) {
                Some(Ok(e)) => Some(e),
                Some(Err(e)) => {
                    tracing::warn!(map = %m.def.name, error = %e.message, "the map's filter does not parse: every row is carried");
                    None
                }
                None => None,
            };
            if m.def.initial.preloaded {
                let n = self.fno[src].rows.len();
                for p in 0..n {
                    if self.carries(&m, p) {
                        let row = self.copy_row(&m, p);
                        m.own.insert((row.company, row.n));
                        self.dv[tgt].push(row);
                    }
                }
                m.sync = SyncRt {
                    state: "Completed",
                    cursor: n as u64,
                    copied: n as u64,
                    total: n as u64,
                    ..Default::default()
                };
            }
            self.maps.push(m);
        }
    }

    /// Whether source row `pos` passes the map's filter.
    pub fn carries(&self, m: &MapRt, pos: usize) -> bool {
        let Some(f) = &m.filter else {
            return true;
        };
        let t = &self.fno[m.src];
        let tables = self.tables();
        let row = &t.rows[pos];
        super::odata::filter::eval(f, &|field| {
            tables
                .value_of(t, row, field, &self.companies)
                .unwrap_or(Value::Null)
        })
    }

    /// The target copy of source row `pos` of map `m` (with the scenario's corruption share).
    fn copy_row(&self, m: &MapRt, pos: usize) -> Row {
        let s = &self.fno[m.src].rows[pos];
        if let Some(o) = &s.owned {
            let mapped = super::live::translate(self, m, o, true);
            return Row {
                owned: Some(Box::new(mapped)),
                ..s.clone()
            };
        }
        let draw = super::faults::unit(super::faults::mix(self.dv[m.tgt].salt ^ 0xC0, u64::from(s.n)));
        Row {
            via_origin: true,
            corrupt: draw < m.def.corrupt_share,
            owned: None,
            ..s.clone()
        }
    }

    pub fn deps_running(&self, m: usize) -> Option<String> {
        self.maps[m]
            .def
            .depends_on
            .iter()
            .find(|d| self.maps.iter().any(|o| &o.def.name == *d && o.status != RUNNING))
            .cloned()
    }

    /// Starts a pass of the initial sync of map `m` at time `t` (from row 1), for gateway request `request`.
    fn begin_sync(&mut self, m: usize, t: f64, request: &str) {
        let dep = self.deps_running(m);
        let total = self.fno[self.maps[m].src].len();
        let dup = {
            let tgt = &self.dv[self.maps[m].tgt];
            let have: HashSet<(u16, u32)> = tgt
                .rows
                .iter()
                .filter(|r| r.via_origin || r.owned.is_none())
                .map(|r| (r.company, r.n))
                .collect();
            (!have.is_empty()).then_some(have)
        };
        let map = &mut self.maps[m];
        map.status = INITIAL_SYNC;
        map.dep_failure = dep.is_some();
        let copied = map.sync.copied;
        map.sync = SyncRt {
            state: "Running",
            cursor: 0,
            copied,
            total,
            started_at: t,
            start_cursor: 0,
            dup,
            request: Some(request.to_owned()),
            ..Default::default()
        };
    }

    /// Records a company's import error of the running pass.
    fn company_error(&mut self, m: usize, company: u16, key: &str, field: &str, msg: &str) {
        let c = self.maps[m].sync.by_company.entry(company).or_default();
        c.errors += 1;
        if c.import_errors.len() < 100 {
            c.import_errors
                .push((key.to_owned(), field.to_owned(), msg.to_owned()));
        }
    }

    /// Ends the request that started map `m`'s pass: Completed, or Error with `error`.
    fn end_sync_request(&mut self, m: usize, t: f64, error: Option<String>) {
        if let Some(id) = self.maps[m].sync.request.clone() {
            if let Some(r) = self.gw_requests.get_mut(&id) {
                r.state = if error.is_some() { REQ_ERROR } else { REQ_COMPLETED };
                r.modified = t;
                r.error = error;
            }
        }
    }

    /// Runs initial syncs and queue replays up to `t`.
    pub fn advance_maps(&mut self, t: f64) {
        for m in 0..self.maps.len() {
            match self.maps[m].status {
                INITIAL_SYNC => self.run_sync(m, t),
                RESUMING => self.run_replay(m, t),
                _ => {}
            }
        }
    }

    /// A lookup of Dataverse table `tgt` (scenario `lookups:`) to a table that holds no rows (no map has loaded
    /// it): no record it could point at, so a record written through the lookup cannot be resolved. Lookups to
    /// `cdm_companies` are the company striping's, modelled by it (a company without its row has no rows).
    pub(super) fn unresolved_lookup(&self, tgt: usize) -> Option<(String, String)> {
        self.dv[tgt].lookups.iter().find_map(|(lookup, set)| {
            if set == "cdm_companies" {
                return None;
            }
            let idx = *self.dv_idx.get(set)?;
            self.dv[idx]
                .rows
                .is_empty()
                .then(|| (lookup.clone(), set.clone()))
        })
    }

    fn run_sync(&mut self, m: usize, t: f64) {
        let key_field = self.maps[m]
            .def
            .key
            .as_ref()
            .map(|k| k.source.clone())
            .or_else(|| self.fno[self.maps[m].src].key.clone())
            .unwrap_or_default();
        let (rate, started, start_cursor) = (
            self.maps[m].def.rate,
            self.maps[m].sync.started_at,
            self.maps[m].sync.start_cursor,
        );
        let total = self.maps[m].sync.total;
        let due = (start_cursor + ((t - started).max(0.0) * rate) as u64).min(total);
        while self.maps[m].sync.cursor < due {
            let pos = self.maps[m].sync.cursor as usize;
            let row_no = pos as u64 + 1;
            let src_row = self.fno[self.maps[m].src].rows.get(pos).cloned();
            let Some(src_row) = src_row else { break };
            let key = self.source_key(m, &src_row);
            let map = &self.maps[m];
            let failure = if map.dep_failure {
                let dep = map.def.depends_on.first().cloned().unwrap_or_default();
                Some((
                    "missing_lookup".to_string(),
                    format!(
                        "Lookup for '{dep}' could not be resolved: the map it depends on is not running."
                    ),
                ))
            } else if let Some((lookup, set)) = self.unresolved_lookup(map.tgt) {
                Some((
                    "missing_lookup".to_string(),
                    format!(
                        "Lookup for '{lookup}' could not be resolved: {set} has no record to point at (no map has \
                         loaded it)."
                    ),
                ))
            } else if let Some(p) = self.throwing_plugin(&map.def.target) {
                Some((
                    "plugin_exception".to_string(),
                    format!(
                        "Plug-in step '{p}' threw an exception on Create of {}: the record was not written.",
                        self.dv[map.tgt].logical
                    ),
                ))
            } else if map.fail_armed && map.def.fail_at_row == Some(row_no) {
                let cat = map
                    .def
                    .category
                    .map_or("plugin_exception", |c| c.as_str())
                    .to_string();
                Some((
                    cat,
                    map.def
                        .message
                        .clone()
                        .unwrap_or_else(|| "The record could not be written.".into()),
                ))
            } else {
                None
            };
            self.maps[m]
                .sync
                .by_company
                .entry(src_row.company)
                .or_default()
                .exported += 1;
            if let Some((cat, msg)) = failure {
                self.log_error(m, &key, &cat, &msg, src_row.company);
                self.company_error(m, src_row.company, &key, &key_field, &msg);
                self.end_sync_request(m, t, Some(msg.clone()));
                let map = &mut self.maps[m];
                map.fail_armed = false;
                map.status = NOT_RUNNING;
                map.sync.state = "Failed";
                map.sync.errors += 1;
                map.sync.failed_at = Some(row_no);
                map.sync.category = Some(cat);
                map.sync.message = Some(msg);
                return;
            }
            let id = (src_row.company, src_row.n);
            let dup = self.maps[m].sync.dup.as_ref().is_some_and(|d| d.contains(&id));
            if dup && self.maps[m].own.contains(&id) {
                // Copied by an earlier pass of this map: upserted.
                self.maps[m].sync.updated += 1;
                self.maps[m]
                    .sync
                    .by_company
                    .entry(src_row.company)
                    .or_default()
                    .updated += 1;
            } else if dup {
                let target = self.maps[m].def.target.clone();
                let msg = format!("A record that has the attribute values {key} already exists in {target}.");
                self.log_error(m, &key, "duplicate_key", &msg, src_row.company);
                self.company_error(m, src_row.company, &key, &key_field, &msg);
                self.maps[m].sync.errors += 1;
                self.maps[m].sync.dups += 1;
            } else if self.carries(&self.maps[m], pos) {
                let row = self.copy_row(&self.maps[m], pos);
                let tgt = self.maps[m].tgt;
                self.maps[m].own.insert((row.company, row.n));
                self.dv[tgt].push(row);
                self.maps[m].sync.copied += 1;
                self.maps[m]
                    .sync
                    .by_company
                    .entry(src_row.company)
                    .or_default()
                    .inserted += 1;
            }
            self.maps[m].sync.cursor += 1;
        }
        if self.maps[m].sync.cursor >= total {
            // Rows created in the source while the sync ran are picked up at the end.
            let src_len = self.fno[self.maps[m].src].rows.len();
            for pos in total as usize..src_len {
                if !self.carries(&self.maps[m], pos) {
                    continue;
                }
                let row = self.copy_row(&self.maps[m], pos);
                let tgt = self.maps[m].tgt;
                let co = row.company;
                self.maps[m].own.insert((row.company, row.n));
                self.dv[tgt].push(row);
                self.maps[m].sync.copied += 1;
                let c = self.maps[m].sync.by_company.entry(co).or_default();
                c.exported += 1;
                c.inserted += 1;
            }
            let dups = self.maps[m].sync.dups;
            let error =
                (dups > 0).then(|| format!("{dups} rows failed: a record with the same key already exists."));
            self.end_sync_request(m, t, error);
            let map = &mut self.maps[m];
            map.sync.cursor = src_len as u64;
            map.sync.total = src_len as u64;
            map.sync.failed_at = None;
            map.sync.dup = None;
            if map.sync.dups > 0 {
                map.sync.state = "Failed";
                map.status = NOT_RUNNING;
                map.sync.category = Some("duplicate_key".into());
                map.sync.message = Some(format!(
                    "{} rows failed: a record with the same key already exists.",
                    map.sync.dups
                ));
            } else {
                map.sync.state = "Completed";
                map.status = RUNNING;
                let name = map.def.name.clone();
                self.resolve_errors(&name);
            }
        }
    }

    fn source_key(&self, m: usize, row: &Row) -> String {
        let src = &self.fno[self.maps[m].src];
        let field = self.maps[m]
            .def
            .key
            .as_ref()
            .map(|k| k.source.clone())
            .or_else(|| src.key.clone());
        field
            .and_then(|f| self.tables().value_of(src, row, &f, &self.companies))
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| src.key_value(row.company, row.n))
    }

    fn run_replay(&mut self, m: usize, t: f64) {
        let rate = self.scenario.dual_write.replay_rate;
        let due = ((t - self.maps[m].replay_started).max(0.0) * rate) as u64;
        while self.maps[m].replayed < due && !self.maps[m].queue.is_empty() {
            let change = self.maps[m].queue.remove(0);
            self.apply_change(m, change);
            self.maps[m].replayed += 1;
        }
        if self.maps[m].queue.is_empty() {
            self.maps[m].status = RUNNING;
        }
    }

    /// Whether `code` may be applied to map `m` now (Err: the 409 message).
    fn check_action(&self, m: usize, code: &str) -> Result<(), String> {
        let map = &self.maps[m];
        let status = map.status;
        let ok = match code {
            "1" | "8" => matches!(status, NOT_RUNNING | STOPPED | NONE),
            "4" => matches!(status, RUNNING | PAUSED | INITIAL_SYNC | RESUMING),
            "5" => status == RUNNING,
            "6" => status == PAUSED,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "Action {code} is not valid for map '{}' in state {} ({}).",
                map.def.name,
                wire_state(status),
                status_name(status)
            ))
        }
    }

    /// Applies a checked gateway action to map `m` for request `req`; `Some(message)` when the request
    /// ends in Error at once, and whether the request is bound to an initial-sync pass.
    fn apply_action(
        &mut self,
        m: usize,
        code: &str,
        skip_sync: bool,
        req: &str,
        t: f64,
    ) -> (Option<String>, bool) {
        let name = self.maps[m].def.name.clone();
        let mut bound = false;
        let mut error = None;
        match code {
            "1" if skip_sync => {
                self.effect(format!("dualwrite.start:{name}"));
                match self.deps_running(m) {
                    Some(dep) => {
                        error = Some(format!("Map '{name}' depends on '{dep}', which is not running."));
                    }
                    None => self.maps[m].status = RUNNING,
                }
            }
            "1" | "8" => {
                self.effect(format!("dualwrite.initial_sync:{name}"));
                self.begin_sync(m, t, req);
                bound = true;
            }
            "4" => {
                self.effect(format!("dualwrite.stop:{name}"));
                if self.maps[m].status == INITIAL_SYNC {
                    self.end_sync_request(m, t, Some("The initial sync was stopped.".into()));
                    self.maps[m].sync.state = "Failed";
                }
                self.maps[m].status = STOPPED;
                self.maps[m].queue.clear();
            }
            "5" => {
                self.effect(format!("dualwrite.pause:{name}"));
                self.maps[m].status = PAUSED;
                self.maps[m].paused_at = t;
            }
            _ => {
                self.effect(format!("dualwrite.resume:{name}"));
                let map = &mut self.maps[m];
                map.status = RESUMING;
                map.replay_started = t;
                map.replayed = 0;
                map.queue_blocked = 0;
            }
        }
        (error, bound)
    }
}

/// Request states on the wire (`lastRequests[].state`).
pub const REQ_WAITING: u8 = 1;
pub const REQ_COMPLETED: u8 = 2;
pub const REQ_ERROR: u8 = 3;

/// How many requests a map's `lastRequests` lists (our model).
const LAST_REQUESTS: usize = 10;

/// A gateway request (our model of its lifetime; the fields are the tool's).
#[derive(Debug, Clone)]
pub struct GwRequest {
    pub id: String,
    /// The action code as sent ("1", "4", ...).
    pub action: String,
    /// Simulated time it was received, and the wall-clock time of that.
    pub created: f64,
    pub created_wall: chrono::DateTime<chrono::Utc>,
    pub state: u8,
    /// Simulated time of the last state change.
    pub modified: f64,
    pub error: Option<String>,
    /// Ends with an initial-sync pass (else Completed after `request_delay`).
    pub bound: bool,
    /// The body of the `POST Start` (`/_sim/gateway`).
    pub body: Value,
}

impl GwRequest {
    /// (state, simulated time of the last change) at `now`.
    fn at(&self, now: f64, delay: f64) -> (u8, f64) {
        if self.state == REQ_WAITING && !self.bound && now >= self.created + delay {
            (REQ_COMPLETED, self.created + delay)
        } else {
            (self.state, self.modified)
        }
    }

    fn to_json(&self, st: &SimState) -> Value {
        let (state, modified) = self.at(st.now, st.scenario.dual_write.request_delay.0);
        let scale = st.scenario.time_scale.max(f64::MIN_POSITIVE);
        let real = ((modified - self.created).max(0.0) / scale * 1000.0) as i64;
        let modified_wall = self.created_wall + chrono::Duration::milliseconds(real);
        let fmt = |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        json!({
            "requestId": self.id,
            "action": self.action,
            "state": state.to_string(),
            "errorMessage": self.error,
            "errorUri": Value::Null,
            "createdOn": fmt(self.created_wall),
            "modifiedOn": fmt(modified_wall),
        })
    }
}

/// The connection set id of the linked pair (our model: derived from the seed).
fn cid(st: &SimState) -> String {
    super::tables::guid_from(super::faults::mix(st.scenario.seed, 0xC1D), 0xC1D)
}

/// Map `m` in the shape of `GET Entities`.
pub fn wire_map(st: &SimState, m: usize) -> Value {
    let map = &st.maps[m];
    let requests: Vec<Value> = map
        .requests
        .iter()
        .filter_map(|id| st.gw_requests.get(id))
        .map(|r| r.to_json(st))
        .collect();
    let actions: Vec<&str> = match map.status {
        NOT_RUNNING | STOPPED | NONE => vec!["1"],
        RUNNING => vec!["4", "5"],
        PAUSED => vec!["4", "6"],
        _ => vec!["4"],
    };
    let template = json!({"id": map.tid, "version": {"major": 1, "minor": 0, "build": 0, "revision": 0}, "author": "Microsoft"});
    json!({
        "leftEntity": {"name": map.def.source, "displayName": map.def.source, "targetType": "AX"},
        "rightEntity": {"name": map.def.target, "displayName": map.def.target, "targetType": "CRM"},
        "detail": {
            "tid": map.tid,
            "tName": map.def.name,
            "pid": map.id,
            "state": wire_state(map.status),
            "actions": actions,
            "template": template,
            "templates": [template],
            "lastRequest": requests.first().cloned().unwrap_or(Value::Null),
            "lastRequests": requests,
        }
    })
}

pub async fn environments(State(app): State<App>) -> Response {
    let cname = app
        .scenario_resources
        .0
        .split("://")
        .nth(1)
        .and_then(|h| h.split(['.', ':', '/']).next())
        .unwrap_or("sim")
        .to_string();
    let id = app.with(|st| cid(st));
    Json(json!([{"cid": id, "cname": cname}])).into_response()
}

pub async fn entities(State(app): State<App>) -> Response {
    let list: Vec<Value> = app.with(|st| (0..st.maps.len()).map(|m| wire_map(st, m)).collect());
    Json(Value::Array(list)).into_response()
}

fn bad_request(msg: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "BadRequest", msg)
}

/// One `details[]` element, checked.
struct Detail {
    map: usize,
    skip_sync: bool,
}

fn parse_details(st: &SimState, code: &str, body: &Value) -> Result<Vec<Detail>, Response> {
    let Some(details) = body
        .get("details")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
    else {
        return Err(bad_request("The body needs a non-empty details list."));
    };
    let want_cid = cid(st);
    let mut out = Vec::new();
    for d in details {
        let s = |k: &str| d.get(k).and_then(Value::as_str);
        if s("cid") != Some(want_cid.as_str()) {
            return Err(bad_request(
                "details[].cid does not name the connection set of this environment.",
            ));
        }
        let map = match s("pid") {
            Some(pid) => st.maps.iter().position(|m| m.id == pid),
            None => s("tid").and_then(|tid| st.maps.iter().position(|m| m.tid == tid)),
        };
        let Some(map) = map else {
            return Err(json_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!(
                    "No map with pid {} / tid {}.",
                    s("pid").unwrap_or("-"),
                    s("tid").unwrap_or("-")
                ),
            ));
        };
        let params = d.get("parameters").filter(|p| !p.is_null());
        if let Some(master) = params.and_then(|p| p.pointer("/conflictResolution/master")) {
            if !matches!(master.as_str(), Some("AX" | "CRM")) {
                return Err(bad_request(
                    "conflictResolution.master must be \"AX\" or \"CRM\".",
                ));
            }
        }
        let skip_sync = match params.and_then(|p| p.get("skipInitialSync")) {
            None => code != "8",
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad_request("skipInitialSync must be true or false.")),
        };
        out.push(Detail { map, skip_sync });
    }
    Ok(out)
}

pub async fn start(State(app): State<App>, body: Option<Json<Value>>) -> Response {
    let body = body.map(|b| b.0).unwrap_or_default();
    let code = match body.get("action") {
        Some(Value::String(c)) => c.clone(),
        Some(other) => {
            return bad_request(&format!("action must be a string action code, not {other}."));
        }
        None => return bad_request("The body needs action and details."),
    };
    if !matches!(code.as_str(), "1" | "4" | "5" | "6" | "8") {
        return bad_request(&format!("Unknown action '{code}'."));
    }
    let t = app.clock.now();
    let res = app.with(|st| {
        let details = parse_details(st, &code, &body)?;
        // Several maps in one request: all or none (as the UI's multi-select pause).
        for d in &details {
            st.check_action(d.map, &code)
                .map_err(|e| json_error(StatusCode::CONFLICT, "InvalidTransition", &e))?;
        }
        let id = st.next_guid();
        let mut error = None;
        let mut bound = false;
        for d in &details {
            let (e, b) = st.apply_action(d.map, &code, d.skip_sync, &id, t);
            error = error.or(e);
            bound |= b;
            let reqs = &mut st.maps[d.map].requests;
            reqs.insert(0, id.clone());
            reqs.truncate(LAST_REQUESTS);
        }
        let req = GwRequest {
            id: id.clone(),
            action: code.clone(),
            created: t,
            created_wall: chrono::Utc::now(),
            state: if error.is_some() { REQ_ERROR } else { REQ_WAITING },
            modified: t,
            error,
            bound,
            body: body.clone(),
        };
        st.gw_requests.insert(id.clone(), req);
        st.advance_maps(t);
        Ok(id)
    });
    match res {
        Ok(id) => (StatusCode::OK, Json(json!({"requestId": id}))).into_response(),
        Err(r) => r,
    }
}

pub async fn status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let out = app.with(|st| {
        st.gw_requests.get(&id)?;
        let list: Vec<Value> = (0..st.maps.len())
            .filter(|&m| st.maps[m].requests.contains(&id))
            .map(|m| wire_map(st, m))
            .collect();
        Some(list)
    });
    match out {
        Some(list) => Json(Value::Array(list)).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "NotFound", &format!("No request {id}.")),
    }
}

/// `GET api/ProjectExecutionWithCompanies/{pid}`: the last initial-sync pass per legal entity.
pub async fn project_execution(State(app): State<App>, Path(pid): Path<String>) -> Response {
    let out = app.with(|st| {
        let m = st.maps.iter().position(|m| m.id == pid)?;
        let map = &st.maps[m];
        let sync = &map.sync;
        let running = map.status == INITIAL_SYNC;
        let list: Vec<Value> = sync
            .by_company
            .iter()
            .map(|(co, c)| {
                let le = st.companies.get(usize::from(*co)).cloned().unwrap_or_default();
                let status = if c.errors > 0 {
                    "Failed"
                } else if running {
                    "Executing"
                } else {
                    "Succeeded"
                };
                let errors: Vec<Value> = c
                    .import_errors
                    .iter()
                    .map(|(r, f, e)| json!({"recordId": r, "sourceField": f, "errorMessage": e}))
                    .collect();
                json!({
                    "id": super::tables::guid_from(super::faults::hash_str(&map.id), u64::from(*co)),
                    "projectName": map.def.name,
                    "legalEntityId": le,
                    "executionStatus": status,
                    "upsertCount": c.inserted + c.updated,
                    "errorCount": c.errors,
                    "initialSyncRequestId": sync.request,
                    "taskExecutionStatuses": [{
                        "name": map.def.name,
                        "status": status,
                        "isRunning": running,
                        "legs": [{
                            "exportRecordCount": c.exported,
                            "exportRecordErrorCount": 0,
                            "importRecordsInsertedCount": c.inserted,
                            "importRecordsUpdatedCount": c.updated,
                            "importRecordsErrorCount": c.errors,
                            "importErrors": errors,
                            "exportErrors": [],
                            "importErrorUri": Value::Null,
                        }]
                    }]
                })
            })
            .collect();
        Some(json!({"projectName": map.def.name, "projectExecutionResponses": list}))
    });
    match out {
        Some(v) => Json(v).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "NotFound", &format!("No project {pid}.")),
    }
}

/// `GET /_sim/gateway`: every `POST Start` the gateway accepted, oldest first, with its body and outcome.
pub async fn sim_requests(State(app): State<App>) -> Response {
    let list: Vec<Value> = app.with(|st| {
        let mut all: Vec<&GwRequest> = st.gw_requests.values().collect();
        all.sort_by(|a, b| a.created.total_cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        all.iter()
            .map(|r| json!({"requestId": r.id, "body": r.body, "request": r.to_json(st)}))
            .collect()
    });
    Json(json!({ "requests": list })).into_response()
}
