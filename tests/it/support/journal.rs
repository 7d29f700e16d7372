//! Shared by the journal tests and benches (included with `#[path]`): a realistic, deterministic
//! generator of run events and a stepping clock. Compiled on its own too, as an empty test crate.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};
use cutover::engine::event::{
    DecisionKind, ErrorEntry, Handle, LogLevel, MapInfo, OperatorAction, PlannedStepInfo, RunbookInfo,
    Severity, StepOutcome, Tolerance,
};
use cutover::engine::{Event, RunId, StepId};
use cutover::journal::Clock;
use cutover::journal::chain::sha256_hex;

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// A clock that advances 7 ms per reading, from `t0()`.
pub fn stepping_clock() -> Clock {
    let ms = Arc::new(AtomicI64::new(0));
    Arc::new(move || t0() + Duration::milliseconds(ms.fetch_add(7, Ordering::SeqCst)))
}

pub fn run_started(run: &str, maps: usize) -> Event {
    let text = format!("runbook: demo\nversion: 1.0.0\n# {maps} maps\n");
    let map_ids: Vec<String> = (0..maps).map(|i| format!("map{i}")).collect();
    let mut steps = vec![PlannedStepInfo {
        id: "approve".into(),
        phase: "freeze".into(),
        wave: None,
        kind: "manual".into(),
        title: "Freeze".into(),
        needs: vec![],
        point_of_no_return: false,
        confirm: false,
        map: None,
        estimate_ms: None,
        estimate_from: None,
    }];
    for m in &map_ids {
        steps.push(PlannedStepInfo {
            id: format!("wave.{m}").into(),
            phase: "initial-sync".into(),
            wave: Some("wave-1".into()),
            kind: "dualwrite.run".into(),
            title: format!("Sync {m}").into(),
            needs: vec![],
            point_of_no_return: false,
            confirm: false,
            map: Some(m.clone()),
            estimate_ms: None,
            estimate_from: None,
        });
    }
    Event::RunStarted {
        run_id: run.into(),
        runbook: RunbookInfo {
            name: "demo".into(),
            version: "1.0.0".into(),
            sha256: sha256_hex(&text),
            text,
        },
        operator: "alice".into(),
        host: "laptop".into(),
        started_at: t0(),
        freeze_window: None,
        steps: steps.into_iter().map(std::sync::Arc::new).collect(),
        maps: map_ids
            .iter()
            .map(|m| MapInfo {
                id: m.clone(),
                companies: vec!["USMF".into()],
                tolerance: Tolerance::Count(2),
            })
            .collect(),
        time_scale: 1.0,
    }
}

/// Deterministic generator of a realistic event mix for one run (after its `RunStarted`).
pub struct Gen {
    state: u64,
    maps: usize,
    n: u64,
    pub secret: Option<String>,
}

impl Gen {
    pub fn new(seed: u64, maps: usize) -> Self {
        Self {
            state: seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
            maps,
            n: 0,
            secret: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n.max(1) as u64)).unwrap()
    }

    fn step(&mut self) -> StepId {
        format!("wave.map{}", self.pick(self.maps)).into()
    }

    pub fn next_event(&mut self) -> Event {
        self.n += 1;
        let roll = self.pick(100);
        let map = format!("map{}", self.pick(self.maps));
        let leak = |g: &Self, s: String| match &g.secret {
            Some(secret) => format!("{s} secret={secret} Authorization: Bearer tok.{secret}"),
            None => s,
        };
        match roll {
            0..=39 => Event::Request {
                step: Some(self.step()),
                env: "dataverse".into(),
                method: "GET".into(),
                path: format!("/api/data/v9.2/accounts?$count=true&$skip={}", self.n),
                status: Some(if self.pick(20) == 0 { 429 } else { 200 }),
                duration_ms: self.next_u64() % 200,
                error: None,
            },
            40..=59 => Event::StepProgress {
                step: self.step(),
                done: self.n,
                total: Some(1_000_000),
                note: None,
            },
            60..=74 => {
                let source = 10_000 + self.next_u64() % 100;
                Event::ParitySample {
                    step: None,
                    map,
                    company: Some("USMF".into()),
                    source,
                    target: source - self.next_u64() % 5,
                }
            }
            75..=82 => {
                let k = 1 + self.pick(3);
                let entries = (0..k)
                    .map(|i| ErrorEntry {
                        id: format!("e{}-{i}", self.n),
                        at: t0() + Duration::seconds(i64::try_from(self.n).unwrap()),
                        map: map.clone(),
                        key: format!("CUST-{}", self.n),
                        category: ["lookup", "duplicate", "validation"][i % 3].into(),
                        message: leak(self, "Lookup of currency failed".into()),
                    })
                    .collect();
                Event::ErrorEntries {
                    map,
                    entries,
                    source: (self.n % 2 == 0).then(|| "dataverse.asyncoperations".to_string()),
                }
            }
            83..=86 => Event::StepIntent {
                step: self.step(),
                attempt: 1 + u32::try_from(self.pick(2)).unwrap(),
                handle: Some(Handle {
                    kind: "dualwrite.request".into(),
                    id: format!("req-{}", self.n),
                }),
            },
            87..=90 => Event::StepFinished {
                step: self.step(),
                outcome: if self.pick(10) == 0 {
                    StepOutcome::Failed {
                        message: leak(self, "HTTP 500".into()),
                        reason: None,
                    }
                } else {
                    StepOutcome::Succeeded
                },
                outputs: BTreeMap::from([("rows".to_string(), self.n.to_string())]),
            },
            91..=92 => Event::Log {
                level: LogLevel::Info,
                message: leak(self, format!("log line {}", self.n)),
            },
            93 => Event::Alert {
                severity: Severity::Warning,
                message: "drift".into(),
                map: Some(map),
                subject: None,
            },
            94..=95 => Event::ErrorCounts {
                map,
                by_category: BTreeMap::from([("lookup".to_string(), self.n % 50)]),
                source: (self.n % 2 == 0).then(|| "dmf.execution_errors".to_string()),
                unavailable: (self.n % 3 == 0).then(|| "HTTP 403".to_string()),
                present: (self.n % 5 == 0).then(|| vec![format!("e{}", self.n)]),
            },
            96 => Event::AwaitingOperator {
                step: Some(self.step()),
                decision: DecisionKind::StepFailed,
                prompt: "retry?".into(),
                checklist: vec![],
                deadline: None,
            },
            97 => Event::OperatorDecision {
                step: Some(self.step()),
                action: [OperatorAction::Retry, OperatorAction::Skip, OperatorAction::Waive][self.pick(3)],
                operator: "bob".into(),
                reason: Some("known".into()),
                checklist_done: vec![],
                identity: None,
            },
            98 => Event::OperatorDecision {
                step: None,
                action: if self.pick(2) == 0 {
                    OperatorAction::Pause
                } else {
                    OperatorAction::Resume
                },
                operator: "alice".into(),
                reason: None,
                checklist_done: vec![],
                identity: None,
            },
            _ => Event::GateEvaluated {
                step: "wave.gate".into(),
                wave: Some("wave-1".into()),
                passed: self.pick(2) == 0,
                failures: vec![],
            },
        }
    }
}

pub fn run_id(s: &str) -> RunId {
    RunId::from(s)
}
