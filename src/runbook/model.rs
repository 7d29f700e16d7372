//! The typed runbook model (format version 1, see `/work/shared/runbook-format.md` and the README's
//! "Runbook format"). Every struct rejects unknown fields so a typo fails validation instead of being
//! ignored. Strings containing `${...}` are kept as written: interpolation happens at run time
//! ([`super::vars::interpolate`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::duration::{Duration, Timestamp};

pub use crate::model::StepId;

/// `StepId` lives in the model (which knows no schema crate); its schema is written here, as the
/// derive wrote it.
impl JsonSchema for StepId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StepId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A step id as written in the runbook (`[A-Za-z0-9_-]+`). Planned steps a wave expands into use\n`<wave-id>:<map-id>` and `<wave-id>:gate`, which cannot collide with user ids.",
            "type": "string"
        })
    }
}

/// A map id (a key of `maps:`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct MapId(pub String);

crate::model::id_impls!(MapId);

impl From<MapId> for String {
    fn from(id: MapId) -> String {
        id.0
    }
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A cutover runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "cutover runbook (format version 1)")]
pub struct Runbook {
    /// Name of the runbook, `[a-z0-9-]+`.
    pub runbook: String,
    /// Version of this runbook (semver, e.g. `1.4.2`).
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The business freeze; the console counts down to `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_window: Option<FreezeWindow>,
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    /// Named environments; at least one.
    pub environments: BTreeMap<String, Environment>,
    /// Dual-write table maps (or any source → target pair), by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub maps: BTreeMap<MapId, MapSpec>,
    /// Phases, run in order.
    pub phases: Vec<Phase>,
    /// Who may confirm a point of no return or waive a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Approvals>,
    /// How the journal is kept beyond its hash chain: signed checkpoints and their witnesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalSettings>,
    /// Named places alerts, failed gates, failed steps and decisions waiting on a person are sent to (and
    /// that a `notify` step can name with `to`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notify_targets: BTreeMap<String, NotifyTarget>,
}

/// One `notify_targets` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyTarget {
    /// `teams` (an Adaptive Card, as Teams incoming webhooks and Workflows accept it) or `webhook` (plain JSON).
    pub kind: NotifyKind,
    /// The webhook URL, through one `${VAR}`: it carries its own access token.
    pub url: String,
    /// What is sent (built-in: all of `alert`, `gate`, `failure`, `decision`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<NotifyOn>,
    /// At most one message per (alert kind, map, company) in this long, the latest state winning (built-in 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<Duration>,
    /// A decision waiting on a person this long is sent (built-in 15m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_after: Option<Duration>,
}

impl NotifyTarget {
    /// Whether this target gets `what`.
    pub fn wants(&self, what: NotifyOn) -> bool {
        self.on.is_empty() || self.on.contains(&what)
    }
    /// The quiet period (environment time).
    pub fn quiet(&self) -> std::time::Duration {
        self.quiet
            .as_ref()
            .map_or(std::time::Duration::from_secs(30 * 60), Duration::as_std)
    }
    /// How long a decision may wait before it is sent (environment time).
    pub fn decision_after(&self) -> std::time::Duration {
        self.decision_after
            .as_ref()
            .map_or(std::time::Duration::from_secs(15 * 60), Duration::as_std)
    }
}

/// The payload a notify target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    Teams,
    Webhook,
}

/// What a notify target is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// `monitor` alerts (and their all-clear).
    Alert,
    /// A failed gate (and the gate passing later).
    Gate,
    /// A failed step (and the step succeeding later).
    Failure,
    /// A decision waiting on a person longer than `decision_after`.
    Decision,
}

/// `journal:` at the top of the runbook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalSettings {
    /// Signed checkpoints of the chain head (Ed25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<Checkpoints>,
}

/// `journal.checkpoints`: a checkpoint (event id, chain hash, time, key fingerprint, signature) is
/// journaled every `every` events and after every operator decision, gate verdict, phase end, resume,
/// runbook change and run end, and appended to every `witness` file as it is made. Signed either
/// in-process with an Ed25519 key file (`key`) or by an Azure Key Vault EC P-256 key (`key_vault`, ES256):
/// exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoints {
    /// The Ed25519 private key FILE, named through one `${VAR}` (PEM or DER PKCS#8, the raw 32-byte
    /// seed, or 64 hex digits). Its bytes are never journaled; its public key and fingerprint are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// An Azure Key Vault key that signs the checkpoints (ES256; the private key never leaves the vault):
    /// a `keyvault` environment and the key's name (and version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_vault: Option<KeyVaultKey>,
    /// A checkpoint after this many events without one (built-in 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u32>,
    /// Where each checkpoint is also sent as it is made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witness: Vec<Witness>,
}

/// `journal.checkpoints.key_vault`: the Key Vault key that signs the checkpoints. It must be an EC key on
/// P-256 whose `key_ops` include `sign`; its public JWK and fingerprint are journaled at the run's start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyVaultKey {
    /// A `keyvault` environment (its `url` is the vault, `https://NAME.vault.azure.net`; its `auth` gets a
    /// token for `https://vault.azure.net/.default`).
    pub environment: String,
    /// The key's name in the vault.
    pub key: String,
    /// The key's version (32 hex digits); none: the version current at the run's start, which is then
    /// the one every checkpoint of the run is signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One witness of the checkpoints: a `file` or a `notify` target (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Witness {
    /// A file (`${VAR}`s allowed) that gets one JSON line per checkpoint; keep it off the journal's disk
    /// (a witness in the journal's own directory is warned about). `cutover verify --anchors` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A `notify_targets` entry that gets each checkpoint as it is made, best-effort on its own task (a
    /// `webhook` target the witness line as the JSON body, a `teams` target a card with its facts); a
    /// delivery that fails is a journaled warning and the run carries on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

/// The label the console header, the plan and the report show when a run drives the dual-write gateway.
pub const GATEWAY_UNSUPPORTED: &str =
    "dual-write gateway mode: unsupported by Microsoft (the API of Microsoft's automation tool)";

impl Runbook {
    /// The `dualwrite` environments in `gateway` mode, by name (empty: nothing is unsupported).
    pub fn gateway_envs(&self) -> Vec<&str> {
        self.environments
            .iter()
            .filter(|(_, e)| e.kind == EnvKind::Dualwrite && e.mode == Some(DualWriteMode::Gateway))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Runbook-wide defaults; each has a built-in value (see the accessor methods).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Per step (built-in 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retries of transient failures (connect, 5xx, 429); built-in 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Polling interval for long operations (built-in 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Duration>,
    /// Maps running at once inside a wave (built-in 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Largest response body read from a service, per call: bytes, or `512KiB`, `64MiB`, `1GiB` (built-in
    /// 256MiB). A larger body fails the call naming it and the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response: Option<ByteSize>,
    /// Most pages (`@odata.nextLink`s) read for one listing (built-in 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pages: Option<u32>,
}

/// A size in bytes: a number, or a number with `B`, `KiB`, `MiB` or `GiB`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    /// The size in bytes, or `None` when the text is not a size.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            Self::Bytes(n) => Some(*n),
            Self::Text(t) => {
                let t = t.trim();
                let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let n: u64 = t[..digits].parse().ok()?;
                let unit: u64 = match t[digits..].trim() {
                    "" | "B" => 1,
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    _ => return None,
                };
                n.checked_mul(unit)
            }
        }
    }
}

impl Defaults {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
    pub fn timeout(&self) -> Duration {
        self.timeout
            .clone()
            .unwrap_or_else(|| Duration::from_secs(30 * 60))
    }
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(3)
    }
    pub fn poll(&self) -> Duration {
        self.poll.clone().unwrap_or_else(|| Duration::from_secs(10))
    }
    pub fn concurrency(&self) -> u32 {
        self.concurrency.unwrap_or(4)
    }
    /// `max_response` in bytes, when set and readable (`validate` reports an unreadable one).
    pub fn max_response_bytes(&self) -> Option<u64> {
        self.max_response
            .as_ref()
            .and_then(ByteSize::bytes)
            .filter(|n| *n > 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    Fno,
    Dataverse,
    Dualwrite,
    Http,
    /// An Azure Data Lake Storage Gen2 account holding an Azure Synapse Link for Dataverse export, read
    /// through the Blob API (so Microsoft's storage emulator serves it too).
    Adls,
    /// An Azure Databricks workspace: its Lakeflow Connect pipelines and a SQL warehouse.
    Databricks,
    /// An Azure Key Vault (`https://NAME.vault.azure.net`) whose key signs the journal's checkpoints
    /// (`journal.checkpoints.key_vault`).
    Keyvault,
}

impl EnvKind {
    /// The token scope an environment of this kind asks for when its `auth` names none.
    pub fn default_scope(self) -> Option<&'static str> {
        match self {
            Self::Adls => Some(STORAGE_SCOPE),
            Self::Databricks => Some(DATABRICKS_SCOPE),
            Self::Keyvault => Some(KEYVAULT_SCOPE),
            _ => None,
        }
    }
}

/// Azure Storage's token scope (ADLS Gen2 and the Blob API).
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
/// Azure Key Vault's token scope (every vault, public cloud).
pub const KEYVAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// The Azure Databricks resource's scope (its first-party application id).
pub const DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";

/// How a `dualwrite` environment is driven.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DualWriteMode {
    /// The console shows what to do in the dual-write workspace, the operator confirms, the console verifies.
    #[default]
    Operator,
    /// The console drives the dual-write management API (unsupported by Microsoft: opt-in).
    Gateway,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub kind: EnvKind,
    /// Base URL (for `dualwrite`, the gateway URL; gateway mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// `dualwrite` only: the linked pair `[fno-env, dataverse-env]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Vec<String>>,
    /// `dualwrite` only; `operator` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DualWriteMode>,
    /// `adls` only: the storage account name (`https://<account>.blob.core.windows.net`, unless `url` names
    /// another Blob endpoint, e.g. the storage emulator's `http://127.0.0.1:10000/devstoreaccount1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `adls` only: the container Synapse Link exports to (`dataverse-<envname>-<orgUniqueName>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `adls` only: a folder inside the container holding the export (none: the container's root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// `databricks` only: the SQL warehouse id `reconcile … engine: lake` sends its statements to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<String>,
    /// `databricks` only: the Lakeflow Connect pipelines by name, `{name: pipeline-id}` (one per Dataverse
    /// environment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pipelines: BTreeMap<String, String>,
    /// `databricks` only: the Unity Catalog catalog and schema the pipeline writes the tables to (sent with
    /// every statement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `databricks` only: a Databricks token, as one `${VAR}` (instead of `auth`, which gets an Entra token
    /// for the Azure Databricks resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"))]
    pub token: Option<String>,
    /// `adls` only: a shared access signature (the query string the portal or `az storage ... generate-sas`
    /// gives, read-and-list on the container), as one `${VAR}`, appended to every request to the account
    /// instead of an Entra token from `auth`. For an account that allows SAS, and for Microsoft's storage
    /// emulator (Azurite), which takes no Entra token over plain http.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"))]
    pub sas: Option<String>,
}

