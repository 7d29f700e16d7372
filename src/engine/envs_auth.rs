//! Resolving an environment's `auth` block into a [`Credential`]: secrets and paths read through their
//! `${VAR}`s (a `NAME_FILE` variable may name a file holding a secret), certificates loaded, every secret
//! value handed to the redactor before anything can print it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::connectors::auth::azure_cli::AzureCli;
use crate::connectors::auth::certificate::SigningCertificate;
use crate::connectors::auth::device_code::{self, DeviceCode, DevicePrompt};
use crate::connectors::auth::managed_identity::{self, Endpoint, ManagedIdentity, UserAssigned};
use crate::connectors::auth::workload::FederatedTokenFile;
use crate::connectors::auth::{Credential, Secret, scope_for};
use crate::connectors::setup::EnvAuth;
use crate::connectors::transport::RetryPolicy;
use crate::journal::Redactor;
use crate::runbook::vars::{Piece, VarRef, parse};
use crate::runbook::{Auth, CredentialKind, EnvLookup};

use super::ctx::Emitter;
use super::envs::EnvsError;
use super::event::{Event, LogLevel};

/// Whether the device-code prompt also goes to stderr (off while the console owns the terminal: the
/// prompt is then the log pane's line).
static PROMPT_ON_STDERR: AtomicBool = AtomicBool::new(true);

/// The console sets this off while it draws the screen.
pub fn set_prompt_on_stderr(on: bool) {
    PROMPT_ON_STDERR.store(on, Ordering::Relaxed);
}

fn invalid(env: &str, message: impl Into<String>) -> EnvsError {
    EnvsError::Invalid {
        env: env.to_owned(),
        message: message.into(),
    }
}

/// Resolves `field: ${NAME}`: the variable's value, else the text of the file `NAME_FILE` names (one
/// trailing newline dropped). Errors name the variables and the file, never a value.
pub(crate) fn secret_var(
    env: &str,
    field: &str,
    template: &str,
    vars: &dyn EnvLookup,
) -> Result<Secret, EnvsError> {
    let name =
        single_var(template).ok_or_else(|| invalid(env, format!("{field} must be a single `${{NAME}}`")))?;
    if let Some(v) = vars.get(&name) {
        return Ok(Secret::new(v));
    }
    let file_var = crate::runbook::validate::secret_file_var(&name);
    let Some(path) = vars.get(&file_var) else {
        return Err(invalid(
            env,
            format!("{field}: neither `{name}` nor `{file_var}` is set"),
        ));
    };
    let mut text = std::fs::read_to_string(&path)
        .map_err(|e| invalid(env, format!("{field}: cannot read `{file_var}` ({path}): {e}")))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(invalid(
            env,
            format!("{field}: the file `{file_var}` names ({path}) is empty"),
        ));
    }
    Ok(Secret::new(text))
}

fn single_var(template: &str) -> Option<String> {
    match parse(template).as_deref() {
        Ok(
            [
                Piece::Var {
                    var: VarRef::Env(n), ..
                },
            ],
        ) => Some(n.clone()),
        _ => None,
    }
}

/// What [`env_auth`] needs besides the `auth` block.
pub struct AuthCtx<'a> {
    pub vars: &'a dyn EnvLookup,
    pub sim_url: Option<&'a str>,
    pub redactor: &'a Redactor,
    /// The run's journal (`None` for `cutover login`: the prompt then only goes to stderr).
    pub emit: Option<&'a Emitter>,
    pub policy: &'a RetryPolicy,
    /// One device-code sign-in per (authority, tenant, client id), shared by the environments using it.
    pub device_codes: &'a mut BTreeMap<String, Arc<DeviceCode>>,
    pub resolve: &'a dyn Fn(&str, &str) -> Result<String, EnvsError>,
}

