//! The Azure Key Vault stand-in: a vault's keys (`GET /keys/{name}[/{version}]`) and the `sign` operation
//! (`POST /keys/{name}/{version}/sign`), served under `/_keyvault` (a `keyvault` environment's requests go
//! there in `--sim` mode), as Microsoft Learn describes them:
//! [Get Key](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/get-key/get-key),
//! [Sign](https://learn.microsoft.com/en-us/rest/api/keyvault/keys/sign/sign) (the digest in, an ES256
//! signature as the raw 64-byte R || S out, both base64url), errors `{"error":{"code","message"}}` and the
//! 401 challenge without a token
//! ([error codes](https://learn.microsoft.com/en-us/azure/key-vault/general/rest-error-codes)).
//!
//! Our model (also in `docs/simulator.md`): every vault holds one EC P-256 key, `checkpoint-key`, derived from
//! the scenario's seed (one version); `POST /_sim/keyvault` adds keys or versions (`{"create": NAME}`), makes
//! the next sign calls fail (`{"fail_sign": N, "fail_status": 403|500}`), slows them (`{"sign_delay_ms": MS}`)
//! or clears that (`{"reset": true}`). `GET /_sim/keyvault` lists the keys, the signatures made and the bearer
//! tokens the vault accepted (so a test can look for them where they must not be).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::route::Ext;
use super::server::{App, header, json_error};

/// Key Vault's resource (the audience of its Entra tokens).
pub const RESOURCE: &str = "https://vault.azure.net";
/// The key every simulated vault holds.
pub const DEFAULT_KEY: &str = "checkpoint-key";

/// One version of a key.
struct Version {
    id: String,
    key: SigningKey,
}

/// The vault's keys and knobs.
#[derive(Default)]
pub struct Vault {
    /// Per key name, its versions (the last is current).
    keys: BTreeMap<String, Vec<Version>>,
    fail_sign: u64,
    fail_status: u16,
    sign_delay_ms: u64,
    signed: u64,
    tokens: Vec<String>,
    seeded: bool,
}

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

/// A P-256 key and a 32-hex-digit version id derived from (seed, name, n).
fn derive(seed: u64, name: &str, n: usize) -> Version {
    let mut counter = 0u32;
    loop {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(name.as_bytes());
        h.update(n.to_le_bytes());
        h.update(counter.to_le_bytes());
        let bytes: [u8; 32] = h.finalize().into();
        if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
            let id = hex::encode(&Sha256::digest([&bytes[..], b"version"].concat())[..16]);
            return Version { id, key };
        }
        counter += 1;
    }
}

impl Vault {
    fn seed(&mut self, seed: u64) {
        if !self.seeded {
            self.seeded = true;
            self.keys
                .insert(DEFAULT_KEY.into(), vec![derive(seed, DEFAULT_KEY, 0)]);
        }
    }
}

fn vault(app: &App) -> std::sync::MutexGuard<'_, Vault> {
    app.keyvault
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_error(status, code, message)
}

/// 401 with the challenge Key Vault sends: where to get a token, and for which resource.
fn unauthorized(app: &App, message: &str) -> Response {
    let tenant = super::entra_meta::tenant_id(app);
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
    let www = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{tenant}\", resource=\"{RESOURCE}\""
    );
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

/// The bearer token, valid and for Key Vault, else the 401.
fn check(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
    else {
        return Err(unauthorized(
            app,
            "AKV10000: Request is missing a Bearer or PoP token.",
        ));
    };
    let ok = app.with(|st| {
        st.tokens
            .get(token)
            .is_some_and(|t| std::time::Instant::now() < t.expires && t.audience == RESOURCE)
    });
    if !ok {
        return Err(unauthorized(app, "AKV10022: Invalid audience or expired token."));
    }
    let mut v = vault(app);
    if !v.tokens.iter().any(|t| t == token) {
        v.tokens.push(token.to_owned());
    }
    Ok(())
}

fn api_version(q: &BTreeMap<String, String>) -> Result<(), Response> {
    match q.get("api-version").map(String::as_str) {
        Some("7.4" | "7.5" | "7.6" | "2025-07-01") => Ok(()),
        Some(v) => Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (7.4)."
            ),
        )),
        None => Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The api-version query parameter is missing.",
        )),
    }
}

fn not_found(name: &str, version: Option<&str>) -> Response {
    let id = match version {
        Some(v) => format!("{name}/{v}"),
        None => name.to_owned(),
    };
    error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        &format!(
            "A key with (name/id) {id} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command."
        ),
    )
}

