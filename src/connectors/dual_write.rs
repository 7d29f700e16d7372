//! Dual-write map control, in the two modes of the runbook format.
//!
//! **Gateway mode** drives the dual-write management gateway *as modelled by our simulator* after the API that
//! Microsoft's public automation tool uses (unsupported by Microsoft, opt-in): `GET Entities`, `POST Start` with an
//! action code and a caller-generated `requestId`, `GET Status/{requestId}`. Maps are found by
//! (sourceEntity, targetEntity), never by name. Because the gateway dedups on `requestId`, an action is an
//! [`Idempotency::Handle`] call, and a resumed engine re-asks `Status/{requestId}` instead of acting twice.
//!
//! **Operator mode** has no API: [`operator_instructions`] renders exactly what the operator must do in the F&O
//! dual-write workspace, and [`verify_operator`] reads the environment (counts on both sides) to decide whether
//! it was done; the engine adds the map's errors from the error sources that exist.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::dataverse::DataverseClient;
use super::dmf::Poll;
use super::fno::FnoClient;
use super::parse::{self, ParseError};
use super::transport::{Idempotency, Request, Transport};
use super::{ConnectorError, Result};

/// Map actions (wire values of the gateway model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapAction {
    /// Live sync without initial sync.
    Start = 1,
    Stop = 2,
    Pause = 3,
    /// From Paused: play back the queue; from a failed initial sync: continue from the row it stopped at.
    Resume = 4,
    /// Start with initial sync (a restart on a partly copied target produces duplicate_key errors).
    InitialSync = 8,
}

/// The data master of an initial sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Master {
    Dataverse = 0,
    Fno = 1,
}

/// Map status codes: None 0, Stopped 1, InitialSync 2, Running 4, Paused 5, NotRunning 6, Resuming 7 (ours).
pub mod status {
    pub const STOPPED: i64 = 1;
    pub const INITIAL_SYNC: i64 = 2;
    pub const RUNNING: i64 = 4;
    pub const PAUSED: i64 = 5;
    pub const NOT_RUNNING: i64 = 6;
    pub const RESUMING: i64 = 7;
}

/// Initial-sync progress of a map.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct InitialSync {
    pub state: String,
    pub rows_copied: u64,
    pub rows_total: u64,
    pub error_count: u64,
    pub failed_at_row: Option<u64>,
    pub category: Option<String>,
    pub message: Option<String>,
}

/// One map as the gateway describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapInfo {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub source_entity: String,
    pub target_entity: String,
    pub status: i64,
    #[serde(default)]
    pub status_name: String,
    #[serde(default)]
    pub initial_sync: InitialSync,
}

/// The state of an asynchronous gateway request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Waiting,
    Completed,
    Error,
}

/// `GET Status/{requestId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus {
    pub request_id: String,
    pub state: RequestState,
    pub message: String,
}

/// Parses `GET Entities`.
pub fn parse_maps(body: &[u8]) -> std::result::Result<Vec<MapInfo>, ParseError> {
    let v = parse::json(body)?;
    serde_json::from_value(v).map_err(|e| ParseError(format!("not a list of maps: {e}")))
}

/// Parses `GET Entities/{id}`.
pub fn parse_map(body: &[u8]) -> std::result::Result<MapInfo, ParseError> {
    let v = parse::json(body)?;
    serde_json::from_value(v).map_err(|e| ParseError(format!("not a map: {e}")))
}

/// Parses `POST Start`'s `{"requestId"}`.
pub fn parse_request_id(body: &[u8]) -> std::result::Result<String, ParseError> {
    let v = parse::json(body)?;
    v.get("requestId")
        .and_then(parse::scalar_string)
        .ok_or_else(|| ParseError("no requestId".into()))
}

/// Parses `GET Status/{requestId}`.
pub fn parse_request_status(body: &[u8]) -> std::result::Result<RequestStatus, ParseError> {
    let v = parse::json(body)?;
    let state = match v.get("status").and_then(serde_json::Value::as_i64) {
        Some(1) => RequestState::Waiting,
        Some(2) => RequestState::Completed,
        Some(3) => RequestState::Error,
        _ => return Err(ParseError("status is not 1, 2 or 3".into())),
    };
    Ok(RequestStatus {
        request_id: v
            .get("requestId")
            .and_then(parse::scalar_string)
            .unwrap_or_default(),
        state,
        message: v
            .get("message")
            .and_then(parse::scalar_string)
            .unwrap_or_default(),
    })
}

