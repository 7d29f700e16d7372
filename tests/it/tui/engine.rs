//! The console against the real engine: the demo runbook on the in-process simulator, questions
//! routed to the console. Keys approve the first manual step (its checklist ticked), the decision
//! reaches the journal with the operator's name, quitting stops the engine without aborting, and a
//! second start on the same journal resumes: the console shows the approved step done and the
//! resume in its header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::driver::RunEnd;
use cutover::engine::event::{DecisionKind, Envelope};
use cutover::engine::state::StepStatus;
use cutover::engine::{EngineHandle, RunOptions, SimTarget, start_engine};
use cutover::runbook::EnvLookup;
use cutover::tui::console::forward_commands;
use cutover::tui::{App, ConsoleConfig, OperatorCommand, Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(60);

fn options(journal: &Path, sim_url: String) -> RunOptions {
    let vars: Arc<dyn EnvLookup + Send + Sync> =
        Arc::new(|name: &str| (name == "DEMO_CLIENT_SECRET").then(|| "test-secret".to_owned()));
    RunOptions {
        runbook: Some(cutover::app::materialize_demo().unwrap()),
        journal: journal.to_path_buf(),
        operator: "tester".into(),
        auto_approve: None,
        interactive: true,
        sim: SimTarget::Url(sim_url),
        accept_changed_runbook: false,
        accept_inserted_steps: Vec::new(),
        take_over: false,
        new_run: false,
        resume_only: false,
        vars,
        follow_delay: None,
    }
}

struct Console {
    /// The environment of the run; stops when the console is dropped.
    _sim: cutover::sim::SimHandle,
    app: App,
    sub: mpsc::UnboundedReceiver<Arc<Envelope>>,
    commands: mpsc::Sender<OperatorCommand>,
    handle: EngineHandle,
}

async fn open(journal: &Path) -> Console {
    // The edge starts the simulator for a run; the test does what it does.
    let sim = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (handle, initial, sub) = start_engine(options(journal, sim.url())).await.unwrap();
    let mut cfg = ConsoleConfig::new("tester");
    cfg.theme = Theme { color: false };
    let app = App::new(initial, cfg, Box::new(Utc::now));
    let (tx, rx) = mpsc::channel(16);
    forward_commands(rx, handle.commands.clone());
    Console {
        _sim: sim,
        app,
        sub,
        commands: tx,
        handle,
    }
}

impl Console {
    /// Folds envelopes until `done` holds, or fails at the deadline.
    async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let stop = tokio::time::Instant::now() + DEADLINE;
        while !done(&self.app) {
            match tokio::time::timeout_at(stop, self.sub.recv()).await {
                Ok(Some(env)) => {
                    self.app.apply(&env);
                    self.app.after_batch();
                }
                Ok(None) => panic!("subscription ended before {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    fn key(&mut self, c: KeyCode) {
        self.app.on_key(KeyEvent::new(c, KeyModifiers::NONE));
        for cmd in self.app.take_commands() {
            self.commands.try_send(cmd).unwrap();
        }
    }

    fn screen(&mut self) -> String {
        self.app.on_resize(120, 40);
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| draw(f, &self.app)).unwrap();
        let buf = t.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    async fn quit(self) -> RunEnd {
        self.handle.cancel.cancel();
        tokio::time::timeout(DEADLINE, self.handle.done)
            .await
            .unwrap()
            .unwrap()
    }
}

fn status(app: &App, id: &str) -> Option<StepStatus> {
    app.state.step(id).map(|s| s.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_in_the_console_quit_mid_run_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("demo.journal");

    let mut c = open(&journal).await;
    c.until("the first manual step's question", |a| {
        a.state.pending.iter().any(|p| {
            p.decision == DecisionKind::ApproveManual
                && p.step.as_ref().is_some_and(|s| s.as_str() == "announce-freeze")
        })
    })
    .await;
    let screen = c.screen();
    assert!(
        screen.contains("▶ WAITING ON YOU · APPROVE announce-freeze")
            || screen.contains("APPROVE announce-freeze"),
        "{screen}"
    );
    c.key(KeyCode::Char('a'));
    for k in ['1', '2', '3'] {
        c.key(KeyCode::Char(k));
    }
    let screen = c.screen();
    assert!(screen.contains("[x] Finance sign-off"), "{screen}");
    c.key(KeyCode::Enter);
    c.until("announce-freeze done", |a| {
        status(a, "announce-freeze") == Some(StepStatus::Succeeded)
    })
    .await;
    let d = c.app.state.decisions.back().unwrap();
    assert_eq!(d.operator, "tester");
    assert_eq!(d.checklist_done.len(), 3);
    // The next manual step is now waiting; quit mid-run instead of answering.
    c.until("the second manual step's question", |a| {
        a.state.pending.iter().any(|p| {
            p.step
                .as_ref()
                .is_some_and(|s| s.as_str() == "dataverse-admin-mode")
        })
    })
    .await;
    c.key(KeyCode::Char('q'));
    let end = c.quit().await;
    assert_eq!(end, RunEnd::Interrupted);

    let mut c = open(&journal).await;
    assert_eq!(
        status(&c.app, "announce-freeze"),
        Some(StepStatus::Succeeded),
        "rebuilt from the journal"
    );
    c.until("the resume", |a| a.state.header.resumes == 1).await;
    c.until("the question asked again", |a| {
        a.state.pending.iter().any(|p| {
            p.step
                .as_ref()
                .is_some_and(|s| s.as_str() == "dataverse-admin-mode")
        })
    })
    .await;
    let screen = c.screen();
    // Shown with --nocapture: the README's capture of the demo after a resume.
    println!("{screen}");
    assert!(screen.contains("resumed ×1"), "{screen}");
    assert!(screen.contains("dataverse-admin-mode"), "{screen}");
    assert_eq!(c.quit().await, RunEnd::Interrupted);
}
