//! Signed checkpoints of the chain head, and the anchors an auditor checks a journal against.
//!
//! The hash rule is public and unkeyed: anyone who can write the file can rewrite every row and
//! re-chain it. A checkpoint is an Ed25519 signature, by a key the runbook names
//! (`journal.checkpoints.key`), over one row's place in the chain:
//!
//! ```text
//! message   = "cutover-checkpoint-v1\n" || canonical JSON of
//!             {"at": <row's at>, "chain_hash": <row's hash>, "event_id": <row's id>,
//!              "key": <key fingerprint>, "run_id": <row's run_id>}
//! signature = ed25519(private key, message), lowercase hex
//! fingerprint = "sha256:" || lowercase hex(sha256(32-byte public key))
//! ```
//!
//! The writer journals it as a `checkpoint` event right after the row it signs (in the same
//! transaction) every `every` events and after every operator decision, gate verdict, phase end,
//! resume, runbook change and run end; after the commit it appends the same facts as one JSON line
//! to every witness file ([`WitnessLine`]). The key's bytes never leave this module: only the
//! public key and its fingerprint are journaled.
//!
//! A checkpoint signed by an Azure Key Vault key ([`Signer::Vault`]) signs the same message with ES256
//! (ECDSA P-256 over its SHA-256; the vault is sent the digest):
//!
//! ```text
//! signature   = lowercase hex of the raw 64-byte R || S (the JWS form Key Vault returns)
//! fingerprint = "sha256:" || lowercase hex(sha256(JWK thumbprint input)), the input being the RFC 7638
//!               canonical JSON of the public key: {"crv":"P-256","kty":"EC","x":"<b64url>","y":"<b64url>"}
//! ```
//!
//! The writer never waits on the vault: it hands the row to sign to a task ([`SignRequest`]) and the
//! task journals the `checkpoint` event when the signature returns, a few events later. The key's
//! public JWK and fingerprint are journaled once at the run's start (`checkpoint_key`), and each
//! checkpoint names the fingerprint, the algorithm (`alg: ES256`) and the event it signs.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain::canonical_json;
use crate::model::{Event, RunId};

/// The domain-separation prefix of every signed message.
pub const MESSAGE_PREFIX: &str = "cutover-checkpoint-v1\n";

/// The default `every`: a checkpoint after this many events without one.
pub const DEFAULT_EVERY: u64 = 100;

/// A loaded signing key. `Debug` shows the fingerprint only.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    fingerprint: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.fingerprint)
    }
}

impl SigningKey {
    /// Reads an Ed25519 private key: PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8), PKCS#8 DER, the raw
    /// 32-byte seed, or the seed as 64 hex digits. Errors never quote the file's bytes.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("checkpoint key {}: {e}", path.display()))?;
        Self::from_bytes(&bytes).map_err(|why| format!("checkpoint key {}: {why}", path.display()))
    }

    /// See [`SigningKey::from_file`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let pair = if let Some(der) = pem_body(bytes, "PRIVATE KEY") {
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                .map_err(|_| "not an Ed25519 PKCS#8 private key".to_owned())?
        } else if bytes.len() == 32 {
            Ed25519KeyPair::from_seed_unchecked(bytes).map_err(|_| "not an Ed25519 seed".to_owned())?
        } else if let Some(seed) = hex_text(bytes) {
            Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| "not an Ed25519 seed".to_owned())?
        } else {
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).map_err(|_| {
                "not an Ed25519 private key (PEM or DER PKCS#8, a raw 32-byte seed, or 64 hex digits)"
                    .to_owned()
            })?
        };
        let fingerprint = fingerprint(pair.public_key().as_ref());
        Ok(Self { pair, fingerprint })
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The 32-byte public key, lowercase hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// The signature of [`message`], lowercase hex.
    pub fn sign(&self, message: &str) -> String {
        hex::encode(self.pair.sign(message.as_bytes()).as_ref())
    }
}

/// `sha256:` and the hex sha256 of a 32-byte public key.
pub fn fingerprint(public: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(public)))
}

/// The bytes a checkpoint signs (see the module docs).
pub fn message(run_id: &str, event_id: i64, chain_hash: &str, at: &str, key: &str) -> String {
    let body = serde_json::json!({
        "at": at, "chain_hash": chain_hash, "event_id": event_id, "key": key, "run_id": run_id,
    });
    format!("{MESSAGE_PREFIX}{}", canonical_json(&body))
}

