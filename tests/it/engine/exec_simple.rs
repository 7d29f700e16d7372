//! Executors of the kinds that need no dual-write: manual, wait, shell, http, notify; the handle and reconcile
//! tables; and a journal that never holds the client secret or a token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::exec as exec_support;

use cutover::engine::event::{DecisionKind, Event, LogLevel};
use cutover::engine::exec::{self, Mode, Reconcile};
use exec_support::{SECRET, assert_ok, environments, failure, start};

fn runbook() -> String {
    format!(
        r#"runbook: exec-simple
version: 1.0.0
{}
maps:
  customers: {{ source: fno:CustomersV3, target: dataverse:accounts, companies: [USMF, USRT, DEMF] }}
phases:
  - id: p
    steps:
      - id: approve
        kind: manual
        title: Freeze
        instructions: Tell everyone
        checklist: [Finance, Sales]
      - id: pause-10m
        kind: wait
        for: 10m
      - id: ok-cmd
        kind: shell
        run: echo hello "$CUTOVER_RUN_ID" $CUTOVER_X
        env: {{ CUTOVER_X: from-env }}
      - id: bad-cmd
        kind: shell
        run: "echo first; echo boom >&2; exit 3"
      - id: clock
        kind: http
        url: ${{SIM_URL}}/_sim/clock
        capture: {{ scale: /time_scale }}
      - id: whoami
        kind: http
        env: dataverse
        path: /api/data/v9.2/WhoAmI
        expect: {{ status: 200 }}
        capture: {{ user: /UserId }}
      - id: whoami-url
        kind: http
        env: dataverse
        url: https://contoso-demo.crm.dynamics.com/api/data/v9.2/WhoAmI
        capture: {{ user: /UserId }}
      - id: wrong-status
        kind: http
        env: dataverse
        path: /api/data/v9.2/WhoAmI
        expect: {{ status: 201 }}
      - id: post-hook
        kind: http
        method: POST
        url: ${{HOOK_URL}}
        body: {{ text: "run ${{run.id}}" }}
      - id: tell
        kind: notify
        url: ${{HOOK_URL}}
        text: Run ${{run.id}} started by ${{steps.whoami.user}}
"#,
        environments(false)
    )
}

#[tokio::test]
async fn manual_wait_shell_http_notify() {
    let h = start(None, &runbook()).await;

    let r = h.run("approve").await;
    assert_ok(&r);
    let asks = h.operator.asks.lock().unwrap().clone();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].kind, DecisionKind::ApproveManual);
    assert!(asks[0].prompt.contains("Freeze") && asks[0].prompt.contains("Tell everyone"));
    assert_eq!(asks[0].checklist, vec!["Finance".to_owned(), "Sales".to_owned()]);
    h.operator
        .answers
        .lock()
        .unwrap()
        .push_back(cutover::engine::event::OperatorAction::Skip);
    let skipped = h.run_mode("approve", 2, Mode::Fresh).await;
    assert!(matches!(
        skipped.outcome,
        cutover::engine::event::StepOutcome::Skipped { .. }
    ));

    // 10 environment minutes at the demo's 600x: about a real second.
    let t = std::time::Instant::now();
    assert_ok(&h.run("pause-10m").await);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    assert_ok(&h.run("ok-cmd").await);
    let msg = failure(&h.run("bad-cmd").await);
    assert!(
        msg.contains("exited 3") && msg.contains("boom") && msg.contains("first"),
        "{msg}"
    );

    let r = h.run("clock").await;
    assert_ok(&r);
    assert_eq!(r.outputs["scale"].parse::<f64>().unwrap(), 600.0);
    let r = h.run("whoami").await;
    assert_ok(&r);
    assert!(!r.outputs["user"].is_empty());
    let r = h.run("whoami-url").await;
    assert_ok(&r);
    assert!(!r.outputs["user"].is_empty());
    let msg = failure(&h.run("wrong-status").await);
    assert!(msg.contains("201"), "{msg}");
    assert_ok(&h.run("post-hook").await);

    assert_ok(&h.run("tell").await);
    assert_ok(&h.run_mode("tell", 1, Mode::Reconcile).await);
    assert_eq!(h.sim.state()["webhooks"], 3);

    let events = h.events().await;
    let logs: Vec<&String> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Log { level, message } => Some((level, message)),
            _ => None,
        })
        .filter(|(l, _)| **l != LogLevel::Debug)
        .map(|(_, m)| m)
        .collect();
    assert!(
        logs.iter().any(|m| m.contains("hello run-0001 from-env")),
        "{logs:?}"
    );
    let whoami_requests = events
        .iter()
        .filter(|e| {
            matches!(&e.event, Event::Request { step: Some(s), env, .. }
            if s.as_str() == "whoami" && env == "dataverse")
        })
        .count();
    assert!(whoami_requests >= 1, "requests are attributed to their step");

    // The secret and every token the run obtained never reach the journal file.
    h.journal.writer().flush().await.unwrap();
    let bytes = std::fs::read(&h.journal_path).unwrap();
    let wal = std::fs::read(h.journal_path.with_extension("journal-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        let text = String::from_utf8_lossy(b);
        assert!(!text.contains(SECRET), "the client secret reached the journal");
        assert!(!text.contains("sim."), "a token reached the journal");
    }
}

