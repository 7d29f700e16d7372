//! Crash campaign: the real binary, killed with SIGKILL at random points and resumed (its resumes
//! killed too, sometimes) until the run ends; after each run nothing was done twice and the result is
//! the result of an uninterrupted run.
//!
//! Each run gets a fresh simulator that lives in this test process (so it keeps its state across the
//! console's deaths) and a fresh journal. The first launch is `cutover run RUNBOOK`, every later one
//! `cutover resume JOURNAL` (or `run` again while the journal holds no run yet), all with
//! `--headless --auto-approve --take-over --sim-url URL`.
//!
//! Kill points, drawn from a seeded RNG (the seed is printed; `CUTOVER_CRASH_SEED=N` replays the same
//! plan; where a wall-clock kill lands still depends on the machine's timing):
//! - `event`: right after the journal's last event id passed (id at launch) + 1..=25;
//! - `event+delay`: the same, then 0..40 ms more, so the kill lands inside the next journal
//!   transaction or inside the HTTP call that follows the event;
//! - `wall`: 0..4 s after the launch, wherever the process is (start-up, recovery, a long poll of a
//!   DMF job or an initial sync, the gate's re-check wait);
//! - `early`: 0..300 ms after a resume's launch, inside its recovery (only for resumes).
//!
//! After each run:
//! - the last launch exited 0 and `cutover verify` accepts the journal;
//! - every external operation the simulator counts (`dmf.import`, `dmf.export`,
//!   `dualwrite.initial_sync`, `dualwrite.resume`, `canary.create`, ...) ran exactly once (the vendors
//!   initial sync, which fails by design, exactly twice: the failed pass and one retry pass), and the
//!   whole side-effect table equals the uninterrupted run's;
//! - the journal holds one run, succeeded, each step finished successfully exactly once;
//! - the normalised final state equals the uninterrupted run's (see [`summary`]).
//!
//! What may differ, and is left out on purpose: how many sides counted the canary's delete (live
//! sync may remove the target copy before the console does, uninterrupted too; the final table
//! sizes show no canary is left), timestamps, durations, request and event counts,
//! attempts and gate re-checks (they depend on how long the simulated services took while the
//! console was dead), resumes and lease take-overs, ids the simulator derives from its request
//! counter (DMF execution ids, canary handles: compared by operation, not by id).
//!
//! `cargo test --test crash` runs the quick campaign (2 runs, about 20 kill points). The full one:
//! `CUTOVER_CRASH_RUNS=200 cargo test --test crash -- --nocapture` (`CUTOVER_CRASH_JOBS`
//! runs at once, default 2; the runs mostly wait on simulated time, not on the CPU).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover::engine::event::{Event, StepOutcome};
use cutover::journal::JournalReader;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const RUNBOOK: &str = include_str!("crash.runbook.yaml");

/// Kill budget per run in the quick campaign (2 runs: about 20 kill points).
const QUICK_KILLS: u32 = 10;
/// Upper bound of the kill budget drawn per run in the full campaign.
const FULL_MAX_KILLS: u32 = 8;
/// A run that has not finished after this many launches is a failure (a loop that never ends).
const MAX_LAUNCHES: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Event,
    EventDelay,
    Wall,
    Early,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::EventDelay => "event+delay",
            Kind::Wall => "wall",
            Kind::Early => "early",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Kill once the journal's last id reaches this.
    AtEvent(i64, Kind, Duration),
    /// Kill this long after the launch.
    After(Duration, Kind),
}

#[derive(Debug, Default)]
struct Stats {
    runs: u64,
    kills: u64,
    by_kind: BTreeMap<&'static str, u64>,
    /// Kills with a step started and not finished in the journal (inside a long operation).
    in_step: u64,
    /// Kills of a resume before it journaled anything (inside its recovery).
    in_recovery: u64,
    /// Planned kills the process outran (it finished first).
    outrun: u64,
    resumes: u64,
    max_resumes: u64,
    failures: Vec<String>,
}

