//! `sample`: reconciles N random records by the maps' `key`, comparing the `compare` fields; keys from the F&O
//! side, the Dataverse side, or both (`from: both`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Reconciles N random records by the maps' `key`, comparing the `compare` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Sample {
    pub maps: MapSelection,
    /// Built-in 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Where keys are picked: the F&O environment (built-in), the Dataverse environment, or `both` (`size` keys
    /// from each side, so a row missing on either side can be found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Kind for Sample {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        300
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// Sampling is a read.
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

    /// `checked`, `differ` (persisting differences and missing rows), `missing_fno`, `missing_dataverse`.
    fn captures(&self) -> Vec<&str> {
        vec!["checked", "differ", "missing_fno", "missing_dataverse"]
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if let Some(from) = &self.from
            && from != "both"
            && !check.rb.environments.contains_key(from.as_str())
        {
            check.known_env("from", from);
        }
    }
}
