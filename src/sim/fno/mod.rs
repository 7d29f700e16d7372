//! F&O OData (`/data/`): collections, `$count`, single records, create, update, delete, the DMF
//! actions, and (in `meta.rs`) the service document, `$metadata` and the metadata service.
//!
//! Without `cross-company=true` a company-specific set shows only the default company, as the real
//! service does. Errors are the ASP.NET OData `{"error":{"code":"","message"}}` shape (wire-facts C
//! [community]); an unknown property in a query or a body is the OData 400 naming it, an unknown
//! `$` option a 400, a modelled-nowhere one a 501. Our models: the next link is `<base>/data/<Set>?
//! <same options>&$skip=<n>` (the real token format is undocumented; clients must follow it
//! verbatim); `Prefer: odata.maxpagesize` can lower the page size but never raise it above
//! `fno.page_size`; the 404 body for an unknown set is ASP.NET's "No HTTP resource was found";
//! an update changes the row where it is and is not carried through dual-write maps.

pub mod meta;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::faults::Service;
use super::live::ChangeKind;
use super::odata::{self, Dialect, Query, QueryError};
use super::route::Ext;
use super::scenario::Side;
use super::schema::type_name;
use super::server::{App, header, json_error};
use super::tables::{NO_COMPANY, Row};
use super::wire::{self, Body};
use super::world::SimState;

fn unknown_set(set: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "",
        &format!("No HTTP resource was found that matches the request URI '/data/{set}'."),
    )
}

fn bad(msg: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "", msg)
}

pub fn query_error(e: QueryError) -> Response {
    if e.not_modelled {
        wire::not_modelled(Service::Fno, &e.message)
    } else {
        bad(&e.message)
    }
}

fn record_missing(seg: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "",
        &format!("Resource not found for the segment '{seg}'."),
    )
}

/// A key predicate: `(field or none for the single key, value)` pairs.
pub type KeyPred = Vec<(Option<String>, Value)>;

/// Splits `Set(k='v',...)` into the set and its key predicate.
pub fn split_key(seg: &str) -> (&str, Option<KeyPred>) {
    let Some((set, rest)) = seg.split_once('(') else {
        return (seg, None);
    };
    let inner = rest.strip_suffix(')').unwrap_or(rest);
    let parts = inner
        .split(',')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (Some(k.trim().to_string()), literal(v.trim())),
            None => (None, literal(p.trim())),
        })
        .collect();
    (set, Some(parts))
}

fn literal(v: &str) -> Value {
    match v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(s) => json!(s.replace("''", "'")),
        None => v.parse::<f64>().map(|n| json!(n)).unwrap_or_else(|_| json!(v)),
    }
}

/// Page size a request gets: the server's, lowered by `Prefer: odata.maxpagesize`.
pub fn page_size(headers: &HeaderMap, server: usize) -> usize {
    header(headers, "prefer")
        .and_then(|p| {
            p.split(',')
                .find_map(|x| x.trim().strip_prefix("odata.maxpagesize="))
        })
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(server, |n| n.clamp(1, server))
}

fn segments(rest: &str) -> Vec<String> {
    super::dataverse::segments(rest)
}

/// `GET /data/<Set>`, `GET /data/<Set>(<key>)`, `GET /data/<Set>/$count`.
pub async fn get(
    State(app): State<App>,
    ext: Ext,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    match segments(&rest).as_slice() {
        [seg] if seg.split('(').next() == Some(super::dmf::GROUPS_SET) => {
            super::dmf::groups(&app, &ext.base, seg, raw.as_deref())
        }
        [seg] => collection(&app, &ext.base, seg, raw.as_deref(), &headers),
        [set, c] if c == "$count" => count(&app, set, raw.as_deref()),
        [seg, tail, ..] if seg.contains('(') && known(&app, seg) => wire::not_modelled(
            Service::Fno,
            &format!("Reading '{tail}' of a record (a property or navigation path)"),
        ),
        _ => unknown_set(&rest),
    }
}

fn known(app: &App, seg: &str) -> bool {
    let set = seg.split('(').next().unwrap_or(seg);
    app.with(|st| st.fno_idx.contains_key(set))
}

