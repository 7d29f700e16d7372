//! Contract tests: Entra ID tokens and F&O OData against d365-api.md §1–2, with a plain HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use cutover::sim::{Scenario, SimHandle};
use serde_json::{Value, json};

const FNO: &str = "https://contoso.operations.dynamics.com";

fn scenario(extra: &str) -> Scenario {
    let yaml = format!(
        r#"
seed: 7
companies: [USMF, USRT, DEMF]
default_company: USMF
auth:
  token_ttl: 2
  client_secret: right-secret
  resources: {{ fno: "{FNO}", dataverse: "https://contoso.crm.dynamics.com" }}
fno: {{ page_size: 1000 }}
entities:
  fno:
    CustomersV3:
      key: CustomerAccount
      rows: {{ USMF: 1500, USRT: 900, DEMF: 600 }}
      fields: {{ OrganizationName: name, PrimaryContactPhone: phone }}
    Currencies: {{ key: CurrencyCode, rows: 40 }}
  dataverse:
    accounts: {{ key: accountnumber }}
{extra}
"#
    );
    Scenario::from_yaml(&yaml).unwrap()
}

async fn sim() -> (SimHandle, reqwest::Client) {
    let h = sim_support::start_sim(scenario("")).await;
    (h, cutover::connectors::net::client().unwrap())
}

async fn token_for(c: &reqwest::Client, url: &str, scope: &str, secret: &str) -> reqwest::Response {
    c.post(format!("{url}/contoso.onmicrosoft.com/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("client_secret", secret),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
}

async fn token(c: &reqwest::Client, url: &str) -> String {
    let r = token_for(c, url, &format!("{FNO}/.default"), "right-secret").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    v["access_token"].as_str().unwrap().to_string()
}

async fn get(c: &reqwest::Client, url: &str, tok: &str) -> reqwest::Response {
    c.get(url).bearer_auth(tok).send().await.unwrap()
}

/// Entra answers a wrong secret 401 `invalid_client` (AADSTS7000215) and a resource the tenant does
/// not have 400 `invalid_resource` (AADSTS500011); a malformed scope stays 400 `invalid_scope`
/// (AADSTS70011). (This test used to expect 400 and `invalid_scope` for both: our old model.)
#[tokio::test]
async fn token_errors_have_entras_status_and_body() {
    let (h, c) = sim().await;
    for (scope, secret, status, code, err) in [
        (format!("{FNO}/.default"), "wrong", 401, 7000215, "invalid_client"),
        (
            "https://elsewhere.example/.default".to_string(),
            "right-secret",
            400,
            500011,
            "invalid_resource",
        ),
        (FNO.to_string(), "right-secret", 400, 70011, "invalid_scope"),
    ] {
        let r = token_for(&c, &h.url(), &scope, secret).await;
        assert_eq!(r.status(), status, "{err}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], err);
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}:"))
        );
        assert_eq!(v["error_codes"], json!([code]));
        for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(v[k].is_string(), "{k}");
        }
    }
}

#[tokio::test]
async fn missing_expired_and_wrong_audience_tokens_get_401() {
    let (h, c) = sim().await;
    let url = format!("{}/data/CustomersV3/$count", h.url());
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "Unauthorized");
    // A Dataverse token is refused by F&O, and an F&O token by Dataverse.
    let r = token_for(
        &c,
        &h.url(),
        "https://contoso.crm.dynamics.com/.default",
        "right-secret",
    )
    .await;
    let dv: Value = r.json().await.unwrap();
    assert_eq!(
        get(&c, &url, dv["access_token"].as_str().unwrap()).await.status(),
        401
    );
    let tok = token(&c, &h.url()).await;
    assert_eq!(
        get(&c, &format!("{}/api/data/v9.2/accounts", h.url()), &tok)
            .await
            .status(),
        401
    );
    assert_eq!(get(&c, &url, &tok).await.status(), 200);
    // The scenario's TTL is 2 real seconds: poll until the token is refused.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = get(&c, &url, &tok).await.status();
        if s == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn counts_respect_cross_company_and_filters() {
    let (h, c) = sim().await;
    let tok = token(&c, &h.url()).await;
    let count = |q: &'static str| {
        let (c, tok, url) = (c.clone(), tok.clone(), h.url());
        async move {
            let r = get(&c, &format!("{url}/data/CustomersV3/$count{q}"), &tok).await;
            assert_eq!(r.status(), 200);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            r.text().await.unwrap().parse::<u64>().unwrap()
        }
    };
    assert_eq!(count("").await, 1500, "default company only");
    assert_eq!(count("?cross-company=true").await, 3000);
    assert_eq!(
        count("?cross-company=true&$filter=dataAreaId%20eq%20'usrt'").await,
        900
    );
    assert_eq!(
        count("?cross-company=true&$filter=dataAreaId eq 'DEMF'").await,
        600
    );
    let r = get(
        &c,
        &format!(
            "{}/data/CustomersV3?$count=true&$top=2&cross-company=true",
            h.url()
        ),
        &tok,
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["@odata.count"], 3000);
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["@odata.context"],
        format!("{}/data/$metadata#CustomersV3", h.url())
    );
    assert!(v["value"][0]["@odata.etag"].as_str().unwrap().starts_with("W/"));
    assert_eq!(v["value"][0]["dataAreaId"], "usmf");
    // A shared set ignores companies.
    let r = get(&c, &format!("{}/data/Currencies/$count", h.url()), &tok).await;
    assert_eq!(r.text().await.unwrap(), "40");
}

