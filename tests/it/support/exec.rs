//! Shared by the `exec_*` tests: a simulator on loopback, a runbook built in the test, a real journal in a
//! tempdir, `Envs::build` with `Target::Sim`, and a `StepCtx` with a test operator that approves and records
//! every question. Steps run like the scheduler runs them: intent journaled durably, execute, result journaled.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cutover::engine::ctx::{Ask, AskFuture, Clock, Decision, Emitter, LiveState, Operator, StepCtx};
use cutover::engine::envs::{Envs, Target};
use cutover::engine::event::{MapInfo, OperatorAction, PlannedStepInfo, RunbookInfo, Tolerance};
use cutover::engine::exec::{self, Mode, StepResult};
use cutover::engine::{Envelope, Event, RunId, RunState};
use cutover::journal::{Journal, JournalReader, Redactor};
use cutover::runbook::Runbook;
use cutover::runbook::plan::{Plan, plan};
use cutover::sim::SimHandle;
use tokio_util::sync::CancellationToken;

/// The client secret every test environment uses (long enough for the redactor).
pub const SECRET: &str = "s3cr3t-client-value-0123456789";

pub const FNO: &str = "https://contoso-demo.operations.dynamics.com";
pub const DV: &str = "https://contoso-demo.crm.dynamics.com";
pub const DW: &str = "https://contoso-demo.dualwrite.dynamics.com";

/// The environments block of a test runbook (gateway mode unless `operator`).
pub fn environments(operator: bool) -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        "environments:\n  fno: {{ kind: fno, url: {FNO}, {auth} }}\n  dataverse: {{ kind: dataverse, url: {DV}, {auth} }}\n  dualwrite: {{ kind: dualwrite, link: [fno, dataverse], mode: {}, url: {DW}, {auth} }}\n",
        if operator { "operator" } else { "gateway" }
    )
}

/// Called with every question the operator gets.
pub type AskHook = Box<dyn Fn(&Ask) + Send + Sync>;

/// An operator that answers from a queue (Approve with the whole checklist when empty) and records asks.
#[derive(Default)]
pub struct TestOperator {
    pub asks: Mutex<Vec<Ask>>,
    pub answers: Mutex<VecDeque<OperatorAction>>,
    /// Called on every ask (e.g. to do what an operator-mode instruction says).
    pub on_ask: Mutex<Option<AskHook>>,
    /// How long the operator takes to answer.
    pub delay: Mutex<Option<std::time::Duration>>,
}

impl Operator for TestOperator {
    fn ask(&self, ask: Ask) -> AskFuture<'_> {
        Box::pin(async move {
            if let Some(f) = self.on_ask.lock().unwrap().as_ref() {
                f(&ask);
            }
            let delay = *self.delay.lock().unwrap();
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let action = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(OperatorAction::Approve);
            let checklist_done = ask.checklist.clone();
            self.asks.lock().unwrap().push(ask);
            Ok(Decision {
                action,
                operator: "tess".into(),
                reason: Some("test".into()),
                checklist_done,
                identity: None,
            })
        })
    }
}

pub struct Harness {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub journal_path: PathBuf,
    pub journal: Journal,
    pub emit: Emitter,
    pub envs: Arc<Envs>,
    pub runbook: Arc<Runbook>,
    pub plan: Plan,
    pub run_id: RunId,
    pub operator: Arc<TestOperator>,
    pub clock: Clock,
}

/// Starts `scenario` (YAML, or the demo when `None`) and builds the run of `runbook` (YAML).
pub async fn start(scenario: Option<&str>, runbook: &str) -> Harness {
    start_with(scenario, runbook, &[], false).await
}

/// [`start`] with more `${VAR}`s (`extra`), and with `live` the environments built for their own URLs
/// (`Target::Live`, real time) instead of the simulator's: for a test against another local service (Azurite).
pub async fn start_with(
    scenario: Option<&str>,
    runbook: &str,
    extra: &[(&str, &str)],
    live: bool,
) -> Harness {
    let scenario = match scenario {
        Some(y) => cutover::sim::Scenario::from_yaml(y).expect("scenario"),
        None => cutover::sim::Scenario::demo(),
    };
    let sim = cutover::sim::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sim");
    let loaded = cutover::runbook::load(runbook, "test.yaml");
    let rb = loaded
        .runbook
        .unwrap_or_else(|| panic!("runbook: {:?}", loaded.diagnostics));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("packages")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/runbooks/packages/reference-data.zip"
        ),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let journal_path = dir.path().join("run.journal");
    let redactor = Redactor::new();
    let journal = Journal::create(&journal_path, redactor.clone()).unwrap();
    let run_id = RunId("run-0001".into());
    let emit = Emitter::new(journal.writer(), run_id.clone());
    let p = plan(&rb);
    emit.durable(run_started(&rb, &p, runbook, &run_id))
        .await
        .unwrap();
    let vars = |n: &str| match n {
        "TEST_SECRET" => Some(SECRET.to_owned()),
        "HOOK_URL" => Some(format!("{}/_sim/webhook", sim.url())),
        "SIM_URL" => Some(sim.url()),
        _ => extra.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()),
    };
    let target = if live {
        Target::Live
    } else {
        Target::Sim { url: sim.url() }
    };
    let envs = Envs::build(&rb, &vars, &target, &redactor, &emit).expect("envs");
    let clock = if live {
        Clock::real()
    } else {
        Clock::scaled(sim.time_scale())
    };
    Harness {
        sim,
        dir,
        journal_path,
        journal,
        emit,
        envs: Arc::new(envs),
        runbook: Arc::new(rb),
        plan: p,
        run_id,
        operator: Arc::new(TestOperator::default()),
        clock,
    }
}

