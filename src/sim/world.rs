//! `SimState`: everything the simulator knows, behind one mutex (see `server::Shared`).
//!
//! Time is simulated: `now` is seconds since the scenario start, real elapsed time × `time_scale`.
//! Our model: the world advances lazily. Every request first calls [`SimState::advance`] with the
//! current simulated time, which runs initial syncs, queue replays, live writes, propagation and DMF
//! jobs up to that instant. Results depend only on the scenario and the times of requests, never on a
//! background task's scheduling.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::dmf::Job;
use super::dual_write::{GwRequest, MapRt};
use super::live::{LiveRt, Pending};
use super::scenario::{EntityDef, Rows, Scenario, Side};
use super::tables::{NO_COMPANY, Row, Table, Tables};

/// The most requests [`SimState::request_log`] keeps (the oldest are dropped first).
pub const REQUEST_LOG_CAP: usize = 20_000;

/// Dataverse system jobs (`asyncoperation`): live-sync failures into Dataverse are rows with `statuscode` 31.
pub const ASYNC_OPERATIONS_SET: &str = "asyncoperations";
/// Dataverse plug-in trace logs (`plugintracelog`): rows for plug-in failures when the scenario marks them.
pub const PLUGIN_TRACE_SET: &str = "plugintracelogs";

/// Where a failure happened, which decides the public source that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorOrigin {
    /// An initial-sync row: a DMF execution error of the map's DWM execution.
    InitialSync { execution_id: String },
    /// A live-sync write into Dataverse: a failed system job (and a plug-in trace log when `plugin`).
    Live { plugin: bool },
}

/// One failure in the simulator's internal error store (see `docs/simulator.md`, our model).
#[derive(Debug, Clone)]
pub struct ErrorRecord {
    pub origin: ErrorOrigin,
    pub map: String,
    pub target: String,
    pub key: String,
    pub message: String,
    /// Our model: a resumed initial sync that completes clears its execution's errors.
    pub resolved: bool,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Token {
    pub audience: String,
    pub expires: Instant,
}

/// Per-token Dataverse service-protection window.
#[derive(Debug, Default)]
pub struct SpWindow {
    pub times: VecDeque<Instant>,
    pub exec: VecDeque<(Instant, u64)>,
    pub inflight: u64,
}

/// A copy of the tables (see [`SimState::checkpoint`]).
pub struct Checkpoint {
    fno: Vec<Table>,
    dv: Vec<Table>,
    maps: Vec<MapRt>,
    pending: Vec<Pending>,
    side_effects: BTreeMap<String, u64>,
}

pub struct SimState {
    pub scenario: Scenario,
    pub companies: Vec<String>,
    pub default_company: u16,
    pub fno: Vec<Table>,
    pub dv: Vec<Table>,
    pub fno_idx: HashMap<String, usize>,
    pub dv_idx: HashMap<String, usize>,
    pub maps: Vec<MapRt>,
    pub jobs: HashMap<String, Job>,
    pub blobs: HashMap<String, Vec<u8>>,
    pub gw_requests: HashMap<String, GwRequest>,
    pub side_effects: BTreeMap<String, u64>,
    pub tokens: HashMap<String, Token>,
    /// Device codes, refresh tokens and grant counts (`sim::auth`).
    pub entra: super::auth::EntraState,
    pub pending: Vec<Pending>,
    pub live: Vec<LiveRt>,
    pub requests: u64,
    /// The method and path of every request, oldest first, at most [`REQUEST_LOG_CAP`] (`GET /_sim/requests`):
    /// what a test reads to prove a read-only command wrote nothing.
    /// (method, path, the OData query of an F&O or Dataverse request), oldest first.
    pub request_log: std::collections::VecDeque<(String, String, Option<String>)>,
    pub snapshot: (f64, HashMap<String, u64>),
    pub webhooks: Vec<Value>,
    /// Posts to the webhook sink, taken or not.
    pub webhook_attempts: u64,
    /// How the webhook sink answers (from the scenario; `POST /_sim/webhook/behaviour`).
    pub webhook: super::scenario::WebhookBehaviour,
    pub sp: HashMap<String, SpWindow>,
    /// Simulated seconds since start, as of the last advance.
    pub now: f64,
    /// Every failure the world produced (initial sync and live sync), oldest first.
    pub errors: Vec<ErrorRecord>,
    /// Creates each map has carried into Dataverse (for `live_fail_every`).
    pub live_to_dv: HashMap<usize, u64>,
    /// The Synapse Link export and the Databricks workspace (scenario `lake:`).
    pub lake: Option<super::lake::LakeRt>,
    seq: u64,
}

impl SimState {
    pub fn new(scenario: Scenario) -> SimState {
        let companies: Vec<String> = scenario.companies.iter().map(|c| c.to_uppercase()).collect();
        let default_company =
            super::odata::company_index(&companies, &scenario.default_company()).unwrap_or(0);
        let seed = scenario.seed;
        let fno: Vec<Table> = scenario
            .entities
            .fno
            .iter()
            .map(|(n, d)| Table::new(n, Side::Fno, d, &companies, seed))
            .collect();
        let dv: Vec<Table> = scenario
            .entities
            .dataverse
            .iter()
            .map(|(n, d)| Table::new(n, Side::Dataverse, d, &companies, seed))
            .collect();
        let fno_idx = fno.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let dv_idx = dv.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let mut st = SimState {
            companies,
            default_company,
            fno,
            dv,
            fno_idx,
            dv_idx,
            maps: Vec::new(),
            jobs: HashMap::new(),
            blobs: HashMap::new(),
            gw_requests: HashMap::new(),
            side_effects: BTreeMap::new(),
            tokens: HashMap::new(),
            entra: super::auth::EntraState::default(),
            pending: Vec::new(),
            live: scenario.live_writes.iter().cloned().map(LiveRt::new).collect(),
            requests: 0,
            request_log: std::collections::VecDeque::new(),
            snapshot: (0.0, HashMap::new()),
            webhooks: Vec::new(),
            webhook_attempts: 0,
            webhook: scenario.webhook.clone(),
            sp: HashMap::new(),
            now: 0.0,
            errors: Vec::new(),
            live_to_dv: HashMap::new(),
            lake: scenario.lake.clone().map(super::lake::LakeRt::new),
            seq: 0,
            scenario,
        };
        st.init_maps();
        st.add_legal_entities();
        st.add_system_tables();
        st.add_automation();
        st.take_snapshot();
        // A service finds the row a paging cookie names through its own index: built here, not by the first
        // continued page (a million-row table's index would hold that page, and every request behind it, for
        // half a second).
        let tables = st.tables();
        for t in &st.dv {
            t.warm_id_index(&tables, &st.companies);
        }
        st
    }

