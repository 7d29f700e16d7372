//! Azure Key Vault keys: a key's public half (`GET {vault}/keys/{name}[/{version}]`) and a signature of a
//! digest by it (`POST {vault}/keys/{name}/{version}/sign`), for checkpoints signed in the vault.
//!
//! Microsoft Learn: [Get Key](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/get-key/get-key)
//! answers `{"key": {"kid", "kty", "crv", "x", "y", "key_ops"}, "attributes"}`;
//! [Sign](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/sign/sign) takes
//! `{"alg": "ES256", "value": <base64url SHA-256 digest>}` and answers `{"kid", "value": <base64url
//! signature>}`, an ES256 signature being the raw 64-byte R || S; errors are `{"error": {"code",
//! "message"}}` ([error codes](https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes)).
//! The token's scope is `https://vault.azure.net/.default`.

use base64::Engine as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::request::{Idempotency, Request};
use super::transport::Transport;
use super::{ConnectorError, Result};

/// The algorithm of the signatures asked for.
pub const ES256: &str = "ES256";

/// The data-plane API version the calls name.
pub const API_VERSION: &str = "7.4";

/// A key as `GET key` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultKey {
    /// `https://NAME.vault.azure.net/keys/KEY/VERSION`.
    pub kid: String,
    /// The version (the kid's last segment).
    pub version: String,
    /// The public JWK's `kty`, `crv`, `x` and `y` (base64url), as the vault gave them.
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub key_ops: Vec<String>,
}

/// A vault's keys.
#[derive(Debug, Clone)]
pub struct KeyVaultClient {
    t: Transport,
}

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl KeyVaultClient {
    pub fn new(t: Transport) -> Self {
        Self { t }
    }

    pub fn env(&self) -> &str {
        self.t.env()
    }

    /// The key `name` (its current version when `version` is `None`): an EC P-256 key that may sign.
    pub async fn get_key(
        &self,
        name: &str,
        version: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<VaultKey> {
        let path = match version {
            Some(v) => format!("keys/{name}/{v}"),
            None => format!("keys/{name}"),
        };
        let resp = self
            .t
            .send(
                Request::get("keyvault.get_key", path).query("api-version", API_VERSION),
                cancel,
            )
            .await?;
        let call = "keyvault.get_key";
        let bad = |detail: String| ConnectorError::bad_body(self.t.env(), call, detail);
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| bad(format!("not JSON: {e}")))?;
        let key = v.get("key").ok_or_else(|| bad("no `key` in the answer".into()))?;
        let kid = key
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the key has no `kid`".into()))?
            .to_owned();
        let field = |k: &str| key.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (kty, crv) = (field("kty"), field("crv"));
        if !kty.starts_with("EC") || crv != "P-256" {
            return Err(ConnectorError::Service {
                env: self.t.env().to_owned(),
                call: call.into(),
                status: 200,
                code: "KeyTypeNotSupported".into(),
                message: format!(
                    "key `{name}` is a {kty} {crv} key: checkpoints are signed with ES256 and need an EC key on P-256"
                ),
            });
        }
        let key_ops: Vec<String> = key
            .get("key_ops")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if !key_ops.is_empty() && !key_ops.iter().any(|o| o == "sign") {
            return Err(ConnectorError::Service {
                env: self.t.env().to_owned(),
                call: call.into(),
                status: 200,
                code: "KeyOperationNotAllowed".into(),
                message: format!(
                    "key `{name}` does not allow `sign` (its key_ops: {})",
                    key_ops.join(", ")
                ),
            });
        }
        let version = kid
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(VaultKey {
            kid,
            version,
            kty,
            crv,
            x: field("x"),
            y: field("y"),
            key_ops,
        })
    }

    /// The ES256 signature (raw 64-byte R || S) of a SHA-256 `digest` by key `name`/`version`.
    pub async fn sign_es256(
        &self,
        name: &str,
        version: &str,
        digest: &[u8; 32],
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>> {
        let call = "keyvault.sign";
        let req = Request::post(call, format!("keys/{name}/{version}/sign"))
            .query("api-version", API_VERSION)
            .json(json!({"alg": ES256, "value": b64url().encode(digest)}))
            // A signature changes nothing in the vault: asking again is safe.
            .idempotency(Idempotency::Safe);
        let resp = self.t.send(req, cancel).await?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| ConnectorError::bad_body(self.t.env(), call, format!("not JSON: {e}")))?;
        let sig = v
            .get("value")
            .and_then(Value::as_str)
            .and_then(|s| b64url().decode(s.trim_end_matches('=')).ok())
            .ok_or_else(|| {
                ConnectorError::bad_body(self.t.env(), call, "no base64url `value` in the answer")
            })?;
        if sig.len() != 64 {
            return Err(ConnectorError::bad_body(
                self.t.env(),
                call,
                format!("an ES256 signature is 64 bytes (R || S), this one {}", sig.len()),
            ));
        }
        Ok(sig)
    }
}
