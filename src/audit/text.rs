//! Small text helpers shared by the renderers: times, durations, enum names, and the last line of
//! defence against a credential in free text.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::chain::format_at;

/// A time as the journal writes it (RFC 3339 UTC, milliseconds, `Z`).
pub fn at(t: DateTime<Utc>) -> String {
    format_at(t)
}

/// The serde name of a unit enum variant (`OperatorAction::TakeOverLease` → `take_over_lease`).
pub fn enum_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// `1h 02m 03s`, `4m 05s`, `6.2s`, `120ms` (the crate's readable duration formatter).
pub use crate::util::duration::readable_ms as duration;

/// A signed duration (`+4m 05s`, `-30.0s`).
pub fn signed_duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    format!("{sign}{}", duration(ms.unsigned_abs()))
}

/// Masks what is left of a credential in free text. The journal is redacted when written (secret
/// values become `[REDACTED]`, `Bearer <token>` becomes `Bearer [REDACTED]`); a report goes further
/// and drops the scheme word too, so no output ever contains `Bearer ` followed by anything.
pub fn scrub(text: &str) -> String {
    let text = crate::journal::Redactor::new()
        .redact_str(text)
        .unwrap_or_else(|| text.to_owned());
    let lower = text.to_ascii_lowercase();
    if !lower.contains("bearer") {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    let mut lrest = lower.as_str();
    while let Some(i) = lrest.find("bearer") {
        let after = &lrest[i + 6..];
        let ws = after.len() - after.trim_start().len();
        if ws == 0 {
            out.push_str(&rest[..i + 6]);
            rest = &rest[i + 6..];
            lrest = &lrest[i + 6..];
            continue;
        }
        out.push_str(&rest[..i]);
        let tok_start = i + 6 + ws;
        let tok_len = lrest[tok_start..]
            .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '"')
            .unwrap_or(lrest.len() - tok_start);
        out.push_str("[REDACTED]");
        rest = &rest[tok_start + tok_len..];
        lrest = &lrest[tok_start + tok_len..];
    }
    out.push_str(rest);
    out
}

/// Which keys signed the checkpoints and how many verified with each (` Checkpoints: 12 verified with
/// key sha256:… (trusted), the last signing event 1234.`), or nothing when the journal has none.
pub fn checkpoint_keys(a: &super::evidence::Anchoring) -> String {
    let mut out = String::new();
    for key in a.signing_keys() {
        let of_key: Vec<_> = a
            .checkpoints
            .iter()
            .filter(|c| c.key_fingerprint == key)
            .collect();
        let valid = of_key.iter().filter(|c| c.valid).count();
        let trusted = if a.trusted_keys.contains(&key) {
            "trusted: given to verify"
        } else {
            "journaled key, not checked against a trusted one"
        };
        let last = of_key.iter().filter(|c| c.valid).map(|c| c.event_id).max();
        let alg = of_key.first().map_or("", |c| c.alg.as_str());
        out.push_str(&format!(
            " Checkpoints: {valid} of {} verified with {alg} key {key} ({trusted}){}.",
            of_key.len(),
            last.map(|l| format!(", the last signing event {l}"))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_drops_bearer_and_its_token() {
        assert_eq!(
            scrub("Authorization: Bearer [REDACTED] x"),
            "Authorization: [REDACTED] x"
        );
        assert_eq!(scrub("bearer  abc.def"), "[REDACTED]");
        assert_eq!(scrub("the bearers were late"), "the bearers were late");
        assert_eq!(scrub("plain"), "plain");
        assert!(
            !scrub("a BEARER tok, b Bearer t2")
                .to_lowercase()
                .contains("bearer ")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(120), "120ms");
        assert_eq!(duration(6_250), "6.2s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_723_000), "1h 02m 03s");
        assert_eq!(signed_duration(-30_000), "-30.0s");
    }
}
