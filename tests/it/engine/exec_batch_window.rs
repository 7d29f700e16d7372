//! `dualwrite.batch_window` against the simulator's gateway: the maps are paused once, the operator's
//! confirmation waits while the pause's age is watched (alerts as it nears dual-write's 1-day limit and past the
//! planned window), the package is imported once, the maps are resumed once; a refusal while paused resumes
//! them; a resumed run carries on from the journaled phase without pausing, asking or importing again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover::connectors::dual_write::{GatewayClient, MapAction};
use cutover::engine::ctx::{Ask, AskFuture, Decision, Operator};
use cutover::engine::event::{Event, Handle, OperatorAction, StepOutcome};
use cutover::engine::exec::{self, Mode, StepResult};
use cutover::journal::JournalReader;
use exec_support::{Harness, assert_ok, environments, failure, start};
use tokio_util::sync::CancellationToken;

/// Ten simulated hours per real second: a day of pause is 2.4 real seconds.
const SCENARIO: &str = r#"
name: batch-window
seed: 5
time_scale: 36000
companies: [USMF]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 1, fields: { Name: name } }
    CustomersV3: { key: CustomerAccount, rows: { USMF: 40 }, fields: { OrganizationName: name } }
    VendorsV2: { key: VendorAccountNumber, rows: { USMF: 10 } }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
    msdyn_vendors: { key: msdyn_vendoraccountnumber }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: customers
    source: CustomersV3
    target: accounts
    depends_on: [companies]
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name }
    initial: { status: running, preloaded: true }
  - { name: vendors, source: VendorsV2, target: msdyn_vendors, depends_on: [companies], initial: { status: stopped, preloaded: true } }
live_writes:
  - { side: fno, entity: CustomersV3, burst: 0, creates_per_hour: 0, updates_per_hour: 60, start: 0s }
"#;

fn runbook() -> String {
    format!(
        r#"runbook: batch-window
version: 1.0.0
{}
defaults: {{ poll: 10m }}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies" }}
  customers: {{ source: "fno:CustomersV3", target: "dataverse:accounts", key: {{ source: CustomerAccount, target: accountnumber }} }}
  vendors: {{ source: "fno:VendorsV2", target: "dataverse:msdyn_vendors" }}
phases:
  - id: p
    steps:
      - id: prices
        kind: dualwrite.batch_window
        maps: [customers]
        max_window: 1h
        instructions: Run the customer price-group batch job in USMF.
        checklist: [batch job ended]
        import: {{ env: fno, definition_group: CutoverReferenceData, package_file: packages/reference-data.zip }}
      - {{ id: plain, kind: dualwrite.batch_window, maps: [customers], max_window: 2h }}
      - {{ id: both, kind: dualwrite.batch_window, maps: [customers, vendors], max_window: 2h }}
"#,
        environments(false)
    )
}

/// An operator who answers once a journaled alert ends with `wait_for` (or at once when `None`), noting the
/// customers map's state and queue at that moment.
struct Watcher {
    journal: std::path::PathBuf,
    run: cutover::engine::RunId,
    wait_for: Option<&'static str>,
    answer: OperatorAction,
    sim: String,
    seen: Mutex<Vec<(String, serde_json::Value)>>,
    asks: Mutex<u32>,
}

