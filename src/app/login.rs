//! `cutover login ENV --runbook FILE` signs a person in for an environment whose `auth` is
//! `credential: device_code` (the code and URL on stderr), keeping the refresh token in the cache file
//! (`connectors::auth::device_code::cache_path`), so the run itself needs no sign-in; it prints who signed
//! in. `cutover logout` deletes the cache file (or, with `ENV --runbook FILE`, forgets that one sign-in).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::exit;
use crate::connectors::auth::{ClientCredentials, TokenCache, device_code, scope_for};
use crate::connectors::transport::RetryPolicy;
use crate::engine::envs_auth::{AuthCtx, env_auth};
use crate::journal::Redactor;
use crate::runbook::{CredentialKind, ProcessEnv};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The environment to sign in for (its `auth` must be `credential: device_code`).
    pub env: String,
    /// The runbook that declares the environment.
    #[arg(long)]
    pub runbook: PathBuf,
    /// Sign in at a simulator running at this URL instead of the runbook's authority.
    #[arg(long, value_name = "URL")]
    pub sim_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Forget only this environment's sign-in (with --runbook); without it every sign-in is forgotten.
    #[arg(requires = "runbook")]
    pub env: Option<String>,
    #[arg(long)]
    pub runbook: Option<PathBuf>,
    /// The authority was a simulator at this URL (as given to `login --sim-url`).
    #[arg(long, value_name = "URL")]
    pub sim_url: Option<String>,
}

fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {message}");
    code
}

/// The environment's `auth` and resolved URL, or an exit code.
fn env_of(runbook: &std::path::Path, env: &str) -> Result<(crate::runbook::Auth, Option<String>), i32> {
    let text = std::fs::read_to_string(runbook)
        .map_err(|e| fail(exit::INVALID, format!("{}: {e}", runbook.display())))?;
    let loaded = crate::runbook::load(&text, &runbook.display().to_string());
    let Some(rb) = loaded.runbook else {
        return Err(fail(
            exit::INVALID,
            format!(
                "{} is not a valid runbook (see `cutover validate`)",
                runbook.display()
            ),
        ));
    };
    let Some(e) = rb.environments.get(env) else {
        return Err(fail(
            exit::INVALID,
            format!("the runbook has no environment `{env}`"),
        ));
    };
    let Some(a) = e.auth.clone() else {
        return Err(fail(exit::INVALID, format!("environment `{env}` has no `auth`")));
    };
    if a.kind() != CredentialKind::DeviceCode {
        let what = if a.kind() == CredentialKind::AzureCli {
            "sign in with `az login`"
        } else {
            "there is nobody to sign in"
        };
        return Err(fail(
            exit::INVALID,
            format!(
                "environment `{env}` uses `credential: {}`: {what}",
                a.kind().name()
            ),
        ));
    }
    Ok((a, e.url.clone()))
}

pub fn run_login(args: &LoginArgs) -> i32 {
    let (auth, url) = match env_of(&args.runbook, &args.env) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ctx = crate::runbook::vars::VarContext {
        env: &ProcessEnv,
        run_id: String::new(),
        run_date: String::new(),
        run_operator: String::new(),
        captures: BTreeMap::new(),
        figures: BTreeMap::new(),
    };
    let resolve = |what: &str, t: &str| {
        crate::runbook::vars::interpolate(t, &ctx).map_err(|e| crate::engine::envs::EnvsError::Invalid {
            env: args.env.clone(),
            message: format!("{what}: {e}"),
        })
    };
    let redactor = Redactor::new();
    let policy = RetryPolicy::default();
    let mut device_codes = BTreeMap::new();
    let sim = args.sim_url.as_deref().map(|u| u.trim_end_matches('/'));
    let mut cx = AuthCtx {
        vars: &ProcessEnv,
        sim_url: sim,
        redactor: &redactor,
        emit: None,
        policy: &policy,
        device_codes: &mut device_codes,
        resolve: &resolve,
    };
    let ea = match env_auth(&args.env, &auth, &mut cx) {
        Ok(a) => a,
        Err(e) => return fail(exit::INVALID, e),
    };
    let scope = match (&ea.scope, url.as_deref().map(|u| resolve("url", u))) {
        (Some(s), _) => s.clone(),
        (None, Some(Ok(u))) => scope_for(&u),
        (None, Some(Err(e))) => return fail(exit::INVALID, e),
        (None, None) => {
            return fail(
                exit::INVALID,
                format!("environment `{}` has no url and no scope", args.env),
            );
        }
    };
    let authority = ea
        .authority
        .clone()
        .unwrap_or_else(|| crate::runbook::Auth::DEFAULT_AUTHORITY.to_owned());
    let client = match crate::connectors::transport::client() {
        Ok(c) => c,
        Err(e) => return fail(exit::FAILED, format!("cannot build the HTTP client: {e}")),
    };
    let tokens = TokenCache::new(client, policy, None, None);
    let creds = ClientCredentials::new(&authority, &ea.tenant, &ea.client_id, ea.credential, &scope);
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::FAILED, e),
    };
    let outcome = rt.block_on(async {
        let source = tokens.source(creds)?;
        source.identity(&CancellationToken::new()).await
    });
    match outcome {
        Ok(Some(id)) => {
            eprintln!("signed in for `{}` as {}", args.env, id.label());
            exit::OK
        }
        Ok(None) => {
            eprintln!("signed in for `{}` (the token names no user)", args.env);
            exit::OK
        }
        Err(e) => fail(exit::FAILED, e),
    }
}

pub fn run_logout(args: &LogoutArgs) -> i32 {
    let Some(path) = device_code::cache_path() else {
        return fail(
            exit::INVALID,
            "no cache directory (set HOME, XDG_CACHE_HOME or CUTOVER_TOKEN_CACHE)",
        );
    };
    let key = match (&args.env, &args.runbook) {
        (Some(env), Some(rb)) => {
            let (auth, _) = match env_of(rb, env) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let get = |t: &Option<String>| {
                t.as_deref()
                    .map(|t| {
                        crate::runbook::vars::interpolate(
                            t,
                            &crate::runbook::vars::VarContext {
                                env: &ProcessEnv,
                                run_id: String::new(),
                                run_date: String::new(),
                                run_operator: String::new(),
                                captures: BTreeMap::new(),
                                figures: BTreeMap::new(),
                            },
                        )
                        .unwrap_or_default()
                    })
                    .unwrap_or_default()
            };
            let authority = args.sim_url.clone().map_or_else(
                || get(&Some(auth.authority().to_owned())),
                |u| u.trim_end_matches('/').to_owned(),
            );
            Some(device_code::cache_key(
                &authority,
                &get(&auth.tenant),
                &get(&auth.client_id),
            ))
        }
        _ => None,
    };
    match device_code::logout(&path, key.as_deref()) {
        Ok(true) => {
            eprintln!("signed out ({})", path.display());
            exit::OK
        }
        Ok(false) => {
            eprintln!("nobody was signed in ({})", path.display());
            exit::OK
        }
        Err(e) => fail(exit::FAILED, e),
    }
}
