//! Dataverse Web API (`/api/data/v9.2/`): the request dispatch and the service's error shapes.
//!
//! Served: collections with `$select $filter $orderby $top $count $expand` (lookups), paging by
//! `Prefer: odata.maxpagesize` and `$skiptoken`, `/$count`, single records by id or alternate key,
//! create/update/delete, `CreateMultiple`/`UpdateMultiple`, FetchXML rows and aggregates, WhoAmI,
//! RetrieveVersion, RetrieveTotalRecordCount, table metadata (`meta.rs`), `$batch` (`batch.rs`) and
//! the service-protection limits. Errors are `{"error":{"code","message"}}`: a missing record is
//! 404 `0x80040217`, a URI or query the service refuses 400/404 `0x80060888` (wire-facts B4); what the
//! simulator does not model is a 501 that says so.

mod fetchxml;
pub mod meta;
mod paging;
mod protect;
mod query;
mod write;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use protect::protect;

use super::faults::Service;
use super::odata::{self, QueryError};
use super::route::Ext;
use super::server::{App, json_error};
use super::wire;

/// The Web API root under a host.
pub const API: &str = "/api/data/v9.2";

pub fn api_base(ext: &Ext) -> String {
    format!("{}{API}", ext.base)
}

pub fn bad(msg: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "0x80060888", msg)
}

pub fn segment_not_found(seg: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "0x80060888",
        &format!("Resource not found for the segment '{seg}'."),
    )
}

/// 404 `0x80040217` (ObjectDoesNotExist) for a record addressed by its id.
pub fn record_missing(logical: &str, id: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "0x80040217",
        &format!("{logical} With Id = {id} Does Not Exist"),
    )
}

/// 404 `0x80040217` for a record addressed by an alternate key.
pub fn key_missing(logical: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "0x80040217",
        &format!("A record with the specified key values does not exist in {logical} entity"),
    )
}

pub fn query_error(e: QueryError) -> Response {
    if e.not_modelled {
        wire::not_modelled(Service::Dataverse, &e.message)
    } else {
        bad(&e.message)
    }
}

pub fn not_modelled(what: &str) -> Response {
    wire::not_modelled(Service::Dataverse, what)
}

/// Splits a resource path on the slashes outside key predicates.
pub fn segments(rest: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in rest.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '/' if depth == 0 && !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.retain(|s| !s.is_empty());
    out
}

fn is_set(app: &App, seg: &str) -> bool {
    let set = seg.split('(').next().unwrap_or(seg);
    app.with(|st| st.dv_idx.contains_key(set))
}

/// A set the scenario denies the console's user (`dataverse.forbidden`).
fn forbidden(app: &App, seg: &str) -> bool {
    let set = seg.split('(').next().unwrap_or(seg);
    app.with(|st| st.scenario.dataverse.forbidden.iter().any(|f| f == set))
}

fn is_call(seg: &str, name: &str) -> bool {
    seg == name || seg.strip_prefix(name).is_some_and(|r| r.starts_with('('))
}

/// `GET /api/data/v9.2/...`.
pub async fn get(
    State(app): State<App>,
    ext: Ext,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let segs = segments(&rest);
    let base = api_base(&ext);
    let first = segs.first().cloned().unwrap_or_default();
    match segs.as_slice() {
        [s] if is_call(s, "WhoAmI") => whoami(&app, &base),
        [s] if is_call(s, "RetrieveVersion") => Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse"),
            "Version": "9.2.0.0",
        }))
        .into_response(),
        [s] if is_call(s, "RetrieveCurrentOrganization") => not_modelled("RetrieveCurrentOrganization"),
        [s] if is_call(s, "RetrieveTotalRecordCount") => total_record_count(&app, s, raw.as_deref(), &base),
        [s, ..] if is_call(s, "EntityDefinitions") => {
            meta::entity_definitions(&app, &base, &segs, raw.as_deref())
        }
        [s, ..] if forbidden(&app, s) => json_error(
            StatusCode::FORBIDDEN,
            "0x80040220",
            &format!("Principal user is missing prvRead privilege on '{s}'."),
        ),
        [s] => query::collection(&app, &base, s, raw.as_deref(), &headers),
        [s, c] if c == "$count" => query::count(&app, s, raw.as_deref()),
        [s, tail, ..] if is_set(&app, s) && s.contains('(') => not_modelled(&format!(
            "Reading '{tail}' of a record (a property or navigation path)"
        )),
        [s, tail, ..] if is_set(&app, s) => segment_not_found(tail),
        _ => segment_not_found(&first),
    }
}

