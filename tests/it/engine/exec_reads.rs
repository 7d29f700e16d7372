//! Reads and canaries against the simulator: parity (per company, tolerance), error_queue, sample, monitor
//! (alerts, tokens that expire mid-step), and roundtrip including a reconcile after a crash between the
//! canary's create and its delete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::connectors::dual_write::{GatewayClient, MapAction, Master};
use cutover::connectors::transport::Request;
use cutover::engine::event::{Event, Severity};
use cutover::engine::exec::{self, Mode};
use exec_support::{Harness, assert_ok, environments, failure, start};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
name: exec-reads
seed: 7
time_scale: 600
companies: [USMF, USRT]
default_company: USMF
auth: { token_ttl: 2 }
entities:
  fno:
    CustomersV3:
      key: CustomerAccount
      rows: { USMF: 60, USRT: 40 }
      fields: { OrganizationName: name, PrimaryContactPhone: phone }
    VendorsV2:
      key: VendorAccountNumber
      rows: { USMF: 30 }
      fields: { VendorOrganizationName: name }
    ProductsV2:
      key: ProductNumber
      key_prefix: P
      rows: 80
      fields: { ProductName: name }
  dataverse:
    accounts: { key: accountnumber }
    msdyn_vendors: { key: msdyn_vendoraccountnumber }
    products: { key: productnumber }
maps:
  - name: customers
    source: CustomersV3
    target: accounts
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name, PrimaryContactPhone: telephone1 }
    initial: { status: running, preloaded: true }
  - name: vendors
    source: VendorsV2
    target: msdyn_vendors
    key: { source: VendorAccountNumber, target: msdyn_vendoraccountnumber }
    rate: 10
    fail_at_row: 5
    category: enum_conversion
    message: "Enum value V-OTHER cannot be converted."
  - name: products
    source: ProductsV2
    target: products
    key: { source: ProductNumber, target: productnumber }
    fields: { ProductName: name }
    corrupt_share: 0.5
    initial: { status: running, preloaded: true }
dual_write: { lag: 60s, request_delay: 5s }
"#;

fn runbook() -> String {
    format!(
        r#"runbook: exec-reads
version: 1.0.0
{}
maps:
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name, PrimaryContactPhone: telephone1 }}
  vendors: {{ source: "fno:VendorsV2", target: "dataverse:msdyn_vendors", initial_sync_execution_id: DWM-vendors }}
  products:
    source: fno:ProductsV2
    target: dataverse:products
    key: {{ source: ProductNumber, target: productnumber }}
    compare: {{ ProductName: name }}
phases:
  - id: p
    steps:
      - {{ id: parity-customers, kind: parity, maps: [customers], record_baseline: true }}
      - {{ id: parity-all, kind: parity, maps: all }}
      - {{ id: parity-loose, kind: parity, maps: all, tolerance: "100%" }}
      - {{ id: errors, kind: error_queue, maps: all }}
      - {{ id: errors-loose, kind: error_queue, maps: all, max: 5 }}
      - {{ id: sample-customers, kind: sample, maps: [customers], size: 20 }}
      - {{ id: sample-products, kind: sample, maps: [products], size: 20 }}
      - id: watch
        kind: monitor
        every: 5m
        for: 30m
        maps: [customers, products]
        alert: {{ drift: 0, errors_per_hour: 0 }}
        sample_size: 5
      - {{ id: canary, kind: roundtrip, map: customers, from: fno, within: 2m, record: {{ OrganizationName: "Canary ${{run.id}}" }} }}
      - {{ id: canary-dv, kind: roundtrip, map: customers, from: dataverse, within: 2m }}
"#,
        environments(false)
    )
}

