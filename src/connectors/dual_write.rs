//! Dual-write map control, in the two modes of the runbook format.
//!
//! **Gateway mode** speaks the dual-write management gateway's wire format as Microsoft's public automation tool
//! does (d365-api.md §5a; the API is unsupported by Microsoft and can change at any time; opt-in):
//! `GET Environments` (the connection set id `cid`, discovered once), `GET Entities` (maps, found by
//! (left entity, right entity), never by name), `POST Start` with a string action code and `details[]`,
//! answered by a **server-generated** `requestId`, `GET Status/{requestId}` (a list of maps whose
//! `detail.lastRequests[]` holds the request's outcome) and `GET api/ProjectExecutionWithCompanies/{pid}`
//! (initial-sync figures per legal entity).
//!
//! Because the server chooses the request id, a retried `POST Start` cannot be made idempotent by the caller:
//! `POST Start` is sent once ([`Idempotency::Unsafe`]), and a caller that lost the answer reads the map's
//! `lastRequests` to learn whether its action was accepted ([`ActionIntent::accepted_by`]).
//!
//! **Operator mode** has no API: [`operator_instructions`] renders exactly what the operator must do in the F&O
//! dual-write workspace, and [`verify_operator`] reads the environment (counts on both sides) to decide whether
//! it was done; the engine adds the map's errors from the error sources that exist.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::dataverse::DataverseClient;
use super::dmf::Poll;
use super::fno::FnoClient;
use super::parse::{self, ParseError};
use super::transport::{Idempotency, Request, Transport};
use super::{ConnectorError, Result};

/// The data master of an initial sync (`conflictResolution.master`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Master {
    Dataverse,
    Fno,
}

impl Master {
    /// The wire value: `AX` (F&O) or `CRM` (Dataverse).
    pub fn wire(self) -> &'static str {
        match self {
            Master::Fno => "AX",
            Master::Dataverse => "CRM",
        }
    }
}

/// A gateway action (the tool's `startStopMap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapAction {
    /// "1": start the map, with its initial sync unless `initial_sync` is false. Also how a failed initial sync
    /// is retried: the tool has no "continue from the failed row", it starts again.
    Start { initial_sync: bool, master: Master },
    /// "4".
    Stop,
    /// "5".
    Pause,
    /// "6": from Paused (the queue is played back in CatchUp, then Running).
    Resume,
    /// "8": initial sync of an existing map (no `pid`, no `parameters`).
    InitialSync,
}

impl MapAction {
    /// The action code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            MapAction::Start { .. } => "1",
            MapAction::Stop => "4",
            MapAction::Pause => "5",
            MapAction::Resume => "6",
            MapAction::InitialSync => "8",
        }
    }

    /// A short name for call labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            MapAction::Start {
                initial_sync: true, ..
            } => "start_with_initial_sync",
            MapAction::Start { .. } => "start",
            MapAction::Stop => "stop",
            MapAction::Pause => "pause",
            MapAction::Resume => "resume",
            MapAction::InitialSync => "initial_sync",
        }
    }

    /// One `details[]` element for `map` in connection set `cid`.
    pub fn detail(self, map: &MapInfo, cid: &str) -> Value {
        let mut d = json!({"tid": map.detail.tid, "cid": cid});
        if self != MapAction::InitialSync {
            d["pid"] = json!(map.detail.pid);
        }
        if let MapAction::Start { initial_sync, master } = self {
            d["parameters"] = json!({
                "skipInitialSync": !initial_sync,
                "conflictResolution": {"master": master.wire(), "option": "1"},
            });
        }
        d
    }

    /// The whole `POST Start` body for one map.
    pub fn body(self, map: &MapInfo, cid: &str) -> Value {
        json!({"action": self.code(), "details": [self.detail(map, cid)]})
    }
}

/// Map states (`detail.state`, a numeric string on the wire).
pub mod status {
    pub const NONE: i64 = 0;
    pub const STOPPED: i64 = 1;
    pub const INITIAL_SYNC: i64 = 2;
    /// Playing back a paused map's queue after Resume (`CatchUp` in the tool's enum).
    pub const CATCH_UP: i64 = 3;
    pub const RUNNING: i64 = 4;
    pub const PAUSED: i64 = 5;
    pub const NOT_RUNNING: i64 = 6;

