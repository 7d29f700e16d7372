//! Reading whole sets a page at a time (row-level parity): F&O OData across companies and Dataverse at 5,000 rows
//! a page, each page handed to the caller before the next is asked for, so memory holds one page whatever the
//! set's size. `@odata.nextLink` is followed on the same origin only, within the page cap.
//!
//! A read can start from a `@odata.nextLink` a killed read recorded (see [`Cursor`]): each page is handed over
//! with the link that follows it, so the caller can keep both in one transaction and resume after the last page
//! it kept. Dataverse sets can be split into `createdon` ranges read at once ([`DataverseClient::created_bounds`]).

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::dataverse::DataverseClient;
use super::fno::FnoClient;
use super::parse::{self, KeyedField, KeyedRow};
use super::request::Request;
use super::transport::Transport;
use super::{ConnectorError, Result};

/// One page of rows.
pub type Page = Vec<Map<String, Value>>;

/// What a page callback gets besides the rows: the link of the page after it, `None` on the last page.
pub type Cursor<'a> = Option<&'a str>;

/// The callback a read hands each page to, with the link that follows it.
pub type OnPage<'f> = dyn FnMut(Page, Cursor<'_>) -> std::result::Result<(), String> + Send + 'f;

/// Aborts the prefetch of the next page when the read ends early (an error, a refused page, a cancelled step).
struct Prefetch(Option<tokio::task::JoinHandle<Result<super::transport::Response>>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

async fn pages(
    t: &Transport,
    call: &str,
    req: Request,
    prefer: Option<&str>,
    cancel: &CancellationToken,
    on_page: &mut OnPage<'_>,
) -> Result<u64> {
    let parse = |body: &[u8]| {
        let page = parse::collection(body)?;
        let rows: Page = page
            .value
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .collect();
        Ok((rows, page.next_link))
    };
    pages_with(t, call, req, prefer, cancel, parse, |rows, next| {
        std::future::ready(on_page(rows, next.as_deref()))
    })
    .await
}

/// The paging loop behind every whole-set read: `parse` turns a body into its rows and its next link, and
/// `on_page` gets each page with the link that follows it. `on_page` may wait (a writer busy with the page
/// before): the next page is already asked for by then, so a slow consumer and the service overlap, one page
/// ahead at most.
async fn pages_with<R, P, F, Fut>(
    t: &Transport,
    call: &str,
    req: Request,
    prefer: Option<&str>,
    cancel: &CancellationToken,
    parse: P,
    mut on_page: F,
) -> Result<u64>
where
    P: Fn(&[u8]) -> std::result::Result<(Vec<R>, Option<String>), parse::ParseError>,
    F: FnMut(Vec<R>, Option<String>) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), String>>,
{
    let mut bound = t.pages(call);
    if req.same_origin {
        // A recorded link counts against the page cap and the repeat check like any other.
        bound.next(&req.target.clone())?;
    }
    let with_prefer = |r: Request| match prefer {
        Some(p) => r.header("Prefer", p),
        None => r,
    };
    let mut first = Some(with_prefer(req));
    let mut prefetch = Prefetch(None);
    let mut rows = 0u64;
    loop {
        let resp = match (prefetch.0.take(), first.take()) {
            (Some(h), _) => h.await.map_err(|e| {
                ConnectorError::bad_body(
                    t.env(),
                    call,
                    format!("the request for the next page stopped: {e}"),
                )
            })??,
            (None, Some(r)) => t.send(r, cancel).await?,
            (None, None) => return Ok(rows),
        };
        // The next page is asked for before this one is handed over: the service works on it while the caller
        // stores this one (one page ahead at most; a page the caller did not keep is asked for again on resume).
        // A link the services write last is found before the rows are parsed, so the parse overlaps the wait.
        let mut ask = |n: &String| -> Result<_> {
            bound.next(n)?;
            let (t2, c2, r2) = (
                t.clone(),
                cancel.clone(),
                with_prefer(Request::next_link(call, n.clone())),
            );
            Ok(Some(tokio::spawn(async move { t2.send(r2, &c2).await })))
        };
        let early = parse::trailing_next_link(&resp.body);
        if let Some(n) = &early {
            prefetch.0 = ask(n)?;
        }
        let (rows_here, next) = t.parse(&resp, &parse)?;
        drop(resp);
        rows += rows_here.len() as u64;
        if next != early {
            // Not the link the page ends with after all: the parse is what counts.
            if let Some(h) = prefetch.0.take() {
                h.abort();
            }
            if let Some(n) = &next {
                prefetch.0 = ask(n)?;
            }
        }
        let last = next.is_none();
        on_page(rows_here, next)
            .await
            .map_err(|detail| ConnectorError::bad_body(t.env(), call, &detail))?;
        if last {
            return Ok(rows);
        }
    }
}

/// A listing of `path` with the optional `$filter` and `$select`.
fn listing(call: &str, path: String, filter: Option<&str>, select: &[&str]) -> Request {
    let mut req = Request::get(call, path);
    if let Some(f) = filter {
        req = req.query("$filter", f);
    }
    if !select.is_empty() {
        req = req.query("$select", select.join(","));
    }
    req
}

/// Where a read starts: the set's first page, or the `@odata.nextLink` a killed read recorded (followed on the
/// environment's own origin only, like every nextLink).
#[derive(Debug, Clone, Copy, Default)]
pub enum From<'a> {
    #[default]
    Start,
    Link(&'a str),
}

