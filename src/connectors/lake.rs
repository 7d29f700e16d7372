//! The Azure Synapse Link export in an ADLS Gen2 account, read through the Blob API (so the storage emulator
//! serves it too): List Blobs (`restype=container&comp=list`, `prefix`, `delimiter`, `marker`) and Get Blob,
//! `x-ms-version` on every request. On top, the export's layout (d365-api.md §7): timestamped folders,
//! `Changelog/changelog.info` naming the folder still being written (never read), `model.json` per folder,
//! headerless CSV partitions per table whose columns are the `model.json` attributes in order.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::request::Request;
use super::transport::Transport;
use super::{ConnectorError, Result};

/// The Blob service version sent (bearer tokens need 2017-11-09 or later).
pub const STORAGE_VERSION: &str = "2021-08-06";

/// One blob of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobItem {
    pub name: String,
    pub last_modified: Option<DateTime<Utc>>,
    pub length: u64,
}

/// A listing: blobs and, with a delimiter, the prefixes ("folders") up to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub blobs: Vec<BlobItem>,
    pub prefixes: Vec<String>,
}

/// A container, through the Blob API.
#[derive(Debug, Clone)]
pub struct BlobClient {
    t: Transport,
    container: String,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first `<tag>` inside `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

/// Parses an `EnumerationResults` document: blobs, prefixes and the next marker.
pub fn parse_listing(xml: &str) -> std::result::Result<(Listing, Option<String>), String> {
    let xml = xml.trim_start_matches('\u{feff}');
    if !xml.contains("<EnumerationResults") {
        return Err("not a List Blobs answer (no EnumerationResults)".into());
    }
    let blobs_part = element(xml, "Blobs").unwrap_or("");
    let mut out = Listing::default();
    let mut rest = blobs_part;
    loop {
        let b = rest.find("<Blob>");
        let p = rest.find("<BlobPrefix>");
        match (b, p) {
            (Some(b), p) if p.is_none_or(|p| b < p) => {
                let seg = &rest[b + 6..];
                let end = seg.find("</Blob>").ok_or("an unterminated <Blob>")?;
                let one = &seg[..end];
                let name = element(one, "Name").ok_or("a <Blob> without <Name>")?;
                let last_modified = element(one, "Last-Modified")
                    .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                    .map(|d| d.with_timezone(&Utc));
                let length = element(one, "Content-Length")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                out.blobs.push(BlobItem {
                    name: unescape(name),
                    last_modified,
                    length,
                });
                rest = &seg[end + 7..];
            }
            (_, Some(p)) => {
                let seg = &rest[p + 12..];
                let end = seg.find("</BlobPrefix>").ok_or("an unterminated <BlobPrefix>")?;
                let name = element(&seg[..end], "Name").ok_or("a <BlobPrefix> without <Name>")?;
                out.prefixes.push(unescape(name));
                rest = &seg[end + 13..];
            }
            (None, None) => break,
            (Some(_), None) => unreachable!("handled by the first arm"),
        }
    }
    let next = element(xml, "NextMarker").map(unescape).filter(|m| !m.is_empty());
    Ok((out, next))
}

impl BlobClient {
    /// `t` is the account's transport (`https://<account>.blob.core.windows.net`, or a path-style endpoint).
    pub fn new(t: Transport, container: &str) -> Self {
        Self {
            t,
            container: container.to_owned(),
        }
    }

    pub fn env(&self) -> &str {
        self.t.env()
    }

    fn path(&self, blob: &str) -> String {
        let enc: Vec<String> = blob.split('/').map(super::transport::encode_query_part).collect();
        format!("/{}/{}", self.container, enc.join("/"))
    }

