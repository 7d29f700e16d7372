//! Entra ID tokens for one environment, by any of the credential kinds a tenant allows: a client secret or
//! a certificate's signed assertion (`POST {authority}/{tenant}/oauth2/v2.0/token`, `scope = <resource>/.default`),
//! a workload identity's federated token file, the machine's managed identity ([`managed_identity`]), the
//! signed-in Azure CLI account ([`azure_cli`]) or a person's device-code sign-in ([`device_code`]).
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

pub mod azure_cli;
pub mod certificate;
pub mod claims;
pub mod device_code;
pub mod managed_identity;
pub mod workload;

/// The form value of `client_assertion_type` for a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

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

/// How a token is obtained (the runbook's `auth.credential`, resolved).
#[derive(Clone)]
pub enum Credential {
    /// Client credentials with a secret.
    Secret(Secret),
    /// Client credentials with a certificate's signed assertion.
    Certificate(Arc<certificate::SigningCertificate>),
    /// Client credentials with the federated token a file holds (re-read for every token).
    Workload(workload::FederatedTokenFile),
    /// The machine's managed identity.
    ManagedIdentity(Arc<managed_identity::ManagedIdentity>),
    /// `az account get-access-token`.
    AzureCli(azure_cli::AzureCli),
    /// A person's device-code sign-in, refreshed from the token cache file.
    DeviceCode(Arc<device_code::DeviceCode>),
}

impl Credential {
    /// The runbook's name of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "client_secret",
            Self::Certificate(_) => "client_certificate",
            Self::Workload(_) => "workload_identity",
            Self::ManagedIdentity(_) => "managed_identity",
            Self::AzureCli(_) => "azure_cli",
            Self::DeviceCode(_) => "device_code",
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential::{}", self.kind())
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Secret(a), Self::Secret(b)) => a == b,
            (Self::Certificate(a), Self::Certificate(b)) => Arc::ptr_eq(a, b),
            (Self::DeviceCode(a), Self::DeviceCode(b)) => Arc::ptr_eq(a, b),
            (Self::Workload(a), Self::Workload(b)) => a == b,
            (Self::ManagedIdentity(a), Self::ManagedIdentity(b)) => a == b,
            (Self::AzureCli(a), Self::AzureCli(b)) => a == b,
            _ => false,
        }
    }
}
impl Eq for Credential {}

/// One environment's token request: who asks (tenant, client id, credential) and for what (scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// e.g. `https://login.microsoftonline.com` (or the simulator's address).
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    /// `<resource>/.default`, or the runbook's explicit `scope`.
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
        Self::new(
            authority,
            tenant,
            client_id,
            Credential::Secret(client_secret),
            &scope_for(resource),
        )
    }

    /// Credentials of any kind for an explicit scope.
    pub fn new(authority: &str, tenant: &str, client_id: &str, credential: Credential, scope: &str) -> Self {
        Self {
            authority: authority.trim_end_matches('/').to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            credential,
            scope: scope.to_owned(),
        }
    }

    /// The token endpoint: also the `aud` of a client assertion.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant)
    }

    /// The resource of the scope (`https://x/.default` -> `https://x`), for the kinds that ask by resource.
    pub fn resource(&self) -> &str {
        self.scope.strip_suffix("/.default").unwrap_or(&self.scope)
    }

    fn key(&self) -> CacheKey {
        (
            format!("{}|{}", self.credential.kind(), self.authority),
            self.tenant.clone(),
            self.client_id.clone(),
            self.scope.clone(),
        )
    }
}

/// `<resource>/.default` (no double slash).
pub fn scope_for(resource: &str) -> String {
    format!("{}/.default", resource.trim_end_matches('/'))
}

/// What a credential kind obtained.
#[derive(Debug)]
pub struct Fetched {
    pub access_token: String,
    /// Seconds the token is valid for, from when it was asked.
    pub expires_in: u64,
}

