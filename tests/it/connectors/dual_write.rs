//! The dual-write gateway model against the simulator: an initial sync failing at row N and resumed (not
//! restarted), requestId dedup, invalid transitions, operator-mode verification, generic http polling and notify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use std::time::Duration;

use connector_support::*;
use cutover::connectors::ConnectorError;
use cutover::connectors::dmf::Poll;
use cutover::connectors::dual_write::{self, MapAction, MapSpec, Master, OperatorAction, status};
use cutover::connectors::error_sources::{self, SourceReport};
use cutover::connectors::http::{self, Condition, HttpCall, PollSpec};
use cutover::connectors::notify::{self, CardFormat};
use cutover::connectors::sample::{self, SampleSpec};
use cutover::connectors::transport::{Idempotency, Transport};
use serde_json::json;

const YAML: &str = r#"
name: dualwrite
time_scale: 600
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
companies: [USMF, USRT]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 600, USRT: 400 }, fields: { OrganizationName: name } }
    VendorsV2: { key: VendorAccount, rows: { USMF: 50 } }
    ReleasedProductsV2: { key: ItemNumber, rows: { USMF: 40 }, fields: { ProductName: name } }
  dataverse:
    accounts: { key: accountnumber, id: accountid, rows: 0 }
    msdyn_vendors: { key: msdyn_vendoraccountnumber, id: msdyn_vendorid, rows: 0 }
    msdyn_products: { key: msdyn_productnumber, id: msdyn_productid, rows: 0 }
maps:
  - name: Customers
    source: CustomersV3
    target: accounts
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name }
    rate: 200
    fail_at_row: 401
    category: missing_lookup
    message: "Currency 'XYZ' not found"
  - name: Vendors
    source: VendorsV2
    target: msdyn_vendors
    rate: 200
  - name: Products
    source: ReleasedProductsV2
    target: msdyn_products
    key: { source: ItemNumber, target: msdyn_productnumber }
    fields: { ProductName: msdyn_name }
    corrupt_share: 0.5
    initial: { status: running, preloaded: true }
"#;

const POLL: Poll = Poll {
    every: Duration::from_millis(20),
    timeout: Duration::from_secs(30),
};

#[tokio::test]
async fn an_initial_sync_failing_at_row_n_is_resumed_not_restarted() {
    let h = start(YAML).await;
    let gw = h.gateway();
    let map = gw.find_map("CustomersV3", "accounts", &h.cancel).await.unwrap();
    assert_eq!(
        dual_write::initial_sync_next_action(&map),
        Some(MapAction::InitialSync)
    );
    let rid = gw
        .send_action(
            &map.id,
            MapAction::InitialSync,
            Master::Fno,
            "req-init-1",
            &h.cancel,
        )
        .await
        .unwrap();
    gw.wait_request(&rid, POLL, &h.cancel).await.unwrap();
    let err = gw
        .wait_map_status(&map.id, status::RUNNING, POLL, &h.cancel, |_| {})
        .await
        .unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected the initial sync to fail, got {err}")
    };
    assert!(f.details[0].contains("row 401"), "{:?}", f.details);
    assert!(f.details[0].contains("missing_lookup"), "{:?}", f.details);
    // The failed row is a DMF execution error of the map's initial-sync (DWM) execution.
    let SourceReport::Available { total, entries, .. } =
        error_sources::dmf_execution_errors(&h.dmf(), "DWM-Customers", &h.cancel)
            .await
            .unwrap()
    else {
        panic!("GetExecutionErrors is available")
    };
    assert_eq!(total, 1, "{entries:?}");
    assert_eq!(entries[0].message, "Currency 'XYZ' not found");
    assert!(!entries[0].key.is_empty(), "{entries:?}");

    // A resumed engine reads the map and continues from the failed row.
    let map = gw.map(&map.id, &h.cancel).await.unwrap();
    assert_eq!(
        dual_write::initial_sync_next_action(&map),
        Some(MapAction::Resume)
    );
    let rid = gw
        .send_action(&map.id, MapAction::Resume, Master::Fno, "req-resume-1", &h.cancel)
        .await
        .unwrap();
    gw.wait_request(&rid, POLL, &h.cancel).await.unwrap();
    let done = gw
        .wait_map_status(&map.id, status::RUNNING, POLL, &h.cancel, |_| {})
        .await
        .unwrap();
    assert_eq!(done.initial_sync.state, "Completed");
    assert_eq!(done.initial_sync.rows_copied, 1000, "{done:?}");
    assert_eq!(
        h.side_effect("dualwrite.initial_sync:Customers").await,
        1,
        "never restarted"
    );
    assert_eq!(h.side_effect("dualwrite.resume:Customers").await, 1);
    let target = h
        .dataverse()
        .count("accounts", "accountid", None, &h.cancel)
        .await
        .unwrap()
        .rows;
    assert_eq!(target, 1000, "every source row copied exactly once");
    // The resumed initial sync re-ran the failed row: the map's DWM execution reports no errors any more.
    let after = error_sources::dmf_execution_errors(&h.dmf(), "DWM-Customers", &h.cancel)
        .await
        .unwrap();
    assert_eq!(after.total(), Some(0), "{after:?}");
}

