//! `credential: device_code`: a person signs in with the device authorization grant (wire-facts A3, A5):
//! `POST {authority}/{tenant}/oauth2/v2.0/devicecode` gives a user code and a URL, shown to the operator
//! (the console's log pane, and one line on stderr); the console then polls the token endpoint with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` every `interval` seconds (5 more after
//! `slow_down`) until the person approves (`authorization_pending` meanwhile), declines
//! (`authorization_declined`) or the code expires (`expired_token`).
//!
//! The refresh token is kept in a cache file outside the journal ([`cache_path`], mode 0600 in a 0700
//! directory; a file others can read is refused), keyed by authority, tenant and client id, and used for
//! every later token (`grant_type=refresh_token`, rotated when Entra returns a new one). `cutover login ENV`
//! signs in ahead of the weekend; `cutover logout` deletes the file. No token, code or refresh token is
//! ever printed or journaled: the device code and every token are handed to the redactor as they arrive.
//!
//! The dual-write gateway's acceptance of such a token for `https://IntegratorApp.com` is **our model**:
//! Microsoft's tool signs in through the browser (wire-facts E5).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::super::transport::{Body, Idempotency, Request};
use super::super::{ConnectorError, Result, parse};
use super::{Fetched, TokenSource, entra_error};

/// The device-code grant type (the URN form every client accepts).
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the operator is shown to sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrompt {
    /// Which sign-in this is (the runbook environment, or `login`).
    pub what: String,
    pub verification_uri: String,
    pub user_code: String,
    pub expires_in: u64,
}

impl DevicePrompt {
    /// The one line shown (stderr in headless mode, the log pane in the console): the code first, so a
    /// narrow pane still shows it.
    pub fn line(&self) -> String {
        format!(
            "sign-in code {} at {} for {} (expires in {} min)",
            self.user_code,
            self.verification_uri,
            self.what,
            self.expires_in.div_ceil(60)
        )
    }
}

/// Receives the sign-in prompt.
pub type Prompt = Arc<dyn Fn(&DevicePrompt) + Send + Sync>;

