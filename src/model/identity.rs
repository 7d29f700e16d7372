//! Who a token said signed in: what a decision is journaled with when the operator signed in as a
//! person (device code, Azure CLI). Read from the token's claims by `connectors::auth::claims`.

use serde::{Deserialize, Serialize};

/// The person behind a delegated token (device code, Azure CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