impl Watcher {
    fn alerts(&self) -> Vec<String> {
        let r = JournalReader::open_read_only(&self.journal).unwrap();
        r.events(&self.run)
            .filter_map(|e| match e.unwrap().event {
                Event::Alert { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }
}

impl Operator for Watcher {
    fn ask(&self, ask: Ask) -> AskFuture<'_> {
        Box::pin(async move {
            *self.asks.lock().unwrap() += 1;
            if let Some(tag) = self.wait_for {
                let deadline = Instant::now() + Duration::from_secs(60);
                while !self.alerts().iter().any(|m| m.ends_with(tag)) {
                    assert!(Instant::now() < deadline, "no alert {tag} came");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let state: serde_json::Value = reqwest::get(format!("{}/_sim/state", self.sim))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            self.seen
                .lock()
                .unwrap()
                .push((ask.prompt.clone(), state["maps"]["customers"].clone()));
            Ok(Decision {
                action: self.answer,
                operator: "tess".into(),
                reason: Some("test".into()),
                checklist_done: ask.checklist.clone(),
                identity: None,
            })
        })
    }
}

fn watcher(h: &Harness, wait_for: Option<&'static str>, answer: OperatorAction) -> Arc<Watcher> {
    Arc::new(Watcher {
        journal: h.journal_path.clone(),
        run: h.run_id.clone(),
        wait_for,
        answer,
        sim: h.sim.url(),
        seen: Mutex::new(Vec::new()),
        asks: Mutex::new(0),
    })
}

/// As `Harness::run_mode`, with `op` answering the step's questions.
async fn run_with(h: &Harness, step: &str, mode: Mode, op: Arc<Watcher>) -> StepResult {
    let mut ctx = h.ctx(step, 1).await;
    ctx.operator = op;
    let handle = match mode {
        Mode::Fresh => {
            let hd = exec::handle_for(&ctx.step, &h.run_id, 1);
            h.emit
                .durable(Event::StepIntent {
                    step: ctx.step.id.clone(),
                    attempt: 1,
                    handle: hd.clone(),
                })
                .await
                .unwrap();
            hd
        }
        Mode::Reconcile => h.state().await.step(step).and_then(|s| s.handle.clone()),
    };
    let r = exec::execute(&ctx, handle.as_ref(), mode).await;
    h.emit
        .durable(Event::StepFinished {
            step: ctx.step.id.clone(),
            outcome: r.outcome.clone(),
            outputs: r.outputs.clone(),
        })
        .await
        .unwrap();
    r
}

async fn phases(h: &Harness, step: &str) -> Vec<(String, bool)> {
    h.events()
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::BatchWindow {
                step: s,
                phase,
                by_abort,
                ..
            } if s.as_str() == step => Some((phase, by_abort)),
            _ => None,
        })
        .collect()
}

fn import_id(h: &Harness, step: &str) -> String {
    exec::derive_id(&exec::uuid_like(&h.run_id, step, 1), "import")
}

#[tokio::test]
async fn a_window_pauses_waits_imports_and_resumes_once_with_alerts_as_the_pause_nears_a_day() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let op = watcher(&h, Some("[pause_limit_near]"), OperatorAction::Approve);
    let r = run_with(&h, "prices", Mode::Fresh, op.clone()).await;
    assert_ok(&r);

    // While the operator had the question the map was paused and queuing the live updates.
    let seen = op.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (prompt, map) = &seen[0];
    assert!(
        prompt.contains("Run the customer price-group batch job") && prompt.contains("at most 1 day"),
        "{prompt}"
    );
    assert_eq!(map["statusName"], "Paused", "{map}");
    assert!(map["queued"].as_u64().unwrap() > 0, "{map}");

    assert_eq!(h.effect("dualwrite.pause:customers"), 1);
    assert_eq!(h.effect("dualwrite.resume:customers"), 1);
    assert_eq!(h.effect("dualwrite.pause:companies"), 0, "only the named maps");
    assert_eq!(h.effect(&format!("dmf.import:{}", import_id(&h, "prices"))), 1);
    assert_eq!(h.map_state("customers")["statusName"], "Running");
    assert_eq!(
        phases(&h, "prices").await,
        [
            ("paused".to_owned(), false),
            ("confirmed".to_owned(), false),
            ("resumed".to_owned(), false)
        ]
    );
    let alerts = op.alerts();
    let count = |tag: &str| alerts.iter().filter(|m| m.ends_with(tag)).count();
    assert_eq!(count("[window_overrun]"), 1, "{alerts:?}");
    assert_eq!(count("[pause_limit_near]"), 1, "{alerts:?}");
    assert!(
        alerts
            .iter()
            .any(|m| m.starts_with("prices: the maps have been paused for") && m.contains("80%")),
        "{alerts:?}"
    );
    let st = h.state().await;
    let w = &st.batch_windows["prices"];
    assert!(!w.open() && w.paused_at.is_some() && !w.resumed_by_abort, "{w:?}");
}

#[tokio::test]
async fn a_refusal_while_paused_resumes_the_maps_and_fails_the_step() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let op = watcher(&h, None, OperatorAction::Abort);
    let msg = failure(&run_with(&h, "plain", Mode::Fresh, op).await);
    assert!(msg.contains("tess answered Abort"), "{msg}");
    assert_eq!(h.effect("dualwrite.pause:customers"), 1);
    assert_eq!(
        h.effect("dualwrite.resume:customers"),
        1,
        "resumed before failing"
    );
    assert_eq!(h.map_state("customers")["statusName"], "Running");
    assert_eq!(
        phases(&h, "plain").await,
        [("paused".to_owned(), false), ("resumed".to_owned(), false)]
    );
    // Headless refuses a question and leaves the attempt open for the next process: its window was closed
    // without the batch job, so reconciling it opens a new one (paused again, asked again), never "done".
    let op = watcher(&h, None, OperatorAction::Approve);
    assert_ok(&run_with(&h, "plain", Mode::Reconcile, op.clone()).await);
    assert_eq!(*op.asks.lock().unwrap(), 1);
    assert_eq!(h.effect("dualwrite.pause:customers"), 2);
    assert_eq!(h.effect("dualwrite.resume:customers"), 2);
}

