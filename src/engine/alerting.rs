//! Alerts that reach people: the runbook's `notify_targets` get `monitor` alerts, failed gates, failed steps
//! and decisions waiting on a person longer than the target's `decision_after`, as a Teams card or plain JSON.
//!
//! The dispatcher runs on its own task and reads the journal's subscription (everything this process
//! journals, in order), so it never slows the run and a webhook that fails never stops it. Per target and per
//! key (`(alert kind, map, company)`; a gate's or a failed step's id; a waiting decision's step) it sends the
//! first change at once and then at most one message per `quiet` period (environment time), the latest state
//! winning: a map that flaps every tick is sent once, then its state when the quiet period is over; an "all
//! clear" follows when the condition is gone (a `monitor` alert's clearing, a gate passing, the step
//! succeeding, the decision taken), and none is sent for a key that was never sent. When the run ends, what
//! is still held back is sent.
//!
//! Delivery is at least once: each attempt (up to [`ATTEMPTS`], [`BACKOFF`] apart, real time) is journaled as
//! `Notified` with the status it got; a webhook that still fails is itself an `Alert` (kind `notify`) on the
//! console. The URL is a credential: its path and query are registered with the redactor, events name the
//! target, never the URL. In a rehearsal (`--sim`) every target posts to the simulator's webhook.
//! Not kept across a restart: a notice held back in a quiet period when the process dies is not sent by
//! the resumed process (the alert itself is in the journal).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::ctx::{Clock, Emitter};
use super::envs::Envs;
use super::event::{AlertSubject, Event, Severity, StepOutcome};
use super::follower::Follower;
use super::{Envelope, RunId};
use crate::connectors::notify::{Notice, post_once, teams_card, webhook_json};
use crate::runbook::vars::{VarContext, interpolate};
use crate::runbook::{NotifyKind, NotifyOn, NotifyTarget, Runbook};

/// Attempts per notice.
pub const ATTEMPTS: u32 = 3;
/// Real time between attempts.
pub const BACKOFF: Duration = Duration::from_millis(500);
/// How long the end of a run waits for what is still to be sent (real time).
pub const DRAIN: Duration = Duration::from_secs(30);

/// One target, resolved.
#[derive(Clone)]
pub struct Resolved {
    pub name: String,
    pub spec: NotifyTarget,
    /// Where it is posted (the simulator's webhook in a rehearsal).
    pub url: String,
}

/// Resolves the runbook's targets: `${VAR}`s interpolated, paths and queries registered as secrets.
pub fn resolve_targets(rb: &Runbook, envs: &Envs) -> Result<Vec<Resolved>, String> {
    let lookup = |n: &str| envs.var(n);
    let ctx = VarContext {
        env: &lookup,
        run_id: String::new(),
        run_date: String::new(),
        run_operator: String::new(),
        captures: BTreeMap::new(),
        figures: BTreeMap::new(),
    };
    let mut out = Vec::new();
    for (name, spec) in &rb.notify_targets {
        let url = interpolate(&spec.url, &ctx).map_err(|e| format!("notify target `{name}`: {e}"))?;
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| format!("notify target `{name}`: not a URL: {e}"))?;
        envs.redactor().add_secret(parsed.path().to_owned());
        if let Some(q) = parsed.query() {
            envs.redactor().add_secret(q.to_owned());
        }
        let url = match envs.sim_url() {
            Some(sim) if !url.starts_with(sim) => format!("{}/_sim/webhook", sim.trim_end_matches('/')),
            _ => url,
        };
        out.push(Resolved {
            name: name.clone(),
            spec: spec.clone(),
            url,
        });
    }
    Ok(out)
}

