//! Record sampling (the `sample` step's daily 100-record check): N random keys picked on the F&O source, each
//! looked up on the Dataverse target by the map's alternate key and compared field by field. The comparison is
//! pure ([`compare`]); [`reconcile`] does the reads. F&O keys are picked by random offsets (`$skip`). Dataverse
//! has no `$skip`, so [`reconcile_from_target`] picks its keys by one seeded reservoir sample over a key-only
//! scan (5,000 keys a page, one page in memory): a row that exists only on Dataverse, or whose F&O twin is
//! gone, can only be found from that side.

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Result;
use super::dataverse::{DataverseClient, and_filters, company_filter};
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
    /// Only this legal entity's source rows.
    pub company: Option<String>,
    /// On a company-specific map, the target's company lookup (`msdyn_company`): each key is looked up with
    /// the source row's company, because a natural key alone can match another company's row.
    pub company_lookup: Option<String>,
    /// The map's own filters, per side.
    pub source_filter: Option<String>,
    pub target_filter: Option<String>,
}

/// One sampled record: its key and, on a company-specific map, its legal entity (`dataAreaId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleKey {
    pub key: String,
    pub company: Option<String>,
}

impl std::fmt::Display for SampleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.company {
            Some(c) => write!(f, "{} ({})", self.key, c.to_ascii_uppercase()),
            None => f.write_str(&self.key),
        }
    }
}

/// The outcome of one sample: keys missing on the target and per-key mismatches (both go to the error queue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SampleReport {
    pub checked: usize,
    pub missing: Vec<SampleKey>,
    /// Keys picked on the Dataverse side that have no F&O row.
    pub missing_source: Vec<SampleKey>,
    pub mismatched: Vec<(SampleKey, Vec<FieldMismatch>)>,
}

impl SampleReport {
    pub fn clean(&self) -> bool {
        self.missing.is_empty() && self.mismatched.is_empty() && self.missing_source.is_empty()
    }
}

/// Picks `spec.size` random source records (deterministic for `spec.seed`), reads each source row and its target
/// row, and compares the fields.
pub async fn reconcile(
    fno: &FnoClient,
    dataverse: &DataverseClient,
    spec: &SampleSpec,
    cancel: &CancellationToken,
) -> Result<SampleReport> {
    let striped = spec.company_lookup.is_some();
    let mut extra: Vec<&str> = Vec::new();
    if striped {
        extra.push("dataAreaId");
    }
    let rows = fno
        .random_rows(
            &spec.source_set,
            &spec.source_key,
            &extra,
            spec.size,
            spec.seed,
            spec.company.as_deref(),
            spec.source_filter.as_deref(),
            cancel,
        )
        .await?;
    let mut report = SampleReport::default();
    for row in rows {
        let Some(key) = row.get(&spec.source_key).and_then(scalar_string) else {
            continue;
        };
        let company = if striped {
            row.get("dataAreaId").and_then(scalar_string)
        } else {
            None
        };
        let k = SampleKey { key, company };
        report.checked += 1;
        let (source, target) = look_up(fno, dataverse, spec, &k, cancel).await?;
        match (source, target) {
            (_, None) => report.missing.push(k),
            (Some(s), Some(t)) => {
                let diff = compare(&s, &t, &spec.compare);
                if !diff.is_empty() {
                    report.mismatched.push((k, diff));
                }
            }
            (None, Some(_)) => {}
        }
    }
    Ok(report)
}

/// Picks up to `spec.size` random keys on the Dataverse side (deterministic for `spec.seed` and the table's
/// content: a seeded reservoir sample over a key-only scan), looks each up on F&O and on Dataverse, and compares.
/// On a company-specific map (`spec.company_lookup`) the keys are drawn per company of `companies` (the size
/// shared between them), each filtered by its `cdm_companies` id, so each key is looked up with its company.
pub async fn reconcile_from_target(
    fno: &FnoClient,
    dataverse: &DataverseClient,
    spec: &SampleSpec,
    companies: &[String],
    cancel: &CancellationToken,
) -> Result<SampleReport> {
    use rand::{Rng, SeedableRng};
    let mut groups: Vec<(Option<String>, Option<String>)> = Vec::new();
    match &spec.company_lookup {
        Some(lookup) if !companies.is_empty() => {
            for c in companies {
                if let Some(id) = dataverse.company_id(c, cancel).await? {
                    groups.push((Some(c.to_ascii_lowercase()), Some(company_filter(lookup, &id))));
                }
            }
        }
        _ => groups.push((None, None)),
    }
    let per = spec.size.div_ceil(groups.len().max(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed ^ 0x5a5a_5a5a);
    let mut report = SampleReport::default();
    for (company, filter) in groups {
        let also = and_filters(&[spec.target_filter.as_deref(), filter.as_deref()]);
        let mut seen = 0usize;
        let mut pick: Vec<String> = Vec::with_capacity(per);
        let key = spec.target_key.clone();
        dataverse
            .read_pages(
                &spec.target_set,
                also.as_deref(),
                &[key.as_str()],
                super::rows::From::Start,
                cancel,
                &mut |page: super::rows::Page, _next| {
                    for row in page {
                        let Some(k) = row.get(&key).and_then(scalar_string) else {
                            continue;
                        };
                        seen += 1;
                        if pick.len() < per {
                            pick.push(k);
                        } else {
                            let j = rng.random_range(0..seen);
                            if j < per {
                                pick[j] = k;
                            }
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        pick.sort();
        for key in pick {
            let k = SampleKey {
                key,
                company: company.clone(),
            };
            report.checked += 1;
            match look_up(fno, dataverse, spec, &k, cancel).await? {
                (None, _) => report.missing_source.push(k),
                (Some(_), None) => report.missing.push(k),
                (Some(s), Some(t)) => {
                    let diff = compare(&s, &t, &spec.compare);
                    if !diff.is_empty() {
                        report.mismatched.push((k, diff));
                    }
                }
            }
        }
    }
    Ok(report)
}

/// The source row and the target row of one sampled record (each `None` when absent). On a company-specific
/// map the target is looked up by key **and** company (`_<lookup>_value eq <cdm_companyid>`); a company that has
/// no `cdm_companies` row has no target rows.
pub async fn look_up(
    fno: &FnoClient,
    dataverse: &DataverseClient,
    spec: &SampleSpec,
    k: &SampleKey,
    cancel: &CancellationToken,
) -> Result<(Option<Map<String, Value>>, Option<Map<String, Value>>)> {
    let source_company = k.company.as_deref().or(spec.company.as_deref());
    let source = fno
        .find_eq_where(
            &spec.source_set,
            &spec.source_key,
            &k.key,
            source_company,
            spec.source_filter.as_deref(),
            cancel,
        )
        .await?
        .into_iter()
        .next();
    let company = match (&spec.company_lookup, source_company) {
        (Some(lookup), Some(c)) => match dataverse.company_id(c, cancel).await? {
            Some(id) => Some(company_filter(lookup, &id)),
            None => return Ok((source, None)),
        },
        _ => None,
    };
    let also = and_filters(&[spec.target_filter.as_deref(), company.as_deref()]);
    let target = dataverse
        .find_by_key_where(
            &spec.target_set,
            &spec.target_key,
            &k.key,
            also.as_deref(),
            &[],
            cancel,
        )
        .await?
        .into_iter()
        .next();
    Ok((source, target))
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
