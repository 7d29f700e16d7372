//! Structural check of the positional tree against the generated schema: every unknown field,
//! unknown step kind, missing field and value of the wrong type in the file, not only the first one
//! serde stops at. Runs when the typed pass failed; its findings use the typed pass's codes, each at
//! the node it is about (see `load::load` for how the typed pass's one finding is merged).

use std::sync::OnceLock;

use serde_json::Value as Json;

use super::diag::{Diagnostic, Severity, did_you_mean};
use super::load::diag;
use super::steps::STEP_KINDS;
use super::tree::{Node, Value};

fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(&super::schema::generate()).unwrap_or(Json::Null))
}

pub(crate) fn check(tree: &Node, file: &str) -> Vec<Diagnostic> {
    let root = schema();
    let mut out = Vec::new();
    walk(tree, root, root, file, &mut out, 0);
    out
}

/// Follows `$ref`, single-element `allOf`, and `anyOf: [X, null]` (an `Option`).
fn resolve<'a>(mut s: &'a Json, root: &'a Json, node: &Node) -> Option<&'a Json> {
    for _ in 0..8 {
        if let Some(r) = s.get("$ref").and_then(Json::as_str) {
            s = root.get("definitions")?.get(r.strip_prefix("#/definitions/")?)?;
        } else if let Some([one]) = s.get("allOf").and_then(Json::as_array).map(Vec::as_slice) {
            s = one;
        } else if let Some(any) = s.get("anyOf").and_then(Json::as_array) {
            let non_null: Vec<&Json> = any
                .iter()
                .filter(|b| b.get("type") != Some(&Json::from("null")))
                .collect();
            if matches!(node.value, Value::Null) || non_null.len() != 1 {
                return None; // untagged alternatives: the typed pass judges them
            }
            s = non_null[0];
        } else {
            return Some(s);
        }
    }
    None
}

fn walk(node: &Node, schema: &Json, root: &Json, file: &str, out: &mut Vec<Diagnostic>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Some(s) = resolve(schema, root, node) else {
        return;
    };
    if let Some(d) = wrong_type(node, s, file) {
        out.push(d);
        return;
    }
    match &node.value {
        Value::Map(entries) => {
            if let Some(props) = s.get("properties").and_then(Json::as_object) {
                let mut allowed: Vec<(&str, &Json)> = props.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let mut known_shape = true;
                let mut required = names(s.get("required"));
                if let Some(variants) = s.get("oneOf").and_then(Json::as_array) {
                    // A step: the `kind` picks the variant whose fields are allowed too.
                    let kind = node.get("kind").and_then(Node::as_str);
                    let variant = variants
                        .iter()
                        .find(|v| v.pointer("/properties/kind/const").and_then(Json::as_str) == kind);
                    match (variant, kind) {
                        (Some(v), _) => {
                            if let Some(vp) = v.get("properties").and_then(Json::as_object) {
                                allowed.extend(vp.iter().map(|(k, v)| (k.as_str(), v)));
                            }
                            required.extend(names(v.get("required")));
                        }
                        (None, Some(word)) => {
                            known_shape = false;
                            if let Some(kn) = node.get("kind") {
                                out.push(unknown_kind(file, kn, word));
                            }
                        }
                        (None, None) => {
                            known_shape = false;
                            if let Some(kn) = node.get("kind") {
                                out.push(invalid_type(
                                    file,
                                    kn,
                                    "expected one step kind, e.g. `kind: dmf.export`",
                                ));
                            }
                        }
                    }
                }
                for name in required {
                    if !entries.iter().any(|(k, _)| k.as_str() == Some(name)) {
                        // A top-level key is added at the end of the file, a nested one in its mapping.
                        let pos = if depth == 0 {
                            after_last_line(node)
                        } else {
                            node.pos
                        };
                        let mut d = diag(
                            file,
                            pos,
                            Severity::Error,
                            "missing-field",
                            format!("missing field `{name}`"),
                        );
                        d.hint = Some("add the field; see the README's \"Runbook format\"".into());
                        out.push(d);
                    }
                }
                for (k, v) in entries {
                    let Some(name) = k.as_str() else { continue };
                    match allowed.iter().find(|(a, _)| *a == name) {
                        Some((_, sub)) => walk(v, sub, root, file, out, depth + 1),
                        None if known_shape => {
                            let names: Vec<&str> = allowed.iter().map(|(a, _)| *a).collect();
                            let hint = match did_you_mean(name, names.iter().copied()) {
                                Some(m) => format!("did you mean `{m}`? allowed here: {}", names.join(", ")),
                                None => format!("allowed here: {}", names.join(", ")),
                            };
                            let mut d = diag(
                                file,
                                k.pos,
                                Severity::Error,
                                "unknown-field",
                                format!("unknown field `{name}`"),
                            );
                            d.hint = Some(hint);
                            out.push(d);
                        }
                        None => {}
                    }
                }
            } else if let Some(sub) = s.get("additionalProperties").filter(|a| a.is_object()) {
                entries
                    .iter()
                    .for_each(|(_, v)| walk(v, sub, root, file, out, depth + 1));
            }
        }
        Value::Seq(items) => {
            if let Some(sub) = s.get("items") {
                items
                    .iter()
                    .for_each(|n| walk(n, sub, root, file, out, depth + 1));
            }
        }
        Value::Null | Value::Scalar(_) => {}
    }
}

