//! The engine reads its own writes: a step that reads a capture (`${steps.X.y}`) journaled by the
//! step just before it sees it, however slowly the journal's asynchronous followers keep up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::engine as engine_support;

use std::time::Duration;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, RunOutcome, StepOutcome};
use cutover::engine::runner::{SimTarget, start_engine};
use cutover::sim::Scenario;
use engine_support::*;

const RUNBOOK: &str = r#"runbook: race
version: 1.0.0
environments:
  dataverse: { kind: dataverse, url: https://contoso-demo.crm.dynamics.com, auth: { tenant: t-0000, client_id: c-0000, client_secret: "${DEMO_CLIENT_SECRET}" } }
phases:
  - id: p
    steps:
      - id: whoami
        kind: http
        env: dataverse
        path: /api/data/v9.2/WhoAmI
        capture: { user: /UserId }
      - id: use
        kind: http
        env: dataverse
        path: /api/data/v9.2/WhoAmI?caller=${steps.whoami.user}
        expect: { status: 200 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_written_by_the_previous_step_is_read_under_a_slow_follower() {
    let f = fixture(RUNBOOK);
    let s = cutover::sim::start(Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut opts = options(&f, SimTarget::Url(s.url()), false);
    opts.follow_delay = Some(Duration::from_millis(400));
    let (handle, _state, _sub) = start_engine(opts).await.unwrap();
    let end = handle.done.await.unwrap();
    let (_, evs) = events(&f.journal);
    let finished: Vec<(String, StepOutcome)> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepFinished { step, outcome, .. } => Some((step.to_string(), outcome.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(end, RunEnd::Finished(RunOutcome::Succeeded), "{finished:?}");
    assert_eq!(
        finished,
        vec![
            ("whoami".to_owned(), StepOutcome::Succeeded),
            ("use".to_owned(), StepOutcome::Succeeded)
        ]
    );
}