impl Environment {
    /// The dual-write mode (`operator` when absent).
    pub fn mode(&self) -> DualWriteMode {
        self.mode.unwrap_or_default()
    }

    /// A lake environment's own fields that are set, by name (each applies to one kind only).
    pub fn lake_fields(&self) -> Vec<(&'static str, EnvKind)> {
        let mut out = Vec::new();
        let mut add = |set: bool, name: &'static str, kind: EnvKind| {
            if set {
                out.push((name, kind));
            }
        };
        add(self.account.is_some(), "account", EnvKind::Adls);
        add(self.container.is_some(), "container", EnvKind::Adls);
        add(self.folder.is_some(), "folder", EnvKind::Adls);
        add(self.sas.is_some(), "sas", EnvKind::Adls);
        add(self.warehouse_id.is_some(), "warehouse_id", EnvKind::Databricks);
        add(!self.pipelines.is_empty(), "pipelines", EnvKind::Databricks);
        add(self.catalog.is_some(), "catalog", EnvKind::Databricks);
        add(self.schema.is_some(), "schema", EnvKind::Databricks);
        add(self.token.is_some(), "token", EnvKind::Databricks);
        out
    }
}

/// How an environment signs in to Entra ID (`auth.credential`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An app registration's client secret (`client_secret: ${VAR}`); the default when `client_secret` is set.
    ClientSecret,
    /// An app registration's certificate (`certificate: ${VAR}` naming a PEM or PFX file): a signed client
    /// assertion is sent, never the key.
    ClientCertificate,
    /// The Azure resource's managed identity (IMDS on a VM; the App Service / Functions endpoint when
    /// `IDENTITY_ENDPOINT` is set). System-assigned, or user-assigned by `client_id`, `object_id` or
    /// `mi_resource_id`.
    ManagedIdentity,
    /// The signed-in Azure CLI account (`az account get-access-token --resource ...`).
    AzureCli,
    /// A person signs in with the device authorization grant (code + URL); refresh tokens are kept in a
    /// 0600 cache file outside the journal (`cutover login ENV`, `cutover logout`).
    DeviceCode,
    /// A federated token file (`AZURE_FEDERATED_TOKEN_FILE`) sent as a client assertion: CI, Kubernetes.
    WorkloadIdentity,
}