fn last_event_id(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    JournalReader::open_read_only(path)
        .ok()
        .and_then(|r| {
            r.connection()
                .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| row.get(0))
                .ok()
        })
        .unwrap_or(0)
}

fn has_run(path: &Path) -> bool {
    JournalReader::open_read_only(path)
        .ok()
        .and_then(|r| r.runs().ok())
        .is_some_and(|runs| !runs.is_empty())
}

/// Steps started and not finished in the journal's (only) run.
fn steps_in_flight(path: &Path) -> usize {
    let Ok(r) = JournalReader::open_read_only(path) else {
        return 0;
    };
    let Some(run) = r.runs().ok().and_then(|v| v.into_iter().last()) else {
        return 0;
    };
    r.state_at(&run.run_id, None).map_or(0, |st| {
        st.steps
            .iter()
            .filter(|s| matches!(s.status, cutover::engine::state::StepStatus::Running { .. }))
            .count()
    })
}

struct Dir {
    _tmp: tempfile::TempDir,
    runbook: PathBuf,
    journal: PathBuf,
    stderr: PathBuf,
}

fn workdir() -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("packages")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/packages/reference-data.zip"),
        tmp.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let runbook = tmp.path().join("crash.yaml");
    std::fs::write(&runbook, RUNBOOK).unwrap();
    Dir {
        journal: tmp.path().join("crash.journal"),
        stderr: tmp.path().join("stderr.txt"),
        runbook,
        _tmp: tmp,
    }
}

/// The binary under test: `CUTOVER_BIN` when set (the campaign script runs a copy, so a rebuild
/// during a long campaign cannot swap the binary between two launches), else cargo's.
fn binary() -> PathBuf {
    std::env::var_os("CUTOVER_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cutover")), PathBuf::from)
}

fn launch(dir: &Dir, sim_url: &str, resume: bool) -> Child {
    let mut cmd = Command::new(binary());
    if resume {
        cmd.arg("resume").arg(&dir.journal);
    } else {
        cmd.arg("run")
            .arg(&dir.runbook)
            .arg("--journal")
            .arg(&dir.journal);
    }
    cmd.args(["--headless", "--auto-approve", "--take-over"])
        .args(["--operator", "crash-test", "--sim-url", sim_url])
        .env("DEMO_CLIENT_SECRET", "crash-test-secret-value")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&dir.stderr).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for the child, killing it per `plan`. `Ok(Some(kind))` when killed, `Ok(None)` when it exited 0.
