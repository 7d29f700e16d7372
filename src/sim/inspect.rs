//! The `/_sim/` inspection API: state, faults, clock, the webhook sink and the "our model" list.
//! Never faulted, never asks for a token, answers on every host.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::faults::Faults;
use super::server::{App, json_error};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/_sim/state", get(sim_state))
        .route("/_sim/faults", post(sim_faults).get(sim_faults_get))
        .route("/_sim/clock", get(sim_clock))
        .route("/_sim/webhook", post(sim_webhook))
        .route("/_sim/model", get(super::model::serve))
        .route("/_sim/requests", get(sim_requests))
}

async fn sim_state(State(app): State<App>) -> Response {
    Json(app.with(|st| st.inspect())).into_response()
}

async fn sim_faults(
    State(app): State<App>,
    body: Result<Json<Faults>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(f)) => {
            app.set_faults(f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "BadRequest", &e.body_text()),
    }
}

/// `GET /_sim/requests`: `{"requests":[{"method","path","query"?}]}`, oldest first (no header or body; the
/// query of F&O and Dataverse requests only, percent-encoded as sent).
async fn sim_requests(State(app): State<App>) -> Response {
    let list: Vec<Value> = app.with(|st| {
        st.request_log
            .iter()
            .map(|(m, p, q)| match q {
                Some(q) => json!({"method": m, "path": p, "query": q}),
                None => json!({"method": m, "path": p}),
            })
            .collect()
    });
    Json(json!({ "requests": list })).into_response()
}

async fn sim_faults_get(State(app): State<App>) -> Response {
    Json(app.faults_json()).into_response()
}

async fn sim_clock(State(app): State<App>) -> Response {
    Json(app.with(|st| json!({"time_scale": st.scenario.time_scale, "sim_now": st.sim_time(st.now)})))
        .into_response()
}

async fn sim_webhook(State(app): State<App>, body: Bytes) -> Response {
    let card: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    app.with(|st| {
        st.webhooks.push(card);
        let n = st.webhooks.len();
        st.effect(format!("notify:{n}"));
    });
    (StatusCode::OK, "1").into_response()
}
