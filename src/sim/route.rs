//! Which service a request is for, and the URL the caller used to reach it.
//!
//! The real services live on different hosts. A request whose `Host` (or `X-Forwarded-Host`) names
//! a scenario resource (`auth.resources`), an Entra ID host or the dual-write gateway is served by
//! that service only: an F&O path on the Dataverse host is that host's 404, as it would be on the
//! real one. Any other host (our own tests and connectors on `http://127.0.0.1:PORT`) is routed by
//! path, since the paths of the services do not collide.
//!
//! Links in responses (`@odata.context`, `@odata.nextLink`, `OData-EntityId`, DMF blob URLs,
//! discovery endpoints) are built from [`Ext`]: `X-Forwarded-Proto`/`X-Forwarded-Host` when a
//! front sets them, else the `Host` header over the listener's plain http, else the listen
//! address, never the listen address when the caller named a host.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::Service;
use super::server::{App, header, json_error};

/// Entra ID's public-cloud and sovereign hosts (wire-facts A2, the instance-discovery aliases).
pub const ENTRA_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login-us.microsoftonline.com",
    "login.microsoftonline.us",
    "login.usgovcloudapi.net",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
];

/// The external origin of a request: `scheme://host[:port]`, and the host alone.
#[derive(Debug, Clone)]
pub struct Ext {
    pub base: String,
    pub host: String,
}

fn clean(v: &str) -> Option<String> {
    let v = v.split(',').next()?.trim();
    let ok = !v.is_empty()
        && v.len() <= 255
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    ok.then(|| v.to_ascii_lowercase())
}

impl Ext {
    /// From a request's headers; `fallback` is the listen address (`http://127.0.0.1:PORT`).
    pub fn of(headers: &HeaderMap, fallback: &str) -> Ext {
        let forwarded = header(headers, "x-forwarded-host").and_then(clean);
        let host = forwarded
            .clone()
            .or_else(|| header(headers, "host").and_then(clean));
        let Some(host) = host else {
            let host = fallback.split("://").nth(1).unwrap_or(fallback).to_string();
            return Ext {
                base: fallback.to_string(),
                host,
            };
        };
        let proto = header(headers, "x-forwarded-proto")
            .and_then(|p| p.split(',').next())
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| p == "http" || p == "https");
        let scheme = proto.unwrap_or_else(|| "http".into());
        Ext {
            base: format!("{scheme}://{host}"),
            host,
        }
    }

    /// The host without its port.
    pub fn hostname(&self) -> &str {
        if self.host.starts_with('[') {
            return self.host.split_inclusive(']').next().unwrap_or(&self.host);
        }
        self.host.split(':').next().unwrap_or(&self.host)
    }
}

impl FromRequestParts<App> for Ext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Ext::of(&parts.headers, &app.base))
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1)?;
    let host = rest.split(['/', '?']).next()?;
    Some(host.split(':').next()?.to_ascii_lowercase())
}

/// The service a host belongs to, when it names one (else the request is routed by path).
pub fn host_service(app: &App, hostname: &str) -> Option<Service> {
    if ENTRA_HOSTS.contains(&hostname) {
        return Some(Service::Auth);
    }
    if hostname.starts_with("projectmanagementservice.") {
        return Some(Service::Dualwrite);
    }
    let r = &app.resources;
    let is = |url: &Option<String>| url.as_deref().and_then(host_of).is_some_and(|h| h == hostname);
    if is(&r.fno) {
        Some(Service::Fno)
    } else if is(&r.dataverse)
        || r.dataverse.as_deref().and_then(host_of).is_some_and(|h| {
            // <org>.api.crm.dynamics.com is the Web API's alias of <org>.crm.dynamics.com.
            h.split_once('.')
                .is_some_and(|(org, rest)| hostname == format!("{org}.api.{rest}"))
        })
    {
        Some(Service::Dataverse)
    } else if is(&r.dualwrite) {
        Some(Service::Dualwrite)
    } else {
        None
    }
}

/// The service a request is for: its host's, when the host names one; else its path's.
/// `/_sim/` and `/_blob/` (our own stand-in for blob storage) answer on every host.
pub fn service_of(app: &App, ext: &Ext, path: &str) -> (Service, bool) {
    let by_path = Service::of(path);
    if matches!(by_path, Service::Sim | Service::Blob) {
        return (by_path, true);
    }
    match host_service(app, ext.hostname()) {
        Some(s) => (s, s == by_path),
        None => (by_path, true),
    }
}

/// The 404 of `service` for a path it does not serve, in its own error shape.
pub fn not_found(service: Service, path: &str) -> Response {
    match service {
        Service::Dataverse => json_error(
            StatusCode::NOT_FOUND,
            "0x80060888",
            &format!("Resource not found for the segment '{}'.", last_segment(path)),
        ),
        Service::Fno => json_error(
            StatusCode::NOT_FOUND,
            "",
            &format!("No HTTP resource was found that matches the request URI '{path}'."),
        ),
        Service::Auth => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error": "not_found",
                "error_description": format!("The path {path} is not an Entra ID endpoint the simulator models."),
            })),
        )
            .into_response(),
        _ => json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("No HTTP resource was found that matches the request URI '{path}' (not modelled by the simulator)."),
        ),
    }
}

fn last_segment(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// A method the service does not model on this path, in its own error shape.
pub fn method_not_allowed(service: Service, method: &str, path: &str) -> Response {
    let msg = format!("The HTTP method {method} on '{path}' is not modelled by the simulator.");
    match service {
        Service::Dataverse => json_error(StatusCode::METHOD_NOT_ALLOWED, "0x80060888", &msg),
        Service::Fno => json_error(StatusCode::METHOD_NOT_ALLOWED, "", &msg),
        _ => json_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_external_origin_prefers_the_forwarded_headers_then_host() {
        let mut h = HeaderMap::new();
        assert_eq!(Ext::of(&h, "http://127.0.0.1:9").base, "http://127.0.0.1:9");
        h.insert("host", "127.0.0.1:9".parse().unwrap());
        assert_eq!(Ext::of(&h, "http://x").base, "http://127.0.0.1:9");
        h.insert("x-forwarded-host", "Org.crm.dynamics.com".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let e = Ext::of(&h, "http://x");
        assert_eq!(
            (e.base.as_str(), e.hostname()),
            ("https://org.crm.dynamics.com", "org.crm.dynamics.com")
        );
        h.insert("x-forwarded-host", "evil.example/\"><".parse().unwrap());
        assert_eq!(
            Ext::of(&h, "http://x").base,
            "https://127.0.0.1:9",
            "a malformed host is ignored"
        );
    }
}
