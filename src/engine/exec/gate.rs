//! The wave gate (`<wave>:gate`): counts every map of the wave per company (when the phase gate has
//! `parity: true`), reads the error sources of the wave's maps (when `max_errors` is set; see
//! `error_sources`), and journals `GateEvaluated`. Failures name each map/company pair outside its
//! tolerance, and, when the errors of the available sources exceed `max_errors`, every map that has some
//! with each figure's source. A map none of whose sources can be read is put to the operator (waive, retry,
//! abort) before the verdict, never counted as zero. With `level: rows` every keyed map of the wave is also
//! reconciled row by row (`reconcile`): a missing, extra or different row fails the gate even when counts agree. The scheduler decides retry/waive/abort on a failure.

use std::collections::BTreeMap;

use super::error_sources::settle_blind;
use super::maps::{count_pairs, map_ref};
use super::parity::describe;
use super::{Res, StepCtx, fail};
use crate::engine::event::{Event, GateFailure};
use crate::runbook::Gate;
use crate::runbook::model::GateLevel;

fn find_wave(ctx: &StepCtx, wave: &str) -> Res<(Gate, Vec<String>)> {
    for phase in &ctx.runbook.phases {
        for w in phase.waves.iter().flatten() {
            if w.id == wave {
                let maps = w.maps.iter().map(|m| m.as_str().to_owned()).collect();
                return Ok((phase.gate.clone().unwrap_or_default(), maps));
            }
        }
    }
    Err(fail(format!("wave `{wave}` is not in the runbook")))
}

pub async fn run(ctx: &StepCtx, wave: &str) -> Res {
    let (gate, ids) = find_wave(ctx, wave)?;
    let maps = ids.iter().map(|m| map_ref(ctx, m)).collect::<Res<Vec<_>>>()?;
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    let mut described: BTreeMap<String, String> = BTreeMap::new();
    let errors: BTreeMap<String, u64> = if gate.max_errors.is_some() {
        let (errs, _waived) = settle_blind(ctx, &maps, &format!("gate after {wave}"), None).await?;
        let mut out = BTreeMap::new();
        for e in errs {
            if let Some(n) = e.available_total() {
                out.insert(e.map.clone(), n);
            }
            described.insert(e.map.clone(), e.describe());
        }
        out
    } else {
        BTreeMap::new()
    };
    let total_errors: u64 = errors.values().sum();
    let errors_fail = gate.max_errors.is_some_and(|max| total_errors > max);
    if gate.parity {
        for p in count_pairs(ctx, &maps, None).await? {
            if !p.within() {
                lines.push(describe(&p));
                failures.push(GateFailure {
                    map: p.map.clone(),
                    company: p.company.clone(),
                    source: p.source,
                    target: p.target,
                    allowed: p.allowed,
                    errors: errors.get(&p.map).copied().unwrap_or(0),
                });
            }
        }
    }
    if errors_fail {
        for (m, n) in errors.iter().filter(|(_, n)| **n > 0) {
            lines.push(format!(
                "dual-write errors {}",
                described.get(m).cloned().unwrap_or_else(|| format!("{m}: {n}"))
            ));
            if !failures.iter().any(|f| &f.map == m) {
                failures.push(GateFailure {
                    map: m.clone(),
                    company: None,
                    source: 0,
                    target: 0,
                    allowed: 0,
                    errors: *n,
                });
            }
        }
    }
    if gate.level == Some(GateLevel::Rows) {
        for m in &maps {
            if m.spec.key.is_none() {
                super::log(
                    ctx,
                    crate::engine::event::LogLevel::Warn,
                    format!(
                        "gate after {wave}: map {} has no key: counted, not reconciled row by row",
                        m.id
                    ),
                );
                continue;
            }
            for company in m.companies() {
                let (c, _scratch) = super::reconcile::reconcile_one(
                    ctx,
                    m,
                    company.as_deref(),
                    100,
                    crate::runbook::steps::reconcile::RANGES_DEFAULT,
                    super::reconcile::Keep::Fresh,
                )
                .await?;
                if c.not_matching() == 0 {
                    continue;
                }
                lines.push(format!(
                    "rows {}{}: {} missing, {} extra, {} different",
                    m.id,
                    company.as_deref().map(|c| format!("@{c}")).unwrap_or_default(),
                    c.missing,
                    c.extra,
                    c.different
                ));
                if !failures.iter().any(|f| f.map == m.id && f.company == company) {
                    failures.push(GateFailure {
                        map: m.id.clone(),
                        company: company.clone(),
                        source: c.source_rows,
                        target: c.target_rows,
                        allowed: 0,
                        errors: errors.get(&m.id).copied().unwrap_or(0),
                    });
                }
            }
        }
    }
    let passed = failures.is_empty();
    ctx.emit
        .durable(Event::GateEvaluated {
            step: ctx.step.id.clone(),
            wave: Some(wave.to_owned()),
            passed,
            failures,
        })
        .await?;
    if passed {
        return Ok(Default::default());
    }
    let mut msg = format!("gate after {wave} failed: {}", lines.join("; "));
    if errors_fail {
        msg.push_str(&format!(
            " (dual-write errors {total_errors} > max_errors {})",
            gate.max_errors.unwrap_or(0)
        ));
    }
    Err(fail(msg))
}
