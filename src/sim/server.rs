//! The HTTP server: routes, the request pipeline (latency → faults → auth → service protection →
//! handler → response mangling) and the `/_sim/` inspection API.

use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde_json::{Value, json};

use super::faults::{Decision, FaultState, Faults, Mangle, SIGN_IN_HTML, Service, mix};
use super::route::{self, Ext};
use super::world::SimState;
use super::{auth, batch, dataverse, dmf, dual_write, entra_meta, fno, inspect, keyvault, lake, wire};

/// Simulated time: real elapsed seconds × scale.
#[derive(Debug, Clone)]
pub struct Clock {
    pub started: Instant,
    pub scale: f64,
}

impl Clock {
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * self.scale
    }
}

/// What every handler shares. The state mutex is never held across an await.
pub struct Shared {
    state: RwLock<SimState>,
    faults: Mutex<FaultState>,
    pub clock: Clock,
    pub base: String,
    pub seed: u64,
    pub latency: (u64, u64),
    /// (F&O URL, Dataverse URL) reported by the gateway's `Environments`.
    pub scenario_resources: (String, String),
    /// The scenario's resource URIs: which host is which service (`route.rs`).
    pub resources: super::scenario::Resources,
    /// The router itself, for the requests inside a `$batch`.
    pub router: std::sync::OnceLock<Router>,
    /// The Key Vault stand-in's keys and knobs (`keyvault.rs`).
    pub keyvault: Mutex<super::keyvault::Vault>,
}

pub type App = Arc<Shared>;

impl Shared {
    pub fn new(state: SimState, base: String) -> Shared {
        let sc = &state.scenario;
        let clock = Clock {
            started: Instant::now(),
            scale: sc.time_scale,
        };
        let res = &sc.auth.resources;
        let scenario_resources = (
            res.fno.clone().unwrap_or_else(|| base.clone()),
            res.dataverse.clone().unwrap_or_else(|| base.clone()),
        );
        Shared {
            faults: Mutex::new(FaultState::new(sc.faults.clone())),
            seed: sc.seed,
            latency: (sc.latency.ms, sc.latency.jitter_ms),
            clock,
            base,
            scenario_resources,
            resources: res.clone(),
            router: std::sync::OnceLock::new(),
            keyvault: Mutex::new(super::keyvault::Vault::default()),
            state: RwLock::new(state),
        }
    }

    pub fn lock(&self) -> RwLockWriteGuard<'_, SimState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Advances the world to now and runs `f` on it.
    pub fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut st = self.lock();
        st.advance(self.clock.now());
        f(&mut st)
    }

    /// Advances the world to now, then runs `f` on it beside other readers, as the real services answer reads
    /// at the same time: a listing page (the most the simulator computes for one request) no longer holds up
    /// every other request. What `f` caches goes through the tables' own locks (skip hints, id indexes).
    pub fn read<R>(&self, f: impl FnOnce(&SimState) -> R) -> R {
        self.lock().advance(self.clock.now());
        let st = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&st)
    }

    /// The fault rules and how many faults they injected (`GET /_sim/faults`).
    pub fn faults_json(&self) -> Value {
        let f = self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        json!({"faults": f.faults, "injected": f.injected})
    }

    pub fn set_faults(&self, faults: Faults) {
        *self
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = FaultState::new(faults);
    }
}

/// `{"error":{"code","message"}}` with a status: the OData error body both services use.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

