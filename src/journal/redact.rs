//! Secret masking applied to every event before it is hashed and written.
//!
//! A [`Redactor`] holds the run's secret values (client secrets from the environment, tokens the
//! run obtains). Every string in a payload (object keys included) that contains one has that part
//! replaced by [`REDACTED`]. Independently of the known values, `Bearer <token>` (any case) keeps
//! only `Bearer [REDACTED]`, and JWT-shaped text (`eyJ…` base64url `.` base64url `.` base64url) is
//! replaced whole. Values shorter than [`MIN_SECRET_LEN`] are ignored: they cannot be told apart
//! from ordinary text and masking them would corrupt timestamps and ids.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{Map, Value};

/// What a masked secret reads as.
pub const REDACTED: &str = "[REDACTED]";
/// Shorter values are not registered (see the module docs).
pub const MIN_SECRET_LEN: usize = 8;

/// Shared, cheaply clonable set of secret values; add tokens as the run obtains them.
/// Its `Debug` prints only how many secrets it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.secrets.read().map_or(0, |s| s.len());
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_secrets<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let r = Self::new();
        for s in secrets {
            r.add_secret(s);
        }
        r
    }

    /// Register a secret value (ignored when shorter than [`MIN_SECRET_LEN`] or already known).
    pub fn add_secret(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut s = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if !s.contains(&secret) {
            s.push(secret);
            // Longest first, so a secret that contains another is masked whole.
            s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    /// The masked text, or `None` when `text` holds nothing to mask.
    pub fn redact_str(&self, text: &str) -> Option<String> {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        redact_with(&secrets, text)
    }

    /// False only when masking cannot change any string of the value whose canonical JSON is
    /// `canonical` (see [`canonical_json`](super::chain::canonical_json)): no known secret (in its
    /// JSON-escaped form), no `eyJ`, no `bearer` in any case occurs anywhere in the text. Escaping
    /// is character by character, so a secret inside a string (or key) shows up escaped inside
    /// the text; `eyJ` and `bearer` are plain ASCII letters, never escaped. A true answer may be
    /// a false alarm (the text also holds keys of the schema and numbers): then mask the value.
    pub fn may_redact_canonical(&self, canonical: &str) -> bool {
        if canonical.contains("eyJ") || contains_bearer(canonical.as_bytes()) {
            return true;
        }
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        secrets.iter().any(|secret| {
            let mut escaped = String::with_capacity(secret.len() + 2);
            super::chain::push_json_str(&mut escaped, secret);
            // Without its quotes: the secret may sit anywhere inside a longer string.
            let inner = &escaped[1..escaped.len() - 1];
            canonical.contains(inner)
        })
    }

    /// Mask every string (and object key) inside `value` in place; true when anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        redact_value_with(&secrets, value)
    }
}

