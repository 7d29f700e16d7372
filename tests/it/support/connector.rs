//! Shared setup of the connector integration tests: the simulator in-process on 127.0.0.1 port 0, and the
//! connectors pointed at it exactly as the engine will point them (a transport per environment, tokens from the
//! simulator's Entra ID endpoint, every request summary collected).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover::connectors::auth::{ClientCredentials, Secret, TokenCache};
use cutover::connectors::dataverse::DataverseClient;
use cutover::connectors::dmf::DmfClient;
use cutover::connectors::dual_write::GatewayClient;
use cutover::connectors::fno::FnoClient;
use cutover::connectors::transport::{self, RequestObserver, RequestSummary, RetryPolicy, Transport};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const FNO: &str = "https://fno.example.test";
pub const DATAVERSE: &str = "https://dv.example.test";
pub const DUALWRITE: &str = "https://dw.example.test";
pub const SECRET: &str = "s3cret-value-for-tests";

/// A fast policy for tests: short backoff so storms are ridden out in well under a second.
pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        retries: 8,
        timeout: Duration::from_secs(10),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(3),
        retry_after_fallback: None,
    }
}

pub struct Harness {
    pub sim: cutover::sim::SimHandle,
    pub url: String,
    pub client: reqwest::Client,
    pub tokens: TokenCache,
    pub summaries: Arc<Mutex<Vec<RequestSummary>>>,
    pub seen_tokens: Arc<Mutex<Vec<String>>>,
    pub cancel: CancellationToken,
}

/// Starts the simulator with `yaml` (whose `auth.resources` should name FNO, DATAVERSE and DUALWRITE).
pub async fn start(yaml: &str) -> Harness {
    let scenario = cutover::sim::Scenario::from_yaml(yaml).expect("scenario");
    let sim = cutover::sim::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sim starts");
    let url = sim.url();
    let client = transport::client().unwrap();
    let summaries: Arc<Mutex<Vec<RequestSummary>>> = Arc::default();
    let seen_tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = summaries.clone();
    let observer: RequestObserver = Arc::new(move |s| s2.lock().unwrap().push(s));
    let t2 = seen_tokens.clone();
    let redactor: cutover::connectors::auth::Redactor =
        Arc::new(move |t: &str| t2.lock().unwrap().push(t.to_owned()));
    let tokens = TokenCache::new(client.clone(), fast_policy(), Some(observer), Some(redactor));
    Harness {
        sim,
        url,
        client,
        tokens,
        summaries,
        seen_tokens,
        cancel: CancellationToken::new(),
    }
}

impl Harness {
    pub fn creds(&self, resource: &str) -> ClientCredentials {
        ClientCredentials::for_resource(
            &self.url,
            "contoso-tenant",
            "cutover-app",
            Secret::new(SECRET),
            resource,
        )
    }

    /// A transport named `env` sending to the simulator with a token for `resource`.
    pub fn transport(&self, env: &str, resource: &str, policy: RetryPolicy) -> Transport {
        let s2 = self.summaries.clone();
        Transport::new(env, self.client.clone(), &self.url, policy)
            .unwrap()
            .with_token(self.tokens.source(self.creds(resource)).unwrap())
            .with_observer(Arc::new(move |s| s2.lock().unwrap().push(s)))
    }

    pub fn fno(&self) -> FnoClient {
        FnoClient::new(self.transport("fno", FNO, fast_policy()))
    }
    pub fn dmf(&self) -> DmfClient {
        DmfClient::new(self.transport("fno", FNO, fast_policy()))
    }
    pub fn dataverse(&self) -> DataverseClient {
        DataverseClient::new(self.transport("dataverse", DATAVERSE, fast_policy()))
    }
    pub fn gateway(&self) -> GatewayClient {
        GatewayClient::new(self.transport("dualwrite", DUALWRITE, fast_policy()))
    }

    /// `GET /_sim/state`.
    pub async fn state(&self) -> Value {
        self.client
            .get(format!("{}/_sim/state", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A side-effect counter from `/_sim/state` (0 when absent).
    pub async fn side_effect(&self, key: &str) -> u64 {
        self.state().await["side_effects"][key].as_u64().unwrap_or(0)
    }

    /// Replaces the fault rules (`POST /_sim/faults`).
    pub async fn faults(&self, rules: Value) {
        let r = self
            .client
            .post(format!("{}/_sim/faults", self.url))
            .json(&rules)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "faults refused: {}",
            r.text().await.unwrap()
        );
    }

    pub fn summaries(&self) -> Vec<RequestSummary> {
        self.summaries.lock().unwrap().clone()
    }
}