fn collection(app: &App, base: &str, seg: &str, raw: Option<&str>, headers: &HeaderMap) -> Response {
    let (set, key) = split_key(seg);
    let q = match Query::parse(raw, Dialect::Fno) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let server_page = app.with(|st| st.scenario.fno.page_size);
    let page = page_size(headers, server_page);
    let out = app.read(|st| -> Result<Body, Response> {
        let idx = *st.fno_idx.get(set).ok_or_else(|| unknown_set(seg))?;
        let t = &st.fno[idx];
        let tables = st.tables();
        q.validate(&tables, t).map_err(query_error)?;
        if let Some(e) = q.expand.first() {
            return Err(bad(&super::schema::no_property(t, &e.nav)));
        }
        if let Some(key) = key {
            let pos = find_by_key(st, idx, &key).ok_or_else(|| record_missing(seg))?;
            let mut row = select(
                tables.materialize(t, &t.rows[pos], &st.companies),
                q.select.as_deref(),
            );
            row.insert("@odata.etag".into(), json!(etag(&t.rows[pos])));
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!("{base}/data/$metadata#{set}/$entity")),
            );
            body.extend(row);
            return Ok(Body::Value(Value::Object(body)));
        }
        let company = (t.company_specific && !q.cross_company).then_some(st.default_company);
        // A plain listing in table order (no order, count or top) reads only the page and one row more, from
        // where the previous page of the same query ended when that is known ([`Table::skip_hint`]): a
        // million-row set paged by nextLink costs the set once, not once per page. Same rows either way.
        if q.orderby.is_empty() && !q.count && q.top.is_none() {
            let key = format!("{company:?}|{}", odata::rebuild(&q.pairs, &["$skip"], &[]));
            let from = match t.skip_hint.get(&key, q.skip) {
                Some(row) => row,
                None if q.skip == 0 => 0,
                None => odata::select_window(&tables, t, &q, company, &st.companies, 0, q.skip)
                    .last()
                    .map_or(t.rows.len(), |p| p + 1),
            };
            let window = odata::select_window(&tables, t, &q, company, &st.companies, from, page + 1);
            let take = window.len().min(page);
            // Rows are written as they are computed, with no map per row (see `wire::odata_page`).
            // Only the selected fields are computed, so nothing is left to drop.
            let mut rows = Vec::new();
            tables.write_rows(
                t,
                &window[..take],
                &st.companies,
                etag,
                |f| selected(q.select.as_deref(), f),
                &mut rows,
            );
            let ctx = match &q.select {
                Some(sel) => format!("{base}/data/$metadata#{set}({})", sel.join(",")),
                None => format!("{base}/data/$metadata#{set}"),
            };
            let mut head = Map::new();
            head.insert("@odata.context".into(), json!(ctx));
            if window.len() > take {
                let next = q.skip + take;
                t.skip_hint.set(key, next, window[take]);
                let qs = odata::rebuild(&q.pairs, &["$skip", "$top"], &[("$skip", next.to_string())]);
                head.insert("@odata.nextLink".into(), json!(format!("{base}/data/{set}?{qs}")));
            }
            return Ok(Body::Page(head, rows));
        }
        // Rows from `$skip` up to `$top` are all a page can show.
        let first = q.top.map(|top| q.skip.saturating_add(top));
        let pos = odata::select(&tables, t, &q, company, &st.companies, first);
        let start = q.skip.min(pos.len());
        let want = q.top.map_or(pos.len() - start, |top| top.min(pos.len() - start));
        let take = want.min(page);
        let mut value = Vec::with_capacity(take);
        for &p in &pos[start..start + take] {
            let row = &t.rows[p];
            let mut m = Map::new();
            m.insert("@odata.etag".into(), json!(etag(row)));
            m.extend(select(
                tables.materialize(t, row, &st.companies),
                q.select.as_deref(),
            ));
            value.push(Value::Object(m));
        }
        let ctx = match &q.select {
            Some(sel) => format!("{base}/data/$metadata#{set}({})", sel.join(",")),
            None => format!("{base}/data/$metadata#{set}"),
        };
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(ctx));
        if q.count {
            body.insert("@odata.count".into(), json!(pos.len()));
        }
        body.insert("value".into(), Value::Array(value));
        if take < want {
            let mut add = vec![("$skip", (start + take).to_string())];
            if q.top.is_some() {
                add.insert(0, ("$top", (want - take).to_string()));
            }
            let qs = odata::rebuild(&q.pairs, &["$skip", "$top"], &add);
            body.insert("@odata.nextLink".into(), json!(format!("{base}/data/{set}?{qs}")));
        }
        Ok(Body::Value(Value::Object(body)))
    });
    match out {
        Ok(v) => {
            let mut r = v.into_response();
            if header(headers, "prefer").is_some_and(|p| p.contains("odata.maxpagesize")) {
                wire::preference_applied(&mut r, &[format!("odata.maxpagesize={page}")]);
            }
            r
        }
        Err(r) => r,
    }
}

