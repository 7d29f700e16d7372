#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The plan of the demo runbook: a valid execution order, waves expanded per map with gates between
//! them, and a critical path that is a chain of needs.

use std::collections::HashMap;

use cutover::runbook::plan::{PlannedWhat, plan};
use cutover::runbook::{StepId, load};

fn demo() -> cutover::runbook::Runbook {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/demo.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let loaded = load(&text, "demo.yaml");
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.runbook.unwrap()
}

#[test]
fn steps_are_in_a_valid_execution_order() {
    let p = plan(&demo());
    let pos: HashMap<&StepId, usize> = p.steps.iter().enumerate().map(|(i, s)| (&s.id, i)).collect();
    assert_eq!(pos.len(), p.steps.len(), "ids are unique");
    for (i, s) in p.steps.iter().enumerate() {
        for n in &s.needs {
            assert!(pos[n] < i, "{} needs {} which comes later", s.id, n);
        }
    }
    assert_eq!(p.steps[0].id.as_str(), "announce-freeze");
    assert!(p.steps[0].needs.is_empty());
}

#[test]
fn waves_expand_into_map_steps_and_gates() {
    let p = plan(&demo());
    let get = |id: &str| {
        p.steps
            .iter()
            .find(|s| s.id.as_str() == id)
            .unwrap_or_else(|| panic!("no {id}"))
    };
    let customers = get("wave-3:customers");
    assert_eq!(customers.kind, "dualwrite.run");
    assert_eq!(customers.wave.as_deref(), Some("wave-3"));
    assert_eq!(customers.needs, vec![StepId::from("wave-2:gate")]);
    assert!(matches!(&customers.what, PlannedWhat::WaveMap { map } if map.as_str() == "customers"));
    let gate = get("wave-3:gate");
    assert_eq!(gate.kind, "gate");
    assert_eq!(
        gate.needs,
        vec![StepId::from("wave-3:customers"), StepId::from("wave-3:vendors")]
    );
    // The first wave waits for the last step of the snapshot phase; delta-enable waits for the last gate.
    assert_eq!(
        get("wave-1:companies").needs,
        vec![StepId::from("import-reference-data")]
    );
    assert_eq!(get("enable-live-sync").needs, vec![StepId::from("wave-7:gate")]);
    assert!(get("enable-live-sync").point_of_no_return);
    assert_eq!(p.steps.iter().filter(|s| s.kind == "gate").count(), 7);
}

#[test]
fn critical_path_is_a_chain_of_needs_ending_last() {
    let p = plan(&demo());
    assert!(p.critical_path.len() > 10);
    let by_id: HashMap<&StepId, _> = p.steps.iter().map(|s| (&s.id, s)).collect();
    for pair in p.critical_path.windows(2) {
        assert!(
            by_id[&pair[1]].needs.contains(&pair[0]),
            "{} does not need {}",
            pair[1],
            pair[0]
        );
    }
    let total: u64 = p.critical_path.iter().map(|id| by_id[id].estimate_secs).sum();
    assert_eq!(total, p.critical_path_secs);
    // The larger map of the last wave is on the path.
    assert!(
        p.critical_path
            .contains(&StepId::from("wave-7:sales_order_lines"))
    );
    assert_eq!(p.critical_path.last().unwrap().as_str(), "watch");
}

#[test]
fn json_has_the_documented_shape() {
    let p = plan(&demo());
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["runbook"], "contoso-demo");
    let first = &v["steps"][0];
    for key in ["id", "phase", "wave", "kind", "needs"] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert!(first["wave"].is_null());
    assert!(v["critical_path"].is_array());
}

fn small(wave_concurrency: &str, monitor: &str) -> cutover::runbook::Runbook {
    let text = format!(
        r#"runbook: plan-test
version: 1.0.0
freeze_window:
  start: 2026-11-27T18:00:00Z
  end: 2026-11-30T08:00:00Z
environments:
  fno:
    kind: fno
    url: https://contoso.operations.dynamics.com
    auth: {{ tenant: t, client_id: c, client_secret: "${{SECRET}}" }}
  dataverse:
    kind: dataverse
    url: https://contoso.crm.dynamics.com
    auth: {{ tenant: t, client_id: c, client_secret: "${{SECRET}}" }}
  dualwrite:
    kind: dualwrite
    link: [fno, dataverse]
    mode: operator
maps:
  a: {{ source: "fno:A", target: "dataverse:a", master: fno, rows: 5000 }}
  b: {{ source: "fno:B", target: "dataverse:b", master: fno, rows: 5000 }}
  c: {{ source: "fno:C", target: "dataverse:c", master: fno, rows: 5000 }}
phases:
  - id: sync
    waves:
      - id: wave-1
        maps: [a, b, c]
{wave_concurrency}
  - id: watch
    steps:
      - id: watch
        kind: monitor
        every: 5m
        maps: all
{monitor}
"#
    );
    let loaded = load(&text, "plan-test.yaml");
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.runbook.unwrap()
}

#[test]
fn a_wave_runs_concurrency_maps_at_once_and_queues_the_rest() {
    // Each map: 5m + 5000 rows / 5 per second = 1300 s.
    let all_at_once = plan(&small("        concurrency: 3", "        for: 1h"));
    let one_at_a_time = plan(&small("        concurrency: 1", "        for: 1h"));
    let two = plan(&small("        concurrency: 2", "        for: 1h"));
    assert_eq!(all_at_once.critical_path_secs, 1300 + 3600);
    assert_eq!(one_at_a_time.critical_path_secs, 3 * 1300 + 3600);
    assert_eq!(two.critical_path_secs, 2 * 1300 + 3600);
    // The path runs through the maps that waited for a lane.
    let ids: Vec<&str> = one_at_a_time.critical_path.iter().map(StepId::as_str).collect();
    assert_eq!(ids, ["wave-1:a", "wave-1:b", "wave-1:c", "watch"]);
}

#[test]
fn a_monitor_until_lasts_to_its_time_not_zero() {
    // Starts after the wave (1300 s into the window) and runs to 2 hours after the window opened.
    let p = plan(&small(
        "        concurrency: 3",
        "        until: 2026-11-27T20:00:00Z",
    ));
    let watch = p.steps.iter().find(|s| s.id.as_str() == "watch").unwrap();
    assert_eq!(watch.estimate_secs, 7200 - 1300);
    assert_eq!(p.critical_path_secs, 7200);
}
