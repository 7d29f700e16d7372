//! The environments of a run: one transport (and typed clients) per runbook environment, with tokens,
//! retry policy and request journaling wired in. Built once per run; `--sim` points them at the simulator.
//!
//! Requests are journaled as [`Event::Request`] (batched; method, path with query keys only, status,
//! duration: never a header value or a body). A step's requests carry its id: [`Envs::scoped`] hands out
//! transports that are clones of the environment's with a step-scoped observer (one `Arc` per call).
//!
//! Per-attempt HTTP timeout: `min(defaults.timeout, 100 s)`; retries: `defaults.retries`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::connectors::auth::TokenCache;
use crate::connectors::dataverse::{DataverseCache, DataverseClient};
use crate::connectors::dmf::DmfClient;
use crate::connectors::dual_write::GatewayClient;
use crate::connectors::fno::FnoClient;
use crate::connectors::setup::EnvConfig;
use crate::connectors::transport::{Request, RequestObserver, RequestSummary, RetryPolicy, Transport};
use crate::journal::Redactor;
use crate::runbook::vars::{Piece, VarContext, VarRef, interpolate, parse};
use crate::runbook::{DualWriteMode, EnvKind, EnvLookup, Runbook, StepId};

use super::ctx::Emitter;
use super::event::Event;

/// Where requests go: the runbook's URLs, or a simulator that stands in for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The runbook's own URLs and authority.
    Live,
    /// Every environment's requests and the token authority go to this base URL (`http://127.0.0.1:PORT`);
    /// token scopes stay the runbook's URLs.
    Sim { url: String },
}

/// Why the environments could not be built (an unset secret, a bad URL...): invalid input, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum EnvsError {
    #[error("environment `{env}`: {message}")]
    Invalid { env: String, message: String },
    #[error(transparent)]
    Connector(#[from] crate::connectors::ConnectorError),
}

/// What the engine knows about one runbook environment besides its transport.
#[derive(Debug, Clone)]
pub struct EnvInfo {
    pub kind: EnvKind,
    /// The runbook URL, resolved (the token resource; shown in operator instructions).
    pub url: Option<String>,
    pub mode: DualWriteMode,
    /// `dualwrite` only: `[fno-env, dataverse-env]`.
    pub link: Vec<String>,
    /// `adls` and `databricks` only: the lake's own settings, resolved.
    pub lake: Option<LakeEnv>,
}

/// What an `adls` or `databricks` environment names besides its URL.
#[derive(Debug, Clone, Default)]
pub struct LakeEnv {
    /// `adls`: the storage account and the container Synapse Link exports to.
    pub account: String,
    pub container: String,
    /// `adls`: the export's folder inside the container, without slashes at either end (empty: the root).
    pub folder: String,
    /// `databricks`: the SQL warehouse, the pipelines by name, where the ingested tables are.
    pub warehouse_id: Option<String>,
    pub pipelines: BTreeMap<String, String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
}

/// The environments of a run.
pub struct Envs {
    /// One transport per runbook environment id; requests are journaled as `Event::Request`.
    pub transports: BTreeMap<String, Transport>,
    pub tokens: TokenCache,
    /// Kind, URL, mode and link of every runbook environment (with or without a transport).
    pub info: BTreeMap<String, EnvInfo>,
    client: reqwest::Client,
    emit: Emitter,
    policy: RetryPolicy,
    limits: crate::connectors::transport::Limits,
    guard: Option<crate::connectors::transport::SendGuard>,
    sim_url: Option<String>,
    /// `${NAME}` values the runbook's steps reference, resolved at build time.
    vars: BTreeMap<String, String>,
    redactor: Redactor,
    /// Per Dataverse environment: table metadata and company ids, asked once per run.
    dv_caches: Mutex<BTreeMap<String, DataverseCache>>,
}

fn invalid(env: &str, message: impl Into<String>) -> EnvsError {
    EnvsError::Invalid {
        env: env.to_owned(),
        message: message.into(),
    }
}

