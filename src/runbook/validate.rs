//! Semantic validation of a loaded runbook: ids, references, dependency order, secrets, variables,
//! times and the published dual-write limits. Gathers every problem; positions come from the tree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::diag::{Diagnostic, Severity, did_you_mean, sort_and_dedup};
use super::load::{Loaded, diag, load};
use super::model::{EnvKind, InitialSync, MapId, Master, Runbook, StepKind, Tolerance};
use super::tree::{Node, Pos, Seg};
use super::vars::EnvLookup;
use crate::runbook::steps as kind;

/// Published dual-write limit: rows per initial-sync run, per legal entity.
pub const MAX_ROWS_PER_COMPANY: u64 = 500_000;
/// Published dual-write limit: legal entities per initial sync.
pub const MAX_COMPANIES: usize = 40;
/// Waves larger than this are hard to watch and to recover; a warning.
pub const MAX_WAVE_MAPS: usize = 10;

/// Loads and validates `text` (the contents of `file`). `strict` turns unset `${VAR}`s into errors
/// (as `run` does). Every problem is returned, sorted by position.
pub fn validate(text: &str, file: &str, env: &dyn EnvLookup, strict: bool) -> Vec<Diagnostic> {
    validate_loaded(&load(text, file), file, env, strict)
}

/// Validates what [`load`] returned (loading diagnostics included), for callers that also need the
/// model: `run` and `plan` load once, validate, then use `loaded.runbook`.
pub fn validate_loaded(loaded: &Loaded, file: &str, env: &dyn EnvLookup, strict: bool) -> Vec<Diagnostic> {
    let mut diags = loaded.diagnostics.clone();
    if let (Some(rb), Some(tree)) = (&loaded.runbook, &loaded.tree) {
        diags.extend(check(rb, tree, file, env, strict));
    }
    sort_and_dedup(&mut diags);
    diags
}

/// Collects diagnostics, with the tree for positions.
pub(crate) struct Ctx<'a> {
    pub tree: &'a Node,
    pub file: &'a str,
    pub out: Vec<Diagnostic>,
}

impl Ctx<'_> {
    pub fn at(&self, path: &[Seg<'_>]) -> Pos {
        self.tree.pos_at(path)
    }
    pub fn key(&self, path: &[Seg<'_>], key: &str) -> Pos {
        self.tree.key_pos(path, key)
    }
    pub fn push(
        &mut self,
        pos: Pos,
        sev: Severity,
        code: &'static str,
        msg: String,
        hint: impl Into<Option<String>>,
    ) {
        let mut d = diag(self.file, pos, sev, code, msg);
        d.hint = hint.into();
        self.out.push(d);
    }
    pub fn error(&mut self, pos: Pos, code: &'static str, msg: String, hint: impl Into<Option<String>>) {
        self.push(pos, Severity::Error, code, msg, hint);
    }
    pub fn warn(&mut self, pos: Pos, code: &'static str, msg: String, hint: impl Into<Option<String>>) {
        self.push(pos, Severity::Warning, code, msg, hint);
    }
}

fn suggest<'a>(word: &str, pool: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, pool).map(|s| format!("did you mean `{s}`?"))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(crate) fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_semver(s: &str) -> bool {
    let core = s.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn check(rb: &Runbook, tree: &Node, file: &str, env: &dyn EnvLookup, strict: bool) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        tree,
        file,
        out: Vec::new(),
    };
    header(rb, &mut cx);
    environments(rb, &mut cx);
    maps(rb, &mut cx);
    super::validate_flow::phases(rb, &mut cx);
    super::validate_flow::variables(rb, &mut cx, env, strict);
    transport_security(rb, &mut cx, env);
    super::validate_auth::check(rb, &mut cx, env);
    weak_secrets(rb, &mut cx, env);
    checkpoints(rb, &mut cx);
    notify_targets(rb, &mut cx);
    cx.out
}

/// `notify_targets`: a URL written literally carries its access token in the file (warning, as for a `notify`
/// step); a zero `quiet` would page on every tick and a zero `decision_after` on every question.
fn notify_targets(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::Key;
    for (name, t) in &rb.notify_targets {
        if !t.url.contains("${") {
            cx.warn(
                cx.at(&[Key("notify_targets"), Key(name), Key("url")]),
                "literal-webhook",
                format!("notify target `{name}`: the webhook URL is written literally; it carries its own access token"),
                "write `${TEAMS_WEBHOOK_URL}` and set it in the environment".to_owned(),
            );
        }
        for (field, d) in [("quiet", &t.quiet), ("decision_after", &t.decision_after)] {
            if d.as_ref().is_some_and(|d| d.as_secs() == 0) {
                cx.error(
                    cx.at(&[Key("notify_targets"), Key(name), Key(field)]),
                    "invalid-value",
                    format!("notify target `{name}`: `{field}` must be longer than 0s"),
                    None,
                );
            }
        }
    }
}

