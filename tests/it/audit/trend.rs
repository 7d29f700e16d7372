//! Hypercare (issue 21): seven simulated days of `runbooks/hypercare.yaml`, each `--new-run` into the same
//! journal against one simulator (`hypercare-drift`: a day passes in 16 real seconds, customers start drifting
//! early on day 4), then `cutover trend` shows the drift appear on day 4 and grow (table and CSV), the chain
//! verifies across the seven runs, and the HTML report's trend chart renders in headless Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cutover::engine::RunEnd;
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

async fn sim_now(url: &str) -> DateTime<Utc> {
    let v: serde_json::Value = cutover::connectors::net::client()
        .unwrap()
        .get(format!("{url}/_sim/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    DateTime::parse_from_rfc3339(v["sim_now"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn cutover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_days_of_hypercare_show_the_drift_planted_on_day_four() {
    let scenario =
        std::fs::read_to_string(format!("{ROOT}/runbooks/scenarios/hypercare-drift.yaml")).unwrap();
    let sim = cutover::sim::start(
        cutover::sim::Scenario::from_yaml(&scenario).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("hypercare.journal");
    let start = sim_now(&url).await;
    for day in 0..7u32 {
        let url2 = url.clone();
        let opts = RunOptions {
            runbook: Some(format!("{ROOT}/runbooks/hypercare.yaml").into()),
            journal: journal.clone(),
            operator: "hypercare-timer".into(),
            auto_approve: None,
            interactive: false,
            sim: SimTarget::Url(url.clone()),
            accept_changed_runbook: false,
            accept_inserted_steps: Vec::new(),
            take_over: false,
            new_run: true,
            resume_only: false,
            vars: Arc::new(move |n: &str| match n {
                "FNO_URL" => Some("https://contoso.operations.dynamics.com".into()),
                "DATAVERSE_URL" => Some("https://contoso.crm.dynamics.com".into()),
                "TENANT_ID" | "FNO_CLIENT_ID" | "DV_CLIENT_ID" => {
                    Some("00000000-0000-0000-0000-000000000021".into())
                }
                "FNO_CLIENT_SECRET" | "DV_CLIENT_SECRET" => Some("hypercare-test-secret".into()),
                "TEAMS_WEBHOOK_URL" => Some(format!("{url2}/_sim/webhook?sig=teams-key-2121")),
                _ => None,
            }),
            follow_delay: None,
        };
        let (handle, _, _) = start_engine(opts).await.unwrap();
        let end = handle.done.await.unwrap();
        assert!(matches!(end, RunEnd::Finished(_)), "day {}: {end:?}", day + 1);
        // The next day, simulated: wait on the simulator's clock.
        let next = start + chrono::Duration::days(i64::from(day) + 1);
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim_now(&url).await < next {
            assert!(Instant::now() < deadline, "the simulated day never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let j = journal.to_str().unwrap();
    let (code, runs, err) = cutover(&["runs", j]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        runs.lines().filter(|l| l.contains("hypercare")).count(),
        7,
        "{runs}"
    );
    let (code, _, err) = cutover(&["verify", j]);
    assert_eq!(code, 0, "the chain continues across the seven runs: {err}");

    // The table: customers level for three days, drifting from day 4 on and growing; vendors level.
    let (code, table, err) = cutover(&["trend", j]);
    assert_eq!(code, 0, "{err}");
    eprintln!("{table}");
    let (code, csv, err) = cutover(&["trend", "--format", "csv", j]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let col = |name: &str| {
        csv.lines()
            .next()
            .unwrap()
            .split(',')
            .position(|c| c == name)
            .unwrap()
    };
    let (day, map, drift, new, differ) = (
        col("day"),
        col("map"),
        col("drift"),
        col("errors"),
        col("sample_differ"),
    );
    let series = |m: &str| -> Vec<(String, i64, String, String)> {
        rows.iter()
            .filter(|r| r[map] == m)
            .map(|r| {
                (
                    r[day].clone(),
                    r[drift].parse().unwrap(),
                    r[new].clone(),
                    r[differ].clone(),
                )
            })
            .collect()
    };
    let customers = series("customers");
    assert_eq!(customers.len(), 7, "{table}");
    let days: Vec<String> = (0..7)
        .map(|d| (start + chrono::Duration::days(d)).format("%Y-%m-%d").to_string())
        .collect();
    assert_eq!(
        customers.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        days,
        "one run a simulated day: {table}"
    );
    for (i, c) in customers.iter().enumerate() {
        if i < 3 {
            assert_eq!(c.1, 0, "day {} has no drift yet: {table}", i + 1);
        } else {
            assert!(c.1 > 0, "day {} drifts: {table}", i + 1);
        }
    }
    assert!(
        customers[6].1 > customers[3].1 + 48,
        "the drift grows day by day: {table}"
    );
    assert_eq!(customers[2].2, "0", "no errors on day 3: {table}");
    assert!(
        customers[3].2.parse::<u64>().unwrap() > 0,
        "errors on day 4: {table}"
    );
    assert!(
        customers[4].3.parse::<u64>().unwrap() > 0,
        "the two-sided sample finds the missing rows: {table}"
    );
    assert!(series("vendors").iter().all(|v| v.1.abs() <= 1), "{table}");
    // The text table says the same, one line per map and day.
    let day4 = table
        .lines()
        .find(|l| l.starts_with(&days[3]) && l.contains("customers"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(day4.contains(&format!(" {} ", customers[3].1)), "{day4}");
    // JSON too.
    let (code, json, _) = cutover(&["trend", "--format", "json", j]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 14);

    // Seven Teams summaries with the day's figures, the webhook's key never journaled.
    let hook: serde_json::Value = cutover::connectors::net::client()
        .unwrap()
        .get(format!("{url}/_sim/webhook"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let summaries: Vec<&serde_json::Value> = hook["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["attachments"][0]["content"]["body"][0]["text"] == "Hypercare daily check")
        .collect();
    assert_eq!(summaries.len(), 7);
    let last = summaries[6]["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap();
    assert!(last.contains("(customers)") && !last.contains("n/a"), "{last}");
    let raw = std::fs::read(&journal).unwrap();
    assert!(!raw.windows(15).any(|w| w == b"teams-key-2121"));

    // The HTML report carries the trend chart; headless Chromium renders it with no console error.
    let html = dir.path().join("hypercare.html");
    let (code, _, err) = cutover(&["report", "--format", "html", "-o", html.to_str().unwrap(), j]);
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Trend: day by day"), "the trend section");
    let chart_at = page
        .find("aria-label=\"Trend: drift (source - target) per map, run by run\"")
        .unwrap();
    let chart = &page[chart_at..chart_at + page[chart_at..].find("</svg>").unwrap()];
    assert!(chart.contains("customers"), "a series per map");
    let png = dir.path().join("hypercare.png");
    let check = Command::new(format!("{ROOT}/scripts/check-report-html"))
        .arg(&html)
        .arg(&png)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        check.status.code(),
        Some(0),
        "the HTML report failed in Chromium:\n{said}"
    );
    assert!(said.contains("charts drawn, no console errors"), "{said}");
}
