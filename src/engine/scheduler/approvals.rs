//! Who pressed the key. When an environment signs a person in (`device_code` or `azure_cli`), every
//! decision is journaled with the identity its current token names (object id, UPN, tenant; decoded, not
//! verified: see `connectors::auth::claims`), beside the `--operator` label. The runbook's `approvals` may require
//! such an identity for a point of no return and for a waiver, and name who may take those decisions
//! (UPNs, or Entra group object ids from the token's `groups` claim). A decision that does not pass is
//! journaled as [`Event::ApprovalRefused`] (and as a warning the console's log shows) and not acted on.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::connectors::auth::TokenSource;
use crate::engine::ctx::{Ask, Decision, Emitter};
use crate::engine::envs::Envs;
use crate::engine::event::{DecisionKind, Event, LogLevel, OperatorAction};
use crate::model::Identity;
use crate::runbook::{Approvals, Runbook};

/// The identity source and the rules of a run.
pub struct Approver {
    rules: Approvals,
    /// The environment whose signed-in user is the operator, and its token source.
    source: Option<(String, Arc<TokenSource>)>,
    cancel: CancellationToken,
}

impl Approver {
    /// `None` when the runbook neither signs a person in nor sets `approvals`.
    pub fn for_run(rb: &Runbook, envs: &Envs, cancel: CancellationToken) -> Option<Arc<Approver>> {
        let rules = rb.approvals.clone().unwrap_or_default();
        let delegated = |name: &str| {
            rb.environments
                .get(name)
                .and_then(|e| e.auth.as_ref())
                .is_some_and(|a| a.kind().is_delegated())
        };
        let env = rules
            .identity_from
            .clone()
            .or_else(|| rb.environments.keys().find(|n| delegated(n)).cloned());
        let source = env.and_then(|e| {
            let ts = envs.transports.get(&e)?.token_source()?.clone();
            Some((e, ts))
        });
        if source.is_none() && rb.approvals.is_none() {
            return None;
        }
        Some(Arc::new(Approver {
            rules,
            source,
            cancel,
        }))
    }

    /// The signed-in identity now (`None` without a delegated environment, or when its token names no
    /// user or cannot be had: the decision is then journaled without one, and refused where required).
    pub async fn identity(&self) -> Option<Identity> {
        let (_, ts) = self.source.as_ref()?;
        ts.identity(&self.cancel).await.ok().flatten()
    }

    /// Whether this answer needs the runbook's approval rules.
    pub fn guarded(kind: DecisionKind, action: OperatorAction) -> bool {
        action == OperatorAction::Waive
            || kind == DecisionKind::PointOfNoReturn
                && matches!(action, OperatorAction::Confirm | OperatorAction::Approve)
    }

    /// Why `identity` may not take a guarded decision, if it may not.
    pub fn refusal(&self, identity: Option<&Identity>) -> Option<String> {
        let r = &self.rules;
        let listed = !r.approvers.is_empty() || !r.approver_groups.is_empty();
        if !r.require_identity && !listed {
            return None;
        }
        let Some(id) = identity else {
            let from = self.source.as_ref().map_or_else(
                || "no environment signs a person in".to_owned(),
                |(e, _)| format!("environment `{e}` has no signed-in user"),
            );
            return Some(format!(
                "the runbook requires a signed-in identity ({from}; run `cutover login`)"
            ));
        };
        if !listed {
            return None;
        }
        let upn_ok = id
            .upn
            .as_deref()
            .is_some_and(|u| r.approvers.iter().any(|a| a.eq_ignore_ascii_case(u)));
        let group_ok = id
            .groups
            .iter()
            .any(|g| r.approver_groups.iter().any(|a| a.eq_ignore_ascii_case(g)));
        if upn_ok || group_ok {
            None
        } else {
            Some(format!("{} is not among the runbook's approvers", id.label()))
        }
    }

