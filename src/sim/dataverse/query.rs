//! Dataverse reads: collections, single records, `/$count`, `$expand` on lookups, annotations.
//!
//! Our models: `/$count` is capped like `$count=true`; with `$top` and no `odata.maxpagesize` no
//! paging is applied (with `odata.maxpagesize`, `$top` is ignored, as documented); rows come in
//! table order unless `$orderby` says otherwise; the formatted value of `statecode`/`statuscode`
//! is `Active`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{bad, key_missing, paging, query_error, record_missing, segment_not_found};
use crate::sim::fno::{KeyPred, page_size, split_key};
use crate::sim::odata::{self, Dialect, Expand, Query, QueryError};
use crate::sim::schema::{ColType, no_property};
use crate::sim::server::App;
use crate::sim::tables::{Row, Table, Tables};
use crate::sim::wire::{self, Body};
use crate::sim::world::SimState;

/// The annotations a request asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ann {
    pub formatted: bool,
    pub lookup: bool,
}

impl Ann {
    pub fn of(headers: &HeaderMap) -> Ann {
        Ann {
            formatted: wire::wants_annotation(headers, "OData.Community.Display.V1.FormattedValue"),
            lookup: wire::wants_annotation(headers, "Microsoft.Dynamics.CRM.lookuplogicalname"),
        }
    }
}

/// Checks every `$expand` item: a lookup of `t`, with options valid on its target.
pub fn validate_expand(st: &SimState, t: &Table, expand: &[Expand]) -> Result<(), QueryError> {
    let tables = st.tables();
    for e in expand {
        let Some((_, target)) = t.lookups.iter().find(|(l, _)| *l == e.nav) else {
            return Err(QueryError::bad(no_property(t, &e.nav)));
        };
        let Some(&ti) = st.dv_idx.get(target) else {
            return Err(QueryError::not_modelled(format!(
                "Expanding {} (its table {target} is not in the scenario)",
                e.nav
            )));
        };
        let o = &e.options;
        if !o.expand.is_empty() || o.filter.is_some() || o.top.is_some() || !o.orderby.is_empty() {
            return Err(QueryError::not_modelled(
                "Options other than $select inside $expand of a lookup",
            ));
        }
        o.validate(&tables, &st.dv[ti])?;
    }
    Ok(())
}

/// One row as the Web API returns it: `@odata.etag`, the selected columns (all without `$select`)
/// and the primary id, expanded lookups, and the annotations asked for.
pub fn project(
    st: &SimState,
    t: &Table,
    row: &Row,
    select: Option<&[String]>,
    expand: &[Expand],
    ann: Ann,
) -> Map<String, Value> {
    let tables = st.tables();
    // The columns `$select` drops are not computed; the primary id is always returned, as the service does.
    let full = tables.materialize_only(t, row, &st.companies, |f| {
        select.is_none_or(|s| s.iter().any(|c| c == f)) || t.id_field.as_deref() == Some(f)
    });
    let mut m = Map::new();
    m.insert("@odata.etag".into(), Value::String(etag(row)));
    // Only annotations need the column types.
    let schema = if ann.formatted || ann.lookup {
        tables.schema(t)
    } else {
        Vec::new()
    };
    for (f, v) in full {
        let keep = select.is_none_or(|s| s.contains(&f)) || t.id_field.as_ref() == Some(&f);
        if !keep {
            continue;
        }
        if let Some(col) = schema.iter().find(|c| c.wire() == f) {
            annotate(st, &mut m, &f, &col.ty, &v, ann);
        }
        m.insert(f, v);
    }
    for e in expand {
        let Some((_, target)) = t.lookups.iter().find(|(l, _)| *l == e.nav) else {
            continue;
        };
        let id = m
            .get(&crate::sim::tables::lookup_column(&e.nav))
            .cloned()
            .or_else(|| tables.value_of(t, row, &crate::sim::tables::lookup_column(&e.nav), &st.companies));
        let related = match (id, st.dv_idx.get(target)) {
            (Some(Value::String(id)), Some(&ti)) => find(st, ti, &[(None, json!(id))]).map(|p| {
                let tt = &st.dv[ti];
                Value::Object(project(
                    st,
                    tt,
                    &tt.rows[p],
                    e.options.select.as_deref(),
                    &[],
                    ann,
                ))
            }),
            _ => None,
        };
        m.insert(e.nav.clone(), related.unwrap_or(Value::Null));
    }
    m
}

