//! No secret reaches the journal file: the raw bytes of the database, its -wal and -shm are
//! scanned for every secret value of the run and for bearer tokens, while the writer is still open
//! (WAL not yet checkpointed) and after it closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;

use std::path::Path;

use cutover::engine::event::LogLevel;
use cutover::engine::{Event, RunState};
use cutover::journal::{Journal, JournalReader, Redactor};
use support::{Gen, run_id, run_started};

const CLIENT_SECRET: &str = "Zq8~cl1ent.S3cret-value_4Xy";
/// A token the run obtains after it started (added to the redactor at run time).
const RUNTIME_TOKEN: &str = "AccessTok3n-obtained-mid-run-91f2";
const JWT: &str =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2Zvby5jcm0uZHluYW1pY3MuY29tIn0.sIgNaTuRe_-x";

fn scan(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{} in {}", n, p.display()));
            }
        }
    }
    found
}

#[tokio::test]
async fn secrets_and_bearer_tokens_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let redactor = Redactor::with_secrets([CLIENT_SECRET]);
    let journal = Journal::open(&path, redactor.clone()).unwrap();
    let w = journal.writer();
    let r = run_id("r");
    let mut live = RunState::default();
    live.apply(&w.append(r.clone(), run_started("r", 3)).await.unwrap());
    let mut g = Gen::new(3, 3);
    g.secret = Some(CLIENT_SECRET.into());
    for i in 0..2_000 {
        let e = g.next_event();
        if i % 10 == 0 {
            live.apply(&w.append(r.clone(), e).await.unwrap());
        } else {
            w.append_batched(r.clone(), e).unwrap();
        }
    }
    redactor.add_secret(RUNTIME_TOKEN);
    let leaky = [
        format!("token refreshed: {RUNTIME_TOKEN}"),
        format!("401 with header Authorization: Bearer {JWT}"),
        format!("raw jwt {JWT} in a message"),
        format!("lowercase bearer {RUNTIME_TOKEN}x"),
    ];
    for m in &leaky {
        let env = w
            .append(
                r.clone(),
                Event::Log {
                    level: LogLevel::Warn,
                    message: m.clone(),
                },
            )
            .await
            .unwrap();
        let Event::Log { message, .. } = &env.event else {
            panic!("not a log")
        };
        assert!(
            message.contains("[REDACTED]"),
            "returned envelope is redacted: {message}"
        );
        live.apply(&env);
    }
    let outputs = std::collections::BTreeMap::from([(
        format!("key-{CLIENT_SECRET}"),
        format!("Bearer {RUNTIME_TOKEN}"),
    )]);
    w.append(
        r.clone(),
        Event::StepFinished {
            step: "approve".into(),
            outcome: cutover::engine::event::StepOutcome::Succeeded,
            outputs,
        },
    )
    .await
    .unwrap();
    w.flush().await.unwrap();

    let needles = [
        CLIENT_SECRET,
        RUNTIME_TOKEN,
        JWT,
        "Bearer tok.",
        "bearer AccessTok3n",
    ];
    assert!(
        dir.path().join("j.journal-wal").exists(),
        "the scan must cover an unchecked-pointed WAL"
    );
    assert_eq!(scan(dir.path(), &needles), Vec::<String>::new());
    // The journal did record the events, with the secrets masked.
    let reader = JournalReader::open_read_only(&path).unwrap();
    let redacted = reader
        .events(&r)
        .map(Result::unwrap)
        .filter(|e| format!("{:?}", e.event).contains("[REDACTED]"))
        .count();
    assert!(redacted > 100, "only {redacted} events carried a masked secret");
    assert!(!format!("{live:?}").contains(CLIENT_SECRET));
    drop(reader);
    journal.close().unwrap();
    assert_eq!(scan(dir.path(), &needles), Vec::<String>::new());
}

/// A secret with characters that change under encoding, and a short one: every form of each is masked.
#[tokio::test]
async fn encoded_and_short_secrets_never_reach_the_file() {
    use base64::Engine as _;
    const SPECIAL: &str = "p@ss w/rd+\"q\"&x=1%";
    const SHORT: &str = "Pw7!";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.journal");
    let redactor = Redactor::with_secrets([SPECIAL, SHORT]);
    let journal = Journal::open(&path, redactor).unwrap();
    let w = journal.writer();
    let r = run_id("r");
    w.append(r.clone(), run_started("r", 1)).await.unwrap();
    let form = "p%40ss+w%2Frd%2B%22q%22%26x%3D1%25";
    let query = "p%40ss%20w%2frd%2b%22q%22%26x%3d1%25";
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("cutover-app:{SPECIAL}"));
    let b64_alone = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SPECIAL);
    let messages = [
        format!("Entra said: invalid request grant_type=client_credentials&client_secret={form}&scope=x"),
        format!("echoed query ?secret={query}"),
        format!("Authorization: Basic {b64}"),
        format!("blob {b64_alone} end"),
        format!("short one {SHORT} here"),
    ];
    for m in &messages {
        w.append(
            r.clone(),
            Event::Log {
                level: LogLevel::Error,
                message: m.clone(),
            },
        )
        .await
        .unwrap();
    }
    // The JSON-escaped form: the payload is JSON, so the secret's quote is stored escaped.
    w.append(
        r.clone(),
        Event::Log {
            level: LogLevel::Error,
            message: format!("body {{\"error\":\"{}\"}}", SPECIAL.replace('"', "\\\"")),
        },
    )
    .await
    .unwrap();
    w.flush().await.unwrap();
    journal.close().unwrap();
    let inner_b64 = &b64[16..b64.len() - 4];
    let needles = [
        form,
        query,
        inner_b64,
        b64_alone.as_str(),
        SHORT,
        "w/rd+",
        "w%2Frd",
        "w%2frd",
    ];
    assert_eq!(scan(dir.path(), &needles), Vec::<String>::new());
}
