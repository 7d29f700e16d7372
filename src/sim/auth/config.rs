//! The scenario's directory: which app registrations (principals, with their secrets, certificates and
//! federated credentials), users (and their groups) and managed identities exist, and how the device
//! authorization grant paces its callers. Described for users in `docs/simulator.md`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An app registration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub client_id: String,
    /// A client secret the app accepts.
    #[serde(default)]
    pub secret: Option<String>,
    /// The secret's end date in the app registration: after it (Entra's clock, `auth.clock_skew` ahead of
    /// this machine) the secret is refused with 401 `invalid_client` AADSTS7000222.
    #[serde(default)]
    pub secret_expires: Option<DateTime<Utc>>,
    /// Certificates registered on the app (its key credentials).
    #[serde(default)]
    pub certificates: Vec<RegisteredCertificate>,
    /// Federated credentials (workload identity): the `iss` and `sub` of an accepted assertion.
    #[serde(default)]
    pub federated: Vec<FederatedCredential>,
    /// Device-code and refresh grants are allowed (a public client).
    #[serde(default)]
    pub public_client: bool,
}

/// A certificate registered on an app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredCertificate {
    /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub pem: String,
    /// The key credential's end date in the app registration (Entra refuses the key after it, whatever
    /// the certificate itself says). Default: the certificate's `notAfter`.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
}

/// A federated identity credential of an app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
}

/// A user of the tenant.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub upn: String,
    /// Object id (default: derived from the UPN).
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Group object ids the user is a member of (the token's `groups` claim).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The managed identities assigned to the "machine" the console runs on.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentities {
    /// The system-assigned identity.
    #[serde(default)]
    pub system: Option<IdentityIds>,
    #[serde(default)]
    pub user_assigned: Vec<IdentityIds>,
    /// The App Service identity endpoint's header secret (`X-IDENTITY-HEADER`); default `sim-identity-header`.
    #[serde(default)]
    pub header: Option<String>,
}

/// The ids of a managed identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityIds {
    pub client_id: String,
    #[serde(default)]
    pub object_id: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
}

/// The device authorization grant's pace.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCodeConfig {
    /// Seconds between polls the client must keep (faster polls get `slow_down`). Real Entra: 5 (observed).
    #[serde(default = "five")]
    pub interval: u64,
    /// Seconds a code lives. Real Entra: 900.
    #[serde(default = "fifteen_minutes")]
    pub expires_in: u64,
    /// The URL shown to the user. Real Entra: `https://microsoft.com/devicelogin` (observed).
    #[serde(default = "devicelogin")]
    pub verification_uri: String,
}

impl Default for DeviceCodeConfig {
    fn default() -> Self {
        Self {
            interval: five(),
            expires_in: fifteen_minutes(),
            verification_uri: devicelogin(),
        }
    }
}

fn five() -> u64 {
    5
}
fn fifteen_minutes() -> u64 {
    900
}
fn devicelogin() -> String {
    "https://microsoft.com/devicelogin".into()
}
