//! Deterministic external handles. Every handle is derived from (run id, step id, attempt) with sha256, so a
//! resumed process computes exactly the handle its predecessor journaled, and a new attempt gets a new one.
//!
//! - `dmf.import` / `dmf.export`: the executionId, a UUID-shaped string (RFC 9562 version 8 layout).
//! - `dualwrite.request`: the step handle of wave map steps and `dualwrite.*` steps. It is never sent: the
//!   gateway generates its own request ids, so each action is journaled before it is sent as a
//!   `dualwrite.intent` handle carrying an `ActionIntent` (see `exec::dual_write`).
//! - `canary`: the roundtrip's record key `CANARY-<12 upper-case hex>` (19 characters: fits F&O's 20-character
//!   account numbers).
//! - none for pure reads, manual, wait, http, shell, notify and gates.

use sha2::{Digest, Sha256};

use crate::engine::RunId;
use crate::engine::event::Handle;
use crate::runbook::plan::{PlannedStep, PlannedWhat};

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        // A separator that cannot appear in ids, so ("a","bc") and ("ab","c") differ.
        h.update([0u8]);
    }
    h.finalize().into()
}

/// The first 16 bytes of `d` as a UUID string with the version-8 and variant bits set.
fn uuid_from(d: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A UUID-shaped id for (run id, step id, attempt).
pub fn uuid_like(run_id: &RunId, step: &str, attempt: u32) -> String {
    uuid_from(&digest(&[run_id.as_str(), step, &attempt.to_string()]))
}

/// A UUID-shaped id derived from another id and a label (a map id, `resume-2`).
pub fn derive_id(id: &str, label: &str) -> String {
    uuid_from(&digest(&[id, label]))
}

/// The canary key for (run id, step id, attempt).
pub fn canary_key(run_id: &RunId, step: &str, attempt: u32) -> String {
    let d = digest(&["canary", run_id.as_str(), step, &attempt.to_string()]);
    format!("CANARY-{}", hex::encode(&d[..6]).to_ascii_uppercase())
}

/// The handle kind of a planned step, if it has one.
pub fn handle_kind(step: &PlannedStep) -> Option<&'static str> {
    match &step.what {
        PlannedWhat::WaveMap { .. } => Some("dualwrite.request"),
        PlannedWhat::Gate { .. } => None,
        PlannedWhat::Step(s) => s.kind.spec().handle_kind(),
    }
}

/// See [`super::handle_for`].
pub fn handle_for(step: &PlannedStep, run_id: &RunId, attempt: u32) -> Option<Handle> {
    let kind = handle_kind(step)?;
    let id = if kind == "canary" {
        canary_key(run_id, step.id.as_str(), attempt)
    } else {
        uuid_like(run_id, step.id.as_str(), attempt)
    };
    Some(Handle {
        kind: kind.to_owned(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_uuid_shaped_and_distinct() {
        let run = RunId("r1".into());
        let a = uuid_like(&run, "import", 1);
        assert_eq!(a, uuid_like(&run, "import", 1));
        assert_ne!(a, uuid_like(&run, "import", 2));
        assert_ne!(a, uuid_like(&RunId("r2".into()), "import", 1));
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert_ne!(derive_id(&a, "resume-1"), derive_id(&a, "resume-2"));
        let k = canary_key(&run, "canary", 1);
        assert!(k.starts_with("CANARY-") && k.len() == 19, "{k}");
    }
}