/// `journal.checkpoints`: the key is named through one `${VAR}` (a key path in the file would travel
/// with the runbook into the journal); `every` is at least 1.
fn checkpoints(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::Key;
    let Some(c) = rb.journal.as_ref().and_then(|j| j.checkpoints.as_ref()) else {
        return;
    };
    match (&c.key, &c.key_vault) {
        (Some(key), None) if !super::vars::is_single_env_ref(key) => cx.error(
            cx.at(&[Key("journal"), Key("checkpoints"), Key("key")]),
            "literal-secret",
            "`journal.checkpoints.key` must name the key file through one `${VAR}`".into(),
            "write `key: ${CUTOVER_CHECKPOINT_KEY}` and set CUTOVER_CHECKPOINT_KEY to the key file's path"
                .to_owned(),
        ),
        (Some(_), None) => {}
        (None, Some(kv)) => key_vault(rb, kv, cx),
        (Some(_), Some(_)) => cx.error(
            cx.at(&[Key("journal"), Key("checkpoints"), Key("key_vault")]),
            "invalid-value",
            "checkpoints are signed with `key` (an Ed25519 key file) or `key_vault` (an Azure Key Vault key), not both"
                .into(),
            "keep one of the two".to_owned(),
        ),
        (None, None) => cx.error(
            cx.at(&[Key("journal"), Key("checkpoints")]),
            "missing-field",
            "`journal.checkpoints` needs a signing key: `key` or `key_vault`".into(),
            "write `key: ${CUTOVER_CHECKPOINT_KEY}` (an Ed25519 key file) or `key_vault: { environment: vault, key: checkpoint-key }`"
                .to_owned(),
        ),
    }
    if c.every == Some(0) {
        cx.error(
            cx.at(&[Key("journal"), Key("checkpoints"), Key("every")]),
            "invalid-value",
            "every must be at least 1".into(),
            None,
        );
    }
    for (i, w) in c.witness.iter().enumerate() {
        let at = cx.at(&[Key("journal"), Key("checkpoints"), Key("witness"), Seg::Idx(i)]);
        match (&w.file, &w.notify) {
            (Some(_), None) => {}
            (None, Some(t)) if rb.notify_targets.contains_key(t) => {}
            (None, Some(t)) => cx.error(
                at,
                "unknown-notify-target",
                format!("witness `notify: {t}` names no `notify_targets` entry"),
                "add it under `notify_targets` (kind and url), or name one that is there".to_owned(),
            ),
            _ => cx.error(
                at,
                "invalid-value",
                "a witness is either `file:` or `notify:`, exactly one".into(),
                "write `- file: /mnt/witness/run.jsonl` or `- notify: oncall`".to_owned(),
            ),
        }
    }
}

/// `journal.checkpoints.key_vault`: a `keyvault` environment of the runbook, a key name as Key Vault
/// allows it (1-127 letters, digits and dashes) and a version of 32 hex digits.
fn key_vault(rb: &Runbook, kv: &super::model::KeyVaultKey, cx: &mut Ctx<'_>) {
    use Seg::Key;
    let here = [Key("journal"), Key("checkpoints"), Key("key_vault")];
    match rb.environments.get(&kv.environment) {
        None => {
            let at = cx.key(&here, "environment");
            unknown_env(rb, cx, &kv.environment, at);
        }
        Some(e) if e.kind != EnvKind::Keyvault => cx.error(
            cx.key(&here, "environment"),
            "invalid-value",
            format!(
                "`key_vault.environment: {}` is a {} environment, not a keyvault one",
                kv.environment,
                format!("{:?}", e.kind).to_lowercase()
            ),
            "name an environment of `kind: keyvault` (url `https://NAME.vault.azure.net`)".to_owned(),
        ),
        Some(_) => {}
    }
    let name_ok =
        (1..=127).contains(&kv.key.len()) && kv.key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !name_ok {
        cx.error(
            cx.key(&here, "key"),
            "invalid-value",
            format!("`key_vault.key: {}` is not a Key Vault key name", kv.key),
            "a key name is 1-127 letters, digits and dashes".to_owned(),
        );
    }
    if let Some(v) = &kv.version
        && !(v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        cx.error(
            cx.key(&here, "version"),
            "invalid-value",
            format!("`key_vault.version: {v}` is not a key version (32 hex digits)"),
            "copy the version from the key's identifier (`.../keys/NAME/VERSION`), or leave it out for the current one"
                .to_owned(),
        );
    }
}

/// `weak-secret`: a secret shorter than 12 characters. It is still masked everywhere, but masking a short
/// value also masks it inside ordinary text, and a short secret is a weak one.
fn weak_secrets(rb: &Runbook, cx: &mut Ctx<'_>, env: &dyn EnvLookup) {
    const WEAK: usize = 12;
    for (name, e) in &rb.environments {
        let Some(a) = &e.auth else { continue };
        for (field, text) in [
            ("client_secret", a.client_secret.as_deref()),
            ("certificate_password", a.certificate_password.as_deref()),
        ] {
            let Some(text) = text else { continue };
            let pieces = super::vars::parse(text);
            let Ok(
                [
                    super::vars::Piece::Var {
                        var: super::vars::VarRef::Env(var),
                        ..
                    },
                ],
            ) = pieces.as_deref()
            else {
                continue;
            };
            let Some(value) = env.get(var) else { continue };
            let n = value.chars().count();
            if n > 0 && n < WEAK {
                cx.warn(
                    cx.at(&[Seg::Key("environments"), Seg::Key(name), Seg::Key("auth"), Seg::Key(field)]),
                    "weak-secret",
                    format!("`{var}` holds a secret of {n} characters (fewer than {WEAK})"),
                    "use a longer secret: it is masked in every output all the same, but a short value is also masked wherever it appears in ordinary text".to_owned(),
                );
            }
        }
    }
}

/// The variable that may name a file holding a client secret instead of the value itself:
/// `client_secret: ${FNO_CLIENT_SECRET}` is satisfied by `FNO_CLIENT_SECRET=...` or by
/// `FNO_CLIENT_SECRET_FILE=/run/secrets/fno` (the file's text, a trailing newline dropped). The value
/// wins when both are set.
pub fn secret_file_var(name: &str) -> String {
    format!("{name}_FILE")
}

