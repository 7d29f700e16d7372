//! `dualwrite.run`: starts maps (with initial sync unless `initial_sync: false`) and waits for Running.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Master, Runbook};

/// Starts maps (with initial sync unless `initial_sync: false`) and waits for Running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DualwriteRun {
    pub maps: MapSelection,
    /// `true` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<bool>,
    /// The initial-sync master (whose rows the initial sync copies); overrides the maps' own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Master>,
}

impl Kind for DualwriteRun {
    fn estimate_secs(&self, rb: &Runbook) -> u64 {
        if self.initial_sync.unwrap_or(true) {
            self.maps
                .resolve(rb.maps.keys())
                .iter()
                .map(|m| crate::runbook::plan::map_sync_secs(rb, m))
                .max()
                .unwrap_or(120)
        } else {
            120
        }
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("dualwrite.request")
    }

    /// Each action is journaled (an intent) before it is sent: resume reads the map's `lastRequests`, adopts an
    /// accepted request, and starts a failed sync again.
    fn reconcile(&self) -> Reconcile {
        Reconcile::ByHandle
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
        check.needs_dualwrite_env();
    }
}
