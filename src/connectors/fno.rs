//! F&O OData (`/data/`): counts, paging, lookups, random keys for sampling, and the dual-write error queue.
//!
//! Every call adds `cross-company=true`: without it F&O returns only the caller's default company, so parity
//! would be wrong. A per-company figure adds `$filter=dataAreaId eq '<company>'` with the company lower-cased
//! (F&O stores `dataAreaId` lower-case). Counts use `/<Set>/$count` (text/plain) and fall back to
//! `$count=true&$top=0` when that form is refused. Paging follows `@odata.nextLink` as given, on the same scheme, host and port only (its token format is
//! undocumented). All calls are reads and retried as such.

use rand::SeedableRng;
use rand::seq::index;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::transport::{Request, Transport};
use super::{ConnectorError, Result, parse};

/// The error-queue entity set (our model of the F&O `DualWriteErrorLog` table exposed over OData).
pub const ERROR_QUEUE_SET: &str = "DualWriteErrorLogs";

/// An OData string literal: single-quoted, inner quotes doubled.
pub fn odata_string(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// `<field> eq '<value>'`.
pub fn eq_filter(field: &str, value: &str) -> String {
    format!("{field} eq {}", odata_string(value))
}

/// The company filter F&O expects: `dataAreaId eq 'usmf'` (lower-cased).
pub fn company_filter(company: &str) -> String {
    eq_filter("dataAreaId", &company.to_ascii_lowercase())
}

fn and(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        // Terms are simple comparisons, so no parentheses are needed (and some OData stacks parse fewer forms).
        (Some(a), Some(b)) => Some(format!("{a} and {b}")),
        (a, b) => a.or(b),
    }
}

/// One entry of the dual-write error queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLogEntry {
    pub error_id: i64,
    pub log_date_time: String,
    pub map_name: String,
    pub source_entity: String,
    pub target_entity: String,
    pub record_key: String,
    pub category: String,
    pub error_message: String,
    pub data_area_id: String,
}

/// Reads one error-queue row; pure, for the fuzz tests.
pub fn error_log_entry(v: &Value) -> Option<ErrorLogEntry> {
    let s = |k: &str| v.get(k).and_then(parse::scalar_string).unwrap_or_default();
    Some(ErrorLogEntry {
        error_id: v.get("ErrorId")?.as_i64()?,
        log_date_time: s("LogDateTime"),
        map_name: s("MapName"),
        source_entity: s("SourceEntity"),
        target_entity: s("TargetEntity"),
        record_key: s("RecordKey"),
        category: s("Category"),
        error_message: s("ErrorMessage"),
        data_area_id: s("dataAreaId"),
    })
}

/// The F&O OData client of one environment.
#[derive(Debug, Clone)]
pub struct FnoClient {
    t: Transport,
}

impl FnoClient {
    pub fn new(t: Transport) -> Self {
        Self { t }
    }

    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// Rows in `set` across companies, or in one company when `company` is given.
    pub async fn count(&self, set: &str, company: Option<&str>, cancel: &CancellationToken) -> Result<u64> {
        self.count_where(set, company.map(company_filter), cancel).await
    }

    /// Rows in `set` matching an OData `$filter` (cross-company).
    pub async fn count_where(
        &self,
        set: &str,
        filter: Option<String>,
        cancel: &CancellationToken,
    ) -> Result<u64> {
        let call = format!("fno.count {set}");
        let mut req = Request::get(&call, format!("/data/{set}/$count")).query("cross-company", "true");
        if let Some(f) = &filter {
            req = req.query("$filter", f);
        }
        match self.t.send(req, cancel).await {
            Ok(resp) => return self.t.parse(&resp, parse::count_text),
            // Some OData stacks refuse the /$count segment; the JSON form is equivalent.
            Err(
                ConnectorError::Service {
                    status: 400 | 405 | 501,
                    ..
                }
                | ConnectorError::NotFound { .. },
            ) => {}
            Err(e) => return Err(e),
        }
        let mut req = Request::get(&call, format!("/data/{set}"))
            .query("cross-company", "true")
            .query("$count", "true")
            .query("$top", "0");
        if let Some(f) = filter {
            req = req.query("$filter", f);
        }
        let resp = self.t.send(req, cancel).await?;
        let page = self.t.parse(&resp, parse::collection)?;
        page.count
            .ok_or_else(|| ConnectorError::bad_body(self.t.env(), &call, "no @odata.count in the response"))
    }