/// The [`EnvAuth`] of environment `name`.
pub fn env_auth(name: &str, a: &Auth, cx: &mut AuthCtx<'_>) -> Result<EnvAuth, EnvsError> {
    let resolve = |what: &str, t: &str| (cx.resolve)(what, t);
    let opt = |what: &str, t: &Option<String>| t.as_deref().map(|t| resolve(what, t)).transpose();
    let authority = match cx.sim_url {
        Some(s) => s.to_owned(),
        None => resolve("authority", a.authority())?,
    };
    let tenant = opt("tenant", &a.tenant)?;
    let client_id = opt("client_id", &a.client_id)?;
    let need = |v: &Option<String>, f: &str| {
        v.clone()
            .ok_or_else(|| invalid(name, format!("`credential: {}` needs `{f}`", a.kind().name())))
    };
    let scope = match (opt("scope", &a.scope)?, opt("resource", &a.resource)?) {
        (Some(s), _) => Some(s),
        (None, Some(r)) => Some(scope_for(&r)),
        (None, None) => None,
    };
    let credential = match a.kind() {
        CredentialKind::ClientSecret => {
            let t = a
                .client_secret
                .as_deref()
                .ok_or_else(|| invalid(name, "`client_secret` is missing"))?;
            let s = secret_var(name, "client_secret", t, cx.vars)?;
            cx.redactor.add_secret(s.expose());
            Credential::Secret(s)
        }
        CredentialKind::ClientCertificate => {
            let t = a
                .certificate
                .as_deref()
                .ok_or_else(|| invalid(name, "`certificate` is missing"))?;
            let path = secret_var(name, "certificate", t, cx.vars)?;
            let password = a
                .certificate_password
                .as_deref()
                .map(|t| secret_var(name, "certificate_password", t, cx.vars))
                .transpose()?;
            if let Some(p) = &password {
                cx.redactor.add_secret(p.expose());
            }
            let cert = SigningCertificate::load(
                &PathBuf::from(path.expose()),
                password.as_ref(),
                a.signing_algorithm.unwrap_or_default(),
            )
            .map_err(|e| invalid(name, format!("certificate: {e}")))?;
            Credential::Certificate(Arc::new(cert))
        }
        CredentialKind::WorkloadIdentity => {
            let path = match &a.federated_token_file {
                Some(t) => resolve("federated_token_file", t)?,
                None => cx.vars.get("AZURE_FEDERATED_TOKEN_FILE").ok_or_else(|| {
                    invalid(name, "workload_identity: AZURE_FEDERATED_TOKEN_FILE is not set (nor `federated_token_file`)")
                })?,
            };
            Credential::Workload(FederatedTokenFile { path: path.into() })
        }
        CredentialKind::ManagedIdentity => {
            let user = match (
                &client_id,
                opt("object_id", &a.object_id)?,
                opt("mi_resource_id", &a.mi_resource_id)?,
            ) {
                (Some(c), _, _) => Some(UserAssigned::ClientId(c.clone())),
                (None, Some(o), _) => Some(UserAssigned::ObjectId(o)),
                (None, None, Some(r)) => Some(UserAssigned::ResourceId(r)),
                (None, None, None) => None,
            };
            let vars = cx.vars;
            let endpoint = Endpoint::from_env(&|k| vars.get(k), cx.sim_url.unwrap_or(managed_identity::IMDS));
            if let Endpoint::AppService { header, .. } = &endpoint {
                cx.redactor.add_secret(header.expose());
            }
            let mi = ManagedIdentity::new(user, endpoint, cx.policy.clone())
                .map_err(|e| invalid(name, e.to_string()))?;
            Credential::ManagedIdentity(Arc::new(mi))
        }
        CredentialKind::AzureCli => Credential::AzureCli(AzureCli::new(tenant.clone())),
        CredentialKind::DeviceCode => {
            let (t, c) = (need(&tenant, "tenant")?, need(&client_id, "client_id")?);
            let key = device_code::cache_key(&authority, &t, &c);
            let dc = cx
                .device_codes
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(DeviceCode::new(
                        &authority,
                        &t,
                        &c,
                        &format!("environment `{name}`"),
                        device_code::cache_path(),
                        prompt(cx.emit),
                    ))
                })
                .clone();
            Credential::DeviceCode(dc)
        }
    };
    let app_only = matches!(
        a.kind(),
        CredentialKind::ClientSecret | CredentialKind::ClientCertificate | CredentialKind::WorkloadIdentity
    );
    let (tenant, client_id) = if app_only {
        (need(&tenant, "tenant")?, need(&client_id, "client_id")?)
    } else {
        (tenant.unwrap_or_default(), client_id.unwrap_or_default())
    };
    Ok(EnvAuth {
        authority: Some(authority),
        tenant,
        client_id,
        credential,
        scope,
    })
}

/// The device-code prompt: a warning in the journal (the console's log pane shows it; the user code is
/// not a credential: it is useless without the person's own sign-in and expires in minutes) and, unless
/// the console owns the terminal, one line on stderr.
pub fn prompt(emit: Option<&Emitter>) -> device_code::Prompt {
    let emit = emit.cloned();
    Arc::new(move |p: &DevicePrompt| {
        let line = p.line();
        if PROMPT_ON_STDERR.load(Ordering::Relaxed) || emit.is_none() {
            eprintln!("{line}");
        }
        if let Some(emit) = &emit {
            let event = Event::Log {
                level: LogLevel::Warn,
                message: line,
            };
            // Committed now, not with the next group commit: nothing else is journaled while the step
            // waits for the person, and the console shows only what is committed.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let emit = emit.clone();
                    rt.spawn(async move {
                        let _ = emit.durable(event).await;
                    });
                }
                Err(_) => {
                    let _ = emit.batched(event);
                }
            }
        }
    })
}
