//! Structural check of the positional tree against the generated schema: every unknown field and
//! unknown step kind in the file, not only the first one serde stops at. Runs when the typed pass
//! failed; its findings use the same codes and messages as the typed pass, so duplicates merge.

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
    match &node.value {
        Value::Map(entries) => {
            if let Some(props) = s.get("properties").and_then(Json::as_object) {
                let mut allowed: Vec<(&str, &Json)> = props.iter().map(|(k, v)| (k.as_str(), v)).collect();
                let mut known_shape = true;
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
                        }
                        (None, Some(word)) => {
                            known_shape = false;
                            if let Some(kn) = node.get("kind") {
                                out.push(unknown_kind(file, kn, word));
                            }
                        }
                        (None, None) => known_shape = false,
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