fn annotate(st: &SimState, m: &mut Map<String, Value>, f: &str, ty: &ColType, v: &Value, ann: Ann) {
    let fmt = "@OData.Community.Display.V1.FormattedValue";
    match ty {
        ColType::State | ColType::Status if ann.formatted => {
            let label = match (ty, v.as_i64()) {
                (ColType::State, Some(0)) | (ColType::Status, Some(1)) => "Active",
                _ => "Inactive",
            };
            m.insert(format!("{f}{fmt}"), json!(label));
        }
        ColType::Picklist(opts) if ann.formatted => {
            if let Some((_, l)) = opts.iter().find(|(n, _)| Some(*n) == v.as_i64()) {
                m.insert(format!("{f}{fmt}"), json!(l));
            }
        }
        ColType::Lookup(target) if !v.is_null() => {
            let logical = st.dv_idx.get(target).map(|&i| st.dv[i].logical.clone());
            if ann.lookup {
                m.insert(
                    format!("{f}@Microsoft.Dynamics.CRM.lookuplogicalname"),
                    json!(logical.unwrap_or_default()),
                );
            }
        }
        _ => {}
    }
}

/// The position of the row a key predicate names: the primary id, or alternate-key columns.
pub fn find(st: &SimState, idx: usize, key: &[(Option<String>, Value)]) -> Option<usize> {
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

/// A key predicate's record, or the 404 (`0x80040217`) or 400 the service answers.
pub fn locate(st: &SimState, idx: usize, key: &KeyPred) -> Result<usize, Response> {
    let t = &st.dv[idx];
    let tables = st.tables();
    for (k, _) in key {
        if let Some(k) = k {
            if tables.column(t, k).is_none() {
                return Err(bad(&no_property(t, k)));
            }
        }
    }
    match key.as_slice() {
        [(None, v)] => find(st, idx, key).ok_or_else(|| {
            record_missing(
                &t.logical,
                v.as_str().map_or(v.to_string(), str::to_string).as_str(),
            )
        }),
        _ => find(st, idx, key).ok_or_else(|| key_missing(&t.logical)),
    }
}

fn context(base: &str, set: &str, select: Option<&[String]>, expand: &[Expand]) -> String {
    let mut parts: Vec<String> = select.map(<[String]>::to_vec).unwrap_or_default();
    for e in expand {
        let inner = e.options.select.as_ref().map(|s| s.join(",")).unwrap_or_default();
        parts.push(format!("{}({inner})", e.nav));
    }
    if parts.is_empty() {
        format!("{base}/$metadata#{set}")
    } else {
        format!("{base}/$metadata#{set}({})", parts.join(","))
    }
}

/// `GET <set>` and `GET <set>(<key>)`.
pub fn collection(app: &App, base: &str, seg: &str, raw: Option<&str>, headers: &HeaderMap) -> Response {
    let (set, key) = split_key(seg);
    let q = match Query::parse(raw, Dialect::Dataverse) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let ann = Ann::of(headers);
    let server_page = app.with(|st| st.scenario.dataverse.page_size);
    let maxpage = header_maxpage(headers);
    let page = page_size(headers, server_page);
    let out = app.read(|st| -> Result<(Body, Vec<String>), Response> {
        let idx = *st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?;
        let t = &st.dv[idx];
        let tables = st.tables();
        q.validate(&tables, t).map_err(query_error)?;
        validate_expand(st, t, &q.expand).map_err(query_error)?;
        if let Some(key) = key {
            let pos = locate(st, idx, &key)?;
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!(
                    "{}/$entity",
                    context(base, set, q.select.as_deref(), &q.expand)
                )),
            );
            body.extend(project(st, t, &t.rows[pos], q.select.as_deref(), &q.expand, ann));
            return Ok((Body::Value(Value::Object(body)), Vec::new()));
        }
        if let Some(fetch) = &q.fetch_xml {
            return super::fetchxml::run(st, idx, fetch, base, set, headers)
                .map(|(v, applied)| (Body::Value(v), applied));
        }
        Ok(page_of(
            st,
            idx,
            &q,
            base,
            set,
            page,
            maxpage.is_some(),
            headers,
            &tables,
            ann,
        ))
    });
    match out {
        Ok((v, mut applied)) => {
            let mut r = v.into_response();
            if maxpage.is_some() && q.fetch_xml.is_none() {
                applied.insert(0, format!("odata.maxpagesize={page}"));
            }
            wire::preference_applied(&mut r, &applied);
            r
        }
        Err(r) => r,
    }
}

fn header_maxpage(headers: &HeaderMap) -> Option<usize> {
    let p = crate::sim::server::header(headers, "prefer")?;
    wire::preferences(p)
        .into_iter()
        .find_map(|x| x.strip_prefix("odata.maxpagesize="))
        .and_then(|v| v.trim().parse().ok())
}

