//! The environments of a run: one transport (and typed clients) per runbook environment, with tokens,
//! retry policy and request journaling wired in. Built once per run; `--sim` points them at the simulator.

use std::collections::BTreeMap;

use crate::connectors::auth::TokenCache;
use crate::connectors::transport::Transport;
use crate::journal::Redactor;
use crate::runbook::{EnvLookup, Runbook};

use super::ctx::Emitter;

/// Where requests go: the runbook's URLs, or a simulator that stands in for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The runbook's own URLs and authority.
    Live,
    /// Every environment's requests and the token authority go to this base URL (`http://127.0.0.1:PORT`);
    /// token scopes stay the runbook's URLs.
    Sim { url: String },
}

/// Why the environments could not be built (an unset secret, a bad URL...): invalid input, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum EnvsError {
    #[error("environment `{env}`: {message}")]
    Invalid { env: String, message: String },
    #[error(transparent)]
    Connector(#[from] crate::connectors::ConnectorError),
}

/// The environments of a run.
pub struct Envs {
    /// One transport per runbook environment id; requests are journaled as `Event::Request`.
    pub transports: BTreeMap<String, Transport>,
    pub tokens: TokenCache,
}

impl Envs {
    /// Builds every environment of `runbook`: secrets resolved through `vars` and added to `redactor`
    /// (so the journal masks them), tokens cached per credentials, request summaries sent to `emit`.
    pub fn build(
        _runbook: &Runbook,
        _vars: &dyn EnvLookup,
        _target: &Target,
        _redactor: &Redactor,
        _emit: &Emitter,
    ) -> Result<Envs, EnvsError> {
        Err(EnvsError::Invalid {
            env: String::new(),
            message: "not built yet".into(),
        })
    }
}
