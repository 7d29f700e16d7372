//! The live ETA learns from earlier runs of the same runbook in the same journal (rehearsals): each step
//! they measured is re-estimated by the plan's own code ([`crate::runbook::plan::with_measured`]), with
//! the same measure as `plan --from-journal` ([`StepDurations`]), and `RunStarted` names the run it
//! came from.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::engine::event::PlannedStepInfo;
use crate::journal::JournalReader;
use crate::runbook::Runbook;
use crate::runbook::plan::{Plan, with_measured};
use crate::state::StepDurations;

/// Every step a finished earlier run of `runbook` in `journal` measured, by step id: (milliseconds,
/// the run's id); the latest run that measured a step wins. Empty when there is none (or the journal
/// cannot be read: an estimate is never a reason to refuse a run).
pub(super) fn earlier_durations(journal: &Path, runbook: &str) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    let Ok(reader) = JournalReader::open_read_only(journal) else {
        return out;
    };
    let Ok(runs) = reader.runs() else {
        return out;
    };
    for run in runs.iter().filter(|r| r.runbook == runbook) {
        let mut m = StepDurations::default();
        if reader.for_each_envelope(&run.run_id, |env| m.apply(env)).is_err() {
            continue;
        }
        for (step, ms) in m.measured() {
            out.insert(step, (ms, run.run_id.0.clone()));
        }
    }
    out
}

/// The plan's steps as `RunStarted` lists them, each step an earlier run measured estimated from that
/// measure (and saying so in `estimate_from`).
pub(super) fn planned_steps(
    rb: &Runbook,
    plan: &Plan,
    earlier: &BTreeMap<String, (u64, String)>,
) -> (Vec<Arc<PlannedStepInfo>>, Vec<crate::engine::event::MapInfo>) {
    if earlier.is_empty() {
        return super::plan_info(rb, plan);
    }
    let secs = earlier
        .iter()
        .map(|(id, (ms, _))| (id.clone(), ms.div_ceil(1000)))
        .collect();
    let (measured, budget) = with_measured(plan.clone(), &secs, None);
    let (mut steps, maps) = super::plan_info(rb, &measured);
    for s in &mut steps {
        if budget.measured_steps.contains(&s.id)
            && let Some((ms, run)) = earlier.get(s.id.as_str())
        {
            // The measure itself, not the plan's whole seconds (each entry is still this list's alone).
            let s = Arc::make_mut(s);
            s.estimate_ms = Some(*ms);
            s.estimate_from = Some(run.clone());
        }
    }
    (steps, maps)
}

/// The log line that says where the ETA's estimates come from, when any came from an earlier run.
pub(super) fn source_note(steps: &[Arc<PlannedStepInfo>]) -> Option<String> {
    let from: std::collections::BTreeSet<&str> =
        steps.iter().filter_map(|s| s.estimate_from.as_deref()).collect();
    let n = steps.iter().filter(|s| s.estimate_from.is_some()).count();
    (n > 0).then(|| {
        format!(
            "ETA: {n} of {} step(s) estimated from their durations in earlier run(s) of this runbook in this journal ({}); the rest from the plan",
            steps.len(),
            from.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}
