//! The fault matrix's runbook, cases and checks (see `tests/fault_matrix.rs`).
//!
//! One small but real runbook: a DMF export and a DMF import (handle side effects and status polls on
//! F&O and the blob store), an initial sync of two maps through the dual-write gateway, and a parity
//! count on both sides (reads on F&O and Dataverse), every call behind an Entra ID token.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use cutover::engine::event::{Event, StepOutcome};
use cutover::engine::{Envelope, RunEnd};
use serde_json::{Value, json};

/// Where the runbook's environments point and how patient it is.
pub struct Shape {
    pub fno_url: String,
    pub dv_url: String,
    pub dw_url: String,
    /// `authority: ...` line (empty: the default; in `--sim` mode the simulator anyway).
    pub authority: String,
    /// `defaults.timeout`: the per-attempt HTTP timeout (steps carry their own 30m timeouts).
    pub timeout: &'static str,
    pub retries: u32,
    pub poll: &'static str,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            fno_url: "https://contoso-demo.operations.dynamics.com".into(),
            dv_url: "https://contoso-demo.crm.dynamics.com".into(),
            dw_url: "https://contoso-demo.dualwrite.dynamics.com".into(),
            authority: String::new(),
            timeout: "3s",
            retries: 3,
            poll: "10s",
        }
    }
}

pub fn runbook(s: &Shape) -> String {
    let auth = |id: &str| {
        format!(
            "{{ {}tenant: t-matrix, client_id: {id}, client_secret: \"${{DEMO_CLIENT_SECRET}}\" }}",
            s.authority
        )
    };
    format!(
        r#"runbook: fault-matrix
version: 1.0.0
defaults: {{ timeout: {timeout}, retries: {retries}, poll: {poll} }}
environments:
  fno:
    kind: fno
    url: {fno}
    auth: {a_fno}
  dataverse:
    kind: dataverse
    url: {dv}
    auth: {a_dv}
  dualwrite:
    kind: dualwrite
    link: [fno, dataverse]
    mode: gateway
    url: {dw}
    auth: {a_dw}
maps:
  companies: {{ source: fno:Companies, target: dataverse:cdm_companies, master: fno }}
  currencies: {{ source: fno:Currencies, target: dataverse:transactioncurrencies, master: fno }}
phases:
  - id: load
    steps:
      - {{ id: export-snapshot, kind: dmf.export, env: fno, definition_group: CutoverSnapshot, package: "Snapshot-${{run.date}}", timeout: 30m }}
      - id: import-reference-data
        kind: dmf.import
        env: fno
        definition_group: CutoverReferenceData
        package_file: packages/reference-data.zip
        package_version: 1.0.0
        legal_entity: USMF
        overwrite: true
        timeout: 30m
  - id: sync
    steps:
      - {{ id: sync-reference, kind: dualwrite.run, maps: [companies, currencies], timeout: 30m }}
      - {{ id: count, kind: parity, maps: [companies, currencies], timeout: 30m }}
"#,
        timeout = s.timeout,
        retries = s.retries,
        poll = s.poll,
        fno = s.fno_url,
        dv = s.dv_url,
        dw = s.dw_url,
        a_fno = auth("c-fno"),
        a_dv = auth("c-dv"),
        a_dw = auth("c-dw"),
    )
}

/// What a case's faulted run must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Finish,
    Halt,
    Either,
}

/// One line of the matrix.
pub struct Case {
    pub name: &'static str,
    /// The `/_sim/faults` rules while the fault lasts.
    pub faults: Value,
    pub expect: Expect,
    /// A halt's message must name this environment (and a call after it).
    pub env: &'static str,
    /// ... and contain this text.
    pub text: &'static str,
}

/// The quick pass (`full`: longer storms and heavier rates).
pub fn cases(full: bool) -> Vec<Case> {
    let heavy = |quick: f64| if full { (quick * 2.0).min(1.0) } else { quick };
    vec![
        Case {
            name: "429-storm-retry-after",
            faults: json!([{"service": "fno", "throttle_every": if full { 2 } else { 3 }, "retry_after": 1}]),
            expect: Expect::Finish,
            env: "fno",
            text: "429",
        },
        Case {
            // F&O's documented fallback without Retry-After is 30 s: the quick pass storms the
            // services that back off instead; the full pass storms F&O too.
            name: "429-storm-no-retry-after",
            faults: if full {
                json!([{"throttle_every": 2, "retry_after_header": false}])
            } else {
                json!([
                    {"service": "dataverse", "throttle_every": 2, "retry_after_header": false},
                    {"service": "dualwrite", "throttle_every": 2, "retry_after_header": false}
                ])
            },
            // F&O's 30 s waits can outlast a step's real-time budget: halting then is right too.
            expect: if full { Expect::Either } else { Expect::Finish },
            env: "",
            text: "429",
        },
        Case {
            name: "5xx-burst",
            faults: json!([{"server_error_rate": heavy(0.25)}]),
            expect: Expect::Either,
            env: "",
            text: "HTTP 5",
        },
        Case {
            name: "connection-resets",
            faults: json!([{"reset_rate": heavy(0.25)}]),
            expect: Expect::Either,
            env: "",
            text: "",
        },
        Case {
            name: "timeouts",
            faults: json!([{"service": "fno", "path_prefix": "/data/DataManagementDefinitionGroups", "slow_rate": 1.0, "slow_chunk_ms": 1500}]),
            expect: Expect::Halt,
            env: "fno",
            text: "timed out",
        },
        Case {
            name: "slow-trickle",
            faults: json!([{"slow_rate": heavy(0.5), "slow_chunk_ms": 5}]),
            expect: Expect::Finish,
            env: "",
            text: "",
        },
        Case {
            name: "truncated-json-intermittent",
            faults: json!([{"truncated_rate": heavy(0.3)}]),
            expect: Expect::Either,
            env: "",
            text: "invalid JSON",
        },
        Case {
            name: "truncated-json",
            faults: json!([{"service": "fno", "path_prefix": "/data/DataManagementDefinitionGroups", "truncated_rate": 1.0}]),
            expect: Expect::Halt,
            env: "fno",
            text: "invalid JSON",
        },
        Case {
            name: "malformed-json",
            faults: json!([{"service": "dataverse", "malformed_rate": 1.0}]),
            expect: Expect::Halt,
            env: "dataverse",
            text: "invalid JSON",
        },
        Case {
            name: "html-sign-in-page",
            faults: json!([{"service": "dualwrite", "html_signin_rate": 1.0}]),
            expect: Expect::Halt,
            env: "dualwrite",
            text: "sign-in page",
        },
        Case {
            name: "401-token-expiry",
            faults: json!([{"unauthorized_rate": heavy(0.3)}]),
            expect: Expect::Either,
            env: "",
            text: "authentication failed",
        },
        Case {
            name: "wrong-audience",
            faults: json!([]),
            expect: Expect::Halt,
            env: "fno",
            text: "authentication failed",
        },
        Case {
            name: "connection-refused",
            faults: json!([]),
            expect: Expect::Halt,
            env: "fno",
            text: "refused",
        },
    ]
}

