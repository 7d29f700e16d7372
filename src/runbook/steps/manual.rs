//! `manual`: the operator confirms, with name and note; each checklist item is confirmed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// The operator confirms, with name and note; each checklist item is confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Manual {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<String>,
}

impl Kind for Manual {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        600
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// A question to the operator again.
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

    fn validate(&self, _check: &mut StepCheck<'_, '_, '_>) {}
}
