//! The ETA: remaining time from each step's duration in an earlier run in the same journal (a rehearsal),
//! else measured durations of finished steps of the same kind, else the plan.

use super::{EstimateSource, Eta, RunState, StepStatus, StepView, millis_between};

/// The estimate for a step kind nothing has measured yet, at real time (divided by the run's
/// `time_scale`). Long operations get the typical durations seen on tier-2 environments; anything
/// unknown gets five minutes.
pub fn default_estimate_ms(kind: &str) -> u64 {
    match kind {
        "manual" => 10 * 60_000,
        "notify" => 5_000,
        "http" | "error_queue" => 30_000,
        "shell" | "parity" | "gate" | "wait" => 60_000,
        "dualwrite.pause" | "dualwrite.resume" | "dualwrite.stop" | "roundtrip" | "sample" => 2 * 60_000,
        "dmf.export" | "dualwrite.run" => 15 * 60_000,
        "dmf.import" => 20 * 60_000,
        "monitor" => 60 * 60_000,
        _ => 5 * 60_000,
    }
}

impl RunState {
    /// Estimated time for a step of this kind: the step's own duration in an earlier run in the same
    /// journal (a rehearsal: `estimate_from`), else the mean of this run's succeeded steps of the same
    /// kind when any were measured, else the plan's `estimate_ms`, else [`default_estimate_ms`] divided
    /// by the run's time scale. The bool says whether it was measured (in this run or an earlier one).
    pub fn estimate_ms(&self, step: &StepView) -> (u64, bool) {
        let (ms, source) = self.estimate(step);
        (
            ms,
            matches!(source, EstimateSource::EarlierRun(_) | EstimateSource::ThisRun),
        )
    }

    /// [`RunState::estimate_ms`] and where it comes from.
    pub fn estimate(&self, step: &StepView) -> (u64, EstimateSource) {
        if let (Some(e), Some(run)) = (step.info.estimate_ms, &step.info.estimate_from) {
            return (e, EstimateSource::EarlierRun(run.clone()));
        }
        if let Some(&(n, total)) = self.durations_by_kind.get(&*step.info.kind)
            && n > 0
        {
            return (total / n, EstimateSource::ThisRun);
        }
        if let Some(e) = step.info.estimate_ms {
            return (e, EstimateSource::Plan);
        }
        let scale = if self.header.time_scale > 0.0 {
            self.header.time_scale
        } else {
            1.0
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let scaled = (default_estimate_ms(&step.info.kind) as f64 / scale) as u64;
        (scaled, EstimateSource::Default)
    }

    /// The remaining time: the sum of the estimates of every step not done (a running step counts
    /// what is left of its estimate at the last event). Summing is sequential, so it is an upper
    /// bound where waves run maps concurrently; the console labels it as such.
    pub fn eta(&self) -> Eta {
        let now = self.header.last_event_at;
        let mut eta = Eta {
            remaining_ms: 0,
            remaining_steps: 0,
            measured: 0,
            rehearsed: 0,
        };
        if self.header.outcome.is_some() {
            return eta;
        }
        for s in &self.steps {
            if s.status.is_done() {
                continue;
            }
            let (est, source) = self.estimate(s);
            let left = match (&s.status, now) {
                (StepStatus::Running { since, .. }, Some(now)) => {
                    est.saturating_sub(millis_between(*since, now))
                }
                _ => est,
            };
            eta.remaining_ms += left;
            eta.remaining_steps += 1;
            eta.measured += usize::from(source == EstimateSource::ThisRun);
            eta.rehearsed += usize::from(matches!(source, EstimateSource::EarlierRun(_)));
        }
        eta
    }
}
