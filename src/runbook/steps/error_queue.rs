//! `error_queue`: reads the maps' dual-write error sources; fails above `max` (0 when absent).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Reads the maps' dual-write error sources (`docs/error-sources.md`); fails above `max` (0 when absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct ErrorQueue {
    pub maps: MapSelection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Count the errors of this long back from now (environment time), instead of since the run started:
    /// a daily hypercare sweep reads `since: 24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::runbook::model::Duration>,
}

impl Kind for ErrorQueue {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        60
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Reading the queue is a read.
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
