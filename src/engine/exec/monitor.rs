//! `monitor`: every `every` (environment time, so a simulated day passes at the scenario's scale) until `for`
//! has passed or the environment clock reaches `until`: parity of the maps (a `ParitySample` per pair), the
//! error sources of every map (`ErrorCounts`/`ErrorEntries` per source, see `error_sources`), and a record
//! sample of `sample_size` per map when set. Alerts: `drift` when any pair's |source − target| exceeds it
//! (Warning); `errors_per_hour` when the errors new since the previous tick (the rise of the available
//! sources' totals), scaled to an hour of environment time, exceed it (Critical, per map, naming the
//! sources); a map none of whose sources can be read (Warning, once per tick: "not available", never zero);
//! a sample with persistent differences (Warning). Each alert carries its subject (kind, map, company and
//! the figures a notify card shows); an alert raised by one tick and not by the next gets an "all clear"
//! (Info, `clear`), which `engine::alerting` sends on; an `errors_per_hour` alert only after two ticks in a
//! row without it, as errors arrive in bursts. A tick whose reads fail is logged, clears nothing,
//! and the monitor goes on; it only fails when cancelled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::error_sources::errors_of;
use super::maps::{count_pairs, resolve};
use super::sample::sample_map;
use super::{Res, StepCtx, fail, log, progress, sleep_env};
use crate::engine::event::{AlertSubject, Event, LogLevel, Severity};
use crate::runbook::steps as kind;
use crate::runbook::{Alert, Step, StepKind};

/// An `errors_per_hour` alert is cleared after this many ticks in a row without it (see `run`).
const QUIET_TICKS_TO_CLEAR_A_RATE: u32 = 2;

/// An alert raised this tick: its key (see `AlertSubject::key`), its map and subject.
type Raised = BTreeMap<String, (Option<String>, AlertSubject)>;

async fn alert(
    ctx: &StepCtx,
    raised: &mut Raised,
    severity: Severity,
    map: Option<String>,
    subject: AlertSubject,
    message: String,
) -> Res<()> {
    raised.insert(subject.key(map.as_deref()), (map.clone(), subject.clone()));
    ctx.emit
        .durable(Event::Alert {
            severity,
            message,
            map,
            subject: Some(subject),
        })
        .await?;
    Ok(())
}

fn subject(kind: &str, company: Option<&str>, facts: Vec<(&str, String)>) -> AlertSubject {
    AlertSubject {
        kind: kind.into(),
        company: company.map(str::to_owned),
        facts: facts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        clear: false,
    }
}