/// Whether `$select` keeps `field` (no `$select`, or `*`, keeps every field).
fn selected(sel: Option<&[String]>, field: &str) -> bool {
    sel.is_none_or(|s| s.iter().any(|f| f == "*" || f == field))
}

fn select(full: Map<String, Value>, sel: Option<&[String]>) -> Map<String, Value> {
    match sel {
        Some(sel) if !sel.iter().any(|s| s == "*") => sel
            .iter()
            .filter_map(|f| full.get(f).map(|v| (f.clone(), v.clone())))
            .collect(),
        _ => full,
    }
}

fn etag(row: &Row) -> String {
    // `W/"<n>"`, written without the formatting machinery: a page asks for one a row.
    let mut s = String::with_capacity(16);
    s.push_str("W/\"");
    super::tables::push_padded(
        &mut s,
        super::faults::mix(u64::from(row.n), u64::from(row.rev)) % 1_000_000_007,
        0,
    );
    s.push('"');
    s
}

/// Finds a row by its key predicate (named fields, or the key field for a single value).
pub fn find_by_key(st: &SimState, idx: usize, key: &[(Option<String>, Value)]) -> Option<usize> {
    let t = &st.fno[idx];
    let tables = st.tables();
    let key_field = t.key.clone().or_else(|| t.id_field.clone());
    (0..t.rows.len()).find(|&i| {
        key.iter().all(|(k, v)| {
            let Some(f) = k.clone().or_else(|| key_field.clone()) else {
                return false;
            };
            tables
                .value_of(t, &t.rows[i], &f, &st.companies)
                .is_some_and(|x| odata::values_equal(&x, v))
        })
    })
}

/// `GET /data/<Set>/$count` (text/plain).
fn count(app: &App, set: &str, raw: Option<&str>) -> Response {
    let q = match Query::parse(raw, Dialect::Fno) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let n = app.with(|st| -> Result<u64, Response> {
        let t = &st.fno[*st.fno_idx.get(set).ok_or_else(|| unknown_set(set))?];
        q.validate(&st.tables(), t).map_err(query_error)?;
        let company = (t.company_specific && !q.cross_company).then_some(st.default_company);
        Ok(odata::count(&st.tables(), t, &q, company, &st.companies))
    });
    match n {
        Ok(n) => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            n.to_string(),
        )
            .into_response(),
        Err(r) => r,
    }
}

fn json_body(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(bad("The request body must be a JSON object.")),
    }
}

/// Checks a body's properties against set `idx`.
fn check_body(st: &SimState, idx: usize, obj: &Map<String, Value>) -> Result<(), Response> {
    let t = &st.fno[idx];
    let schema = st.tables().schema(t);
    match obj
        .keys()
        .find(|k| !k.contains('@') && !schema.iter().any(|c| &c.name == *k))
    {
        Some(k) => Err(bad(&format!(
            "The property '{k}' does not exist on type '{}'. Make sure to only use property names that are defined by the type.",
            type_name(t)
        ))),
        None => Ok(()),
    }
}

/// `POST /data/<Set>` (create) and `POST /data/DataManagementDefinitionGroups/<action>` (DMF).
pub async fn post(State(app): State<App>, ext: Ext, Path(rest): Path<String>, body: Bytes) -> Response {
    match segments(&rest).as_slice() {
        [set, tail] if set == "DataManagementDefinitionGroups" => {
            match tail.strip_prefix("Microsoft.Dynamics.DataEntities.") {
                Some(a) => {
                    let v = serde_json::from_slice(&body).unwrap_or_default();
                    super::dmf::action(app, &ext.base, a, v).await
                }
                None => unknown_set(&rest),
            }
        }
        [set] if !set.contains('(') && known(&app, set) => match json_body(&body) {
            Ok(obj) => create(&app, &ext.base, set, obj),
            Err(r) => r,
        },
        [set, action, ..] if known(&app, set) => {
            wire::not_modelled(Service::Fno, &format!("The action {action} on {set}"))
        }
        _ => unknown_set(&rest),
    }
}