impl CredentialKind {
    /// The name as written in the runbook.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::ClientCertificate => "client_certificate",
            Self::ManagedIdentity => "managed_identity",
            Self::AzureCli => "azure_cli",
            Self::DeviceCode => "device_code",
            Self::WorkloadIdentity => "workload_identity",
        }
    }
    /// A person's own sign-in (the token names who pressed the key).
    pub fn is_delegated(self) -> bool {
        matches!(self, Self::DeviceCode | Self::AzureCli)
    }
}

/// The signature algorithm of a certificate's client assertion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SigningAlgorithm {
    /// RSASSA-PSS with SHA-256 and the `x5t#S256` header (what Microsoft documents today).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, still with the `x5t#S256` header (and the SHA-1 `x5t`).
    Rs256,
}

/// How an environment obtains its Entra ID token. Every secret-bearing field must be a `${VAR}`: a
/// literal is a validation error. Which fields apply depends on `credential` (see the README).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `client_secret` when absent (the only kind of format version 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialKind>,
    /// Defaults to `https://login.microsoftonline.com`; `https://login.microsoftonline.us` (US Government),
    /// `https://login.partner.microsoftonline.cn` (China).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Tenant id or domain (not used by `managed_identity` and `azure_cli`, optional for the latter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The app registration (client) id; for `managed_identity`, a user-assigned identity's client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"))]
    pub client_secret: Option<String>,
    /// `client_certificate`: a `${VAR}` naming a PEM file (certificate and private key) or a PFX / PKCS#12 file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"))]
    pub certificate: Option<String>,
    /// `client_certificate`: the PFX (or encrypted PEM key) password, a `${VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"))]
    pub certificate_password: Option<String>,
    /// `client_certificate`: `ps256` (default) or `rs256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_algorithm: Option<SigningAlgorithm>,
    /// `managed_identity`, user-assigned: the identity's object (principal) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// `managed_identity`, user-assigned: the identity's Azure resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi_resource_id: Option<String>,
    /// `workload_identity`: the federated token file (default `${AZURE_FEDERATED_TOKEN_FILE}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token_file: Option<String>,
    /// The token scope when it is not the environment URL + `/.default` (storage, Databricks, the Power
    /// Platform API), e.g. `https://storage.azure.com/.default`. Exclusive with `resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The token resource (audience) when it is not the environment URL; the scope is `<resource>/.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Auth {
    pub const DEFAULT_AUTHORITY: &'static str = "https://login.microsoftonline.com";
    pub fn authority(&self) -> &str {
        self.authority.as_deref().unwrap_or(Self::DEFAULT_AUTHORITY)
    }
    /// The credential kind: as written, else `client_secret`.
    pub fn kind(&self) -> CredentialKind {
        self.credential.unwrap_or(CredentialKind::ClientSecret)
    }
}

