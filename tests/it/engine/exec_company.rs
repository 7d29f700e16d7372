//! Company striping, map filters and metadata ids as a real tenant has them (d365-api.md §4): per-company
//! parity goes through the company lookup (`_msdyn_company_value eq <cdm_companyid>`), a key lookup carries
//! the company so another company's row with the same key cannot stand in, a map's filter makes counts agree
//! where whole tables legitimately differ, and a table whose primary id is not its set name de-pluralised
//! (`activitypointers` → `activityid`) is counted by the id its metadata names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::connectors::dataverse::company_filter;
use cutover::engine::event::Event;
use exec_support::{assert_ok, environments, failure, start};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
name: striping
seed: 5
time_scale: 600
companies: [USMF, USRT]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 2, fields: { Name: name } }
    CustomersV3:
      key: CustomerAccount
      rows: { USMF: 24, USRT: 16 }
      fields: { OrganizationName: name, PartyType: "enum:Organization|Person" }
    Activities: { key: ActivityNumber, rows: 7 }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
    activitypointers: { key: subject, id: activityid, logical_name: activitypointer }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: customers
    source: CustomersV3
    target: accounts
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name }
    filter: "PartyType eq Microsoft.Dynamics.DataEntities.DirPartyBaseType'Organization'"
    initial: { status: stopped, preloaded: true }   # stopped: the test's own writes must not sync back
  - { name: activities, source: Activities, target: activitypointers, key: { source: ActivityNumber, target: subject }, initial: { status: running, preloaded: true } }
"#;

const ORGS: &str = "PartyType eq Microsoft.Dynamics.DataEntities.DirPartyBaseType'Organization'";

fn runbook() -> String {
    format!(
        r#"runbook: striping
version: 1.0.0
{}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies" }}
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    filter: {{ source: "{ORGS}" }}
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name }}
  customers_unfiltered: {{ source: "fno:CustomersV3", target: "dataverse:accounts", companies: [USMF, USRT] }}
  activities: {{ source: "fno:Activities", target: "dataverse:activitypointers" }}
phases:
  - id: p
    steps:
      - {{ id: parity-customers, kind: parity, maps: [customers] }}
      - {{ id: parity-unfiltered, kind: parity, maps: [customers_unfiltered] }}
      - {{ id: parity-activities, kind: parity, maps: [activities] }}
      - {{ id: sample-customers, kind: sample, maps: [customers], size: 100 }}
      - {{ id: sample-again, kind: sample, maps: [customers], size: 100 }}
"#,
        environments(true)
    )
}

fn samples(events: &[cutover::engine::Envelope], step: &str) -> Vec<(Option<String>, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ParitySample {
                step: Some(s),
                company,
                source,
                target,
                ..
            } if s.as_str() == step => Some((company.clone(), *source, *target)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn per_company_parity_goes_through_the_company_lookup_and_the_maps_filter() {
    let h = start(Some(SCENARIO), &runbook()).await;
    assert_ok(&h.run("parity-customers").await);
    let s = samples(&h.events().await, "parity-customers");
    assert_eq!(s.len(), 2, "{s:?}");
    for (company, source, target) in &s {
        assert!(company.is_some());
        assert_eq!(source, target, "{s:?}");
        assert!(*source > 0 && *source < 24, "organisations only: {s:?}");
    }
    // The same sets without the map's filter: persons are in F&O only, and that is not an error of the sync.
    let msg = failure(&h.run("parity-unfiltered").await);
    assert!(msg.contains("customers_unfiltered"), "{msg}");
}

#[tokio::test]
async fn primary_ids_come_from_metadata_not_from_the_set_name() {
    let h = start(Some(SCENARIO), &runbook()).await;
    assert_ok(&h.run("parity-activities").await);
    assert_eq!(
        samples(&h.events().await, "parity-activities"),
        vec![(None, 7, 7)]
    );
}

#[tokio::test]
async fn a_key_lookup_cannot_match_another_companys_row() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let c = CancellationToken::new();
    assert_ok(&h.run("sample-customers").await);
    // An organisation of USRT: its Dataverse row is removed, and a USMF row with the same account number and
    // the same name is put in its place. A lookup by key alone would find the impostor and call it a match.
    let fno = h.envs.fno("fno").unwrap();
    let orgs = fno
        .read(
            "CustomersV3",
            Some(&format!("dataAreaId eq 'usrt' and {ORGS}")),
            &[],
            Some("CustomerAccount"),
            1,
            &c,
        )
        .await
        .unwrap();
    let key = orgs[0]["CustomerAccount"].as_str().unwrap().to_owned();
    let name = orgs[0]["OrganizationName"].clone();
    let dv = h.envs.dataverse("dataverse").unwrap();
    let usrt = dv.company_id("USRT", &c).await.unwrap().unwrap();
    let usmf = dv.company_id("USMF", &c).await.unwrap().unwrap();
    assert_ne!(usrt, usmf);
    let rows = dv
        .find_by_key_where(
            "accounts",
            "accountnumber",
            &key,
            Some(&company_filter("msdyn_company", &usrt)),
            &[],
            &c,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the USRT row is there before");
    let id = rows[0]["accountid"].as_str().unwrap().to_owned();
    dv.delete("accounts", &id, &c).await.unwrap();
    dv.create(
        "accounts",
        &json!({"accountnumber": key, "name": name, "msdyn_company@odata.bind": format!("/cdm_companies({usmf})")}),
        None,
        &c,
    )
    .await
    .unwrap();
    let all = dv
        .find_by_key("accounts", "accountnumber", &key, &[], &c)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "the key alone now finds the USMF row");

    let msg = failure(&h.run("sample-again").await);
    assert!(msg.contains("customers"), "{msg}");
    let events = h.events().await;
    assert!(
        events.iter().any(|e| matches!(&e.event,
            Event::ErrorEntries { map, entries, .. } if map == "customers"
                && entries.iter().any(|x| x.key == format!("{key} (USRT)") && x.message.contains("not in accounts")))),
        "the USRT record is reported missing"
    );
}
