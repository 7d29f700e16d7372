//! Checkpoints signed by an Azure Key Vault key (`journal.checkpoints.key_vault`, ES256).
//!
//! The journal writer never waits on the network: when a row is due a checkpoint it queues the row
//! ([`SignRequest`]) and carries on. This task takes the rows in order, sends the SHA-256 digest of the
//! checkpoint message (`journal::checkpoint::message`, the same text an Ed25519 checkpoint signs) to the
//! vault's `sign` operation, checks the signature against the key's public JWK, and journals the
//! `checkpoint` event naming the row it signs: it lands a few events after that row.
//!
//! A vault that does not sign is one journaled warning (and an info line when it signs again); the task
//! retries with backoff ([`BACKOFF_FIRST`] doubling to [`BACKOFF_MAX`]) and, while it fails, moves on to
//! the newest row waiting (a checkpoint of a later row covers every row before it through the chain).
//! The run carries on meanwhile. At the run's end the driver waits at most [`DRAIN`] for the last
//! checkpoint (its `run_end` or `halt`), skipping the rows still queued before it (it covers them);
//! what is still unsigned then is a journaled warning. The vault's
//! calls are not journaled as request summaries (the token never is), so a run's last event stays its
//! last checkpoint.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::ctx::Emitter;
use super::event::{Event, LogLevel};
use super::follower::Follower;
use crate::connectors::keyvault::{KeyVaultClient, VaultKey};
use crate::journal::checkpoint::{ES256, EcJwk, SignRequest, es256_ok, message};

/// The longest one sign call may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Real time before the first retry; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the run's end waits for the checkpoints still to be signed.
pub const DRAIN: Duration = Duration::from_secs(10);

/// The vault key as read at the run's start.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub name: String,
    pub version: String,
    pub kid: String,
    pub jwk: EcJwk,
    pub fingerprint: String,
}

impl KeyInfo {
    /// Checks what the vault answered is a P-256 key and computes its fingerprint.
    pub fn from_vault(name: &str, k: VaultKey) -> Result<Self, String> {
        let jwk = EcJwk {
            kty: "EC".into(),
            crv: k.crv,
            x: k.x,
            y: k.y,
        };
        jwk.point().map_err(|why| format!("key `{name}`: {why}"))?;
        Ok(Self {
            name: name.to_owned(),
            version: k.version,
            kid: k.kid,
            fingerprint: jwk.fingerprint(),
            jwk,
        })
    }

    /// The `checkpoint_key` event: the public JWK and its fingerprint (never a token).
    pub fn event(&self) -> Event {
        Event::CheckpointKey {
            key_fingerprint: self.fingerprint.clone(),
            alg: ES256.into(),
            jwk: serde_json::from_str(&self.jwk.canonical()).unwrap_or_default(),
            kid: self.kid.clone(),
        }
    }
}

/// The signing task and the signal that ends it.
pub struct VaultSigner {
    follower: Follower,
    emit: Emitter,
}

struct Task {
    client: KeyVaultClient,
    key: KeyInfo,
    emit: Emitter,
    cancel: CancellationToken,
}

impl VaultSigner {
    /// Starts signing the rows of `queue` with `key`.
    pub fn start(
        client: KeyVaultClient,
        key: KeyInfo,
        emit: Emitter,
        queue: UnboundedReceiver<SignRequest>,
    ) -> Arc<Self> {
        let t = Task {
            client,
            key,
            emit: emit.clone(),
            cancel: CancellationToken::new(),
        };
        Arc::new(Self {
            follower: Follower::spawn(|finish| t.run(queue, finish)),
            emit,
        })
    }

    /// Signs the rows already queued, then stops; waits at most [`DRAIN`] (a warning is journaled for
    /// what is left unsigned then). Idempotent.
    pub async fn drain(&self) {
        if !self.follower.drain(DRAIN).await {
            let _ = self
                .emit
                .durable(Event::Log {
                    level: LogLevel::Warn,
                    message: format!(
                        "checkpoint signing: the vault did not sign the run's last checkpoint within {DRAIN:?}; the events after the last signed checkpoint are covered by the hash chain alone"
                    ),
                })
                .await;
        }
    }
}

impl Task {
    async fn run(self, mut queue: UnboundedReceiver<SignRequest>, finish: CancellationToken) {
        let mut failing = false;
        let mut finishing = false;
        loop {
            let mut req = if finishing {
                // The run is ending: its last row's checkpoint covers every row before it through the
                // chain, so a backlog (a slow vault) is not signed one by one within the bounded wait.
                let Ok(mut r) = queue.try_recv() else { break };
                while let Ok(newer) = queue.try_recv() {
                    r = newer;
                }
                r
            } else {
                tokio::select! {
                    r = queue.recv() => match r {
                        Some(r) => r,
                        None => break,
                    },
                    () = finish.cancelled() => {
                        finishing = true;
                        continue;
                    }
                }
            };
            let mut backoff = BACKOFF_FIRST;
            loop {
                match self.sign(&req).await {
                    Ok(signature) => {
                        let event = Event::Checkpoint {
                            event_id: req.event_id,
                            chain_hash: req.chain_hash.clone(),
                            at: req.at.clone(),
                            key_fingerprint: self.key.fingerprint.clone(),
                            public_key: String::new(),
                            signature,
                            reason: req.reason.to_owned(),
                            alg: Some(ES256.into()),
                        };
                        // A journal that failed stops the run elsewhere; nothing more to sign then.
                        if self
                            .emit
                            .writer()
                            .append(req.run_id.clone(), event)
                            .await
                            .is_err()
                        {
                            return;
                        }
                        if failing {
                            failing = false;
                            self.log(
                                LogLevel::Info,
                                format!(
                                    "checkpoint signing: Key Vault key `{}` signs again (checkpoint of event {})",
                                    self.key.name, req.event_id
                                ),
                            )
                            .await;
                        }
                        break;
                    }
                    Err(why) => {
                        if !failing {
                            failing = true;
                            self.log(
                                LogLevel::Warn,
                                format!(
                                    "checkpoint signing: Key Vault key `{}` did not sign the checkpoint of event {} ({why}); retrying with backoff, the run carries on and the events meanwhile are covered by the hash chain",
                                    self.key.name, req.event_id
                                ),
                            )
                            .await;
                        }
                        // A later row waiting covers this one through the chain: sign the newest instead.
                        while let Ok(newer) = queue.try_recv() {
                            req = newer;
                        }
                        if !finishing {
                            tokio::select! {
                                () = tokio::time::sleep(backoff) => {}
                                () = finish.cancelled() => finishing = true,
                            }
                        } else {
                            tokio::time::sleep(backoff).await;
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
        }
        self.cancel.cancel();
    }

    /// One signature of `req`'s message, checked against the key's public JWK; lowercase hex.
    async fn sign(&self, req: &SignRequest) -> Result<String, String> {
        let text = message(
            &req.run_id.0,
            req.event_id,
            &req.chain_hash,
            &req.at,
            &self.key.fingerprint,
        );
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let sig = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            self.client
                .sign_es256(&self.key.name, &self.key.version, &digest, &self.cancel),
        )
        .await
        .map_err(|_| format!("no answer within {ATTEMPT_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
        let hex = hex::encode(sig);
        if !es256_ok(&self.key.jwk, &text, &hex) {
            return Err("the vault's signature does not verify with the key's public JWK".into());
        }
        Ok(hex)
    }

    async fn log(&self, level: LogLevel, message: String) {
        let _ = self.emit.durable(Event::Log { level, message }).await;
    }
}
