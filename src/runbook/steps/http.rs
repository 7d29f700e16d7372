//! `http`: one request, optionally polled until a JSON pointer matches.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, Runbook};

/// One request, optionally polled until a JSON pointer matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Http {
    /// Environment for base URL and auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// Relative to the environment's URL (exactly one of `path`, `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<HttpExpect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<HttpPoll>,
    /// Capture name → JSON pointer; later steps read `${steps.<id>.<name>}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, String>,
}

impl Kind for Http {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        60
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// A GET is a read; any other method has no handle to ask about.
    fn reconcile(&self) -> Reconcile {
        match self.method {
            None | Some(HttpMethod::Get) => Reconcile::Rerun,
            Some(_) => Reconcile::AskOperator,
        }
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }

    fn maps(&self) -> Option<&MapSelection> {
        None
    }

    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        self.env
            .as_deref()
            .map(|e| ("env", e, None))
            .into_iter()
            .collect()
    }

    fn captures(&self) -> Vec<&str> {
        self.capture.keys().map(String::as_str).collect()
    }

    fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        check.exactly_one(self.path.is_some(), self.url.is_some(), ("path", "url"));
        if self.path.is_some() && self.env.is_none() {
            let hint = "add `env:` for the base URL, or write a full `url`".to_owned();
            check.error("path", "missing-field", "`path` needs an `env`".into(), hint);
        }
    }
}

/// One JSON pointer condition on a response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PointerMatch {
    /// RFC 6901 pointer, e.g. `/status`.
    pub pointer: String,
    pub equals: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// Accepted status code(s) (any 2xx when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusSpec>,
}

/// `status: 200` or `status: [200, 202]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}
impl StatusSpec {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusSpec::One(s) => *s == status,
            StatusSpec::Many(list) => list.contains(&status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpPoll {
    pub every: Duration,
    pub until: PointerMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_if: Option<PointerMatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}
