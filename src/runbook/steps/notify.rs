//! `notify`: posts a message to a webhook (Teams-compatible card), or to a runbook `notify_targets` entry
//! named with `to`. The text may use the run's figures (`${parity.worst}`, see `runbook::vars::FIGURES`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// Posts a message to a webhook (Teams-compatible card).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Notify {
    /// The webhook URL (exactly one of `url`, `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A `notify_targets` entry (exactly one of `url`, `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
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
        self.url.as_deref()
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        check.exactly_one(self.url.is_some(), self.to.is_some(), ("url", "to"));
        if let Some(to) = &self.to
            && !check.rb.notify_targets.contains_key(to)
        {
            let known: Vec<&str> = check.rb.notify_targets.keys().map(String::as_str).collect();
            check.error(
                "to",
                "unknown-notify-target",
                format!("no notify target `{to}`"),
                Some(if known.is_empty() {
                    "declare it under `notify_targets:` at the top of the runbook".to_owned()
                } else {
                    format!("known: {}", known.join(", "))
                }),
            );
        }
        if let Some(url) = &self.url
            && !url.contains("${")
        {
            check.warn(
                "url",
                "literal-webhook",
                "the webhook URL is written literally; it carries its own access token".into(),
                "write `${TEAMS_WEBHOOK_URL}` and set it in the environment".to_owned(),
            );
        }
    }
}