/// Sends `notice` to `target`, at least once: every attempt journaled; a target that never answers 2xx is
/// an `Alert` (kind `notify`). Returns whether it was delivered.
pub async fn deliver(
    envs: &Envs,
    emit: &Emitter,
    target: &Resolved,
    key: &str,
    notice: &Notice,
    cancel: &CancellationToken,
) -> bool {
    let body = match target.spec.kind {
        NotifyKind::Teams => teams_card(notice),
        NotifyKind::Webhook => webhook_json(notice),
    };
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let sent = match envs.scoped(None).bare(&target.url) {
            Ok(t) => post_once(&t, &target.url, body.clone(), cancel)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (status, error, delivered) = match &sent {
            Ok(s) => (Some(*s), None, (200..300).contains(s)),
            Err(e) => (None, Some(e.clone()), false),
        };
        last = match (&status, &error) {
            (Some(s), _) => format!("HTTP {s}"),
            (None, Some(e)) => e.clone(),
            _ => String::new(),
        };
        let _ = emit
            .durable(Event::Notified {
                target: target.name.clone(),
                key: key.to_owned(),
                state: notice.state.clone(),
                attempt,
                status,
                error,
                delivered,
            })
            .await;
        if delivered {
            return true;
        }
        if attempt < ATTEMPTS {
            tokio::select! {
                () = tokio::time::sleep(BACKOFF * attempt) => {}
                () = cancel.cancelled() => break,
            }
        }
    }
    let _ = emit
        .durable(Event::Alert {
            severity: Severity::Warning,
            message: format!(
                "notify target `{}` did not take the {} notice `{key}` ({last} after {ATTEMPTS} attempts); the run carries on",
                target.name, notice.state
            ),
            map: None,
            subject: Some(AlertSubject {
                kind: "notify".into(),
                company: None,
                facts: vec![("Target".into(), target.name.clone())],
                clear: false,
            }),
        })
        .await;
    false
}

/// The latest state of one key, as the dispatcher knows it.
#[derive(Clone)]
struct Latest {
    firing: bool,
    notice: Notice,
}

/// What one target has been told about one key.
#[derive(Default)]
struct Told {
    /// The state last sent (`None`: never sent).
    firing: Option<bool>,
    at: Option<Instant>,
    /// Changes held back in the quiet period.
    held: u32,
}

/// A decision waiting for a person.
struct Waiting {
    since: Instant,
    notice: Notice,
}

struct Dispatcher {
    targets: Vec<Resolved>,
    envs: Arc<Envs>,
    emit: Emitter,
    clock: Clock,
    cancel: CancellationToken,
    runbook: String,
    run_id: RunId,
    latest: BTreeMap<String, (NotifyOn, Latest)>,
    told: BTreeMap<(usize, String), Told>,
    waiting: BTreeMap<String, Waiting>,
}

/// The dispatcher's task and the signal that ends it.
pub struct Alerting {
    follower: Follower,
}

impl Alerting {
    /// Starts the dispatcher on `feed` (a fresh journal subscription). `None` when there are no targets.
    pub fn start(
        targets: Vec<Resolved>,
        rb: &Runbook,
        run_id: RunId,
        envs: Arc<Envs>,
        emit: Emitter,
        clock: Clock,
        feed: UnboundedReceiver<Arc<Envelope>>,
    ) -> Option<Arc<Self>> {
        if targets.is_empty() {
            return None;
        }
        let d = Dispatcher {
            targets,
            envs,
            emit,
            clock,
            cancel: CancellationToken::new(),
            runbook: rb.runbook.clone(),
            run_id,
            latest: BTreeMap::new(),
            told: BTreeMap::new(),
            waiting: BTreeMap::new(),
        };
        Some(Arc::new(Self {
            follower: Follower::spawn(|finish| d.run(feed, finish)),
        }))
    }

