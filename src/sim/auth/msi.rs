//! Managed-identity endpoints (wire-facts A7, A8): the IMDS stand-in
//! `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id|object_id|msi_res_id]`
//! (header `Metadata: true`, else 400 `bad_request_102`; numbers as strings in the answer) and the App
//! Service identity endpoint `GET /msi/token?api-version=2019-08-01&resource=R[&client_id|principal_id|mi_res_id]`
//! (header `X-IDENTITY-HEADER`; the answer has `expires_on`). A scenario without `auth.managed_identity`, or
//! an id no identity has, gets 400 `{"error":"invalid_request","error_description":"Identity not found"}`.
//! Our model: with no id, the system-assigned identity answers, else the only user-assigned one.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::config::IdentityIds;
use super::{mint_opaque, normalise_resource, resource_known};
use crate::sim::server::App;

type Params = std::collections::HashMap<String, String>;

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn not_found() -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found")
}

/// The identity the query names (by any of the given parameter names), or the default one.
fn pick(app: &App, q: &Params, object_key: &str, resource_key: &str) -> Option<IdentityIds> {
    let mi = app.with(|st| st.scenario.auth.managed_identity.clone())?;
    let all = || mi.system.iter().chain(mi.user_assigned.iter());
    if let Some(c) = q.get("client_id") {
        return all().find(|i| &i.client_id == c).cloned();
    }
    if let Some(o) = q.get(object_key) {
        return all().find(|i| i.object_id.as_ref() == Some(o)).cloned();
    }
    if let Some(r) = q.get(resource_key) {
        return mi
            .user_assigned
            .iter()
            .find(|i| i.resource_id.as_ref() == Some(r))
            .cloned();
    }
    mi.system.clone().or_else(|| match mi.user_assigned.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    })
}

fn token_for(app: &App, q: &Params, what: &str) -> Result<(String, String, u64), Response> {
    let Some(resource) = q.get("resource").filter(|r| !r.is_empty()) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        ));
    };
    if !resource_known(app, resource) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &format!("AADSTS500011: The resource principal named {resource} was not found in the tenant."),
        ));
    }
    let ttl = app.with(|st| {
        st.entra.count(what);
        st.scenario.auth.token_ttl
    });
    let token = mint_opaque(app, normalise_resource(resource), ttl);
    Ok((token, resource.clone(), ttl))
}

/// `GET /metadata/identity/oauth2/token` (IMDS).
pub async fn imds(State(app): State<App>, headers: HeaderMap, Query(q): Query<Params>) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    if pick(&app, &q, "object_id", "msi_res_id").is_none() {
        return not_found();
    }
    match token_for(&app, &q, "imds") {
        Err(r) => r,
        Ok((token, resource, ttl)) => {
            let now = chrono::Utc::now().timestamp();
            let on = now + i64::try_from(ttl).unwrap_or(0);
            Json(json!({
                "access_token": token, "refresh_token": "", "expires_in": ttl.to_string(),
                "expires_on": on.to_string(), "not_before": now.to_string(), "resource": resource,
                "token_type": "Bearer",
            }))
            .into_response()
        }
    }
}

/// `GET /msi/token` (App Service / Functions identity endpoint).
pub async fn app_service(State(app): State<App>, headers: HeaderMap, Query(q): Query<Params>) -> Response {
    let want = app.with(|st| {
        st.scenario
            .auth
            .managed_identity
            .as_ref()
            .and_then(|m| m.header.clone())
            .unwrap_or_else(|| "sim-identity-header".into())
    });
    if headers.get("x-identity-header").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        // Our model: the real endpoint's answer to a wrong header is not published.
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The X-IDENTITY-HEADER is missing or wrong.",
        );
    }
    let Some(id) = pick(&app, &q, "principal_id", "mi_res_id") else {
        return not_found();
    };
    match token_for(&app, &q, "app_service") {
        Err(r) => r,
        Ok((token, resource, ttl)) => {
            let on = chrono::Utc::now().timestamp() + i64::try_from(ttl).unwrap_or(0);
            Json(json!({
                "access_token": token, "expires_on": on.to_string(), "resource": resource,
                "token_type": "Bearer", "client_id": id.client_id,
            }))
            .into_response()
        }
    }
}
