//! The process's one tokio runtime and its one set of signal handlers.
//!
//! Every command that needs async work runs through [`block_on`], which builds the runtime, turns
//! SIGINT and SIGTERM into the cancellation of one token, and hands that token to the command: the
//! headless run cancels the engine with it (the journal stays consistent, exit 130), the console and
//! the replay close, the simulator stops serving. (In the console's raw mode Ctrl-C is a key, not a
//! signal.)

use std::future::Future;

use color_eyre::eyre::WrapErr;
use tokio_util::sync::CancellationToken;

/// Runs `f` on a multi-threaded runtime with `interrupt`, cancelled on SIGINT or SIGTERM.
pub fn block_on<T, F>(f: impl FnOnce(CancellationToken) -> F) -> color_eyre::Result<T>
where
    F: Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    Ok(rt.block_on(async move {
        let interrupt = CancellationToken::new();
        let on_signal = interrupt.clone();
        let watcher = tokio::spawn(async move {
            interrupted().await;
            on_signal.cancel();
        });
        let out = f(interrupt).await;
        watcher.abort();
        out
    }))
}

/// Resolves on the first SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
