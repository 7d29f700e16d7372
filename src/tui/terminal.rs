//! Terminal safety: raw mode, the alternate screen and mouse capture are entered together and left
//! together, by a guard on drop and by a panic hook, so neither an error nor a panic leaves the
//! operator's terminal broken. Logs go to a file, never to the screen under the UI; a panic says
//! where the log and the journal are.

use std::io::{self, Stdout, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Restores the terminal when dropped.
pub struct TerminalGuard(());

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Enters raw mode, the alternate screen and mouse capture.
pub fn enter() -> io::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard(());
    let mut out = io::stdout();
    // Clear with a plain escape: `Terminal::clear` asks the terminal for the cursor position and
    // waits for the answer, which a pseudo-terminal under test (or a slow link) may never send.
    execute!(
        out,
        EnterAlternateScreen,
        EnableMouseCapture,
        Clear(ClearType::All)
    )?;
    let mut terminal = Terminal::new(CrosstermBackend::new(out))?;
    terminal.hide_cursor()?;
    Ok((terminal, guard))
}

/// Leaves the alternate screen, mouse capture and raw mode. Idempotent; errors are ignored because
/// this runs on the way out (drop, panic) where nothing better can be done.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(
            out,
            DisableMouseCapture,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

fn show(p: Option<&Path>) -> String {
    p.map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
}

/// Installs a panic hook that restores the terminal first, then says where the log and the
/// journal are (the run resumes from the journal), then runs the previous hook.
pub fn install_panic_hook(journal: Option<PathBuf>, log: Option<PathBuf>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        eprintln!(
            "cutover: the console stopped on an internal error; the terminal has been restored.\n  log:     {}\n  journal: {}\nThe journal is consistent: start the same command again to resume the run.",
            show(log.as_deref()),
            show(journal.as_deref())
        );
        previous(info);
    }));
}

/// Sends `tracing` output to `path` (appending; the file is created, or tightened to, mode 0600), filtered
/// by `CUTOVER_LOG` (default `info`). The
/// returned guard flushes the file when dropped. `None` when a subscriber is already installed or
/// the file cannot be opened (the console then logs nowhere rather than onto its own screen).
pub fn init_file_log(path: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    // The log may name hosts, maps and steps: only the operator reads it (as the journal).
    let file = crate::journal::open_private(path, true).ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}
