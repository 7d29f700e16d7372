//! `credential: managed_identity`: the token of the Azure resource this console runs on (wire-facts A7, A8).
//!
//! - **App Service / Functions / Container Apps** when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set:
//!   `GET {IDENTITY_ENDPOINT}?resource=R&api-version=2019-08-01` with `X-IDENTITY-HEADER`; a user-assigned
//!   identity by `client_id`, `principal_id` or `mi_res_id`. The answer has `expires_on` (epoch seconds).
//! - **A VM (IMDS)** otherwise: `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=R`
//!   with `Metadata: true`; a user-assigned identity by `client_id`, `object_id` or `msi_res_id`. The answer
//!   has `expires_in` as a string.
//!
//! Both are machine-local and reached without any proxy. In `--sim` mode the IMDS address is the
//! simulator's. "Identity not found" (no identity assigned, or an unknown user-assigned id) is an
//! authentication failure that says so.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::super::transport::{Request, RetryPolicy, Transport};
use super::super::{ConnectorError, Result};
use super::{Fetched, Secret, entra_error};

/// A user-assigned identity, by one of its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAssigned {
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

/// Where the identity endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// IMDS at this base (`http://169.254.169.254`, or the simulator).
    Imds(String),
    /// The App Service identity endpoint and its header secret.
    AppService { url: String, header: Secret },
}

impl Endpoint {
    /// App Service when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set, else IMDS at `imds_base`.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>, imds_base: &str) -> Endpoint {
        match (lookup("IDENTITY_ENDPOINT"), lookup("IDENTITY_HEADER")) {
            (Some(url), Some(header)) if !url.is_empty() => Endpoint::AppService {
                url,
                header: Secret::new(header),
            },
            _ => Endpoint::Imds(imds_base.trim_end_matches('/').to_owned()),
        }
    }
}

/// The managed identity of this machine.
#[derive(Clone)]
pub struct ManagedIdentity {
    pub user_assigned: Option<UserAssigned>,
    pub endpoint: Endpoint,
    transport: Transport,
}

impl PartialEq for ManagedIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.user_assigned == other.user_assigned && self.endpoint == other.endpoint
    }
}
impl Eq for ManagedIdentity {}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("user_assigned", &self.user_assigned)
            .finish_non_exhaustive()
    }
}

/// The default IMDS base.
pub const IMDS: &str = "http://169.254.169.254";

impl ManagedIdentity {
    pub fn new(user_assigned: Option<UserAssigned>, endpoint: Endpoint, policy: RetryPolicy) -> Result<Self> {
        let client = crate::connectors::net::direct_client().map_err(|e| ConnectorError::Config {
            env: "managed_identity".into(),
            detail: format!("cannot build the HTTP client: {e}"),
        })?;
        let base = match &endpoint {
            Endpoint::Imds(b) => b.clone(),
            Endpoint::AppService { url, .. } => url.clone(),
        };
        let transport = Transport::for_imds("managed_identity", client, &base, policy)?;
        Ok(Self {
            user_assigned,
            endpoint,
            transport,
        })
    }

    pub async fn fetch(&self, resource: &str, cancel: &CancellationToken) -> Result<Fetched> {
        let (req, app_service) = match &self.endpoint {
            Endpoint::Imds(_) => {
                let mut r = Request::get("imds.token", "/metadata/identity/oauth2/token")
                    .query("api-version", "2018-02-01")
                    .query("resource", resource)
                    .header("Metadata", "true");
                r = match &self.user_assigned {
                    Some(UserAssigned::ClientId(v)) => r.query("client_id", v),
                    Some(UserAssigned::ObjectId(v)) => r.query("object_id", v),
                    Some(UserAssigned::ResourceId(v)) => r.query("msi_res_id", v),
                    None => r,
                };
                (r, false)
            }
            Endpoint::AppService { url, header } => {
                let mut r = Request::get("app_service.token", url.clone())
                    .query("api-version", "2019-08-01")
                    .query("resource", resource)
                    .header("X-IDENTITY-HEADER", header.expose());
                r = match &self.user_assigned {
                    Some(UserAssigned::ClientId(v)) => r.query("client_id", v),
                    Some(UserAssigned::ObjectId(v)) => r.query("principal_id", v),
                    Some(UserAssigned::ResourceId(v)) => r.query("mi_res_id", v),
                    None => r,
                };
                (r, true)
            }
        };
        let resp = self
            .transport
            .send(req.unauthenticated().no_redirects(), cancel)
            .await
            .map_err(|e| match entra_error(e) {
                ConnectorError::Auth {
                    env,
                    call,
                    status,
                    message,
                } if message.contains("Identity not found") => ConnectorError::Auth {
                    env,
                    call,
                    status,
                    message: format!(
                        "{message}: this machine has no managed identity{} (assign one to the VM or app, or use another credential)",
                        if self.user_assigned.is_some() { " with that id" } else { "" }
                    ),
                },
                other => other,
            })?;
        let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            ConnectorError::bad_body("managed_identity", &resp.call, format!("invalid JSON: {e}"))
        })?;
        let access_token = v
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ConnectorError::bad_body("managed_identity", &resp.call, "no access_token"))?
            .to_owned();
        let num = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let expires_in = match (num("expires_in"), num("expires_on")) {
            (Some(s), _) if !app_service => s,
            (_, Some(on)) => on.saturating_sub(now),
            (Some(s), None) => s,
            (None, None) => {
                return Err(ConnectorError::bad_body(
                    "managed_identity",
                    &resp.call,
                    "neither expires_in nor expires_on",
                ));
            }
        };
        Ok(Fetched {
            access_token,
            expires_in,
        })
    }
}
