//! The device authorization grant and refresh tokens (wire-facts A3, A4, A5), plus the `/_sim/` controls
//! that stand in for the person at the browser.
//!
//! - `POST /{tenant}/oauth2/v2.0/devicecode` (form `client_id`, `scope`) answers `device_code`, `user_code`,
//!   `verification_uri`, `expires_in`, `interval`, `message`; the client must be a declared public client.
//! - Polling the token endpoint: 400 `authorization_pending` (AADSTS70016) until a test approves or
//!   declines the code; a poll sooner than `interval` after the last one gets 400 `slow_down` (our model:
//!   Entra does not document it); a declined code gets 400 `authorization_declined` (our model: no AADSTS
//!   number is published); after `expires_in`, 400 `expired_token` (AADSTS70020, as observed); an
//!   unknown code 400 `bad_verification_code` (AADSTS70018).
//! - Approval mints the user's access token (a JWT, see `grants::mint_user_token`), an `id_token` and a
//!   refresh token `simrt.<40 hex>`; the refresh grant rotates it. An unknown refresh token gets 400
//!   `invalid_grant` (AADSTS70000 in our model; Entra uses several codes for it).
//! - `POST /_sim/devicecode/approve {"user_code","upn"}`, `POST /_sim/devicecode/decline {"user_code"}`,
//!   `GET /_sim/devicecode` (each code's state and how often it was polled), `POST /_sim/users/token
//!   {"upn","resource","ttl"}` (a user's token as `az account get-access-token` prints it), `GET /_sim/auth`
//!   (requests per grant).

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::config::User;
use super::grants::{delegated_answer, mint_user_token, principal};
use super::{Called, aad_error, aad_error_status, invalid_scope, resource_known};
use crate::sim::server::{App, json_error};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    Approved(String),
    Declined,
    /// The token was handed out: the code cannot be used again.
    Redeemed,
}

#[derive(Debug, Clone)]
pub struct DeviceAuth {
    pub device_code: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub issued: Instant,
    pub expires_in: u64,
    pub interval: u64,
    pub state: DeviceState,
    pub polls: u64,
    pub last_poll: Option<Instant>,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub upn: String,
}

