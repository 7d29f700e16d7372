//! Who a token says signed in, and the small JWT helpers the credential kinds share.
//!
//! The console only **decodes** a token's claims (for display and for the journal, and to compare the
//! signed-in user with the runbook's `approvals`); it never verifies the signature: the token came over
//! TLS from Entra ID (or from the Azure CLI on this machine) and the service it is sent to verifies it.
//! An allow-list checked this way stops a wrong person at this console; it is not a security boundary
//! against someone who controls the machine.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The person behind a delegated token (device code, Azure CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Identity {
    /// Object id of the user in the tenant (`oid`).
    pub oid: String,
    /// `upn`, else `preferred_username`, else `unique_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// Tenant id (`tid`).
    pub tid: String,
    /// Display name (`name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Group object ids (`groups`), for the approvers check; not journaled.
    #[serde(skip)]
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity a JWT's claims name, when it names a user (has `oid` and `tid`).
    pub fn from_jwt(token: &str) -> Option<Identity> {
        let c = jwt_claims(token)?;
        let s = |k: &str| c.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
        let upn = s("upn")
            .or_else(|| s("preferred_username"))
            .or_else(|| s("unique_name"));
        let groups = c
            .get("groups")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Some(Identity {
            oid: s("oid")?,
            upn,
            tid: s("tid")?,
            name: s("name"),
            groups,
        })
    }

    /// `alice@contoso.com (oid 1234…, tenant 5678…)`.
    pub fn label(&self) -> String {
        format!(
            "{} (oid {}, tenant {})",
            self.upn.as_deref().or(self.name.as_deref()).unwrap_or("?"),
            self.oid,
            self.tid
        )
    }
}

/// The claims of a JWT (`header.payload.signature`), decoded, not verified.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

/// base64url without padding (JWT segments).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url with or without padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_from_the_claims_of_a_user_token() {
        let payload = serde_json::json!({"oid": "o-1", "tid": "t-1", "preferred_username": "alice@contoso.com",
            "name": "Alice", "groups": ["g-1"]});
        let jwt = format!("{}.{}.sig", b64url(b"{}"), b64url(payload.to_string().as_bytes()));
        let id = Identity::from_jwt(&jwt).unwrap();
        assert_eq!(id.upn.as_deref(), Some("alice@contoso.com"));
        assert_eq!(id.groups, vec!["g-1"]);
        assert_eq!(id.label(), "alice@contoso.com (oid o-1, tenant t-1)");
        let app = format!("{}.{}.sig", b64url(b"{}"), b64url(br#"{"tid":"t"}"#));
        assert!(Identity::from_jwt(&app).is_none());
        assert!(Identity::from_jwt("sim.abc").is_none());
    }
}
