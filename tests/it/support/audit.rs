//! Shared by the audit tests (included with `#[path]`): a demo-like journal with a failed rehearsal
//! and a weekend run that has manual approvals, a DMF import with its install record, two waves with
//! gates (one failing and waived), errors, alerts, a resume, a retried step and a point of no return.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};
use cutover::engine::event::{
    DecisionKind, ErrorEntry, FreezeWindow, GateFailure, Handle, MapInfo, OperatorAction, PlannedStepInfo,
    RunOutcome, RunbookInfo, Severity, StepOutcome, Tolerance,
};
use cutover::engine::{Envelope, Event, RunId};
use cutover::journal::chain::sha256_hex;
use cutover::journal::{Journal, JournalOptions, JournalWriter, Redactor};
use rusqlite::Connection;

pub const WEEKEND: &str = "weekend-7f3a";
pub const REHEARSAL: &str = "rehearsal-1c2b";

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn step(
    id: &str,
    phase: &str,
    wave: Option<&str>,
    kind: &str,
    map: Option<&str>,
    est: Option<u64>,
) -> std::sync::Arc<PlannedStepInfo> {
    std::sync::Arc::new(PlannedStepInfo {
        id: id.into(),
        phase: phase.into(),
        wave: wave.map(Into::into),
        kind: kind.to_owned().into(),
        title: format!("Do {id}").into(),
        needs: vec![],
        point_of_no_return: id == "golive.approve",
        confirm: false,
        map: map.map(Into::into),
        estimate_ms: est,
        estimate_from: None,
    })
}

pub fn run_started(run: &str, operator: &str, start: DateTime<Utc>) -> Event {
    let text = "runbook: contoso-weekend\nversion: 2.1.0\nphases: []\n".to_string();
    Event::RunStarted {
        run_id: run.into(),
        runbook: RunbookInfo {
            name: "contoso-weekend".into(),
            version: "2.1.0".into(),
            sha256: sha256_hex(&text),
            text,
        },
        operator: operator.into(),
        host: "laptop-1".into(),
        started_at: start,
        freeze_window: Some(FreezeWindow {
            start,
            end: start + Duration::hours(6),
        }),
        steps: vec![
            step("freeze.approve", "freeze", None, "manual", None, None),
            step("freeze.notify", "freeze", None, "notify", None, None),
            step(
                "migrate.import",
                "migrate",
                None,
                "dmf.import",
                None,
                Some(600_000),
            ),
            step(
                "wave-1:customers",
                "migrate",
                Some("wave-1"),
                "dualwrite.run",
                Some("customers"),
                None,
            ),
            step(
                "wave-1:vendors",
                "migrate",
                Some("wave-1"),
                "dualwrite.run",
                Some("vendors"),
                None,
            ),
            step("wave-1:gate", "migrate", Some("wave-1"), "gate", None, None),
            step(
                "wave-2:products",
                "migrate",
                Some("wave-2"),
                "dualwrite.run",
                Some("products"),
                None,
            ),
            step("wave-2:gate", "migrate", Some("wave-2"), "gate", None, None),
            step("validate.sample", "validate", None, "sample", None, None),
            step("golive.approve", "validate", None, "manual", None, None),
        ],
        maps: vec![
            MapInfo {
                id: "customers".into(),
                companies: vec!["USMF".into(), "DEMF".into()],
                tolerance: Tolerance::Count(5),
            },
            MapInfo {
                id: "vendors".into(),
                companies: vec!["USMF".into()],
                tolerance: Tolerance::Count(0),
            },
            MapInfo {
                id: "products".into(),
                companies: vec![],
                tolerance: Tolerance::Percent(0.1),
            },
        ],
        time_scale: 1.0,
    }
}

/// Appends with a clock the test moves by hand.
pub struct Rec {
    w: JournalWriter,
    run: RunId,
    now_ms: Arc<AtomicI64>,
    pub secret: Option<String>,
    /// Every envelope the writer handed back (what the live console applied).
    pub written: Vec<Envelope>,
}

