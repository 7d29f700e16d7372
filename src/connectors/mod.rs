//! Connectors: the HTTP clients (and the local `shell`) that talk to the live services.
//!
//! Each connector takes plain parameters and returns `Result<T, ConnectorError>`; the engine maps runbook steps
//! onto them. All network traffic goes through one [`transport::Transport`] per environment, which owns the
//! timeout, the retry policy (see its docs for exactly what is retried), the token and the request observer the
//! engine journals. Wire parsing lives in [`parse`] as pure functions over bytes so it can be fuzzed.
//!
//! - [`auth`]: Entra ID client-credentials tokens, cached and shared, refreshed before expiry and on 401.
//! - [`fno`]: F&O OData counts (cross-company, per company), paging, lookups, random keys.
//! - [`error_sources`]: the places dual-write errors can be read (Dataverse system jobs and plug-in trace
//!   logs, DMF execution errors), each available or not available with a reason.
//! - [`dmf`]: the Data management package API: export, import, status polling, the per-entity error check.
//!   Pollers of long jobs (DMF status, gateway requests, map status) ride out a failed status read
//!   (see [`ConnectorError::poll_may_ride_out`]) until their own deadline.
//! - [`dataverse`]: exact counts past the 5,000 and 50,000 caps, lookups by key, canary create/delete, WhoAmI.
//! - [`dual_write`]: the dual-write management gateway (our model) and operator-mode instructions/verification.
//! - [`http`], [`shell`], [`notify`]: the generic step kinds.
//! - [`sample`]: record sampling (random F&O keys looked up on Dataverse, compared field by field).
//! - [`setup`]: one call to build an environment's transport from its runbook settings.

pub mod auth;
pub mod automation;
pub mod databricks;
pub mod dataverse;
pub mod dmf;
pub mod dual_write;
mod error;
pub mod error_sources;
pub mod fno;
pub mod http;
pub mod install_table;
pub mod keyvault;
pub mod lake;
pub mod metadata;
pub mod net;
pub mod notify;
pub mod parse;
mod request;
pub mod rows;
pub mod sample;
pub mod setup;
pub mod shell;
pub mod transport;

pub use error::{ConnectorError, JobFailure};
pub use transport::{Idempotency, RequestObserver, RequestSummary, RetryPolicy, Transport};

/// The result type of every connector call.
pub type Result<T> = std::result::Result<T, ConnectorError>;
