//! `error_queue`: journals the queue's new entries and each map's Active totals (`ErrorCounts`), and fails
//! when the Active entries of the selected maps together exceed `max` (0 when absent).

use super::maps::{error_totals, resolve};
use super::{Res, StepCtx, fail};
use crate::runbook::MapSelection;

pub async fn run(ctx: &StepCtx, maps: &MapSelection, max: u64) -> Res {
    let maps = resolve(ctx, maps)?;
    let totals = error_totals(ctx, &maps).await?;
    let sum: u64 = totals.values().sum();
    if sum <= max {
        return Ok(Default::default());
    }
    let per: Vec<String> = totals
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(m, n)| format!("{m}: {n}"))
        .collect();
    Err(fail(format!(
        "{sum} active error-queue entries (max {max}): {}",
        per.join(", ")
    )))
}