#[tokio::test]
async fn handles_and_reconcile_policies() {
    let rb = format!(
        r#"runbook: exec-handles
version: 1.0.0
{}
maps:
  customers: {{ source: fno:CustomersV3, target: dataverse:accounts, key: {{ source: CustomerAccount, target: accountnumber }} }}
phases:
  - id: p
    steps:
      - {{ id: imp, kind: dmf.import, env: fno, definition_group: G, package_file: packages/reference-data.zip }}
      - {{ id: exp, kind: dmf.export, env: fno, definition_group: G }}
      - {{ id: canary, kind: roundtrip, map: customers, from: fno }}
      - {{ id: live, kind: dualwrite.run, maps: all, initial_sync: false }}
      - {{ id: count, kind: parity, maps: all }}
      - {{ id: cmd, kind: shell, run: "true" }}
      - {{ id: get, kind: http, env: fno, path: /data/Companies }}
      - {{ id: post, kind: http, env: fno, method: POST, path: /data/Companies }}
      - {{ id: hook, kind: notify, url: "https://example.com/x", text: hi }}
  - id: sync
    gate: {{ parity: true }}
    waves:
      - {{ id: w1, maps: [customers] }}
"#,
        environments(false)
    );
    let loaded = cutover::runbook::load(&rb, "t.yaml");
    let plan = cutover::runbook::plan::plan(&loaded.runbook.unwrap());
    let run = cutover::engine::RunId("r".into());
    let get = |id: &str| plan.steps.iter().find(|s| s.id.as_str() == id).unwrap();
    let kind = |id: &str| exec::handle_for(get(id), &run, 1).map(|h| h.kind);
    assert_eq!(kind("imp").as_deref(), Some("dmf.import"));
    assert_eq!(kind("exp").as_deref(), Some("dmf.export"));
    assert_eq!(kind("canary").as_deref(), Some("canary"));
    assert_eq!(kind("live").as_deref(), Some("dualwrite.request"));
    assert_eq!(kind("w1:customers").as_deref(), Some("dualwrite.request"));
    assert_eq!(kind("count"), None);
    assert_eq!(kind("w1:gate"), None);
    assert_eq!(
        exec::handle_for(get("imp"), &run, 1),
        exec::handle_for(get("imp"), &run, 1)
    );
    assert_ne!(
        exec::handle_for(get("imp"), &run, 1),
        exec::handle_for(get("imp"), &run, 2)
    );
    let p = |id: &str| exec::reconcile_policy(get(id));
    assert_eq!(p("imp"), Reconcile::ByHandle);
    assert_eq!(p("canary"), Reconcile::ByHandle);
    assert_eq!(p("w1:customers"), Reconcile::ByHandle);
    assert_eq!(p("hook"), Reconcile::ByHandle);
    assert_eq!(p("count"), Reconcile::Rerun);
    assert_eq!(p("w1:gate"), Reconcile::Rerun);
    assert_eq!(p("get"), Reconcile::Rerun);
    assert_eq!(p("post"), Reconcile::AskOperator);
    assert_eq!(p("cmd"), Reconcile::AskOperator);
}