fn supervise(child: &mut Child, dir: &Dir, plan: Option<Plan>) -> Result<Option<Kind>, String> {
    let started = Instant::now();
    let mut reached: Option<Instant> = None;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            if st.success() {
                return Ok(None);
            }
            let err = std::fs::read_to_string(&dir.stderr).unwrap_or_default();
            return Err(format!("console exited with {st}: {}", err.trim()));
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "a launch ran for 5 minutes"
        );
        let fire = match plan {
            None => None,
            Some(Plan::After(d, kind)) => (started.elapsed() >= d).then_some(kind),
            Some(Plan::AtEvent(id, kind, delay)) => {
                if reached.is_none() && last_event_id(&dir.journal) >= id {
                    reached = Some(Instant::now());
                }
                reached.filter(|t| t.elapsed() >= delay).map(|_| kind)
            }
        };
        if let Some(kind) = fire {
            child.kill().unwrap();
            child.wait().unwrap();
            return Ok(Some(kind));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn draw_plan(rng: &mut StdRng, before: i64, resume: bool) -> Plan {
    let roll: u32 = rng.random_range(0..100);
    match roll {
        0..35 => Plan::AtEvent(before + rng.random_range(1..=25), Kind::Event, Duration::ZERO),
        35..65 => Plan::AtEvent(
            before + rng.random_range(1..=25),
            Kind::EventDelay,
            Duration::from_micros(rng.random_range(0..40_000)),
        ),
        65..85 if resume => Plan::After(Duration::from_millis(rng.random_range(0..300)), Kind::Early),
        _ => Plan::After(Duration::from_millis(rng.random_range(0..4_000)), Kind::Wall),
    }
}

/// What an interrupted run must end with, equal to an uninterrupted run's: outcome, each step's final
/// status and number of successful finishes, final parity per (map, company), error-queue totals,
/// install records (package, version, sha256, result), the simulator's side effects by operation and
/// its final table sizes and map states.
fn summary(journal: &Path, sim: &Value) -> Value {
    let reader = JournalReader::open_read_only(journal).unwrap();
    let runs = reader.runs().unwrap();
    let run = runs.last().unwrap();
    let st = reader.state_at(&run.run_id, None).unwrap();
    let mut finishes: BTreeMap<String, u64> = BTreeMap::new();
    for env in reader.events(&run.run_id) {
        if let Event::StepFinished {
            step,
            outcome: StepOutcome::Succeeded,
            ..
        } = env.unwrap().event
        {
            *finishes.entry(step.0.to_string()).or_default() += 1;
        }
    }
    let steps: Vec<Value> = st
        .steps
        .iter()
        .map(|s| json!([s.info.id.0, format!("{:?}", s.status).split([' ', '{']).next()]))
        .collect();
    let parity: Vec<Value> = st
        .parity
        .rows
        .iter()
        .map(|(k, r)| json!([k.map, k.company, r.source, r.target, format!("{:?}", r.status)]))
        .collect();
    let installs: Vec<Value> = st
        .installs
        .iter()
        .map(|i| json!([i.step.0, i.package, i.version, i.sha256, i.result]))
        .collect();
    let mut effects: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in sim["side_effects"].as_object().unwrap() {
        // `dmf.import:<execution id>`, `canary.create:<handle>`: the id depends on the request counter.
        let op = match k.split_once(':') {
            Some((op, _)) if op.starts_with("dmf.") || op.starts_with("canary.") => op.to_owned(),
            _ => k.clone(),
        };
        // The canary's delete is counted once per side that saw it; whether live sync removed the
        // target copy before the console did is timing, in an uninterrupted run too. The final table
        // sizes show that no canary is left.
        let times = if op == "canary.delete" {
            String::new()
        } else {
            format!(" x{}", v.as_u64().unwrap())
        };
        *effects.entry(format!("{op}{times}")).or_default() += 1;
    }
    let maps: BTreeMap<&String, Value> = sim["maps"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, m)| (k, json!([m["statusName"], m["initialSync"]["state"]])))
        .collect();
    json!({
        "runs": runs.len(),
        "outcome": format!("{:?}", run.outcome),
        "steps": steps,
        "succeeded_finishes": finishes,
        "parity": parity,
        "errors": {"seen_total": st.errors.seen_total, "seen_by": st.errors.seen_by},
        "installs": installs,
        "side_effects": effects,
        "tables": sim["tables"],
        "maps": maps,
    })
}

/// Lines of `a` and `b` (pretty JSON) that differ, for a readable failure.
fn diff(a: &Value, b: &Value) -> String {
    let (a, b) = (
        serde_json::to_string_pretty(a).unwrap(),
        serde_json::to_string_pretty(b).unwrap(),
    );
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = Vec::new();
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i).copied(), bl.get(i).copied());
        if x != y {
            out.push(format!("  expected {x:?}\n  got      {y:?}"));
        }
    }
    out.truncate(12);
    out.join("\n")
}

struct Env {
    rt: tokio::runtime::Runtime,
}

impl Env {
    fn sim(&self) -> cutover::sim::SimHandle {
        self.rt
            .block_on(cutover::sim::start(
                cutover::sim::Scenario::demo(),
                "127.0.0.1:0".parse().unwrap(),
            ))
            .unwrap()
    }
}

