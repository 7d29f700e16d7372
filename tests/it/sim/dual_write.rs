//! Scenario tests for dual-write through the gateway in the tool's wire format (d365-api.md §5a): string action
//! codes, server request ids, `Status` lists, initial sync failing at row N and a restart finishing it (upserts),
//! per-company figures, dependencies, pause queues and CatchUp, invalid bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::gateway::{GW, Gw, start_bodies, start_codes};

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const V: (&str, &str) = ("VendorsV2", "msdyn_vendors");
const C: (&str, &str) = ("Companies", "cdm_companies");

fn yaml(extra: &str) -> String {
    format!(
        r#"
seed: 5
time_scale: 1000
companies: [USMF, DEMF]
entities:
  fno:
    Companies: {{ key: DataArea, rows: 2 }}
    VendorsV2: {{ key: VendorAccountNumber, rows: {{ USMF: 200, DEMF: 150 }}, fields: {{ VendorOrganizationName: name }} }}
  dataverse:
    cdm_companies: {{ key: cdm_companycode }}
    msdyn_vendors: {{ key: msdyn_vendoraccountnumber }}
maps:
  - {{ name: companies, source: Companies, target: cdm_companies, key: {{ source: DataArea, target: cdm_companycode }} {extra_companies} }}
  - name: vendors
    source: VendorsV2
    target: msdyn_vendors
    depends_on: [companies]
    key: {{ source: VendorAccountNumber, target: msdyn_vendoraccountnumber }}
    fields: {{ VendorOrganizationName: msdyn_vendorname }}
    rate: 100
    fail_at_row: 210
    category: missing_lookup
    message: vendor group missing
{extra}
"#,
        extra_companies = ", initial: { status: running, preloaded: true }",
    )
}

