//! `cutover preflight`: read-only checks of a runbook's environments, safe a week before the weekend and again
//! on Friday afternoon. Each check is one module with one `run` that returns its lines; [`Check`] is the
//! registry (the only `match` over the checks), run in its order because later checks use what earlier ones
//! learned (a token per environment, then the answers that carried the clock and the rate-limit headers).
//!
//! Nothing here writes to an environment: every call is a GET (or a HEAD to a webhook) plus the token
//! requests. A check that cannot ask because what it needs failed earlier says `skipped` and why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;

use crate::connectors::transport::{RetryPolicy, Transport};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::{CredentialKind, DualWriteMode, EnvKind, EnvLookup, Runbook};

mod automation;
mod clock;
mod dmf;
mod dualwrite;
mod entities;
mod envs;
mod headroom;
mod install_table;
mod lookups;
mod packages;
mod reach;
mod token;
mod values;
mod webhook;

/// What a preflight needs: the runbook, where it lives, how to resolve its `${VAR}`s, and where the
/// environments are.
pub struct PreflightOptions<'a> {
    pub runbook: &'a Runbook,
    /// The runbook's directory (package files are relative to it).
    pub dir: PathBuf,
    /// The runbook file as given (for the fixes that name it: `cutover login ENV --runbook FILE`).
    pub file: String,
    pub vars: &'a dyn EnvLookup,
    /// `--sim`/`--sim-url`: every environment's requests and tokens go to this base URL.
    pub sim_url: Option<String>,
    /// `--create-install-table`: create a missing Dataverse install table (never done otherwise).
    pub create_install_table: bool,
}

/// One environment as the checks see it.
pub struct Env {
    pub kind: EnvKind,
    pub mode: DualWriteMode,
    pub credential: Option<CredentialKind>,
    /// The transport, or why there is none (an unset variable, a bad URL, no `url`).
    pub transport: Result<Transport, String>,
    /// For a device-code sign-in: the token-cache key (authority, tenant, client id).
    pub device_key: Option<String>,
    /// Set by the token check: the environment's token was obtained (`Err`: why not).
    pub token: Option<Result<(), String>>,
    /// Set by the reach check: the answer's headers and the local time half-way through the call.
    pub answer: Option<(HeaderMap, DateTime<Utc>)>,
}

/// What the checks share.
pub struct Ctx<'a> {
    pub opts: &'a PreflightOptions<'a>,
    pub envs: BTreeMap<String, Env>,
    pub client: reqwest::Client,
    pub policy: RetryPolicy,
    pub cancel: CancellationToken,
}

impl Ctx<'_> {
    /// The environment's transport when its token was obtained, else the `skipped` line's reason.
    pub fn ready(&self, env: &str) -> Result<&Transport, String> {
        let e = self
            .envs
            .get(env)
            .ok_or_else(|| format!("the runbook has no environment `{env}`"))?;
        match (&e.transport, &e.token) {
            (Err(why), _) => Err(format!("environment `{env}`: {why}")),
            (Ok(t), Some(Ok(())) | None) if e.credential.is_none() => Ok(t),
            (Ok(t), Some(Ok(()))) => Ok(t),
            (Ok(_), _) => Err(format!("no token for `{env}` (see its token check)")),
        }
    }
}

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Token,
    Reach,
    Entities,
    Values,
    Lookups,
    Automation,
    DmfGroups,
    Packages,
    InstallTable,
    DualWrite,
    Webhook,
    Clock,
    Headroom,
}

impl Check {
    pub const ALL: [Check; 13] = [
        Check::Token,
        Check::Reach,
        Check::Entities,
        Check::Values,
        Check::Lookups,
        Check::Automation,
        Check::DmfGroups,
        Check::Packages,
        Check::InstallTable,
        Check::DualWrite,
        Check::Webhook,
        Check::Clock,
        Check::Headroom,
    ];

    async fn run(self, cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
        match self {
            Check::Token => token::run(cx).await,
            Check::Reach => reach::run(cx).await,
            Check::Entities => entities::run(cx).await,
            Check::Values => values::run(cx).await,
            Check::Lookups => lookups::run(cx).await,
            Check::Automation => automation::run(cx).await,
            Check::DmfGroups => dmf::run(cx).await,
            Check::Packages => packages::run(cx),
            Check::InstallTable => install_table::run(cx).await,
            Check::DualWrite => dualwrite::run(cx).await,
            Check::Webhook => webhook::run(cx).await,
            Check::Clock => clock::run(cx),
            Check::Headroom => headroom::run(cx),
        }
    }
}

/// A line of the outcome.
pub fn line(
    check: &str,
    subject: impl Into<String>,
    status: CheckStatus,
    message: impl Into<String>,
) -> PreflightCheck {
    PreflightCheck {
        check: check.to_owned(),
        subject: subject.into(),
        status,
        message: message.into(),
        fix: None,
    }
}

/// A line with what to do about it.
pub fn fix(mut c: PreflightCheck, fix: impl Into<String>) -> PreflightCheck {
    c.fix = Some(fix.into());
    c
}

/// Why the preflight could not start at all (the HTTP client could not be built).
#[derive(Debug, thiserror::Error)]
#[error("preflight: {0}")]
pub struct PreflightError(String);

/// Runs every check against the runbook's environments (or the simulator) and returns their lines in order.
pub async fn run(
    opts: &PreflightOptions<'_>,
    cancel: CancellationToken,
) -> Result<Vec<PreflightCheck>, PreflightError> {
    let client = crate::connectors::transport::client()
        .map_err(|e| PreflightError(format!("cannot build the HTTP client: {e}")))?;
    let policy = RetryPolicy {
        retries: 1,
        timeout: std::time::Duration::from_secs(30),
        ..RetryPolicy::default()
    };
    let envs = envs::build(opts, &client, &policy);
    let mut cx = Ctx {
        opts,
        envs,
        client,
        policy,
        cancel,
    };
    let mut out = Vec::new();
    for check in Check::ALL {
        out.extend(check.run(&mut cx).await);
    }
    Ok(out)
}

/// The worst status of the lines (a `skipped` line counts as ok: the line it depends on carries the error).
pub fn worst(checks: &[PreflightCheck]) -> CheckStatus {
    checks
        .iter()
        .map(|c| match c.status {
            CheckStatus::Skipped => CheckStatus::Ok,
            s => s,
        })
        .max()
        .unwrap_or(CheckStatus::Ok)
}

/// `https://host/…`: a URL shown without its path and query (a webhook's path is its secret).
pub fn origin_only(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "(not a URL)".to_owned(),
        |u| format!("{}/…", u.origin().ascii_serialization()),
    )
}
