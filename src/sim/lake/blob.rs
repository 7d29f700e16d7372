//! The Blob API stand-in for the export's storage account, path-style as the storage emulator addresses it:
//! `/_storage/<account>/<container>?restype=container&comp=list` (List Blobs: `prefix`, `delimiter`, `marker`,
//! `maxresults`; the `EnumerationResults` XML) and `/_storage/<account>/<container>/<blob>` (Get Blob).
//! Errors are the service's XML `<Error><Code/><Message/></Error>` with `x-ms-error-code`.
//!
//! Our model: requests need `Authorization: Bearer` with a token for `https://storage.azure.com` and an
//! `x-ms-version` header (Bearer needs 2017-11-09 or later); an account other than the scenario's is
//! `ResourceNotFound`; blobs are listed in name order, `NextMarker` is the next name; `Etag` is a hash of
//! the content; `Content-Type` is `application/json` for `model.json`, `text/csv` for partitions and
//! `application/octet-stream` otherwise.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::server::{App, header};
use super::super::xml::escape;
use super::{Folder, LakeRt};

/// A blob's content, creation and last-modified simulated times.
type BlobEntry = (Vec<u8>, f64, f64);

/// A Blob service error: XML body, `x-ms-error-code`, a request id.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f0Z");
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}\nRequestId:00000000-0000-0000-0000-000000000000\nTime:{now}</Message></Error>",
        escape(code),
        escape(message)
    );
    let mut r = (status, [("content-type", "application/xml")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-ms-error-code", v);
    }
    r.headers_mut()
        .insert("x-ms-version", HeaderValue::from_static("2021-08-06"));
    r
}

/// The bearer check of the storage account.
fn check(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        ));
    };
    if header(headers, "x-ms-version").is_none_or(|v| v < "2017-11-09") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            "Authentication scheme Bearer is not supported in this version.",
        ));
    }
    let ok = app.with(|st| {
        st.tokens.get(token.trim()).is_some_and(|t| {
            std::time::Instant::now() < t.expires && t.audience == "https://storage.azure.com"
        })
    });
    if ok {
        Ok(())
    } else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationInfo",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(
                "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize resource_id=https://storage.azure.com",
            ),
        );
        Err(r)
    }
}

/// Every blob of the container whose name starts with `prefix`: name → (content, creation and last-modified
/// simulated time). Only those are rendered (a request for one folder's blobs does not pay for the others).
fn blobs(
    lake: &LakeRt,
    start: chrono::DateTime<chrono::Utc>,
    now: f64,
    prefix: &str,
) -> BTreeMap<String, (Vec<u8>, f64, f64)> {
    let root = lake.root();
    let mut out = BTreeMap::new();
    let base = format!(
        "https://{}.dfs.core.windows.net/{}/{root}",
        lake.cfg.account, lake.cfg.container
    );
    for f in &lake.folders {
        let dir = format!("{root}{}/", f.name);
        if !(dir.starts_with(prefix) || prefix.starts_with(&dir)) {
            continue;
        }
        let modified = f.closed_at.unwrap_or(now);
        let parts = partitions(f);
        let model_name = format!("{dir}model.json");
        if model_name.starts_with(prefix) {
            let model = model_json(f, &base, &parts);
            out.insert(model_name, (model.into_bytes(), f.start, modified));
        }
        for ((table, year), rows) in parts {
            let name = format!("{dir}{table}/{year}.csv");
            if name.starts_with(prefix) {
                out.insert(name, (csv(&rows), f.start, modified));
            }
        }
    }
    if let Some(open) = lake.open_folder()
        && format!("{root}Changelog/changelog.info").starts_with(prefix)
    {
        out.insert(
            format!("{root}Changelog/changelog.info"),
            (open.name.clone().into_bytes(), 0.0, open.start),
        );
    }
    let _ = start;
    out
}

/// A folder's rows per (table, partition year).
fn partitions(f: &Folder) -> BTreeMap<(String, i32), Vec<&Vec<String>>> {
    let mut out: BTreeMap<(String, i32), Vec<&Vec<String>>> = BTreeMap::new();
    for (t, rows) in &f.rows {
        let years = f.years.get(t);
        for (i, r) in rows.iter().enumerate() {
            let y = years.and_then(|y| y.get(i)).copied().unwrap_or(1970);
            out.entry((t.clone(), y)).or_default().push(r);
        }
    }
    out
}

/// The folder's `model.json` (Common Data Model): every table's attributes and its partitions.
fn model_json(f: &Folder, base: &str, parts: &BTreeMap<(String, i32), Vec<&Vec<String>>>) -> String {
    let entities: Vec<Value> = f
        .schema
        .iter()
        .map(|(t, attrs)| {
            let partitions: Vec<Value> = parts
                .keys()
                .filter(|(pt, _)| pt == t)
                .map(|(_, y)| {
                    json!({
                        "name": y.to_string(),
                        "location": format!("{base}{}/{t}/{y}.csv", f.name),
                    })
                })
                .collect();
            json!({
                "$type": "LocalEntity",
                "name": t,
                "description": t,
                "attributes": attrs.iter().map(|(n, ty)| json!({"name": n, "dataType": ty, "maxLength": -1})).collect::<Vec<_>>(),
                "partitions": partitions,
            })
        })
        .collect();
    json!({
        "name": "cdm",
        "description": "cdm",
        "version": "1.0",
        "entities": entities,
    })
    .to_string()
}

