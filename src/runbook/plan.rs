//! The plan: the execution order a runbook implies (phases → waves → steps, with the per-map steps a
//! wave expands into and the gates between waves), each step's full `needs`, and the critical path by
//! estimated duration.
//!
//! Implicit order: phases run in order (the first step of a phase needs the last step(s) of the previous
//! one); steps of a `steps:` phase run in listed order (each needs the one before it, plus its own
//! `needs`); a wave's map steps need the previous wave's gate (or, without a gate, the previous wave's map
//! steps); a gate needs its wave's map steps. `steps` is in a valid execution order: every `needs` entry
//! appears earlier.
//!
//! Estimates (documented for users in the README): manual 10m, wait/monitor their `for` (a `monitor` with `until`: the rest of the
//! freeze window up to it; 0 without a window),
//! http 1m, shell 2m, parity 5m, error_queue 1m, dmf.export/dmf.import 30m, dualwrite.run with initial
//! sync 5m + rows/5 s per map (rows 10,000 when unknown; a wave runs `concurrency` maps at once, the
//! rest queue), without 2m, pause/resume/stop 2m, roundtrip its
//! `within` (2m), sample 5m, notify 10s, gate 5m.

use std::fmt::Write as _;

use serde::Serialize;

use super::model::{MapId, Runbook, Step, StepId};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub runbook: String,
    pub steps: Vec<PlannedStep>,
    pub critical_path: Vec<StepId>,
    /// Sum of the estimates along the critical path, in seconds.
    pub critical_path_secs: u64,
    /// Each wave map's dual-write initial sync: rows, rate, duration, where the rate comes from, and a
    /// warning when the map is beyond what dual-write's initial sync carries.
    pub sizing: Vec<MapSizing>,
    /// Each `dualwrite.batch_window`: its maps and planned window, with a warning when the window exceeds
    /// dual-write's documented 1-day pause limit.
    pub batch_windows: Vec<WindowPlan>,
}

/// One planned `dualwrite.batch_window`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowPlan {
    pub step: StepId,
    pub maps: Vec<MapId>,
    /// `max_window`, seconds.
    pub max_window_secs: u64,
    /// Set when the window exceeds the pause limit.
    pub warning: Option<String>,
}

/// The size of one map's dual-write initial sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapSizing {
    pub map: MapId,
    /// Source rows: the map's `rows`, else the planner's default.
    pub rows: u64,
    /// `rows` is the runbook's estimate (false: the default of 10,000).
    pub rows_from_runbook: bool,
    /// Rows per second, low and high (equal when measured).
    pub rate_low: f64,
    pub rate_high: f64,
    /// The initial sync at those rates, seconds (longest first).
    pub secs_slow: u64,
    pub secs_fast: u64,
    /// Where the rate comes from: the documented default, or the rehearsal journal.
    pub source: String,
    /// Set when the map's initial sync is beyond the ~100,000 rows dual-write carries: the DMF + delta road.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// The user's step id, or `<wave-id>:<map-id>` / `<wave-id>:gate` for what a wave expands into.
    pub id: StepId,
    /// The phase's id, one allocation shared by its steps.
    pub phase: std::sync::Arc<str>,
    pub wave: Option<String>,
    pub kind: &'static str,
    pub needs: Vec<StepId>,
    pub title: Option<String>,
    pub point_of_no_return: bool,
    pub estimate_secs: u64,
    /// For a wave's map step: how many of the wave's maps run at once (the wave's `concurrency`, else the
    /// defaults'); the plan's timings queue the maps past it as the engine does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lanes: Option<u32>,
    pub what: PlannedWhat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedWhat {
    /// An ordinary step, as written (the runbook's own, shared).
    Step(std::sync::Arc<Step>),
    /// The `dualwrite.run` with initial sync of one map of a wave.
    WaveMap { map: MapId },
    /// The phase gate checked after a wave.
    Gate { wave: String },
}

const DEFAULT_ROWS: u64 = 10_000;

/// Initial-sync throughput assumed per map, rows per second: the low end of the 5–10 records per second per map
/// that field reports give for dual-write's initial sync (`shared/seeds/002`: "Expect roughly 5-10 records per
/// second per map under normal conditions. For a 500,000 record initial sync, that is 14-28 hours"). A weekend
/// plan budgets the slow end.
pub const INITIAL_SYNC_ROWS_PER_SEC: u64 = 5;