fn samples(events: &[cutover::engine::Envelope], step: &str) -> Vec<(String, Option<String>, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ParitySample {
                step: Some(s),
                map,
                company,
                source,
                target,
            } if s.as_str() == step => Some((map.clone(), company.clone(), *source, *target)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_error_queue_sample_and_monitor() {
    let h = start(Some(SCENARIO), &runbook()).await;
    assert_ok(&h.run("parity-customers").await);
    let events = h.events().await;
    let s = samples(&events, "parity-customers");
    assert!(
        s.contains(&("customers".into(), Some("USMF".into()), 60, 60)),
        "{s:?}"
    );
    assert!(
        s.contains(&("customers".into(), Some("USRT".into()), 40, 40)),
        "{s:?}"
    );

    let msg = failure(&h.run("parity-all").await);
    assert!(msg.contains("vendors 30 vs 0"), "{msg}");
    assert_ok(&h.run("parity-loose").await);

    assert_ok(&h.run("errors").await);
    // The vendors initial sync fails at row 5: one Active entry.
    let gw = GatewayClient::new(h.envs.transport("dualwrite").unwrap());
    let c = CancellationToken::new();
    let m = gw.find_map("VendorsV2", "msdyn_vendors", &c).await.unwrap();
    let start = MapAction::Start {
        initial_sync: true,
        master: Master::Fno,
    };
    let rid = gw.send_action(&m, start, &c).await.unwrap();
    let poll = cutover::connectors::dmf::Poll {
        every: std::time::Duration::from_millis(20),
        timeout: std::time::Duration::from_secs(20),
    };
    assert!(
        gw.wait_request(&rid, poll, &c).await.is_err(),
        "the pass fails at row 5"
    );
    // The failed row is read from the map's initial-sync DMF execution; each figure names its source.
    let msg = failure(&h.run("errors").await);
    assert!(
        msg.contains("1 dual-write errors") && msg.contains("1 (dmf.execution_errors)"),
        "{msg}"
    );
    assert!(
        msg.contains("0 (dataverse.asyncoperations)") && msg.contains("1 (gateway.initial_sync)"),
        "{msg}"
    );
    assert_ok(&h.run("errors-loose").await);
    let events = h.events().await;
    let mut entries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ErrorEntries {
                map, entries, source, ..
            } => Some((map.clone(), source.clone().unwrap_or_default(), entries.len())),
            _ => None,
        })
        .collect();
    entries.sort();
    // The failed row, as each initial-sync source reports it, journaled once per source.
    assert_eq!(
        entries,
        vec![
            ("vendors".to_owned(), "dmf.execution_errors".to_owned(), 1),
            ("vendors".to_owned(), "gateway.initial_sync".to_owned(), 1)
        ],
        "each entry journaled once"
    );
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorCounts { map, by_category, source: Some(s), unavailable: None, .. } if map == "vendors" && s == "dmf.execution_errors" && by_category.get("enum_conversion") == Some(&1))));

    assert_ok(&h.run("sample-customers").await);
    let msg = failure(&h.run("sample-products").await);
    assert!(msg.contains("products:"), "{msg}");
    let events = h.events().await;
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorEntries { map, entries, .. } if map == "products" && entries.iter().all(|x| x.category == "sample_mismatch"))));
    // The same keys, with their company, class and differing fields, for the evidence pack.
    let mismatches: usize = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ErrorEntries {
                map,
                entries,
                source: Some(s),
            } if map == "products" && s == "sample" => Some(entries.len()),
            _ => None,
        })
        .sum();
    let differed: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::SampleDiffered { map, keys, .. } if map == "products" => Some(keys.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(mismatches > 0);
    assert_eq!(differed.len(), mismatches, "{differed:?}");
    assert!(
        differed
            .iter()
            .all(|k| k.class != cutover::engine::event::RowClass::Different || !k.fields.is_empty()),
        "{differed:?}"
    );
    // The error sources' reads that listed every entry say which ids they held.
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::ErrorCounts { map, source: Some(s), present: Some(ids), .. } if map == "vendors" && s == "dmf.execution_errors" && ids.len() == 1)));

    // 30 environment minutes at 600x: 3 real seconds, longer than a token lives (2 s).
    let fno = h.envs.transport("fno").unwrap();
    let before = fno.token_source().unwrap().fetch_count();
    assert_ok(&h.run("watch").await);
    assert!(
        fno.token_source().unwrap().fetch_count() > before,
        "tokens were refreshed mid-step"
    );
    let events = h.events().await;
    assert!(samples(&events, "watch").len() >= 6, "parity every tick");
    assert!(events.iter().any(|e| matches!(&e.event,
        Event::Alert { severity: Severity::Warning, map: Some(m), .. } if m == "products")));
}

async fn find_canary(h: &Harness, key: &str) -> (usize, usize) {
    let c = CancellationToken::new();
    let f = h
        .envs
        .fno("fno")
        .unwrap()
        .find_eq("CustomersV3", "CustomerAccount", key, None, &c)
        .await
        .unwrap()
        .len();
    let d = h
        .envs
        .dataverse("dataverse")
        .unwrap()
        .find_by_key("accounts", "accountnumber", key, &[], &c)
        .await
        .unwrap()
        .len();
    (f, d)
}

#[tokio::test]
async fn roundtrip_creates_sees_and_deletes_one_canary() {
    let h = start(Some(SCENARIO), &runbook()).await;
    assert_ok(&h.run("canary").await);
    let key = exec::handle_for(&h.ctx("canary", 1).await.step, &h.run_id, 1)
        .unwrap()
        .id;
    assert_eq!(h.effect(&format!("canary.create:{key}")), 1);
    assert!(h.effect(&format!("canary.delete:{key}")) >= 1);
    assert_eq!(find_canary(&h, &key).await, (0, 0));

    assert_ok(&h.run("canary-dv").await);
    let key = exec::handle_for(&h.ctx("canary-dv", 1).await.step, &h.run_id, 1)
        .unwrap()
        .id;
    assert_eq!(h.effect(&format!("canary.create:{key}")), 1);
    assert_eq!(find_canary(&h, &key).await, (0, 0));
}

#[tokio::test]
async fn a_roundtrip_reconciled_after_a_crash_between_create_and_delete_creates_one_canary() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let ctx = h.ctx("canary", 1).await;
    let handle = exec::handle_for(&ctx.step, &h.run_id, 1).unwrap();
    h.emit
        .durable(Event::StepIntent {
            step: ctx.step.id.clone(),
            attempt: 1,
            handle: Some(handle.clone()),
        })
        .await
        .unwrap();
    // The crashed process had created the canary in F&O.
    let req = Request::post("test create", "/data/CustomersV3")
        .json(json!({"CustomerAccount": handle.id, "dataAreaId": "usmf", "OrganizationName": "Canary"}));
    h.envs
        .transport("fno")
        .unwrap()
        .send(req, &CancellationToken::new())
        .await
        .unwrap();
    assert_ok(&h.run_mode("canary", 1, Mode::Reconcile).await);
    assert_eq!(h.effect(&format!("canary.create:{}", handle.id)), 1);
    assert_eq!(find_canary(&h, &handle.id).await, (0, 0));
    // Reconciled once more (crash after the deletes): the journaled stage says it is done.
    assert_ok(&h.run_mode("canary", 1, Mode::Reconcile).await);
    assert_eq!(h.effect(&format!("canary.create:{}", handle.id)), 1);
}
