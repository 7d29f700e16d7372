//! One [`Transport`] per environment: the shared `reqwest::Client`, a base URL, an optional token source, the
//! retry policy and the request observer the engine journals.
//!
//! What is retried (up to `RetryPolicy::retries` extra attempts, exponential backoff with jitter between
//! `base_delay` and `max_delay`, or the service's `Retry-After` in seconds or as an HTTP date, capped at
//! `max_retry_after`):
//! - [`Idempotency::Safe`] (reads, PUT, DELETE, read-only actions) and [`Idempotency::Handle`] (a create/start
//!   call carrying a caller-generated handle the service or the caller can reconcile on): connect errors, resets,
//!   timeouts, 5xx (except 501/505) and 429.
//! - [`Idempotency::Unsafe`] (a create/start call with no handle): only failures that prove the request had no
//!   effect: connect errors (nothing was sent) and 429 (throttled before processing). Anything else transient ends
//!   as [`ConnectorError::Ambiguous`] so the engine reconciles instead of acting twice.
//! - A 2xx whose body claims to be JSON (`Content-Type` naming json) but does not parse (truncated or malformed)
//!   is treated like a transient fault for `Safe` and `Handle` calls: retried with backoff within the same budget,
//!   and when the budget runs out the call fails as [`ConnectorError::BadBody`] saying "invalid JSON". For an
//!   `Unsafe` call the request has taken effect, so it is never repeated: it fails at once as `BadBody`.
//! - A 401 with a token source: the token is dropped, one fresh token is fetched and the call is repeated once.
//! - A failure to get a token is reported against this environment and call (not Entra ID's), so a wrong audience
//!   or a refused secret names the environment that needed the token.
//! - A TLS failure (expired, untrusted or wrong-name certificate) is never retried: it ends at once as
//!   [`ConnectorError::Config`] naming the host and the cause (see `crate::net`).
//! - No attempt starts once `cancel` is cancelled (the engine cancels when the journal cannot be written, so no
//!   request goes out that the journal could not record).
//!
//! Where a request may go (one rule, checked here for every request and every redirect hop):
//! - A request carrying this environment's token goes only to the environment's own scheme, host and port:
//!   an absolute target (an `http` step's `path`, a capture, a nextLink) or a redirect elsewhere is refused
//!   before anything is sent, with an error naming both hosts.
//! - Redirects are followed here, not by the client (at most [`MAX_REDIRECTS`] hops, each checked as above); a
//!   token request (a form post, or [`Request::no_redirects`]) never follows one: a 307/308 would post the
//!   secret again.
//! - A response body larger than [`Limits::max_body_bytes`] (declared, or streamed without end) is not read
//!   further: the call fails at once naming the call and the cap. [`Pages`] bounds a listing's nextLinks.
//!
//! On a 429 without `Retry-After` the wait is `retry_after_fallback` when the service documents one (F&O's docs fall
//! back to 30 s, see [`RetryPolicy::fno`]), otherwise the backoff. Every attempt, and every wait before a retry, is
//! reported to the observer; every wait is cancellable through the `CancellationToken`.

use std::sync::Arc;
use std::time::Instant;

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::auth::TokenSource;
use super::parse;
pub use super::request::{Body, Idempotency, Limits, Request, Response, RetryPolicy};
use super::{ConnectorError, Result};

/// Asked before every attempt: `Some(reason)` means nothing may be sent now (the driver's lease heartbeat
/// lapsed); the call fails at once with that reason.
pub type SendGuard = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Receives one summary per HTTP attempt (the engine journals them). Never given a header value or a body.
pub type RequestObserver = Arc<dyn Fn(RequestSummary) + Send + Sync>;

/// What the journal may know about one attempt: no header values, no bodies, no query values (they can hold SAS
/// signatures or record keys); the query's keys are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestSummary {
    pub env: String,
    pub call: String,
    pub method: String,
    /// Path plus the query's keys, e.g. `/data/CustomersV3/$count?cross-company&$filter`.
    pub path: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// 1-based attempt number within the call.
    pub attempt: u32,
    pub error: Option<String>,
    /// Set when the transport is about to wait this long and try again.
    pub retry_in_ms: Option<u64>,
}

