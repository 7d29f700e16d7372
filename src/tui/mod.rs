//! The console: a ratatui + crossterm terminal UI over the engine's state.
//!
//! The console keeps its own [`RunState`], built by the same reducer as everything else: it is
//! given the state rebuilt from the journal (on resume) and folds every envelope of the journal
//! writer's subscription into it. It sends the operator's confirmed decisions as
//! [`OperatorCommand`]s on a channel and never waits on the engine. Only this module touches the
//! terminal.
//!
//! - [`run`]: open the console on the real terminal until the operator quits or `cancel` fires.
//! - [`App`] + [`draw`]: the state machine and the renderer, usable without a terminal
//!   (tests, benchmarks).
//! - [`event_loop::drive`]: the loop itself, generic over the backend and the input stream.
//! - [`replay`]: the same panes over a recorded run (`cutover replay`) or a run another process
//!   drives (`cutover watch`), read-only, driven by a timeline ([`replay::event_loop::drive_replay`]).

pub mod action;
pub mod app;
pub mod console;
pub mod decide;
pub mod event_loop;
pub mod fmt;
pub mod keymap;
pub mod layout;
pub mod modal;
pub mod panes;
pub mod params;
pub mod replay;
pub mod terminal;
pub mod theme;
pub mod view;

use std::sync::Arc;

use chrono::Utc;
use crossterm::event::EventStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::action::{Action, OperatorCommand, PaneId};
pub use self::app::{App, ConsoleConfig, Now};
pub use self::console::{ConsoleDriveError, drive_console, run_console};
pub use self::event_loop::{ConsoleExit, Timing};
pub use self::panes::draw;
pub use self::theme::Theme;
use crate::engine::RunState;
use crate::engine::event::Envelope;

/// Errors that end the console (the terminal could not be set up or written to).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Opens the console on the terminal and runs it until the operator quits or `cancel` fires.
///
/// - `initial`: the run's state so far (`RunState::default()` for a new run; the state replayed
///   from the journal on resume). Envelopes already folded into it must not be sent again.
/// - `envelopes`: the journal writer's `subscribe()` receiver; every envelope is folded in.
/// - `commands`: where confirmed decisions go (the engine's command channel, or an adapter task).
///
/// The terminal is restored on return, on error and on panic. Quitting does not stop the engine:
/// the caller cancels it (the journal stays consistent and the run resumes next time).
pub async fn run(
    cfg: ConsoleConfig,
    initial: RunState,
    envelopes: mpsc::UnboundedReceiver<Arc<Envelope>>,
    commands: mpsc::Sender<OperatorCommand>,
    cancel: CancellationToken,
) -> Result<ConsoleExit, ConsoleError> {
    let _log = cfg.log_path.as_deref().and_then(terminal::init_file_log);
    terminal::install_panic_hook(cfg.journal_path.clone(), cfg.log_path.clone());
    let mut app = App::new(initial, cfg, Box::new(Utc::now));
    let (mut term, guard) = terminal::enter()?;
    let input = EventStream::new();
    let result = event_loop::drive(
        &mut term,
        &mut app,
        input,
        envelopes,
        commands,
        cancel,
        Timing::default(),
    )
    .await;
    drop(guard);
    Ok(result?)
}
