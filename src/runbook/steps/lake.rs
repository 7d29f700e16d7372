//! The lake's steps (`docs/lake.md`): `lake.caught_up` (the Synapse Link export has a closed folder newer
//! than a cut, and the Lakeflow Connect pipeline completed an update after it), `lake.schema_check`
//! (`model.json` attributes per table against a baseline an earlier check journaled) and `lake.full_refresh`
//! (a pipeline update with `full_refresh_selection`, confirmed, polled; its update id journaled so a resume
//! polls it instead of starting another).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, Runbook, StepId};

/// Waits until the export (and the pipeline) have passed a cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct LakeCaughtUp {
    /// The `adls` environment holding the Synapse Link export.
    pub export: String,
    /// The cut, RFC 3339 (usually `${steps.<id>.finished_at}`): a closed export folder must be newer.
    pub after: String,
    /// The `databricks` environment whose pipeline must have completed an update after that folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databricks: Option<String>,
    /// The pipeline's name in that environment's `pipelines` (optional when it declares one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// How often the export is looked at (the defaults' `poll` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
}

/// Compares the export's `model.json` attributes per table with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct LakeSchemaCheck {
    /// The `adls` environment holding the Synapse Link export.
    pub export: String,
    /// The tables looked at (the export's names, e.g. `account`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// An earlier `lake.schema_check` whose attributes are the baseline (none: this check records one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<StepId>,
}

/// Tables as a list, or as one text of comma-separated names (e.g. `${steps.schema.changed}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TableList {
    List(Vec<String>),
    Text(String),
}

/// Starts a pipeline update refreshing the listed tables in full, and polls it to completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct LakeFullRefresh {
    /// The `databricks` environment.
    pub databricks: String,
    /// The pipeline's name in that environment's `pipelines` (optional when it declares one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The tables refreshed in full; an empty list (or empty text) skips the step.
    pub tables: TableList,
}

/// The captures of `lake.schema_check`.
pub const SCHEMA_CHECK_CAPTURES: [&str; 2] = ["changed", "changed_count"];

fn databricks_env(env: &Option<String>) -> Vec<(&'static str, &str, Option<EnvKind>)> {
    env.as_deref()
        .map(|e| ("databricks", e, Some(EnvKind::Databricks)))
        .into_iter()
        .collect()
}

/// A `pipeline` naming none of the environment's pipelines (or none named where the environment has several).
fn check_pipeline(check: &mut StepCheck<'_, '_, '_>, env: Option<&str>, pipeline: Option<&str>) {
    let Some(e) = env.and_then(|e| check.rb.environments.get(e)) else {
        return;
    };
    match pipeline {
        Some(p) if !e.pipelines.contains_key(p) => {
            let known: Vec<&String> = e.pipelines.keys().collect();
            check.error(
                "pipeline",
                "unknown-pipeline",
                format!("no pipeline `{p}` in the environment (it has {known:?})"),
                None,
            );
        }
        None if e.pipelines.len() != 1 => check.error(
            "databricks",
            "missing-field",
            format!(
                "name the pipeline: the environment declares {} pipelines",
                e.pipelines.len()
            ),
            "add `pipeline: <name>` (a key of the environment's `pipelines`)".to_owned(),
        ),
        _ => {}
    }
}

impl Kind for LakeCaughtUp {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        // An interval of the export plus an ingestion run.
        15 * 60
    }
    fn handle_kind(&self) -> Option<&'static str> {
        None
    }
    /// Looking at folders and updates is a read.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }
    fn maps(&self) -> Option<&MapSelection> {
        None
    }
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        let mut v = vec![("export", self.export.as_str(), Some(EnvKind::Adls))];
        v.extend(databricks_env(&self.databricks));
        v
    }
    fn captures(&self) -> Vec<&str> {
        vec!["folder", "lag_seconds", "update_id"]
    }
    fn url(&self) -> Option<&str> {
        None
    }
    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if self.pipeline.is_some() && self.databricks.is_none() {
            check.error(
                "pipeline",
                "invalid-field",
                "`pipeline` needs `databricks` (the environment that declares it)".into(),
                None,
            );
        }
        if self.databricks.is_some() {
            check_pipeline(check, self.databricks.as_deref(), self.pipeline.as_deref());
        }
        if !self.after.contains("${") && chrono::DateTime::parse_from_rfc3339(self.after.trim()).is_err() {
            check.error(
                "after",
                "invalid-timestamp",
                format!("`{}` is not an RFC 3339 time", self.after),
                "e.g. `${steps.enable-live-sync.finished_at}` or `2026-11-28T06:00:00Z`".to_owned(),
            );
        }
    }
}

impl Kind for LakeSchemaCheck {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        60
    }
    fn handle_kind(&self) -> Option<&'static str> {
        None
    }
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }
    fn maps(&self) -> Option<&MapSelection> {
        None
    }
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        vec![("export", self.export.as_str(), Some(EnvKind::Adls))]
    }
    fn captures(&self) -> Vec<&str> {
        SCHEMA_CHECK_CAPTURES.to_vec()
    }
    fn url(&self) -> Option<&str> {
        None
    }
    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        let Some(b) = &self.baseline else { return };
        let me = check.id().clone();
        let mut seen_me = false;
        let mut found = None;
        for s in check.rb.phases.iter().flat_map(|p| p.steps.iter().flatten()) {
            if s.id == me {
                seen_me = true;
            } else if &s.id == b {
                found = Some((seen_me, matches!(s.kind, super::StepKind::LakeSchemaCheck(_))));
            }
        }
        match found {
            None => check.error(
                "baseline",
                "unknown-step",
                format!("no step `{b}`"),
                "name an earlier `lake.schema_check` (the one at the snapshot phase)".to_owned(),
            ),
            Some((true, _)) => check.error(
                "baseline",
                "needs-forward",
                format!("`{b}` comes after this step"),
                "the baseline is an earlier step".to_owned(),
            ),
            Some((false, false)) => check.error(
                "baseline",
                "invalid-value",
                format!("`{b}` is not a `lake.schema_check`"),
                None,
            ),
            Some((false, true)) => {}
        }
    }
}

impl Kind for LakeFullRefresh {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        30 * 60
    }
    /// The step's own handle (never sent); the update id Databricks gives is journaled as it arrives.
    fn handle_kind(&self) -> Option<&'static str> {
        Some("lake.full_refresh")
    }
    fn reconcile(&self) -> Reconcile {
        Reconcile::ByHandle
    }
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }
    fn maps(&self) -> Option<&MapSelection> {
        None
    }
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        vec![("databricks", self.databricks.as_str(), Some(EnvKind::Databricks))]
    }
    fn captures(&self) -> Vec<&str> {
        vec!["update_id", "tables"]
    }
    fn url(&self) -> Option<&str> {
        None
    }
    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        check_pipeline(check, Some(&self.databricks), self.pipeline.as_deref());
        if let TableList::List(l) = &self.tables
            && let Some(bad) = l.iter().find(|t| t.trim().is_empty() || t.contains(','))
        {
            check.error(
                "tables",
                "invalid-value",
                format!("`{bad}` is not a table name"),
                None,
            );
        }
    }
}
