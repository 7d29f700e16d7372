//! Row-level parity (`reconcile`): rows planted per company through the services' own APIs (a row removed, a
//! row added, a field gone stale, and a swap that leaves the counts equal) are each found, in their class and
//! company, and nothing else is; the scratch database is gone afterwards. A two-sided `sample` finds a row
//! that only Dataverse has, which a sample picking its keys on F&O cannot see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::connectors::dataverse::company_filter;
use cutover::engine::event::{Event, RowClass};
use exec_support::{assert_ok, environments, failure, start};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = r#"
name: rows
seed: 11
time_scale: 600
companies: [USMF, USRT]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 2, fields: { Name: name } }
    CustomersV3:
      key: CustomerAccount
      rows: { USMF: 60, USRT: 40 }
      fields: { OrganizationName: name, PartyType: "enum:Organization|Person" }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    accounts: { key: accountnumber }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: customers
    source: CustomersV3
    target: accounts
    key: { source: CustomerAccount, target: accountnumber }
    fields: { OrganizationName: name }
    filter: "PartyType eq Microsoft.Dynamics.DataEntities.DirPartyBaseType'Organization'"
    initial: { status: stopped, preloaded: true }   # stopped: the planted rows stay as planted
"#;

const ORGS: &str = "PartyType eq Microsoft.Dynamics.DataEntities.DirPartyBaseType'Organization'";

fn runbook() -> String {
    format!(
        r#"runbook: rows
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
phases:
  - id: p
    steps:
      - {{ id: rows, kind: reconcile, maps: [customers] }}
      - {{ id: rows-tolerant, kind: reconcile, maps: [customers], sample: 1, max_differences: 5 }}
      - {{ id: sample-fno, kind: sample, maps: [customers], size: 100 }}
      - {{ id: sample-both, kind: sample, maps: [customers], size: 100, from: both }}
"#,
        environments(true)
    )
}

/// (map, company, matching, missing, extra, different, sample) of one step's results.
type Found = Vec<(
    Option<String>,
    u64,
    u64,
    u64,
    u64,
    Vec<(RowClass, String, Vec<(String, String, String)>)>,
)>;