/// One app registration's device-code sign-in (shared by the environments that use it).
pub struct DeviceCode {
    /// `authority|tenant|client_id`.
    key: String,
    what: String,
    cache: Option<PathBuf>,
    prompt: Prompt,
    /// Held across a sign-in so two environments needing it at once sign in once.
    signing_in: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl DeviceCode {
    /// `cache`: the refresh-token file (`None` keeps nothing: a sign-in per process).
    pub fn new(
        authority: &str,
        tenant: &str,
        client_id: &str,
        what: &str,
        cache: Option<PathBuf>,
        prompt: Prompt,
    ) -> Self {
        Self {
            key: cache_key(authority, tenant, client_id),
            what: what.to_owned(),
            cache,
            prompt,
            signing_in: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) async fn fetch(&self, src: &TokenSource, cancel: &CancellationToken) -> Result<Fetched> {
        let _one = self.signing_in.lock().await;
        let scope = format!("{} openid profile offline_access", src.credentials().scope);
        if let Some(rt) = self.cached_refresh_token()? {
            src.redact(&rt);
            match self.refresh(src, &rt, &scope, cancel).await {
                Ok(f) => return Ok(f),
                Err(ConnectorError::Auth { message, .. }) if message.starts_with("invalid_grant") => {
                    // Expired or revoked: forget it and sign in again.
                    self.store(None)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.sign_in(src, &scope, cancel).await
    }

    async fn refresh(
        &self,
        src: &TokenSource,
        rt: &str,
        scope: &str,
        cancel: &CancellationToken,
    ) -> Result<Fetched> {
        let form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("client_id".to_owned(), src.credentials().client_id.clone()),
            ("refresh_token".to_owned(), rt.to_owned()),
            ("scope".to_owned(), scope.to_owned()),
            ("client_info".to_owned(), "1".to_owned()),
        ];
        let req = Request::post(
            "entra.token",
            format!("/{}/oauth2/v2.0/token", src.credentials().tenant),
        )
        .body(Body::Form(form))
        .idempotency(Idempotency::Safe)
        .unauthenticated()
        .no_redirects();
        let resp = src.entra().send(req, cancel).await.map_err(entra_error)?;
        self.accept(src, &resp.body, &resp.call)
    }

    async fn sign_in(&self, src: &TokenSource, scope: &str, cancel: &CancellationToken) -> Result<Fetched> {
        let c = src.credentials();
        let req = Request::post(
            "entra.devicecode",
            format!("/{}/oauth2/v2.0/devicecode", c.tenant),
        )
        .body(Body::Form(vec![
            ("client_id".to_owned(), c.client_id.clone()),
            ("scope".to_owned(), scope.to_owned()),
        ]))
        .idempotency(Idempotency::Safe)
        .unauthenticated()
        .no_redirects();
        let resp = src.entra().send(req, cancel).await.map_err(entra_error)?;
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| ConnectorError::bad_body("entra", &resp.call, format!("invalid JSON: {e}")))?;
        let text = |k: &str| v.get(k).and_then(parse::scalar_string);
        let (Some(device_code), Some(user_code), Some(uri)) = (
            text("device_code"),
            text("user_code"),
            text("verification_uri").or_else(|| text("verification_url")),
        ) else {
            return Err(ConnectorError::bad_body(
                "entra",
                &resp.call,
                "the device authorization answer lacks device_code, user_code or verification_uri",
            ));
        };
        src.redact(&device_code);
        let num = |k: &str, d: u64| text(k).and_then(|s| s.parse().ok()).unwrap_or(d);
        let expires_in = num("expires_in", 900);
        let mut interval = num("interval", 5).max(1);
        (self.prompt)(&DevicePrompt {
            what: self.what.clone(),
            verification_uri: uri,
            user_code,
            expires_in,
        });
        let deadline = Instant::now() + Duration::from_secs(expires_in);
        let auth = |message: String| ConnectorError::Auth {
            env: "entra".into(),
            call: "device code sign-in".into(),
            status: Some(400),
            message,
        };
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Err(ConnectorError::Cancelled { env: "entra".into(), call: "device code sign-in".into() }),
                () = tokio::time::sleep(Duration::from_secs(interval)) => {}
            }
            let req = Request::post("entra.token", format!("/{}/oauth2/v2.0/token", c.tenant))
                .body(Body::Form(vec![
                    ("grant_type".to_owned(), GRANT.to_owned()),
                    ("client_id".to_owned(), c.client_id.clone()),
                    ("device_code".to_owned(), device_code.clone()),
                ]))
                .idempotency(Idempotency::Safe)
                .unauthenticated()
                .no_redirects();
            let resp = src.entra().send_any(req, cancel).await?;
            if (200..300).contains(&resp.status) {
                return self.accept(src, &resp.body, &resp.call);
            }
            let msg = parse::error_message(&resp.body).unwrap_or_default();
            match msg.code.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += 5,
                "authorization_declined" => {
                    return Err(auth(format!(
                        "the sign-in was declined ({}): nobody is signed in",
                        msg.code
                    )));
                }
                "expired_token" | "code_expired" => {
                    return Err(auth(format!(
                        "the code expired before anyone signed in ({}); run `cutover login` and sign in within {} min",
                        msg.code,
                        expires_in.div_ceil(60)
                    )));
                }
                _ => return Err(entra_error(src.entra().status_error(&resp))),
            }
            if Instant::now() >= deadline {
                return Err(auth("the code expired before anyone signed in".into()));
            }
        }
    }

    /// Reads a token answer: keeps a new refresh token, hands every secret to the redactor.
    fn accept(&self, src: &TokenSource, body: &[u8], call: &str) -> Result<Fetched> {
        let parsed = parse::token_response(body).map_err(|e| ConnectorError::bad_body("entra", call, e.0))?;
        src.redact(&parsed.access_token);
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        for k in ["id_token", "refresh_token"] {
            if let Some(t) = v.get(k).and_then(serde_json::Value::as_str) {
                src.redact(t);
            }
        }
        if let Some(rt) = v.get("refresh_token").and_then(serde_json::Value::as_str) {
            self.store(Some(rt))?;
        }
        Ok(Fetched {
            access_token: parsed.access_token,
            expires_in: parsed.expires_in,
        })
    }