/// The errors `GetExecutionErrors` gives for an execution id (the value is a string holding a list).
async fn dmf_errors(g: &Gw, execution_id: &str) -> Vec<Value> {
    let r =
        g.c.post(format!(
            "{}/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionErrors",
            g.h.url()
        ))
        .bearer_auth(&g.tok)
        .json(&json!({"executionId": execution_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    serde_json::from_str::<Value>(v["value"].as_str().unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn initial_sync_fails_at_row_n_and_a_restart_upserts_to_the_end() {
    let g = Gw::new(&yaml("")).await;
    let env = g
        .get(&format!("{GW}/Environments?targetType=AX&identifier=x"))
        .await;
    assert!(env[0]["cid"].is_string() && env[0]["cname"].is_string(), "{env}");
    let m = g.map(V.0, V.1).await;
    assert_eq!(
        (
            m["leftEntity"]["targetType"].clone(),
            m["rightEntity"]["targetType"].clone()
        ),
        (json!("AX"), json!("CRM"))
    );
    assert_eq!(
        (m["detail"]["tName"].clone(), m["detail"]["state"].clone()),
        (json!("vendors"), json!("6"))
    );
    let pid = m["detail"]["pid"].as_str().unwrap().to_string();
    let first = g.act_ok(V.0, V.1, "1", false).await;
    let r = g.settle(&first).await;
    assert_eq!(
        (r["state"].clone(), r["action"].clone()),
        (json!("3"), json!("1"))
    );
    assert_eq!(r["errorMessage"], "vendor group missing");
    assert!(r["createdOn"].is_string() && r["modifiedOn"].is_string(), "{r}");
    let m = g.map(V.0, V.1).await;
    assert_eq!(m["detail"]["state"], "6");
    assert_eq!(m["detail"]["lastRequest"]["requestId"], first.as_str());
    assert_eq!(g.inspect("vendors")["initialSync"]["failedAtRow"], 210);
    assert_eq!(
        g.table("dataverse", "msdyn_vendors"),
        209,
        "rows before the failure stay copied"
    );
    // Per legal entity: USMF's 200 rows copied; DEMF failed at its 10th row.
    let p = g.project(&pid).await;
    let per = p["projectExecutionResponses"].as_array().unwrap();
    let co = |le: &str| per.iter().find(|c| c["legalEntityId"] == le).unwrap().clone();
    let (us, de) = (co("USMF"), co("DEMF"));
    assert_eq!(
        (us["upsertCount"].clone(), us["errorCount"].clone()),
        (json!(200), json!(0))
    );
    assert_eq!(
        (de["upsertCount"].clone(), de["errorCount"].clone()),
        (json!(9), json!(1))
    );
    assert_eq!(
        (de["executionStatus"].clone(), de["initialSyncRequestId"].clone()),
        (json!("Failed"), json!(first))
    );
    let leg = &de["taskExecutionStatuses"][0]["legs"][0];
    assert_eq!(
        (
            leg["exportRecordCount"].clone(),
            leg["importRecordsInsertedCount"].clone(),
            leg["importRecordsErrorCount"].clone()
        ),
        (json!(10), json!(9), json!(1))
    );
    let e = &leg["importErrors"][0];
    assert!(
        e["recordId"].as_str().unwrap().starts_with("DE-"),
        "row 210 is a DEMF vendor: {e}"
    );
    assert_eq!(
        (e["sourceField"].clone(), e["errorMessage"].clone()),
        (json!("VendorAccountNumber"), json!("vendor group missing"))
    );
    // The failed row is also an error of the map's initial-sync (DWM) DMF execution.
    let errors = dmf_errors(&g, "DWM-vendors").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0]["errorMessage"].clone(), errors[0]["stage"].clone()),
        (json!("vendor group missing"), json!("Target"))
    );
    // No "continue from the failed row": a new start "1" runs a pass from row 1 that upserts.
    let second = g.act_ok(V.0, V.1, "1", false).await;
    assert_ne!(second, first, "the server chooses request ids");
    assert_eq!(g.settle(&second).await["state"], "2");
    g.wait_state(V.0, V.1, "4").await;
    assert_eq!(g.table("dataverse", "msdyn_vendors"), 350);
    assert!(
        dmf_errors(&g, "DWM-vendors").await.is_empty(),
        "the new pass re-ran the failed row"
    );
    let p = g.project(&pid).await;
    let us = p["projectExecutionResponses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["legalEntityId"] == "USMF")
        .unwrap()
        .clone();
    let leg = &us["taskExecutionStatuses"][0]["legs"][0];
    assert_eq!(
        (
            leg["importRecordsUpdatedCount"].clone(),
            leg["importRecordsInsertedCount"].clone()
        ),
        (json!(200), json!(0))
    );
    assert_eq!(
        (us["executionStatus"].clone(), us["initialSyncRequestId"].clone()),
        (json!("Succeeded"), json!(second))
    );
    let st = g.h.state();
    assert_eq!(st["side_effects"]["dualwrite.initial_sync:vendors"], 2);
    assert_eq!(start_codes(&g.c, &g.h.url()).await, ["1", "1"]);
    let body = &start_bodies(&g.c, &g.h.url()).await[0];
    assert_eq!(body["details"][0]["parameters"]["skipInitialSync"], false);
    assert_eq!(body["details"][0]["pid"], pid.as_str());
}

#[tokio::test]
async fn status_answers_the_list_of_maps_with_the_request_in_last_requests() {
    let g = Gw::new(&yaml("")).await;
    let id = g.act_ok(C.0, C.1, "5", false).await;
    let list = g.get(&format!("{GW}/Status/{id}")).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["leftEntity"]["name"], "Companies");
    let d = &list[0]["detail"];
    for k in [
        "tid",
        "tName",
        "pid",
        "state",
        "actions",
        "template",
        "lastRequest",
        "lastRequests",
    ] {
        assert!(!d[k].is_null(), "detail.{k} missing: {d}");
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = g.request(&id).await;
        let s = r["state"].as_str().unwrap().to_string();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "2" {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen.last().map(String::as_str), Some("2"));
    assert!(seen.iter().all(|s| s == "1" || s == "2"), "{seen:?}");
    assert_eq!(g.map(C.0, C.1).await["detail"]["state"], "5");
    assert_eq!(g.h.state()["side_effects"]["dualwrite.pause:companies"], 1);
    let r =
        g.c.get(format!("{}/{GW}/Status/no-such-request", g.h.url()))
            .bearer_auth(&g.tok)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_map_started_before_its_dependencies_fails_its_lookups() {
    let text = yaml("").replace(", initial: { status: running, preloaded: true }", "");
    let g = Gw::new(&text).await;
    let id = g.act_ok(V.0, V.1, "1", false).await;
    let r = g.settle(&id).await;
    assert_eq!(r["state"], "3");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("could not be resolved"),
        "{r}"
    );
    assert_eq!(g.inspect("vendors")["initialSync"]["failedAtRow"], 1);
    assert_eq!(g.inspect("vendors")["initialSync"]["category"], "missing_lookup");
    // Start without initial sync reports the missing dependency through the request.
    let id = g.act_ok(V.0, V.1, "1", true).await;
    let r = g.request(&id).await;
    assert_eq!(r["state"], "3");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("depends on 'companies'"),
        "{r}"
    );
}

#[tokio::test]
async fn invalid_transitions_are_409_and_unknown_codes_400() {
    let g = Gw::new(&yaml("")).await;
    let r = g.act(V.0, V.1, "5", false).await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "InvalidTransition"
    );
    for code in ["2", "3", "7", "9", ""] {
        let r = g.act(C.0, C.1, code, false).await;
        assert_eq!(r.status(), 400, "action {code:?}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "BadRequest");
        assert!(e["error"]["message"].is_string());
    }
    // The C# enum position as a number is not a wire value.
    let m = g.map(C.0, C.1).await;
    let detail = json!({"tid": m["detail"]["tid"], "pid": m["detail"]["pid"], "cid": g.cid().await});
    let r = g.post(&json!({"action": 3, "details": [detail]})).await;
    assert_eq!(r.status(), 400);
    let r = g.post(&json!({"action": "5", "details": [{"tid": m["detail"]["tid"], "pid": m["detail"]["pid"], "cid": "other"}]})).await;
    assert_eq!(r.status(), 400, "a foreign connection set");
    assert!(
        start_codes(&g.c, &g.h.url()).await.is_empty(),
        "nothing was accepted"
    );
    assert_eq!(g.map(C.0, C.1).await["detail"]["state"], "4");
}

#[tokio::test]
async fn stop_and_initial_sync_of_an_existing_map_use_codes_4_and_8() {
    let g = Gw::new(&yaml("")).await;
    let id = g.act_ok(C.0, C.1, "4", false).await;
    g.settle(&id).await;
    g.wait_state(C.0, C.1, "1").await;
    let id = g.act_ok(C.0, C.1, "8", false).await;
    assert_eq!(g.settle(&id).await["state"], "2");
    g.wait_state(C.0, C.1, "4").await;
    assert_eq!(start_codes(&g.c, &g.h.url()).await, ["4", "8"]);
    let bodies = start_bodies(&g.c, &g.h.url()).await;
    assert!(
        bodies[1]["details"][0].get("pid").is_none(),
        "8 is sent without pid: {}",
        bodies[1]
    );
    let st = g.h.state();
    assert_eq!(st["side_effects"]["dualwrite.stop:companies"], 1);
    assert_eq!(st["side_effects"]["dualwrite.initial_sync:companies"], 1);
    assert_eq!(
        g.table("dataverse", "cdm_companies"),
        2,
        "the preloaded rows were upserted, not duplicated"
    );
}

#[tokio::test]
async fn a_paused_map_queues_live_writes_and_resume_plays_them_back() {
    let extra = r#"
time_scale: 60
live_writes:
  - { side: fno, entity: VendorsV2, company: USMF, creates_per_hour: 3600, duration: 40s, after_running: [vendors] }
dual_write: { lag: 1s, replay_rate: 1 }
"#;
    let text = yaml(extra).replace("time_scale: 1000\n", "").replace(
        "    fail_at_row: 210\n",
        "    initial: { status: running, preloaded: true }\n",
    );
    let g = Gw::new(&text).await;
    g.act_ok(V.0, V.1, "5", false).await;
    // The 40 writes of the window arrive on F&O while the map is paused.
    let deadline = Instant::now() + Duration::from_secs(15);
    while g.table("fno", "VendorsV2") < 390 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = g.inspect("vendors");
    assert!(m["queued"].as_u64().unwrap() >= 39, "{m}");
    assert!(g.table("dataverse", "msdyn_vendors") <= 351);
    g.act_ok(V.0, V.1, "6", false).await;
    // Catching up shows as CatchUp ("3"), then Running ("4").
    let m = g.map(V.0, V.1).await;
    assert_eq!(m["detail"]["state"], "3", "{m}");
    g.wait_state(V.0, V.1, "4").await;
    assert_eq!(g.table("dataverse", "msdyn_vendors"), g.table("fno", "VendorsV2"));
    assert_eq!(start_codes(&g.c, &g.h.url()).await, ["5", "6"]);
}

#[tokio::test]
async fn the_gateway_wants_a_bearer_token_for_its_audience() {
    let text = yaml(
        "auth: { resources: { fno: \"https://fno.example.test\", dualwrite: \"https://IntegratorApp.com\" } }\n",
    );
    let h = crate::support::sim::start_sim_yaml(&text).await;
    let c = cutover::connectors::net::client().unwrap();
    let url = h.url();
    let gw_tok = crate::support::sim::token(&c, &url, "a", "s", "https://IntegratorApp.com/.default").await;
    let fno_tok = crate::support::sim::token(&c, &url, "a", "s", "https://fno.example.test/.default").await;
    let get = |tok: Option<String>, path: &'static str| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let mut r = c.get(format!("{url}/{path}"));
            if let Some(t) = tok {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap()
        }
    };
    let entities = "api/DualWriteManagement/1.0/Entities?targetType=AX";
    assert_eq!(get(Some(gw_tok.clone()), entities).await.status(), 200);
    let wrong = get(Some(fno_tok), entities).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("audience")
    );
    assert_eq!(get(None, entities).await.status(), 401);
    let project = "api/ProjectExecutionWithCompanies/no-such-pid";
    assert_eq!(
        get(None, project).await.status(),
        401,
        "host-relative, still the gateway's"
    );
    assert_eq!(get(Some(gw_tok), project).await.status(), 404);
}