pub fn router(app: App) -> Router {
    let router = Router::new()
        // Entra ID
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(auth::device::devicecode))
        .route("/metadata/identity/oauth2/token", get(auth::msi::imds))
        .route("/msi/token", get(auth::msi::app_service))
        .route("/_sim/devicecode", get(auth::device::list))
        .route("/_sim/devicecode/approve", post(auth::device::approve))
        .route("/_sim/devicecode/decline", post(auth::device::decline))
        .route("/_sim/users/token", post(auth::device::user_token))
        .route("/_sim/auth", get(auth::device::counts))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra_meta::openid_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra_meta::openid_v1),
        )
        .route(
            "/{tenant}/discovery/instance",
            get(entra_meta::instance_discovery),
        )
        // F&O OData, its metadata and DMF
        .route("/data", get(fno::meta::service_document))
        .route("/data/", get(fno::meta::service_document))
        .route("/data/$metadata", get(fno::meta::csdl))
        .route("/data/$batch", post(batch::fno))
        .route(
            "/data/{*rest}",
            get(fno::get)
                .post(fno::post)
                .delete(fno::delete)
                .patch(fno::patch),
        )
        .route("/Metadata/{*rest}", get(fno::meta::metadata_service))
        // Dataverse Web API
        .route("/api/data/v9.2", get(dataverse::meta::service_document))
        .route("/api/data/v9.2/", get(dataverse::meta::service_document))
        .route("/api/data/v9.2/$metadata", get(dataverse::meta::csdl))
        .route("/api/data/v9.2/$batch", post(batch::dataverse))
        .route(
            "/api/data/v9.2/{*rest}",
            get(dataverse::get)
                .post(dataverse::post)
                .delete(dataverse::delete)
                .patch(dataverse::patch),
        )
        // The Organization service (SOAP): asked for its 401 challenge by .NET clients, not modelled.
        .route("/XRMServices/{*rest}", any(dataverse::soap))
        // The dual-write gateway
        .route(
            "/api/DualWriteManagement/1.0/Environments",
            get(dual_write::environments),
        )
        .route("/api/DualWriteManagement/1.0/Entities", get(dual_write::entities))
        .route("/api/DualWriteManagement/1.0/Start", post(dual_write::start))
        .route(
            "/api/DualWriteManagement/1.0/Status/{id}",
            get(dual_write::status),
        )
        .route(
            "/api/ProjectExecutionWithCompanies/{pid}",
            get(dual_write::project_execution),
        )
        .route("/_sim/gateway", get(dual_write::sim_requests))
        .route("/_blob/dmf/{name}", put(dmf::blob_put).get(dmf::blob_get))
        // The lake: the export's storage account and the Databricks workspace
        .route("/_storage/{account}/{container}", get(lake::blob::container))
        .route(
            "/_storage/{account}/{container}/{*blob}",
            get(lake::blob::get_blob),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}",
            get(lake::databricks::get_pipeline),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}/updates",
            post(lake::databricks::start_update),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}/updates/{update_id}",
            get(lake::databricks::get_update),
        )
        .route("/api/2.0/sql/statements", post(lake::databricks::submit))
        .route("/api/2.0/sql/statements/", post(lake::databricks::submit))
        .route(
            "/api/2.0/sql/statements/{statement_id}",
            get(lake::databricks::get),
        )
        .route(
            "/api/2.0/sql/statements/{statement_id}/cancel",
            post(lake::databricks::cancel),
        )
        .route(
            "/api/2.0/sql/statements/{statement_id}/result/chunks/{chunk_index}",
            get(lake::databricks::get_chunk),
        )
        .route("/_sim/lake", get(lake_state).post(lake_control))
        // Azure Key Vault: a vault's keys and their sign operation (a `keyvault` environment in `--sim` mode).
        .route("/_keyvault/keys/{name}", get(keyvault::get_key))
        .route("/_keyvault/keys/{name}/{version}", get(keyvault::get_key_version))
        .route("/_keyvault/keys/{name}/{version}/sign", post(keyvault::sign))
        .route("/_sim/keyvault", get(keyvault::inspect).post(keyvault::control))
        .merge(inspect::routes())
        .fallback(fallback)
        .method_not_allowed_fallback(method_fallback)
        .layer(middleware::from_fn_with_state(app.clone(), pipeline))
        .with_state(app.clone());
    let _ = app.router.set(router.clone());
    router
}

/// `GET /_sim/lake`: the export's folders, the pipelines and their updates.
async fn lake_state(State(app): State<App>) -> Response {
    let v = app.with(|st| {
        let now = st.now;
        lake::advance(st, now, true);
        st.lake.as_ref().map(|l| lake::inspect(l, now))
    });
    match v {
        Some(v) => Json(v).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "NotFound", "the scenario has no lake"),
    }
}