/// The variables the runbook's `client_secret`s and `certificate_password`s name (each must be a single
/// `${NAME}`): each may also come from the file `NAME_FILE` names.
pub fn secret_vars(rb: &Runbook) -> BTreeSet<String> {
    rb.environments
        .values()
        .flat_map(|e| {
            let a = e.auth.as_ref();
            [
                a.and_then(|a| a.client_secret.as_deref()),
                a.and_then(|a| a.certificate_password.as_deref()),
                e.token.as_deref(),
            ]
        })
        .flatten()
        .filter_map(|s| match super::vars::parse(s).as_deref() {
            Ok(
                [
                    super::vars::Piece::Var {
                        var: super::vars::VarRef::Env(n),
                        ..
                    },
                ],
            ) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// The address a URL template resolves to when every reference in it is a set environment variable;
/// `None` while any part is unknown (run-time values, unset variables): the transport refuses those
/// at run time with the same rule.
fn resolved_url(text: &str, env: &dyn EnvLookup) -> Option<String> {
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
    Some(out)
}

/// Plain http only to a loopback host (the simulator), https everywhere else, for every address the
/// console would send a request or a secret to: environment URLs, token authorities, `http` step and
/// `notify` URLs. TLS certificates are always verified (the connectors build every client that way), so https is enough.
fn transport_security(rb: &Runbook, cx: &mut Ctx<'_>, env: &dyn EnvLookup) {
    use Seg::{Idx, Key};
    let check = |cx: &mut Ctx<'_>, path: &[Seg<'_>], what: String, text: &str| {
        let Some(url) = resolved_url(text, env) else {
            return;
        };
        // Not a URL at all: the transport names it when the run starts (values are often placeholders here).
        let Ok(parsed) = reqwest::Url::parse(&url) else {
            return;
        };
        if !crate::util::url_allowed(&parsed) {
            let hint =
                "use https; plain http is accepted only for 127.0.0.0/8, ::1 and localhost (the simulator)"
                    .to_owned();
            cx.error(
                cx.at(path),
                "insecure-url",
                format!(
                    "{what} `{}://{}` is refused: the console sends tokens and data only over https",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or("")
                ),
                hint,
            );
        }
    };
    for (name, e) in &rb.environments {
        if let Some(u) = &e.url {
            let path = [Key("environments"), Key(name), Key("url")];
            check(cx, &path, format!("environment `{name}` url"), u);
        }
        if let Some(a) = e.auth.as_ref().and_then(|a| a.authority.as_ref()) {
            let path = [Key("environments"), Key(name), Key("auth"), Key("authority")];
            check(cx, &path, format!("environment `{name}` authority"), a);
        }
    }
    for (pi, phase) in rb.phases.iter().enumerate() {
        for (si, step) in phase.steps.iter().flatten().enumerate() {
            let Some(url) = step.kind.spec().url() else {
                continue;
            };
            let path = [Key("phases"), Idx(pi), Key("steps"), Idx(si), Key("url")];
            check(cx, &path, format!("step `{}` url", step.id.0), url);
        }
    }
}

fn header(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::Key;
    if !is_name(&rb.runbook) {
        let hint = "use lower-case letters, digits and `-`, e.g. `contoso-dual-write`".to_owned();
        cx.error(
            cx.at(&[Key("runbook")]),
            "invalid-name",
            format!("runbook name `{}` is not [a-z0-9-]+", rb.runbook),
            hint,
        );
    }
    if !is_semver(&rb.version) {
        let hint = "write MAJOR.MINOR.PATCH, e.g. `1.4.2`".to_owned();
        cx.error(
            cx.at(&[Key("version")]),
            "invalid-version",
            format!("version `{}` is not semver", rb.version),
            hint,
        );
    }
    if let Some(w) = &rb.freeze_window
        && w.end.at() <= w.start.at()
    {
        cx.error(
            cx.at(&[Key("freeze_window"), Key("end")]),
            "freeze-window-order",
            format!(
                "the freeze window ends ({}) before it starts ({})",
                w.end, w.start
            ),
            "swap `start` and `end`, or fix the date".to_owned(),
        );
    }
    let d = &rb.defaults;
    if d.concurrency == Some(0) {
        cx.error(
            cx.at(&[Key("defaults"), Key("concurrency")]),
            "invalid-value",
            "concurrency must be at least 1".into(),
            None,
        );
    }
    if let Some(m) = &d.max_response
        && m.bytes().is_none_or(|n| n == 0)
    {
        cx.error(
            cx.at(&[Key("defaults"), Key("max_response")]),
            "invalid-value",
            "max_response is not a size above 0".into(),
            "write bytes, or a number with KiB, MiB or GiB, e.g. `64MiB`".to_owned(),
        );
    }
    if d.max_pages == Some(0) {
        cx.error(
            cx.at(&[Key("defaults"), Key("max_pages")]),
            "invalid-value",
            "max_pages must be at least 1".into(),
            None,
        );
    }
}

fn environments(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::Key;
    if rb.environments.is_empty() {
        let hint = "declare at least one, e.g. `fno: {kind: fno, url: ${FNO_URL}, auth: ...}`".to_owned();
        cx.error(
            cx.at(&[Key("environments")]),
            "no-environments",
            "no environments are declared".into(),
            hint,
        );
    }
    for (name, e) in &rb.environments {
        let path = [Key("environments"), Key(name)];
        if let Some(secret) = e.auth.as_ref().and_then(|a| a.client_secret.as_ref())
            && !super::vars::is_single_env_ref(secret)
        {
            let p = [Key("environments"), Key(name), Key("auth"), Key("client_secret")];
            cx.error(
                cx.at(&p),
                "literal-secret",
                format!("environment `{name}` has a literal client secret"),
                "write `${NAME}` and set NAME in the environment; remove the secret from the file (and rotate it)"
                    .to_owned(),
            );
        }
        for (field, kind) in e.lake_fields() {
            if kind != e.kind {
                let p = cx.key(&path, field);
                cx.error(
                    p,
                    "invalid-field",
                    format!(
                        "`{field}` applies only to {} environments",
                        format!("{kind:?}").to_lowercase()
                    ),
                    None,
                );
            }
        }
        if matches!(e.kind, EnvKind::Adls | EnvKind::Databricks) && (e.link.is_some() || e.mode.is_some()) {
            let field = if e.link.is_some() { "link" } else { "mode" };
            let p = cx.key(&path, field);
            cx.error(
                p,
                "invalid-field",
                format!("`{field}` applies only to dual-write environments"),
                None,
            );
        }
        match e.kind {
            EnvKind::Adls => lake_storage(name, e, cx),
            EnvKind::Databricks => lake_workspace(name, e, cx),
            EnvKind::Keyvault => {
                if e.url.is_none() {
                    cx.error(
                        cx.at(&path),
                        "missing-field",
                        format!("keyvault environment `{name}` has no `url`"),
                        "add `url: https://NAME.vault.azure.net` (the vault's URI)".to_owned(),
                    );
                }
                if e.link.is_some() || e.mode.is_some() {
                    let field = if e.link.is_some() { "link" } else { "mode" };
                    cx.error(
                        cx.key(&path, field),
                        "invalid-field",
                        format!("`{field}` applies only to dual-write environments"),
                        None,
                    );
                }
            }
            EnvKind::Dualwrite => {
                match &e.link {
                    None => cx.error(
                        cx.at(&path),
                        "missing-field",
                        format!("dual-write environment `{name}` has no `link`"),
                        "add `link: [fno, dataverse]` naming the linked environments".to_owned(),
                    ),
                    Some(link) => {
                        if link.len() != 2 {
                            let p = cx.at(&[Key("environments"), Key(name), Key("link")]);
                            cx.error(
                                p,
                                "invalid-value",
                                "`link` names exactly two environments".into(),
                                None,
                            );
                        }
                        for (i, l) in link.iter().enumerate() {
                            let p = cx.at(&[Key("environments"), Key(name), Key("link"), Seg::Idx(i)]);
                            unknown_env(rb, cx, l, p);
                        }
                    }
                }
                if e.mode == Some(super::model::DualWriteMode::Gateway) {
                    let at = cx.at(&[Key("environments"), Key(name), Key("mode")]);
                    cx.warn(
                        at,
                        "gateway-unsupported",
                        format!(
                            "`{name}` drives the dual-write management gateway: unsupported by Microsoft (the API its public automation tool calls; it can change at any time)"
                        ),
                        "the console, plan and report say so; `mode: operator` is the supported way".to_owned(),
                    );
                    let delegated = e.auth.as_ref().is_some_and(|a| a.kind().is_delegated());
                    if !delegated {
                        cx.warn(
                            at,
                            "gateway-needs-user",
                            format!(
                                "gateway mode in `{name}` needs a delegated user sign-in (a token for https://IntegratorApp.com); the gateway takes no app-only client credentials"
                            ),
                            "give it `auth: { credential: device_code, ..., resource: https://IntegratorApp.com }` and `cutover login` before the weekend, or use `mode: operator`".to_owned(),
                        );
                    }
                }
                if e.mode == Some(super::model::DualWriteMode::Gateway) && e.url.is_none() {
                    let hint = "add the gateway `url`, or use `mode: operator`".to_owned();
                    cx.error(
                        cx.at(&path),
                        "missing-field",
                        format!("gateway mode needs a `url` in `{name}`"),
                        hint,
                    );
                }
            }
            EnvKind::Fno | EnvKind::Dataverse | EnvKind::Http => {
                if e.url.is_none() {
                    let hint = "add `url: ${...}`".to_owned();
                    cx.error(
                        cx.at(&path),
                        "missing-field",
                        format!("environment `{name}` has no `url`"),
                        hint,
                    );
                }
                if e.link.is_some() || e.mode.is_some() {
                    let field = if e.link.is_some() { "link" } else { "mode" };
                    let p = cx.key(&path, field);
                    cx.error(
                        p,
                        "invalid-field",
                        format!("`{field}` applies only to dual-write environments"),
                        None,
                    );
                }
            }
        }
    }
}

/// An `adls` environment: an account and a container named as Azure Storage allows.
fn lake_storage(name: &str, e: &super::model::Environment, cx: &mut Ctx<'_>) {
    use Seg::Key;
    let path = [Key("environments"), Key(name)];
    let literal = |v: &str| !v.contains("${");
    match (&e.auth, &e.sas) {
        (Some(_), Some(_)) => {
            let p = cx.key(&path, "sas");
            cx.error(
                p,
                "invalid-field",
                format!("environment `{name}` has both `auth` and `sas`"),
                "keep `auth` (an Entra token for Azure Storage) or `sas: ${VAR}` (a shared access signature)"
                    .to_owned(),
            );
        }
        (None, Some(t)) if !super::vars::is_single_env_ref(t) => {
            let p = cx.key(&path, "sas");
            cx.error(
                p,
                "literal-secret",
                format!("environment `{name}` has a literal shared access signature"),
                "write `${NAME}` and set NAME in the environment; remove the signature from the file (and rotate the key it was signed with)"
                    .to_owned(),
            );
        }
        _ => {}
    }
    match e.account.as_deref() {
        None => cx.error(
            cx.at(&path),
            "missing-field",
            format!("adls environment `{name}` has no `account`"),
            "add `account: <storage account name>`".to_owned(),
        ),
        Some(a)
            if literal(a) && !(3..=24).contains(&a.len())
                || literal(a) && !a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            let p = cx.key(&path, "account");
            cx.error(
                p,
                "invalid-value",
                format!("`{a}` is not a storage account name"),
                "3 to 24 lower-case letters and digits".to_owned(),
            );
        }
        Some(_) => {}
    }
    match e.container.as_deref() {
        None => cx.error(
            cx.at(&path),
            "missing-field",
            format!("adls environment `{name}` has no `container`"),
            "add `container: dataverse-<envname>-<orgUniqueName>` (the container Synapse Link exports to)"
                .to_owned(),
        ),
        Some(c)
            if literal(c)
                && (!(3..=63).contains(&c.len())
                    || c.starts_with('-')
                    || c.ends_with('-')
                    || c.contains("--")
                    || !c
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')) =>
        {
            let p = cx.key(&path, "container");
            cx.error(
                p,
                "invalid-value",
                format!("`{c}` is not a container name"),
                "3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit"
                    .to_owned(),
            );
        }
        Some(_) => {}
    }
    if let Some(f) = e.folder.as_deref()
        && (f.contains("..") || f.contains('?') || f.contains('#') || f.trim_matches('/').is_empty())
    {
        let p = cx.key(&path, "folder");
        cx.error(
            p,
            "invalid-value",
            format!("`{f}` is not a folder inside the container"),
            "a path such as `exports/prod`, without `..`, `?` or `#`".to_owned(),
        );
    }
}

/// A `databricks` environment: a workspace URL, and a token from `auth` or from one `${VAR}`.
fn lake_workspace(name: &str, e: &super::model::Environment, cx: &mut Ctx<'_>) {
    use Seg::Key;
    let path = [Key("environments"), Key(name)];
    if e.url.is_none() {
        cx.error(
            cx.at(&path),
            "missing-field",
            format!("databricks environment `{name}` has no `url`"),
            "add the workspace URL, e.g. `url: https://adb-1234567890123456.7.azuredatabricks.net`"
                .to_owned(),
        );
    }
    match (&e.auth, &e.token) {
        (Some(_), Some(_)) => {
            let p = cx.key(&path, "token");
            cx.error(
                p,
                "invalid-field",
                format!("environment `{name}` has both `auth` and `token`"),
                "keep `auth` (an Entra token for Azure Databricks) or `token: ${VAR}` (a Databricks token)"
                    .to_owned(),
            );
        }
        (None, Some(t)) if !super::vars::is_single_env_ref(t) => {
            let p = cx.key(&path, "token");
            cx.error(
                p,
                "literal-secret",
                format!("environment `{name}` has a literal token"),
                "write `${NAME}` and set NAME in the environment; remove the token from the file (and revoke it)"
                    .to_owned(),
            );
        }
        _ => {}
    }
    for (pname, id) in &e.pipelines {
        if id.trim().is_empty() {
            let p = cx.at(&[Key("environments"), Key(name), Key("pipelines"), Key(pname)]);
            cx.error(p, "invalid-value", format!("pipeline `{pname}` has no id"), None);
        }
    }
}

/// What is wrong with a map filter, if anything: empty, a whole query string, unbalanced quotes or parentheses.
fn filter_problem(e: &str) -> Option<String> {
    let t = e.trim();
    if t.is_empty() {
        return Some("it is empty".into());
    }
    if t.starts_with('$') || t.contains('&') || t.contains('?') {
        return Some("write the expression only, without `$filter=`, `?` or `&`".into());
    }
    let mut depth = 0i32;
    let mut quoted = false;
    for c in t.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Some("a `)` closes nothing".into());
                }
            }
            _ => {}
        }
    }
    if quoted {
        return Some("a string literal is not closed (quotes inside one are doubled: `''`)".into());
    }
    (depth != 0).then(|| "parentheses are not balanced".into())
}

