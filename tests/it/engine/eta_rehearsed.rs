//! The live ETA learns from an earlier run of the same runbook in the same journal (a rehearsal): the
//! second run's plan carries each step's measured duration and names the run it came from, and the ETA
//! says how many of its steps were estimated that way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;

use cutover::engine::event::Event;
use cutover::engine::runner::SimTarget;
use cutover::engine::{RunEnd, RunState};
use cutover::journal::JournalReader;
use cutover::sim::Scenario;
use engine_support::*;

fn runbook() -> String {
    let head = &SHORT_DEMO[..SHORT_DEMO.find("maps:").unwrap()];
    format!(
        "{}maps:\n  companies: {{ source: fno:Companies, target: dataverse:cdm_companies, master: fno }}\nphases:\n  - id: p\n    steps:\n      - id: one\n        kind: shell\n        run: \"echo one\"\n      - id: two\n        kind: wait\n        for: 1h\n",
        head.replace("runbook: crash-demo", "runbook: eta-learns")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_estimates_from_the_first_runs_durations_and_says_so() {
    let s = cutover::sim::start(Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let f = fixture(&runbook());
    let end = drive(options(&f, SimTarget::Url(s.url()), false)).await;
    assert!(matches!(end, RunEnd::Finished(_)), "{end:?}");
    let (first, first_evs) = events(&f.journal);
    // The first run has nothing to learn from: every estimate is the plan's.
    let Event::RunStarted { steps, .. } = &first_evs[0].event else {
        panic!("{:?}", first_evs[0].event)
    };
    assert!(steps.iter().all(|s| s.estimate_from.is_none()), "{steps:?}");
    let one_planned = steps.iter().find(|s| s.id.as_str() == "one").unwrap().estimate_ms;

    // What the rehearsal measured, by the same measure as `plan --from-journal`.
    let measured = cutover::audit::durations::measured_step_durations(&f.journal, None).unwrap();
    let wait_ms = measured["two"];
    let one_ms = measured["one"];
    assert_ne!(
        Some(one_ms),
        one_planned,
        "the test needs a measure unlike the plan's"
    );

    let mut opts = options(&f, SimTarget::Url(s.url()), false);
    opts.new_run = true;
    let (handle, _state, _sub) = cutover::engine::runner::start_engine(opts).await.unwrap();
    let end = handle.done.await.unwrap();
    assert!(matches!(end, RunEnd::Finished(_)), "{end:?}");

    let r = JournalReader::open_read_only(&f.journal).unwrap();
    let runs = r.runs().unwrap();
    assert_eq!(runs.len(), 2);
    let second = runs[1].run_id.clone();
    assert_ne!(second, first);
    let evs: Vec<_> = r.events(&second).map(Result::unwrap).collect();
    let Event::RunStarted { steps, .. } = &evs[0].event else {
        panic!("{:?}", evs[0].event)
    };
    let one = steps.iter().find(|s| s.id.as_str() == "one").unwrap();
    assert_eq!(one.estimate_ms, Some(one_ms));
    let two = steps.iter().find(|s| s.id.as_str() == "two").unwrap();
    assert_eq!(two.estimate_ms, Some(wait_ms));
    assert_eq!(two.estimate_from.as_deref(), Some(first.0.as_str()));
    // The run says which source its ETA uses.
    assert!(
        evs.iter().any(|e| matches!(&e.event, Event::Log { message, .. }
            if message.starts_with("ETA: 2 of 2 step(s) estimated") && message.contains(&first.0))),
        "no ETA source line"
    );
    // The ETA at the start of the second run counts both steps as estimated from the earlier run.
    let mut state = RunState::default();
    state.apply(&evs[0]);
    let eta = state.eta();
    assert_eq!(eta.remaining_steps, 2);
    assert_eq!(eta.rehearsed, 2);
    assert_eq!(eta.remaining_ms, one_ms + wait_ms);
    let (ms, source) = state.estimate(state.step("two").unwrap());
    assert_eq!(ms, wait_ms);
    assert_eq!(source.words(), format!("measured in earlier run {}", first.0));
}