    /// Dual-write's core solution puts `cdm_company` in every linked Dataverse: when the scenario stripes a
    /// table by a company lookup and does not declare `cdm_companies`, the table is added with one row per
    /// scenario company (`cdm_companycode`, `cdm_name`, and the `cdm_companyid` the lookups hold).
    fn add_legal_entities(&mut self) {
        if self.dv_idx.contains_key("cdm_companies") || !self.dv.iter().any(Table::company_is_lookup) {
            return;
        }
        let def = EntityDef {
            key: Some("cdm_companycode".into()),
            id: Some("cdm_companyid".into()),
            logical_name: Some("cdm_company".into()),
            fields: [("cdm_name".to_string(), "text".to_string())]
                .into_iter()
                .collect(),
            ..EntityDef::default()
        };
        let mut t = Table::new(
            "cdm_companies",
            Side::Dataverse,
            &def,
            &self.companies,
            self.scenario.seed,
        );
        for c in &self.companies {
            let mut o = Map::new();
            o.insert("cdm_companyid".into(), json!(super::tables::company_guid(c)));
            o.insert("cdm_companycode".into(), json!(c));
            o.insert("cdm_name".into(), json!(c));
            let n = t.next_n;
            t.next_n += 1;
            t.push(Row {
                owned: Some(Box::new(o)),
                ..Row::generated(NO_COMPANY, n)
            });
        }
        self.dv_idx.insert(t.name.clone(), self.dv.len());
        self.dv.push(t);
    }

    /// Advances the world to simulated time `t` (never backwards).
    pub fn advance(&mut self, t: f64) {
        if t < self.now {
            return;
        }
        self.now = t;
        self.advance_maps(t);
        self.advance_live(t);
        self.advance_pending(t);
        self.advance_jobs(t);
        super::lake::advance(self, t, false);
        if t - self.snapshot.0 >= self.scenario.dataverse.snapshot_every.0 {
            self.take_snapshot();
            self.snapshot.0 = t;
        }
    }

    /// Refreshes the `RetrieveTotalRecordCount` snapshot (logical name → rows).
    fn take_snapshot(&mut self) {
        self.snapshot.1 = self.dv.iter().map(|t| (t.logical.clone(), t.len())).collect();
    }