fn create(app: &App, base: &str, set: &str, mut obj: Map<String, Value>) -> Response {
    let out = app.with(|st| -> Result<Map<String, Value>, Response> {
        let idx = *st.fno_idx.get(set).ok_or_else(|| unknown_set(set))?;
        check_body(st, idx, &obj)?;
        let specific = st.fno[idx].company_specific;
        if specific && !obj.contains_key("dataAreaId") {
            let c = st.companies[st.default_company as usize].to_lowercase();
            obj.insert("dataAreaId".into(), json!(c));
        }
        let key_field = st.fno[idx].key.clone();
        let key = key_field
            .as_ref()
            .and_then(|k| obj.get(k))
            .map(|v| v.as_str().map_or(v.to_string(), str::to_string));
        if let (Some(k), Some(v)) = (&key_field, key_field.as_ref().and_then(|k| obj.get(k)).cloned()) {
            let mut pred = vec![(Some(k.clone()), v)];
            if let Some(c) = obj.get("dataAreaId").cloned().filter(|_| specific) {
                pred.push((Some("dataAreaId".into()), c));
            }
            if find_by_key(st, idx, &pred).is_some() {
                return Err(bad(&format!(
                    "A record with key {} already exists in {set}.",
                    key.clone().unwrap_or_default()
                )));
            }
        }
        let company = if specific {
            st.company_of(obj.get("dataAreaId"))
        } else {
            NO_COMPANY
        };
        let n = st.fno[idx].next_n;
        st.fno[idx].next_n += 1;
        let row = Row {
            company,
            owned: Some(Box::new(obj.clone())),
            ..Row::generated(company, n)
        };
        st.fno[idx].push(row.clone());
        let handle = key.unwrap_or_else(|| n.to_string());
        st.effect(format!("canary.create:{handle}"));
        st.propagate(Side::Fno, idx, ChangeKind::Create(row));
        Ok(obj)
    });
    match out {
        Ok(obj) => {
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!("{base}/data/$metadata#{set}/$entity")),
            );
            body.extend(obj);
            (StatusCode::CREATED, Json(Value::Object(body))).into_response()
        }
        Err(r) => r,
    }
}

/// `PATCH /data/<Set>(<key>)`: 204, or 404 when there is no such record.
pub async fn patch(State(app): State<App>, Path(rest): Path<String>, body: Bytes) -> Response {
    let (set, key) = split_key(&rest);
    let Some(key) = key else {
        return bad("PATCH needs a key: /data/<Set>(<key>).");
    };
    let obj = match json_body(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let done = app.with(|st| -> Result<(), Response> {
        let idx = *st.fno_idx.get(set).ok_or_else(|| unknown_set(set))?;
        check_body(st, idx, &obj)?;
        let pos = find_by_key(st, idx, &key).ok_or_else(|| record_missing(&rest))?;
        let t = &st.fno[idx];
        let mut row = st.tables().materialize(t, &t.rows[pos], &st.companies);
        row.extend(obj);
        let r = &mut st.fno[idx].rows[pos];
        r.owned = Some(Box::new(row));
        r.rev += 1;
        Ok(())
    });
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// `DELETE /data/<Set>(<key>)`: 204, or 404 when there is no such record.
pub async fn delete(State(app): State<App>, Path(rest): Path<String>) -> Response {
    let (set, key) = split_key(&rest);
    let Some(key) = key else {
        return bad("DELETE needs a key: /data/<Set>(<key>).");
    };
    let found = app.with(|st| {
        let idx = *st.fno_idx.get(set)?;
        let pos = find_by_key(st, idx, &key)?;
        let t = &st.fno[idx];
        let row = st.tables().materialize(t, &t.rows[pos], &st.companies);
        let handle = t.key.as_ref().and_then(|k| row.get(k)).map_or_else(
            || t.rows[pos].n.to_string(),
            |v| v.as_str().map_or(v.to_string(), str::to_string),
        );
        st.fno[idx].remove(pos);
        st.effect(format!("canary.delete:{handle}"));
        st.propagate(Side::Fno, idx, ChangeKind::Delete { row });
        Some(())
    });
    match found {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None if !known(&app, set) => unknown_set(set),
        None => record_missing(&rest),
    }
}
