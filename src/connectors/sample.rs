//! Record sampling: field-by-field comparison of a source row and its target row (the `sample` step's daily
//! 100-record check). Pure.

use serde_json::{Map, Value};

use super::parse::scalar_string;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMismatch {
    pub source_field: String,
    pub target_field: String,
    pub source: String,
    pub target: String,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(scalar_string)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Compares `fields` (source field, target field): values compare as trimmed text, so `5` and `"5"` match, and a
/// null, a missing field and an empty string are all "empty".
pub fn compare(
    source: &Map<String, Value>,
    target: &Map<String, Value>,
    fields: &[(String, String)],
) -> Vec<FieldMismatch> {
    fields
        .iter()
        .filter_map(|(sf, tf)| {
            let (s, t) = (text(source.get(sf)), text(target.get(tf)));
            (s != t).then(|| FieldMismatch {
                source_field: sf.clone(),
                target_field: tf.clone(),
                source: s,
                target: t,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_by_text_and_reports_differences() {
        let s = serde_json::json!({"OrganizationName": "Contoso ", "Phone": 5, "Empty": null});
        let t = serde_json::json!({"name": "Contoso", "telephone1": "6"});
        let f = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let m = compare(
            s.as_object().unwrap(),
            t.as_object().unwrap(),
            &[
                f("OrganizationName", "name"),
                f("Phone", "telephone1"),
                f("Empty", "missing"),
            ],
        );
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].source.as_str(), m[0].target.as_str()), ("5", "6"));
    }
}
