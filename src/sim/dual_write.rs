//! Dual-write: the map state machine, initial sync, and our model of the management gateway.
//!
//! Our model (d365-api.md §5a has only the tool's enums): the gateway lives under
//! `/api/DualWriteManagement/1.0/`; `POST Start` applies a transition at once and returns 202 with a
//! request id that reads Waiting for `dual_write.request_delay` (simulated) and then Completed, or
//! Error when the transition failed (a start whose dependencies are not Running). Invalid transitions
//! are a synchronous 409. Initial sync copies source rows in table order at `rate` rows per simulated
//! second; `fail_at_row` fails the first pass only (the data is "fixed" after it), leaving the rows
//! before it copied; Resume continues at the failed row; a restart (action 8 again) starts from row 1
//! and every row already on the target becomes a `duplicate_key` error. An initial sync started
//! while a `depends_on` map is not Running fails at row 1 with `missing_lookup`.

use std::collections::HashSet;

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
pub const RESUMING: u8 = 7;

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
    started_at: f64,
    start_cursor: u64,
    dup: Option<HashSet<(u16, u32)>>,
}

#[derive(Debug, Clone)]
pub struct MapRt {
    pub def: MapDef,
    pub id: String,
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
            let mut m = MapRt {
                fail_armed: def.fail_at_row.is_some(),
                def,
                id,
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

    /// Starts (or restarts, or resumes) the initial sync of map `m` at time `t`.
    fn begin_sync(&mut self, m: usize, t: f64, resume: bool) {
        let dep = self.deps_running(m);
        let total = self.fno[self.maps[m].src].len();
        let dup = if resume {
            None
        } else {
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
        let cursor = if resume {
            map.sync.failed_at.map_or(map.sync.cursor, |r| r - 1)
        } else {
            0
        };
        let errors = if resume { map.sync.errors } else { 0 };
        let copied = if resume { map.sync.copied } else { 0 };
        map.sync = SyncRt {
            state: "Running",
            cursor,
            copied,
            total,
            errors,
            started_at: t,
            start_cursor: cursor,
            dup,
            ..Default::default()
        };
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

    fn run_sync(&mut self, m: usize, t: f64) {
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
            if let Some((cat, msg)) = failure {
                self.log_error(m, &key, &cat, &msg, src_row.company);
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
            let dup = self.maps[m]
                .sync
                .dup
                .as_ref()
                .is_some_and(|d| d.contains(&(src_row.company, src_row.n)));
            if dup {
                let target = self.maps[m].def.target.clone();
                let msg = format!("A record that has the attribute values {key} already exists in {target}.");
                self.log_error(m, &key, "duplicate_key", &msg, src_row.company);
                self.maps[m].sync.errors += 1;
                self.maps[m].sync.dups += 1;
            } else if self.carries(&self.maps[m], pos) {
                let row = self.copy_row(&self.maps[m], pos);
                let tgt = self.maps[m].tgt;
                self.dv[tgt].push(row);
                self.maps[m].sync.copied += 1;
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
                self.dv[tgt].push(row);
                self.maps[m].sync.copied += 1;
            }
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

    /// Applies a gateway action; Ok(error message for the request) or Err(409 message).
    pub fn gateway_action(&mut self, m: usize, action: u64, t: f64) -> Result<Option<String>, String> {
        let name = self.maps[m].def.name.clone();
        let status = self.maps[m].status;
        let failed = self.maps[m].sync.state == "Failed";
        let invalid = || {
            Err(format!(
                "Action {action} is not valid for map '{name}' in status {}.",
                status_name(status)
            ))
        };
        match action {
            1 => {
                if !matches!(status, NOT_RUNNING | STOPPED | NONE) {
                    return invalid();
                }
                self.effect(format!("dualwrite.start:{name}"));
                if let Some(dep) = self.deps_running(m) {
                    return Ok(Some(format!(
                        "Map '{name}' depends on '{dep}', which is not running."
                    )));
                }
                self.maps[m].status = RUNNING;
            }
            2 => {
                if !matches!(status, RUNNING | PAUSED | INITIAL_SYNC | RESUMING) {
                    return invalid();
                }
                self.effect(format!("dualwrite.stop:{name}"));
                self.maps[m].status = STOPPED;
                self.maps[m].queue.clear();
            }
            3 => {
                if status != RUNNING {
                    return invalid();
                }
                self.effect(format!("dualwrite.pause:{name}"));
                self.maps[m].status = PAUSED;
                self.maps[m].paused_at = t;
            }
            4 => {
                if status == PAUSED {
                    self.effect(format!("dualwrite.resume:{name}"));
                    let map = &mut self.maps[m];
                    map.status = RESUMING;
                    map.replay_started = t;
                    map.replayed = 0;
                    map.queue_blocked = 0;
                } else if failed && matches!(status, NOT_RUNNING | STOPPED) {
                    self.effect(format!("dualwrite.resume:{name}"));
                    self.begin_sync(m, t, true);
                } else {
                    return invalid();
                }
            }
            8 => {
                if !matches!(status, NOT_RUNNING | STOPPED | NONE) {
                    return invalid();
                }
                self.effect(format!("dualwrite.initial_sync:{name}"));
                self.begin_sync(m, t, false);
            }
            _ => return Err(format!("Unknown action {action}.")),
        }
        self.advance_maps(t);
        Ok(None)
    }
}

/// A gateway request (our model).
#[derive(Debug, Clone)]
pub struct GwRequest {
    pub id: String,
    pub created: f64,
    pub error: Option<String>,
}

pub async fn environments(State(app): State<App>) -> Response {
    let r = &app.scenario_resources;
    Json(json!([{"fnoUrl": r.0, "dataverseUrl": r.1, "linked": true}])).into_response()
}

pub async fn entities(State(app): State<App>) -> Response {
    let list: Vec<Value> = app.with(|st| st.maps.iter().map(MapRt::to_json).collect());
    Json(Value::Array(list)).into_response()
}

pub async fn entity(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.with(|st| {
        st.maps
            .iter()
            .find(|m| m.id == id || m.def.name == id)
            .map(MapRt::to_json)
    }) {
        Some(v) => Json(v).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("No map with id {id}."),
        ),
    }
}

pub async fn start(State(app): State<App>, body: Option<Json<Value>>) -> Response {
    let body = body.map(|b| b.0).unwrap_or_default();
    let entity = body
        .get("entityId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(action) = body.get("action").and_then(Value::as_u64) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The body needs entityId and action.",
        );
    };
    let caller_id = body
        .get("requestId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let t = app.clock.now();
    let res = app.with(|st| {
        if let Some(id) = &caller_id {
            if st.gw_requests.contains_key(id) {
                return Ok(id.clone());
            }
        }
        let Some(m) = st
            .maps
            .iter()
            .position(|m| m.id == entity || m.def.name == entity)
        else {
            return Err((
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("No map with id {entity}."),
            ));
        };
        let error = st
            .gateway_action(m, action, t)
            .map_err(|e| (StatusCode::CONFLICT, "InvalidTransition", e))?;
        let id = caller_id.clone().unwrap_or_else(|| st.next_guid());
        st.gw_requests.insert(
            id.clone(),
            GwRequest {
                id: id.clone(),
                created: t,
                error,
            },
        );
        Ok(id)
    });
    match res {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({"requestId": id}))).into_response(),
        Err((s, code, msg)) => json_error(s, code, &msg),
    }
}

pub async fn status(State(app): State<App>, Path(id): Path<String>) -> Response {
    let out = app.with(|st| {
        let delay = st.scenario.dual_write.request_delay.0;
        st.gw_requests.get(&id).map(|r| {
            let (code, name, msg) = match &r.error {
                Some(e) => (3, "Error", e.clone()),
                None if st.now < r.created + delay => (1, "Waiting", String::new()),
                None => (2, "Completed", String::new()),
            };
            json!({"requestId": r.id, "status": code, "statusName": name, "message": msg})
        })
    });
    match out {
        Some(v) => Json(v).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "NotFound", &format!("No request {id}.")),
    }
}
