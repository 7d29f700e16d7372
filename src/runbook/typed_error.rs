//! Turns a serde-saphyr error into a diagnostic with a stable code, pointing at the node it names.
//!
//! serde-saphyr reports the position of the node being deserialised when the error happened; for a
//! value error inside a step (a buffered, internally tagged enum) that is the key, so the position is
//! refined to the scalar the message quotes when it sits on the same line.

use serde_saphyr::Error;

use super::diag::{Diagnostic, Severity, did_you_mean};
use super::load::diag;
use super::steps::STEP_KINDS;
use super::tree::{Node, Pos};

pub(crate) fn classify(e: &Error, tree: Option<&Node>, file: &str) -> Diagnostic {
    let loc = e.location();
    let mut pos = loc.map_or(Pos { line: 1, column: 1 }, |l| Pos {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX),
        column: u32::try_from(l.column()).unwrap_or(u32::MAX),
    });
    if pos.line == 0 {
        pos = Pos { line: 1, column: 1 };
    }
    let raw = e.without_snippet().to_string();
    // serde-saphyr appends " at line L, column C"; the position is reported separately.
    let msg = raw
        .find(" at line ")
        .map_or(raw.as_str(), |i| &raw[..i])
        .trim()
        .to_owned();
    let quoted = first_quoted(&msg);
    let (code, message, hint): (&'static str, String, Option<String>) = if let Some(rest) =
        msg.strip_prefix("unknown field ")
    {
        let field = quoted.clone().unwrap_or_default();
        let expected = candidates(rest);
        let hint = match did_you_mean(&field, expected.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`? allowed here: {}", expected.join(", ")),
            None => format!("allowed here: {}", expected.join(", ")),
        };
        ("unknown-field", format!("unknown field `{field}`"), Some(hint))
    } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let word = quoted.clone().unwrap_or_default();
        let expected = candidates(rest);
        let is_kind = expected.iter().any(|c| c == "dmf.export");
        let pool: Vec<&str> = if is_kind {
            STEP_KINDS.to_vec()
        } else {
            expected.iter().map(String::as_str).collect()
        };
        let hint = match did_you_mean(&word, pool.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? one of: {}", pool.join(", ")),
            None => format!("one of: {}", pool.join(", ")),
        };
        if let (Some(t), Some(q)) = (tree, quoted.as_deref()) {
            pos = if is_kind {
                refine_kind(t, pos, q)
            } else {
                refine(t, pos, q)
            };
        }
        if is_kind {
            (
                "unknown-step-kind",
                format!("unknown step kind `{word}`"),
                Some(hint),
            )
        } else {
            ("invalid-value", format!("unknown value `{word}`"), Some(hint))
        }
    } else if msg.starts_with("invalid duration") || msg.starts_with("invalid timestamp") {
        if let (Some(t), Some(q)) = (tree, quoted.as_deref()) {
            pos = refine(t, pos, q);
        }
        let code = if msg.starts_with("invalid duration") {
            "invalid-duration"
        } else {
            "invalid-timestamp"
        };
        let (m, h) = msg
            .split_once(": ")
            .map_or((msg.clone(), None), |(a, b)| (a.to_owned(), Some(b.to_owned())));
        (code, m, h)
    } else if msg.starts_with("missing field") {
        (
            "missing-field",
            msg.clone(),
            Some("add the field; see the README's \"Runbook format\"".into()),
        )
    } else if msg.contains("untagged enum") {
        let hint = if msg.contains("MapSelection") {
            "write `all` or a list of map ids, e.g. `[customers, vendors]`"
        } else if msg.contains("Tolerance") {
            "write a count (`0`, `25`) or a percentage (`\"0.1%\"`)"
        } else if msg.contains("Rows") {
            "write a row count (`12000`) or counts per company (`{USMF: 8000, USRT: 4000}`)"
        } else {
            "see the README's \"Runbook format\" for the accepted forms"
        };
        (
            "invalid-value",
            "this value has the wrong form".to_owned(),
            Some(hint.to_owned()),
        )
    } else if msg.starts_with("invalid ") {
        (
            "invalid-type",
            msg.clone(),
            Some("check the value's form (text, number, list or mapping)".into()),
        )
    } else if msg.contains("Depth") || msg.contains("recursion limit") || msg.contains("nesting") {
        (
            "too-deep",
            "the document is nested too deeply".to_owned(),
            Some(format!(
                "a runbook needs fewer than {} levels; is this the right file?",
                super::load::MAX_DEPTH
            )),
        )
    } else if msg.contains("alias") || msg.contains("Alias") || msg.contains("anchor") {
        (
            "alias-limit",
            "aliases expand beyond the allowed size".to_owned(),
            Some("runbooks need no YAML aliases; write the values out".into()),
        )
    } else if msg.contains("budget") {
        (
            "yaml-budget",
            format!("the document exceeds a parsing limit ({msg})"),
            None,
        )
    } else {
        (
            "yaml-syntax",
            msg.clone(),
            Some("fix the YAML at this position (indentation, a missing `:` or an unclosed bracket)".into()),
        )
    };
    let mut d = diag(file, pos, Severity::Error, code, message);
    d.hint = hint;
    d
}

fn first_quoted(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find(['`', '\''])?;
    Some(msg[start..start + len].to_owned())
}

/// `expected one of a, b, c` / `expected `a` or `b`` → the names.
fn candidates(rest: &str) -> Vec<String> {
    let Some(i) = rest.find("expected") else {
        return Vec::new();
    };
    let list = rest[i + "expected".len()..]
        .trim_start()
        .trim_start_matches("one of")
        .trim();
    list.split([',', ' '])
        .map(|s| s.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .filter(|s| !s.is_empty() && *s != "or")
        .map(str::to_owned)
        .collect()
}

/// The first value scalar with text `text` at or after `pos` (the error names the mapping it was in).
fn refine(tree: &Node, pos: Pos, text: &str) -> Pos {
    let mut best: Option<Pos> = None;
    tree.walk(&mut |n, key| {
        if key.is_some() && n.pos >= pos && n.as_str() == Some(text) {
            best = Some(best.map_or(n.pos, |b| b.min(n.pos)));
        }
    });
    best.unwrap_or(pos)
}

/// The `kind: <word>` value nearest before `pos` (serde reports the step after reading its tag).
fn refine_kind(tree: &Node, pos: Pos, word: &str) -> Pos {
    let mut before: Option<Pos> = None;
    let mut after: Option<Pos> = None;
    tree.walk(&mut |n, key| {
        if key.and_then(Node::as_str) == Some("kind") && n.as_str() == Some(word) {
            if n.pos <= pos {
                before = Some(before.map_or(n.pos, |b| b.max(n.pos)));
            } else {
                after = Some(after.map_or(n.pos, |a| a.min(n.pos)));
            }
        }
    });
    before.or(after).unwrap_or(pos)
}