fn run_started(rb: &Runbook, p: &Plan, text: &str, run_id: &RunId) -> Event {
    Event::RunStarted {
        run_id: run_id.clone(),
        runbook: RunbookInfo {
            name: rb.runbook.clone(),
            version: rb.version.clone(),
            sha256: cutover::journal::chain::sha256_hex(text),
            text: text.to_owned(),
        },
        operator: "tess".into(),
        host: "test".into(),
        started_at: chrono::Utc::now(),
        freeze_window: None,
        steps: p
            .steps
            .iter()
            .map(|s| PlannedStepInfo {
                id: s.id.clone(),
                phase: s.phase.clone(),
                wave: s.wave.clone(),
                kind: s.kind.into(),
                title: s.title.clone().unwrap_or_default().into(),
                needs: s.needs.clone(),
                point_of_no_return: s.point_of_no_return,
                confirm: false,
                map: None,
                estimate_ms: None,
                estimate_from: None,
            })
            .map(std::sync::Arc::new)
            .collect(),
        maps: rb
            .maps
            .iter()
            .map(|(id, m)| MapInfo {
                id: id.as_str().to_owned(),
                companies: m.companies.clone(),
                tolerance: Tolerance::Count(0),
            })
            .collect(),
        time_scale: 1.0,
    }
}

impl Harness {
    /// The state rebuilt from the journal (what a resumed process sees).
    pub async fn state(&self) -> RunState {
        self.emit.writer().flush().await.unwrap();
        let r = JournalReader::open_read_only(&self.journal_path).unwrap();
        r.state_at(&self.run_id, None).unwrap()
    }

    pub async fn ctx(&self, step: &str, attempt: u32) -> StepCtx {
        let planned = self
            .plan
            .steps
            .iter()
            .find(|s| s.id.as_str() == step)
            .unwrap_or_else(|| panic!("no planned step {step}"))
            .clone();
        StepCtx {
            run_id: self.run_id.clone(),
            run_date: "2026-11-27".into(),
            run_operator: "tess".into(),
            step: planned,
            runbook: self.runbook.clone(),
            runbook_dir: self.dir.path().to_path_buf(),
            work_dir: self.dir.path().to_path_buf(),
            envs: self.envs.clone(),
            emit: self.emit.clone(),
            clock: self.clock,
            cancel: CancellationToken::new(),
            attempt,
            operator: self.operator.clone(),
            state: Arc::new(LiveState::fixed(self.state().await)),
        }
    }

    /// Journals the intent, executes, journals the result (as the scheduler does).
    pub async fn run_mode(&self, step: &str, attempt: u32, mode: Mode) -> StepResult {
        let ctx = self.ctx(step, attempt).await;
        let handle = match mode {
            Mode::Fresh => {
                let h = exec::handle_for(&ctx.step, &self.run_id, attempt);
                self.emit
                    .durable(Event::StepIntent {
                        step: ctx.step.id.clone(),
                        attempt,
                        handle: h.clone(),
                    })
                    .await
                    .unwrap();
                h
            }
            Mode::Reconcile => self.state().await.step(step).and_then(|s| s.handle.clone()),
        };
        let r = exec::execute(&ctx, handle.as_ref(), mode).await;
        self.emit
            .durable(Event::StepFinished {
                step: ctx.step.id.clone(),
                outcome: r.outcome.clone(),
                outputs: r.outputs.clone(),
            })
            .await
            .unwrap();
        r
    }

    pub async fn run(&self, step: &str) -> StepResult {
        self.run_mode(step, 1, Mode::Fresh).await
    }

    /// Every event of the run, in journal order.
    pub async fn events(&self) -> Vec<Envelope> {
        self.emit.writer().flush().await.unwrap();
        let r = JournalReader::open_read_only(&self.journal_path).unwrap();
        r.events(&self.run_id).map(|e| e.unwrap()).collect()
    }

    /// `/_sim/state`'s side-effect counter (0 when absent).
    pub fn effect(&self, name: &str) -> u64 {
        self.sim.state()["side_effects"][name].as_u64().unwrap_or(0)
    }

    pub fn map_state(&self, map: &str) -> serde_json::Value {
        self.sim.state()["maps"][map].clone()
    }
}

/// Asserts success with the failure message shown.
pub fn assert_ok(r: &StepResult) {
    assert_eq!(
        r.outcome,
        cutover::engine::event::StepOutcome::Succeeded,
        "{:?}",
        r.outcome
    );
}

/// The failure message (panics when the step did not fail).
pub fn failure(r: &StepResult) -> String {
    match &r.outcome {
        cutover::engine::event::StepOutcome::Failed { message, .. } => message.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The service's reason journaled with a failure (panics when the step did not fail).
pub fn reason(r: &StepResult) -> Option<String> {
    match &r.outcome {
        cutover::engine::event::StepOutcome::Failed { reason, .. } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}