    /// Reads rows of `set` (cross-company) with optional `$filter`, `$select` and `$orderby`, following
    /// `@odata.nextLink` (same origin only), stopping after `max_rows` rows.
    pub async fn read(
        &self,
        set: &str,
        filter: Option<&str>,
        select: &[&str],
        orderby: Option<&str>,
        max_rows: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        let call = format!("fno.read {set}");
        let mut req = Request::get(&call, format!("/data/{set}")).query("cross-company", "true");
        if let Some(f) = filter {
            req = req.query("$filter", f);
        }
        if !select.is_empty() {
            req = req.query("$select", select.join(","));
        }
        if let Some(o) = orderby {
            req = req.query("$orderby", o);
        }
        let mut rows = Vec::new();
        let mut bound = self.t.pages(&call);
        loop {
            let resp = self.t.send(req, cancel).await?;
            let page = self.t.parse(&resp, parse::collection)?;
            rows.extend(page.value.into_iter().filter_map(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            }));
            match page.next_link {
                Some(next) if rows.len() < max_rows => {
                    bound.next(&next)?;
                    req = Request::next_link(&call, next);
                }
                _ => break,
            }
        }
        rows.truncate(max_rows);
        Ok(rows)
    }

    /// Rows whose `field` equals `value` (the sampling lookup), optionally in one company.
    pub async fn find_eq(
        &self,
        set: &str,
        field: &str,
        value: &str,
        company: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        self.find_eq_where(set, field, value, company, None, cancel).await
    }

    /// [`Self::find_eq`] with an extra filter (a map's own).
    pub async fn find_eq_where(
        &self,
        set: &str,
        field: &str,
        value: &str,
        company: Option<&str>,
        also: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        let filter = and(Some(eq_filter(field, value)), company.map(company_filter));
        let filter = super::dataverse::and_filters(&[filter.as_deref(), also]);
        self.read(set, filter.as_deref(), &[], None, 100, cancel).await
    }

    /// Picks up to `n` distinct random values of `key_field` from `set` (see [`Self::random_rows`]).
    pub async fn random_keys(
        &self,
        set: &str,
        key_field: &str,
        n: usize,
        seed: u64,
        company: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>> {
        let rows = self
            .random_rows(set, key_field, &[], n, seed, company, None, cancel)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get(key_field).and_then(parse::scalar_string))
            .collect())
    }

    /// Picks up to `n` distinct random rows of `set` (matching `also`, a map's filter), each with `key_field` and
    /// `extra` fields, deterministic for a given `seed` and table content. Method: count the rows, draw `n`
    /// distinct offsets with a seeded RNG, then read each row with `$orderby=<key>&$skip=<offset>&$top=1` (a
    /// stable order makes offsets meaningful). When the table has no more than `n` rows every row is read by paging.
    #[allow(clippy::too_many_arguments)]
    pub async fn random_rows(
        &self,
        set: &str,
        key_field: &str,
        extra: &[&str],
        n: usize,
        seed: u64,
        company: Option<&str>,
        also: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        let company = company.map(company_filter);
        let filter = super::dataverse::and_filters(&[company.as_deref(), also]);
        let mut select = vec![key_field];
        select.extend(extra.iter().copied().filter(|f| *f != key_field));
        let total =
            usize::try_from(self.count_where(set, filter.clone(), cancel).await?).unwrap_or(usize::MAX);
        if total <= n {
            return self
                .read(
                    set,
                    filter.as_deref(),
                    &select,
                    Some(key_field),
                    total.max(1),
                    cancel,
                )
                .await;
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut offsets = index::sample(&mut rng, total, n).into_vec();
        offsets.sort_unstable();
        let call = format!("fno.random_keys {set}");
        let mut rows = Vec::with_capacity(n);
        for off in offsets {
            let mut req = Request::get(&call, format!("/data/{set}"))
                .query("cross-company", "true")
                .query("$select", select.join(","))
                .query("$orderby", key_field)
                .query("$skip", off.to_string())
                .query("$top", "1");
            if let Some(f) = &filter {
                req = req.query("$filter", f);
            }
            let resp = self.t.send(req, cancel).await?;
            let page = self.t.parse(&resp, parse::collection)?;
            if let Some(Value::Object(o)) = page.value.into_iter().next() {
                rows.push(o);
            }
        }
        Ok(rows)
    }

    /// Error-queue entries with `ErrorId` greater than `after` (all when `None`), oldest first, at most `max`.
    /// Uses `$filter=ErrorId gt N`; a service that refuses `gt` (400) gets the ordered read filtered here.
    pub async fn error_queue_since(
        &self,
        after: Option<i64>,
        max: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<ErrorLogEntry>> {
        let filter = after.map(|id| format!("ErrorId gt {id}"));
        let rows = match self
            .read(
                ERROR_QUEUE_SET,
                filter.as_deref(),
                &[],
                Some("ErrorId asc"),
                max,
                cancel,
            )
            .await
        {
            Err(ConnectorError::Service { status: 400, .. }) if filter.is_some() => {
                self.read(
                    ERROR_QUEUE_SET,
                    None,
                    &[],
                    Some("ErrorId asc"),
                    usize::MAX,
                    cancel,
                )
                .await?
            }
            other => other?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let e = error_log_entry(&Value::Object(r)).ok_or_else(|| {
                ConnectorError::bad_body(self.t.env(), "fno.error_queue", "an entry has no integer ErrorId")
            })?;
            if after.is_none_or(|a| e.error_id > a) && out.len() < max {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Error-queue entries matching a map and/or a category (and newer than `after`), by `$count` + `$filter`.
    /// When the service refuses `gt`, the newer-than part is counted over the matching rows' ids.
    pub async fn error_count(
        &self,
        map: Option<&str>,
        category: Option<&str>,
        after: Option<i64>,
        cancel: &CancellationToken,
    ) -> Result<u64> {
        let base = and(
            map.map(|m| eq_filter("MapName", m)),
            category.map(|c| eq_filter("Category", c)),
        );
        let Some(after) = after else {
            return self.count_where(ERROR_QUEUE_SET, base, cancel).await;
        };
        match self
            .count_where(
                ERROR_QUEUE_SET,
                and(base.clone(), Some(format!("ErrorId gt {after}"))),
                cancel,
            )
            .await
        {
            Err(ConnectorError::Service { status: 400, .. }) => {
                let rows = self
                    .read(
                        ERROR_QUEUE_SET,
                        base.as_deref(),
                        &["ErrorId"],
                        None,
                        usize::MAX,
                        cancel,
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .filter(|r| {
                        r.get("ErrorId")
                            .and_then(Value::as_i64)
                            .is_some_and(|id| id > after)
                    })
                    .count() as u64)
            }
            other => other,
        }
    }

    /// Counts per category for one map (only non-zero categories are returned).
    pub async fn error_counts_by_category(
        &self,
        map: &str,
        after: Option<i64>,
        cancel: &CancellationToken,
    ) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for cat in ERROR_CATEGORIES {
            let n = self.error_count(Some(map), Some(cat), after, cancel).await?;
            if n > 0 {
                out.push(((*cat).to_owned(), n));
            }
        }
        Ok(out)
    }
}

/// The error categories of the error queue (our model).
pub const ERROR_CATEGORIES: &[&str] = &[
    "missing_lookup",
    "enum_conversion",
    "missing_field_mapping",
    "plugin_exception",
    "company_context",
    "duplicate_key",
    "sample_mismatch",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_quote_and_lowercase() {
        assert_eq!(company_filter("USMF"), "dataAreaId eq 'usmf'");
        assert_eq!(eq_filter("Name", "O'Brien"), "Name eq 'O''Brien'");
        assert_eq!(and(Some("a".into()), Some("b".into())).unwrap(), "a and b");
        assert_eq!(and(None, Some("b".into())).unwrap(), "b");
    }

    #[test]
    fn error_log_rows_need_an_id() {
        let v: Value =
            serde_json::json!({"ErrorId": 7, "MapName": "Customers", "Category": "missing_lookup"});
        let e = error_log_entry(&v).unwrap();
        assert_eq!(
            (e.error_id, e.map_name.as_str(), e.category.as_str()),
            (7, "Customers", "missing_lookup")
        );
        assert!(error_log_entry(&serde_json::json!({"MapName": "x"})).is_none());
    }
}
