//! Contract tests: the simulator answers as the real services do (issue 13), with a plain HTTP
//! client on loopback. Each test pins facts the simulator used to get wrong: routing by host,
//! links from the request, OData headers, Dataverse error codes, query validation, metadata,
//! FetchXML rows, `$batch`, CreateMultiple, Entra discovery and token errors, `/_sim/model`.

use crate::support::sim as sim_support;

use cutover::sim::SimHandle;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const DV: &str = "https://org.crm.dynamics.com";
const FNO: &str = "https://env.operations.dynamics.com";
const TENANT: &str = "11111111-2222-4333-8444-555555555555";

async fn sim() -> (SimHandle, reqwest::Client) {
    let yaml = format!(
        r#"
seed: 5
companies: [USMF, DEMF]
auth:
  tenants: [{{ id: "{TENANT}", domains: [contoso.onmicrosoft.com] }}]
  resources: {{ fno: "{FNO}", dataverse: "{DV}" }}
entities:
  fno:
    CustomersV3:
      key: CustomerAccount
      rows: {{ USMF: 120, DEMF: 30 }}
      fields: {{ OrganizationName: name, Blocked: noyes }}
  dataverse:
    accounts:
      key: accountnumber
      lookups: {{ primarycontactid: contacts }}
      fields: {{ industrycode: "choice:1=Accounting|2=Agriculture" }}
    contacts: {{ rows: 5, fields: {{ fullname: name }} }}
maps:
  - {{ name: customers, source: CustomersV3, target: accounts, key: {{ source: CustomerAccount, target: accountnumber }}, fields: {{ OrganizationName: name }}, initial: {{ status: running, preloaded: true }} }}
"#
    );
    let h = sim_support::start_sim_yaml(&yaml).await;
    (h, cutover::connectors::net::client().unwrap())
}

/// A token from the scenario's tenant (`sim_support::token` names tenant `t`, which this
/// scenario's tenant list refuses).
async fn token(c: &reqwest::Client, h: &SimHandle, resource: &str) -> String {
    sim_support::token_in(c, &h.url(), TENANT, "a", "s", &format!("{resource}/.default")).await
}

async fn get(
    c: &reqwest::Client,
    url: &str,
    tok: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Value, String) {
    let mut rb = c.get(url).bearer_auth(tok);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let (s, hd) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (s, hd, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test]
async fn services_are_routed_by_host_and_links_name_the_host_called() {
    let (h, c) = sim().await;
    let (dv, fno) = (token(&c, &h, DV).await, token(&c, &h, FNO).await);
    let url = h.url();
    let front = [
        ("x-forwarded-host", "org.crm.dynamics.com"),
        ("x-forwarded-proto", "https"),
    ];
    // An F&O path on the Dataverse host is that host's 404, not F&O.
    let (s, _, v, _) = get(&c, &format!("{url}/data/CustomersV3"), &fno, &front).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("0x80060888")));
    // Links are built from the host the client called, not from the listen address.
    let (s, hd, v, _) = get(
        &c,
        &format!("{url}/api/data/v9.2/accounts?$select=accountid"),
        &dv,
        &[front[0], front[1], ("prefer", "odata.maxpagesize=10")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with("https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts")
    );
    assert!(
        v["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("https://org.crm.dynamics.com/api/data/v9.2/accounts?")
    );
    assert_eq!(hd["odata-version"], "4.0");
    assert_eq!(hd["content-type"], "application/json; odata.metadata=minimal");
    assert_eq!(hd["preference-applied"], "odata.maxpagesize=10");
    // On the bare listen address every service is there by path, and links name that address.
    let (s, hd, v, _) = get(&c, &format!("{url}/data/CustomersV3?$top=1"), &fno, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["@odata.context"], format!("{url}/data/$metadata#CustomersV3"));
    assert_eq!(hd["odata-version"], "4.0");
    // An unknown path asks for no token (it used to be an F&O 401) and says it is not modelled.
    let r = c.get(format!("{url}/nowhere/at/all")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("not modelled by the simulator"));
    // Dataverse's 401 carries the challenge .NET clients read to find the tenant.
    let r = c
        .get(format!("{url}/api/data/v9.2/"))
        .header("x-forwarded-host", "org.crm.dynamics.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert_eq!(
        www,
        format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize, resource_id=https://org.crm.dynamics.com/"
        )
    );
    // .NET's ServiceClient asks the SOAP endpoint for that challenge first; SOAP itself is not modelled.
    let soap = format!("{url}/XRMServices/2011/Organization.svc/web?SDKClientVersion=9.2");
    let r = c
        .get(&soap)
        .header("x-forwarded-host", "org.crm.dynamics.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("authorization_uri=")
    );
    let (s, _, v, _) = get(&c, &soap, &dv, &[front[0]]).await;
    assert_eq!((s, v["error"]["code"].as_str()), (501, Some("0x80060888")));
}