/// The resource of a delegated scope (`https://x/.default openid profile offline_access` -> `https://x`).
fn resource_of(scope: &str) -> Option<String> {
    let mut res = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access" | "email"))
        .filter_map(|s| s.rsplit_once('/').map(|(r, _)| r.to_owned()));
    let first = res.next()?;
    res.next().is_none().then_some(first)
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub async fn devicecode(State(app): State<App>, Path(segment): Path<String>, body: Bytes) -> Response {
    if let Err(r) = super::called(&app, segment) {
        return r;
    }
    let form = crate::sim::odata::pairs(std::str::from_utf8(&body).ok());
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (client, scope) = (get("client_id"), get("scope"));
    match principal(&app, &client) {
        Some(p) if p.public_client => {}
        Some(_) => {
            // 400 here: the token endpoint answers the same code 401 (`entra_meta::status_for`).
            return bad_request(
                &app,
                "invalid_client",
                Some(7000218),
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        None => {
            return aad_error(
                &app,
                "unauthorized_client",
                700016,
                &format!("Application with identifier '{client}' was not found in the directory."),
            );
        }
    }
    if !resource_of(&scope).is_some_and(|r| resource_known(&app, &r)) {
        return invalid_scope(&app, &scope);
    }
    let cfg = app.with(|st| st.scenario.auth.device_code.clone());
    let (device_code, user_code) = app.with(|st| {
        let dc = format!(
            "simdc.{}{}",
            st.next_guid().replace('-', ""),
            &st.next_guid().replace('-', "")[..8]
        );
        let uc: String = st
            .next_guid()
            .replace('-', "")
            .chars()
            .take(9)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        st.entra.devices.push(DeviceAuth {
            device_code: dc.clone(),
            user_code: uc.clone(),
            client_id: client.clone(),
            scope: scope.clone(),
            issued: Instant::now(),
            expires_in: cfg.expires_in,
            interval: cfg.interval,
            state: DeviceState::Pending,
            polls: 0,
            last_poll: None,
        });
        (dc, uc)
    });
    let message = format!(
        "To sign in, use a web browser to open the page {} and enter the code {user_code} to authenticate.",
        cfg.verification_uri
    );
    Json(json!({
        "user_code": user_code, "device_code": device_code, "verification_uri": cfg.verification_uri,
        "expires_in": cfg.expires_in, "interval": cfg.interval, "message": message,
    }))
    .into_response()
}

fn bad_request(app: &App, error: &str, code: Option<u64>, text: &str) -> Response {
    aad_error_status(app, StatusCode::BAD_REQUEST, error, code, text)
}

/// A device-code poll of the token endpoint.
pub fn poll(app: &App, tenant: &Called, client: &str, device_code: &str) -> Response {
    enum Next {
        Answer(&'static str, Option<u64>, &'static str),
        Issue(String, String),
    }
    let next = app.with(|st| {
        st.entra.count("device_code");
        let Some(d) = st
            .entra
            .devices
            .iter_mut()
            .find(|d| d.device_code == device_code && d.client_id == client)
        else {
            return Next::Answer("bad_verification_code", Some(70018), "Verification code mismatch.");
        };
        let now = Instant::now();
        let too_soon = d
            .last_poll
            .is_some_and(|l| now.duration_since(l) + Duration::from_millis(250) < Duration::from_secs(d.interval));
        d.polls += 1;
        d.last_poll = Some(now);
        if now.duration_since(d.issued) >= Duration::from_secs(d.expires_in) {
            return Next::Answer(
                "expired_token",
                Some(70020),
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            );
        }
        match d.state.clone() {
            DeviceState::Declined => Next::Answer(
                "authorization_declined",
                None,
                "The end user denied the authorization request. (our model: no AADSTS number is published)",
            ),
            DeviceState::Redeemed => Next::Answer(
                "invalid_grant",
                Some(54005),
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code.",
            ),
            _ if too_soon => Next::Answer(
                "slow_down",
                None,
                "The client is polling too quickly. (our model: Entra does not document slow_down)",
            ),
            DeviceState::Pending => Next::Answer(
                "authorization_pending",
                Some(70016),
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ),
            DeviceState::Approved(upn) => {
                d.state = DeviceState::Redeemed;
                Next::Issue(upn, d.scope.clone())
            }
        }
    });
    match next {
        Next::Answer(error, code, text) => bad_request(app, error, code, text),
        Next::Issue(upn, scope) => issue_for(app, &tenant.id, client, &upn, &scope),
    }
}

/// The refresh-token grant.
pub fn refresh(app: &App, tenant: &Called, client: &str, rt: &str, scope: &str) -> Response {
    let grant = app.with(|st| {
        st.entra.count("refresh_token");
        st.entra.refresh.remove(rt)
    });
    match grant {
        Some(g) if g.client_id == client => issue_for(app, &tenant.id, client, &g.upn, scope),
        _ => bad_request(
            app,
            "invalid_grant",
            Some(70000),
            "The provided value for the 'refresh_token' is not valid. (our model of the code)",
        ),
    }
}

fn user(app: &App, upn: &str) -> Option<User> {
    app.with(|st| {
        st.scenario
            .auth
            .users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .cloned()
    })
}

fn issue_for(app: &App, tid: &str, client: &str, upn: &str, scope: &str) -> Response {
    let Some(resource) = resource_of(scope).filter(|r| resource_known(app, r)) else {
        return invalid_scope(app, scope);
    };
    let Some(u) = user(app, upn) else {
        return bad_request(
            app,
            "invalid_grant",
            Some(50034),
            "The user account does not exist in the directory.",
        );
    };
    let ttl = app.with(|st| {
        st.scenario
            .auth
            .user_token_ttl
            .unwrap_or(st.scenario.auth.token_ttl)
    });
    let access = mint_user_token(app, tid, &u, client, resource.trim_end_matches('/'), ttl);
    let id_token = mint_user_token(app, tid, &u, client, client, ttl);
    let rt = app.with(|st| {
        let rt = format!(
            "simrt.{}{}",
            st.next_guid().replace('-', ""),
            &st.next_guid().replace('-', "")[..8]
        );
        st.entra.refresh.insert(
            rt.clone(),
            RefreshGrant {
                client_id: client.to_owned(),
                upn: u.upn.clone(),
            },
        );
        rt
    });
    delegated_answer(&access, &rt, scope, ttl, &id_token)
}

#[derive(Deserialize)]
pub struct Approve {
    user_code: String,
    #[serde(default)]
    upn: Option<String>,
}

fn set_state(app: &App, code: &str, state: DeviceState) -> Response {
    let found = app.with(|st| {
        st.entra
            .devices
            .iter_mut()
            .find(|d| d.user_code.eq_ignore_ascii_case(code) && d.state == DeviceState::Pending)
            .map(|d| d.state = state)
            .is_some()
    });
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no pending device code with that user code",
        )
    }
}

/// `POST /_sim/devicecode/approve`: the user signs in and approves.
pub async fn approve(State(app): State<App>, Json(a): Json<Approve>) -> Response {
    let upn = match a
        .upn
        .or_else(|| app.with(|st| st.scenario.auth.users.first().map(|u| u.upn.clone())))
    {
        Some(u) if user(&app, &u).is_some() => u,
        _ => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "no such user in the scenario",
            );
        }
    };
    set_state(&app, &a.user_code, DeviceState::Approved(upn))
}

