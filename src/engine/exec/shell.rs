//! `shell`: `sh -c <run>` with the step's `env` (values interpolated), within the step's timeout (real time:
//! a local command does not run faster against the simulator). Exit 0 succeeds; otherwise the step fails with
//! the exit code and the tail of the output, which is also journaled as a log line. `${run.*}` and
//! `${steps.*}` in `run` are interpolated; `${NAME}` is left to the shell, which inherits the environment.

use std::collections::BTreeMap;

use super::{Res, StepCtx, fail, interpolate_step, log};
use crate::engine::event::LogLevel;
use crate::runbook::vars::{Piece, VarRef, parse};

/// Interpolates run and step references only.
fn command(ctx: &StepCtx, run: &str) -> Res<String> {
    let mut out = String::with_capacity(run.len());
    for p in parse(run)? {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var {
                var: VarRef::Env(n), ..
            } => {
                out.push_str("${");
                out.push_str(&n);
                out.push('}');
            }
            Piece::Var { var, .. } => {
                let text = match var {
                    VarRef::Run(n) => format!("${{run.{n}}}"),
                    VarRef::Step { step, name } => format!("${{steps.{step}.{name}}}"),
                    VarRef::Env(_) => String::new(),
                };
                out.push_str(&interpolate_step(ctx, &text)?);
            }
        }
    }
    Ok(out)
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

pub async fn run(ctx: &StepCtx, run: &str, env: &BTreeMap<String, String>) -> Res {
    let cmd = command(ctx, run)?;
    let mut vars = Vec::with_capacity(env.len());
    for (k, v) in env {
        vars.push((k.clone(), interpolate_step(ctx, v)?));
    }
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
