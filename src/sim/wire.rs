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

struct Ordered<'a>(&'a serde_json::Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let serde_json::Value::Object(m) = self.0 else {
            return self.0.serialize(s);
        };
        const CONTEXT: &str = "@odata.context";
        const NEXT: &str = "@odata.nextLink";
        let rank = |k: &str| match k {
            CONTEXT => 0,
            NEXT => 3,
            k if k.starts_with('@') => 1,
            _ => 2,
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
