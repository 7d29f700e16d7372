//! The one reducer: [`RunState::apply`] folds journaled envelopes into everything the console shows.
//!
//! Contract: `apply` is deterministic (equal envelope sequences give `==` states), total (no event
//! can make it fail or panic; unknown steps are added as unplanned rows), and cheap (no per-event
//! clone of anything bigger than the event itself; every list that grows with the run is bounded,
//! with exact totals kept beside it). The live console, headless mode, resume and the auditor's
//! replay all build their state through it, so what a replay shows at event N is what the operator
//! saw then.

mod durations;
pub mod errors;
mod eta;
mod figures;
pub mod parity;
mod views;
pub mod wording;

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};

pub use self::durations::StepDurations;
pub use self::errors::ErrorQueue;
pub use self::eta::default_estimate_ms;
pub use self::parity::{ParityKey, ParityRow, ParityStatus, ParityTable};
pub use self::views::*;
use crate::model::StepId;
use crate::model::event::{
    Envelope, Event, MapInfo, OperatorAction, PlannedStepInfo, StepOutcome, Tolerance,
};

/// Requests kept per step for the detail pane (newest last); `StepView::request_count` stays exact.
pub const REQUESTS_PER_STEP: usize = 50;
/// Requests kept that belong to no step.
pub const UNATTACHED_REQUESTS: usize = 200;
/// Log lines kept.
pub const LOG_LINES: usize = 1_000;
/// Alerts, operator decisions and gate verdicts kept (each also has an exact total).
pub const HISTORY_KEPT: usize = 10_000;

/// Everything the console shows about one run. Build it with [`RunState::default`] and feed it
/// every envelope of the run, in journal order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RunState {
    pub header: Header,
    /// In plan order, unplanned steps appended as they appear.
    pub steps: Vec<StepView>,
    step_index: HashMap<StepKey, usize>,
    pub maps: BTreeMap<String, MapInfo>,
    pub parity: ParityTable,
    pub errors: ErrorQueue,
    /// Decisions the engine is waiting for, oldest first.
    pub pending: Vec<PendingDecision>,
    pub paused: bool,
    /// Maps paused from the console (a `console:pause:<map>#n` step that succeeded, not yet resumed the
    /// same way).
    pub paused_maps: std::collections::BTreeSet<String>,
    pub decisions: VecDeque<DecisionRecord>,
    pub decisions_total: u64,
    pub alerts: VecDeque<AlertView>,
    pub alerts_total: u64,
    pub gates: VecDeque<GateView>,
    pub installs: Vec<InstallView>,
    /// Plug-in steps and flows the run turned off, by `env/kind/id`, first prior state kept.
    pub automation: BTreeMap<String, AutomationView>,
    /// `dualwrite.batch_window` steps that paused their maps, by step id.
    pub batch_windows: BTreeMap<String, BatchWindowView>,
    /// Exported packages kept as evidence, in journal order.
    pub downloads: Vec<DownloadView>,
    /// The latest row-level parity per map and company (`reconcile`), beside the counts.
    pub rows: BTreeMap<ParityKey, RowsView>,
    /// Ranges of `reconcile` reads journaled as wholly read: (step, map, company, side, range).
    pub ranges_read: std::collections::BTreeSet<(String, String, Option<String>, String, String)>,
    pub logs: VecDeque<LogLine>,
    /// Requests with no step, newest last.
    pub unattached_requests: VecDeque<RequestSummary>,
    pub requests_total: u64,
    /// Requests that ended in an error or a status >= 400.
    pub requests_failed: u64,
    pub events_applied: u64,
    pub last_seq: u64,
    pub last_event_id: i64,
    /// Notifications delivered to `notify_targets`, and attempts that were not.
    pub notify_delivered: u64,
    pub notify_failed: u64,
    /// Succeeded durations per step kind: (count, total ms), for the ETA.
    durations_by_kind: BTreeMap<String, (u64, u64)>,
}

/// The step table's index key: the id of the step's shared plan entry, so a run of 100,000 steps keeps
/// no second copy of each id. Hashes and compares as the id's `str`, so the table is looked up by `&str`.
#[derive(Clone, Debug)]
struct StepKey(std::sync::Arc<PlannedStepInfo>);

impl PartialEq for StepKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for StepKey {}

impl std::hash::Hash for StepKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.as_str().hash(state);
    }
}

