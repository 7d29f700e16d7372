//! `shell`: a local command; exit 0 is success.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// A local command; exit 0 is success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Shell {
    pub run: String,
    /// Extra environment variables for the command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl Kind for Shell {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        120
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// No handle and no safe way to ask what a command did.
    fn reconcile(&self) -> Reconcile {
        Reconcile::AskOperator
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

    fn validate(&self, _check: &mut StepCheck<'_, '_, '_>) {}
}