/// Every `${NAME}` referenced anywhere in the runbook's steps (urls, texts, bodies, env maps).
fn env_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => {
            if let Ok(pieces) = parse(s) {
                for p in pieces {
                    if let Piece::Var {
                        var: VarRef::Env(n), ..
                    } = p
                    {
                        out.push(n);
                    }
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| env_refs(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| env_refs(v, out)),
        _ => {}
    }
}

/// The lake settings of an `adls` or `databricks` environment, `${VAR}`s resolved.
fn lake_env(
    name: &str,
    env: &crate::runbook::Environment,
    resolve: &dyn Fn(&str, &str, &str) -> Result<String, EnvsError>,
) -> Result<Option<LakeEnv>, EnvsError> {
    let opt = |what: &str, v: &Option<String>| v.as_deref().map(|t| resolve(name, what, t)).transpose();
    Ok(match env.kind {
        EnvKind::Adls => Some(LakeEnv {
            account: opt("account", &env.account)?
                .ok_or_else(|| invalid(name, "an adls environment needs `account`"))?,
            container: opt("container", &env.container)?
                .ok_or_else(|| invalid(name, "an adls environment needs `container`"))?,
            folder: opt("folder", &env.folder)?
                .unwrap_or_default()
                .trim_matches('/')
                .to_owned(),
            ..LakeEnv::default()
        }),
        EnvKind::Databricks => {
            let mut pipelines = BTreeMap::new();
            for (k, v) in &env.pipelines {
                pipelines.insert(k.clone(), resolve(name, "pipelines", v)?);
            }
            Some(LakeEnv {
                warehouse_id: opt("warehouse_id", &env.warehouse_id)?,
                pipelines,
                catalog: opt("catalog", &env.catalog)?,
                schema: opt("schema", &env.schema)?,
                ..LakeEnv::default()
            })
        }
        _ => None,
    })
}

/// The request observer that journals summaries for `step`.
fn observer(emit: &Emitter, step: Option<StepId>) -> RequestObserver {
    let emit = emit.clone();
    Arc::new(move |s: RequestSummary| {
        let error = match (s.error, s.retry_in_ms) {
            (Some(e), Some(ms)) => Some(format!("{e} (retry {} in {ms} ms)", s.attempt + 1)),
            (e, _) => e,
        };
        // A journal that has failed makes the run halt elsewhere; a summary is not worth failing a call for.
        let _ = emit.batched(Event::Request {
            step: step.clone(),
            env: s.env,
            method: s.method,
            path: s.path,
            status: s.status,
            duration_ms: s.duration_ms,
            error,
        });
    })
}

/// The transport caps of a runbook's `defaults` (built-in values where unset).
fn limits_of(d: &crate::runbook::Defaults) -> crate::connectors::transport::Limits {
    let built_in = crate::connectors::transport::Limits::default();
    crate::connectors::transport::Limits {
        max_body_bytes: d.max_response_bytes().unwrap_or(built_in.max_body_bytes),
        max_pages: d.max_pages.filter(|n| *n > 0).unwrap_or(built_in.max_pages),
    }
}

impl Envs {
    /// Builds every environment of `runbook`: secrets resolved through `vars` and added to `redactor`
    /// (so the journal masks them), tokens cached per credentials, request summaries sent to `emit`.
    pub fn build(
        runbook: &Runbook,
        vars: &dyn EnvLookup,
        target: &Target,
        redactor: &Redactor,
        emit: &Emitter,
    ) -> Result<Envs, EnvsError> {
        let client = crate::connectors::transport::client()
            .map_err(|e| invalid("*", format!("cannot build the HTTP client: {e}")))?;
        let per_attempt =
            Duration::from_secs(runbook.defaults.timeout().as_secs().max(1)).min(Duration::from_secs(100));
        let policy = RetryPolicy {
            retries: runbook.defaults.retries(),
            timeout: per_attempt,
            ..RetryPolicy::default()
        };
        let hook_redactor = redactor.clone();
        let token_redactor: crate::connectors::auth::Redactor =
            Arc::new(move |t: &str| hook_redactor.add_secret(t));
        let tokens = TokenCache::new(
            client.clone(),
            policy.clone(),
            Some(observer(emit, None)),
            Some(token_redactor),
        );
        let ctx = VarContext {
            env: vars,
            run_id: String::new(),
            run_date: String::new(),
            run_operator: String::new(),
            captures: BTreeMap::new(),
            figures: BTreeMap::new(),
        };
        let resolve = |env: &str, what: &str, text: &str| {
            interpolate(text, &ctx).map_err(|e| invalid(env, format!("{what}: {e}")))
        };
        let mut device_codes = BTreeMap::new();
        let sim_url = match target {
            Target::Live => None,
            Target::Sim { url } => Some(url.trim_end_matches('/').to_owned()),
        };
        let mut transports = BTreeMap::new();
        let mut info = BTreeMap::new();
        for (name, env) in &runbook.environments {
            let url = env.url.as_deref().map(|u| resolve(name, "url", u)).transpose()?;
            let lake = lake_env(name, env, &resolve)?;
            // An `adls` account's Blob endpoint; in `--sim` mode the simulator serves it under `/_storage/<account>`.
            let (url, sim_path) = match (&lake, env.kind) {
                (Some(l), EnvKind::Adls) => (
                    Some(url.unwrap_or_else(|| format!("https://{}.blob.core.windows.net", l.account))),
                    format!("/_storage/{}", l.account),
                ),
                // A vault: in `--sim` mode the simulator's Key Vault stand-in under `/_keyvault`.
                (_, EnvKind::Keyvault) => (url, "/_keyvault".to_owned()),
                _ => (url, String::new()),
            };
            info.insert(
                name.clone(),
                EnvInfo {
                    kind: env.kind,
                    url: url.clone(),
                    mode: env.mode(),
                    link: env.link.clone().unwrap_or_default(),
                    lake,
                },
            );
            let Some(url) = url else { continue };
            let auth = match &env.auth {
                Some(a) => {
                    let resolve_here = |what: &str, text: &str| resolve(name, what, text);
                    let mut cx = super::envs_auth::AuthCtx {
                        vars,
                        sim_url: sim_url.as_deref(),
                        redactor,
                        emit: Some(emit),
                        policy: &policy,
                        device_codes: &mut device_codes,
                        resolve: &resolve_here,
                    };
                    let mut ea = super::envs_auth::env_auth(name, a, &mut cx)?;
                    if ea.scope.is_none() {
                        ea.scope = env.kind.default_scope().map(str::to_owned);
                    }
                    Some(ea)
                }
                None => None,
            };
            let mut env_policy = if env.kind == EnvKind::Fno {
                RetryPolicy::fno()
            } else {
                RetryPolicy::default()
            };
            env_policy.retries = policy.retries;
            env_policy.timeout = policy.timeout;
            let cfg = EnvConfig {
                name: name.clone(),
                resource: url.clone(),
                send_to: sim_url
                    .clone()
                    .map_or_else(|| url.clone(), |s| format!("{s}{sim_path}")),
                auth,
                policy: env_policy,
                dataverse: env.kind == EnvKind::Dataverse,
            };
            let mut t =
                crate::connectors::setup::transport(&cfg, &client, &tokens, Some(observer(emit, None)))?
                    .with_limits(limits_of(&runbook.defaults));
            if let Some(template) = &env.token {
                // A Databricks token: sent as the bearer of every request, masked in everything journaled.
                let token = super::envs_auth::secret_var(name, "token", template, vars)?;
                redactor.add_secret(token.expose());
                t = t.with_header("Authorization", &format!("Bearer {}", token.expose()));
            }
            if let Some(template) = &env.sas {
                // A shared access signature (adls): appended to every request, masked in everything journaled.
                let sas = super::envs_auth::secret_var(name, "sas", template, vars)?;
                redactor.add_secret(sas.expose());
                if let Some(sig) = sas
                    .expose()
                    .split('&')
                    .find_map(|p| p.trim_start_matches('?').strip_prefix("sig="))
                {
                    redactor.add_secret(sig);
                }
                t = t.with_signature(sas.expose());
            }
            transports.insert(name.clone(), t);
        }
        let mut names = Vec::new();
        if let Ok(v) = serde_json::to_value(&runbook.phases) {
            env_refs(&v, &mut names);
        }
        if let Ok(v) = serde_json::to_value(&runbook.notify_targets) {
            env_refs(&v, &mut names);
        }
        let mut resolved = BTreeMap::new();
        for n in names {
            if let Some(v) = vars.get(&n) {
                resolved.insert(n, v);
            }
        }
        Ok(Envs {
            transports,
            tokens,
            info,
            client,
            emit: emit.clone(),
            policy,
            limits: limits_of(&runbook.defaults),
            guard: None,
            sim_url,
            vars: resolved,
            redactor: redactor.clone(),
            dv_caches: Mutex::new(BTreeMap::new()),
        })
    }

    /// A check every request of the run makes before it is sent (the lease's liveness).
    pub fn set_guard(&mut self, guard: crate::connectors::transport::SendGuard) {
        for t in self.transports.values_mut() {
            *t = t.clone().with_guard(guard.clone());
        }
        self.guard = Some(guard);
    }

    /// Accessors whose requests are journaled with `step`'s id.
    pub fn scoped(&self, step: Option<&StepId>) -> EnvScope<'_> {
        EnvScope {
            envs: self,
            step: step.cloned(),
        }
    }

    /// The environment's transport (requests journaled without a step).
    pub fn transport(&self, env: &str) -> Result<Transport, EnvsError> {
        self.scoped(None).transport(env)
    }
    pub fn fno(&self, env: &str) -> Result<FnoClient, EnvsError> {
        self.scoped(None).fno(env)
    }
    pub fn dataverse(&self, env: &str) -> Result<DataverseClient, EnvsError> {
        self.scoped(None).dataverse(env)
    }
    pub fn dmf(&self, env: &str) -> Result<DmfClient, EnvsError> {
        self.scoped(None).dmf(env)
    }
    pub fn gateway(&self, env: &str) -> Result<GatewayClient, EnvsError> {
        self.scoped(None).gateway(env)
    }

    /// The simulator's base URL in `--sim` mode.
    pub fn sim_url(&self) -> Option<&str> {
        self.sim_url.as_deref()
    }

    /// A `${NAME}` value the runbook's steps reference (resolved when the environments were built).
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// The run's redactor (to mask values such as webhook paths before they are journaled).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The environment's current time: the simulator's clock in `--sim` mode, else the wall clock.
    pub async fn env_now(&self, cancel: &CancellationToken) -> DateTime<Utc> {
        let Some(sim) = &self.sim_url else {
            return Utc::now();
        };
        let Ok(t) = Transport::new("sim", self.client.clone(), sim, self.policy.clone()) else {
            return Utc::now();
        };
        let req = Request::get("sim.clock", "/_sim/clock").unauthenticated();
        let now = async {
            let resp = t.send(req, cancel).await.ok()?;
            let v: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
            let s = v.get("sim_now")?.as_str()?.to_owned();
            DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        };
        now.await.unwrap_or_else(Utc::now)
    }

    fn info_of(&self, env: &str) -> Result<&EnvInfo, EnvsError> {
        self.info
            .get(env)
            .ok_or_else(|| invalid(env, "no such environment in the runbook"))
    }
}