/// Journals what a process killed inside the window had journaled: the step's intent, the pause sent (as the
/// step sends it), and the window's phases up to `upto`.
async fn killed_after(h: &Harness, step: &str, upto: &[&str]) {
    let ctx = h.ctx(step, 1).await;
    let handle: Handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 1,
            handle: Some(handle),
        })
        .await
        .unwrap();
    let gw = GatewayClient::new(h.envs.transport("dualwrite").unwrap());
    let cancel = CancellationToken::new();
    let map = gw.find_map("CustomersV3", "accounts", &cancel).await.unwrap();
    let id = gw.send_action(&map, MapAction::Pause, &cancel).await.unwrap();
    gw.wait_request(
        &id,
        cutover::connectors::dmf::Poll {
            every: Duration::from_millis(10),
            timeout: Duration::from_secs(60),
        },
        &cancel,
    )
    .await
    .unwrap();
    for phase in upto {
        h.emit
            .durable(Event::BatchWindow {
                step: ctx.step.id.clone(),
                phase: (*phase).to_owned(),
                maps: vec!["customers".into()],
                paused_at: (*phase == "paused").then(chrono::Utc::now),
                by_abort: false,
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_resumed_window_carries_on_from_its_journaled_phase() {
    // Killed after the operator confirmed: resume neither pauses nor asks again; it imports and resumes.
    let h = start(Some(SCENARIO), &runbook()).await;
    killed_after(&h, "prices", &["paused", "confirmed"]).await;
    let op = watcher(&h, None, OperatorAction::Approve);
    assert_ok(&run_with(&h, "prices", Mode::Reconcile, op.clone()).await);
    assert_eq!(*op.asks.lock().unwrap(), 0, "the confirmation is journaled");
    assert_eq!(h.effect("dualwrite.pause:customers"), 1);
    assert_eq!(h.effect("dualwrite.resume:customers"), 1);
    assert_eq!(h.effect(&format!("dmf.import:{}", import_id(&h, "prices"))), 1);
    // Run again as if killed once more before the step's end was journaled: nothing is sent twice.
    assert_ok(&run_with(&h, "prices", Mode::Reconcile, op.clone()).await);
    assert_eq!(h.effect("dualwrite.resume:customers"), 1);
    assert_eq!(h.effect(&format!("dmf.import:{}", import_id(&h, "prices"))), 1);

    // Killed while the operator had the question: asked again, not paused again.
    let h = start(Some(SCENARIO), &runbook()).await;
    killed_after(&h, "plain", &["paused"]).await;
    let op = watcher(&h, None, OperatorAction::Approve);
    let r = run_with(&h, "plain", Mode::Reconcile, op.clone()).await;
    assert_eq!(r.outcome, StepOutcome::Succeeded, "{:?}", r.outcome);
    assert_eq!(*op.asks.lock().unwrap(), 1);
    assert_eq!(h.effect("dualwrite.pause:customers"), 1);
    assert_eq!(h.effect("dualwrite.resume:customers"), 1);
}

#[tokio::test]
async fn a_map_that_cannot_be_paused_resumes_the_ones_paused_before_it() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let op = watcher(&h, None, OperatorAction::Approve);
    let msg = failure(&run_with(&h, "both", Mode::Fresh, op.clone()).await);
    assert_eq!(*op.asks.lock().unwrap(), 0, "no window, no question: {msg}");
    assert!(
        msg.contains("409") || msg.to_lowercase().contains("transition"),
        "{msg}"
    );
    assert_eq!(h.effect("dualwrite.pause:customers"), 1);
    assert_eq!(h.effect("dualwrite.resume:customers"), 1, "{msg}");
    assert_eq!(h.effect("dualwrite.pause:vendors"), 0, "{msg}");
    assert_eq!(h.map_state("customers")["statusName"], "Running");
    assert_eq!(phases(&h, "both").await, [("resumed".to_owned(), false)]);
}