/// The algorithm of an Azure Key Vault checkpoint (journaled as the checkpoint's `alg`).
pub const ES256: &str = "ES256";

/// An EC P-256 public key as a JWK (the members Key Vault's `GET key` returns that identify it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcJwk {
    pub kty: String,
    pub crv: String,
    /// base64url (no padding) of the 32-byte x coordinate.
    pub x: String,
    /// base64url (no padding) of the 32-byte y coordinate.
    pub y: String,
}

impl EcJwk {
    /// Checks it is an EC P-256 key with 32-byte coordinates; returns the SEC1 uncompressed point
    /// (`04 || x || y`) ring verifies with.
    pub fn point(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        if self.kty != "EC" && self.kty != "EC-HSM" {
            return Err(format!("the key type is {:?}, not EC", self.kty));
        }
        if self.crv != "P-256" {
            return Err(format!(
                "the curve is {:?}, not P-256 (ES256 checkpoints need a P-256 key)",
                self.crv
            ));
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let coord = |name: &str, v: &str| {
            b64.decode(v.trim_end_matches('='))
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| format!("`{name}` is not 32 bytes of base64url"))
        };
        let (x, y) = (coord("x", &self.x)?, coord("y", &self.y)?);
        Ok([&[4u8][..], &x, &y].concat())
    }

    /// The RFC 7638 thumbprint input: `{"crv","kty","x","y"}` in that order, no whitespace (`kty` always
    /// `EC`: an HSM-backed key has the same public key as a software one).
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::json!({
            "crv": self.crv, "kty": "EC", "x": self.x.trim_end_matches('='), "y": self.y.trim_end_matches('='),
        }))
    }

    /// `sha256:` and the hex sha256 of [`EcJwk::canonical`].
    pub fn fingerprint(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.canonical().as_bytes()))
        )
    }

    /// Reads a public JWK: the key itself, or Key Vault's `GET key` answer (`{"key": {...}}`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JWK (JSON): {e}"))?;
        let k = v.get("key").filter(|k| k.is_object()).unwrap_or(&v);
        let jwk: Self =
            serde_json::from_value(k.clone()).map_err(|e| format!("not an EC JWK (kty, crv, x, y): {e}"))?;
        jwk.point()?;
        Ok(jwk)
    }
}

