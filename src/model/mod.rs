//! The vocabulary every layer shares, at the bottom of the crate: the ids of runs and steps, the facts
//! a run produces ([`Event`]) and the envelope the journal wraps each one in ([`Envelope`]). It
//! depends on nothing but serde and chrono, so the journal (which stores envelopes), the reducer
//! (which folds them), the engine (which emits them) and every reader stand on it without standing
//! on each other.

pub mod event;
mod identity;
mod ids;

pub use event::{Envelope, Event};
pub use identity::Identity;
pub(crate) use ids::id_impls;
pub use ids::{RunId, StepId, console_map_step, parse_console_map_step};
