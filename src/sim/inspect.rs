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
        .route("/_sim/webhook", post(sim_webhook).get(sim_webhook_cards))
        .route("/_sim/webhook/behaviour", post(sim_webhook_behaviour))
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

/// `POST /_sim/webhook` (any query: a real webhook URL carries its key there): records the card and answers as
/// a Teams incoming webhook does (200, body `1`), or as `webhook` behaviour says (a status, a delay). A card
/// answered with a non-2xx status is not recorded; every attempt is counted in `webhook_attempts`.
async fn sim_webhook(State(app): State<App>, body: Bytes) -> Response {
    let card: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body)));
    let behaviour = app.with(|st| {
        st.webhook_attempts += 1;
        st.webhook.clone()
    });
    if behaviour.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(behaviour.delay_ms)).await;
    }
    let status = behaviour
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if !status.is_success() {
        return json_error(status, "WebhookFailed", "the webhook sink was told to fail");
    }
    app.with(|st| {
        st.webhooks.push(card);
        let n = st.webhooks.len();
        st.effect(format!("notify:{n}"));
    });
    (status, "1").into_response()
}

/// `GET /_sim/webhook`: `{"cards": [...], "attempts": n}`, the cards taken, oldest first.
async fn sim_webhook_cards(State(app): State<App>) -> Response {
    Json(app.with(|st| json!({"cards": st.webhooks, "attempts": st.webhook_attempts}))).into_response()
}

/// `POST /_sim/webhook/behaviour` `{"status": 500, "delay_ms": 0}`: how the sink answers from now on.
async fn sim_webhook_behaviour(
    State(app): State<App>,
    body: Result<Json<super::scenario::WebhookBehaviour>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(b)) => {
            app.with(|st| st.webhook = b);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => json_error(StatusCode::BAD_REQUEST, "BadRequest", &e.body_text()),
    }
}