/// Whether `signature_hex` (the raw 64-byte R || S, hex) is an ES256 signature of `message` by `jwk`.
/// ring's `ECDSA_P256_SHA256_FIXED` hashes the message itself: the same as a signature over its digest.
pub fn es256_ok(jwk: &EcJwk, message: &str, signature_hex: &str) -> bool {
    let (Ok(point), Ok(sig)) = (jwk.point(), hex::decode(signature_hex)) else {
        return false;
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(message.as_bytes(), &sig)
        .is_ok()
}

/// Whether `signature` (hex) is `public`'s (hex) signature of `message`.
pub fn signature_ok(public_hex: &str, message: &str, signature_hex: &str) -> bool {
    let (Ok(public), Ok(sig)) = (hex::decode(public_hex), hex::decode(signature_hex)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message.as_bytes(), &sig)
        .is_ok()
}

/// Reads a public key an auditor trusts: PEM `PUBLIC KEY` (SPKI), PEM `PRIVATE KEY` (its public
/// half), the raw 32 bytes, or 64 hex digits. Returns the 32 bytes as hex.
pub fn public_key_from_bytes(bytes: &[u8]) -> Result<String, String> {
    if let Some(der) = pem_body(bytes, "PUBLIC KEY") {
        // SPKI for Ed25519: a 12-byte header (SEQUENCE, AlgorithmIdentifier 1.3.101.112, BIT STRING) and the key.
        const HEADER: [u8; 12] = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        return match der.split_at_checked(12) {
            Some((h, k)) if h == HEADER && k.len() == 32 => Ok(hex::encode(k)),
            _ => Err("not an Ed25519 public key (SPKI)".into()),
        };
    }
    if pem_body(bytes, "PRIVATE KEY").is_some() {
        return SigningKey::from_bytes(bytes).map(|k| k.public_hex());
    }
    if bytes.len() == 32 {
        return Ok(hex::encode(bytes));
    }
    match hex_text(bytes) {
        Some(k) => Ok(hex::encode(k)),
        None => Err("not an Ed25519 public key (PEM, 32 raw bytes or 64 hex digits)".into()),
    }
}

/// The base64 body of the first `-----BEGIN {label}-----` block, decoded.
fn pem_body(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// 32 bytes written as 64 hex digits (surrounding whitespace allowed).
fn hex_text(bytes: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

/// Why a checkpoint was made (journaled with it).
pub mod reason {
    pub const EVERY: &str = "every";
    pub const DECISION: &str = "decision";
    pub const GATE: &str = "gate";
    pub const PHASE_END: &str = "phase_end";
    pub const RESUME: &str = "resume";
    pub const RUNBOOK_CHANGED: &str = "runbook_changed";
    pub const RUN_END: &str = "run_end";
    /// The run stopped without finishing (halted, waiting for a person, interrupted): its last event.
    pub const HALT: &str = "halt";
}

/// One line of a witness file: what a checkpoint signed, plus the signature. `cutover verify
/// --anchors FILE` reads these lines back (`event_id` and `chain_hash`; the rest is for a human).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WitnessLine {
    /// The journal file's name (not its directory).
    #[serde(default)]
    pub journal: String,
    #[serde(default)]
    pub run_id: String,
    pub event_id: i64,
    pub chain_hash: String,
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub key_fingerprint: String,
    #[serde(default)]
    pub signature: String,
}

/// A row the writer wants signed by a vault key: handed to the signing task, which journals the
/// `checkpoint` event when the signature returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    pub run_id: RunId,
    pub event_id: i64,
    pub at: String,
    pub chain_hash: String,
    pub reason: &'static str,
}

/// Who signs: a key in this process, or a vault reached by a task of its own.
pub enum Signer {
    /// Ed25519, signed in the writer's transaction.
    Local(SigningKey),
    /// ES256 by an Azure Key Vault key: the writer only queues the row ([`SignRequest`]).
    Vault {
        /// The key's fingerprint ([`EcJwk::fingerprint`]), part of every signed message.
        fingerprint: String,
        requests: tokio::sync::mpsc::UnboundedSender<SignRequest>,
    },
}

impl Signer {
    pub fn fingerprint(&self) -> &str {
        match self {
            Self::Local(k) => k.fingerprint(),
            Self::Vault { fingerprint, .. } => fingerprint,
        }
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(k) => write!(f, "{k:?}"),
            Self::Vault { fingerprint, .. } => write!(f, "Vault({fingerprint})"),
        }
    }
}

/// What the writer does about checkpoints: the key, when, and whom to tell.
pub struct Checkpointer {
    pub signer: Signer,
    /// The last row handed to a vault to sign (a `halt` checkpoint of it is not asked for twice).
    pub(crate) requested: i64,
    /// A checkpoint after this many events without one (at least 1).
    pub every: u64,
    /// Steps whose end closes a phase: a checkpoint after each one's `step_finished`.
    pub phase_ends: HashSet<String>,
    /// Files that get one JSON line per checkpoint, appended after the checkpoint is committed.
    pub witnesses: Vec<PathBuf>,
    /// The journal's file name, for the witness lines.
    pub journal_name: String,
    /// Events since the last checkpoint.
    pub(crate) since: u64,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("signer", &self.signer)
            .field("every", &self.every)
            .field("witnesses", &self.witnesses)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    pub fn new(key: SigningKey, every: u64) -> Self {
        Self::with_signer(Signer::Local(key), every)
    }

    pub fn with_signer(signer: Signer, every: u64) -> Self {
        Self {
            signer,
            requested: 0,
            every: every.max(1),
            phase_ends: HashSet::new(),
            witnesses: Vec::new(),
            journal_name: String::new(),
            since: 0,
        }
    }

