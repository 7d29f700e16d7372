//! Memory: peak resident set size of a full demo run with the console; target < 150 MB.
//!
//! What runs: in a fresh child process (this binary re-run with `CUTOVER_BENCH_CHILD=demo`), the
//! whole demo as `cutover demo` wires it (engine, in-process simulator on the demo scenario at its
//! time scale, journal on a fresh temp file) and the console's real event loop
//! (`tui::event_loop::drive`, the same `App` and panes) at 200×60 on a ratatui `TestBackend`, fed
//! by the engine's journal subscription, until the run finishes. The parent reaps the child with
//! `wait4` and reads its `ru_maxrss`: the exact peak, nothing sampled.
//!
//! Why not the binary in a pty: `cutover demo` with a console routes every decision to the
//! operator (two manual approvals, the gate that fails on wave-3's drift several times, the point
//! of no return), so a pty run needs a scripted operator reading the screen; the console and the
//! engine here are the same code with auto-approval, and the terminal's byte stream (crossterm's
//! writes into the pty) is the only piece not exercised. tests/console_pty.rs covers that path.
//!
//! Figure `demo peak rss` (MB). `cargo bench --bench demo_rss` (`CUTOVER_BENCH_QUICK=1`: time
//! scale × 4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "figure.rs"]
mod figure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cutover::engine::RunEnd;
use cutover::engine::event::RunOutcome;
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use cutover::engine::scheduler::operator::AutoApprove;
use cutover::tui::event_loop::{Timing, drive};
use cutover::tui::{App, ConsoleConfig};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TARGET_MB: f64 = 150.0;

/// The child: the demo with the console loop, then its own VmHWM on stdout.
fn child() {
    let mut sc = cutover::sim::Scenario::demo();
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        sc.time_scale *= 4.0;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("demo.journal");
    let file = cutover::app::materialize_demo().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (end, frames) = rt.block_on(async {
        let mut cfg = ConsoleConfig::new("bench");
        cfg.journal_path = Some(journal.clone());
        cfg.runbook = cutover::runbook::load(cutover::app::DEMO_RUNBOOK, "runbook")
            .runbook
            .map(Arc::new);
        // The edge starts the simulator for a run; the bench does what it does.
        let sim = cutover::sim::start(sc.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let opts = RunOptions {
            runbook: Some(file),
            journal: journal.clone(),
            operator: "bench".into(),
            auto_approve: Some(AutoApprove {
                operator: "bench".into(),
                reason: "auto-approved (memory bench)".into(),
            }),
            interactive: false,
            sim: SimTarget::Url(sim.url()),
            accept_changed_runbook: false,
            accept_inserted_steps: Vec::new(),
            take_over: false,
            new_run: false,
            resume_only: false,
            vars: Arc::new(|n: &str| (n == "DEMO_CLIENT_SECRET").then(|| "rss-bench-secret".to_owned())),
            follow_delay: None,
        };
        let (handle, initial, sub) = start_engine(opts).await.unwrap();
        let mut app = App::new(initial, cfg, Box::new(chrono::Utc::now));
        let (cmd_tx, _cmd_rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let console = tokio::spawn(async move {
            let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
            let input = futures::stream::pending();
            drive(&mut term, &mut app, input, sub, cmd_tx, stop, Timing::default())
                .await
                .unwrap();
            app.state.events_applied
        });
        let end = handle.done.await.unwrap();
        // Let the console fold and draw the last envelopes, then close it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
        (end, console.await.unwrap())
    });
    let ok = matches!(end, RunEnd::Finished(RunOutcome::Succeeded));
    println!(
        "CHILD {} {ok} {frames}",
        figure::peak_rss_mb().unwrap_or(f64::NAN)
    );
}

/// Runs the child, reaps it with wait4 and returns (ru_maxrss MB, child's own line).
// The child is reaped by `libc::wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_child() -> (f64, String) {
    use std::io::Read;
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .env("CUTOVER_BENCH_CHILD", "demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 writes it and the status for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers for the duration of the call; `pid` is our unreaped child.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the demo child failed (status {status})"
    );
    // Linux reports ru_maxrss in KiB.
    (ru.ru_maxrss as f64 / 1024.0, out)
}

fn main() {
    if std::env::var("CUTOVER_BENCH_CHILD").as_deref() == Ok("demo") {
        child();
        return;
    }
    let t = Instant::now();
    let (mb, out) = run_child();
    let line = out
        .lines()
        .find(|l| l.starts_with("CHILD "))
        .unwrap_or("CHILD ? false 0");
    let parts: Vec<&str> = line.split_whitespace().collect();
    let ok = parts.get(2) == Some(&"true");
    println!(
        "demo with the console loop at 200x60: run {}, {} envelopes folded by the console, {:.1} s; peak RSS {mb:.1} MB (wait4 ru_maxrss; the child's own VmHWM {} MB)",
        if ok { "succeeded" } else { "DID NOT succeed" },
        parts.get(3).unwrap_or(&"?"),
        t.elapsed().as_secs_f64(),
        parts.get(1).unwrap_or(&"?")
    );
    figure::emit(
        "demo peak rss",
        mb,
        "MB",
        None,
        Some(mb / TARGET_MB),
        "< 150 MB",
        ok && mb < TARGET_MB,
    );
}
