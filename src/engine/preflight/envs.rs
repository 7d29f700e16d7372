//! One transport per runbook environment, built the way a run builds them (secrets resolved through their
//! `${VAR}`s and handed to a redactor, tokens shared per credentials) but journaling nothing: a failure to
//! build one is kept as the reason its token check gives.

use std::collections::BTreeMap;

use super::{Env, PreflightOptions};
use crate::connectors::auth::{TokenCache, device_code};
use crate::connectors::setup::{DEFAULT_AUTHORITY, EnvConfig};
use crate::connectors::transport::RetryPolicy;
use crate::engine::envs::EnvsError;
use crate::engine::envs_auth::{AuthCtx, env_auth};
use crate::journal::Redactor;
use crate::runbook::vars::{VarContext, interpolate};
use crate::runbook::{CredentialKind, EnvKind};

pub fn build(
    opts: &PreflightOptions<'_>,
    client: &reqwest::Client,
    policy: &RetryPolicy,
) -> BTreeMap<String, Env> {
    let tokens = TokenCache::new(client.clone(), policy.clone(), None, None);
    let redactor = Redactor::new();
    let mut device_codes = BTreeMap::new();
    let ctx = VarContext {
        env: opts.vars,
        run_id: String::new(),
        run_date: String::new(),
        run_operator: String::new(),
        captures: BTreeMap::new(),
        figures: BTreeMap::new(),
    };
    let sim = opts
        .sim_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned());
    let mut out = BTreeMap::new();
    for (name, env) in &opts.runbook.environments {
        let resolve = |what: &str, text: &str| {
            interpolate(text, &ctx).map_err(|e| EnvsError::Invalid {
                env: name.clone(),
                message: format!("{what}: {e}"),
            })
        };
        let credential = env.auth.as_ref().map(crate::runbook::Auth::kind);
        let mut device_key = None;
        let transport = (|| -> Result<_, String> {
            let url = env
                .url
                .as_deref()
                .ok_or("has no `url`: there is nothing to ask")?;
            let url = resolve("url", url).map_err(|e| e.to_string())?;
            let auth = match &env.auth {
                Some(a) => {
                    let mut cx = AuthCtx {
                        vars: opts.vars,
                        sim_url: sim.as_deref(),
                        redactor: &redactor,
                        emit: None,
                        policy,
                        device_codes: &mut device_codes,
                        resolve: &resolve,
                    };
                    let mut ea = env_auth(name, a, &mut cx).map_err(|e| e.to_string())?;
                    if ea.scope.is_none() {
                        ea.scope = env.kind.default_scope().map(str::to_owned);
                    }
                    if a.kind() == CredentialKind::DeviceCode {
                        let authority = ea.authority.as_deref().unwrap_or(DEFAULT_AUTHORITY);
                        device_key = Some(device_code::cache_key(authority, &ea.tenant, &ea.client_id));
                    }
                    Some(ea)
                }
                None => None,
            };
            let mut env_policy = if env.kind == EnvKind::Fno {
                RetryPolicy::fno()
            } else {
                policy.clone()
            };
            env_policy.retries = policy.retries;
            env_policy.timeout = policy.timeout;
            env_policy.retry_after_fallback =
                env_policy.retry_after_fallback.map(|d| d.min(policy.max_delay));
            let cfg = EnvConfig {
                name: name.clone(),
                resource: url.clone(),
                send_to: sim.clone().unwrap_or(url),
                auth,
                policy: env_policy,
                dataverse: env.kind == EnvKind::Dataverse,
            };
            crate::connectors::setup::transport(&cfg, client, &tokens, None).map_err(|e| e.to_string())
        })();
        out.insert(
            name.clone(),
            Env {
                kind: env.kind,
                mode: env.mode(),
                credential,
                transport,
                device_key,
                token: None,
                answer: None,
            },
        );
    }
    out
}
