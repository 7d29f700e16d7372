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
