//! `manual`: the operator confirms (title, instructions, checklist) through [`Operator`](crate::engine::ctx::Operator);
//! the scheduler's operator journals the question and the decision. Approve/Confirm succeed, Skip skips with the
//! operator's reason, anything else (abort, a refusal) fails the step with the operator's words.

use super::{Res, StepCtx, Stop, fail};
use crate::engine::ctx::Ask;
use crate::engine::event::{DecisionKind, OperatorAction};
use crate::runbook::Step;

/// The prompt shown for a manual step.
pub fn prompt(step: &Step, instructions: Option<&str>) -> String {
    let title = step.title.as_deref().unwrap_or(step.id.as_str());
    match instructions {
        Some(i) if !i.trim().is_empty() => format!("{title}\n\n{i}"),
        _ => title.to_owned(),
    }
}

pub async fn run(ctx: &StepCtx, step: &Step, instructions: Option<&str>, checklist: &[String]) -> Res {
    let decision = ctx
        .operator
        .ask(Ask {
            step: Some(ctx.step.id.clone()),
            kind: DecisionKind::ApproveManual,
            prompt: prompt(step, instructions),
            checklist: checklist.to_vec(),
            deadline: None,
        })
        .await?;
    accept(&decision)?;
    let missing: Vec<&String> = checklist
        .iter()
        .filter(|c| !decision.checklist_done.contains(c))
        .collect();
    if !missing.is_empty() && decision.action == OperatorAction::Approve {
        super::log(
            ctx,
            crate::engine::event::LogLevel::Warn,
            format!(
                "approved by {} with checklist items not ticked: {missing:?}",
                decision.operator
            ),
        );
    }
    Ok(Default::default())
}

/// Maps an operator decision on an approval question to a step result.
pub fn accept(d: &crate::engine::ctx::Decision) -> Res<()> {
    let why = d.reason.clone().unwrap_or_default();
    match d.action {
        OperatorAction::Approve | OperatorAction::Confirm => Ok(()),
        OperatorAction::Skip | OperatorAction::Waive => Err(Stop::Skipped(if why.is_empty() {
            format!("skipped by {}", d.operator)
        } else {
            format!("skipped by {}: {why}", d.operator)
        })),
        other => Err(fail(format!(
            "{} answered {other:?}{}",
            d.operator,
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ))),
    }
}
