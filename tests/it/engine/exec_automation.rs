//! `dataverse.disable_automation` / `dataverse.enable_automation` against the simulator: the named plug-in
//! steps and flows go off (each one's state journaled before its PATCH), a re-run keeps the first journaled
//! state, the enable step puts back exactly what was on, and an unknown name changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::engine::event::Event;
use exec_support::{assert_ok, environments, failure, start};

fn scenario() -> String {
    std::fs::read_to_string(format!(
        "{}/runbooks/scenarios/guardrails.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const CREATE: &str = "Contoso.Plugins.SalesOrderCheck: Create of salesorder";

fn runbook() -> String {
    format!(
        r#"runbook: automation
version: 1.0.0
{}
maps:
  orders: {{ source: "fno:SalesOrderHeadersV2", target: "dataverse:salesorders" }}
phases:
  - id: p
    steps:
      - id: off
        kind: dataverse.disable_automation
        env: dataverse
        plugin_steps: ["{CREATE}"]
        flows: [Notify sales of a new order, Old order export]
      - {{ id: on, kind: dataverse.enable_automation, env: dataverse }}
      - {{ id: typo, kind: dataverse.disable_automation, env: dataverse, flows: [Notify sales of a new ordr] }}
"#,
        environments(true)
    )
}

fn code(h: &exec_support::Harness, set: &str, name: &str) -> i64 {
    h.sim.state()["automation"][set][name]["statecode"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn disable_journals_first_reruns_keep_the_first_state_and_enable_puts_back_what_was_on() {
    let h = start(Some(&scenario()), &runbook()).await;
    assert_eq!(code(&h, "sdkmessageprocessingsteps", CREATE), 0);
    assert_ok(&h.run("off").await);
    assert_eq!(code(&h, "sdkmessageprocessingsteps", CREATE), 1);
    assert_eq!(code(&h, "workflows", "Notify sales of a new order"), 0);
    // A re-run (a resumed in-flight step) reads everything as off now, and must not journal that as the prior.
    assert_ok(&h.run_mode("off", 2, cutover::engine::exec::Mode::Fresh).await);
    let evs = h.events().await;
    let offs: Vec<(String, i64)> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::AutomationOff {
                name,
                prior_statecode,
                ..
            } => Some((name.clone(), *prior_statecode)),
            _ => None,
        })
        .collect();
    assert_eq!(offs.len(), 3, "{offs:?}");
    assert!(offs.contains(&(CREATE.to_owned(), 0)) && offs.contains(&("Old order export".to_owned(), 0)));
    assert!(offs.contains(&("Notify sales of a new order".to_owned(), 1)));

    assert_ok(&h.run("on").await);
    assert_eq!(code(&h, "sdkmessageprocessingsteps", CREATE), 0);
    assert_eq!(code(&h, "workflows", "Notify sales of a new order"), 1);
    assert_eq!(
        code(&h, "workflows", "Old order export"),
        0,
        "what was off stays off"
    );
    // Nothing left to put back: a second enable changes nothing.
    assert_ok(&h.run_mode("on", 2, cutover::engine::exec::Mode::Fresh).await);
    let restored = h
        .events()
        .await
        .iter()
        .filter(|e| matches!(&e.event, Event::AutomationRestored { .. }))
        .count();
    assert_eq!(restored, 3);

    let msg = failure(&h.run("typo").await);
    assert!(
        msg.contains("no flow named `Notify sales of a new ordr`"),
        "{msg}"
    );
    assert_eq!(
        code(&h, "workflows", "Notify sales of a new order"),
        1,
        "nothing was changed"
    );
}
