//! Dataverse Web API (`/api/data/v9.2/`): exact counts, lookups by key, canary create/delete, WhoAmI.
//!
//! Exact counts: `$count=true` is capped at 5,000 and FetchXML aggregates fail above 50,000 rows, and
//! `RetrieveTotalRecordCount` is a snapshot up to 24 h old. [`DataverseClient::count`] therefore asks
//! `$count=true` with the `totalrecordcount` annotations; when the service says the limit was exceeded (or the
//! answer sits exactly on the cap) it counts by paging over the primary id only (`$select=<id>`,
//! `Prefer: odata.maxpagesize=5000`, following `@odata.nextLink` on the same origin only), which is exact at any size.
//! The OData headers Dataverse requires are sent on every request (see [`dataverse_transport`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::fno::{eq_filter, odata_string};
use super::transport::{Idempotency, Request, Transport};
use super::{ConnectorError, Result, parse};

const API: &str = "/api/data/v9.2";
/// The smallest documented `$count` cap (elastic tables; standard tables cap at 5,000).
const SMALLEST_CAP: u64 = 500;
const PREFER_COUNT: &str = "odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\"";

/// Adds the headers Dataverse documents for every request.
pub fn dataverse_transport(t: Transport) -> Transport {
    t.with_header("Accept", "application/json")
        .with_header("OData-MaxVersion", "4.0")
        .with_header("OData-Version", "4.0")
}

/// How a count was obtained (journaled with the figure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountMethod {
    /// `$count=true`, under the 5,000 cap.
    ODataCount,
    /// Paged over primary ids, because the cap was exceeded.
    PagedIds,
}

/// An exact count and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub rows: u64,
    pub method: CountMethod,
    pub pages: u32,
}

/// `WhoAmI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    pub user_id: String,
    pub business_unit_id: String,
    pub organization_id: String,
}

/// The lookup to `cdm_company` that out-of-box company-specific tables carry (read as `_msdyn_company_value`).
pub const DEFAULT_COMPANY_LOOKUP: &str = "msdyn_company";

/// A table as its metadata (`EntityDefinitions`) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub logical_name: String,
    pub entity_set_name: String,
    /// `PrimaryIdAttribute`, e.g. `accountid`.
    pub primary_id: String,
    /// The alternate keys' attributes (`Keys/KeyAttributes`), one list per key.
    pub keys: Vec<Vec<String>>,
}

/// What does not change during a run, asked once per environment: table metadata by entity set and
/// `cdm_companyid` by company code. Cheap to clone (shared). A company that is not (yet) in `cdm_companies`
/// is not cached, so it is asked again once the legal-entities map has run.
#[derive(Debug, Clone, Default)]
pub struct DataverseCache(Arc<Mutex<CacheInner>>);

#[derive(Debug, Default)]
struct CacheInner {
    tables: HashMap<String, TableMeta>,
    companies: HashMap<String, String>,
}

