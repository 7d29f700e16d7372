//! What the console reads from the runbook (step parameters, the error-rate alert threshold) and
//! the one-line summaries of a step's journal events for the log pane.

use crate::engine::{Envelope, RunState};
use crate::runbook::{Runbook, StepKind};
use crate::state::wording::{self, Form};

/// The lowest `alert.errors_per_hour` of the runbook's monitor steps: the rate the error pane
/// compares with.
pub fn error_rate_threshold(rb: &Runbook) -> Option<u64> {
    rb.phases
        .iter()
        .flat_map(|p| p.steps.iter().flatten())
        .filter_map(|s| match &s.kind {
            StepKind::Monitor(m) => m.alert.as_ref().and_then(|a| a.errors_per_hour),
            _ => None,
        })
        .min()
}

/// The runbook fields of step `id` as `(name, value)` rows (kind-specific fields first as the
/// runbook spells them; values as compact JSON). Empty for steps the planner generated.
pub fn step_params(rb: &Runbook, id: &str) -> Vec<(String, String)> {
    let Some(step) = rb
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().flatten())
        .find(|s| s.id.as_str() == id)
    else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(step) else {
        return Vec::new();
    };
    map.into_iter()
        .filter(|(k, _)| k != "id" && k != "title")
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

/// The step an event belongs to and its wording under the step's name (see
/// [`crate::state::wording`]), for the step's event list; `state` has applied `env`.
pub fn event_line<'a>(env: &'a Envelope, state: &RunState) -> Option<(&'a str, String)> {
    let w = wording::describe_in(env, state, Form::UnderStep);
    w.step.map(|s| (s.as_str(), w.sentence()))
}