    pub fn name(s: i64) -> &'static str {
        match s {
            STOPPED => "Stopped",
            INITIAL_SYNC => "InitialSync",
            CATCH_UP => "CatchUp",
            RUNNING => "Running",
            PAUSED => "Paused",
            NOT_RUNNING => "NotRunning",
            _ => "None",
        }
    }
}

/// One side of a map (`leftEntity`: F&O, `rightEntity`: Dataverse).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct MapEntity {
    pub name: String,
    pub display_name: String,
    pub target_type: String,
}

/// An element of `detail.lastRequests[]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct LastRequest {
    pub request_id: String,
    #[serde(deserialize_with = "string_or_number")]
    pub action: String,
    #[serde(deserialize_with = "string_or_number")]
    pub state: String,
    pub error_message: Option<String>,
    pub error_uri: Option<String>,
    pub created_on: Option<String>,
    pub modified_on: Option<String>,
}

impl LastRequest {
    pub fn request_state(&self) -> Option<RequestState> {
        match self.state.as_str() {
            "1" => Some(RequestState::Waiting),
            "2" => Some(RequestState::Completed),
            "3" => Some(RequestState::Error),
            _ => None,
        }
    }

    fn created(&self) -> Option<DateTime<Utc>> {
        self.created_on
            .as_deref()
            .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(parse::scalar_string(&v).unwrap_or_default())
}

/// A map's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct MapDetail {
    pub tid: String,
    pub t_name: String,
    pub pid: Option<String>,
    #[serde(deserialize_with = "string_or_number")]
    pub state: String,
    pub actions: Vec<Value>,
    pub template: Option<Value>,
    pub last_request: Option<LastRequest>,
    pub last_requests: Vec<LastRequest>,
}

/// One map as `GET Entities` and `GET Status/{id}` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapInfo {
    pub left_entity: MapEntity,
    pub right_entity: MapEntity,
    pub detail: MapDetail,
}

impl MapInfo {
    /// The map's state (`detail.state`; -1 when it is not a number).
    pub fn state(&self) -> i64 {
        self.detail.state.trim().parse().unwrap_or(-1)
    }

    /// The map's name (`detail.tName`), for messages only: maps are found by their entities.
    pub fn name(&self) -> &str {
        &self.detail.t_name
    }

    /// Whether this is the map between these entities (F&O entity set, Dataverse entity set).
    pub fn is_between(&self, left: &str, right: &str) -> bool {
        self.left_entity.name.eq_ignore_ascii_case(left) && self.right_entity.name.eq_ignore_ascii_case(right)
    }

    /// The `lastRequests[]` element of a request.
    pub fn request(&self, request_id: &str) -> Option<&LastRequest> {
        self.detail
            .last_requests
            .iter()
            .chain(self.detail.last_request.iter())
            .find(|r| r.request_id == request_id)
    }
}

/// The state of an asynchronous gateway request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Waiting,
    Completed,
    Error,
}

/// A request's outcome, from `GET Status/{requestId}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestStatus {
    pub request_id: String,
    pub state: RequestState,
    pub message: String,
    /// The maps the request touched, as the status call returned them.
    pub maps: Vec<MapInfo>,
}

/// What the engine journals before it sends an action, to recognise the request after a lost answer or a
/// crash: the map (by its entities), the action code, when it was intended, and the request ids the map's
/// `lastRequests` already held then. A request of that action that is not among them, and not created
/// before the intent (less [`CLOCK_SKEW`]), is the one the intent sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionIntent {
    pub left: String,
    pub right: String,
    pub action: String,
    pub at: DateTime<Utc>,
    pub known: Vec<String>,
}

/// How far the gateway's clock may be behind ours when comparing `createdOn` with an intent's time.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

