//! A run for console tests and the render benchmark, built the only way a console sees one: as
//! journal envelopes folded by `RunState::apply`. Times are fixed relative to [`t0`] so snapshots
//! are stable with the injected clock.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cutover::engine::RunId;
use cutover::engine::event::{
    DecisionKind, Envelope, ErrorEntry, Event, FreezeWindow, Handle, LogLevel, MapInfo, OperatorAction,
    PlannedStepInfo, RunbookInfo, Severity, StepOutcome, Tolerance,
};
use cutover::engine::state::RunState;
use cutover::tui::{App, ConsoleConfig, Theme};

/// The console's "now" in every test.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T20:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// Builds envelopes with contiguous ids and sequence numbers.
pub struct Script {
    pub envelopes: Vec<Envelope>,
    pub run: RunId,
}

impl Script {
    pub fn new() -> Self {
        Self {
            envelopes: Vec::new(),
            run: RunId::from("7f3c2a91-5d4e-4b8a-9c1f-0a2b3c4d5e6f"),
        }
    }

    pub fn push(&mut self, secs: i64, event: Event) {
        let n = self.envelopes.len() as u64 + 1;
        self.envelopes.push(Envelope {
            id: n as i64,
            seq: n,
            at: at(secs),
            run_id: self.run.clone(),
            event,
        });
    }

    pub fn state(&self) -> RunState {
        let mut s = RunState::default();
        for e in &self.envelopes {
            s.apply(e);
        }
        s
    }
}

pub fn step(id: &str, phase: &str, wave: Option<&str>, kind: &str, title: &str) -> PlannedStepInfo {
    PlannedStepInfo {
        id: id.into(),
        phase: phase.into(),
        wave: wave.map(str::to_owned),
        kind: kind.to_owned().into(),
        title: title.into(),
        needs: Vec::new(),
        point_of_no_return: false,
        confirm: false,
        map: None,
        estimate_ms: None,
        estimate_from: None,
    }
}

pub fn run_started(steps: Vec<PlannedStepInfo>, maps: Vec<MapInfo>, freeze_end_secs: i64) -> Event {
    Event::RunStarted {
        run_id: RunId::from("7f3c2a91"),
        runbook: RunbookInfo {
            name: "contoso-weekend".into(),
            version: "1.4.2".into(),
            sha256: "ab".repeat(32),
            text: String::new(),
        },
        operator: "alice".into(),
        host: "ops-laptop".into(),
        started_at: at(-5400),
        freeze_window: Some(FreezeWindow {
            start: at(-7200),
            end: at(freeze_end_secs),
        }),
        steps: steps.into_iter().map(std::sync::Arc::new).collect(),
        maps,
        time_scale: 1.0,
    }
}

fn request(step: &str, method: &str, path: &str, status: u16, ms: u64) -> Event {
    Event::Request {
        step: Some(step.into()),
        env: "fno".into(),
        method: method.into(),
        path: path.into(),
        status: Some(status),
        duration_ms: ms,
        error: None,
    }
}

