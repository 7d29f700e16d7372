//! `monitor`: repeats parity and error-source reads; raises alerts (exactly one of `for`, `until`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, Runbook, Timestamp};

/// Repeats parity and error-source reads; raises alerts (exactly one of `for`, `until`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Monitor {
    pub every: Duration,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    pub maps: MapSelection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Alert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_size: Option<u32>,
}

impl Kind for Monitor {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        self.for_.as_ref().map_or(0, Duration::as_secs)
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Monitoring is reads.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Unbounded
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
        check.exactly_one(self.until.is_some(), self.for_.is_some(), ("until", "for"));
        if self.every.as_secs() == 0 {
            check.error(
                "every",
                "invalid-value",
                "`every` must be longer than 0s".into(),
                None,
            );
        }
    }
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