/// The high end of the field figure (5–10 records per second per map).
pub const INITIAL_SYNC_ROWS_PER_SEC_HIGH: u64 = 10;
/// About this many rows is what dual-write's initial sync carries (`shared/seeds/002`: "Dual-write initial
/// sync: Good for tables under ~100,000 records"); beyond it, DMF + delta.
pub const DUAL_WRITE_INITIAL_SYNC_ROWS: u64 = 100_000;
/// Where the default rate comes from, as the plan shows it.
pub const DEFAULT_RATE_SOURCE: &str = "default 5-10 rows/s/map (field reports, shared/seeds/002)";

fn map_rows(rb: &Runbook, map: &MapId) -> (u64, bool) {
    match rb.maps.get(map).and_then(|m| m.rows.as_ref()) {
        Some(r) => (r.total(), true),
        None => (DEFAULT_ROWS, false),
    }
}

fn size_map(rb: &Runbook, map: &MapId, measured: Option<(u64, String)>) -> MapSizing {
    let (rows, rows_from_runbook) = map_rows(rb, map);
    let (rate_low, rate_high, secs_slow, secs_fast, source) = match measured {
        Some((secs, source)) if secs > 0 => {
            let rate = rows as f64 / secs as f64;
            (rate, rate, secs, secs, source)
        }
        _ => (
            INITIAL_SYNC_ROWS_PER_SEC as f64,
            INITIAL_SYNC_ROWS_PER_SEC_HIGH as f64,
            rows / INITIAL_SYNC_ROWS_PER_SEC,
            rows / INITIAL_SYNC_ROWS_PER_SEC_HIGH,
            DEFAULT_RATE_SOURCE.to_owned(),
        ),
    };
    let warning = (rows > DUAL_WRITE_INITIAL_SYNC_ROWS).then(|| {
        format!(
            "{rows} rows is beyond the ~{DUAL_WRITE_INITIAL_SYNC_ROWS} rows dual-write's initial sync carries ({}): load them with a DMF package instead (a `dmf.export`/`dmf.import` pair before the weekend, the map `initial_sync: none`), then run the map without initial sync so dual-write carries only the delta",
            if secs_slow == secs_fast { human(secs_slow) } else { format!("{}-{}", human(secs_fast), human(secs_slow)) }
        )
    });
    MapSizing {
        map: map.clone(),
        rows,
        rows_from_runbook,
        rate_low,
        rate_high,
        secs_slow,
        secs_fast,
        source,
        warning,
    }
}

fn sizing(rb: &Runbook, steps: &[PlannedStep]) -> Vec<MapSizing> {
    let mut out: Vec<MapSizing> = Vec::new();
    for s in steps {
        if let PlannedWhat::WaveMap { map } = &s.what
            && rb
                .maps
                .get(map)
                .is_some_and(|m| m.initial_sync() == super::model::InitialSync::DualWrite)
            && !out.iter().any(|x| x.map == *map)
        {
            out.push(size_map(rb, map, None));
        }
    }
    out
}

pub(crate) fn map_sync_secs(rb: &Runbook, map: &MapId) -> u64 {
    let rows = rb
        .maps
        .get(map)
        .and_then(|m| m.rows.as_ref())
        .map_or(DEFAULT_ROWS, super::model::Rows::total);
    300 + rows / INITIAL_SYNC_ROWS_PER_SEC
}

