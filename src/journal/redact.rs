//! Secret masking applied to every event before it is hashed and written.
//!
//! A [`Redactor`] holds the run's secret values (client secrets from the environment, tokens the
//! run obtains). Every string in a payload (object keys included) that contains one has that part
//! replaced by [`REDACTED`]. Independently of the known values, `Bearer <token>` (any case) keeps
//! only `Bearer [REDACTED]`, and JWT-shaped text (`eyJ…` base64url `.` base64url `.` base64url) is
//! replaced whole.
//!
//! Each secret is masked in every form it travels in, not only as written: URL-encoded (a form post, a
//! query: `+` or `%20` for a space, upper- or lower-case hex), JSON-escaped (an error body echoing it) and
//! base64 (alone, or at any alignment inside longer base64 such as a Basic header). Every non-empty
//! secret is masked, however short: one shorter than [`WHOLE_WORD_BELOW`] where it stands alone (not
//! inside a longer word or number, which would make every output unreadable); `validate` warns when a
//! secret is shorter than 12 characters.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::{Map, Value};

/// What a masked secret reads as.
pub const REDACTED: &str = "[REDACTED]";
/// Every non-empty secret is registered (see the module docs); `validate` warns below
/// [`WEAK_SECRET_LEN`].
pub const MIN_SECRET_LEN: usize = 1;
/// Shorter secrets get a `validate` warning: they are still masked, also inside ordinary text.
pub const WEAK_SECRET_LEN: usize = 12;

/// The forms a secret travels in besides itself: URL-encoded (form and query styles, upper- and lower-case
/// hex), JSON-escaped, base64 (see [`crate::util::b64_forms`]).
pub fn encoded_forms(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut form = String::new();
    let mut pct = String::new();
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            form.push(char::from(b));
        } else if b == b' ' {
            form.push('+');
        } else {
            form.push_str(&format!("%{b:02X}"));
        }
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            pct.push(char::from(b));
        } else {
            pct.push_str(&format!("%{b:02X}"));
        }
    }
    let lower = |s: &str| {
        // Lower-case only the two hex digits after each `%`.
        let mut o = String::with_capacity(s.len());
        let mut hex = 0;
        for c in s.chars() {
            if hex > 0 {
                o.push(c.to_ascii_lowercase());
                hex -= 1;
            } else {
                if c == '%' {
                    hex = 2;
                }
                o.push(c);
            }
        }
        o
    };
    out.push(lower(&form));
    out.push(lower(&pct));
    out.push(form);
    out.push(pct);
    out.push(crate::connectors::transport::encode_query_part(secret));
    let mut json = String::new();
    super::chain::push_json_str(&mut json, secret);
    out.push(json[1..json.len() - 1].to_owned());
    out.extend(crate::util::b64_forms(secret.as_bytes()));
    out.retain(|f| f != secret && !f.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Shared, cheaply clonable set of secret values; add tokens as the run obtains them.
/// Its `Debug` prints only how many secrets it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Secrets>>,
}

/// The secret values (each with its encoded forms) and, beside them, how each reads inside JSON text.
#[derive(Default)]
struct Secrets {
    /// Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
    /// Every value JSON-escaped, without quotes (deduplicated): what
    /// [`Redactor::may_redact_canonical`] looks for, escaped once here rather than per event.
    escaped: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.secrets.read().map_or(0, |s| s.values.len());
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

