//! Entra ID client-credentials tokens (`POST {authority}/{tenant}/oauth2/v2.0/token`, form body,
//! `scope = <resource>/.default`).
//!
//! A [`TokenSource`] caches one token per (authority, tenant, client id, scope) — [`TokenCache`] hands out the same
//! source for the same key — and refreshes it before expiry (5 minutes or 10% of its lifetime early, whichever is
//! smaller) and when a service answers 401. The cache sits behind an async mutex held across the refresh, so
//! concurrent callers wait for the one refresh in flight instead of each asking Entra ID (no thundering herd).
//! Every token obtained is reported to the redactor hook so the journal can mask it; secrets and tokens are
//! [`Secret`]s, whose `Debug`/`Display` print `[REDACTED]`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::transport::{Body, Idempotency, Request, RequestObserver, RetryPolicy, Transport};
use super::{ConnectorError, Result, parse};

/// A value that must never be printed: a client secret or a bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Receives every secret value the connectors come to hold (tokens), so the journal can mask it.
pub type Redactor = Arc<dyn Fn(&str) + Send + Sync>;

/// The client-credentials grant for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// e.g. `https://login.microsoftonline.com` (or the simulator's address).
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// `<resource>/.default`.
    pub scope: String,
}

impl ClientCredentials {
    /// Credentials whose scope is `resource` (no trailing slash, as F&O documents its resource) + `/.default`.
    pub fn for_resource(
        authority: &str,
        tenant: &str,
        client_id: &str,
        client_secret: Secret,
        resource: &str,
    ) -> Self {
        Self {
            authority: authority.trim_end_matches('/').to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            scope: format!("{}/.default", resource.trim_end_matches('/')),
        }
    }

    fn key(&self) -> CacheKey {
        (
            self.authority.clone(),
            self.tenant.clone(),
            self.client_id.clone(),
            self.scope.clone(),
        )
    }
}

/// (authority, tenant, client id, scope).
type CacheKey = (String, String, String, String);

#[derive(Clone)]
struct Cached {
    value: Secret,
    refresh_at: Instant,
}

/// How early a token with this lifetime is refreshed: min(5 minutes, 10% of the lifetime).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// One cached token for one set of credentials.
pub struct TokenSource {
    creds: ClientCredentials,
    transport: Transport,
    cached: tokio::sync::Mutex<Option<Cached>>,
    redactor: Option<Redactor>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source talking to `creds.authority` through `client`. The token call is retried like a read (it has
    /// no side effect); its summaries (path `/{tenant}/oauth2/v2.0/token`, never the form body) go to `observer`.
    pub fn new(
        creds: ClientCredentials,
        client: reqwest::Client,
        policy: RetryPolicy,
        observer: Option<RequestObserver>,
        redactor: Option<Redactor>,
    ) -> Result<Self> {
        let mut transport = Transport::new("entra", client, &creds.authority, policy)?;
        if let Some(o) = observer {
            transport = transport.with_observer(o);
        }
        Ok(Self {
            creds,
            transport,
            cached: tokio::sync::Mutex::new(None),
            redactor,
            fetches: AtomicU64::new(0),
        })
    }

    /// A valid token, from the cache or freshly obtained. Concurrent callers share one refresh.
    pub async fn token(&self, cancel: &CancellationToken) -> Result<Secret> {
        let mut guard = tokio::select! {
            () = cancel.cancelled() => return Err(ConnectorError::Cancelled { env: "entra".into(), call: "token".into() }),
            g = self.cached.lock() => g,
        };
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.value.clone());
        }
        let fresh = self.fetch(cancel).await?;
        let value = fresh.value.clone();
        *guard = Some(fresh);
        Ok(value)
    }

    /// Drops the cached token if it is the one a service just rejected (a newer one is kept).
    pub async fn invalidate(&self, rejected: &str) {
        let mut guard = self.cached.lock().await;
        if guard.as_ref().is_some_and(|c| c.value.expose() == rejected) {
            *guard = None;
        }
    }

    /// How many tokens were obtained from Entra ID (for tests and the status line).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub fn credentials(&self) -> &ClientCredentials {
        &self.creds
    }

    async fn fetch(&self, cancel: &CancellationToken) -> Result<Cached> {
        let path = format!("/{}/oauth2/v2.0/token", self.creds.tenant);
        let req = Request::post("entra.token", path)
            .body(Body::Form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), self.creds.client_id.clone()),
                (
                    "client_secret".into(),
                    self.creds.client_secret.expose().to_owned(),
                ),
                ("scope".into(), self.creds.scope.clone()),
            ]))
            .idempotency(Idempotency::Safe)
            .unauthenticated();
        let started = Instant::now();
        let resp = self.transport.send(req, cancel).await.map_err(|e| match e {
            ConnectorError::Service {
                env,
                call,
                status,
                code,
                message,
            } => {
                let message = if code.is_empty() {
                    message
                } else {
                    format!("{code}: {message}")
                };
                ConnectorError::Auth {
                    env,
                    call,
                    status: Some(status),
                    message,
                }
            }
            other => other,
        })?;
        let parsed = self.transport.parse(&resp, parse::token_response)?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = &self.redactor {
            r(&parsed.access_token);
        }
        // Capped at a year so the Instant arithmetic cannot overflow on an absurd expires_in.
        let lifetime = Duration::from_secs(parsed.expires_in.min(365 * 86_400));
        let refresh_at = started
            .checked_add(lifetime - refresh_margin(lifetime))
            .unwrap_or(started);
        Ok(Cached {
            value: Secret::new(parsed.access_token),
            refresh_at,
        })
    }
}

/// Shares one [`TokenSource`] per (authority, tenant, client id, scope) across environments.
pub struct TokenCache {
    client: reqwest::Client,
    policy: RetryPolicy,
    observer: Option<RequestObserver>,
    redactor: Option<Redactor>,
    sources: Mutex<HashMap<CacheKey, Arc<TokenSource>>>,
}

impl TokenCache {
    pub fn new(
        client: reqwest::Client,
        policy: RetryPolicy,
        observer: Option<RequestObserver>,
        redactor: Option<Redactor>,
    ) -> Self {
        Self {
            client,
            policy,
            observer,
            redactor,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The source for these credentials, created on first use.
    pub fn source(&self, creds: ClientCredentials) -> Result<Arc<TokenSource>> {
        let mut map = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = map.get(&creds.key()) {
            return Ok(s.clone());
        }
        let key = creds.key();
        let s = Arc::new(TokenSource::new(
            creds,
            self.client.clone(),
            self.policy.clone(),
            self.observer.clone(),
            self.redactor.clone(),
        )?);
        map.insert(key, s.clone());
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[REDACTED] [REDACTED]");
        let c = ClientCredentials::for_resource(
            "https://login.microsoftonline.com/",
            "t",
            "c",
            s,
            "https://x.operations.dynamics.com/",
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.scope, "https://x.operations.dynamics.com/.default");
        assert_eq!(c.authority, "https://login.microsoftonline.com");
    }

    #[test]
    fn margin_is_the_smaller_of_five_minutes_and_a_tenth() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(refresh_margin(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn cache_shares_a_source_per_key() {
        let cache = TokenCache::new(
            crate::connectors::transport::client().unwrap(),
            RetryPolicy::default(),
            None,
            None,
        );
        let c =
            ClientCredentials::for_resource("http://127.0.0.1:1", "t", "c", Secret::new("s"), "https://a");
        let a = cache.source(c.clone()).unwrap();
        let b = cache.source(c.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = cache
            .source(ClientCredentials {
                scope: "https://b/.default".into(),
                ..c
            })
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
