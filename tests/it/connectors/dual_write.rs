//! The dual-write gateway connector against the simulator (the tool's wire format, d365-api.md §5a): an initial
//! sync failing at row N and started again (upserts), server request ids, invalid transitions, operator-mode
//! verification, generic http polling and notify.
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

const START_SYNC: MapAction = MapAction::Start {
    initial_sync: true,
    master: Master::Fno,
};

#[tokio::test]
async fn an_initial_sync_failing_at_row_n_is_started_again_and_upserts() {
    let h = start(YAML).await;
    let gw = h.gateway();
    let map = gw.find_map("CustomersV3", "accounts", &h.cancel).await.unwrap();
    assert_eq!(map.state(), status::NOT_RUNNING);
    let rid = gw.send_action(&map, START_SYNC, &h.cancel).await.unwrap();
    let err = gw.wait_request(&rid, POLL, &h.cancel).await.unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected the initial sync to fail, got {err}")
    };
    assert_eq!(f.details, ["Currency 'XYZ' not found"]);
    // The per-company figures name the failing record.
    let pid = map.detail.pid.clone().unwrap();
    let details = gw.initial_sync_details(&pid, &h.cancel).await.unwrap();
    let usmf = details.iter().find(|c| c.legal_entity_id == "USMF").unwrap();
    assert_eq!(
        (usmf.upsert_count, usmf.error_count, usmf.exported()),
        (400, 1, 401)
    );
    assert_eq!(usmf.initial_sync_request_id.as_deref(), Some(rid.as_str()));
    let e = usmf.errors().next().unwrap();
    assert_eq!(
        (e.source_field.as_str(), e.error_message.as_str()),
        ("CustomerAccount", "Currency 'XYZ' not found")
    );
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

    // No continue-from-the-failed-row: the map is started again, and the new pass upserts.
    let map = gw.find_map("CustomersV3", "accounts", &h.cancel).await.unwrap();
    assert_eq!(map.state(), status::NOT_RUNNING);
    let again = gw.send_action(&map, START_SYNC, &h.cancel).await.unwrap();
    assert_ne!(again, rid);
    gw.wait_request(&again, POLL, &h.cancel).await.unwrap();
    let done = gw
        .wait_map_state("CustomersV3", "accounts", &[status::RUNNING], POLL, &h.cancel)
        .await
        .unwrap();
    assert_eq!(done.request(&again).unwrap().state, "2");
    let details = gw.initial_sync_details(&pid, &h.cancel).await.unwrap();
    let updated: u64 = details
        .iter()
        .flat_map(|c| c.task_execution_statuses.iter().flat_map(|t| t.legs.iter()))
        .map(|l| l.import_records_updated_count)
        .sum();
    assert_eq!(updated, 400, "the rows of the failed pass were upserted");
    assert_eq!(h.side_effect("dualwrite.initial_sync:Customers").await, 2);
    let target = h
        .dataverse()
        .count("accounts", "accountid", None, &h.cancel)
        .await
        .unwrap()
        .rows;
    assert_eq!(target, 1000, "every source row on the target exactly once");
    // The new pass re-ran the failed row: the map's DWM execution reports no errors any more.
    let after = error_sources::dmf_execution_errors(&h.dmf(), "DWM-Customers", &h.cancel)
        .await
        .unwrap();
    assert_eq!(after.total(), Some(0), "{after:?}");
}

