//! `dualwrite.batch_window`: the seed's pattern for an F&O batch job that would flood a live map
//! (`shared/seeds/002`, "Pattern for Batch Updates"): pause the named maps, let the operator run the batch job
//! (a confirmation, as `manual`), optionally import a DMF package for the changed rows (the `dmf.import`
//! executor), then resume the maps.
//!
//! Dual-write queues a paused map's changes up to documented limits (d365-api.md §5: "Pause limits: max 1 day
//! and 1 GB of queued records; exceeding either blocks further records until resumed"). `max_window` is the
//! window the runbook plans: `validate` and `plan` warn when it exceeds the day; the engine raises an alert
//! when a live pause nears the day (80%) or passes it, and when it outlasts `max_window`. The 1 GB limit is not
//! watched: no public API reads a paused map's queued records (d365-api.md §5, "No documented API for ...
//! queued-record counts").
//!
//! No public API reads an F&O batch job's status either (none in d365-api.md), so the step waits for the
//! operator only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DefaultTimeout, EnvKind, Kind, MapSelection, Reconcile, StepCheck};
use crate::runbook::model::{Duration, Runbook};

/// The documented longest pause of a dual-write map (d365-api.md §5: "max 1 day").
pub const PAUSE_LIMIT_SECS: u64 = 86_400;
/// The documented most queued records of a paused map (d365-api.md §5: "1 GB of queued records").
pub const PAUSE_LIMIT_BYTES: u64 = 1 << 30;
/// The share of the pause limit at which a live pause raises its first alert.
pub const PAUSE_ALERT_PERCENT: u64 = 80;

/// Pauses the maps, waits for the operator's batch job, optionally imports a package, resumes the maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct BatchWindow {
    /// The maps paused for the window (each must be Running).
    pub maps: MapSelection,
    /// How long the maps are planned to stay paused (a duration: `4h`). Dual-write queues a paused map's
    /// changes for at most a day: a longer window is a warning, a live pause past it an alert.
    pub max_window: Duration,
    /// What the operator does while the maps are paused (the batch job to run): shown with the question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Items the operator ticks when confirming.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklist: Vec<String>,
    /// A DMF package for the changed rows, imported after the confirmation and before the maps resume
    /// (the fields of a `dmf.import` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<super::DmfImport>,
}

impl Kind for BatchWindow {
    /// The planned window, plus pausing and resuming.
    fn estimate_secs(&self, _rb: &Runbook) -> u64 {
        self.max_window.as_secs().saturating_add(240)
    }

    fn handle_kind(&self) -> Option<&'static str> {
        Some("dualwrite.request")
    }

    /// Each pause and resume is journaled before it is sent (as `dualwrite.pause` does), and the window's
    /// phases are journaled: resume carries on from the last one.
    fn reconcile(&self) -> Reconcile {
        Reconcile::ByHandle
    }

    /// The window is the operator's: it is bounded by `max_window`'s alerts, not by a timeout.
    fn default_timeout(&self) -> DefaultTimeout {
        DefaultTimeout::Unbounded
    }

    fn maps(&self) -> Option<&MapSelection> {
        Some(&self.maps)
    }

    fn envs(&self) -> Vec<(&'static str, &str, Option<EnvKind>)> {
        let mut v = Vec::new();
        if let Some(i) = &self.import {
            v.push(("import", i.env.as_str(), Some(EnvKind::Fno)));
            if let Some(r) = &i.record_install {
                v.push(("import", r.env.as_str(), None));
            }
        }
        v
    }

    fn captures(&self) -> Vec<&str> {
        Vec::new()
    }

    fn url(&self) -> Option<&str> {
        None
    }

    fn validate(&self, check: &mut StepCheck<'_, '_, '_>) {
        check.needs_dualwrite_env();
        let secs = self.max_window.as_secs();
        if secs == 0 {
            check.error(
                "max_window",
                "invalid-value",
                "max_window is zero: the maps would be resumed as soon as they are paused".into(),
                "write how long the batch job keeps the maps paused, e.g. `4h`".to_owned(),
            );
        } else if let Some(w) = window_warning(secs) {
            check.warn(
                "max_window",
                "pause-limit",
                w,
                "split the batch job into windows of less than a day, or load its rows by DMF with the maps stopped"
                    .to_owned(),
            );
        }
        if let Some(i) = &self.import {
            if let Some(why) = super::dmf_import::package_path_problem(&i.package_file) {
                check.error(
                    "import",
                    "invalid-path",
                    format!("import: package_file `{}` {why}", i.package_file),
                    "write a path relative to the runbook's folder, inside it, e.g. `packages/changed-rows.zip`"
                        .to_owned(),
                );
            }
            if let Some(pin) = &i.package_sha256
                && !super::dmf_import::is_sha256(pin)
            {
                check.error(
                    "import",
                    "invalid-sha256",
                    format!("import: package_sha256 `{pin}` is not a sha256 (64 hexadecimal digits)"),
                    "write the hash `sha256sum` prints for the package file".to_owned(),
                );
            }
        }
    }
}

/// The warning for a planned window of `secs`, when it exceeds the documented pause limit.
pub fn window_warning(secs: u64) -> Option<String> {
    (secs > PAUSE_LIMIT_SECS).then(|| {
        format!(
            "the planned window ({}) exceeds dual-write's pause limit of 1 day: past it a paused map blocks \
             further records until it is resumed (d365-api.md §5, pause-for-maintenance)",
            Duration::from_secs(secs)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_past_a_day_is_warned_about() {
        assert!(window_warning(PAUSE_LIMIT_SECS).is_none());
        let w = window_warning(PAUSE_LIMIT_SECS + 3_600).expect("a warning");
        assert!(w.contains("1d1h") && w.contains("1 day"), "{w}");
    }
}
