//! Resume: where each step of an unfinished run stands, read off the run's [`RunState`] (the one
//! reducer folds what resume needs beside what the console shows).
//!
//! Per step, in journal order: a `StepIntent` opens an attempt (with its handle); a `StepFinished`
//! closes it with an outcome; an `OperatorDecision` after a failure settles it (`Skip`, `Waive`:
//! done; `Retry`: a new attempt). What is left is one of: done (never re-run), in flight (intent
//! without result: reconciled through its handle), failed without a decision (straight to failure
//! handling), or not started. A failed gate is re-checked (a gate is a pure read).

use std::collections::BTreeMap;

use super::event::{Handle, StepOutcome};
use super::scheduler::Start;
use super::{Envelope, RunState, StepId};
use crate::runbook::plan::{Plan, PlannedWhat};

/// What the journal says about one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepRecord {
    /// Highest attempt journaled (0: never started).
    pub attempts: u32,
    /// An intent without a result.
    pub open: bool,
    pub handle: Option<Handle>,
    /// The last result, once the attempt closed.
    pub outcome: Option<StepOutcome>,
    /// Skipped or waived by a decision after the result.
    pub settled: bool,
    /// A Retry decision came after the last failure.
    pub retry_decided: bool,
}

/// The journal's view of a run, for resume. Not a second reducer: it is read off the one reducer's
/// [`RunState`] (each step's attempt record, handle and attempt count, the pause and the finish).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resumable {
    pub steps: BTreeMap<StepId, StepRecord>,
    pub paused: bool,
    pub finished: bool,
}

impl Resumable {
    /// What `state` (a run folded by [`RunState::apply`]) says resume needs. Steps the journal
    /// never mentioned are absent (they start fresh).
    pub fn from_state(state: &RunState) -> Self {
        let steps = state
            .steps
            .iter()
            .filter_map(|v| {
                let record = StepRecord {
                    attempts: v.attempts,
                    open: v.journal.open,
                    handle: v.handle.clone(),
                    outcome: v.journal.outcome.clone(),
                    settled: v.journal.settled,
                    retry_decided: v.journal.retry_decided,
                };
                (record != StepRecord::default()).then(|| (v.info.id.clone(), record))
            })
            .collect();
        Self {
            steps,
            paused: state.paused,
            finished: state.header.outcome.is_some(),
        }
    }

    /// Builds it from a run's envelopes, through the one reducer.
    pub fn from_envelopes<'a>(envs: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut state = RunState::default();
        for e in envs {
            state.apply(e);
        }
        Self::from_state(&state)
    }

    /// How each step that is not done starts (steps absent are done and never re-run): the plan's
    /// steps, and the map pauses and resumes from the console ([`crate::model::console_map_step`]) the
    /// journal left in flight or failed without a decision (a console step never journaled, or done, has
    /// nothing to carry on).
    pub fn starts(&self, plan: &Plan) -> BTreeMap<StepId, Start> {
        let mut out = BTreeMap::new();
        for s in &plan.steps {
            let Some(r) = self.steps.get(&s.id) else {
                out.insert(s.id.clone(), Start::Fresh { attempt: 1 });
                continue;
            };
            let is_gate = matches!(s.what, PlannedWhat::Gate { .. });
            if let Some(start) = Self::start_of(r, is_gate) {
                out.insert(s.id.clone(), start);
            }
        }
        for (id, r) in &self.steps {
            // A console action whose decision is journaled but whose intent is not sent nothing: it is
            // not carried out behind the operator's back.
            if crate::model::parse_console_map_step(id).is_some()
                && r.attempts > 0
                && let Some(start) = Self::start_of(r, false)
            {
                out.insert(id.clone(), start);
            }
        }
        out
    }

    /// How a step the journal mentions carries on (`None`: it is done).
    fn start_of(r: &StepRecord, is_gate: bool) -> Option<Start> {
        if r.settled {
            None
        } else if r.open {
            Some(Start::Reconcile {
                attempt: r.attempts.max(1),
                handle: r.handle.clone(),
            })
        } else {
            match &r.outcome {
                Some(StepOutcome::Succeeded | StepOutcome::Skipped { .. }) => None,
                Some(StepOutcome::Failed { .. }) if r.retry_decided || is_gate => Some(Start::Fresh {
                    attempt: r.attempts + 1,
                }),
                Some(StepOutcome::Failed { message, reason }) => Some(Start::AfterFailure {
                    attempt: r.attempts,
                    message: StepOutcome::failure_text(message, reason.as_deref()),
                }),
                None => Some(Start::Fresh {
                    attempt: r.attempts + 1,
                }),
            }
        }
    }

    /// Steps in flight (for the resume message).
    pub fn in_flight(&self) -> Vec<&StepId> {
        self.steps
            .iter()
            .filter(|(_, r)| r.open)
            .map(|(id, _)| id)
            .collect()
    }
}

/// What changed between the plan a run started with and a new runbook's, by step id (plan order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunbookDiff {
    pub added: Vec<StepId>,
    pub removed: Vec<StepId>,
    /// In both, with a different definition (kind, fields, phase, wave, needs, ...).
    pub changed: Vec<StepId>,
    /// Added steps placed before a step the run already started: (the added step, the furthest
    /// started step it comes before).
    pub inserted_behind: Vec<(StepId, StepId)>,
}

