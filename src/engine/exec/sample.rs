//! `sample`: for each map with a `key`, `size` random keys (seeded by run, step and attempt, so a rerun
//! of the same attempt samples the same keys) are looked up on both sides and the `compare` fields compared
//! (`connectors::sample`). Keys are picked on the F&O side (random offsets) unless `from` names the Dataverse
//! environment (a seeded reservoir sample over a key-only scan: Dataverse cannot page to a random offset);
//! `from: both` picks `size` keys on each side, so a row missing on either side can be found. A key that is
//! missing or differs is looked at again once after [`SETTLE`] (environment time), so a change still on its
//! way through dual-write is not reported; what persists goes to the journal's error queue as
//! `sample_mismatch` entries. The step's outputs: `checked`, `differ` (persisting), `missing_fno`,
//! `missing_dataverse` (`${steps.<id>.differ}`, and the run's `${sample.*}` figures).
//!
//! Threshold: the step fails when more than 1% of the checked records (rounded down; 0 for fewer than 100)
//! persistently differ or are missing. Maps without a `key` are skipped with a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;

use super::handle::uuid_like;
use super::maps::{MapRef, company_lookup, resolve, side_filter};
use super::{Res, StepCtx, Stop, fail, log, sleep_env};
use crate::connectors::sample::{
    SampleKey, SampleReport, SampleSpec, compare, look_up, reconcile, reconcile_from_target,
};
use crate::engine::event::{ErrorEntry, Event, FieldDifference, LogLevel, RowClass, SampledKey};
use crate::runbook::{EnvKind, MapSelection};

/// How long a differing record gets to catch up before it counts (environment time).
pub const SETTLE: Duration = Duration::from_secs(120);

/// The outcome of sampling one map.
pub struct Sampled {
    pub checked: usize,
    pub bad: usize,
    /// Of `bad`: keys with no F&O row, and keys with no Dataverse row.
    pub missing_fno: usize,
    pub missing_dataverse: usize,
}

/// Where a sample picks its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    Fno,
    Dataverse,
    Both,
}

fn seed(ctx: &StepCtx, round: u32) -> u64 {
    let id = uuid_like(&ctx.run_id, &format!("{}#{round}", ctx.step.id), ctx.attempt);
    u64::from_str_radix(&id[..8], 16).unwrap_or(0) << 32 | u64::from_str_radix(&id[9..13], 16).unwrap_or(0)
}