fn found(events: &[cutover::engine::Envelope], step: &str) -> Found {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::RowsReconciled {
                step: s,
                company,
                matching,
                missing,
                extra,
                different,
                sample,
                ..
            } if s.as_str() == step => Some((
                company.clone(),
                *matching,
                *missing,
                *extra,
                *different,
                sample
                    .iter()
                    .map(|d| {
                        (
                            d.class,
                            d.key.clone(),
                            d.fields
                                .iter()
                                .map(|f| (f.field.clone(), f.source.clone(), f.target.clone()))
                                .collect(),
                        )
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The first `n` organisations of a company in F&O: (account, name).
async fn organisations(h: &exec_support::Harness, company: &str, n: usize) -> Vec<(String, Value)> {
    let fno = h.envs.fno("fno").unwrap();
    fno.read(
        "CustomersV3",
        Some(&format!("dataAreaId eq '{company}' and {ORGS}")),
        &[],
        Some("CustomerAccount"),
        n,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r["CustomerAccount"].as_str().unwrap().to_owned(),
            r["OrganizationName"].clone(),
        )
    })
    .collect()
}

async fn company_id(h: &exec_support::Harness, code: &str) -> String {
    let dv = h.envs.dataverse("dataverse").unwrap();
    dv.company_id(code, &CancellationToken::new())
        .await
        .unwrap()
        .unwrap()
}

/// Removes a company's account through the Web API (planting a row missing on the target).
async fn remove_account(h: &exec_support::Harness, key: &str, company_id: &str) {
    let (dv, c) = (h.envs.dataverse("dataverse").unwrap(), CancellationToken::new());
    let rows = dv
        .find_by_key_where(
            "accounts",
            "accountnumber",
            key,
            Some(&company_filter("msdyn_company", company_id)),
            &[],
            &c,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{key}");
    dv.delete("accounts", rows[0]["accountid"].as_str().unwrap(), &c)
        .await
        .unwrap();
}

/// Creates an account in a company through the Web API (planting a row extra on the target).
async fn add_account(h: &exec_support::Harness, key: &str, name: &str, company_id: &str) {
    let dv = h.envs.dataverse("dataverse").unwrap();
    let body = json!({"accountnumber": key, "name": name, "msdyn_company@odata.bind": format!("/cdm_companies({company_id})")});
    dv.create("accounts", &body, None, &CancellationToken::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn every_planted_row_is_found_in_its_class_and_company_and_nothing_else() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let usmf = organisations(&h, "usmf", 3).await;
    let usrt = organisations(&h, "usrt", 1).await;
    let (usmf_id, usrt_id) = (company_id(&h, "USMF").await, company_id(&h, "USRT").await);
    // USMF: one row missing, one row extra, one row whose name went stale.
    remove_account(&h, &usmf[0].0, &usmf_id).await;
    add_account(&h, "ZZ-EXTRA-1", "Nobody Ltd", &usmf_id).await;
    remove_account(&h, &usmf[1].0, &usmf_id).await;
    add_account(&h, &usmf[1].0, "Stale Name Ltd", &usmf_id).await;
    // USRT: a swap, so the counts still agree.
    remove_account(&h, &usrt[0].0, &usrt_id).await;
    add_account(&h, "ZZ-SWAP-1", "Swapped In Ltd", &usrt_id).await;

    let msg = failure(&h.run("rows").await);
    assert!(msg.contains("5 rows do not match (max 0)"), "{msg}");
    assert!(
        msg.contains("customers@USMF: 1 missing, 1 extra, 1 different"),
        "{msg}"
    );
    assert!(
        msg.contains("customers@USRT: 1 missing, 1 extra, 0 different"),
        "{msg}"
    );

    let got = found(&h.events().await, "rows");
    assert_eq!(got.len(), 2, "{got:#?}");
    let (company, _, missing, extra, different, sample) = &got[0];
    assert_eq!(
        (company.as_deref(), missing, extra, different),
        (Some("USMF"), &1, &1, &1)
    );
    let stale_name = usmf[1].1.as_str().unwrap().to_owned();
    let mut sample = sample.clone();
    sample.sort();
    assert_eq!(
        sample,
        vec![
            (RowClass::Missing, usmf[0].0.clone(), vec![]),
            (RowClass::Extra, "ZZ-EXTRA-1".to_owned(), vec![]),
            (
                RowClass::Different,
                usmf[1].0.clone(),
                vec![(
                    "OrganizationName".to_owned(),
                    stale_name,
                    "Stale Name Ltd".to_owned()
                )]
            ),
        ]
    );
    let (company, matching, missing, extra, different, sample) = &got[1];
    assert_eq!(
        (company.as_deref(), missing, extra, different),
        (Some("USRT"), &1, &1, &0)
    );
    assert!(*matching > 0);
    let mut sample = sample.clone();
    sample.sort();
    assert_eq!(
        sample,
        vec![
            (RowClass::Missing, usrt[0].0.clone(), vec![]),
            (RowClass::Extra, "ZZ-SWAP-1".to_owned(), vec![]),
        ]
    );

    // Dataverse was read in four `createdon` ranges per company, at once; F&O whole; each range journaled.
    let ranges: Vec<(Option<String>, String, String, u64)> = h
        .events()
        .await
        .iter()
        .filter_map(|e| match &e.event {
            Event::RowsRangeRead {
                step,
                company,
                side,
                range,
                rows,
                ..
            } if step.as_str() == "rows" => Some((company.clone(), side.clone(), range.clone(), *rows)),
            _ => None,
        })
        .collect();
    for company in ["USMF", "USRT"] {
        let of: Vec<_> = ranges
            .iter()
            .filter(|r| r.0.as_deref() == Some(company))
            .collect();
        assert_eq!(of.iter().filter(|r| r.1 == "source").count(), 1, "{of:?}");
        // Journaled as each range finishes, in whatever order that is: the first range open below, the last
        // open above, two bounded between.
        let target: Vec<_> = of.iter().filter(|r| r.1 == "target").collect();
        assert_eq!(target.len(), 4, "{of:?}");
        let kinds = |p: &dyn Fn(&str) -> bool| target.iter().filter(|r| p(&r.2)).count();
        assert_eq!(kinds(&|r| r.starts_with("createdon lt ")), 1, "{target:?}");
        assert_eq!(
            kinds(&|r| r.starts_with("createdon ge ") && !r.contains(" and ")),
            1,
            "{target:?}"
        );
        assert_eq!(
            kinds(&|r| r.starts_with("createdon ge ") && r.contains(" and createdon lt ")),
            2,
            "{target:?}"
        );
    }
    let log = crate::support::sim::request_log_with_query(&h.sim.url()).await;
    let range_reads = log
        .iter()
        .filter(|(_, p, q)| {
            p.ends_with("/accounts") && q.contains("createdon ge ") && q.contains("createdon lt ")
        })
        .count();
    assert_eq!(range_reads, 4, "two middle ranges per company, one page each");

    // Within `max_differences` the step passes, and the sample is bounded per class.
    let r = h.run("rows-tolerant").await;
    assert_ok(&r);
    assert_eq!(r.outputs["missing"], "2");
    let got = found(&h.events().await, "rows-tolerant");
    assert!(
        got.iter()
            .all(|(.., s)| s.iter().filter(|d| d.0 == RowClass::Missing).count() <= 1)
    );

    // No scratch database is left beside the journal.
    let left: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".reconcile.sqlite"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_untouched_estate_reconciles_clean() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let r = h.run("rows").await;
    assert_ok(&r);
    let got = found(&h.events().await, "rows");
    assert_eq!(got.len(), 2);
    for (company, matching, missing, extra, different, sample) in got {
        assert!(company.is_some() && matching > 0, "{company:?}");
        assert_eq!((missing, extra, different), (0, 0, 0));
        assert!(sample.is_empty());
    }
}

fn gated(level: &str) -> String {
    format!(
        r#"runbook: rows-gate
version: 1.0.0
{}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies", initial_sync: none }}
  customers:
    source: fno:CustomersV3
    target: dataverse:accounts
    companies: [USMF, USRT]
    filter: {{ source: "{ORGS}" }}
    key: {{ source: CustomerAccount, target: accountnumber }}
    compare: {{ OrganizationName: name }}
phases:
  - id: sync
    gate: {{ parity: true{level} }}
    waves:
      - {{ id: w1, maps: [customers] }}
"#,
        environments(true)
    )
}

/// A swap leaves the counts equal: a counts gate passes it, a `level: rows` gate does not, and says where.
#[tokio::test]
async fn a_rows_gate_fails_on_a_swap_that_a_counts_gate_passes() {
    for (level, passes) in [("", true), (", level: rows", false)] {
        let h = start(Some(SCENARIO), &gated(level)).await;
        let key = organisations(&h, "usrt", 1).await.remove(0).0;
        let usrt_id = company_id(&h, "USRT").await;
        remove_account(&h, &key, &usrt_id).await;
        add_account(&h, "ZZ-SWAP-1", "Swapped In Ltd", &usrt_id).await;

        let r = h.run("w1:gate").await;
        if passes {
            assert_ok(&r);
        } else {
            let msg = failure(&r);
            assert!(
                msg.contains("rows customers@USRT: 1 missing, 1 extra, 0 different"),
                "{msg}"
            );
            assert!(!msg.contains("customers@USMF"), "{msg}");
            let events = h.events().await;
            assert!(events.iter().any(|e| matches!(&e.event,
                Event::GateEvaluated { passed: false, failures, .. }
                    if failures.iter().any(|f| f.map == "customers" && f.company.as_deref() == Some("USRT")))));
            assert_eq!(
                found(&events, "w1:gate").len(),
                2,
                "both companies reconciled and journaled"
            );
        }
    }
}

/// Rows read show as progress while both sides are read.
#[tokio::test]
async fn reading_both_sides_reports_progress_per_side() {
    let h = start(Some(SCENARIO), &runbook()).await;
    assert_ok(&h.run("rows").await);
    let notes: Vec<String> = h
        .events()
        .await
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepProgress {
                step, note: Some(n), ..
            } if step.as_str() == "rows" => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("customers@USMF: ") && n.ends_with("rows read (F&O)")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("customers@USRT: ") && n.ends_with("rows read (Dataverse)")),
        "{notes:?}"
    );
}

const VALUES_SCENARIO: &str = r#"
name: values
seed: 12
time_scale: 600
companies: [USMF]
default_company: USMF
entities:
  fno:
    Companies: { key: DataArea, rows: 1, fields: { Name: name } }
    DeliveryModes: { key: ModeCode, rows: { USMF: 3 }, fields: { Txt: text } }
    SalesOrderHeadersV2:
      key: SalesOrderNumber
      rows: { USMF: 50 }
      fields: { SalesOrderStatus: "enum:SalesStatus:Backorder|Delivered|Invoiced", DeliveryModeCode: "enum:10|20|30" }
  dataverse:
    cdm_companies: { key: cdm_companycode }
    msdyn_deliverymodes: { key: msdyn_code }
    salesorders:
      key: ordernumber
      fields: { msdyn_salesstatus: "choice:192350000=Backorder|192350001=Delivered|192350002=Invoiced" }
      lookups: { msdyn_deliverymodeid: msdyn_deliverymodes }
maps:
  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, initial: { status: running, preloaded: true } }
  - name: orders
    source: SalesOrderHeadersV2
    target: salesorders
    key: { source: SalesOrderNumber, target: ordernumber }
    fields: { SalesOrderStatus: msdyn_salesstatus }
    values: { SalesOrderStatus: { Backorder: 192350000, Delivered: 192350001, Invoiced: 192350002 } }
    initial: { status: stopped, preloaded: true }
"#;

fn values_runbook(values: &str) -> String {
    format!(
        r#"runbook: values
version: 1.0.0
{}
maps:
  companies: {{ source: "fno:Companies", target: "dataverse:cdm_companies" }}
  orders:
    source: fno:SalesOrderHeadersV2
    target: dataverse:salesorders
    companies: [USMF]
    key: {{ source: SalesOrderNumber, target: ordernumber }}
    compare: {{ SalesOrderStatus: msdyn_salesstatus, DeliveryModeCode: _msdyn_deliverymodeid_value }}
{values}
phases:
  - id: p
    steps:
      - {{ id: rows, kind: reconcile, maps: [orders] }}
"#,
        environments(true)
    )
}

/// An F&O enum member on one side and its mapped option value on the other is no difference; a value the map
/// gets wrong is; a lookup compared with no mapping is "not comparable", left out and named, not different.
#[tokio::test]
async fn value_maps_carry_enums_to_options_and_an_unmapped_lookup_is_not_comparable() {
    let right = "    values: { SalesOrderStatus: { Backorder: 192350000, Delivered: 192350001, Invoiced: 192350002 } }";
    let h = start(Some(VALUES_SCENARIO), &values_runbook(right)).await;
    assert_ok(&h.run("rows").await);
    let got = found(&h.events().await, "rows");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].1, got[0].2, got[0].3, got[0].4), (50, 0, 0, 0), "{got:?}");
    let warned = h.events().await.into_iter().any(|e| match &e.event {
        Event::Log { message, .. } => {
            message.contains("not comparable")
                && message.contains("DeliveryModeCode ↔ _msdyn_deliverymodeid_value (Lookup)")
        }
        _ => false,
    });
    assert!(warned, "no not-comparable warning");

    // Without the value map the enum is not comparable either; with a wrong one, rows differ through it.
    let h = start(Some(VALUES_SCENARIO), &values_runbook("")).await;
    assert_ok(&h.run("rows").await);
    let got = found(&h.events().await, "rows");
    assert_eq!((got[0].1, got[0].4), (50, 0), "{got:?}");
    let wrong = "    values: { SalesOrderStatus: { Backorder: 192350000, Delivered: 192350002, Invoiced: 192350001 } }";
    let h = start(Some(VALUES_SCENARIO), &values_runbook(wrong)).await;
    let msg = failure(&h.run("rows").await);
    assert!(msg.contains("different"), "{msg}");
    let got = found(&h.events().await, "rows");
    assert!(got[0].4 > 0 && got[0].1 > 0, "{got:?}");
    let (_, _, fields) = &got[0].5.iter().find(|d| d.0 == RowClass::Different).unwrap();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].0, "SalesOrderStatus");
}