impl Rec {
    pub fn at_min(&mut self, minutes: f64) -> &mut Self {
        #[allow(clippy::cast_possible_truncation)]
        self.now_ms.store((minutes * 60_000.0) as i64, Ordering::SeqCst);
        self
    }
    pub fn ev(&mut self, e: Event) -> &mut Self {
        let env = self.w.append_blocking(self.run.clone(), e).unwrap();
        self.written.push(std::sync::Arc::unwrap_or_clone(env));
        self
    }
    fn leak(&self, s: &str) -> String {
        match &self.secret {
            Some(x) => format!("{s} (secret={x}; Authorization: Bearer tok{x})"),
            None => s.to_owned(),
        }
    }
    pub fn intent(&mut self, step: &str, attempt: u32) -> &mut Self {
        self.ev(Event::StepIntent {
            step: step.into(),
            attempt,
            handle: Some(Handle {
                kind: "dualwrite.request".into(),
                id: format!("h-{step}-{attempt}"),
            }),
        })
    }
    pub fn done(&mut self, step: &str) -> &mut Self {
        self.ev(Event::StepFinished {
            step: step.into(),
            outcome: StepOutcome::Succeeded,
            outputs: BTreeMap::new(),
        })
    }
    pub fn parity(&mut self, map: &str, company: Option<&str>, source: u64, target: u64) -> &mut Self {
        self.ev(Event::ParitySample {
            step: None,
            map: map.into(),
            company: company.map(Into::into),
            source,
            target,
        })
    }
    pub fn ask(&mut self, step: &str, decision: DecisionKind, prompt: &str) -> &mut Self {
        self.ev(Event::AwaitingOperator {
            step: Some(step.into()),
            decision,
            prompt: prompt.into(),
            checklist: vec![],
            deadline: None,
        })
    }
    pub fn decide(&mut self, step: &str, action: OperatorAction, who: &str, reason: &str) -> &mut Self {
        let reason = self.leak(reason);
        self.ev(Event::OperatorDecision {
            step: Some(step.into()),
            action,
            operator: who.into(),
            reason: Some(reason),
            checklist_done: vec![],
            identity: None,
        })
    }
    pub fn errors(&mut self, map: &str, cat: &str, n: usize, from: usize) -> &mut Self {
        let at = t0();
        let entries = (from..from + n)
            .map(|i| ErrorEntry {
                id: format!("{map}-{i}"),
                at,
                map: map.into(),
                key: format!("K{i}"),
                category: cat.into(),
                message: self.leak("lookup failed"),
            })
            .collect();
        self.ev(Event::ErrorEntries {
            map: map.into(),
            entries,
            source: None,
        })
    }
}

/// Open (or create) a journal at `path` with the run's clock at `base` + the minutes set.
pub fn recorder(path: &Path, run: &str, base: DateTime<Utc>, secret: Option<&str>) -> (Journal, Rec) {
    let now_ms = Arc::new(AtomicI64::new(0));
    let n = now_ms.clone();
    let opts = JournalOptions {
        clock: Arc::new(move || base + Duration::milliseconds(n.load(Ordering::SeqCst))),
        ..JournalOptions::default()
    };
    let redactor = match secret {
        Some(s) => Redactor::with_secrets([s]),
        None => Redactor::new(),
    };
    let j = Journal::open_with(path, redactor, opts).unwrap();
    let rec = Rec {
        w: j.writer(),
        run: RunId::from(run),
        now_ms,
        secret: secret.map(str::to_owned),
        written: Vec::new(),
    };
    (j, rec)
}

/// The demo-like journal: a failed rehearsal (ids 1..=8), then the weekend run.
pub fn build_demo(dir: &Path, secret: Option<&str>) -> PathBuf {
    build_demo_live(dir, secret).0
}

