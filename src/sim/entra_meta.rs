//! Entra ID discovery: the OpenID configuration documents, instance discovery, tenants, and the
//! HTTP status of each token error.
//!
//! Shapes follow wire-facts A1/A2: the v2.0 document as Microsoft's own SDK records it (every
//! endpoint and the issuer carry the tenant GUID, even when the request named a domain; `common`
//! keeps `{tenantid}` in the issuer), instance discovery as MSAL parses it, unknown tenant
//! AADSTS90002, unknown instance `invalid_instance` AADSTS50049. Endpoints are built from the host
//! the client called ([`Ext`]). Our model: with no tenant declared in the scenario every tenant
//! exists, and its GUID is the one named (or, for a domain name, one derived from it); the home
//! tenant ([`tenant_id`]) is then [`DEFAULT_TENANT`].

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::faults::{hash_str, mix};
use super::route::{ENTRA_HOSTS, Ext};
use super::server::App;
use super::tables::guid_from;

/// Tenant path segments that name no tenant.
const MULTI: &[&str] = &["common", "organizations", "consumers"];

/// The HTTP status Entra answers for an AADSTS code: credential errors are 401 `invalid_client`
/// (wire-facts A4 [community captures]); the rest 400 as documented.
pub fn status_for(code: u64) -> StatusCode {
    match code {
        7000215 | 7000222 | 700027 | 700024 | 7000218 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn derived_guid(name: &str) -> String {
    let h = hash_str(&name.to_ascii_lowercase());
    guid_from(mix(h, 0x7E7A), mix(h, 0x4A47))
}

fn is_guid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The home tenant's id when no tenant is declared.
pub const DEFAULT_TENANT: &str = "11111111-2222-4333-8444-555555555555";

/// The home tenant's id: the scenario's first tenant, else [`DEFAULT_TENANT`]. It is the `tid` of a
/// user token whose request named no tenant (`common`, `organizations`, the `az` stand-in) and the
/// tenant of the Dataverse 401 challenge.
pub fn tenant_id(app: &App) -> String {
    app.with(|st| st.scenario.auth.tenants.first().map(|t| t.id.clone()))
        .unwrap_or_else(|| DEFAULT_TENANT.to_owned())
}

/// What a tenant path segment names: `Ok(None)` for common/organizations/consumers, `Ok(Some(guid))`
/// for a tenant that exists, `Err(segment)` for one that does not.
pub fn resolve(app: &App, segment: &str) -> Result<Option<String>, String> {
    if MULTI.iter().any(|m| m.eq_ignore_ascii_case(segment)) {
        return Ok(None);
    }
    let tenants = app.with(|st| st.scenario.auth.tenants.clone());
    if tenants.is_empty() {
        return Ok(Some(if is_guid(segment) {
            segment.to_ascii_lowercase()
        } else {
            derived_guid(segment)
        }));
    }
    tenants
        .iter()
        .find(|t| {
            t.id.eq_ignore_ascii_case(segment) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(segment))
        })
        .map(|t| Some(t.id.clone()))
        .ok_or_else(|| segment.to_string())
}

/// The AADSTS90002 body for a tenant that does not exist.
pub fn unknown_tenant(app: &App, segment: &str) -> Response {
    super::auth::aad_error(
        app,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub async fn openid_v2(State(app): State<App>, ext: Ext, Path(segment): Path<String>) -> Response {
    let tid = match resolve(&app, &segment) {
        Ok(t) => t,
        Err(s) => return unknown_tenant(&app, &s),
    };
    let b = &ext.base;
    let (t, issuer) = match &tid {
        Some(id) => (id.clone(), format!("{b}/{id}/v2.0")),
        None => (segment.to_ascii_lowercase(), format!("{b}/{{tenantid}}/v2.0")),
    };
    Json(json!({
        "token_endpoint": format!("{b}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/{t}/kerberos"),
        "tenant_region_scope": if tid.is_some() { json!("WW") } else { Value::Null },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /{tenant}/.well-known/openid-configuration` (the v1.0 document older ADAL-era clients read).
pub async fn openid_v1(State(app): State<App>, ext: Ext, Path(segment): Path<String>) -> Response {
    let tid = match resolve(&app, &segment) {
        Ok(t) => t,
        Err(s) => return unknown_tenant(&app, &s),
    };
    let b = &ext.base;
    let t = tid.clone().unwrap_or_else(|| segment.to_ascii_lowercase());
    let issuer = match &tid {
        Some(id) => format!("https://sts.windows.net/{id}/"),
        None => "https://sts.windows.net/{tenantid}/".to_string(),
    };
    Json(json!({
        "token_endpoint": format!("{b}/{t}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "authorization_endpoint": format!("{b}/{t}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{b}/{t}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{t}/oauth2/logout"),
        "tenant_region_scope": if tid.is_some() { json!("WW") } else { Value::Null },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=<url>`.
pub async fn instance_discovery(State(app): State<App>, ext: Ext, RawQuery(raw): RawQuery) -> Response {
    let pairs = super::odata::pairs(raw.as_deref());
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let version = get("api-version").unwrap_or_else(|| "1.1".into());
    let Some(endpoint) = get("authorization_endpoint") else {
        return super::auth::aad_error(
            &app,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'authorization_endpoint'.",
        );
    };
    // https://<host>/<tenant>/oauth2/v2.0/authorize
    let rest = endpoint.split("://").nth(1).unwrap_or("");
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("").to_ascii_lowercase();
    let tenant = parts.next().unwrap_or("common").to_string();
    let scheme = endpoint.split("://").next().unwrap_or("https");
    let ours = host == ext.host;
    if !ENTRA_HOSTS.contains(&host.split(':').next().unwrap_or("")) && !ours {
        return super::auth::aad_error(&app, "invalid_instance", 50049, "Unknown or invalid instance.");
    }
    let group = |names: &[&str]| json!({"preferred_network": names[0], "preferred_cache": names.get(1).copied().unwrap_or(names[0]), "aliases": names});
    let mut metadata = vec![
        json!({"preferred_network": "login.microsoftonline.com", "preferred_cache": "login.windows.net",
               "aliases": ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]}),
        group(&[
            "login.partner.microsoftonline.cn",
            "login.partner.microsoftonline.cn",
            "login.chinacloudapi.cn",
        ]),
        group(&["login.microsoftonline.de"]),
        group(&[
            "login.microsoftonline.us",
            "login.microsoftonline.us",
            "login.usgovcloudapi.net",
        ]),
        group(&["login-us.microsoftonline.com"]),
    ];
    if !ENTRA_HOSTS.contains(&ext.hostname()) {
        // The simulator's own address is an instance of its own.
        metadata.push(group(&[ext.host.as_str()]));
    }
    Json(json!({
        "tenant_discovery_endpoint": format!("{scheme}://{host}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": version,
        "metadata": metadata,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_errors_are_401_and_the_rest_400() {
        assert_eq!(status_for(7000215), StatusCode::UNAUTHORIZED);
        assert_eq!(status_for(7000222), StatusCode::UNAUTHORIZED);
        assert_eq!(status_for(500011), StatusCode::BAD_REQUEST);
        assert_eq!(status_for(90002), StatusCode::BAD_REQUEST);
        assert!(is_guid(&derived_guid("contoso.onmicrosoft.com")));
    }
}
