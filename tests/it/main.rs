//! The integration tests: one binary (linking axum, reqwest and rusqlite once, not once per file),
//! a folder per layer, and one `support` module. Tests run in parallel threads of one process, so none
//! may change process-wide state (environment variables, the current directory, signal handlers, a
//! global tracing subscriber) or bind a fixed port: child processes get their own environment and
//! directory (`Command::env`, `Command::current_dir`), servers listen on `127.0.0.1:0`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod audit;
mod auth;
mod connectors;
mod engine;
mod headless;
mod journal;
mod runbook;
mod sim;
mod support;
mod tui;
