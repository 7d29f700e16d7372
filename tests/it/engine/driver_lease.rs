//! One driver at a time, with the real binary: a second `resume`/`run` on a journal whose driver is
//! alive is refused (exit 4) naming holder, pid, host and heartbeat age and offering `cutover
//! watch`, and appends nothing; a SIGKILLed driver's stale lease is refused without `--take-over`
//! and taken over with it, journaled with old and new holder; a setup refused after the lease was
//! taken gives it back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover::engine::event::Event;
use cutover::journal::JournalReader;

const HOLD: &str = r#"
runbook: lease-test
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: t-lease, client_id: c-fno, client_secret: "${DEMO_CLIENT_SECRET}" }
phases:
  - id: p
    steps:
      - { id: hold, kind: wait, for: 4h }
"#;

const MANUAL: &str = r#"
runbook: lease-manual
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso-demo.operations.dynamics.com
    auth: { tenant: t-lease, client_id: c-fno, client_secret: "${DEMO_CLIENT_SECRET}" }
phases:
  - id: p
    steps:
      - { id: by-hand, kind: manual, instructions: "do it" }
"#;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.env("DEMO_CLIENT_SECRET", "lease-test-secret")
        .env("NO_COLOR", "1");
    c
}

fn run(c: &mut Command) -> (Option<i32>, String) {
    let Output { status, stderr, .. } = c.stdout(Stdio::null()).output().unwrap();
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

fn events(journal: &Path) -> Vec<Event> {
    let r = JournalReader::open_read_only(journal).unwrap();
    let mut out = Vec::new();
    for run in r.runs().unwrap() {
        out.extend(r.events(&run.run_id).map(|e| e.unwrap().event));
    }
    out
}

/// The events, or none while the file is still being created by the first driver.
fn events_so_far(journal: &Path) -> Vec<Event> {
    let Ok(r) = JournalReader::open_read_only(journal) else {
        return Vec::new();
    };
    let Ok(runs) = r.runs() else {
        return Vec::new();
    };
    runs.iter()
        .flat_map(|run| {
            r.events(&run.run_id)
                .filter_map(Result::ok)
                .map(|e| e.event)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn sim(rt: &tokio::runtime::Runtime, scale: f64) -> cutover::sim::SimHandle {
    let mut sc = cutover::sim::Scenario::demo();
    sc.time_scale = scale;
    rt.block_on(cutover::sim::start(sc, "127.0.0.1:0".parse().unwrap()))
        .unwrap()
}

#[test]
fn a_live_driver_is_refused_and_a_killed_ones_lease_is_taken_over_explicitly() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // 4 h of waiting: 24 real seconds at 600x (the first driver), 0.4 s at 36000x (the takeover).
    let slow = sim(&rt, 600.0);
    let fast = sim(&rt, 36_000.0);
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("hold.yaml");
    std::fs::write(&runbook, HOLD).unwrap();
    let journal = dir.path().join("hold.journal");
    let j = journal.to_str().unwrap();

    let mut first = bin()
        .args(["run", runbook.to_str().unwrap(), "--headless", "--auto-approve"])
        .args(["--operator", "alice", "--sim-url", &slow.url(), "--journal", j])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(journal.exists()
        && events_so_far(&journal)
            .iter()
            .any(|e| matches!(e, Event::StepIntent { step, .. } if step.as_str() == "hold")))
    {
        assert!(
            Instant::now() < deadline,
            "the first driver never started its step"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first driver exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = events(&journal).len();
    let pid = first.id();

    // A second driver, while the first is alive: refused with who holds it, and a hint to watch.
    for args in [
        vec!["resume", j, "--headless", "--auto-approve"],
        vec!["resume", j, "--headless", "--auto-approve", "--take-over"],
        vec!["run", runbook.to_str().unwrap(), "--journal", j, "--headless"],
    ] {
        let (code, err) = run(bin()
            .args(&args)
            .args(["--operator", "bob", "--sim-url", &fast.url()]));
        assert_eq!(code, Some(cutover::app::exit::BUSY), "{args:?}: {err}");
        for want in [
            "being driven by alice".to_owned(),
            format!("pid {pid} on "),
            "last heartbeat ".into(),
            " ago".into(),
            format!("run `cutover watch {j}` to follow it read-only"),
        ] {
            assert!(err.contains(&want), "{args:?}: missing {want:?} in: {err}");
        }
    }
    assert_eq!(
        events(&journal).len(),
        before,
        "a refused driver appended nothing"
    );

    // SIGKILL: the lease stays, its holder is dead for certain (this host, its pid gone). A plain
    // `resume` takes it over by itself: driven to the end, the takeover journaled (old and new holder).
    first.kill().unwrap();
    first.wait().unwrap();
    let takeover = bin()
        .args(["resume", j, "--headless", "--auto-approve"])
        .args(["--operator", "carol", "--sim-url", &fast.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let new_pid = takeover.id();
    let out = takeover.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(cutover::app::exit::OK),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&journal);
    let taken: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::LeaseTakenOver {
                previous_holder,
                previous_pid,
                holder,
                pid,
                ..
            } => Some((previous_holder.clone(), *previous_pid, holder.clone(), *pid)),
            _ => None,
        })
        .collect();
    assert_eq!(
        taken,
        vec![("alice".to_owned(), pid, "carol".to_owned(), new_pid)]
    );
    assert!(evs.iter().any(|e| matches!(e, Event::RunFinished { .. })));
    assert!(
        cutover::journal::Lease::current(&journal).unwrap().is_none(),
        "released at the end"
    );
}

/// A setup refused after the lease was taken (here a changed runbook) gives the lease back, so
/// the next `resume` is not told to take over from a dead holder.
#[test]
fn a_refused_setup_gives_the_lease_back() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = sim(&rt, 600.0);
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("manual.yaml");
    std::fs::write(&runbook, MANUAL).unwrap();
    let journal = dir.path().join("manual.journal");
    let j = journal.to_str().unwrap();
    let (code, err) = run(bin()
        .args(["run", runbook.to_str().unwrap(), "--headless", "--journal", j])
        .args(["--sim-url", &s.url()]));
    assert_eq!(code, Some(cutover::app::exit::WAITING), "{err}");
    std::fs::write(&runbook, format!("{MANUAL}# edited\n")).unwrap();
    let (code, err) = run(bin().args(["resume", j, "--headless", "--sim-url", &s.url()]));
    assert_eq!(code, Some(cutover::app::exit::INVALID), "{err}");
    assert!(err.contains("changed"), "{err}");
    assert!(cutover::journal::Lease::current(&journal).unwrap().is_none());
    let (code, err) = run(bin()
        .args(["resume", j, "--headless", "--accept-changed-runbook"])
        .args(["--sim-url", &s.url()]));
    assert_eq!(
        code,
        Some(cutover::app::exit::WAITING),
        "not refused by a leftover lease: {err}"
    );
}