    fn cached_refresh_token(&self) -> Result<Option<String>> {
        let Some(path) = &self.cache else { return Ok(None) };
        let file = read_cache(path).map_err(|d| self.config(d))?;
        Ok(file.accounts.get(&self.key).map(|a| a.refresh_token.clone()))
    }

    fn store(&self, rt: Option<&str>) -> Result<()> {
        let Some(path) = &self.cache else { return Ok(()) };
        let mut file = read_cache(path).map_err(|d| self.config(d))?;
        match rt {
            Some(rt) => {
                file.accounts.insert(
                    self.key.clone(),
                    Account {
                        refresh_token: rt.to_owned(),
                    },
                );
            }
            None => {
                file.accounts.remove(&self.key);
            }
        }
        write_cache(path, &file).map_err(|d| self.config(d))
    }

    fn config(&self, detail: String) -> ConnectorError {
        ConnectorError::Config {
            env: "device_code".into(),
            detail,
        }
    }
}

/// Whether the cache file at `path` holds a sign-in under `key` (read-only: nothing is refreshed or written).
pub fn is_signed_in(path: &Path, key: &str) -> std::result::Result<bool, String> {
    Ok(read_cache(path)?.accounts.contains_key(key))
}

/// The cache key of one app registration's sign-in.
pub fn cache_key(authority: &str, tenant: &str, client_id: &str) -> String {
    format!("{}|{tenant}|{client_id}", authority.trim_end_matches('/'))
}

/// The refresh-token cache file: `$CUTOVER_TOKEN_CACHE` when set; else `cutover/tokens.json` in the
/// user's cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux and other Unix systems,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows).
pub fn cache_path() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("CUTOVER_TOKEN_CACHE") {
        return Some(p);
    }
    let dir = if cfg!(windows) {
        var("LOCALAPPDATA")?
    } else if cfg!(target_os = "macos") {
        var("HOME")?.join("Library").join("Caches")
    } else {
        var("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|h| h.join(".cache")))?
    };
    Some(dir.join("cutover").join("tokens.json"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    #[serde(default)]
    accounts: BTreeMap<String, Account>,
}

#[derive(Serialize, Deserialize)]
struct Account {
    refresh_token: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Account([REDACTED])")
    }
}

fn read_cache(path: &Path) -> std::result::Result<CacheFile, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
        Err(e) => return Err(format!("cannot read the token cache {}: {e}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(format!(
                "the token cache {} can be read by others (mode {:o}): refusing it; delete it (`cutover logout`) and sign in again",
                path.display(),
                mode & 0o777
            ));
        }
    }
    serde_json::from_slice(&bytes).map_err(|_| {
        format!(
            "the token cache {} is not readable: delete it with `cutover logout`",
            path.display()
        )
    })
}

fn write_cache(path: &Path, file: &CacheFile) -> std::result::Result<(), String> {
    let dir = path.parent().ok_or("the token cache path has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let tmp = dir.join(format!(".tokens.{}.tmp", std::process::id()));
    let text = serde_json::to_vec(file).map_err(|e| format!("cannot encode the token cache: {e}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = opts.open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write the token cache {}: {e}", path.display())
    })
}

/// `cutover logout`: forgets one sign-in (`key`), or every sign-in (deletes the file). Returns whether
/// anything was removed.
pub fn logout(path: &Path, key: Option<&str>) -> std::result::Result<bool, String> {
    match key {
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("cannot delete {}: {e}", path.display())),
        },
        Some(k) => {
            let mut file = read_cache(path)?;
            let removed = file.accounts.remove(k).is_some();
            if removed {
                write_cache(path, &file)?;
            }
            Ok(removed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_is_0600_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c").join("tokens.json");
        let mut f = CacheFile::default();
        f.accounts.insert(
            "k".into(),
            Account {
                refresh_token: "rt-secret-value".into(),
            },
        );
        write_cache(&path, &f).unwrap();
        assert_eq!(
            read_cache(&path).unwrap().accounts["k"].refresh_token,
            "rt-secret-value"
        );
        assert!(!format!("{f:?}").contains("rt-secret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(read_cache(&path).unwrap_err().contains("can be read by others"));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(logout(&path, Some("k")).unwrap());
        assert!(read_cache(&path).unwrap().accounts.is_empty());
        assert!(logout(&path, None).unwrap());
        assert!(!logout(&path, None).unwrap());
    }
}
