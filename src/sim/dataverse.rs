//! Dataverse Web API (`/api/data/v9.2/`): collections with the 5,000 count cap, paging with an
//! opaque `$skiptoken`, `/$count`, RetrieveTotalRecordCount (a stale snapshot), FetchXML aggregate
//! count with its 50,000-row limit, create/delete, WhoAmI, and the service-protection limits.
//!
//! Our models: `/$count` is capped like `$count=true`; with `$top` no paging is applied (as the
//! service does); the `$skiptoken` is a paging-cookie-shaped string whose `pagingcookie` attribute
//! is a scrambled row position; the FetchXML limit error uses code `0x8004E023`
//! (`AggregateQueryRecordLimit`); service protection counts per access token over a real-time
//! sliding window; only aggregate-count FetchXML is supported (others get a 400).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::fno::{page_size, split_key};
use super::live::ChangeKind;
use super::odata::{self, Clause, Query};
use super::scenario::Side;
use super::server::{App, header, json_error};
use super::tables::{NO_COMPANY, Row};
use super::world::SimState;

fn not_found(msg: &str) -> Response {
    json_error(StatusCode::NOT_FOUND, "0x80060888", msg)
}

fn bad(msg: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, "0x80060888", msg)
}

fn cookie(pos: usize, page: usize, salt: u64) -> String {
    format!(
        "<cookie pagenumber=\"{page}\" pagingcookie=\"{:x}\" istracking=\"False\" />",
        pos as u64 ^ (salt & 0xFFFF_FFFF)
    )
}

fn uncookie(token: &str, salt: u64) -> Option<(usize, usize)> {
    let page = attr(token, "pagenumber")?.parse().ok()?;
    let pos = u64::from_str_radix(&attr(token, "pagingcookie")?, 16).ok()? ^ (salt & 0xFFFF_FFFF);
    Some((pos as usize, page))
}

/// The value of `name='..'` or `name=".."` in an XML-ish fragment.
fn attr(text: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = text[from..].find(&format!("{name}=")) {
        let at = from + i;
        let boundary = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
        let rest = &text[at + name.len() + 1..];
        if boundary {
            let q = rest.chars().next()?;
            if q == '\'' || q == '"' {
                return rest[1..].split(q).next().map(str::to_string);
            }
        }
        from = at + name.len() + 1;
    }
    None
}

