//! Small helpers every layer may use; this module depends on nothing of the crate.

pub mod dmf_package;
pub mod duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of some bytes (a runbook's text, a package, a scenario file).
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// base64url without padding (JWT segments, certificate thumbprints).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The base64 forms of `secret` as they appear inside any longer base64 text (standard and url-safe
/// alphabets, at each of the three byte alignments, plus the whole padded encoding): what a redactor
/// must also mask. Forms shorter than 8 characters are left out (they would mask ordinary text).
pub fn b64_forms(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for k in 0..3usize {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(secret);
        let total_bits = 8 * bytes.len();
        // Characters holding a bit of the filler, and a last one holding padding bits, are not the secret's.
        let skip = (8 * k).div_ceil(6);
        let full = total_bits / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let text = engine.encode(&bytes);
            if let Some(mid) = text.get(skip..full)
                && mid.len() >= 8
            {
                out.push(mid.to_owned());
            }
        }
    }
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(engine.encode(secret));
    }
    out.retain(|f| f.len() >= 8);
    out.sort();
    out.dedup();
    out
}

/// Decodes base64url with or without padding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// A character that must not reach a terminal or a document as itself: C0 and C1 controls (ESC starts
/// CSI and OSC sequences: screen clears, title changes, OSC 52 clipboard writes, OSC 8 links; 0x9B is a
/// one-byte CSI), DEL, and the invisible bidi and zero-width format characters (U+202E reverses what
/// follows it on screen).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Text from outside (a service's message, a record's value, a file name) made inert for one line of a
/// terminal or a document: every control, escape and bidi character is written as a visible escape (`\n`,
/// `\r`, `\x1b`, `\u{202e}`), so nothing it holds can move the cursor, change the terminal, or start a new
/// line that reads like an event. Tabs stay. The one sanitizer of headless text, stderr and the Markdown
/// report.
pub fn inert_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c != '\t' && is_hostile(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_hostile(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:04x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The crate's one rule for where a request may go: https anywhere; plain http only to a loopback
/// host (the simulator). Validation (`insecure-url`) and every connector request apply it.
pub fn url_allowed(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host_str() {
            Some(h) => {
                let bare = h.trim_start_matches('[').trim_end_matches(']');
                bare.eq_ignore_ascii_case("localhost")
                    || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_the_empty_string() {
        assert_eq!(
            super::sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
