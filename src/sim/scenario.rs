//! The scenario file: what the simulated estate holds and how it misbehaves.
//!
//! Every struct denies unknown fields so a typo is an error with its line and column, not a silently
//! ignored setting. Durations are either a number of seconds or a string `30s`, `10m`, `2h`, `1d`.
//! Durations of *simulated* things (sync rates, DMF jobs, live writes, lags) are scaled by
//! `time_scale`; latency, token TTL, Retry-After and throttling windows are real time.
//! The format is described for users in `docs/simulator.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::faults::Faults;

/// The demo estate (see `runbooks/scenarios/demo.yaml`), embedded so `cutover sim` needs no file.
pub const DEMO_YAML: &str = include_str!("../../runbooks/scenarios/demo.yaml");

/// A parsed, validated scenario.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    /// Seed of every pseudo-random choice (row values, corrupt rows, fault points).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated seconds per real second.
    #[serde(default = "one")]
    pub time_scale: f64,
    /// The simulated clock's value when the server starts.
    #[serde(default = "default_start")]
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub latency: Latency,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Legal entities, upper case (`USMF`). F&O rows carry them lower case in `dataAreaId`.
    pub companies: Vec<String>,
    /// The caller's default company (F&O queries without `cross-company=true` see only it).
    #[serde(default)]
    pub default_company: Option<String>,
    #[serde(default)]
    pub fno: FnoConfig,
    #[serde(default)]
    pub dataverse: DataverseConfig,
    pub entities: Entities,
    #[serde(default)]
    pub maps: Vec<MapDef>,
    #[serde(default)]
    pub dual_write: DualWriteConfig,
    #[serde(default)]
    pub dmf: DmfConfig,
    #[serde(default)]
    pub live_writes: Vec<LiveWrite>,
    #[serde(default)]
    pub faults: Faults,
}

