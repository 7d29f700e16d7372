//! Entra ID tokens, and the bearer check every service applies.
//!
//! Our model: app-only tokens are opaque random strings prefixed `sim.` (not JWTs) that remember their
//! audience (the scope minus `/.default`, without a trailing slash) and their expiry
//! (`auth.token_ttl` real seconds). A service whose resource URI the scenario names accepts only
//! tokens for that audience; without one it accepts any audience. A user's (delegated) token is a JWT
//! with realistic claims (`oid`, `upn`, `tid`, `groups`, `scp`) whose signature is not a real one.
//!
//! The grants beyond a client secret live beside this file: [`grants`] (certificate and federated
//! assertions, [`assertion`]), [`device`] (device authorization, refresh tokens, the `/_sim/` sign-in
//! controls) and [`msi`] (IMDS and the App Service identity endpoint).

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

mod assertion;
pub mod config;
pub mod device;
mod grants;
pub mod msi;

pub use grants::EntraState;

/// An Entra token-endpoint error body with the status Entra answers for that code
/// ([`super::entra_meta::status_for`]).
pub(super) fn aad_error(app: &App, error: &str, code: u64, description: &str) -> Response {
    aad_error_status(
        app,
        super::entra_meta::status_for(code),
        error,
        Some(code),
        description,
    )
}

/// Entra's error body (wire-facts A4) with any status; `code` `None` for an error no AADSTS number is
/// published for (our model: the description then carries no `AADSTS` prefix, `error_codes` is empty
/// and there is no `error_uri`).
pub(super) fn aad_error_status(
    app: &App,
    status: StatusCode,
    error: &str,
    code: Option<u64>,
    description: &str,
) -> Response {
    let (trace, corr) = app.with(|st| (st.next_guid(), st.next_guid()));
    let ts = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let prefix = code.map(|c| format!("AADSTS{c}: ")).unwrap_or_default();
    let codes: Vec<u64> = code.into_iter().collect();
    let mut body = json!({
        "error": error,
        "error_description": format!("{prefix}{description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"),
        "error_codes": codes,
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
    });
    if let Some(c) = code {
        body["error_uri"] = json!(format!("https://login.microsoftonline.com/error?code={c}"));
    }
    (status, Json(body)).into_response()
}

fn normalise(resource: &str) -> String {
    resource.trim_end_matches('/').to_ascii_lowercase()
}

/// The tenant a token request named: the path segment as called (an assertion's `aud` names it) and
/// the tenant id it resolves to (`common`/`organizations`: the home tenant), which user tokens carry
/// as `tid`.
pub(super) struct Called {
    pub segment: String,
    pub id: String,
}

/// Resolves a tenant path segment, or answers AADSTS90002 for a tenant the scenario does not have.
pub(super) fn called(app: &App, segment: String) -> Result<Called, Response> {
    match super::entra_meta::resolve(app, &segment) {
        Ok(id) => Ok(Called {
            id: id.unwrap_or_else(|| super::entra_meta::tenant_id(app)),
            segment,
        }),
        Err(t) => Err(super::entra_meta::unknown_tenant(app, &t)),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub async fn token(
    State(app): State<App>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tenant = match called(&app, segment) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let form = super::odata::pairs(std::str::from_utf8(&body).ok());
    if let Some(r) = grants::dispatch(&app, &tenant, &form, &headers) {
        return r;
    }
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
    let (want_id, want_secret, ttl) = app.with(|st| {
        let a = &st.scenario.auth;
        (a.client_id.clone(), a.client_secret.clone(), a.token_ttl)
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
        return grants::bad_secret(&app, client);
    }
    issue_app_token(&app, &tenant, scope, ttl)
}

/// An app-only token for `scope` (`<resource>/.default`): `invalid_scope` when the scope is not one
/// resource's `.default`, `invalid_resource` (AADSTS500011) when it names a resource the scenario does
/// not serve.
pub(super) fn issue_app_token(app: &App, tenant: &Called, scope: &str, ttl: u64) -> Response {
    let audience = match scope.strip_suffix("/.default").map(normalise) {
        Some(a) if !a.is_empty() && !scope.contains(' ') => a,
        _ => return invalid_scope(app, scope),
    };
    if !resource_known(app, &audience) {
        return invalid_resource(app, &audience, &tenant.id);
    }
    let access = mint_opaque(app, audience, ttl);
    Json(json!({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": access}))
        .into_response()
}

/// Records and returns an opaque app token `sim.<32 hex>` for `audience`.
pub(super) fn mint_opaque(app: &App, audience: String, ttl: u64) -> String {
    app.with(|st| {
        let t = format!("sim.{}", st.next_guid().replace('-', ""));
        st.tokens.insert(
            t.clone(),
            Token {
                audience,
                expires: Instant::now() + Duration::from_secs(ttl),
            },
        );
        t
    })
}

/// Whether a named resource exists for `audience` (true when the scenario names none).
pub(super) fn resource_known(app: &App, audience: &str) -> bool {
    let r = app.with(|st| st.scenario.auth.resources.clone());
    let named: Vec<String> = [r.fno, r.dataverse, r.dualwrite]
        .iter()
        .flatten()
        .map(|x| normalise(x))
        .collect();
    // Azure Storage, Azure Databricks and Azure Key Vault are Microsoft's first-party resources, in every tenant.
    let first_party = [
        "https://storage.azure.com",
        super::lake::databricks::DATABRICKS_RESOURCE,
        super::keyvault::RESOURCE,
    ];
    named.is_empty()
        || named.iter().any(|n| n == &normalise(audience))
        || first_party.iter().any(|f| normalise(f) == normalise(audience))
}

pub(super) fn normalise_resource(resource: &str) -> String {
    normalise(resource)
}

pub(super) fn invalid_scope(app: &App, scope: &str) -> Response {
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