/// The demo-like run: a finished preparation, a wave with one map syncing and one failed (the
/// engine asks retry/skip/abort), parity drifting on one company, errors in the queue, a
/// point-of-no-return go-live step still pending. Freeze ends `freeze_end_secs` after [`t0`].
pub fn mid_run(freeze_end_secs: i64) -> Script {
    let mut s = Script::new();
    let mut go_live = step(
        "enable-dualwrite",
        "go-live",
        None,
        "dualwrite.run",
        "Enable dual-write for all maps",
    );
    go_live.point_of_no_return = true;
    go_live.confirm = true;
    let mut cust = step(
        "wave-1:customers",
        "initial-sync",
        Some("wave-1"),
        "dualwrite.run",
        "customers",
    );
    cust.map = Some("customers".into());
    let mut vend = step(
        "wave-1:vendors",
        "initial-sync",
        Some("wave-1"),
        "dualwrite.run",
        "vendors",
    );
    vend.map = Some("vendors".into());
    let steps = vec![
        step("freeze-batch", "prepare", None, "manual", "Stop the batch jobs"),
        step(
            "export-config",
            "prepare",
            None,
            "dmf.export",
            "Export the configuration package",
        ),
        cust,
        vend,
        step(
            "wave-1:gate",
            "initial-sync",
            Some("wave-1"),
            "gate",
            "wave-1 gate",
        ),
        go_live,
    ];
    let maps = vec![
        MapInfo {
            id: "customers".into(),
            companies: vec!["USMF".into(), "DEMF".into()],
            tolerance: Tolerance::Count(5),
        },
        MapInfo {
            id: "vendors".into(),
            companies: Vec::new(),
            tolerance: Tolerance::Percent(0.1),
        },
    ];
    s.push(-5400, run_started(steps, maps, freeze_end_secs));
    s.push(
        -5300,
        Event::StepIntent {
            step: "freeze-batch".into(),
            attempt: 1,
            handle: None,
        },
    );
    s.push(
        -5290,
        Event::OperatorDecision {
            step: Some("freeze-batch".into()),
            action: OperatorAction::Approve,
            operator: "alice".into(),
            reason: None,
            checklist_done: vec!["batch group stopped".into()],
            identity: None,
        },
    );
    s.push(
        -5200,
        Event::StepFinished {
            step: "freeze-batch".into(),
            outcome: StepOutcome::Succeeded,
            outputs: BTreeMap::new(),
        },
    );
    s.push(
        -5100,
        Event::StepIntent {
            step: "export-config".into(),
            attempt: 1,
            handle: Some(Handle {
                kind: "dmf.export".into(),
                id: "exec-0001".into(),
            }),
        },
    );
    s.push(
        -5050,
        request(
            "export-config",
            "POST",
            "/data/DataManagementDefinitionGroups/ExportToPackage",
            200,
            412,
        ),
    );
    s.push(
        -4000,
        request(
            "export-config",
            "POST",
            "/data/DataManagementDefinitionGroups/GetExecutionSummaryStatus",
            200,
            95,
        ),
    );
    s.push(
        -3900,
        Event::StepFinished {
            step: "export-config".into(),
            outcome: StepOutcome::Succeeded,
            outputs: BTreeMap::from([("package_url".into(), "https://blob/pkg.zip".into())]),
        },
    );
    s.push(
        -1200,
        Event::StepIntent {
            step: "wave-1:vendors".into(),
            attempt: 1,
            handle: None,
        },
    );
    s.push(
        -1100,
        Event::StepIntent {
            step: "wave-1:customers".into(),
            attempt: 1,
            handle: None,
        },
    );
    s.push(
        -60,
        Event::StepProgress {
            step: "wave-1:customers".into(),
            done: 1_200,
            total: Some(5_000),
            note: None,
        },
    );
    s.push(
        -600,
        Event::StepFinished {
            step: "wave-1:vendors".into(),
            outcome: StepOutcome::Failed {
                message: "initial sync failed: 12 rows rejected".into(),
                reason: None,
            },
            outputs: BTreeMap::new(),
        },
    );
    s.push(
        -590,
        Event::AwaitingOperator {
            step: Some("wave-1:vendors".into()),
            decision: DecisionKind::StepFailed,
            prompt: "vendors initial sync failed".into(),
            checklist: Vec::new(),
            deadline: Some(at(1800)),
        },
    );
    for (i, (c, src, tgt)) in [("USMF", 5_000, 4_990), ("DEMF", 3_000, 3_000)]
        .iter()
        .enumerate()
    {
        for k in 0..6 {
            s.push(
                -300 + k * 30 + i as i64,
                Event::ParitySample {
                    step: None,
                    map: "customers".into(),
                    company: Some((*c).into()),
                    source: *src,
                    target: tgt - (5 - k as u64) * 3,
                },
            );
        }
    }
    s.push(
        -200,
        Event::ParitySample {
            step: None,
            map: "vendors".into(),
            company: None,
            source: 800,
            target: 788,
        },
    );
    let entries: Vec<ErrorEntry> = (0..12)
        .map(|i| ErrorEntry {
            id: format!("v{i}"),
            at: at(-700 + i),
            map: "vendors".into(),
            key: format!("V-{:04}", 100 + i),
            category: if i % 3 == 0 {
                "lookup".into()
            } else {
                "validation".into()
            },
            message: format!("Vendor group missing for V-{:04}", 100 + i),
        })
        .chain((0..3).map(|i| ErrorEntry {
            id: format!("c{i}"),
            at: at(-100 + i),
            map: "customers".into(),
            key: format!("US-{:03}", 7 + i),
            category: "duplicate".into(),
            message: "Duplicate record".into(),
        }))
        .collect();
    s.push(
        -100,
        Event::ErrorEntries {
            map: "vendors".into(),
            entries,
            source: None,
        },
    );
    s.push(
        -90,
        Event::Alert {
            severity: Severity::Warning,
            message: "vendors error rate above threshold".into(),
            map: Some("vendors".into()),
            subject: None,
        },
    );
    s.push(
        -80,
        Event::Log {
            level: LogLevel::Info,
            message: "wave-1 started with concurrency 2".into(),
        },
    );
    s
}

/// The console on [`mid_run`] with the injected clock at [`t0`].
pub fn app(state: RunState, color: bool) -> App {
    let mut cfg = ConsoleConfig::new("alice");
    cfg.theme = Theme { color };
    App::new(state, cfg, Box::new(t0))
}

/// The console fed every envelope of `script` live (so per-step journal events are there too).
pub fn live_app(script: &Script, color: bool) -> App {
    let mut a = app(RunState::default(), color);
    for e in &script.envelopes {
        a.apply(e);
    }
    a.after_batch();
    a
}

/// Appends a pending decision to a script.
pub fn ask(s: &mut Script, secs: i64, step_id: &str, decision: DecisionKind, checklist: &[&str]) {
    s.push(
        secs,
        Event::AwaitingOperator {
            step: Some(step_id.into()),
            decision,
            prompt: format!("{step_id} needs you"),
            checklist: checklist.iter().map(|c| (*c).to_owned()).collect(),
            deadline: Some(at(secs + 3600)),
        },
    );
}
