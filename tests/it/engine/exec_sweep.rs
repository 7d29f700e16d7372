//! A parity sweep over many Dataverse tables reads their metadata in a few batched `EntityDefinitions`
//! requests (an `or` of `EntitySetName eq`), not one per table, and every count still gets its table's
//! primary id, including a table the batched answer did not have.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;
use crate::support::sim::request_log_with_query;

use cutover::engine::event::Event;
use exec_support::{assert_ok, environments, start};
use std::fmt::Write as _;

const N: usize = 120;

fn scenario() -> String {
    let mut s = String::from("name: sweep\nseed: 3\ntime_scale: 600\ncompanies: [USMF]\nentities:\n  fno:\n");
    for i in 0..N {
        let _ = writeln!(s, "    Set{i}: {{ key: K{i}, rows: {} }}", 1 + i % 5);
    }
    s.push_str("  dataverse:\n");
    for i in 0..N {
        let _ = writeln!(s, "    set{i}s: {{ key: k{i}, rows: {} }}", 1 + i % 5);
    }
    s
}

fn runbook() -> String {
    let mut s = format!(
        "runbook: sweep\nversion: 1.0.0\ndefaults: {{ concurrency: 8 }}\n{}maps:\n",
        environments(false)
    );
    for i in 0..N {
        let _ = writeln!(s, "  m{i}: {{ source: fno:Set{i}, target: dataverse:set{i}s }}");
    }
    s.push_str("phases:\n  - id: p\n    steps:\n      - { id: count, kind: parity, maps: all }\n");
    s
}

#[tokio::test]
async fn a_parity_sweep_reads_table_metadata_in_batches_not_per_table() {
    let h = start(Some(&scenario()), &runbook()).await;
    let r = h.run("count").await;
    assert_ok(&r);
    let samples: Vec<(String, u64, u64)> = h
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e.event {
            Event::ParitySample {
                map, source, target, ..
            } => Some((map, source, target)),
            _ => None,
        })
        .collect();
    assert_eq!(samples.len(), N, "one figure per map");
    assert!(samples.iter().all(|(_, s, t)| s == t && *s > 0), "{samples:?}");

    let log = request_log_with_query(&h.sim.url()).await;
    let meta: Vec<&(String, String, String)> = log
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.contains("EntityDefinitions"))
        .collect();
    let counts = log
        .iter()
        .filter(|(m, p, q)| m == "GET" && p.contains("/set") && q.contains("$count=true"))
        .count();
    assert_eq!(counts, N, "one count per Dataverse table");
    // 120 tables in chunks of about 48 (2,048 encoded filter characters): three requests, never one per table.
    assert!(
        (2..=N / 20).contains(&meta.len()),
        "{} metadata requests for {N} tables: {:?}",
        meta.len(),
        meta.iter().map(|(_, _, q)| q.len()).collect::<Vec<_>>()
    );
    for (_, _, q) in &meta {
        assert!(q.contains(" or EntitySetName eq '"), "{q}");
        assert!(!q.contains(" in ("), "{q}");
        assert!(q.len() < 4_096, "a batched metadata URL stays short: {}", q.len());
    }
}