/// Splits a `Prefer` header into its preferences on the commas outside double quotes: the documented
/// `odata.include-annotations="A,B"` form carries a comma inside its quoted value.
fn preferences(prefer: &str) -> Vec<&str> {
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

fn wants_annotation(headers: &HeaderMap, name: &str) -> bool {
    header(headers, "prefer").is_some_and(|p| {
        preferences(p)
            .into_iter()
            .any(|x| x.starts_with("odata.include-annotations") && (x.contains(name) || x.contains('*')))
    })
}

/// `GET /api/data/v9.2/<set>`, plus WhoAmI, RetrieveTotalRecordCount and single records.
pub async fn collection(
    State(app): State<App>,
    Path(seg): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let base = format!("{}/api/data/v9.2", app.base);
    if seg == "WhoAmI" || seg == "WhoAmI()" {
        let seed = app.seed;
        let g = |k: u64| super::tables::guid_from(super::faults::mix(seed, k), super::faults::mix(k, seed));
        return Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": g(1), "UserId": g(2), "OrganizationId": g(3),
        }))
        .into_response();
    }
    if seg.starts_with("RetrieveTotalRecordCount") {
        return total_record_count(&app, &seg, raw.as_deref(), &base);
    }
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) if q.pairs.iter().any(|(k, _)| k == "$skip") => {
            return bad("The query parameter $skip is not supported");
        }
        Ok(q) => q,
        Err(e) => return bad(&e),
    };
    let (set, key) = split_key(&seg);
    let set = set.to_string();
    let server_page = app.with(|st| st.scenario.dataverse.page_size);
    let page = page_size(&headers, server_page);
    let want_total = wants_annotation(&headers, "totalrecordcount");
    let out = app.with(|st| -> Result<Value, Response> {
        let idx = *st
            .dv_idx
            .get(&set)
            .ok_or_else(|| not_found(&format!("Resource not found for the segment '{set}'.")))?;
        let t = &st.dv[idx];
        let tables = st.tables();
        if let Some(key) = key {
            let pos = find(st, idx, &key)
                .ok_or_else(|| not_found(&format!("{} With Id = {seg} Does Not Exist", t.logical)))?;
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!("{base}/$metadata#{set}/$entity")),
            );
            body.insert(
                "@odata.etag".into(),
                json!(format!("W/\"{}\"", 1000 + t.rows[pos].rev)),
            );
            body.extend(tables.materialize(t, &t.rows[pos], &st.companies));
            return Ok(Value::Object(body));
        }
        if let Some(fetch) = &q.fetch_xml {
            return fetch_count(st, idx, fetch, &base, &set);
        }
        let cap = st.scenario.dataverse.count_cap;
        let pos = odata::select(&tables, t, &q, None, &st.companies);
        let (start, pagenumber) = match &q.skiptoken {
            Some(tok) => uncookie(tok, t.salt).ok_or_else(|| bad("The $skiptoken is not valid."))?,
            None => (0, 1),
        };
        let start = start.min(pos.len());
        let take = match q.top {
            Some(top) => top.min(5000).min(pos.len() - start),
            None => page.min(pos.len() - start),
        };
        let mut value = Vec::with_capacity(take);
        for &p in &pos[start..start + take] {
            let row = &t.rows[p];
            let full = tables.materialize(t, row, &st.companies);
            let mut m = Map::new();
            m.insert("@odata.etag".into(), json!(format!("W/\"{}\"", 1000 + row.rev)));
            match &q.select {
                Some(sel) => {
                    let keep = |f: &String| sel.contains(f) || t.id_field.as_ref() == Some(f);
                    m.extend(full.into_iter().filter(|(f, _)| keep(f)));
                }
                None => m.extend(full),
            }
            value.push(Value::Object(m));
        }
        let ctx = match &q.select {
            Some(sel) => format!("{base}/$metadata#{set}({})", sel.join(",")),
            None => format!("{base}/$metadata#{set}"),
        };
        let total = pos.len() as u64;
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(ctx));
        if q.count {
            body.insert("@odata.count".into(), json!(total.min(cap)));
        }
        if want_total {
            let shown = if q.count { total.min(cap) as i64 } else { -1 };
            body.insert("@Microsoft.Dynamics.CRM.totalrecordcount".into(), json!(shown));
            body.insert(
                "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded".into(),
                json!(q.count && total > cap),
            );
        }
        body.insert("value".into(), Value::Array(value));
        if q.top.is_none() && start + take < pos.len() {
            let token = cookie(start + take, pagenumber + 1, t.salt);
            let qs = odata::rebuild(&q.pairs, &["$skiptoken"], &[("$skiptoken", token)]);
            body.insert("@odata.nextLink".into(), json!(format!("{base}/{set}?{qs}")));
        }
        Ok(Value::Object(body))
    });
    match out {
        Ok(v) => {
            let mut r = Json(v).into_response();
            if header(&headers, "prefer").is_some_and(|p| p.contains("odata.maxpagesize")) {
                if let Ok(h) = HeaderValue::from_str(&format!("odata.maxpagesize={page}")) {
                    r.headers_mut().insert("preference-applied", h);
                }
            }
            r
        }
        Err(r) => r,
    }
}

fn find(st: &SimState, idx: usize, key: &[(Option<String>, Value)]) -> Option<usize> {
    let t = &st.dv[idx];
    let tables = st.tables();
    (0..t.rows.len()).find(|&i| {
        key.iter().all(|(k, v)| {
            let Some(f) = k.clone().or_else(|| t.id_field.clone()) else {
                return false;
            };
            tables
                .value_of(t, &t.rows[i], &f, &st.companies)
                .is_some_and(|x| odata::values_equal(&x, v))
        })
    })
}

