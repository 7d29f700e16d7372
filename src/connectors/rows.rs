//! Reading whole sets a page at a time (row-level parity): F&O OData across companies and Dataverse at 5,000 rows
//! a page, each page handed to the caller before the next is asked for, so memory holds one page whatever the
//! set's size. `@odata.nextLink` is followed on the same origin only, within the page cap.

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::dataverse::DataverseClient;
use super::fno::FnoClient;
use super::parse;
use super::request::Request;
use super::transport::Transport;
use super::{ConnectorError, Result};

/// One page of rows.
pub type Page = Vec<Map<String, Value>>;

async fn pages(
    t: &Transport,
    call: &str,
    mut req: Request,
    prefer: Option<&str>,
    cancel: &CancellationToken,
    on_page: &mut (dyn FnMut(Page) -> std::result::Result<(), String> + Send),
) -> Result<u64> {
    let mut bound = t.pages(call);
    let mut rows = 0u64;
    loop {
        let sent = match prefer {
            Some(p) => req.header("Prefer", p),
            None => req,
        };
        let resp = t.send(sent, cancel).await?;
        let page = t.parse(&resp, parse::collection)?;
        let next = page.next_link.clone();
        let rows_here: Page = page
            .value
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(o) => Some(o),
                _ => None,
            })
            .collect();
        rows += rows_here.len() as u64;
        on_page(rows_here).map_err(|detail| ConnectorError::bad_body(t.env(), call, &detail))?;
        match next {
            Some(n) => {
                bound.next(&n)?;
                req = Request::next_link(call, n);
            }
            None => return Ok(rows),
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

impl FnoClient {
    /// Every row of `set` (cross-company) matching `filter`, `select`ed, a page at a time. Returns the rows read.
    pub async fn read_pages(
        &self,
        set: &str,
        filter: Option<&str>,
        select: &[&str],
        cancel: &CancellationToken,
        on_page: &mut (dyn FnMut(Page) -> std::result::Result<(), String> + Send),
    ) -> Result<u64> {
        let call = format!("fno.read_all {set}");
        let req = listing(&call, format!("/data/{set}"), filter, select).query("cross-company", "true");
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
        cancel: &CancellationToken,
        on_page: &mut (dyn FnMut(Page) -> std::result::Result<(), String> + Send),
    ) -> Result<u64> {
        let call = format!("dataverse.read_all {set}");
        let req = listing(&call, format!("/api/data/v9.2/{set}"), filter, select);
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
