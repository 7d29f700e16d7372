//! `notify`: posts a Teams-compatible card (MessageCard; an Adaptive Card for Power Automate / Logic Apps
//! workflow URLs) to the interpolated `url`. The URL's path is registered with the redactor first: a webhook URL
//! is a credential. At-least-once: a reconciled step sends again with "(repeated after resume)".
//!
//! With `to`, the message goes to a runbook `notify_targets` entry (its card kind, each attempt journaled as
//! `Notified`, see `engine::alerting`), with the run's figures as the card's facts; the step fails when the
//! target never took it.

use super::{Mode, Res, StepCtx, fail, interpolate_step};
use crate::connectors::notify::{CardFormat, Notice, post};
use crate::engine::alerting::{deliver, resolve_targets};
use crate::runbook::Step;

pub async fn run(
    ctx: &StepCtx,
    step: &Step,
    url: Option<&str>,
    to: Option<&str>,
    text: &str,
    mode: Mode,
) -> Res {
    let mut text = interpolate_step(ctx, text)?;
    if mode == Mode::Reconcile {
        text.push_str(" (repeated after resume)");
    }
    let title = step
        .title
        .clone()
        .unwrap_or_else(|| format!("{}: {}", ctx.runbook.runbook, step.id));
    if let Some(name) = to {
        let targets = resolve_targets(&ctx.runbook, &ctx.envs).map_err(fail)?;
        let target = targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| fail(format!("no notify target `{name}`")))?;
        let figures = ctx.state.read().figures(chrono::Utc::now());
        let notice = Notice {
            state: "message".into(),
            severity: "info".into(),
            title,
            text,
            kind: "message".into(),
            map: None,
            company: None,
            facts: crate::runbook::vars::FIGURES
                .iter()
                .filter_map(|(n, _)| figures.get(*n).map(|v| ((*n).to_owned(), v.clone())))
                .collect(),
            runbook: ctx.runbook.runbook.clone(),
            run_id: ctx.run_id.0.clone(),
        };
        let key = format!("step:{}", step.id);
        return if deliver(&ctx.envs, &ctx.emit, target, &key, &notice, &ctx.cancel).await {
            Ok(Default::default())
        } else {
            Err(fail(format!("notify target `{name}` did not take the message")))
        };
    }
    let url = interpolate_step(ctx, url.unwrap_or_default())?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| fail(format!("notify url: {e}")))?;
    ctx.envs.redactor().add_secret(parsed.path().to_owned());
    let format = if url.contains("logic.azure.com") || url.contains("powerautomate") {
        CardFormat::Adaptive
    } else {
        CardFormat::MessageCard
    };
    // A rehearsal never posts to a real channel: against the simulator every notify goes to its webhook.
    let url = match ctx.envs.sim_url() {
        Some(sim) if !url.starts_with(sim) => {
            super::log(
                ctx,
                crate::engine::event::LogLevel::Info,
                format!(
                    "rehearsal: `{}` posted to the simulator's webhook, not to {}",
                    step.id,
                    parsed.host_str().unwrap_or("its host")
                ),
            );
            format!("{}/_sim/webhook", sim.trim_end_matches('/'))
        }
        _ => url,
    };
    let t = ctx.envs.scoped(Some(&ctx.step.id)).bare(&url)?;
    post(&t, &url, format, &title, &text, &ctx.cancel).await?;
    Ok(Default::default())
}