fn fetch_count(st: &SimState, idx: usize, fetch: &str, base: &str, set: &str) -> Result<Value, Response> {
    if attr(fetch, "aggregate").as_deref() != Some("true") {
        return Err(bad(
            "The simulator supports only aggregate count FetchXML queries.",
        ));
    }
    let alias = fetch
        .split('<')
        .find(|tag| {
            tag.starts_with("attribute")
                && matches!(attr(tag, "aggregate").as_deref(), Some("count" | "countcolumn"))
        })
        .and_then(|tag| attr(tag, "alias"))
        .ok_or_else(|| {
            bad("The FetchXML aggregate query needs an attribute with aggregate='count' and an alias.")
        })?;
    let filter: Vec<Clause> = fetch
        .split('<')
        .filter(|tag| tag.starts_with("condition"))
        .filter_map(|tag| {
            let negate = match attr(tag, "operator")?.as_str() {
                "eq" => false,
                "ne" => true,
                _ => return None,
            };
            Some(Clause {
                field: attr(tag, "attribute")?,
                negate,
                value: json!(attr(tag, "value")?),
            })
        })
        .collect();
    let q = Query {
        filter,
        ..Default::default()
    };
    let t = &st.dv[idx];
    let n = odata::count(&st.tables(), t, &q, None, &st.companies);
    let limit = attr(fetch, "aggregatelimit")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(st.scenario.dataverse.aggregate_limit, |l| {
            l.min(st.scenario.dataverse.aggregate_limit)
        });
    if n > limit {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "0x8004E023",
            "AggregateQueryRecordLimit exceeded. Cannot perform this operation.",
        ));
    }
    Ok(json!({"@odata.context": format!("{base}/$metadata#{set}"), "value": [{alias: n}]}))
}

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

/// `GET /api/data/v9.2/<set>/$count`: text/plain, capped like `$count=true`.
pub async fn count(
    State(app): State<App>,
    Path((set, tail)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    if tail != "$count" {
        return not_found(&format!("Resource not found for the segment '{tail}'."));
    }
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(e) => return bad(&e),
    };
    let n = app.with(|st| {
        let t = &st.dv[*st.dv_idx.get(&set)?];
        Some(odata::count(&st.tables(), t, &q, None, &st.companies).min(st.scenario.dataverse.count_cap))
    });
    match n {
        Some(n) => (
            StatusCode::OK,
            [("content-type", "text/plain; charset=utf-8")],
            n.to_string(),
        )
            .into_response(),
        None => not_found(&format!("Resource not found for the segment '{set}'.")),
    }
}

/// `POST /api/data/v9.2/<set>`: 204 + `OData-EntityId`, or 201 with the record when
/// `Prefer: return=representation`.
pub async fn create(
    State(app): State<App>,
    Path(set): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(Value::Object(mut obj))) = body else {
        return bad("The request body must be a JSON object.");
    };
    let base = format!("{}/api/data/v9.2", app.base);
    let out = app.with(|st| {
        let idx = *st.dv_idx.get(&set)?;
        let (id_field, key_field, company_field) = (
            st.dv[idx].id_field.clone(),
            st.dv[idx].key.clone(),
            st.dv[idx].company_field.clone(),
        );
        let id = match id_field.as_ref().and_then(|f| obj.get(f)).and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => st.next_guid(),
        };
        if let Some(f) = &id_field {
            obj.insert(f.clone(), json!(id));
        }
        let company = company_field
            .as_ref()
            .map_or(NO_COMPANY, |f| st.company_of(obj.get(f)));
        let n = st.dv[idx].next_n;
        st.dv[idx].next_n += 1;
        let row = Row {
            company,
            owned: Some(Box::new(obj.clone())),
            ..Row::generated(company, n)
        };
        st.dv[idx].push(row.clone());
        let handle = key_field
            .as_ref()
            .and_then(|k| obj.get(k))
            .and_then(Value::as_str)
            .map_or(id.clone(), str::to_string);
        st.effect(format!("canary.create:{handle}"));
        st.propagate(Side::Dataverse, idx, ChangeKind::Create(row));
        Some((id, obj))
    });
    let Some((id, obj)) = out else {
        return not_found(&format!("Resource not found for the segment '{set}'."));
    };
    let entity_id = format!("{base}/{set}({id})");
    let representation = header(&headers, "prefer").is_some_and(|p| p.contains("return=representation"));
    let mut r = if representation {
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            json!(format!("{base}/$metadata#{set}/$entity")),
        );
        body.insert("@odata.etag".into(), json!("W/\"1000\""));
        body.extend(obj);
        (StatusCode::CREATED, Json(Value::Object(body))).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&entity_id) {
        r.headers_mut().insert("odata-entityid", v);
    }
    r
}

