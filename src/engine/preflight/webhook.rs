//! The webhooks `notify` steps post to answer. Chosen probe: one `HEAD` to the URL, unauthenticated, no body,
//! so no message is posted (Teams and Logic Apps webhooks accept only POST, so 405 or 400 is the expected
//! answer and proves the endpoint is there). No answer at all (DNS, TLS, connection), or 404/410 (deleted), is
//! an error; a 5xx a warning. The URL's path and query are the webhook's secret: lines show its origin only.

use std::collections::BTreeMap;

use reqwest::Method;

use super::{Ctx, fix, line, origin_only};
use crate::connectors::transport::{Request, Transport};
use crate::model::event::{CheckStatus, PreflightCheck};
use crate::runbook::steps::StepKind;
use crate::runbook::vars::{VarContext, interpolate};

const CHECK: &str = "webhook";

pub async fn run(cx: &mut Ctx<'_>) -> Vec<PreflightCheck> {
    let ctx = VarContext {
        env: cx.opts.vars,
        run_id: String::new(),
        run_date: String::new(),
        run_operator: String::new(),
        captures: BTreeMap::new(),
        figures: BTreeMap::new(),
    };
    // template → (resolved URL or why not, steps)
    let mut hooks: BTreeMap<String, (Result<String, String>, Vec<String>)> = BTreeMap::new();
    for phase in &cx.opts.runbook.phases {
        for step in phase.steps.iter().flatten() {
            let StepKind::Notify(n) = &step.kind else { continue };
            let Some(url) = &n.url else { continue };
            let e = hooks
                .entry(url.clone())
                .or_insert_with(|| (interpolate(url, &ctx).map_err(|e| e.to_string()), Vec::new()));
            e.1.push(step.id.to_string());
        }
    }
    for (name, target) in &cx.opts.runbook.notify_targets {
        let e = hooks.entry(target.url.clone()).or_insert_with(|| {
            (
                interpolate(&target.url, &ctx).map_err(|e| e.to_string()),
                Vec::new(),
            )
        });
        e.1.push(format!("notify target {name}"));
    }
    let mut out = Vec::new();
    for (template, (url, steps)) in hooks {
        let url = match url {
            Ok(u) => u,
            Err(why) => {
                out.push(fix(
                    line(CHECK, template, CheckStatus::Error, why),
                    format!(
                        "set the webhook's variable in this shell (used by {})",
                        steps.join(", ")
                    ),
                ));
                continue;
            }
        };
        let subject = format!("{template} ({})", origin_only(&url));
        let probe = async {
            let parsed = reqwest::Url::parse(&url).map_err(|e| format!("not a URL: {e}"))?;
            let t = Transport::new(
                "webhook",
                cx.client.clone(),
                &parsed.origin().ascii_serialization(),
                cx.policy.clone(),
            )
            .map_err(|e| e.to_string())?;
            let req = Request::new("webhook.head", Method::HEAD, url.clone()).unauthenticated();
            t.send_any(req, &cx.cancel)
                .await
                .map(|r| r.status)
                .map_err(|e| e.to_string())
        };
        let used = format!("used by {}", steps.join(", "));
        out.push(match probe.await {
            Ok(s @ (404 | 410)) => fix(
                line(CHECK, subject, CheckStatus::Error, format!("HEAD answered {s}: the webhook does not exist ({used})")),
                "create the webhook again (Teams channel → Workflows/Connectors) and put its URL in the variable",
            ),
            Ok(s) if s >= 500 => fix(
                line(CHECK, subject, CheckStatus::Warning, format!("HEAD answered {s} ({used})")),
                "the webhook's service is failing now: check again later",
            ),
            Ok(s) => line(
                CHECK,
                subject,
                CheckStatus::Ok,
                format!("answers (HEAD → {s}; nothing was posted) ({used})"),
            ),
            Err(e) => fix(
                line(CHECK, subject, CheckStatus::Error, e.replace(&url, &origin_only(&url))),
                "check the webhook URL and that this machine reaches it (proxy: HTTPS_PROXY/NO_PROXY)",
            ),
        });
    }
    out
}