/// Who may take the decisions an auditor asks about (`approvals:` at the top of the runbook).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// A point of no return and a waiver need a signed-in identity (an environment with `device_code` or
    /// `azure_cli`); `--operator` alone is refused.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_identity: bool,
    /// The environment whose signed-in user is the operator (default: the first with `device_code` or
    /// `azure_cli`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_from: Option<String>,
    /// UPNs (or `preferred_username`s) allowed to approve, compared case-insensitively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Entra group object ids whose members may approve (from the token's `groups` claim).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approver_groups: Vec<String>,
}

/// The initial-sync master of a map: whose rows the initial sync copies to the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Master {
    Fno,
    Dataverse,
    /// Deprecated, read with a warning: dual-write has no conflict-rule setting (live sync is transactional),
    /// so this means nothing beyond the default initial-sync master (`fno`).
    LastWriteWins,
}

/// The side that owns a map's rows, or one field, after go-live: where they are changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Fno,
    Dataverse,
}

impl Owner {
    pub fn name(self) -> &'static str {
        match self {
            Owner::Fno => "fno",
            Owner::Dataverse => "dataverse",
        }
    }
}

/// A field's owner where it is not the map's, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldOwner {
    pub owner: Owner,
    /// The decision in one line (who changes it and why there).
    pub why: String,
}

