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

#[test]
fn error_figures_name_their_source_and_not_available_is_said_not_zeroed() {
    let counts = |source: &str, n: u64, unavailable: Option<&str>| Event::ErrorCounts {
        map: "customers".into(),
        by_category: if n > 0 {
            BTreeMap::from([("plugin_exception".to_string(), n)])
        } else {
            BTreeMap::new()
        },
        source: Some(source.into()),
        unavailable: unavailable.map(str::to_owned),
        present: None,
    };
    let mut s = mid_run(30 * 3600);
    s.push(-400, counts("dataverse.asyncoperations", 2, None));
    let line = text_line(s.envelopes.last().unwrap(), &s.state()).unwrap();
    assert!(
        line.contains("customers: 2 (dataverse.asyncoperations)"),
        "{line}"
    );
    s.push(-300, counts("dataverse.plugintracelogs", 0, Some("HTTP 403")));
    let line = text_line(s.envelopes.last().unwrap(), &s.state()).unwrap();
    assert!(
        line.contains("customers: not available (HTTP 403) (dataverse.plugintracelogs)"),
        "{line}"
    );
    // An available zero is not worth a CI log line.
    s.push(-200, counts("dmf.execution_errors", 0, None));
    assert_eq!(text_line(s.envelopes.last().unwrap(), &s.state()), None);
}