/// The start of the line after the last node (where serde reports a missing top-level key).
fn after_last_line(root: &Node) -> super::tree::Pos {
    let mut last = root.pos.line;
    root.walk(&mut |n, _| last = last.max(n.pos.line));
    super::tree::Pos {
        line: last.saturating_add(1),
        column: 1,
    }
}

fn names(v: Option<&Json>) -> Vec<&str> {
    v.and_then(Json::as_array)
        .map(|a| a.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default()
}

fn what(node: &Node) -> String {
    match &node.value {
        Value::Null => "nothing".into(),
        Value::Scalar(s) => format!("`{s}`"),
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
    }
}

fn invalid_type(file: &str, node: &Node, expected: &str) -> Diagnostic {
    let mut d = diag(
        file,
        node.pos,
        Severity::Error,
        "invalid-type",
        format!("invalid type: {}, {expected}", what(node)),
    );
    d.hint = Some("check the value's form (text, number, list or mapping)".into());
    d
}

/// A value whose form the schema's `type` rules out: a list or mapping where a value is expected
/// (or the other way round), text where a whole number or `true`/`false` is.
fn wrong_type(node: &Node, s: &Json, file: &str) -> Option<Diagnostic> {
    let types: Vec<&str> = match s.get("type")? {
        Json::String(t) => vec![t.as_str()],
        Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
        _ => return None,
    };
    let has = |t: &str| types.contains(&t);
    let words = || {
        let w: Vec<&str> = types
            .iter()
            .filter(|t| **t != "null")
            .map(|t| match *t {
                "string" => "text",
                "array" => "a list",
                "object" => "a mapping",
                "integer" => "a whole number",
                "boolean" => "`true` or `false`",
                other => other,
            })
            .collect();
        w.join(" or ")
    };
    let scalar = ["string", "integer", "number", "boolean"];
    let expected = match &node.value {
        Value::Null => return None,
        Value::Seq(_) if !has("array") => words(),
        Value::Map(_) if !has("object") => words(),
        Value::Scalar(_) if !scalar.iter().any(|t| has(t)) => words(),
        Value::Scalar(v) if !has("string") && !has("number") => {
            let unsigned = s
                .get("format")
                .and_then(Json::as_str)
                .is_some_and(|f| f.starts_with("uint"));
            let ok = (has("integer")
                && if unsigned {
                    v.parse::<u64>().is_ok()
                } else {
                    v.parse::<i64>().is_ok()
                })
                || (has("boolean") && (v == "true" || v == "false"));
            if ok {
                return None;
            }
            if has("integer") && unsigned {
                "a whole number (0 or more)".into()
            } else if has("integer") {
                "a whole number".into()
            } else {
                "`true` or `false`".into()
            }
        }
        _ => return None,
    };
    Some(invalid_type(file, node, &format!("expected {expected}")))
}

fn unknown_kind(file: &str, node: &Node, word: &str) -> Diagnostic {
    let hint = match did_you_mean(word, STEP_KINDS.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? one of: {}", STEP_KINDS.join(", ")),
        None => format!("one of: {}", STEP_KINDS.join(", ")),
    };
    let mut d = diag(
        file,
        node.pos,
        Severity::Error,
        "unknown-step-kind",
        format!("unknown step kind `{word}`"),
    );
    d.hint = Some(hint);
    d
}