#[allow(clippy::too_many_arguments)] // one tick's inputs and the two things it keeps between ticks
async fn tick(
    ctx: &StepCtx,
    maps: &[super::maps::MapRef],
    alerts: &Alert,
    sample_size: Option<u32>,
    interval: Duration,
    round: u32,
    raised: &mut Raised,
    seen: &mut BTreeMap<String, u64>,
) -> Res<()> {
    let pairs = count_pairs(ctx, maps, None).await?;
    if let Some(limit) = alerts.drift {
        for p in pairs.iter().filter(|p| p.source.abs_diff(p.target) > limit) {
            let at = p.company.as_deref().map(|c| format!("/{c}")).unwrap_or_default();
            let facts = vec![
                ("Source rows", p.source.to_string()),
                ("Target rows", p.target.to_string()),
                ("Difference", p.source.abs_diff(p.target).to_string()),
                ("Alert above", limit.to_string()),
            ];
            alert(
                ctx,
                raised,
                Severity::Warning,
                Some(p.map.clone()),
                subject("drift", p.company.as_deref(), facts),
                format!(
                    "drift on {}{at}: {} vs {} (alert above {limit})",
                    p.map, p.source, p.target
                ),
            )
            .await?;
        }
    }
    // The errors new since this monitor last read them: its own figure from the previous tick, not the run
    // state's, which applies the journaled counts a moment later (a busy machine saw one tick's errors counted
    // twice, and an alert that cleared, fired and cleared again). The first tick starts from the run state.
    let before: Vec<u64> = {
        let st = ctx.state.read();
        maps.iter()
            .map(|m| {
                seen.get(&m.id)
                    .copied()
                    .unwrap_or_else(|| st.errors.total_for_map(&m.id))
            })
            .collect()
    };
    let errs = errors_of(ctx, maps).await?;
    for (e, prev) in errs.iter().zip(before) {
        if let Some(n) = e.available_total() {
            seen.insert(e.map.clone(), n);
        }
        match e.available_total() {
            Some(n) => {
                let Some(limit) = alerts.errors_per_hour else {
                    continue;
                };
                let new = n.saturating_sub(prev);
                let secs = interval.as_secs().max(1);
                let per_hour = new.saturating_mul(3600) / secs;
                if per_hour > limit {
                    let mut facts = vec![
                        ("Errors per hour", per_hour.to_string()),
                        ("New errors", format!("{new} in {secs} s")),
                        ("Errors in all", n.to_string()),
                        ("Alert above", format!("{limit} per hour")),
                    ];
                    let by_cat: Vec<(String, u64)> = {
                        let st = ctx.state.read();
                        st.errors
                            .counts()
                            .into_iter()
                            .filter(|((m, _), _)| *m == e.map)
                            .map(|((_, c), n)| (c, n))
                            .collect()
                    };
                    let by_cat: Vec<(String, String)> = by_cat
                        .into_iter()
                        .map(|(c, n)| (format!("Errors: {c}"), n.to_string()))
                        .collect();
                    let mut s = subject("errors_per_hour", None, std::mem::take(&mut facts));
                    s.facts.extend(by_cat);
                    alert(
                        ctx,
                        raised,
                        Severity::Critical,
                        Some(e.map.clone()),
                        s,
                        format!(
                            "{}: {new} new dual-write errors in {secs} s: {per_hour} per hour (alert above {limit}); {}",
                            e.map,
                            e.describe()
                        ),
                    )
                    .await?;
                }
            }
            None => {
                alert(
                    ctx,
                    raised,
                    Severity::Warning,
                    Some(e.map.clone()),
                    subject("errors_unknown", None, vec![("Sources", e.describe())]),
                    format!("errors of {} are not known: {}", e.map, e.describe()),
                )
                .await?;
            }
        }
    }
    if let Some(n) = sample_size {
        for m in maps.iter().filter(|m| m.spec.key.is_some()) {
            if let Some(s) = sample_map(
                ctx,
                m,
                usize::try_from(n).unwrap_or(100),
                round,
                super::sample::Sides::Fno,
            )
            .await?
                && s.bad > 0
            {
                let facts = vec![
                    ("Records checked", s.checked.to_string()),
                    ("Differ or missing", s.bad.to_string()),
                ];
                alert(
                    ctx,
                    raised,
                    Severity::Warning,
                    Some(m.id.clone()),
                    subject("sample", None, facts),
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

/// Keeps in `raised` the error-rate alerts of `active` this tick did not raise, until their second quiet tick
/// in a row (`quiet` counts them). Errors arrive in bursts (dual-write's system jobs fail in batches, and a
/// tick's window may end before the next batch), so one tick without new errors amid a failing run is not the
/// condition gone. Every other alert (a level, not a rate) clears at the first tick without it.
fn hold_quiet_rates(active: &Raised, raised: &mut Raised, quiet: &mut BTreeMap<String, u32>) {
    for (key, entry) in active {
        if raised.contains_key(key) {
            quiet.remove(key);
        } else if entry.1.kind == "errors_per_hour" {
            let n = quiet.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n < QUIET_TICKS_TO_CLEAR_A_RATE {
                raised.insert(key.clone(), entry.clone());
            } else {
                quiet.remove(key);
            }
        }
    }
}

/// The all-clear of every alert raised by the previous tick and not by this one.
async fn clear(ctx: &StepCtx, before: &Raised, now: &Raised) -> Res<()> {
    for (map, s) in before
        .iter()
        .filter(|(k, _)| !now.contains_key(*k))
        .map(|(_, v)| v)
    {
        let at = match (map, &s.company) {
            (Some(m), Some(c)) => format!(" on {m}/{c}"),
            (Some(m), None) => format!(" on {m}"),
            _ => String::new(),
        };
        ctx.emit
            .durable(Event::Alert {
                severity: Severity::Info,
                message: format!(
                    "all clear: {}{at} is back within its limit",
                    s.kind.replace('_', " ")
                ),
                map: map.clone(),
                subject: Some(AlertSubject {
                    kind: s.kind.clone(),
                    company: s.company.clone(),
                    facts: Vec::new(),
                    clear: true,
                }),
            })
            .await?;
    }
    Ok(())
}

pub async fn run(ctx: &StepCtx, step: &Step) -> Res {
    let StepKind::Monitor(m) = &step.kind else {
        return Err(fail("not a monitor step"));
    };
    let kind::Monitor {
        every,
        for_,
        until,
        maps,
        alert: alerts,
        sample_size,
    } = &**m;
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
    let mut active = Raised::new();
    let mut seen = BTreeMap::new();
    // Quiet ticks in a row of each raised error-rate alert.
    let mut quiet: BTreeMap<String, u32> = BTreeMap::new();
    loop {
        let mut raised = Raised::new();
        let outcome = tick(
            ctx,
            &maps,
            &alerts,
            *sample_size,
            every,
            round,
            &mut raised,
            &mut seen,
        )
        .await;
        if outcome.is_ok() {
            hold_quiet_rates(&active, &mut raised, &mut quiet);
            clear(ctx, &active, &raised).await?;
            active = raised;
        } else {
            // A tick that could not read everything clears nothing: what it did not see is not known.
            active.extend(raised);
        }
        if let Err(super::Stop::Failed { message: e, .. } | super::Stop::InDoubt(e)) = outcome {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Raised, hold_quiet_rates, subject};

    /// Which alerts each tick clears, given which kinds it raised: a rate alert survives one quiet tick amid
    /// a burst and clears after two in a row; a drift alert clears at the first.
    #[test]
    fn a_rate_alert_clears_after_two_quiet_ticks_and_a_drift_alert_after_one() {
        let ticks: [&[&str]; 8] = [
            &["errors_per_hour", "drift"],
            &["errors_per_hour"],
            &[],
            &["errors_per_hour"],
            &[],
            &[],
            &[],
            &["drift"],
        ];
        let mut active = Raised::new();
        let mut quiet = BTreeMap::new();
        let mut cleared = Vec::new();
        for (i, kinds) in ticks.iter().enumerate() {
            let mut raised: Raised = kinds
                .iter()
                .map(|k| {
                    let s = subject(k, None, Vec::new());
                    (s.key(Some("customers")), (Some("customers".to_owned()), s))
                })
                .collect();
            hold_quiet_rates(&active, &mut raised, &mut quiet);
            for (_, s) in active.values() {
                if !raised.contains_key(&s.key(Some("customers"))) {
                    cleared.push((i, s.kind.clone()));
                }
            }
            active = raised;
        }
        assert_eq!(
            cleared,
            [(1, "drift".to_owned()), (5, "errors_per_hour".to_owned())],
            "cleared at (tick, kind)"
        );
        assert_eq!(active.len(), 1, "only the last drift is still raised: {active:?}");
    }
}
