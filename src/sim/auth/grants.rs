//! The token endpoint's grants beyond the scenario's single client secret: client credentials of a
//! declared principal (secret, certificate assertion or federated assertion), the device-code poll and
//! the refresh-token grant. [`dispatch`] answers the requests it owns and leaves the rest (the original
//! `auth.client_id`/`client_secret` path) to `token`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::config::{Principal, User};
use super::{Called, aad_error, aad_error_status, assertion, device, issue_app_token};
use crate::sim::server::App;
use crate::sim::world::Token;
use crate::util::{b64url, sha256_hex};

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What Entra remembers between requests.
#[derive(Debug, Default)]
pub struct EntraState {
    pub devices: Vec<device::DeviceAuth>,
    /// Refresh token -> the grant it continues.
    pub refresh: HashMap<String, device::RefreshGrant>,
    /// Requests by grant (`client_credentials`, `client_assertion`, `device_code`, `refresh_token`, `imds`,
    /// `app_service`), for tests.
    pub counts: BTreeMap<String, u64>,
}

impl EntraState {
    pub fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_owned()).or_default() += 1;
    }
}

/// Answers the grants this module owns; `None` leaves the request to the client-secret path.
pub fn dispatch(
    app: &App,
    tenant: &Called,
    form: &[(String, String)],
    headers: &HeaderMap,
) -> Option<Response> {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let grant = get("grant_type");
    match grant {
        // Both spellings: msal-node sends the short one (wire-facts A3).
        device::GRANT | "device_code" => {
            return Some(device::poll(app, tenant, get("client_id"), get("device_code")));
        }
        "refresh_token" => {
            return Some(device::refresh(
                app,
                tenant,
                get("client_id"),
                get("refresh_token"),
                get("scope"),
            ));
        }
        "client_credentials" => {}
        _ => return None,
    }
    let client = get("client_id");
    let principal = app.with(|st| {
        st.scenario
            .auth
            .principals
            .iter()
            .find(|p| p.client_id == client)
            .cloned()
    });
    let assertion = get("client_assertion");
    if principal.is_none() && assertion.is_empty() {
        return None;
    }
    app.with(|st| {
        st.entra.count(if assertion.is_empty() {
            "client_credentials"
        } else {
            "client_assertion"
        })
    });
    let Some(p) = principal else {
        return Some(aad_error(
            app,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client}' was not found in the directory."),
        ));
    };
    let ttl = app.with(|st| st.scenario.auth.token_ttl);
    if !assertion.is_empty() {
        if get("client_assertion_type") != ASSERTION_TYPE {
            return Some(aad_error(
                app,
                "invalid_request",
                90014,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            ));
        }
        if let Err(r) = assertion::verify(app, &p, assertion, &expected_audience(headers, &tenant.segment)) {
            return Some(r);
        }
        return Some(issue_app_token(app, tenant, get("scope"), ttl));
    }
    let secret = get("client_secret");
    if secret.is_empty() {
        return Some(aad_error_status(
            app,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            Some(7000218),
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    if p.secret.as_deref() != Some(secret) {
        return Some(bad_secret(app, client));
    }
    let skew = app.with(|st| st.scenario.auth.clock_skew);
    let entra_now = chrono::Utc::now() + chrono::Duration::seconds(skew);
    if p.secret_expires.is_some_and(|end| entra_now > end) {
        return Some(expired_secret(app, client));
    }
    Some(issue_app_token(app, tenant, get("scope"), ttl))
}

/// `invalid_client` AADSTS7000222, 401: the secret is right but its end date has passed (the code and its
/// meaning are in Entra's published error-code list; the message is the one Entra returns).
pub fn expired_secret(app: &App, client: &str) -> Response {
    aad_error_status(
        app,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        Some(7000222),
        &format!(
            "The provided client secret keys for app '{client}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
        ),
    )
}

/// `invalid_client` AADSTS7000215, 401 (wire-facts A4).
pub fn bad_secret(app: &App, client: &str) -> Response {
    aad_error_status(
        app,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        Some(7000215),
        &format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'."
        ),
    )
}

/// What an assertion's `aud` must be: `{scheme}://{Host}/{tenant}/oauth2/v2.0/token`, the endpoint the
/// request came to (http or https: the simulator may sit behind a TLS front).
pub struct ExpectedAudience {
    pub host: String,
    pub tenant: String,
}

impl ExpectedAudience {
    pub fn matches(&self, aud: &str) -> bool {
        let path = format!("{}/{}/oauth2/v2.0/token", self.host, self.tenant);
        aud.strip_prefix("https://")
            .or_else(|| aud.strip_prefix("http://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(&path))
    }
}

fn expected_audience(headers: &HeaderMap, tenant: &str) -> ExpectedAudience {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ExpectedAudience {
        host,
        tenant: tenant.to_owned(),
    }
}

/// A user's delegated access token from tenant `tid`: a JWT with Entra's claims (our model: the
/// signature is not a real one).
pub fn mint_user_token(
    app: &App,
    tid: &str,
    user: &User,
    client_id: &str,
    audience: &str,
    ttl: u64,
) -> String {
    let now = chrono::Utc::now().timestamp();
    app.with(|st| {
        let uti = st.next_guid();
        let claims = json!({
            "aud": audience, "iss": format!("https://sts.windows.net/{tid}/"), "iat": now, "nbf": now,
            "exp": now + i64::try_from(ttl).unwrap_or(3600), "tid": tid, "oid": user_oid(user),
            "upn": user.upn, "preferred_username": user.upn, "unique_name": user.upn,
            "name": user.name.clone().unwrap_or_else(|| user.upn.clone()), "groups": user.groups,
            "scp": "user_impersonation", "appid": client_id, "ver": "1.0", "uti": uti,
        });
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": "sim-unsigned"});
        let sig = b64url(st.next_guid().as_bytes());
        let token = format!(
            "{}.{}.{sig}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        st.tokens.insert(
            token.clone(),
            Token {
                audience: super::normalise_resource(audience),
                expires: Instant::now() + std::time::Duration::from_secs(ttl),
            },
        );
        token
    })
}

/// A user's object id: as declared, else a GUID derived from the UPN.
pub fn user_oid(user: &User) -> String {
    user.oid.clone().unwrap_or_else(|| {
        let hex = sha256_hex(user.upn.to_ascii_lowercase());
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    })
}

/// The principal a client id names.
pub fn principal(app: &App, client_id: &str) -> Option<Principal> {
    app.with(|st| {
        st.scenario
            .auth
            .principals
            .iter()
            .find(|p| p.client_id == client_id)
            .cloned()
    })
}

/// A token answer for a delegated grant.
pub fn delegated_answer(access: &str, refresh: &str, scope: &str, ttl: u64, id_token: &str) -> Response {
    Json(json!({
        "token_type": "Bearer", "scope": scope, "expires_in": ttl, "ext_expires_in": ttl,
        "access_token": access, "refresh_token": refresh, "id_token": id_token,
    }))
    .into_response()
}
