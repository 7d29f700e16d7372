//! Validation of each environment's `auth` block (the credential kinds, scope/resource, sovereign
//! clouds) and of the runbook's `approvals`. Positions come from the tree like every other diagnostic.

use super::model::{Auth, CredentialKind, DualWriteMode, EnvKind, Runbook};
use super::tree::Seg;
use super::validate::Ctx;
use super::vars::{EnvLookup, is_single_env_ref};

/// The cloud a host belongs to, for the authority/URL cross-check (wire-facts A11). `None` when the
/// host is not one the console knows (a simulator, a custom domain): no warning then.
pub fn cloud_of_authority(host: &str) -> Option<&'static str> {
    let h = host.to_ascii_lowercase();
    match h.as_str() {
        "login.microsoftonline.com" | "login.windows.net" | "login.microsoft.com" | "sts.windows.net" => {
            Some("public")
        }
        "login.microsoftonline.us" | "login.usgovcloudapi.net" => Some("US Government"),
        "login.partner.microsoftonline.cn" | "login.chinacloudapi.cn" => Some("China"),
        _ => None,
    }
}

/// The cloud of an environment URL's host: Dataverse and F&O host suffixes of each cloud (wire-facts A11;
/// F&O's sovereign host names are not published, so only Dataverse's US/China suffixes are known).
pub fn cloud_of_url(host: &str) -> Option<&'static str> {
    let h = host.to_ascii_lowercase();
    let ends = |s: &str| h.ends_with(s);
    if ends(".microsoftdynamics.us") || ends(".appsplatform.us") {
        Some("US Government")
    } else if ends(".dynamics.cn") {
        Some("China")
    } else if ends(".dynamics.com") || ends(".powerapps.com") || h == "integratorapp.com" {
        Some("public")
    } else {
        None
    }
}

fn host_of(text: &str, env: &dyn EnvLookup) -> Option<String> {
    let mut out = String::new();
    for piece in super::vars::parse(text).ok()? {
        match piece {
            super::vars::Piece::Text(t) => out.push_str(t),
            super::vars::Piece::Var {
                var: super::vars::VarRef::Env(name),
                ..
            } => out.push_str(&env.get(&name)?),
            super::vars::Piece::Var { .. } => return None,
        }
    }
    reqwest::Url::parse(&out).ok()?.host_str().map(str::to_owned)
}

/// Every check of the `auth` blocks and of `approvals`.
pub(crate) fn check(rb: &Runbook, cx: &mut Ctx<'_>, env: &dyn EnvLookup) {
    for (name, e) in &rb.environments {
        let Some(a) = &e.auth else { continue };
        one(name, a, cx);
        cloud(name, a, e.url.as_deref(), cx, env);
        if e.kind == EnvKind::Dualwrite && e.mode() == DualWriteMode::Gateway {
            gateway(name, a, cx);
        }
    }
    approvals(rb, cx);
}