    /// Every blob (and, with `delimiter`, prefix) under `prefix`, following `NextMarker` within the page cap.
    pub async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<Listing> {
        let call = "storage.list_blobs";
        let mut bound = self.t.pages(call);
        let mut marker: Option<String> = None;
        let mut all = Listing::default();
        loop {
            let mut req = Request::get(call, format!("/{}", self.container))
                .query("restype", "container")
                .query("comp", "list")
                .header("x-ms-version", STORAGE_VERSION);
            if !prefix.is_empty() {
                req = req.query("prefix", prefix);
            }
            if let Some(d) = delimiter {
                req = req.query("delimiter", d);
            }
            if let Some(m) = &marker {
                req = req.query("marker", m.clone());
            }
            let resp = self.t.send(req, cancel).await?;
            let text = String::from_utf8_lossy(&resp.body);
            let (page, next) =
                parse_listing(&text).map_err(|d| ConnectorError::bad_body(self.t.env(), call, &d))?;
            all.blobs.extend(page.blobs);
            all.prefixes.extend(page.prefixes);
            match next {
                Some(n) => {
                    bound.next(&format!("marker:{n}"))?;
                    marker = Some(n);
                }
                None => return Ok(all),
            }
        }
    }

    /// The bytes of one blob.
    pub async fn get(&self, blob: &str, cancel: &CancellationToken) -> Result<Vec<u8>> {
        let req = Request::get("storage.get_blob", self.path(blob)).header("x-ms-version", STORAGE_VERSION);
        Ok(self.t.send(req, cancel).await?.body)
    }
}

/// One timestamped folder of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFolder {
    pub name: String,
    /// The UTC time the name gives.
    pub at: DateTime<Utc>,
    /// Not the folder `Changelog/changelog.info` names (nor one after it).
    pub closed: bool,
    /// The newest `Last-Modified` of its `model.json` (when the service last wrote it).
    pub written: Option<DateTime<Utc>>,
}

/// The export as the folders show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportState {
    /// In time order.
    pub folders: Vec<ExportFolder>,
    /// What `Changelog/changelog.info` names (the folder still being written), when it is there.
    pub open: Option<String>,
}

impl ExportState {
    /// The newest folder that is no longer written.
    pub fn newest_closed(&self) -> Option<&ExportFolder> {
        self.folders.iter().rev().find(|f| f.closed)
    }
}

/// The time a folder name gives (`2026-11-27T18.05.00Z`; also `:` separators), if it is one.
pub fn folder_time(name: &str) -> Option<DateTime<Utc>> {
    let n = name.trim_end_matches('/');
    [
        "%Y-%m-%dT%H.%M.%SZ",
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H.%M.%S%.fZ",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(n, f).ok())
    .map(|d| d.and_utc())
}

/// A table's attributes in one `model.json`: (name, data type), in column order.
pub type Attributes = Vec<(String, String)>;

/// Parses a `model.json`: every entity's attributes.
pub fn parse_model(
    bytes: &[u8],
) -> std::result::Result<std::collections::BTreeMap<String, Attributes>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("model.json is not JSON: {e}"))?;
    let entities = v
        .get("entities")
        .and_then(Value::as_array)
        .ok_or("model.json has no `entities`")?;
    let mut out = std::collections::BTreeMap::new();
    for e in entities {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            return Err("an entity of model.json has no `name`".into());
        };
        let attrs = e
            .get("attributes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some((
                            x.get("name")?.as_str()?.to_owned(),
                            x.get("dataType")
                                .and_then(Value::as_str)
                                .unwrap_or("string")
                                .to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name.to_owned(), attrs);
    }
    Ok(out)
}

/// Splits headerless RFC 4180 CSV into records.
pub fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut cell)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut cell));
                out.push(std::mem::take(&mut row));
                any = false;
            }
            _ => cell.push(c),
        }
    }
    if any {
        row.push(cell);
        out.push(row);
    }
    out
}

/// The export under `root` (`folder/` or empty) of a container.
pub struct Export<'a> {
    pub blob: &'a BlobClient,
    pub root: String,
}

