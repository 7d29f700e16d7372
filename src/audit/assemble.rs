//! Turning a finished [`Fold`] into the [`Report`]'s tables: timeline, parity before/after, error
//! totals, planned vs actual per phase and wave.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::build::{CHART_SERIES, Fold};
use super::model::{
    AutomationRow, BatchWindowRow, Charts, ErrorTotal, ExceptionRow, ParityRow, PhaseRow, PreflightLine,
    PreflightRow, Report, RowSampleRow, RowsRow, RunInfo, RunListing, Series, StepRow, Verification, WaveRow,
};
use super::text::{at, enum_name, scrub};
use crate::journal::RunSummary;
use crate::model::event::RunOutcome;
use crate::state::{ParityStatus, StepStatus, StepView, default_estimate_ms};

/// `succeeded` / `failed` / `aborted` / `unfinished`, and the message or reason.
pub fn outcome_parts(o: Option<&RunOutcome>) -> (String, Option<String>) {
    match o {
        None => ("unfinished".into(), None),
        Some(RunOutcome::Succeeded) => ("succeeded".into(), None),
        Some(RunOutcome::Failed { message }) => ("failed".into(), Some(scrub(message))),
        Some(RunOutcome::Aborted { reason }) => ("aborted".into(), Some(scrub(reason))),
    }
}

/// The plan's estimate for a step: `estimate_ms`, else the reducer's default at the run's time scale.
fn estimate(step: &StepView, time_scale: f64) -> u64 {
    if let Some(e) = step.info.estimate_ms {
        return e;
    }
    let scale = if time_scale > 0.0 { time_scale } else { 1.0 };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let scaled = (default_estimate_ms(&step.info.kind) as f64 / scale) as u64;
    scaled
}

fn status_parts(s: &StepStatus) -> (String, Option<String>) {
    let name = match s {
        StepStatus::Pending => "pending",
        StepStatus::Running { .. } => "running",
        StepStatus::AwaitingOperator { .. } => "awaiting_operator",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed { .. } => "failed",
        StepStatus::Skipped { .. } => "skipped",
        StepStatus::Waived { .. } => "waived",
    };
    let detail = match s {
        StepStatus::Failed { message, reason } => Some(scrub(
            &crate::model::event::StepOutcome::failure_text(message, reason.as_deref()),
        )),
        StepStatus::Skipped { reason } => Some(scrub(reason)),
        StepStatus::Waived { reason } => reason.as_deref().map(scrub),
        _ => None,
    };
    (name.into(), detail)
}

fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    u64::try_from((b - a).num_milliseconds()).unwrap_or(0)
}

/// Span of a group of steps: earliest first start, latest finish (only when every step finished).
struct Span {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    all_finished: bool,
}

fn span<'a>(fold: &Fold, steps: impl Iterator<Item = &'a StepView>) -> Span {
    let mut sp = Span {
        start: None,
        end: None,
        all_finished: true,
    };
    for s in steps {
        let first = fold.first_started.get(&s.info.id).copied().or(s.started_at);
        if let Some(f) = first {
            sp.start = Some(sp.start.map_or(f, |x| x.min(f)));
        }
        match s.finished_at {
            Some(e) => sp.end = Some(sp.end.map_or(e, |x| x.max(e))),
            None if !s.status.is_done() => sp.all_finished = false,
            None => {}
        }
    }
    sp
}

fn group_status<'a>(steps: impl Iterator<Item = &'a StepView>) -> String {
    let (mut done, mut n, mut failed, mut running, mut waiting) = (0, 0, false, false, false);
    for s in steps {
        n += 1;
        match s.status {
            StepStatus::Failed { .. } => failed = true,
            StepStatus::Running { .. } => running = true,
            StepStatus::AwaitingOperator { .. } => waiting = true,
            _ if s.status.is_done() => done += 1,
            _ => {}
        }
    }
    let s = if failed {
        "failed"
    } else if running {
        "running"
    } else if waiting {
        "waiting"
    } else if done == n {
        "done"
    } else if done == 0 {
        "pending"
    } else {
        "partial"
    };
    s.into()
}

