//! Wiring the console to the engine: [`run_console`] takes what `engine::start_engine` returns and
//! drives the console over it; [`drive_console`] is the whole interactive `run`/`resume`/`demo`
//! (start the engine with questions routed to the console, run it, stop the engine cleanly).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ConsoleError;
use super::action::OperatorCommand;
use super::app::ConsoleConfig;
use super::event_loop::ConsoleExit;
use crate::engine::driver::{Command, EngineHandle, RunEnd};
use crate::engine::event::Envelope;
use crate::engine::{RunOptions, RunState, SetupError, start_engine};

/// Copies the console's commands onto the engine's channel (awaiting there, never in the UI).
pub fn forward_commands(
    mut from: mpsc::Receiver<OperatorCommand>,
    to: mpsc::Sender<Command>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(c) = from.recv().await {
            let cmd = Command {
                action: c.action,
                step: c.step,
                operator: c.operator,
                reason: c.reason,
                checklist_done: c.checklist_done,
                map: c.map,
            };
            if to.send(cmd).await.is_err() {
                break;
            }
        }
    })
}

/// Runs the console over a started engine until the operator quits or `cancel` fires; returns how
/// the console closed and how the run ended for this process (a quit leaves the run open: the engine
/// is cancelled, never aborted).
pub async fn run_console(
    handle: EngineHandle,
    initial: RunState,
    subscription: mpsc::UnboundedReceiver<Arc<Envelope>>,
    cfg: ConsoleConfig,
    cancel: CancellationToken,
) -> Result<(ConsoleExit, RunEnd), ConsoleError> {
    let (tx, rx) = mpsc::channel::<OperatorCommand>(64);
    let forward = forward_commands(rx, handle.commands.clone());
    let result = super::run(cfg, initial, subscription, tx, cancel).await;
    handle.cancel.cancel();
    let end = handle
        .done
        .await
        .unwrap_or_else(|e| RunEnd::Broken(e.to_string()));
    forward.abort();
    Ok((result?, end))
}

/// Why the console could not drive a run.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleDriveError {
    /// The run could not be set up (nothing was started).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The terminal failed; the journal is consistent.
    #[error(transparent)]
    Console(#[from] ConsoleError),
}

/// Starts the engine for `opts` in interactive mode and runs the console over it (`theme` is the
/// edge's choice of colours; `interrupt` closes the console like a quit).
pub async fn drive_console(
    mut opts: RunOptions,
    theme: super::Theme,
    interrupt: CancellationToken,
) -> Result<RunEnd, ConsoleDriveError> {
    opts.interactive = true;
    opts.auto_approve = None;
    let journal = opts.journal.clone();
    let mut cfg = ConsoleConfig::new(opts.operator.clone());
    cfg.theme = theme;
    cfg.journal_path = Some(journal.clone());
    cfg.log_path = Some(journal.with_extension("log"));
    cfg.runbook = opts
        .runbook
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| crate::runbook::load(&text, "runbook").runbook)
        .map(std::sync::Arc::new);
    let (handle, initial, sub) = start_engine(opts).await?;
    let (_, end) = run_console(handle, initial, sub, cfg, interrupt).await?;
    Ok(end)
}