    pub fn tables(&self) -> Tables<'_> {
        Tables { fno: &self.fno }
    }

    /// Counts one execution of `op:handle`.
    pub fn effect(&mut self, key: String) -> u64 {
        let n = self.side_effects.entry(key).or_insert(0);
        *n += 1;
        *n
    }

    /// A fresh deterministic id (GUID-shaped) from the seed and a counter.
    pub fn next_guid(&mut self) -> String {
        self.seq += 1;
        let s = super::faults::mix(self.scenario.seed, 0xA11C_E000 + self.seq);
        super::tables::guid_from(s, super::faults::mix(s, self.seq))
    }

    /// The DMF execution id of a map's initial sync (the scenario's `execution_id`, else `DWM-<map>`).
    pub fn execution_id(&self, map: usize) -> String {
        let d = &self.maps[map].def;
        d.execution_id
            .clone()
            .unwrap_or_else(|| format!("DWM-{}", d.name))
    }

    /// Records an initial-sync failure of a map row (served by DMF `GetExecutionErrors`).
    pub fn log_error(&mut self, map: usize, key: &str, category: &str, message: &str, _company: u16) {
        let execution_id = self.execution_id(map);
        self.record_error(
            map,
            ErrorOrigin::InitialSync { execution_id },
            key,
            category,
            message,
        );
    }

    /// Records a failure; a live one into Dataverse becomes a failed system job (and a plug-in trace log).
    pub fn record_error(
        &mut self,
        map: usize,
        origin: ErrorOrigin,
        key: &str,
        category: &str,
        message: &str,
    ) {
        let at = self.sim_time(self.now);
        let m = &self.maps[map];
        let rec = ErrorRecord {
            origin: origin.clone(),
            map: m.def.name.clone(),
            target: m.def.target.clone(),
            key: key.to_owned(),
            message: message.to_owned(),
            resolved: false,
        };
        let logical = self.dv[m.tgt].logical.clone();
        self.errors.push(rec);
        if let ErrorOrigin::Live { plugin } = origin {
            let id = self.next_guid();
            let mut o = Map::new();
            o.insert("asyncoperationid".into(), json!(id));
            o.insert(
                "name".into(),
                json!(format!("Dual-write live sync: {logical} {key}")),
            );
            o.insert("operationtype".into(), json!(1));
            o.insert("statuscode".into(), json!(31));
            o.insert("statecode".into(), json!(3));
            o.insert("message".into(), json!(message));
            o.insert("friendlymessage".into(), json!(message));
            o.insert("primaryentitytype".into(), json!(logical));
            o.insert("_regardingobjectid_value".into(), Value::Null);
            o.insert("createdon".into(), json!(at));
            o.insert("completedon".into(), json!(at));
            o.insert("correlationid".into(), json!(id));
            self.push_system_row(ASYNC_OPERATIONS_SET, o);
            if plugin {
                let tid = self.next_guid();
                let mut t = Map::new();
                t.insert("plugintracelogid".into(), json!(tid));
                t.insert(
                    "typename".into(),
                    json!("Microsoft.Dynamics.Integrator.DualWriteRuntime.Plugins.PostCommitPlugin"),
                );
                t.insert("messagename".into(), json!("Create"));
                t.insert("primaryentity".into(), json!(logical));
                t.insert("exceptiondetails".into(), json!(message));
                t.insert("messageblock".into(), json!(format!("{category}: {key}")));
                t.insert("createdon".into(), json!(at));
                t.insert("correlationid".into(), json!(id));
                self.push_system_row(PLUGIN_TRACE_SET, t);
            }
        }
    }

    fn push_system_row(&mut self, set: &str, row: Map<String, Value>) {
        if let Some(&i) = self.dv_idx.get(set) {
            let n = self.dv[i].next_n;
            self.dv[i].next_n += 1;
            self.dv[i].push(Row {
                owned: Some(Box::new(row)),
                ..Row::generated(NO_COMPANY, n)
            });
        }
    }

    /// Our model: a later initial-sync pass of the map that completes re-ran its failed rows, so its DMF
    /// execution reports no errors any more. Live-sync failures (system jobs) are never resolved.
    pub fn resolve_errors(&mut self, map: &str) {
        for e in &mut self.errors {
            if e.map == map && matches!(e.origin, ErrorOrigin::InitialSync { .. }) {
                e.resolved = true;
            }
        }
    }

