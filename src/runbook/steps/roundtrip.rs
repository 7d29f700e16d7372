//! `roundtrip`: a canary written on one side, polled on the other, deleted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, MapId, Runbook};

/// A canary written on one side, polled on the other, deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Roundtrip {
    pub map: MapId,
    /// The environment the canary is written to (the map's source or target environment).
    pub from: String,
    /// How long the other side may take (built-in 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Duration>,
    /// Field values of the canary record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<BTreeMap<String, serde_json::Value>>,
}

impl Kind for Roundtrip {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        self.within.as_ref().map_or(120, Duration::as_secs)
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("canary")
    }

    /// The canary key is journaled: never create it twice.
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
        Vec::new()
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if check.known_map("map", &self.map)
            && let Some(spec) = check.rb.maps.get(&self.map)
            && self.from != spec.source_env()
            && self.from != spec.target_env()
        {
            let msg = format!("`from: {}` is neither side of map `{}`", self.from, self.map);
            let hint = format!("write `{}` or `{}`", spec.source_env(), spec.target_env());
            check.error("from", "unknown-env", msg, hint);
        }
    }
}
