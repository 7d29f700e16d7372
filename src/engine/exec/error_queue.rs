//! `error_queue`: reads every error source of the selected maps (`ErrorCounts`/`ErrorEntries` per source,
//! see `error_sources`) and fails when the errors of the available sources together exceed `max` (0 when
//! absent). A map none of whose sources can be read is put to the operator, never counted as zero. The window
//! is the run's start, or the last `since` (environment time) when set.

use super::error_sources::settle_blind;
use super::maps::resolve;
use super::{Res, StepCtx, fail};
use crate::runbook::MapSelection;

pub async fn run(ctx: &StepCtx, maps: &MapSelection, max: u64, since: Option<std::time::Duration>) -> Res {
    let maps = resolve(ctx, maps)?;
    let (errs, _waived) = settle_blind(ctx, &maps, &format!("`{}`", ctx.step.id), since).await?;
    let sum: u64 = errs.iter().filter_map(|e| e.available_total()).sum();
    if sum <= max {
        return Ok(Default::default());
    }
    let per: Vec<String> = errs
        .iter()
        .filter(|e| e.available_total().is_some_and(|n| n > 0))
        .map(|e| e.describe())
        .collect();
    Err(fail(format!(
        "{sum} dual-write errors (max {max}): {}",
        per.join("; ")
    )))
}