/// `POST /_sim/lake`: `{"stopped": bool, "lag": seconds, "fail_updates": n, "add_column": {"side", "entity",
/// "field", "kind"}}`, each optional: Synapse Link stopped or resumed, its lag, the next updates failing, a
/// column added now.
async fn lake_control(State(app): State<App>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let change = match v.get("add_column") {
        None => None,
        Some(c) => match serde_json::from_value::<lake::config::SchemaChange>(c.clone()) {
            Ok(c) => Some(c),
            Err(e) => return json_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
        },
    };
    let ok = app.with(|st| {
        let now = st.now;
        lake::advance(st, now, true);
        let Some(l) = st.lake.as_mut() else {
            return false;
        };
        match v.get("stopped").and_then(Value::as_bool) {
            Some(true) => l.stop_at = Some(l.stop_at.map_or(now, |s| s.min(now))),
            Some(false) => l.stop_at = None,
            None => {}
        }
        if let Some(lag) = v.get("lag").and_then(Value::as_f64) {
            l.lag = lag.max(0.0);
        }
        if let Some(n) = v.get("fail_updates").and_then(Value::as_u64) {
            l.fail_updates = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(mut c) = change {
            c.at = super::scenario::Dur(now);
            let at = l.schema_applied;
            l.cfg.schema_changes.insert(at, c);
            lake::advance(st, now, true);
        }
        true
    });
    if ok {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_error(StatusCode::NOT_FOUND, "NotFound", "the scenario has no lake")
    }
}

/// A path no route serves: the 404 of the service the request is for.
async fn fallback(State(app): State<App>, req: Request) -> Response {
    let ext = Ext::of(req.headers(), &app.base);
    let (service, _) = route::service_of(&app, &ext, req.uri().path());
    route::not_found(service, req.uri().path())
}

async fn method_fallback(State(app): State<App>, req: Request) -> Response {
    let ext = Ext::of(req.headers(), &app.base);
    let (service, _) = route::service_of(&app, &ext, req.uri().path());
    route::method_not_allowed(service, req.method().as_str(), req.uri().path())
}

/// The request pipeline every route goes through. The scenario's latency is the service's response time
/// counted from the request's arrival. A read's answer is built within it, as a real service builds its
/// page within its response time (building a 10,000-row page takes the simulator tens of milliseconds,
/// which would otherwise be added on top of the modelled latency); any other request waits the latency out
/// before it acts, so a client that gives up or dies during that time leaves nothing done.
async fn pipeline(State(app): State<App>, req: Request, next: Next) -> Response {
    let arrived = tokio::time::Instant::now();
    let read = req.method() == axum::http::Method::GET;
    let mut latency = Duration::ZERO;
    let resp = answer(app, req, next, read, &mut latency).await;
    // A zero latency answers at once: a timer, even one already due, waits for the next tick of tokio's clock.
    if read && !latency.is_zero() {
        tokio::time::sleep_until(arrived + latency).await;
    }
    resp
}

async fn answer(app: App, req: Request, next: Next, read: bool, latency: &mut Duration) -> Response {
    let path = req.uri().path().to_string();
    let ext = Ext::of(req.headers(), &app.base);
    let (service, served_here) = route::service_of(&app, &ext, &path);
    // The query only of the OData services (`$filter`, `$select`, paging): never a token endpoint's.
    let query = matches!(service, Service::Fno | Service::Dataverse)
        .then(|| req.uri().query())
        .flatten();
    app.lock().log_request(req.method().as_str(), &path, query);
    if service == Service::Sim {
        return next.run(req).await;
    }
    if !served_here || service == Service::Unknown {
        // Another service's path on this service's host, or no service's path at all.
        return wire::odata_headers(service, route::not_found(service, &path));
    }
    let count = {
        let mut st = app.lock();
        st.requests += 1;
        st.requests
    };
    let (ms, jitter) = app.latency;
    if ms + jitter > 0 {
        let extra = if jitter > 0 {
            mix(app.seed ^ 0x1A7E, count) % (jitter + 1)
        } else {
            0
        };
        *latency = Duration::from_millis(ms + extra);
        if !read {
            tokio::time::sleep(*latency).await;
        }
    }
    let decision = app
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .decide_for(app.seed, service, &path, Instant::now());
    match decision {
        Decision::Pass | Decision::Mangle(_) => {}
        Decision::Throttle { retry_after, header } => {
            return wire::odata_headers(service, throttled(service, retry_after, header));
        }
        Decision::ServerError => {
            let (status, code) = match service {
                Service::Dataverse => (StatusCode::INTERNAL_SERVER_ERROR, "0x80040216"),
                _ => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            };
            let r = json_error(
                status,
                code,
                "The service is temporarily unavailable. (simulated fault)",
            );
            return wire::odata_headers(service, r);
        }
        Decision::Reset => return reset(),
        Decision::Unauthorized => {
            let r = auth::unauthorized(service, "the access token has expired (simulated fault)");
            return wire::odata_headers(service, wire::challenge(&app, service, &ext, true, r));
        }
        Decision::HtmlSignIn => {
            return (
                StatusCode::OK,
                [("content-type", "text/html; charset=utf-8")],
                SIGN_IN_HTML,
            )
                .into_response();
        }
    }
    let mut guard = None;
    let mut remaining = None;
    if matches!(service, Service::Fno | Service::Dataverse | Service::Dualwrite) {
        if let Err(r) = auth::check(&app, service, req.headers()) {
            let presented = req.headers().contains_key("authorization");
            return wire::odata_headers(service, wire::challenge(&app, service, &ext, presented, r));
        }
        if service == Service::Dataverse {
            match dataverse::protect(&app, req.headers()) {
                Ok((g, left)) => {
                    guard = Some(g);
                    remaining = Some(left);
                }
                Err(r) => return wire::odata_headers(service, r),
            }
        }
    }
    let mut resp = wire::odata_headers(service, next.run(req).await);
    drop(guard);
    if let Some(left) = remaining {
        if let Ok(v) = HeaderValue::from_str(&left.to_string()) {
            resp.headers_mut()
                .insert("x-ms-ratelimit-burst-remaining-xrm-requests", v);
        }
    }
    match decision {
        Decision::Mangle(m) => mangle(resp, m).await,
        _ => resp,
    }
}

/// A 429 in the throttled service's own shape.
pub fn throttled(service: Service, retry_after: u64, header: bool) -> Response {
    let mut resp = match service {
        Service::Dataverse => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        ),
        _ => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests",
        ),
    };
    if header {
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    resp
}