/// Reports `name` if it is not an environment; returns whether it exists.
pub(crate) fn unknown_env(rb: &Runbook, cx: &mut Ctx<'_>, name: &str, pos: Pos) -> bool {
    if rb.environments.contains_key(name) {
        return true;
    }
    let pool: Vec<&str> = rb.environments.keys().map(String::as_str).collect();
    let hint =
        suggest(name, pool.iter().copied()).unwrap_or_else(|| format!("environments: {}", pool.join(", ")));
    cx.error(pos, "unknown-env", format!("unknown environment `{name}`"), hint);
    false
}

/// Reports `id` if it is not a map; returns whether it exists.
pub(crate) fn unknown_map(rb: &Runbook, cx: &mut Ctx<'_>, id: &MapId, pos: Pos) -> bool {
    if rb.maps.contains_key(id) {
        return true;
    }
    let hint = suggest(id.as_str(), rb.maps.keys().map(MapId::as_str))
        .unwrap_or_else(|| "declare it under `maps:`".to_owned());
    cx.error(pos, "unknown-map", format!("unknown map `{id}`"), hint);
    false
}

fn maps(rb: &Runbook, cx: &mut Ctx<'_>) {
    use Seg::{Idx, Key};
    for (id, m) in &rb.maps {
        let base = [Key("maps"), Key(id.as_str())];
        for (field, endpoint) in [("source", &m.source), ("target", &m.target)] {
            let p = cx.at(&[base[0], base[1], Key(field)]);
            match endpoint.split_once(':') {
                Some((env, entity)) if !env.is_empty() && !entity.is_empty() => {
                    unknown_env(rb, cx, env, p);
                }
                _ => cx.error(
                    p,
                    "invalid-endpoint",
                    format!("`{endpoint}` is not `environment:EntitySet`"),
                    "write e.g. `fno:CustomersV3` or `dataverse:accounts`".to_owned(),
                ),
            }
        }
        for (i, dep) in m.depends_on.iter().enumerate() {
            let p = cx.at(&[base[0], base[1], Key("depends_on"), Idx(i)]);
            if unknown_map(rb, cx, dep, p) && dep == id {
                cx.error(
                    p,
                    "dependency-cycle",
                    format!("map `{id}` depends on itself"),
                    None,
                );
            }
        }
        if m.master == Some(Master::LastWriteWins) {
            cx.warn(
                cx.at(&[base[0], base[1], Key("master")]),
                "last-write-wins",
                format!("map `{id}`: `master: last_write_wins` is deprecated: `master` is the initial-sync master only"),
                "dual-write has no conflict rule to configure (live sync is transactional); write `fno` or `dataverse`, the side whose rows the initial sync copies"
                    .to_owned(),
            );
        }
        if let Some(x) = &m.initial_sync_execution_id
            && x.trim().is_empty()
        {
            let pos = cx.at(&[base[0], base[1], Key("initial_sync_execution_id")]);
            cx.error(
                pos,
                "invalid-value",
                format!("map `{id}`: `initial_sync_execution_id` is empty"),
                "the DMF execution id of the map's initial sync (Data management > Execution history), or leave the field out".to_owned(),
            );
        }
        for s in m.error_sources.iter().flatten() {
            if !super::model::ERROR_SOURCES.contains(&s.as_str()) {
                let pos = cx.at(&[base[0], base[1], Key("error_sources")]);
                cx.error(
                    pos,
                    "invalid-value",
                    format!("map `{id}`: `{s}` is not an error source"),
                    format!("one of {}", super::model::ERROR_SOURCES.join(", ")),
                );
            }
        }
        if m.error_sources.as_ref().is_some_and(Vec::is_empty) {
            let pos = cx.at(&[base[0], base[1], Key("error_sources")]);
            cx.error(
                pos,
                "invalid-value",
                format!("map `{id}`: `error_sources` is empty"),
                "name at least one source, or leave the field out for the mode's defaults".to_owned(),
            );
        }
        if let Some(l) = &m.company_lookup {
            let pos = cx.at(&[base[0], base[1], Key("company_lookup")]);
            let ident = !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !l.starts_with('_');
            if !ident {
                let hint = match l.strip_prefix('_').and_then(|x| x.strip_suffix("_value")) {
                    Some(inner) => {
                        format!("write the lookup's logical name `{inner}`, not its value property")
                    }
                    None => {
                        "a lookup's logical name: lower-case letters, digits and `_`, e.g. `msdyn_company`"
                            .to_owned()
                    }
                };
                cx.error(
                    pos,
                    "invalid-value",
                    format!("company_lookup `{l}` is not a lookup name"),
                    hint,
                );
            } else if m.companies.is_empty() {
                cx.warn(
                    pos,
                    "unused-company-lookup",
                    format!("map `{id}` names a company lookup but no `companies`"),
                    "the lookup is used for per-company parity and key lookups; list the legal entities under `companies`"
                        .to_owned(),
                );
            }
        }
        if let Some(f) = &m.filter {
            for (side, expr) in [("source", &f.source), ("target", &f.target)] {
                let Some(e) = expr else { continue };
                let pos = cx.at(&[base[0], base[1], Key("filter"), Key(side)]);
                if let Some(problem) = filter_problem(e) {
                    cx.error(
                        pos,
                        "invalid-filter",
                        format!("map `{id}` {side} filter: {problem}"),
                        "an OData $filter expression only, e.g. `PartyType eq 'Organization'`".to_owned(),
                    );
                }
            }
        }
        if let Some(Tolerance::Percent(p)) = &m.tolerance {
            let ok = p
                .strip_suffix('%')
                .and_then(|n| n.parse::<f64>().ok())
                .is_some_and(|n| (0.0..=100.0).contains(&n));
            if !ok {
                let pos = cx.at(&[base[0], base[1], Key("tolerance")]);
                cx.error(
                    pos,
                    "invalid-value",
                    format!("tolerance `{p}` is not a count or a percentage"),
                    None,
                );
            }
        }
        value_maps(id, m, cx);
        ownership(id, m, cx);
        if m.companies.len() > MAX_COMPANIES {
            cx.warn(
                cx.at(&[base[0], base[1], Key("companies")]),
                "dual-write-limit",
                format!("map `{id}` has {} legal entities; dual-write's initial sync takes at most {MAX_COMPANIES}", m.companies.len()),
                "split the companies over several runs or load some by DMF (`initial_sync: none`)".to_owned(),
            );
        }
    }
    map_cycles(rb, cx);
}

