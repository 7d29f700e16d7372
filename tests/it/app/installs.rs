//! `cutover installs` over two journals of two environments: every install, newest first, and the package
//! installed at different versions in the two flagged as drift.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use exec_support::{FNO, assert_ok, start};

/// A runbook whose F&O environment is called `env`, importing reference-data and calendars.
fn runbook(env: &str, version: &str) -> String {
    let auth = "auth: { tenant: t-0000, client_id: c-0000, client_secret: \"${TEST_SECRET}\" }";
    format!(
        r#"runbook: installs-{env}
version: 1.0.0
environments:
  {env}: {{ kind: fno, url: {FNO}, {auth} }}
phases:
  - id: p
    steps:
      - {{ id: reference, kind: dmf.import, env: {env}, definition_group: CutoverDelta, package_file: packages/reference-data.zip, package_version: "{version}", entities: [Customer groups] }}
      - {{ id: calendars, kind: dmf.import, env: {env}, definition_group: CutoverDelta, package_file: packages/calendars.zip, package_version: "2.0.0", entities: [Calendars] }}
"#
    )
}

/// Runs both imports in a fresh journal of environment `env`, reference-data at `version`; returns the harness.
async fn journal(env: &str, version: &str) -> exec_support::Harness {
    let h = start(None, &runbook(env, version)).await;
    let pkg = |v: &str, e: &str| {
        cutover::util::dmf_package::build_package("CutoverDelta", Some(v), &[(e, 1, 1, 1)])
    };
    std::fs::write(
        h.dir.path().join("packages/reference-data.zip"),
        pkg(version, "Customer groups"),
    )
    .unwrap();
    std::fs::write(
        h.dir.path().join("packages/calendars.zip"),
        pkg("2.0.0", "Calendars"),
    )
    .unwrap();
    assert_ok(&h.run("reference").await);
    assert_ok(&h.run("calendars").await);
    h.events().await; // flushed
    h
}

fn installs(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("installs")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn installs_across_two_environments_flag_the_drifted_package() {
    let uat = journal("uat", "1.1.0").await;
    let prod = journal("prod", "1.0.0").await;
    let (j1, j2) = (
        uat.journal_path.display().to_string(),
        prod.journal_path.display().to_string(),
    );

    let (code, text) = installs(&[&j1, &j2]);
    assert_eq!(code, 1, "drift exits 1\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.contains("reference-data")).count(),
        3,
        "{text}"
    );
    let drift: Vec<&&str> = lines.iter().filter(|l| l.starts_with("drift: ")).collect();
    assert_eq!(drift.len(), 1, "one drifted package\n{text}");
    assert!(
        drift[0].starts_with("drift: reference-data: prod@")
            && drift[0].contains(" at 1.0.0, uat@")
            && drift[0].ends_with(" at 1.1.0"),
        "{text}"
    );
    // Newest first: prod's installs were journaled last.
    assert!(lines[1].contains("prod@"), "{text}");
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("calendars"))
            .all(|l| !l.ends_with("drift")),
        "{text}"
    );

    let (_, json) = installs(&[&j1, &j2, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let rows = v["installs"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(r["drift"], r["package"] == "reference-data", "{r}");
        assert_eq!(r["result"], "Succeeded");
    }
    assert_eq!(v["drift"].as_array().unwrap().len(), 1);

    let (_, csv) = installs(&[&j1, &j2, "--format", "csv", "--sort", "version"]);
    let csv: Vec<&str> = csv.lines().collect();
    assert!(
        csv[0].starts_with("at,environment,package,version,sha256"),
        "{csv:?}"
    );
    assert_eq!(csv.len(), 5);
    // By package, the highest version first.
    assert!(
        csv[1].contains(",calendars,2.0.0,")
            && csv[3].contains(",reference-data,1.1.0,")
            && csv[4].contains(",reference-data,1.0.0,"),
        "{csv:?}"
    );

    let (code, _) = installs(&[&j1]);
    assert_eq!(code, 0, "one environment alone cannot drift");
}

#[tokio::test]
async fn the_report_lists_every_install_of_the_journal_with_drift() {
    // One journal, two runs into two environments: run 1 imported 1.1.0 into uat...
    let uat = journal("uat", "1.1.0").await;
    let report = cutover::audit::build_report(&uat.journal_path, None, true).unwrap();
    assert_eq!(report.package_installs.len(), 2);
    assert!(report.package_drift.is_empty());
    assert!(
        report
            .package_installs
            .iter()
            .all(|i| i.environment.starts_with("uat@") && !i.drift)
    );
    let md = cutover::audit::markdown::render(&report);
    assert!(
        !md.contains("Package installs in this journal"),
        "a single run's installs are the install table"
    );
}