fn guardrails(extra: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/scenarios/guardrails.yaml"
    ))
    .unwrap();
    format!("{text}\n{extra}")
}

const LINES: (&str, &str) = ("SalesOrderLines", "salesorderdetails");
const MODES: (&str, &str) = ("DeliveryModes", "msdyn_deliverymodes");
const HEADERS: (&str, &str) = ("SalesOrderHeadersV2", "salesorders");

/// Starts a map with initial sync and waits for its request's outcome.
async fn sync(g: &Gw, (l, r): (&str, &str)) -> Value {
    let id = g.act_ok(l, r, "1", false).await;
    g.settle(&id).await
}

#[tokio::test]
async fn a_lookup_to_a_table_no_map_has_loaded_fails_the_initial_sync_until_it_is_loaded() {
    let g = Gw::new(&guardrails("")).await;
    assert_eq!(sync(&g, C).await["state"], "2");
    // Headers need the throwing plug-in off: turn it off in the estate.
    let steps = g
        .get("api/data/v9.2/sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid,name")
        .await;
    for s in steps["value"].as_array().unwrap() {
        let r =
            g.c.patch(format!(
                "{}/api/data/v9.2/sdkmessageprocessingsteps({})",
                g.h.url(),
                s["sdkmessageprocessingstepid"].as_str().unwrap()
            ))
            .bearer_auth(&g.tok)
            .json(&json!({"statecode": 1, "statuscode": 2}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    assert_eq!(sync(&g, HEADERS).await["state"], "2");

    // msdyn_deliverymodes holds nothing: the lines' lookup to it cannot be resolved.
    let r = sync(&g, LINES).await;
    assert_eq!(r["state"], "3", "{r}");
    let msg = r["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains("Lookup for 'msdyn_deliverymodeid' could not be resolved")
            && msg.contains("msdyn_deliverymodes"),
        "{msg}"
    );
    let lines = g.inspect("sales_order_lines");
    assert_eq!(lines["initialSync"]["category"], "missing_lookup", "{lines}");
    assert_eq!(lines["initialSync"]["failedAtRow"], 1, "{lines}");
    assert_eq!(g.table("dataverse", "salesorderdetails"), 0);

    // Loaded, the lookup resolves and a new pass copies every line.
    assert_eq!(sync(&g, MODES).await["state"], "2");
    assert_eq!(sync(&g, LINES).await["state"], "2");
    assert_eq!(g.table("dataverse", "salesorderdetails"), 500);
}

#[tokio::test]
async fn a_throwing_plug_in_fails_live_sync_too_until_it_is_disabled() {
    // Three orders created in F&O once the headers map is live (live sync only: no initial sync).
    let live = "live_writes:\n  - { side: fno, entity: SalesOrderHeadersV2, burst: 3, creates_per_hour: 0, after_running: [sales_order_headers] }\n";
    let g = Gw::new(&guardrails(live)).await;
    assert_eq!(sync(&g, C).await["state"], "2");
    let id = g.act_ok(HEADERS.0, HEADERS.1, "1", true).await;
    assert_eq!(g.settle(&id).await["state"], "2");
    let failed = |g: &Gw| g.table("dataverse", "asyncoperations");
    let deadline = Instant::now() + Duration::from_secs(15);
    while failed(&g) < 3 {
        assert!(Instant::now() < deadline, "{}", g.h.state()["tables"]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        g.table("dataverse", "salesorders"),
        0,
        "no pushed order was written"
    );
    let jobs = g
        .get("api/data/v9.2/asyncoperations?$select=message,statuscode")
        .await;
    for j in jobs["value"].as_array().unwrap() {
        assert_eq!(j["statuscode"], 31);
        assert!(
            j["message"]
                .as_str()
                .unwrap()
                .contains("Plug-in step 'Contoso.Plugins.SalesOrderCheck: Create of salesorder' threw"),
            "{j}"
        );
    }
    assert_eq!(g.table("dataverse", "plugintracelogs"), 3);

    // Disabled, the next order created in F&O reaches Dataverse.
    let steps = g
        .get("api/data/v9.2/sdkmessageprocessingsteps?$select=sdkmessageprocessingstepid&$filter=name eq 'Contoso.Plugins.SalesOrderCheck: Create of salesorder'")
        .await;
    let sid = steps["value"][0]["sdkmessageprocessingstepid"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        g.c.patch(format!(
            "{}/api/data/v9.2/sdkmessageprocessingsteps({sid})",
            g.h.url()
        ))
        .bearer_auth(&g.tok)
        .json(&json!({"statecode": 1, "statuscode": 2}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = g
        .c
        .post(format!("{}/data/SalesOrderHeadersV2", g.h.url()))
        .bearer_auth(&g.tok)
        .json(
            &json!({"SalesOrderNumber": "SO-LIVE-1", "dataAreaId": "usmf", "SalesOrderStatus": "Backorder"}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    while g.table("dataverse", "salesorders") < 1 {
        assert!(Instant::now() < deadline, "{}", g.h.state()["tables"]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failed(&g), 3, "no new failure once the plug-in is off");
}