/// The step-by-step difference between `old_text` (the runbook the run started with) and `new`
/// (the new runbook's plan), given where the run stands (`record`). Should the old text no longer
/// load (a runbook format change), its steps come from `old_ids` and none is reported changed.
pub fn runbook_diff(old_text: &str, old_ids: &[StepId], new: &Plan, record: &Resumable) -> RunbookDiff {
    let old_plan = crate::runbook::load(old_text, "journaled runbook")
        .runbook
        .map(|rb| crate::runbook::plan::plan(&rb));
    let def = |s: &crate::runbook::plan::PlannedStep| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        // An estimate is not the step.
        if let Some(o) = v.as_object_mut() {
            o.remove("estimate_secs");
        }
        v
    };
    let old: Vec<(StepId, Option<serde_json::Value>)> = match &old_plan {
        Some(p) => p.steps.iter().map(|s| (s.id.clone(), Some(def(s)))).collect(),
        None => old_ids.iter().map(|id| (id.clone(), None)).collect(),
    };
    let old_by_id: std::collections::HashMap<&StepId, Option<&serde_json::Value>> =
        old.iter().map(|(id, v)| (id, v.as_ref())).collect();
    let new_ids: std::collections::HashSet<&StepId> = new.steps.iter().map(|s| &s.id).collect();
    let mut d = RunbookDiff::default();
    for s in &new.steps {
        match old_by_id.get(&s.id) {
            None => d.added.push(s.id.clone()),
            Some(Some(o)) if **o != def(s) => d.changed.push(s.id.clone()),
            Some(_) => {}
        }
    }
    d.removed = old
        .iter()
        .filter(|(id, _)| !new_ids.contains(id))
        .map(|(id, _)| id.clone())
        .collect();
    let added: std::collections::HashSet<&StepId> = d.added.iter().collect();
    // The run's position: the last step, in the new plan's order, that the journal shows started.
    let position = new
        .steps
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| {
            record
                .steps
                .get(&s.id)
                .is_some_and(|r| r.attempts > 0 || r.outcome.is_some())
        })
        .map(|(i, s)| (i, s.id.clone()));
    if let Some((at, pos)) = position {
        for (i, s) in new.steps.iter().enumerate() {
            if i < at && added.contains(&s.id) {
                d.inserted_behind.push((s.id.clone(), pos.clone()));
            }
        }
    }
    d
}