#[tokio::test]
async fn dataverse_answers_with_the_real_error_codes_and_refuses_what_it_does_not_know() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, DV).await;
    let api = format!("{}/api/data/v9.2", h.url());
    let id = "00000000-0000-0000-0000-00000000beef";
    let (s, _, v, _) = get(&c, &format!("{api}/accounts({id})"), &tok, &[]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("0x80040217")),
        "missing record (was 0x80060888)"
    );
    assert_eq!(
        v["error"]["message"],
        format!("account With Id = {id} Does Not Exist")
    );
    for q in [
        "$select=accountnumber,nosuchcolumn",
        "$filter=nosuchcolumn eq 1",
        "$orderby=nosuchcolumn",
        "$select=primarycontactid",
    ] {
        let (s, _, v, _) = get(&c, &format!("{api}/accounts?{q}"), &tok, &[]).await;
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("0x80060888")), "{q}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Could not find a property named"),
            "{q}"
        );
    }
    let (s, _, _, _) = get(&c, &format!("{api}/accounts?$frobnicate=1"), &tok, &[]).await;
    assert_eq!(s, 400, "an unknown query option is refused, not ignored");
    let (s, _, v, _) = get(&c, &format!("{api}/accounts?$apply=groupby((name))"), &tok, &[]).await;
    assert_eq!(s, 501);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not modelled by the simulator")
    );
    // The filters clients send, and the system columns every row has.
    let (s, _, v, _) = get(&c, &format!("{api}/accounts?$select=accountnumber,statecode&$filter=statecode eq 0 and (startswith(accountnumber,'de') or endswith(accountnumber,'-000001')) and accountnumber ne 'DE-000122'&$orderby=accountnumber&$top=3"), &tok, &[]).await;
    assert_eq!(s, 200);
    let got: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["accountnumber"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["DE-000121", "DE-000123", "DE-000124"]);
    // A lookup bound at create is expanded; return=representation honours $select.
    let r = c.post(format!("{api}/accounts?$select=name")).bearer_auth(&tok).header("prefer", "return=representation")
        .json(&json!({"name": "Bound", "accountnumber": "B-1", "primarycontactid@odata.bind": "/contacts(nosuch)"})).send().await.unwrap();
    assert_eq!(r.status(), 404, "a bind to a missing contact");
    let (_, _, contacts, _) = get(&c, &format!("{api}/contacts?$select=fullname&$top=1"), &tok, &[]).await;
    let contact = contacts["value"][0]["contactid"].as_str().unwrap().to_string();
    let r = c.post(format!("{api}/accounts?$select=name")).bearer_auth(&tok).header("prefer", "return=representation")
        .json(&json!({"name": "Bound", "accountnumber": "B-1", "primarycontactid@odata.bind": format!("/contacts({contact})")})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["preference-applied"], "return=representation");
    let rep: Value = r.json().await.unwrap();
    assert!(
        rep.get("accountnumber").is_none() && rep["name"] == "Bound",
        "{rep}"
    );
    let (s, _, v, _) = get(
        &c,
        &format!(
            "{api}/accounts(accountnumber='B-1')?$select=name&$expand=primarycontactid($select=fullname)"
        ),
        &tok,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["primarycontactid"]["fullname"],
        contacts["value"][0]["fullname"]
    );
    let r = c
        .post(format!("{api}/accounts"))
        .bearer_auth(&tok)
        .json(&json!({"nosuch": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an unknown property in a body");
}

#[tokio::test]
async fn dataverse_serves_table_definitions_and_csdl_for_its_tables() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, DV).await;
    let api = format!("{}/api/data/v9.2", h.url());
    let (s, _, v, _) = get(&c, &format!("{api}/EntityDefinitions(LogicalName='account')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute&$expand=Keys($select=KeyAttributes)"), &tok, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            v["EntitySetName"].as_str(),
            v["PrimaryIdAttribute"].as_str(),
            v["PrimaryNameAttribute"].as_str()
        ),
        (Some("accounts"), Some("accountid"), Some("name"))
    );
    assert!(v["MetadataId"].is_string(), "MetadataId is always returned");
    assert_eq!(v["Keys"][0]["KeyAttributes"], json!(["accountnumber"]));
    let (_, _, v, _) = get(
        &c,
        &format!("{api}/EntityDefinitions?$select=LogicalName&$filter=EntitySetName eq 'contacts'"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert_eq!(v["value"][0]["LogicalName"], "contact");
    let (_, _, v, _) = get(&c, &format!("{api}/EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=LogicalName,Targets"), &tok, &[]).await;
    let lookups = v["value"].as_array().unwrap();
    assert!(
        lookups
            .iter()
            .all(|l| l["@odata.type"] == "#Microsoft.Dynamics.CRM.LookupAttributeMetadata")
    );
    let targets: Vec<(String, Value)> = lookups
        .iter()
        .map(|l| {
            (
                l["LogicalName"].as_str().unwrap().to_owned(),
                l["Targets"].clone(),
            )
        })
        .collect();
    assert!(
        targets.iter().any(|(_, t)| *t == json!(["contact"])),
        "{targets:?}"
    );
    // The company stripe of a company-specific table (§4): a lookup to cdm_company.
    assert!(
        targets.contains(&("msdyn_company".to_owned(), json!(["cdm_company"]))),
        "{targets:?}"
    );
    let (_, _, v, _) = get(&c, &format!("{api}/EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"), &tok, &[]).await;
    assert_eq!(v["value"][0]["OptionSet"]["Options"][1]["Value"], 2);
    let (_, _, v, _) = get(&c, &format!("{api}/EntityDefinitions(LogicalName='account')/Attributes(LogicalName='statecode')?$select=AttributeType"), &tok, &[]).await;
    assert_eq!(v["AttributeType"], "State");
    let (s, _, _, _) = get(
        &c,
        &format!("{api}/EntityDefinitions(LogicalName='account')/ManyToOneRelationships"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(s, 501);
    let (s, hd, _, text) = get(&c, &format!("{api}/$metadata"), &tok, &[]).await;
    assert_eq!(
        (s, hd["content-type"].to_str().unwrap()),
        (200, "application/xml")
    );
    assert!(text.contains("<EntityType Name=\"account\" BaseType=\"mscrm.crmbaseentity\"><Key><PropertyRef Name=\"accountid\"/></Key>"));
    assert!(text.contains("<EntitySet Name=\"accounts\" EntityType=\"Microsoft.Dynamics.CRM.account\"/>"));
    let (_, _, v, _) = get(&c, &format!("{api}/"), &tok, &[]).await;
    assert!(
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "accounts" && s["kind"] == "EntitySet")
    );
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::test]
async fn fetchxml_returns_rows_and_pages_with_dataverse_paging_cookies() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, DV).await;
    let api = format!("{}/api/data/v9.2", h.url());
    let ann = (
        "prefer",
        "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\"",
    );
    let fetch = |page: usize, cookie: Option<&str>| {
        let pc = cookie
            .map(|c| format!(" paging-cookie=\"{}\"", xml_escape(c)))
            .unwrap_or_default();
        sim_support::urlenc(&format!(
            "<fetch count=\"100\" page=\"{page}\"{pc}><entity name=\"account\"><attribute name=\"accountnumber\"/><order attribute=\"accountnumber\"/><filter><condition attribute=\"statecode\" operator=\"eq\" value=\"0\"/></filter></entity></fetch>"
        ))
    };
    let (s, hd, v, _) = get(
        &c,
        &format!("{api}/accounts?fetchXml={}", fetch(1, None)),
        &tok,
        &[ann],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 100);
    assert!(
        v["value"][0]["accountid"].is_string(),
        "the primary id is always returned"
    );
    assert_eq!(v["@Microsoft.Dynamics.CRM.morerecords"], true);
    assert!(hd.contains_key("preference-applied"));
    let cookie = v["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cookie
            .starts_with("<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e"),
        "{cookie}"
    );
    // As dynamics-web-api does: URL-decode the pagingcookie twice, XML-escape it into paging-cookie.
    let inner = cookie
        .split("pagingcookie=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let once = urldecode(inner);
    let inner = urldecode(&once);
    let (_, hd, v2, _) = get(
        &c,
        &format!("{api}/accounts?fetchXml={}", fetch(2, Some(&inner))),
        &tok,
        &[ann],
    )
    .await;
    let last1 = v["value"][99]["accountnumber"].as_str().unwrap();
    assert_eq!(
        v2["value"].as_array().unwrap().len(),
        50,
        "150 accounts: the second page has the last 50"
    );
    assert!(v2["value"][0]["accountnumber"].as_str().unwrap() > last1);
    assert!(
        v2.get("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie").is_none()
            && v2.get("@Microsoft.Dynamics.CRM.morerecords").is_none(),
        "the last page carries neither annotation"
    );
    assert!(!hd.contains_key("preference-applied"));
    // Without the Prefer header no annotation is returned.
    let (_, _, v, _) = get(
        &c,
        &format!("{api}/accounts?fetchXml={}", fetch(1, None)),
        &tok,
        &[],
    )
    .await;
    assert!(v.get("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie").is_none());
    let link = sim_support::urlenc(
        "<fetch><entity name=\"account\"><link-entity name=\"contact\" from=\"contactid\" to=\"primarycontactid\"/></entity></fetch>",
    );
    let (s, _, _, _) = get(&c, &format!("{api}/accounts?fetchXml={link}"), &tok, &[]).await;
    assert_eq!(s, 501);
}

fn urldecode(s: &str) -> String {
    cutover::sim::odata::decode(s)
}

fn batch_body(b: &str, parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(&format!("--{b}\r\n{p}\r\n"));
    }
    out.push_str(&format!("--{b}--\r\n"));
    out
}