/// A map's owner: a warning when it has none; each field owner says why.
fn ownership(id: &MapId, m: &super::model::MapSpec, cx: &mut Ctx<'_>) {
    use Seg::Key;
    if m.owner.is_none() {
        cx.warn(
            cx.at(&[Key("maps"), Key(id.as_str())]),
            "no-owner",
            format!("map `{id}` names no owner: who changes its rows after go-live is not written down"),
            "add `owner: fno` or `owner: dataverse` (and `field_owners: { FIELD: { owner, why } }` for the fields the other side owns); dual-write has no conflict rule to fall back on".to_owned(),
        );
    }
    for (field, fo) in &m.field_owners {
        if fo.why.trim().is_empty() {
            cx.error(
                cx.at(&[Key("maps"), Key(id.as_str()), Key("field_owners"), Key(field)]),
                "invalid-value",
                format!("map `{id}`: the owner of `{field}` has no `why`"),
                "one line on who changes it and why there, e.g. `why: credit control is done in Sales`"
                    .to_owned(),
            );
        }
    }
}

/// A map's `values`: each field is a compared F&O field with at least one value, and no Dataverse value is
/// the image of two F&O values (the way back would be ambiguous).
fn value_maps(id: &MapId, m: &super::model::MapSpec, cx: &mut Ctx<'_>) {
    use Seg::Key;
    for (field, vals) in &m.values {
        let pos = cx.at(&[Key("maps"), Key(id.as_str()), Key("values"), Key(field)]);
        if !m.compare.contains_key(field) {
            let hint = suggest(field, m.compare.keys().map(String::as_str)).unwrap_or_else(|| {
                "a value map is for a compared field: add it to `compare` (F&O field: Dataverse column)"
                    .to_owned()
            });
            cx.error(
                pos,
                "unknown-field",
                format!("map `{id}`: `values.{field}` is not a field of `compare`"),
                hint,
            );
        }
        if vals.is_empty() {
            cx.error(
                pos,
                "invalid-value",
                format!("map `{id}`: `values.{field}` maps no value"),
                "list each F&O enum value with its Dataverse option value, e.g. `{ Open: 1, Closed: 2 }`"
                    .to_owned(),
            );
        }
        let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
        for (fno, dv) in vals {
            if let Some(first) = seen.get(dv) {
                cx.warn(
                    pos,
                    "value-mapped-twice",
                    format!("map `{id}`: `values.{field}` maps both `{first}` and `{fno}` to option {dv}"),
                    format!(
                        "a Dataverse option that two F&O values share cannot be written back to F&O unambiguously: give `{fno}` its own option, or confirm the map is one-way"
                    ),
                );
            } else {
                seen.insert(*dv, fno);
            }
        }
    }
}

