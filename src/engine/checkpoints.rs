//! The runbook's `journal.checkpoints`, turned into the journal writer's [`Checkpointer`]: the key
//! file read (its bytes stay in this process), the witness files resolved, the steps that end a
//! phase listed.

use std::path::{Path, PathBuf};

use crate::journal::checkpoint::{Checkpointer, DEFAULT_EVERY, SignRequest, Signer, SigningKey};
use crate::runbook::Runbook;
use crate::runbook::plan::Plan;
use crate::runbook::vars::{EnvLookup, Piece, VarContext, VarRef, interpolate, parse};

/// A checkpointer, and the warnings to journal about it (a witness beside the journal).
pub struct Setup {
    pub checkpointer: Checkpointer,
    pub warnings: Vec<String>,
    /// What to journal about the key and the witnesses (fingerprint, public key, files).
    pub summary: String,
    /// The `notify_targets` entries that witness each checkpoint ([`super::alerting::witness`]).
    pub notify: Vec<String>,
    /// `key_vault`: the key to read once the environments are built, and the queue its signer takes the
    /// rows from ([`super::vault_signer`]). The checkpointer's signer is a placeholder until then.
    pub vault: Option<VaultSetup>,
}

/// A vault key that signs the checkpoints, before its public key is read.
pub struct VaultSetup {
    pub spec: crate::runbook::KeyVaultKey,
    pub requests: tokio::sync::mpsc::UnboundedSender<SignRequest>,
    pub queue: tokio::sync::mpsc::UnboundedReceiver<SignRequest>,
}