impl std::borrow::Borrow<str> for StepKey {
    fn borrow(&self) -> &str {
        self.0.id.as_str()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, cap: usize, item: T) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(item);
}

fn add_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

pub(super) fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

impl RunState {
    /// A state laid out from a `RunStarted` envelope (equivalent to `default()` then `apply`).
    pub fn from_start(envelope: &Envelope) -> Self {
        let mut s = Self::default();
        s.apply(envelope);
        s
    }

    /// The step with this id, if the plan or the events named it.
    /// The parity rows a gate is failing on now: the failures of each gate's latest verdict, when
    /// that verdict is a failure.
    pub fn gate_failing(&self) -> std::collections::BTreeSet<ParityKey> {
        let mut latest: BTreeMap<&StepId, &GateView> = BTreeMap::new();
        for g in &self.gates {
            latest.insert(&g.step, g);
        }
        latest
            .values()
            .filter(|g| !g.passed)
            .flat_map(|g| &g.failures)
            .map(|f| ParityKey {
                map: f.map.clone(),
                company: f.company.clone(),
            })
            .collect()
    }

    /// Maps whose counts are expected to be apart, so the console shows them as pending, not
    /// drifting:
    /// - the plan runs a step of the map (its initial sync, a wave's map step) that has not
    ///   finished yet (not started, running, or waiting on the operator);
    /// - or such a step finished after the map's last count: that count compares the target as it
    ///   was before the sync filled it, until the next count (the wave's gate) replaces it.
    ///
    /// A failed sync is not pending: its gap is what the operator must see.
    pub fn parity_pending_maps(&self) -> std::collections::BTreeSet<&str> {
        let mut pending = std::collections::BTreeSet::new();
        let mut finished: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for s in &self.steps {
            let Some(map) = s.info.map.as_deref() else {
                continue;
            };
            if s.status.is_done() {
                if let Some(t) = s.finished_at {
                    let last = finished.entry(map).or_insert(t);
                    *last = (*last).max(t);
                }
            } else if !matches!(s.status, StepStatus::Failed { .. }) {
                pending.insert(map);
            }
        }
        for (k, row) in &self.parity.rows {
            if finished.get(k.map.as_str()).is_some_and(|t| row.at < *t) {
                pending.insert(k.map.as_str());
            }
        }
        pending
    }

