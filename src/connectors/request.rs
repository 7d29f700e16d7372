//! The data a [`super::transport::Transport`] call is made of: the retry policy, the idempotency class, the
//! request and the final response. Split from `transport.rs` to keep each file readable.

use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

/// Timeouts and retry settings of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first for transient failures.
    pub retries: u32,
    /// Per-attempt timeout, from connecting to the end of the body.
    pub timeout: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one is clamped to this.
    pub max_retry_after: Duration,
    /// Wait on a 429 without `Retry-After`; `None` means use the backoff.
    pub retry_after_fallback: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            timeout: Duration::from_secs(100),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            retry_after_fallback: None,
        }
    }
}

impl RetryPolicy {
    /// F&O: Microsoft's service-protection sample waits 30 s when a 429 carries no `Retry-After`.
    pub fn fno() -> Self {
        Self {
            retry_after_fallback: Some(Duration::from_secs(30)),
            ..Self::default()
        }
    }

    /// The wait before attempt `attempt + 1` (attempt is 1-based): base * 2^(attempt-1), capped, with jitter
    /// drawing uniformly from the upper half so concurrent callers spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let ms = u64::try_from(capped.as_millis()).unwrap_or(u64::MAX);
        if ms < 2 {
            return capped;
        }
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
    }
}

/// What a transport reads at most: bytes of one response body (declared or streamed, an endless chunked
/// stream included) and pages of one listing (`@odata.nextLink`s followed). Runbook `defaults.max_response`
/// and `defaults.max_pages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_pages: u32,
}

impl Limits {
    /// 256 MiB: a DMF package is read whole; anything bigger is not a response the console can hold.
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;
    /// 10,000 pages: 50 million rows at Dataverse's 5,000 per page.
    pub const DEFAULT_MAX_PAGES: u32 = 10_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_pages: Self::DEFAULT_MAX_PAGES,
        }
    }
}

/// Whether a call may be repeated after a transient failure. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating has no extra effect (reads, PUT, DELETE, status actions).
    Safe,
    /// Not idempotent by itself, but carries a caller-generated handle (executionId, canary key).
    Handle(String),
    /// Not idempotent and no handle: only provably-unprocessed failures are retried.
    Unsafe,
}

/// A request body. Its `Debug` shows the shape, never the content: a token request's form carries
/// the client secret.
#[derive(Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Value),
    Form(Vec<(String, String)>),
    Bytes { data: Vec<u8>, content_type: String },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Json(_) => f.write_str("Json([REDACTED])"),
            Self::Form(fields) => {
                let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
                write!(f, "Form({names:?} = [REDACTED])")
            }
            Self::Bytes { data, content_type } => {
                write!(f, "Bytes({} bytes of {content_type})", data.len())
            }
        }
    }
}

/// One call, described as data so it can be retried. `Debug` leaves out header values (the
/// bearer token) and the body's content.
#[derive(Clone)]
pub struct Request {
    /// A short name for errors and the journal, e.g. `fno.count CustomersV3`.
    pub call: String,
    pub method: Method,
    /// A path under the base URL (`/data/...`) or an absolute URL (a nextLink or SAS URL, used verbatim).
    pub target: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub idempotency: Idempotency,
    /// Attach the environment's bearer token (false for SAS blob URLs and webhooks).
    pub authenticated: bool,
    /// Follow a redirect (within the transport's origin rule). False for token requests: a 307/308 would
    /// post the secret again to wherever the redirect points.
    pub follow_redirects: bool,
    /// A link the service handed out (`@odata.nextLink`): followed only on the scheme, host and port the
    /// environment's requests go to, so a hostile or misconfigured link never receives the token.
    pub same_origin: bool,
    /// Whatever status the first answer has is the result: an answered request is never repeated, a 5xx or a
    /// 429 included (a webhook post whose every attempt the caller journals itself).
    pub status_is_final: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Request")
            .field("call", &self.call)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("idempotency", &self.idempotency)
            .field("authenticated", &self.authenticated)
            .field("follow_redirects", &self.follow_redirects)
            .field("same_origin", &self.same_origin)
            .field("status_is_final", &self.status_is_final)
            .finish()
    }
}

impl Request {
    pub fn new(call: impl Into<String>, method: Method, target: impl Into<String>) -> Self {
        let idempotency = if matches!(method, Method::POST | Method::PATCH) {
            Idempotency::Unsafe
        } else {
            Idempotency::Safe
        };
        Self {
            call: call.into(),
            method,
            target: target.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            idempotency,
            authenticated: true,
            follow_redirects: true,
            same_origin: false,
            status_is_final: false,
        }
    }

    /// See [`Request::status_is_final`].
    pub fn status_is_final(mut self) -> Self {
        self.status_is_final = true;
        self
    }
    /// A GET of a link the service returned (`@odata.nextLink`): refused unless it has the scheme, host and
    /// port of the environment's URL (see [`Request::same_origin`]).
    pub fn next_link(call: impl Into<String>, link: impl Into<String>) -> Self {
        Self {
            same_origin: true,
            ..Self::get(call, link)
        }
    }
    pub fn get(call: impl Into<String>, target: impl Into<String>) -> Self {
        Self::new(call, Method::GET, target)
    }
    pub fn post(call: impl Into<String>, target: impl Into<String>) -> Self {
        Self::new(call, Method::POST, target)
    }
    pub fn query(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    pub fn header(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn json(mut self, v: Value) -> Self {
        self.body = Body::Json(v);
        self
    }
    pub fn body(mut self, b: Body) -> Self {
        self.body = b;
        self
    }
    pub fn idempotency(mut self, i: Idempotency) -> Self {
        self.idempotency = i;
        self
    }
    pub fn unauthenticated(mut self) -> Self {
        self.authenticated = false;
        self
    }
    /// Never follow a redirect: the answer is a 3xx error (token requests).
    pub fn no_redirects(mut self) -> Self {
        self.follow_redirects = false;
        self
    }
}

/// A final response (after retries).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The summary path (no query values) for error messages.
    pub path: String,
    pub call: String,
}

impl Response {
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_secret_or_a_token() {
        let mut r = Request::new("entra.token", Method::POST, "/t/oauth2/v2.0/token");
        r.headers
            .push(("Authorization".into(), "Bearer eyJ-very-secret".into()));
        r.body = Body::Form(vec![("client_secret".into(), "s3cret-value".into())]);
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("s3cret-value") && !shown.contains("eyJ-very-secret"),
            "{shown}"
        );
        assert!(
            shown.contains("client_secret") && shown.contains("Authorization"),
            "{shown}"
        );
    }
}
