//! Measured step durations of a recorded run (a rehearsal): one measure for `plan --from-journal` and for
//! the live ETA of a later run in the same journal.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::{RunState, StepStatus};
use crate::model::event::Event;
use crate::model::{Envelope, StepId};

/// Feed it every envelope of one run, in journal order; [`StepDurations::measured`] then gives the
/// duration of every step that succeeded, by step id, in milliseconds of real time.
#[derive(Default)]
pub struct StepDurations {
    state: RunState,
    asked: HashMap<StepId, DateTime<Utc>>,
    human_ms: HashMap<StepId, u64>,
}

impl StepDurations {
    pub fn apply(&mut self, env: &Envelope) {
        self.state.apply(env);
        match &env.event {
            Event::StepIntent { step, .. } => {
                // A new attempt: only the latest counts, its waits included.
                self.human_ms.remove(step);
                self.asked.remove(step);
            }
            Event::AwaitingOperator { step: Some(step), .. } => {
                self.asked.entry(step.clone()).or_insert(env.at);
            }
            Event::OperatorDecision { step: Some(step), .. } => {
                if let Some(since) = self.asked.remove(step) {
                    let ms = u64::try_from((env.at - since).num_milliseconds()).unwrap_or(0);
                    *self.human_ms.entry(step.clone()).or_default() += ms;
                }
            }
            _ => {}
        }
    }

    /// A simulated run's machine time is multiplied back by its `time_scale` so it is a real-time
    /// estimate; the time a step waited for a person (from the question to the decision) is not: a
    /// 12-second approval in a rehearsal at 600× is 12 seconds, not 2 hours. Only the latest attempt counts.
    pub fn measured(&self) -> BTreeMap<String, u64> {
        let scale = if self.state.header.time_scale > 0.0 {
            self.state.header.time_scale
        } else {
            1.0
        };
        let mut out = BTreeMap::new();
        for s in &self.state.steps {
            if let (StepStatus::Succeeded, Some(ms)) = (&s.status, s.duration_ms) {
                let human = self.human_ms.get(&s.info.id).copied().unwrap_or(0).min(ms);
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let machine = ((ms - human) as f64 * scale) as u64;
                out.insert(s.info.id.0.to_string(), machine.saturating_add(human));
            }
        }
        out
    }
}
