#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Rehearsing your own runbook without writing a scenario: `run R --sim` serves the runbook's own estate and
//! routes `notify` to the simulator (a rehearsal never posts to the real channel); `cutover sim
//! --from-runbook R` serves the same estate, and the production runbook's preflight passes against it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct SimGuard(std::path::PathBuf);

impl Drop for SimGuard {
    fn drop(&mut self) {
        cutover::app::sim_process::stop_recorded(&self.0);
    }
}

const RUNBOOK: &str = r#"runbook: fabrikam-rehearsal
version: 0.1.0
environments:
  fno:
    kind: fno
    url: ${FNO_URL}
    auth: { tenant: "${TENANT_ID}", client_id: "${FNO_CLIENT_ID}", client_secret: "${FNO_CLIENT_SECRET}" }
  dataverse:
    kind: dataverse
    url: ${DATAVERSE_URL}
    auth: { tenant: "${TENANT_ID}", client_id: "${DV_CLIENT_ID}", client_secret: "${DV_CLIENT_SECRET}" }
maps:
  parties:
    source: fno:FabrikamParties
    target: dataverse:cr9_parties
    companies: [FRRT, FRSI]
    rows: { FRRT: 700, FRSI: 300 }
    key: { source: PartyNumber, target: cr9_partynumber }
    compare: { PartyName: cr9_name }
phases:
  - id: freeze
    steps:
      - id: announce
        kind: notify
        url: https://fabrikam.webhook.office.com/webhookb2/real-channel
        text: "Rehearsal ${run.id} started"
      - id: count
        kind: parity
        maps: all
        record_baseline: true
"#;

#[test]
fn run_with_sim_rehearses_the_runbooks_own_estate_and_never_posts_to_the_real_channel() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("rehearsal.yaml");
    std::fs::write(&rb, RUNBOOK).unwrap();
    let journal = dir.path().join("rehearsal.journal");
    let _sim = SimGuard(journal.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(dir.path())
        .args([
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--auto-approve",
            "--sim",
            "--journal",
        ])
        .arg(&journal)
        .envs([
            ("FNO_URL", "https://fabrikam.operations.dynamics.com"),
            ("DATAVERSE_URL", "https://fabrikam.crm4.dynamics.com"),
            ("TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("FNO_CLIENT_ID", "f0f0f0f0-0000-4000-8000-00000000f001"),
            ("FNO_CLIENT_SECRET", "rehearsal-secret-0123456789"),
            ("DV_CLIENT_ID", "d0d0d0d0-0000-4000-8000-00000000d001"),
            ("DV_CLIENT_SECRET", "rehearsal-secret-9876543210"),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("fabrikam-rehearsal's own estate"), "{stderr}");

    // The simulator served the runbook's sets: the baseline counted 700 + 300 rows on the source.
    let events = crate::support::auth::journal_events(&journal);
    let counted: u64 = events
        .iter()
        .filter_map(|e| match e {
            cutover::engine::Event::ParitySample { map, source, .. } if map == "parties" => Some(*source),
            _ => None,
        })
        .sum();
    assert_eq!(counted, 1000, "{events:#?}");
    let routed = events.iter().any(|e| {
        matches!(e, cutover::engine::Event::Log { message, .. }
        if message.contains("posted to the simulator's webhook, not to fabrikam.webhook.office.com"))
    });
    assert!(routed, "{events:#?}");
    let scenario = std::fs::read_to_string(format!("{}.scenario.json", journal.display())).unwrap();
    assert!(
        scenario.contains("FabrikamParties") && scenario.contains("cr9_parties"),
        "{scenario}"
    );
}

#[test]
fn the_production_runbooks_preflight_passes_against_the_estate_derived_from_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(root)
        .args([
            "sim",
            "--from-runbook",
            "runbooks/contoso-weekend.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = sim.stdout.take().unwrap();
    let guard = Kill(sim);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();

    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .current_dir(root)
        .args([
            "preflight",
            "runbooks/contoso-weekend.yaml",
            "--sim-url",
            &url,
            "--format",
            "json",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let errors: Vec<&serde_json::Value> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let entity_lines = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "entity")
        .count();
    assert!(entity_lines >= 28, "both sides of 14 maps: {r:#}");
    drop(guard);
}
