//! `cutover`: a terminal console that runs a Dynamics 365 F&O → Dataverse dual-write cutover
//! weekend from a YAML runbook.
//!
//! Layers (each a module with one job; only `tui` touches the terminal):
//! - [`runbook`]: YAML text → typed model → diagnostics and plan. Pure: no I/O beyond a `&str`.
//! - [`sim`]: the stand-in for F&O, Dataverse, dual-write and Entra ID, served on loopback.
//! - [`journal`]: the append-only, hash-chained SQLite record of a run.
//! - [`engine`]: scheduler, events and the one reducer `RunState::apply`.
//! - [`connectors`]: HTTP clients for the live services.
//! - [`tui`]: the console.
//! - [`audit`]: verify a journal and export a run's evidence pack, read-only.

pub mod audit;
pub mod cli;
pub mod connectors;
pub mod engine;
pub mod exit;
#[doc(hidden)]
pub mod fuzzing;
pub mod headless;
pub mod journal;
pub mod model;
pub mod net;
pub mod runbook;
pub mod sim;
pub mod state;
pub mod tui;