/// Planned duration of a group: steps outside waves add up; each wave counts its longest map step
/// plus its non-map steps (gates), since a wave runs its maps at once.
fn planned<'a>(steps: impl Iterator<Item = &'a StepView>, scale: f64) -> u64 {
    let mut total = 0u64;
    let mut waves: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for s in steps {
        let e = estimate(s, scale);
        match (&s.info.wave, &s.info.map) {
            (Some(w), Some(_)) => {
                let entry = waves.entry(w.as_str()).or_default();
                entry.0 = entry.0.max(e);
            }
            (Some(w), None) => waves.entry(w.as_str()).or_default().1 += e,
            (None, _) => total += e,
        }
    }
    total + waves.values().map(|(m, g)| m + g).sum::<u64>()
}

fn over(actual: Option<u64>, planned: u64) -> Option<i64> {
    actual.map(|a| i64::try_from(i128::from(a) - i128::from(planned)).unwrap_or(0))
}

/// Assemble the report. `runs` lists the journal's runs; `selected` is the one folded.
pub fn assemble(
    fold: &Fold,
    runs: &[RunSummary],
    selected: &RunSummary,
    verification: Verification,
    last_event_hash: Option<String>,
) -> Report {
    let st = &fold.state;
    let h = &st.header;
    let scale = h.time_scale;
    let (outcome, outcome_detail) = outcome_parts(h.outcome.as_ref());
    let run = RunInfo {
        run_id: selected.run_id.0.clone(),
        runbook: h.runbook.clone(),
        version: h.version.clone(),
        runbook_sha256: h.runbook_sha256.clone(),
        operators: h.operators.iter().map(|o| scrub(o)).collect(),
        hosts: h.hosts.clone(),
        started_at: h.started_at.map(at),
        finished_at: h.finished_at.map(at),
        outcome,
        outcome_detail,
        elapsed_ms: h.elapsed_ms,
        freeze_window_start: h.freeze_window.as_ref().map(|f| at(f.start)),
        freeze_window_end: h.freeze_window.as_ref().map(|f| at(f.end)),
        resumes: h.resumes,
        lease_takeovers: h.lease_takeovers,
        accepted_changed_runbook: h.accepted_changed_runbook,
        exceptions: st
            .steps
            .iter()
            .filter_map(|s| match &s.status {
                StepStatus::Waived { reason } => Some(ExceptionRow {
                    step: s.info.id.0.to_string(),
                    status: "waived".into(),
                    reason: reason.as_deref().map(scrub),
                }),
                StepStatus::Skipped { reason } => Some(ExceptionRow {
                    step: s.info.id.0.to_string(),
                    status: "skipped".into(),
                    reason: Some(scrub(reason)),
                }),
                _ => None,
            })
            .collect(),
        time_scale: scale,
        unsupported: fold.unsupported.clone(),
        events: st.events_applied,
        first_event_id: selected.first_event_id,
        last_event_id: st.last_event_id,
        last_event_hash,
        chain_head_hash: verification.head_hash.clone(),
    };
    let listing = runs
        .iter()
        .map(|r| RunListing {
            run_id: r.run_id.0.clone(),
            runbook: r.runbook.clone(),
            version: r.version.clone(),
            operator: scrub(&r.operator),
            started_at: at(r.started_at),
            finished_at: r.finished_at.map(at),
            outcome: outcome_parts(r.outcome.as_ref()).0,
            events: r.events,
            selected: r.run_id == selected.run_id,
        })
        .collect();

    let mut phase_order: Vec<&str> = Vec::new();
    let mut wave_order: Vec<(&str, &str)> = Vec::new();
    for s in &st.steps {
        if !phase_order.contains(&&*s.info.phase) {
            phase_order.push(&s.info.phase);
        }
        if let Some(w) = &s.info.wave
            && !wave_order.iter().any(|(_, x)| x == w)
        {
            wave_order.push((&s.info.phase, w));
        }
    }
    let phases = phase_order
        .iter()
        .map(|p| {
            let in_phase = || st.steps.iter().filter(move |s| *s.info.phase == **p);
            let sp = span(fold, in_phase());
            let actual = match (sp.start, sp.end, sp.all_finished) {
                (Some(a), Some(b), true) => Some(ms_between(a, b)),
                _ => None,
            };
            let planned_ms = planned(in_phase(), scale);
            PhaseRow {
                phase: (*p).to_owned(),
                steps: in_phase().count(),
                status: group_status(in_phase()),
                started_at: sp.start.map(at),
                finished_at: sp.end.filter(|_| sp.all_finished).map(at),
                actual_ms: actual,
                planned_ms,
                over_ms: over(actual, planned_ms),
            }
        })
        .collect();
    let waves = wave_order
        .iter()
        .map(|(p, w)| {
            let in_wave = || {
                st.steps
                    .iter()
                    .filter(move |s| s.info.wave.as_deref() == Some(*w))
            };
            let sp = span(fold, in_wave());
            let mut maps: Vec<String> = Vec::new();
            for m in in_wave().filter_map(|s| s.info.map.clone()) {
                if !maps.contains(&m) {
                    maps.push(m);
                }
            }
            WaveRow {
                phase: (*p).to_owned(),
                wave: (*w).to_owned(),
                maps,
                steps: in_wave().count(),
                started_at: sp.start.map(at),
                finished_at: sp.end.filter(|_| sp.all_finished).map(at),
                actual_ms: match (sp.start, sp.end, sp.all_finished) {
                    (Some(a), Some(b), true) => Some(ms_between(a, b)),
                    _ => None,
                },
                planned_ms: planned(in_wave(), scale),
                gate_passed: fold
                    .gates
                    .iter()
                    .rev()
                    .find(|g| g.wave.as_deref() == Some(*w))
                    .map(|g| g.passed),
            }
        })
        .collect();
    let steps = st
        .steps
        .iter()
        .map(|s| {
            let (status, detail) = status_parts(&s.status);
            let first = fold.first_started.get(&s.info.id).copied();
            StepRow {
                id: s.info.id.0.to_string(),
                phase: s.info.phase.to_string(),
                wave: s.info.wave.clone(),
                kind: s.info.kind.to_string(),
                title: scrub(&s.info.title),
                map: s.info.map.clone(),
                planned: s.planned,
                status,
                detail,
                attempts: s.attempts,
                first_started_at: first.map(at),
                started_at: s.started_at.map(at),
                finished_at: s.finished_at.map(at),
                duration_ms: s.duration_ms,
                elapsed_ms: match (first.or(s.started_at), s.finished_at) {
                    (Some(a), Some(b)) => Some(ms_between(a, b)),
                    _ => None,
                },
                estimate_ms: estimate(s, scale),
                requests: s.request_count,
                handle: s.handle.as_ref().map(|hd| format!("{}:{}", hd.kind, hd.id)),
            }
        })
        .collect();
    let parity = st
        .parity
        .rows
        .iter()
        .map(|(k, r)| {
            let (first_at, fs, ft) =
                fold.first_parity
                    .get(k)
                    .copied()
                    .unwrap_or((r.at, r.baseline.0, r.baseline.1));
            ParityRow {
                map: k.map.clone(),
                company: k.company.clone(),
                first_at: at(first_at),
                first_source: fs,
                first_target: ft,
                first_difference: i64::try_from(i128::from(fs) - i128::from(ft)).unwrap_or(0),
                last_at: at(r.at),
                last_source: r.source,
                last_target: r.target,
                last_difference: r.difference,
                allowed: r.allowed,
                status: if r.status == ParityStatus::Drift {
                    "drift"
                } else {
                    "within"
                }
                .into(),
                samples: r.samples,
                peak_difference: fold.peak.get(k).copied().unwrap_or(0),
            }
        })
        .collect();
    // Maps read through error sources: one row per source and category, or one "not available" row per
    // source that could not be read. Other maps (old journals): the queue's totals or the entries seen.
    let mut errors: Vec<ErrorTotal> = Vec::new();
    for (map, per) in &st.errors.sources {
        for (source, figure) in per {
            if source == crate::state::errors::LEGACY_SOURCE {
                continue;
            }
            match figure {
                crate::state::errors::SourceFigure::Available(by) => {
                    for (category, count) in by {
                        errors.push(ErrorTotal {
                            map: map.clone(),
                            category: scrub(category),
                            count: *count,
                            source: scrub(source),
                            unavailable: None,
                        });
                    }
                }
                crate::state::errors::SourceFigure::Unavailable(why) => errors.push(ErrorTotal {
                    map: map.clone(),
                    category: String::new(),
                    count: 0,
                    source: scrub(source),
                    unavailable: Some(scrub(why)),
                }),
            }
        }
    }
    errors.extend(
        st.errors
            .counts()
            .into_iter()
            .filter(|((map, _), _)| {
                !st.errors
                    .sources
                    .get(map)
                    .is_some_and(|p| p.keys().any(|k| k != crate::state::errors::LEGACY_SOURCE))
            })
            .map(|((map, category), count)| ErrorTotal {
                source: if st.errors.reported.contains_key(&map) {
                    "reported"
                } else {
                    "seen"
                }
                .into(),
                map,
                category: scrub(&category),
                count,
                unavailable: None,
            }),
    );
    errors.sort_by(|a, b| (&a.map, &a.category).cmp(&(&b.map, &b.category)));

    let mut ranked: Vec<_> = fold.parity_series.iter().collect();
    ranked.sort_by(|(ka, _), (kb, _)| {
        let pa = fold.peak.get(*ka).copied().unwrap_or(0);
        let pb = fold.peak.get(*kb).copied().unwrap_or(0);
        pb.cmp(&pa).then(ka.cmp(kb))
    });
    let omitted = ranked.len().saturating_sub(CHART_SERIES);
    let series = ranked
        .into_iter()
        .take(CHART_SERIES)
        .map(|(k, d)| Series {
            label: match &k.company {
                Some(c) => format!("{}/{c}", k.map),
                None => k.map.clone(),
            },
            points: d.points(),
        })
        .collect();

    Report {
        schema_version: super::model::REPORT_SCHEMA_VERSION,
        generated_by: format!("cutover {}", env!("CARGO_PKG_VERSION")),
        verification,
        run,
        runs: listing,
        phases,
        waves,
        steps,
        decisions: fold.decisions.clone(),
        gates: waived_verdicts(fold.gate_rows(), &st.steps),
        gates_total: fold.gates_total,
        parity,
        errors,
        errors_seen_total: st.errors.seen_total,
        alerts: fold.alerts.clone(),
        installs: fold.installs(),
        ownership: fold.ownership.clone(),
        automation: st
            .automation
            .values()
            .map(|v| {
                let end = v.restored_at.or(st.header.last_event_at).unwrap_or(v.off_at);
                AutomationRow {
                    env: v.env.clone(),
                    kind: v.kind.clone(),
                    name: scrub(&v.name),
                    table: v.table.clone(),
                    step: v.step.0.to_string(),
                    before: if v.was_on() { "on" } else { "off" }.to_owned(),
                    off_at: at(v.off_at),
                    restored_at: v.restored_at.map(at),
                    restored_by: v.restored_at.map(|_| {
                        v.restored_by
                            .as_ref()
                            .map_or_else(|| "abort".to_owned(), |s| s.0.to_string())
                    }),
                    off_for: super::text::duration(
                        u64::try_from((end - v.off_at).num_milliseconds()).unwrap_or(0),
                    ),
                }
            })
            .collect(),
        batch_windows: st
            .batch_windows
            .iter()
            .map(|(step, v)| {
                let end = v.resumed_at.or(st.header.last_event_at).unwrap_or(v.opened_at);
                BatchWindowRow {
                    step: step.clone(),
                    maps: v.maps.clone(),
                    paused_at: at(v.opened_at),
                    resumed_at: v.resumed_at.map(at),
                    resumed_by: v.resumed_at.map(|_| {
                        if v.resumed_by_abort {
                            "abort".to_owned()
                        } else {
                            step.clone()
                        }
                    }),
                    confirmed: v.confirmed,
                    paused_for: super::text::duration(
                        u64::try_from((end - v.opened_at).num_milliseconds()).unwrap_or(0),
                    ),
                }
            })
            .collect(),
        downloads: fold.downloads(),
        package_installs: Vec::new(),
        package_drift: Vec::new(),
        rows: st
            .rows
            .iter()
            .map(|(k, v)| RowsRow {
                at: at(v.at),
                step: v.step.0.to_string(),
                map: k.map.clone(),
                company: k.company.clone(),
                source_rows: v.source_rows,
                target_rows: v.target_rows,
                matching: v.matching,
                missing: v.missing,
                extra: v.extra,
                different: v.different,
                scratch_bytes: v.scratch_bytes,
                sample: v
                    .sample
                    .iter()
                    .map(|d| RowSampleRow {
                        class: enum_name(&d.class),
                        key: scrub(&d.key),
                        differences: d
                            .fields
                            .iter()
                            .map(|f| scrub(&format!("{}: {} ≠ {}", f.field, f.source, f.target)))
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        sample_keys: fold.sample_keys.clone(),
        sample_keys_total: fold.sample_keys_total,
        errors_resolved: fold.resolved_errors(),
        preflights: Vec::new(),
        charts: Charts {
            span_ms: h.elapsed_ms,
            parity: series,
            parity_omitted: omitted,
            errors: fold.error_series.points(),
        },
        trend: Vec::new(),
    }
}

/// The report's rows for journaled preflights (`envelopes` holds `preflight_checked` events only; anything
/// else is skipped). Service text is scrubbed like every other message of the report.
pub fn preflight_rows(envelopes: &[crate::model::Envelope], run_sha256: &str) -> Vec<PreflightRow> {
    use crate::model::event::{CheckStatus, Event};
    envelopes
        .iter()
        .filter_map(|e| match &e.event {
            Event::PreflightChecked {
                runbook,
                version,
                runbook_sha256,
                operator,
                host,
                target,
                checks,
            } => {
                let n = |s: CheckStatus| checks.iter().filter(|c| c.status == s).count() as u64;
                Some(PreflightRow {
                    at: at(e.at),
                    event_id: e.id,
                    runbook: scrub(runbook),
                    version: scrub(version),
                    runbook_sha256: runbook_sha256.clone(),
                    same_runbook: runbook_sha256 == run_sha256,
                    operator: scrub(operator),
                    host: scrub(host),
                    target: scrub(target),
                    ok: n(CheckStatus::Ok),
                    warnings: n(CheckStatus::Warning),
                    errors: n(CheckStatus::Error),
                    skipped: n(CheckStatus::Skipped),
                    checks: checks
                        .iter()
                        .map(|c| PreflightLine {
                            check: scrub(&c.check),
                            subject: scrub(&c.subject),
                            status: c.status.label().to_owned(),
                            message: scrub(&c.message),
                            fix: c.fix.as_deref().map(scrub),
                        })
                        .collect(),
                })
            }
            _ => None,
        })
        .collect()
}

/// Marks the last verdict of each gate step that ended waived (it failed, and an operator let the run go on).
fn waived_verdicts(mut gates: Vec<super::model::GateRow>, steps: &[StepView]) -> Vec<super::model::GateRow> {
    for s in steps {
        if !matches!(s.status, StepStatus::Waived { .. }) {
            continue;
        }
        if let Some(g) = gates.iter_mut().rev().find(|g| g.step == s.info.id.as_str()) {
            g.waived = !g.passed;
        }
    }
    gates
}
