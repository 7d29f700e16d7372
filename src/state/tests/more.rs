//! The ETA and determinism.

use super::*;

#[test]
fn eta_uses_measured_durations_of_the_same_kind_then_defaults() {
    let mut f = Feed::new();
    let before = f.state.eta();
    assert_eq!(before.remaining_steps, 4);
    assert_eq!(before.measured, 0);
    assert_eq!(
        before.remaining_ms,
        default_estimate_ms("manual")
            + default_estimate_ms("dmf.import")
            + default_estimate_ms("dualwrite.run")
            + default_estimate_ms("gate")
    );
    f.push(
        1,
        Event::StepIntent {
            step: "import".into(),
            attempt: 1,
            handle: None,
        },
    );
    f.push(
        60,
        Event::StepFinished {
            step: "import".into(),
            outcome: StepOutcome::Succeeded,
            outputs: BTreeMap::new(),
        },
    );
    f.push(
        1,
        Event::StepIntent {
            step: "extra".into(),
            attempt: 1,
            handle: None,
        },
    );
    // An unplanned running step of a new kind counts its default minus its elapsed time.
    let eta = f.state.eta();
    assert_eq!(eta.remaining_steps, 4);
    assert_eq!(
        eta.remaining_ms,
        default_estimate_ms("manual")
            + default_estimate_ms("dualwrite.run")
            + default_estimate_ms("gate")
            + default_estimate_ms("unplanned")
    );
    let mut g = Feed::new();
    g.push(
        0,
        Event::StepIntent {
            step: "w1.customers".into(),
            attempt: 1,
            handle: None,
        },
    );
    g.push(
        120,
        Event::StepFinished {
            step: "w1.customers".into(),
            outcome: StepOutcome::Succeeded,
            outputs: BTreeMap::new(),
        },
    );
    g.push(
        0,
        Event::StepIntent {
            step: "extra2".into(),
            attempt: 1,
            handle: None,
        },
    );
    assert_eq!(
        g.state.estimate_ms(g.state.step("w1.customers").unwrap()),
        (120_000, true)
    );
}

#[test]
fn same_events_give_equal_states() {
    let build = || {
        let mut f = Feed::new();
        f.push(
            1,
            Event::StepIntent {
                step: "import".into(),
                attempt: 1,
                handle: None,
            },
        );
        f.push(
            1,
            Event::ParitySample {
                step: None,
                map: "customers".into(),
                company: None,
                source: 3,
                target: 1,
            },
        );
        f.state
    };
    assert_eq!(build(), build());
    let mut other = build();
    other.apply(&Envelope {
        id: 50,
        seq: 50,
        at: t0(),
        run_id: "r1".into(),
        event: Event::Log {
            level: LogLevel::Warn,
            message: "w".into(),
        },
    });
    assert_ne!(build(), other);
}
