//! Rendering the full console at 200×60 with 2,000 steps, 100,000 error-queue entries and 500
//! parity rows (built by folding generated envelopes, as the console would: benches/console_data.rs).
//! Targets: median < 2 ms and p99 < 8 ms per frame.
//!
//! Figures: `render frame median` and `render frame p99`, over every 200×60 frame drawn here (the
//! full console, scrolled to the middle of the tree and the error queue, and with an error filter
//! applied: 3 × 600 frames), and `render frame p99 on-cpu`: the same frames' time on a CPU
//! (`CLOCK_THREAD_CPUTIME_ID`), which shows what part of a wall-clock p99 is the shared
//! machine taking the core away. The 80×24 compact layout and the peak RSS are printed, not figures.
//! Input-to-frame latency through the real event loop is benches/input.rs.
//!
//! `cargo bench --bench render` (`CUTOVER_BENCH_QUICK=1`: 100 frames per layout).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/support/tui.rs"]
mod tui_support;

#[path = "console_data.rs"]
mod console_data;
#[path = "figure.rs"]
mod figure;

use std::time::{Duration, Instant};

use console_data::{ERRORS, PARITY_ROWS, STEPS, build};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::tui::{App, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tui_support::app;

const MEDIAN_TARGET_MS: f64 = 2.0;
const P99_TARGET_MS: f64 = 8.0;

fn frames() -> usize {
    if std::env::var_os("CUTOVER_BENCH_QUICK").is_some() {
        100
    } else {
        600
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Draws `frames()` frames and returns their wall and on-CPU times (unsorted).
fn measure(label: &str, app: &mut App, term: &mut Terminal<TestBackend>) -> (Vec<Duration>, Vec<Duration>) {
    let n = frames();
    let mut times = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    for _ in 0..n {
        app.on_tick();
        let c = figure::thread_cpu();
        let t = Instant::now();
        term.draw(|f| draw(f, app)).unwrap();
        times.push(t.elapsed());
        if let (Some(c0), Some(c1)) = (c, figure::thread_cpu()) {
            cpu.push(c1 - c0);
        }
    }
    let mut sorted = times.clone();
    sorted.sort();
    let mut cpu_sorted = cpu.clone();
    cpu_sorted.sort();
    println!(
        "{label:<44} median {:>7.3} ms   p99 {:>7.3} ms   ({n} frames; on-CPU p99 {:.3} ms)",
        ms(figure::percentile(&sorted, 50.0).unwrap()),
        ms(figure::percentile(&sorted, 99.0).unwrap()),
        ms(figure::percentile(&cpu_sorted, 99.0).unwrap_or_default()),
    );
    (times, cpu)
}

fn main() {
    let t = Instant::now();
    let script = build(8);
    let mut state_app = app(cutover::engine::RunState::default(), true);
    for e in &script.envelopes {
        state_app.apply(e);
    }
    state_app.after_batch();
    println!(
        "built: {} envelopes, {} steps, {} error entries kept, {} parity rows in {:.2?}",
        script.envelopes.len(),
        state_app.state.steps.len(),
        state_app.state.errors.newest.len(),
        state_app.state.parity.rows.len(),
        t.elapsed()
    );
    assert_eq!(state_app.state.steps.len(), STEPS);
    assert_eq!(state_app.state.errors.newest.len(), ERRORS);
    assert_eq!(state_app.state.parity.rows.len(), PARITY_ROWS);
    let mut app = state_app;
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    app.on_resize(200, 60);
    let (mut wide, mut wide_cpu) = measure("200x60 full console", &mut app, &mut term);
    // Scrolled to the middle of the tree and the error queue.
    for _ in 0..40 {
        app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    for _ in 0..200 {
        app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    let (w, c) = measure("200x60 scrolled (tree and error queue)", &mut app, &mut term);
    wide.extend(w);
    wide_cpu.extend(c);
    app.on_key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE));
    for c in "dup".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let (w, c) = measure("200x60 error filter 'dup' (1 in 4 match)", &mut app, &mut term);
    wide.extend(w);
    wide_cpu.extend(c);
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    app.on_resize(80, 24);
    measure("80x24 compact", &mut app, &mut small);
    match figure::peak_rss_mb() {
        Some(mb) => println!("peak RSS (VmHWM): {mb:.1} MB"),
        None => println!("peak RSS: /proc/self/status not readable on this platform"),
    }
    wide.sort();
    wide_cpu.sort();
    let median = ms(figure::percentile(&wide, 50.0).unwrap());
    let p99 = ms(figure::percentile(&wide, 99.0).unwrap());
    println!(
        "all {} 200x60 frames: median {median:.3} ms, p99 {p99:.3} ms",
        wide.len()
    );
    figure::emit(
        "render frame median",
        median,
        "ms",
        None,
        Some(median / MEDIAN_TARGET_MS),
        "< 2 ms",
        median < MEDIAN_TARGET_MS,
    );
    figure::emit(
        "render frame p99",
        p99,
        "ms",
        None,
        Some(p99 / P99_TARGET_MS),
        "< 8 ms",
        p99 < P99_TARGET_MS,
    );
    // The same frames' own CPU time: what is left of the p99 when the shared machine's other
    // processes are taken out (CLOCK_THREAD_CPUTIME_ID).
    if let Some(cpu99) = figure::percentile(&wide_cpu, 99.0).map(ms) {
        println!("on-CPU time of the same frames: p99 {cpu99:.3} ms");
        figure::emit(
            "render frame p99 on-cpu",
            cpu99,
            "ms",
            None,
            Some(cpu99 / P99_TARGET_MS),
            "< 8 ms",
            cpu99 < P99_TARGET_MS,
        );
    }
}
