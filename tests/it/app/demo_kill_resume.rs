//! What the README promises of `cutover demo`: kill it mid-run, carry on from the same journal, and
//! it resumes against the same environment. The simulator is a detached process recorded beside
//! the journal; it survives the SIGKILL, a plain `cutover resume` (no `--sim`, no secret in the
//! environment: the demo's own) finds and reuses it (the synced rows are still there, so the sample
//! after the sync passes), and it is gone once the run finishes. `tests/console_pty.rs` restarts
//! with `cutover demo` itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::app::sim_process::{record_path, stop_recorded};
use cutover::engine::event::{Event, StepOutcome};
use cutover::journal::JournalReader;
use cutover::journal::lease::process_alive;

struct SimGuard<'a>(&'a Path);

impl Drop for SimGuard<'_> {
    fn drop(&mut self) {
        stop_recorded(self.0);
    }
}

/// Whether the journal holds a successful finish of `step`.
fn finished(journal: &Path, step: &str) -> bool {
    let Ok(r) = JournalReader::open_read_only(journal) else {
        return false;
    };
    let Some(run) = r.runs().ok().and_then(|v| v.last().cloned()) else {
        return false;
    };
    r.events(&run.run_id).filter_map(Result::ok).any(|e| {
        matches!(&e.event, Event::StepFinished { step: s, outcome: StepOutcome::Succeeded, .. } if s.as_str() == step)
    })
}

fn sim_pid(journal: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(record_path(journal)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

#[test]
fn a_killed_demo_resumes_against_the_same_simulator_and_stops_it_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("demo.journal");
    let _guard = SimGuard(&journal);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .args(["demo", "--headless", "--journal"])
        .arg(&journal)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once delta sync is on: the rows the waves copied live only in the simulator.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !finished(&journal, "enable-live-sync") {
        assert!(Instant::now() < deadline, "enable-live-sync never finished");
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let pid = sim_pid(&journal).expect("the simulator is recorded beside the journal");
    assert!(process_alive(pid), "the simulator died with the console");

    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .args(["resume", "--headless", "--auto-approve", "--take-over"])
        .arg(&journal)
        .env_remove("DEMO_CLIENT_SECRET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(
        stderr.contains(&format!("(pid {pid}) is still up; using it")),
        "{stderr}"
    );
    assert!(stdout.contains("resumed by"), "{stdout}");
    assert!(stdout.contains("finished: succeeded"), "{stdout}");
    // The finished run no longer needs its environment.
    assert!(!record_path(&journal).exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the simulator outlived its finished run"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
