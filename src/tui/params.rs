//! What the console reads from the runbook (step parameters, the error-rate alert threshold) and
//! the one-line summaries of a step's journal events for the log pane.

use crate::engine::event::{Event, StepOutcome};
use crate::runbook::steps as kind;
use crate::runbook::{Runbook, StepKind};

/// The lowest `alert.errors_per_hour` of the runbook's monitor steps: the rate the error pane
/// compares with.
pub fn error_rate_threshold(rb: &Runbook) -> Option<u64> {
    rb.phases
        .iter()
        .flat_map(|p| p.steps.iter().flatten())
        .filter_map(|s| match &s.kind {
            StepKind::Monitor(kind::Monitor { alert: Some(a), .. }) => a.errors_per_hour,
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

/// The step an event belongs to and a one-line summary of it, for the step's event list.
pub fn event_line(event: &Event) -> Option<(&str, String)> {
    let line = match event {
        Event::StepIntent {
            step,
            attempt,
            handle,
        } => (
            step.as_str(),
            match handle {
                Some(h) => format!("intent attempt {attempt} ({} {})", h.kind, h.id),
                None => format!("intent attempt {attempt}"),
            },
        ),
        Event::StepProgress {
            step, done, total, ..
        } => (
            step.as_str(),
            match total {
                Some(t) => format!("progress {done}/{t}"),
                None => format!("progress {done}"),
            },
        ),
        Event::Request {
            step: Some(step),
            method,
            path,
            status,
            duration_ms,
            error,
            ..
        } => (
            step.as_str(),
            format!(
                "{method} {path} → {} {duration_ms}ms{}",
                status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
        ),
        Event::StepFinished { step, outcome, .. } => (
            step.as_str(),
            match outcome {
                StepOutcome::Succeeded => "finished: succeeded".to_owned(),
                StepOutcome::Failed { message, reason } => format!(
                    "finished: FAILED: {}",
                    StepOutcome::failure_text(message, reason.as_deref())
                ),
                StepOutcome::Skipped { reason } => format!("finished: skipped: {reason}"),
            },
        ),
        Event::AwaitingOperator {
            step: Some(step),
            decision,
            prompt,
            ..
        } => (
            step.as_str(),
            format!("waiting for operator ({decision:?}): {prompt}"),
        ),
        Event::OperatorDecision {
            step: Some(step),
            action,
            operator,
            reason,
            ..
        } => (
            step.as_str(),
            format!(
                "{action:?} by {operator}{}",
                reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        ),
        Event::GateEvaluated {
            step,
            passed,
            failures,
            ..
        } => (
            step.as_str(),
            if *passed {
                "gate passed".to_owned()
            } else {
                format!("gate FAILED for {} map(s)", failures.len())
            },
        ),
        Event::ParitySample {
            step: Some(step),
            map,
            company,
            source,
            target,
        } => (
            step.as_str(),
            format!(
                "parity {map}{} {source} / {target}",
                company.as_ref().map(|c| format!("@{c}")).unwrap_or_default()
            ),
        ),
        Event::InstallRecord {
            step,
            package,
            version,
            result,
            ..
        } => (step.as_str(), format!("installed {package} {version}: {result}")),
        Event::RowsReconciled {
            step,
            map,
            company,
            matching,
            missing,
            extra,
            different,
            ..
        } => (
            step.as_str(),
            format!(
                "rows {map}{}: {matching} match, {missing} missing, {extra} extra, {different} different",
                company.as_ref().map(|c| format!("@{c}")).unwrap_or_default()
            ),
        ),
        _ => return None,
    };
    Some(line)
}
