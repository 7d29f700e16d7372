//! `cutover report` on the demo-like journal: the evidence in every format, the JSON against the
//! shipped schema, run selection, refusal of a tampered journal and the UNVERIFIED marks, and no
//! secret in any output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::audit as support;
use crate::support::schema as schema_support;

use std::path::Path;

use cutover::engine::event::{Event, RunbookInfo};
use schema_support::validate;
use serde_json::Value;
use support::{REHEARSAL, WEEKEND, build_demo, cutover, tamper};

fn report(path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["report", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    cutover(&args)
}

fn json_report(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = report(path, &args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_json_report_holds_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let r = json_report(&path, &[]);
    let run = &r["run"];
    assert_eq!(run["run_id"], WEEKEND, "the latest run is the default");
    assert_eq!(run["runbook"], "contoso-weekend");
    assert_eq!(run["version"], "2.1.0");
    assert_eq!(run["operators"], serde_json::json!(["alice", "bob", "carol"]));
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["started_at"], "2027-01-15T08:00:00.000Z");
    assert_eq!(run["finished_at"], "2027-01-15T09:31:00.000Z");
    assert_eq!(run["resumes"], 1);
    assert_eq!(r["verification"]["verified"], true);
    assert_eq!(run["chain_head_hash"], r["verification"]["head_hash"]);
    assert_eq!(
        run["last_event_hash"], run["chain_head_hash"],
        "the weekend is the journal's last run"
    );

    let decisions = r["decisions"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = decisions
        .iter()
        .map(|d| {
            (
                d["operator"].as_str().unwrap().to_owned(),
                d["action"].as_str().unwrap().to_owned(),
                d["asked"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expect = [
        ("alice", "approve", "approve_manual"),
        ("bob", "waive", "gate_failure"),
        ("carol", "retry", "step_failed"),
        ("alice", "confirm", "point_of_no_return"),
    ];
    assert_eq!(
        summary,
        expect.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(
        decisions[1]["reason"],
        "10 blocked vendors, waived by finance (ticket FIN-42)"
    );
    assert_eq!(decisions[1]["at"], "2027-01-15T08:52:00.000Z");

    // Gate wave-1 failed with the counts of its maps at the time; wave-2 passed.
    let gates = r["gates"].as_array().unwrap();
    assert_eq!((gates.len(), r["gates_total"].as_u64()), (2, Some(2)));
    assert_eq!(gates[0]["passed"], false);
    assert_eq!(
        (gates[0]["waived"].as_bool(), gates[1]["waived"].as_bool()),
        (Some(true), Some(false)),
        "bob waived the failed wave-1 gate"
    );
    assert_eq!(
        run["exceptions"],
        serde_json::json!([{"step": "wave-1:gate", "status": "waived", "reason": "10 blocked vendors, waived by finance (ticket FIN-42)"}])
    );

    // The drift chart starts at each map's initial sync: the copy's progress (1000 rows behind at
    // minute 17) is not drift; the 10 vendors left behind at the sync's end are.
    let series = r["charts"]["parity"].as_array().unwrap();
    let points = |label: &str| -> Vec<(u64, i64)> {
        series
            .iter()
            .find(|s| s["label"] == label)
            .unwrap_or_else(|| panic!("no series {label}: {series:#?}"))["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["t_ms"].as_u64().unwrap(), p["value"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(points("customers/USMF"), vec![(33 * 60_000, 2)]);
    assert_eq!(points("vendors/USMF"), vec![(33 * 60_000, 10)]);
    assert_eq!(points("products"), vec![(70 * 60_000, 1)]);
    let counts = gates[0]["counts"].as_array().unwrap();
    let row = |map: &str, co: &str| {
        counts
            .iter()
            .find(|c| c["map"] == map && c["company"] == co)
            .unwrap()
    };
    assert_eq!(
        (
            row("vendors", "USMF")["target"].as_u64(),
            row("vendors", "USMF")["failed"].as_bool()
        ),
        (Some(290), Some(true))
    );
    assert_eq!(row("vendors", "USMF")["errors"], 1);
    assert_eq!(
        (
            row("customers", "USMF")["target"].as_u64(),
            row("customers", "USMF")["failed"].as_bool()
        ),
        (Some(998), Some(false))
    );
    assert_eq!(row("customers", "USMF")["errors"], 3);
    assert_eq!(counts.len(), 3, "products is not in wave-1");
    assert_eq!(gates[1]["passed"], true);
    assert_eq!(gates[1]["counts"][0]["map"], "products");

    // Parity before (first sample) and after (last sample).
    let parity = r["parity"].as_array().unwrap();
    let p = parity
        .iter()
        .find(|p| p["map"] == "customers" && p["company"] == "USMF")
        .unwrap();
    assert_eq!(
        (p["first_target"].as_u64(), p["last_target"].as_u64()),
        (Some(0), Some(998))
    );
    assert_eq!(
        (p["samples"].as_u64(), p["status"].as_str()),
        (Some(3), Some("within"))
    );
    let v = parity.iter().find(|p| p["map"] == "vendors").unwrap();
    assert_eq!(
        (v["last_difference"].as_i64(), v["status"].as_str()),
        (Some(10), Some("drift"))
    );

    // Error totals: reported for customers, seen for vendors.
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (
            errors[0]["map"].as_str(),
            errors[0]["count"].as_u64(),
            errors[0]["source"].as_str()
        ),
        (Some("customers"), Some(3), Some("reported"))
    );
    assert_eq!(
        (errors[1]["category"].as_str(), errors[1]["source"].as_str()),
        (Some("duplicate"), Some("seen"))
    );
    assert_eq!(r["errors_seen_total"], 4);

    assert_eq!(r["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(r["installs"][0]["package"], "reference-data.zip");
    assert_eq!(r["installs"][0]["execution_id"], "exec-0001");

    // Timeline: the retried step's first start, its last attempt's duration and its elapsed time.
    let steps = r["steps"].as_array().unwrap();
    let sample = steps.iter().find(|s| s["id"] == "validate.sample").unwrap();
    assert_eq!(sample["attempts"], 2);
    assert_eq!(sample["first_started_at"], "2027-01-15T09:12:00.000Z");
    assert_eq!(sample["duration_ms"], 2 * 60_000);
    assert_eq!(sample["elapsed_ms"], 10 * 60_000);
    let gate = steps.iter().find(|s| s["id"] == "wave-1:gate").unwrap();
    assert_eq!(gate["status"], "waived");

    // Planned vs actual: migrate = import (plan estimate 10 min) + wave-1 (15 + 1 min) + wave-2 (15 + 1 min).
    let phases = r["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(names, ["freeze", "migrate", "validate"]);
    assert_eq!(phases[1]["planned_ms"], (10 + 16 + 16) * 60_000);
    assert_eq!(phases[1]["actual_ms"], (71 - 5) * 60_000);
    assert_eq!(phases[1]["over_ms"], (66 - 42) * 60_000);
    assert_eq!(phases[0]["status"], "done");
    let waves = r["waves"].as_array().unwrap();
    assert_eq!(waves[0]["maps"], serde_json::json!(["customers", "vendors"]));
    assert_eq!(waves[0]["gate_passed"], false);

    // Charts: one series per parity row, ending at the last value.
    let series = r["charts"]["parity"].as_array().unwrap();
    assert_eq!(series.len(), 4);
    assert_eq!(
        series[0]["label"], "vendors/USMF",
        "the largest drift after the sync comes first (not the copy's 2000-row start)"
    );
    assert_eq!(
        series[0]["points"].as_array().unwrap().last().unwrap()["value"],
        10
    );
    assert_eq!(
        r["charts"]["errors"].as_array().unwrap().last().unwrap()["value"],
        4
    );
}

#[test]
fn run_selects_the_rehearsal_by_id_or_prefix_and_unknown_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let r = json_report(&path, &["--run", REHEARSAL]);
    assert_eq!(r["run"]["run_id"], REHEARSAL);
    assert_eq!(r["run"]["outcome"], "failed");
    assert_eq!(r["run"]["outcome_detail"], "rehearsal stopped");
    assert_eq!(r["run"]["events"], 8);
    assert_eq!(r["runs"].as_array().unwrap().len(), 2);
    assert_eq!(r["runs"][0]["selected"], true);
    let r = json_report(&path, &["--run", "rehearsal"]);
    assert_eq!(r["run"]["run_id"], REHEARSAL);
    let (code, _, err) = report(&path, &["--run", "nope"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn markdown_has_every_section_and_csv_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let (code, md, err) = report(&path, &[]);
    assert_eq!(code, 0, "{err}");
    for section in [
        "## Run summary",
        "| Outcome | succeeded with 1 waiver, 0 skips |",
        "| Waived and skipped | wave-1:gate (waived: 10 blocked vendors, waived by finance (ticket FIN-42)) |",
        "| FAILED, waived |",
        "## Preflight",
        "## Planned vs actual by phase",
        "## Waves",
        "## Timeline of steps",
        "## Operator decisions",
        "## Gates",
        "## Parity before and after",
        "## Dual-write error totals by source",
        "## Alerts",
        "## DMF install records",
    ] {
        assert!(md.contains(section), "missing {section}");
    }
    assert!(md.contains("| 2027-01-15T08:52:00.000Z |") && md.contains("FIN-42"));
    assert!(!md.contains("UNVERIFIED"));

    let out = dir.path().join("csv");
    let (code, _, err) = report(&path, &["--format", "csv", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let r = json_report(&path, &[]);
    for (file, rows) in [
        ("runs.csv", 2),
        ("steps.csv", r["steps"].as_array().unwrap().len()),
        ("decisions.csv", 4),
        ("gates.csv", 4),
        ("parity.csv", 4),
        ("errors.csv", 2),
        ("alerts.csv", 1),
        ("installs.csv", 1),
        ("preflights.csv", 0),
        ("preflight_checks.csv", 0),
        ("rows.csv", 0),
        ("row_sample.csv", 0),
        ("sample_keys.csv", 0),
        ("errors_resolved.csv", 0),
    ] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        let records = parse_csv(&text);
        assert_eq!(records.len(), rows + 1, "{file}: {text}");
        let width = records[0].len();
        assert!(records.iter().all(|r| r.len() == width), "{file}: ragged rows");
        assert!(records.iter().skip(1).all(|r| r[0] == "verified"), "{file}");
    }
    let decisions = parse_csv(&std::fs::read_to_string(out.join("decisions.csv")).unwrap());
    let reason = decisions[0].iter().position(|h| h == "reason").unwrap();
    assert_eq!(
        decisions[2][reason],
        "10 blocked vendors, waived by finance (ticket FIN-42)"
    );
    let (code, _, _) = report(&path, &["--format", "csv"]);
    assert_eq!(code, 2, "csv needs a directory");
}

/// A strict RFC 4180 reader: CRLF records, quoted fields with doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("bare LF outside quotes"),
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "the last record must end with CRLF"
    );
    records
}

#[test]
fn html_is_one_self_contained_file_with_two_charts() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    let file = dir.path().join("r.html");
    let (code, _, err) = report(&path, &["--format", "html", "-o", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for banned in ["http:", "https:", "<script", "@import", "url(", "<link", "src="] {
        assert!(
            !html.to_lowercase().contains(banned),
            "the report contains {banned}"
        );
    }
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(
        html.matches("<polyline").count(),
        5,
        "four parity rows and the errors line"
    );
    assert!(html.contains("FIN-42") && html.contains("Journal verified"));
}

#[test]
fn a_tampered_journal_is_refused_unless_unverified_then_marked_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    tamper(
        &path,
        "UPDATE events SET payload = replace(payload, 'FIN-42', 'FIN-43') WHERE kind = 'operator_decision'",
    );
    let (code, out, err) = report(&path, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("does not verify") && err.contains("--unverified"),
        "{err}"
    );

    let (code, md, _) = report(&path, &["--unverified"]);
    assert_eq!(code, 0);
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
    assert!(headings.len() >= 10);
    assert!(headings.iter().all(|h| h.contains("UNVERIFIED")), "{headings:?}");

    let html_file = dir.path().join("u.html");
    let (code, _, _) = report(
        &path,
        &[
            "--unverified",
            "--format",
            "html",
            "-o",
            html_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert_eq!(
        html.matches("<h2>").count(),
        html.matches(r#"<span class="tag">UNVERIFIED</span></h2>"#)
            .count()
    );
    assert!(html.contains(r#"<div class="banner">UNVERIFIED"#));

    let r = json_report(&path, &["--unverified"]);
    assert_eq!(r["verification"]["verified"], false);
    assert!(
        r["verification"]["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("edited")
    );

    let out = dir.path().join("csv");
    let (code, _, _) = report(
        &path,
        &["--unverified", "--format", "csv", "-o", out.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    for file in cutover::audit::csv::FILES {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            text.lines().skip(1).all(|l| l.starts_with("UNVERIFIED,")),
            "{file}"
        );
    }
}

#[test]
fn no_output_carries_a_secret_or_a_bearer_credential() {
    const SECRET: &str = "planted-client-secret-9f8e7d";
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), Some(SECRET));
    let mut texts = Vec::new();
    for format in ["md", "html", "json"] {
        let (code, out, err) = report(&path, &["--format", format]);
        assert_eq!(code, 0, "{err}");
        texts.push((format.to_owned(), out));
    }
    let csv_dir = dir.path().join("csv");
    assert_eq!(
        report(&path, &["--format", "csv", "-o", csv_dir.to_str().unwrap()]).0,
        0
    );
    for file in cutover::audit::csv::FILES {
        texts.push((
            file.to_owned(),
            std::fs::read_to_string(csv_dir.join(file)).unwrap(),
        ));
    }
    let (_, verify_out, _) = cutover(&["verify", path.to_str().unwrap()]);
    texts.push(("verify".into(), verify_out));
    // The planted text did reach the report (redacted), so the scan is not vacuous.
    assert!(texts[0].1.contains("[REDACTED]"), "{}", texts[0].1);
    for (name, text) in &texts {
        assert!(!text.contains(SECRET), "{name} contains the secret");
        assert!(!text.contains("Bearer "), "{name} contains a bearer credential");
    }
}

#[test]
fn the_shipped_schema_is_the_generated_one_and_validates_the_demo_report() {
    let shipped_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/report.schema.json");
    let generated = cutover::audit::schema::generate();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&shipped_path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&shipped_path).unwrap_or_default();
    assert!(
        shipped == generated,
        "assets/report.schema.json is out of date; regenerate it with\n  UPDATE_SCHEMA=1 cargo test --test audit_report"
    );
    let schema: Value = serde_json::from_str(&shipped).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = build_demo(dir.path(), None);
    for extra in [&[][..], &["--run", REHEARSAL][..]] {
        let report = json_report(&path, extra);
        let mut errors = Vec::new();
        validate(&schema, &schema, &report, "$", &mut errors);
        assert!(errors.is_empty(), "{errors:#?}");
    }
    // The validator is not vacuous: it rejects a missing field, a wrong type and an unknown field.
    let mut bad = json_report(&path, &[]);
    bad.as_object_mut().unwrap().remove("gates_total");
    bad["run"]["events"] = Value::String("many".into());
    bad["phases"][0]["surprise"] = Value::Bool(true);
    let mut errors = Vec::new();
    validate(&schema, &schema, &bad, "$", &mut errors);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

/// A run whose runbook drives the dual-write gateway says so in the report (JSON and the summary table).
#[test]
fn a_gateway_mode_run_is_labelled_unsupported_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.journal");
    let text = format!(
        "runbook: gw\nversion: 1.0.0\n{}phases:\n  - id: p\n    steps:\n      - {{ id: m, kind: manual, instructions: go }}\n",
        crate::support::exec::environments(false)
    );
    {
        let start = support::t0();
        let (j, mut r) = support::recorder(&path, WEEKEND, start, None);
        let Event::RunStarted {
            run_id,
            operator,
            host,
            started_at,
            freeze_window,
            steps,
            maps,
            time_scale,
            ..
        } = support::run_started(WEEKEND, "alice", start)
        else {
            unreachable!()
        };
        r.at_min(0.0).ev(Event::RunStarted {
            run_id,
            runbook: RunbookInfo {
                name: "gw".into(),
                version: "1.0.0".into(),
                sha256: cutover::util::sha256_hex(&text),
                text,
            },
            operator,
            host,
            started_at,
            freeze_window,
            steps,
            maps,
            time_scale,
        });
        drop(r);
        j.close().unwrap();
    }
    let r = json_report(&path, &[]);
    let labels = r["run"]["unsupported"].as_array().unwrap();
    assert_eq!(labels.len(), 1, "{labels:?}");
    let label = labels[0].as_str().unwrap();
    assert!(
        label.contains("dual-write gateway mode: unsupported by Microsoft") && label.contains("dualwrite"),
        "{label}"
    );
    let (code, md, err) = report(&path, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("Unsupported by Microsoft") && md.contains(label),
        "{md}"
    );
    // The demo journal's runbook uses no gateway: nothing is labelled.
    let demo = build_demo(dir.path(), None);
    assert_eq!(
        json_report(&demo, &[])["run"]["unsupported"],
        serde_json::json!([])
    );
}

/// Each error figure names its source; a source that could not be read is "not available", never a zero.
#[test]
fn error_totals_name_their_source_and_an_unreadable_one_is_not_available() {
    use cutover::engine::Event;
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.journal");
    {
        let (j, mut r) = support::recorder(&path, WEEKEND, support::t0(), None);
        r.at_min(0.0)
            .ev(support::run_started(WEEKEND, "alice", support::t0()));
        r.at_min(5.0).ev(Event::ErrorCounts {
            map: "customers".into(),
            by_category: BTreeMap::from([("plugin_exception".to_string(), 2)]),
            source: Some("dataverse.asyncoperations".into()),
            unavailable: None,
            present: None,
        });
        r.ev(Event::ErrorCounts {
            map: "customers".into(),
            by_category: BTreeMap::new(),
            source: Some("dataverse.plugintracelogs".into()),
            unavailable: Some("HTTP 403: missing prvReadPluginTraceLog".into()),
            present: None,
        });
        drop(r);
        j.close().unwrap();
    }
    let r = json_report(&path, &[]);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let by = |source: &str| {
        errors
            .iter()
            .find(|e| e["source"] == source)
            .unwrap_or_else(|| panic!("no row for {source}: {errors:?}"))
    };
    let jobs = by("dataverse.asyncoperations");
    assert_eq!(
        (jobs["category"].as_str(), jobs["count"].as_u64()),
        (Some("plugin_exception"), Some(2))
    );
    assert!(jobs.get("unavailable").is_none(), "{jobs}");
    let traces = by("dataverse.plugintracelogs");
    assert!(
        traces["unavailable"].as_str().unwrap().contains("HTTP 403"),
        "{traces}"
    );
    let (code, md, err) = report(&path, &["--format", "md"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("not available (HTTP 403: missing prvReadPluginTraceLog)"),
        "{md}"
    );
}

#[test]
fn row_level_parity_is_in_every_format_with_its_sample_keys() {
    use cutover::engine::event::{FieldDifference, RowClass, RowDifference};
    use cutover::engine::{Event, event::RunOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.journal");
    let (j, mut r) = support::recorder(&path, "rows-run", support::t0(), None);
    r.at_min(0.0)
        .ev(support::run_started("rows-run", "alice", support::t0()));
    r.at_min(5.0).ev(Event::RowsReconciled {
        step: "validate.sample".into(),
        map: "customers".into(),
        company: Some("USMF".into()),
        source_rows: 1000,
        target_rows: 1000,
        matching: 998,
        missing: 1,
        extra: 1,
        different: 0,
        sample: vec![
            RowDifference {
                class: RowClass::Missing,
                key: "US-0007".into(),
                fields: vec![],
            },
            RowDifference {
                class: RowClass::Extra,
                key: "US-9999".into(),
                fields: vec![],
            },
        ],
        scratch_bytes: 86_016,
    });
    r.at_min(6.0).ev(Event::RowsReconciled {
        step: "validate.sample".into(),
        map: "vendors".into(),
        company: Some("USMF".into()),
        source_rows: 300,
        target_rows: 300,
        matching: 299,
        missing: 0,
        extra: 0,
        different: 1,
        sample: vec![RowDifference {
            class: RowClass::Different,
            key: "V-0042".into(),
            fields: vec![FieldDifference {
                field: "VendorOrganizationName".into(),
                source: "Fabrikam Ltd".into(),
                target: "Fabrikam Limited".into(),
            }],
        }],
        scratch_bytes: 20_480,
    });
    r.at_min(7.0).ev(Event::RunFinished {
        outcome: RunOutcome::Succeeded,
    });
    drop(r);
    j.close().unwrap();

    let v = json_report(&path, &[]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (
            rows[0]["map"].as_str(),
            rows[0]["missing"].as_u64(),
            rows[0]["extra"].as_u64()
        ),
        (Some("customers"), Some(1), Some(1))
    );
    assert_eq!(
        rows[1]["sample"][0]["differences"][0],
        "VendorOrganizationName: Fabrikam Ltd ≠ Fabrikam Limited"
    );
    let (code, md, err) = report(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let section = md
        .split("## Row-level parity")
        .nth(1)
        .expect("a row-level section");
    assert!(
        section.contains("US-0007") && section.contains("missing"),
        "{section}"
    );
    assert!(section.contains("V-0042"), "{section}");
    let out = dir.path().join("csv");
    let (code, _, err) = report(&path, &["--format", "csv", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let sample = parse_csv(&std::fs::read_to_string(out.join("row_sample.csv")).unwrap());
    assert_eq!(sample.len(), 4, "header and three keys: {sample:?}");
    let key = sample[0].iter().position(|h| h == "key").unwrap();
    let keys: Vec<&str> = sample[1..].iter().map(|r| r[key].as_str()).collect();
    assert_eq!(keys, ["US-0007", "US-9999", "V-0042"]);
}

#[test]
fn sample_keys_that_differed_and_errors_later_resolved_are_in_every_format() {
    use cutover::engine::event::{ErrorEntry, FieldDifference, RowClass, RunOutcome, SampledKey};
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.journal");
    let secret = "sample-secret-value-123";
    let (j, mut r) = support::recorder(&path, "ev-run", support::t0(), Some(secret));
    r.at_min(0.0)
        .ev(support::run_started("ev-run", "alice", support::t0()));
    r.at_min(5.0).ev(Event::SampleDiffered {
        step: "validate.sample".into(),
        map: "customers".into(),
        keys: vec![
            SampledKey {
                company: Some("USRT".into()),
                class: RowClass::Different,
                key: "US-0042".into(),
                fields: vec![FieldDifference {
                    field: "CustomerGroupId".into(),
                    source: "30".into(),
                    target: format!("10 {secret}"),
                }],
            },
            SampledKey {
                company: Some("DEMF".into()),
                class: RowClass::Missing,
                key: "DE-0007".into(),
                fields: vec![],
            },
        ],
    });
    let entry = |id: &str, key: &str| ErrorEntry {
        id: id.into(),
        at: support::t0(),
        map: "vendors".into(),
        key: key.into(),
        category: "missing_lookup".into(),
        message: format!("Lookup for 'parents' could not be resolved ({key})"),
    };
    let counts = |present: Option<Vec<&str>>, n: u64| Event::ErrorCounts {
        map: "vendors".into(),
        by_category: BTreeMap::from([("missing_lookup".to_string(), n)]),
        source: Some("dataverse.asyncoperations".into()),
        unavailable: None,
        present: present.map(|v| v.into_iter().map(str::to_owned).collect()),
    };
    // Two errors seen; a later read lists only one of them (and every entry it holds); the last read
    // lists the same one again: the other was resolved.
    r.at_min(6.0).ev(Event::ErrorEntries {
        map: "vendors".into(),
        entries: vec![entry("job-1", "V-1"), entry("job-2", "V-2")],
        source: Some("dataverse.asyncoperations".into()),
    });
    r.ev(counts(Some(vec!["job-1", "job-2"]), 2));
    r.at_min(20.0).ev(counts(Some(vec!["job-2"]), 1));
    r.at_min(30.0).ev(counts(Some(vec!["job-2"]), 1));
    // A source whose last read listed only a sample: nothing can be said resolved.
    r.ev(Event::ErrorEntries {
        map: "vendors".into(),
        entries: vec![entry("dmf-1", "V-3")],
        source: Some("dmf.execution_errors".into()),
    });
    r.ev(Event::ErrorCounts {
        map: "vendors".into(),
        by_category: BTreeMap::from([("missing_lookup".to_string(), 70)]),
        source: Some("dmf.execution_errors".into()),
        unavailable: None,
        present: None,
    });
    r.at_min(31.0).ev(Event::RunFinished {
        outcome: RunOutcome::Succeeded,
    });
    drop(r);
    j.close().unwrap();

    let v = json_report(&path, &[]);
    let keys = v["sample_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(v["sample_keys_total"], 2);
    assert_eq!(
        (
            keys[0]["map"].as_str(),
            keys[0]["company"].as_str(),
            keys[0]["class"].as_str(),
            keys[0]["key"].as_str()
        ),
        (
            Some("customers"),
            Some("USRT"),
            Some("different"),
            Some("US-0042")
        )
    );
    assert_eq!(keys[0]["differences"][0], "CustomerGroupId: 30 ≠ 10 [REDACTED]");
    assert_eq!(keys[1]["class"], "missing");
    let resolved = v["errors_resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(
        (
            resolved[0]["id"].as_str(),
            resolved[0]["key"].as_str(),
            resolved[0]["source"].as_str()
        ),
        (Some("job-1"), Some("V-1"), Some("dataverse.asyncoperations"))
    );
    assert!(
        resolved[0]["resolved_by"].as_str().unwrap() < v["run"]["finished_at"].as_str().unwrap(),
        "{resolved:?}"
    );

    let (code, md, err) = report(&path, &[]);
    assert_eq!(code, 0, "{err}");
    let section = md
        .split("## Sample keys that differed")
        .nth(1)
        .expect("a sample-keys section");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("US-0042")
            && section.contains("USRT")
            && section.contains("CustomerGroupId: 30 ≠ 10"),
        "{section}"
    );
    assert!(
        section.contains("DE-0007") && section.contains("DEMF"),
        "{section}"
    );
    let section = md
        .split("## Errors resolved during the run")
        .nth(1)
        .expect("a resolved-errors section");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("V-1") && !section.contains("V-2") && !section.contains("V-3"),
        "{section}"
    );
    assert!(!md.contains(secret), "the secret reached the report");

    let (code, html, err) = report(&path, &["--format", "html"]);
    assert_eq!(code, 0, "{err}");
    assert!(html.contains("Sample keys that differed") && html.contains("DE-0007"));
    assert!(html.contains("Errors resolved during the run") && html.contains("V-1"));
    assert!(!html.contains(secret));

    let out = dir.path().join("csv");
    let (code, _, err) = report(&path, &["--format", "csv", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let keys = parse_csv(&std::fs::read_to_string(out.join("sample_keys.csv")).unwrap());
    assert_eq!(keys.len(), 3, "header and two keys: {keys:?}");
    let resolved = parse_csv(&std::fs::read_to_string(out.join("errors_resolved.csv")).unwrap());
    let id = resolved[0].iter().position(|h| h == "id").unwrap();
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[1][id], "job-1");
}
