//! Dataverse service-protection limits: requests, combined execution time and concurrent requests
//! per user (access token) over a sliding real-time window, each a 429 with its documented code and
//! `Retry-After`. Our model: counted per access token, on real time.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use crate::sim::server::{App, header, json_error};

/// Releases a request's concurrency slot when the response is done.
pub struct InFlight {
    app: App,
    token: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.app.lock();
        if let Some(w) = st.sp.get_mut(&self.token) {
            w.inflight = w.inflight.saturating_sub(1);
        }
    }
}

/// Applies the three service-protection limits to one request; Ok((slot, requests left)).
pub fn protect(app: &App, headers: &HeaderMap) -> Result<(InFlight, u64), Response> {
    let token = header(headers, "authorization")
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string();
    let now = std::time::Instant::now();
    let mut st = app.lock();
    let sp = st.scenario.dataverse.service_protection.clone();
    let span = std::time::Duration::from_secs_f64(sp.window.0);
    let w = st.sp.entry(token.clone()).or_default();
    while w.times.front().is_some_and(|t| now.duration_since(*t) >= span) {
        w.times.pop_front();
    }
    while w
        .exec
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) >= span)
    {
        w.exec.pop_front();
    }
    let limit = |code: &str, msg: String| {
        let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, code, &msg);
        if let Ok(v) = HeaderValue::from_str(&sp.retry_after.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        r
    };
    if w.inflight >= sp.concurrent {
        return Err(limit(
            "0x80072326",
            format!(
                "Number of concurrent requests exceeded the limit of {}.",
                sp.concurrent
            ),
        ));
    }
    if w.times.len() as u64 >= sp.requests {
        return Err(limit(
            "0x80072322",
            format!(
                "Number of requests exceeded the limit of {} over time window of {} seconds.",
                sp.requests, sp.window.0
            ),
        ));
    }
    let spent: u64 = w.exec.iter().map(|(_, ms)| ms).sum();
    if sp.request_cost_ms > 0 && spent + sp.request_cost_ms > sp.execution_ms {
        return Err(limit(
            "0x80072321",
            format!(
                "Combined execution time of incoming requests exceeded limit of {} milliseconds over time window of {} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                sp.execution_ms, sp.window.0
            ),
        ));
    }
    w.times.push_back(now);
    if sp.request_cost_ms > 0 {
        w.exec.push_back((now, sp.request_cost_ms));
    }
    w.inflight += 1;
    let left = sp.requests.saturating_sub(w.times.len() as u64);
    drop(st);
    Ok((
        InFlight {
            app: app.clone(),
            token,
        },
        left,
    ))
}