#[allow(clippy::too_many_arguments)]
fn page_of(
    st: &SimState,
    idx: usize,
    q: &Query,
    base: &str,
    set: &str,
    page: usize,
    paged: bool,
    headers: &HeaderMap,
    tables: &Tables,
    ann: Ann,
) -> (Body, Vec<String>) {
    let t = &st.dv[idx];
    let cap = st.scenario.dataverse.count_cap;
    let id_of = |p: usize| {
        t.id_field
            .as_ref()
            .and_then(|f| tables.value_of(t, &t.rows[p], f, &st.companies))
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let total_ann = "Microsoft.Dynamics.CRM.totalrecordcount";
    let exceeded_ann = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";
    let top = q.top.filter(|_| !paged);
    let cookie = q.skiptoken.as_deref().and_then(paging::parse_outer);
    let pagenumber = cookie.as_ref().map_or(1, |(n, _)| *n);
    let last = cookie
        .as_ref()
        .and_then(|(_, inner)| t.id_field.as_ref().and_then(|f| paging::last_of(inner, f)));
    // In table order, with no total asked for, a page needs only its own rows: the scan starts after the
    // previous page's last row (found through the id index) and stops one row past the page. Otherwise (an
    // order, a count, a last row that is gone) every matching row is selected, as before. Same answer.
    let wants_total = q.count
        || wire::wants_annotation(headers, total_ann)
        || wire::wants_annotation(headers, exceeded_ann);
    let from_row = match (&cookie, &last) {
        (None, _) => Some(0),
        (Some(_), Some(l)) => t.position_of_id(l, tables, &st.companies).map(|p| p + 1),
        (Some(_), None) => None,
    };
    let window = match from_row {
        Some(from) if q.orderby.is_empty() && !wants_total => {
            let want = top.map_or(page, |t| t.min(5000)).saturating_add(1);
            Some(odata::select_window(
                tables,
                t,
                q,
                None,
                &st.companies,
                from,
                want,
            ))
        }
        _ => None,
    };
    let (pos, start) = match window {
        Some(w) => (w, 0),
        None => {
            // A first page with a `$top` shows at most `$top` rows; a continued one needs every row in order.
            let first = top.filter(|_| cookie.is_none()).map(|t| t.min(5000));
            let pos = odata::select(tables, t, q, None, &st.companies, first);
            let start = match &cookie {
                Some((n, _)) => {
                    let ids: Vec<String> = pos.iter().map(|&p| id_of(p)).collect();
                    paging::resume(&ids, last.as_deref(), *n, page)
                }
                None => 0,
            };
            (pos, start)
        }
    };
    let take = match top {
        Some(top) => top.min(5000).min(pos.len() - start),
        None => page.min(pos.len() - start),
    };
    let rows = &pos[start..start + take];
    // Without annotations or an expansion a row is its selected columns and the primary id, written as they
    // are computed with no map per row (`wire::odata_page`); otherwise through [`project`].
    let plain = !ann.formatted && !ann.lookup && q.expand.is_empty();
    let mut written = Vec::new();
    let mut value = Vec::new();
    if plain {
        let select = q.select.as_deref();
        tables.write_rows(
            t,
            rows,
            &st.companies,
            etag,
            |f| select.is_none_or(|s| s.iter().any(|c| c == f)) || t.id_field.as_deref() == Some(f),
            &mut written,
        );
    } else {
        value = rows
            .iter()
            .map(|&p| Value::Object(project(st, t, &t.rows[p], q.select.as_deref(), &q.expand, ann)))
            .collect();
    }
    let total = pos.len() as u64;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(base, set, q.select.as_deref(), &q.expand)),
    );
    if q.count {
        body.insert("@odata.count".into(), json!(total.min(cap)));
    }
    let mut applied = Vec::new();
    if wire::wants_annotation(headers, total_ann) {
        let shown = if q.count { total.min(cap) as i64 } else { -1 };
        body.insert(format!("@{total_ann}"), json!(shown));
    }
    if wire::wants_annotation(headers, exceeded_ann) {
        body.insert(format!("@{exceeded_ann}"), json!(q.count && total > cap));
    }
    if let Some(a) = wire::include_annotations(headers) {
        applied.push(a);
    }
    if !plain {
        body.insert("value".into(), Value::Array(value));
    }
    if top.is_none() && start + take < pos.len() && take > 0 {
        let first = id_of(pos[start]);
        let last = id_of(pos[start + take - 1]);
        let id = t.id_field.clone().unwrap_or_default();
        let token = paging::cookie(pagenumber + 1, &[(id, first, last)]);
        let qs = odata::rebuild(&q.pairs, &["$skiptoken"], &[("$skiptoken", token)]);
        body.insert("@odata.nextLink".into(), json!(format!("{base}/{set}?{qs}")));
    }
    let body = if plain {
        Body::Page(body, written)
    } else {
        Body::Value(Value::Object(body))
    };
    (body, applied)
}

