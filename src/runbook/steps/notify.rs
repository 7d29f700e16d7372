//! `notify`: posts a message to a webhook (Teams-compatible card).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Posts a message to a webhook (Teams-compatible card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Notify {
    pub url: String,
    pub text: String,
}

impl Kind for Notify {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        10
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// At least once: re-sent marked "(repeated after resume)".
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
        Some(&self.url)
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        if !self.url.contains("${") {
            check.warn(
                "url",
                "literal-webhook",
                "the webhook URL is written literally; it carries its own access token".into(),
                "write `${TEAMS_WEBHOOK_URL}` and set it in the environment".to_owned(),
            );
        }
    }
}