fn one(name: &str, a: &Auth, cx: &mut Ctx<'_>) {
    use Seg::Key;
    let path = [Key("environments"), Key(name), Key("auth")];
    let kind = a.kind();
    let field = |f: &'static str| [Key("environments"), Key(name), Key("auth"), Key(f)];
    let need = |cx: &mut Ctx<'_>, f: &'static str, present: bool, example: &str| {
        if !present {
            cx.error(
                cx.at(&path),
                "missing-field",
                format!("environment `{name}`: `{}` needs `{f}`", kind.name()),
                format!("add `{f}: {example}`"),
            );
        }
    };
    let needs_app = matches!(
        kind,
        CredentialKind::ClientSecret
            | CredentialKind::ClientCertificate
            | CredentialKind::DeviceCode
            | CredentialKind::WorkloadIdentity
    );
    if needs_app {
        need(cx, "tenant", a.tenant.is_some(), "${TENANT_ID}");
        need(cx, "client_id", a.client_id.is_some(), "${CLIENT_ID}");
    }
    match kind {
        CredentialKind::ClientSecret => {
            need(cx, "client_secret", a.client_secret.is_some(), "${CLIENT_SECRET}")
        }
        CredentialKind::ClientCertificate => need(cx, "certificate", a.certificate.is_some(), "${CERT_PATH}"),
        _ => {}
    }
    // Fields that belong to another kind: most likely a forgotten `credential:` line.
    let foreign: [(&'static str, bool, bool); 7] = [
        (
            "client_secret",
            a.client_secret.is_some(),
            kind == CredentialKind::ClientSecret,
        ),
        (
            "certificate",
            a.certificate.is_some(),
            kind == CredentialKind::ClientCertificate,
        ),
        (
            "certificate_password",
            a.certificate_password.is_some(),
            kind == CredentialKind::ClientCertificate,
        ),
        (
            "signing_algorithm",
            a.signing_algorithm.is_some(),
            kind == CredentialKind::ClientCertificate,
        ),
        (
            "object_id",
            a.object_id.is_some(),
            kind == CredentialKind::ManagedIdentity,
        ),
        (
            "mi_resource_id",
            a.mi_resource_id.is_some(),
            kind == CredentialKind::ManagedIdentity,
        ),
        (
            "federated_token_file",
            a.federated_token_file.is_some(),
            kind == CredentialKind::WorkloadIdentity,
        ),
    ];
    for (f, present, belongs) in foreign {
        if present && !belongs {
            cx.error(
                cx.key(&path, f),
                "unused-field",
                format!(
                    "environment `{name}`: `{f}` does not apply to `credential: {}`",
                    kind.name()
                ),
                "remove it, or set the `credential:` it belongs to".to_owned(),
            );
        }
    }
    if kind == CredentialKind::ManagedIdentity {
        let ids = [
            a.client_id.is_some(),
            a.object_id.is_some(),
            a.mi_resource_id.is_some(),
        ];
        if ids.iter().filter(|x| **x).count() > 1 {
            cx.error(
                cx.at(&path),
                "invalid-value",
                format!("environment `{name}`: a user-assigned identity is named by one of `client_id`, `object_id`, `mi_resource_id`"),
                "keep one (none means the system-assigned identity)".to_owned(),
            );
        }
    }
    for (f, value) in [
        ("certificate", &a.certificate),
        ("certificate_password", &a.certificate_password),
    ] {
        if let Some(v) = value
            && !is_single_env_ref(v)
        {
            cx.error(
                cx.at(&field(f)),
                "literal-secret",
                format!("environment `{name}`: `{f}` must be a single `${{NAME}}`"),
                "write `${NAME}` and set NAME in the environment; keep paths and passwords out of the file"
                    .to_owned(),
            );
        }
    }
    if a.scope.is_some() && a.resource.is_some() {
        cx.error(
            cx.key(&path, "scope"),
            "invalid-value",
            format!("environment `{name}`: `scope` and `resource` are exclusive"),
            "keep `resource: https://x` (scope `https://x/.default`) or a full `scope`".to_owned(),
        );
    }
    if let Some(s) = &a.scope
        && !kind.is_delegated()
        && !s.ends_with("/.default")
    {
        cx.error(
            cx.at(&field("scope")),
            "invalid-value",
            format!(
                "environment `{name}`: an app-only token's scope must end with `/.default` (AADSTS70011)"
            ),
            format!("write `{}/.default`", s.trim_end_matches('/')),
        );
    }
}

fn cloud(name: &str, a: &Auth, url: Option<&str>, cx: &mut Ctx<'_>, env: &dyn EnvLookup) {
    use Seg::Key;
    let Some(auth_host) = host_of(a.authority(), env) else {
        return;
    };
    let target = a.resource.as_deref().or(a.scope.as_deref()).or(url);
    let Some(url_host) = target.and_then(|u| host_of(u, env)) else {
        return;
    };
    if let (Some(ac), Some(uc)) = (cloud_of_authority(&auth_host), cloud_of_url(&url_host))
        && ac != uc
    {
        let pos = if a.authority.is_some() {
            cx.at(&[Key("environments"), Key(name), Key("auth"), Key("authority")])
        } else {
            cx.at(&[Key("environments"), Key(name), Key("auth")])
        };
        cx.warn(
            pos,
            "cloud-mismatch",
            format!(
                "environment `{name}`: the authority `{auth_host}` is in the {ac} cloud but `{url_host}` is in the {uc} cloud"
            ),
            "set `authority:` to the cloud of the environment (US Government `https://login.microsoftonline.us`, China `https://login.partner.microsoftonline.cn`)".to_owned(),
        );
    }
}

/// A gateway-mode environment signed in as a person: the gateway's acceptance of such a token is our
/// model (wire-facts E5). An app-only credential is not warned about: no public source shows the gateway
/// accepting one either, but the simulator (and the demo) model it, and operator mode needs no token.
fn gateway(name: &str, a: &Auth, cx: &mut Ctx<'_>) {
    use Seg::Key;
    if !a.kind().is_delegated() {
        return;
    }
    let pos = cx.at(&[Key("environments"), Key(name), Key("auth")]);
    cx.warn(
        pos,
        "gateway-token-model",
        format!(
            "environment `{name}`: the dual-write gateway's acceptance of a `{}` token for https://IntegratorApp.com is our model: Microsoft's tool signs in through the browser and no public source shows this token accepted",
            a.kind().name()
        ),
        "rehearse gateway mode against the real tenant before the weekend; operator mode needs no gateway token".to_owned(),
    );
}

fn approvals(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::{Idx, Key};
    let Some(ap) = &rb.approvals else { return };
    let delegated = |n: &str| {
        rb.environments
            .get(n)
            .and_then(|e| e.auth.as_ref())
            .is_some_and(|a| a.kind().is_delegated())
    };
    match &ap.identity_from {
        Some(n) => {
            let pos = cx.at(&[Key("approvals"), Key("identity_from")]);
            if super::validate::unknown_env(rb, cx, n, pos) && !delegated(n) {
                cx.error(
                    pos,
                    "invalid-value",
                    format!("`identity_from: {n}`: that environment does not sign a person in"),
                    "use an environment with `credential: device_code` or `azure_cli`".to_owned(),
                );
            }
        }
        None => {
            let any = rb.environments.keys().any(|n| delegated(n));
            if !any && (ap.require_identity || !ap.approvers.is_empty() || !ap.approver_groups.is_empty()) {
                cx.error(
                    cx.at(&[Key("approvals")]),
                    "no-identity",
                    "`approvals` needs a signed-in identity but no environment signs a person in".into(),
                    "give one environment `credential: device_code` or `azure_cli` (and `identity_from` naming it)"
                        .to_owned(),
                );
            }
        }
    }
    for (i, g) in ap.approver_groups.iter().enumerate() {
        if uuid::Uuid::parse_str(g).is_err() {
            cx.error(
                cx.at(&[Key("approvals"), Key("approver_groups"), Idx(i)]),
                "invalid-value",
                format!("approver group `{g}` is not an object id (a GUID)"),
                "use the group's object id from Entra ID, not its name (the token's `groups` claim holds ids)"
                    .to_owned(),
            );
        }
    }
    for (i, u) in ap.approvers.iter().enumerate() {
        if !u.contains('@') {
            cx.warn(
                cx.at(&[Key("approvals"), Key("approvers"), Idx(i)]),
                "invalid-value",
                format!("approver `{u}` does not look like a UPN (name@domain)"),
                None,
            );
        }
    }
}