pub fn side_effects(state: &Value) -> Vec<(String, u64)> {
    state["side_effects"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn intents(evs: &[Envelope]) -> Vec<(String, String, String)> {
    evs.iter()
        .filter_map(|e| match &e.event {
            Event::StepIntent {
                step,
                handle: Some(h),
                ..
            } => Some((step.as_str().to_owned(), h.kind.clone(), h.id.clone())),
            _ => None,
        })
        .collect()
}

/// Every operation the simulator executed has its intent (step and handle) in the journal.
pub fn every_effect_journaled(evs: &[Envelope], state: &Value) -> Result<(), String> {
    let intents = intents(evs);
    for (key, _) in side_effects(state) {
        let ok = match key.split_once(':') {
            Some((k @ ("dmf.import" | "dmf.export"), id)) => {
                intents.iter().any(|(_, kind, h)| kind == k && h == id)
            }
            Some((k, _)) if k.starts_with("dualwrite.") => {
                intents.iter().any(|(_, kind, _)| kind.starts_with("dualwrite."))
            }
            Some(("canary.create" | "canary.delete", id)) => {
                intents.iter().any(|(_, kind, h)| kind == "canary" && h == id)
            }
            _ => true,
        };
        if !ok {
            return Err(format!(
                "{key} was executed but no intent for it is in the journal"
            ));
        }
    }
    Ok(())
}

/// No step is journaled as succeeded whose external operation did not happen.
pub fn no_false_success(evs: &[Envelope], state: &Value) -> Result<(), String> {
    let intents = intents(evs);
    let effects = side_effects(state);
    for e in evs {
        let Event::StepFinished {
            step,
            outcome: StepOutcome::Succeeded,
            ..
        } = &e.event
        else {
            continue;
        };
        let Some((_, kind, id)) = intents.iter().rev().find(|(s, _, _)| s == step.as_str()) else {
            continue;
        };
        if kind.starts_with("dmf.") {
            let key = format!("{kind}:{id}");
            if !effects.iter().any(|(k, n)| *k == key && *n >= 1) {
                return Err(format!(
                    "{step} is journaled as succeeded but the simulator never ran {key}"
                ));
            }
        }
    }
    Ok(())
}

/// Every operation of the run executed exactly once: one export, one import, one initial sync per map.
pub fn ops_once(state: &Value) -> Result<(), String> {
    let effects = side_effects(state);
    for (k, n) in &effects {
        if *n != 1 {
            return Err(format!("{k} ran {n} times"));
        }
    }
    let keys = |p: &str| effects.iter().filter(|(k, _)| k.starts_with(p)).count();
    let want = [
        ("dmf.export:", 1),
        ("dmf.import:", 1),
        ("dualwrite.initial_sync:", 2),
    ];
    for (p, n) in want {
        if keys(p) != n {
            return Err(format!("{} {p} operations, expected {n}: {effects:?}", keys(p)));
        }
    }
    Ok(())
}

/// A halt's message names the environment and a call after it (`env: call: ...`) and says `text`.
pub fn clear_message(message: &str, env: &str, text: &str) -> Result<(), String> {
    if !env.is_empty() {
        let at = message
            .find(&format!("{env}: "))
            .ok_or_else(|| format!("the message does not name `{env}`: {message}"))?;
        if !message[at + env.len() + 2..].contains(": ") {
            return Err(format!("the message names no call after `{env}`: {message}"));
        }
    } else if !["fno: ", "dataverse: ", "dualwrite: "]
        .iter()
        .any(|e| message.contains(e))
    {
        return Err(format!("the message names no environment: {message}"));
    }
    if !text.is_empty() && !message.contains(text) {
        return Err(format!("the message does not say `{text}`: {message}"));
    }
    Ok(())
}

/// `finished` or `halted(<message>)`.
pub fn describe(end: &RunEnd) -> String {
    match end {
        RunEnd::Finished(o) => format!("finished({o:?})").replace("finished(Succeeded)", "finished"),
        RunEnd::Halted { message, .. } => format!("halted({message})"),
        other => format!("{other:?}"),
    }
}
