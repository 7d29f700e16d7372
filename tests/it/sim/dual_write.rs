//! Scenario tests for dual-write (our gateway model, d365-api.md §5a): initial sync failing at row N,
//! Resume finishing it, a restart producing duplicate-key errors, dependencies, pause queues.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::sim as sim_support;

use std::time::{Duration, Instant};

use cutover::sim::SimHandle;
use serde_json::{Value, json};

const GW: &str = "api/DualWriteManagement/1.0";

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

struct Gw {
    h: SimHandle,
    c: reqwest::Client,
    tok: String,
}

impl Gw {
    async fn new(text: &str) -> Gw {
        let (h, c, tok) = sim_support::sim_with_token(text, "https://gw.example/.default").await;
        Gw { h, c, tok }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .c
            .get(format!("{}/{path}", self.h.url()))
            .bearer_auth(&self.tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// The errors `GetExecutionErrors` gives for an execution id (the value is a string holding a list).
    async fn dmf_errors(&self, execution_id: &str) -> Vec<Value> {
        let r = self
            .c
            .post(format!(
                "{}/data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.GetExecutionErrors",
                self.h.url()
            ))
            .bearer_auth(&self.tok)
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

    /// Finds a map by (sourceEntity, targetEntity), as the connector does.
    async fn map(&self, source: &str, target: &str) -> Value {
        let list = self.get(&format!("{GW}/Entities")).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["sourceEntity"] == source && m["targetEntity"] == target)
            .unwrap()
            .clone()
    }

    async fn act(&self, id: &str, action: u64, request: Option<&str>) -> reqwest::Response {
        let mut body = json!({"entityId": id, "action": action, "master": 1});
        if let Some(r) = request {
            body["requestId"] = json!(r);
        }
        self.c
            .post(format!("{}/{GW}/Start", self.h.url()))
            .bearer_auth(&self.tok)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn wait_map(&self, source: &str, target: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = self.map(source, target).await;
            if done(&m) {
                return m;
            }
            assert!(Instant::now() < deadline, "map never reached the state: {m}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn table(&self, side: &str, set: &str) -> u64 {
        self.h.state()["tables"][side][set].as_u64().unwrap()
    }
}

fn failed(m: &Value) -> bool {
    m["initialSync"]["state"] == "Failed"
}

#[tokio::test]
async fn initial_sync_fails_at_row_n_and_resume_finishes_it() {
    let g = Gw::new(&yaml("")).await;
    let env = g
        .get(&format!("{GW}/Environments?targetType=AX&identifier=x"))
        .await;
    assert_eq!(env[0]["linked"], true);
    let id = g.map("VendorsV2", "msdyn_vendors").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = g.act(&id, 8, Some("req-1")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["requestId"], "req-1");
    let m = g.wait_map("VendorsV2", "msdyn_vendors", failed).await;
    let s = &m["initialSync"];
    assert_eq!(
        (s["failedAtRow"].clone(), s["rowsCopied"].clone()),
        (json!(210), json!(209))
    );
    assert_eq!(s["category"], "missing_lookup");
    assert_eq!(m["status"], 6);
    assert_eq!(
        g.table("dataverse", "msdyn_vendors"),
        209,
        "rows before the failure stay copied"
    );
    // The failed row is an error of the map's initial-sync (DWM) DMF execution.
    let errors = g.dmf_errors("DWM-vendors").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e["errorMessage"], "vendor group missing");
    assert_eq!(e["entityName"], "msdyn_vendors");
    assert_eq!(e["stage"], "Target");
    assert!(
        e["recordKey"].as_str().unwrap().starts_with("DE-"),
        "row 210 is a DEMF vendor"
    );
    // Resume continues from row 210 and finishes with target == source.
    assert_eq!(g.act(&id, 4, None).await.status(), 202);
    let m = g
        .wait_map("VendorsV2", "msdyn_vendors", |m| m["status"] == 4)
        .await;
    assert_eq!(m["initialSync"]["state"], "Completed");
    assert_eq!(g.table("dataverse", "msdyn_vendors"), 350);
    assert_eq!(g.table("fno", "VendorsV2"), 350);
    assert!(
        g.dmf_errors("DWM-vendors").await.is_empty(),
        "the resumed sync re-ran its failed row"
    );
    let st = g.h.state();
    assert_eq!(st["side_effects"]["dualwrite.initial_sync:vendors"], 1);
    assert_eq!(st["side_effects"]["dualwrite.resume:vendors"], 1);
    // A repeated request id does not act twice.
    assert_eq!(g.act(&id, 8, Some("req-1")).await.status(), 202);
    assert_eq!(g.h.state()["side_effects"]["dualwrite.initial_sync:vendors"], 1);
    let status = g.get(&format!("{GW}/Status/req-1")).await;
    assert!([1, 2].contains(&status["status"].as_u64().unwrap()));
}

#[tokio::test]
async fn a_restart_instead_of_resume_produces_duplicate_key_errors() {
    let g = Gw::new(&yaml("")).await;
    let id = g.map("VendorsV2", "msdyn_vendors").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    g.act(&id, 8, None).await;
    g.wait_map("VendorsV2", "msdyn_vendors", failed).await;
    assert_eq!(g.act(&id, 8, None).await.status(), 202);
    let m = g
        .wait_map("VendorsV2", "msdyn_vendors", |m| {
            failed(m) && m["initialSync"]["category"] == "duplicate_key"
        })
        .await;
    assert_eq!(m["initialSync"]["errorCount"], 209);
    assert!(
        m["initialSync"]["message"]
            .as_str()
            .unwrap()
            .starts_with("209 rows failed")
    );
    assert_eq!(m["status"], 6);
    let dups = g.dmf_errors("DWM-vendors").await;
    let n = dups
        .iter()
        .filter(|e| e["errorMessage"].as_str().unwrap().contains("already exists"))
        .count();
    assert_eq!(n, 209);
    assert_eq!(g.h.state()["side_effects"]["dualwrite.initial_sync:vendors"], 2);
}

#[tokio::test]
async fn a_map_started_before_its_dependencies_fails_its_lookups() {
    let text = yaml("").replace(", initial: { status: running, preloaded: true }", "");
    let g = Gw::new(&text).await;
    let id = g.map("VendorsV2", "msdyn_vendors").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    g.act(&id, 8, None).await;
    let m = g.wait_map("VendorsV2", "msdyn_vendors", failed).await;
    assert_eq!(m["initialSync"]["failedAtRow"], 1);
    assert_eq!(m["initialSync"]["category"], "missing_lookup");
    // Start without initial sync reports the missing dependency through the request status.
    let r: Value = g.act(&id, 1, Some("r-dep")).await.json().await.unwrap();
    assert_eq!(r["requestId"], "r-dep");
    let s = g.get(&format!("{GW}/Status/r-dep")).await;
    assert_eq!(
        (s["status"].clone(), s["statusName"].clone()),
        (json!(3), json!("Error"))
    );
}

#[tokio::test]
async fn invalid_transitions_are_409_and_requests_complete() {
    let g = Gw::new(&yaml("")).await;
    let id = g.map("VendorsV2", "msdyn_vendors").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = g.act(&id, 3, None).await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "InvalidTransition"
    );
    let cid = g.map("Companies", "cdm_companies").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rid: Value = g.act(&cid, 3, None).await.json().await.unwrap();
    let rid = rid["requestId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = g.get(&format!("{GW}/Status/{rid}")).await;
        if s["status"] == 2 {
            assert_eq!(s["statusName"], "Completed");
            break;
        }
        assert_eq!(s["status"], 1);
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(g.map("Companies", "cdm_companies").await["status"], 5);
    assert_eq!(g.h.state()["side_effects"]["dualwrite.pause:companies"], 1);
}

#[tokio::test]
async fn a_paused_map_queues_live_writes_and_resume_plays_them_back() {
    let extra = r#"
time_scale: 60
live_writes:
  - { side: fno, entity: VendorsV2, company: USMF, creates_per_hour: 3600, duration: 40s, after_running: [vendors] }
dual_write: { lag: 1s, replay_rate: 20 }
"#;
    let text = yaml(extra).replace("time_scale: 1000\n", "").replace(
        "    fail_at_row: 210\n",
        "    initial: { status: running, preloaded: true }\n",
    );
    let g = Gw::new(&text).await;
    let id = g.map("VendorsV2", "msdyn_vendors").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(g.act(&id, 3, None).await.status(), 202);
    // The 40 writes of the window arrive on F&O while the map is paused.
    let deadline = Instant::now() + Duration::from_secs(15);
    while g.table("fno", "VendorsV2") < 390 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = g.map("VendorsV2", "msdyn_vendors").await;
    assert!(m["queued"].as_u64().unwrap() >= 39, "{m}");
    assert!(g.table("dataverse", "msdyn_vendors") <= 351);
    assert_eq!(g.act(&id, 4, None).await.status(), 202);
    g.wait_map("VendorsV2", "msdyn_vendors", |m| m["status"] == 4)
        .await;
    assert_eq!(g.table("dataverse", "msdyn_vendors"), g.table("fno", "VendorsV2"));
}
