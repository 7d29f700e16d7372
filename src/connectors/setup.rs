//! Building a [`Transport`] for one runbook environment, so the engine's setup is one call per environment.
//!
//! The token audience and the address requests go to are separate on purpose: in `--sim` mode the runbook's
//! environment URL stays the token scope (the simulator checks audiences) while requests go to the simulator.

use std::sync::Arc;

use super::Result;
use super::auth::{ClientCredentials, Credential, TokenCache, scope_for};
use super::dataverse::dataverse_transport;
use super::transport::{RequestObserver, RetryPolicy, Transport};

/// The default Entra ID authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// How an environment gets its token, as the runbook's `auth` block gives it (secrets already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAuth {
    /// `None` means [`DEFAULT_AUTHORITY`] (or the simulator's address in `--sim` mode, set by the caller).
    pub authority: Option<String>,
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    /// The runbook's explicit scope (its `scope`, or `resource` + `/.default`); `None`: the environment URL's.
    pub scope: Option<String>,
}

/// One environment's connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvConfig {
    /// The runbook's environment id (`fno`, `dataverse`, ...): names every error and request summary.
    pub name: String,
    /// The environment URL from the runbook: the token resource (audience).
    pub resource: String,
    /// Where requests are sent: the resource itself, or the simulator's address.
    pub send_to: String,
    pub auth: Option<EnvAuth>,
    pub policy: RetryPolicy,
    /// Add the Dataverse OData headers to every request.
    pub dataverse: bool,
}

/// Builds the transport of one environment: tokens from `tokens` (shared per credentials and scope), summaries to
/// `observer`. Refuses plain http to a non-loopback host.
pub fn transport(
    cfg: &EnvConfig,
    client: &reqwest::Client,
    tokens: &TokenCache,
    observer: Option<RequestObserver>,
) -> Result<Transport> {
    let mut t = Transport::new(&cfg.name, client.clone(), &cfg.send_to, cfg.policy.clone())?;
    if let Some(a) = &cfg.auth {
        let authority = a.authority.as_deref().unwrap_or(DEFAULT_AUTHORITY);
        let scope = a.scope.clone().unwrap_or_else(|| scope_for(&cfg.resource));
        let creds = ClientCredentials::new(authority, &a.tenant, &a.client_id, a.credential.clone(), &scope);
        t = t.with_token(tokens.source(creds)?);
    }
    if let Some(o) = observer {
        t = t.with_observer(Arc::clone(&o));
    }
    Ok(if cfg.dataverse { dataverse_transport(t) } else { t })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_credentials_share_a_token_source_and_plain_http_is_refused() {
        let client = super::super::transport::client().unwrap();
        let tokens = TokenCache::new(client.clone(), RetryPolicy::default(), None, None);
        let auth = EnvAuth {
            authority: Some("http://127.0.0.1:9".into()),
            tenant: "t".into(),
            client_id: "c".into(),
            credential: Credential::Secret(crate::connectors::auth::Secret::new("s")),
            scope: None,
        };
        let cfg = EnvConfig {
            name: "fno".into(),
            resource: "https://contoso.operations.dynamics.com".into(),
            send_to: "http://127.0.0.1:9".into(),
            auth: Some(auth),
            policy: RetryPolicy::fno(),
            dataverse: false,
        };
        let a = transport(&cfg, &client, &tokens, None).unwrap();
        let b = transport(
            &EnvConfig {
                name: "fno-2".into(),
                ..cfg.clone()
            },
            &client,
            &tokens,
            None,
        )
        .unwrap();
        assert!(Arc::ptr_eq(a.token_source().unwrap(), b.token_source().unwrap()));
        assert_eq!(
            a.token_source().unwrap().credentials().scope,
            "https://contoso.operations.dynamics.com/.default"
        );
        let bad = EnvConfig {
            send_to: "http://contoso.operations.dynamics.com".into(),
            ..cfg
        };
        assert!(transport(&bad, &client, &tokens, None).is_err());
    }
}
