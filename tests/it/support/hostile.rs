//! A hostile stand-in service on loopback: a tiny axum server whose handler the test writes, recording every
//! request it receives (method, path and query, the `Authorization` header, the body) so a test can assert what
//! reached it, or that nothing did.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response};

/// One request the hostile service received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub authorization: Option<String>,
    pub body: String,
}

pub struct Hostile {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    /// `host:port` of the service (what a refusal names).
    pub fn authority(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a service on 127.0.0.1 port 0 answering every request with `answer(uri)`; the base URL passed to
/// `answer` is the service's own, so it can point links at itself.
pub async fn start<F>(answer: F) -> Hostile
where
    F: Fn(&str, &str) -> Response<Body> + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let answer = Arc::new(answer);
    let (s2, u2) = (seen.clone(), url.clone());
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (seen, url, answer) = (s2.clone(), u2.clone(), answer.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let uri = parts.uri.to_string();
            seen.lock().unwrap().push(Seen {
                method: parts.method.to_string(),
                uri: uri.clone(),
                authorization: parts
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            answer(&url, &uri)
        }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Hostile {
        url,
        seen,
        _task: task,
    }
}

/// A JSON answer.
pub fn json(status: u16, v: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

/// A redirect to `location`.
pub fn redirect(status: u16, location: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("location", location)
        .body(Body::empty())
        .unwrap()
}

/// A chunked body that never ends.
pub fn endless() -> Response<Body> {
    let chunk = bytes_of(64 * 1024);
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b' '; n])
}
