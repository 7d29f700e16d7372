//! Entra ID client-credentials tokens, and the bearer check every service applies.
//!
//! Our model: tokens are opaque random strings prefixed `sim.` (not JWTs) that remember their
//! audience (the scope minus `/.default`, without a trailing slash) and their expiry
//! (`auth.token_ttl` real seconds). A service whose resource URI the scenario names accepts only
//! tokens for that audience; without one it accepts any audience.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::Service;
use super::server::{App, json_error};
use super::world::Token;

/// An Entra token-endpoint error body; the status is Entra's for that code (`entra_meta.rs`).
pub fn aad_error(app: &App, error: &str, code: u64, description: &str) -> Response {
    let (trace, corr) = app.with(|st| (st.next_guid(), st.next_guid()));
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (super::entra_meta::status_for(code), Json(body)).into_response()
}

fn normalise(resource: &str) -> String {
    resource.trim_end_matches('/').to_ascii_lowercase()
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token(State(app): State<App>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let tenant = match super::entra_meta::resolve(&app, &tenant) {
        Ok(t) => t.unwrap_or(tenant),
        Err(t) => return super::entra_meta::unknown_tenant(&app, &t),
    };
    let form = super::odata::pairs(std::str::from_utf8(&body).ok());
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let (grant, client, secret, scope) = (
        get("grant_type"),
        get("client_id"),
        get("client_secret"),
        get("scope"),
    );
    if grant != "client_credentials" {
        return aad_error(
            &app,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let (want_id, want_secret, ttl, resources) = app.with(|st| {
        let a = &st.scenario.auth;
        (
            a.client_id.clone(),
            a.client_secret.clone(),
            a.token_ttl,
            a.resources.clone(),
        )
    });
    if client.is_empty() || want_id.as_deref().is_some_and(|w| w != client) {
        return aad_error(
            &app,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client}' was not found in the directory."),
        );
    }
    if secret.is_empty() || want_secret.as_deref().is_some_and(|w| w != secret) {
        return aad_error(
            &app,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'."
            ),
        );
    }
    let audience = scope.strip_suffix("/.default").map(normalise);
    let known = [resources.fno, resources.dataverse, resources.dualwrite];
    let audience = match audience {
        Some(a) if !a.is_empty() && !scope.contains(' ') => a,
        _ => return invalid_scope(&app, scope),
    };
    let named: Vec<String> = known.iter().flatten().map(|r| normalise(r)).collect();
    if !named.is_empty() && !named.contains(&audience) {
        return invalid_resource(&app, &audience, &tenant);
    }
    let access = app.with(|st| {
        let t = format!("sim.{}", st.next_guid().replace('-', ""));
        st.tokens.insert(
            t.clone(),
            Token {
                audience,
                expires: Instant::now() + Duration::from_secs(ttl),
            },
        );
        t
    });
    Json(json!({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": access}))
        .into_response()
}

fn invalid_scope(app: &App, scope: &str) -> Response {
    aad_error(
        app,
        "invalid_scope",
        70011,
        &format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    )
}

fn invalid_resource(app: &App, resource: &str, tenant: &str) -> Response {
    aad_error(
        app,
        "invalid_resource",
        500011,
        &format!(
            "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
        ),
    )
}

/// The 401 a service answers for a missing, expired or wrong-audience token.
pub fn unauthorized(service: Service, why: &str) -> Response {
    let code = if service == Service::Dataverse {
        "0x80048306"
    } else {
        "Unauthorized"
    };
    let mut r = json_error(StatusCode::UNAUTHORIZED, code, why);
    let www = format!("Bearer error=\"invalid_token\", error_description=\"{why}\"");
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

/// Checks the bearer token of a request to `service`.
pub fn check(app: &App, service: Service, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| unauthorized(service, "The request has no bearer token."))?;
    let st = app.lock();
    let t = st
        .tokens
        .get(token)
        .ok_or_else(|| unauthorized(service, "The access token is not valid."))?;
    if Instant::now() >= t.expires {
        return Err(unauthorized(service, "The access token has expired."));
    }
    let r = &st.scenario.auth.resources;
    let want = match service {
        Service::Fno => r.fno.as_deref(),
        Service::Dataverse => r.dataverse.as_deref(),
        Service::Dualwrite => r.dualwrite.as_deref(),
        _ => None,
    };
    if want.is_some_and(|w| normalise(w) != t.audience) {
        return Err(unauthorized(
            service,
            "The access token audience is not valid for this resource.",
        ));
    }
    Ok(token.to_string())
}
