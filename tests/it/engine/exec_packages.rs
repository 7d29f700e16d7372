//! `dmf.import` packages at run time: the pin and the manifest are checked on the bytes about to be uploaded, and
//! a package that fails them is refused before anything reaches the service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;
use crate::support::sim::request_log;

use exec_support::{assert_ok, environments, failure, start};

fn runbook(fields: &str) -> String {
    format!(
        r#"runbook: exec-packages
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - id: import
        kind: dmf.import
        env: fno
        definition_group: CutoverDelta
        package_file: packages/reference-data.zip
{fields}"#,
        environments(false)
    )
}

fn dmf_requests(log: &[(String, String)]) -> Vec<String> {
    log.iter()
        .filter(|(_, p)| p.contains("DataManagementDefinitionGroups") || p.contains("/_blob/"))
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

#[tokio::test]
async fn a_package_whose_hash_differs_from_the_pin_is_refused_before_anything_is_sent() {
    let pin = "ab".repeat(32);
    let h = start(None, &runbook(&format!("        package_sha256: \"{pin}\"\n"))).await;
    let msg = failure(&h.run("import").await);
    let zip = std::fs::read(h.dir.path().join("packages/reference-data.zip")).unwrap();
    let actual = cutover::util::sha256_hex(&zip);
    assert!(
        msg.contains("nothing was sent") && msg.contains(&actual) && msg.contains(&pin),
        "{msg}"
    );
    let log = request_log(&h.sim.url()).await;
    assert!(dmf_requests(&log).is_empty(), "{:?}", dmf_requests(&log));

    // The right pin imports.
    let h = start(None, &runbook(&format!("        package_sha256: {actual}\n        package_version: 1.0.0\n"))).await;
    assert_ok(&h.run("import").await);
}

#[tokio::test]
async fn a_manifest_version_that_differs_from_package_version_is_refused_before_anything_is_sent() {
    let h = start(None, &runbook("        package_version: 2.0.0\n")).await;
    let msg = failure(&h.run("import").await);
    assert!(
        msg.contains("is version 1.0.0 (its Manifest.xml), but package_version is 2.0.0"),
        "{msg}"
    );
    assert!(dmf_requests(&request_log(&h.sim.url()).await).is_empty());
}
