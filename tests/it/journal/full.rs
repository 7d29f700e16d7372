//! Disk full, with the real binary: the journal's writer may grow the file by only N pages
//! (`CUTOVER_TEST_JOURNAL_GROWTH_PAGES`, i.e. SQLite `max_page_count`), so the journal fails part
//! way through the fault matrix's runbook (DMF export and import, a gateway initial sync, a parity
//! count). For several N: the console stops with exit 1 saying the journal cannot be written;
//! the chain still verifies; the simulator executed no operation whose intent is not journaled and
//! no step is journaled as succeeded that did not happen; and once space is back (a new process,
//! normal pragmas) `resume` finishes with every operation executed exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;
use crate::support::fault as fault_support;

use std::process::{Command, Stdio};

use cutover::journal::JournalReader;

fn drive(
    journal: &std::path::Path,
    args: &[&str],
    sim_url: &str,
    pages: Option<u32>,
) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.args(args)
        .args([
            "--headless",
            "--auto-approve",
            "--operator",
            "disk-test",
            "--sim-url",
            sim_url,
        ])
        .env("DEMO_CLIENT_SECRET", engine_support::SECRET)
        .env("NO_COLOR", "1")
        .env_remove("CUTOVER_TEST_JOURNAL_GROWTH_PAGES")
        .stdout(Stdio::null());
    if args[0] == "run" {
        c.arg("--journal").arg(journal);
    }
    if let Some(n) = pages {
        c.env("CUTOVER_TEST_JOURNAL_GROWTH_PAGES", n.to_string());
    }
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn events_of(journal: &std::path::Path) -> Vec<cutover::engine::Envelope> {
    let r = JournalReader::open_read_only(journal).unwrap();
    let v = r.verify().unwrap();
    assert!(v.is_ok(), "the chain must verify after a failed write: {v:?}");
    let mut out = Vec::new();
    for run in r.runs().unwrap() {
        out.extend(r.events(&run.run_id).map(Result::unwrap));
    }
    out
}

/// One disk-full point: returns how many events made it into the journal before it filled.
fn full_at(rt: &tokio::runtime::Runtime, pages: u32) -> usize {
    let sim = rt
        .block_on(cutover::sim::start(
            cutover::sim::Scenario::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let f = engine_support::fixture(&fault_support::runbook(&fault_support::Shape::default()));
    let j = f.journal.to_str().unwrap().to_owned();
    let rb = f.runbook.to_str().unwrap().to_owned();
    let (code, err) = drive(&f.journal, &["run", &rb], &sim.url(), Some(pages));
    assert_eq!(code, Some(cutover::app::exit::FAILED), "{pages} pages: {err}");
    assert!(
        err.contains(&format!("the journal {j} cannot be written"))
            && err.contains("database or disk is full")
            && err.contains(&format!("cutover resume {j}")),
        "{pages} pages: {err}"
    );
    let st = sim.state();
    let written = if f.journal.exists() && JournalReader::open_read_only(&f.journal).is_ok() {
        let evs = events_of(&f.journal);
        fault_support::every_effect_journaled(&evs, &st).unwrap_or_else(|e| panic!("{pages} pages: {e}"));
        fault_support::no_false_success(&evs, &st).unwrap_or_else(|e| panic!("{pages} pages: {e}"));
        evs.len()
    } else {
        0
    };
    if written == 0 {
        assert!(
            fault_support::side_effects(&st).is_empty(),
            "nothing journaled, so nothing may have been done: {st}"
        );
    }
    // Space is back: a new process with normal pragmas resumes (or starts) the run to the end.
    let (code, err) = if written == 0 {
        drive(&f.journal, &["run", &rb], &sim.url(), None)
    } else {
        drive(&f.journal, &["resume", &j], &sim.url(), None)
    };
    assert_eq!(code, Some(cutover::app::exit::OK), "{pages} pages, resume: {err}");
    let st = sim.state();
    let evs = events_of(&f.journal);
    fault_support::every_effect_journaled(&evs, &st).unwrap();
    fault_support::no_false_success(&evs, &st).unwrap();
    fault_support::ops_once(&st).unwrap_or_else(|e| panic!("{pages} pages: {e}"));
    written
}

#[test]
fn a_full_journal_stops_the_run_before_its_next_action_and_resume_finishes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = &rt;
    let points = [0u32, 1, 2, 3, 5, 7, 9, 11];
    let written: Vec<(u32, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = points
            .iter()
            .map(|&n| s.spawn(move || (n, full_at(rt, n))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("disk full after (pages, events journaled): {written:?}");
    let distinct: std::collections::BTreeSet<usize> = written.iter().map(|(_, e)| *e).collect();
    assert!(
        distinct.len() >= 3,
        "the journal filled at too few distinct points: {written:?}"
    );
}
