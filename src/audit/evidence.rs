//! What a journal proves beyond its own consistency: its signed checkpoints (checked against keys
//! the auditor trusts, `--key`) and anchors recorded outside it (`--anchor HASH@EVENT`, `--anchors
//! WITNESS_FILE`). See `journal::checkpoint` for what a checkpoint signs.
//!
//! - Without keys or anchors the hash chain proves internal consistency only: anyone who can write
//!   the file can rewrite rows and re-chain them. The verdict says "chain consistent; not anchored".
//! - A checkpoint signed by a trusted key fixes the chain up to the event it signs: no rewrite
//!   before the last such checkpoint without the key.
//! - An anchor fixes the chain up to its event: no rewrite and no truncation before it.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use crate::journal::checkpoint::{self, Anchor, EcJwk, fingerprint};
use crate::journal::{JournalError, JournalReader};
use crate::model::Event;

/// A key the auditor trusts: a public key file, or a fingerprint (`sha256:...`) of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub fingerprint: String,
    /// Where it came from (the file, or "fingerprint").
    pub source: String,
    /// A Key Vault key's public JWK (a JWK file given): ES256 checkpoints are checked with it rather
    /// than with the JWK the journal holds.
    pub jwk: Option<EcJwk>,
}

impl TrustedKey {
    /// `arg`: a file holding the public key (PEM, raw 32 bytes, 64 hex digits; a private key file is
    /// accepted too and only its public half kept), or `sha256:<64 hex digits>`.
    pub fn parse(arg: &str) -> Result<Self, String> {
        if let Some(hex) = arg.strip_prefix("sha256:")
            && hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && !Path::new(arg).exists()
        {
            return Ok(Self {
                fingerprint: format!("sha256:{}", hex.to_ascii_lowercase()),
                source: "fingerprint".into(),
                jwk: None,
            });
        }
        let bytes = std::fs::read(arg).map_err(|e| format!("--key {arg}: {e}"))?;
        if bytes.trim_ascii_start().starts_with(b"{") {
            // A Key Vault key's public JWK (or the whole `GET key` answer).
            let jwk = EcJwk::from_json(&bytes).map_err(|e| format!("--key {arg}: {e}"))?;
            return Ok(Self {
                fingerprint: jwk.fingerprint(),
                source: arg.to_owned(),
                jwk: Some(jwk),
            });
        }
        let public = checkpoint::public_key_from_bytes(&bytes).map_err(|e| format!("--key {arg}: {e}"))?;
        let raw = hex::decode(&public).map_err(|e| format!("--key {arg}: {e}"))?;
        Ok(Self {
            fingerprint: fingerprint(&raw),
            source: arg.to_owned(),
            jwk: None,
        })
    }
}

/// What the auditor brings: anchors and trusted keys.
#[derive(Debug, Clone, Default)]
pub struct EvidenceInput {
    pub anchors: Vec<Anchor>,
    pub keys: Vec<TrustedKey>,
}

/// One checkpoint's verdict.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct CheckpointCheck {
    /// The checkpoint's own event id.
    pub checkpoint_event: i64,
    /// The event it signs.
    pub event_id: i64,
    pub reason: String,
    pub key_fingerprint: String,
    /// The signature's algorithm: `Ed25519` (a key file) or `ES256` (an Azure Key Vault key).
    pub alg: String,
    /// The signature is valid and the signed event's hash and time are the journal's.
    pub valid: bool,
    /// Its key is one the auditor gave (`--key`).
    pub trusted: bool,
    /// Why it does not verify, when it does not.
    pub problem: Option<String>,
}

/// One anchor's verdict.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct AnchorCheck {
    pub event_id: i64,
    pub chain_hash: String,
    pub source: String,
    pub matched: bool,
    pub problem: Option<String>,
}

/// The checkpoints and anchors of a journal, checked.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Default)]
pub struct Anchoring {
    /// One plain sentence: what the chain proves here.
    pub statement: String,
    /// False when an anchor does not match, the journal is shorter than an anchor, a checkpoint
    /// does not verify or is signed by a key not given, or a given key signed no checkpoint.
    pub ok: bool,
    /// Fingerprints of the keys the auditor gave.
    pub trusted_keys: Vec<String>,
    /// The last event a checkpoint by a trusted key fixes.
    pub signed_through: Option<i64>,
    /// The furthest event an anchor fixes.
    pub anchored_through: Option<i64>,
    pub checkpoints: Vec<CheckpointCheck>,
    pub anchors: Vec<AnchorCheck>,
    /// Every problem, in words.
    pub problems: Vec<String>,
}

