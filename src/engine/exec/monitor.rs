//! `monitor`: every `every` (environment time, so a simulated day passes at the scenario's scale) until `for`
//! has passed or the environment clock reaches `until`: parity of the maps (a `ParitySample` per pair), the
//! error sources of every map (`ErrorCounts`/`ErrorEntries` per source, see `error_sources`), and a record
//! sample of `sample_size` per map when set. Alerts: `drift` when any pair's |source − target| exceeds it
//! (Warning); `errors_per_hour` when the errors new since the previous tick (the rise of the available
//! sources' totals), scaled to an hour of environment time, exceed it (Critical), naming the sources; a map
//! none of whose sources can be read (Warning, once per tick: "not available", never zero); a sample with
//! persistent differences (Warning). A tick whose reads fail is logged and
//! the monitor goes on; it only fails when cancelled.

use std::time::{Duration, Instant};

use super::error_sources::errors_of;
use super::maps::{count_pairs, resolve};
use super::sample::sample_map;
use super::{Res, StepCtx, fail, log, progress, sleep_env};
use crate::engine::event::{Event, LogLevel, Severity};
use crate::runbook::steps as kind;
use crate::runbook::{Alert, Step, StepKind};

async fn alert(ctx: &StepCtx, severity: Severity, map: Option<String>, message: String) -> Res<()> {
    ctx.emit
        .durable(Event::Alert {
            severity,
            message,
            map,
        })
        .await?;
    Ok(())
}

async fn tick(
    ctx: &StepCtx,
    maps: &[super::maps::MapRef],
    alerts: &Alert,
    sample_size: Option<u32>,
    interval: Duration,
    round: u32,
) -> Res<()> {
    let pairs = count_pairs(ctx, maps, None).await?;
    if let Some(limit) = alerts.drift {
        for p in pairs.iter().filter(|p| p.source.abs_diff(p.target) > limit) {
            let at = p.company.as_deref().map(|c| format!("/{c}")).unwrap_or_default();
            alert(
                ctx,
                Severity::Warning,
                Some(p.map.clone()),
                format!(
                    "drift on {}{at}: {} vs {} (alert above {limit})",
                    p.map, p.source, p.target
                ),
            )
            .await?;
        }
    }
    let before: Vec<u64> = {
        let st = ctx.state.read();
        maps.iter().map(|m| st.errors.total_for_map(&m.id)).collect()
    };
    let errs = errors_of(ctx, maps).await?;
    let mut new = 0u64;
    let mut named = Vec::new();
    for (e, prev) in errs.iter().zip(before) {
        match e.available_total() {
            Some(n) => {
                new += n.saturating_sub(prev);
                named.push(e.describe());
            }
            None => {
                alert(
                    ctx,
                    Severity::Warning,
                    Some(e.map.clone()),
                    format!("errors of {} are not known: {}", e.map, e.describe()),
                )
                .await?;
            }
        }
    }
    if let Some(limit) = alerts.errors_per_hour {
        let secs = interval.as_secs().max(1);
        let per_hour = new.saturating_mul(3600) / secs;
        if per_hour > limit {
            alert(
                ctx,
                Severity::Critical,
                None,
                format!(
                    "{new} new dual-write errors in {secs} s: {per_hour} per hour (alert above {limit}); {}",
                    named.join("; ")
                ),
            )
            .await?;
        }
    }
    if let Some(n) = sample_size {
        for m in maps.iter().filter(|m| m.spec.key.is_some()) {
            if let Some(s) = sample_map(ctx, m, usize::try_from(n).unwrap_or(100), round).await?
                && s.bad > 0
            {
                alert(
                    ctx,
                    Severity::Warning,
                    Some(m.id.clone()),
                    format!(
                        "sample of {}: {} of {} records differ or are missing",
                        m.id, s.bad, s.checked
                    ),
                )
                .await?;
            }
        }
    }
    Ok(())
}

pub async fn run(ctx: &StepCtx, step: &Step) -> Res {
    let StepKind::Monitor(kind::Monitor {
        every,
        for_,
        until,
        maps,
        alert: alerts,
        sample_size,
    }) = &step.kind
    else {
        return Err(fail("not a monitor step"));
    };
    let maps = resolve(ctx, maps)?;
    let every = every.as_std().max(Duration::from_secs(1));
    let total = match (for_, until) {
        (Some(d), _) => d.as_std(),
        (None, Some(t)) => {
            let now = ctx.envs.env_now(&ctx.cancel).await;
            (t.at().with_timezone(&chrono::Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
        (None, None) => every,
    };
    let alerts = alerts.clone().unwrap_or(Alert {
        errors_per_hour: None,
        drift: None,
    });
    let ticks = (total.as_secs() / every.as_secs()).max(1);
    let started = Instant::now();
    let mut round = 0u32;
    loop {
        if let Err(super::Stop::Failed { message: e, .. } | super::Stop::InDoubt(e)) =
            tick(ctx, &maps, &alerts, *sample_size, every, round).await
        {
            if ctx.cancel.is_cancelled() {
                return Err(fail("cancelled"));
            }
            log(
                ctx,
                LogLevel::Warn,
                format!("monitor tick {round} could not read everything: {e}"),
            );
        }
        round += 1;
        progress(
            ctx,
            u64::from(round),
            Some(ticks + 1),
            Some("monitor ticks".into()),
        );
        let elapsed = ctx.clock.to_env(started.elapsed());
        if elapsed >= total {
            break;
        }
        sleep_env(ctx, every.min(total - elapsed)).await?;
    }
    Ok(Default::default())
}
