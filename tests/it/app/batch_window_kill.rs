//! A batch window's maps do not stay paused because the console died: the real binary pauses the map, the
//! operator confirms (headless auto-approval), the package's import runs, and the process is killed with
//! SIGKILL while the map is paused; the run is resumed (the import is polled, not submitted again) and then
//! aborted, and the abort resumes the map. The simulator shows one pause, one resume, one import; the report
//! names the window and that the abort resumed it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, RunOutcome};
use cutover::journal::JournalReader;

use crate::support::sim as sim_support;

const SECRET: &str = "batch-window-test-secret-value";

/// The import takes ten simulated hours: a minute of real time, long enough to be killed inside.
const SCENARIO: &str = r#"
name: batch-window-kill
seed: 9
time_scale: 600
companies: [USMF]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 1, fields: { Name: name } }
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30 }, fields: { OrganizationName: name } }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: customers
    source: CustomersV3
    target: accounts
    depends_on: [companies]
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name }
    initial: { status: running, preloaded: true }
dmf:
  definition_groups:
    CutoverReferenceData:
      job: { queued: 0s, duration: 10h, outcome: Succeeded }
"#;

const RUNBOOK: &str = r#"runbook: batch-window-kill
version: 1.0.0
defaults: { poll: 30s }
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: 00000000-0000-0000-0000-00000000demo, client_id: 00000000-0000-0000-0000-0000000fno01, client_secret: "${DEMO_CLIENT_SECRET}" }
  dataverse:
    kind: dataverse
    url: https://contoso-demo.crm.dynamics.com
    auth: { tenant: 00000000-0000-0000-0000-00000000demo, client_id: 00000000-0000-0000-0000-00000000dv01, client_secret: "${DEMO_CLIENT_SECRET}" }
  dualwrite:
    kind: dualwrite
    link: [fno, dataverse]
    mode: gateway
    url: https://contoso-demo.dualwrite.dynamics.com
    auth: { tenant: 00000000-0000-0000-0000-00000000demo, client_id: 00000000-0000-0000-0000-00000000dw01, client_secret: "${DEMO_CLIENT_SECRET}" }
maps:
  customers: { source: "fno:CustomersV3", target: "dataverse:accounts", owner: fno }
phases:
  - id: p
    steps:
      - id: prices
        kind: dualwrite.batch_window
        maps: [customers]
        max_window: 12h
        import: { env: fno, definition_group: CutoverReferenceData, package_file: packages/reference-data.zip }
"#;

fn phases(journal: &Path) -> Vec<(String, bool)> {
    let Ok(r) = JournalReader::open_read_only(journal) else {
        return Vec::new();
    };
    let Some(run) = r.runs().ok().and_then(|v| v.last().cloned()) else {
        return Vec::new();
    };
    r.events(&run.run_id)
        .filter_map(Result::ok)
        .filter_map(|e| match e.event {
            Event::BatchWindow { phase, by_abort, .. } => Some((phase, by_abort)),
            _ => None,
        })
        .collect()
}

fn effects(sim: &cutover::sim::SimHandle, prefix: &str) -> u64 {
    sim.state()["side_effects"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_inside_a_batch_window_then_resume_then_abort_resumes_the_map_once() {
    let sim = sim_support::start_sim_yaml(SCENARIO).await;
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
    let runbook = dir.path().join("runbook.yaml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    let journal = dir.path().join("run.journal");
    let url = sim.url();
    let (rb, jr) = (runbook.clone(), journal.clone());
    let mut child = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cutover"))
            .arg("run")
            .arg(&rb)
            .arg("--journal")
            .arg(&jr)
            .args([
                "--headless",
                "--auto-approve",
                "--operator",
                "tester",
                "--sim-url",
                &url,
            ])
            .env("DEMO_CLIENT_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    })
    .await
    .unwrap();
    // Confirmed, and the import submitted: the map is paused and the console busy.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(phases(&journal).iter().any(|(p, _)| p == "confirmed") && effects(&sim, "dmf.import:") == 1) {
        assert!(Instant::now() < deadline, "the window never got to its import");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(sim.state()["maps"]["customers"]["statusName"], "Paused");

    let end = crate::support::engine::resume_and_abort(
        &journal,
        sim.url(),
        SECRET,
        "test: abort inside the batch window",
    )
    .await;
    assert!(
        matches!(end, RunEnd::Finished(RunOutcome::Aborted { .. })),
        "{end:?}"
    );

    // The map is live again (CatchUp plays the queue back, then Running).
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.state()["maps"]["customers"]["statusName"] != "Running" {
        assert!(Instant::now() < deadline, "{}", sim.state()["maps"]["customers"]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.state()["side_effects"]["dualwrite.pause:customers"], 1);
    assert_eq!(sim.state()["side_effects"]["dualwrite.resume:customers"], 1);
    assert_eq!(
        effects(&sim, "dmf.import:"),
        1,
        "the import was polled, not sent again"
    );
    assert_eq!(
        phases(&journal),
        [
            ("paused".to_owned(), false),
            ("confirmed".to_owned(), false),
            ("resumed".to_owned(), true)
        ]
    );
    let r = JournalReader::open_read_only(&journal).unwrap();
    assert!(r.verify().unwrap().is_ok());

    // The report names the window, what resumed it and how long the map was paused.
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("report")
        .arg(&journal)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &r["batch_windows"][0];
    assert_eq!(w["step"], "prices", "{w}");
    assert_eq!(w["maps"], serde_json::json!(["customers"]), "{w}");
    assert_eq!(w["resumed_by"], "abort", "{w}");
    assert_eq!(w["confirmed"], true, "{w}");
    assert!(w["paused_for"].as_str().is_some_and(|s| !s.is_empty()), "{w}");
    let md = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("report")
        .arg(&journal)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("Maps paused for batch jobs") && md.contains("abort"),
        "{md}"
    );
}
