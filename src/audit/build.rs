//! Building a [`Report`] by folding a run's envelopes once, in journal order.
//!
//! What the console already computes (step statuses, parity table, error totals, installs, the
//! header) comes from the one reducer, [`RunState::apply`]. What the console does not keep (every
//! decision with the question asked, gate counts at the moment of the verdict, first attempts,
//! chart series over the whole run) is folded here beside it. Memory is bounded by the plan and the
//! number of decisions and alerts, never by the number of events.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::model::{
    AlertRow, DecisionRow, GateCount, GateRow, InstallRow, Point, ResolvedErrorRow, SampleKeyRow, SignedIn,
};
use super::series::Downsampler;
use super::text::{at, enum_name, scrub};
use crate::model::event::{DecisionKind, Event, GateFailure, StepOutcome};
use crate::model::{Envelope, StepId};
use crate::state::ParityKey;
use crate::state::RunState;

/// Gate verdicts kept with their counts (the newest); `gates_total` stays exact.
pub const GATES_KEPT: usize = 200;
/// Points per chart series.
pub const CHART_POINTS: usize = 240;
/// Parity rows drawn in the drift chart (the ones that drifted most).
pub const CHART_SERIES: usize = 8;

const NO_COMPANY: u32 = u32::MAX;

/// One row of a gate's counts, names interned in [`Fold`].
#[derive(Clone, Copy, Debug)]
pub struct CountRow {
    map: u32,
    company: u32,
    source: u64,
    target: u64,
    difference: i64,
    allowed: u64,
    errors: u64,
    failed: bool,
}

/// A gate verdict as folded; [`Fold::gate_rows`] turns it into report rows.
#[derive(Clone, Debug)]
pub struct GateSnap {
    pub at: String,
    pub event_id: i64,
    pub step: String,
    pub wave: Option<String>,
    pub passed: bool,
    counts: Vec<CountRow>,
}

/// Map and company names, stored once and referred to by index.
#[derive(Default)]
pub struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = u32::try_from(self.names.len()).unwrap_or(u32::MAX - 1);
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), i);
        i
    }

    fn name(&self, i: u32) -> String {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.names.get(i))
            .cloned()
            .unwrap_or_default()
    }
}

/// Per-run fold state: the reducer's state plus the audit history it does not keep.
pub struct Fold {
    pub state: RunState,
    pub decisions: Vec<DecisionRow>,
    pub gates: std::collections::VecDeque<GateSnap>,
    pub gates_total: u64,
    pub alerts: Vec<AlertRow>,
    /// First sample per parity row: (time, source, target).
    pub first_parity: BTreeMap<ParityKey, (DateTime<Utc>, u64, u64)>,
    pub peak: HashMap<ParityKey, u64>,
    pub first_started: HashMap<StepId, DateTime<Utc>>,
    pub parity_series: HashMap<ParityKey, Downsampler>,
    pub error_series: Downsampler,
    /// The question pending per step (what the next decision answers).
    asked: HashMap<Option<StepId>, (DecisionKind, String)>,
    /// Maps of each wave (from the plan), for gate counts.
    wave_maps: HashMap<String, Vec<String>>,
    /// What the run's runbook uses that Microsoft does not support (the gateway mode's label).
    pub unsupported: Vec<String>,
    /// The runbook's ownership decisions, one row per map and per field owner.
    pub ownership: Vec<super::model::OwnershipRow>,
    start: Option<DateTime<Utc>>,
    names: Interner,
    /// Per gate wave (`None`: every map), the parity rows its verdicts read.
    layouts: HashMap<Option<String>, Layout>,
    /// Events folded so far (the clock of `changed`).
    folded: u64,
    /// Per interned map, the `folded` count at the last event that could change its parity rows or its
    /// error total (a `ParitySample`, `ErrorEntries` or `ErrorCounts` of the map: the only events the
    /// reducer changes those with), so a gate re-reads only the rows of maps changed since the last.
    changed: Vec<u64>,
    /// The planned initial-sync steps (`dualwrite.run` of one map) and their map.
    sync_steps: HashMap<StepId, String>,
    /// Maps whose planned initial sync has not succeeded yet: their parity is the copy's progress, not
    /// drift, and stays out of the drift chart.
    unsynced: std::collections::HashSet<String>,
    /// The keys `sample` steps found differing (the first [`SAMPLE_KEYS_KEPT`]), and how many in all.
    pub sample_keys: Vec<SampleKeyRow>,
    pub sample_keys_total: u64,
    /// Per (map, error source): every entry journaled, and whether the source's last read listed all it held.
    entries: BTreeMap<(String, String), SourceEntries>,
}