/// [`build_demo`], also returning the weekend run's envelopes as the writer returned them.
pub fn build_demo_live(dir: &Path, secret: Option<&str>) -> (PathBuf, Vec<Envelope>) {
    let path = dir.join("demo.journal");
    let rehearsal_start = t0() - Duration::days(7);
    {
        let (j, mut r) = recorder(&path, REHEARSAL, rehearsal_start, secret);
        r.at_min(0.0).ev(run_started(REHEARSAL, "alice", rehearsal_start));
        r.at_min(1.0).intent("freeze.approve", 1);
        r.at_min(2.0).decide(
            "freeze.approve",
            OperatorAction::Approve,
            "alice",
            "rehearsal freeze",
        );
        r.at_min(2.0).done("freeze.approve");
        r.at_min(3.0).intent("migrate.import", 1);
        r.at_min(14.0).done("migrate.import");
        r.at_min(15.0).intent("wave-1:customers", 1);
        r.at_min(20.0).ev(Event::RunFinished {
            outcome: RunOutcome::Failed {
                message: "rehearsal stopped".into(),
            },
        });
        drop(r);
        j.close().unwrap();
    }
    let (j, mut r) = recorder(&path, WEEKEND, t0(), secret);
    r.at_min(0.0).ev(run_started(WEEKEND, "alice", t0()));
    r.at_min(0.5).intent("freeze.approve", 1);
    r.ask(
        "freeze.approve",
        DecisionKind::ApproveManual,
        "Confirm the F&O freeze",
    );
    r.at_min(4.0).decide(
        "freeze.approve",
        OperatorAction::Approve,
        "alice",
        "freeze confirmed with the business",
    );
    r.done("freeze.approve");
    r.at_min(4.5)
        .intent("freeze.notify", 1)
        .at_min(4.6)
        .done("freeze.notify");
    r.at_min(5.0).intent("migrate.import", 1);
    r.ev(Event::Request {
        step: Some("migrate.import".into()),
        env: "fno".into(),
        method: "POST".into(),
        path: "/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.ImportFromPackage".into(),
        status: Some(200),
        duration_ms: 840,
        error: None,
    });
    r.at_min(16.0).ev(Event::InstallRecord {
        step: "migrate.import".into(),
        package: "reference-data.zip".into(),
        version: "2.1.0".into(),
        sha256: "ab".repeat(32),
        execution_id: "exec-0001".into(),
        result: "Succeeded".into(),
        environment: String::new(),
        record_count: None,
    });
    r.done("migrate.import");
    r.at_min(17.0)
        .intent("wave-1:customers", 1)
        .intent("wave-1:vendors", 1);
    r.parity("customers", Some("USMF"), 1000, 0)
        .parity("customers", Some("DEMF"), 500, 0)
        .parity("vendors", Some("USMF"), 300, 0);
    r.at_min(25.0)
        .errors("customers", "lookup", 3, 0)
        .errors("vendors", "duplicate", 1, 0);
    r.parity("customers", Some("USMF"), 1000, 640)
        .parity("vendors", Some("USMF"), 300, 200);
    r.at_min(33.0)
        .parity("customers", Some("USMF"), 1000, 998)
        .parity("customers", Some("DEMF"), 500, 500);
    r.parity("vendors", Some("USMF"), 300, 290);
    r.ev(Event::ErrorCounts {
        map: "customers".into(),
        by_category: BTreeMap::from([("lookup".to_string(), 3)]),
        source: None,
        unavailable: None,
        present: None,
    });
    r.done("wave-1:customers").done("wave-1:vendors");
    r.at_min(34.0).intent("wave-1:gate", 1);
    r.ev(Event::GateEvaluated {
        step: "wave-1:gate".into(),
        wave: Some("wave-1".into()),
        passed: false,
        failures: vec![GateFailure {
            map: "vendors".into(),
            company: Some("USMF".into()),
            source: 300,
            target: 290,
            allowed: 0,
            errors: 1,
        }],
    });
    let msg = r.leak("vendors drift 10 rows beyond tolerance");
    r.ev(Event::Alert {
        severity: Severity::Warning,
        message: msg,
        map: Some("vendors".into()),
        subject: None,
    });
    r.ask(
        "wave-1:gate",
        DecisionKind::GateFailure,
        "Gate wave-1 failed: retry, waive or abort",
    );
    r.at_min(50.0).ev(Event::RunResumed {
        operator: "bob".into(),
        host: "jumpbox".into(),
        accepted_changed_runbook: false,
    });
    r.at_min(52.0).decide(
        "wave-1:gate",
        OperatorAction::Waive,
        "bob",
        "10 blocked vendors, waived by finance (ticket FIN-42)",
    );
    r.at_min(53.0)
        .intent("wave-2:products", 1)
        .parity("products", None, 2000, 0);
    r.at_min(70.0)
        .parity("products", None, 2000, 1999)
        .done("wave-2:products");
    r.at_min(71.0).intent("wave-2:gate", 1);
    r.ev(Event::GateEvaluated {
        step: "wave-2:gate".into(),
        wave: Some("wave-2".into()),
        passed: true,
        failures: vec![],
    });
    r.at_min(72.0).intent("validate.sample", 1);
    let failure = r.leak("3 of 100 records differ");
    r.at_min(74.0).ev(Event::StepFinished {
        step: "validate.sample".into(),
        outcome: StepOutcome::Failed {
            message: failure,
            reason: None,
        },
        outputs: BTreeMap::new(),
    });
    r.ask(
        "validate.sample",
        DecisionKind::StepFailed,
        "validate.sample failed: retry, skip or abort",
    );
    r.at_min(80.0).decide(
        "validate.sample",
        OperatorAction::Retry,
        "carol",
        "cache was stale; retry",
    );
    r.intent("validate.sample", 2)
        .at_min(82.0)
        .done("validate.sample");
    r.at_min(83.0).intent("golive.approve", 1);
    r.ask(
        "golive.approve",
        DecisionKind::PointOfNoReturn,
        "Go live? This cannot be undone",
    );
    r.at_min(90.0).decide(
        "golive.approve",
        OperatorAction::Confirm,
        "alice",
        "all gates green or waived",
    );
    r.done("golive.approve");
    r.at_min(91.0).ev(Event::RunFinished {
        outcome: RunOutcome::Succeeded,
    });
    let written = std::mem::take(&mut r.written);
    drop(r);
    j.close().unwrap();
    (path, written)
}

/// Open for tampering the way an attacker would: drop the append-only triggers first.
pub fn tamper(path: &Path, sql: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch("PRAGMA foreign_keys=OFF; DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;")
        .unwrap();
    c.execute_batch(sql).unwrap();
}

/// Run the binary; returns (exit code, stdout, stderr).
pub fn cutover(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
