//! Step kinds, version 1: one file per kind. Each declares its runbook fields (a struct that
//! rejects fields it does not know) and, through [`Kind`], what the planner, the engine and resume
//! need to know about it without running it: the plan's estimate, the external handle journaled
//! with its intent, how an in-flight step is reconciled on resume, its default timeout and the maps
//! it acts on. [`StepKind`] is the registry: one variant per kind, and [`StepKind::spec`] holds the
//! only `match` over the kinds in this layer (the engine's executor dispatch is the other, in
//! `engine::exec`). Neither has a catch-all arm, so the compiler lists everything a new kind must
//! provide.
//!
//! A new kind: a file here (fields and `impl Kind`), one variant below, one arm in `spec`, one arm in
//! the engine's dispatch with its executor; then `cutover schema > assets/runbook.schema.json`.

pub mod automation;
pub mod batch_window;
pub mod dmf_export;
pub mod dmf_import;
pub mod dualwrite_maps;
pub mod dualwrite_run;
pub mod error_queue;
pub mod http;
pub mod lake;
pub mod manual;
pub mod monitor;
pub mod notify;
pub mod parity;
pub mod reconcile;
pub mod roundtrip;
pub mod sample;
pub mod shell;
pub mod wait;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::dmf_import::RecordInstall;
pub use self::http::{HttpExpect, HttpMethod, HttpPoll, PointerMatch, StatusSpec};
pub use self::lake::{LakeCaughtUp, LakeFullRefresh, LakeSchemaCheck, TableList};
pub use self::monitor::Alert;
pub use self::{
    automation::DisableAutomation, automation::EnableAutomation, batch_window::BatchWindow,
    dmf_export::DmfExport, dmf_import::DmfImport, dualwrite_maps::DualwritePause,
    dualwrite_maps::DualwriteResume, dualwrite_maps::DualwriteStop, dualwrite_run::DualwriteRun,
    error_queue::ErrorQueue, http::Http, manual::Manual, monitor::Monitor, notify::Notify, parity::Parity,
    reconcile::ReconcileEngine, reconcile::RowReconcile, roundtrip::Roundtrip, sample::Sample, shell::Shell,
    wait::Wait,
};
use super::model::{EnvKind, MapId, Runbook};
pub use super::validate_flow::StepCheck;

/// How an in-flight step is picked up on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    /// Pure reads (or a question to the operator again): run it again.
    Rerun,
    /// Ask the environment through the journaled handle, then continue.
    ByHandle,
    /// No handle and no safe way to ask: the operator decides (headless: exit 3).
    AskOperator,
}

/// A step's timeout when the runbook sets none for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultTimeout {
    /// The runbook's `defaults.timeout` (built-in 30m).
    Runbook,
    /// None: the step waits on a person or for a duration of its own (manual, wait, monitor).
    Unbounded,
}