/// A row's `@odata.etag`: `W/"<1000 + revision>"`.
fn etag(row: &Row) -> String {
    let mut s = String::with_capacity(12);
    s.push_str("W/\"");
    crate::sim::tables::push_padded(&mut s, 1000 + u64::from(row.rev), 0);
    s.push('"');
    s
}

/// `GET <set>/$count`: text/plain, capped like `$count=true`.
pub fn count(app: &App, set: &str, raw: Option<&str>) -> Response {
    let q = match Query::parse(raw, Dialect::Dataverse) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let n = app.with(|st| -> Result<u64, Response> {
        let t = &st.dv[*st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?];
        q.validate(&st.tables(), t).map_err(query_error)?;
        Ok(odata::count(&st.tables(), t, &q, None, &st.companies).min(st.scenario.dataverse.count_cap))
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{Ann, etag, project};
    use crate::sim::scenario::Scenario;
    use crate::sim::world::SimState;

    /// A page's plain rows are written without a map per row: byte for byte what [`project`]'s map serialises
    /// to, for copied rows (through an origin map with a value map and a corrupted share), generated ones and
    /// rows with lookups, with and without `$select`.
    #[test]
    fn rows_written_directly_are_the_rows_project_gives() {
        let sc = Scenario::from_yaml(
            "name: w\nseed: 5\ncompanies: [USMF, DEMF]\ndefault_company: USMF\nentities:\n  fno:\n    \
             Companies: { key: DataArea, rows: 2, fields: { Name: name } }\n    \
             CustomersV3: { key: CustomerAccount, rows: { USMF: 40, DEMF: 30 }, fields: { OrganizationName: name, \
             City: city, Group: \"enum:A|B|C\", Phone: phone } }\n  dataverse:\n    \
             cdm_companies: { key: cdm_companycode }\n    \
             accounts: { key: accountnumber, fields: { telephone1: phone, Odd\\\"name: text }, lookups: { parentaccountid: accounts } }\n\
             maps:\n  - { name: companies, source: Companies, target: cdm_companies, key: { source: DataArea, target: cdm_companycode }, \
             initial: { status: running, preloaded: true } }\n  - { name: customers, source: CustomersV3, target: accounts, \
             key: { source: CustomerAccount, target: accountnumber }, fields: { OrganizationName: name, City: address1_city, Group: category }, \
             values: { Group: { A: 1, B: 2 } }, corrupt_share: 0.1, initial: { status: stopped, preloaded: true } }\n",
        )
        .unwrap();
        let st = SimState::new(sc);
        let tables = st.tables();
        let mut seen = 0;
        for t in &st.dv {
            let Some(first) = t.rows.first() else {
                continue;
            };
            let all: Vec<String> = tables
                .materialize(t, first, &st.companies)
                .keys()
                .cloned()
                .collect();
            let some: Vec<String> = all.iter().rev().take(2).cloned().collect();
            for select in [None, Some(all.as_slice()), Some(some.as_slice())] {
                let mut written = Vec::new();
                let all_rows: Vec<usize> = (0..t.rows.len()).collect();
                tables.write_rows(
                    t,
                    &all_rows,
                    &st.companies,
                    etag,
                    |f| select.is_none_or(|s| s.iter().any(|c| c == f)) || t.id_field.as_deref() == Some(f),
                    &mut written,
                );
                let mut want = Vec::new();
                for row in &t.rows {
                    want.push(Value::Object(project(&st, t, row, select, &[], Ann::default())));
                    seen += 1;
                }
                let want = serde_json::to_vec(&want).unwrap();
                assert_eq!(
                    format!("[{}]", String::from_utf8(written).unwrap()),
                    String::from_utf8(want).unwrap(),
                    "{} with $select {select:?}",
                    t.name
                );
            }
        }
        assert!(seen > 200, "only {seen} rows were compared");
        assert!(
            st.dv
                .iter()
                .any(|t| t.rows.iter().any(|r| r.via_origin && r.corrupt)),
            "no copied row with a corrupted field was compared"
        );
    }
}
