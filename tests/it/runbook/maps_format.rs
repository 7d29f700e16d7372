//! The map fields added for real tenants (company_lookup, filter, the initial-sync master) and the gateway
//! warnings: accepted, checked, and never silently ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cutover::runbook::validate;
use cutover::runbook::{EnvLookup, Severity};

struct NoEnv;
impl EnvLookup for NoEnv {
    fn get(&self, _: &str) -> Option<String> {
        Some("a-secret-of-realistic-length".into())
    }
}

fn runbook(map_extra: &str, mode: &str) -> String {
    format!(
        r#"runbook: maps-format
version: 1.0.0
environments:
  fno: {{ kind: fno, url: "https://f.example", auth: {{ tenant: t, client_id: c, client_secret: "${{S}}" }} }}
  dataverse: {{ kind: dataverse, url: "https://d.example", auth: {{ tenant: t, client_id: c, client_secret: "${{S}}" }} }}
  dw: {{ kind: dualwrite, link: [fno, dataverse], mode: {mode}, url: "https://g.example" }}
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF]
    owner: fno
{map_extra}
phases:
  - id: p
    steps:
      - {{ id: parity, kind: parity, maps: all }}
"#
    )
}

fn codes(text: &str) -> Vec<(&'static str, Severity)> {
    validate(text, "t.yaml", &NoEnv, false)
        .into_iter()
        .map(|d| (d.code, d.severity))
        .collect()
}

#[test]
fn company_lookup_filter_and_master_are_accepted_and_checked() {
    let ok = "    company_lookup: msdyn_associatedcompanyid\n    filter: { source: \"PartyType eq 'Organization'\", target: \"customertypecode ne null\" }\n    master: dataverse";
    assert_eq!(codes(&runbook(ok, "operator")), vec![]);
    let value_prop = "    company_lookup: _msdyn_company_value";
    assert!(codes(&runbook(value_prop, "operator")).contains(&("invalid-value", Severity::Error)));
    let query = "    filter: { source: \"$filter=PartyType eq 'Organization'\" }";
    assert!(codes(&runbook(query, "operator")).contains(&("invalid-filter", Severity::Error)));
    let open = "    filter: { target: \"(name eq 'x'\" }";
    assert!(codes(&runbook(open, "operator")).contains(&("invalid-filter", Severity::Error)));
    let lww = "    master: last_write_wins";
    assert_eq!(
        codes(&runbook(lww, "operator")),
        vec![("last-write-wins", Severity::Warning)],
        "deprecated, still accepted"
    );
}

#[test]
fn gateway_mode_is_labelled_unsupported_and_needing_a_user_sign_in() {
    let c = codes(&runbook("", "gateway"));
    assert!(c.contains(&("gateway-unsupported", Severity::Warning)), "{c:?}");
    assert!(c.contains(&("gateway-needs-user", Severity::Warning)), "{c:?}");
    assert!(c.iter().all(|(_, s)| *s == Severity::Warning), "{c:?}");
}

#[test]
fn the_error_source_fields_are_accepted_and_checked() {
    let ok = "    initial_sync_execution_id: DWM-customers-0001\n    error_sources: [dataverse.asyncoperations, dmf.execution_errors]";
    assert_eq!(codes(&runbook(ok, "operator")), vec![]);
    let invented = "    error_sources: [fno.error_queue]";
    let d = validate(&runbook(invented, "operator"), "t.yaml", &NoEnv, false);
    let bad = d
        .iter()
        .find(|d| d.code == "invalid-value")
        .expect("an unknown source is refused");
    assert!(
        bad.message.contains("fno.error_queue")
            && bad
                .hint
                .as_deref()
                .is_some_and(|h| h.contains("dataverse.plugintracelogs")),
        "{bad:?}"
    );
    for text in ["    error_sources: []", "    initial_sync_execution_id: \" \""] {
        assert!(
            codes(&runbook(text, "operator")).contains(&("invalid-value", Severity::Error)),
            "{text}"
        );
    }
}

#[test]
fn value_maps_are_accepted_and_checked() {
    let ok =
        "    compare: { SalesStatus: msdyn_status }\n    values: { SalesStatus: { Open: 1, Closed: 2 } }";
    assert_eq!(codes(&runbook(ok, "operator")), vec![]);
    let twice =
        "    compare: { SalesStatus: msdyn_status }\n    values: { SalesStatus: { Open: 1, Closed: 1 } }";
    assert_eq!(
        codes(&runbook(twice, "operator")),
        vec![("value-mapped-twice", Severity::Warning)]
    );
    let stray = "    compare: { SalesStatus: msdyn_status }\n    values: { SaleStatus: { Open: 1 } }";
    let d = validate(&runbook(stray, "operator"), "t.yaml", &NoEnv, false);
    let bad = d
        .iter()
        .find(|d| d.code == "unknown-field")
        .expect("a field not compared is refused");
    assert!(
        bad.hint.as_deref().unwrap_or("").contains("SalesStatus"),
        "{bad:?}"
    );
    let empty = "    compare: { SalesStatus: msdyn_status }\n    values: { SalesStatus: {} }";
    assert!(codes(&runbook(empty, "operator")).contains(&("invalid-value", Severity::Error)));
    let text = "    compare: { SalesStatus: msdyn_status }\n    values: { SalesStatus: { Open: one } }";
    assert!(
        codes(&runbook(text, "operator"))
            .iter()
            .any(|(_, s)| *s == Severity::Error)
    );
}

#[test]
fn ownership_is_written_down_or_warned_about() {
    let text = runbook("", "operator").replace("    owner: fno\n", "");
    assert_eq!(codes(&text), vec![("no-owner", Severity::Warning)]);
    let fields =
        "    field_owners: { PrimaryContactPhone: { owner: dataverse, why: \"Sales keeps it current\" } }";
    assert_eq!(codes(&runbook(fields, "operator")), vec![]);
    let no_why = "    field_owners: { PrimaryContactPhone: { owner: dataverse, why: \" \" } }";
    assert_eq!(
        codes(&runbook(no_why, "operator")),
        vec![("invalid-value", Severity::Error)]
    );
    let bad = "    owner: both";
    assert!(
        codes(&runbook(bad, "operator"))
            .iter()
            .any(|(_, s)| *s == Severity::Error)
    );
}
