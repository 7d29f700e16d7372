//! Step executors: one per step kind, each running a step against the environments and reporting facts
//! through the [`Emitter`](super::ctx::Emitter). The scheduler journals intent and result around them.

use std::collections::BTreeMap;

use super::RunId;
use super::ctx::StepCtx;
use super::event::{Handle, StepOutcome};
use crate::runbook::plan::PlannedStep;

/// Whether the step starts fresh or picks up an in-flight attempt found on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Fresh,
    /// The intent was journaled, the result was not: ask the environment what became of `handle`
    /// before doing anything that is not idempotent.
    Reconcile,
}

/// How an in-flight step is picked up on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    /// Pure reads (or a question to the operator again): run it again.
    Rerun,
    /// Ask the environment through the journaled handle, then continue (`execute` with `Mode::Reconcile`).
    ByHandle,
    /// No handle and no safe way to ask: the operator decides (headless: exit 3).
    AskOperator,
}

/// The result of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub outcome: StepOutcome,
    /// Captured values, `${steps.<id>.<name>}`.
    pub outputs: BTreeMap<String, String>,
}

/// The external handle a step will use, computed before its intent is journaled. Deterministic in
/// (run id, step id, attempt), so a resumed process computes the same one.
pub fn handle_for(_step: &PlannedStep, _run_id: &RunId, _attempt: u32) -> Option<Handle> {
    None
}

/// How `step` is reconciled when found in flight on resume.
pub fn reconcile_policy(_step: &PlannedStep) -> Reconcile {
    Reconcile::AskOperator
}

/// Runs one step (gates included: kind `gate`).
pub async fn execute(_ctx: &StepCtx, _handle: Option<&Handle>, _mode: Mode) -> StepResult {
    StepResult {
        outcome: StepOutcome::Failed {
            message: "executor not built yet".into(),
        },
        outputs: BTreeMap::new(),
    }
}
