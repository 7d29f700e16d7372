//! What every Dataverse and F&O response carries on the wire, and the `Prefer` header.
//!
//! Both services answer `OData-Version: 4.0` and JSON as `application/json; odata.metadata=minimal`
//! (wire-facts B1 [doc] for Dataverse; F&O is an OData v4 service, [derived]). A Dataverse 401 carries
//! the challenge .NET clients use to find the tenant: `WWW-Authenticate: Bearer
//! authorization_uri=https://login.microsoftonline.com/<tenant>/oauth2/authorize,
//! resource_id=https://<org>/` (wire-facts B14 [client]).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::faults::Service;
use super::route::{self, Ext};
use super::server::{App, header, json_error};

/// Adds `OData-Version: 4.0` and the `odata.metadata=minimal` JSON content type to a Dataverse or
/// F&O response.
pub fn odata_headers(service: Service, mut r: Response) -> Response {
    if !matches!(service, Service::Dataverse | Service::Fno) {
        return r;
    }
    let h = r.headers_mut();
    if !h.contains_key("odata-version") {
        h.insert("odata-version", HeaderValue::from_static("4.0"));
    }
    if h.get("content-type").is_some_and(|v| v == "application/json") {
        h.insert(
            "content-type",
            HeaderValue::from_static("application/json; odata.metadata=minimal"),
        );
    }
    r
}

/// Puts the Dataverse challenge on a 401 (`presented`: the request carried a token, so the
/// challenge also says why it was refused).
pub fn challenge(app: &App, service: Service, ext: &Ext, presented: bool, mut r: Response) -> Response {
    if service != Service::Dataverse {
        return r;
    }
    // Through the real host names the authority is Entra's own; on the bare listen address it is
    // this simulator, so a client that follows the challenge reaches a token endpoint.
    let authority = if route::host_service(app, ext.hostname()).is_some() {
        "https://login.microsoftonline.com".to_string()
    } else {
        ext.base.clone()
    };
    let tenant = super::entra_meta::tenant_id(app);
    let mut www = format!(
        "Bearer authorization_uri={authority}/{tenant}/oauth2/authorize, resource_id={}/",
        ext.base
    );
    if presented {
        www = format!("{www}, error=\"invalid_token\"");
    }
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

/// A request the service would serve but the simulator does not model: 501 in the service's
/// error shape, saying so.
pub fn not_modelled(service: Service, what: &str) -> Response {
    let msg = if what.contains("not modelled by the simulator") {
        what.to_string()
    } else {
        format!("{what} is not modelled by the simulator.")
    };
    let code = match service {
        Service::Dataverse => "0x80060888",
        Service::Fno => "",
        _ => "NotImplemented",
    };
    json_error(StatusCode::NOT_IMPLEMENTED, code, &msg)
}

/// Splits a `Prefer` header into its preferences on the commas outside double quotes: the documented
/// `odata.include-annotations="A,B"` form carries a comma inside its quoted value.
pub fn preferences(prefer: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in prefer.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(prefer[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(prefer[start..].trim());
    out
}

/// The `odata.include-annotations` preference as sent (`odata.include-annotations="..."`), if any.
pub fn include_annotations(headers: &HeaderMap) -> Option<String> {
    let p = header(headers, "prefer")?;
    preferences(p)
        .into_iter()
        .find(|x| x.starts_with("odata.include-annotations"))
        .map(str::to_string)
}

/// Whether the request asked for annotation `name` (by name, by a `*` pattern, or all).
pub fn wants_annotation(headers: &HeaderMap, name: &str) -> bool {
    include_annotations(headers).is_some_and(|x| {
        let list = x.split_once('=').map_or("", |(_, v)| v).trim_matches('"');
        list.split(',')
            .map(str::trim)
            .any(|p| p == "*" || p == name || p.strip_suffix('*').is_some_and(|pre| name.starts_with(pre)))
    })
}

/// Whether `Prefer` holds `pref` (e.g. `return=representation`).
pub fn prefers(headers: &HeaderMap, pref: &str) -> bool {
    header(headers, "prefer").is_some_and(|p| preferences(p).iter().any(|x| x.eq_ignore_ascii_case(pref)))
}

/// Adds `Preference-Applied` listing the honoured preferences (none: no header).
pub fn preference_applied(r: &mut Response, applied: &[String]) {
    if applied.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&applied.join(",")) {
        r.headers_mut().insert("preference-applied", v);
    }
}

/// A collection (or entity) body as the services lay it out: `@odata.context` first, the other annotations
/// (`@odata.count`, `@Microsoft.Dynamics.CRM.totalrecordcount`, ...), then the properties (`value`), and
/// `@odata.nextLink` last, as in Microsoft's examples (reference §2 for F&O; for Dataverse, "Page results by using
/// OData", learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results). A `serde_json` map would write
/// its keys sorted, putting the next link before the rows.
pub fn odata_json(body: serde_json::Value) -> Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(&Ordered(&body)) {
        Ok(bytes) => (
            StatusCode::OK,
            [("content-type", "application/json; odata.metadata=minimal")],
            bytes,
        )
            .into_response(),
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &format!("the simulator could not write its answer: {e}"),
        ),
    }
}

/// A read's answer: a body as a value, or a page whose rows are already written ([`odata_page`]).
pub enum Body {
    Value(serde_json::Value),
    Page(serde_json::Map<String, serde_json::Value>, Vec<u8>),
}

impl Body {
    pub fn into_response(self) -> Response {
        match self {
            Body::Value(v) => odata_json(v),
            Body::Page(head, rows) => odata_page(&head, &rows),
        }
    }
}

