//! `shell`: a local command; exit 0 is success.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::Runbook;

/// A local command; exit 0 is success. `run` is passed to `sh -c` as written: captures and `run.*` values
/// reach it only as environment variables (`"$CUTOVER_STEP_<ID>_<NAME>"`, `"$CUTOVER_RUN_ID"`,
/// `"$CUTOVER_RUN_DATE"`, `"$CUTOVER_RUN_OPERATOR"`), never pasted into the command text. The command gets a
/// minimal environment (PATH, HOME, LANG, TZ, ...): any other variable only when `pass_env` or `env` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct Shell {
    pub run: String,
    /// Extra environment variables for the command (values may use `${...}`: they are set, not run).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables of cutover's own environment passed through to the command as they are (beyond the
    /// minimal set); nothing else is inherited, so a secret reaches a command only when named here or in `env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_env: Vec<String>,
}

impl Kind for Shell {
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        120
    }

    fn handle_kind(&self) -> Option<&'static str> {
        None
    }

    /// No handle and no safe way to ask what a command did.
    fn reconcile(&self) -> Reconcile {
        Reconcile::AskOperator
    }

    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Runbook
    }

    fn maps(&self) -> Option<&MapSelection> {
        None
    }

    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        Vec::new()
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        use crate::runbook::vars::{MINIMAL_ENV, Piece, VarRef, parse, shell_var_name};
        let Ok(pieces) = parse(&self.run) else {
            // An unreadable reference is reported by the variable checks.
            return;
        };
        for p in pieces {
            let Piece::Var { var, .. } = p else { continue };
            let name = shell_var_name(&var);
            match &var {
                VarRef::Env(n) => {
                    let known = MINIMAL_ENV.contains(&n.as_str())
                        || self.pass_env.iter().any(|p| p == n)
                        || self.env.contains_key(n);
                    if !known {
                        check.error(
                            "run",
                            "shell-env",
                            format!("`${{{n}}}` is not in the command's environment: a shell step inherits only PATH, HOME, LANG, TZ and the like"),
                            format!("name it in `pass_env: [{n}]`, or set it in `env:`"),
                        );
                    }
                }
                VarRef::Run(_) | VarRef::Step { .. } | VarRef::Figure(_) => {
                    let text = match &var {
                        VarRef::Run(r) => format!("run.{r}"),
                        VarRef::Step { step, name } => format!("steps.{step}.{name}"),
                        VarRef::Figure(n) => n.clone(),
                        VarRef::Env(_) => String::new(),
                    };
                    check.error(
                        "run",
                        "shell-interpolation",
                        format!("`${{{text}}}` inside `run` would paste a value into the command as code"),
                        format!("use the environment variable instead, double-quoted: \"${name}\" (every capture and run value is set for the command)"),
                    );
                }
            }
        }
        for n in &self.pass_env {
            let ok = n
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                check.error(
                    "pass_env",
                    "invalid-value",
                    format!("`{n}` is not an environment variable name"),
                    None,
                );
            }
        }
    }
}