/// What every step kind declares beside its fields.
pub trait Kind {
    /// The plan's estimate of the step, in seconds (`cutover plan`, the console's ETA).
    fn estimate_secs(&self, rb: &Runbook) -> u64;
    /// The kind of external handle journaled with the step's intent (`dmf.import`, `canary`, ...).
    fn handle_kind(&self) -> Option<&'static str>;
    /// How the step is picked up when resume finds it in flight.
    fn reconcile(&self) -> Reconcile;
    /// The step's timeout when it sets none.
    fn default_timeout(&self) -> DefaultTimeout;
    /// The maps the step acts on, if it names any.
    fn maps(&self) -> Option<&MapSelection>;
    /// The environments the step names, as (field, environment, the kind it must be).
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)>;
    /// The names later steps read as `${steps.<id>.<name>}`.
    fn captures(&self) -> Vec<&str>;
    /// The URL the step sends a request to, as written (checked by `insecure-url`).
    fn url(&self) -> Option<&str>;
    /// The kind's own checks, beyond its fields' types (`runbook::validate` runs them).
    fn validate(&self, check: &mut StepCheck<'_, '_, '_>);
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

/// The kind of a step and its kind-specific fields: the registry of step kinds.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum StepKind {
    /// The operator confirms, with name and note; each checklist item is confirmed.
    #[serde(rename = "manual")]
    #[strum(serialize = "manual")]
    Manual(manual::Manual),
    /// Waits until a time or for a duration (exactly one of `until`, `for`).
    #[serde(rename = "wait")]
    #[strum(serialize = "wait")]
    Wait(wait::Wait),
    /// One request, optionally polled until a JSON pointer matches.
    #[serde(rename = "http")]
    #[strum(serialize = "http")]
    Http(Box<http::Http>),
    /// A local command; exit 0 is success.
    #[serde(rename = "shell")]
    #[strum(serialize = "shell")]
    Shell(shell::Shell),
    /// Counts both sides of each map (per company where set), records a sample.
    #[serde(rename = "parity")]
    #[strum(serialize = "parity")]
    Parity(parity::Parity),
    /// Reads the maps' dual-write error sources (`docs/error-sources.md`); fails above `max` (0 when absent).
    #[serde(rename = "error_queue")]
    #[strum(serialize = "error_queue")]
    ErrorQueue(error_queue::ErrorQueue),
    /// F&O Data management ExportToPackage, polled to a terminal status; the package URL is recorded.
    #[serde(rename = "dmf.export")]
    #[strum(serialize = "dmf.export")]
    DmfExport(dmf_export::DmfExport),
    /// GetAzureWriteUrl, upload, ImportFromPackage, poll, per-entity error check; journaled as an install record.
    #[serde(rename = "dmf.import")]
    #[strum(serialize = "dmf.import")]
    DmfImport(Box<dmf_import::DmfImport>),
    /// Starts maps (with initial sync unless `initial_sync: false`) and waits for Running.
    #[serde(rename = "dualwrite.run")]
    #[strum(serialize = "dualwrite.run")]
    DualwriteRun(dualwrite_run::DualwriteRun),
    #[serde(rename = "dualwrite.pause")]
    #[strum(serialize = "dualwrite.pause")]
    DualwritePause(dualwrite_maps::DualwritePause),
    #[serde(rename = "dualwrite.resume")]
    #[strum(serialize = "dualwrite.resume")]
    DualwriteResume(dualwrite_maps::DualwriteResume),
    #[serde(rename = "dualwrite.stop")]
    #[strum(serialize = "dualwrite.stop")]
    DualwriteStop(dualwrite_maps::DualwriteStop),
    /// Pauses maps for an F&O batch job: the operator runs it, an optional DMF package loads the changed rows,
    /// the maps resume; warned and alerted against dual-write's 1-day pause limit.
    #[serde(rename = "dualwrite.batch_window")]
    #[strum(serialize = "dualwrite.batch_window")]
    DualwriteBatchWindow(Box<batch_window::BatchWindow>),
    /// A canary written on one side, polled on the other, deleted.
    #[serde(rename = "roundtrip")]
    #[strum(serialize = "roundtrip")]
    Roundtrip(roundtrip::Roundtrip),
    /// Reconciles N random records by the maps' `key`, comparing the `compare` fields.
    #[serde(rename = "sample")]
    #[strum(serialize = "sample")]
    Sample(sample::Sample),
    /// Row-level parity: every key of both sides classified as matching, missing, extra or different.
    #[serde(rename = "reconcile")]
    #[strum(serialize = "reconcile")]
    Reconcile(reconcile::RowReconcile),
    /// Repeats parity and error-source reads; raises alerts (exactly one of `for`, `until`).
    #[serde(rename = "monitor")]
    #[strum(serialize = "monitor")]
    Monitor(Box<monitor::Monitor>),
    /// Turns named plug-in steps and cloud flows off, journaling each one's state first.
    #[serde(rename = "dataverse.disable_automation")]
    #[strum(serialize = "dataverse.disable_automation")]
    DisableAutomation(automation::DisableAutomation),
    /// Puts back every plug-in step and flow the run turned off, in the state each had.
    #[serde(rename = "dataverse.enable_automation")]
    #[strum(serialize = "dataverse.enable_automation")]
    EnableAutomation(automation::EnableAutomation),
    /// Posts a message to a webhook (Teams-compatible card).
    #[serde(rename = "notify")]
    #[strum(serialize = "notify")]
    Notify(notify::Notify),
    /// The Synapse Link export has a closed folder newer than `after`, and the pipeline ingested it.
    #[serde(rename = "lake.caught_up")]
    #[strum(serialize = "lake.caught_up")]
    LakeCaughtUp(Box<lake::LakeCaughtUp>),
    /// The export's `model.json` attributes per table against a baseline: the tables needing a full refresh.
    #[serde(rename = "lake.schema_check")]
    #[strum(serialize = "lake.schema_check")]
    LakeSchemaCheck(lake::LakeSchemaCheck),
    /// A Lakeflow Connect update refreshing the listed tables in full, confirmed and polled to completion.
    #[serde(rename = "lake.full_refresh")]
    #[strum(serialize = "lake.full_refresh")]
    LakeFullRefresh(lake::LakeFullRefresh),
}

/// Every `kind:` name, for "did you mean" and the docs.
pub const STEP_KINDS: &[&str] = <StepKind as strum::VariantNames>::VARIANTS;

impl StepKind {
    /// What the kind declares (see [`Kind`]): the only `match` over the kinds in this layer.
    pub fn spec(&self) -> &dyn Kind {
        match self {
            StepKind::Manual(k) => k,
            StepKind::Wait(k) => k,
            StepKind::Http(k) => &**k,
            StepKind::Shell(k) => k,
            StepKind::Parity(k) => k,
            StepKind::ErrorQueue(k) => k,
            StepKind::DmfExport(k) => k,
            StepKind::DmfImport(k) => &**k,
            StepKind::DualwriteRun(k) => k,
            StepKind::DualwritePause(k) => k,
            StepKind::DualwriteResume(k) => k,
            StepKind::DualwriteStop(k) => k,
            StepKind::DualwriteBatchWindow(k) => &**k,
            StepKind::Roundtrip(k) => k,
            StepKind::Sample(k) => k,
            StepKind::Reconcile(k) => k,
            StepKind::Monitor(k) => &**k,
            StepKind::Notify(k) => k,
            StepKind::DisableAutomation(k) => k,
            StepKind::EnableAutomation(k) => k,
            StepKind::LakeCaughtUp(k) => &**k,
            StepKind::LakeSchemaCheck(k) => k,
            StepKind::LakeFullRefresh(k) => k,
        }
    }

    /// The `kind:` name (`dmf.export`, ...).
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// The maps the step acts on, if it names any.
    pub fn maps(&self) -> Option<&MapSelection> {
        self.spec().maps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names strum gives are the serde tags the runbook is read with.
    #[test]
    fn names_are_the_serde_tags() {
        let text = "kind: wait\nfor: 1s\n";
        let k: StepKind = serde_saphyr::from_str(text).expect("a wait step");
        assert_eq!(k.name(), "wait");
        assert_eq!(serde_json::to_value(&k).expect("serialises")["kind"], "wait");
        assert_eq!(STEP_KINDS.len(), 23);
        assert!(STEP_KINDS.contains(&"dualwrite.pause") && STEP_KINDS.contains(&"dmf.import"));
    }
}