fn redact_value_with(secrets: &[String], value: &mut Value) -> bool {
    match value {
        Value::String(s) => match redact_with(secrets, s) {
            Some(r) => {
                *s = r;
                true
            }
            None => false,
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| redact_value_with(secrets, v) | acc),
        Value::Object(map) => {
            let mut changed = false;
            for v in map.values_mut() {
                changed |= redact_value_with(secrets, v);
            }
            if map.keys().any(|k| redact_with(secrets, k).is_some()) {
                let old = std::mem::take(map);
                let mut new = Map::new();
                for (k, v) in old {
                    new.insert(redact_with(secrets, &k).unwrap_or(k), v);
                }
                *map = new;
                changed = true;
            }
            changed
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn redact_with(secrets: &[String], text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for secret in secrets {
        let cur = out.as_deref().unwrap_or(text);
        if cur.contains(secret.as_str()) {
            out = Some(cur.replace(secret.as_str(), REDACTED));
        }
    }
    let cur = out.as_deref().unwrap_or(text);
    if let Some(masked) = mask_patterns(cur) {
        out = Some(masked);
    }
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// Length of a JWT starting at `s[0..]` (`eyJ` + base64url, '.', base64url, '.', base64url), if any.
fn jwt_len(s: &[u8]) -> Option<usize> {
    if !s.starts_with(b"eyJ") {
        return None;
    }
    let mut i = 0;
    for part in 0..3 {
        let start = i;
        while i < s.len() && is_b64url(s[i]) {
            i += 1;
        }
        // Header and payload are never short; the signature may be empty ("alg": "none").
        if part < 2 && i - start < 4 {
            return None;
        }
        if part < 2 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// `bearer` in any ASCII case somewhere in `b`.
fn contains_bearer(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c | 0x20 == b'b') {
        let at = i + off;
        if b.len() - at >= 6 && b[at..at + 6].eq_ignore_ascii_case(b"bearer") {
            return true;
        }
        i = at + 1;
    }
    false
}

/// Mask `Bearer <token>` and JWT-shaped text; `None` when there is neither.
fn mask_patterns(text: &str) -> Option<String> {
    let b = text.as_bytes();
    if !(text.contains("eyJ") || contains_bearer(b)) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b.len() - i > 7 && b[i..i + 7].eq_ignore_ascii_case(b"bearer ") {
            let mut j = i + 7;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let tok_start = j;
            while j < b.len() && is_token_byte(b[j]) {
                j += 1;
            }
            if j > tok_start && &text[tok_start..j] != REDACTED {
                out.push_str(&text[copied..tok_start]);
                out.push_str(REDACTED);
                copied = j;
                changed = true;
            }
            i = j.max(i + 1);
            continue;
        }
        if let Some(n) = jwt_len(&b[i..]) {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += n;
            copied = i;
            changed = true;
            continue;
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_known_secrets_inside_strings_and_keys() {
        let r = Redactor::with_secrets(["s3cr3t-value-123", "short"]);
        let mut v =
            json!({"msg": "auth failed with s3cr3t-value-123!", "s3cr3t-value-123": 1, "n": 5, "t": "short"});
        assert!(r.redact_value(&mut v));
        let text = v.to_string();
        assert!(!text.contains("s3cr3t-value-123"));
        assert_eq!(v["msg"], "auth failed with [REDACTED]!");
        assert_eq!(v["[REDACTED]"], 1);
        assert_eq!(v["t"], "short", "values under the minimum length are not secrets");
    }

    #[test]
    fn tokens_added_at_run_time_are_masked_through_clones() {
        let r = Redactor::new();
        let shared = r.clone();
        assert_eq!(r.redact_str("token abcdefghijkl"), None);
        shared.add_secret("abcdefghijkl");
        assert_eq!(
            r.redact_str("token abcdefghijkl").as_deref(),
            Some("token [REDACTED]")
        );
        assert_eq!(format!("{r:?}"), "Redactor(1 secrets)");
    }

    #[test]
    fn masks_bearer_and_jwt_shapes() {
        let r = Redactor::new();
        assert_eq!(
            r.redact_str("Authorization: bearer abc.DEF-123/x=").as_deref(),
            Some("Authorization: bearer [REDACTED]")
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl";
        assert_eq!(
            r.redact_str(&format!("got {jwt} back")).as_deref(),
            Some("got [REDACTED] back")
        );
        assert_eq!(r.redact_str("eyJ is not a token"), None);
        assert_eq!(r.redact_str("plain text"), None);
        assert_eq!(r.redact_str("Bearer [REDACTED]"), None);
    }

    #[test]
    fn the_canonical_precheck_never_misses_what_masking_would_change() {
        let r = Redactor::with_secrets(["s3cr3t\"value\n123", "plain-secret-99"]);
        let cases = [
            json!({"m": "x s3cr3t\"value\n123 y"}),
            json!({"k plain-secret-99": 1}),
            json!({"a": ["Authorization: BeArEr abc"]}),
            json!({"t": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln"}),
            json!({"n": 5, "s": "nothing here"}),
            json!({"s": "eyJ is not a token", "b": "bearer"}),
        ];
        for v in cases {
            let text = crate::journal::chain::canonical_json(&v);
            let mut masked = v.clone();
            if r.redact_value(&mut masked) {
                assert!(r.may_redact_canonical(&text), "{text}");
            }
        }
        assert!(!r.may_redact_canonical(r#"{"n":5,"s":"nothing here"}"#));
        assert!(contains_bearer(b"xxBEARER"));
        assert!(!contains_bearer(b"beare"));
    }
}