/// Samples one map (see the module docs); `round` varies the keys between monitor ticks.
pub async fn sample_map(
    ctx: &StepCtx,
    m: &MapRef,
    size: usize,
    round: u32,
    sides: Sides,
) -> Res<Option<Sampled>> {
    let Some(key) = m.spec.key.clone() else {
        log(
            ctx,
            LogLevel::Warn,
            format!("map {} has no key: not sampled", m.id),
        );
        return Ok(None);
    };
    let kind = |e: &str| ctx.envs.info.get(e).map(|i| i.kind);
    let (fno_env, fno_set, fno_key, dv_env, dv_set, dv_key, fwd) =
        match (kind(&m.source_env), kind(&m.target_env)) {
            (Some(EnvKind::Fno), Some(EnvKind::Dataverse)) => (
                &m.source_env,
                &m.source_set,
                key.source.clone(),
                &m.target_env,
                &m.target_set,
                key.target.clone(),
                true,
            ),
            (Some(EnvKind::Dataverse), Some(EnvKind::Fno)) => (
                &m.target_env,
                &m.target_set,
                key.target.clone(),
                &m.source_env,
                &m.source_set,
                key.source.clone(),
                false,
            ),
            _ => {
                return Err(fail(format!(
                    "map {}: sampling needs an fno and a dataverse side",
                    m.id
                )));
            }
        };
    let pairs: Vec<(String, String)> = m
        .spec
        .compare
        .iter()
        .map(|(s, t)| {
            if fwd {
                (s.clone(), t.clone())
            } else {
                (t.clone(), s.clone())
            }
        })
        .collect();
    let scope = ctx.envs.scoped(Some(&ctx.step.id));
    let (fno, dv) = (scope.fno(fno_env)?, scope.dataverse(dv_env)?);
    let spec = SampleSpec {
        source_set: fno_set.clone(),
        source_key: fno_key.clone(),
        target_set: dv_set.clone(),
        target_key: dv_key.clone(),
        compare: pairs.clone(),
        size,
        seed: seed(ctx, round),
        company: None,
        company_lookup: (!m.spec.companies.is_empty()).then(|| company_lookup(m).to_owned()),
        source_filter: side_filter(m, fwd).map(str::to_owned),
        target_filter: side_filter(m, !fwd).map(str::to_owned),
    };
    let mut report = SampleReport::default();
    if sides != Sides::Dataverse {
        report = reconcile(&fno, &dv, &spec, &ctx.cancel).await?;
    }
    if sides != Sides::Fno {
        let from_dv = reconcile_from_target(&fno, &dv, &spec, &m.spec.companies, &ctx.cancel).await?;
        report.checked += from_dv.checked;
        report.missing.extend(from_dv.missing);
        report.missing_source.extend(from_dv.missing_source);
        report.mismatched.extend(from_dv.mismatched);
    }
    let mut suspects: Vec<SampleKey> = report.missing.clone();
    suspects.extend(report.missing_source.iter().cloned());
    suspects.extend(report.mismatched.iter().map(|(k, _)| k.clone()));
    suspects.sort_by(|a, b| (&a.key, &a.company).cmp(&(&b.key, &b.company)));
    suspects.dedup();
    if suspects.is_empty() {
        return Ok(Some(Sampled {
            checked: report.checked,
            bad: 0,
            missing_fno: 0,
            missing_dataverse: 0,
        }));
    }
    sleep_env(ctx, SETTLE).await?;
    let mut entries = Vec::new();
    let mut keys = Vec::new();
    let (mut missing_fno, mut missing_dataverse) = (0usize, 0usize);
    // The map's own direction: `missing` is on the map's source and not on its target.
    let (only_fno, only_dv) = if fwd {
        (RowClass::Missing, RowClass::Extra)
    } else {
        (RowClass::Extra, RowClass::Missing)
    };
    for k in suspects {
        let (s, t) = look_up(&fno, &dv, &spec, &k, &ctx.cancel).await?;
        let mut differed = SampledKey {
            company: k.company.clone(),
            class: RowClass::Different,
            key: k.key.clone(),
            fields: Vec::new(),
        };
        let message = match (s, t) {
            (Some(_), None) => {
                missing_dataverse += 1;
                differed.class = only_fno;
                format!("{k} is in {fno_set} but not in {dv_set}")
            }
            (None, Some(_)) => {
                missing_fno += 1;
                differed.class = only_dv;
                format!("{k} is in {dv_set} but not in {fno_set}")
            }
            (Some(s), Some(t)) => {
                let diff = compare(&s, &t, &pairs);
                if diff.is_empty() {
                    continue;
                }
                differed.fields = diff
                    .iter()
                    .map(|d| {
                        let (field, source, target) = if fwd {
                            (&d.source_field, &d.source, &d.target)
                        } else {
                            (&d.target_field, &d.target, &d.source)
                        };
                        FieldDifference {
                            field: field.clone(),
                            source: source.clone(),
                            target: target.clone(),
                        }
                    })
                    .collect();
                diff.iter()
                    .map(|d| {
                        format!(
                            "{} {:?} vs {} {:?}",
                            d.source_field, d.source, d.target_field, d.target
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            (None, None) => continue,
        };
        keys.push(differed);
        entries.push(ErrorEntry {
            id: format!("sample:{}:{}:{round}:{k}", ctx.step.id, ctx.attempt),
            at: Utc::now(),
            map: m.id.clone(),
            key: k.to_string(),
            category: "sample_mismatch".into(),
            message,
        });
    }
    let bad = entries.len();
    if bad > 0 {
        ctx.emit
            .durable(Event::SampleDiffered {
                step: ctx.step.id.clone(),
                map: m.id.clone(),
                keys,
            })
            .await?;
        ctx.emit
            .durable(Event::ErrorEntries {
                map: m.id.clone(),
                entries,
                source: Some("sample".into()),
            })
            .await?;
    }
    Ok(Some(Sampled {
        checked: report.checked,
        bad,
        missing_fno,
        missing_dataverse,
    }))
}

pub async fn run(ctx: &StepCtx, maps: &MapSelection, size: u32, from: Option<&str>) -> Res {
    let maps = resolve(ctx, maps)?;
    let size = usize::try_from(size).unwrap_or(100);
    let sides = match from {
        Some("both") => Sides::Both,
        Some(f) if ctx.envs.info.get(f).is_some_and(|i| i.kind == EnvKind::Dataverse) => Sides::Dataverse,
        _ => Sides::Fno,
    };
    let (mut checked, mut bad, mut lines) = (0usize, 0usize, Vec::new());
    let (mut missing_fno, mut missing_dataverse) = (0usize, 0usize);
    for m in &maps {
        if let Some(s) = sample_map(ctx, m, size, 0, sides).await? {
            checked += s.checked;
            bad += s.bad;
            missing_fno += s.missing_fno;
            missing_dataverse += s.missing_dataverse;
            if s.bad > 0 {
                lines.push(format!(
                    "{}: {} of {} differ or are missing ({} not in F&O, {} not in Dataverse)",
                    m.id, s.bad, s.checked, s.missing_fno, s.missing_dataverse
                ));
            }
        }
    }
    log(
        ctx,
        LogLevel::Info,
        format!(
            "sampled {checked} records ({}), {bad} differ or are missing ({missing_fno} not in F&O, {missing_dataverse} not in Dataverse)",
            match sides {
                Sides::Fno => "keys picked on F&O",
                Sides::Dataverse => "keys picked on Dataverse",
                Sides::Both => "keys picked on both sides",
            }
        ),
    );
    let outputs = BTreeMap::from([
        ("checked".to_owned(), checked.to_string()),
        ("differ".to_owned(), bad.to_string()),
        ("missing_fno".to_owned(), missing_fno.to_string()),
        ("missing_dataverse".to_owned(), missing_dataverse.to_string()),
    ]);
    if bad > checked / 100 {
        return Err(Stop::Failed {
            message: format!(
                "sample: {} (allowed {} of {checked})",
                lines.join("; "),
                checked / 100
            ),
            reason: None,
            outputs,
        });
    }
    Ok(outputs)
}
