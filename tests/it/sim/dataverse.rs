//! Contract tests: Dataverse Web API against d365-api.md §4, with a plain HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use cutover::sim::SimHandle;
use serde_json::{Value, json};

const ANN: &str = "odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\"";

async fn sim(extra: &str) -> (SimHandle, reqwest::Client, String) {
    let yaml = format!(
        r#"
seed: 11
time_scale: 1000
companies: [USMF, USRT]
entities:
  fno:
    CustomersV3:
      key: CustomerAccount
      rows: {{ USMF: 7000, USRT: 5000 }}
      fields: {{ OrganizationName: name }}
    SalesOrderLines: {{ key: LotId, rows: {{ USMF: 30000, USRT: 30001 }} }}
    Companies: {{ key: DataArea, rows: 2 }}
  dataverse:
    cdm_companies: {{ key: cdm_companycode }}
    accounts: {{ key: accountnumber }}
    salesorderdetails: {{}}
    contacts: {{ rows: 3, fields: {{ fullname: name }} }}
maps:
  - {{ name: companies, source: Companies, target: cdm_companies, key: {{ source: DataArea, target: cdm_companycode }}, initial: {{ status: running, preloaded: true }} }}
  - {{ name: customers, source: CustomersV3, target: accounts, key: {{ source: CustomerAccount, target: accountnumber }}, fields: {{ OrganizationName: name }}, initial: {{ status: running, preloaded: true }} }}
  - {{ name: lines, source: SalesOrderLines, target: salesorderdetails, initial: {{ status: running, preloaded: true }} }}
{extra}
"#
    );
    sim_support::sim_with_token(&yaml, "https://org.crm.dynamics.com/.default").await
}

fn api(h: &SimHandle, path: &str) -> String {
    format!("{}/api/data/v9.2/{path}", h.url())
}

/// The `cdm_companyid` of a company code, asked the way a client must (§4).
async fn company_id(h: &SimHandle, c: &reqwest::Client, tok: &str, code: &str) -> String {
    let (s, _, v) = get_json(
        c,
        tok,
        &api(
            h,
            &format!("cdm_companies?$filter=cdm_companycode eq '{code}'&$select=cdm_companyid"),
        ),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["value"][0]["cdm_companyid"].as_str().unwrap().to_string()
}

async fn get_json(
    c: &reqwest::Client,
    tok: &str,
    url: &str,
    prefer: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = c
        .get(url)
        .bearer_auth(tok)
        .header("OData-Version", "4.0")
        .header("Accept", "application/json");
    if let Some(p) = prefer {
        rb = rb.header("Prefer", p);
    }
    let r = rb.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn count_is_capped_at_5000_with_the_limit_annotations() {
    let (h, c, tok) = sim("").await;
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(&h, "accounts?$select=accountid&$count=true"),
        Some(ANN),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["@odata.count"], 5000);
    assert_eq!(v["@Microsoft.Dynamics.CRM.totalrecordcount"], 5000);
    assert_eq!(v["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"], true);
    let (_, _, v) = get_json(&c, &tok, &api(&h, "accounts?$select=accountid"), Some(ANN)).await;
    assert_eq!(v["@Microsoft.Dynamics.CRM.totalrecordcount"], -1);
    let (_, _, v) = get_json(&c, &tok, &api(&h, "contacts?$count=true"), Some(ANN)).await;
    assert_eq!(
        (
            v["@odata.count"].clone(),
            v["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"].clone()
        ),
        (json!(3), json!(false))
    );
    let r = c
        .get(api(&h, "accounts/$count"))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "5000");
    let usrt = company_id(&h, &c, &tok, "USRT").await;
    let (_, _, v) = get_json(
        &c,
        &tok,
        &api(
            &h,
            &format!("accounts?$filter=_msdyn_company_value eq {usrt}&$count=true"),
        ),
        None,
    )
    .await;
    assert_eq!(v["@odata.count"], 5000);
    // A company code compared with the GUID key is the 400 a real tenant answers (§4).
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(&h, "cdm_companies?$filter=cdm_companyid eq 'USRT'"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "0x80060888");
    assert_eq!(
        v["error"]["message"],
        "A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and 'Edm.String' for operator kind 'Equal'."
    );
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(&h, "accounts?$filter=cdm_companyid eq 'USRT'"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find a property named 'cdm_companyid'")
    );
}

