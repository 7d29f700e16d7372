//! Measured step durations from a recorded run (a rehearsal), for `plan --from-journal`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{AuditError, open, select_run};
use crate::state::StepStatus;

/// The duration of every step of `run` (default: the latest run) that succeeded, by step id, in
/// milliseconds of the run's own clock (a simulated run's durations are multiplied back by its
/// `time_scale`, so they are real-time estimates). Only the latest attempt counts.
pub fn measured_step_durations(path: &Path, run: Option<&str>) -> Result<BTreeMap<String, u64>, AuditError> {
    let reader = open(path)?;
    let runs = reader.runs()?;
    let selected = select_run(&runs, run)?;
    let state = reader.state_at(&selected.run_id, None)?;
    let scale = if state.header.time_scale > 0.0 {
        state.header.time_scale
    } else {
        1.0
    };
    let mut out = BTreeMap::new();
    for s in &state.steps {
        if let (StepStatus::Succeeded, Some(ms)) = (&s.status, s.duration_ms) {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let real = (ms as f64 * scale) as u64;
            out.insert(s.info.id.0.clone(), real);
        }
    }
    Ok(out)
}
