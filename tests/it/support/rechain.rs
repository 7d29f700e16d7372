//! The forger's last step, shared by the tamper tests (included with `#[path]`): after editing a
//! payload, recompute every row's `prev_hash`/`hash` and the chain head with the crate's own rule,
//! so the only thing left for `verify` to catch is what a consistent chain cannot hide.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use cutover::journal::chain::{GENESIS_HASH, canonical_envelope, chain_hash};
use rusqlite::Connection;

/// Rewrites the whole chain of `c` (its `events_no_update` trigger must already be dropped).
pub fn rechain(c: &Connection) {
    let rows: Vec<(i64, String, i64, String, String, String)> = c
        .prepare("SELECT id, run_id, seq, at, kind, payload FROM events ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut prev = GENESIS_HASH.to_string();
    for (id, run, seq, at, kind, payload) in rows {
        let hash = chain_hash(
            &prev,
            &canonical_envelope(&run, u64::try_from(seq).unwrap(), &at, &kind, &payload),
        );
        c.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
            rusqlite::params![prev, hash, id],
        )
        .unwrap();
        prev = hash;
    }
    c.execute("UPDATE chain_head SET hash = ?1", [&prev]).unwrap();
}

/// Damages a page the chain never reads: the root page of the `events` table's last index (its page-type
/// byte), so that only SQLite's own check can find it.
pub fn damage_an_index_root_page(path: &std::path::Path) {
    let (page_size, root): (i64, i64) = {
        let c = Connection::open(path).unwrap();
        let ps = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let root = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY rootpage DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (ps, root)
    };
    let mut bytes = std::fs::read(path).unwrap();
    bytes[usize::try_from((root - 1) * page_size).unwrap()] = 0x01;
    std::fs::write(path, &bytes).unwrap();
}