/// (kind|authority, tenant, client id, scope).
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

    /// The transport to Entra ID (device-code and refresh grants go through it too).
    pub(crate) fn entra(&self) -> &Transport {
        &self.transport
    }

    /// Reports a secret value to the run's redactor (tokens, assertions, refresh tokens).
    pub(crate) fn redact(&self, value: &str) {
        if let Some(r) = &self.redactor {
            r(value);
        }
    }

    /// The signed-in person, when this source's credential is a delegated one (device code, Azure CLI) and
    /// its token names a user. Decoded from the token's claims, not verified (see [`claims`]).
    pub async fn identity(&self, cancel: &CancellationToken) -> Result<Option<crate::model::Identity>> {
        let token = self.token(cancel).await?;
        Ok(claims::identity_of(token.expose()))
    }

    /// POSTs a token form to `{authority}/{tenant}/oauth2/v2.0/token`; an Entra error becomes
    /// [`ConnectorError::Auth`] with its `AADSTS` code and text (never the form).
    pub(crate) async fn post_token_form(
        &self,
        form: Vec<(String, String)>,
        cancel: &CancellationToken,
    ) -> Result<Fetched> {
        let path = format!("/{}/oauth2/v2.0/token", self.creds.tenant);
        let req = Request::post("entra.token", path)
            .body(Body::Form(form))
            .idempotency(Idempotency::Safe)
            .unauthenticated()
            .no_redirects();
        let resp = self.transport.send(req, cancel).await.map_err(entra_error)?;
        let parsed = self.transport.parse(&resp, parse::token_response)?;
        Ok(Fetched {
            access_token: parsed.access_token,
            expires_in: parsed.expires_in,
        })
    }

    async fn fetch(&self, cancel: &CancellationToken) -> Result<Cached> {
        let started = Instant::now();
        let c = &self.creds;
        let base = |extra: Vec<(String, String)>| {
            let mut form = vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), c.client_id.clone()),
                ("scope".to_owned(), c.scope.clone()),
            ];
            form.extend(extra);
            form
        };
        let assertion = |a: Secret| {
            vec![
                ("client_assertion_type".to_owned(), ASSERTION_TYPE.to_owned()),
                ("client_assertion".to_owned(), a.expose().to_owned()),
            ]
        };
        let fetched = match &c.credential {
            Credential::Secret(s) => {
                let form = base(vec![("client_secret".to_owned(), s.expose().to_owned())]);
                self.post_token_form(form, cancel).await?
            }
            Credential::Certificate(cert) => {
                let a = cert
                    .assertion(&c.client_id, &c.token_url())
                    .map_err(|detail| self.config_error(detail))?;
                self.redact(a.expose());
                self.post_token_form(base(assertion(a)), cancel).await?
            }
            Credential::Workload(file) => {
                let a = file.read().map_err(|detail| self.config_error(detail))?;
                self.redact(a.expose());
                self.post_token_form(base(assertion(a)), cancel).await?
            }
            Credential::ManagedIdentity(mi) => mi.fetch(c.resource(), cancel).await?,
            Credential::AzureCli(cli) => cli.fetch(c.resource(), cancel).await?,
            Credential::DeviceCode(dc) => dc.fetch(self, cancel).await?,
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.redact(&fetched.access_token);
        // Capped at a year so the Instant arithmetic cannot overflow on an absurd expires_in.
        let lifetime = Duration::from_secs(fetched.expires_in.min(365 * 86_400));
        let refresh_at = started
            .checked_add(lifetime - refresh_margin(lifetime))
            .unwrap_or(started);
        Ok(Cached {
            value: Secret::new(fetched.access_token),
            refresh_at,
        })
    }

    fn config_error(&self, detail: String) -> ConnectorError {
        ConnectorError::Config {
            env: "entra".into(),
            detail: format!("{} credential: {detail}", self.creds.credential.kind()),
        }
    }
}

/// An Entra error answer restated as an authentication failure with the service's code and text.
pub(crate) fn entra_error(e: ConnectorError) -> ConnectorError {
    match e {
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
