//! Counts, paging, lookups, random keys, canaries and WhoAmI against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use std::collections::BTreeSet;

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::dataverse::CountMethod;
use serde_json::json;

const YAML: &str = r#"
name: counts
time_scale: 600
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF, USRT]
fno:
  page_size: 7
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30, USRT: 20 }, fields: { OrganizationName: name } }
    Companies: { key: DataArea, rows: 2 }
  dataverse:
    accounts: { key: accountnumber, id: accountid, rows: { USMF: 8000, USRT: 4000 }, company_lookup: msdyn_company, fields: { name: name } }
    contacts: { key: emailaddress1, id: contactid, rows: 60000 }
    cdm_companies: { key: cdm_companycode }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
"#;

#[tokio::test]
async fn dataverse_counts_stay_exact_past_the_5000_and_50000_caps() {
    let h = start(YAML).await;
    let dv = h.dataverse();
    let c = dv.count("accounts", "accountid", None, &h.cancel).await.unwrap();
    assert_eq!(c.rows, 12_000);
    assert_eq!(c.method, CountMethod::PagedIds);
    assert_eq!(c.pages, 3, "5,000 ids per page");
    let c = dv.count("contacts", "contactid", None, &h.cancel).await.unwrap();
    assert_eq!(c.rows, 60_000);
    let small = dv
        .count("cdm_companies", "cdm_companyid", None, &h.cancel)
        .await
        .unwrap();
    assert_eq!((small.rows, small.method), (2, CountMethod::ODataCount));
    // Per company, by a filter on the company column.
    assert_eq!(
        dv.count_company("accounts", "accountid", "msdyn_company", "USMF", &h.cancel)
            .await
            .unwrap()
            .rows,
        8_000
    );
    assert_eq!(
        dv.count_company("accounts", "accountid", "msdyn_company", "USRT", &h.cancel)
            .await
            .unwrap()
            .rows,
        4_000
    );
    // Every request carried the OData headers (the simulator would answer 400 otherwise) and no query values.
    assert!(h.summaries().iter().all(|s| !s.path.contains("eq")));
}

#[tokio::test]
async fn fetchxml_aggregate_works_under_50000_and_fails_clearly_above() {
    let h = start(YAML).await;
    let dv = h.dataverse();
    assert_eq!(
        dv.fetchxml_count("accounts", "account", "accountid", &h.cancel)
            .await
            .unwrap(),
        12_000
    );
    let err = dv
        .fetchxml_count("contacts", "contact", "contactid", &h.cancel)
        .await
        .unwrap_err();
    match err {
        ConnectorError::Service {
            status, ref message, ..
        } => assert!(status == 400 && !message.is_empty(), "{err}"),
        other => panic!("expected the service's AggregateQueryRecordLimit error, got {other}"),
    }
    // RetrieveTotalRecordCount answers (a snapshot: a cross-check only, never the parity figure).
    let rtrc = dv
        .retrieve_total_record_count(&["account", "contact"], &h.cancel)
        .await
        .unwrap();
    assert_eq!(rtrc.len(), 2);
}

#[tokio::test]
async fn fno_counts_cross_company_and_per_company() {
    let h = start(YAML).await;
    let fno = h.fno();
    assert_eq!(fno.count("CustomersV3", None, &h.cancel).await.unwrap(), 50);
    assert_eq!(
        fno.count("CustomersV3", Some("USMF"), &h.cancel).await.unwrap(),
        30
    );
    assert_eq!(
        fno.count("CustomersV3", Some("usrt"), &h.cancel).await.unwrap(),
        20
    );
    let s = h.summaries();
    assert!(
        s.iter()
            .any(|s| s.path == "/data/CustomersV3/$count?cross-company&$filter"),
        "{s:?}"
    );
}

#[tokio::test]
async fn fno_reads_follow_next_links_and_random_keys_are_deterministic() {
    let h = start(YAML).await;
    let fno = h.fno();
    let rows = fno
        .read(
            "CustomersV3",
            None,
            &["CustomerAccount"],
            None,
            usize::MAX,
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 50, "8 pages of 7 rows, followed verbatim");
    let usmf = fno
        .read(
            "CustomersV3",
            Some("dataAreaId eq 'usmf'"),
            &[],
            None,
            1000,
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(usmf.len(), 30);

    let a = fno
        .random_keys("CustomersV3", "CustomerAccount", 10, 7, None, &h.cancel)
        .await
        .unwrap();
    let b = fno
        .random_keys("CustomersV3", "CustomerAccount", 10, 7, None, &h.cancel)
        .await
        .unwrap();
    let c = fno
        .random_keys("CustomersV3", "CustomerAccount", 10, 8, None, &h.cancel)
        .await
        .unwrap();
    assert_eq!(a, b, "same seed, same keys");
    assert_ne!(a, c, "another seed, other keys");
    assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 10, "distinct");
    for k in &a {
        let found = fno
            .find_eq("CustomersV3", "CustomerAccount", k, None, &h.cancel)
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "key {k} exists exactly once");
    }
    let all = fno
        .random_keys("CustomersV3", "CustomerAccount", 100, 1, Some("USRT"), &h.cancel)
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        20,
        "asking for more keys than rows gives every key of the company"
    );
}

#[tokio::test]
async fn canary_is_created_found_by_key_and_deleted_once() {
    let h = start(YAML).await;
    let dv = h.dataverse();
    let key = "CANARY-42";
    let row = dv
        .create(
            "accounts",
            &json!({"accountnumber": key, "name": "cutover canary"}),
            Some(("accountnumber", key)),
            &h.cancel,
        )
        .await
        .unwrap();
    let id = row
        .get("accountid")
        .and_then(|v| v.as_str())
        .expect("created row has its id")
        .to_owned();
    // A resumed engine that journaled the canary key finds it instead of creating it again.
    let (again, created) = dv
        .ensure_created(
            "accounts",
            &json!({"accountnumber": key, "name": "cutover canary"}),
            ("accountnumber", key),
            &h.cancel,
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again["accountid"], id.as_str());
    let found = dv
        .find_by_key(
            "accounts",
            "accountnumber",
            key,
            &["accountid", "name"],
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], "cutover canary");
    dv.delete("accounts", &id, &h.cancel).await.unwrap();
    dv.delete("accounts", &id, &h.cancel).await.unwrap(); // already gone: still fine
    assert!(
        dv.find_by_key("accounts", "accountnumber", key, &[], &h.cancel)
            .await
            .unwrap()
            .is_empty()
    );
    let state = h.state().await;
    let effects = state["side_effects"].as_object().unwrap();
    let creates: u64 = effects
        .iter()
        .filter(|(k, _)| k.starts_with("canary.create"))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(creates, 1, "{effects:?}");
}

#[tokio::test]
async fn who_am_i_answers() {
    let h = start(YAML).await;
    let me = h.dataverse().who_am_i(&h.cancel).await.unwrap();
    assert!(!me.user_id.is_empty() && !me.organization_id.is_empty());
}
