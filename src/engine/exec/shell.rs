//! `shell`: `sh -c <run>` within the step's timeout (real time: a local command does not run faster against the
//! simulator). Exit 0 succeeds; otherwise the step fails with the exit code and the tail of the output, which is
//! also journaled as a log line.
//!
//! No value reaches the shell as code: `run` is passed as written (`validate` refuses `${run.*}` and
//! `${steps.*}` in it, and so does this executor), and every capture and run value is set in the command's
//! environment instead (`CUTOVER_RUN_ID`, `CUTOVER_STEP_<ID>_<NAME>`, see `vars::shell_var_name`). The command
//! inherits only `vars::MINIMAL_ENV` plus the step's `pass_env`; `env` values are interpolated and set.

use std::collections::BTreeMap;

use super::{Res, StepCtx, fail, interpolate_step, log};
use crate::engine::event::LogLevel;
use crate::runbook::vars::{EnvLookup, MINIMAL_ENV, Piece, VarRef, parse, shell_var_name};

/// The command text: `run` as written, after checking it interpolates nothing.
fn command(run: &str) -> Res<String> {
    for p in parse(run)? {
        if let Piece::Var { var, .. } = &p
            && !matches!(var, VarRef::Env(_))
        {
            return Err(fail(format!(
                "`run` holds a `${{...}}` reference that would be pasted into the command as code; use \"${}\"",
                shell_var_name(var)
            )));
        }
    }
    Ok(run.to_owned())
}

/// The command's whole environment: the minimal inherited set, `pass_env`, the run's values and every
/// capture so far, then the step's own `env` (which wins).
pub(crate) fn environment(
    process: &dyn EnvLookup,
    pass_env: &[String],
    run: [(&str, &str); 3],
    captures: &BTreeMap<String, BTreeMap<String, String>>,
    step_env: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for n in MINIMAL_ENV
        .iter()
        .copied()
        .chain(pass_env.iter().map(String::as_str))
    {
        if let Some(v) = process.get(n) {
            out.insert(n.to_owned(), v);
        }
    }
    for (n, v) in run {
        out.insert(shell_var_name(&VarRef::Run(n.to_owned())), v.to_owned());
    }
    for (step, names) in captures {
        for (name, v) in names {
            let var = VarRef::Step {
                step: step.clone(),
                name: name.clone(),
            };
            out.insert(shell_var_name(&var), v.clone());
        }
    }
    out.extend(step_env);
    out.into_iter().collect()
}

fn tail(s: &str, max: usize) -> &str {
    let s = s.trim_end();
    if s.len() <= max {
        return s;
    }
    let mut at = s.len() - max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

pub async fn run(ctx: &StepCtx, run: &str, env: &BTreeMap<String, String>, pass_env: &[String]) -> Res {
    let cmd = command(run)?;
    let mut step_env = Vec::with_capacity(env.len());
    for (k, v) in env {
        step_env.push((k.clone(), interpolate_step(ctx, v)?));
    }
    let captures: BTreeMap<String, BTreeMap<String, String>> = ctx
        .state
        .read()
        .steps
        .iter()
        .filter(|v| !v.outputs.is_empty())
        .map(|v| (v.info.id.as_str().to_owned(), v.outputs.clone()))
        .collect();
    let run_id = ctx.run_id.as_str().to_owned();
    let vars = environment(
        &crate::runbook::vars::ProcessEnv,
        pass_env,
        [
            ("id", &run_id),
            ("date", &ctx.run_date),
            ("operator", &ctx.run_operator),
        ],
        &captures,
        step_env,
    );
    let o = crate::connectors::shell::run(&cmd, &vars, super::timeout(ctx), &ctx.cancel).await?;
    if o.success() {
        if !o.stdout_tail.trim().is_empty() {
            log(
                ctx,
                LogLevel::Info,
                format!("output: {}", tail(&o.stdout_tail, 500)),
            );
        }
        return Ok(BTreeMap::new());
    }
    let out = format!(
        "{}{}",
        tail(&o.stdout_tail, 1000),
        if o.stderr_tail.trim().is_empty() {
            String::new()
        } else {
            format!("\n{}", tail(&o.stderr_tail, 1000))
        }
    );
    log(
        ctx,
        LogLevel::Error,
        format!("command failed; output tail:\n{out}"),
    );
    let code = o
        .exit_code
        .map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited {c}"));
    Err(fail(format!("`{}` {code}: {}", run, tail(&out, 400))))
}