/// Sample keys kept for the report (the total stays exact).
pub const SAMPLE_KEYS_KEPT: usize = 10_000;

/// What one error source of one map listed over the run.
#[derive(Default)]
struct SourceEntries {
    /// By the source's id: (first journaled at, key, category, message, absent since).
    seen: BTreeMap<String, SeenEntry>,
    /// The last read listed every entry the source held.
    last_complete: bool,
}

struct SeenEntry {
    at: DateTime<Utc>,
    key: String,
    category: String,
    message: String,
    /// The first complete read without it, since it was last listed.
    absent_since: Option<DateTime<Utc>>,
}

/// A parity row's (source, target, difference, allowed) and its map's error total.
type RowCounts = (u64, u64, i64, u64, u64);

/// The parity rows a wave's gate reads, in report order, valid while the table has `rows_len` rows,
/// with their counts as last read (at `read_at`, a [`Fold::folded`] count).
#[derive(Default)]
struct Layout {
    rows_len: Option<usize>,
    entries: Vec<(u32, u32, ParityKey)>,
    /// Per entry, its counts; `None` when the row is gone.
    counts: Vec<Option<RowCounts>>,
    read_at: u64,
}

impl Default for Fold {
    fn default() -> Self {
        Self {
            state: RunState::default(),
            decisions: Vec::new(),
            gates: std::collections::VecDeque::new(),
            gates_total: 0,
            alerts: Vec::new(),
            first_parity: BTreeMap::new(),
            peak: HashMap::new(),
            first_started: HashMap::new(),
            parity_series: HashMap::new(),
            error_series: Downsampler::new(CHART_POINTS),
            asked: HashMap::new(),
            wave_maps: HashMap::new(),
            unsupported: Vec::new(),
            ownership: Vec::new(),
            start: None,
            names: Interner::default(),
            layouts: HashMap::new(),
            folded: 0,
            changed: Vec::new(),
            sync_steps: HashMap::new(),
            unsynced: std::collections::HashSet::new(),
            sample_keys: Vec::new(),
            sample_keys_total: 0,
            entries: BTreeMap::new(),
        }
    }
}

fn since(start: Option<DateTime<Utc>>, t: DateTime<Utc>) -> u64 {
    start.map_or(0, |s| u64::try_from((t - s).num_milliseconds()).unwrap_or(0))
}

