//! `cutover verify JOURNAL`: recompute the hash chain and the runbook hashes, read-only; check the
//! journal's signed checkpoints against trusted keys (`--key`) and its chain against anchors recorded
//! elsewhere (`--anchor HASH@EVENT`, `--anchors WITNESS_FILE`). Exit 0 intact, 1 naming the first
//! event that does not verify (or the anchor, checkpoint or key that does not), 2 not a journal or
//! bad input.

use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, exit};
use crate::audit::evidence::{Anchoring, EvidenceInput, TrustedKey};
use crate::audit::verify_evidence;
use crate::journal::checkpoint::Anchor;

/// The auditor's evidence: anchors and trusted keys (shared by `verify` and `report`).
#[derive(Debug, Args, Default)]
pub struct EvidenceArgs {
    /// The chain's hash at an event, recorded outside the journal (e.g. a checkpoint's witness line):
    /// HASH@EVENT, EVENT being the journal's event id. Repeatable. Fails on a mismatch, and when the
    /// journal ends before EVENT (truncated).
    #[arg(long = "anchor", value_name = "HASH@EVENT")]
    pub anchor: Vec<String>,
    /// A checkpoint witness file (one JSON line per checkpoint, as `journal.checkpoints.witness`
    /// writes it; `HASH@EVENT` lines too): every line is an anchor. Repeatable.
    #[arg(long = "anchors", value_name = "FILE")]
    pub anchors: Vec<PathBuf>,
    /// A public key the checkpoints must be signed by: a file (Ed25519: PEM `PUBLIC KEY`, raw 32 bytes
    /// or 64 hex digits; Azure Key Vault: the key's public JWK as JSON) or its fingerprint `sha256:<hex>`. Repeatable. Fails when a checkpoint does not
    /// verify or is signed by another key, or when no checkpoint is signed by it.
    #[arg(long = "key", value_name = "PUBKEY_FILE|JWK_FILE|FINGERPRINT")]
    pub key: Vec<String>,
}

impl EvidenceArgs {
    pub fn input(&self) -> Result<EvidenceInput, String> {
        let mut input = EvidenceInput::default();
        for a in &self.anchor {
            input.anchors.push(Anchor::parse(a)?);
        }
        for f in &self.anchors {
            input.anchors.extend(Anchor::read_file(f)?);
        }
        for k in &self.key {
            input.keys.push(TrustedKey::parse(k)?);
        }
        Ok(input)
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal file (opened read-only).
    pub journal: PathBuf,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `cutover verify JOURNAL`: 0 intact, 1 the first event (anchor, checkpoint, key) that does not
/// verify, 2 not a journal or bad input.
pub fn run(args: &VerifyArgs) -> i32 {
    let input = match args.evidence.input() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("cutover verify: {e}");
            return exit::INVALID;
        }
    };
    let verdict = match verify_evidence(&args.journal, &input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("cutover verify: {}: {e}", args.journal.display());
            return exit::INVALID;
        }
    };
    let a = &verdict.anchoring;
    let code = if verdict.result.is_ok() && a.ok {
        exit::OK
    } else {
        exit::FAILED
    };
    if args.format == OutputFormat::Json {
        let value = match &verdict.result {
            Ok(r) => {
                serde_json::json!({"verified": a.ok, "chain_verified": true, "report": r, "runs": verdict.runs, "anchoring": a})
            }
            Err(f) => {
                serde_json::json!({"verified": false, "chain_verified": false, "failure": f, "runs": verdict.runs, "anchoring": a})
            }
        };
        super::outln!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return code;
    }
    match &verdict.result {
        Ok(r) => {
            super::outln!(
                "journal intact: {} events, {} run(s), chain head {} (event {})",
                r.events,
                r.runs,
                r.head_hash,
                r.last_id
            );
            for run in &verdict.runs {
                super::outln!(
                    "  run {}  {} {}  runbook sha256 {} ok  {} events  started {}",
                    run.run_id,
                    run.runbook,
                    run.version,
                    run.runbook_sha256,
                    run.events,
                    crate::audit::text::at(run.started_at)
                );
            }
            print_anchoring(a, &input);
        }
        Err(f) => {
            let run = f
                .run_id
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            let seq = f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string());
            super::outln!(
                "journal does NOT verify: event {} (run {run}, seq {seq}): {}",
                f.event_id,
                f.reason
            );
            for p in &a.problems {
                super::outln!("  also: {p}");
            }
        }
    }
    code
}

fn print_anchoring(a: &Anchoring, input: &EvidenceInput) {
    for k in &input.keys {
        let n = a
            .checkpoints
            .iter()
            .filter(|c| c.valid && c.key_fingerprint == k.fingerprint)
            .count();
        let last = a
            .checkpoints
            .iter()
            .filter(|c| c.valid && c.key_fingerprint == k.fingerprint)
            .map(|c| c.event_id)
            .max();
        match last {
            Some(last) => super::outln!(
                "  {} key {} ({}): {n} checkpoint(s) verified, the last signing event {last}",
                a.checkpoints
                    .iter()
                    .find(|c| c.valid && c.key_fingerprint == k.fingerprint)
                    .map_or("", |c| c.alg.as_str()),
                k.fingerprint,
                k.source
            ),
            None => super::outln!("  key {} ({}): no checkpoint verified", k.fingerprint, k.source),
        }
    }
    if input.keys.is_empty() && !a.checkpoints.is_empty() {
        let valid = a.checkpoints.iter().filter(|c| c.valid).count();
        super::outln!(
            "  {} checkpoint(s), {valid} with a valid signature by the journaled key(s) {} (not checked against a trusted key: pass --key)",
            a.checkpoints.len(),
            a.signing_keys().join(", ")
        );
    }
    if !a.anchors.is_empty() {
        let matched = a.anchors.iter().filter(|x| x.matched).count();
        super::outln!(
            "  anchors: {matched} of {} matched{}",
            a.anchors.len(),
            a.anchored_through
                .map(|t| format!(", the furthest at event {t}"))
                .unwrap_or_default()
        );
    }
    const SHOWN: usize = 10;
    for p in a.problems.iter().take(SHOWN) {
        super::outln!("  FAILED: {p}");
    }
    if a.problems.len() > SHOWN {
        super::outln!(
            "  FAILED: ... and {} more (--format json lists them all)",
            a.problems.len() - SHOWN
        );
    }
    super::outln!("{}", a.statement);
}