    /// Register a secret value and its [`encoded_forms`] (ignored when empty or already known).
    pub fn add_secret(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut guard = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        let Secrets { values, escaped } = &mut *guard;
        if values.contains(&secret) {
            return;
        }
        let forms = encoded_forms(&secret);
        values.push(secret);
        for f in forms {
            if !values.contains(&f) {
                values.push(f);
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        values.sort_by_key(|x| std::cmp::Reverse(x.len()));
        escaped.clear();
        for v in values.iter() {
            let mut json = String::with_capacity(v.len() + 2);
            super::chain::push_json_str(&mut json, v);
            // Without its quotes: the secret may sit anywhere inside a longer string.
            let inner = &json[1..json.len() - 1];
            if !escaped.iter().any(|e| e == inner) {
                escaped.push(inner.to_owned());
            }
        }
    }

    /// The masked text, or `None` when `text` holds nothing to mask.
    pub fn redact_str(&self, text: &str) -> Option<String> {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        redact_with(&secrets.values, text)
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
        secrets
            .escaped
            .iter()
            .any(|inner| canonical.contains(inner.as_str()))
    }

    /// Mask every string (and object key) inside `value` in place; true when anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        redact_value_with(&secrets.values, value)
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

/// Below this length a secret is masked only where it stands alone (not inside a longer word or number):
/// a one-letter password must not turn `expired` into `e[REDACTED]pired`.
pub const WHOLE_WORD_BELOW: usize = 8;

fn redact_with(secrets: &[String], text: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for secret in secrets {
        let cur = out.as_deref().unwrap_or(text);
        if !cur.contains(secret.as_str()) {
            continue;
        }
        if secret.len() >= WHOLE_WORD_BELOW {
            out = Some(cur.replace(secret.as_str(), REDACTED));
        } else if let Some(masked) = replace_standalone(cur, secret) {
            out = Some(masked);
        }
    }
    let cur = out.as_deref().unwrap_or(text);
    if let Some(masked) = mask_patterns(cur) {
        out = Some(masked);
    }
    out
}

/// `text` with every occurrence of `secret` that is not part of a longer alphanumeric run masked; `None`
/// when there is none.
fn replace_standalone(text: &str, secret: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    let mut changed = false;
    while let Some(off) = text[from..].find(secret) {
        let at = from + off;
        let end = at + secret.len();
        let glued = |i: Option<&u8>| i.is_some_and(u8::is_ascii_alphanumeric);
        let before = if at == 0 { None } else { b.get(at - 1) };
        if !glued(before) && !glued(b.get(end)) {
            out.push_str(&text[copied..at]);
            out.push_str(REDACTED);
            copied = end;
            changed = true;
        }
        from = end.max(at + 1);
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
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
        assert_eq!(v["t"], "[REDACTED]", "a short secret is masked too");
        let one = Redactor::with_secrets(["x"]);
        assert_eq!(one.redact_str("expired x5t"), None, "only where it stands alone");
        assert_eq!(
            one.redact_str("password=x&y").as_deref(),
            Some("password=[REDACTED]&y")
        );
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
        assert!(format!("{r:?}").starts_with("Redactor("));
    }

    #[test]
    fn masks_the_encoded_forms_of_a_secret() {
        use base64::Engine as _;
        let secret = "p@ss w/rd+\"x\"&100%";
        let r = Redactor::with_secrets([secret]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
        for text in [
            format!("client_secret={}", encoded_forms(secret)[0]),
            "client_secret=p%40ss+w%2Frd%2B%22x%22%26100%25".to_owned(),
            "q=p%40ss%20w%2Frd%2B%22x%22%26100%25".to_owned(),
            "q=p%40ss%20w%2frd%2b%22x%22%26100%25".to_owned(),
            r#"{"echo":"p@ss w/rd+\"x\"&100%"}"#.to_owned(),
            format!("Authorization: Basic {b64}"),
        ] {
            let masked = r.redact_str(&text).unwrap_or_else(|| text.clone());
            assert!(masked.contains(REDACTED), "not masked: {text} -> {masked}");
            assert!(
                !masked.contains("w/rd") && !masked.contains("w%2F") && !masked.contains("w%2f"),
                "{masked}"
            );
        }
        let inner = &b64[8..b64.len() - 4];
        assert!(r.redact_str(&b64).is_some_and(|m| !m.contains(inner)), "{b64}");
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