/// Headerless CSV, RFC 4180 quoting where a value needs it.
fn csv(rows: &[&Vec<String>]) -> Vec<u8> {
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .map(|v| {
                if v.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", v.replace('"', "\"\""))
                } else {
                    v.clone()
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn rfc1123(start: chrono::DateTime<chrono::Utc>, t: f64) -> String {
    (start + chrono::Duration::milliseconds((t * 1000.0) as i64))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn etag(bytes: &[u8]) -> String {
    format!(
        "\"0x8D{:014X}\"",
        super::super::faults::hash_str(&String::from_utf8_lossy(bytes)) & 0xFF_FFFF_FFFF_FFFF
    )
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".csv") {
        "text/csv"
    } else {
        "application/octet-stream"
    }
}

/// The lake and the container a request names, or the service's error.
fn resolve(app: &App, account: &str, container: &str) -> Result<(), Response> {
    let known = app.with(|st| {
        st.lake
            .as_ref()
            .map(|l| (l.cfg.account == account, l.cfg.container == container))
    });
    match known {
        Some((true, true)) => Ok(()),
        Some((true, false)) => Err(error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        )),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        )),
    }
}

/// `GET /_storage/{account}/{container}?restype=container&comp=list`.
pub async fn container(
    State(app): State<App>,
    Path((account, container)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    if let Err(r) = resolve(&app, &account, &container) {
        return r;
    }
    if q.get("restype").map(String::as_str) != Some("container")
        || q.get("comp").map(String::as_str) != Some("list")
    {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "Only List Blobs (restype=container&comp=list) is modelled by the simulator on a container.",
        );
    }
    let max = match q.get("maxresults").map(|m| m.parse::<usize>()) {
        None => 5000,
        Some(Ok(n)) if (1..=5000).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "OutOfRangeQueryParameterValue",
                "One of the query parameters specified in the request URI is outside the permissible range.",
            );
        }
    };
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let marker = q.get("marker").cloned().unwrap_or_default();
    let (all, start) = app.with(|st| {
        let now = st.now;
        super::advance(st, now, true);
        let start = st.scenario.start;
        (
            st.lake
                .as_ref()
                .map(|l| blobs(l, start, now, &prefix))
                .unwrap_or_default(),
            start,
        )
    });
    // Entries: blobs, or prefixes up to the delimiter, in name order.
    let mut entries: Vec<(String, Option<&BlobEntry>)> = Vec::new();
    for (name, b) in all.range(prefix.clone()..) {
        if !name.starts_with(&prefix) {
            break;
        }
        let rest = &name[prefix.len()..];
        match delimiter
            .as_deref()
            .and_then(|d| rest.find(d).map(|i| (i, d.len())))
        {
            Some((i, dl)) => {
                let p = format!("{prefix}{}", &rest[..i + dl]);
                if entries.last().is_none_or(|(n, _)| n != &p) {
                    entries.push((p, None));
                }
            }
            None => entries.push((name.clone(), Some(b))),
        }
    }
    let from = entries.partition_point(|(n, _)| n.as_str() < marker.as_str());
    let page = &entries[from..entries.len().min(from + max)];
    let next = entries.get(from + max).map(|(n, _)| n.clone());
    let mut xml = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"https://{}.blob.core.windows.net/\" ContainerName=\"{}\">",
        escape(&account),
        escape(&container)
    );
    if !prefix.is_empty() {
        xml.push_str(&format!("<Prefix>{}</Prefix>", escape(&prefix)));
    }
    if !marker.is_empty() {
        xml.push_str(&format!("<Marker>{}</Marker>", escape(&marker)));
    }
    if q.contains_key("maxresults") {
        xml.push_str(&format!("<MaxResults>{max}</MaxResults>"));
    }
    if let Some(d) = &delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", escape(d)));
    }
    xml.push_str("<Blobs>");
    for (name, b) in page {
        match b {
            Some((bytes, created, modified)) => xml.push_str(&format!(
                "<Blob><Name>{}</Name><Properties><Creation-Time>{}</Creation-Time><Last-Modified>{}</Last-Modified><Etag>{}</Etag><Content-Length>{}</Content-Length><Content-Type>{}</Content-Type><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties></Blob>",
                escape(name),
                rfc1123(start, *created),
                rfc1123(start, *modified),
                etag(bytes),
                bytes.len(),
                content_type(name),
            )),
            None => xml.push_str(&format!("<BlobPrefix><Name>{}</Name></BlobPrefix>", escape(name))),
        }
    }
    xml.push_str("</Blobs>");
    match next {
        Some(n) => xml.push_str(&format!("<NextMarker>{}</NextMarker>", escape(&n))),
        None => xml.push_str("<NextMarker />"),
    }
    xml.push_str("</EnumerationResults>");
    (
        StatusCode::OK,
        [
            ("content-type", "application/xml"),
            ("x-ms-version", "2021-08-06"),
        ],
        xml,
    )
        .into_response()
}

/// `GET /_storage/{account}/{container}/{blob}`.
pub async fn get_blob(
    State(app): State<App>,
    Path((account, container, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check(&app, &headers) {
        return r;
    }
    if let Err(r) = resolve(&app, &account, &container) {
        return r;
    }
    let found = app.with(|st| {
        let now = st.now;
        super::advance(st, now, true);
        let start = st.scenario.start;
        st.lake
            .as_ref()
            .and_then(|l| blobs(l, start, now, &name).remove(&name))
            .map(|b| (b, start))
    });
    let Some(((bytes, _, modified), start)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        );
    };
    let mut r = (StatusCode::OK, bytes.clone()).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        ("content-type", content_type(&name).to_owned()),
        ("etag", etag(&bytes)),
        ("last-modified", rfc1123(start, modified)),
        ("x-ms-blob-type", "BlockBlob".to_owned()),
        ("x-ms-version", "2021-08-06".to_owned()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}
