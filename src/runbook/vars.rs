//! `${...}` references: parsing, existence checks (validation) and interpolation (run time).
//!
//! Forms: `${NAME}` (process environment, `[A-Za-z_][A-Za-z0-9_]*`), `${run.id}`, `${run.date}`,
//! `${run.operator}`, `${steps.<id>.<name>}` (a capture of an earlier `http` step), and the run's figures
//! ([`FIGURES`]: `${parity.worst}`, `${errors.per_hour}`, `${sample.differ}`, ...). `$$` is a literal
//! `$`. Strings stay as written in the model; [`interpolate`] runs when a step starts.

use std::collections::BTreeMap;

/// Reads environment variables; a trait so tests and validation need not touch the real environment.
pub trait EnvLookup {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvLookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// One `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarRef {
    Env(String),
    Run(String),
    Step {
        step: String,
        name: String,
    },
    /// One of [`FIGURES`], computed from the run's state when the step starts.
    Figure(String),
}

/// The run's figures a text may use (`notify` above all), each with what it is. Computed from the run's
/// state when the step starts; a figure with nothing measured yet reads `n/a`, never 0.
pub const FIGURES: &[(&str, &str)] = &[
    (
        "parity.worst",
        "the largest |source - target| of the latest counts, any map and company",
    ),
    ("parity.worst_map", "the map (and company) of `parity.worst`"),
    (
        "parity.drifting",
        "how many map/company pairs are outside their tolerance",
    ),
    ("parity.maps", "how many map/company pairs have been counted"),
    (
        "errors.total",
        "dual-write errors of all maps (the sources' totals)",
    ),
    ("errors.per_hour", "error entries seen in the hour up to now"),
    ("sample.checked", "records checked by this run's `sample` steps"),
    (
        "sample.differ",
        "of those, records that differ or are missing on either side",
    ),
    ("alerts.total", "alerts raised in this run"),
];

/// The figure families: a reference that starts with one of these must name one of [`FIGURES`].
const FIGURE_FAMILIES: &[&str] = &["parity", "errors", "sample", "alerts"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    #[error("`${{` at byte {0} is not closed with `}}`")]
    Unclosed(usize),
    #[error(
        "`${{{0}}}` is not a valid reference: use `${{NAME}}`, `${{run.id}}`, `${{run.date}}`, `${{run.operator}}` or `${{steps.<id>.<name>}}`"
    )]
    Malformed(String),
    #[error("environment variable `{0}` is not set")]
    UnsetEnv(String),
    #[error("`${{steps.{step}.{name}}}` has no value: step `{step}` has not captured `{name}`")]
    MissingCapture { step: String, name: String },
    #[error("`${{{0}}}` is not one of the run's figures: {known}", known = figure_names())]
    UnknownFigure(String),
}

fn figure_names() -> String {
    FIGURES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// A piece of a template: literal text or a reference, with its byte offset in the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Var { at: usize, var: VarRef },
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_ref(inner: &str) -> Result<VarRef, VarError> {
    let bad = || VarError::Malformed(inner.to_owned());
    if let Some(rest) = inner.strip_prefix("run.") {
        return match rest {
            "id" | "date" | "operator" => Ok(VarRef::Run(rest.to_owned())),
            _ => Err(bad()),
        };
    }
    if let Some((family, _)) = inner.split_once('.')
        && FIGURE_FAMILIES.contains(&family)
    {
        return if FIGURES.iter().any(|(n, _)| *n == inner) {
            Ok(VarRef::Figure(inner.to_owned()))
        } else {
            Err(VarError::UnknownFigure(inner.to_owned()))
        };
    }
    if let Some(rest) = inner.strip_prefix("steps.") {
        let (step, name) = rest.split_once('.').ok_or_else(bad)?;
        return if is_id(step) && is_id(name) {
            Ok(VarRef::Step {
                step: step.to_owned(),
                name: name.to_owned(),
            })
        } else {
            Err(bad())
        };
    }
    if is_env_name(inner) {
        Ok(VarRef::Env(inner.to_owned()))
    } else {
        Err(bad())
    }
}

/// Splits `text` into literal pieces and references.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, VarError> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Text(&rest[..=i]));
            rest = tail;
            offset += i + 2;
            continue;
        }
        if !after.starts_with('{') {
            out.push(Piece::Text(&rest[..=i]));
            rest = after;
            offset += i + 1;
            continue;
        }
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let close = after.find('}').ok_or(VarError::Unclosed(offset + i))?;
        let var = parse_ref(&after[1..close])?;
        out.push(Piece::Var { at: offset + i, var });
        rest = &after[close + 1..];
        offset += i + 1 + close + 1;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Whether `text` is exactly one `${NAME}` environment reference (what a secret must be).