impl ActionIntent {
    /// The intent to send `action` to `map` now.
    pub fn new(map: &MapInfo, action: MapAction, at: DateTime<Utc>) -> Self {
        let mut known: Vec<String> = map
            .detail
            .last_requests
            .iter()
            .map(|r| r.request_id.clone())
            .collect();
        if let Some(r) = &map.detail.last_request {
            if !known.contains(&r.request_id) {
                known.push(r.request_id.clone());
            }
        }
        Self {
            left: map.left_entity.name.clone(),
            right: map.right_entity.name.clone(),
            action: action.code().to_owned(),
            at,
            known,
        }
    }

    /// The journal form (a handle id).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }

    /// Whether the intent is about this map.
    pub fn is_for(&self, map: &MapInfo) -> bool {
        map.is_between(&self.left, &self.right)
    }

    /// The request this intent sent, if the gateway accepted one (the newest matching element).
    pub fn accepted_by<'a>(&self, map: &'a MapInfo) -> Option<&'a LastRequest> {
        if !self.is_for(map) {
            return None;
        }
        let floor = self.at - chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default();
        let mut found: Vec<&LastRequest> = map
            .detail
            .last_requests
            .iter()
            .chain(map.detail.last_request.iter())
            .filter(|r| r.action == self.action && !self.known.contains(&r.request_id))
            .filter(|r| r.created().is_none_or(|c| c >= floor))
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse(r.created()));
        found.first().copied()
    }
}

/// One leg of an initial-sync task (`legs[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncLeg {
    pub export_record_count: u64,
    pub export_record_error_count: u64,
    pub import_records_inserted_count: u64,
    pub import_records_updated_count: u64,
    pub import_records_error_count: u64,
    pub import_errors: Vec<SyncError>,
    pub export_errors: Vec<SyncError>,
    pub import_error_uri: Option<String>,
}

/// A row-level error of an initial sync.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncError {
    pub record_id: String,
    pub source_field: String,
    pub error_message: String,
}

/// A task of an initial-sync execution (`taskExecutionStatuses[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncTask {
    pub name: String,
    pub status: String,
    pub is_running: bool,
    pub legs: Vec<SyncLeg>,
}

/// The initial sync of one map in one legal entity (`GET api/ProjectExecutionWithCompanies/{pid}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanySync {
    pub legal_entity_id: String,
    pub execution_status: String,
    pub upsert_count: u64,
    pub error_count: u64,
    pub initial_sync_request_id: Option<String>,
    pub task_execution_statuses: Vec<SyncTask>,
}

impl CompanySync {
    /// Every import and export error of the company's legs.
    pub fn errors(&self) -> impl Iterator<Item = &SyncError> {
        self.task_execution_statuses
            .iter()
            .flat_map(|t| t.legs.iter())
            .flat_map(|l| l.import_errors.iter().chain(l.export_errors.iter()))
    }

    /// Rows read from the source so far (sum of the legs' `exportRecordCount`).
    pub fn exported(&self) -> u64 {
        self.task_execution_statuses
            .iter()
            .flat_map(|t| t.legs.iter())
            .map(|l| l.export_record_count)
            .sum()
    }
}

/// Parses `GET api/ProjectExecutionWithCompanies/{pid}`: the tool reads `{"projectName",
/// "projectExecutionResponses":[...]}`; a bare list of the same elements is accepted too.
pub fn parse_initial_sync_details(body: &[u8]) -> std::result::Result<Vec<CompanySync>, ParseError> {
    let v = parse::json(body)?;
    let list = match v {
        Value::Array(_) => v,
        Value::Object(mut o) => o
            .remove("projectExecutionResponses")
            .ok_or_else(|| ParseError("no projectExecutionResponses".into()))?,
        _ => return Err(ParseError("not an initial-sync details object".into())),
    };
    serde_json::from_value(list)
        .map_err(|e| ParseError(format!("not a list of legal-entity executions: {e}")))
}

/// Parses `GET Entities` (and `GET Status/{id}`, which answers the same shape).
pub fn parse_maps(body: &[u8]) -> std::result::Result<Vec<MapInfo>, ParseError> {
    let v = parse::json(body)?;
    serde_json::from_value(v).map_err(|e| ParseError(format!("not a list of maps: {e}")))
}

/// Parses `POST Start`'s `{"requestId"}`.
pub fn parse_request_id(body: &[u8]) -> std::result::Result<String, ParseError> {
    let v = parse::json(body)?;
    v.get("requestId")
        .and_then(parse::scalar_string)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError("no requestId".into()))
}

