//! The dual-write gateway's wire format (d365-api.md §5a) spoken by hand, for simulator tests: maps found by
//! (left entity, right entity), `POST Start` bodies with string codes, and the simulator's record of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cutover::sim::SimHandle;
use serde_json::{Value, json};

pub const GW: &str = "api/DualWriteManagement/1.0";

pub struct Gw {
    pub h: SimHandle,
    pub c: reqwest::Client,
    pub tok: String,
}

impl Gw {
    pub async fn new(text: &str) -> Gw {
        let (h, c, tok) = super::sim::sim_with_token(text, "https://gw.example/.default").await;
        Gw { h, c, tok }
    }

    pub async fn get(&self, path: &str) -> Value {
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

    pub async fn cid(&self) -> String {
        let env = self
            .get(&format!("{GW}/Environments?targetType=AX&identifier=x"))
            .await;
        env[0]["cid"].as_str().unwrap().to_string()
    }

    /// The map between these entities in the shape of `GET Entities`.
    pub async fn map(&self, left: &str, right: &str) -> Value {
        let list = self.get(&format!("{GW}/Entities?targetType=AX")).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["leftEntity"]["name"] == left && m["rightEntity"]["name"] == right)
            .unwrap_or_else(|| panic!("no map {left} -> {right} in {list}"))
            .clone()
    }

    /// The (left, right) entities of the map named `name` (`detail.tName`).
    pub async fn entities_of(&self, name: &str) -> (String, String) {
        let list = self.get(&format!("{GW}/Entities?targetType=AX")).await;
        let m = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["detail"]["tName"] == name)
            .unwrap_or_else(|| panic!("no map {name}"))
            .clone();
        (
            m["leftEntity"]["name"].as_str().unwrap().to_string(),
            m["rightEntity"]["name"].as_str().unwrap().to_string(),
        )
    }

    /// The simulator's own view of a map (`/_sim/state`: queue, initial-sync cursor).
    pub fn inspect(&self, name: &str) -> Value {
        self.h.state()["maps"][name].clone()
    }

    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.c
            .post(format!("{}/{GW}/Start", self.h.url()))
            .bearer_auth(&self.tok)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST Start` for one map as the tool sends it: `pid` unless the code is "8"; `parameters` for "1".
    pub async fn act(&self, left: &str, right: &str, code: &str, skip_sync: bool) -> reqwest::Response {
        let m = self.map(left, right).await;
        let mut d = json!({"tid": m["detail"]["tid"], "cid": self.cid().await});
        if code != "8" {
            d["pid"] = m["detail"]["pid"].clone();
        }
        if code == "1" {
            d["parameters"] =
                json!({"skipInitialSync": skip_sync, "conflictResolution": {"master": "AX", "option": "1"}});
        }
        self.post(&json!({"action": code, "details": [d]})).await
    }

    /// [`Self::act`], asserting 200 and returning the server's request id.
    pub async fn act_ok(&self, left: &str, right: &str, code: &str, skip_sync: bool) -> String {
        let r = self.act(left, right, code, skip_sync).await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["requestId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `GET Status/{id}`: the request's element of `lastRequests` in the first map listed.
    pub async fn request(&self, id: &str) -> Value {
        let list = self.get(&format!("{GW}/Status/{id}")).await;
        list[0]["detail"]["lastRequests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["requestId"] == id)
            .unwrap()
            .clone()
    }

    /// Waits until the request is no longer Waiting ("1"); returns its element.
    pub async fn settle(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.request(id).await;
            if r["state"] != "1" {
                return r;
            }
            assert!(Instant::now() < deadline, "request {id} never settled: {r}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn wait_state(&self, left: &str, right: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = self.map(left, right).await;
            if m["detail"]["state"] == state {
                return m;
            }
            assert!(Instant::now() < deadline, "map never reached state {state}: {m}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn table(&self, side: &str, set: &str) -> u64 {
        self.h.state()["tables"][side][set].as_u64().unwrap()
    }

    pub async fn project(&self, pid: &str) -> Value {
        self.get(&format!("api/ProjectExecutionWithCompanies/{pid}"))
            .await
    }
}

/// The `POST Start` bodies the simulator accepted (`GET /_sim/gateway`), oldest first.
pub async fn start_bodies(c: &reqwest::Client, url: &str) -> Vec<Value> {
    let v: Value = c
        .get(format!("{url}/_sim/gateway"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"].clone())
        .collect()
}

/// The action codes of [`start_bodies`].
pub async fn start_codes(c: &reqwest::Client, url: &str) -> Vec<String> {
    start_bodies(c, url)
        .await
        .iter()
        .map(|b| b["action"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// How many `POST .../Start` requests reached the simulator (`/_sim/requests`, answered or not).
pub async fn start_posts(_c: &reqwest::Client, url: &str) -> usize {
    super::sim::request_log(url)
        .await
        .iter()
        .filter(|(m, p)| m == "POST" && p.ends_with("/DualWriteManagement/1.0/Start"))
        .count()
}