fn default_seed() -> u64 {
    42
}
fn one() -> f64 {
    1.0
}
fn default_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T18:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A duration in seconds; YAML accepts `90`, `90s`, `10m`, `2h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(try_from = "DurRepr", into = "f64")]
pub struct Dur(pub f64);

#[derive(Deserialize)]
#[serde(untagged)]
enum DurRepr {
    Num(f64),
    Text(String),
}

impl From<Dur> for f64 {
    fn from(d: Dur) -> f64 {
        d.0
    }
}

impl TryFrom<DurRepr> for Dur {
    type Error = String;
    fn try_from(r: DurRepr) -> Result<Self, String> {
        match r {
            DurRepr::Num(n) if n >= 0.0 => Ok(Dur(n)),
            DurRepr::Num(n) => Err(format!("a duration cannot be negative ({n})")),
            DurRepr::Text(t) => parse_duration(&t).map(Dur),
        }
    }
}

/// Parses `90`, `1.5s`, `10m`, `2h`, `1d` into seconds.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        Some((i, 'd')) => (&t[..i], 86400.0),
        _ => (t, 1.0),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| n * mult)
        .ok_or_else(|| format!("`{text}` is not a duration (use 90, 30s, 10m, 2h or 1d)"))
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Real milliseconds added before every response.
    #[serde(default)]
    pub ms: u64,
    /// Up to this many extra real milliseconds, drawn deterministically per request.
    #[serde(default)]
    pub jitter_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Token lifetime in real seconds.
    #[serde(default = "default_ttl")]
    pub token_ttl: u64,
    /// When set, only this client id is accepted.
    #[serde(default)]
    pub client_id: Option<String>,
    /// When set, only this secret is accepted.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub resources: Resources,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl: default_ttl(),
            client_id: None,
            client_secret: None,
            resources: Resources::default(),
        }
    }
}

fn default_ttl() -> u64 {
    3599
}

/// The resource URI (token audience) of each service; a service with none accepts any audience.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub fno: Option<String>,
    #[serde(default)]
    pub dataverse: Option<String>,
    #[serde(default)]
    pub dualwrite: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FnoConfig {
    /// Server page size (the service maximum is 10,000).
    #[serde(default = "fno_page")]
    pub page_size: usize,
}

impl Default for FnoConfig {
    fn default() -> Self {
        FnoConfig {
            page_size: fno_page(),
        }
    }
}
fn fno_page() -> usize {
    10_000
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataverseConfig {
    /// Page size when the client sends no `Prefer: odata.maxpagesize` (the service maximum is 5,000).
    #[serde(default = "dv_page")]
    pub page_size: usize,
    /// `$count` cap (5,000 standard tables; 500 for elastic tables).
    #[serde(default = "count_cap")]
    pub count_cap: u64,
    /// FetchXML aggregate limit.
    #[serde(default = "agg_limit")]
    pub aggregate_limit: u64,
    /// How often (simulated) the `RetrieveTotalRecordCount` snapshot is refreshed.
    #[serde(default = "snapshot_every")]
    pub snapshot_every: Dur,
    #[serde(default)]
    pub service_protection: ServiceProtection,
}

impl Default for DataverseConfig {
    fn default() -> Self {
        DataverseConfig {
            page_size: dv_page(),
            count_cap: 5000,
            aggregate_limit: agg_limit(),
            snapshot_every: snapshot_every(),
            service_protection: ServiceProtection::default(),
        }
    }
}
fn dv_page() -> usize {
    5000
}
fn count_cap() -> u64 {
    5000
}
fn agg_limit() -> u64 {
    50_000
}
fn snapshot_every() -> Dur {
    Dur(86_400.0)
}

/// Dataverse service-protection limits, per token (user), over a sliding real-time window.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceProtection {
    #[serde(default = "sp_requests")]
    pub requests: u64,
    /// Window length in real seconds.
    #[serde(default = "sp_window")]
    pub window: Dur,
    /// Combined execution time limit (ms) over the window.
    #[serde(default = "sp_exec")]
    pub execution_ms: u64,
    /// Execution time each request is charged (ms); 0 turns the execution-time limit off.
    #[serde(default)]
    pub request_cost_ms: u64,
    #[serde(default = "sp_conc")]
    pub concurrent: u64,
    /// Retry-After seconds on a service-protection 429.
    #[serde(default = "sp_retry")]
    pub retry_after: u64,
}

impl Default for ServiceProtection {
    fn default() -> Self {
        ServiceProtection {
            requests: sp_requests(),
            window: sp_window(),
            execution_ms: sp_exec(),
            request_cost_ms: 0,
            concurrent: sp_conc(),
            retry_after: sp_retry(),
        }
    }
}
fn sp_requests() -> u64 {
    6000
}
fn sp_window() -> Dur {
    Dur(300.0)
}
fn sp_exec() -> u64 {
    1_200_000
}
fn sp_conc() -> u64 {
    52
}
fn sp_retry() -> u64 {
    30
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entities {
    #[serde(default)]
    pub fno: BTreeMap<String, EntityDef>,
    #[serde(default)]
    pub dataverse: BTreeMap<String, EntityDef>,
}

/// One entity set. F&O sets with per-company `rows` are company-specific (rows carry `dataAreaId`);
/// a plain number makes a shared (global) set.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDef {
    /// The key (F&O) or alternate-key (Dataverse) field; values look like `US-000123`.
    #[serde(default)]
    pub key: Option<String>,
    /// Key prefix; default: the company's first two letters, or the set's first three for shared sets.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Dataverse primary id field; default `<logical name>id`.
    #[serde(default)]
    pub id: Option<String>,
    /// Dataverse logical name (used by RetrieveTotalRecordCount); default derived from the set name.
    #[serde(default)]
    pub logical_name: Option<String>,
    #[serde(default)]
    pub rows: Rows,
    /// Generated fields: `name`, `phone`, `email`, `city`, `amount`, `int`, `date`, `bool`, `text`,
    /// `enum:A|B|C` or `const:VALUE`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Dataverse field that holds the company code of a row (`cdm_companyid`).
    #[serde(default)]
    pub company_field: Option<String>,
}

/// Row counts: one number (shared set) or one per company.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Rows {
    Shared(u64),
    PerCompany(BTreeMap<String, u64>),
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Shared(0)
    }
}

impl Rows {
    pub fn total(&self) -> u64 {
        match self {
            Rows::Shared(n) => *n,
            Rows::PerCompany(m) => m.values().sum(),
        }
    }
}

/// Error categories of the dual-write error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    MissingLookup,
    EnumConversion,
    MissingFieldMapping,
    PluginException,
    CompanyContext,
    DuplicateKey,
    SampleMismatch,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MissingLookup => "missing_lookup",
            Category::EnumConversion => "enum_conversion",
            Category::MissingFieldMapping => "missing_field_mapping",
            Category::PluginException => "plugin_exception",
            Category::CompanyContext => "company_context",
            Category::DuplicateKey => "duplicate_key",
            Category::SampleMismatch => "sample_mismatch",
        }
    }
}

/// A dual-write map between an F&O set and a Dataverse set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapDef {
    pub name: String,
    /// F&O entity set.
    pub source: String,
    /// Dataverse entity set.
    pub target: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub key: Option<KeyPair>,
    /// Source field → target field.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Initial-sync rate, rows per simulated second.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// The initial sync fails on this (1-based) row, once: rows before it stay copied.
    #[serde(default)]
    pub fail_at_row: Option<u64>,
    #[serde(default)]
    pub category: Option<Category>,
    #[serde(default)]
    pub message: Option<String>,
    /// Share (0..1) of target rows whose first compared field differs from the source.
    #[serde(default)]
    pub corrupt_share: f64,
    #[serde(default)]
    pub initial: MapInitial,
}

fn default_rate() -> f64 {
    100.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialStatus {
    #[default]
    NotRunning,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapInitial {
    #[serde(default)]
    pub status: InitialStatus,
    /// The target already holds a copy of every source row.
    #[serde(default)]
    pub preloaded: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DualWriteConfig {
    /// Simulated delay before a live change on one side shows on the other.
    #[serde(default = "lag")]
    pub lag: Dur,
    /// Simulated time a gateway request stays Waiting before Completed.
    #[serde(default = "req_delay")]
    pub request_delay: Dur,
    /// Replay rate of a paused map's queue on Resume, rows per simulated second.
    #[serde(default = "default_rate")]
    pub replay_rate: f64,
    /// Estimated size of one queued change (bytes), for the 1 GB pause limit.
    #[serde(default = "row_bytes")]
    pub queued_row_bytes: u64,
    #[serde(default = "queue_bytes")]
    pub queue_max_bytes: u64,
    #[serde(default = "queue_age")]
    pub queue_max_age: Dur,
}

impl Default for DualWriteConfig {
    fn default() -> Self {
        DualWriteConfig {
            lag: lag(),
            request_delay: req_delay(),
            replay_rate: default_rate(),
            queued_row_bytes: row_bytes(),
            queue_max_bytes: queue_bytes(),
            queue_max_age: queue_age(),
        }
    }
}
fn lag() -> Dur {
    Dur(60.0)
}
fn req_delay() -> Dur {
    Dur(5.0)
}
fn row_bytes() -> u64 {
    2048
}
fn queue_bytes() -> u64 {
    1 << 30
}
fn queue_age() -> Dur {
    Dur(86_400.0)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DmfConfig {
    /// Behaviour of jobs whose definition group is not listed.
    #[serde(default)]
    pub default_job: JobBehaviour,
    #[serde(default)]
    pub definition_groups: BTreeMap<String, GroupDef>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    #[serde(default)]
    pub job: JobBehaviour,
    #[serde(default)]
    pub entities: Vec<DmfEntity>,
}

/// An entity of a definition group: what an import loads, what an export covers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DmfEntity {
    /// The DMF entity name used by the per-entity error APIs (e.g. `Customers V3`).
    pub name: String,
    /// The F&O set the import loads into.
    pub entity_set: String,
    /// Rows an import adds (per company or shared).
    #[serde(default)]
    pub rows: Rows,
    /// Rows that fail staging → target (they are not loaded).
    #[serde(default)]
    pub target_errors: u64,
    /// Rows that fail source → staging.
    #[serde(default)]
    pub staging_errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum Outcome {
    #[default]
    Succeeded,
    PartiallySucceeded,
    Failed,
    Canceled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "Succeeded",
            Outcome::PartiallySucceeded => "PartiallySucceeded",
            Outcome::Failed => "Failed",
            Outcome::Canceled => "Canceled",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobBehaviour {
    /// Simulated time in `NotRun` (queued in the batch framework).
    #[serde(default = "queued")]
    pub queued: Dur,
    /// Simulated time in `Executing`.
    #[serde(default = "duration")]
    pub duration: Dur,
    #[serde(default)]
    pub outcome: Outcome,
    /// Simulated time GenerateImportTargetErrorKeysFile takes before the URL is non-empty.
    #[serde(default = "gen_delay")]
    pub error_file_delay: Dur,
}

impl Default for JobBehaviour {
    fn default() -> Self {
        JobBehaviour {
            queued: queued(),
            duration: duration(),
            outcome: Outcome::Succeeded,
            error_file_delay: gen_delay(),
        }
    }
}
fn queued() -> Dur {
    Dur(30.0)
}
fn duration() -> Dur {
    Dur(600.0)
}
fn gen_delay() -> Dur {
    Dur(60.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Fno,
    Dataverse,
}

/// Records created and updated on one side while the weekend runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LiveWrite {
    pub side: Side,
    pub entity: String,
    /// Company of created rows (company-specific sets); default the default company.
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub creates_per_hour: f64,
    #[serde(default)]
    pub updates_per_hour: f64,
    /// Rows created at once when the window opens.
    #[serde(default)]
    pub burst: u64,
    /// Window start (simulated), from the server start or from the trigger.
    #[serde(default)]
    pub start: Dur,
    /// Window length (simulated); none = open-ended.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// The window opens only once all these maps are Running.
    #[serde(default)]
    pub after_running: Vec<String>,
    /// Propagation lag for these writes (simulated); default `dual_write.lag`.
    #[serde(default)]
    pub lag: Option<Dur>,
}

impl Scenario {
    /// Parses and validates a scenario; errors carry the line and column.
    pub fn from_yaml(text: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            SimError::Scenario {
                line,
                column,
                message: e.to_string(),
            }
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The embedded demo scenario.
    pub fn demo() -> Scenario {
        match Scenario::from_yaml(DEMO_YAML) {
            Ok(s) => s,
            // The demo is tested (`demo_scenario_parses`); an empty estate is the safe fallback.
            Err(_) => Scenario::minimal(),
        }
    }

    fn minimal() -> Scenario {
        Scenario {
            name: "minimal".into(),
            seed: default_seed(),
            time_scale: 1.0,
            start: default_start(),
            latency: Latency::default(),
            auth: AuthConfig::default(),
            companies: vec!["USMF".into()],
            default_company: None,
            fno: FnoConfig::default(),
            dataverse: DataverseConfig::default(),
            entities: Entities::default(),
            maps: Vec::new(),
            dual_write: DualWriteConfig::default(),
            dmf: DmfConfig::default(),
            live_writes: Vec::new(),
            faults: Faults::default(),
        }
    }

    /// The default company (upper case).
    pub fn default_company(&self) -> String {
        self.default_company
            .clone()
            .or_else(|| self.companies.first().cloned())
            .unwrap_or_default()
            .to_uppercase()
    }

    /// Cross-reference checks that the YAML shape cannot express.
    fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Invalid(m));
        if self.time_scale <= 0.0 || !self.time_scale.is_finite() {
            return bad(format!("time_scale must be positive, got {}", self.time_scale));
        }
        if self.companies.is_empty() {
            return bad("companies must list at least one legal entity".into());
        }
        if self.fno.page_size == 0 || self.fno.page_size > 10_000 {
            return bad("fno.page_size must be 1..=10000".into());
        }
        if self.dataverse.page_size == 0 || self.dataverse.page_size > 5000 {
            return bad("dataverse.page_size must be 1..=5000".into());
        }
        let known = |c: &str| self.companies.iter().any(|k| k.eq_ignore_ascii_case(c));
        for (side, defs) in [
            ("fno", &self.entities.fno),
            ("dataverse", &self.entities.dataverse),
        ] {
            for (set, def) in defs {
                if let Rows::PerCompany(m) = &def.rows {
                    if let Some(c) = m.keys().find(|c| !known(c)) {
                        return bad(format!("entities.{side}.{set}: unknown company {c}"));
                    }
                }
                for (field, kind) in &def.fields {
                    super::state::FieldKind::parse(kind).map_err(|e| {
                        SimError::Invalid(format!("entities.{side}.{set}.fields.{field}: {e}"))
                    })?;
                }
            }
        }
        let names: Vec<&str> = self.maps.iter().map(|m| m.name.as_str()).collect();
        for m in &self.maps {
            if !self.entities.fno.contains_key(&m.source) {
                return bad(format!(
                    "map {}: source {} is not an F&O entity",
                    m.name, m.source
                ));
            }
            if !self.entities.dataverse.contains_key(&m.target) {
                return bad(format!(
                    "map {}: target {} is not a Dataverse entity",
                    m.name, m.target
                ));
            }
            if let Some(d) = m.depends_on.iter().find(|d| !names.contains(&d.as_str())) {
                return bad(format!("map {}: depends_on names unknown map {d}", m.name));
            }
            if !(0.0..=1.0).contains(&m.corrupt_share) || m.rate <= 0.0 {
                return bad(format!(
                    "map {}: corrupt_share must be 0..1 and rate positive",
                    m.name
                ));
            }
            if m.fail_at_row.is_some() && m.category.is_none() {
                return bad(format!("map {}: fail_at_row needs a category", m.name));
            }
        }
        for lw in &self.live_writes {
            let defs = match lw.side {
                Side::Fno => &self.entities.fno,
                Side::Dataverse => &self.entities.dataverse,
            };
            if !defs.contains_key(&lw.entity) {
                return bad(format!("live_writes: unknown {:?} entity {}", lw.side, lw.entity));
            }
            if let Some(m) = lw.after_running.iter().find(|m| !names.contains(&m.as_str())) {
                return bad(format!("live_writes: after_running names unknown map {m}"));
            }
        }
        for (g, def) in &self.dmf.definition_groups {
            if let Some(e) = def
                .entities
                .iter()
                .find(|e| !self.entities.fno.contains_key(&e.entity_set))
            {
                return bad(format!(
                    "dmf.definition_groups.{g}: unknown F&O entity set {}",
                    e.entity_set
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_scenario_parses() {
        let s = Scenario::from_yaml(DEMO_YAML).unwrap();
        assert_eq!(s.maps.len(), 13);
        assert_eq!(
            s.entities.fno.values().map(|e| e.rows.total()).sum::<u64>(),
            134_893
        );
        assert_eq!(Scenario::demo().name, "demo");
    }

    #[test]
    fn unknown_field_reports_line_and_column() {
        let err = Scenario::from_yaml("companies: [USMF]\nentities: {}\nlatencyy: 3\n").unwrap_err();
        match err {
            SimError::Scenario { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
        assert!(matches!(
            Scenario::from_yaml("companies: []\nentities: {}\n"),
            Err(SimError::Invalid(_))
        ));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m").unwrap(), 600.0);
        assert_eq!(parse_duration("90").unwrap(), 90.0);
        assert!(parse_duration("ten").is_err());
    }
}
