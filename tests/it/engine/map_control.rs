//! Pausing and resuming one map from the console, through the engine's command channel (the console's
//! path): refused while the map is not live (journaled, nothing sent), journaled before the call, run
//! as a step of its own by the `dualwrite.pause`/`resume` executor, and the map's state in the reducer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;

use std::time::Duration;

use cutover::engine::driver::Command;
use cutover::engine::event::{DecisionKind, Event, LogLevel, OperatorAction, StepOutcome};
use cutover::engine::runner::{SimTarget, start_engine};
use cutover::engine::{RunEnd, RunState};
use cutover::sim::Scenario;
use engine_support::*;

fn runbook() -> String {
    let head = &SHORT_DEMO[..SHORT_DEMO.find("maps:").unwrap()];
    format!(
        "{}maps:
  companies: {{ source: fno:Companies, target: dataverse:cdm_companies, master: fno }}
phases:
  - id: before
    steps:
      - {{ id: go, kind: manual, title: Go, instructions: Start the sync }}
  - id: sync
    waves:
      - {{ id: w1, maps: [companies] }}
  - id: after
    steps:
      - {{ id: hold, kind: manual, title: Hold, instructions: Look at the maps }}
",
        head.replace("runbook: crash-demo", "runbook: map-control")
    )
}

/// Where the test is: each stage waits for a journaled fact before it sends the next command.
#[derive(Debug, PartialEq)]
enum Stage {
    /// `go` asked: pause `companies` (not live yet).
    Early,
    /// The refusal was journaled: approve `go`.
    Refused,
    /// `hold` asked (the wave's map step succeeded): pause `companies`.
    Live,
    /// The pause step succeeded: pause again (refused: already paused), then resume.
    Paused,
    Resumed,
    Done,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_map_is_paused_and_resumed_from_the_console_with_the_steps_checks() {
    let f = fixture(&runbook());
    let s = cutover::sim::start(Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let opts = options(&f, SimTarget::Url(s.url()), true);
    let (handle, mut state, mut sub) = start_engine(opts).await.unwrap();
    let tx = handle.commands.clone();
    let mut done = handle.done;
    let mut stage = Stage::Early;
    let mut refusals: Vec<String> = Vec::new();
    let mut decision_before_intent = false;
    let mut paused_in_sim = None;
    let end = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            tokio::select! {
                Some(env) = sub.recv() => {
                    state.apply(&env);
                    match &env.event {
                        Event::AwaitingOperator { step: Some(step), decision: DecisionKind::ApproveManual, .. } => {
                            match step.as_str() {
                                "go" => {
                                    assert_eq!(stage, Stage::Early);
                                    tx.send(Command::for_map(true, "companies", "alice")).await.unwrap();
                                }
                                "hold" => {
                                    stage = Stage::Live;
                                    tx.send(Command::for_map(true, "companies", "alice")).await.unwrap();
                                }
                                other => panic!("unexpected question about {other}"),
                            }
                        }
                        Event::Log { level: LogLevel::Warn, message } if message.contains("refused") => {
                            refusals.push(message.clone());
                            match stage {
                                Stage::Early => {
                                    stage = Stage::Refused;
                                    tx.send(Command::new(OperatorAction::Approve, Some("go".into()), "alice")).await.unwrap();
                                }
                                Stage::Paused => {
                                    tx.send(Command::for_map(false, "companies", "alice")).await.unwrap();
                                }
                                ref other => panic!("a refusal at {other:?}: {message}"),
                            }
                        }
                        Event::OperatorDecision { step: Some(step), action: OperatorAction::Pause, operator, .. }
                            if step.as_str().starts_with("console:pause:companies#") => {
                            assert_eq!(operator, "alice");
                            // The decision comes before the step's intent (nothing sent yet).
                            decision_before_intent = state.step(step.as_str()).is_none_or(|s| s.attempts == 0);
                        }
                        Event::StepFinished { step, outcome, .. } if step.as_str().starts_with("console:") => {
                            assert_eq!(*outcome, StepOutcome::Succeeded, "{step}");
                            if step.as_str().starts_with("console:pause:companies#") {
                                stage = Stage::Paused;
                                assert!(state.paused_maps.contains("companies"));
                                assert!(!state.paused, "the run itself is not paused");
                                paused_in_sim = Some(s.state()["maps"]["companies"]["statusName"].clone());
                                // Again: refused, the map is paused already.
                                tx.send(Command::for_map(true, "companies", "alice")).await.unwrap();
                            } else {
                                assert!(step.as_str().starts_with("console:resume:companies#"), "{step}");
                                stage = Stage::Resumed;
                                assert!(!state.paused_maps.contains("companies"));
                                tx.send(Command::new(OperatorAction::Approve, Some("hold".into()), "alice")).await.unwrap();
                            }
                        }
                        Event::RunFinished { .. } => stage = Stage::Done,
                        _ => {}
                    }
                }
                end = &mut done => break end.unwrap(),
            }
        }
    })
    .await
    .expect("the run ends");
    assert!(matches!(end, RunEnd::Finished(_)), "{end:?}");
    assert_eq!(stage, Stage::Done);
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals[0].contains("not live yet") && refusals[0].contains("w1:companies"),
        "{}",
        refusals[0]
    );
    assert!(refusals[1].contains("already paused"), "{}", refusals[1]);
    assert!(decision_before_intent);
    assert_eq!(paused_in_sim, Some(serde_json::json!("Paused")));
    assert_eq!(s.state()["maps"]["companies"]["statusName"], "Running");

    // The journal: the refused pause sent nothing; the accepted ones were decided, then run as steps.
    let (_, evs) = events(&f.journal);
    let mut console_steps: Vec<String> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepIntent { step, .. } if step.as_str().starts_with("console:") => {
                Some(step.0.to_string())
            }
            _ => None,
        })
        .collect();
    console_steps.dedup();
    assert_eq!(
        console_steps,
        ["console:pause:companies#1", "console:resume:companies#2"]
    );
    let mut replay = RunState::default();
    for e in &evs {
        replay.apply(e);
    }
    assert!(replay.paused_maps.is_empty());
}