/// Checks shared by the baseline and every interrupted run; returns the summary.
fn check_run(dir: &Dir, sim: &cutover::sim::SimHandle) -> Result<Value, String> {
    let verify = Command::new(binary())
        .arg("verify")
        .arg(&dir.journal)
        .output()
        .unwrap();
    if !verify.status.success() {
        return Err(format!(
            "cutover verify: {}",
            String::from_utf8_lossy(&verify.stdout).trim()
        ));
    }
    let state = sim.state();
    for (k, v) in state["side_effects"].as_object().unwrap() {
        let once = ["dmf.", "dualwrite.", "canary.create"]
            .iter()
            .any(|p| k.starts_with(p));
        // The vendors initial sync fails at row 2,100 by design: its failed pass and the one retry pass
        // (the gateway has no continue-from-the-failed-row), never a third.
        let want = if k == "dualwrite.initial_sync:vendors" {
            2
        } else {
            1
        };
        if once && v.as_u64() != Some(want) {
            return Err(format!("external operation {k} executed {v} times (want {want})"));
        }
    }
    let s = summary(&dir.journal, &state);
    if s["runs"] != json!(1) || !s["outcome"].as_str().unwrap_or("").contains("Succeeded") {
        return Err(format!("the journal's run did not succeed: {}", s["outcome"]));
    }
    for (step, n) in s["succeeded_finishes"].as_object().unwrap() {
        if n != &json!(1) {
            return Err(format!("step {step} finished successfully {n} times"));
        }
    }
    Ok(s)
}

/// One interrupted run: kill, resume, repeat within `budget` kills, then let it finish.
fn interrupted_run(env: &Env, seed: u64, budget: u32, stats: &Mutex<Stats>) -> Result<Value, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = env.sim();
    let dir = workdir();
    let (mut kills, mut launches) = (0u32, 0u32);
    loop {
        launches += 1;
        if launches > MAX_LAUNCHES {
            return Err(format!("not finished after {MAX_LAUNCHES} launches"));
        }
        // `resume` needs a run in the journal: a first launch killed before it journaled its start is
        // launched again with `run` (as an operator would).
        let resume = launches > 1 && has_run(&dir.journal);
        let before = last_event_id(&dir.journal);
        let plan = (kills < budget).then(|| draw_plan(&mut rng, before, resume));
        let mut child = launch(&dir, &sim.url(), resume);
        let killed = supervise(&mut child, &dir, plan)?;
        let mut s = stats.lock().unwrap();
        if launches > 1 {
            s.resumes += 1;
        }
        match killed {
            Some(kind) => {
                kills += 1;
                s.kills += 1;
                *s.by_kind.entry(kind.name()).or_default() += 1;
                let after = last_event_id(&dir.journal);
                if launches > 1 && after == before {
                    s.in_recovery += 1;
                }
                drop(s);
                if steps_in_flight(&dir.journal) > 0 {
                    stats.lock().unwrap().in_step += 1;
                }
            }
            None => {
                if plan.is_some() {
                    s.outrun += 1;
                }
                s.max_resumes = s.max_resumes.max(u64::from(launches - 1));
                break;
            }
        }
    }
    check_run(&dir, &sim)
}

