//! Replays every kept fuzz input on the stable toolchain: each file under `fuzz/corpus/TARGET/` and
//! `fuzz/regressions/TARGET/` goes through `cutover::fuzzing::TARGET`, the same entry the cargo-fuzz
//! target calls, so a crasher that was fixed stays fixed without nightly. Each input runs on its own
//! thread with a deadline, so a hang fails the test instead of stalling it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Far above what any input needs in a debug build; a hang shows up as this.
const PER_INPUT: Duration = Duration::from_secs(20);

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs `f(data)` on a thread; `Err` names a panic or a timeout.
fn run_one(f: fn(&[u8]), data: Vec<u8>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let r = std::panic::catch_unwind(|| f(&data));
            let _ = tx.send(r.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".into())
            }));
        })
        .unwrap();
    match rx.recv_timeout(PER_INPUT) {
        Ok(r) => r,
        Err(_) => Err(format!("no result within {PER_INPUT:?} (a hang)")),
    }
}

#[test]
fn every_corpus_and_regression_input_runs_clean() {
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (target, f) in cutover::fuzzing::TARGETS {
        let corpus = inputs("corpus", target);
        let regressions = inputs("regressions", target);
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target}/ is empty: every target keeps a corpus"
        );
        for p in corpus.iter().chain(&regressions) {
            if let Err(e) = run_one(*f, std::fs::read(p).unwrap()) {
                failures.push(format!("{target}: {}: {e}", p.display()));
            }
        }
        counts.push(format!("{target} {}+{}", corpus.len(), regressions.len()));
    }
    eprintln!("fuzz inputs replayed (corpus+regressions): {}", counts.join(", "));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_target_has_a_cargo_fuzz_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (target, _) in cutover::fuzzing::TARGETS {
        let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{target}.rs"))).unwrap();
        assert!(
            src.contains(&format!("cutover::fuzzing::{target}(")),
            "fuzz_targets/{target}.rs does not call its entry"
        );
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml has no [[bin]] {target}"
        );
    }
}
