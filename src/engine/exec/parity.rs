//! `parity`: counts both sides of each map (per company where the map names companies), journals a
//! `ParitySample` per pair and fails when any pair is outside tolerance (the step's `tolerance` overrides the
//! maps'). `record_baseline: true` journals that these figures are the run's baseline (the reducer keeps the
//! first sample of every pair as its baseline, so the step only says so).

use super::maps::{Pair, count_pairs, resolve, tolerance};
use super::{Res, StepCtx, fail, log};
use crate::engine::event::LogLevel;
use crate::runbook::{MapSelection, Tolerance};

/// "customers/USMF 6005 vs 6000 (allowed 0)".
pub fn describe(p: &Pair) -> String {
    format!(
        "{}{} {} vs {} (allowed {})",
        p.map,
        p.company.as_deref().map(|c| format!("/{c}")).unwrap_or_default(),
        p.source,
        p.target,
        p.allowed
    )
}

pub async fn run(ctx: &StepCtx, maps: &MapSelection, record_baseline: bool, tol: Option<&Tolerance>) -> Res {
    let maps = resolve(ctx, maps)?;
    let pairs = count_pairs(ctx, &maps, tol.map(|t| tolerance(Some(t)))).await?;
    let bad: Vec<String> = pairs.iter().filter(|p| !p.within()).map(describe).collect();
    if record_baseline {
        log(
            ctx,
            LogLevel::Info,
            format!(
                "baseline recorded: {} pairs over {} maps",
                pairs.len(),
                maps.len()
            ),
        );
    }
    if bad.is_empty() {
        Ok(Default::default())
    } else {
        Err(fail(format!("parity outside tolerance: {}", bad.join("; "))))
    }
}