fn baseline(env: &Env) -> Value {
    let sim = env.sim();
    let dir = workdir();
    let mut child = launch(&dir, &sim.url(), false);
    assert_eq!(supervise(&mut child, &dir, None), Ok(None));
    check_run(&dir, &sim).unwrap()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn crash_campaign_kills_and_resumes_to_the_uninterrupted_result() {
    let full_runs = env_u64("CUTOVER_CRASH_RUNS");
    let runs = full_runs.unwrap_or(2);
    let jobs = env_u64("CUTOVER_CRASH_JOBS").unwrap_or(2).clamp(1, 8);
    let seed = env_u64("CUTOVER_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            % 1_000_000_007
    });
    eprintln!(
        "crash campaign: seed {seed} (CUTOVER_CRASH_SEED={seed} replays the kill plan), {runs} runs, {jobs} at once"
    );
    let env = Arc::new(Env {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    });
    let started = Instant::now();
    let expected = Arc::new(baseline(&env));
    if full_runs.is_some() {
        eprintln!("uninterrupted run (what every run must end with): {expected}");
    }
    let stats = Arc::new(Mutex::new(Stats::default()));
    let next = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (env, expected, stats, next) = (env.clone(), expected.clone(), stats.clone(), next.clone());
            std::thread::spawn(move || {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        if *n >= runs {
                            return;
                        }
                        *n += 1;
                        *n - 1
                    };
                    let mut rng = StdRng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let budget = if full_runs.is_some() {
                        rng.random_range(1..=FULL_MAX_KILLS)
                    } else {
                        QUICK_KILLS
                    };
                    let result = interrupted_run(&env, rng.random(), budget, &stats).and_then(|got| {
                        if got == *expected {
                            Ok(())
                        } else {
                            Err(format!(
                                "final state differs from the uninterrupted run:\n{}",
                                diff(&expected, &got)
                            ))
                        }
                    });
                    let mut s = stats.lock().unwrap();
                    s.runs += 1;
                    if let Err(e) = result {
                        s.failures.push(format!("run {i}: {e}"));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = stats.lock().unwrap();
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
    eprintln!(
        "CRASH runs {} kills {} (by kind: {}; inside a step {}; inside a resume's recovery {}; outrun {}) resumes {} max-resumes-per-run {} failures {} wall {:.0}s seed {seed}",
        s.runs,
        s.kills,
        kinds.join(", "),
        s.in_step,
        s.in_recovery,
        s.outrun,
        s.resumes,
        s.max_resumes,
        s.failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(s.failures.is_empty(), "{}", s.failures.join("\n\n"));
    assert_eq!(s.runs, runs);
    if full_runs.is_none() {
        // A run may finish before a planned kill fires (an "outrun", more likely on a loaded machine),
        // which ends its share of the budget early; half of the budget landing still proves the campaign
        // reaches the run's every phase, and a campaign whose kills never land still fails here.
        assert!(s.kills >= 10, "only {} kills landed", s.kills);
    }
    assert!(s.kills > 0 && s.resumes >= s.kills);
}

/// Found by the campaign: a kill after an import's `InstallRecord` was journaled and before its step
/// finished made the resumed step journal a second record (the import itself ran once). Replayed
/// deterministically: execute without journaling the end (the crash), then reconcile.
#[tokio::test]
async fn a_resumed_import_whose_verdict_was_journaled_keeps_one_install_record() {
    use cutover::engine::exec::{self, Mode};
    let runbook = format!(
        "runbook: crash-install\nversion: 1.0.0\n{}\nphases:\n  - id: p\n    steps:\n      - {{ id: import, kind: dmf.import, env: fno, definition_group: CutoverDelta, package_file: packages/reference-data.zip, package_version: 1.0.0 }}\n",
        exec_support::environments(false)
    );
    let h = exec_support::start(None, &runbook).await;
    let ctx = h.ctx("import", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1);
    let intent = Event::StepIntent {
        step: ctx.step.id.clone(),
        attempt: 1,
        handle: handle.clone(),
    };
    h.emit.durable(intent).await.unwrap();
    exec_support::assert_ok(&exec::execute(&ctx, handle.as_ref(), Mode::Fresh).await);
    exec_support::assert_ok(&h.run_mode("import", 1, Mode::Reconcile).await);
    let installs = h
        .events()
        .await
        .iter()
        .filter(|e| matches!(e.event, Event::InstallRecord { .. }))
        .count();
    assert_eq!(installs, 1, "one install record after the resume");
    let id = handle.unwrap().id;
    assert_eq!(h.effect(&format!("dmf.import:{id}")), 1, "one import");
}
