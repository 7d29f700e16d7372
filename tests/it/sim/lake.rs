//! Contract tests: the lake stand-ins against d365-api.md §7 — the Synapse Link export's layout through the
//! Blob API (List Blobs XML with prefix and delimiter, Get Blob, `Changelog/changelog.info`, `model.json`,
//! headerless CSV with the system columns), Lakeflow Connect updates, and the Statement Execution API running
//! the SQL it is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const LAKE_YAML: &str = r#"
seed: 5
time_scale: 600
companies: [USMF, USRT]
entities:
  fno:
    CustomersV3: { key: CustomerAccount, rows: { USMF: 30, USRT: 20 }, fields: { OrganizationName: name } }
  dataverse:
    accounts: { key: accountnumber, fields: { name: name } }
lake:
  account: contosolake
  container: dataverse-contoso-unq1
  interval: 1m
  databricks:
    pipelines: [p-1]
    update_duration: 30s
    statement_duration: 20s
"#;

async fn storage_get(c: &reqwest::Client, url: &str, tok: &str) -> reqwest::Response {
    c.get(url)
        .bearer_auth(tok)
        .header("x-ms-version", "2021-08-06")
        .send()
        .await
        .unwrap()
}

/// Names of `<Name>` elements directly under `<Blob>` or `<BlobPrefix>`.
fn names(xml: &str, element: &str) -> Vec<String> {
    let open = format!("<{element}><Name>");
    xml.split(&open)
        .skip(1)
        .map(|s| s.split("</Name>").next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_export_is_laid_out_as_synapse_link_writes_it_and_served_through_the_blob_api() {
    let h = sim_support::start_sim_yaml(LAKE_YAML).await;
    let c = cutover::connectors::net::client().unwrap();
    let tok = sim_support::token(&c, &h.url(), "a", "s", "https://storage.azure.com/.default").await;
    let base = format!("{}/_storage/contosolake/dataverse-contoso-unq1", h.url());
    // Without x-ms-version a bearer token is refused; without a token the container does not exist.
    let r = c
        .get(format!("{base}?restype=container&comp=list"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!("{base}?restype=container&comp=list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-ms-error-code"], "ResourceNotFound");
    // Wait until at least one folder closed (1m interval at 600x: 0.1 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let listing = loop {
        let r = storage_get(
            &c,
            &format!("{base}?restype=container&comp=list&delimiter=/"),
            &tok,
        )
        .await;
        assert_eq!(r.status(), 200);
        let xml = r.text().await.unwrap();
        if names(&xml, "BlobPrefix").len() >= 3 {
            break xml;
        }
        assert!(Instant::now() < deadline, "no folder closed: {xml}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listing.contains("<EnumerationResults"), "{listing}");
    assert!(listing.contains("<Delimiter>/</Delimiter>"), "{listing}");
    let prefixes = names(&listing, "BlobPrefix");
    assert_eq!(prefixes[0], "2026-11-27T18.00.00Z/", "{prefixes:?}");
    assert!(prefixes.contains(&"Changelog/".to_owned()), "{prefixes:?}");
    // changelog.info names the folder still being written: the newest one.
    let open = storage_get(&c, &format!("{base}/Changelog/changelog.info"), &tok)
        .await
        .text()
        .await
        .unwrap();
    let folders: Vec<&String> = prefixes.iter().filter(|p| p.as_str() != "Changelog/").collect();
    assert!(
        folders.last().unwrap().trim_end_matches('/') >= open.as_str(),
        "{open} {folders:?}"
    );
    // The first folder: model.json, and a headerless CSV per table with the system columns first.
    let first = storage_get(
        &c,
        &format!("{base}?restype=container&comp=list&prefix=2026-11-27T18.00.00Z/"),
        &tok,
    )
    .await
    .text()
    .await
    .unwrap();
    let blobs = names(&first, "Blob");
    assert!(
        blobs.contains(&"2026-11-27T18.00.00Z/model.json".to_owned()),
        "{blobs:?}"
    );
    // `accounts` has no row: no partition, but model.json lists its attributes.
    assert!(!blobs.iter().any(|b| b.contains("/account/")), "{blobs:?}");
    assert!(
        blobs.contains(&"2026-11-27T18.00.00Z/mserp_customersv3/2026.csv".to_owned()),
        "{blobs:?}"
    );
    let model: Value = storage_get(&c, &format!("{base}/2026-11-27T18.00.00Z/model.json"), &tok)
        .await
        .json()
        .await
        .unwrap();
    let account = model["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "account")
        .unwrap();
    assert!(
        account["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "accountnumber"),
        "{account}"
    );
    let ent = model["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "mserp_customersv3")
        .unwrap();
    let attrs: Vec<&str> = ent["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &attrs[..5],
        &[
            "Id",
            "SinkCreatedOn",
            "SinkModifiedOn",
            "versionnumber",
            "IsDelete"
        ]
    );
    assert!(
        attrs.contains(&"mserp_customeraccount") && attrs.contains(&"mserp_dataareaid"),
        "{attrs:?}"
    );
    let csv = storage_get(
        &c,
        &format!("{base}/2026-11-27T18.00.00Z/mserp_customersv3/2026.csv"),
        &tok,
    )
    .await
    .text()
    .await
    .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 50, "every row of the initial export");
    assert!(!csv.contains("Id,"), "headerless");
    let cells: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(cells.len(), attrs.len());
    assert_eq!(cells[4], "", "not a delete");
    assert!(uuid::Uuid::parse_str(cells[0]).is_ok(), "{}", cells[0]);
    let r = storage_get(&c, &format!("{base}/nope.csv"), &tok).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<Code>BlobNotFound</Code>"));
}

#[tokio::test]
async fn a_pipeline_update_ingests_and_the_warehouse_runs_the_sql_it_is_sent() {
    // An update of 10 simulated minutes is a real second: long enough that a loaded machine's first poll still
    // finds it running (30 s, 50 ms real, was once seen only after it had completed).
    let yaml = LAKE_YAML.replace("update_duration: 30s", "update_duration: 10m");
    assert_ne!(yaml, LAKE_YAML);
    let h = sim_support::start_sim_yaml(&yaml).await;
    let c = cutover::connectors::net::client().unwrap();
    let tok = sim_support::token(
        &c,
        &h.url(),
        "a",
        "s",
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
    )
    .await;
    let api = format!("{}/api/2.0", h.url());
    // Let a folder close, then ingest.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r: Value = c
        .post(format!("{api}/pipelines/p-1/updates"))
        .bearer_auth(&tok)
        .json(&json!({"full_refresh": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uid = r["update_id"].as_str().unwrap().to_owned();
    let again = c
        .post(format!("{api}/pipelines/p-1/updates"))
        .bearer_auth(&tok)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "one active update at a time");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let u: Value = c
            .get(format!("{api}/pipelines/p-1/updates/{uid}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let s = u["update"]["state"].as_str().unwrap().to_owned();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen.len() >= 2, "{seen:?}");
    let p: Value = c
        .get(format!("{api}/pipelines/p-1"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["latest_updates"][0]["update_id"], uid.as_str());
    // The warehouse runs what it is sent: Spark SQL functions and a FULL OUTER JOIN, with a named parameter.
    let sql = "SELECT upper(mserp_dataareaid) AS company, count(*) AS n, min(sha2(string(mserp_customeraccount), 256)) AS h \
               FROM mserp_customersv3 FULL OUTER JOIN account ON mserp_customeraccount = accountnumber \
               WHERE mserp_dataareaid IS NOT NULL AND length(mserp_customeraccount) > :min GROUP BY 1 ORDER BY 1";
    let s: Value = c
        .post(format!("{api}/sql/statements"))
        .bearer_auth(&tok)
        .json(
            &json!({"statement": sql, "warehouse_id": "w1", "wait_timeout": "0s",
            "parameters": [{"name": "min", "value": "3", "type": "INT"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"]["state"], "PENDING");
    let id = s["statement_id"].as_str().unwrap().to_owned();
    let mut states = vec!["PENDING".to_owned()];
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        assert!(Instant::now() < deadline, "{states:?}");
        let v: Value = c
            .get(format!("{api}/sql/statements/{id}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let st = v["status"]["state"].as_str().unwrap().to_owned();
        if states.last() != Some(&st) {
            states.push(st.clone());
        }
        if st == "SUCCEEDED" {
            break v;
        }
        assert!(st != "FAILED", "{v}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    assert_eq!(states, ["PENDING", "RUNNING", "SUCCEEDED"]);
    assert_eq!(done["manifest"]["schema"]["columns"][0]["name"], "company");
    let rows = done["result"]["data_array"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "USMF");
    assert_eq!(rows[0][1], "30");
    assert_eq!(rows[0][2].as_str().unwrap().len(), 64);
    // Bad SQL fails with the engine's words; a cancel before the end is CANCELED.
    let bad: Value = c
        .post(format!("{api}/sql/statements"))
        .bearer_auth(&tok)
        .json(&json!({"statement": "SELECT nope FROM nowhere", "warehouse_id": "w1", "wait_timeout": "0s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bid = bad["statement_id"].as_str().unwrap().to_owned();
    let cancel_me: Value = c
        .post(format!("{api}/sql/statements"))
        .bearer_auth(&tok)
        .json(&json!({"statement": "SELECT 1", "warehouse_id": "w1", "wait_timeout": "0s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = cancel_me["statement_id"].as_str().unwrap().to_owned();
    let r = c
        .post(format!("{api}/sql/statements/{cid}/cancel"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = c
            .get(format!("{api}/sql/statements/{bid}"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["status"]["state"] == "FAILED" {
            assert!(
                v["status"]["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no such table"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let v: Value = c
        .get(format!("{api}/sql/statements/{cid}"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"]["state"], "CANCELED");
    let r = c.get(format!("{api}/sql/statements/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
