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

/// Aborts a spawned task when dropped: a read that ends early (an error, a refused page, a cancelled step) leaves
/// no request of its own running.
struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// A page as the chain hands it over: the response, and the link it was found to end with (already asked for).
type Fetched = Result<(super::transport::Response, Option<String>)>;

/// The chain of page requests of one listing, run by a task of its own: as soon as a page arrives, the link it
/// ends with ([`parse::trailing_next_link`]) is checked against the listing's bounds and asked for, before the
/// page is handed to the reader. The next request therefore never waits for the reader, which may be busy
/// parsing another listing's page on the same task. One page waits in the channel, one is held and one is in
/// flight at most: each chain keeps one request at a time with the service, as a plain loop would.
struct Chain {
    rx: tokio::sync::mpsc::Receiver<Fetched>,
    _task: AbortOnDrop<()>,
}

impl Chain {
    fn start(
        t: &Transport,
        call: &str,
        first: Request,
        prefer: Option<&str>,
        bound: std::sync::Arc<std::sync::Mutex<super::transport::Pages>>,
        cancel: &CancellationToken,
    ) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel::<Fetched>(1);
        let (t, call, prefer, cancel) = (
            t.clone(),
            call.to_owned(),
            prefer.map(str::to_owned),
            cancel.clone(),
        );
        let task = tokio::spawn(async move {
            let send = |r: Request| {
                let r = match &prefer {
                    Some(p) => r.header("Prefer", p.as_str()),
                    None => r,
                };
                let (t, cancel) = (t.clone(), cancel.clone());
                AbortOnDrop(Some(tokio::spawn(async move { t.send(r, &cancel).await })))
            };
            let mut inflight = send(first);
            while let Some(h) = inflight.0.take() {
                let resp = match h.await {
                    Ok(Ok(resp)) => resp,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    Err(e) => {
                        let stopped = ConnectorError::bad_body(
                            t.env(),
                            &call,
                            format!("the request for the next page stopped: {e}"),
                        );
                        let _ = tx.send(Err(stopped)).await;
                        return;
                    }
                };
                let early = parse::trailing_next_link(&resp.body);
                if let Some(n) = &early {
                    if let Err(e) = accept_link(&bound, &t, &call, n) {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    inflight = send(Request::next_link(&call, n.clone()));
                }
                if tx.send(Ok((resp, early))).await.is_err() {
                    return;
                }
            }
        });
        Self {
            rx,
            _task: AbortOnDrop(Some(task)),
        }
    }
}

/// Counts `link` against the listing's page bound (which refuses a loop or a runaway listing) before it is asked for.
fn accept_link(
    bound: &std::sync::Mutex<super::transport::Pages>,
    t: &Transport,
    call: &str,
    link: &str,
) -> Result<()> {
    bound
        .lock()
        .map_err(|_| ConnectorError::bad_body(t.env(), call, "the page bound was poisoned"))?
        .next(link)
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
/// before): the pages are asked for by a [`Chain`] of their own, so a slow consumer and the service overlap, a
/// few pages ahead at most and one request at a time.
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
    let bound = std::sync::Arc::new(std::sync::Mutex::new(bound));
    let mut chain = Chain::start(t, call, req, prefer, std::sync::Arc::clone(&bound), cancel);
    let mut rows = 0u64;
    loop {
        let Some(fetched) = chain.rx.recv().await else {
            return Err(ConnectorError::bad_body(
                t.env(),
                call,
                "the chain of page requests stopped",
            ));
        };
        let (resp, early) = fetched?;
        let (rows_here, next) = t.parse(&resp, &parse)?;
        drop(resp);
        rows += rows_here.len() as u64;
        if next != early {
            // Not the link the page ends with after all (or none was found): the parse is what counts. The chain
            // stops (with whatever it asked for) and starts again from the parsed link.
            drop(chain);
            let Some(n) = &next else {
                on_page(rows_here, next)
                    .await
                    .map_err(|detail| ConnectorError::bad_body(t.env(), call, &detail))?;
                return Ok(rows);
            };
            accept_link(&bound, t, call, n)?;
            chain = Chain::start(
                t,
                call,
                Request::next_link(call, n.clone()),
                prefer,
                std::sync::Arc::clone(&bound),
                cancel,
            );
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
        // Both ends at once: two independent one-row reads, one round trip.
        let end = |order: &'static str| {
            let call = &call;
            async move {
                let req = listing(call, format!("/api/data/v9.2/{set}"), filter, &["createdon"])
                    .query("$orderby", order)
                    .query("$top", "1");
                let resp = self.transport().send(req, cancel).await?;
                let page = self.transport().parse(&resp, parse::collection)?;
                Ok::<_, ConnectorError>(
                    page.value
                        .first()
                        .and_then(|r| r.get("createdon"))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                )
            }
        };
        let (oldest, newest) = futures::try_join!(end("createdon asc"), end("createdon desc"))?;
        Ok(oldest.zip(newest))
    }
}