#[tokio::test]
async fn the_same_request_id_never_acts_twice() {
    let h = start(YAML).await;
    let gw = h.gateway();
    let map = gw
        .find_map("VendorsV2", "msdyn_vendors", &h.cancel)
        .await
        .unwrap();
    for _ in 0..3 {
        let rid = gw
            .send_action(
                &map.id,
                MapAction::Start,
                Master::Fno,
                "req-start-vendors",
                &h.cancel,
            )
            .await
            .unwrap();
        assert_eq!(rid, "req-start-vendors");
    }
    gw.wait_request("req-start-vendors", POLL, &h.cancel)
        .await
        .unwrap();
    assert!(
        gw.find_request("req-start-vendors", &h.cancel)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        gw.find_request("req-never-sent", &h.cancel)
            .await
            .unwrap()
            .is_none(),
        "unknown id: safe to send"
    );
    gw.wait_map_status(&map.id, status::RUNNING, POLL, &h.cancel, |_| {})
        .await
        .unwrap();
    assert_eq!(h.side_effect("dualwrite.start:Vendors").await, 1);
    // Resuming a Running map is an invalid transition: the gateway's own words come back.
    let err = gw
        .send_action(&map.id, MapAction::Resume, Master::Fno, "req-bad", &h.cancel)
        .await;
    let outcome = match err {
        Ok(rid) => gw.wait_request(&rid, POLL, &h.cancel).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Err(ConnectorError::Service {
            status: 409,
            ref code,
            ..
        }) => assert_eq!(code, "InvalidTransition"),
        Err(ConnectorError::JobFailed(_)) => {}
        other => panic!("expected the transition to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn operator_mode_is_verified_by_reading_the_environment() {
    let h = start(YAML).await;
    let spec = MapSpec {
        name: "Vendors".into(),
        source_set: "VendorsV2".into(),
        target_set: "msdyn_vendors".into(),
        target_primary_id: "msdyn_vendorid".into(),
        source_filter: None,
        target_filter: None,
        tolerance: 0,
    };
    let action = OperatorAction::Run {
        initial_sync: true,
        master: Master::Fno,
    };
    let text = dual_write::operator_instructions(&spec, action, FNO);
    assert!(text.contains("VendorsV2 to msdyn_vendors"));
    let (fno, dv) = (h.fno(), h.dataverse());
    let before = dual_write::verify_operator(&fno, &dv, &spec, action, &h.cancel)
        .await
        .unwrap();
    assert!(!before.satisfied, "nothing was done yet");
    assert_eq!((before.source_rows, before.target_rows), (50, 0));
    // The "operator" runs the map (here through the gateway), then the console verifies.
    let gw = h.gateway();
    let map = gw
        .find_map("VendorsV2", "msdyn_vendors", &h.cancel)
        .await
        .unwrap();
    gw.send_action(
        &map.id,
        MapAction::InitialSync,
        Master::Fno,
        "req-op-1",
        &h.cancel,
    )
    .await
    .unwrap();
    gw.wait_map_status(&map.id, status::RUNNING, POLL, &h.cancel, |_| {})
        .await
        .unwrap();
    let after = dual_write::verify_operator(&fno, &dv, &spec, action, &h.cancel)
        .await
        .unwrap();
    assert!(after.satisfied, "{:?}", after.reasons);
}

#[tokio::test]
async fn generic_http_polls_until_a_pointer_matches_and_captures() {
    let h = start(YAML).await;
    let gw = h.gateway();
    let map = gw
        .find_map("VendorsV2", "msdyn_vendors", &h.cancel)
        .await
        .unwrap();
    let t = h.transport("dualwrite", DUALWRITE, fast_policy());
    let start = HttpCall {
        method: reqwest::Method::POST,
        target: "/api/DualWriteManagement/1.0/Start".into(),
        body: Some(json!({"entityId": map.id, "action": 1, "master": 1, "requestId": "req-http-1"})),
        expect_status: vec![202],
        idempotency: Idempotency::Handle("req-http-1".into()),
        authenticated: true,
    };
    let out = http::request(
        &t,
        &start,
        None,
        &[("rid".into(), "/requestId".into())],
        &h.cancel,
    )
    .await
    .unwrap();
    assert_eq!(out.captures["rid"], "req-http-1");
    let poll = PollSpec {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(20),
        until: Condition {
            pointer: "/status".into(),
            equals: json!(2),
        },
        fail_if: Some(Condition {
            pointer: "/status".into(),
            equals: json!(3),
        }),
    };
    let status_call = HttpCall {
        method: reqwest::Method::GET,
        target: "/api/DualWriteManagement/1.0/Status/req-http-1".into(),
        body: None,
        expect_status: vec![],
        idempotency: Idempotency::Safe,
        authenticated: true,
    };
    let out = http::request(
        &t,
        &status_call,
        Some(&poll),
        &[("name".into(), "/statusName".into())],
        &h.cancel,
    )
    .await
    .unwrap();
    assert_eq!(out.captures["name"], "Completed");
    // fail_if ends the poll with the value that matched.
    let failing = PollSpec {
        until: Condition {
            pointer: "/status".into(),
            equals: json!(99),
        },
        fail_if: Some(Condition {
            pointer: "/statusName".into(),
            equals: json!("Completed"),
        }),
        ..poll
    };
    let err = http::request(&t, &status_call, Some(&failing), &[], &h.cancel)
        .await
        .unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected fail_if to fail the step, got {err}")
    };
    assert_eq!(f.details, vec!["/statusName = \"Completed\"".to_owned()]);
    let wrong = HttpCall {
        expect_status: vec![201],
        ..start
    };
    let err = http::request(&t, &wrong, None, &[], &h.cancel).await.unwrap_err();
    assert!(
        err.to_string().contains("expected status [201], got 202"),
        "{err}"
    );
}

#[tokio::test]
async fn notify_posts_a_card_to_the_webhook() {
    let h = start(YAML).await;
    let url = format!("{}/_sim/webhook", h.url);
    let t = Transport::new("webhook", h.client.clone(), &url, fast_policy()).unwrap();
    notify::post(
        &t,
        &url,
        CardFormat::MessageCard,
        "Wave 1",
        "Customers running",
        &h.cancel,
    )
    .await
    .unwrap();
    assert_eq!(h.side_effect("notify:1").await, 1);
}

#[tokio::test]
async fn sampling_finds_corrupted_target_rows_field_by_field() {
    let h = start(YAML).await;
    let spec = |compare: Vec<(String, String)>| SampleSpec {
        source_set: "ReleasedProductsV2".into(),
        source_key: "ItemNumber".into(),
        target_set: "msdyn_products".into(),
        target_key: "msdyn_productnumber".into(),
        compare,
        size: 20,
        seed: 11,
        company: None,
        company_lookup: None,
        source_filter: None,
        target_filter: None,
    };
    let (fno, dv) = (h.fno(), h.dataverse());
    let names = spec(vec![("ProductName".into(), "msdyn_name".into())]);
    let report = sample::reconcile(&fno, &dv, &names, &h.cancel).await.unwrap();
    assert_eq!(report.checked, 20);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    assert!(
        !report.mismatched.is_empty() && report.mismatched.len() < 20,
        "about half are corrupt: {report:?}"
    );
    assert!(
        report
            .mismatched
            .iter()
            .all(|(_, d)| d[0].source_field == "ProductName" && d[0].source != d[0].target)
    );
    let keys_only = spec(vec![("ItemNumber".into(), "msdyn_productnumber".into())]);
    assert!(
        sample::reconcile(&fno, &dv, &keys_only, &h.cancel)
            .await
            .unwrap()
            .clean()
    );
}
