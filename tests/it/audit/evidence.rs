//! Evidence an auditor can trust (issue 15): real runs of the binary against its in-process
//! simulator, with `journal.checkpoints` signing the chain head and a witness file beside (but not
//! in) the journal's directory. A journal rewritten and re-chained, or cut and its head moved, still
//! verifies on its own; it fails against the witness's anchors, and a forged checkpoint fails against
//! the key. The key's bytes appear nowhere the run or the audit left anything. A changed runbook on
//! resume is journaled step by step, and a step inserted behind the run's position is refused until
//! it is accepted by name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover::journal::JournalReader;
use cutover::model::Event;
use ring::signature::KeyPair as _;

use crate::support::audit::tamper;
use crate::support::auth::Scan;
use crate::support::rechain::rechain;

const SECRET: &str = "evidence-client-secret-0451";

/// A manual step per `n`, then a wait, in two phases; checkpoints every 25 events.
fn runbook(n: usize, checkpoints: bool) -> String {
    let steps: String = (1..=n)
        .map(|i| format!("      - {{ id: s{i}, kind: manual, title: step {i} }}\n"))
        .collect();
    let journal = if checkpoints {
        "journal:\n  checkpoints:\n    key: ${CUTOVER_CHECKPOINT_KEY}\n    every: 25\n    witness:\n      - file: ${WITNESS_DIR}/witness.jsonl\n"
    } else {
        ""
    };
    format!(
        r#"runbook: evidence
version: 1.0.0
{journal}environments:
  fno:
    kind: fno
    url: https://contoso.operations.dynamics.com
    auth: {{ tenant: t, client_id: c, client_secret: "${{EVIDENCE_SECRET}}" }}
phases:
  - id: one
    steps:
{steps}  - id: two
    steps:
      - {{ id: last, kind: wait, for: 1s }}
"#
    )
}

/// The signing key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes it) and its public key.
struct Keys {
    private_pem: String,
    private_der: Vec<u8>,
    private_file: PathBuf,
    public_file: PathBuf,
}

fn keys(dir: &Path) -> Keys {
    use base64::Engine as _;
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let private_pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
    let keydir = dir.join("keys");
    std::fs::create_dir_all(&keydir).unwrap();
    let private_file = keydir.join("checkpoint.pem");
    std::fs::write(&private_file, &private_pem).unwrap();
    let public_file = keydir.join("checkpoint.pub");
    std::fs::write(&public_file, hex::encode(pair.public_key().as_ref())).unwrap();
    Keys {
        private_pem,
        private_der: der.as_ref().to_vec(),
        private_file,
        public_file,
    }
}

struct Run {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    journal: PathBuf,
    witness: PathBuf,
    keys: Keys,
    outputs: Vec<(String, Vec<u8>)>,
}

fn cutover(dir: &Path, args: &[&str], keys: Option<&Keys>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cutover"));
    c.current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("EVIDENCE_SECRET", SECRET)
        .env("WITNESS_DIR", dir.join("witness"));
    if let Some(k) = keys {
        c.env("CUTOVER_CHECKPOINT_KEY", &k.private_file);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A finished run of `n` manual steps, auto-approved, with checkpoints and a witness.
fn signed_run(n: usize) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("witness")).unwrap();
    let keys = keys(&dir);
    std::fs::write(dir.join("rb.yaml"), runbook(n, true)).unwrap();
    let o = cutover(
        &dir,
        &[
            "run",
            "rb.yaml",
            "--headless",
            "--auto-approve",
            "--operator",
            "olive",
            "--sim",
            "--journal",
            "run.journal",
        ],
        Some(&keys),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let outputs = vec![
        ("run stdout".to_owned(), o.stdout),
        ("run stderr".to_owned(), o.stderr),
    ];
    Run {
        journal: dir.join("run.journal"),
        witness: dir.join("witness/witness.jsonl"),
        _tmp: tmp,
        dir,
        keys,
        outputs,
    }
}

fn verify(run: &mut Run, journal: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify", journal.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = cutover(&run.dir, &args, None);
    run.outputs
        .push((format!("verify {extra:?} stdout"), o.stdout.clone()));
    run.outputs
        .push((format!("verify {extra:?} stderr"), o.stderr.clone()));
    (o.status.code().unwrap_or(-1), text(&o))
}

fn copy(run: &Run, name: &str) -> PathBuf {
    let to = run.dir.join(name);
    std::fs::copy(&run.journal, &to).unwrap();
    to
}

fn witness_lines(run: &Run) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&run.witness)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn last_id(path: &Path) -> i64 {
    JournalReader::open_read_only(path)
        .unwrap()
        .chain_tip()
        .unwrap()
        .0
}

