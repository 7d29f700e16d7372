//! F&O OData (`/data/`): collections, `$count`, single records, create and delete.
//!
//! Without `cross-company=true` a company-specific set shows only the default company, as the real
//! service does. Our models: the next link is `<base>/data/<Set>?<same options>&$skip=<n>` (the real
//! token format is undocumented; clients must follow it verbatim); `Prefer: odata.maxpagesize` can
//! lower the page size but never raise it above `fno.page_size`; the error body for an unknown set or
//! a bad query is the OData `{"error":{"code","message"}}` shape.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::live::ChangeKind;
use super::odata::{self, Query};
use super::scenario::Side;
use super::server::{App, header, json_error};
use super::tables::{NO_COMPANY, Row};

fn unknown_set(set: &str) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "",
        &format!("No HTTP resource was found that matches the request URI '/data/{set}'."),
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

/// `GET /data/<Set>` and `GET /data/<Set>(<key>)`.
pub async fn collection(
    State(app): State<App>,
    Path(seg): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (set, key) = split_key(&seg);
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "", &e),
    };
    let base = app.base.clone();
    let page = page_size(&headers, app.with(|st| st.scenario.fno.page_size));
    let out = app.with(|st| {
        let idx = *st.fno_idx.get(set)?;
        let t = &st.fno[idx];
        let tables = st.tables();
        if let Some(key) = key {
            let pos = find_by_key(st, idx, &key)?;
            let mut row = tables.materialize(t, &t.rows[pos], &st.companies);
            row.insert("@odata.etag".into(), json!(etag(&t.rows[pos])));
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!("{base}/data/$metadata#{set}/$entity")),
            );
            body.extend(row);
            return Some(Ok(Value::Object(body)));
        }
        let company = (t.company_specific && !q.cross_company).then_some(st.default_company);
        let pos = odata::select(&tables, t, &q, company, &st.companies);
        let start = q.skip.min(pos.len());
        let want = q.top.map_or(pos.len() - start, |top| top.min(pos.len() - start));
        let take = want.min(page);
        let mut value = Vec::with_capacity(take);
        for &p in &pos[start..start + take] {
            let row = &t.rows[p];
            let full = tables.materialize(t, row, &st.companies);
            let mut m = Map::new();
            m.insert("@odata.etag".into(), json!(etag(row)));
            match &q.select {
                Some(sel) => m.extend(
                    sel.iter()
                        .filter_map(|f| full.get(f).map(|v| (f.clone(), v.clone()))),
                ),
                None => m.extend(full),
            }
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
        Some(Ok(Value::Object(body)))
    });
    match out {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(r)) => r,
        None if key_missing(&app, set) => unknown_set(&seg),
        None => json_error(
            StatusCode::NOT_FOUND,
            "",
            &format!("Resource not found for the segment '{seg}'."),
        ),
    }
}

fn key_missing(app: &App, set: &str) -> bool {
    app.with(|st| !st.fno_idx.contains_key(set))
}

fn etag(row: &Row) -> String {
    format!(
        "W/\"{}\"",
        super::faults::mix(u64::from(row.n), u64::from(row.rev)) % 1_000_000_007
    )
}

/// Finds a row by its key predicate (named fields, or the key field for a single value).
pub fn find_by_key(
    st: &super::world::SimState,
    idx: usize,
    key: &[(Option<String>, Value)],
) -> Option<usize> {
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

/// `GET /data/<Set>/$count` (text/plain), or a DMF action by POST (see [`post_tail`]).
pub async fn count(
    State(app): State<App>,
    Path((set, tail)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    if tail != "$count" {
        return json_error(
            StatusCode::NOT_FOUND,
            "",
            &format!("Resource not found for the segment '{tail}'."),
        );
    }
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "", &e),
    };
    let n = app.with(|st| {
        let t = &st.fno[*st.fno_idx.get(&set)?];
        let company = (t.company_specific && !q.cross_company).then_some(st.default_company);
        Some(odata::count(&st.tables(), t, &q, company, &st.companies))
    });
    match n {
        Some(n) => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            n.to_string(),
        )
            .into_response(),
        None => unknown_set(&set),
    }
}

/// `POST /data/DataManagementDefinitionGroups/Microsoft.Dynamics.DataEntities.<Action>`.
pub async fn post_tail(
    State(app): State<App>,
    Path((set, tail)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let action = tail.strip_prefix("Microsoft.Dynamics.DataEntities.");
    match (set.as_str(), action) {
        ("DataManagementDefinitionGroups", Some(a)) => {
            super::dmf::action(app, a, body.map(|b| b.0).unwrap_or_default()).await
        }
        _ => json_error(
            StatusCode::NOT_FOUND,
            "",
            &format!("No HTTP resource was found that matches '/data/{set}/{tail}'."),
        ),
    }
}

/// `POST /data/<Set>`: creates a record (the canary); 201 with the record.
pub async fn create(State(app): State<App>, Path(set): Path<String>, body: Option<Json<Value>>) -> Response {
    let Some(Json(Value::Object(mut obj))) = body else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            "The request body must be a JSON object.",
        );
    };
    let base = app.base.clone();
    let out = app.with(|st| {
        let idx = *st.fno_idx.get(&set)?;
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
                return Some(Err(format!(
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
        Some(Ok(obj))
    });
    match out {
        Some(Ok(obj)) => {
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!("{base}/data/$metadata#{set}/$entity")),
            );
            body.extend(obj);
            (StatusCode::CREATED, Json(Value::Object(body))).into_response()
        }
        Some(Err(msg)) => json_error(StatusCode::BAD_REQUEST, "", &msg),
        None => unknown_set(&set),
    }
}

/// `DELETE /data/<Set>(<key>)`: 204, or 404 when there is no such record.
pub async fn delete(State(app): State<App>, Path(seg): Path<String>) -> Response {
    let (set, key) = split_key(&seg);
    let Some(key) = key else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "",
            "DELETE needs a key: /data/<Set>(<key>).",
        );
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
        None => json_error(
            StatusCode::NOT_FOUND,
            "",
            &format!("Resource not found for the segment '{seg}'."),
        ),
    }
}
