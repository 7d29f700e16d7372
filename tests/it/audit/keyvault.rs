//! Checkpoints signed by an Azure Key Vault key (issue 15): `journal.checkpoints.key_vault` names a
//! `keyvault` environment and a key; the simulator's Key Vault stand-in signs the SHA-256 of each
//! checkpoint message with ES256, on a task of its own, and `cutover verify --key JWK_FILE` checks them
//! with ring. The real engine against the simulator, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use cutover::engine::RunEnd;
use cutover::engine::event::{Event, LogLevel, RunOutcome};
use cutover::engine::runner::{RunOptions, SimTarget, start_engine};
use serde_json::{Value, json};

use crate::support::audit::{cutover, tamper};
use crate::support::engine::{Fixture, assert_no_secret, events, fixture, options};
use crate::support::exec::{SECRET, environments};
use crate::support::rechain::rechain;

const VAULT_URL: &str = "https://contoso-cutover.vault.azure.net";

fn runbook(key: &str) -> String {
    runbook_with(key, "")
}

/// [`runbook`] with `more` (step lines) after the six waits.
fn runbook_with(key: &str, more: &str) -> String {
    let steps: String = (1..=6)
        .map(|i| format!("      - {{ id: w{i}, kind: wait, for: 0s }}\n"))
        .collect::<String>()
        + more;
    format!(
        r#"runbook: kv-checkpoints
version: 1.0.0
journal:
  checkpoints:
    key_vault: {{ environment: vault, key: {key} }}
    every: 3
{}  vault: {{ kind: keyvault, url: {VAULT_URL}, auth: {{ tenant: t-0000, client_id: c-0000, client_secret: "${{TEST_SECRET}}" }} }}
phases:
  - id: one
    steps:
{steps}"#,
        environments(true)
    )
}

fn http() -> reqwest::Client {
    cutover::connectors::net::client().unwrap()
}

async fn sim_get(url: &str) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