/// `POST /_sim/devicecode/decline`.
pub async fn decline(State(app): State<App>, Json(a): Json<Approve>) -> Response {
    set_state(&app, &a.user_code, DeviceState::Declined)
}

/// `GET /_sim/devicecode`: every code's user code, state and poll count (never the device code).
pub async fn list(State(app): State<App>) -> Response {
    let v: Vec<_> = app.with(|st| {
        st.entra
            .devices
            .iter()
            .map(|d| json!({"user_code": d.user_code, "client_id": d.client_id, "polls": d.polls, "state": format!("{:?}", d.state)}))
            .collect()
    });
    Json(json!({"value": v})).into_response()
}

#[derive(Deserialize)]
pub struct UserToken {
    upn: String,
    resource: String,
    #[serde(default)]
    ttl: Option<u64>,
}

/// `POST /_sim/users/token`: a user's token in the Azure CLI's output shape (the `az` stand-in of tests).
pub async fn user_token(State(app): State<App>, Json(r): Json<UserToken>) -> Response {
    let Some(u) = user(&app, &r.upn) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "no such user in the scenario",
        );
    };
    if !resource_known(&app, &r.resource) {
        return json_error(StatusCode::BAD_REQUEST, "BadRequest", "unknown resource");
    }
    let ttl = r.ttl.unwrap_or_else(|| app.with(|st| st.scenario.auth.token_ttl));
    // The az stand-in names no tenant: its tokens come from the home tenant.
    let tid = crate::sim::entra_meta::tenant_id(&app);
    let token = mint_user_token(
        &app,
        &tid,
        &u,
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        r.resource.trim_end_matches('/'),
        ttl,
    );
    let on = chrono::Utc::now().timestamp() + i64::try_from(ttl).unwrap_or(0);
    Json(json!({"accessToken": token, "expires_on": on, "tenant": tid, "tokenType": "Bearer"}))
        .into_response()
}

/// `GET /_sim/auth`: requests per grant.
pub async fn counts(State(app): State<App>) -> Response {
    Json(app.with(|st| json!(st.entra.counts))).into_response()
}