    /// After journaling `event`: the reason to checkpoint now, if any. Counts the event.
    pub(crate) fn due(&mut self, event: &Event) -> Option<&'static str> {
        if matches!(event, Event::Checkpoint { .. }) {
            // A vault's checkpoint lands after the events it was asked for; those counted already.
            if matches!(self.signer, Signer::Local(_)) {
                self.since = 0;
            }
            return None;
        }
        self.since += 1;
        let why = match event {
            Event::OperatorDecision { .. } => Some(reason::DECISION),
            Event::GateEvaluated { .. } => Some(reason::GATE),
            Event::RunFinished { .. } => Some(reason::RUN_END),
            Event::RunResumed { .. } => Some(reason::RESUME),
            Event::RunbookChanged { .. } => Some(reason::RUNBOOK_CHANGED),
            Event::StepFinished { step, .. } if self.phase_ends.contains(step.as_str()) => {
                Some(reason::PHASE_END)
            }
            _ if self.since >= self.every => Some(reason::EVERY),
            _ => None,
        };
        if why.is_some() {
            self.since = 0;
        }
        why
    }

    /// The checkpoint event over the row (`run_id`, `event_id`, `at`, `chain_hash`), to journal right
    /// after it; `None` when a vault signs it (the row is queued for the signing task, which journals
    /// the checkpoint when the vault answers).
    pub(crate) fn checkpoint(
        &mut self,
        run_id: &RunId,
        event_id: i64,
        at: &str,
        chain_hash: &str,
        why: &'static str,
    ) -> Option<Event> {
        match &self.signer {
            Signer::Local(k) => {
                let key = k.fingerprint().to_owned();
                let signature = k.sign(&message(&run_id.0, event_id, chain_hash, at, &key));
                Some(Event::Checkpoint {
                    event_id,
                    chain_hash: chain_hash.to_owned(),
                    at: at.to_owned(),
                    key_fingerprint: key,
                    public_key: k.public_hex(),
                    signature,
                    reason: why.to_owned(),
                    alg: None,
                })
            }
            Signer::Vault { requests, .. } => {
                self.requested = self.requested.max(event_id);
                // A signing task that is gone (the run is ending) leaves this row to the chain alone.
                let _ = requests.send(SignRequest {
                    run_id: run_id.clone(),
                    event_id,
                    at: at.to_owned(),
                    chain_hash: chain_hash.to_owned(),
                    reason: why,
                });
                None
            }
        }
    }

    /// Append one line per checkpoint in `made` to every witness file. A witness that cannot be
    /// written is logged (the checkpoint itself is in the journal either way).
    pub(crate) fn witness(&self, made: &[(RunId, &Event)]) {
        if self.witnesses.is_empty() || made.is_empty() {
            return;
        }
        let mut text = String::new();
        for (run_id, e) in made {
            let Event::Checkpoint {
                event_id,
                chain_hash,
                at,
                key_fingerprint,
                signature,
                ..
            } = e
            else {
                continue;
            };
            let line = WitnessLine {
                journal: self.journal_name.clone(),
                run_id: run_id.0.clone(),
                event_id: *event_id,
                chain_hash: chain_hash.clone(),
                at: at.clone(),
                key_fingerprint: key_fingerprint.clone(),
                signature: signature.clone(),
            };
            if let Ok(l) = serde_json::to_string(&line) {
                text.push_str(&l);
                text.push('\n');
            }
        }
        for path in &self.witnesses {
            let written = super::open_private(path, true).and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.sync_data()
            });
            if let Err(e) = written {
                tracing::error!(witness = %path.display(), error = %e, "a checkpoint witness could not be written");
            }
        }
    }
}

/// An anchor: the chain's hash at one event, recorded outside the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub event_id: i64,
    pub chain_hash: String,
    /// Where it came from (`--anchor`, or `FILE:LINE`).
    pub source: String,
}

