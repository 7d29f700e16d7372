//! Step kinds, version 1: one variant per `kind:` with its typed fields. The common step fields live on
//! [`super::model::Step`]; each variant rejects fields it does not know.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::{Duration, Timestamp};
use super::model::{MapId, Master, Tolerance};

fn is_false(b: &bool) -> bool {
    !*b
}

/// `maps: all` or a list of map ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MapSelection {
    All(AllMaps),
    List(Vec<MapId>),
}

/// The keyword `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AllMaps {
    #[serde(rename = "all")]
    All,
}

impl MapSelection {
    /// The selected map ids, `all` resolved against the runbook's maps (in id order).
    pub fn resolve<'a>(&'a self, all: impl Iterator<Item = &'a MapId>) -> Vec<MapId> {
        match self {
            MapSelection::All(_) => all.cloned().collect(),
            MapSelection::List(l) => l.clone(),
        }
    }
}

/// One JSON pointer condition on a response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointerMatch {
    /// RFC 6901 pointer, e.g. `/status`.
    pub pointer: String,
    pub equals: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// Accepted status code(s) (any 2xx when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSpec>,
}

/// `status: 200` or `status: [200, 202]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

impl StatusSpec {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusSpec::One(s) => *s == status,
            StatusSpec::Many(list) => list.contains(&status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpPoll {
    pub every: Duration,
    pub until: PointerMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_if: Option<PointerMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// Where a `dmf.import` writes its install record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInstall {
    pub env: String,
    pub entity: String,
}

/// Monitor alert thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_per_hour: Option<u64>,
    /// Largest |source − target| before an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<u64>,
}

/// The kind of a step and its kind-specific fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum StepKind {
    /// The operator confirms, with name and note; each checklist item is confirmed.
    #[serde(rename = "manual")]
    Manual {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instructions: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        checklist: Vec<String>,
    },
    /// Waits until a time or for a duration (exactly one of `until`, `for`).
    #[serde(rename = "wait")]
    Wait {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        for_: Option<Duration>,
    },
    /// One request, optionally polled until a JSON pointer matches.
    #[serde(rename = "http")]
    Http {
        /// Environment for base URL and auth.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<HttpMethod>,
        /// Relative to the environment's URL (exactly one of `path`, `url`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<HttpExpect>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        poll: Option<HttpPoll>,
        /// Capture name → JSON pointer; later steps read `${steps.<id>.<name>}`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        capture: BTreeMap<String, String>,
    },
    /// A local command; exit 0 is success.
    #[serde(rename = "shell")]
    Shell {
        run: String,
        /// Extra environment variables for the command.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// Counts both sides of each map (per company where set), records a sample.
    #[serde(rename = "parity")]
    Parity {
        maps: MapSelection,
        #[serde(default, skip_serializing_if = "is_false")]
        record_baseline: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance: Option<Tolerance>,
    },
    /// Reads the error queue for the maps; fails above `max` (0 when absent).
    #[serde(rename = "error_queue")]
    ErrorQueue {
        maps: MapSelection,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    /// F&O Data management ExportToPackage, polled to a terminal status; the package URL is recorded.
    #[serde(rename = "dmf.export")]
    DmfExport {
        env: String,
        definition_group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        legal_entity: Option<String>,
    },
    /// GetAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.
    #[serde(rename = "dmf.import")]
    DmfImport {
        env: String,
        definition_group: String,
        /// Path of the package zip, relative to the runbook file.
        package_file: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package_version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        legal_entity: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        overwrite: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record_install: Option<RecordInstall>,
    },
    /// Starts maps (with initial sync unless `initial_sync: false`) and waits for Running.
    #[serde(rename = "dualwrite.run")]
    DualwriteRun {
        maps: MapSelection,
        /// `true` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        initial_sync: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        master: Option<Master>,
    },
    #[serde(rename = "dualwrite.pause")]
    DualwritePause { maps: MapSelection },
    #[serde(rename = "dualwrite.resume")]
    DualwriteResume { maps: MapSelection },
    #[serde(rename = "dualwrite.stop")]
    DualwriteStop { maps: MapSelection },
    /// A canary written on one side, polled on the other, deleted.
    #[serde(rename = "roundtrip")]
    Roundtrip {
        map: MapId,
        /// The environment the canary is written to (the map's source or target environment).
        from: String,
        /// How long the other side may take (built-in 2m).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<Duration>,
        /// Field values of the canary record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<BTreeMap<String, serde_json::Value>>,
    },
    /// Reconciles N random records by the maps' `key`, comparing the `compare` fields.
    #[serde(rename = "sample")]
    Sample {
        maps: MapSelection,
        /// Built-in 100.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    /// Repeats parity and error-queue sampling; raises alerts (exactly one of `for`, `until`).
    #[serde(rename = "monitor")]
    Monitor {
        every: Duration,
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        for_: Option<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
        maps: MapSelection,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<Alert>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sample_size: Option<u32>,
    },
    /// Posts a message to a webhook (Teams-compatible card).
    #[serde(rename = "notify")]
    Notify { url: String, text: String },
}

/// Every `kind:` name, for "did you mean" and the docs.
pub const STEP_KINDS: &[&str] = &[
    "manual",
    "wait",
    "http",
    "shell",
    "parity",
    "error_queue",
    "dmf.export",
    "dmf.import",
    "dualwrite.run",
    "dualwrite.pause",
    "dualwrite.resume",
    "dualwrite.stop",
    "roundtrip",
    "sample",
    "monitor",
    "notify",
];

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Manual { .. } => "manual",
            StepKind::Wait { .. } => "wait",
            StepKind::Http { .. } => "http",
            StepKind::Shell { .. } => "shell",
            StepKind::Parity { .. } => "parity",
            StepKind::ErrorQueue { .. } => "error_queue",
            StepKind::DmfExport { .. } => "dmf.export",
            StepKind::DmfImport { .. } => "dmf.import",
            StepKind::DualwriteRun { .. } => "dualwrite.run",
            StepKind::DualwritePause { .. } => "dualwrite.pause",
            StepKind::DualwriteResume { .. } => "dualwrite.resume",
            StepKind::DualwriteStop { .. } => "dualwrite.stop",
            StepKind::Roundtrip { .. } => "roundtrip",
            StepKind::Sample { .. } => "sample",
            StepKind::Monitor { .. } => "monitor",
            StepKind::Notify { .. } => "notify",
        }
    }

    /// The maps the step acts on, if it names any.
    pub fn maps(&self) -> Option<&MapSelection> {
        match self {
            StepKind::Parity { maps, .. }
            | StepKind::ErrorQueue { maps, .. }
            | StepKind::DualwriteRun { maps, .. }
            | StepKind::DualwritePause { maps }
            | StepKind::DualwriteResume { maps }
            | StepKind::DualwriteStop { maps }
            | StepKind::Sample { maps, .. }
            | StepKind::Monitor { maps, .. } => Some(maps),
            _ => None,
        }
    }
}
