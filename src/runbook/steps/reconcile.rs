//! `reconcile`: row-level parity. For each map with a `key`, every `(company, key, compare fields)` of both sides
//! is read and classified as matching, missing on the target, extra on the target, or different.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Row-level parity: every key of both sides classified as matching, missing, extra or different.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct RowReconcile {
    pub maps: MapSelection,
    /// Keys journaled per class (missing, extra, different) and map, with the differing fields (built-in 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    /// Missing, extra and different keys allowed in all before the step fails (built-in 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_differences: Option<u64>,
    /// Dataverse is read in this many `createdon` ranges at once (built-in 4; 1 to 16, well inside the service
    /// protection limit of 52 concurrent requests per user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16))]
    pub ranges: Option<u32>,
    /// `api` (built-in): both sides read through the services' APIs. `lake`: from the lake (`docs/lake.md`):
    /// with `databricks`, one SQL statement per map on the tables Lakeflow Connect ingested, on its SQL
    /// warehouse; without, the Synapse Link export folders of `export` read and compared on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<ReconcileEngine>,
    /// `engine: lake`: the `databricks` environment whose SQL warehouse runs the statements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databricks: Option<String>,
    /// `engine: lake` without `databricks`: the `adls` environment holding the Synapse Link export (optional
    /// when the runbook has one `adls` environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}

/// Where a row-level comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReconcileEngine {
    Api,
    Lake,
}

/// Concurrent Dataverse ranges when the step says nothing.
pub const RANGES_DEFAULT: u32 = 4;
/// The most a step may ask for.
pub const RANGES_MAX: u32 = 16;

impl Kind for RowReconcile {
    fn estimate_secs(&self, rb: &Runbook) -> u64 {
        // Reading both sides: about 2,000 rows a second per side, at least a minute.
        let rows: u64 = self
            .maps
            .resolve(rb.maps.keys())
            .iter()
            .filter_map(|m| rb.maps.get(m))
            .map(|m| m.rows.as_ref().map_or(10_000, crate::runbook::Rows::total))
            .sum();
        60 + rows / 2000
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Reading is safe to do again.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }

    fn maps(&self) -> Option<&MapSelection> {
        Some(&self.maps)
    }

    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        let db = self
            .databricks
            .as_deref()
            .map(|e| ("databricks", e, Some(EnvKind::Databricks)));
        let export = self.export.as_deref().map(|e| ("export", e, Some(EnvKind::Adls)));
        db.into_iter().chain(export).collect()
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if let Some(n) = self.ranges.filter(|n| !(1..=RANGES_MAX).contains(n)) {
            check.error(
                "ranges",
                "invalid-value",
                format!("`ranges` must be 1 to {RANGES_MAX} (Dataverse ranges read at once), not {n}"),
                None,
            );
        }
        let lake = self.engine == Some(ReconcileEngine::Lake);
        if lake && self.databricks.is_none() && self.export.is_none() {
            let adls = check
                .rb
                .environments
                .values()
                .filter(|e| e.kind == EnvKind::Adls)
                .count();
            if adls != 1 {
                check.error(
                    "engine",
                    "missing-field",
                    format!(
                        "`engine: lake` reads the Synapse Link export of an `adls` environment (or runs on `databricks`): name it with `export` (the runbook has {adls} adls environments)"
                    ),
                    "add `export: <adls environment>`, or `databricks: <environment>` for its SQL warehouse"
                        .to_owned(),
                );
            }
        }
        if lake && self.databricks.is_some() && self.export.is_some() {
            check.error(
                "export",
                "invalid-field",
                "`export` and `databricks` are two ways to run `engine: lake`: name one".into(),
                None,
            );
        }
        if !lake && self.databricks.is_some() {
            check.error(
                "databricks",
                "invalid-field",
                "`databricks` applies only to `engine: lake`".into(),
                None,
            );
        }
        if !lake && self.export.is_some() {
            check.error(
                "export",
                "invalid-field",
                "`export` applies only to `engine: lake`".into(),
                None,
            );
        }
    }
}
