//! The engine layer: the facts a run produces ([`event::Event`]), the envelope the journal wraps
//! them in ([`event::Envelope`]), and the one reducer that turns them into everything the console
//! shows ([`state::RunState::apply`]). No UI dependencies: the TUI, the headless runner, resume and
//! the auditor's replay all read the same [`state::RunState`].

pub mod ctx;
pub mod envs;
pub mod event;
pub mod exec;
pub mod live;
pub mod ops;
pub mod resume;
pub mod runner;
pub mod scheduler;
pub mod state;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use event::{Envelope, Event};
pub use ops::{Command, EngineHandle, RunEnd};
pub use runner::{RunOptions, SetupError, SimTarget, start_engine};
pub use state::RunState;

/// Identifies one run inside a journal (a journal can hold rehearsals and the real weekend).
/// Serialised as a bare string.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[serde(transparent)]
pub struct RunId(pub String);

/// Identifies one planned step: its runbook id, or a generated id such as `wave-2:customers`.
/// One type shared with the runbook model, so plan and events never need converting.
pub use crate::runbook::StepId;

crate::runbook::model::id_impls!(RunId);

impl RunId {
    /// A fresh random run id (UUID v4, hyphenated).
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}
