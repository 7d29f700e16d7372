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

/// The F&O entity set that holds the dual-write error queue (our model of `DualWriteErrorLog`).
pub const ERROR_LOG_SET: &str = "DualWriteErrorLogs";

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
    pub request_log: std::collections::VecDeque<(String, String)>,
    pub snapshot: (f64, HashMap<String, u64>),
    pub webhooks: Vec<Value>,
    pub sp: HashMap<String, SpWindow>,
    /// Simulated seconds since start, as of the last advance.
    pub now: f64,
    seq: u64,
    error_seq: u64,
}

impl SimState {
    pub fn new(scenario: Scenario) -> SimState {
        let companies: Vec<String> = scenario.companies.iter().map(|c| c.to_uppercase()).collect();
        let default_company =
            super::odata::company_index(&companies, &scenario.default_company()).unwrap_or(0);
        let seed = scenario.seed;
        let mut fno: Vec<Table> = scenario
            .entities
            .fno
            .iter()
            .map(|(n, d)| Table::new(n, Side::Fno, d, &companies, seed))
            .collect();
        if !scenario.entities.fno.contains_key(ERROR_LOG_SET) {
            // Its rows are written by `log_error`; the fields make its properties known.
            let fields = [
                ("ErrorId", "int"),
                ("LogDateTime", "text"),
                ("MapName", "text"),
                ("SourceEntity", "text"),
                ("TargetEntity", "text"),
                ("RecordKey", "text"),
                ("Category", "text"),
                ("ErrorMessage", "text"),
                ("Status", "text"),
                ("dataAreaId", "text"),
            ];
            let def = EntityDef {
                key: Some("ErrorId".into()),
                fields: fields
                    .iter()
                    .map(|(f, k)| (f.to_string(), k.to_string()))
                    .collect(),
                ..EntityDef::default()
            };
            fno.push(Table::new(ERROR_LOG_SET, Side::Fno, &def, &companies, seed));
        }
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
            sp: HashMap::new(),
            now: 0.0,
            seq: 0,
            error_seq: 0,
            scenario,
        };
        st.init_maps();
        st.add_legal_entities();
        st.take_snapshot();
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

    /// Appends an entry to the dual-write error queue.
    pub fn log_error(&mut self, map: usize, key: &str, category: &str, message: &str, company: u16) {
        self.error_seq += 1;
        let m = &self.maps[map];
        let sim_time = self.sim_time(self.now);
        let company = self
            .companies
            .get(company as usize)
            .map(|c| c.to_lowercase())
            .unwrap_or_else(|| "dat".into());
        let mut row = Map::new();
        row.insert("ErrorId".into(), json!(self.error_seq));
        row.insert("LogDateTime".into(), json!(sim_time));
        row.insert("MapName".into(), json!(m.def.name));
        row.insert("SourceEntity".into(), json!(m.def.source));
        row.insert("TargetEntity".into(), json!(m.def.target));
        row.insert("RecordKey".into(), json!(key));
        row.insert("Category".into(), json!(category));
        row.insert("ErrorMessage".into(), json!(message));
        row.insert("Status".into(), json!("Active"));
        row.insert("dataAreaId".into(), json!(company));
        if let Some(&i) = self.fno_idx.get(ERROR_LOG_SET) {
            self.fno[i].push(super::tables::Row {
                company: NO_COMPANY,
                n: self.error_seq as u32,
                rev: 0,
                via_origin: false,
                corrupt: false,
                owned: Some(Box::new(row)),
            });
        }
    }

    /// Marks a map's active error-queue entries `Resolved` (our model: an initial sync that
    /// completes after a Resume has retried its failed rows successfully).
    pub fn resolve_errors(&mut self, map: &str) {
        let Some(&i) = self.fno_idx.get(ERROR_LOG_SET) else {
            return;
        };
        for row in &mut self.fno[i].rows {
            if let Some(o) = row.owned.as_mut() {
                if o.get("MapName").and_then(Value::as_str) == Some(map) {
                    o.insert("Status".into(), json!("Resolved"));
                }
            }
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
        })
    }

    /// Records one request in [`SimState::request_log`].
    pub fn log_request(&mut self, method: &str, path: &str) {
        if self.request_log.len() >= REQUEST_LOG_CAP {
            self.request_log.pop_front();
        }
        self.request_log.push_back((method.to_owned(), path.to_owned()));
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
