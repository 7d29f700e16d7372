//! The scenario's `lake:` section: the Synapse Link export the simulator writes and the Databricks workspace
//! it stands in for.

use serde::{Deserialize, Serialize};

use super::super::scenario::{Dur, Side};

/// `lake:` in a scenario. Without it the Blob, Pipelines and Statement Execution stand-ins answer as an
/// account, a workspace with nothing in them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// The storage account the Blob API stand-in serves, under `/_storage/<account>/`.
    pub account: String,
    /// The container Synapse Link exports to (`dataverse-<envname>-<orgUniqueName>`).
    pub container: String,
    /// A folder inside the container holding the export (empty: the container's root).
    #[serde(default)]
    pub folder: String,
    /// The scenario entity sets exported (F&O sets as `mserp_<set lower case>`, Dataverse sets as their
    /// logical name); empty: every scenario entity and `cdm_companies`.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The incremental-update folder interval (simulated; default 5m).
    #[serde(default = "five_minutes")]
    pub interval: Dur,
    /// How far Synapse Link runs behind (simulated): the folder being written is the one of `now - lag`.
    #[serde(default)]
    pub lag: Dur,
    /// Synapse Link stops at this simulated time after the start: no folder closes and no change is
    /// exported after it.
    #[serde(default)]
    pub stop_at: Option<Dur>,
    /// Columns a package adds while the weekend runs (they appear in the services' rows and the export).
    #[serde(default)]
    pub schema_changes: Vec<SchemaChange>,
    #[serde(default)]
    pub databricks: DatabricksConfig,
}

/// One column added to a scenario entity at a simulated time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaChange {
    /// Simulated time after the start, or after the import named by `after_import`.
    #[serde(default)]
    pub at: Dur,
    /// The DMF definition group whose import brings the change (the weekend's package): the column
    /// appears `at` after the first import of that group loads its rows, however long the run took
    /// to get there. Until then the change waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_import: Option<String>,
    pub side: Side,
    pub entity: String,
    pub field: String,
    /// A field generator (`text`, `int`, `amount`, ...).
    #[serde(default = "text")]
    pub kind: String,
}

/// The Databricks workspace stand-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabricksConfig {
    /// Lakeflow Connect pipeline ids (each ingests the whole export).
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// SQL warehouse ids (empty: any id is a running warehouse).
    #[serde(default)]
    pub warehouses: Vec<String>,
    /// Simulated time an update takes from QUEUED to COMPLETED (default 2m).
    #[serde(default = "two_minutes")]
    pub update_duration: Dur,
    /// A triggered (incremental) update is started every `schedule` (simulated) when none is active.
    #[serde(default)]
    pub schedule: Option<Dur>,
    /// The next this many updates fail (also settable at run time: `POST /_sim/lake`).
    #[serde(default)]
    pub fail_updates: u32,
    /// Simulated time a statement stays PENDING then RUNNING before its result (default 20s).
    #[serde(default = "twenty_seconds")]
    pub statement_duration: Dur,
    /// Simulated time a finished statement's result stays fetchable before the statement is CLOSED
    /// (default 1h).
    #[serde(default = "one_hour")]
    pub result_ttl: Dur,
    /// Databricks tokens accepted besides Entra tokens for the Azure Databricks resource.
    #[serde(default)]
    pub tokens: Vec<String>,
}

impl Default for DatabricksConfig {
    fn default() -> Self {
        Self {
            pipelines: Vec::new(),
            warehouses: Vec::new(),
            update_duration: two_minutes(),
            schedule: None,
            fail_updates: 0,
            statement_duration: twenty_seconds(),
            result_ttl: one_hour(),
            tokens: Vec::new(),
        }
    }
}

fn five_minutes() -> Dur {
    Dur(300.0)
}
fn two_minutes() -> Dur {
    Dur(120.0)
}
fn twenty_seconds() -> Dur {
    Dur(20.0)
}
fn one_hour() -> Dur {
    Dur(3600.0)
}
fn text() -> String {
    "text".into()
}
