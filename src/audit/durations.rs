//! Measured step durations from a recorded run (a rehearsal), for `plan --from-journal`.

use std::collections::BTreeMap;
use std::path::Path;

use super::{AuditError, open, select_run};
use crate::state::StepDurations;

/// The duration of every step of `run` (default: the latest run) that succeeded, by step id, in
/// milliseconds of real time ([`StepDurations::measured`]: the same measure as the live ETA's).
pub fn measured_step_durations(path: &Path, run: Option<&str>) -> Result<BTreeMap<String, u64>, AuditError> {
    let reader = open(path)?;
    let runs = reader.runs()?;
    let selected = select_run(&runs, run)?;
    let mut m = StepDurations::default();
    reader.for_each_envelope(&selected.run_id, |env| m.apply(env))?;
    Ok(m.measured())
}
