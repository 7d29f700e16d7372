//! `parity`: counts both sides of each map (per company where set), records a sample.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::is_false;
use crate::runbook::model::{Runbook, Tolerance};

/// Counts both sides of each map (per company where set), records a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Parity {
    pub maps: MapSelection,
    #[serde(default, skip_serializing_if = "is_false")]
    pub record_baseline: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Tolerance>,
}

impl Kind for Parity {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        300
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Counting is a read.
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

    fn validate(&self, _check: &mut StepCheck<'_, '_, '_>) {}
}