/// A collection page whose rows are already written: `rows` holds the JSON objects of `value`, comma-separated.
/// The body is byte for byte what [`odata_json`] writes for `head` with `"value": [rows]` added, without a
/// `serde_json::Value` per row and cell (a 10,000-row page of a million-row read is built for every request).
pub fn odata_page(head: &serde_json::Map<String, serde_json::Value>, rows: &[u8]) -> Response {
    use axum::response::IntoResponse;
    (
        StatusCode::OK,
        [("content-type", "application/json; odata.metadata=minimal")],
        page_bytes(head, rows),
    )
        .into_response()
}

fn page_bytes(head: &serde_json::Map<String, serde_json::Value>, rows: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() + 512);
    let mut first = true;
    let mut entry = |out: &mut Vec<u8>, k: &str, v: Option<&serde_json::Value>| {
        out.push(if std::mem::take(&mut first) { b'{' } else { b',' });
        write_str(out, k);
        out.push(b':');
        match v {
            Some(v) => write_value(out, v),
            None => {
                out.push(b'[');
                out.extend_from_slice(rows);
                out.push(b']');
            }
        }
    };
    // The order of [`Ordered`]: the context, the other annotations, the properties (`value` among them, in
    // key order), the next link.
    for r in 0..4 {
        let mut value_done = r != 2;
        for (k, v) in head.iter().filter(|(k, _)| rank(k) == r && k.as_str() != "value") {
            if !value_done && k.as_str() > "value" {
                entry(&mut out, "value", None);
                value_done = true;
            }
            entry(&mut out, k, Some(v));
        }
        if !value_done {
            entry(&mut out, "value", None);
        }
    }
    out.push(b'}');
    out
}

/// Writes one row of a page: the object `serde_json` would write for a map of `fields` (keys in order), after a
/// comma when `rows` already holds one. Each name must be there once.
pub fn write_object(rows: &mut Vec<u8>, fields: &mut [(std::borrow::Cow<'_, str>, serde_json::Value)]) {
    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if !rows.is_empty() {
        rows.push(b',');
    }
    rows.push(b'{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            rows.push(b',');
        }
        write_str(rows, k);
        rows.push(b':');
        write_value(rows, v);
    }
    rows.push(b'}');
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a vector cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_value(out: &mut Vec<u8>, v: &serde_json::Value) {
    // A `Value`'s keys are strings and a vector cannot refuse bytes: this cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn rank(k: &str) -> u8 {
    match k {
        "@odata.context" => 0,
        "@odata.nextLink" => 3,
        k if k.starts_with('@') => 1,
        _ => 2,
    }
}

struct Ordered<'a>(&'a serde_json::Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let serde_json::Value::Object(m) = self.0 else {
            return self.0.serialize(s);
        };
        let mut out = s.serialize_map(Some(m.len()))?;
        for r in 0..4 {
            for (k, v) in m.iter().filter(|(k, _)| rank(k) == r) {
                out.serialize_entry(k, v)?;
            }
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with its rows written ahead is the body [`odata_json`] writes for the same page as a value: the
    /// annotations in their places around `value` (other properties before or after it in key order), quotes
    /// and control characters escaped, no rows at all.
    #[test]
    fn a_page_of_written_rows_is_the_body_the_value_gives() {
        let rows = [
            serde_json::json!({"@odata.etag": "W/\"1\"", "name": "Quote \" and \\ and \n", "z": 1.5, "a": null}),
            serde_json::json!({"@odata.etag": "W/\"2\"", "name": "Ünïcode ✓", "z": [1, {"b": true}], "a": "x"}),
        ];
        let heads = [
            serde_json::json!({"@odata.context": "https://h/$metadata#s"}),
            serde_json::json!({
                "@odata.nextLink": "https://h/s?$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E",
                "@odata.count": 5000,
                "@Microsoft.Dynamics.CRM.totalrecordcount": -1,
                "@odata.context": "https://h/$metadata#s(a,name)",
                "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": false,
            }),
            serde_json::json!({"@odata.context": "c", "aaa": 1, "zzz": {"k": "v"}, "@odata.nextLink": "n"}),
            serde_json::json!({}),
        ];
        for head in heads {
            let serde_json::Value::Object(head) = head else {
                unreachable!()
            };
            for n in 0..=rows.len() {
                let mut written = Vec::new();
                for r in &rows[..n] {
                    let serde_json::Value::Object(m) = r else {
                        unreachable!()
                    };
                    let mut fields: Vec<_> = m
                        .iter()
                        .rev()
                        .map(|(k, v)| (std::borrow::Cow::Borrowed(k.as_str()), v.clone()))
                        .collect();
                    write_object(&mut written, &mut fields);
                }
                let mut body = head.clone();
                body.insert("value".into(), serde_json::Value::Array(rows[..n].to_vec()));
                let want = serde_json::to_vec(&Ordered(&serde_json::Value::Object(body))).unwrap();
                assert_eq!(
                    String::from_utf8(page_bytes(&head, &written)).unwrap(),
                    String::from_utf8(want).unwrap(),
                    "{n} rows under {head:?}"
                );
            }
        }
    }

    #[test]
    fn both_names_of_the_documented_two_name_annotation_form_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            HeaderValue::from_static(
                "odata.maxpagesize=10, odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\"",
            ),
        );
        assert!(wants_annotation(&h, "Microsoft.Dynamics.CRM.totalrecordcount"));
        assert!(wants_annotation(
            &h,
            "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
        ));
        assert!(!wants_annotation(
            &h,
            "Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
        ));
        h.insert(
            "prefer",
            HeaderValue::from_static("odata.include-annotations=\"Microsoft.Dynamics.CRM.*\""),
        );
        assert!(wants_annotation(&h, "Microsoft.Dynamics.CRM.morerecords"));
        assert_eq!(preferences("a, b=\"x,y\", c"), vec!["a", "b=\"x,y\"", "c"]);
    }
}