/// What to send to bring a map's initial sync to completion, given what the gateway reports: `InitialSync` when it
/// never started, `Resume` when it failed part way (continue, never restart), `None` when it is running or done.
pub fn initial_sync_next_action(map: &MapInfo) -> Option<MapAction> {
    match map.initial_sync.state.as_str() {
        "Failed" => Some(MapAction::Resume),
        "Running" | "Completed" => None,
        _ if map.status == status::RUNNING || map.status == status::INITIAL_SYNC => None,
        _ => Some(MapAction::InitialSync),
    }
}

/// The gateway client.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    t: Transport,
    prefix: String,
}

impl GatewayClient {
    /// `t`'s base URL is the gateway host, or already ends in `/api/DualWriteManagement/1.0`.
    pub fn new(t: Transport) -> Self {
        let prefix = if t.base_url().path().contains("/DualWriteManagement/") {
            String::new()
        } else {
            "/api/DualWriteManagement/1.0".into()
        };
        Self { t, prefix }
    }

    fn path(&self, p: &str) -> String {
        format!("{}/{p}", self.prefix)
    }

    /// Every map.
    pub async fn maps(&self, cancel: &CancellationToken) -> Result<Vec<MapInfo>> {
        let resp = self
            .t
            .send(Request::get("dualwrite.maps", self.path("Entities")), cancel)
            .await?;
        self.t.parse(&resp, parse_maps)
    }

    /// The map between these entities (F&O entity set, Dataverse entity set).
    pub async fn find_map(
        &self,
        source_entity: &str,
        target_entity: &str,
        cancel: &CancellationToken,
    ) -> Result<MapInfo> {
        self.maps(cancel)
            .await?
            .into_iter()
            .find(|m| {
                m.source_entity.eq_ignore_ascii_case(source_entity)
                    && m.target_entity.eq_ignore_ascii_case(target_entity)
            })
            .ok_or_else(|| ConnectorError::NotFound {
                env: self.t.env().to_owned(),
                call: "dualwrite.find_map".into(),
                message: format!("no map from {source_entity} to {target_entity}"),
            })
    }

    /// One map by gateway id.
    pub async fn map(&self, id: &str, cancel: &CancellationToken) -> Result<MapInfo> {
        let resp = self
            .t
            .send(
                Request::get("dualwrite.map", self.path(&format!("Entities/{id}"))),
                cancel,
            )
            .await?;
        self.t.parse(&resp, parse_map)
    }

    /// Sends an action with the caller's `request_id` (journal it first). Re-sending the same id returns the same
    /// request without acting twice, so this call is retried on transient failures.
    pub async fn send_action(
        &self,
        map_id: &str,
        action: MapAction,
        master: Master,
        request_id: &str,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let body = json!({"entityId": map_id, "action": action as i64, "master": master as i64, "requestId": request_id});
        let req = Request::post(format!("dualwrite.{action:?}"), self.path("Start"))
            .json(body)
            .idempotency(Idempotency::Handle(request_id.to_owned()));
        let resp = self.t.send(req, cancel).await?;
        let id = self.t.parse(&resp, parse_request_id)?;
        Ok(if id.is_empty() { request_id.to_owned() } else { id })
    }

    /// `GET Status/{requestId}`.
    pub async fn request_status(
        &self,
        request_id: &str,
        cancel: &CancellationToken,
    ) -> Result<RequestStatus> {
        let resp = self
            .t
            .send(
                Request::get("dualwrite.status", self.path(&format!("Status/{request_id}"))),
                cancel,
            )
            .await?;
        self.t.parse(&resp, parse_request_status)
    }

