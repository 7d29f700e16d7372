//! The full console the render and input benches draw: built the only way a console sees a run,
//! as journal envelopes (folded by `App::apply`). Shared by benches/render.rs and benches/input.rs
//! (`#[path = "console_data.rs"] mod console_data;`, which needs `mod tui_support` next to it).

#![allow(dead_code)]

use std::collections::BTreeMap;

use cutover::engine::event::{DecisionKind, ErrorEntry, Event, MapInfo, StepOutcome, Tolerance};

use crate::tui_support::{self, Script, ask, run_started, step};

pub const STEPS: usize = 2_000;
pub const ERRORS: usize = 100_000;
pub const PARITY_ROWS: usize = 500;

/// The console's data: 2,000 planned steps (half finished, `running` in flight), 500 parity rows
/// sampled 20 times, 100,000 error-queue entries, one pending decision.
pub fn build(running: usize) -> Script {
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
                reason: None,
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
    for i in STEPS / 2..STEPS / 2 + running {
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
                source: None,
            },
        );
    }
    s
}