#[tokio::test]
async fn a_two_sided_sample_finds_a_row_missing_on_the_fno_side() {
    let h = start(Some(SCENARIO), &runbook()).await;
    let usmf_id = company_id(&h, "USMF").await;
    add_account(&h, "ZZ-ONLY-IN-DV", "Nobody Ltd", &usmf_id).await;

    // Keys picked on F&O: every F&O row has its twin, so the Dataverse-only row is not seen.
    assert_ok(&h.run("sample-fno").await);
    let msg = failure(&h.run("sample-both").await);
    assert!(msg.contains("1 not in F&O, 0 not in Dataverse"), "{msg}");
    let events = h.events().await;
    let entries: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ErrorEntries {
                entries,
                source: Some(s),
                ..
            } if s == "sample" => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].key, "ZZ-ONLY-IN-DV (USMF)");
    assert!(
        entries[0]
            .message
            .contains("is in accounts but not in CustomersV3"),
        "{}",
        entries[0].message
    );
    let outputs = |step: &str| {
        events
            .iter()
            .find_map(|e| match &e.event {
                Event::StepFinished { step: s, outputs, .. } if s.as_str() == step => Some(outputs.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let fno_only = outputs("sample-fno");
    assert_eq!(
        fno_only.get("differ").map(String::as_str),
        Some("0"),
        "{fno_only:?}"
    );
    // F&O has 60 + 40 customers of which the filter keeps the organisations; both sides were read.
    let checked: usize = fno_only["checked"].parse().unwrap();
    assert!(checked > 0);
}
