//! `dmf.import` packages checked offline by `validate`: the sha256 pin, the manifest's version, the entity order
//! against the maps' `depends_on` (at the step's line), unexpected entities, and unreadable zips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cutover::runbook::validate::{PackageFile, package_diagnostics};
use cutover::runbook::{Diagnostic, load};
use cutover::util::dmf_package::build_package;

/// A runbook with customer groups and customers (which depends on them), and one import of `pkg.zip`; `extra`
/// is appended to the step's fields.
fn runbook(extra: &str) -> String {
    format!(
        r#"runbook: packages
version: 1.0.0
environments:
  fno: {{ kind: fno, url: "http://127.0.0.1:9" }}
  dataverse: {{ kind: dataverse, url: "http://127.0.0.1:9" }}
maps:
  customer_groups:
    source: fno:CustomerGroups
    target: dataverse:msdyn_customergroups
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    depends_on: [customer_groups]
phases:
  - id: load
    steps:
      - id: import
        kind: dmf.import
        env: fno
        definition_group: G
        package_file: pkg.zip
{extra}"#
    )
}

fn diags(text: &str, bytes: &[u8]) -> Vec<Diagnostic> {
    let loaded = load(text, "r.yaml");
    assert!(loaded.runbook.is_some(), "{:?}", loaded.diagnostics);
    let b = bytes.to_vec();
    package_diagnostics(&loaded, "r.yaml", &move |_| PackageFile::Bytes(b.clone()))
}

fn line_of(text: &str, needle: &str) -> u32 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1
}

fn good() -> Vec<u8> {
    build_package(
        "G",
        Some("1.4.2"),
        &[("Customer groups", 1, 1, 1), ("Customers V3", 1, 2, 1)],
    )
}

#[test]
fn a_package_in_dependency_order_with_its_version_is_clean() {
    let text = runbook("        package_version: 1.4.2\n");
    assert!(diags(&text, &good()).is_empty());
}

#[test]
fn a_package_whose_hash_differs_from_the_pin_is_refused_naming_both_hashes() {
    let pin = "0".repeat(64);
    let text = runbook(&format!("        package_sha256: \"{pin}\"\n"));
    let bytes = good();
    let d = diags(&text, &bytes);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].is_error());
    assert_eq!(d[0].code, "package-hash-mismatch");
    assert_eq!(d[0].line, line_of(&text, "package_sha256"));
    let actual = cutover::util::sha256_hex(&bytes);
    assert!(
        d[0].message.contains(&actual) && d[0].message.contains(&pin),
        "{}",
        d[0].message
    );

    let text = runbook(&format!("        package_sha256: {actual}\n"));
    assert!(diags(&text, &bytes).is_empty());
}

#[test]
fn a_manifest_version_that_differs_from_package_version_is_an_error_at_its_line() {
    let text = runbook("        package_version: 1.5.0\n");
    let d = diags(&text, &good());
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "package-version-mismatch");
    assert_eq!(d[0].line, line_of(&text, "package_version"));
    assert!(
        d[0].message.contains("1.4.2") && d[0].message.contains("1.5.0"),
        "{}",
        d[0].message
    );

    let unversioned = build_package("G", None, &[("Customer groups", 1, 1, 1)]);
    let d = diags(&text, &unversioned);
    assert_eq!(d[0].code, "package-unversioned", "{d:?}");
}

#[test]
fn customers_sequenced_before_customer_groups_is_an_error_at_the_steps_line() {
    let text = runbook("");
    let bad = build_package(
        "G",
        None,
        &[("Customers V3", 1, 1, 1), ("Customer groups", 1, 1, 2)],
    );
    let d = diags(&text, &bad);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].is_error());
    assert_eq!(d[0].code, "package-entity-order");
    assert_eq!(d[0].line, line_of(&text, "- id: import"));
    assert!(
        d[0].message
            .contains("`Customers V3` (at 1/1/1) before `Customer groups` (at 1/1/2)")
            && d[0]
                .message
                .contains("map `customers` depends on `customer_groups`"),
        "{}",
        d[0].message
    );
    // Side by side is not "before" either.
    let same = build_package(
        "G",
        None,
        &[("Customer groups", 1, 1, 1), ("Customers V3", 1, 1, 1)],
    );
    let d = diags(&text, &same);
    assert!(d[0].message.contains("alongside"), "{d:?}");
}

#[test]
fn an_entity_no_map_or_step_expects_is_a_warning() {
    let pkg = build_package(
        "G",
        None,
        &[("Customer groups", 1, 1, 1), ("Sales taxes", 1, 1, 2)],
    );
    let text = runbook("");
    let d = diags(&text, &pkg);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(!d[0].is_error());
    assert_eq!(d[0].code, "unexpected-package-entity");
    assert!(d[0].message.contains("Sales taxes"));
    let text = runbook("        entities: [Sales taxes]\n");
    assert!(diags(&text, &pkg).is_empty());
}

#[test]
fn a_malformed_zip_is_a_clear_error_not_a_panic() {
    let text = runbook("");
    for (bytes, want) in [
        (b"PK".to_vec(), "is not a zip archive"),
        (
            cutover::util::dmf_package::build_zip(&[(
                "Manifest.xml",
                b"<DataManagementPackageManifest><PackageEntityList>",
            )]),
            "Manifest.xml",
        ),
    ] {
        let d = diags(&text, &bytes);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "unreadable-package");
        assert_eq!(d[0].line, line_of(&text, "package_file"));
        assert!(d[0].message.contains(want), "{}", d[0].message);
    }
}

#[test]
fn validate_and_plan_read_the_package_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let text = runbook("        package_version: 1.4.2\n");
    std::fs::write(dir.path().join("r.yaml"), &text).unwrap();
    std::fs::write(
        dir.path().join("pkg.zip"),
        build_package(
            "G",
            Some("1.4.2"),
            &[("Customers V3", 1, 1, 1), ("Customer groups", 1, 2, 1)],
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("validate")
        .arg(dir.path().join("r.yaml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = line_of(&text, "- id: import");
    assert!(
        err.contains(&format!("r.yaml:{line}:")) && err.contains("before `Customer groups`"),
        "{err}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("plan")
        .arg(dir.path().join("r.yaml"))
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("version 1.4.2"), "{plan}");
    let first = plan.find("1. Customers V3").expect("entities listed");
    let second = plan.find("2. Customer groups").expect("in import order");
    assert!(first < second && plan.contains("map customers"), "{plan}");
}