/// Cycles in `depends_on` (named in order), found by depth-first search.
fn map_cycles(rb: &Runbook, cx: &mut Ctx<'_>) {
    let mut state: HashMap<&MapId, u8> = HashMap::new(); // 1 = on stack, 2 = done
    let mut reported: BTreeSet<Vec<MapId>> = BTreeSet::new();
    for start in rb.maps.keys() {
        let mut stack: Vec<(&MapId, usize)> = vec![(start, 0)];
        if state.contains_key(start) {
            continue;
        }
        state.insert(start, 1);
        while let Some((node, i)) = stack.pop() {
            let deps = rb.maps.get(node).map_or(&[][..], |m| &m.depends_on[..]);
            if let Some(dep) = deps.get(i) {
                stack.push((node, i + 1));
                if dep == node || !rb.maps.contains_key(dep) {
                    continue;
                }
                match state.get(dep) {
                    None => {
                        state.insert(dep, 1);
                        stack.push((dep, 0));
                    }
                    Some(1) => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<MapId> = stack[from..].iter().map(|(n, _)| (*n).clone()).collect();
                        let mut key = cycle.clone();
                        key.sort();
                        if reported.insert(key) {
                            cycle.push(dep.clone());
                            let names: Vec<&str> = cycle.iter().map(MapId::as_str).collect();
                            let p =
                                cx.at(&[Seg::Key("maps"), Seg::Key(node.as_str()), Seg::Key("depends_on")]);
                            cx.error(
                                p,
                                "dependency-cycle",
                                format!("maps depend on each other in a cycle: {}", names.join(" → ")),
                                "remove one `depends_on` entry to break the cycle".to_owned(),
                            );
                        }
                    }
                    Some(_) => {}
                }
            } else {
                state.insert(node, 2);
            }
        }
    }
}

