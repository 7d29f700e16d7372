//! The engine layer: sets a run up, schedules its steps (phases, waves, gates), executes each one
//! against its environments, asks the operator, and journals every fact ([`Event`], from the model)
//! before acting on it. Its own view of the run is the one reducer's [`RunState`], folded from what
//! it journaled ([`live::LiveState`]). No UI dependencies.

pub mod alerting;
pub mod checkpoints;
pub mod ctx;
pub mod driver;
pub mod envs;
pub mod envs_auth;
pub mod exec;
pub mod follower;
pub mod live;
pub mod preflight;
pub mod resume;
pub mod runner;
pub mod scheduler;
pub mod vault_signer;
pub mod witness;

/// The engine speaks the model's types and folds with the one reducer; re-exported so its callers
/// name one module.
pub use crate::model::{Envelope, Event, RunId, StepId, event};
pub use crate::state::{self, RunState};
pub use driver::{Command, EngineHandle, RunEnd};
pub use runner::{RunOptions, SetupError, SimTarget, start_engine};

/// A fresh random run id (UUID v4, hyphenated).
pub fn new_run_id() -> RunId {
    RunId(uuid::Uuid::new_v4().to_string())
}