impl Anchoring {
    /// Checkpoints that verified with a trusted key.
    pub fn trusted_count(&self) -> usize {
        self.checkpoints.iter().filter(|c| c.valid && c.trusted).count()
    }

    /// The algorithms of the checkpoints that verified with a trusted key (`Ed25519`, `ES256`), each once.
    pub fn trusted_algs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.checkpoints.iter().filter(|c| c.valid && c.trusted) {
            if !out.contains(&c.alg) {
                out.push(c.alg.clone());
            }
        }
        out
    }

    /// Fingerprints of the keys that signed the journal's checkpoints, each once, in order.
    pub fn signing_keys(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.checkpoints {
            if !out.contains(&c.key_fingerprint) {
                out.push(c.key_fingerprint.clone());
            }
        }
        out
    }
}

/// Check the journal's checkpoints and the given anchors. `chain_ok`: whether the chain itself
/// verified (the statement says so when it did not).
pub fn check(
    reader: &JournalReader,
    chain_ok: bool,
    input: &EvidenceInput,
) -> Result<Anchoring, JournalError> {
    let mut a = Anchoring {
        trusted_keys: input.keys.iter().map(|k| k.fingerprint.clone()).collect(),
        ok: true,
        ..Anchoring::default()
    };
    let (last_id, _) = reader.chain_tip()?;
    // The vault keys' JWKs: the auditor's own first, then the ones the journal holds (whose fingerprint
    // is recomputed, so a JWK swapped in the journal names another key).
    let mut jwks: Vec<EcJwk> = input.keys.iter().filter_map(|k| k.jwk.clone()).collect();
    for payload in reader.checkpoint_key_rows()? {
        if let Ok(Event::CheckpointKey { jwk, .. }) = serde_json::from_str::<Event>(&payload)
            && let Ok(j) = serde_json::from_value::<EcJwk>(jwk)
        {
            jwks.push(j);
        }
    }
    for (id, _run, payload) in reader.checkpoint_rows()? {
        a.checkpoints
            .push(check_one(reader, id, &payload, &a.trusted_keys, &jwks)?);
    }
    for anchor in &input.anchors {
        let problem = if anchor.event_id > last_id {
            Some(format!(
                "the journal ends at event {last_id}, before the anchored event {}: it was truncated",
                anchor.event_id
            ))
        } else {
            match reader.row_place(anchor.event_id)? {
                Some((_, _, hash)) if hash == anchor.chain_hash => None,
                Some((_, _, hash)) => Some(format!(
                    "event {} has chain hash {hash}, not the anchored {}: the journal was rewritten at or before it",
                    anchor.event_id, anchor.chain_hash
                )),
                None => Some(format!("event {} is missing from the journal", anchor.event_id)),
            }
        };
        a.anchors.push(AnchorCheck {
            event_id: anchor.event_id,
            chain_hash: anchor.chain_hash.clone(),
            source: anchor.source.clone(),
            matched: problem.is_none(),
            problem,
        });
    }
    for c in &a.checkpoints {
        if let Some(p) = &c.problem {
            a.problems.push(format!(
                "checkpoint event {} (signing event {}): {p}",
                c.checkpoint_event, c.event_id
            ));
        }
    }
    for an in &a.anchors {
        if let Some(p) = &an.problem {
            a.problems.push(format!(
                "anchor {}@{} ({}): {p}",
                an.chain_hash, an.event_id, an.source
            ));
        }
    }
    for k in &input.keys {
        if !a
            .checkpoints
            .iter()
            .any(|c| c.valid && c.key_fingerprint == k.fingerprint)
        {
            a.problems.push(format!(
                "no checkpoint in the journal verifies with key {} ({}): checkpoints removed, or another key",
                k.fingerprint, k.source
            ));
        }
    }
    a.ok = a.problems.is_empty();
    a.signed_through = a
        .checkpoints
        .iter()
        .filter(|c| c.valid && c.trusted)
        .map(|c| c.event_id)
        .max();
    a.anchored_through = a.anchors.iter().filter(|x| x.matched).map(|x| x.event_id).max();
    a.statement = statement(&a, chain_ok);
    Ok(a)
}

