//! `notify`: posts a Teams-compatible card (MessageCard; an Adaptive Card for Power Automate / Logic Apps
//! workflow URLs) to the interpolated `url`. The URL's path is registered with the redactor first: a webhook URL
//! is a credential. At-least-once: a reconciled step sends again with "(repeated after resume)".

use super::{Mode, Res, StepCtx, fail, interpolate_step};
use crate::connectors::notify::{CardFormat, post};
use crate::runbook::Step;

pub async fn run(ctx: &StepCtx, step: &Step, url: &str, text: &str, mode: Mode) -> Res {
    let url = interpolate_step(ctx, url)?;
    let mut text = interpolate_step(ctx, text)?;
    if mode == Mode::Reconcile {
        text.push_str(" (repeated after resume)");
    }
    let parsed = reqwest::Url::parse(&url).map_err(|e| fail(format!("notify url: {e}")))?;
    ctx.envs.redactor().add_secret(parsed.path().to_owned());
    let format = if url.contains("logic.azure.com") || url.contains("powerautomate") {
        CardFormat::Adaptive
    } else {
        CardFormat::MessageCard
    };
    let title = step
        .title
        .clone()
        .unwrap_or_else(|| format!("{}: {}", ctx.runbook.runbook, step.id));
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