/// `DELETE /api/data/v9.2/<set>(<id or alternate key>)`.
pub async fn delete(State(app): State<App>, Path(seg): Path<String>) -> Response {
    let (set, key) = split_key(&seg);
    let Some(key) = key else {
        return bad("DELETE needs a record: /<set>(<id>).");
    };
    let done = app.with(|st| {
        let idx = *st.dv_idx.get(set)?;
        let pos = find(st, idx, &key)?;
        let t = &st.dv[idx];
        let row = st.tables().materialize(t, &t.rows[pos], &st.companies);
        let handle = t
            .key
            .as_ref()
            .or(t.id_field.as_ref())
            .and_then(|k| row.get(k))
            .and_then(Value::as_str)
            .map_or_else(|| t.rows[pos].n.to_string(), str::to_string);
        st.dv[idx].remove(pos);
        st.effect(format!("canary.delete:{handle}"));
        st.propagate(Side::Dataverse, idx, ChangeKind::Delete { row });
        Some(())
    });
    match done {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => not_found(&format!("Record {seg} Does Not Exist")),
    }
}

/// Releases a request's concurrency slot when the response is done.
pub struct InFlight {
    app: App,
    token: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.app.lock();
        if let Some(w) = st.sp.get_mut(&self.token) {
            w.inflight = w.inflight.saturating_sub(1);
        }
    }
}

/// Applies the three service-protection limits to one request; Ok((slot, requests left)).
pub fn protect(app: &App, headers: &HeaderMap) -> Result<(InFlight, u64), Response> {
    let token = header(headers, "authorization")
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string();
    let now = std::time::Instant::now();
    let mut st = app.lock();
    let sp = st.scenario.dataverse.service_protection.clone();
    let span = std::time::Duration::from_secs_f64(sp.window.0);
    let w = st.sp.entry(token.clone()).or_default();
    while w.times.front().is_some_and(|t| now.duration_since(*t) >= span) {
        w.times.pop_front();
    }
    while w
        .exec
        .front()
        .is_some_and(|(t, _)| now.duration_since(*t) >= span)
    {
        w.exec.pop_front();
    }
    let limit = |code: &str, msg: String| {
        let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, code, &msg);
        if let Ok(v) = HeaderValue::from_str(&sp.retry_after.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        r
    };
    if w.inflight >= sp.concurrent {
        return Err(limit(
            "0x80072326",
            format!(
                "Number of concurrent requests exceeded the limit of {}.",
                sp.concurrent
            ),
        ));
    }
    if w.times.len() as u64 >= sp.requests {
        return Err(limit(
            "0x80072322",
            format!(
                "Number of requests exceeded the limit of {} over time window of {} seconds.",
                sp.requests, sp.window.0
            ),
        ));
    }
    let spent: u64 = w.exec.iter().map(|(_, ms)| ms).sum();
    if sp.request_cost_ms > 0 && spent + sp.request_cost_ms > sp.execution_ms {
        return Err(limit(
            "0x80072321",
            format!(
                "Combined execution time of incoming requests exceeded limit of {} milliseconds over time window of {} seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later.",
                sp.execution_ms, sp.window.0
            ),
        ));
    }
    w.times.push_back(now);
    if sp.request_cost_ms > 0 {
        w.exec.push_back((now, sp.request_cost_ms));
    }
    w.inflight += 1;
    let left = sp.requests.saturating_sub(w.times.len() as u64);
    drop(st);
    Ok((
        InFlight {
            app: app.clone(),
            token,
        },
        left,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_names_of_the_documented_two_name_annotation_form_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            axum::http::HeaderValue::from_static(
                "odata.maxpagesize=10, odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\"",
            ),
        );
        assert!(wants_annotation(&h, "Microsoft.Dynamics.CRM.totalrecordcount"));
        assert!(wants_annotation(
            &h,
            "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
        ));
        assert_eq!(preferences("a, b=\"x,y\", c"), vec!["a", "b=\"x,y\"", "c"]);
    }
}