/// Rows per legal entity for the dual-write limit check, when the map has an estimate.
pub(crate) fn rows_per_company(rb: &Runbook, id: &MapId) -> Option<Vec<(String, u64)>> {
    let m = rb.maps.get(id)?;
    Some(match m.rows.as_ref()? {
        super::model::Rows::PerCompany(per) => per.iter().map(|(c, n)| (c.clone(), *n)).collect(),
        super::model::Rows::Total(n) => {
            let k = u64::try_from(m.companies.len().max(1)).unwrap_or(1);
            vec![("(each company)".to_owned(), n.div_ceil(k))]
        }
    })
}

/// Whether a map is synced by dual-write's initial sync (as opposed to loaded beforehand).
pub(crate) fn needs_initial_sync(rb: &Runbook, id: &MapId) -> bool {
    rb.maps
        .get(id)
        .is_some_and(|m| m.initial_sync() == InitialSync::DualWrite)
}

/// The environments a step names, as (field, environment, the kind it must be).
pub(crate) fn kind_env(kind: &StepKind) -> Vec<(&'static str, &str, Option<EnvKind>)> {
    kind.spec().envs()
}

/// Step ids declared in the runbook, in listed order, with (phase index, step index).
pub(crate) fn step_index(rb: &Runbook) -> BTreeMap<&str, (usize, usize)> {
    let mut out = BTreeMap::new();
    for (pi, phase) in rb.phases.iter().enumerate() {
        for (si, step) in phase.steps.iter().flatten().enumerate() {
            out.entry(step.id.as_str()).or_insert((pi, si));
        }
    }
    out
}

/// A `dmf.import` package file as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageFile {
    Missing,
    /// It exists but could not be read (the I/O error's words).
    Unreadable(String),
    Bytes(Vec<u8>),
}

