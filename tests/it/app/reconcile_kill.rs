//! A `reconcile` killed part way goes on from what it had read: the real binary is SIGKILLed once in the
//! middle of the F&O read (both sides slowed by the simulator) and once in the middle of the Dataverse ranges
//! (only they slowed), each kill timed by what the step's scratch database says it holds, not by the clock. After each
//! resume the simulator's request log shows that nothing already kept was asked for again, and the result
//! equals an uninterrupted run's over the same data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::exec::{SECRET, environments};
use crate::support::sim::request_log_with_query;
use cutover::engine::event::Event;
use cutover::journal::JournalReader;
use cutover::sim::{FaultRule, Faults};

const SCENARIO: &str = r#"
name: rows-kill
seed: 5
time_scale: 600
companies: [USMF]
default_company: USMF
fno: { page_size: 100 }
dataverse: { page_size: 100 }
entities:
  fno:
    Companies: { key: DataArea, rows: 1, fields: { Name: name } }
    CustomersV3: { key: CustomerAccount, rows: { USMF: 1200 }, fields: { OrganizationName: name } }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - { name: customers, source: CustomersV3, target: accounts, key: { source: CustomerAccount, target: accountnumber }, fields: { OrganizationName: name }, corrupt_share: 0.02, initial: { status: stopped, preloaded: true } }
"#;

fn runbook() -> String {
    format!(
        r#"runbook: rows-kill
version: 1.0.0
{}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies" }}
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF]
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name }}
phases:
  - id: p
    steps:
      - {{ id: rows, kind: reconcile, maps: [customers], max_differences: 100000, ranges: 4 }}
"#,
        environments(true)
    )
}