#[tokio::test]
async fn requests_are_the_servers_and_a_refused_transition_keeps_the_services_words() {
    let h = start(YAML).await;
    let gw = h.gateway();
    let map = gw
        .find_map("VendorsV2", "msdyn_vendors", &h.cancel)
        .await
        .unwrap();
    let start = MapAction::Start {
        initial_sync: false,
        master: Master::Dataverse,
    };
    let rid = gw.send_action(&map, start, &h.cancel).await.unwrap();
    let s = gw.wait_request(&rid, POLL, &h.cancel).await.unwrap();
    assert_eq!(s.maps.len(), 1);
    assert!(s.maps[0].is_between("VendorsV2", "msdyn_vendors"));
    let m = gw
        .wait_map_state("VendorsV2", "msdyn_vendors", &[status::RUNNING], POLL, &h.cancel)
        .await
        .unwrap();
    assert_eq!(m.request(&rid).unwrap().action, "1");
    assert_eq!(h.side_effect("dualwrite.start:Vendors").await, 1);
    // Resuming a Running map is an invalid transition: the gateway's own words come back.
    match gw.send_action(&m, MapAction::Resume, &h.cancel).await {
        Err(ConnectorError::Service {
            status: 409,
            ref code,
            ..
        }) => assert_eq!(code, "InvalidTransition"),
        other => panic!("expected the transition to be refused, got {other:?}"),
    }
    assert!(matches!(
        gw.request_status("never-sent", &h.cancel).await,
        Err(ConnectorError::NotFound { .. })
    ));
    // The connection set id was discovered once, for every call above.
    let envs = crate::support::sim::request_log(&h.url)
        .await
        .iter()
        .filter(|(_, p)| p == "/api/DualWriteManagement/1.0/Environments")
        .count();
    assert_eq!(envs, 1);
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
    let rid = gw.send_action(&map, START_SYNC, &h.cancel).await.unwrap();
    gw.wait_request(&rid, POLL, &h.cancel).await.unwrap();
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
    let cid = gw.cid(&h.cancel).await.unwrap();
    let start = HttpCall {
        method: reqwest::Method::POST,
        target: "/api/DualWriteManagement/1.0/Start".into(),
        body: Some(
            json!({"action": "1", "details": [{"tid": map.detail.tid, "pid": map.detail.pid, "cid": cid,
            "parameters": {"skipInitialSync": true, "conflictResolution": {"master": "AX", "option": "1"}}}]}),
        ),
        expect_status: vec![200],
        idempotency: Idempotency::Unsafe,
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
    let rid = out.captures["rid"].as_str().unwrap().to_owned();
    assert!(!rid.is_empty(), "the server's request id");
    // Status answers the map list; the map's newest lastRequests element is this request.
    let state = "/0/detail/lastRequests/0/state";
    let poll = PollSpec {
        every: Duration::from_millis(20),
        timeout: Duration::from_secs(20),
        until: Condition {
            pointer: state.into(),
            equals: json!("2"),
        },
        fail_if: Some(Condition {
            pointer: state.into(),
            equals: json!("3"),
        }),
    };
    let status_call = HttpCall {
        method: reqwest::Method::GET,
        target: format!("/api/DualWriteManagement/1.0/Status/{rid}"),
        body: None,
        expect_status: vec![],
        idempotency: Idempotency::Safe,
        authenticated: true,
    };
    let out = http::request(
        &t,
        &status_call,
        Some(&poll),
        &[("name".into(), "/0/detail/lastRequests/0/requestId".into())],
        &h.cancel,
    )
    .await
    .unwrap();
    assert_eq!(out.captures["name"], json!(rid));
    // fail_if ends the poll with the value that matched.
    let failing = PollSpec {
        until: Condition {
            pointer: state.into(),
            equals: json!("99"),
        },
        fail_if: Some(Condition {
            pointer: state.into(),
            equals: json!("2"),
        }),
        ..poll
    };
    let err = http::request(&t, &status_call, Some(&failing), &[], &h.cancel)
        .await
        .unwrap_err();
    let ConnectorError::JobFailed(f) = &err else {
        panic!("expected fail_if to fail the step, got {err}")
    };
    assert_eq!(f.details, vec![format!("{state} = \"2\"")]);
    let wrong = HttpCall {
        expect_status: vec![201],
        ..start
    };
    let err = http::request(&t, &wrong, None, &[], &h.cancel).await.unwrap_err();
    assert!(
        err.to_string().contains("expected status [201], got 409"),
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
