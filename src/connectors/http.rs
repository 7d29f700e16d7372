//! The generic `http` step: one request (path under an environment, or an absolute URL), an expected status,
//! optional polling until a JSON pointer equals a value (or a `fail_if` pointer matches), and captures by JSON
//! pointer. Retries follow the transport's rules; a POST without a handle is only retried when provably unsent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::transport::{Idempotency, Request, Transport};
use super::{ConnectorError, Result, parse};

/// The request of an `http` step.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub method: Method,
    /// A path under the environment's base URL, or an absolute URL.
    pub target: String,
    pub body: Option<Value>,
    /// Accepted statuses; empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub idempotency: Idempotency,
    /// Send the environment's token (false for a bare URL with no environment).
    pub authenticated: bool,
}

/// A pointer/value condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub pointer: String,
    pub equals: Value,
}

impl Condition {
    /// True when the pointer exists and equals the value (a string and a number with the same text also match,
    /// since YAML authors write `"2"` and `2` interchangeably).
    pub fn matches(&self, body: &Value) -> bool {
        body.pointer(&self.pointer).is_some_and(|v| {
            v == &self.equals
                || parse::scalar_string(v).is_some_and(|s| Some(s) == parse::scalar_string(&self.equals))
        })
    }
}

/// Polling of an `http` step.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSpec {
    pub every: Duration,
    pub timeout: Duration,
    pub until: Condition,
    pub fail_if: Option<Condition>,
}

/// The result of an `http` step.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutcome {
    pub status: u16,
    /// The last body as JSON (`Null` when empty).
    pub body: Value,
    /// name -> value at its pointer (absent pointers are reported as an error, not silently skipped).
    pub captures: BTreeMap<String, Value>,
    pub requests: u32,
}

/// Runs an `http` step.
pub async fn request(
    t: &Transport,
    call: &HttpCall,
    poll: Option<&PollSpec>,
    captures: &[(String, String)],
    cancel: &CancellationToken,
) -> Result<HttpOutcome> {
    let name = format!("http {} {}", call.method, summary_target(&call.target));
    let started = Instant::now();
    let mut requests = 0u32;
    loop {
        let mut req =
            Request::new(&name, call.method.clone(), &call.target).idempotency(call.idempotency.clone());
        if let Some(b) = &call.body {
            req = req.json(b.clone());
        }
        if !call.authenticated {
            req = req.unauthenticated();
        }
        let resp = t.send_any(req, cancel).await?;
        requests += 1;
        let ok = if call.expect_status.is_empty() {
            (200..300).contains(&resp.status)
        } else {
            call.expect_status.contains(&resp.status)
        };
        if !ok {
            let mut e = t.status_error(&resp);
            if let ConnectorError::Service { message, .. } = &mut e {
                *message = format!(
                    "expected status {:?}, got {}: {message}",
                    call.expect_status, resp.status
                );
            }
            return Err(e);
        }
        let body = if resp.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            t.parse(&resp, parse::json)?
        };
        let Some(p) = poll else {
            return finish(t, &name, resp.status, body, captures, requests);
        };
        if p.fail_if.as_ref().is_some_and(|c| c.matches(&body)) {
            let shown = p
                .fail_if
                .as_ref()
                .and_then(|c| body.pointer(&c.pointer))
                .cloned()
                .unwrap_or(Value::Null);
            return Err(ConnectorError::job_failed(
                t.env(),
                &name,
                summary_target(&call.target),
                "fail_if matched",
                vec![format!(
                    "{} = {shown}",
                    p.fail_if.as_ref().map(|c| c.pointer.as_str()).unwrap_or_default()
                )],
            ));
        }
        if p.until.matches(&body) {
            return finish(t, &name, resp.status, body, captures, requests);
        }
        if started.elapsed() + p.every > p.timeout {
            return Err(ConnectorError::Timeout {
                env: t.env().to_owned(),
                call: name,
                after_ms: u64::try_from(p.timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(ConnectorError::Cancelled { env: t.env().to_owned(), call: name }),
            () = tokio::time::sleep(p.every) => {}
        }
    }
}

fn finish(
    t: &Transport,
    name: &str,
    status: u16,
    body: Value,
    captures: &[(String, String)],
    requests: u32,
) -> Result<HttpOutcome> {
    let mut out = BTreeMap::new();
    for (k, pointer) in captures {
        let v = body.pointer(pointer).cloned().ok_or_else(|| {
            ConnectorError::bad_body(t.env(), name, format!("capture {k}: nothing at {pointer}"))
        })?;
        out.insert(k.clone(), v);
    }
    Ok(HttpOutcome {
        status,
        body,
        captures: out,
        requests,
    })
}

/// The target without its query string (which may carry a SAS or a key).
fn summary_target(target: &str) -> &str {
    target.split('?').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_compare_scalars_by_text() {
        let body = serde_json::json!({"status": 2, "name": "Completed"});
        assert!(
            Condition {
                pointer: "/status".into(),
                equals: Value::from("2")
            }
            .matches(&body)
        );
        assert!(
            Condition {
                pointer: "/name".into(),
                equals: Value::from("Completed")
            }
            .matches(&body)
        );
        assert!(
            !Condition {
                pointer: "/missing".into(),
                equals: Value::Null
            }
            .matches(&body)
        );
        assert_eq!(summary_target("https://x/y?sig=secret"), "https://x/y");
    }
}