impl DataverseCache {
    fn with<R>(&self, f: impl FnOnce(&mut CacheInner) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `_<lookup>_value eq <guid>`: the per-company filter through a company lookup (a GUID, unquoted).
pub fn company_filter(lookup: &str, company_id: &str) -> String {
    format!(
        "_{lookup}_value eq {}",
        company_id.trim_matches(|c| c == '{' || c == '}')
    )
}

/// `a and b`, each parenthesised, for whichever are present.
pub fn and_filters(parts: &[Option<&str>]) -> Option<String> {
    let present: Vec<&str> = parts.iter().flatten().copied().collect();
    match present.as_slice() {
        [] => None,
        [one] => Some((*one).to_owned()),
        many => Some(
            many.iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    }
}

/// The Dataverse client of one environment.
#[derive(Debug, Clone)]
pub struct DataverseClient {
    t: Transport,
    cache: DataverseCache,
}

impl DataverseClient {
    /// Wraps a transport, adding the OData headers (with a cache of its own).
    pub fn new(t: Transport) -> Self {
        Self {
            t: dataverse_transport(t),
            cache: DataverseCache::default(),
        }
    }

    /// Shares `cache` (one per environment and run).
    pub fn with_cache(mut self, cache: DataverseCache) -> Self {
        self.cache = cache;
        self
    }

    /// The table behind entity set `set`, from `EntityDefinitions` (asked once per environment, unless
    /// [`Self::tables`] already read it). A set no table has is [`ConnectorError::NotFound`].
    pub async fn table(&self, set: &str, cancel: &CancellationToken) -> Result<TableMeta> {
        if let Some(m) = self.cache.with(|c| c.tables.get(set).cloned()) {
            return Ok(m);
        }
        let call = format!("dataverse.metadata {set}");
        let req = Request::get(&call, format!("{API}/EntityDefinitions"))
            .query("$select", TABLE_SELECT)
            .query("$filter", eq_filter("EntitySetName", set))
            .query("$expand", TABLE_EXPAND);
        let resp = self.t.send(req, cancel).await?;
        let page = self.t.parse(&resp, parse::collection)?;
        let Some(o) = page.value.first().and_then(Value::as_object) else {
            return Err(ConnectorError::NotFound {
                env: self.t.env().to_owned(),
                call,
                message: format!("no table has the entity set name `{set}` (EntityDefinitions)"),
            });
        };
        let Some(meta) = table_meta(o) else {
            return Err(ConnectorError::bad_body(
                self.t.env(),
                &call,
                "the table definition has no LogicalName or PrimaryIdAttribute",
            ));
        };
        self.cache.with(|c| c.tables.insert(set.to_owned(), meta.clone()));
        Ok(meta)
    }

    /// Reads the metadata of every table behind `sets` that is not cached yet in a few requests instead of
    /// one per table: `EntityDefinitions?$filter=EntitySetName eq 'a' or EntitySetName eq 'b' ...` (an `or`
    /// of `eq` on a string property, which metadata queries accept; `in` they do not), chunked so that each
    /// filter stays under [`METADATA_FILTER_CHARS`] percent-encoded characters, at most `concurrency`
    /// chunks at once. What the answers hold is cached for [`Self::table`]; a set missing from them is left
    /// to [`Self::table`]'s own read (which says when no table has it). Returns how many requests were sent.
    /// A chunk that fails is logged and left to the per-table reads too; only cancellation is an error.
    pub async fn tables(
        &self,
        sets: &[&str],
        concurrency: usize,
        cancel: &CancellationToken,
    ) -> Result<usize> {
        let mut wanted: Vec<&str> = self.cache.with(|c| {
            sets.iter()
                .copied()
                .filter(|s| !s.is_empty() && !c.tables.contains_key(*s))
                .collect()
        });
        wanted.sort_unstable();
        wanted.dedup();
        // Owned, so that the chunk futures borrow nothing of the caller's (they must be `Send` for any lifetime).
        let chunks: Vec<Vec<String>> = metadata_chunks(&wanted)
            .into_iter()
            .map(|c| c.into_iter().map(str::to_owned).collect())
            .collect();
        let n = chunks.len();
        let results: Vec<Result<()>> = futures::stream::iter(chunks)
            .map(|chunk| self.tables_chunk(chunk, cancel))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                Err(e @ ConnectorError::Cancelled { .. }) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "batched table metadata read failed: reading per table")
                }
                Ok(()) => {}
            }
        }
        Ok(n)
    }

    async fn tables_chunk(&self, chunk: Vec<String>, cancel: &CancellationToken) -> Result<()> {
        let call = format!("dataverse.metadata {} tables", chunk.len());
        let filter = chunk
            .iter()
            .map(|s| eq_filter("EntitySetName", s))
            .collect::<Vec<_>>()
            .join(" or ");
        let req = Request::get(&call, format!("{API}/EntityDefinitions"))
            .query("$select", TABLE_SELECT)
            .query("$filter", filter)
            .query("$expand", TABLE_EXPAND);
        let resp = self.t.send(req, cancel).await?;
        let page = self.t.parse(&resp, parse::collection)?;
        let found: Vec<TableMeta> = page
            .value
            .iter()
            .filter_map(Value::as_object)
            .filter_map(table_meta)
            .collect();
        self.cache.with(|c| {
            for m in found {
                // Keyed by the set name as asked (the service compares it without regard to case).
                if let Some(asked) = chunk.iter().find(|s| s.eq_ignore_ascii_case(&m.entity_set_name)) {
                    c.tables.insert(asked.clone(), m);
                }
            }
        });
        Ok(())
    }

    /// The `cdm_companyid` (GUID) of the legal entity with `cdm_companycode` `code`, from `cdm_companies` (asked
    /// once per environment); `None` while no such row exists (before the legal-entities map has run).
    pub async fn company_id(&self, code: &str, cancel: &CancellationToken) -> Result<Option<String>> {
        let up = code.to_ascii_uppercase();
        if let Some(id) = self.cache.with(|c| c.companies.get(&up).cloned()) {
            return Ok(Some(id));
        }
        let req = Request::get(format!("dataverse.company {up}"), format!("{API}/cdm_companies"))
            .query("$filter", eq_filter("cdm_companycode", &up))
            .query("$select", "cdm_companyid");
        let resp = self.t.send(req, cancel).await?;
        let page = self.t.parse(&resp, parse::collection)?;
        let id = page
            .value
            .first()
            .and_then(|r| r.get("cdm_companyid"))
            .and_then(parse::scalar_string);
        if let Some(id) = &id {
            self.cache.with(|c| c.companies.insert(up, id.clone()));
        }
        Ok(id)
    }

    pub fn transport(&self) -> &Transport {
        &self.t
    }

    /// The exact number of rows in `set` matching `filter` (all rows when `None`). `primary_id` is the table's
    /// primary id column (e.g. `accountid`).
    pub async fn count(
        &self,
        set: &str,
        primary_id: &str,
        filter: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Count> {
        let call = format!("dataverse.count {set}");
        let mut req = Request::get(&call, format!("{API}/{set}"))
            .query("$select", primary_id)
            .query("$count", "true")
            .header("Prefer", format!("{PREFER_COUNT},odata.maxpagesize=1"));
        if let Some(f) = filter {
            req = req.query("$filter", f);
        }
        let resp = self.t.send(req, cancel).await?;
        let page = self.t.parse(&resp, parse::collection)?;
        let count = page
            .count
            .or_else(|| page.total_record_count.and_then(|n| u64::try_from(n).ok()));
        // Trusted only when the service says the limit was not exceeded, or, when it omits the flag, when the
        // figure is below the smallest documented cap (500, elastic tables). Otherwise: page over ids.
        match (count, page.limit_exceeded) {
            (Some(n), Some(false)) => {
                return Ok(Count {
                    rows: n,
                    method: CountMethod::ODataCount,
                    pages: 1,
                });
            }
            (Some(n), None) if n < SMALLEST_CAP => {
                return Ok(Count {
                    rows: n,
                    method: CountMethod::ODataCount,
                    pages: 1,
                });
            }
            _ => {}
        }
        self.count_by_paging(set, primary_id, filter, cancel).await
    }

    /// Counts by reading only primary ids, 5,000 per page, following nextLink (same origin only).
    pub async fn count_by_paging(
        &self,
        set: &str,
        primary_id: &str,
        filter: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Count> {
        let call = format!("dataverse.count_paged {set}");
        let mut req = Request::get(&call, format!("{API}/{set}")).query("$select", primary_id);
        if let Some(f) = filter {
            req = req.query("$filter", f);
        }
        let mut rows = 0u64;
        let mut pages = 0u32;
        let mut bound = self.t.pages(&call);
        loop {
            let resp = self
                .t
                .send(req.header("Prefer", "odata.maxpagesize=5000"), cancel)
                .await?;
            let page = self.t.parse(&resp, parse::collection)?;
            rows += page.value.len() as u64;
            pages += 1;
            match page.next_link {
                Some(next) => {
                    bound.next(&next)?;
                    req = Request::next_link(&call, next);
                }
                None => {
                    return Ok(Count {
                        rows,
                        method: CountMethod::PagedIds,
                        pages,
                    });
                }
            }
        }
    }

    /// Rows of one company through the table's company lookup (`msdyn_company`): the company's `cdm_companyid`
    /// is read once from `cdm_companies`, then `_<lookup>_value eq <id>` is counted. A company with no
    /// `cdm_companies` row has no rows (0, [`CountMethod::ODataCount`]).
    pub async fn count_company(
        &self,
        set: &str,
        primary_id: &str,
        lookup: &str,
        company: &str,
        cancel: &CancellationToken,
    ) -> Result<Count> {
        match self.company_id(company, cancel).await? {
            Some(id) => {
                self.count(set, primary_id, Some(&company_filter(lookup, &id)), cancel)
                    .await
            }
            None => Ok(Count {
                rows: 0,
                method: CountMethod::ODataCount,
                pages: 0,
            }),
        }
    }

    /// A FetchXML count aggregate (fails above 50,000 rows with `AggregateQueryRecordLimit`: callers fall back to
    /// [`Self::count`]).
    pub async fn fetchxml_count(
        &self,
        set: &str,
        logical_name: &str,
        primary_id: &str,
        cancel: &CancellationToken,
    ) -> Result<u64> {
        let xml = format!(
            "<fetch aggregate='true'><entity name='{logical_name}'><attribute name='{primary_id}' alias='c' aggregate='count'/></entity></fetch>"
        );
        let req = Request::get(format!("dataverse.fetchxml_count {set}"), format!("{API}/{set}"))
            .query("fetchXml", xml);
        let resp = self.t.send(req, cancel).await?;
        self.t.parse(&resp, |b| parse::fetchxml_aggregate(b, "c"))
    }

    /// `RetrieveTotalRecordCount` for logical names: a snapshot up to 24 h old, for cross-checks only.
    pub async fn retrieve_total_record_count(
        &self,
        logical_names: &[&str],
        cancel: &CancellationToken,
    ) -> Result<Vec<(String, i64)>> {
        let list = serde_json::to_string(logical_names)
            .map_err(|e| ConnectorError::bad_body(self.t.env(), "dataverse.rtrc", e.to_string()))?;
        let req = Request::get(
            "dataverse.retrieve_total_record_count",
            format!("{API}/RetrieveTotalRecordCount(EntityNames=@p1)"),
        )
        .query("@p1", list);
        let resp = self.t.send(req, cancel).await?;
        self.t.parse(&resp, parse::retrieve_total_record_count)
    }

    /// Rows whose `key_field` equals `value` (at most 50), with optional `$select`. On a company-specific table
    /// use [`Self::find_by_key_where`] with the company: a natural key alone can match another company's row.
    pub async fn find_by_key(
        &self,
        set: &str,
        key_field: &str,
        value: &str,
        select: &[&str],
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        self.find_by_key_where(set, key_field, value, None, select, cancel)
            .await
    }

    /// Rows whose `key_field` equals `value` and that match `also` (the company filter, a map's filter).
    pub async fn find_by_key_where(
        &self,
        set: &str,
        key_field: &str,
        value: &str,
        also: Option<&str>,
        select: &[&str],
        cancel: &CancellationToken,
    ) -> Result<Vec<Map<String, Value>>> {
        let key = eq_filter(key_field, value);
        let filter = and_filters(&[Some(&key), also]).unwrap_or(key.clone());
        let mut req =
            Request::get(format!("dataverse.find {set}"), format!("{API}/{set}")).query("$filter", filter);
        if !select.is_empty() {
            req = req.query("$select", select.join(","));
        }
        let resp = self
            .t
            .send(req.header("Prefer", "odata.maxpagesize=50"), cancel)
            .await?;
        let page = self.t.parse(&resp, parse::collection)?;
        Ok(page
            .value
            .into_iter()
            .filter_map(|v| if let Value::Object(o) = v { Some(o) } else { None })
            .collect())
    }

    /// Creates a row (`Prefer: return=representation`) and returns it. `key` = (alternate key field, value) is the
    /// idempotency handle: when the create's outcome is unknown (5xx, timeout), the row is looked up by that key
    /// before anything is repeated, so a canary is never created twice.
    pub async fn create(
        &self,
        set: &str,
        body: &Value,
        key: Option<(&str, &str)>,
        cancel: &CancellationToken,
    ) -> Result<Map<String, Value>> {
        let call = format!("dataverse.create {set}");
        let mut attempts = 0;
        loop {
            attempts += 1;
            let req = Request::post(&call, format!("{API}/{set}"))
                .json(body.clone())
                .header("Prefer", "return=representation")
                .idempotency(Idempotency::Unsafe);
            match self.t.send(req, cancel).await {
                Ok(resp) => return self.t.parse(&resp, parse::object),
                Err(ConnectorError::Ambiguous { detail, .. })
                    if key.is_some() && attempts <= self.t.policy().retries =>
                {
                    let (field, value) = key.unwrap_or_default();
                    if let Some(found) = self
                        .find_by_key(set, field, value, &[], cancel)
                        .await?
                        .into_iter()
                        .next()
                    {
                        return Ok(found);
                    }
                    tracing::debug!(
                        call,
                        detail,
                        "create outcome unknown and no row with the key: creating again"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The resume-safe canary create: looks the row up by its key first and creates it only when absent. Returns
    /// the row and whether this call created it.
    pub async fn ensure_created(
        &self,
        set: &str,
        body: &Value,
        key: (&str, &str),
        cancel: &CancellationToken,
    ) -> Result<(Map<String, Value>, bool)> {
        if let Some(found) = self
            .find_by_key(set, key.0, key.1, &[], cancel)
            .await?
            .into_iter()
            .next()
        {
            return Ok((found, false));
        }
        Ok((self.create(set, body, Some(key), cancel).await?, true))
    }

    /// Deletes a row by its primary id. A row that is already gone counts as deleted (safe to repeat).
    pub async fn delete(&self, set: &str, id: &str, cancel: &CancellationToken) -> Result<()> {
        let req = Request::new(
            format!("dataverse.delete {set}"),
            reqwest::Method::DELETE,
            format!("{API}/{set}({})", id.trim_matches(|c| c == '{' || c == '}')),
        );
        match self.t.send(req, cancel).await {
            Ok(_) | Err(ConnectorError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `WhoAmI`: proves the credentials reach this organisation.
    pub async fn who_am_i(&self, cancel: &CancellationToken) -> Result<WhoAmI> {
        let resp = self
            .t
            .send(Request::get("dataverse.whoami", format!("{API}/WhoAmI")), cancel)
            .await?;
        let o = self.t.parse(&resp, parse::object)?;
        let s = |k: &str| o.get(k).and_then(parse::scalar_string).unwrap_or_default();
        if s("UserId").is_empty() {
            return Err(ConnectorError::bad_body(
                self.t.env(),
                "dataverse.whoami",
                "no UserId in the response",
            ));
        }
        Ok(WhoAmI {
            user_id: s("UserId"),
            business_unit_id: s("BusinessUnitId"),
            organization_id: s("OrganizationId"),
        })
    }
}

/// An OData string literal (re-exported for callers building Dataverse filters).
pub fn literal(v: &str) -> String {
    odata_string(v)
}

/// What a table's metadata read selects and expands (one table or many).
const TABLE_SELECT: &str = "LogicalName,EntitySetName,PrimaryIdAttribute";
const TABLE_EXPAND: &str = "Keys($select=KeyAttributes)";

/// The most percent-encoded characters one batched metadata `$filter` may take. The Web API accepts URLs
/// up to 32,768 characters (Microsoft Learn, "Compose HTTP requests and handle errors": maximum URL
/// length); 2,048 keeps each request far below that and below what proxies commonly refuse.
pub const METADATA_FILTER_CHARS: usize = 2_048;

/// The length of `s` once percent-encoded (unreserved characters stay, every other byte takes three).
fn encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                1
            } else {
                3
            }
        })
        .sum()
}

/// Splits `sets` into chunks whose `EntitySetName eq '..' or ...` filter stays within
/// [`METADATA_FILTER_CHARS`] encoded characters (a set too long for any chunk goes alone).
fn metadata_chunks<'a>(sets: &[&'a str]) -> Vec<Vec<&'a str>> {
    let sep = encoded_len(" or ");
    let mut out: Vec<Vec<&'a str>> = Vec::new();
    let mut len = 0;
    for s in sets {
        let term = encoded_len(&eq_filter("EntitySetName", s));
        match out.last_mut() {
            Some(cur) if len + sep + term <= METADATA_FILTER_CHARS => {
                cur.push(s);
                len += sep + term;
            }
            _ => {
                out.push(vec![s]);
                len = term;
            }
        }
    }
    out
}

/// A table definition row (`LogicalName`, `EntitySetName`, `PrimaryIdAttribute`, `Keys`); `None` without a
/// logical name or primary id.
fn table_meta(o: &Map<String, Value>) -> Option<TableMeta> {
    let s = |k: &str| o.get(k).and_then(parse::scalar_string).unwrap_or_default();
    let keys = o
        .get("Keys")
        .and_then(Value::as_array)
        .map(|ks| {
            ks.iter()
                .filter_map(|k| k.get("KeyAttributes").and_then(Value::as_array))
                .map(|a| a.iter().filter_map(parse::scalar_string).collect())
                .collect()
        })
        .unwrap_or_default();
    let meta = TableMeta {
        logical_name: s("LogicalName"),
        entity_set_name: s("EntitySetName"),
        primary_id: s("PrimaryIdAttribute"),
        keys,
    };
    (!meta.primary_id.is_empty() && !meta.logical_name.is_empty()).then_some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_chunks_stay_under_the_limit_and_keep_every_set() {
        let names: Vec<String> = (0..500).map(|i| format!("set{i}s")).collect();
        let sets: Vec<&str> = names.iter().map(String::as_str).collect();
        let chunks = metadata_chunks(&sets);
        assert!(chunks.len() > 1 && chunks.len() < 20, "{} chunks", chunks.len());
        for c in &chunks {
            let filter = c
                .iter()
                .map(|s| eq_filter("EntitySetName", s))
                .collect::<Vec<_>>()
                .join(" or ");
            assert!(
                encoded_len(&filter) <= METADATA_FILTER_CHARS,
                "{}",
                encoded_len(&filter)
            );
        }
        let flat: Vec<&str> = chunks.concat();
        assert_eq!(flat, sets);
        assert!(metadata_chunks(&[]).is_empty());
    }
}