/// Builds the HTTP client the connectors use: the crate's defaults (redirects are followed by the transport,
/// which checks every hop; see the module docs).
pub fn client() -> std::result::Result<reqwest::Client, reqwest::Error> {
    crate::connectors::net::client_builder().build()
}

/// Redirect hops followed for one attempt.
pub const MAX_REDIRECTS: usize = 5;

pub use crate::util::url_allowed;

/// `scheme://host:port` of a URL (the port made explicit), for the same-origin rule and its messages.
pub fn origin(u: &Url) -> String {
    format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.port_or_known_default().unwrap_or(0)
    )
}

/// Whether two URLs share scheme, host (case-insensitive) and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Percent-encodes a query key or value (spaces as `%20`, which every OData server reads; `$`, quotes and
/// parentheses kept readable).
pub fn encode_query_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$'(),:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The calls of one environment. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    env: String,
    client: reqwest::Client,
    base: Url,
    token: Option<Arc<TokenSource>>,
    observer: Option<RequestObserver>,
    policy: RetryPolicy,
    default_headers: Vec<(String, String)>,
    /// Plain http to the Azure Instance Metadata Service address is allowed (managed identity only).
    allow_imds: bool,
    limits: Limits,
    guard: Option<SendGuard>,
    /// A shared access signature appended to every request to the base's origin (never journaled: the
    /// journal keeps a request's own query keys only).
    signature: Option<Arc<str>>,
}

/// Why one exchange (a request and its redirects) produced no response.
enum Exchange {
    Http(reqwest::Error),
    Refused(ConnectorError),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("env", &self.env)
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `env` at `base_url`. Refuses plain http to a non-loopback host.
    pub fn new(env: &str, client: reqwest::Client, base_url: &str, policy: RetryPolicy) -> Result<Self> {
        let base = Url::parse(base_url).map_err(|e| ConnectorError::Config {
            env: env.to_owned(),
            detail: format!("invalid URL {base_url:?}: {e}"),
        })?;
        check_url(env, &base, false)?;
        Ok(Self {
            env: env.to_owned(),
            client,
            base,
            token: None,
            observer: None,
            policy,
            default_headers: Vec::new(),
            allow_imds: false,
            limits: Limits::default(),
            guard: None,
            signature: None,
        })
    }

    /// A transport to the Azure Instance Metadata Service (`http://169.254.169.254`, link-local and
    /// never proxied) or to a loopback identity endpoint: the one place plain http off loopback is allowed.
    pub(crate) fn for_imds(
        env: &str,
        client: reqwest::Client,
        base_url: &str,
        policy: RetryPolicy,
    ) -> Result<Self> {
        let base = Url::parse(base_url).map_err(|e| ConnectorError::Config {
            env: env.to_owned(),
            detail: format!("invalid URL {base_url:?}: {e}"),
        })?;
        check_url(env, &base, true)?;
        let mut t = Self::new(env, client, "http://127.0.0.1", policy)?;
        t.base = base;
        t.allow_imds = true;
        Ok(t)
    }
    pub fn with_token(mut self, token: Arc<TokenSource>) -> Self {
        self.token = Some(token);
        self
    }
    /// The body and page caps (runbook `defaults`).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// A check made before every attempt (see [`SendGuard`]).
    pub fn with_guard(mut self, guard: SendGuard) -> Self {
        self.guard = Some(guard);
        self
    }
    /// A bound on one listing's pages: see [`Pages`].
    pub fn pages(&self, call: &str) -> Pages {
        Pages::new(&self.env, call, self.limits.max_pages)
    }
    pub fn with_observer(mut self, observer: RequestObserver) -> Self {
        self.observer = Some(observer);
        self
    }
    /// No request summaries (the checkpoint signer's calls follow the checkpoints they make).
    pub fn without_observer(mut self) -> Self {
        self.observer = None;
        self
    }
    /// A shared access signature (a query string, already encoded, without `?`) appended to every request to
    /// this transport's origin.
    pub fn with_signature(mut self, sas: &str) -> Self {
        let sas = sas.trim().trim_start_matches('?');
        self.signature = (!sas.is_empty()).then(|| Arc::from(sas));
        self
    }
    /// A header sent on every request (the Dataverse OData headers).
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.default_headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn env(&self) -> &str {
        &self.env
    }
    pub fn base_url(&self) -> &Url {
        &self.base
    }
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
    pub fn token_source(&self) -> Option<&Arc<TokenSource>> {
        self.token.as_ref()
    }

