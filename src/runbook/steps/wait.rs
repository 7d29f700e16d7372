//! `wait`: waits until a time or for a duration (exactly one of `until`, `for`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, Runbook, Timestamp};

/// Waits until a time or for a duration (exactly one of `until`, `for`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Wait {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
}

impl Kind for Wait {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        self.for_.as_ref().map_or(0, Duration::as_secs)
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Waiting again is harmless.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Unbounded
    }

    fn maps(&self) -> Option<&MapSelection> {
        None
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
        check.exactly_one(self.until.is_some(), self.for_.is_some(), ("until", "for"));
    }
}