async fn sim_post(url: &str, body: Value) {
    let r = http().post(url).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// What an auditor keeps: the key's `GET key` answer (its public JWK), read from the vault.
async fn public_jwk(url: &str, key: &str, to: &Path) {
    let token =
        crate::support::sim::token(&http(), url, "c-0000", SECRET, "https://vault.azure.net/.default").await;
    let r = http()
        .get(format!("{url}/_keyvault/keys/{key}?api-version=7.4"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    std::fs::write(to, r.bytes().await.unwrap()).unwrap();
}

struct Ran {
    end: RunEnd,
    evs: Vec<cutover::engine::Envelope>,
    f: Fixture,
    url: String,
    _sim: cutover::sim::SimHandle,
}

/// A fresh simulator (with `setup` posted to its vault first) and the runbook run to its end.
async fn run(setup: Option<Value>) -> Ran {
    run_with(setup, "", true).await
}

/// [`run`] with more steps, and an operator who approves (or none: a run that reaches a manual step
/// stops there, waiting for a person).
async fn run_with(setup: Option<Value>, more: &str, approve: bool) -> Ran {
    let s = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = s.url();
    if let Some(body) = setup {
        sim_post(&format!("{url}/_sim/keyvault"), body).await;
    }
    let f = fixture(&runbook_with("checkpoint-key", more));
    // Approved by the test operator, or by nobody (headless: a manual step waits for a person).
    let opts = RunOptions {
        interactive: false,
        vars: Arc::new(move |n: &str| (n == "TEST_SECRET").then(|| SECRET.to_owned())),
        ..options(&f, SimTarget::Url(url.clone()), !approve)
    };
    let (handle, _, _) = start_engine(opts).await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(120), handle.done)
        .await
        .expect("the run ends")
        .unwrap();
    let (_, evs) = events(&f.journal);
    Ran {
        end,
        evs,
        f,
        url,
        _sim: s,
    }
}

fn checkpoints(evs: &[cutover::engine::Envelope]) -> Vec<(i64, Option<String>, String)> {
    evs.iter()
        .filter_map(|e| match &e.event {
            Event::Checkpoint {
                event_id,
                alg,
                reason,
                ..
            } => Some((*event_id, alg.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn verify(journal: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify", journal.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = cutover(&args);
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_signed_checkpoints_verify_with_the_keys_jwk_and_name_no_token() {
    let r = run(None).await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded), "{:?}", r.end);
    let made = checkpoints(&r.evs);
    assert!(made.len() >= 3, "every 3 events and at the end: {made:?}");
    assert!(
        made.iter().all(|(_, alg, _)| alg.as_deref() == Some("ES256")),
        "{made:?}"
    );
    // The run's end waited for its last checkpoint: the journal ends with the signed `run_end`.
    assert_eq!(made.last().unwrap().2, "run_end", "{made:?}");
    assert!(matches!(r.evs.last().unwrap().event, Event::Checkpoint { .. }));
    // The public JWK and its fingerprint were journaled once, at the start.
    let keys: Vec<&Event> = r
        .evs
        .iter()
        .filter(|e| matches!(e.event, Event::CheckpointKey { .. }))
        .map(|e| &e.event)
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let Event::CheckpointKey { key_fingerprint, .. } = keys[0] else {
        unreachable!()
    };
    // The auditor's copy of the key, from the vault: verify with it, and with its fingerprint.
    let jwk = r.f.dir.path().join("checkpoint-key.jwk.json");
    public_jwk(&r.url, "checkpoint-key", &jwk).await;
    let (code, out) = verify(&r.f.journal, &["--key", jwk.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("ES256 key {key_fingerprint}")), "{out}");
    assert!(
        out.contains(&format!("{} checkpoint(s) verified", made.len())),
        "{out}"
    );
    assert!(out.contains("trusted ES256 key"), "{out}");
    let (code, out) = verify(&r.f.journal, &["--key", key_fingerprint]);
    assert_eq!(code, 0, "{out}");
    // The report says the same, with the key type.
    let (code, md, err) = cutover(&[
        "report",
        r.f.journal.to_str().unwrap(),
        "--format",
        "md",
        "--key",
        jwk.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("verified with ES256 key"), "{md}");
    // Every bearer token the vault accepted (the run's included) is nowhere in the journal.
    let tokens: Vec<String> = sim_get(&format!("{}/_sim/keyvault", r.url)).await["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(tokens.len() >= 2, "the run's token and the auditor's: {tokens:?}");
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_no_secret(&r.f.journal, &tokens);
    assert_no_secret(&r.f.journal, &[SECRET]);

    // A row rewritten before a signed event (and the chain recomputed) fails against the key.
    let forged = r.f.dir.path().join("forged.journal");
    std::fs::copy(&r.f.journal, &forged).unwrap();
    tamper(
        &forged,
        "UPDATE events SET payload = replace(payload, '\"operator\":\"tester\"', '\"operator\":\"mallory\"') WHERE kind = 'run_started'",
    );
    rechain(&rusqlite::Connection::open(&forged).unwrap());
    let (code, out) = verify(&forged, &[]);
    assert_eq!(code, 1, "the journaled key still checks its signatures: {out}");
    let (code, out) = verify(&forged, &["--key", jwk.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rewritten after it was signed"), "{out}");

    // Another key of the vault is not the one that signed: `--key` with its JWK fails.
    sim_post(
        &format!("{}/_sim/keyvault", r.url),
        json!({"create": "other-key"}),
    )
    .await;
    let other = r.f.dir.path().join("other-key.jwk.json");
    public_jwk(&r.url, "other-key", &other).await;
    let (code, out) = verify(&r.f.journal, &["--key", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no checkpoint in the journal verifies with key"),
        "{out}"
    );
    assert!(out.contains("which is not a key given with --key"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_that_refuses_to_sign_is_a_warning_and_the_run_succeeds() {
    let r = run(Some(json!({"fail_sign": 1_000_000, "fail_status": 403}))).await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded), "{:?}", r.end);
    assert!(checkpoints(&r.evs).is_empty());
    let warned: Vec<&str> = r
        .evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::Log {
                level: LogLevel::Warn,
                message,
            } if message.starts_with("checkpoint signing:") => Some(message.as_str()),
            _ => None,
        })
        .collect();
    // One when it starts failing (not one per try), one for the last checkpoint left unsigned.
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned[0].contains("does not have keys sign permission"),
        "{warned:?}"
    );
    assert!(
        warned[1].contains("did not sign the run's last checkpoint"),
        "{warned:?}"
    );
    // Without a signed checkpoint, `--key` finds nothing to verify.
    let (code, out) = verify(&r.f.journal, &["--key", &format!("sha256:{}", "ab".repeat(32))]);
    assert_eq!(code, 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_that_fails_for_a_while_signs_the_newest_row_once_it_answers() {
    let r = run(Some(json!({"fail_sign": 2, "fail_status": 403}))).await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded), "{:?}", r.end);
    let made = checkpoints(&r.evs);
    assert!(!made.is_empty(), "{made:?}");
    assert_eq!(made.last().unwrap().2, "run_end", "{made:?}");
    let logs: Vec<(LogLevel, &str)> = r
        .evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::Log { level, message } if message.starts_with("checkpoint signing:") => {
                Some((*level, message.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        logs.len(),
        2,
        "a warning, then the info that it signs again: {logs:?}"
    );
    assert_eq!(logs[0].0, LogLevel::Warn);
    assert!(logs[1].1.contains("signs again"), "{logs:?}");
    let (code, out) = verify(&r.f.journal, &[]);
    assert_eq!(code, 0, "{out}");
}

/// A slow vault does not hold the journal up: the rows go on being journaled while it signs, so a
/// checkpoint lands events after the row it signs, and `verify` takes it there. At the end the last
/// row's checkpoint is signed (the backlog before it skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_vault_signs_behind_the_journal_and_the_late_checkpoints_verify() {
    let r = run(Some(json!({"sign_delay_ms": 700}))).await;
    assert_eq!(r.end, RunEnd::Finished(RunOutcome::Succeeded), "{:?}", r.end);
    let late: Vec<(i64, i64)> = r
        .evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::Checkpoint { event_id, .. } => Some((*event_id, e.id)),
            _ => None,
        })
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().any(|(signed, at)| at - signed > 1),
        "a checkpoint landed after later events: {late:?}"
    );
    assert_eq!(checkpoints(&r.evs).last().unwrap().2, "run_end");
    let (code, out) = verify(&r.f.journal, &[]);
    assert_eq!(code, 0, "{out}");
}

/// A run that stops waiting for a person is signed up to its last event by the vault (a `halt`
/// checkpoint, unless that event was due one already), the end waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stops_for_a_person_gets_a_vault_signed_halt_checkpoint_of_its_last_event() {
    let r = run_with(
        None,
        "      - { id: sign-off, kind: manual, title: Sign off }\n",
        false,
    )
    .await;
    assert!(matches!(r.end, RunEnd::Waiting { .. }), "{:?}", r.end);
    let last = r.evs.last().unwrap();
    let Event::Checkpoint {
        event_id,
        reason,
        alg,
        ..
    } = &last.event
    else {
        panic!("the journal ends with {:?}", last.event.kind());
    };
    let tail: Vec<(i64, &str)> = r
        .evs
        .iter()
        .rev()
        .take(8)
        .map(|e| (e.id, e.event.kind()))
        .collect();
    // `halt`, or the checkpoint already asked for when that last event was due one (`every`).
    assert!(["halt", "every"].contains(&reason.as_str()), "{reason} {tail:?}");
    assert_eq!(alg.as_deref(), Some("ES256"));
    let last_fact = r
        .evs
        .iter()
        .rev()
        .find(|e| !matches!(e.event, Event::Checkpoint { .. }))
        .unwrap();
    assert_eq!(*event_id, last_fact.id, "it signs the run's last event: {tail:?}");
    let (code, out) = verify(&r.f.journal, &[]);
    assert_eq!(code, 0, "{out}");
}

/// `validate`: exactly one of `key` and `key_vault`, naming a `keyvault` environment, each mistake on its line.
#[test]
fn validate_names_the_line_of_each_key_vault_mistake() {
    let check = |text: &str| -> Vec<(usize, String)> {
        cutover::runbook::validate(
            text,
            "kv.yaml",
            &|n: &str| (n == "TEST_SECRET").then(|| SECRET.to_owned()),
            false,
        )
        .into_iter()
        .filter(|d| d.severity == cutover::runbook::Severity::Error)
        .map(|d| (d.line as usize, d.message.clone()))
        .collect()
    };
    let good = runbook("checkpoint-key");
    assert!(check(&good).is_empty(), "{:?}", check(&good));
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let wrong_env = good.replace("environment: vault", "environment: fno");
    let d = check(&wrong_env);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].1.contains("not a keyvault one"), "{d:?}");
    assert_eq!(d[0].0, line_of(&wrong_env, "key_vault:"), "{d:?}");
    let both = good.replace("    every: 3", "    key: ${CP_KEY}\n    every: 3");
    let d = check(&both);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].1.contains("not both"), "{d:?}");
    let bad_version = good.replace("key: checkpoint-key }", "key: checkpoint-key, version: v1 }");
    let d = check(&bad_version);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].1.contains("32 hex digits"), "{d:?}");
    let no_url = good.replace(&format!("url: {VAULT_URL}, "), "");
    let d = check(&no_url);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].1.contains("has no `url`"), "{d:?}");
    assert_eq!(d[0].0, line_of(&no_url, "  vault: {"), "{d:?}");
}

/// A key the vault does not have stops the run before it starts (invalid input), naming the key and the
/// vault's own error; without a token the vault answers 401 with its challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_vault_key_stops_the_run_before_it_starts_and_no_token_is_challenged() {
    let s = cutover::sim::start(cutover::sim::Scenario::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = s.url();
    let r = http()
        .get(format!("{url}/_keyvault/keys/checkpoint-key?api-version=7.4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        www.starts_with("Bearer authorization=\"https://login.microsoftonline.com/")
            && www.contains("resource=\"https://vault.azure.net\""),
        "{www}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized", "{body}");

    let f = fixture(&runbook("no-such-key"));
    let opts = RunOptions {
        interactive: false,
        vars: Arc::new(move |n: &str| (n == "TEST_SECRET").then(|| SECRET.to_owned())),
        ..options(&f, SimTarget::Url(url.clone()), true)
    };
    let Err(e) = start_engine(opts).await else {
        panic!("the run started without its checkpoint key");
    };
    let e = e.to_string();
    assert!(
        e.contains("journal.checkpoints.key_vault: key `no-such-key` of environment `vault`")
            && e.contains("was not found in this key vault"),
        "{e}"
    );
    assert!(!e.contains(SECRET), "{e}");
}
