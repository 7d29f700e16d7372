//! F&O OData (`/data/`): counts, paging, lookups and random keys for sampling. (Dual-write errors are not
//! here: F&O has no error-queue entity set; see [`super::error_sources`].)
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
}

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
}
