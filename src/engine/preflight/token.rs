//! A token per environment, per its credential kind. A device-code environment without a cached sign-in is an
//! error telling to run `cutover login` (a preflight never starts a sign-in); every other kind asks Entra ID
//! (or the managed-identity endpoint, or `az`) exactly as a run would. Entra's `AADSTSnnnnn` codes become fixes.

use super::{Ctx, fix, line};
use crate::connectors::auth::device_code;
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::CredentialKind;

const CHECK: &str = "token";

/// The fix for an Entra error message, by its AADSTS code.
fn entra_fix(env: &str, message: &str, secret_var: Option<&str>) -> String {
    let var = secret_var.map_or_else(|| "the secret's variable".to_owned(), |v| format!("`{v}`"));
    let has = |code: &str| message.contains(&format!("AADSTS{code}"));
    if has("7000222") {
        format!(
            "the client secret has expired: create a new one for the app (Entra ID → App registrations → Certificates & secrets) and put its value in {var}"
        )
    } else if has("7000215") {
        format!("the client secret is wrong: put the secret's Value (not its Secret ID) in {var}")
    } else if has("700016") {
        format!("no such application in this tenant: check `client_id` and `tenant` of environment `{env}`")
    } else if has("90002") {
        format!("no such tenant: check `tenant` of environment `{env}`")
    } else if has("500011") {
        format!(
            "the tenant has no resource at this URL: check `url` of environment `{env}` (for F&O, register the app under System administration → Azure Active Directory applications)"
        )
    } else if has("700027") || has("700024") {
        format!(
            "the certificate was refused: check it is registered on the app, not expired, and this machine's clock (environment `{env}`)"
        )
    } else {
        format!("check the `auth` block of environment `{env}` and try again")
    }
}

fn secret_var(cx: &Ctx<'_>, env: &str) -> Option<String> {
    let a = cx.opts.runbook.environments.get(env)?.auth.as_ref()?;
    let t = a.client_secret.as_deref()?;
    let inner = t.trim().strip_prefix("${")?.strip_suffix('}')?;
    Some(inner.to_owned())
}

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    let names: Vec<String> = cx.envs.keys().cloned().collect();
    for name in names {
        let Some(env) = cx.envs.get(&name) else { continue };
        let Some(kind) = env.credential else { continue };
        let (transport, device_key) = (env.transport.clone(), env.device_key.clone());
        let subject = format!("{name} ({})", kind.name());
        let t = match &transport {
            Ok(t) => t.clone(),
            Err(why) => {
                let hint = if why.contains("is not set") || why.contains("unset") {
                    "set the variable it names in this shell (or `NAME_FILE` naming a file that holds it) and run the preflight again"
                } else {
                    "correct the environment's `url`/`auth` in the runbook (`cutover validate --strict` shows where)"
                };
                let l = fix(line(CHECK, subject, CheckStatus::Error, why.clone()), hint);
                cx.envs
                    .entry(name)
                    .and_modify(|e| e.token = Some(Err(why.clone())));
                out.push(l);
                continue;
            }
        };
        if kind == CredentialKind::DeviceCode {
            let signed_in = match (device_code::cache_path(), &device_key) {
                (Some(p), Some(k)) => device_code::is_signed_in(&p, k),
                _ => Ok(false),
            };
            if !matches!(signed_in, Ok(true)) {
                let why = match signed_in {
                    Err(e) => e,
                    _ => "nobody is signed in (no cached device-code sign-in for this app)".to_owned(),
                };
                out.push(fix(
                    line(CHECK, subject, CheckStatus::Error, why.clone()),
                    format!(
                        "run `cutover login {name} --runbook {}` and sign in, then run the preflight again",
                        cx.opts.file
                    ),
                ));
                cx.envs.entry(name).and_modify(|e| e.token = Some(Err(why)));
                continue;
            }
        }
        let Some(source) = t.token_source().cloned() else {
            continue;
        };
        let got = source.token(&cx.cancel).await;
        let l = match &got {
            Ok(_) => {
                let who = match source.identity(&cx.cancel).await {
                    Ok(Some(id)) => format!(" as {}", id.label()),
                    _ => String::new(),
                };
                line(
                    CHECK,
                    subject,
                    CheckStatus::Ok,
                    format!("token for {}{who}", source.credentials().scope),
                )
            }
            Err(e) => {
                // Entra appends trace and correlation ids and a timestamp on lines of their own.
                let msg = e.to_string().lines().next().unwrap_or_default().to_owned();
                let f = entra_fix(&name, &msg, secret_var(cx, &name).as_deref());
                fix(line(CHECK, subject, CheckStatus::Error, msg), f)
            }
        };
        let result = got.map(|_| ()).map_err(|e| e.to_string());
        cx.envs.entry(name).and_modify(|e| e.token = Some(result));
        out.push(l);
    }
    out
}