    /// Sends with retries and maps every non-2xx status to an error with the service's own message. An HTML body
    /// is [`ConnectorError::UnexpectedHtml`] whatever the status.
    pub async fn send(&self, req: Request, cancel: &CancellationToken) -> Result<Response> {
        let resp = self.send_any(req, cancel).await?;
        self.reject_html(&resp)?;
        if (200..300).contains(&resp.status) {
            return Ok(resp);
        }
        Err(self.status_error(&resp))
    }

    /// Sends with retries and the 401 refresh, returning whatever final status the service gave (the generic
    /// `http` step checks its own expected status).
    pub async fn send_any(&self, req: Request, cancel: &CancellationToken) -> Result<Response> {
        let url = self.url_for(&req)?;
        let path = summary_path(&url);
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut timeouts = 0u32;
        loop {
            attempt += 1;
            if cancel.is_cancelled() {
                return Err(self.cancelled(&req.call));
            }
            if let Some(why) = self.guard.as_ref().and_then(|g| g()) {
                return Err(ConnectorError::Cancelled {
                    env: self.env.clone(),
                    call: format!("{} ({why})", req.call),
                });
            }
            let token = match (&self.token, req.authenticated) {
                // Boxed: the token source itself sends through a Transport, which makes the future recursive.
                (Some(ts), true) => Some(
                    Box::pin(ts.token(cancel))
                        .await
                        .map_err(|e| e.for_token(&self.env, &req.call))?,
                ),
                _ => None,
            };
            let started = Instant::now();
            let outcome = tokio::select! {
                () = cancel.cancelled() => return Err(self.cancelled(&req.call)),
                r = self.exchange(&req, url.clone(), token.as_ref().map(|t| t.expose())) => r,
            };
            let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let mut summary = RequestSummary {
                env: self.env.clone(),
                call: req.call.clone(),
                method: req.method.to_string(),
                path: path.clone(),
                status: None,
                duration_ms: elapsed,
                attempt,
                error: None,
                retry_in_ms: None,
            };
            let mut bad_json = false;
            let outcome = match outcome {
                Ok(o) => Ok(o),
                Err(Exchange::Http(e)) => Err(e),
                Err(Exchange::Refused(e)) => {
                    summary.error = Some(e.to_string());
                    self.observe(summary);
                    return Err(e);
                }
            };
            let (retry_reason, wait_hint, provably_unsent) = match outcome {
                Ok((status, headers, body)) => {
                    summary.status = Some(status);
                    if status == 401
                        && !refreshed
                        && let (Some(ts), Some(tok)) = (&self.token, &token)
                    {
                        summary.error = Some("401: refreshing the token once".into());
                        self.observe(summary);
                        ts.invalidate(tok.expose()).await;
                        refreshed = true;
                        continue;
                    }
                    let transient =
                        status == 429 || (500..600).contains(&status) && status != 501 && status != 505;
                    let invalid_json = if (200..300).contains(&status) && claims_json(&headers, &body) {
                        parse::check_json(&body).err()
                    } else {
                        None
                    };
                    if let Some(e) = invalid_json {
                        bad_json = true;
                        (format!("invalid JSON: {e}"), None, false)
                    } else {
                        if !transient || req.status_is_final {
                            self.observe(summary);
                            return Ok(Response {
                                status,
                                headers,
                                body,
                                path,
                                call: req.call.clone(),
                            });
                        }
                        self.transient_reason(status, &headers, &body)
                    }
                }
                Err(e) => {
                    if e.is_redirect() || e.is_builder() {
                        let detail = error_chain(&e.without_url());
                        summary.error = Some(detail.clone());
                        self.observe(summary);
                        return Err(ConnectorError::Config {
                            env: self.env.clone(),
                            detail: format!("{}: {detail}", req.call),
                        });
                    }
                    if let Some(why) = crate::connectors::net::tls_failure(&e) {
                        // A certificate problem does not go away by asking again: fail at once, naming the host.
                        let host = url.host_str().unwrap_or("?").to_owned();
                        summary.error = Some(format!("TLS with {host}: {why}"));
                        self.observe(summary);
                        return Err(ConnectorError::Config {
                            env: self.env.clone(),
                            detail: format!("{}: TLS with {host} failed: {why}; not retried", req.call),
                        });
                    }
                    if e.is_timeout() {
                        timeouts += 1;
                    }
                    let unsent = e.is_connect();
                    (error_chain(&e.without_url()), None, unsent)
                }
            };
            let may_retry = match req.idempotency {
                Idempotency::Safe | Idempotency::Handle(_) => true,
                Idempotency::Unsafe => provably_unsent,
            };
            summary.error = Some(retry_reason.clone());
            if !may_retry && bad_json {
                self.observe(summary);
                return Err(ConnectorError::bad_body(
                    &self.env,
                    &req.call,
                    format!("{retry_reason} (not repeated: the call is not idempotent and has no handle)"),
                ));
            }
            if !may_retry {
                self.observe(summary);
                return Err(ConnectorError::Ambiguous {
                    env: self.env.clone(),
                    call: req.call.clone(),
                    detail: retry_reason,
                });
            }
            if attempt > self.policy.retries {
                self.observe(summary);
                if bad_json {
                    return Err(ConnectorError::bad_body(
                        &self.env,
                        &req.call,
                        format!("{retry_reason} (after {attempt} attempts)"),
                    ));
                }
                if timeouts == attempt {
                    let after_ms = u64::try_from(self.policy.timeout.as_millis()).unwrap_or(u64::MAX);
                    return Err(ConnectorError::Timeout {
                        env: self.env.clone(),
                        call: req.call.clone(),
                        after_ms,
                    });
                }
                return Err(ConnectorError::TransientExhausted {
                    env: self.env.clone(),
                    call: req.call.clone(),
                    attempts: attempt,
                    last: retry_reason,
                });
            }
            let wait = wait_hint.map_or_else(
                || self.policy.backoff(attempt),
                |w| w.min(self.policy.max_retry_after),
            );
            summary.retry_in_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            self.observe(summary);
            tokio::select! {
                () = cancel.cancelled() => return Err(self.cancelled(&req.call)),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One attempt: the request, then any redirects it is answered with (each hop checked by [`Self::check_dest`]),
    /// then the final body read within the cap.
    async fn exchange(
        &self,
        req: &Request,
        mut url: Url,
        token: Option<&str>,
    ) -> std::result::Result<(u16, HeaderMap, Vec<u8>), Exchange> {
        let follow = req.follow_redirects && !matches!(req.body, Body::Form(_));
        let mut method = req.method.clone();
        let mut with_body = true;
        let mut hops = 0usize;
        loop {
            let builder = self
                .build(req, &method, with_body, url.clone(), token)
                .map_err(Exchange::Refused)?;
            let resp = builder.send().await.map_err(Exchange::Http)?;
            let status = resp.status().as_u16();
            let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok());
            if let (true, Some(loc)) = (matches!(status, 301 | 302 | 303 | 307 | 308), location) {
                let next = url.join(loc).map_err(|e| {
                    Exchange::Refused(self.config(format!(
                        "{}: HTTP {status} redirect to an invalid URL: {e}",
                        req.call
                    )))
                })?;
                if !follow {
                    return Err(Exchange::Refused(self.config(format!(
                        "{}: HTTP {status} redirect from {} to {} not followed: a token request is never \
                         redirected (it would send its secret again)",
                        req.call,
                        host_port(&url),
                        host_port(&next)
                    ))));
                }
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(Exchange::Refused(
                        self.config(format!("{}: more than {MAX_REDIRECTS} redirects", req.call)),
                    ));
                }
                check_url(&self.env, &next, self.allow_imds).map_err(Exchange::Refused)?;
                self.check_dest(&req.call, &next, token.is_some())
                    .map_err(Exchange::Refused)?;
                if status == 303 || matches!(status, 301 | 302) && method == reqwest::Method::POST {
                    method = reqwest::Method::GET;
                    with_body = false;
                }
                url = next;
                continue;
            }
            let headers = resp.headers().clone();
            let body = self.read_capped(&req.call, resp).await?;
            return Ok((status, headers, body));
        }
    }

    /// Reads a body up to the cap: a larger declared length, or more streamed bytes, fails at once.
    async fn read_capped(
        &self,
        call: &str,
        mut resp: reqwest::Response,
    ) -> std::result::Result<Vec<u8>, Exchange> {
        let cap = self.limits.max_body_bytes;
        let too_big = |what: String| {
            Exchange::Refused(ConnectorError::bad_body(
                &self.env,
                call,
                format!(
                    "the response body {what} the cap of {cap} bytes (runbook `defaults.max_response`); not read further"
                ),
            ))
        };
        let mut body = CappedBody::new(cap, resp.content_length())
            .map_err(|n| too_big(format!("declares {n} bytes, over")))?;
        while let Some(chunk) = resp.chunk().await.map_err(Exchange::Http)? {
            body.push(&chunk)
                .map_err(|OverCap(_)| too_big("streamed past".to_owned()))?;
        }
        Ok(body.into_inner())
    }

    /// The one rule on destinations: a request carrying this environment's token goes only to the
    /// environment's own scheme, host and port.
    fn check_dest(&self, call: &str, url: &Url, with_token: bool) -> Result<()> {
        if !with_token || url.origin() == self.base.origin() {
            return Ok(());
        }
        Err(self.config(format!(
            "{call}: refused to send {}'s token to {}://{} (the environment is {}://{}): a token goes only to \
             its environment's own scheme, host and port",
            self.env,
            url.scheme(),
            host_port(url),
            self.base.scheme(),
            host_port(&self.base)
        )))
    }

    fn config(&self, detail: String) -> ConnectorError {
        ConnectorError::Config {
            env: self.env.clone(),
            detail,
        }
    }

    /// Why a transient status (429, 5xx) is retried, the service's wait hint, and whether it proves the request
    /// had no effect (only a 429 does).
    fn transient_reason(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> (String, Option<std::time::Duration>, bool) {
        let msg = parse::error_message(body)
            .map(|m| m.message)
            .filter(|m| !m.is_empty());
        let reason = format!(
            "HTTP {status}{}",
            msg.map(|m| format!(": {m}")).unwrap_or_default()
        );
        let hint = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse::retry_after(v, chrono::Utc::now()))
            .or(if status == 429 {
                self.policy.retry_after_fallback
            } else {
                None
            });
        (reason, hint, status == 429)
    }

    /// Parses a successful response with a pure parser, wrapping its failure as `BadBody` naming env and call.
    pub fn parse<T>(
        &self,
        resp: &Response,
        f: impl FnOnce(&[u8]) -> std::result::Result<T, parse::ParseError>,
    ) -> Result<T> {
        self.reject_html(resp)?;
        f(&resp.body).map_err(|e| ConnectorError::bad_body(&self.env, &resp.call, e.0))
    }

    fn reject_html(&self, resp: &Response) -> Result<()> {
        if parse::is_html(resp.content_type(), &resp.body) {
            return Err(ConnectorError::UnexpectedHtml {
                env: self.env.clone(),
                path: resp.path.clone(),
                status: resp.status,
                title: parse::html_title(&resp.body),
                sign_in: parse::looks_like_sign_in(&resp.body),
            });
        }
        Ok(())
    }

    /// The error for a non-2xx final response.
    pub fn status_error(&self, resp: &Response) -> ConnectorError {
        let env = self.env.clone();
        let call = resp.call.clone();
        let msg = parse::error_message(&resp.body).unwrap_or_else(|| parse::ServiceMessage {
            code: String::new(),
            message: String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
                .trim()
                .to_owned(),
        });
        let message = if msg.message.is_empty() {
            format!("HTTP {}", resp.status)
        } else {
            msg.message
        };
        match resp.status {
            401 | 403 => ConnectorError::Auth {
                env,
                call,
                status: Some(resp.status),
                message,
            },
            404 => ConnectorError::NotFound { env, call, message },
            status => ConnectorError::Service {
                env,
                call,
                status,
                code: msg.code,
                message,
            },
        }
    }

    fn cancelled(&self, call: &str) -> ConnectorError {
        ConnectorError::Cancelled {
            env: self.env.clone(),
            call: call.to_owned(),
        }
    }

    fn observe(&self, s: RequestSummary) {
        if let Some(o) = &self.observer {
            o(s);
        }
    }

    /// The full URL of a request: absolute targets verbatim, paths joined to the base; query pairs appended.
    pub fn url_for(&self, req: &Request) -> Result<Url> {
        let mut text = if req.target.starts_with("http://") || req.target.starts_with("https://") {
            req.target.clone()
        } else {
            let base = self.base.as_str().trim_end_matches('/');
            format!("{base}/{}", req.target.trim_start_matches('/'))
        };
        if !req.query.is_empty() {
            text.push(if text.contains('?') { '&' } else { '?' });
            let q: Vec<String> = req
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode_query_part(k), encode_query_part(v)))
                .collect();
            text.push_str(&q.join("&"));
        }
        let unsigned = text.clone();
        if let Some(sas) = &self.signature
            && Url::parse(&text).is_ok_and(|u| same_origin(&self.base, &u))
        {
            text.push(if text.contains('?') { '&' } else { '?' });
            text.push_str(sas);
        }
        let url = Url::parse(&text).map_err(|e| ConnectorError::Config {
            env: self.env.clone(),
            detail: format!(
                "{}: invalid URL for {}: {e}",
                req.call,
                summary_path_str(&unsigned)
            ),
        })?;
        check_url(&self.env, &url, self.allow_imds)?;
        if req.same_origin && !same_origin(&self.base, &url) {
            return Err(ConnectorError::Config {
                env: self.env.clone(),
                detail: format!(
                    "{}: refused to follow @odata.nextLink to {} because the request went to {}: a next page must \
                     come from the same scheme, host and port (the token was not sent)",
                    req.call,
                    origin(&url),
                    origin(&self.base)
                ),
            });
        }
        self.check_dest(&req.call, &url, req.authenticated && self.token.is_some())?;
        Ok(url)
    }

    fn build(
        &self,
        req: &Request,
        method: &reqwest::Method,
        with_body: bool,
        url: Url,
        token: Option<&str>,
    ) -> Result<reqwest::RequestBuilder> {
        let mut b = self
            .client
            .request(method.clone(), url)
            .timeout(self.policy.timeout);
        for (k, v) in self.default_headers.iter().chain(&req.headers) {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(t) = token {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| ConnectorError::Config {
                    env: self.env.clone(),
                    detail: "token is not a valid header value".into(),
                })?;
            v.set_sensitive(true);
            b = b.header(reqwest::header::AUTHORIZATION, v);
        }
        if !with_body {
            return Ok(b);
        }
        Ok(match &req.body {
            Body::Empty => b,
            Body::Json(v) => b.json(v),
            Body::Form(f) => b.form(f),
            Body::Bytes { data, content_type } => {
                b.header(CONTENT_TYPE, content_type.as_str()).body(data.clone())
            }
        })
    }
}