/// `dmf.import` packages: that each exists and reads, and what [`kind::dmf_import::check_package`] finds in it
/// (the sha256 pin, the manifest's version, the entity order against the maps' `depends_on`, unexpected
/// entities). `read` is asked about each `package_file` as written (relative to the runbook's folder); the
/// caller does the I/O, so this module stays pure.
pub fn package_diagnostics(
    loaded: &Loaded,
    file: &str,
    read: &dyn Fn(&str) -> PackageFile,
) -> Vec<Diagnostic> {
    use kind::dmf_import::PackageField;
    let (Some(rb), Some(tree)) = (&loaded.runbook, &loaded.tree) else {
        return Vec::new();
    };
    let mut cx = Ctx {
        tree,
        file,
        out: Vec::new(),
    };
    for (pi, phase) in rb.phases.iter().enumerate() {
        for (si, step) in phase.steps.iter().flatten().enumerate() {
            let StepKind::DmfImport(imp) = &step.kind else {
                continue;
            };
            let package_file = &imp.package_file;
            if package_file.contains("${") || kind::dmf_import::package_path_problem(package_file).is_some() {
                continue;
            }
            let at = |key: &'static str| {
                [
                    Seg::Key("phases"),
                    Seg::Idx(pi),
                    Seg::Key("steps"),
                    Seg::Idx(si),
                    Seg::Key(key),
                ]
            };
            let bytes = match read(package_file) {
                PackageFile::Bytes(b) => b,
                PackageFile::Missing => {
                    cx.error(
                        cx.at(&at("package_file")),
                        "missing-package",
                        format!("package `{package_file}` does not exist"),
                        "the path is relative to the runbook's folder".to_owned(),
                    );
                    continue;
                }
                PackageFile::Unreadable(e) => {
                    cx.error(
                        cx.at(&at("package_file")),
                        "unreadable-package",
                        format!("package `{package_file}` cannot be read: {e}"),
                        None,
                    );
                    continue;
                }
            };
            for f in kind::dmf_import::check_package(rb, imp, &bytes).findings {
                let pos = match f.field {
                    PackageField::Step => cx.at(&at("id")[..4]),
                    PackageField::PackageFile => cx.at(&at("package_file")),
                    PackageField::PackageVersion => cx.at(&at("package_version")),
                    PackageField::PackageSha256 => cx.at(&at("package_sha256")),
                };
                if f.error {
                    cx.error(pos, f.code, f.message, f.hint);
                } else {
                    cx.warn(pos, f.code, f.message, f.hint);
                }
            }
        }
    }
    cx.out
}

#[cfg(test)]
mod security_tests {
    use super::*;

    const RUNBOOK: &str = r#"
runbook: sample
version: 1.0.0
environments:
  fno:
    kind: fno
    url: ${FNO_URL}
    auth: { tenant: t, client_id: c, client_secret: "${FNO_SECRET}", authority: "http://login.example.com" }
  dataverse:
    kind: dataverse
    url: http://127.0.0.1:8080
phases:
  - id: p
    steps:
      - { id: hook, kind: notify, url: "${HOOK_URL}", text: hi }
      - { id: call, kind: http, url: "http://[::1]:9/x" }
      - { id: later, kind: http, url: "http://${HOST}/x?${steps.call.v}" }
"#;

    fn codes(env: &dyn EnvLookup) -> Vec<(u32, &'static str, String)> {
        validate(RUNBOOK, "r.yaml", env, true)
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| (d.line, d.code, d.message))
            .collect()
    }

    #[test]
    fn plain_http_is_an_error_except_to_loopback() {
        let env = |n: &str| match n {
            "FNO_URL" => Some("http://contoso.operations.dynamics.com".to_owned()),
            "HOOK_URL" => Some("http://10.1.2.3/hook".to_owned()),
            "HOST" => Some("example.com".to_owned()),
            _ => Some("x".to_owned()),
        };
        let errors = codes(&env);
        let insecure: Vec<_> = errors.iter().filter(|e| e.1 == "insecure-url").collect();
        assert_eq!(insecure.len(), 3, "{errors:?}");
        assert_eq!(insecure[0].0, 7, "{errors:?}");
        assert!(
            insecure[0]
                .2
                .contains("`http://contoso.operations.dynamics.com` is refused")
        );
        assert!(insecure[1].2.contains("authority `http://login.example.com`"));
        assert!(insecure[2].2.contains("step `hook` url `http://10.1.2.3`"));
        // https, loopback http and URLs that depend on run-time values pass validation.
        let env = |n: &str| match n {
            "FNO_URL" => Some("https://contoso.operations.dynamics.com".to_owned()),
            "HOOK_URL" => Some("https://hooks.example.com/x".to_owned()),
            _ => Some("x".to_owned()),
        };
        let errors = codes(&env);
        let insecure: Vec<_> = errors.iter().filter(|e| e.1 == "insecure-url").collect();
        assert_eq!(insecure.len(), 1, "only the literal authority: {errors:?}");
    }

    #[test]
    fn a_client_secret_may_come_from_a_file_named_by_a_variable() {
        let base = |n: &str| match n {
            "FNO_URL" => Some("https://f.example.com".to_owned()),
            "HOOK_URL" => Some("https://h.example.com".to_owned()),
            "HOST" => Some("127.0.0.1".to_owned()),
            _ => None,
        };
        let unset = codes(&base);
        assert!(
            unset
                .iter()
                .any(|e| e.1 == "unset-variable" && e.2.contains("FNO_SECRET")),
            "{unset:?}"
        );
        let with_file = |n: &str| {
            (n == "FNO_SECRET_FILE")
                .then(|| "/run/secrets/fno".to_owned())
                .or_else(|| base(n))
        };
        let errors = codes(&with_file);
        assert!(!errors.iter().any(|e| e.2.contains("FNO_SECRET")), "{errors:?}");
        // Only a client secret's variable may come from a file.
        let host_file = |n: &str| {
            (n == "HOST_FILE")
                .then(|| "/tmp/h".to_owned())
                .or_else(|| with_file(n))
        };
        let host_unset = |n: &str| if n == "HOST" { None } else { host_file(n) };
        assert!(
            codes(&host_unset)
                .iter()
                .any(|e| e.2.contains("`HOST` is not set"))
        );
        let rb = crate::runbook::load(RUNBOOK, "r.yaml").runbook.unwrap();
        assert_eq!(secret_vars(&rb).into_iter().collect::<Vec<_>>(), ["FNO_SECRET"]);
        assert_eq!(secret_file_var("FNO_SECRET"), "FNO_SECRET_FILE");
    }
}
