//! `wait`: for a duration (environment time, scaled by the clock), or until a timestamp compared with the
//! environment's clock (the simulator's in `--sim` mode). Progress is journaled about every tenth of the wait.

use std::time::Duration;

use super::{Res, StepCtx, progress, sleep_env};
use crate::runbook::{Duration as RbDuration, Timestamp};

pub async fn run(ctx: &StepCtx, until: Option<&Timestamp>, for_: Option<&RbDuration>) -> Res {
    let total = match (for_, until) {
        (Some(d), _) => d.as_std(),
        (None, Some(t)) => {
            let now = ctx.envs.env_now(&ctx.cancel).await;
            let at = t.at().with_timezone(&chrono::Utc);
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
        (None, None) => Duration::ZERO,
    };
    let slice = (total / 10).max(Duration::from_secs(1));
    let mut waited = Duration::ZERO;
    while waited < total {
        let d = slice.min(total - waited);
        sleep_env(ctx, d).await?;
        waited += d;
        progress(
            ctx,
            waited.as_secs(),
            Some(total.as_secs()),
            Some("seconds waited".into()),
        );
    }
    Ok(Default::default())
}