    /// Parity rows outside tolerance, leaving out the pending maps ([`RunState::parity_pending_maps`]).
    pub fn parity_drifting(&self) -> usize {
        let pending = self.parity_pending_maps();
        self.parity
            .rows
            .iter()
            .filter(|(k, r)| r.status == ParityStatus::Drift && !pending.contains(k.map.as_str()))
            .count()
    }

    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.step_index.get(id).map(|&i| &self.steps[i])
    }

    /// Fold one envelope in. Envelopes of another run than the one `RunStarted` named are ignored.
    pub fn apply(&mut self, env: &Envelope) {
        if let Event::RunStarted { .. } = env.event {
            *self = Self::default();
        } else if !self.header.run_id.0.is_empty() && env.run_id != self.header.run_id {
            return;
        }
        let at = env.at;
        self.events_applied += 1;
        self.last_seq = env.seq;
        self.last_event_id = env.id;
        self.header.last_event_at = Some(at);
        if let Some(start) = self.header.started_at {
            self.header.elapsed_ms = millis_between(start, at);
        }
        match &env.event {
            Event::RunStarted {
                run_id: _,
                runbook,
                operator,
                host,
                started_at,
                freeze_window,
                steps,
                maps,
                time_scale,
            } => {
                let h = &mut self.header;
                // The envelope's run id is the journal's; the event's copy is informational.
                h.run_id = env.run_id.clone();
                h.runbook.clone_from(&runbook.name);
                h.version.clone_from(&runbook.version);
                h.runbook_sha256.clone_from(&runbook.sha256);
                h.operators = vec![operator.clone()];
                h.hosts = vec![host.clone()];
                h.started_at = Some(*started_at);
                h.elapsed_ms = millis_between(*started_at, at);
                h.freeze_window.clone_from(freeze_window);
                h.time_scale = if *time_scale > 0.0 { *time_scale } else { 1.0 };
                // Exactly as many as planned: a run of 100,000 steps keeps no doubling slack.
                self.steps.reserve_exact(steps.len());
                self.step_index.reserve(steps.len());
                for info in steps {
                    self.insert_step(std::sync::Arc::clone(info), true);
                }
                self.maps = maps.iter().map(|m| (m.id.clone(), m.clone())).collect();
            }
            Event::RunResumed {
                operator,
                host,
                accepted_changed_runbook,
            } => {
                self.header.resumes += 1;
                add_unique(&mut self.header.operators, operator);
                add_unique(&mut self.header.hosts, host);
                self.header.accepted_changed_runbook |= accepted_changed_runbook;
            }
            Event::StepIntent {
                step,
                attempt,
                handle,
            } => {
                let s = self.step_mut(step);
                s.status = StepStatus::Running {
                    since: at,
                    attempt: *attempt,
                };
                s.attempts = s.attempts.max(*attempt);
                s.started_at = Some(at);
                s.finished_at = None;
                s.next_check = None;
                if handle.is_some() {
                    s.handle.clone_from(handle);
                }
                s.journal = AttemptRecord {
                    open: true,
                    outcome: None,
                    settled: false,
                    retry_decided: false,
                };
                let (phase, wave) = (s.info.phase.clone(), s.info.wave.clone());
                self.header.phase = Some(phase.to_string());
                self.header.wave = wave;
            }
            Event::StepProgress {
                step,
                done,
                total,
                note,
            } => {
                let s = self.step_mut(step);
                s.progress = Some(Box::new(Progress {
                    done: *done,
                    total: *total,
                    note: note.clone(),
                    at,
                }));
            }
            Event::Request {
                step,
                env: e,
                method,
                path,
                status,
                duration_ms,
                error,
            } => {
                self.requests_total += 1;
                if error.is_some() || status.is_some_and(|c| c >= 400) {
                    self.requests_failed += 1;
                }
                let (q, cap) = match step {
                    Some(id) => {
                        let s = self.step_mut(id);
                        s.request_count += 1;
                        (&mut s.requests, REQUESTS_PER_STEP)
                    }
                    None => (&mut self.unattached_requests, UNATTACHED_REQUESTS),
                };
                // At capacity, reuse the evicted summary's buffers: no allocation in the steady state.
                let evicted = if q.len() >= cap { q.pop_front() } else { None };
                let mut r = evicted.unwrap_or_else(|| RequestSummary {
                    at,
                    env: String::new(),
                    method: String::new(),
                    path: String::new(),
                    status: None,
                    duration_ms: 0,
                    error: None,
                });
                r.at = at;
                r.env.clone_from(e);
                r.method.clone_from(method);
                r.path.clone_from(path);
                r.status = *status;
                r.duration_ms = *duration_ms;
                r.error.clone_from(error);
                q.push_back(r);
            }
            Event::StepFinished {
                step,
                outcome,
                outputs,
            } => {
                let i = self.step_idx(step);
                let s = &mut self.steps[i];
                s.status = match outcome {
                    StepOutcome::Succeeded => StepStatus::Succeeded,
                    StepOutcome::Failed { message, reason } => StepStatus::Failed {
                        message: message.clone(),
                        reason: reason.clone(),
                    },
                    StepOutcome::Skipped { reason } => StepStatus::Skipped {
                        reason: reason.clone(),
                    },
                };
                let duration = s.started_at.map_or(0, |st| millis_between(st, at));
                s.duration_ms = Some(duration);
                s.finished_at = Some(at);
                s.outputs.clone_from(outputs);
                s.journal.open = false;
                s.journal.outcome = Some(outcome.clone());
                if *outcome == StepOutcome::Succeeded
                    && let Some((pause, map)) = crate::model::parse_console_map_step(step)
                {
                    if pause {
                        self.paused_maps.insert(map.to_owned());
                    } else {
                        self.paused_maps.remove(map);
                    }
                }
                let s = &mut self.steps[i];
                if *outcome == StepOutcome::Succeeded && s.started_at.is_some() {
                    let kind = &s.info.kind;
                    let entry = match self.durations_by_kind.get_mut(&**kind) {
                        Some(e) => e,
                        None => self.durations_by_kind.entry(kind.to_string()).or_default(),
                    };
                    entry.0 += 1;
                    entry.1 += duration;
                }
                self.pending.retain(|p| p.step.as_ref() != Some(step));
            }
            Event::AwaitingOperator {
                step,
                decision,
                prompt,
                checklist,
                deadline,
            } => {
                self.pending
                    .retain(|p| !(p.step == *step && p.decision == *decision));
                self.pending.push(PendingDecision {
                    step: step.clone(),
                    decision: *decision,
                    prompt: prompt.clone(),
                    checklist: checklist.clone(),
                    deadline: *deadline,
                    since: at,
                });
                if let Some(id) = step {
                    let s = self.step_mut(id);
                    // A failed step keeps showing why it failed; the pending decision carries the question.
                    if !matches!(s.status, StepStatus::Failed { .. }) {
                        s.status = StepStatus::AwaitingOperator {
                            since: at,
                            decision: *decision,
                        };
                    }
                }
            }
            Event::OperatorDecision {
                step,
                action,
                operator,
                reason,
                checklist_done,
                identity,
            } => {
                self.apply_decision(step.as_ref(), *action, reason.as_deref());
                add_unique(&mut self.header.operators, operator);
                if let Some(i) = identity {
                    self.header.signed_in = Some(i.upn.clone().unwrap_or_else(|| i.oid.clone()));
                }
                self.decisions_total += 1;
                let record = DecisionRecord {
                    at,
                    step: step.clone(),
                    action: *action,
                    operator: operator.clone(),
                    reason: reason.clone(),
                    checklist_done: checklist_done.clone(),
                };
                push_bounded(&mut self.decisions, HISTORY_KEPT, record);
            }
            Event::GateEvaluated {
                step,
                wave,
                passed,
                failures,
            } => {
                let s = self.step_mut(step);
                s.status = if *passed {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed {
                        message: format!("gate failed for {} map(s)", failures.len()),
                        reason: None,
                    }
                };
                s.finished_at = Some(at);
                s.duration_ms = Some(s.started_at.map_or(0, |st| millis_between(st, at)));
                let gate = GateView {
                    at,
                    step: step.clone(),
                    wave: wave.clone(),
                    passed: *passed,
                    failures: failures.clone(),
                };
                push_bounded(&mut self.gates, HISTORY_KEPT, gate);
            }
            Event::GateRecheck {
                step,
                check,
                of,
                at: due,
            } => {
                self.step_mut(step).next_check = Some(Recheck {
                    check: *check,
                    of: *of,
                    at: *due,
                });
            }
            Event::ParitySample {
                step: _,
                map,
                company,
                source,
                target,
            } => {
                let tolerance = self
                    .maps
                    .get(map.as_str())
                    .map_or(Tolerance::Count(0), |m| m.tolerance);
                self.parity
                    .record(map, company.as_deref(), *source, *target, tolerance, at);
            }
            Event::ErrorEntries { entries, .. } => self.errors.add_entries(entries),
            Event::ErrorCounts {
                map,
                by_category,
                source,
                unavailable,
                ..
            } => self
                .errors
                .set_reported(map, source.as_deref(), unavailable.as_deref(), by_category),
            Event::EnvironmentTime { .. } => {}
            Event::Notified { delivered, .. } => {
                if *delivered {
                    self.notify_delivered += 1;
                } else {
                    self.notify_failed += 1;
                }
            }
            Event::Alert {
                severity,
                message,
                map,
                ..
            } => {
                self.alerts_total += 1;
                let alert = AlertView {
                    at,
                    severity: *severity,
                    message: message.clone(),
                    map: map.clone(),
                };
                push_bounded(&mut self.alerts, HISTORY_KEPT, alert);
            }
            Event::InstallRecord {
                step,
                package,
                version,
                sha256,
                execution_id,
                result,
                environment,
                record_count,
            } => {
                let view = InstallView {
                    at,
                    step: step.clone(),
                    package: package.clone(),
                    version: version.clone(),
                    sha256: sha256.clone(),
                    execution_id: execution_id.clone(),
                    result: result.clone(),
                    environment: environment.clone(),
                    record_count: *record_count,
                    record: None,
                };
                self.step_mut(step).install = Some(Box::new(view.clone()));
                self.installs.push(view);
            }
            Event::AutomationOff {
                step,
                env,
                what: kind,
                id,
                name,
                table,
                prior_statecode,
                prior_statuscode,
            } => {
                let key = format!("{env}/{kind}/{id}");
                let fresh = AutomationView {
                    env: env.clone(),
                    kind: kind.clone(),
                    id: id.clone(),
                    name: name.clone(),
                    table: table.clone(),
                    step: step.clone(),
                    prior_statecode: *prior_statecode,
                    prior_statuscode: *prior_statuscode,
                    off_at: at,
                    restored_at: None,
                    restored_by: None,
                };
                match self.automation.get_mut(&key) {
                    // Turned off again after it was put back: a new period off, from the state it had then.
                    Some(v) if v.restored_at.is_some() => *v = fresh,
                    // Still off: the first prior state is the one to put back.
                    Some(_) => {}
                    None => {
                        self.automation.insert(key, fresh);
                    }
                }
            }
            Event::AutomationRestored {
                step,
                env,
                what: kind,
                id,
                ..
            } => {
                if let Some(v) = self.automation.get_mut(&format!("{env}/{kind}/{id}")) {
                    v.restored_at = Some(at);
                    v.restored_by = step.clone();
                }
            }
            Event::BatchWindow {
                step,
                phase,
                maps,
                paused_at,
                by_abort,
            } => {
                let key = step.as_str().to_owned();
                let resumed = phase == "resumed";
                match self.batch_windows.get_mut(&key) {
                    // A new window after one that was closed (a retry): paused again from now.
                    Some(v) if !v.open() && phase == "paused" => {
                        *v = BatchWindowView {
                            maps: maps.clone(),
                            phase: phase.clone(),
                            paused_at: *paused_at,
                            opened_at: at,
                            resumed_at: None,
                            resumed_by_abort: false,
                            confirmed: false,
                        };
                    }
                    Some(v) => {
                        v.phase.clone_from(phase);
                        v.confirmed |= phase == "confirmed";
                        if resumed {
                            v.resumed_at = Some(at);
                            v.resumed_by_abort = *by_abort;
                        }
                    }
                    None => {
                        self.batch_windows.insert(
                            key,
                            BatchWindowView {
                                maps: maps.clone(),
                                phase: phase.clone(),
                                paused_at: *paused_at,
                                opened_at: at,
                                resumed_at: resumed.then_some(at),
                                resumed_by_abort: *by_abort,
                                confirmed: phase == "confirmed",
                            },
                        );
                    }
                }
            }
            Event::PackageDownloaded {
                step,
                execution_id,
                package,
                file,
                sha256,
                bytes,
            } => {
                self.downloads.push(DownloadView {
                    at,
                    step: step.clone(),
                    execution_id: execution_id.clone(),
                    package: package.clone(),
                    file: file.clone(),
                    sha256: sha256.clone(),
                    bytes: *bytes,
                });
            }
            Event::InstallRecordWrite {
                step,
                execution_id,
                target,
                status,
                detail,
            } => {
                let text = if detail.is_empty() {
                    format!("{target}: {status}")
                } else {
                    format!("{target}: {status}: {detail}")
                };
                if let Some(v) = self
                    .installs
                    .iter_mut()
                    .rev()
                    .find(|i| &i.step == step && &i.execution_id == execution_id)
                {
                    v.record = Some(text.clone());
                }
                if let Some(v) = self.step_mut(step).install.as_mut()
                    && &v.execution_id == execution_id
                {
                    v.record = Some(text);
                }
            }
            Event::RowsReconciled {
                step,
                map,
                company,
                source_rows,
                target_rows,
                matching,
                missing,
                extra,
                different,
                sample,
                scratch_bytes,
            } => {
                self.rows.insert(
                    ParityKey {
                        map: map.clone(),
                        company: company.clone(),
                    },
                    RowsView {
                        at,
                        step: step.clone(),
                        source_rows: *source_rows,
                        target_rows: *target_rows,
                        matching: *matching,
                        missing: *missing,
                        extra: *extra,
                        different: *different,
                        sample: sample.clone(),
                        scratch_bytes: *scratch_bytes,
                    },
                );
            }
            Event::RowsRangeRead {
                step,
                map,
                company,
                side,
                range,
                ..
            } => {
                self.ranges_read.insert((
                    step.0.to_string(),
                    map.clone(),
                    company.clone(),
                    side.clone(),
                    range.clone(),
                ));
            }
            Event::LeaseTakenOver { holder, host, .. } => {
                self.header.lease_takeovers += 1;
                add_unique(&mut self.header.operators, holder);
                add_unique(&mut self.header.hosts, host);
            }
            // Shown through the warning the approver journals with it.
            // A preflight belongs to no run: its id has no RunStarted, and the report reads it from the journal.
            // The keys a sample found differing are evidence (the report); the console shows them as the
            // `sample_mismatch` error entries journaled beside them.
            Event::ApprovalRefused { .. }
            | Event::PreflightChecked { .. }
            | Event::Checkpoint { .. }
            | Event::CheckpointKey { .. }
            | Event::SampleDiffered { .. } => {}
            Event::RunbookChanged { new_sha256, .. } => {
                self.header.accepted_runbook_sha256 = Some(new_sha256.clone());
            }
            Event::Log { level, message } => {
                push_bounded(
                    &mut self.logs,
                    LOG_LINES,
                    LogLine {
                        at,
                        level: *level,
                        message: message.clone(),
                    },
                );
            }
            Event::RunFinished { outcome } => {
                self.header.outcome = Some(outcome.clone());
                self.header.finished_at = Some(at);
                self.pending.clear();
                self.paused = false;
            }
        }
    }

    fn apply_decision(&mut self, step: Option<&StepId>, action: OperatorAction, reason: Option<&str>) {
        // A map's pause or resume from the console: the run goes on; its step says how it went.
        if matches!(action, OperatorAction::Pause | OperatorAction::Resume) && step.is_some() {
            return;
        }
        match action {
            OperatorAction::Pause => {
                self.paused = true;
                return;
            }
            OperatorAction::Resume => {
                self.paused = false;
                return;
            }
            OperatorAction::TakeOverLease => return,
            OperatorAction::Abort => {
                self.pending.clear();
                return;
            }
            OperatorAction::Approve
            | OperatorAction::Confirm
            | OperatorAction::Retry
            | OperatorAction::Skip
            | OperatorAction::Waive => {}
        }
        self.pending.retain(|p| p.step.as_ref() != step);
        let Some(id) = step else { return };
        let s = self.step_mut(id);
        match action {
            OperatorAction::Skip if !s.journal.open => s.journal.settled = true,
            OperatorAction::Waive => s.journal.settled = true,
            OperatorAction::Retry if !s.journal.open => s.journal.retry_decided = true,
            _ => {}
        }
        match action {
            OperatorAction::Skip => {
                s.status = StepStatus::Skipped {
                    reason: reason.unwrap_or("skipped by the operator").to_owned(),
                };
            }
            OperatorAction::Waive => {
                s.status = StepStatus::Waived {
                    reason: reason.map(str::to_owned),
                }
            }
            OperatorAction::Retry => s.status = StepStatus::Pending,
            _ => {
                if matches!(s.status, StepStatus::AwaitingOperator { .. }) {
                    s.status = StepStatus::Pending;
                }
            }
        }
    }

    fn insert_step(&mut self, info: std::sync::Arc<PlannedStepInfo>, planned: bool) -> usize {
        let i = self.steps.len();
        self.step_index.insert(StepKey(std::sync::Arc::clone(&info)), i);
        self.steps.push(StepView {
            info,
            planned,
            status: StepStatus::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            progress: None,
            handle: None,
            requests: VecDeque::new(),
            request_count: 0,
            outputs: BTreeMap::new(),
            install: None,
            next_check: None,
            journal: AttemptRecord::default(),
        });
        i
    }

    fn step_mut(&mut self, id: &StepId) -> &mut StepView {
        let i = self.step_idx(id);
        &mut self.steps[i]
    }

    fn step_idx(&mut self, id: &StepId) -> usize {
        match self.step_index.get(id.as_str()) {
            Some(&i) => i,
            None => {
                let info = PlannedStepInfo {
                    id: id.clone(),
                    phase: "".into(),
                    wave: None,
                    kind: "unplanned".into(),
                    title: id.0.clone(),
                    needs: Vec::new(),
                    point_of_no_return: false,
                    confirm: false,
                    map: None,
                    estimate_ms: None,
                    estimate_from: None,
                };
                self.insert_step(std::sync::Arc::new(info), false)
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// The latest row-level parity of one map (and company).
#[derive(serde::Serialize, Clone, Debug, PartialEq)]
pub struct RowsView {
    pub at: DateTime<Utc>,
    pub step: StepId,
    pub source_rows: u64,
    pub target_rows: u64,
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub sample: Vec<crate::model::event::RowDifference>,
    pub scratch_bytes: u64,
}

impl RowsView {
    /// Keys that do not match, whatever the class.
    pub fn not_matching(&self) -> u64 {
        self.missing + self.extra + self.different
    }
}