impl Fold {
    /// Fold one envelope of the run (journal order).
    pub fn apply(&mut self, env: &Envelope) {
        self.state.apply(env);
        self.folded += 1;
        match &env.event {
            Event::ParitySample { map, .. } | Event::ErrorCounts { map, .. } => self.mark_changed(map),
            Event::ErrorEntries { map, entries, .. } => {
                // The reducer counts each entry under its own map.
                self.mark_changed(map);
                for e in entries {
                    if e.map != *map {
                        self.mark_changed(&e.map);
                    }
                }
            }
            _ => {}
        }
        let t = since(self.start, env.at);
        match &env.event {
            Event::RunStarted {
                started_at,
                steps,
                runbook,
                ..
            } => {
                *self = Self {
                    state: std::mem::take(&mut self.state),
                    ..Self::default()
                };
                self.start = Some(*started_at);
                if let Some(rb) = crate::runbook::load::load(&runbook.text, "runbook").runbook {
                    self.ownership = ownership_rows(&rb);
                    let envs = rb.gateway_envs();
                    if !envs.is_empty() {
                        self.unsupported.push(format!(
                            "{} (environment {})",
                            crate::runbook::model::GATEWAY_UNSUPPORTED,
                            envs.join(", ")
                        ));
                    }
                }
                for s in steps {
                    if let (Some(m), "dualwrite.run") = (&s.map, &*s.kind) {
                        self.sync_steps.insert(s.id.clone(), m.clone());
                        self.unsynced.insert(m.clone());
                    }
                    if let (Some(w), Some(m)) = (&s.wave, &s.map) {
                        let maps = self.wave_maps.entry(w.clone()).or_default();
                        if !maps.contains(m) {
                            maps.push(m.clone());
                        }
                    }
                }
            }
            Event::StepIntent { step, .. } => {
                self.first_started.entry(step.clone()).or_insert(env.at);
            }
            Event::StepFinished {
                step,
                outcome: StepOutcome::Succeeded,
                ..
            } => {
                if let Some(m) = self.sync_steps.get(step).cloned()
                    && self.unsynced.remove(&m)
                {
                    // The drift chart starts at the sync's end, from the map's latest counts.
                    let from = ParityKey {
                        map: m.clone(),
                        company: None,
                    };
                    let rows: Vec<(ParityKey, i64)> = self
                        .state
                        .parity
                        .rows
                        .range(from..)
                        .take_while(|(k, _)| k.map == m)
                        .map(|(k, r)| (k.clone(), r.difference))
                        .collect();
                    for (key, diff) in rows {
                        self.chart_point(key, t, diff);
                    }
                }
            }
            Event::AwaitingOperator {
                step,
                decision,
                prompt,
                ..
            } => {
                self.asked.insert(step.clone(), (*decision, scrub(prompt)));
            }
            Event::OperatorDecision {
                step,
                action,
                operator,
                reason,
                checklist_done,
                identity,
            } => {
                let asked = self.asked.remove(step);
                self.decisions.push(DecisionRow {
                    at: at(env.at),
                    event_id: env.id,
                    step: step.as_ref().map(|s| s.0.to_string()),
                    asked: asked.as_ref().map(|(k, _)| enum_name(k)),
                    prompt: asked.map(|(_, p)| p),
                    action: enum_name(action),
                    operator: with_identity(&scrub(operator), identity.as_ref()),
                    reason: reason.as_deref().map(scrub),
                    checklist_done: checklist_done.iter().map(|c| scrub(c)).collect(),
                    identity: identity.as_ref().map(SignedIn::from),
                });
            }
            Event::ApprovalRefused {
                step,
                action,
                operator,
                identity,
                reason,
            } => {
                self.decisions.push(DecisionRow {
                    at: at(env.at),
                    event_id: env.id,
                    step: step.as_ref().map(|s| s.0.to_string()),
                    asked: self.asked.get(step).map(|(k, _)| enum_name(k)),
                    prompt: None,
                    action: format!("refused {}", enum_name(action)),
                    operator: with_identity(&scrub(operator), identity.as_ref()),
                    reason: Some(scrub(reason)),
                    checklist_done: Vec::new(),
                    identity: identity.as_ref().map(SignedIn::from),
                });
            }
            Event::GateEvaluated {
                step,
                wave,
                passed,
                failures,
            } => {
                self.gates_total += 1;
                let row = GateSnap {
                    at: at(env.at),
                    event_id: env.id,
                    step: step.0.to_string(),
                    wave: wave.clone(),
                    passed: *passed,
                    counts: self.gate_counts(wave.as_deref(), failures),
                };
                if self.gates.len() == GATES_KEPT {
                    self.gates.pop_front();
                }
                self.gates.push_back(row);
            }
            Event::ParitySample {
                map,
                company,
                source,
                target,
                ..
            } => {
                let key = ParityKey {
                    map: map.clone(),
                    company: company.clone(),
                };
                if self.unsynced.contains(map) {
                    self.first_parity.entry(key).or_insert((env.at, *source, *target));
                    return;
                }
                let diff = i128::from(*source) - i128::from(*target);
                let diff = i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX });
                self.chart_point(key.clone(), t, diff);
                self.first_parity.entry(key).or_insert((env.at, *source, *target));
            }
            Event::ErrorEntries { map, entries, source } if !entries.is_empty() => {
                let total = i64::try_from(self.state.errors.seen_total).unwrap_or(i64::MAX);
                self.error_series.push(Point {
                    t_ms: t,
                    value: total,
                });
                // A sample's mismatches have no source reads to be resolved by: they are the sample keys.
                if let Some(source) = source.as_ref().filter(|s| s.as_str() != "sample") {
                    let seen = &mut self
                        .entries
                        .entry((map.clone(), source.clone()))
                        .or_default()
                        .seen;
                    for e in entries {
                        seen.entry(e.id.clone()).or_insert_with(|| SeenEntry {
                            at: e.at,
                            key: e.key.clone(),
                            category: e.category.clone(),
                            message: e.message.clone(),
                            absent_since: None,
                        });
                    }
                }
            }
            Event::ErrorCounts {
                map,
                source: Some(source),
                present,
                ..
            } => {
                if let Some(src) = self.entries.get_mut(&(map.clone(), source.clone())) {
                    src.last_complete = present.is_some();
                    if let Some(ids) = present {
                        let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
                        for (id, e) in &mut src.seen {
                            if ids.contains(id.as_str()) {
                                e.absent_since = None;
                            } else if e.absent_since.is_none() {
                                e.absent_since = Some(env.at);
                            }
                        }
                    }
                }
            }
            Event::SampleDiffered { step, map, keys } => {
                for k in keys {
                    self.sample_keys_total += 1;
                    if self.sample_keys.len() < SAMPLE_KEYS_KEPT {
                        self.sample_keys.push(SampleKeyRow {
                            at: at(env.at),
                            step: step.0.to_string(),
                            map: map.clone(),
                            company: k.company.clone(),
                            class: enum_name(&k.class),
                            key: scrub(&k.key),
                            differences: k
                                .fields
                                .iter()
                                .map(|f| scrub(&format!("{}: {} ≠ {}", f.field, f.source, f.target)))
                                .collect(),
                        });
                    }
                }
            }
            Event::Alert {
                severity,
                message,
                map,
                ..
            } => self.alerts.push(AlertRow {
                at: at(env.at),
                event_id: env.id,
                severity: enum_name(severity),
                map: map.clone(),
                message: scrub(message),
            }),
            _ => {}
        }
    }

    /// The errors seen and gone by the end: absent from their source's last read, which listed every
    /// entry it held. By map, source, then when first seen.
    pub fn resolved_errors(&self) -> Vec<ResolvedErrorRow> {
        let mut out = Vec::new();
        for ((map, source), src) in &self.entries {
            if !src.last_complete {
                continue;
            }
            let mut gone: Vec<_> = src
                .seen
                .iter()
                .filter_map(|(id, e)| e.absent_since.map(|t| (e.at, id, e, t)))
                .collect();
            gone.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            out.extend(gone.into_iter().map(|(_, id, e, t)| ResolvedErrorRow {
                map: map.clone(),
                source: source.clone(),
                id: scrub(id),
                key: scrub(&e.key),
                category: e.category.clone(),
                message: scrub(&e.message),
                seen_at: at(e.at),
                resolved_by: at(t),
            }));
        }
        out
    }

    /// Note that `map`'s parity rows or error total may have changed now.
    fn mark_changed(&mut self, map: &str) {
        let i = self.names.intern(map) as usize;
        if self.changed.len() <= i {
            self.changed.resize(i + 1, 0);
        }
        self.changed[i] = self.folded;
    }

    /// One point of the drift chart (and the row's peak, which ranks the rows drawn).
    fn chart_point(&mut self, key: ParityKey, t_ms: u64, diff: i64) {
        let peak = self.peak.entry(key.clone()).or_insert(0);
        *peak = (*peak).max(diff.unsigned_abs());
        self.parity_series
            .entry(key)
            .or_insert_with(|| Downsampler::new(CHART_POINTS))
            .push(Point { t_ms, value: diff });
    }

    /// The counts of the wave's maps (every map when `wave` is unknown) as the reducer has them now,
    /// as compact rows (names interned). The parity rows a gate reads are laid out once per wave
    /// and laid out again only when the parity table gained a row, so a verdict allocates nothing
    /// per row; and a row's counts are read again only when its map changed since the wave's last
    /// verdict (a million-event run has thousands of verdicts over hundreds of maps).
    fn gate_counts(&mut self, wave: Option<&str>, failures: &[GateFailure]) -> Vec<CountRow> {
        let Self {
            state,
            wave_maps,
            names,
            layouts,
            changed,
            folded,
            ..
        } = self;
        let wave_key = wave.filter(|w| wave_maps.contains_key(*w)).map(str::to_owned);
        let rows_now = state.parity.rows.len();
        let layout = layouts.entry(wave_key.clone()).or_default();
        let relaid = layout.rows_len != Some(rows_now);
        if relaid {
            layout.entries.clear();
            let maps: Vec<&String> = match wave_key.as_deref().and_then(|w| wave_maps.get(w)) {
                Some(m) => m.iter().collect(),
                None => state.maps.keys().collect(),
            };
            for map in maps {
                let map_i = names.intern(map);
                let from = ParityKey {
                    map: map.clone(),
                    company: None,
                };
                for (k, _) in state.parity.rows.range(from..).take_while(|(k, _)| &k.map == map) {
                    let company = k.company.as_deref().map_or(NO_COMPANY, |c| names.intern(c));
                    layout.entries.push((map_i, company, k.clone()));
                }
            }
            layout.rows_len = Some(rows_now);
            layout.counts.clear();
            layout.counts.resize(layout.entries.len(), None);
        }
        let read = |k: &ParityKey| {
            state.parity.rows.get(k).map(|r| {
                (
                    r.source,
                    r.target,
                    r.difference,
                    r.allowed,
                    state.errors.total_for_map(&k.map),
                )
            })
        };
        for ((map_i, _, k), counts) in layout.entries.iter().zip(layout.counts.iter_mut()) {
            let since = changed.get(*map_i as usize).copied().unwrap_or(0);
            if relaid || since > layout.read_at {
                *counts = read(k);
            }
            debug_assert_eq!(*counts, read(k), "the counts of {k:?} changed unnoticed");
        }
        layout.read_at = *folded;
        let mut out = Vec::with_capacity(layout.entries.len() + failures.len());
        for ((map_i, company, k), counts) in layout.entries.iter().zip(&layout.counts) {
            let Some((source, target, difference, allowed, errors)) = *counts else {
                continue;
            };
            let failed = failures
                .iter()
                .any(|f| f.map == k.map && (f.company.is_none() || f.company == k.company));
            out.push(CountRow {
                map: *map_i,
                company: *company,
                source,
                target,
                difference,
                allowed,
                errors,
                failed,
            });
        }
        // A failure the parity table has no row for (e.g. errors only) is still shown.
        for f in failures {
            let map = names.intern(&f.map);
            let company = f.company.as_deref().map_or(NO_COMPANY, |c| names.intern(c));
            if !out.iter().any(|c| c.map == map && c.company == company) {
                out.push(CountRow {
                    map,
                    company,
                    source: f.source,
                    target: f.target,
                    difference: i64::try_from(i128::from(f.source) - i128::from(f.target)).unwrap_or(0),
                    allowed: f.allowed,
                    errors: f.errors,
                    failed: true,
                });
            }
        }
        out
    }

    /// The kept gate verdicts with their counts, names resolved.
    pub fn gate_rows(&self) -> Vec<GateRow> {
        let name = |i: u32| self.names.name(i);
        self.gates
            .iter()
            .map(|g| GateRow {
                at: g.at.clone(),
                event_id: g.event_id,
                step: g.step.clone(),
                wave: g.wave.clone(),
                passed: g.passed,
                waived: false,
                counts: g
                    .counts
                    .iter()
                    .map(|c| GateCount {
                        map: name(c.map),
                        company: (c.company != NO_COMPANY).then(|| name(c.company)),
                        source: c.source,
                        target: c.target,
                        difference: c.difference,
                        allowed: c.allowed,
                        errors: c.errors,
                        failed: c.failed,
                    })
                    .collect(),
            })
            .collect()
    }

    /// The exported packages kept as evidence.
    pub fn downloads(&self) -> Vec<super::model::DownloadRow> {
        self.state
            .downloads
            .iter()
            .map(|d| super::model::DownloadRow {
                at: at(d.at),
                step: d.step.0.to_string(),
                execution_id: d.execution_id.clone(),
                package: scrub(&d.package),
                file: scrub(&d.file),
                sha256: d.sha256.clone(),
                bytes: d.bytes,
            })
            .collect()
    }

    /// The install records, as the reducer kept them.
    pub fn installs(&self) -> Vec<InstallRow> {
        self.state
            .installs
            .iter()
            .map(|i| InstallRow {
                at: at(i.at),
                step: i.step.0.to_string(),
                package: scrub(&i.package),
                version: i.version.clone(),
                sha256: i.sha256.clone(),
                execution_id: i.execution_id.clone(),
                result: scrub(&i.result),
            })
            .collect()
    }
}