/// Plans a runbook. Expects a runbook that validated; references to unknown ids are kept as written.
pub fn plan(rb: &Runbook) -> Plan {
    let mut steps: Vec<PlannedStep> = Vec::new();
    let mut tail: Vec<StepId> = Vec::new(); // what the next thing in order must wait for
    for phase in &rb.phases {
        let phase_id: std::sync::Arc<str> = phase.id.as_str().into();
        for wave in phase.waves.iter().flatten() {
            let entry = tail.clone();
            let mut wave_steps = Vec::new();
            for map in &wave.maps {
                let id = StepId(format!("{}:{}", wave.id, map).into());
                steps.push(PlannedStep {
                    id: id.clone(),
                    phase: std::sync::Arc::clone(&phase_id),
                    wave: Some(wave.id.clone()),
                    kind: "dualwrite.run",
                    needs: entry.clone(),
                    title: Some(format!("Initial sync of {map}")),
                    point_of_no_return: false,
                    estimate_secs: map_sync_secs(rb, map),
                    lanes: Some(
                        wave.concurrency
                            .unwrap_or_else(|| rb.defaults.concurrency())
                            .max(1),
                    ),
                    what: PlannedWhat::WaveMap { map: map.clone() },
                });
                wave_steps.push(id);
            }
            tail = wave_steps.clone();
            if phase.gate.is_some() {
                let id = StepId(format!("{}:gate", wave.id).into());
                steps.push(PlannedStep {
                    id: id.clone(),
                    phase: std::sync::Arc::clone(&phase_id),
                    wave: Some(wave.id.clone()),
                    kind: "gate",
                    needs: wave_steps,
                    title: Some(format!("Gate after {}", wave.id)),
                    point_of_no_return: false,
                    estimate_secs: 300,
                    lanes: None,
                    what: PlannedWhat::Gate {
                        wave: wave.id.clone(),
                    },
                });
                tail = vec![id];
            }
        }
        for step in phase.steps.iter().flatten() {
            let mut needs = tail.clone();
            for n in &step.needs {
                if !needs.contains(n) {
                    needs.push(n.clone());
                }
            }
            steps.push(PlannedStep {
                id: step.id.clone(),
                phase: std::sync::Arc::clone(&phase_id),
                wave: None,
                kind: step.kind_name(),
                needs,
                title: step.title.clone(),
                point_of_no_return: step.point_of_no_return,
                estimate_secs: step.kind.spec().estimate_secs(rb),
                lanes: None,
                what: PlannedWhat::Step(std::sync::Arc::clone(step)),
            });
            tail = vec![step.id.clone()];
        }
    }
    monitor_until(rb, &mut steps);
    // Kept for the whole run: no doubling slack.
    steps.shrink_to_fit();
    let (critical_path, critical_path_secs) = critical_path(&steps);
    Plan {
        runbook: rb.runbook.clone(),
        sizing: sizing(rb, &steps),
        batch_windows: batch_windows(rb, &steps),
        steps,
        critical_path,
        critical_path_secs,
    }
}