impl Anchor {
    /// `HASH@EVENT` (the hash: 64 hex digits; EVENT: the journal row id, as checkpoints name it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (hash, id) = text
            .trim()
            .split_once('@')
            .ok_or_else(|| format!("anchor {text:?}: write HASH@EVENT (64 hex digits @ an event id)"))?;
        let mut raw = [0u8; 32];
        hex::decode_to_slice(hash, &mut raw)
            .map_err(|_| format!("anchor {text:?}: the hash is not 64 hex digits"))?;
        let event_id: i64 = id
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("anchor {text:?}: the event is not a number from 1"))?;
        Ok(Self {
            event_id,
            chain_hash: hash.to_ascii_lowercase(),
            source: "--anchor".into(),
        })
    }

    /// Every anchor of a witness file (one JSON line per checkpoint; `HASH@EVENT` lines too; blank
    /// lines skipped).
    pub fn read_file(path: &Path) -> Result<Vec<Self>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let source = format!("{}:{}", path.display(), i + 1);
            let mut anchor = if line.starts_with('{') {
                let w: WitnessLine =
                    serde_json::from_str(line).map_err(|e| format!("{source}: not a witness line: {e}"))?;
                Self::parse(&format!("{}@{}", w.chain_hash, w.event_id))
                    .map_err(|e| format!("{source}: {e}"))?
            } else {
                Self::parse(line).map_err(|e| format!("{source}: {e}"))?
            };
            anchor.source = source;
            out.push(anchor);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let k = SigningKey::from_bytes(&[7u8; 32]).unwrap();
        let m = message(
            "r",
            5,
            &"a".repeat(64),
            "2026-01-01T00:00:00.000Z",
            k.fingerprint(),
        );
        let sig = k.sign(&m);
        assert!(signature_ok(&k.public_hex(), &m, &sig));
        let other = SigningKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(!signature_ok(&other.public_hex(), &m, &sig));
        let m2 = message(
            "r",
            6,
            &"a".repeat(64),
            "2026-01-01T00:00:00.000Z",
            k.fingerprint(),
        );
        assert!(!signature_ok(&k.public_hex(), &m2, &sig));
        assert!(!format!("{k:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn keys_load_from_pem_seed_and_hex() {
        use base64::Engine as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let k = SigningKey::from_bytes(pem.as_bytes()).unwrap();
        assert_eq!(public_key_from_bytes(pem.as_bytes()).unwrap(), k.public_hex());
        let spki = [
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ][..],
            &hex::decode(k.public_hex()).unwrap(),
        ]
        .concat();
        let pub_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(spki)
        );
        assert_eq!(public_key_from_bytes(pub_pem.as_bytes()).unwrap(), k.public_hex());
        let hexed = SigningKey::from_bytes(format!("{}\n", hex::encode([3u8; 32])).as_bytes()).unwrap();
        assert_eq!(
            hexed.public_hex(),
            SigningKey::from_bytes(&[3u8; 32]).unwrap().public_hex()
        );
        assert!(SigningKey::from_bytes(b"nope").is_err());
    }

    #[test]
    fn an_es256_signature_of_the_digest_verifies_over_the_message_with_its_jwk_only() {
        use base64::Engine as _;
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwk_of = |k: &p256::ecdsa::SigningKey| {
            let p = k.verifying_key().to_encoded_point(false);
            EcJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: b64.encode(p.x().unwrap()),
                y: b64.encode(p.y().unwrap()),
            }
        };
        let key = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let jwk = jwk_of(&key);
        assert!(jwk.fingerprint().starts_with("sha256:") && jwk.fingerprint().len() == 71);
        // The canonical form is RFC 7638's: members in order, no whitespace.
        assert!(
            jwk.canonical()
                .starts_with("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"")
        );
        let m = message(
            "r",
            5,
            &"a".repeat(64),
            "2026-01-01T00:00:00.000Z",
            &jwk.fingerprint(),
        );
        // What the vault does: sign the SHA-256 digest; ring verifies over the message itself.
        let digest = Sha256::digest(m.as_bytes());
        let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
        let raw = hex::encode(sig.to_bytes());
        assert!(es256_ok(&jwk, &m, &raw));
        assert!(!es256_ok(&jwk, &m.replace("\"r\"", "\"q\""), &raw));
        // DER is not the JWS form the vault returns.
        assert!(!es256_ok(&jwk, &m, &hex::encode(sig.to_der().as_bytes())));
        let other = jwk_of(&p256::ecdsa::SigningKey::from_bytes(&[8u8; 32].into()).unwrap());
        assert!(!es256_ok(&other, &m, &raw));
        // A `GET key` answer is read as its key.
        let answer = serde_json::json!({"key": {"kid": "k", "kty": "EC", "crv": "P-256", "x": jwk.x, "y": jwk.y, "key_ops": ["sign"]}});
        assert_eq!(EcJwk::from_json(answer.to_string().as_bytes()).unwrap(), jwk);
        let rsa = serde_json::json!({"kty": "RSA", "crv": "", "x": "", "y": ""});
        assert!(EcJwk::from_json(rsa.to_string().as_bytes()).is_err());
    }

    #[test]
    fn anchors_parse() {
        let h = "ab".repeat(32);
        let a = Anchor::parse(&format!("{h}@12")).unwrap();
        assert_eq!((a.event_id, a.chain_hash.as_str()), (12, h.as_str()));
        assert!(Anchor::parse("zz@1").is_err());
        assert!(Anchor::parse(&format!("{h}@0")).is_err());
        assert!(Anchor::parse(&h).is_err());
    }
}