#[tokio::test]
async fn paging_uses_maxpagesize_and_an_opaque_skiptoken() {
    let (h, c, tok) = sim("").await;
    let usrt = company_id(&h, &c, &tok, "USRT").await;
    let mut url = api(
        &h,
        &format!("accounts?$select=accountnumber,name&$filter=_msdyn_company_value eq {usrt}"),
    );
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let (s, hd, v) = get_json(&c, &tok, &url, Some("odata.maxpagesize=2000")).await;
        assert_eq!(s, 200);
        assert_eq!(hd["preference-applied"], "odata.maxpagesize=2000");
        pages += 1;
        for r in v["value"].as_array().unwrap() {
            assert!(r["accountid"].is_string(), "the primary id is always returned");
            assert!(r.get("_msdyn_company_value").is_none());
            seen.insert(r["accountnumber"].as_str().unwrap().to_string());
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => {
                assert!(n.contains("$skiptoken="));
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (5000, 3));
    let (s, _, _) = get_json(&c, &tok, &api(&h, "accounts?$skip=3"), None).await;
    assert_eq!(s, 400, "Dataverse pages by $skiptoken only");
    let (_, _, v) = get_json(&c, &tok, &api(&h, "accounts?$top=3"), None).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 3);
    assert!(v.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn retrieve_total_record_count_fetchxml_and_whoami() {
    let (h, c, tok) = sim("").await;
    let q = format!(
        "RetrieveTotalRecordCount(EntityNames=@p1)?@p1={}",
        sim_support::urlenc("[\"account\",\"salesorderdetail\"]")
    );
    let (s, _, v) = get_json(&c, &tok, &api(&h, &q), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["EntityRecordCountCollection"]["Keys"],
        json!(["account", "salesorderdetail"])
    );
    assert_eq!(v["EntityRecordCountCollection"]["Values"], json!([12000, 60001]));
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("RetrieveTotalRecordCountResponse")
    );
    let fetch = |entity: &str, cond: &str| {
        sim_support::urlenc(&format!(
            "<fetch aggregate='true'><entity name='{entity}'><attribute name='{entity}id' alias='c' aggregate='count'/>{cond}</entity></fetch>"
        ))
    };
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(&h, &format!("accounts?fetchXml={}", fetch("account", ""))),
        None,
    )
    .await;
    assert_eq!((s, v["value"][0]["c"].clone()), (200, json!(12000)));
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(
            &h,
            &format!("salesorderdetails?fetchXml={}", fetch("salesorderdetail", "")),
        ),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "0x8004E023");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("AggregateQueryRecordLimit")
    );
    let usmf = company_id(&h, &c, &tok, "USMF").await;
    let cond =
        format!("<filter><condition attribute='msdyn_company' operator='eq' value='{usmf}'/></filter>");
    let (s, _, v) = get_json(
        &c,
        &tok,
        &api(
            &h,
            &format!("salesorderdetails?fetchXml={}", fetch("salesorderdetail", &cond)),
        ),
        None,
    )
    .await;
    assert_eq!((s, v["value"][0]["c"].clone()), (200, json!(30000)));
    let (s, _, v) = get_json(&c, &tok, &api(&h, "WhoAmI"), None).await;
    assert_eq!(s, 200);
    for k in ["BusinessUnitId", "UserId", "OrganizationId"] {
        assert_eq!(v[k].as_str().unwrap().len(), 36);
    }
}

#[tokio::test]
async fn create_delete_and_error_body() {
    let (h, c, tok) = sim("").await;
    let r = c
        .post(api(&h, "accounts"))
        .bearer_auth(&tok)
        .json(&json!({"accountnumber": "CAN-1", "name": "Canary", "msdyn_company@odata.bind": format!("/cdm_companies({})", company_id(&h, &c, &tok, "USMF").await)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let eid = r.headers()["odata-entityid"].to_str().unwrap().to_string();
    assert!(eid.starts_with(&api(&h, "accounts(")));
    let r = c
        .post(api(&h, "accounts"))
        .bearer_auth(&tok)
        .header("Prefer", "return=representation")
        .json(&json!({"accountnumber": "CAN-2", "name": "Canary 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "Canary 2");
    assert!(v["accountid"].is_string());
    assert_eq!(
        c.delete(&eid).bearer_auth(&tok).send().await.unwrap().status(),
        204
    );
    let r = c.delete(&eid).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string());
    let st = h.state();
    assert_eq!(st["side_effects"]["canary.create:CAN-1"], 1);
    assert_eq!(st["side_effects"]["canary.delete:CAN-1"], 1);
    // A create on a Running map reaches F&O after the (simulated) lag.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.state()["tables"]["fno"]["CustomersV3"] != 12001 {
        assert!(std::time::Instant::now() < deadline, "canary never reached F&O");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = c.get(api(&h, "accounts")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "0x80048306");
}

#[tokio::test]
async fn service_protection_answers_429_with_retry_after() {
    let extra = "dataverse: { service_protection: { requests: 5, window: 60, retry_after: 7 } }";
    let (h, c, tok) = sim(extra).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..7 {
        let r = c.get(api(&h, "contacts")).bearer_auth(&tok).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "7");
            last = Some(r.json::<Value>().await.unwrap());
        } else {
            assert!(
                r.headers()
                    .contains_key("x-ms-ratelimit-burst-remaining-xrm-requests")
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    let v = last.unwrap();
    assert_eq!(v["error"]["code"], "0x80072322");
    assert_eq!(
        v["error"]["message"],
        "Number of requests exceeded the limit of 5 over time window of 60 seconds."
    );
    let extra = "dataverse: { service_protection: { execution_ms: 100, request_cost_ms: 40 } }";
    let (h, c, tok) = sim(extra).await;
    let codes: Vec<u16> =
        futures::future::join_all((0..3).map(|_| c.get(api(&h, "contacts")).bearer_auth(&tok).send()))
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
    assert_eq!(codes.iter().filter(|s| **s == 429).count(), 1);
    let r = c.get(api(&h, "contacts")).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "0x80072321");
    let extra = "dataverse: { service_protection: { concurrent: 0 } }";
    let (h, c, tok) = sim(extra).await;
    let r = c.get(api(&h, "contacts")).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "0x80072326");
}