fn bundle(ext: &Ext, name: &str, v: &Version) -> Value {
    let point = v.key.verifying_key().to_encoded_point(false);
    let (x, y) = (
        point.x().map(|x| b64url().encode(x)),
        point.y().map(|y| b64url().encode(y)),
    );
    json!({
        "key": {
            "kid": format!("{}/keys/{name}/{}", ext.base, v.id),
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "key_ops": ["sign", "verify"],
        },
        "attributes": {"enabled": true, "created": 1_767_225_600, "updated": 1_767_225_600, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
    })
}

/// `GET /keys/{name}`: the current version.
pub async fn get_key(
    State(app): State<App>,
    ext: Ext,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    get(&app, &ext, &name, None, &q, &headers)
}

/// `GET /keys/{name}/{version}`.
pub async fn get_key_version(
    State(app): State<App>,
    ext: Ext,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    get(&app, &ext, &name, Some(&version), &q, &headers)
}

fn get(
    app: &App,
    ext: &Ext,
    name: &str,
    version: Option<&str>,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if let Err(r) = check(app, headers).and_then(|()| api_version(q)) {
        return r;
    }
    let mut v = vault(app);
    v.seed(app.seed);
    let found = v.keys.get(name).and_then(|vs| match version {
        None => vs.last(),
        Some(id) => vs.iter().find(|x| x.id == id),
    });
    match found {
        Some(k) => Json(bundle(ext, name, k)).into_response(),
        None => not_found(name, version),
    }
}

/// `POST /keys/{name}/{version}/sign`: `{"alg":"ES256","value":<b64url digest>}` → `{"kid","value"}`.
pub async fn sign(
    State(app): State<App>,
    ext: Ext,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check(&app, &headers).and_then(|()| api_version(&q)) {
        return r;
    }
    let delay = {
        let mut v = vault(&app);
        v.seed(app.seed);
        v.sign_delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                &format!("The request body is not valid JSON: {e}"),
            );
        }
    };
    let mut v = vault(&app);
    if v.fail_sign > 0 {
        v.fail_sign -= 1;
        return match v.fail_status {
            500 => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The service encountered an internal error. (simulated fault)",
            ),
            _ => error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "The user, group or application does not have keys sign permission on key vault '{}'. (simulated fault)",
                    ext.hostname()
                ),
            ),
        };
    }
    let Some(key) = v
        .keys
        .get(&name)
        .and_then(|vs| vs.iter().find(|x| x.id == version))
    else {
        return not_found(&name, Some(&version));
    };
    let alg = req.get("alg").and_then(Value::as_str).unwrap_or_default();
    if alg != "ES256" {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("Invalid algorithm '{alg}' for an EC key on curve P-256: use ES256."),
        );
    }
    let digest = req
        .get("value")
        .and_then(Value::as_str)
        .and_then(|s| b64url().decode(s.trim_end_matches('=')).ok());
    let Some(digest) = digest.filter(|d| d.len() == 32) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The value is not a base64url SHA-256 digest (32 bytes) as ES256 requires.",
        );
    };
    let sig: Signature = match key.key.sign_prehash(&digest) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BadParameter", &e.to_string()),
    };
    let kid = format!("{}/keys/{name}/{}", ext.base, key.id);
    v.signed += 1;
    Json(json!({"kid": kid, "value": b64url().encode(sig.to_bytes())})).into_response()
}

/// `GET /_sim/keyvault`: the keys (name, versions), the signatures made, the tokens accepted.
pub async fn inspect(State(app): State<App>) -> Response {
    let mut v = vault(&app);
    v.seed(app.seed);
    let keys: Vec<Value> = v
        .keys
        .iter()
        .map(|(n, vs)| json!({"name": n, "versions": vs.iter().map(|x| x.id.clone()).collect::<Vec<_>>()}))
        .collect();
    Json(json!({"keys": keys, "signed": v.signed, "tokens": v.tokens, "fail_sign": v.fail_sign}))
        .into_response()
}

/// `POST /_sim/keyvault`: `{"create": NAME, "fail_sign": N, "fail_status": 403|500, "sign_delay_ms": MS,
/// "reset": true}`, each optional.
pub async fn control(State(app): State<App>, body: Bytes) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let mut v = vault(&app);
    v.seed(app.seed);
    if req.get("reset").and_then(Value::as_bool) == Some(true) {
        v.fail_sign = 0;
        v.sign_delay_ms = 0;
    }
    if let Some(name) = req.get("create").and_then(Value::as_str) {
        let n = v.keys.get(name).map_or(0, Vec::len);
        let version = derive(app.seed, name, n);
        v.keys.entry(name.to_owned()).or_default().push(version);
    }
    if let Some(n) = req.get("fail_sign").and_then(Value::as_u64) {
        v.fail_sign = n;
    }
    if let Some(s) = req.get("fail_status").and_then(Value::as_u64) {
        v.fail_status = u16::try_from(s).unwrap_or(403);
    }
    if let Some(ms) = req.get("sign_delay_ms").and_then(Value::as_u64) {
        v.sign_delay_ms = ms;
    }
    StatusCode::NO_CONTENT.into_response()
}
