//! The sections of a scenario file (see `scenario.rs` for the whole and `docs/simulator.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::auth::config::{
    DeviceCodeConfig, FederatedCredential, IdentityIds, ManagedIdentities, Principal, RegisteredCertificate,
    User,
};
use super::scenario::Dur;

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
    /// The tenant id put in tokens (`tid`); default a fixed GUID.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// App registrations beyond `client_id`/`client_secret`: secrets, certificates, federated credentials.
    #[serde(default)]
    pub principals: Vec<Principal>,
    /// Users who can sign in (device code) and whose tokens `/_sim/users/token` hands out (the `az` stand-in).
    #[serde(default)]
    pub users: Vec<User>,
    /// Managed identities of the machine; none means IMDS answers "Identity not found".
    #[serde(default)]
    pub managed_identity: Option<ManagedIdentities>,
    #[serde(default)]
    pub device_code: DeviceCodeConfig,
    /// Lifetime of a user's access token in real seconds (default `token_ttl`).
    #[serde(default)]
    pub user_token_ttl: Option<u64>,
    /// Seconds Entra's clock runs ahead of this machine's (negative: behind), for the assertion time checks.
    #[serde(default)]
    pub clock_skew: i64,
    /// The Entra tenants that exist; when any is declared, a token or discovery request naming
    /// another tenant gets AADSTS90002. None declared: every tenant exists.
    #[serde(default)]
    pub tenants: Vec<TenantDef>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_ttl: default_ttl(),
            client_id: None,
            client_secret: None,
            resources: Resources::default(),
            tenant_id: None,
            principals: Vec::new(),
            users: Vec::new(),
            managed_identity: None,
            device_code: DeviceCodeConfig::default(),
            user_token_ttl: None,
            clock_skew: 0,
            tenants: Vec::new(),
        }
    }
}

/// An Entra tenant: its id (a GUID) and the domain names that also name it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    pub id: String,
    #[serde(default)]
    pub domains: Vec<String>,
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
    /// Entity sets the console's user may not read: 403 `0x80040220` (a missing privilege).
    #[serde(default)]
    pub forbidden: Vec<String>,
    /// Registered plug-in steps (`sdkmessageprocessingsteps`), one per table and message.
    #[serde(default)]
    pub plugin_steps: Vec<PluginStepDef>,
    /// Cloud flows (`workflows`, category 5) triggered on a table.
    #[serde(default)]
    pub flows: Vec<FlowDef>,
}

/// A plug-in step registered on a table's message.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginStepDef {
    /// The step's name (`Contoso.Plugins.SalesOrderCheck: Update of salesorder`).
    pub name: String,
    /// The Dataverse entity set it is registered on (`salesorders`).
    pub table: String,
    /// `Create` or `Update`.
    pub message: String,
    /// Enabled when the world starts (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// While enabled, every record dual-write pushes into the table fails with this plug-in's exception.
    #[serde(default)]
    pub throws_on_dual_write: bool,
}

/// A cloud flow triggered when a row of a table is added or modified.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    pub name: String,
    /// The Dataverse entity set its trigger watches.
    pub table: String,
    /// On (activated) when the world starts (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for DataverseConfig {
    fn default() -> Self {
        DataverseConfig {
            page_size: dv_page(),
            count_cap: 5000,
            aggregate_limit: agg_limit(),
            snapshot_every: snapshot_every(),
            service_protection: ServiceProtection::default(),
            forbidden: Vec::new(),
            plugin_steps: Vec::new(),
            flows: Vec::new(),
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
    /// Dataverse text column that holds the company code of a row (a custom table's choice; the
    /// out-of-box tables use a lookup, see `company_lookup`).
    #[serde(default)]
    pub company_field: Option<String>,
    /// Dataverse lookup to `cdm_company` that stripes the table by company (`msdyn_company`, read as
    /// `_msdyn_company_value`, a GUID). Default for a map's target whose F&O source is per company:
    /// `msdyn_company`.
    #[serde(default)]
    pub company_lookup: Option<String>,
    /// Dataverse lookups: logical name → the entity set it points at (`primarycontactid: contacts`).
    /// Rows read them as `_<name>_value`; `$expand=<name>` returns the related row or null.
    #[serde(default)]
    pub lookups: BTreeMap<String, String>,
    /// Dataverse `PrimaryNameAttribute`; default `name` when the table has it, else the first
    /// column ending in `name`.
    #[serde(default)]
    pub primary_name: Option<String>,
    /// F&O entity type name in `$metadata` (`CustomerV3`); default: the set name made singular.
    #[serde(default)]
    pub entity_type: Option<String>,
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

/// Error categories of a map's failures (shown on the gateway's initial-sync details).
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
    /// The map's value maps, by source field: F&O enum member → Dataverse option value. A member the map
    /// does not list is copied as an empty choice.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, i64>>,
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
    /// The map's own filter on the source (an OData `$filter` expression, e.g. `PartyType eq 'Organization'`):
    /// only matching rows are copied, as dual-write does with a map's filter.
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub initial: MapInitial,
    /// The DMF execution id of the map's initial sync (a `DWM` project); default `DWM-<name>`. Its
    /// failed rows are served by `GetExecutionErrors` for this id.
    #[serde(default)]
    pub execution_id: Option<String>,
    /// Every Nth change this map carries into Dataverse fails (not written; a failed system job).
    #[serde(default)]
    pub live_fail_every: Option<u64>,
    /// Live failures are plug-in failures: each also leaves a `plugintracelogs` row.
    #[serde(default)]
    pub live_fail_plugin: bool,
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
