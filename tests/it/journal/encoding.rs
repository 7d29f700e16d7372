//! The journal's fast encoding and decoding paths give exactly what the plain serde_json paths
//! give: canonical JSON written straight from an event equals the canonical JSON of its
//! `serde_json::Value`, and a payload decoded through the kind-first path equals (and fails like)
//! `serde_json::from_str::<Event>`. Both hash-chain bytes and replayed state depend on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::journal as support;

use std::collections::BTreeMap;

use cutover::engine::Event;
use cutover::engine::event::{
    FreezeWindow, Handle, OperatorAction, RunOutcome, Severity, StepOutcome, Tolerance,
};
use cutover::journal::canon::to_canonical_json;
use cutover::journal::chain::canonical_json;
use cutover::journal::decode::decode_event;
use support::{Gen, run_started, t0};

/// A signed-in identity as decisions carry it (`groups` is never journaled).
fn identity(upn: &str) -> cutover::model::Identity {
    cutover::model::Identity {
        oid: "0b0b0000-0000-4000-8000-00000000bbbb".into(),
        upn: Some(upn.into()),
        tid: "11111111-2222-4333-8444-555555555555".into(),
        name: Some("N \"q\"".into()),
        groups: vec![],
    }
}

fn extra_events() -> Vec<Event> {
    let mut started = run_started("r\"1\n", 3);
    if let Event::RunStarted {
        freeze_window,
        maps,
        time_scale,
        ..
    } = &mut started
    {
        *freeze_window = Some(FreezeWindow {
            start: t0(),
            end: t0(),
        });
        maps[0].tolerance = Tolerance::Percent(0.1);
        *time_scale = 60.0;
    }
    vec![
        started,
        run_started("plain", 0),
        Event::RunResumed {
            operator: "bob".into(),
            host: "h\u{1}é".into(),
            accepted_changed_runbook: true,
        },
        Event::StepFinished {
            step: "s".into(),
            outcome: StepOutcome::Skipped { reason: "why".into() },
            outputs: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        },
        Event::StepIntent {
            step: "s".into(),
            attempt: 2,
            handle: Some(Handle {
                kind: "dmf.import".into(),
                id: "x".into(),
            }),
        },
        Event::Alert {
            severity: Severity::Critical,
            message: "m".into(),
            map: None,
            subject: Some(cutover::model::event::AlertSubject {
                kind: "drift".into(),
                company: Some("usmf".into()),
                facts: vec![("Map".into(), "customers".into())],
                clear: true,
            }),
        },
        Event::InstallRecord {
            step: "i".into(),
            package: "p".into(),
            version: "1".into(),
            sha256: "ab".into(),
            execution_id: "e".into(),
            result: "Succeeded".into(),
            environment: "fno@uat.example.com".into(),
            record_count: Some(3),
        },
        Event::PackageDownloaded {
            step: "x".into(),
            execution_id: "e".into(),
            package: "Friday".into(),
            file: "evidence/r/x-Friday.zip".into(),
            sha256: "cd".into(),
            bytes: 22,
        },
        Event::InstallRecordWrite {
            step: "i".into(),
            execution_id: "e".into(),
            target: "dataverse:cutover_packageinstall".into(),
            status: "failed".into(),
            detail: "404".into(),
        },
        Event::LeaseTakenOver {
            previous_holder: "a".into(),
            previous_host: "b".into(),
            previous_pid: 1,
            previous_heartbeat_at: t0(),
            holder: "c".into(),
            host: "d".into(),
            pid: 2,
        },
        Event::OperatorDecision {
            step: None,
            action: OperatorAction::TakeOverLease,
            operator: "o".into(),
            reason: None,
            checklist_done: vec!["x".into(), "y".into()],
            identity: None,
        },
        Event::OperatorDecision {
            step: Some("go-live".into()),
            action: OperatorAction::Confirm,
            operator: "tess".into(),
            reason: None,
            checklist_done: vec![],
            identity: Some(identity("lead@contoso.com")),
        },
        Event::ApprovalRefused {
            step: Some("go-live".into()),
            action: OperatorAction::Waive,
            operator: "eve".into(),
            identity: Some(identity("eve@contoso.com")),
            reason: "eve@contoso.com (oid o, tenant t) is not among the runbook's approvers".into(),
        },
        Event::ApprovalRefused {
            step: None,
            action: OperatorAction::Confirm,
            operator: "x".into(),
            identity: None,
            reason: "the runbook requires a signed-in identity".into(),
        },
        Event::RunFinished {
            outcome: RunOutcome::Failed {
                message: "boom".into(),
            },
        },
        Event::RunFinished {
            outcome: RunOutcome::Succeeded,
        },
    ]
}

fn all_events() -> Vec<Event> {
    let mut evs = extra_events();
    let mut g = Gen::new(11, 20);
    evs.extend((0..5_000).map(|_| g.next_event()));
    let mut g = Gen::new(12, 7);
    g.secret = Some("sh\"h-secret-value".into());
    evs.extend((0..2_000).map(|_| g.next_event()));
    evs
}

#[test]
fn canonical_writer_equals_the_value_path_for_every_kind() {
    let mut kinds = std::collections::BTreeSet::new();
    for e in all_events() {
        let slow = canonical_json(&serde_json::to_value(&e).unwrap());
        assert_eq!(to_canonical_json(&e).unwrap(), slow, "{e:?}");
        kinds.insert(e.kind());
    }
    assert_eq!(kinds.len(), 20, "every event kind is covered: {kinds:?}");
}

#[test]
fn kind_first_decoding_equals_the_plain_decode() {
    for e in all_events() {
        let payload = canonical_json(&serde_json::to_value(&e).unwrap());
        let fast = decode_event(e.kind(), &payload).unwrap();
        assert_eq!(fast, serde_json::from_str::<Event>(&payload).unwrap());
        assert_eq!(fast, e);
    }
}

#[test]
fn odd_payloads_decode_or_fail_exactly_like_the_plain_decode() {
    let cases = [
        r#"{"kind":"log","level":"info","message":"m"}"#,
        r#"{"kind":"alert","level":"info","message":"m"}"#,
        r#"{"kind":"l\u006fg","level":"info","message":"m"}"#,
        r#"["log","info","m"]"#,
        r#"{"level":"info","message":"m","kind":"log"}"#,
        r#"{"kind":"log","level":"info","message":"m","extra":[1,{"kind":"x"}]}"#,
        r#"{"kind":"run_finished","outcome":{"status":"succeeded"}}"#,
        r#"{"kind":"nope","message":"m"}"#,
        r#"{"kind":"log","kind":"alert","level":"info","message":"m"}"#,
        r#"{"kind":"log","level":"info"}"#,
        r#"{"kind":5}"#,
        r#"{"level":"info","message":"m"}"#,
        r#"{"kind":"log","level":"info","message":"m"} trailing"#,
        r#"[1,2]"#,
        "",
    ];
    for p in cases {
        // The row's kind column may agree with the payload, disagree, or be unknown.
        for kind in ["log", "alert", "run_finished", ""] {
            let plain = serde_json::from_str::<Event>(p);
            match decode_event(kind, p) {
                Ok(e) => assert_eq!(Some(e), plain.ok(), "{kind} {p}"),
                Err(e) => assert_eq!(e.to_string(), plain.unwrap_err().to_string(), "{kind} {p}"),
            }
        }
    }
}