fn batch_windows(rb: &Runbook, steps: &[PlannedStep]) -> Vec<WindowPlan> {
    steps
        .iter()
        .filter_map(|s| match &s.what {
            PlannedWhat::Step(step) => match &step.kind {
                super::StepKind::DualwriteBatchWindow(k) => {
                    let secs = k.max_window.as_secs();
                    Some(WindowPlan {
                        step: s.id.clone(),
                        maps: k.maps.resolve(rb.maps.keys()),
                        max_window_secs: secs,
                        warning: super::steps::batch_window::window_warning(secs),
                    })
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// A `monitor` with `until` lasts from its start to that time: with a freeze window (the plan's time 0 is
/// its start) its estimate is what is left of it then; without one it stays 0 (nothing to measure from).
fn monitor_until(rb: &Runbook, steps: &mut [PlannedStep]) {
    let Some(window) = &rb.freeze_window else {
        return;
    };
    let (starts, _) = schedule(steps);
    for (s, start) in steps.iter_mut().zip(starts) {
        if let PlannedWhat::Step(step) = &s.what
            && let super::steps::StepKind::Monitor(m) = &step.kind
            && let Some(until) = &m.until
        {
            let end = (until.at() - window.start.at()).num_seconds();
            s.estimate_secs = u64::try_from(end).unwrap_or(0).saturating_sub(start);
        }
    }
}

/// When each step starts and which step it waited for last (seconds from the start; `steps` in execution
/// order, so one forward pass suffices). A wave's map steps also wait for one of the wave's `lanes`: past
/// its concurrency a map starts when the earliest running one finishes, as the engine's scheduler does.
fn schedule(steps: &[PlannedStep]) -> (Vec<u64>, Vec<Option<usize>>) {
    let index: std::collections::HashMap<&StepId, usize> =
        steps.iter().enumerate().map(|(i, s)| (&s.id, i)).collect();
    let mut start = vec![0u64; steps.len()];
    let mut finish = vec![0u64; steps.len()];
    let mut prev: Vec<Option<usize>> = vec![None; steps.len()];
    // Per wave: when each lane frees up, and which step held it.
    let mut lanes: std::collections::HashMap<&str, Vec<(u64, Option<usize>)>> =
        std::collections::HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        let mut at = 0;
        for n in &s.needs {
            if let Some(&j) = index.get(n)
                && j < i
                && (finish[j] > at || prev[i].is_none())
            {
                at = finish[j];
                prev[i] = Some(j);
            }
        }
        if let (Some(n), Some(w)) = (s.lanes, s.wave.as_deref()) {
            let wave = lanes
                .entry(w)
                .or_insert_with(|| vec![(0, None); usize::try_from(n.max(1)).unwrap_or(1)]);
            if let Some(lane) = wave.iter_mut().min_by_key(|(free, _)| *free) {
                if lane.0 > at {
                    at = lane.0;
                    prev[i] = lane.1;
                }
                *lane = (at + s.estimate_secs, Some(i));
            }
        }
        start[i] = at;
        finish[i] = at + s.estimate_secs;
    }
    (start, prev)
}

/// Longest path by estimates, through the waits [`schedule`] found.
fn critical_path(steps: &[PlannedStep]) -> (Vec<StepId>, u64) {
    let (start, prev) = schedule(steps);
    let finish: Vec<u64> = start
        .iter()
        .zip(steps)
        .map(|(a, s)| a + s.estimate_secs)
        .collect();
    let Some((mut at, total)) = finish.iter().copied().enumerate().max_by_key(|(i, f)| (*f, *i)) else {
        return (Vec::new(), 0);
    };
    let mut path = vec![steps[at].id.clone()];
    while let Some(p) = prev[at] {
        path.push(steps[p].id.clone());
        at = p;
    }
    path.reverse();
    (path, total)
}

/// Where a plan stands against a time budget (the freeze window), after measured durations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Steps whose estimate was replaced by a measured duration.
    pub measured_steps: Vec<StepId>,
    /// The freeze window's length, when the runbook has one.
    pub window_secs: Option<u64>,
    /// The earliest finish of the whole plan (its critical path).
    pub critical_path_secs: u64,
    /// Steps (in execution order) that would finish after the window ends, with their finish
    /// time from the start; empty when the plan fits.
    pub past_window: Vec<(StepId, u64)>,
}

/// Replace the estimates of the steps `measured` names (seconds, e.g. from a rehearsal's journal),
/// recompute the critical path, and find what would finish past a window of `window_secs`.
pub fn with_measured(
    p: Plan,
    measured: &std::collections::BTreeMap<String, u64>,
    window_secs: Option<u64>,
) -> (Plan, Budget) {
    with_measured_from(None, p, measured, window_secs, "")
}

/// [`with_measured`], and each wave map's initial-sync rate re-sized from its measured duration (`from` names
/// the journal in the rate's source).
pub fn with_measured_from(
    rb: Option<&Runbook>,
    mut p: Plan,
    measured: &std::collections::BTreeMap<String, u64>,
    window_secs: Option<u64>,
    from: &str,
) -> (Plan, Budget) {
    let mut measured_steps = Vec::new();
    for s in &mut p.steps {
        if let Some(&secs) = measured.get(s.id.as_str()) {
            s.estimate_secs = secs;
            measured_steps.push(s.id.clone());
            if let (Some(rb), PlannedWhat::WaveMap { map }) = (rb, &s.what)
                && let Some(i) = p.sizing.iter().position(|x| x.map == *map)
            {
                p.sizing[i] = size_map(
                    rb,
                    map,
                    Some((
                        secs,
                        format!("measured in the rehearsal journal {from} (step {})", s.id),
                    )),
                );
            }
        }
    }
    let (path, total) = critical_path(&p.steps);
    p.critical_path = path;
    p.critical_path_secs = total;
    let past_window = match window_secs {
        Some(w) => finish_times(&p.steps)
            .into_iter()
            .zip(&p.steps)
            .filter(|(f, _)| *f > w)
            .map(|(f, s)| (s.id.clone(), f))
            .collect(),
        None => Vec::new(),
    };
    let budget = Budget {
        measured_steps,
        window_secs,
        critical_path_secs: total,
        past_window,
    };
    (p, budget)
}

/// Earliest finish of every step (seconds from the start), steps in execution order.
fn finish_times(steps: &[PlannedStep]) -> Vec<u64> {
    let (start, _) = schedule(steps);
    start
        .iter()
        .zip(steps)
        .map(|(a, s)| a + s.estimate_secs)
        .collect()
}

/// The text `plan --from-journal` adds under the plan.
pub fn render_budget(b: &Budget) -> String {
    let mut out = format!(
        "measured: {} step(s) use durations from the journal; critical path ≈ {}\n",
        b.measured_steps.len(),
        human(b.critical_path_secs)
    );
    match (b.window_secs, b.past_window.first()) {
        (None, _) => out.push_str("no freeze window in the runbook: nothing to overrun\n"),
        (Some(w), None) => {
            let _ = writeln!(
                out,
                "fits the freeze window ({}) with {} to spare",
                human(w),
                human(w.saturating_sub(b.critical_path_secs))
            );
        }
        (Some(w), Some((first, at))) => {
            let _ = writeln!(
                out,
                "OVERRUNS the freeze window ({}) by {}: {} step(s) would finish after it ends, the first {} at +{}",
                human(w),
                human(b.critical_path_secs.saturating_sub(w)),
                b.past_window.len(),
                first,
                human(*at)
            );
        }
    }
    out
}

fn human(secs: u64) -> String {
    super::duration::Duration::from_secs(secs).to_string()
}

/// The initial-sync sizing lines under the plan: rows, rate and duration per map, with the rate's source
/// beside each, and the DMF + delta road for a map beyond what dual-write's initial sync carries.
pub fn render_sizing(p: &Plan) -> String {
    if p.sizing.is_empty() {
        return String::new();
    }
    let mut out = String::from("initial sync (dual-write), per map:\n");
    for s in &p.sizing {
        let rate = if (s.rate_low - s.rate_high).abs() < f64::EPSILON {
            format!("{:.1} rows/s", s.rate_low)
        } else {
            format!("{:.0}-{:.0} rows/s", s.rate_low, s.rate_high)
        };
        let time = if s.secs_slow == s.secs_fast {
            human(s.secs_slow)
        } else {
            format!("{}-{}", human(s.secs_fast), human(s.secs_slow))
        };
        let rows = if s.rows_from_runbook {
            format!("{} rows", s.rows)
        } else {
            format!("{} rows (default: no `rows`)", s.rows)
        };
        let mark = if s.warning.is_some() { '!' } else { ' ' };
        let _ = writeln!(
            out,
            "{mark} {:<26} {rows:<30} ~{time:<14} at {rate:<14} [{}]",
            s.map.as_str(),
            s.source
        );
        if let Some(w) = &s.warning {
            let _ = writeln!(out, "    ! {w}");
        }
    }
    out
}

/// The batch-window lines under the plan: each window's maps and planned pause against dual-write's
/// 1-day pause limit.
pub fn render_batch_windows(p: &Plan) -> String {
    if p.batch_windows.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("batch windows (maps paused; dual-write queues their changes for at most 1 day):\n");
    for w in &p.batch_windows {
        let maps: Vec<&str> = w.maps.iter().map(MapId::as_str).collect();
        let mark = if w.warning.is_some() { '!' } else { ' ' };
        let _ = writeln!(
            out,
            "{mark} {:<26} paused up to {:<10} {}",
            w.step.as_str(),
            human(w.max_window_secs),
            maps.join(", ")
        );
        if let Some(warn) = &w.warning {
            let _ = writeln!(out, "    ! {warn}");
        }
    }
    out
}

/// A readable tree: phases, waves, steps, gates; `*` marks the critical path, `!` a point of no return.
pub fn render_text(p: &Plan) -> String {
    let critical: std::collections::HashSet<&StepId> = p.critical_path.iter().collect();
    let mut out = format!(
        "plan for {}: {} steps, critical path ≈ {} ({} steps, marked *)\n",
        p.runbook,
        p.steps.len(),
        human(p.critical_path_secs),
        p.critical_path.len()
    );
    let (mut phase, mut wave): (Option<&str>, Option<&str>) = (None, None);
    for s in &p.steps {
        if phase != Some(&*s.phase) {
            let _ = writeln!(out, "phase {}", s.phase);
            phase = Some(&s.phase);
            wave = None;
        }
        if s.wave.as_deref() != wave {
            wave = s.wave.as_deref();
            if let Some(w) = wave {
                let _ = writeln!(out, "  wave {w}");
            }
        }
        let indent = if s.wave.is_some() { "    " } else { "  " };
        let mark = if critical.contains(&s.id) { '*' } else { ' ' };
        let pnr = if s.point_of_no_return {
            "  ! point of no return"
        } else {
            ""
        };
        let label = match &s.what {
            PlannedWhat::Gate { .. } => "── gate ──".to_owned(),
            _ => s.kind.to_owned(),
        };
        let title = s.title.as_deref().map(|t| format!("  {t}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{mark} {indent}{:<w$} {label:<14} ~{:<8}{title}{pnr}",
            s.id.as_str(),
            human(s.estimate_secs),
            w = 36 - indent.len()
        );
    }
    out
}
