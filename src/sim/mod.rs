//! The simulator: F&O, Dataverse, dual-write and Entra ID on one loopback address.
//!
//! `start` serves a [`Scenario`] on a tokio task and returns a [`SimHandle`] (the edge's `cutover sim`
//! serves one until SIGINT/SIGTERM). Paths do not collide: Entra ID `/{tenant}/oauth2/v2.0/token`, F&O `/data/`,
//! Dataverse `/api/data/v9.2/`, the dual-write gateway `/api/DualWriteManagement/1.0/`, blob storage
//! `/_blob/`, inspection `/_sim/`. Every behaviour the public documentation leaves open is "our
//! model", stated in the doc comment of the module that implements it and in `docs/simulator.md`.

// Handlers return a ready `Response` as their error (the axum idiom); boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod automation;
mod batch;
mod dataverse;
mod dmf;
mod dual_write;
mod entra_meta;
pub mod faults;
mod fno;
pub mod from_runbook;
mod inspect;
mod keyvault;
pub mod lake;
mod live;
pub mod model;
pub mod odata;
mod route;
pub mod scenario;
mod schema;
mod sections;
mod server;
pub mod tables;
mod wire;
mod world;
mod xml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio_util::sync::CancellationToken;

pub use faults::{Budget, FaultRule, Faults, Service};
pub use scenario::Scenario;

/// Errors of the simulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("scenario: line {line}, column {column}: {message}")]
    Scenario { line: u64, column: u64, message: String },
    #[error("scenario: {0}")]
    Invalid(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    /// When the last request arrived (ms since the Unix epoch), for `cutover sim --exit-when-idle`.
    last_request: Arc<AtomicI64>,
    shared: server::App,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same JSON as `GET /_sim/state`.
    pub fn state(&self) -> serde_json::Value {
        self.shared.with(|st| st.inspect())
    }

    /// Replaces the fault rules (as `POST /_sim/faults` does).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// How long no request has arrived.
    pub fn idle_for(&self) -> std::time::Duration {
        let ms = chrono::Utc::now().timestamp_millis() - self.last_request.load(Ordering::Relaxed);
        std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// Simulated seconds per real second.
    pub fn time_scale(&self) -> f64 {
        self.shared.clock.scale
    }

    /// Stops accepting requests and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds `addr` (port 0 picks a free port) and serves `scenario` on a tokio task.
pub async fn start(scenario: Scenario, addr: SocketAddr) -> Result<SimHandle, SimError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(server::Shared::new(
        world::SimState::new(scenario),
        format!("http://{addr}"),
    ));
    let last_request = Arc::new(AtomicI64::new(chrono::Utc::now().timestamp_millis()));
    let router = server::router(shared.clone())
        .layer(axum::middleware::from_fn_with_state(last_request.clone(), touch));
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        let serve =
            axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::warn!("simulator stopped: {e}");
        }
    });
    Ok(SimHandle {
        addr,
        last_request,
        shared,
        cancel,
        task: Some(task),
    })
}

/// Notes the time of every request.
async fn touch(
    axum::extract::State(at): axum::extract::State<Arc<AtomicI64>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    at.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    next.run(req).await
}