/// How a map's rows first reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InitialSync {
    /// Dual-write's initial sync, in a wave.
    DualWrite,
    /// Loaded beforehand (e.g. by a DMF step); waves may depend on it without ordering.
    None,
}

/// Allowed |source − target| at a gate: a count (`0`, `5`) or a percentage string (`"0.1%"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Tolerance {
    Count(u64),
    Percent(#[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?%$"))] String),
}

/// A row-count estimate: a total, or per legal entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Rows {
    Total(u64),
    PerCompany(BTreeMap<String, u64>),
}

impl Rows {
    pub fn total(&self) -> u64 {
        match self {
            Rows::Total(n) => *n,
            Rows::PerCompany(m) => m.values().fold(0u64, |a, b| a.saturating_add(*b)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    pub source: String,
    pub target: String,
}

/// A map's filter on each side: OData `$filter` expressions in the side's own column names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapFilter {
    /// On the source entity set, e.g. `PartyType eq 'Organization'` (F&O).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// On the target entity set, e.g. `customertypecode ne null` (Dataverse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One dual-write table map (or any source → target pair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    /// `env:EntitySet`, e.g. `fno:CustomersV3`.
    pub source: String,
    /// `env:EntitySet`, e.g. `dataverse:accounts`.
    pub target: String,
    /// Maps that must be synced in an earlier wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<MapId>,
    /// Legal entities compared separately by parity: F&O `dataAreaId eq '<code>'` against Dataverse rows whose
    /// company lookup points at the `cdm_companies` row with that `cdm_companycode`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companies: Vec<String>,
    /// The Dataverse side's lookup to `cdm_company` (logical name, e.g. `msdyn_company`, the default, or
    /// a custom table's own). Per-company filters and key lookups go through it (`_<lookup>_value eq <id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_lookup: Option<String>,
    /// The map's own filter on each side (an OData `$filter` expression), applied to every count and read:
    /// dual-write maps can carry a subset (Customers V3 → accounts carries organisations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<MapFilter>,
    /// The initial-sync master: which side's rows the initial sync copies (`fno` or `dataverse`). Live sync
    /// has no conflict rule to configure; `last_write_wins` is still read, with a deprecation warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Master>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
    /// `dual_write` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<InitialSync>,
    /// Alternate key, for sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyPair>,
    /// Source field → target field compared by `sample`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compare: BTreeMap<String, String>,
    /// Who owns the map's rows after go-live (`fno` or `dataverse`): the side where they are changed. Dual-write
    /// has no conflict rule (live sync is transactional), so this is the project's decision, written down;
    /// `validate` warns on a map with none and the report has an ownership table. Not the initial-sync `master`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Fields owned otherwise than the map (or stated explicitly): field → `{owner, why}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_owners: BTreeMap<String, FieldOwner>,
    /// Value maps of enum fields: F&O field (a key of `compare`) → {F&O enum member name: Dataverse option
    /// value}, as the dual-write map's value map transforms them. `cutover preflight` checks them against the
    /// F&O enumeration and the Dataverse option set; row-level parity compares through them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, BTreeMap<String, i64>>,
    /// Row estimate (source side): informs the plan's durations and the dual-write limit warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Rows>,
    /// The DMF execution id of the map's initial sync (a `DWM` project's execution in F&O, Data management >
    /// Execution history), when the operator has it: the `dmf.execution_errors` source reads
    /// `GetExecutionErrors` for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync_execution_id: Option<String>,
    /// The error sources read for this map (names in [`ERROR_SOURCES`]); default: every source the map's
    /// dual-write mode has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_sources: Option<Vec<String>>,
}

/// The error sources a map can name in `error_sources`.
pub const ERROR_SOURCES: [&str; 4] = [
    "dataverse.asyncoperations",
    "dataverse.plugintracelogs",
    "dmf.execution_errors",
    "gateway.initial_sync",
];

impl MapSpec {
    /// The environment part of `source` (`fno` in `fno:CustomersV3`).
    pub fn source_env(&self) -> &str {
        self.source.split_once(':').map_or("", |(e, _)| e)
    }
    pub fn target_env(&self) -> &str {
        self.target.split_once(':').map_or("", |(e, _)| e)
    }
    pub fn initial_sync(&self) -> InitialSync {
        self.initial_sync.unwrap_or(InitialSync::DualWrite)
    }
}

/// A phase: either `steps` (run in listed order) or `waves` (initial sync, gated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Checked after every wave before the next starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    // Each shared with the plan (`PlannedWhat::Step`), not copied into it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<std::sync::Arc<Step>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Vec<Wave>>,
}

/// The check between waves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Source and target counts must agree within each map's tolerance.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parity: bool,
    /// Most dual-write errors allowed for the wave's maps, over the error sources that could be read
    /// (`docs/error-sources.md`); a map none of whose sources can be read is put to the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_errors: Option<u64>,
    /// Times a failed gate is re-checked before it fails (built-in 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Wait between re-checks (built-in: the defaults' `poll`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_every: Option<Duration>,
    /// The operator confirms before the next wave starts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub confirm: bool,
    /// `counts` (built-in): parity compares row counts. `rows`: also row-level parity (as the `reconcile`
    /// step does) for every map of the wave with a `key`: a missing, extra or different row fails the gate
    /// even when the counts agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<GateLevel>,
}

/// How deep a gate's parity looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateLevel {
    Counts,
    Rows,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub maps: Vec<MapId>,
    /// Maps running at once (the defaults' `concurrency` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// What happens when a step fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Halt,
    Continue,
}

/// One step: the common fields plus the kind-specific ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// Unique in the runbook, `[A-Za-z0-9_-]+`.
    pub id: StepId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Extra step ids that must finish first (earlier in the runbook).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<StepId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// The operator must confirm before it starts (destructive steps).
    #[serde(default, skip_serializing_if = "is_false")]
    pub confirm: bool,
    /// Shown as such; the console asks twice.
    #[serde(default, skip_serializing_if = "is_false")]
    pub point_of_no_return: bool,
    #[serde(flatten)]
    pub kind: StepKind,
}

pub use super::steps::*;

impl Step {
    /// The `kind:` text (`dmf.export`, ...).
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}
