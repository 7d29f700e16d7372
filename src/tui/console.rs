//! Wiring the console to the engine: [`run_console`] takes what `engine::start_engine` returns and
//! drives the console over it; [`drive_console`] is the whole interactive `run`/`resume`/`demo`
//! (start the engine with questions routed to the console, run it, stop the engine cleanly).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ConsoleError;
use super::action::OperatorCommand;
use super::app::ConsoleConfig;
use super::event_loop::ConsoleExit;
use crate::engine::event::{Envelope, RunOutcome};
use crate::engine::ops::{Command, EngineHandle, RunEnd};
use crate::engine::{RunOptions, RunState, start_engine};
use crate::exit;

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
            };
            if to.send(cmd).await.is_err() {
                break;
            }
        }
    })
}

/// Runs the console over a started engine until the operator quits (or SIGTERM), then stops the
/// engine without aborting the run (it resumes next time) and returns how the console and the run
/// ended. The run may finish while the console is open; the console then stays until `q`.
pub async fn run_console(
    handle: EngineHandle,
    initial: RunState,
    subscription: mpsc::UnboundedReceiver<Envelope>,
    cfg: ConsoleConfig,
) -> Result<(ConsoleExit, RunEnd), ConsoleError> {
    let (tx, rx) = mpsc::channel::<OperatorCommand>(64);
    let forward = forward_commands(rx, handle.commands.clone());
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    let signals = tokio::spawn(async move {
        wait_for_terminate().await;
        on_signal.cancel();
    });
    let result = super::run(cfg, initial, subscription, tx, cancel).await;
    signals.abort();
    // Quitting the console is not aborting the run: stop the engine like SIGINT would.
    handle.cancel.cancel();
    let end = handle
        .done
        .await
        .unwrap_or_else(|e| RunEnd::Broken(e.to_string()));
    forward.abort();
    Ok((result?, end))
}

pub(crate) async fn wait_for_terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Starts the engine with every question routed to the console (no auto-approval), opens the
/// console, and returns the process exit code. Logs go to `<journal>.log`.
pub async fn drive_console(mut opts: RunOptions) -> i32 {
    opts.interactive = true;
    opts.auto_approve = None;
    let journal = opts.journal.clone();
    let mut cfg = ConsoleConfig::new(opts.operator.clone());
    cfg.journal_path = Some(journal.clone());
    cfg.log_path = Some(journal.with_extension("log"));
    // For step parameters and the error-rate threshold; on resume no `RunStarted` carries the text.
    cfg.runbook = opts
        .runbook
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| crate::runbook::load(&text, "runbook").runbook)
        .map(std::sync::Arc::new);
    let (handle, initial, sub) = match start_engine(opts).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cutover: {e}");
            return e.exit_code();
        }
    };
    let j = journal.display();
    match run_console(handle, initial, sub, cfg).await {
        Ok((_, end)) => {
            match &end {
                RunEnd::Finished(RunOutcome::Succeeded) => eprintln!("cutover: run finished: succeeded"),
                RunEnd::Finished(o) => eprintln!("cutover: run finished: {o:?}"),
                RunEnd::Interrupted | RunEnd::Halted { .. } | RunEnd::Waiting { .. } => eprintln!(
                    "cutover: console closed; the journal is consistent; run the same command (or `cutover resume {j}`) to carry on"
                ),
                RunEnd::Broken(m) => eprintln!("cutover: stopped: {m}"),
            }
            end.exit_code()
        }
        Err(e) => {
            eprintln!("cutover: {e}; the journal {j} is consistent and the run resumes next time");
            exit::FAILED
        }
    }
}