/// The Azure Instance Metadata Service address.
pub const IMDS_HOST: &str = "169.254.169.254";

fn check_url(env: &str, url: &Url, allow_imds: bool) -> Result<()> {
    if url_allowed(url) || allow_imds && url.scheme() == "http" && url.host_str() == Some(IMDS_HOST) {
        return Ok(());
    }
    Err(ConnectorError::Config {
        env: env.to_owned(),
        detail: format!(
            "refusing {}://{}: only https, or plain http to a loopback host (the simulator), is allowed",
            url.scheme(),
            url.host_str().unwrap_or("")
        ),
    })
}

/// `host:port` of a URL (the port the scheme implies when none is written).
fn host_port(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// A streamed body went past its cap: the size it would have had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap(pub u64);

/// A response body read up to a cap: a declared length over it is refused before any byte is read, and a
/// chunk that would take the body past it is refused without being kept.
#[derive(Debug)]
pub struct CappedBody {
    cap: u64,
    body: Vec<u8>,
}

impl CappedBody {
    /// A body of at most `cap` bytes; `Err(declared)` when the declared length is over it.
    pub fn new(cap: u64, declared: Option<u64>) -> std::result::Result<Self, u64> {
        match declared {
            Some(n) if n > cap => Err(n),
            _ => Ok(Self {
                cap,
                body: Vec::new(),
            }),
        }
    }
    /// Adds a streamed chunk, or refuses it with the size the body would have had (over the cap; nothing of
    /// the chunk is kept).
    pub fn push(&mut self, chunk: &[u8]) -> std::result::Result<(), OverCap> {
        let would = (self.body.len() as u64).saturating_add(chunk.len() as u64);
        if would > self.cap {
            return Err(OverCap(would));
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }
    pub fn len(&self) -> usize {
        self.body.len()
    }
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
    pub fn into_inner(self) -> Vec<u8> {
        self.body
    }
}

/// One listing's pages: [`Pages::next`] before following each nextLink refuses a link already followed (a
/// self-pointing or cycling `@odata.nextLink`) and a page past the cap.
#[derive(Debug)]
pub struct Pages {
    env: String,
    call: String,
    max: u32,
    count: u32,
    seen: std::collections::HashSet<String>,
}

impl Pages {
    /// The pages of one listing of `call` on `env`, at most `max` (the first included).
    pub fn new(env: &str, call: &str, max: u32) -> Self {
        Self {
            env: env.to_owned(),
            call: call.to_owned(),
            max,
            count: 1,
            seen: std::collections::HashSet::new(),
        }
    }
    /// Accepts `link` as the next page to read, or says why not.
    pub fn next(&mut self, link: &str) -> Result<()> {
        if !self.seen.insert(link.to_owned()) {
            return Err(ConnectorError::bad_body(
                &self.env,
                &self.call,
                format!(
                    "the service repeated a nextLink already followed (after {} pages): {}; stopped",
                    self.count,
                    summary_path_str(link)
                ),
            ));
        }
        if self.count >= self.max {
            return Err(ConnectorError::bad_body(
                &self.env,
                &self.call,
                format!(
                    "the listing has more than {} pages (runbook `defaults.max_pages`); stopped",
                    self.max
                ),
            ));
        }
        self.count += 1;
        Ok(())
    }
    /// Pages accepted so far, the first included.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// A non-empty body whose `Content-Type` names JSON (`application/json`, `...+json`).
fn claims_json(headers: &reqwest::header::HeaderMap, body: &[u8]) -> bool {
    !body.iter().all(u8::is_ascii_whitespace)
        && headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
}

/// Path plus query keys, never query values.
pub fn summary_path(url: &Url) -> String {
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    if keys.is_empty() {
        url.path().to_owned()
    } else {
        format!("{}?{}", url.path(), keys.join("&"))
    }
}

fn summary_path_str(text: &str) -> String {
    text.split('?').next().unwrap_or_default().to_owned()
}

/// A reqwest error and its sources as one line (the URL already removed).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_loopback_http_is_allowed() {
        let ok = |s: &str| url_allowed(&Url::parse(s).unwrap());
        assert!(ok("https://contoso.operations.dynamics.com"));
        assert!(ok("http://127.0.0.1:8080/data"));
        assert!(ok("http://[::1]:1/"));
        assert!(ok("http://localhost:3000"));
        assert!(!ok("http://contoso.operations.dynamics.com"));
        assert!(!ok("http://10.0.0.1/"));
        assert!(!ok("ftp://127.0.0.1/"));
        let err = Transport::new(
            "fno",
            crate::connectors::transport::client().unwrap(),
            "http://example.com",
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("refusing http://example.com"), "{err}");
    }

    #[test]
    fn summary_keeps_query_keys_not_values() {
        let url = Url::parse("http://127.0.0.1/_blob/dmf/p.zip?sv=2020&sig=SECRET&$filter=x").unwrap();
        let p = summary_path(&url);
        assert_eq!(p, "/_blob/dmf/p.zip?sv&sig&$filter");
        assert!(!p.contains("SECRET"));
    }

    #[test]
    fn query_values_are_percent_encoded_with_spaces_as_20() {
        let t = Transport::new(
            "fno",
            crate::connectors::transport::client().unwrap(),
            "http://127.0.0.1:1/",
            RetryPolicy::default(),
        )
        .unwrap();
        let r = Request::get("c", "/data/X").query("$filter", "dataAreaId eq 'usmf' & x");
        assert_eq!(
            t.url_for(&r).unwrap().as_str(),
            "http://127.0.0.1:1/data/X?$filter=dataAreaId%20eq%20%27usmf%27%20%26%20x"
        );
        let abs = Request::get("c", "http://127.0.0.1:1/data/X?$skip=10").query("a", "b");
        assert_eq!(
            t.url_for(&abs).unwrap().as_str(),
            "http://127.0.0.1:1/data/X?$skip=10&a=b"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            assert!(p.backoff(30) <= Duration::from_millis(1000));
        }
    }
}
