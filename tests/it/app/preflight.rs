#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `cutover preflight` as an operator runs it, against the simulator over real HTTP (`--sim-url` to a
//! simulator this test starts, so it can read the simulator's request log): the contoso estate is all ok and
//! nothing but reads reached it; each broken scenario names its problem and its fix with exit 2; `--journal`
//! leaves a `preflight_checked` event that decodes and a journal that verifies.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::sim as sim_support;

const RUNBOOK: &str = "runbooks/contoso-weekend.yaml";

fn scenario(name: &str) -> cutover::sim::Scenario {
    let path = format!("{}/runbooks/scenarios/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    cutover::sim::Scenario::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the binary off the runtime's threads (the simulator answers on them meanwhile).
async fn preflight(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    preflight_of(RUNBOOK, url, extra, env).await
}

async fn preflight_of(runbook: &str, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let runbook = runbook.to_owned();
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    for v in [
        "FNO_URL",
        "DATAVERSE_URL",
        "TENANT_ID",
        "FNO_CLIENT_ID",
        "FNO_CLIENT_SECRET",
        "DV_CLIENT_ID",
        "DV_CLIENT_SECRET",
        "TEAMS_WEBHOOK_URL",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.args(["preflight", &runbook, "--sim-url", url, "--format", "json"])
        .args(extra);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn requests(url: &str) -> Vec<(String, String)> {
    sim_support::request_log(url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contoso_estate_passes_every_check_and_the_simulator_saw_only_reads() {
    let sim = sim_support::start_sim(scenario("contoso-weekend")).await;
    let out = preflight(&sim.url(), &[], &[]).await;
    let r = report(&out);
    let checks = r["checks"].as_array().unwrap();
    let bad: Vec<&Value> = checks.iter().filter(|c| c["status"] != "ok").collect();
    assert!(bad.is_empty(), "not ok: {bad:#?}");
    assert_eq!(out.status.code(), Some(0));
    for name in [
        "token",
        "reach",
        "entity",
        "company_lookup",
        "dmf_group",
        "package",
        "dualwrite",
        "webhook",
        "clock",
        "headroom",
    ] {
        assert!(
            checks.iter().any(|c| c["check"] == name),
            "no {name} line: {checks:#?}"
        );
    }
    let pkg = checks.iter().find(|c| c["check"] == "package").unwrap();
    let sha = cutover::util::sha256_hex(
        std::fs::read(format!(
            "{}/runbooks/packages/reference-data.zip",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    );
    assert!(pkg["message"].as_str().unwrap().contains(&sha), "{pkg}");

    let log = requests(&sim.url()).await;
    let writes: Vec<&(String, String)> = log
        .iter()
        .filter(|(m, p)| !(m == "GET" || m == "HEAD" || (m == "POST" && p.ends_with("/oauth2/v2.0/token"))))
        .collect();
    assert!(writes.is_empty(), "the preflight wrote: {writes:?}");
    assert!(
        log.iter().any(|(m, p)| m == "HEAD" && p == "/_sim/webhook"),
        "no webhook probe in {log:?}"
    );
    assert!(log.iter().any(|(m, _)| m == "GET"), "{log:?}");
    assert_eq!(sim.state()["webhooks"], 0, "a message was posted");
    assert_eq!(sim.state()["side_effects"], serde_json::json!({}));
}

/// (scenario, env, check, subject, words of the message, words of the fix)
/// (scenario, variables, check, subject, words of the message, words of the fix)
type Broken = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const BROKEN: &[Broken] = &[
    (
        "preflight-missing-entity-set",
        &[],
        "entity",
        "customer_groups: fno:CustomerGroups",
        "no entity set `CustomerGroups`",
        "correct the map's `source`",
    ),
    (
        "preflight-wrong-company-lookup",
        &[],
        "company_lookup",
        "customers: dataverse:accounts",
        "its lookup to cdm_company is `cr123_legalentity`",
        "company_lookup: cr123_legalentity",
    ),
    (
        "preflight-missing-dmf-group",
        &[],
        "dmf_group",
        "fno: CutoverReferenceData",
        "no data project `CutoverReferenceData`",
        "Data management → Import",
    ),
    (
        "preflight-expired-secret",
        &[
            ("FNO_CLIENT_ID", "f0f0f0f0-0000-4000-8000-00000000f001"),
            ("FNO_CLIENT_SECRET", "fno-secret-2025"),
            ("DV_CLIENT_ID", "d0d0d0d0-0000-4000-8000-00000000d001"),
            ("DV_CLIENT_SECRET", "dv-secret-2026"),
        ],
        "token",
        "fno (client_secret)",
        "AADSTS7000222",
        "the client secret has expired: create a new one",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_scenario_is_named_with_its_fix_and_exits_2() {
    for (name, env, check, subject, message, fix) in BROKEN {
        let sim = sim_support::start_sim(scenario(name)).await;
        let out = preflight(&sim.url(), &[], env).await;
        let r = report(&out);
        let errors: Vec<&Value> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "error")
            .collect();
        assert_eq!(errors.len(), 1, "{name}: exactly the one problem: {errors:#?}");
        let e = errors[0];
        assert_eq!(
            (e["check"].as_str(), e["subject"].as_str()),
            (Some(*check), Some(*subject)),
            "{name}: {e:#}"
        );
        assert!(e["message"].as_str().unwrap().contains(message), "{name}: {e:#}");
        assert!(e["fix"].as_str().unwrap().contains(fix), "{name}: {e:#}");
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert_eq!(r["exit"], 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        for secret in ["fno-secret-2025", "dv-secret-2026"] {
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains(secret) && !stderr.contains(secret),
                "{name} printed a secret"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_preflight_decodes_and_the_journal_verifies() {
    let sim = sim_support::start_sim(scenario("preflight-missing-dmf-group")).await;
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("weekend.journal");
    let out = preflight(&sim.url(), &["--journal", j.to_str().unwrap()], &[]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = cutover::journal::JournalReader::open_read_only(&j).unwrap();
    let (kind, payload): (String, String) = reader
        .connection()
        .query_row(
            "SELECT kind, payload FROM events WHERE kind = 'preflight_checked'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let cutover::model::Event::PreflightChecked {
        runbook,
        target,
        checks,
        ..
    } = cutover::journal::decode::decode_event(&kind, &payload).unwrap()
    else {
        panic!("not a preflight: {payload}");
    };
    assert_eq!(
        (runbook.as_str(), target.as_str()),
        ("contoso-weekend", "simulator")
    );
    assert!(
        checks
            .iter()
            .any(|c| c.check == "dmf_group" && c.status == cutover::model::event::CheckStatus::Error)
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .args(["verify", j.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fix_it_names_for_a_custom_company_lookup_makes_the_check_pass() {
    // The runbook follows the fix of the wrong-lookup scenario: customers names the table's own lookup.
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::create_dir(dir.path().join("packages")).unwrap();
    std::fs::copy(
        format!("{root}/runbooks/packages/reference-data.zip"),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let text = std::fs::read_to_string(format!("{root}/{RUNBOOK}")).unwrap();
    let anchor = "    target: dataverse:accounts\n";
    assert!(text.contains(anchor));
    let fixed = text.replacen(
        anchor,
        "    target: dataverse:accounts\n    company_lookup: cr123_legalentity\n",
        1,
    );
    let path = dir.path().join("weekend.yaml");
    std::fs::write(&path, fixed).unwrap();

    let sim = sim_support::start_sim(scenario("preflight-wrong-company-lookup")).await;
    let out = preflight_of(path.to_str().unwrap(), &sim.url(), &[], &[]).await;
    let r = report(&out);
    let line = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "company_lookup" && c["subject"] == "customers: dataverse:accounts")
        .cloned()
        .unwrap_or_else(|| panic!("no company_lookup line for customers: {r:#}"));
    assert_eq!(line["status"], "ok", "{line:#}");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("_cr123_legalentity_value"),
        "{line:#}"
    );
    assert_eq!(out.status.code(), Some(0), "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_pack_shows_the_journaled_preflight_with_its_problem_and_fix() {
    let sim = sim_support::start_sim(scenario("preflight-missing-dmf-group")).await;
    let dir = tempfile::tempdir().unwrap();
    let j = crate::support::audit::build_demo(dir.path(), None);
    let js = j.to_str().unwrap().to_owned();
    let out = preflight(&sim.url(), &["--journal", &js], &[]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, json, err) = crate::support::audit::cutover(&["report", &js, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&json).unwrap();
    let p = r["preflights"].as_array().unwrap();
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(
        (
            p[0]["target"].as_str(),
            p[0]["errors"].as_u64(),
            p[0]["runbook"].as_str()
        ),
        (Some("simulator"), Some(1), Some("contoso-weekend"))
    );
    // The demo run ran another runbook than the preflight checked: the report says so.
    assert_eq!(p[0]["same_runbook"], false);
    let checks = p[0]["checks"].as_array().unwrap();
    assert!(p[0]["ok"].as_u64().unwrap() > 10 && checks.len() > 10, "{p:#?}");

    let (code, md, err) = crate::support::audit::cutover(&["report", &js, "--format", "md"]);
    assert_eq!(code, 0, "{err}");
    let section = md.split("## Preflight").nth(1).expect("no Preflight section");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains("no data project `CutoverReferenceData`"),
        "{section}"
    );
    assert!(section.contains("Data management → Import"), "{section}");
    assert!(
        !section.contains("| ok |"),
        "ok lines belong to the CSV only: {section}"
    );

    let csv_dir = dir.path().join("csv");
    let (code, _, err) =
        crate::support::audit::cutover(&["report", &js, "--format", "csv", "-o", csv_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines = std::fs::read_to_string(csv_dir.join("preflight_checks.csv")).unwrap();
    assert_eq!(
        lines.lines().count(),
        checks.len() + 1,
        "every line, header first"
    );
}

#[test]
fn a_journal_without_a_preflight_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let j = crate::support::audit::build_demo(dir.path(), None);
    let (code, md, err) = crate::support::audit::cutover(&["report", j.to_str().unwrap(), "--format", "md"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains("## Preflight\n\nNo preflight in this journal"),
        "{md}"
    );
}

/// The guardrails estate has one of each dual-write problem: the broken runbook's preflight names each with
/// its fix (a value the map misses, a value that does not exist, an option mapped twice, an option nothing
/// maps to, a lookup to a table no map syncs); the runbook that fixes them is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guardrails_estate_names_each_dual_write_problem_and_the_fixed_runbook_is_clean() {
    let sim = sim_support::start_sim(scenario("guardrails")).await;
    let out = preflight_of("runbooks/guardrails-broken.yaml", &sim.url(), &[], &[]).await;
    let r = report(&out);
    let checks = r["checks"].as_array().unwrap();
    let not_ok: Vec<&Value> = checks.iter().filter(|c| c["status"] != "ok").collect();
    let expect: &[(&str, &str, &str, &str)] = &[
        (
            "warning",
            "values",
            "mapped to no option: Canceled",
            "add them to the dual-write map's value map",
        ),
        (
            "error",
            "values",
            "maps `Cancelled`, which enum SalesStatus does not have",
            "Backorder, Delivered, Invoiced, Canceled",
        ),
        (
            "warning",
            "values",
            "option 192350001 is mapped twice: from Delivered and Invoiced",
            "its own option",
        ),
        (
            "warning",
            "values",
            "no F&O value maps to: 192350002 Invoiced",
            "retire the option",
        ),
        (
            "warning",
            "lookup",
            "a lookup to msdyn_deliverymode, and no map syncs msdyn_deliverymode",
            "add a map for msdyn_deliverymode in an earlier wave",
        ),
        (
            "warning",
            "automation",
            "plug-in step `Contoso.Plugins.SalesOrderCheck: Create of salesorder` on Create of salesorder is on",
            "dataverse.disable_automation",
        ),
        (
            "warning",
            "automation",
            "plug-in step `Contoso.Plugins.SalesOrderCheck: Update of salesorder` on Update of salesorder is on",
            "dataverse.disable_automation",
        ),
        (
            "warning",
            "automation",
            "cloud flow `Notify sales of a new order` triggered on salesorder is on",
            "flows: [\"Notify sales of a new order\"]",
        ),
    ];
    assert_eq!(not_ok.len(), expect.len(), "{not_ok:#?}");
    for (status, check, message, fix) in expect {
        assert!(
            not_ok.iter().any(|c| c["status"] == *status
                && c["check"] == *check
                && c["message"].as_str().unwrap().contains(message)
                && c["fix"].as_str().unwrap_or("").contains(fix)),
            "no {status} {check} `{message}` with fix `{fix}` in {not_ok:#?}"
        );
    }
    let lookup = not_ok.iter().find(|c| c["check"] == "lookup").unwrap();
    assert!(
        lookup["subject"]
            .as_str()
            .unwrap()
            .starts_with("sales_order_lines: salesorderdetails.msdyn_deliverymodeid"),
        "{lookup}"
    );
    assert_eq!(out.status.code(), Some(2));

    let out = preflight_of("runbooks/guardrails.yaml", &sim.url(), &[], &[]).await;
    let r = report(&out);
    let checks = r["checks"].as_array().unwrap();
    let bad: Vec<&Value> = checks.iter().filter(|c| c["status"] != "ok").collect();
    assert!(bad.is_empty(), "not ok: {bad:#?}");
    for check in ["values", "lookup", "automation"] {
        assert!(
            checks.iter().any(|c| c["check"] == check),
            "no {check} line: {checks:#?}"
        );
    }
    assert_eq!(out.status.code(), Some(0));
    let log = requests(&sim.url()).await;
    assert!(
        log.iter().any(|(m, p)| m == "GET" && p.contains("/Attributes(LogicalName='msdyn_salesstatus')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata")),
        "the option set was not read from the attribute metadata: {log:?}"
    );
    assert!(
        log.iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/Metadata/PublicEnumerations")),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_table_is_reported_missing_and_created_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::create_dir(dir.path().join("packages")).unwrap();
    std::fs::copy(
        format!("{root}/runbooks/packages/reference-data.zip"),
        dir.path().join("packages/reference-data.zip"),
    )
    .unwrap();
    let text = std::fs::read_to_string(format!("{root}/{RUNBOOK}")).unwrap();
    let anchor = "        package_file: packages/reference-data.zip\n";
    assert!(text.contains(anchor));
    let with_record = text.replacen(
        anchor,
        "        package_file: packages/reference-data.zip\n        record_install: { env: dataverse, table: cutover_packageinstall }\n",
        1,
    );
    let path = dir.path().join("weekend.yaml");
    std::fs::write(&path, with_record).unwrap();
    let sim = sim_support::start_sim(scenario("contoso-weekend")).await;
    let line = |out: &Output| {
        report(out)["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "install_table")
            .cloned()
            .unwrap_or_else(|| panic!("no install_table line: {:#}", report(out)))
    };
    let created = || {
        sim.state()["side_effects"]["dataverse.create_table:cutover_packageinstall"]
            .as_u64()
            .unwrap_or(0)
    };

    let out = preflight_of(path.to_str().unwrap(), &sim.url(), &[], &[]).await;
    let l = line(&out);
    assert_eq!(l["status"], "error", "{l:#}");
    assert!(
        l["fix"].as_str().unwrap().contains("--create-install-table"),
        "{l:#}"
    );
    assert_eq!(created(), 0, "not created unless asked");

    let out = preflight_of(
        path.to_str().unwrap(),
        &sim.url(),
        &["--create-install-table"],
        &[],
    )
    .await;
    let l = line(&out);
    assert_eq!(l["status"], "ok", "{l:#}");
    assert!(
        l["message"]
            .as_str()
            .unwrap()
            .contains("table created with its 10 columns"),
        "{l:#}"
    );
    assert_eq!(created(), 1);

    let out = preflight_of(
        path.to_str().unwrap(),
        &sim.url(),
        &["--create-install-table"],
        &[],
    )
    .await;
    assert!(line(&out)["message"].as_str().unwrap().contains("table exists"));
    assert_eq!(created(), 1, "an existing table is left alone");
}