#[tokio::test]
async fn environments_refuse_unset_secrets_and_the_wrong_kind() {
    use cutover::engine::ctx::Emitter;
    use cutover::engine::envs::{Envs, EnvsError, Target};
    let rb = cutover::runbook::load(&runbook(), "t.yaml").runbook.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let redactor = cutover::journal::Redactor::new();
    let journal = cutover::journal::Journal::create(dir.path().join("j"), redactor.clone()).unwrap();
    let emit = Emitter::new(journal.writer(), cutover::engine::RunId("r".into()));
    let target = Target::Sim {
        url: "http://127.0.0.1:9".into(),
    };
    let none = |_: &str| None;
    match Envs::build(&rb, &none, &target, &redactor, &emit) {
        Err(EnvsError::Invalid { env, message }) => {
            assert_eq!(env, "dataverse");
            assert!(message.contains("TEST_SECRET"), "{message}");
        }
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
    let vars = |n: &str| (n == "TEST_SECRET").then(|| SECRET.to_owned());
    let envs = Envs::build(&rb, &vars, &target, &redactor, &emit).unwrap();
    assert!(envs.fno("fno").is_ok() && envs.dataverse("dataverse").is_ok());
    assert!(envs.gateway("dualwrite").is_ok());
    let e = envs.fno("dataverse").unwrap_err().to_string();
    assert!(e.contains("dataverse") && e.contains("not fno"), "{e}");
    assert!(envs.transport("nope").is_err());
    assert_eq!(
        envs.transport("fno")
            .unwrap()
            .token_source()
            .unwrap()
            .credentials()
            .scope,
        "https://contoso-demo.operations.dynamics.com/.default"
    );
    assert_eq!(
        envs.transport("fno").unwrap().base_url().as_str(),
        "http://127.0.0.1:9/"
    );
    assert_eq!(
        redactor.redact_str(&format!("x {SECRET} y")).as_deref(),
        Some("x [REDACTED] y")
    );
}

#[tokio::test]
async fn wait_until_uses_the_environments_clock_and_http_polls() {
    let rb = format!(
        r#"runbook: exec-wait
version: 1.0.0
{}
phases:
  - id: p
    steps:
      - {{ id: until, kind: wait, until: "2026-11-27T18:20:00Z" }}
      - id: poll
        kind: http
        url: ${{SIM_URL}}/_sim/clock
        poll: {{ every: 10s, until: {{ pointer: /time_scale, equals: 600.0 }} }}
        capture: {{ now: /sim_now }}
      - id: poll-fail
        kind: http
        url: ${{SIM_URL}}/_sim/clock
        poll: {{ every: 10s, until: {{ pointer: /x, equals: 1 }}, fail_if: {{ pointer: /time_scale, equals: 600.0 }} }}
"#,
        environments(false)
    );
    let h = start(None, &rb).await;
    // The demo's clock starts at 18:00 and runs 600x: 20 minutes are about two real seconds.
    let t = std::time::Instant::now();
    assert_ok(&h.run("until").await);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let r = h.run("poll").await;
    assert_ok(&r);
    assert!(r.outputs["now"].starts_with("2026-11-27T18:2"), "{:?}", r.outputs);
    let msg = failure(&h.run("poll-fail").await);
    assert!(msg.contains("fail_if"), "{msg}");
}
