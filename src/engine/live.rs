//! The engine's own copy of the run state, which reads its own writes.
//!
//! The engine decides from the state of its run: `${steps.X.y}` captures, the last request of a
//! step that timed out, a failed gate's numbers, what an interrupted step already journaled. That
//! state is the journal folded by [`RunState::apply`], so it must hold every envelope this process
//! committed before the engine takes its next decision. [`LiveState`] holds a subscription to the
//! journal (every committed envelope, in journal order) and folds what the subscription already
//! delivered before each read, and [`Emitter::durable`](super::ctx::Emitter::durable) folds it
//! before it returns: the journal delivers an envelope to its subscribers before it acknowledges
//! the append, so when `durable` returns, the state holds that envelope and everything before it.
//! Nothing waits on an asynchronous follower, and the journal's writer thread does no extra work.

use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Envelope, RunState};

/// A [`RunState`] that folds in what its journal subscription delivered before every read.
#[derive(Debug, Default)]
pub struct LiveState {
    state: RwLock<RunState>,
    /// `None`: a fixed state (tests that build a step context by hand).
    feed: Option<Mutex<UnboundedReceiver<Arc<Envelope>>>>,
}

impl LiveState {
    /// `initial` (the state before the subscription started), then every envelope of `feed`.
    pub fn following(initial: RunState, feed: UnboundedReceiver<Arc<Envelope>>) -> Self {
        Self {
            state: RwLock::new(initial),
            feed: Some(Mutex::new(feed)),
        }
    }

    /// A state that never changes.
    pub fn fixed(state: RunState) -> Self {
        Self {
            state: RwLock::new(state),
            feed: None,
        }
    }

    /// Folds in every envelope the subscription has delivered; never waits for a new one.
    pub fn catch_up(&self) {
        let Some(feed) = &self.feed else { return };
        let mut feed = feed.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(first) = feed.try_recv() else { return };
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.apply(&first);
        while let Ok(env) = feed.try_recv() {
            state.apply(&env);
        }
    }

    /// The state with everything committed so far. Read briefly: never hold the guard across an
    /// await, nor call `read` again while holding it.
    pub fn read(&self) -> RwLockReadGuard<'_, RunState> {
        self.catch_up();
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}
