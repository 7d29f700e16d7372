//! Checkpoints sent to `notify` witnesses (`journal.checkpoints.witness: [{notify: TARGET}]`).
//!
//! A task of its own reads the journal's subscription (everything this process commits, in order) and
//! posts each `checkpoint` event, once committed, to every witness target: a `webhook` target gets the
//! witness line itself as the JSON body (the same object a witness file holds one per line, so a receiver
//! that appends bodies to a file makes an `--anchors` file), a `teams` target a card with its facts. It is
//! best-effort: [`ATTEMPTS`] posts of at most [`POST_TIMEOUT`] each; a witness that stops taking them is a
//! journaled warning (once, until it takes one again: then an info line) and the run carries on. The driver never waits on it except at the run's end,
//! for at most [`DRAIN`] (the last checkpoint is sent then). Posts are not journaled as request summaries
//! (the witness holds them), so a finished run's journal still ends with its signed `run_end` checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::Envelope;
use super::alerting::Resolved;
use super::ctx::Emitter;
use super::envs::Envs;
use super::event::{Event, LogLevel};
use super::follower::Follower;
use crate::connectors::notify::{Notice, post_once, teams_card};
use crate::journal::checkpoint::WitnessLine;
use crate::runbook::NotifyKind;

/// Posts per checkpoint and target.
pub const ATTEMPTS: u32 = 2;
/// The longest one post may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Real time between attempts.
pub const BACKOFF: Duration = Duration::from_millis(500);
/// How long the run's end waits for the checkpoints still to be sent.
pub const DRAIN: Duration = Duration::from_secs(15);

/// The sender's task and the signal that ends it.
pub struct Witnesses {
    follower: Follower,
}

struct Sender {
    targets: Vec<Resolved>,
    envs: Arc<Envs>,
    emit: Emitter,
    journal_name: String,
    runbook: String,
    cancel: CancellationToken,
    /// Per target: its last send failed.
    failing: Vec<AtomicBool>,
}

/// The body a target gets for one witness line.
pub fn body(kind: NotifyKind, line: &WitnessLine, runbook: &str) -> serde_json::Value {
    match kind {
        NotifyKind::Webhook => serde_json::to_value(line).unwrap_or_default(),
        NotifyKind::Teams => teams_card(&Notice {
            state: "message".into(),
            severity: "info".into(),
            title: format!("Journal checkpoint at event {}", line.event_id),
            text: format!(
                "{} is signed up to event {} (chain hash {})",
                line.journal, line.event_id, line.chain_hash
            ),
            kind: "checkpoint".into(),
            map: None,
            company: None,
            facts: vec![
                ("Journal".into(), line.journal.clone()),
                ("Event".into(), line.event_id.to_string()),
                ("Chain hash".into(), line.chain_hash.clone()),
                ("At".into(), line.at.clone()),
                ("Key".into(), line.key_fingerprint.clone()),
                ("Signature".into(), line.signature.clone()),
            ],
            runbook: runbook.to_owned(),
            run_id: line.run_id.clone(),
        }),
    }
}

impl Witnesses {
    /// Starts the sender on `feed` (a fresh journal subscription). `None` when no target witnesses.
    pub fn start(
        targets: Vec<Resolved>,
        runbook: &str,
        journal_name: String,
        envs: Arc<Envs>,
        emit: Emitter,
        feed: UnboundedReceiver<Arc<Envelope>>,
    ) -> Option<Arc<Self>> {
        if targets.is_empty() {
            return None;
        }
        let s = Sender {
            failing: targets.iter().map(|_| AtomicBool::new(false)).collect(),
            targets,
            envs,
            emit,
            journal_name,
            runbook: runbook.to_owned(),
            cancel: CancellationToken::new(),
        };
        Some(Arc::new(Self {
            follower: Follower::spawn(|finish| s.run(feed, finish)),
        }))
    }

    /// Sends the checkpoints already committed and not yet sent, then stops; waits at most [`DRAIN`]
    /// (what is left then is not sent). Idempotent.
    pub async fn drain(&self) {
        if !self.follower.drain(DRAIN).await {
            tracing::warn!("checkpoint witnesses: gave up sending after {DRAIN:?} at the run's end");
        }
    }
}

impl Sender {
    async fn run(self, mut feed: UnboundedReceiver<Arc<Envelope>>, finish: CancellationToken) {
        loop {
            tokio::select! {
                env = feed.recv() => match env {
                    Some(env) => self.observe(&env).await,
                    None => break,
                },
                () = finish.cancelled() => {
                    while let Ok(env) = feed.try_recv() {
                        self.observe(&env).await;
                    }
                    break;
                }
            }
        }
        self.cancel.cancel();
    }

    async fn observe(&self, env: &Envelope) {
        let Event::Checkpoint {
            event_id,
            chain_hash,
            at,
            key_fingerprint,
            signature,
            ..
        } = &env.event
        else {
            return;
        };
        let line = WitnessLine {
            journal: self.journal_name.clone(),
            run_id: env.run_id.0.clone(),
            event_id: *event_id,
            chain_hash: chain_hash.clone(),
            at: at.clone(),
            key_fingerprint: key_fingerprint.clone(),
            signature: signature.clone(),
        };
        for (i, t) in self.targets.iter().enumerate() {
            let sent = self.send(t, &line).await;
            let was_failing = self.failing[i].swap(sent.is_err(), Ordering::Relaxed);
            // One warning when a witness starts failing and one when it takes a checkpoint again: a
            // warning per missed checkpoint would itself be events that call for more checkpoints.
            let message = match (&sent, was_failing) {
                (Err(why), false) => format!(
                    "checkpoint witness `{}` did not take the checkpoint of event {} ({why} after {ATTEMPTS} attempts); it is in the journal and the run carries on; the checkpoints it misses until it takes one again are not warned about one by one",
                    t.name, event_id
                ),
                (Ok(()), true) => format!(
                    "checkpoint witness `{}` took the checkpoint of event {} again (it missed the ones since the last warning)",
                    t.name, event_id
                ),
                _ => continue,
            };
            let level = if sent.is_err() {
                LogLevel::Warn
            } else {
                LogLevel::Info
            };
            let _ = self.emit.durable(Event::Log { level, message }).await;
        }
    }

    async fn send(&self, t: &Resolved, line: &WitnessLine) -> Result<(), String> {
        let body = body(t.spec.kind, line, &self.runbook);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let sent = match self.envs.scoped(None).bare_unjournaled(&t.url) {
                Ok(tr) => {
                    match tokio::time::timeout(
                        POST_TIMEOUT,
                        post_once(&tr, &t.url, body.clone(), &self.cancel),
                    )
                    .await
                    {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer within {POST_TIMEOUT:?}")),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(s) if (200..300).contains(&s) => return Ok(()),
                Ok(s) => last = format!("HTTP {s}"),
                Err(e) => last = e,
            }
            if attempt < ATTEMPTS {
                tokio::select! {
                    () = tokio::time::sleep(BACKOFF) => {}
                    () = self.cancel.cancelled() => break,
                }
            }
        }
        Err(last)
    }
}