    /// Dataverse's own `asyncoperations` and `plugintracelogs` tables, empty until something fails.
    fn add_system_tables(&mut self) {
        let tables: [(&str, &str, &str, &[&str]); 2] = [
            (
                ASYNC_OPERATIONS_SET,
                "asyncoperation",
                "asyncoperationid",
                &[
                    "name",
                    "operationtype",
                    "statuscode",
                    "statecode",
                    "message",
                    "friendlymessage",
                    "primaryentitytype",
                    "_regardingobjectid_value",
                    "createdon",
                    "completedon",
                    "correlationid",
                ],
            ),
            (
                PLUGIN_TRACE_SET,
                "plugintracelog",
                "plugintracelogid",
                &[
                    "typename",
                    "messagename",
                    "primaryentity",
                    "exceptiondetails",
                    "messageblock",
                    "createdon",
                    "correlationid",
                ],
            ),
        ];
        for (set, logical, id, fields) in tables {
            if self.dv_idx.contains_key(set) {
                continue;
            }
            let def = EntityDef {
                id: Some(id.into()),
                logical_name: Some(logical.into()),
                fields: fields
                    .iter()
                    .map(|f| {
                        let kind = if matches!(*f, "statuscode" | "statecode" | "operationtype") {
                            "int"
                        } else {
                            "text"
                        };
                        (f.to_string(), kind.to_string())
                    })
                    .collect(),
                rows: Rows::default(),
                ..EntityDef::default()
            };
            let t = Table::new(set, Side::Dataverse, &def, &self.companies, self.scenario.seed);
            self.dv_idx.insert(t.name.clone(), self.dv.len());
            self.dv.push(t);
        }
    }

    /// The tables and what travels between them, to undo a failed `$batch` change set.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            fno: self.fno.clone(),
            dv: self.dv.clone(),
            maps: self.maps.clone(),
            pending: self.pending.clone(),
            side_effects: self.side_effects.clone(),
        }
    }

    /// Puts back what [`SimState::checkpoint`] took.
    pub fn restore(&mut self, c: Checkpoint) {
        self.fno = c.fno;
        self.dv = c.dv;
        self.maps = c.maps;
        self.pending = c.pending;
        self.side_effects = c.side_effects;
    }

    /// RFC 3339 of a simulated instant.
    pub fn sim_time(&self, t: f64) -> String {
        let ms = (t * 1000.0) as i64;
        (self.scenario.start + chrono::Duration::milliseconds(ms))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// The `/_sim/state` document.
    pub fn inspect(&self) -> Value {
        let fno: BTreeMap<&str, u64> = self.fno.iter().map(|t| (t.name.as_str(), t.len())).collect();
        let dv: BTreeMap<&str, u64> = self.dv.iter().map(|t| (t.name.as_str(), t.len())).collect();
        let maps: BTreeMap<&str, Value> = self
            .maps
            .iter()
            .map(|m| (m.def.name.as_str(), m.to_json()))
            .collect();
        let jobs: BTreeMap<&str, Value> = self
            .jobs
            .iter()
            .map(|(id, j)| (id.as_str(), json!(j.status(self.now))))
            .collect();
        json!({
            "side_effects": self.side_effects,
            "tables": {"fno": fno, "dataverse": dv},
            "maps": maps,
            "dmf_jobs": jobs,
            "time_scale": self.scenario.time_scale,
            "sim_now": self.sim_time(self.now),
            "requests": self.requests,
            "webhooks": self.webhooks.len(),
            "automation": self.automation_json(),
        })
    }

    /// Records one request in [`SimState::request_log`].
    pub fn log_request(&mut self, method: &str, path: &str, query: Option<&str>) {
        if self.request_log.len() >= REQUEST_LOG_CAP {
            self.request_log.pop_front();
        }
        self.request_log
            .push_back((method.to_owned(), path.to_owned(), query.map(str::to_owned)));
    }

    /// The company index of a row given its `dataAreaId`/company-field value.
    pub fn company_of(&self, v: Option<&Value>) -> u16 {
        v.and_then(Value::as_str)
            .and_then(|s| super::odata::company_index(&self.companies, s))
            .unwrap_or(NO_COMPANY)
    }

    /// Row count of a scenario `rows` value for one company index.
    pub fn rows_for(&self, rows: &Rows, company: u16) -> u64 {
        match rows {
            Rows::Shared(n) if company == NO_COMPANY => *n,
            Rows::Shared(_) => 0,
            Rows::PerCompany(m) => self
                .companies
                .get(company as usize)
                .and_then(|c| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)))
                .map_or(0, |(_, v)| *v),
        }
    }
}
