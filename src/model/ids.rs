//! String newtype ids: [`RunId`] and [`StepId`], each serialised as a bare string.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Identifies one run inside a journal (a journal can hold rehearsals and the real weekend).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[serde(transparent)]
pub struct RunId(pub String);

/// A step id as written in the runbook (`[A-Za-z0-9_-]+`). Planned steps a wave expands into use
/// `<wave-id>:<map-id>` and `<wave-id>:gate`, which cannot collide with user ids. One type shared by
/// the runbook model, the plan and the events, so they never need converting. Shared, not copied: the
/// runbook's id, the plan's, `RunStarted`'s and the run state's are one allocation (a run of 100,000
/// steps holds each id once; a clone is a reference count).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub Arc<str>);

/// `as_str`, `Display`, and conversions from and to strings for a string newtype id.
macro_rules! id_impls {
    ($t:ty) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use id_impls;

id_impls!(RunId);
id_impls!(StepId);

impl From<RunId> for String {
    fn from(id: RunId) -> String {
        id.0
    }
}

impl From<StepId> for String {
    fn from(id: StepId) -> String {
        id.0.as_ref().to_owned()
    }
}

/// The step a map's pause or resume from the console runs as: `console:pause:<map>#<n>` or
/// `console:resume:<map>#<n>` (the colon keeps it apart from every runbook step id; `n` makes each
/// action a step of its own).
pub fn console_map_step(pause: bool, map: &str, n: u32) -> StepId {
    let verb = if pause { "pause" } else { "resume" };
    StepId(format!("console:{verb}:{map}#{n}").into())
}

/// The (pause?, map) of a [`console_map_step`] id; `None` for every other step.
pub fn parse_console_map_step(id: &StepId) -> Option<(bool, &str)> {
    let rest = id.0.strip_prefix("console:")?;
    let (pause, rest) = if let Some(r) = rest.strip_prefix("pause:") {
        (true, r)
    } else {
        (false, rest.strip_prefix("resume:")?)
    };
    let (map, n) = rest.rsplit_once('#')?;
    (!map.is_empty() && n.parse::<u32>().is_ok()).then_some((pause, map))
}