impl FnoClient {
    /// Every row of `set` (cross-company) matching `filter`, `select`ed, a page at a time. Returns the rows read.
    pub async fn read_pages(
        &self,
        set: &str,
        filter: Option<&str>,
        select: &[&str],
        from: From<'_>,
        cancel: &CancellationToken,
        on_page: &mut OnPage<'_>,
    ) -> Result<u64> {
        let call = format!("fno.read_all {set}");
        let req = match from {
            From::Start => {
                listing(&call, format!("/data/{set}"), filter, select).query("cross-company", "true")
            }
            From::Link(l) => Request::next_link(&call, l),
        };
        pages(self.transport(), &call, req, None, cancel, on_page).await
    }
}

impl DataverseClient {
    /// Every row of `set` matching `filter`, `select`ed, 5,000 a page. Returns the rows read.
    pub async fn read_pages(
        &self,
        set: &str,
        filter: Option<&str>,
        select: &[&str],
        from: From<'_>,
        cancel: &CancellationToken,
        on_page: &mut OnPage<'_>,
    ) -> Result<u64> {
        let call = format!("dataverse.read_all {set}");
        let req = match from {
            From::Start => listing(&call, format!("/api/data/v9.2/{set}"), filter, select),
            From::Link(l) => Request::next_link(&call, l),
        };
        pages(
            self.transport(),
            &call,
            req,
            Some("odata.maxpagesize=5000"),
            cancel,
            on_page,
        )
        .await
    }
}

impl FnoClient {
    /// Every row of `set` (cross-company) matching `filter`, as [`KeyedRow`]s of `key` and `fields` (`$select`ed,
    /// parsed without building JSON values), a page at a time; `on_page` may wait. Returns the rows read.
    pub async fn read_keyed<F, Fut>(
        &self,
        set: &str,
        filter: Option<&str>,
        keyed: Keyed<'_>,
        from: From<'_>,
        cancel: &CancellationToken,
        on_page: F,
    ) -> Result<u64>
    where
        F: FnMut(Vec<KeyedRow>, Option<String>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), String>>,
    {
        let call = format!("fno.read_all {set}");
        let first = |select: &[&str]| {
            listing(&call, format!("/data/{set}"), filter, select).query("cross-company", "true")
        };
        let read = KeyedRead {
            call: &call,
            keyed,
            from,
            prefer: None,
        };
        read.pages(self.transport(), first, cancel, on_page).await
    }
}

impl DataverseClient {
    /// Every row of `set` matching `filter`, as [`KeyedRow`]s of `key` and `fields`, 5,000 a page; `on_page` may
    /// wait. Returns the rows read.
    pub async fn read_keyed<F, Fut>(
        &self,
        set: &str,
        filter: Option<&str>,
        keyed: Keyed<'_>,
        from: From<'_>,
        cancel: &CancellationToken,
        on_page: F,
    ) -> Result<u64>
    where
        F: FnMut(Vec<KeyedRow>, Option<String>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), String>>,
    {
        let call = format!("dataverse.read_all {set}");
        let first = |select: &[&str]| listing(&call, format!("/api/data/v9.2/{set}"), filter, select);
        let read = KeyedRead {
            call: &call,
            keyed,
            from,
            prefer: Some("odata.maxpagesize=5000"),
        };
        read.pages(self.transport(), first, cancel, on_page).await
    }
}

/// One keyed read, whichever service: where it starts, what it keeps and how it asks for pages.
struct KeyedRead<'a> {
    call: &'a str,
    keyed: Keyed<'a>,
    from: From<'a>,
    prefer: Option<&'a str>,
}

impl KeyedRead<'_> {
    /// `first` builds the set's first page from the `$select`; a recorded link is followed as it is.
    async fn pages<F, Fut>(
        self,
        t: &Transport,
        first: impl FnOnce(&[&str]) -> Request,
        cancel: &CancellationToken,
        on_page: F,
    ) -> Result<u64>
    where
        F: FnMut(Vec<KeyedRow>, Option<String>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), String>>,
    {
        let Keyed { key, fields } = self.keyed;
        let req = match self.from {
            From::Start => first(&keyed_select(key, fields)),
            From::Link(l) => Request::next_link(self.call, l),
        };
        let parse = |b: &[u8]| parse::keyed_collection(b, key, fields);
        pages_with(t, self.call, req, self.prefer, cancel, parse, on_page).await
    }
}

/// What a keyed read keeps of each row: its key, and the fields in this order.
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a> {
    pub key: &'a str,
    pub fields: &'a [KeyedField<'a>],
}

/// `$select` of a keyed read: the key, then each field once.
fn keyed_select<'a>(key: &'a str, fields: &[KeyedField<'a>]) -> Vec<&'a str> {
    let mut select = vec![key];
    for f in fields {
        if !select.contains(&f.name) {
            select.push(f.name);
        }
    }
    select
}

impl DataverseClient {
    /// The oldest and the newest `createdon` of the rows of `set` matching `filter` (two one-row reads), or
    /// `None` when no row matches: the bounds a read split into `createdon` ranges divides.
    pub async fn created_bounds(
        &self,
        set: &str,
        filter: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Option<(String, String)>> {
        let call = format!("dataverse.created_bounds {set}");
        let mut ends = Vec::with_capacity(2);
        for order in ["createdon asc", "createdon desc"] {
            let req = listing(&call, format!("/api/data/v9.2/{set}"), filter, &["createdon"])
                .query("$orderby", order)
                .query("$top", "1");
            let resp = self.transport().send(req, cancel).await?;
            let page = self.transport().parse(&resp, parse::collection)?;
            let at = page
                .value
                .first()
                .and_then(|r| r.get("createdon"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            match at {
                Some(a) => ends.push(a),
                None => return Ok(None),
            }
        }
        let newest = ends.pop().unwrap_or_default();
        let oldest = ends.pop().unwrap_or_default();
        Ok(Some((oldest, newest)))
    }
}