fn http_part(req: &str, content_id: Option<u32>) -> String {
    let cid = content_id
        .map(|c| format!("Content-ID: {c}\r\n"))
        .unwrap_or_default();
    format!("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n{cid}\r\n{req}\r\n")
}

#[tokio::test]
async fn batch_and_create_multiple_answer_as_dataverse_does() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, DV).await;
    let api = format!("{}/api/data/v9.2", h.url());
    let changeset = |body: &str| {
        let inner = batch_body(
            "changeset_x",
            &[
                http_part(
                    &format!(
                        "POST {api}/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"name\":\"B\",\"accountnumber\":\"BATCH-1\"}}"
                    ),
                    Some(1),
                ),
                http_part(
                    &format!("POST {api}/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{body}"),
                    Some(2),
                ),
            ],
        );
        format!("Content-Type: multipart/mixed; boundary=changeset_x\r\n\r\n{inner}")
    };
    let send = |body: String| {
        c.post(format!("{api}/$batch"))
            .bearer_auth(&tok)
            .header("content-type", "multipart/mixed; boundary=batch_x")
            .body(body)
            .send()
    };
    let ok = batch_body(
        "batch_x",
        &[
            http_part(
                "GET accounts?$select=accountnumber&$top=2 HTTP/1.1\r\nAccept: application/json\r\n",
                None,
            ),
            changeset("{\"name\":\"B2\"}"),
        ],
    );
    let r = send(ok).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("multipart/mixed; boundary=batchresponse_"), "{ct}");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("--batchresponse_")
            && text.contains("boundary=changesetresponse_")
            && text.contains("Content-ID: 2\r\n")
    );
    let statuses: Vec<&str> = text.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 204 No Content"
        ]
    );
    // A change set whose second request fails leaves nothing behind, and the batch answers 400.
    let r = send(batch_body(
        "batch_x",
        &[changeset("{\"nosuch\":1}").replace("BATCH-1", "BATCH-2")],
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let (_, _, v, _) = get(
        &c,
        &format!("{api}/accounts?$filter=accountnumber eq 'BATCH-2'&$count=true"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(v["@odata.count"], 0);
    let r = c.post(format!("{api}/accounts/Microsoft.Dynamics.CRM.CreateMultiple")).bearer_auth(&tok)
        .json(&json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "M1"}, {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "M2"}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Ids"].as_array().unwrap().len(), 2);
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    );
}

#[tokio::test]
async fn fno_serves_its_service_document_metadata_and_batch() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, FNO).await;
    let url = h.url();
    let (s, _, v, _) = get(&c, &format!("{url}/data/"), &tok, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["value"][0],
        json!({"name": "CustomersV3", "kind": "EntitySet", "url": "CustomersV3"})
    );
    let (_, _, _, text) = get(&c, &format!("{url}/data/$metadata"), &tok, &[]).await;
    assert!(text.contains("<Schema Namespace=\"Microsoft.Dynamics.DataEntities\""));
    assert!(text.contains("<EntityType Name=\"CustomerV3\"><Key><PropertyRef Name=\"dataAreaId\"/><PropertyRef Name=\"CustomerAccount\"/></Key>"));
    assert!(text.contains("<Property Name=\"Blocked\" Type=\"Microsoft.Dynamics.DataEntities.NoYes\"/>"));
    assert!(
        text.contains("<EnumType Name=\"NoYes\">") && text.contains("<EntityContainer Name=\"Resources\">")
    );
    let (s, _, v, _) = get(
        &c,
        &format!("{url}/Metadata/DataEntities?$top=1&$filter=PublicCollectionName eq 'CustomersV3'"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(
        (s, v["value"][0]["PublicEntityName"].as_str()),
        (200, Some("CustomerV3"))
    );
    let (s, _, v, _) = get(&c, &format!("{url}/data/CustomersV3?cross-company=true&$filter=Blocked eq Microsoft.Dynamics.DataEntities.NoYes'Yes'&$count=true&$top=1"), &tok, &[]).await;
    assert_eq!(s, 200);
    assert!(v["@odata.count"].as_u64().unwrap() > 0 && v["value"][0]["Blocked"] == "Yes");
    let (s, _, _, _) = get(&c, &format!("{url}/data/CustomersV3?$frobnicate=1"), &tok, &[]).await;
    assert_eq!(s, 400);
    let body = batch_body(
        "b",
        &[
            http_part("GET CustomersV3/$count?cross-company=true HTTP/1.1\r\n", None),
            format!(
                "Content-Type: multipart/mixed; boundary=c\r\n\r\n{}",
                batch_body(
                    "c",
                    &[http_part(
                        &format!(
                            "POST {url}/data/CustomersV3 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"dataAreaId\":\"usmf\",\"CustomerAccount\":\"B-1\"}}"
                        ),
                        Some(1)
                    )]
                )
            ),
        ],
    );
    let r = c
        .post(format!("{url}/data/$batch"))
        .bearer_auth(&tok)
        .header("content-type", "multipart/mixed; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let statuses: Vec<&str> = text.lines().filter(|l| l.starts_with("HTTP/1.1 ")).collect();
    assert_eq!(statuses, ["HTTP/1.1 200 OK", "HTTP/1.1 201 Created"]);
    assert!(text.contains("\r\n150\r\n"), "the $count part: {text}");
}

#[tokio::test]
async fn entra_serves_discovery_and_answers_token_errors_as_entra_does() {
    let (h, c) = sim().await;
    let url = h.url();
    for t in [TENANT, "contoso.onmicrosoft.com"] {
        let v: Value = c
            .get(format!("{url}/{t}/v2.0/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["token_endpoint"],
            format!("{url}/{TENANT}/oauth2/v2.0/token"),
            "a domain resolves to the tenant id"
        );
        assert_eq!(v["issuer"], format!("{url}/{TENANT}/v2.0"));
        assert!(v["device_authorization_endpoint"].is_string() && v["jwks_uri"].is_string());
    }
    let r = c
        .get(format!(
            "{url}/nosuch.example/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"].as_str(), v["error_codes"][0].as_u64()),
        (Some("invalid_request"), Some(90002))
    );
    let v: Value = c
        .get(format!("{url}/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize"))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(
        v["tenant_discovery_endpoint"],
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert!(
        v["metadata"][0]["aliases"]
            .as_array()
            .unwrap()
            .contains(&json!("login.windows.net"))
    );
    let form = |tenant: &str, scope: &str| {
        c.post(format!("{url}/{tenant}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "a"),
                ("client_secret", "s"),
                ("scope", scope),
            ])
            .send()
    };
    let r = form("nosuch.example", &format!("{DV}/.default")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002:")
    );
    let r = form(TENANT, "https://nosuchorg.crm.dynamics.com/.default")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_resource");
    assert_eq!(
        v["error_uri"],
        "https://login.microsoftonline.com/error?code=500011"
    );
}

#[tokio::test]
async fn the_served_our_model_list_is_the_code_list() {
    let (h, c) = sim().await;
    let v: Value = c
        .get(format!("{}/_sim/model", h.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = v["our_model"].as_array().unwrap();
    assert_eq!(items.len(), cutover::sim::model::OUR_MODEL.len());
    assert!(items.iter().any(|i| i["area"] == "Not modelled"));
}

/// Where each member starts in a body's text (its first occurrence as a key).
fn member_at(text: &str, name: &str) -> usize {
    text.find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {text:.300}"))
}

#[tokio::test]
async fn a_page_is_laid_out_as_the_services_write_it_with_the_next_link_last() {
    let (h, c) = sim().await;
    let (dv, fno) = (token(&c, &h, DV).await, token(&c, &h, FNO).await);
    let url = h.url();
    let count_ann = (
        "prefer",
        "odata.maxpagesize=10,odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount\"",
    );
    for (what, link, tok, headers) in [
        (
            "dataverse",
            format!("{url}/api/data/v9.2/accounts?$select=accountid&$count=true"),
            &dv,
            vec![count_ann],
        ),
        (
            "fno",
            format!("{url}/data/CustomersV3?cross-company=true&$count=true"),
            &fno,
            vec![("prefer", "odata.maxpagesize=10")],
        ),
        (
            "fno plain listing",
            format!("{url}/data/CustomersV3?cross-company=true&$select=CustomerAccount"),
            &fno,
            vec![("prefer", "odata.maxpagesize=10")],
        ),
    ] {
        let (s, _, v, text) = get(&c, &link, tok, &headers).await;
        assert_eq!(s, 200, "{what}: {text:.300}");
        assert!(v["@odata.nextLink"].is_string(), "{what}: a partial page");
        let context = member_at(&text, "@odata.context");
        let value = member_at(&text, "value");
        let next = member_at(&text, "@odata.nextLink");
        assert!(context < value && value < next, "{what}: {text:.300}");
        assert!(text.trim_end().ends_with("\"}"), "{what}: the link ends the body");
        if v.get("@odata.count").is_some() {
            assert!(member_at(&text, "@odata.count") < value, "{what}");
        }
        // The console's reader finds the link from the end, before parsing the rows, and agrees with a parse.
        assert_eq!(
            cutover::connectors::parse::trailing_next_link(text.as_bytes()).as_deref(),
            v["@odata.nextLink"].as_str(),
            "{what}"
        );
    }
}

/// Many tables' definitions in one request (what a parity sweep sends): an `or` of `eq` on
/// `EntitySetName` answers every table named and only those, with their keys expanded; a set no
/// table has is simply absent. `in` on a metadata property is refused (metadata queries accept
/// `eq`, `ne`, `not`, `and` and `or`), with the Web API's error shape.
#[tokio::test]
async fn entity_definitions_answers_an_or_of_set_names_and_refuses_in() {
    let (h, c) = sim().await;
    let tok = token(&c, &h, DV).await;
    let api = format!("{}/api/data/v9.2", h.url());
    let (s, _, v, text) = get(
        &c,
        &format!("{api}/EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=EntitySetName eq 'contacts' or EntitySetName eq 'accounts' or EntitySetName eq 'nosuchs'&$expand=Keys($select=KeyAttributes)"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let mut got: Vec<(String, String, Value)> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["MetadataId"].is_string(), "{t}");
            assert!(t.get("SchemaName").is_none(), "only what is selected: {t}");
            (
                t["EntitySetName"].as_str().unwrap().to_owned(),
                t["PrimaryIdAttribute"].as_str().unwrap().to_owned(),
                t["Keys"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("accounts", "accountid"));
    assert_eq!(got[0].2[0]["KeyAttributes"], json!(["accountnumber"]));
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("contacts", "contactid"));
    // LogicalName works the same way, and a set name compares without regard to case.
    let (_, _, v, _) = get(
        &c,
        &format!("{api}/EntityDefinitions?$select=EntitySetName&$filter=LogicalName eq 'contact' or EntitySetName eq 'ACCOUNTS'"),
        &tok,
        &[],
    )
    .await;
    let mut sets: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["EntitySetName"].as_str().unwrap())
        .collect();
    sets.sort_unstable();
    assert_eq!(sets, ["accounts", "contacts"]);
    // Still a filter, not only a lookup: a further condition on the same tables applies.
    let (_, _, v, _) = get(
        &c,
        &format!("{api}/EntityDefinitions?$select=EntitySetName&$filter=(EntitySetName eq 'accounts' or EntitySetName eq 'contacts') and PrimaryIdAttribute eq 'contactid'"),
        &tok,
        &[],
    )
    .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["value"][0]["EntitySetName"], "contacts");
    let (s, _, v, _) = get(
        &c,
        &format!(
            "{api}/EntityDefinitions?$select=LogicalName&$filter=EntitySetName in ('accounts','contacts')"
        ),
        &tok,
        &[],
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "0x80060888", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("in"), "{v}");
}