/// Typed clients of the run's environments whose requests are journaled with one step's id.
pub struct EnvScope<'a> {
    envs: &'a Envs,
    step: Option<StepId>,
}

impl EnvScope<'_> {
    /// The environment's transport, with this scope's observer.
    pub fn transport(&self, env: &str) -> Result<Transport, EnvsError> {
        let t = self
            .envs
            .transports
            .get(env)
            .ok_or_else(|| invalid(env, "has no url: there is nothing to send requests to"))?;
        Ok(t.clone()
            .with_observer(observer(&self.envs.emit, self.step.clone())))
    }

    fn of_kind(&self, env: &str, kind: EnvKind) -> Result<Transport, EnvsError> {
        let info = self.envs.info_of(env)?;
        if info.kind != kind {
            return Err(invalid(
                env,
                format!("is a {:?} environment, not {kind:?}", info.kind).to_lowercase(),
            ));
        }
        self.transport(env)
    }

    pub fn fno(&self, env: &str) -> Result<FnoClient, EnvsError> {
        Ok(FnoClient::new(self.of_kind(env, EnvKind::Fno)?))
    }
    pub fn dataverse(&self, env: &str) -> Result<DataverseClient, EnvsError> {
        let cache = self
            .envs
            .dv_caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(env.to_owned())
            .or_default()
            .clone();
        Ok(DataverseClient::new(self.of_kind(env, EnvKind::Dataverse)?).with_cache(cache))
    }
    pub fn dmf(&self, env: &str) -> Result<DmfClient, EnvsError> {
        Ok(DmfClient::new(self.of_kind(env, EnvKind::Fno)?))
    }
    /// The gateway client of a `dualwrite` environment in `gateway` mode.
    pub fn gateway(&self, env: &str) -> Result<GatewayClient, EnvsError> {
        let info = self.envs.info_of(env)?;
        if info.mode != DualWriteMode::Gateway {
            return Err(invalid(env, "is in operator mode: there is no gateway to drive"));
        }
        // `GET Environments?identifier=` names the linked F&O environment (its URL's host).
        let identifier = info
            .link
            .first()
            .and_then(|f| self.envs.info.get(f))
            .and_then(|i| i.url.as_deref())
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(GatewayClient::new(self.of_kind(env, EnvKind::Dualwrite)?).with_identifier(identifier))
    }

    /// The container of an `adls` environment, and its export's root (`folder/` or empty).
    pub fn blob(&self, env: &str) -> Result<(crate::connectors::lake::BlobClient, String), EnvsError> {
        let t = self.of_kind(env, EnvKind::Adls)?;
        let lake = self.envs.info_of(env)?.lake.clone().unwrap_or_default();
        let root = if lake.folder.is_empty() {
            String::new()
        } else {
            format!("{}/", lake.folder)
        };
        Ok((crate::connectors::lake::BlobClient::new(t, &lake.container), root))
    }

    /// The workspace of a `databricks` environment.
    pub fn databricks(
        &self,
        env: &str,
    ) -> Result<crate::connectors::databricks::DatabricksClient, EnvsError> {
        Ok(crate::connectors::databricks::DatabricksClient::new(
            self.of_kind(env, EnvKind::Databricks)?,
        ))
    }

    /// The keys of a `keyvault` environment, without request summaries: the checkpoint signer's calls
    /// follow the checkpoints they make (a run's last checkpoint stays its last event); what failed is
    /// journaled by the signer.
    pub fn keyvault(&self, env: &str) -> Result<crate::connectors::keyvault::KeyVaultClient, EnvsError> {
        Ok(crate::connectors::keyvault::KeyVaultClient::new(
            self.of_kind(env, EnvKind::Keyvault)?.without_observer(),
        ))
    }

    /// An unauthenticated transport for an absolute URL outside the environments (webhooks, bare `http`
    /// steps). In `--sim` mode the URL is used as written; `notify` sends to the simulator's webhook itself.
    pub fn bare(&self, url: &str) -> Result<Transport, EnvsError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid("url", format!("invalid URL: {e}")))?;
        let origin = parsed.origin().ascii_serialization();
        let t = Transport::new("url", self.envs.client.clone(), &origin, self.envs.policy.clone())?
            .with_limits(self.envs.limits);
        let t = match &self.envs.guard {
            Some(g) => t.with_guard(g.clone()),
            None => t,
        };
        Ok(t.with_observer(observer(&self.envs.emit, self.step.clone())))
    }

    /// [`EnvScope::bare`] without journaling a request summary per call: for the checkpoint witnesses,
    /// whose posts follow the checkpoint they send (a run's last checkpoint stays its last event); what
    /// failed is journaled by the caller.
    pub fn bare_unjournaled(&self, url: &str) -> Result<Transport, EnvsError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid("url", format!("invalid URL: {e}")))?;
        let origin = parsed.origin().ascii_serialization();
        let t = Transport::new("url", self.envs.client.clone(), &origin, self.envs.policy.clone())?
            .with_limits(self.envs.limits);
        Ok(match &self.envs.guard {
            Some(g) => t.with_guard(g.clone()),
            None => t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::envs_auth::secret_var as client_secret;

    #[test]
    fn client_secret_from_the_variable_else_from_the_file_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file-Zq8~s3cret\n").unwrap();
        let path = file.display().to_string();
        let both = |n: &str| match n {
            "S" => Some("from-env-value".to_owned()),
            "S_FILE" => Some(path.clone()),
            _ => None,
        };
        assert_eq!(
            client_secret("fno", "client_secret", "${S}", &both)
                .unwrap()
                .expose(),
            "from-env-value"
        );
        let file_only = |n: &str| (n == "S_FILE").then(|| path.clone());
        let s = client_secret("fno", "client_secret", "${S}", &file_only).unwrap();
        assert_eq!(s.expose(), "from-file-Zq8~s3cret");
        assert_eq!(format!("{s:?} {s}"), "[REDACTED] [REDACTED]");
        let none = |_: &str| None;
        let e = client_secret("fno", "client_secret", "${S}", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither `S` nor `S_FILE` is set"), "{e}");
        let missing = |n: &str| (n == "S_FILE").then(|| "/nonexistent/secret".to_owned());
        let e = client_secret("fno", "client_secret", "${S}", &missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read `S_FILE` (/nonexistent/secret)"), "{e}");
        assert!(client_secret("fno", "client_secret", "literal", &both).is_err());
    }
}