    /// Attaches the identity to `d` and checks the rules; `Err(why)` has been journaled.
    pub async fn apply(&self, emit: &Emitter, ask: &Ask, d: &mut Decision) -> Result<(), String> {
        d.identity = self.identity().await;
        if !Self::guarded(ask.kind, d.action) {
            return Ok(());
        }
        let Some(why) = self.refusal(d.identity.as_ref()) else {
            return Ok(());
        };
        let _ = emit
            .durable(Event::ApprovalRefused {
                step: ask.step.clone(),
                action: d.action,
                operator: d.operator.clone(),
                identity: d.identity.clone(),
                reason: why.clone(),
            })
            .await;
        let step = ask
            .step
            .as_ref()
            .map_or_else(|| "the run".to_owned(), |s| format!("step `{s}`"));
        let _ = emit.batched(Event::Log {
            level: LogLevel::Warn,
            message: format!("{:?} of {step} refused: {why}", d.action),
        });
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approver(rules: Approvals) -> Approver {
        Approver {
            rules,
            source: None,
            cancel: CancellationToken::new(),
        }
    }

    fn id(upn: &str, groups: &[&str]) -> Identity {
        Identity {
            oid: "o".into(),
            upn: Some(upn.into()),
            tid: "t".into(),
            name: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    /// The console's path: a refused confirmation is journaled, the question stays open, and an answer
    /// the rules do not guard (skip) is then taken.
    #[tokio::test]
    async fn an_interactive_refusal_is_journaled_and_the_question_stays_open() {
        use crate::engine::ctx::Operator as _;
        use crate::engine::driver::Command;
        use crate::engine::scheduler::operator::{InteractiveOperator, Questions};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.journal");
        let journal = crate::journal::Journal::open(&path, crate::journal::Redactor::new()).unwrap();
        let emit = Emitter::new(journal.writer(), crate::engine::RunId::from("run-1"));
        let rb = "runbook: r\nversion: 1.0.0\nenvironments: { e: { kind: http, url: \"https://x.example\" } }\nphases: [ { id: p, steps: [ { id: s, kind: manual, title: t } ] } ]\n";
        let text = crate::runbook::load(rb, "r.yaml").runbook.unwrap();
        let (steps, maps) = crate::engine::runner::plan_info(&text, &crate::runbook::plan::plan(&text));
        emit.durable(Event::RunStarted {
            run_id: crate::engine::RunId::from("run-1"),
            runbook: crate::engine::event::RunbookInfo {
                name: "r".into(),
                version: "1.0.0".into(),
                sha256: crate::engine::runner::sha256_hex(rb),
                text: rb.into(),
            },
            operator: "t".into(),
            host: "h".into(),
            started_at: chrono::Utc::now(),
            freeze_window: None,
            steps,
            maps,
            time_scale: 1.0,
        })
        .await
        .unwrap();
        let approver = Arc::new(approver(Approvals {
            require_identity: true,
            ..Approvals::default()
        }));
        let questions = Arc::new(Questions::default());
        let op = InteractiveOperator::new(emit.clone(), Arc::clone(&questions), CancellationToken::new())
            .with_approver(Some(approver));
        let ask = Ask {
            step: Some("s".into()),
            kind: DecisionKind::PointOfNoReturn,
            prompt: "go".into(),
            checklist: Vec::new(),
            deadline: None,
        };
        let answering = tokio::spawn({
            let q = Arc::clone(&questions);
            async move {
                let wait_open = || async {
                    while q.is_empty() {
                        tokio::task::yield_now().await;
                    }
                };
                tokio::time::timeout(std::time::Duration::from_secs(10), wait_open())
                    .await
                    .unwrap();
                q.route(Command::new(OperatorAction::Confirm, Some("s".into()), "tess"))
                    .unwrap();
                // The refusal re-opens the question; then a skip (with its reason) answers it.
                tokio::time::timeout(std::time::Duration::from_secs(10), wait_open())
                    .await
                    .unwrap();
                q.route(
                    Command::new(OperatorAction::Skip, Some("s".into()), "tess").with_reason("not today"),
                )
                .unwrap();
            }
        });
        let d = op.ask(ask).await.unwrap();
        answering.await.unwrap();
        assert_eq!(d.action, OperatorAction::Skip);
        drop(journal);
        let r = crate::journal::JournalReader::open_read_only(&path).unwrap();
        let events: Vec<Event> = r
            .events(&crate::engine::RunId::from("run-1"))
            .map(|e| e.unwrap().event)
            .collect();
        let refused = events
            .iter()
            .position(|e| matches!(e, Event::ApprovalRefused { action: OperatorAction::Confirm, reason, .. } if reason.contains("requires a signed-in identity")));
        let skipped = events.iter().position(|e| {
            matches!(
                e,
                Event::OperatorDecision {
                    action: OperatorAction::Skip,
                    ..
                }
            )
        });
        assert!(
            matches!((refused, skipped), (Some(a), Some(b)) if a < b),
            "{events:#?}"
        );
        assert!(!events.iter().any(|e| matches!(
            e,
            Event::OperatorDecision {
                action: OperatorAction::Confirm,
                ..
            }
        )));
    }

    #[test]
    fn the_list_admits_by_upn_or_group_and_refuses_the_rest() {
        let a = approver(Approvals {
            require_identity: true,
            approvers: vec!["Lead@Contoso.com".into()],
            approver_groups: vec!["0f0f0f0f-0000-4000-8000-000000000001".into()],
            ..Approvals::default()
        });
        assert_eq!(a.refusal(Some(&id("lead@contoso.com", &[]))), None);
        assert_eq!(
            a.refusal(Some(&id(
                "x@contoso.com",
                &["0f0f0f0f-0000-4000-8000-000000000001"]
            ))),
            None
        );
        assert!(
            a.refusal(Some(&id("eve@contoso.com", &[])))
                .unwrap()
                .contains("not among")
        );
        assert!(a.refusal(None).unwrap().contains("requires a signed-in identity"));
        let open = approver(Approvals::default());
        assert_eq!(open.refusal(None), None);
        assert!(Approver::guarded(
            DecisionKind::PointOfNoReturn,
            OperatorAction::Confirm
        ));
        assert!(Approver::guarded(
            DecisionKind::GateFailure,
            OperatorAction::Waive
        ));
        assert!(!Approver::guarded(
            DecisionKind::ApproveManual,
            OperatorAction::Approve
        ));
    }
}