/// The operator label with the signed-in identity, when there was one:
/// `alice — signed in as alice@contoso.com (oid …, tenant …)`.
fn with_identity(operator: &str, id: Option<&crate::model::Identity>) -> String {
    match id {
        Some(i) => format!("{operator} — signed in as {}", scrub(&i.label())),
        None => operator.to_owned(),
    }
}

/// The ownership table of a runbook: each map's owner, then its field owners.
fn ownership_rows(rb: &crate::runbook::Runbook) -> Vec<super::model::OwnershipRow> {
    use crate::runbook::model::Master;
    let mut out = Vec::new();
    for (id, m) in &rb.maps {
        let master = match m.master {
            Some(Master::Dataverse) => "dataverse",
            _ => "fno",
        }
        .to_owned();
        out.push(super::model::OwnershipRow {
            map: id.0.clone(),
            field: None,
            owner: m.owner.map_or("none", |o| o.name()).to_owned(),
            why: None,
            master: master.clone(),
        });
        for (field, fo) in &m.field_owners {
            out.push(super::model::OwnershipRow {
                map: id.0.clone(),
                field: Some(field.clone()),
                owner: fo.owner.name().to_owned(),
                why: Some(super::text::scrub(&fo.why)),
                master: master.clone(),
            });
        }
    }
    out
}
