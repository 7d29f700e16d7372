//! `cutover`: a terminal console that runs a Dynamics 365 F&O → Dataverse dual-write cutover
//! weekend from a YAML runbook.
//!
//! Layers, bottom to top; a module imports only from the layers below it (checked by grep in
//! `/work/shared/hooks/before-stop` and described in `docs/architecture.md`):
//!
//! ```text
//! app          the edge: clap, the runtime and signals, NO_COLOR, color-eyre, exit codes, one file per command
//! headless tui audit   what a person reads: headless lines, the console (live, replay, watch), reports
//! engine       scheduler, executors, operator questions; journals every fact before acting on it
//! journal      the append-only, hash-chained SQLite record; all of the crate's SQL
//! runbook connectors sim   YAML → typed model → diagnostics and plan (pure) · HTTP clients · the stand-in services
//! state        the one reducer: RunState::apply folds envelopes into what the console shows
//! model util   ids, Event, Envelope (serde and chrono only) · sha256_hex, the URL rule
//! ```
//!
//! - [`model`]: the vocabulary: [`model::RunId`], [`model::StepId`], [`model::Event`], [`model::Envelope`].
//! - [`state`]: [`state::RunState`] and its one reducer; the console, headless mode, resume, replay
//!   and the audit all fold through it.
//! - [`runbook`]: YAML text → typed model → diagnostics and plan. Pure: no I/O beyond a `&str`, no
//!   terminal.
//! - [`connectors`]: HTTP clients for F&O, Dataverse, dual-write, Entra ID and webhooks.
//! - [`sim`]: the stand-in for F&O, Dataverse, dual-write and Entra ID, served on loopback. Imports
//!   no other layer of the crate; the edge starts it (in-process or as a detached process).
//! - [`journal`]: the append-only, hash-chained SQLite record of every run in a file.
//! - [`engine`]: sets a run up and drives it; reads its own writes ([`engine::live::LiveState`]).
//! - [`headless`], [`tui`], [`audit`]: text and JSON lines, the console, the evidence pack.
//! - [`app`]: the edge; nothing below it imports it.
//! - `fuzzing` (feature `fuzzing`): the entry points of the fuzz targets under `fuzz/`.

pub mod app;
pub mod audit;
pub mod connectors;
pub mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod headless;
pub mod journal;
pub mod model;
pub mod runbook;
pub mod sim;
pub mod state;
pub mod tui;
pub mod util;
