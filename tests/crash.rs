//! Crash test: the real binary, killed with SIGKILL at 50+ points spread over a run, resumed each
//! time, must finish with every side effect done exactly once according to the simulator, and with
//! the journal's chain intact.
//!
//! The simulator lives in this test process (so it keeps its state across the console's deaths);
//! each console runs `cutover run RUNBOOK --headless --sim-url URL --auto-approve --take-over`.
//! Kill points: after the K-th committed event, K = (last event id before the start) + a gap from a
//! fixed cycle of 1..19 events, so kills land right after a resume, at step boundaries and inside
//! long operations (DMF jobs, initial syncs, the gate's re-checks). The runbook is a shortened demo
//! (DMF export and import, two waves with the vendors initial-sync failure and the customers drift,
//! live sync, a canary) to keep the wall time reasonable on 2 cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::journal::JournalReader;

const RUNBOOK: &str = r#"
runbook: crash-demo
version: 1.0.0
defaults: { timeout: 30m, retries: 3, poll: 10s, concurrency: 4 }
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
  companies: { source: fno:Companies, target: dataverse:cdm_companies, master: fno }
  currencies: { source: fno:Currencies, target: dataverse:transactioncurrencies, master: fno }
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    depends_on: [companies, currencies]
    companies: [USMF, USRT, DEMF]
    master: fno
    tolerance: 0
    key: { source: CustomerAccount, target: accountnumber }
  vendors:
    source: fno:VendorsV2
    target: dataverse:msdyn_vendors
    depends_on: [companies, currencies]
    companies: [USMF, USRT, DEMF]
    master: fno
phases:
  - id: snapshot
    steps:
      - id: export-snapshot
        kind: dmf.export
        env: fno
        definition_group: CutoverSnapshot
        package: Snapshot-${run.date}
      - id: import-reference-data
        kind: dmf.import
        env: fno
        definition_group: CutoverReferenceData
        package_file: packages/reference-data.zip
        package_version: 1.0.0
        legal_entity: USMF
        overwrite: true
  - id: initial-sync
    gate: { parity: true, max_errors: 0, retries: 1, retry_every: 30s }
    waves:
      - id: wave-1
        maps: [companies, currencies]
      - id: wave-2
        maps: [customers, vendors]
        concurrency: 2
  - id: delta
    steps:
      - id: enable-live-sync
        kind: dualwrite.run
        maps: [companies, currencies, customers, vendors]
        initial_sync: false
      - id: canary-customer
        kind: roundtrip
        map: customers
        from: fno
        within: 2m
"#;

const GAPS: [i64; 10] = [1, 2, 3, 5, 8, 13, 19, 4, 7, 11];
const MIN_KILLS: usize = 50;
/// Past this many kills the console is left to finish (bounds the wall time).
const MAX_KILLS: usize = 150;

fn last_event_id(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    match JournalReader::open_read_only(path) {
        Ok(r) => r
            .connection()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| row.get(0))
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[test]
fn sigkill_at_fifty_points_then_resume_does_everything_exactly_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(cutover::sim::start(
            cutover::sim::Scenario::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("packages")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/packages/reference-data.zip"),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let runbook = dir.path().join("crash.yaml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    let journal = dir.path().join("crash.journal");
    let stderr_path = dir.path().join("stderr.txt");

    let started = Instant::now();
    let mut kills: Vec<i64> = Vec::new();
    let mut finished = false;
    for attempt in 0..(MAX_KILLS + 10) {
        assert!(
            started.elapsed() < Duration::from_secs(480),
            "took too long; kills so far: {}",
            kills.len()
        );
        let before = last_event_id(&journal);
        let kill_at = if kills.len() < MAX_KILLS {
            Some(before + GAPS[attempt % GAPS.len()])
        } else {
            None
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
            .args([
                "run",
                runbook.to_str().unwrap(),
                "--headless",
                "--auto-approve",
                "--take-over",
            ])
            .args(["--operator", "crash-test", "--sim-url", &sim.url()])
            .arg("--journal")
            .arg(&journal)
            .env("DEMO_CLIENT_SECRET", "crash-test-secret-value")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if let Some(k) = kill_at
                && last_event_id(&journal) >= k
            {
                child.kill().unwrap();
                child.wait().unwrap();
                kills.push(k);
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if let Some(st) = status {
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            assert_eq!(st.code(), Some(0), "console exited with {st:?}: {err}");
            finished = true;
            break;
        }
    }
    assert!(finished, "the run never finished");
    let distinct: std::collections::BTreeSet<i64> = kills.iter().copied().collect();
    assert!(
        distinct.len() >= MIN_KILLS,
        "only {} distinct kill points before the run finished",
        distinct.len()
    );
    eprintln!(
        "crash test: {} kills at {} distinct event ids (first {:?}, last {:?}) of {} events, wall time {:.1}s",
        kills.len(),
        distinct.len(),
        kills.first(),
        kills.last(),
        last_event_id(&journal),
        started.elapsed().as_secs_f64()
    );

    // Every side effect exactly once.
    let state = sim.state();
    let effects = state["side_effects"].as_object().unwrap();
    let count = |prefix: &str| -> Vec<(String, u64)> {
        effects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    };
    for prefix in [
        "dmf.import:",
        "dmf.export:",
        "dualwrite.initial_sync:",
        "canary.create:",
    ] {
        let found = count(prefix);
        assert!(!found.is_empty(), "no {prefix} side effect at all: {effects:?}");
        for (k, n) in &found {
            assert_eq!(*n, 1, "{k} ran {n} times");
        }
    }
    assert_eq!(count("dmf.import:").len(), 1, "one import, one execution id");
    assert_eq!(count("dmf.export:").len(), 1, "one export, one execution id");
    assert_eq!(count("canary.create:").len(), 1, "one canary");
    assert_eq!(
        count("dualwrite.initial_sync:").len(),
        4,
        "four maps synced once each"
    );

    // The journal: chain intact, one run, finished, every step done.
    let reader = JournalReader::open_read_only(&journal).unwrap();
    let verified = reader.verify().unwrap();
    assert!(verified.is_ok(), "{verified:?}");
    let runs = reader.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert!(matches!(
        runs[0].outcome,
        Some(cutover::engine::event::RunOutcome::Succeeded)
    ));
    let st = reader.state_at(&runs[0].run_id, None).unwrap();
    for s in &st.steps {
        assert!(s.status.is_done(), "{} is {:?}", s.info.id, s.status);
    }
    assert!(st.header.resumes as usize >= MIN_KILLS);
    assert!(
        st.header.lease_takeovers as usize >= MIN_KILLS,
        "every take-over is journaled"
    );
    drop(sim);
}