    /// Sends what is still to be sent (held back, or not yet read from the journal) and stops; waits at
    /// most [`DRAIN`]. Idempotent.
    pub async fn drain(&self) {
        self.follower.drain(DRAIN).await;
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

impl Dispatcher {
    async fn run(mut self, mut feed: UnboundedReceiver<Arc<Envelope>>, finish: CancellationToken) {
        let tick = Duration::from_millis(200);
        loop {
            tokio::select! {
                env = feed.recv() => match env {
                    Some(env) => self.observe(&env).await,
                    None => break,
                },
                () = tokio::time::sleep(tick) => self.consider_all(false).await,
                () = finish.cancelled() => {
                    while let Ok(env) = feed.try_recv() {
                        self.observe(&env).await;
                    }
                    self.consider_all(true).await;
                    break;
                }
            }
        }
        self.cancel.cancel();
    }

    fn notice(&self, state: &str, severity: Severity, title: String, text: String) -> Notice {
        Notice {
            state: state.into(),
            severity: severity_name(severity).into(),
            title,
            text,
            kind: String::new(),
            map: None,
            company: None,
            facts: Vec::new(),
            runbook: self.runbook.clone(),
            run_id: self.run_id.0.clone(),
        }
    }

    async fn observe(&mut self, env: &Envelope) {
        match &env.event {
            Event::Alert {
                severity,
                message,
                map,
                subject,
            } => {
                let subject = subject.clone().unwrap_or_else(|| AlertSubject {
                    kind: "alert".into(),
                    ..AlertSubject::default()
                });
                if subject.kind == "notify" {
                    return;
                }
                let key = subject.key(map.as_deref());
                let state = if subject.clear { "clear" } else { "firing" };
                let title = if subject.clear {
                    format!("All clear: {}", subject.kind.replace('_', " "))
                } else {
                    format!(
                        "{} alert: {}",
                        capital(severity_name(*severity)),
                        subject.kind.replace('_', " ")
                    )
                };
                let mut n = self.notice(state, *severity, title, message.clone());
                n.kind = subject.kind.clone();
                n.map = map.clone();
                n.company = subject.company.clone();
                n.facts = subject.facts.clone();
                self.set(key, NotifyOn::Alert, !subject.clear, n).await;
            }
            Event::GateEvaluated {
                step,
                passed,
                failures,
                ..
            } => {
                let key = format!("gate|{step}|-");
                let (title, text) = if *passed {
                    (
                        format!("All clear: gate {step} passed"),
                        format!("gate {step} passed"),
                    )
                } else {
                    let lines: Vec<String> = failures
                        .iter()
                        .map(|f| {
                            format!(
                                "{}{}: {} vs {} (allowed {}), {} errors",
                                f.map,
                                f.company.as_deref().map(|c| format!("/{c}")).unwrap_or_default(),
                                f.source,
                                f.target,
                                f.allowed,
                                f.errors
                            )
                        })
                        .collect();
                    (format!("Gate {step} failed"), lines.join("; "))
                };
                let sev = if *passed {
                    Severity::Info
                } else {
                    Severity::Critical
                };
                let mut n = self.notice(if *passed { "clear" } else { "firing" }, sev, title, text);
                n.kind = "gate".into();
                if let Some(f) = failures.first() {
                    n.map = Some(f.map.clone());
                    n.company.clone_from(&f.company);
                    n.facts = vec![
                        ("Source".into(), f.source.to_string()),
                        ("Target".into(), f.target.to_string()),
                        ("Allowed".into(), f.allowed.to_string()),
                        ("Errors".into(), f.errors.to_string()),
                    ];
                }
                self.set(key, NotifyOn::Gate, !*passed, n).await;
            }
            Event::StepFinished { step, outcome, .. } => {
                let key = format!("step_failed|{step}|-");
                match outcome {
                    StepOutcome::Failed { message, .. } => {
                        let mut n = self.notice(
                            "firing",
                            Severity::Critical,
                            format!("Step {step} failed"),
                            message.clone(),
                        );
                        n.kind = "step_failed".into();
                        self.set(key, NotifyOn::Failure, true, n).await;
                    }
                    _ if self.latest.contains_key(&key) => {
                        let mut n = self.notice(
                            "clear",
                            Severity::Info,
                            format!("All clear: step {step} done"),
                            format!("step {step} finished: {}", outcome_name(outcome)),
                        );
                        n.kind = "step_failed".into();
                        self.set(key, NotifyOn::Failure, false, n).await;
                    }
                    _ => {}
                }
            }
            Event::AwaitingOperator {
                step,
                decision,
                prompt,
                ..
            } => {
                let who = step
                    .as_ref()
                    .map_or_else(|| "the run".to_owned(), ToString::to_string);
                let mut n = self.notice(
                    "firing",
                    Severity::Warning,
                    format!("Waiting for a decision on {who}"),
                    format!("{decision:?}: {prompt}"),
                );
                n.kind = "decision_waiting".into();
                self.waiting.insert(
                    format!("decision_waiting|{who}|-"),
                    Waiting {
                        since: Instant::now(),
                        notice: n,
                    },
                );
            }
            Event::OperatorDecision {
                step,
                action,
                operator,
                ..
            } => {
                let who = step
                    .as_ref()
                    .map_or_else(|| "the run".to_owned(), ToString::to_string);
                let key = format!("decision_waiting|{who}|-");
                self.waiting.remove(&key);
                if self.latest.contains_key(&key) {
                    let mut n = self.notice(
                        "clear",
                        Severity::Info,
                        format!("All clear: {who} decided"),
                        format!("{operator} decided {action:?} on {who}"),
                    );
                    n.kind = "decision_waiting".into();
                    self.set(key, NotifyOn::Decision, false, n).await;
                }
            }
            _ => {}
        }
    }

    /// Records the latest state of `key` and sends it where it is due.
    async fn set(&mut self, key: String, on: NotifyOn, firing: bool, notice: Notice) {
        self.latest.insert(key.clone(), (on, Latest { firing, notice }));
        for i in 0..self.targets.len() {
            self.consider(i, &key, false).await;
        }
    }

    /// Sends `key`'s latest state to target `i` when it differs from what the target was told and the
    /// quiet period since the last message is over (`now`: whatever the quiet period).
    async fn consider(&mut self, i: usize, key: &str, now: bool) {
        let Some((on, latest)) = self.latest.get(key).cloned() else {
            return;
        };
        let target = self.targets[i].clone();
        if !target.spec.wants(on) {
            return;
        }
        let told = self.told.entry((i, key.to_owned())).or_default();
        if told.firing == Some(latest.firing) || (told.firing.is_none() && !latest.firing) {
            return;
        }
        let quiet_over = told
            .at
            .is_none_or(|at| self.clock.to_env(at.elapsed()) >= target.spec.quiet());
        if !quiet_over && !now {
            told.held += 1;
            return;
        }
        let held = std::mem::take(&mut told.held);
        let mut notice = latest.notice.clone();
        if held > 0 {
            notice
                .facts
                .push(("Changes held back (quiet period)".into(), held.to_string()));
        }
        told.firing = Some(latest.firing);
        told.at = Some(Instant::now());
        deliver(&self.envs, &self.emit, &target, key, &notice, &self.cancel).await;
    }

    async fn consider_all(&mut self, now: bool) {
        // Decisions waiting longer than a target's `decision_after`.
        let due: Vec<(String, Notice)> = self
            .waiting
            .iter()
            .filter(|(k, w)| {
                !self.latest.contains_key(*k)
                    && self.targets.iter().any(|t| {
                        t.spec.wants(NotifyOn::Decision)
                            && self.clock.to_env(w.since.elapsed()) >= t.spec.decision_after()
                    })
            })
            .map(|(k, w)| (k.clone(), w.notice.clone()))
            .collect();
        for (key, mut n) in due {
            let waited = self
                .waiting
                .get(&key)
                .map_or(Duration::ZERO, |w| self.clock.to_env(w.since.elapsed()));
            n.facts
                .push(("Waiting for".into(), format!("{} min", waited.as_secs() / 60)));
            self.set(key, NotifyOn::Decision, true, n).await;
        }
        let keys: Vec<String> = self.latest.keys().cloned().collect();
        for i in 0..self.targets.len() {
            for k in &keys {
                self.consider(i, k, now).await;
            }
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn outcome_name(o: &StepOutcome) -> &'static str {
    match o {
        StepOutcome::Succeeded => "succeeded",
        StepOutcome::Failed { .. } => "failed",
        StepOutcome::Skipped { .. } => "skipped",
    }
}