fn launch(dir: &Path, sim_url: &str, journal: &Path, resume: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
    if resume {
        cmd.arg("resume").arg(journal);
    } else {
        cmd.arg("run")
            .arg(dir.join("rows.yaml"))
            .arg("--journal")
            .arg(journal);
    }
    cmd.args(["--headless", "--auto-approve", "--take-over"])
        .args(["--operator", "kill-test", "--sim-url", sim_url])
        .env("TEST_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// (side, range id, link of the next page, done) of every range of the scratch database in `dir`.
type Ranges = Vec<(String, String, Option<String>, bool)>;

fn scratch_ranges(dir: &Path) -> Ranges {
    let Some(path) = std::fs::read_dir(dir).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".reconcile.sqlite"))
    }) else {
        return Vec::new();
    };
    let Ok(conn) = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT side, id, cursor, done FROM ranges ORDER BY side, seq") else {
        return Vec::new();
    };
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// Runs `child` until `ready` holds of the scratch database, then SIGKILLs it; returns the ranges at the kill.
fn kill_when(child: &mut Child, dir: &Path, what: &str, ready: impl Fn(&Ranges) -> bool) -> Ranges {
    let started = Instant::now();
    loop {
        let ranges = scratch_ranges(dir);
        if ready(&ranges) {
            child.kill().unwrap();
            child.wait().unwrap();
            // What the killed process had committed is what counts: read it again once it is gone.
            return scratch_ranges(dir);
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the console exited ({st}) before {what}: {ranges:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never reached {what}: {ranges:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn slow(prefixes: &[&str]) -> Faults {
    Faults(
        prefixes
            .iter()
            .map(|p| FaultRule {
                path_prefix: Some((*p).to_owned()),
                slow_rate: 1.0,
                slow_chunk_ms: Some(3),
                ..FaultRule::default()
            })
            .collect(),
    )
}

/// (source rows, target rows, matching, missing, extra, different, sampled keys) of the journal's reconcile.
fn result(journal: &Path) -> (u64, u64, u64, u64, u64, u64, Vec<String>) {
    let reader = JournalReader::open_read_only(journal).unwrap();
    let run = reader.runs().unwrap().pop().unwrap();
    let mut last = None;
    for env in reader.events(&run.run_id) {
        if let Event::RowsReconciled {
            source_rows,
            target_rows,
            matching,
            missing,
            extra,
            different,
            sample,
            ..
        } = env.unwrap().event
        {
            let keys = sample
                .iter()
                .map(|d| format!("{:?} {}", d.class, d.key))
                .collect();
            last = Some((
                source_rows,
                target_rows,
                matching,
                missing,
                extra,
                different,
                keys,
            ));
        }
    }
    last.expect("a RowsReconciled event")
}

/// The Dataverse account reads in `log` (their queries).
fn account_reads(log: &[(String, String, String)]) -> Vec<&str> {
    log.iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with("/accounts"))
        .map(|(_, _, q)| q.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reconcile_resumes_from_the_ranges_it_had_read() {
    let sim = cutover::sim::start(
        cutover::sim::Scenario::from_yaml(SCENARIO).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = sim.url();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("rows.yaml"), runbook()).unwrap();
    let journal: PathBuf = dir.join("rows.journal");

    // 1. Killed in the middle of the F&O read: some pages in, the next page's link kept.
    // Both sides are read at once: both slowed, so neither is done when the F&O range is part read.
    sim.set_faults(slow(&["/data/CustomersV3", "/api/data/v9.2/accounts"]));
    let mut child = launch(&dir, &url, &journal, false);
    let at_kill = tokio::task::block_in_place(|| {
        kill_when(&mut child, &dir, "a part-read F&O range", |r| {
            r.iter()
                .any(|(side, _, cursor, done)| side == "source" && cursor.is_some() && !done)
        })
    });
    let kept_link = at_kill
        .iter()
        .find(|r| r.0 == "source")
        .and_then(|r| r.2.clone())
        .expect("the F&O range's next link");
    let skip_of = |q: &str| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("$skip="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let kept_skip = skip_of(kept_link.split_once('?').map_or("", |(_, q)| q));
    assert!(kept_skip > 0, "{kept_link}");
    let seen = request_log_with_query(&url).await.len();

    // 2. Resumed with the Dataverse ranges slowed: killed once at least one of them is wholly read.
    sim.set_faults(slow(&["/api/data/v9.2/accounts"]));
    let mut child = launch(&dir, &url, &journal, true);
    let at_kill = tokio::task::block_in_place(|| {
        kill_when(&mut child, &dir, "a Dataverse range read", |r| {
            r.iter().any(|(side, _, _, done)| side == "target" && *done)
        })
    });
    let log = request_log_with_query(&url).await;
    let fno_after: Vec<u64> = log[seen..]
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with("/CustomersV3"))
        .map(|(_, _, q)| skip_of(q))
        .collect();
    // The F&O read went on from the kept link: no page before it was asked for again.
    assert!(!fno_after.is_empty(), "the resumed run read no F&O page");
    assert!(
        fno_after.iter().all(|s| *s >= kept_skip),
        "kept $skip={kept_skip}, asked {fno_after:?}"
    );
    let read_before: Vec<String> = at_kill
        .iter()
        .filter(|(side, _, _, done)| side == "target" && *done)
        .map(|r| r.1.clone())
        .collect();
    assert!(!read_before.is_empty());
    let seen = log.len();

    // 3. Resumed to the end: no range read before the kill is read again.
    sim.set_faults(Faults::default());
    let mut child = launch(&dir, &url, &journal, true);
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert!(status.success(), "the last resume exited {status}");
    let log = request_log_with_query(&url).await;
    let again: Vec<&str> = account_reads(&log[seen..])
        .into_iter()
        .filter(|q| read_before.iter().any(|r| q.contains(r.as_str())))
        .collect();
    assert!(
        again.is_empty(),
        "ranges read before the kill were read again: {again:?}"
    );
    let resumed_ranges = JournalReader::open_read_only(&journal)
        .unwrap()
        .envelopes_of_kinds(
            &JournalReader::open_read_only(&journal).unwrap().runs().unwrap()[0].run_id,
            &["rows_range_read"],
        )
        .unwrap();
    assert_eq!(
        resumed_ranges
            .iter()
            .filter(|e| matches!(&e.event, Event::RowsRangeRead { side, .. } if side == "target"))
            .count(),
        4,
        "every Dataverse range journaled once: {resumed_ranges:?}"
    );
    // Nothing left beside the journal.
    assert!(scratch_ranges(&dir).is_empty());

    // The same step uninterrupted, over the same data, finds the same.
    let other = dir.join("uninterrupted.journal");
    let mut child = launch(&dir, &url, &other, false);
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert!(status.success());
    let (resumed, whole) = (result(&journal), result(&other));
    assert_eq!(resumed, whole);
    assert_eq!((resumed.0, resumed.1), (1200, 1200));
    assert!(
        resumed.5 > 0,
        "the scenario's corrupt share planted differences: {resumed:?}"
    );
}