pub fn is_single_env_ref(text: &str) -> bool {
    matches!(
        parse(text).as_deref(),
        Ok([Piece::Var {
            var: VarRef::Env(_),
            ..
        }])
    )
}

/// The environment variable a `shell` step reads a reference's value from: `${run.operator}` →
/// `CUTOVER_RUN_OPERATOR`, `${steps.get-token.value}` → `CUTOVER_STEP_GET_TOKEN_VALUE` (upper case, `-` as
/// `_`), `${NAME}` → `NAME`. Values reach a command only through its environment, never its text.
pub fn shell_var_name(var: &VarRef) -> String {
    let up = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    match var {
        VarRef::Env(n) => n.clone(),
        VarRef::Run(n) => format!("CUTOVER_RUN_{}", up(n)),
        VarRef::Step { step, name } => format!("CUTOVER_STEP_{}_{}", up(step), up(name)),
        VarRef::Figure(n) => format!("CUTOVER_{}", up(&n.replace('.', "_"))),
    }
}

/// The process environment a `shell` step (and the detached simulator) keeps: what a command needs to find
/// programs, write files and format text, and nothing that could hold a secret. Any other variable reaches a
/// command only when the step names it (`pass_env`, or a value in `env`).
pub const MINIMAL_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "TMPDIR",
    "TERM",
];

/// What interpolation resolves against.
pub struct VarContext<'a> {
    pub env: &'a dyn EnvLookup,
    pub run_id: String,
    /// `YYYY-MM-DD` of the run's start.
    pub run_date: String,
    pub run_operator: String,
    /// Step id → capture name → value.
    pub captures: BTreeMap<String, BTreeMap<String, String>>,
    /// The run's figures by name ([`FIGURES`]); empty outside a running step.
    pub figures: BTreeMap<String, String>,
}

/// Replaces every reference in `text`. Fails on the first unresolvable one, naming it.
pub fn interpolate(text: &str, ctx: &VarContext<'_>) -> Result<String, VarError> {
    let mut out = String::with_capacity(text.len());
    for piece in parse(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var {
                var: VarRef::Env(name),
                ..
            } => {
                out.push_str(&ctx.env.get(&name).ok_or(VarError::UnsetEnv(name))?);
            }
            Piece::Var {
                var: VarRef::Run(name),
                ..
            } => out.push_str(match name.as_str() {
                "id" => &ctx.run_id,
                "date" => &ctx.run_date,
                _ => &ctx.run_operator,
            }),
            Piece::Var {
                var: VarRef::Step { step, name },
                ..
            } => {
                let v = ctx.captures.get(&step).and_then(|c| c.get(&name));
                out.push_str(v.ok_or(VarError::MissingCapture { step, name })?);
            }
            Piece::Var {
                var: VarRef::Figure(name),
                ..
            } => out.push_str(ctx.figures.get(&name).map_or("n/a", String::as_str)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx(env: &dyn EnvLookup) -> VarContext<'_> {
        let mut captures = BTreeMap::new();
        captures.insert(
            "login".to_owned(),
            BTreeMap::from([("token".to_owned(), "abc".to_owned())]),
        );
        VarContext {
            env,
            run_id: "r1".into(),
            run_date: "2026-11-27".into(),
            run_operator: "ana".into(),
            captures,
            figures: BTreeMap::new(),
        }
    }

    #[test]
    fn interpolates_every_form() {
        let env = |n: &str| (n == "FNO_URL").then(|| "https://fno".to_owned());
        let c = ctx(&env);
        let out = interpolate(
            "${FNO_URL}/x/${run.id}-${run.date}-${run.operator}-${steps.login.token}-$$",
            &c,
        );
        assert_eq!(out.unwrap(), "https://fno/x/r1-2026-11-27-ana-abc-$");
        assert_eq!(interpolate("cost $5", &c).unwrap(), "cost $5");
    }

    #[test]
    fn names_what_is_missing() {
        let env = |_: &str| None;
        let c = ctx(&env);
        assert_eq!(interpolate("${NOPE}", &c), Err(VarError::UnsetEnv("NOPE".into())));
        assert!(matches!(
            interpolate("${steps.login.other}", &c),
            Err(VarError::MissingCapture { .. })
        ));
        assert!(matches!(
            interpolate("${run.who}", &c),
            Err(VarError::Malformed(_))
        ));
        assert!(matches!(interpolate("${OPEN", &c), Err(VarError::Unclosed(0))));
    }

    #[test]
    fn secret_must_be_a_single_reference() {
        assert!(is_single_env_ref("${FNO_CLIENT_SECRET}"));
        assert!(!is_single_env_ref("hunter2"));
        assert!(!is_single_env_ref("x${A}"));
        assert!(!is_single_env_ref("${run.id}"));
    }
}
