//! Record sampling (the `sample` step's daily 100-record check): N random keys picked on the F&O source, each
//! looked up on the Dataverse target by the map's alternate key and compared field by field. The comparison is
//! pure ([`compare`]); [`reconcile`] does the reads. Sampling starts from F&O because Dataverse has no `$skip`, so
//! random offsets there would need a full id scan.

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Result;
use super::dataverse::DataverseClient;
use super::fno::FnoClient;
use super::parse::scalar_string;

/// What to sample for one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    pub source_set: String,
    pub source_key: String,
    pub target_set: String,
    pub target_key: String,
    /// (source field, target field) pairs compared.
    pub compare: Vec<(String, String)>,
    pub size: usize,
    pub seed: u64,
    pub company: Option<String>,
}

/// The outcome of one sample: keys missing on the target and per-key mismatches (both go to the error queue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SampleReport {
    pub checked: usize,
    pub missing: Vec<String>,
    pub mismatched: Vec<(String, Vec<FieldMismatch>)>,
}

impl SampleReport {
    pub fn clean(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty()
    }
}

/// Picks `spec.size` random source keys (deterministic for `spec.seed`), reads each source row and its target
/// row, and compares the fields.
pub async fn reconcile(
    fno: &FnoClient,
    dataverse: &DataverseClient,
    spec: &SampleSpec,
    cancel: &CancellationToken,
) -> Result<SampleReport> {
    let keys = fno
        .random_keys(
            &spec.source_set,
            &spec.source_key,
            spec.size,
            spec.seed,
            spec.company.as_deref(),
            cancel,
        )
        .await?;
    let mut report = SampleReport::default();
    for key in keys {
        report.checked += 1;
        let source = fno
            .find_eq(
                &spec.source_set,
                &spec.source_key,
                &key,
                spec.company.as_deref(),
                cancel,
            )
            .await?;
        let target = dataverse
            .find_by_key(&spec.target_set, &spec.target_key, &key, &[], cancel)
            .await?;
        match (source.first(), target.first()) {
            (_, None) => report.missing.push(key),
            (Some(s), Some(t)) => {
                let diff = compare(s, t, &spec.compare);
                if !diff.is_empty() {
                    report.mismatched.push((key, diff));
                }
            }
            (None, Some(_)) => {}
        }
    }
    Ok(report)
}

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
