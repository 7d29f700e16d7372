//! `cutover plan RUNBOOK --from-journal J`: a rehearsal's measured step durations replace the
//! estimates, and the plan says where it would overrun the freeze window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;

use std::path::{Path, PathBuf};

use support::{cutover, recorder, run_started, t0};

/// A rehearsal in which `slow` took `slow_hours` and `announce-freeze` 30 seconds.
fn rehearsal(dir: &Path, slow: &str, slow_hours: f64) -> PathBuf {
    let path = dir.join("rehearsal.journal");
    let (j, mut r) = recorder(&path, "reh", t0(), None);
    r.at_min(0.0).ev(run_started("reh", "alice", t0()));
    r.at_min(1.0)
        .intent("announce-freeze", 1)
        .at_min(1.5)
        .done("announce-freeze");
    r.at_min(2.0)
        .intent(slow, 1)
        .at_min(2.0 + slow_hours * 60.0)
        .done(slow);
    drop(r);
    j.close().unwrap();
    path
}

fn plan(journal: &Path, json: bool) -> (i32, String) {
    let runbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/demo.yaml");
    let mut args = vec![
        "plan",
        runbook.to_str().unwrap(),
        "--from-journal",
        journal.to_str().unwrap(),
    ];
    if json {
        args.extend(["--format", "json"]);
    }
    let (code, out, err) = cutover(&args);
    (code, format!("{out}{err}"))
}

#[test]
fn a_slow_rehearsal_step_shows_the_overrun_and_where_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let journal = rehearsal(dir.path(), "wave-3:customers", 70.0);
    let (code, out) = plan(&journal, false);
    assert_eq!(code, 1, "an overrun fails the rehearsal script: {out}");
    assert!(out.contains("measured: 2 step(s)"), "{out}");
    assert!(out.contains("OVERRUNS the freeze window"), "{out}");
    assert!(out.contains("the first wave-3:customers at +"), "{out}");
    let (code, out) = plan(&journal, true);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["budget"]["measured_steps"],
        serde_json::json!(["announce-freeze", "wave-3:customers"])
    );
    let step = v["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "wave-3:customers")
        .unwrap()
        .clone();
    assert_eq!(step["estimate_secs"], 70 * 3600);
    assert!(
        v["plan"]["critical_path"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("wave-3:customers"))
    );
    assert!(
        v["budget"]["critical_path_secs"].as_u64().unwrap() > v["budget"]["window_secs"].as_u64().unwrap()
    );
}

#[test]
fn a_quick_rehearsal_fits_and_a_bad_journal_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let journal = rehearsal(dir.path(), "wave-3:customers", 0.5);
    let (code, out) = plan(&journal, false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fits the freeze window"), "{out}");
    let junk = dir.path().join("junk.journal");
    std::fs::write(&junk, "nope").unwrap();
    assert_eq!(plan(&junk, false).0, 2);
}

#[test]
fn a_rehearsal_at_600x_scales_machine_time_but_not_the_time_a_person_took() {
    use cutover::engine::event::{DecisionKind, OperatorAction};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.journal");
    let (j, mut r) = recorder(&path, "sim", t0(), None);
    let mut started = run_started("sim", "alice", t0());
    if let cutover::engine::Event::RunStarted { time_scale, .. } = &mut started {
        *time_scale = 600.0;
    }
    r.at_min(0.0).ev(started);
    // The approval: 0.21 min (12.6 s) of the operator reading and pressing a key.
    r.at_min(1.0).intent("dataverse-admin-mode", 1);
    r.ask(
        "dataverse-admin-mode",
        DecisionKind::ApproveManual,
        "Admin mode on?",
    );
    r.at_min(1.21)
        .decide("dataverse-admin-mode", OperatorAction::Approve, "alice", "done")
        .done("dataverse-admin-mode");
    // Machine work: 0.1 min of simulated time is an hour of the real weekend.
    r.at_min(2.0)
        .intent("wave-3:customers", 1)
        .at_min(2.1)
        .done("wave-3:customers");
    drop(r);
    j.close().unwrap();

    let (_, out) = plan(&path, true);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let est = |id: &str| {
        v["plan"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["estimate_secs"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(est("dataverse-admin-mode"), 13, "12.6 s of a person stays 12.6 s");
    assert_eq!(
        est("wave-3:customers"),
        3600,
        "6 s of the simulator at 600x is an hour"
    );
}

/// The plan sizes each wave map's dual-write initial sync with the rate's source beside it: the documented
/// 5-10 rows/s/map without a journal, the rehearsal's measured duration with one; a map beyond ~100,000 rows
/// is flagged with the DMF + delta road.
#[test]
fn initial_sync_sizing_shows_where_each_rate_comes_from() {
    let contoso = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/contoso-weekend.yaml");
    let (code, out, err) = cutover(&["plan", contoso.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("initial sync (dual-write), per map:"), "{out}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().any(|w| w == name) && l.contains("rows"))
            .unwrap_or_else(|| panic!("no sizing line for {name}: {out}"))
            .to_owned()
    };
    let sol = line("sales_order_lines");
    assert!(
        sol.starts_with('!') && sol.contains("790000 rows") && sol.contains("5-10 rows/s"),
        "{sol}"
    );
    assert!(
        sol.contains("[default 5-10 rows/s/map (field reports, shared/seeds/002)]"),
        "{sol}"
    );
    assert!(
        out.contains("790000 rows is beyond the ~100000 rows dual-write's initial sync carries"),
        "{out}"
    );
    assert!(out.contains("load them with a DMF package instead"), "{out}");
    let vendors = line("vendors");
    assert!(
        vendors.starts_with(' ') && vendors.contains("29000 rows"),
        "{vendors}"
    );

    let (code, out, _) = cutover(&["plan", contoso.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = v["sizing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["map"] == "customers")
        .unwrap()
        .clone();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["rate_low"].as_f64(),
            s["rate_high"].as_f64()
        ),
        (Some(278_000), Some(5.0), Some(10.0))
    );
    assert_eq!(
        (s["secs_slow"].as_u64(), s["secs_fast"].as_u64()),
        (Some(55_600), Some(27_800))
    );

    // From a rehearsal journal: the measured map's rate is its rows over the measured time, with its source.
    let dir = tempfile::tempdir().unwrap();
    let journal = rehearsal(dir.path(), "wave-3:customers", 2.0);
    let (_, out) = plan(&journal, true);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sizing = v["plan"]["sizing"].as_array().unwrap();
    let c = sizing.iter().find(|s| s["map"] == "customers").unwrap();
    assert_eq!(c["secs_slow"], 7200);
    let rows = c["rows"].as_f64().unwrap();
    assert!(
        (c["rate_low"].as_f64().unwrap() - rows / 7200.0).abs() < 1e-9,
        "{c}"
    );
    assert!(
        c["source"]
            .as_str()
            .unwrap()
            .contains("measured in the rehearsal journal"),
        "{c}"
    );
    assert!(c["source"].as_str().unwrap().contains("wave-3:customers"), "{c}");
    let other = sizing.iter().find(|s| s["map"] != "customers").unwrap();
    assert!(
        other["source"]
            .as_str()
            .unwrap()
            .starts_with("default 5-10 rows/s/map"),
        "{other}"
    );
    let (_, text) = plan(&journal, false);
    assert!(text.contains("[measured in the rehearsal journal"), "{text}");
}
