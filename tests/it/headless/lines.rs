//! Headless text lines: what a person reading a CI log sees for each meaningful event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use crate::support::tui::{Script, mid_run};
use cutover::engine::event::{Event, StepOutcome};
use cutover::headless::text_line;

#[test]
fn a_failed_step_line_carries_the_services_reason() {
    let mut s = mid_run(30 * 3600);
    s.push(
        -500,
        Event::StepFinished {
            step: "wave-1:vendors".into(),
            outcome: StepOutcome::Failed {
                message: "the initial sync of vendors failed (resumed 3 times, retries 3)".into(),
                reason: Some("Lookup for 'parents' could not be resolved".into()),
            },
            outputs: BTreeMap::new(),
        },
    );
    let state = s.state();
    let line = text_line(s.envelopes.last().unwrap(), &state).unwrap();
    assert!(line.contains("FAILED  wave-1:vendors"), "{line}");
    assert!(
        line.contains("(the service said: Lookup for 'parents' could not be resolved)"),
        "{line}"
    );
    // A message that already says it is not repeated.
    let mut s = Script::new();
    s.envelopes = mid_run(30 * 3600).envelopes;
    s.push(
        -500,
        Event::StepFinished {
            step: "wave-1:vendors".into(),
            outcome: StepOutcome::Failed {
                message: "failed at row 2: Lookup for 'parents' could not be resolved".into(),
                reason: Some("Lookup for 'parents' could not be resolved".into()),
            },
            outputs: BTreeMap::new(),
        },
    );
    let line = text_line(s.envelopes.last().unwrap(), &s.state()).unwrap();
    assert_eq!(line.matches("could not be resolved").count(), 1, "{line}");
}
