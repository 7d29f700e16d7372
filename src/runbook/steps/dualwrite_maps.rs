//! `dualwrite.pause`, `dualwrite.resume` and `dualwrite.stop`: change the state of the maps through
//! dual-write, then wait for it. The three kinds take the same fields and are planned, journaled and
//! reconciled alike, so they share one type; the engine tells them apart by their variant.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DualwriteMaps {
    pub maps: MapSelection,
}

impl Kind for DualwriteMaps {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        120
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("dualwrite.request")
    }

    /// Each action is journaled (an intent) before it is sent; resume reads the map's `lastRequests`.
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

/// The fields of `dualwrite.pause`.
pub type DualwritePause = DualwriteMaps;
/// The fields of `dualwrite.resume`.
pub type DualwriteResume = DualwriteMaps;
/// The fields of `dualwrite.stop`.
pub type DualwriteStop = DualwriteMaps;