    /// The resume question: what became of a journaled request id? `None` when the gateway never received it
    /// (404), so sending it is safe; otherwise its status (re-sending the same id would not act twice either).
    pub async fn find_request(
        &self,
        request_id: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<RequestStatus>> {
        match self.request_status(request_id, cancel).await {
            Ok(s) => Ok(Some(s)),
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Polls a request until Completed (Ok) or Error (`JobFailed` with the gateway's message).
    pub async fn wait_request(
        &self,
        request_id: &str,
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<RequestStatus> {
        let deadline = Instant::now() + poll.timeout;
        loop {
            let s = match self.request_status(request_id, cancel).await {
                Ok(s) => s,
                Err(e) if e.poll_may_ride_out() && Instant::now() + poll.every <= deadline => {
                    self.pause(request_id, poll, deadline, cancel).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match s.state {
                RequestState::Completed => return Ok(s),
                RequestState::Error => {
                    return Err(ConnectorError::job_failed(
                        self.t.env(),
                        "dualwrite.request",
                        request_id,
                        "Error",
                        vec![s.message],
                    ));
                }
                RequestState::Waiting => {}
            }
            self.pause(request_id, poll, deadline, cancel).await?;
        }
    }

    /// Polls a map until its status is `want`. A failed initial sync ends the wait as `JobFailed` naming the row,
    /// category and message (the engine then decides to resume it).
    pub async fn wait_map_status(
        &self,
        map_id: &str,
        want: i64,
        poll: Poll,
        cancel: &CancellationToken,
        mut on_progress: impl FnMut(&MapInfo) + Send,
    ) -> Result<MapInfo> {
        let deadline = Instant::now() + poll.timeout;
        loop {
            let m = match self.map(map_id, cancel).await {
                Ok(m) => m,
                Err(e) if e.poll_may_ride_out() && Instant::now() + poll.every <= deadline => {
                    self.pause(map_id, poll, deadline, cancel).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            on_progress(&m);
            if m.status == want {
                return Ok(m);
            }
            if m.initial_sync.state == "Failed" {
                let s = &m.initial_sync;
                let detail = format!(
                    "initial sync failed at row {} of {} ({}): {}",
                    s.failed_at_row.map_or_else(|| "?".into(), |r| r.to_string()),
                    s.rows_total,
                    s.category.clone().unwrap_or_default(),
                    s.message.clone().unwrap_or_default()
                );
                return Err(ConnectorError::job_failed(
                    self.t.env(),
                    "dualwrite.initial_sync",
                    &m.name,
                    "InitialSyncFailed",
                    vec![detail],
                ));
            }
            self.pause(map_id, poll, deadline, cancel).await?;
        }
    }

    async fn pause(
        &self,
        what: &str,
        poll: Poll,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<()> {
        if Instant::now() + poll.every > deadline {
            return Err(ConnectorError::Timeout {
                env: self.t.env().to_owned(),
                call: format!("dualwrite.wait {what}"),
                after_ms: u64::try_from(poll.timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
        tokio::select! {
            () = cancel.cancelled() => Err(ConnectorError::Cancelled { env: self.t.env().to_owned(), call: format!("dualwrite.wait {what}") }),
            () = tokio::time::sleep(poll.every) => Ok(()),
        }
    }
}

/// A map as the operator-mode functions need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    pub source_set: String,
    pub target_set: String,
    pub target_primary_id: String,
    /// The map's own filters (counted with them, see the runbook's `filter`).
    pub source_filter: Option<String>,
    pub target_filter: Option<String>,
    pub tolerance: u64,
}

/// What the operator is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    Run { initial_sync: bool, master: Master },
    Pause,
    Resume,
    Stop,
}

/// The exact instructions for the operator, as text (one numbered step per line).
pub fn operator_instructions(map: &MapSpec, action: OperatorAction, fno_url: &str) -> String {
    let mut s = format!(
        "1. In F&O ({fno_url}), open Workspaces > Data management and select the Dual Write tile.\n\
         2. Find the table map from {} to {} (map \"{}\") and select it.\n",
        map.source_set, map.target_set, map.name
    );
    match action {
        OperatorAction::Run { initial_sync, master } => {
            s.push_str("3. Select Run.\n");
            if initial_sync {
                let m = match master {
                    Master::Fno => "Finance and Operations apps",
                    Master::Dataverse => "Common Data Service (Dataverse)",
                };
                s.push_str(&format!("4. Tick Initial sync and choose {m} as the master for initial sync.\n"));
            } else {
                s.push_str("4. Leave Initial sync unticked (the data is already loaded).\n");
            }
            s.push_str("5. Leave related maps unselected unless the runbook lists them; select OK.\n");
            s.push_str("6. Wait until the map's status shows Running (Initial sync details: no errors), then confirm here.\n");
        }
        OperatorAction::Pause => s.push_str("3. Select Pause. Wait until the status shows Paused, then confirm here.\n"),
        OperatorAction::Resume => s.push_str("3. Select Run (resume). Wait until the status shows Running (catch-up done), then confirm here.\n"),
        OperatorAction::Stop => s.push_str("3. Select Stop. Wait until the status shows Not running, then confirm here.\n"),
    }
    s
}

/// What the environment says after the operator confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub source_rows: u64,
    pub target_rows: u64,
    pub satisfied: bool,
    /// Why it is not satisfied (empty when it is).
    pub reasons: Vec<String>,
}

/// Reads both sides (documented counts only) to decide whether the operator's action took effect: a run with
/// initial sync needs the counts within `tolerance`. The map's errors are read by the caller from the error
/// sources that exist (there is no error-queue API).
pub async fn verify_operator(
    fno: &FnoClient,
    dataverse: &DataverseClient,
    map: &MapSpec,
    action: OperatorAction,
    cancel: &CancellationToken,
) -> Result<Verification> {
    let source_rows = fno
        .count_where(&map.source_set, map.source_filter.clone(), cancel)
        .await?;
    let target_rows = dataverse
        .count(
            &map.target_set,
            &map.target_primary_id,
            map.target_filter.as_deref(),
            cancel,
        )
        .await?
        .rows;
    let mut reasons = Vec::new();
    if matches!(
        action,
        OperatorAction::Run {
            initial_sync: true,
            ..
        }
    ) && source_rows.abs_diff(target_rows) > map.tolerance
    {
        reasons.push(format!(
            "{} has {source_rows} rows, {} has {target_rows} (tolerance {})",
            map.source_set, map.target_set, map.tolerance
        ));
    }
    Ok(Verification {
        source_rows,
        target_rows,
        satisfied: reasons.is_empty(),
        reasons,
    })
}

/// The default poll for gateway waits when the runbook gives none.
pub const DEFAULT_POLL: Poll = Poll {
    every: Duration::from_secs(10),
    timeout: Duration::from_secs(1800),
};

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"{"id":"m1","name":"Customers","sourceEntity":"CustomersV3","targetEntity":"accounts","status":2,
        "statusName":"Initializing","initialSync":{"state":"Failed","rowsCopied":400,"rowsTotal":1000,"errorCount":1,
        "failedAtRow":401,"category":"missing_lookup","message":"no currency"}}"#;

    #[test]
    fn a_failed_initial_sync_is_resumed_not_restarted() {
        let m = parse_map(MAP.as_bytes()).unwrap();
        assert_eq!(m.initial_sync.failed_at_row, Some(401));
        assert_eq!(initial_sync_next_action(&m), Some(MapAction::Resume));
        let fresh = MapInfo {
            status: status::NOT_RUNNING,
            initial_sync: InitialSync {
                state: "NotStarted".into(),
                ..Default::default()
            },
            ..m.clone()
        };
        assert_eq!(initial_sync_next_action(&fresh), Some(MapAction::InitialSync));
        let done = MapInfo {
            status: status::RUNNING,
            initial_sync: InitialSync {
                state: "Completed".into(),
                ..Default::default()
            },
            ..m
        };
        assert_eq!(initial_sync_next_action(&done), None);
    }

    #[test]
    fn gateway_bodies_parse() {
        assert_eq!(parse_maps(format!("[{MAP}]").as_bytes()).unwrap().len(), 1);
        assert_eq!(parse_request_id(br#"{"requestId":"r-1"}"#).unwrap(), "r-1");
        let s =
            parse_request_status(br#"{"requestId":"r-1","status":3,"statusName":"Error","message":"boom"}"#)
                .unwrap();
        assert_eq!((s.state, s.message.as_str()), (RequestState::Error, "boom"));
        assert!(parse_request_status(br#"{"status":9}"#).is_err());
        assert!(parse_maps(b"<html>").is_err());
    }

    #[test]
    fn instructions_name_the_map_the_button_and_the_master() {
        let spec = MapSpec {
            name: "Customers".into(),
            source_set: "CustomersV3".into(),
            target_set: "accounts".into(),
            target_primary_id: "accountid".into(),
            source_filter: None,
            target_filter: None,
            tolerance: 0,
        };
        let t = operator_instructions(
            &spec,
            OperatorAction::Run {
                initial_sync: true,
                master: Master::Fno,
            },
            "https://x",
        );
        assert!(
            t.contains("Dual Write tile")
                && t.contains("CustomersV3 to accounts")
                && t.contains("Tick Initial sync")
        );
        assert!(t.contains("Finance and Operations apps as the master"));
        assert!(operator_instructions(&spec, OperatorAction::Pause, "https://x").contains("Select Pause"));
    }
}