#[test]
fn an_untampered_run_passes_with_its_anchors_and_key_and_says_so() {
    let mut run = signed_run(12);
    let lines = witness_lines(&run);
    // A checkpoint per decision at least, and the run's end is witnessed.
    assert!(lines.len() >= 12, "{lines:?}");
    let last = lines.last().unwrap();
    let tip = last_id(&run.journal);
    assert_eq!(
        last["event_id"].as_i64().unwrap(),
        tip - 1,
        "the run's end is checkpointed"
    );
    let journal = run.journal.clone();
    let public = run.keys.public_file.to_str().unwrap().to_owned();
    let witness = run.witness.to_str().unwrap().to_owned();
    let (code, out) = verify(&mut run, &journal, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain consistent; not anchored"), "{out}");
    let (code, out) = verify(&mut run, &journal, &["--key", &public, "--anchors", &witness]);
    assert_eq!(code, 0, "{out}");
    let fp = last["key_fingerprint"].as_str().unwrap();
    assert!(
        out.contains(&format!("{} checkpoint(s) verified", lines.len())) && out.contains(fp),
        "{out}"
    );
    assert!(
        out.contains(&format!("{n} of {n} matched", n = lines.len())),
        "{out}"
    );
    let anchor = format!("{}@{}", last["chain_hash"].as_str().unwrap(), last["event_id"]);
    let (code, out) = verify(&mut run, &journal, &["--anchor", &anchor, "--key", fp]);
    assert_eq!(code, 0, "{out}");
    // The report says which checkpoints verified, and with which key.
    let o = cutover(
        &run.dir,
        &["report", "run.journal", "--format", "md", "--key", &public],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        md.contains(&format!(
            "{n} of {n} verified with Ed25519 key {fp} (trusted",
            n = lines.len()
        )),
        "{md}"
    );
    run.outputs.push(("report".into(), o.stdout));
    // The key's bytes are nowhere: journal (and its side files), witness, report, every output.
    let mut scan = Scan::default();
    scan.never_key(&run.keys.private_pem, &run.keys.private_der);
    // The seed itself (the last 32 bytes of the PKCS#8 v2 prefix's private part) in hex.
    let seed = &run.keys.private_der[16..48];
    scan.never("private key seed (hex)", hex::encode(seed).as_bytes());
    scan.never("private key seed (raw)", seed);
    let keydir = run.dir.join("keys");
    scan.dir(&run.dir, &[&keydir]);
    for (name, bytes) in &run.outputs {
        scan.bytes(name, bytes);
    }
    scan.assert_clean();
}

/// Deletes every checkpoint row and renumbers ids and seqs so they are contiguous again (the chain
/// is recomputed afterwards by `rechain`).
fn strip_checkpoints(path: &Path) {
    tamper(
        path,
        "DELETE FROM events WHERE kind = 'checkpoint';
         CREATE TEMP TABLE m AS SELECT id AS old, ROW_NUMBER() OVER (ORDER BY id) AS new,
             ROW_NUMBER() OVER (PARTITION BY run_id ORDER BY id) AS nseq FROM events;
         UPDATE events SET id = -(SELECT new FROM m WHERE old = events.id),
             seq = -(SELECT nseq FROM m WHERE old = events.id);
         UPDATE events SET id = -id, seq = -seq;
         UPDATE runs SET last_event_id = (SELECT MAX(id) FROM events);
         UPDATE chain_head SET last_id = (SELECT MAX(id) FROM events);",
    );
}

#[test]
fn a_reattributed_and_rechained_journal_fails_against_the_witness() {
    let mut run = signed_run(12);
    let forged = copy(&run, "forged.journal");
    tamper(
        &forged,
        "UPDATE events SET payload = replace(payload, '\"operator\":\"olive\"', '\"operator\":\"mallory\"') WHERE kind = 'operator_decision'",
    );
    // The forger cannot re-sign the checkpoints, so drops them and renumbers what is left.
    strip_checkpoints(&forged);
    rechain(&rusqlite::Connection::open(&forged).unwrap());
    let changed: i64 = rusqlite::Connection::open(&forged)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'operator_decision' AND payload LIKE '%mallory%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changed, 12, "every decision re-attributed");
    // On its own the forgery verifies: that is the weakness anchors close.
    let (code, out) = verify(&mut run, &forged, &[]);
    assert_eq!(code, 0, "{out}");
    let witness = run.witness.to_str().unwrap().to_owned();
    let (code, out) = verify(&mut run, &forged, &["--anchors", &witness]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten"), "{out}");
    // Against the key, the missing checkpoints are named.
    let public = run.keys.public_file.to_str().unwrap().to_owned();
    let (code, out) = verify(&mut run, &forged, &["--key", &public]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no checkpoint in the journal verifies with key"),
        "{out}"
    );
    // A forger who keeps the checkpoints is named by them, anchors or not.
    let kept = copy(&run, "kept.journal");
    tamper(
        &kept,
        "UPDATE events SET payload = replace(payload, '\"operator\":\"olive\"', '\"operator\":\"mallory\"') WHERE kind = 'operator_decision'",
    );
    rechain(&rusqlite::Connection::open(&kept).unwrap());
    let (code, out) = verify(&mut run, &kept, &["--key", &public]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten after it was signed"), "{out}");
}

#[test]
fn a_truncated_journal_with_its_head_moved_fails_against_an_anchor_past_the_cut() {
    let mut run = signed_run(60);
    let cut = copy(&run, "cut.journal");
    let tip = last_id(&cut);
    assert!(tip > 300, "enough events to cut 200: {tip}");
    let keep = tip - 200;
    tamper(
        &cut,
        &format!(
            "DELETE FROM events WHERE id > {keep}; UPDATE chain_head SET last_id = {keep}, hash = (SELECT hash FROM events WHERE id = {keep});"
        ),
    );
    let (code, out) = verify(&mut run, &cut, &[]);
    assert_eq!(code, 0, "a cut with its head moved is consistent: {out}");
    let past = witness_lines(&run)
        .into_iter()
        .find(|l| l["event_id"].as_i64().unwrap() > keep)
        .unwrap();
    let anchor = format!("{}@{}", past["chain_hash"].as_str().unwrap(), past["event_id"]);
    let (code, out) = verify(&mut run, &cut, &["--anchor", &anchor]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("the journal ends at event {keep}")) && out.contains("truncated"),
        "{out}"
    );
    let witness = run.witness.to_str().unwrap().to_owned();
    let (code, out) = verify(&mut run, &cut, &["--anchors", &witness]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn a_tampered_checkpoint_signature_fails_with_the_key() {
    let mut run = signed_run(6);
    let forged = copy(&run, "forged.journal");
    let (id, sig): (i64, String) = rusqlite::Connection::open(&forged)
        .unwrap()
        .query_row(
            "SELECT id, json_extract(payload, '$.signature') FROM events WHERE kind = 'checkpoint' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let flipped = format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]);
    tamper(
        &forged,
        &format!("UPDATE events SET payload = replace(payload, '{sig}', '{flipped}') WHERE id = {id}"),
    );
    rechain(&rusqlite::Connection::open(&forged).unwrap());
    let (code, out) = verify(&mut run, &forged, &[]);
    assert_eq!(code, 1, "a bad signature fails even without --key: {out}");
    let public = run.keys.public_file.to_str().unwrap().to_owned();
    let (code, out) = verify(&mut run, &forged, &["--key", &public]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("checkpoint event {id}")) && out.contains("signature does not verify"),
        "{out}"
    );
    // Another key than the one that signed: every checkpoint is refused.
    let other = run.dir.join("other.pub");
    std::fs::write(&other, hex::encode([9u8; 32])).unwrap();
    let journal = run.journal.clone();
    let (code, out) = verify(&mut run, &journal, &["--key", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not a key given with --key"), "{out}");
}

/// The runbook for the changed-runbook tests: `a`, then manual `b` (where a headless run without
/// --auto-approve stops), then `c`, `d`.
fn staged(before_a: &str, title_c: &str, with_d: bool, after_b: &str) -> String {
    let d = if with_d {
        "      - { id: d, kind: wait, for: 1s }\n"
    } else {
        ""
    };
    format!(
        r#"runbook: staged
version: 1.0.0
environments:
  fno:
    kind: fno
    url: https://contoso.operations.dynamics.com
    auth: {{ tenant: t, client_id: c, client_secret: "${{EVIDENCE_SECRET}}" }}
phases:
  - id: one
    steps:
{before_a}      - {{ id: a, kind: wait, for: 1s }}
      - {{ id: b, kind: manual, title: Sign-off }}
{after_b}      - {{ id: c, kind: wait, for: 1s, title: {title_c} }}
{d}"#
    )
}

/// A run stopped at `b` (headless, no auto-approval: exit 3).
fn stopped_at_b(dir: &Path) {
    std::fs::write(dir.join("old.yaml"), staged("", "Cee", true, "")).unwrap();
    let o = cutover(
        dir,
        &[
            "run",
            "old.yaml",
            "--headless",
            "--sim",
            "--journal",
            "run.journal",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

fn resume(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "resume",
        "run.journal",
        "--headless",
        "--auto-approve",
        "--sim",
        "--runbook",
        "new.yaml",
        "--accept-changed-runbook",
    ];
    args.extend_from_slice(extra);
    cutover(dir, &args, None)
}

fn runbook_changes(journal: &Path) -> Vec<Event> {
    crate::support::auth::journal_events(journal)
        .into_iter()
        .filter(|e| matches!(e, Event::RunbookChanged { .. }))
        .collect()
}

#[test]
fn a_changed_runbook_is_journaled_step_by_step_before_it_is_acted_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stopped_at_b(dir);
    let old = std::fs::read_to_string(dir.join("old.yaml")).unwrap();
    let new = staged(
        "",
        "Cee again",
        false,
        "      - { id: b2, kind: wait, for: 1s }\n",
    );
    std::fs::write(dir.join("new.yaml"), &new).unwrap();
    let o = resume(dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let journal = dir.join("run.journal");
    let changes = runbook_changes(&journal);
    let [
        Event::RunbookChanged {
            old_sha256,
            new_sha256,
            added,
            removed,
            changed,
            accepted_inserted,
            text: journaled,
        },
    ] = changes.as_slice()
    else {
        panic!("one runbook_changed event: {changes:?}");
    };
    assert_eq!(*old_sha256, cutover::util::sha256_hex(&old));
    assert_eq!(*new_sha256, cutover::util::sha256_hex(&new));
    assert_eq!(*journaled, new);
    let ids = |v: &[cutover::model::StepId]| v.iter().map(|s| s.0.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(added), ["b2"]);
    assert_eq!(ids(removed), ["d"]);
    assert_eq!(ids(changed), ["c"]);
    assert!(accepted_inserted.is_empty());
    // Journaled before the first step the new text runs.
    let r = JournalReader::open_read_only(&journal).unwrap();
    let run = r.runs().unwrap().pop().unwrap();
    let kinds: Vec<(String, Option<String>)> = r
        .events(&run.run_id)
        .map(|e| {
            let e = e.unwrap().event;
            let step = match &e {
                Event::StepIntent { step, .. } => Some(step.0.to_string()),
                _ => None,
            };
            (e.kind().to_owned(), step)
        })
        .collect();
    let changed_at = kinds.iter().position(|(k, _)| k == "runbook_changed").unwrap();
    let b2_at = kinds
        .iter()
        .position(|(_, s)| s.as_deref() == Some("b2"))
        .unwrap();
    assert!(changed_at < b2_at, "{kinds:?}");
}

#[test]
fn a_step_inserted_behind_the_position_is_refused_until_accepted_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stopped_at_b(dir);
    let new = staged("      - { id: early, kind: wait, for: 1s }\n", "Cee", true, "");
    std::fs::write(dir.join("new.yaml"), &new).unwrap();
    let o = resume(dir, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("step `early` was added before `b`") && err.contains("--accept-inserted-step early"),
        "{}",
        text(&o)
    );
    let journal = dir.join("run.journal");
    assert!(
        runbook_changes(&journal).is_empty(),
        "nothing journaled for a refused change"
    );
    // Accepting another step does not accept this one.
    let o = resume(dir, &["--accept-inserted-step", "other"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = resume(dir, &["--accept-inserted-step", "early"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let changes = runbook_changes(&journal);
    let [
        Event::RunbookChanged {
            added,
            accepted_inserted,
            ..
        },
    ] = changes.as_slice()
    else {
        panic!("one runbook_changed event: {changes:?}");
    };
    assert_eq!(added.len(), 1);
    assert_eq!(accepted_inserted, added);
    assert_eq!(accepted_inserted[0].as_str(), "early");
}

/// An accepted change is remembered: the next resume with the same text needs no flag and journals nothing
/// new; another change is asked about again.
#[test]
fn an_accepted_runbook_change_is_not_asked_about_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    stopped_at_b(dir);
    std::fs::write(dir.join("new.yaml"), staged("", "Cee again", true, "")).unwrap();
    let resume_at_b = |extra: &[&str]| {
        let mut args = vec![
            "resume",
            "run.journal",
            "--headless",
            "--sim",
            "--runbook",
            "new.yaml",
        ];
        args.extend_from_slice(extra);
        cutover(dir, &args, None)
    };
    // Accepted once: the run goes on and stops at the manual step again.
    let o = resume_at_b(&["--accept-changed-runbook"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The same text again, without the flag: not refused, nothing new journaled.
    let o = resume_at_b(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(runbook_changes(&dir.join("run.journal")).len(), 1);
    // Another change is a change.
    std::fs::write(dir.join("new.yaml"), staged("", "Cee once more", true, "")).unwrap();
    let o = resume_at_b(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--accept-changed-runbook"), "{}", text(&o));
}

/// A run that halts (a failed step, headless) is signed at its last event, not only a run that finishes:
/// the last row of the journal is a `halt` checkpoint of the row before it, the witness has it, and
/// `verify --key --anchors` passes on it.
#[test]
fn a_halted_run_is_checkpointed_at_its_last_event() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("witness")).unwrap();
    let keys = keys(&dir);
    // every: 1000, so no `every` checkpoint lands at the end by chance.
    let rb = runbook(2, true).replace("every: 25", "every: 1000").replace(
        "      - { id: last, kind: wait, for: 1s }\n",
        "      - { id: broken, kind: shell, run: \"exit 3\" }\n      - { id: last, kind: wait, for: 1s }\n",
    );
    std::fs::write(dir.join("rb.yaml"), rb).unwrap();
    let o = cutover(
        &dir,
        &[
            "run",
            "rb.yaml",
            "--headless",
            "--auto-approve",
            "--operator",
            "olive",
            "--sim",
            "--journal",
            "run.journal",
        ],
        Some(&keys),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "the run halts on the failed step: {}",
        text(&o)
    );
    let journal = dir.join("run.journal");
    let reader = JournalReader::open_read_only(&journal).unwrap();
    let run_id = reader.runs().unwrap()[0].run_id.clone();
    let events: Vec<_> = reader.events(&run_id).map(Result::unwrap).collect();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, Event::RunFinished { .. })),
        "the run did not finish"
    );
    let (tip, _) = reader.chain_tip().unwrap();
    let last = events.last().unwrap();
    let Event::Checkpoint { event_id, reason, .. } = &last.event else {
        panic!("the journal's last event is not a checkpoint: {:?}", last.event);
    };
    assert_eq!(reason, "halt");
    assert_eq!(last.id, tip);
    assert_eq!(*event_id, tip - 1, "it signs the event before it");
    let witness = std::fs::read_to_string(dir.join("witness/witness.jsonl")).unwrap();
    let w: serde_json::Value = serde_json::from_str(witness.lines().last().unwrap()).unwrap();
    assert_eq!(w["event_id"].as_i64(), Some(*event_id), "{witness}");
    let o = cutover(
        &dir,
        &[
            "verify",
            "run.journal",
            "--key",
            keys.public_file.to_str().unwrap(),
            "--anchors",
            dir.join("witness/witness.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
