//! Dataverse table metadata read for many tables at once (`DataverseClient::tables`): a few batched
//! `EntityDefinitions` requests instead of one per table, and the per-table read for what they miss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::connector as connector_support;

use connector_support::*;
use cutover::connectors::install_table;

const YAML: &str = r#"
name: table-meta
time_scale: 600
companies: [USMF]
auth:
  resources: { fno: "https://fno.example.test", dataverse: "https://dv.example.test", dualwrite: "https://dw.example.test" }
entities:
  dataverse:
    accounts: { key: accountnumber, id: accountid, rows: 3 }
    contacts: { key: emailaddress1, id: contactid, rows: 2 }
"#;

/// The metadata reads (`GET .../EntityDefinitions...`) the client has sent so far.
fn metadata_reads(h: &Harness) -> Vec<String> {
    h.summaries()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains("EntityDefinitions"))
        .map(|s| s.call)
        .collect()
}

#[tokio::test]
async fn many_tables_are_read_in_one_request_and_a_table_the_answer_lacks_is_read_alone() {
    let h = start(YAML).await;
    let dv = h.dataverse();
    let sent = dv
        .tables(
            &["accounts", "contacts", "cutover_packageinstalls", "accounts"],
            4,
            &h.cancel,
        )
        .await
        .unwrap();
    assert_eq!(sent, 1, "three tables fit in one batched request");
    assert_eq!(metadata_reads(&h).len(), 1, "{:?}", metadata_reads(&h));

    // Read from the batched answer: no request more.
    let a = dv.table("accounts", &h.cancel).await.unwrap();
    let c = dv.table("contacts", &h.cancel).await.unwrap();
    assert_eq!(
        (a.logical_name.as_str(), a.primary_id.as_str()),
        ("account", "accountid")
    );
    assert_eq!(a.keys, vec![vec!["accountnumber".to_owned()]]);
    assert_eq!(c.primary_id, "contactid");
    assert_eq!(metadata_reads(&h).len(), 1);
    // Asking again for what is cached sends nothing.
    assert_eq!(
        dv.tables(&["accounts", "contacts"], 4, &h.cancel).await.unwrap(),
        0
    );

    // A table no answer had (it did not exist yet) is not remembered as missing: once it exists, the
    // per-table read finds it.
    assert!(
        install_table::create(&dv, "cutover_packageinstall", &h.cancel)
            .await
            .unwrap()
    );
    let before = metadata_reads(&h).len();
    let p = dv.table("cutover_packageinstalls", &h.cancel).await.unwrap();
    assert_eq!(
        (p.logical_name.as_str(), p.primary_id.as_str()),
        ("cutover_packageinstall", "cutover_packageinstallid")
    );
    let after = metadata_reads(&h);
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert_eq!(
        after.last().unwrap(),
        "dataverse.metadata cutover_packageinstalls"
    );
    // A set no table has is still a clear NotFound.
    let err = dv.table("nosuchs", &h.cancel).await.unwrap_err();
    assert!(err.to_string().contains("nosuchs"), "{err}");
}
