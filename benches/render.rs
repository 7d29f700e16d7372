//! Rendering the full console at 200×60 with 2,000 steps, 100,000 error-queue entries and 500
//! parity rows (built by folding generated envelopes, as the console would). Prints the median and
//! p99 per frame (targets: < 2 ms median, < 8 ms p99) and the peak RSS (target: < 150 MB).
//!
//! `cargo bench --bench render`

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/tui_support/mod.rs"]
mod tui_support;

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::event::{DecisionKind, ErrorEntry, Event, MapInfo, StepOutcome, Tolerance};
use cutover::tui::{App, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tui_support::{Script, app, ask, run_started, step};

const STEPS: usize = 2_000;
const ERRORS: usize = 100_000;
const PARITY_ROWS: usize = 500;
const FRAMES: usize = 600;

fn build() -> Script {
    let mut s = Script::new();
    let steps: Vec<_> = (0..STEPS)
        .map(|i| {
            let phase = format!("phase-{:02}", i / 200);
            let wave = (i % 200 >= 100).then(|| format!("wave-{}", i / 50));
            let mut st = step(
                &format!("step-{i:04}"),
                &phase,
                wave.as_deref(),
                "dualwrite.run",
                &format!("Step number {i}"),
            );
            st.point_of_no_return = i % 97 == 0;
            st
        })
        .collect();
    // 100 maps × 5 companies = 500 parity rows.
    let maps: Vec<MapInfo> = (0..PARITY_ROWS / 5)
        .map(|m| MapInfo {
            id: format!("map-{m:03}"),
            companies: (0..5).map(|c| format!("C{c:02}")).collect(),
            tolerance: Tolerance::Count(5),
        })
        .collect();
    s.push(-86_400, run_started(steps, maps, 10 * 3600));
    for i in 0..STEPS / 2 {
        let id = format!("step-{i:04}");
        s.push(
            -80_000 + i as i64,
            Event::StepIntent {
                step: id.as_str().into(),
                attempt: 1,
                handle: None,
            },
        );
        let outcome = if i % 50 == 7 {
            StepOutcome::Failed {
                message: "boom".into(),
            }
        } else {
            StepOutcome::Succeeded
        };
        s.push(
            -79_000 + i as i64,
            Event::StepFinished {
                step: id.as_str().into(),
                outcome,
                outputs: BTreeMap::new(),
            },
        );
    }
    for i in STEPS / 2..STEPS / 2 + 8 {
        s.push(
            -600,
            Event::StepIntent {
                step: format!("step-{i:04}").as_str().into(),
                attempt: 1,
                handle: None,
            },
        );
        s.push(
            -60,
            Event::StepProgress {
                step: format!("step-{i:04}").as_str().into(),
                done: 1_234,
                total: Some(5_000),
                note: None,
            },
        );
    }
    ask(&mut s, -30, "step-0007", DecisionKind::StepFailed, &[]);
    for round in 0..20 {
        for r in 0..PARITY_ROWS {
            s.push(
                -3_000 + round,
                Event::ParitySample {
                    step: None,
                    map: format!("map-{:03}", r / 5),
                    company: Some(format!("C{:02}", r % 5)),
                    source: 10_000 + r as u64,
                    target: 10_000 + r as u64 - ((r as u64 * 7 + round as u64) % 13),
                },
            );
        }
    }
    let cats = ["lookup", "validation", "duplicate", "missing-parent"];
    for batch in 0..(ERRORS / 1_000) {
        let entries = (0..1_000)
            .map(|k| {
                let n = batch * 1_000 + k;
                ErrorEntry {
                    id: format!("e{n}"),
                    at: tui_support::at(-7_200 + (n as i64 / 20)),
                    map: format!("map-{:03}", n % 100),
                    key: format!("K-{n:06}"),
                    category: cats[n % cats.len()].into(),
                    message: format!("Record K-{n:06} rejected: the related record was not found"),
                }
            })
            .collect();
        s.push(
            -1_000,
            Event::ErrorEntries {
                map: "many".into(),
                entries,
            },
        );
    }
    s
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn measure(label: &str, app: &mut App, term: &mut Terminal<TestBackend>) {
    let mut times = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        app.on_tick();
        let t = Instant::now();
        term.draw(|f| draw(f, app)).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    println!(
        "{label:<44} median {:>7.3} ms   p99 {:>7.3} ms   ({} frames)",
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        FRAMES
    );
}

fn main() {
    let t = Instant::now();
    let script = build();
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
    measure("200x60 full console", &mut app, &mut term);
    // Scrolled to the middle of the tree and the error queue.
    for _ in 0..40 {
        app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    for _ in 0..200 {
        app.on_key(KeyEvent::new(KeyCode::PageDown, KeyModifiers::NONE));
    }
    measure("200x60 scrolled (tree and error queue)", &mut app, &mut term);
    app.on_key(KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE));
    for c in "dup".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    measure("200x60 error filter 'dup' (1 in 4 match)", &mut app, &mut term);
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    app.on_resize(80, 24);
    measure("80x24 compact", &mut app, &mut small);
    match vm_hwm_kb() {
        Some(kb) => println!("peak RSS (VmHWM): {:.1} MB (target < 150 MB)", kb as f64 / 1024.0),
        None => println!("peak RSS: /proc/self/status not readable on this platform"),
    }
}