#[tokio::test]
async fn paging_follows_next_links_verbatim_and_select_filter_order_work() {
    let (h, c) = sim().await;
    let tok = token(&c, &h.url()).await;
    let mut url = format!(
        "{}/data/CustomersV3?cross-company=true&$select=CustomerAccount,dataAreaId",
        h.url()
    );
    let (mut rows, mut pages) = (Vec::new(), 0);
    loop {
        let v: Value = get(&c, &url, &tok).await.json().await.unwrap();
        pages += 1;
        let page = v["value"].as_array().unwrap();
        assert!(page.len() <= 1000);
        rows.extend(
            page.iter()
                .map(|r| r["CustomerAccount"].as_str().unwrap().to_string()),
        );
        assert!(page[0].get("OrganizationName").is_none(), "$select limits fields");
        match v["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!((rows.len(), pages), (3000, 3));
    let unique: std::collections::HashSet<_> = rows.iter().collect();
    assert_eq!(unique.len(), 3000);
    // $top + $skip + $orderby desc.
    let v: Value = get(
        &c,
        &format!(
            "{}/data/CustomersV3?$orderby=CustomerAccount desc&$top=3&$skip=1",
            h.url()
        ),
        &tok,
    )
    .await
    .json()
    .await
    .unwrap();
    let got: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["CustomerAccount"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["US-001499", "US-001498", "US-001497"]);
    // $filter eq on a key and a field, for record sampling.
    let first: Value = get(
        &c,
        &format!(
            "{}/data/CustomersV3?$top=1&cross-company=true&$filter=dataAreaId eq 'usrt'",
            h.url()
        ),
        &tok,
    )
    .await
    .json()
    .await
    .unwrap();
    let rec = &first["value"][0];
    let name = rec["OrganizationName"].as_str().unwrap();
    let q = format!(
        "{}/data/CustomersV3?cross-company=true&$filter=CustomerAccount eq '{}' and OrganizationName eq '{}'",
        h.url(),
        rec["CustomerAccount"].as_str().unwrap(),
        name
    );
    let v: Value = get(&c, &q, &tok).await.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    let r = get(
        &c,
        &format!("{}/data/CustomersV3?$filter=Amount gt 3", h.url()),
        &tok,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn create_and_delete_a_canary_count_side_effects() {
    let (h, c) = sim().await;
    let tok = token(&c, &h.url()).await;
    let r = c
        .post(format!("{}/data/CustomersV3", h.url()))
        .bearer_auth(&tok)
        .json(&json!({"dataAreaId": "usmf", "CustomerAccount": "CANARY-1", "OrganizationName": "Canary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let one = format!(
        "{}/data/CustomersV3(dataAreaId='usmf',CustomerAccount='CANARY-1')",
        h.url()
    );
    let v: Value = get(&c, &one, &tok).await.json().await.unwrap();
    assert_eq!(v["OrganizationName"], "Canary");
    assert_eq!(
        c.delete(&one).bearer_auth(&tok).send().await.unwrap().status(),
        204
    );
    assert_eq!(
        c.delete(&one).bearer_auth(&tok).send().await.unwrap().status(),
        404
    );
    let st = h.state();
    assert_eq!(st["side_effects"]["canary.create:CANARY-1"], 1);
    assert_eq!(st["side_effects"]["canary.delete:CANARY-1"], 1);
    assert_eq!(st["tables"]["fno"]["CustomersV3"], 3000);
}
