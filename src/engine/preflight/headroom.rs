//! Service-protection headroom: Dataverse reports on every answer how many requests
//! (`x-ms-ratelimit-burst-remaining-xrm-requests`) and how much execution time
//! (`x-ms-ratelimit-time-remaining-xrm-requests`) are left in the 5-minute window [doc]. Less than a tenth of the
//! documented defaults (6,000 requests, 1,200,000 ms) is a warning: another integration is using the budget.
//! When the headers are absent the line says "not reported". F&O documents no such headers.

use super::{Ctx, fix, line};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::EnvKind;

const CHECK: &str = "headroom";
const BURST: &str = "x-ms-ratelimit-burst-remaining-xrm-requests";
const TIME: &str = "x-ms-ratelimit-time-remaining-xrm-requests";

pub fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let mut out = Vec::new();
    for (name, env) in &cx.envs {
        if env.kind != EnvKind::Dataverse {
            continue;
        }
        let Some((headers, _)) = &env.answer else { continue };
        let num = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<f64>().ok())
        };
        let (burst, time) = (num(BURST), num(TIME));
        let mut parts = Vec::new();
        if let Some(b) = burst {
            parts.push(format!("{b:.0} requests"));
        }
        if let Some(t) = time {
            parts.push(format!("{t:.0} ms of execution time"));
        }
        if parts.is_empty() {
            out.push(line(
                CHECK,
                name,
                CheckStatus::Ok,
                "not reported (no x-ms-ratelimit-* headers)",
            ));
            continue;
        }
        let low = burst.is_some_and(|b| b < 600.0) || time.is_some_and(|t| t < 120_000.0);
        let msg = format!("{} left in the 5-minute window", parts.join(" and "));
        out.push(if low {
            fix(
                line(CHECK, name, CheckStatus::Warning, msg),
                "another client is using this app's service-protection budget: find it (same app registration) and stop it before the weekend",
            )
        } else {
            line(CHECK, name, CheckStatus::Ok, msg)
        });
    }
    out
}