fn check_one(
    reader: &JournalReader,
    id: i64,
    payload: &str,
    trusted: &[String],
    jwks: &[EcJwk],
) -> Result<CheckpointCheck, JournalError> {
    let Ok(Event::Checkpoint {
        event_id,
        chain_hash,
        at,
        key_fingerprint,
        public_key,
        signature,
        reason,
        alg,
    }) = serde_json::from_str::<Event>(payload)
    else {
        return Ok(CheckpointCheck {
            checkpoint_event: id,
            event_id: 0,
            reason: String::new(),
            key_fingerprint: String::new(),
            alg: String::new(),
            valid: false,
            trusted: false,
            problem: Some("its payload does not decode".into()),
        });
    };
    let is_trusted = trusted.contains(&key_fingerprint);
    let alg = alg.unwrap_or_else(|| "Ed25519".to_owned());
    let problem = match reader.row_place(event_id)? {
        None => Some(format!("the signed event {event_id} is not in the journal")),
        Some((run_id, row_at, hash)) => {
            let message = checkpoint::message(&run_id, event_id, &hash, &row_at, &key_fingerprint);
            // Ed25519: the public key is in the checkpoint. ES256: the JWK with that fingerprint.
            let (public_ok, signature_ok) = match alg.as_str() {
                "Ed25519" => (
                    hex::decode(&public_key).is_ok_and(|raw| fingerprint(&raw) == key_fingerprint),
                    checkpoint::signature_ok(&public_key, &message, &signature),
                ),
                checkpoint::ES256 => match jwks.iter().find(|j| j.fingerprint() == key_fingerprint) {
                    Some(jwk) => (true, checkpoint::es256_ok(jwk, &message, &signature)),
                    None => (false, false),
                },
                _ => (true, false),
            };
            if hash != chain_hash || row_at != at {
                Some(format!(
                    "it signed chain hash {chain_hash} for event {event_id}, which now has {hash}: rewritten after it was signed"
                ))
            } else if !public_ok && alg == checkpoint::ES256 {
                Some(format!(
                    "no public JWK with fingerprint {key_fingerprint} (neither given with --key nor journaled as the run's checkpoint key)"
                ))
            } else if !public_ok {
                Some("its public key does not have the fingerprint it names".into())
            } else if !matches!(alg.as_str(), "Ed25519" | checkpoint::ES256) {
                Some(format!("its algorithm {alg:?} is not one cutover signs with"))
            } else if !signature_ok {
                Some(format!(
                    "its signature does not verify with key {key_fingerprint}"
                ))
            } else if !trusted.is_empty() && !is_trusted {
                Some(format!(
                    "signed by key {key_fingerprint}, which is not a key given with --key"
                ))
            } else {
                None
            }
        }
    };
    Ok(CheckpointCheck {
        checkpoint_event: id,
        event_id,
        reason,
        key_fingerprint,
        alg,
        valid: problem.is_none(),
        trusted: is_trusted,
        problem,
    })
}

fn statement(a: &Anchoring, chain_ok: bool) -> String {
    if !chain_ok {
        return "chain does NOT verify".into();
    }
    if !a.ok {
        return format!(
            "chain consistent, but the evidence does NOT verify: {}",
            a.problems.first().cloned().unwrap_or_default()
        );
    }
    let mut parts = vec!["chain consistent".to_owned()];
    if let Some(through) = a.signed_through {
        parts.push(format!(
            "{} checkpoint(s) signed by trusted {} key {} verified, the last at event {through} (no rewrite before it without the key)",
            a.trusted_count(),
            a.trusted_algs().join("/"),
            a.trusted_keys.join(", ")
        ));
    }
    if let Some(through) = a.anchored_through {
        parts.push(format!(
            "{} anchor(s) matched, the furthest at event {through} (no rewrite or truncation before it)",
            a.anchors.len()
        ));
    }
    if parts.len() == 1 {
        parts.push("not anchored".into());
        if !a.checkpoints.is_empty() {
            parts.push(format!(
                "{} checkpoint(s) carry valid signatures by the journaled key {}, which proves nothing until that key is checked (verify --key)",
                a.checkpoints.len(),
                a.signing_keys().join(", ")
            ));
        }
    }
    parts.join("; ")
}