/// `None` when the runbook sets no checkpoints.
pub fn setup(
    rb: &Runbook,
    plan: &Plan,
    journal: &Path,
    vars: &dyn EnvLookup,
    ctx: &VarContext<'_>,
) -> Result<Option<Setup>, String> {
    let Some(c) = rb.journal.as_ref().and_then(|j| j.checkpoints.as_ref()) else {
        return Ok(None);
    };
    let (signer, vault) = match (&c.key, &c.key_vault) {
        (Some(key), None) => (Signer::Local(key_file(key, vars)?), None),
        (None, Some(kv)) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let signer = Signer::Vault {
                fingerprint: String::new(),
                requests: tx.clone(),
            };
            (
                signer,
                Some(VaultSetup {
                    spec: kv.clone(),
                    requests: tx,
                    queue: rx,
                }),
            )
        }
        _ => return Err("journal.checkpoints: name exactly one of `key` and `key_vault`".into()),
    };
    let mut cp = Checkpointer::with_signer(signer, c.every.map_or(DEFAULT_EVERY, u64::from));
    cp.journal_name = journal
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    let journal_dir = absolute_dir(journal);
    let mut notify = Vec::new();
    for w in &c.witness {
        let Some(file) = &w.file else {
            notify.extend(w.notify.clone());
            continue;
        };
        let path =
            PathBuf::from(interpolate(file, ctx).map_err(|e| format!("journal.checkpoints.witness: {e}"))?);
        if absolute_dir(&path) == journal_dir {
            warnings.push(format!(
                "checkpoint witness {} is in the journal's own directory: whoever can rewrite the journal can rewrite it too; keep a witness on another disk or host",
                path.display()
            ));
        }
        cp.witnesses.push(path);
    }
    // The last planned step of each phase closes it.
    let mut last: Vec<(&str, &str)> = Vec::new();
    for s in &plan.steps {
        match last.iter_mut().find(|(p, _)| *p == &*s.phase) {
            Some(e) => e.1 = &s.id.0,
            None => last.push((&s.phase, &s.id.0)),
        }
    }
    cp.phase_ends = last.into_iter().map(|(_, s)| s.to_owned()).collect();
    let witnesses = if cp.witnesses.is_empty() && notify.is_empty() {
        "none".to_owned()
    } else {
        cp.witnesses
            .iter()
            .map(|p| p.display().to_string())
            .chain(notify.iter().map(|t| format!("notify target `{t}`")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let by = match (&cp.signer, &vault) {
        (Signer::Local(k), _) => format!("Ed25519 key {} (public key {})", k.fingerprint(), k.public_hex()),
        (Signer::Vault { .. }, Some(v)) => format!(
            "ES256 by Key Vault key `{}`{} of environment `{}` (its public key is the `checkpoint_key` event)",
            v.spec.key,
            v.spec
                .version
                .as_deref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default(),
            v.spec.environment
        ),
        (Signer::Vault { .. }, None) => String::new(),
    };
    let summary = format!(
        "checkpoints: signed with {by}, every {} events and at decisions, gates, phase ends and the run's end; witnesses: {witnesses}",
        cp.every,
    );
    Ok(Some(Setup {
        checkpointer: cp,
        warnings,
        summary,
        notify,
        vault,
    }))
}

/// The Ed25519 key file `key` names (one `${VAR}`), read.
fn key_file(key: &str, vars: &dyn EnvLookup) -> Result<SigningKey, String> {
    let var = match parse(key).as_deref() {
        Ok(
            [
                Piece::Var {
                    var: VarRef::Env(name),
                    ..
                },
            ],
        ) => name.clone(),
        _ => return Err("journal.checkpoints.key must be one `${VAR}` naming the key file".into()),
    };
    let file = vars
        .get(&var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("journal.checkpoints.key: environment variable `{var}` is not set"))?;
    SigningKey::from_file(Path::new(&file))
}

/// The directory a file is in, made absolute (and canonical when it exists) for comparison.
fn absolute_dir(file: &Path) -> PathBuf {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn runbook(witness: &str) -> (Runbook, Plan) {
        let text = format!(
            "runbook: cp\nversion: 1.0.0\njournal:\n  checkpoints:\n    key: ${{CP_KEY}}\n    every: 7\n    witness:\n      - file: {witness}\nenvironments:\n  fno: {{ kind: fno, url: https://contoso.operations.dynamics.com }}\nphases:\n  - id: one\n    steps:\n      - {{ id: a, kind: wait, for: 1s }}\n      - {{ id: b, kind: wait, for: 1s }}\n  - id: two\n    steps:\n      - {{ id: c, kind: wait, for: 1s }}\n"
        );
        let rb = crate::runbook::load(&text, "cp.yaml").runbook.unwrap();
        let plan = crate::runbook::plan::plan(&rb);
        (rb, plan)
    }

    #[test]
    fn a_witness_beside_the_journal_is_warned_about_and_phase_ends_are_known() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.bin");
        std::fs::write(&key, [5u8; 32]).unwrap();
        let key_s = key.display().to_string();
        let vars = move |n: &str| (n == "CP_KEY").then(|| key_s.clone());
        let journal = dir.path().join("run.journal");
        let ctx = |env: &'static dyn EnvLookup| VarContext {
            env,
            run_id: "r".into(),
            run_date: "2026-01-01".into(),
            run_operator: "o".into(),
            captures: BTreeMap::new(),
            figures: BTreeMap::new(),
        };
        let vars: &'static dyn EnvLookup = Box::leak(Box::new(vars));
        let beside = dir.path().join("w.jsonl").display().to_string();
        let (rb, plan) = runbook(&beside);
        let s = setup(&rb, &plan, &journal, vars, &ctx(vars)).unwrap().unwrap();
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("journal's own directory"));
        assert_eq!(s.checkpointer.every, 7);
        let mut ends: Vec<_> = s.checkpointer.phase_ends.iter().cloned().collect();
        ends.sort();
        assert_eq!(ends, ["b", "c"]);
        // The summary names the public key and fingerprint, never the private bytes.
        assert!(s.summary.contains(s.checkpointer.signer.fingerprint()));
        assert!(!s.summary.contains(&hex::encode([5u8; 32])));
        let other = tempfile::tempdir().unwrap();
        let away = other.path().join("w.jsonl").display().to_string();
        let (rb, plan) = runbook(&away);
        let s = setup(&rb, &plan, &journal, vars, &ctx(vars)).unwrap().unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }
}