/// Parses `GET Environments`: the first element's `cid`.
pub fn parse_cid(body: &[u8]) -> std::result::Result<String, ParseError> {
    let v = parse::json(body)?;
    v.get(0)
        .and_then(|e| e.get("cid"))
        .and_then(parse::scalar_string)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ParseError("no environment with a cid".into()))
}

/// The outcome of `request_id` in a `GET Status/{requestId}` answer: Error if any map's element says Error,
/// Waiting while any says Waiting (or has none yet), else Completed.
pub fn request_status_of(
    request_id: &str,
    maps: Vec<MapInfo>,
) -> std::result::Result<RequestStatus, ParseError> {
    if maps.is_empty() {
        return Err(ParseError(format!("the status of {request_id} lists no map")));
    }
    let mut state = RequestState::Completed;
    let mut message = String::new();
    for m in &maps {
        let r = m.request(request_id);
        match r.and_then(LastRequest::request_state) {
            Some(RequestState::Error) => {
                state = RequestState::Error;
                if message.is_empty() {
                    message = r.and_then(|r| r.error_message.clone()).unwrap_or_default();
                }
            }
            Some(RequestState::Waiting) | None if state != RequestState::Error => {
                state = RequestState::Waiting
            }
            _ => {}
        }
    }
    Ok(RequestStatus {
        request_id: request_id.to_owned(),
        state,
        message,
        maps,
    })
}

/// The gateway client.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    t: Transport,
    prefix: String,
    /// The F&O environment `GET Environments` is asked about (`identifier`).
    identifier: String,
    cid: std::sync::Arc<OnceCell<String>>,
}

impl GatewayClient {
    /// `t`'s base URL is the gateway host, or already ends in `/api/DualWriteManagement/1.0`.
    pub fn new(t: Transport) -> Self {
        let prefix = if t.base_url().path().contains("/DualWriteManagement/") {
            String::new()
        } else {
            "/api/DualWriteManagement/1.0".into()
        };
        Self {
            t,
            prefix,
            identifier: String::new(),
            cid: std::sync::Arc::default(),
        }
    }

