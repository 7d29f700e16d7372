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
        Vec::new()
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
    }
}