impl Export<'_> {
    /// Folders and the one still being written.
    pub async fn state(&self, cancel: &CancellationToken) -> Result<ExportState> {
        let listing = self.blob.list(&self.root, Some("/"), cancel).await?;
        let open = match self
            .blob
            .get(&format!("{}Changelog/changelog.info", self.root), cancel)
            .await
        {
            Ok(b) => Some(
                String::from_utf8_lossy(&b)
                    .trim()
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            Err(ConnectorError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let mut folders: Vec<ExportFolder> = listing
            .prefixes
            .iter()
            .filter_map(|p| {
                let name = p
                    .strip_prefix(&self.root)
                    .unwrap_or(p)
                    .trim_end_matches('/')
                    .to_owned();
                folder_time(&name).map(|at| ExportFolder {
                    name,
                    at,
                    closed: false,
                    written: None,
                })
            })
            .collect();
        folders.sort_by_key(|f| f.at);
        let open_at = open.as_deref().and_then(folder_time);
        let n = folders.len();
        for (i, f) in folders.iter_mut().enumerate() {
            // Without changelog.info the newest folder may still be written: never trust it.
            f.closed = match open_at {
                Some(o) => f.at < o,
                None => i + 1 < n,
            };
        }
        Ok(ExportState { folders, open })
    }

    /// When the service last wrote a folder (its `model.json`'s `Last-Modified`).
    pub async fn written(&self, folder: &str, cancel: &CancellationToken) -> Result<Option<DateTime<Utc>>> {
        let l = self
            .blob
            .list(&format!("{}{folder}/model.json", self.root), None, cancel)
            .await?;
        Ok(l.blobs.iter().filter_map(|b| b.last_modified).max())
    }

    /// A folder's `model.json`: attributes per table.
    pub async fn model(
        &self,
        folder: &str,
        cancel: &CancellationToken,
    ) -> Result<std::collections::BTreeMap<String, Attributes>> {
        let call = "storage.model_json";
        let bytes = self
            .blob
            .get(&format!("{}{folder}/model.json", self.root), cancel)
            .await?;
        parse_model(&bytes)
            .map_err(|d| ConnectorError::bad_body(self.blob.env(), call, format!("{folder}/model.json: {d}")))
    }

    /// The CSV partitions of one table in one folder, in name order.
    pub async fn partitions(
        &self,
        folder: &str,
        table: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>> {
        let prefix = format!("{}{folder}/{table}/", self.root);
        let listing = self.blob.list(&prefix, None, cancel).await?;
        let mut names: Vec<String> = listing
            .blobs
            .into_iter()
            .map(|b| b.name)
            .filter(|n| n.ends_with(".csv"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The records of one partition (a blob name from [`Self::partitions`]).
    pub async fn partition(&self, blob: &str, cancel: &CancellationToken) -> Result<Vec<Vec<String>>> {
        Ok(parse_csv(&self.blob.get(blob, cancel).await?))
    }

    /// Every record of one table in one folder (its partitions in name order).
    pub async fn records(
        &self,
        folder: &str,
        table: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<Vec<String>>> {
        let mut out = Vec::new();
        for n in self.partitions(folder, table, cancel).await? {
            out.extend(self.partition(&n, cancel).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_csv_and_folder_names_parse() {
        let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ContainerName=\"c\"><Prefix>a/</Prefix><Blobs><Blob><Name>a/x&amp;y.csv</Name><Properties><Last-Modified>Fri, 27 Nov 2026 18:05:00 GMT</Last-Modified><Content-Length>12</Content-Length></Properties></Blob><BlobPrefix><Name>a/b/</Name></BlobPrefix></Blobs><NextMarker>a/z</NextMarker></EnumerationResults>";
        let (l, next) = parse_listing(xml).unwrap();
        assert_eq!(l.blobs[0].name, "a/x&y.csv");
        assert_eq!(l.blobs[0].length, 12);
        assert!(l.blobs[0].last_modified.is_some());
        assert_eq!(l.prefixes, ["a/b/"]);
        assert_eq!(next.as_deref(), Some("a/z"));
        assert!(parse_listing("<Error/>").is_err());
        let rows = parse_csv(b"1,\"a,b\",\"say \"\"hi\"\"\"\r\n2,,\n");
        assert_eq!(rows, vec![vec!["1", "a,b", "say \"hi\""], vec!["2", "", ""]]);
        assert!(folder_time("2026-11-27T18.05.00Z").is_some());
        assert!(folder_time("Changelog").is_none());
    }
}