    /// The F&O environment named in `GET Environments?identifier=` (the tool passes the F&O environment).
    pub fn with_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = identifier.into();
        self
    }

    fn path(&self, p: &str) -> String {
        format!("{}/{p}", self.prefix)
    }

    /// The connection set id of the linked pair, discovered once (`GET Environments`).
    pub async fn cid(&self, cancel: &CancellationToken) -> Result<String> {
        self.cid
            .get_or_try_init(|| async {
                let mut req = Request::get("dualwrite.environments", self.path("Environments"))
                    .query("targetType", "AX");
                if !self.identifier.is_empty() {
                    req = req.query("identifier", self.identifier.clone());
                }
                let resp = self.t.send(req, cancel).await?;
                self.t.parse(&resp, parse_cid)
            })
            .await
            .cloned()
    }

    /// Every map.
    pub async fn maps(&self, cancel: &CancellationToken) -> Result<Vec<MapInfo>> {
        let cid = self.cid(cancel).await?;
        let req = Request::get("dualwrite.maps", self.path("Entities"))
            .query("targetType", "AX")
            .query("cid", cid);
        let resp = self.t.send(req, cancel).await?;
        self.t.parse(&resp, parse_maps)
    }

    /// The map between these entities (F&O entity set, Dataverse entity set).
    pub async fn find_map(&self, left: &str, right: &str, cancel: &CancellationToken) -> Result<MapInfo> {
        self.maps(cancel)
            .await?
            .into_iter()
            .find(|m| m.is_between(left, right))
            .ok_or_else(|| ConnectorError::NotFound {
                env: self.t.env().to_owned(),
                call: "dualwrite.find_map".into(),
                message: format!("no map from {left} to {right}"),
            })
    }

    /// Sends an action for one map; returns the server's request id. Sent once: the server chooses the id, so a
    /// repeat would be a second action. Journal an [`ActionIntent`] first.
    pub async fn send_action(
        &self,
        map: &MapInfo,
        action: MapAction,
        cancel: &CancellationToken,
    ) -> Result<String> {
        let cid = self.cid(cancel).await?;
        let req = Request::post(format!("dualwrite.{}", action.name()), self.path("Start"))
            .json(action.body(map, &cid))
            .idempotency(Idempotency::Unsafe);
        let resp = self.t.send(req, cancel).await?;
        self.t.parse(&resp, parse_request_id)
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
        self.t.parse(&resp, |b| {
            parse_maps(b).and_then(|maps| request_status_of(request_id, maps))
        })
    }

    /// `GET api/ProjectExecutionWithCompanies/{pid}` (host-relative): the map's initial sync per legal entity.
    pub async fn initial_sync_details(
        &self,
        pid: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<CompanySync>> {
        let origin = self.t.base_url().origin().ascii_serialization();
        let req = Request::get(
            "dualwrite.initial_sync_details",
            format!("{origin}/api/ProjectExecutionWithCompanies/{pid}"),
        );
        let resp = self.t.send(req, cancel).await?;
        self.t.parse(&resp, parse_initial_sync_details)
    }

    /// Polls a request until Completed (Ok) or Error (`JobFailed` with the gateway's `errorMessage`); `on_poll`
    /// sees each Waiting answer.
    pub async fn wait_request(
        &self,
        request_id: &str,
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<RequestStatus> {
        self.wait_request_with(request_id, poll, cancel, |_| async {})
            .await
    }

    /// [`Self::wait_request`] with a hook called on each Waiting answer (progress).
    pub async fn wait_request_with<F, Fut>(
        &self,
        request_id: &str,
        poll: Poll,
        cancel: &CancellationToken,
        mut on_poll: F,
    ) -> Result<RequestStatus>
    where
        F: FnMut(&RequestStatus) -> Fut + Send,
        Fut: std::future::Future<Output = ()> + Send,
    {
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
                RequestState::Waiting => on_poll(&s).await,
            }
            self.pause(request_id, poll, deadline, cancel).await?;
        }
    }

    /// Polls the map between these entities until its state is one of `want`.
    pub async fn wait_map_state(
        &self,
        left: &str,
        right: &str,
        want: &[i64],
        poll: Poll,
        cancel: &CancellationToken,
    ) -> Result<MapInfo> {
        let deadline = Instant::now() + poll.timeout;
        let what = format!("{left} to {right}");
        loop {
            match self.find_map(left, right, cancel).await {
                Ok(m) if want.contains(&m.state()) => return Ok(m),
                Ok(_) => {}
                Err(e) if e.poll_may_ride_out() && Instant::now() + poll.every <= deadline => {}
                Err(e) => return Err(e),
            }
            self.pause(&what, poll, deadline, cancel).await?;
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

    const MAP: &str = r#"{"leftEntity":{"name":"CustomersV3","displayName":"Customers V3","targetType":"AX"},
        "rightEntity":{"name":"accounts","displayName":"Account","targetType":"CRM"},
        "detail":{"tid":"t-1","tName":"Customers","pid":"p-1","state":"6","actions":[],"template":{"id":"t-1"},
        "lastRequest":null,"lastRequests":[
          {"requestId":"r-old","action":"1","state":"3","errorMessage":"boom","createdOn":"2026-01-01T10:00:00Z"},
          {"requestId":"r-new","action":"1","state":"1","createdOn":"2026-01-01T12:00:05Z"}]}}"#;

    #[test]
    fn maps_parse_in_the_tools_shape() {
        let m = &parse_maps(format!("[{MAP}]").as_bytes()).unwrap()[0];
        assert_eq!((m.state(), m.name()), (status::NOT_RUNNING, "Customers"));
        assert!(m.is_between("customersv3", "ACCOUNTS") && !m.is_between("accounts", "CustomersV3"));
        assert_eq!(
            m.request("r-old").unwrap().request_state(),
            Some(RequestState::Error)
        );
        assert!(parse_maps(b"<html>").is_err());
    }

    #[test]
    fn start_bodies_carry_string_codes_and_the_tools_parameters() {
        let m = &parse_maps(format!("[{MAP}]").as_bytes()).unwrap()[0];
        let b = MapAction::Start {
            initial_sync: true,
            master: Master::Fno,
        }
        .body(m, "c-1");
        assert_eq!(b["action"], "1");
        assert_eq!(b["details"][0]["parameters"]["skipInitialSync"], false);
        assert_eq!(
            b["details"][0]["parameters"]["conflictResolution"]["master"],
            "AX"
        );
        assert_eq!(b["details"][0]["pid"], "p-1");
        let b = MapAction::InitialSync.body(m, "c-1");
        assert_eq!(b["action"], "8");
        assert!(b["details"][0].get("pid").is_none() && b["details"][0].get("parameters").is_none());
        let codes: Vec<&str> = [MapAction::Stop, MapAction::Pause, MapAction::Resume]
            .iter()
            .map(|a| a.code())
            .collect();
        assert_eq!(codes, ["4", "5", "6"]);
        assert_eq!(MapAction::Stop.body(m, "c")["details"][0].get("parameters"), None);
    }

    #[test]
    fn an_intent_recognises_only_a_request_sent_after_it() {
        let m = &parse_maps(format!("[{MAP}]").as_bytes()).unwrap()[0];
        let at = "2026-01-01T12:00:00Z".parse().unwrap();
        let mut before = m.clone();
        before.detail.last_requests.truncate(1);
        let i = ActionIntent::new(
            &before,
            MapAction::Start {
                initial_sync: true,
                master: Master::Fno,
            },
            at,
        );
        assert_eq!(i.known, ["r-old"]);
        let back = ActionIntent::decode(&i.encode()).unwrap();
        assert_eq!(back, i);
        assert_eq!(i.accepted_by(m).unwrap().request_id, "r-new");
        assert!(i.accepted_by(&before).is_none(), "nothing new: not accepted");
        let stop = ActionIntent {
            action: "4".into(),
            ..i.clone()
        };
        assert!(
            stop.accepted_by(m).is_none(),
            "another action's request is not ours"
        );
        let elsewhere = ActionIntent {
            right: "contacts".into(),
            ..i
        };
        assert!(elsewhere.accepted_by(m).is_none());
    }

    #[test]
    fn status_is_read_from_the_matching_last_request() {
        let maps = parse_maps(format!("[{MAP}]").as_bytes()).unwrap();
        let s = request_status_of("r-old", maps.clone()).unwrap();
        assert_eq!((s.state, s.message.as_str()), (RequestState::Error, "boom"));
        assert_eq!(
            request_status_of("r-new", maps.clone()).unwrap().state,
            RequestState::Waiting
        );
        assert!(request_status_of("r-x", Vec::new()).is_err());
        assert_eq!(parse_request_id(br#"{"requestId":"r-1"}"#).unwrap(), "r-1");
        assert!(parse_request_id(br#"{"requestId":""}"#).is_err());
        assert_eq!(parse_cid(br#"[{"cid":"c-1","cname":"x"}]"#).unwrap(), "c-1");
    }

    #[test]
    fn initial_sync_details_parse_per_legal_entity() {
        let body = br#"{"projectName":"p","projectExecutionResponses":[{"legalEntityId":"USMF","executionStatus":"Failed",
            "upsertCount":209,"errorCount":1,"initialSyncRequestId":"r-1","taskExecutionStatuses":[{"name":"t","status":"Failed",
            "isRunning":false,"legs":[{"exportRecordCount":210,"importRecordsInsertedCount":209,"importRecordsErrorCount":1,
            "importErrors":[{"recordId":"V-210","sourceField":"VendorGroupId","errorMessage":"no group"}],"exportErrors":[]}]}]}]}"#;
        let d = parse_initial_sync_details(body).unwrap();
        assert_eq!(
            (d[0].legal_entity_id.as_str(), d[0].upsert_count, d[0].exported()),
            ("USMF", 209, 210)
        );
        assert_eq!(d[0].errors().next().unwrap().record_id, "V-210");
        let bare = parse_initial_sync_details(br#"[{"legalEntityId":"DEMF"}]"#).unwrap();
        assert_eq!(bare[0].legal_entity_id, "DEMF");
        assert!(parse_initial_sync_details(b"7").is_err());
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
