//! The hash chain and the canonical JSON it hashes. See the [module docs](super) for the rule.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the very first event of a journal: 64 hex zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Canonical JSON: compact (no whitespace), object keys sorted by their UTF-8 bytes at every level,
/// strings escaped as serde_json does (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
/// characters as `\u00xx` lowercase; everything else raw UTF-8), numbers as serde_json prints them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value);
    out
}

pub(crate) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => push_json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Already sorted unless serde_json's preserve_order feature is on; sorting is then a no-op pass.
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, k);
                out.push(':');
                write_value(out, val);
            }
            out.push('}');
        }
    }
}

/// Append `s` as a JSON string literal (serde_json's escaping).
///
/// Every string of every appended event passes through here (on the appender's thread) and the
/// writer's envelope pieces too, so runs of bytes that need no escape are skipped eight at a time.
pub fn push_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok())
            && !needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let c = b[i];
        let esc: Option<&str> = match c {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Whether any of the eight bytes of `w` is `"`, `\\` or a control character (< 0x20): the
/// word-at-a-time "has a byte less than n" and "has a zero byte" tests, exact as yes/no answers.
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let bs = w ^ (ONES * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(ONES) & !bs;
    (below_space | quote | backslash) & HIGH != 0
}

/// The `at` column: RFC 3339, UTC, milliseconds, `Z` suffix (e.g. `2026-11-28T03:12:45.120Z`).
pub fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The canonical envelope `{"at":..,"kind":..,"payload":..,"run_id":..,"seq":..}` for a payload that
/// is already canonical JSON. Equal to `canonical_json` of that object, built without re-parsing.
pub fn canonical_envelope(run_id: &str, seq: u64, at: &str, kind: &str, payload: &str) -> String {
    let mut c = String::with_capacity(payload.len() + run_id.len() + 96);
    canonical_envelope_into(&mut c, run_id, seq, at, kind, payload);
    c
}

/// [`canonical_envelope`] into a caller's buffer (cleared first), so the writer and `verify`
/// reuse one allocation for every row.
pub fn canonical_envelope_into(c: &mut String, run_id: &str, seq: u64, at: &str, kind: &str, payload: &str) {
    c.clear();
    c.push_str("{\"at\":");
    push_json_str(c, at);
    c.push_str(",\"kind\":");
    push_json_str(c, kind);
    c.push_str(",\"payload\":");
    c.push_str(payload);
    c.push_str(",\"run_id\":");
    push_json_str(c, run_id);
    let _ = write!(c, ",\"seq\":{seq}}}");
}

/// [`chain_digest`] of the [`canonical_envelope`] of a row, hashed piece by piece: the same bytes, without
/// copying the payload into an envelope first (a `RunStarted` of a 130,000-step plan is tens of megabytes, and
/// the copy was held beside the payload at the journal's peak).
pub fn envelope_digest(
    prev: &[u8; 32],
    run_id: &str,
    seq: u64,
    at: &str,
    kind: &str,
    payload: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    let mut piece = String::with_capacity(96);
    piece.push_str("{\"at\":");
    push_json_str(&mut piece, at);
    piece.push_str(",\"kind\":");
    push_json_str(&mut piece, kind);
    piece.push_str(",\"payload\":");
    h.update(piece.as_bytes());
    h.update(payload.as_bytes());
    piece.clear();
    piece.push_str(",\"run_id\":");
    push_json_str(&mut piece, run_id);
    let _ = write!(piece, ",\"seq\":{seq}}}");
    h.update(piece.as_bytes());
    h.finalize().into()
}

/// `hex(sha256(bytes(prev_hash) || canonical))`, where `bytes(prev_hash)` is the 32 bytes the
/// 64-hex-digit `prev_hash` encodes. A `prev_hash` that is not 64 hex digits hashes as its text
/// (it then cannot match any honest chain).
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    let mut raw = [0u8; 32];
    match hex::decode_to_slice(prev_hash, &mut raw) {
        Ok(()) => h.update(raw),
        Err(_) => h.update(prev_hash.as_bytes()),
    }
    h.update(canonical.as_bytes());
    hex_lower(&h.finalize().into())
}