/// A response whose body fails before the first byte: hyper drops the connection without
/// writing the buffered head, so the client sees a reset rather than a status.
fn reset() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// Damages or slows a response. Truncation and malformation apply to JSON bodies only: a cut
/// `text/plain` count would be a silently wrong number, which no real transport produces.
async fn mangle(resp: Response, m: Mangle) -> Response {
    if m == Mangle::Lost {
        return reset();
    }
    let json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if !json && !matches!(m, Mangle::Slow { .. }) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return reset();
    };
    parts.headers.remove("content-length");
    match m {
        Mangle::Lost => reset(),
        Mangle::Truncate => {
            let cut = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, Body::from(cut))
        }
        Mangle::Malformed => {
            let mut b = bytes.to_vec();
            b.splice(0..0, b"{\"value\": [,".iter().copied());
            Response::from_parts(parts, Body::from(b))
        }
        Mangle::Slow { chunk_ms } => {
            let chunks: Vec<Bytes> = bytes.chunks(64).map(Bytes::copy_from_slice).collect();
            let stream = futures::stream::unfold(chunks.into_iter(), move |mut it| async move {
                let next = it.next()?;
                tokio::time::sleep(Duration::from_millis(chunk_ms)).await;
                Some((Ok::<Bytes, std::io::Error>(next), it))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
    }
}

/// Reads a header as a string.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
