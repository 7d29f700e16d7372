//! Who a token says signed in.
//!
//! The console only **decodes** a token's claims (for display and for the journal, and to compare the
//! signed-in user with the runbook's `approvals`); it never verifies the signature: the token came over
//! TLS from Entra ID (or from the Azure CLI on this machine) and the service it is sent to verifies it.
//! An allow-list checked this way stops a wrong person at this console; it is not a security boundary
//! against someone who controls the machine.

use crate::model::Identity;
use crate::util::b64url_decode;

/// The identity a JWT's claims name, when it names a user (has `oid` and `tid`).
pub fn identity_of(token: &str) -> Option<Identity> {
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

/// The claims of a JWT (`header.payload.signature`), decoded, not verified.
pub fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    serde_json::from_slice(&b64url_decode(payload)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::b64url;

    #[test]
    fn identity_from_the_claims_of_a_user_token() {
        let payload = serde_json::json!({"oid": "o-1", "tid": "t-1", "preferred_username": "alice@contoso.com",
            "name": "Alice", "groups": ["g-1"]});
        let jwt = format!("{}.{}.sig", b64url(b"{}"), b64url(payload.to_string().as_bytes()));
        let id = identity_of(&jwt).unwrap();
        assert_eq!(id.upn.as_deref(), Some("alice@contoso.com"));
        assert_eq!(id.groups, vec!["g-1"]);
        assert_eq!(id.label(), "alice@contoso.com (oid o-1, tenant t-1)");
        let app = format!("{}.{}.sig", b64url(b"{}"), b64url(br#"{"tid":"t"}"#));
        assert!(identity_of(&app).is_none());
        assert!(identity_of("sim.abc").is_none());
    }
}
