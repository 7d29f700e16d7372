//! `http`: one request through `connectors::http`, with `env`'s base URL and token (a `url` is sent with the
//! token only when it is under `env`'s runbook URL; any other URL, or one without `env`, goes unauthenticated), `expect.status`, optional polling (`poll.every` is environment time; the budget is
//! the step's timeout) and captures by JSON pointer, returned as the step's outputs (strings unquoted, other
//! JSON as text). `${...}` in `path`, `url` and every string of `body` is interpolated with the run's captures.
//! GET/PUT/DELETE are retried as reads; POST/PATCH only when provably unsent (see the transport's docs).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;

use super::maps::text;
use super::{Res, StepCtx, fail, interpolate_step, poll_with};
use crate::connectors::http::{Condition, HttpCall, PollSpec, request};
use crate::connectors::transport::Idempotency;
use crate::runbook::steps as kind;
use crate::runbook::{HttpMethod, Step, StepKind};

fn body_interpolated(ctx: &StepCtx, v: &Value) -> Res<Value> {
    Ok(match v {
        Value::String(s) => Value::String(interpolate_step(ctx, s)?),
        Value::Array(a) => Value::Array(a.iter().map(|x| body_interpolated(ctx, x)).collect::<Res<_>>()?),
        Value::Object(o) => {
            let mut out = serde_json::Map::new();
            for (k, x) in o {
                out.insert(k.clone(), body_interpolated(ctx, x)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

pub async fn run(ctx: &StepCtx, step: &Step) -> Res {
    let StepKind::Http(h) = &step.kind else {
        return Err(fail("not an http step"));
    };
    let kind::Http {
        env,
        method,
        path,
        url,
        body,
        expect,
        poll,
        capture,
    } = &**h;
    let method = match method.unwrap_or(HttpMethod::Get) {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    };
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (transport, target, authenticated) = match (env, path, url) {
        (Some(e), Some(p), _) => (scope.transport(e)?, interpolate_step(ctx, p)?, true),
        (Some(e), None, Some(u)) => {
            let u = interpolate_step(ctx, u)?;
            // The environment's token goes only to the environment's own URL (sent to wherever the
            // environment's requests go, the simulator included); any other URL is sent without it.
            let own = ctx
                .envs
                .info
                .get(e)
                .and_then(|i| i.url.clone())
                .unwrap_or_default();
            match u.strip_prefix(own.trim_end_matches('/')) {
                Some(rest) if !own.is_empty() && (rest.is_empty() || rest.starts_with('/')) => (
                    scope.transport(e)?,
                    format!("/{}", rest.trim_start_matches('/')),
                    true,
                ),
                _ => (scope.bare(&u)?, u, false),
            }
        }
        (None, _, Some(u)) => {
            let u = interpolate_step(ctx, u)?;
            (scope.bare(&u)?, u, false)
        }
        _ => return Err(fail("an http step needs `env` with `path`, or a `url`")),
    };
    let expect_status = match expect.as_ref().and_then(|e| e.status.as_ref()) {
        None => Vec::new(),
        Some(crate::runbook::StatusSpec::One(s)) => vec![*s],
        Some(crate::runbook::StatusSpec::Many(l)) => l.clone(),
    };
    let idempotency = if matches!(method, Method::POST | Method::PATCH) {
        Idempotency::Unsafe
    } else {
        Idempotency::Safe
    };
    let call = HttpCall {
        method,
        target,
        body: body.as_ref().map(|b| body_interpolated(ctx, b)).transpose()?,
        expect_status,
        idempotency,
        authenticated,
    };
    let spec = poll.as_ref().map(|p| {
        let sched = poll_with(ctx, p.every.as_std());
        PollSpec {
            every: sched.every,
            timeout: sched.timeout,
            until: Condition {
                pointer: p.until.pointer.clone(),
                equals: p.until.equals.clone(),
            },
            fail_if: p.fail_if.as_ref().map(|c| Condition {
                pointer: c.pointer.clone(),
                equals: c.equals.clone(),
            }),
        }
    });
    let captures: Vec<(String, String)> = capture.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let out = request(&transport, &call, spec.as_ref(), &captures, &ctx.cancel).await?;
    Ok(out
        .captures
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect::<BTreeMap<_, _>>())
}