/// `/XRMServices/2011/Organization.svc/...` with a valid token: the SOAP endpoint is not modelled
/// (without a token the pipeline answers the 401 challenge .NET clients read first).
pub async fn soap() -> Response {
    not_modelled("The Organization service (SOAP, /XRMServices/2011/Organization.svc)")
}

/// `POST /api/data/v9.2/...`: create, CreateMultiple/UpdateMultiple.
pub async fn post(
    State(app): State<App>,
    ext: Ext,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segs = segments(&rest);
    let base = api_base(&ext);
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match segs.as_slice() {
        [s] if s == "EntityDefinitions" => meta::create_table(&app, &base, &body),
        [s, a] if is_call(s, "EntityDefinitions") && a == "Attributes" => {
            meta::create_column(&app, &base, s, &body)
        }
        [s] if is_set(&app, s) && !s.contains('(') => {
            write::create(&app, &base, s, raw.as_deref(), &headers, body)
        }
        [s, a] if is_set(&app, s) && a == "Microsoft.Dynamics.CRM.CreateMultiple" => {
            write::multiple(&app, &base, s, body, false)
        }
        [s, a] if is_set(&app, s) && a == "Microsoft.Dynamics.CRM.UpdateMultiple" => {
            write::multiple(&app, &base, s, body, true)
        }
        [s, a] if is_set(&app, s) && a.starts_with("Microsoft.Dynamics.CRM.") => {
            not_modelled(&format!("The action {a}"))
        }
        [s, ..] if is_set(&app, s) => not_modelled(&format!("POST to '{rest}'")),
        [s, ..] => segment_not_found(s),
        [] => segment_not_found(""),
    }
}

/// `DELETE /api/data/v9.2/<set>(<id or alternate key>)`.
pub async fn delete(State(app): State<App>, Path(rest): Path<String>) -> Response {
    match segments(&rest).as_slice() {
        [s] if is_set(&app, s) => write::delete(&app, s),
        [s, ..] if is_set(&app, s) => not_modelled(&format!("DELETE of '{rest}'")),
        [s, ..] => segment_not_found(s),
        [] => segment_not_found(""),
    }
}

/// `PATCH /api/data/v9.2/<set>(<id or alternate key>)`: update, or upsert when it does not exist.
pub async fn patch(
    State(app): State<App>,
    ext: Ext,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match segments(&rest).as_slice() {
        [s] if is_set(&app, s) && s.contains('(') => write::update(&app, &api_base(&ext), s, &headers, body),
        [s, ..] if is_set(&app, s) => not_modelled(&format!("PATCH of '{rest}'")),
        [s, ..] => segment_not_found(s),
        [] => segment_not_found(""),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| bad(&format!("The request body is not valid JSON: {e}")))
}

fn whoami(app: &App, base: &str) -> Response {
    let seed = app.seed;
    let g = |k: u64| super::tables::guid_from(super::faults::mix(seed, k), super::faults::mix(k, seed));
    Json(json!({
        "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
        "BusinessUnitId": g(1), "UserId": g(2), "OrganizationId": g(3),
    }))
    .into_response()
}

/// `RetrieveTotalRecordCount(EntityNames=@p1)?@p1=[...]`: the stale snapshot of row counts.
fn total_record_count(app: &App, seg: &str, raw: Option<&str>, base: &str) -> Response {
    let pairs = odata::pairs(raw);
    let inline = seg
        .split_once("EntityNames=")
        .map(|(_, r)| r.trim_end_matches(')').to_string())
        .unwrap_or_default();
    let list = match inline.strip_prefix('@') {
        Some(alias) => pairs
            .iter()
            .find(|(k, _)| k == &format!("@{alias}"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        None => odata::decode(&inline),
    };
    let Ok(names) = serde_json::from_str::<Vec<String>>(&list.replace('\'', "\"")) else {
        return bad("EntityNames must be a JSON array of logical names.");
    };
    let values: Result<Vec<u64>, String> = app.with(|st| {
        names
            .iter()
            .map(|n| {
                st.snapshot
                    .1
                    .get(n)
                    .copied()
                    .ok_or_else(|| format!("Entity '{n}' does not exist."))
            })
            .collect()
    });
    match values {
        Ok(values) => Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse"),
            "EntityRecordCountCollection": {"Count": names.len(), "IsReadOnly": false, "Keys": names, "Values": values},
        }))
        .into_response(),
        Err(e) => json_error(StatusCode::BAD_REQUEST, "0x80040217", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_outside_key_predicates() {
        assert_eq!(
            segments("EntityDefinitions(LogicalName='a/b')/Attributes"),
            ["EntityDefinitions(LogicalName='a/b')", "Attributes"]
        );
        assert!(is_call("WhoAmI()", "WhoAmI") && !is_call("WhoAmIx", "WhoAmI"));
    }
}