/// A short summary of what changed between two runbook texts: changed, added and removed lines
/// (line numbers of the new text), at most `max` lines of detail.
pub fn diff_summary(old: &str, new: &str, max: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common prefix and suffix; the middle is what changed (enough to show an operator).
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let removed = &a[prefix..a.len() - suffix];
    let added = &b[prefix..b.len() - suffix];
    let mut out = format!(
        "runbook changed at line {}: {} line(s) removed, {} line(s) added\n",
        prefix + 1,
        removed.len(),
        added.len()
    );
    let mut n = 0;
    for l in removed {
        if n == max {
            break;
        }
        out.push_str(&format!("- {l}\n"));
        n += 1;
    }
    for l in added {
        if n == max {
            break;
        }
        out.push_str(&format!("+ {l}\n"));
        n += 1;
    }
    if removed.len() + added.len() > max {
        out.push_str("  ...\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::engine::event::{Event, OperatorAction};

    fn env(seq: u64, event: Event) -> Envelope {
        Envelope {
            id: i64::try_from(seq).unwrap_or(0),
            seq,
            at: chrono::Utc::now(),
            run_id: "r".into(),
            event,
        }
    }

    #[test]
    fn open_intent_is_in_flight_and_decided_failures_settle() {
        let h = Handle {
            kind: "dmf.import".into(),
            id: "x".into(),
        };
        let evs = vec![
            env(
                1,
                Event::StepIntent {
                    step: "a".into(),
                    attempt: 1,
                    handle: Some(h.clone()),
                },
            ),
            env(
                2,
                Event::StepIntent {
                    step: "b".into(),
                    attempt: 1,
                    handle: None,
                },
            ),
            env(
                3,
                Event::StepFinished {
                    step: "b".into(),
                    outcome: StepOutcome::Failed {
                        message: "m".into(),
                        reason: None,
                    },
                    outputs: BTreeMap::new(),
                },
            ),
            env(
                4,
                Event::OperatorDecision {
                    step: Some("b".into()),
                    action: OperatorAction::Skip,
                    operator: "o".into(),
                    reason: Some("r".into()),
                    checklist_done: vec![],
                    identity: None,
                },
            ),
            env(
                5,
                Event::StepIntent {
                    step: "c".into(),
                    attempt: 2,
                    handle: None,
                },
            ),
            env(
                6,
                Event::StepFinished {
                    step: "c".into(),
                    outcome: StepOutcome::Failed {
                        message: "boom".into(),
                        reason: None,
                    },
                    outputs: BTreeMap::new(),
                },
            ),
        ];
        let r = Resumable::from_envelopes(&evs);
        assert!(r.steps["a"].open);
        assert_eq!(r.steps["a"].handle, Some(h));
        assert!(r.steps["b"].settled);
        assert!(!r.steps["c"].settled);
        assert_eq!(r.in_flight(), vec![&StepId::from("a")]);
    }

    #[test]
    fn diff_summary_names_changed_lines() {
        let d = diff_summary("a\nb\nc\n", "a\nB\nc\n", 10);
        assert!(d.contains("line 2"), "{d}");
        assert!(d.contains("- b") && d.contains("+ B"), "{d}");
    }

    /// The fold `Resumable::apply` was before resume read the one reducer: kept here as the
    /// oracle the derivation must agree with.
    fn old_fold(envs: &[Envelope]) -> Resumable {
        let mut r = Resumable::default();
        for env in envs {
            match &env.event {
                Event::StepIntent {
                    step,
                    attempt,
                    handle,
                } => {
                    let s = r.steps.entry(step.clone()).or_default();
                    s.attempts = s.attempts.max(*attempt);
                    s.open = true;
                    if handle.is_some() {
                        s.handle.clone_from(handle);
                    }
                    s.outcome = None;
                    s.settled = false;
                    s.retry_decided = false;
                }
                Event::StepFinished { step, outcome, .. } => {
                    let s = r.steps.entry(step.clone()).or_default();
                    s.open = false;
                    s.outcome = Some(outcome.clone());
                }
                Event::OperatorDecision { step, action, .. } => match (step, action) {
                    (None, OperatorAction::Pause) => r.paused = true,
                    (None, OperatorAction::Resume) => r.paused = false,
                    (Some(id), OperatorAction::Skip | OperatorAction::Waive) => {
                        let s = r.steps.entry(id.clone()).or_default();
                        if !s.open || *action == OperatorAction::Waive {
                            s.settled = true;
                        }
                    }
                    (Some(id), OperatorAction::Retry) => {
                        let s = r.steps.entry(id.clone()).or_default();
                        if !s.open {
                            s.retry_decided = true;
                        }
                    }
                    _ => {}
                },
                Event::RunFinished { .. } => r.finished = true,
                _ => {}
            }
        }
        r
    }

    fn any_event() -> impl Strategy<Value = Event> {
        let step = prop::sample::select(vec!["a", "b", "c"]).prop_map(StepId::from);
        let outcome = prop_oneof![
            Just(StepOutcome::Succeeded),
            Just(StepOutcome::Failed {
                message: "f".into(),
                reason: None,
            }),
            Just(StepOutcome::Skipped { reason: "s".into() }),
        ];
        let handle = prop::option::of(prop::sample::select(vec!["h1", "h2"]).prop_map(|h| Handle {
            kind: "k".into(),
            id: h.into(),
        }));
        let step_action = prop::sample::select(vec![
            OperatorAction::Approve,
            OperatorAction::Retry,
            OperatorAction::Skip,
            OperatorAction::Waive,
            OperatorAction::Abort,
            OperatorAction::Confirm,
            OperatorAction::TakeOverLease,
        ]);
        // The engine journals pause and resume with no step (see scheduler::set_paused).
        let run_action = prop::sample::select(vec![
            OperatorAction::Pause,
            OperatorAction::Resume,
            OperatorAction::Abort,
        ]);
        let decision = |step: Option<StepId>, action| Event::OperatorDecision {
            step,
            action,
            operator: "o".into(),
            reason: None,
            checklist_done: vec![],
            identity: None,
        };
        prop_oneof![
            (step.clone(), 0u32..4, handle).prop_map(|(step, attempt, handle)| Event::StepIntent {
                step,
                attempt,
                handle
            }),
            (step.clone(), outcome).prop_map(|(step, outcome)| Event::StepFinished {
                step,
                outcome,
                outputs: BTreeMap::new()
            }),
            (step.clone(), step_action).prop_map(move |(s, a)| decision(Some(s), a)),
            run_action.prop_map(move |a| decision(None, a)),
            step.clone().prop_map(|step| Event::StepProgress {
                step,
                done: 1,
                total: None,
                note: None
            }),
            step.prop_map(|step| Event::GateEvaluated {
                step,
                wave: None,
                passed: false,
                failures: vec![]
            }),
            Just(Event::RunFinished {
                outcome: crate::engine::event::RunOutcome::Succeeded
            }),
        ]
    }

    proptest! {
        /// Resume read off the one reducer agrees with the fold it replaced, for every sequence of
        /// step and decision events, except `paused` once the run finished (a finished run is never
        /// resumed; the reducer clears the pause when the run finishes).
        #[test]
        fn resume_read_off_the_reducer_agrees_with_the_old_fold(events in prop::collection::vec(any_event(), 0..40)) {
            let envs: Vec<Envelope> = events
                .into_iter()
                .enumerate()
                .map(|(i, e)| env(i as u64 + 1, e))
                .collect();
            let old = old_fold(&envs);
            let mut new = Resumable::from_envelopes(&envs);
            if old.finished {
                new.paused = old.paused;
            }
            prop_assert_eq!(new, old);
        }
    }
}