/// [`chain_hash`] for a `prev_hash` already held as its 32 bytes: the raw digest.
pub fn chain_digest(prev: &[u8; 32], canonical: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical.as_bytes());
    h.finalize().into()
}

/// Lowercase hex of a digest (what `hex::encode` gives, without its per-char iterator).
pub fn hex_lower(bytes: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    hex_lower_into(bytes, &mut out).to_owned()
}

/// [`hex_lower`] into a caller's 64-byte buffer, borrowed back as text: no allocation (the writer
/// binds it straight into its insert).
pub fn hex_lower_into<'a>(bytes: &[u8; 32], out: &'a mut [u8; 64]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    // Only ASCII hex digits were written, so this never takes the empty branch.
    std::str::from_utf8(out).unwrap_or_default()
}

/// Hex sha256 of a text (the runbook's, checked by `verify`).
pub use crate::util::sha256_hex;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_sorts_keys_and_matches_serde_escaping() {
        let v = json!({"b": 1, "a": {"z": [1.5, null, true], "y": "q\"\\\n\u{1}é"}, "A": -3});
        let c = canonical_json(&v);
        assert_eq!(
            c,
            r#"{"A":-3,"a":{"y":"q\"\\\n\u0001é","z":[1.5,null,true]},"b":1}"#
        );
        // serde_json (sorted maps) agrees byte for byte.
        assert_eq!(c, serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn envelope_shortcut_equals_canonical_of_the_object() {
        let payload = canonical_json(&json!({"kind": "log", "message": "hi\t", "level": "info"}));
        let at = "2026-11-28T03:12:45.120Z";
        let fast = canonical_envelope("run-1", 7, at, "log", &payload);
        let slow = canonical_json(&json!({
            "seq": 7, "run_id": "run-1", "kind": "log", "at": at,
            "payload": serde_json::from_str::<Value>(&payload).unwrap(),
        }));
        assert_eq!(fast, slow);
    }

    #[test]
    fn escaping_a_word_at_a_time_equals_serde_json() {
        for c in (0u8..0x80).map(char::from).chain(['é', '€', '😀']) {
            for pad in 0..18 {
                let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(17 - pad.min(17)));
                let mut out = String::new();
                push_json_str(&mut out, &s);
                assert_eq!(out, serde_json::to_string(&s).unwrap(), "{c:?} after {pad}");
                let twice = format!("{s}{c}{s}");
                out.clear();
                push_json_str(&mut out, &twice);
                assert_eq!(out, serde_json::to_string(&twice).unwrap(), "{c:?} twice");
            }
        }
    }

    #[test]
    fn chain_hash_uses_prev_hash_bytes() {
        let expected = hex::encode(Sha256::digest([&[0u8; 32][..], b"{}"].concat()));
        assert_eq!(chain_hash(GENESIS_HASH, "{}"), expected);
        assert_ne!(chain_hash(&expected, "{}"), expected);
        assert_eq!(hex_lower(&chain_digest(&[0u8; 32], "{}")), expected);
        let mut raw = [0u8; 32];
        hex::decode_to_slice(&expected, &mut raw).unwrap();
        assert_eq!(hex_lower(&chain_digest(&raw, "{}")), chain_hash(&expected, "{}"));
    }

    #[test]
    fn an_envelope_hashed_piece_by_piece_is_the_envelope_hashed_whole() {
        let prev = Sha256::digest(b"prev").into();
        for (run, seq, at, kind, payload) in [
            (
                "r1",
                1,
                "2026-12-04T10:00:00.000Z",
                "run_started",
                r#"{"a":[1,2,{"b":"c\"d"}]}"#,
            ),
            ("run \"quoted\"\n", u64::MAX, "", "step_intent", "null"),
            ("", 0, "x", "", "\"\\u00e9\""),
        ] {
            let whole = chain_digest(&prev, &canonical_envelope(run, seq, at, kind, payload));
            assert_eq!(
                envelope_digest(&prev, run, seq, at, kind, payload),
                whole,
                "{run} {seq}"
            );
        }
    }
}
