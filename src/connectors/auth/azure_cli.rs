//! `credential: azure_cli`: the token of the account signed in to the Azure CLI (`az login`), asked with
//! `az account get-access-token --output json --resource R [--tenant T]` (wire-facts A9) whenever the
//! cached one is about to expire. Only the resource (and tenant) go on the child's command line; the
//! token comes back on its stdout, which is parsed and never logged. `expires_on` (epoch seconds) is
//! preferred; older CLIs print only `expiresOn`, a local time without zone.

use std::process::Stdio;
use std::time::Duration;

use chrono::{Local, NaiveDateTime, TimeZone as _};
use tokio_util::sync::CancellationToken;

use super::super::{ConnectorError, Result};
use super::Fetched;

/// How long one `az` call may take (azure-identity waits 10 s; a cold CLI on a jump box is slower).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The Azure CLI credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureCli {
    /// `--tenant`, when the runbook names one.
    pub tenant: Option<String>,
    /// The program (`az`, found on PATH).
    pub program: String,
}

impl AzureCli {
    pub fn new(tenant: Option<String>) -> Self {
        Self {
            tenant,
            program: "az".into(),
        }
    }

    pub async fn fetch(&self, resource: &str, cancel: &CancellationToken) -> Result<Fetched> {
        let err = |detail: String| ConnectorError::Auth {
            env: "azure_cli".into(),
            call: "az account get-access-token".into(),
            status: None,
            message: detail,
        };
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args([
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            resource,
        ]);
        if let Some(t) = &self.tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ConnectorError::Config {
                    env: "azure_cli".into(),
                    detail: "the Azure CLI (`az`) is not installed or not on PATH".into(),
                }
            } else {
                err(format!("cannot start `az`: {e}"))
            }
        })?;
        let out = tokio::select! {
            () = cancel.cancelled() => return Err(ConnectorError::Cancelled { env: "azure_cli".into(), call: "az".into() }),
            r = tokio::time::timeout(TIMEOUT, child.wait_with_output()) => match r {
                Ok(o) => o.map_err(|e| err(format!("`az` failed: {e}")))?,
                Err(_) => return Err(err(format!("`az` did not answer within {} s", TIMEOUT.as_secs()))),
            },
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first: String = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            let hint = if stderr.contains("az login") || stderr.contains("az account set") {
                " (sign in with `az login` first)"
            } else {
                ""
            };
            return Err(err(format!("`az` exited with {}: {first}{hint}", out.status)));
        }
        parse(&out.stdout, chrono::Utc::now().timestamp()).map_err(err)
    }
}

/// Reads `az account get-access-token --output json` (the token and its expiry).
pub fn parse(stdout: &[u8], now: i64) -> std::result::Result<Fetched, String> {
    let v: serde_json::Value =
        serde_json::from_slice(stdout).map_err(|_| "`az` printed something that is not JSON".to_owned())?;
    let access_token = v
        .get("accessToken")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("`az` printed no accessToken")?
        .to_owned();
    let on = match v.get("expires_on") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .or_else(|| {
        let text = v.get("expiresOn")?.as_str()?;
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.timestamp())
    })
    .ok_or("`az` printed neither expires_on nor a readable expiresOn")?;
    Ok(Fetched {
        access_token,
        expires_in: u64::try_from(on.saturating_sub(now)).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_from_expires_on_else_the_local_expires_on_text() {
        let f = parse(
            br#"{"accessToken":"t0k3n-value","expires_on":1000,"tokenType":"Bearer"}"#,
            400,
        )
        .unwrap();
        assert_eq!((f.access_token.as_str(), f.expires_in), ("t0k3n-value", 600));
        let local = Local::now() + chrono::Duration::seconds(120);
        let text = local.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        let body = serde_json::json!({"accessToken": "x", "expiresOn": text}).to_string();
        let f = parse(body.as_bytes(), Local::now().timestamp()).unwrap();
        assert!((110..=121).contains(&f.expires_in), "{}", f.expires_in);
        assert!(parse(b"{}", 0).is_err());
        assert!(parse(b"not json", 0).unwrap_err().contains("not JSON"));
    }
}
