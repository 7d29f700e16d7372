//! What the integration tests share, one module per layer they set up: a simulator on loopback,
//! a runbook in a temp dir, a journal to read back, a console on a test backend.

pub mod audit;
pub mod auth;
pub mod connector;
pub mod engine;
pub mod exec;
pub mod fault;
pub mod gateway;
pub mod hostile;
pub mod journal;
pub mod rechain;
pub mod schema;
pub mod sim;
pub mod tui;
