//! `dataverse.disable_automation` / `dataverse.enable_automation`: turn named plug-in steps and cloud flows
//! off before dual-write pushes records, and back on afterwards. Each one's state is journaled before it is
//! changed (`automation_off`), so re-running the step after a crash keeps the first state, and the enable
//! step, or the abort of the run, puts back exactly what was on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Turns the named plug-in steps and cloud flows off, journaling each one's state first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct DisableAutomation {
    /// The Dataverse environment.
    pub env: String,
    /// Plug-in step names (`sdkmessageprocessingstep.name`), every registration of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugin_steps: Vec<String>,
    /// Cloud flow names (`workflow.name`, category 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<String>,
}

/// Puts back every plug-in step and flow this run turned off in `env`, in the state each had before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct EnableAutomation {
    /// The Dataverse environment.
    pub env: String,
}

fn common_kind(env: &str) -> Vec<(&'static str, &str, Option<EnvKind>)> {
    vec![("env", env, Some(EnvKind::Dataverse))]
}

impl Kind for DisableAutomation {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        10
    }
    fn handle_kind(&self) -> Option<&'static str> {
        None
    }
    /// Re-run: the states journaled before each change are the ones kept.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }
    fn maps(&self) -> Option<&MapSelection> {
        None
    }
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        common_kind(&self.env)
    }
    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }
    fn url(&self) -> Option<&str> {
        None
    }
    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if self.plugin_steps.is_empty() && self.flows.is_empty() {
            check.error(
                "plugin_steps",
                "invalid-value",
                "the step names no plug-in step and no flow".into(),
                "list them under `plugin_steps` and `flows` (preflight's `automation` lines name those on the mapped tables)".to_owned(),
            );
        }
        for (field, list) in [("plugin_steps", &self.plugin_steps), ("flows", &self.flows)] {
            if list.iter().any(|n| n.trim().is_empty()) {
                check.error(
                    field,
                    "invalid-value",
                    format!("an empty name in `{field}`"),
                    None,
                );
            }
        }
    }
}

impl Kind for EnableAutomation {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        10
    }
    fn handle_kind(&self) -> Option<&'static str> {
        None
    }
    /// Re-run: putting back a state is idempotent.
    fn reconcile(&self) -> Reconcile {
        Reconcile::Rerun
    }
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }
    fn maps(&self) -> Option<&MapSelection> {
        None
    }
    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        common_kind(&self.env)
    }
    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }
    fn url(&self) -> Option<&str> {
        None
    }
    fn validate(&self, _check: &mut StepCheck<'_, '_, '_>) {}
}
