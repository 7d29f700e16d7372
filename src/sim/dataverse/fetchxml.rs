//! FetchXML through the Web API (`GET <set>?fetchXml=...`): row queries with paging, and the
//! aggregate count with its 50,000-row limit.
//!
//! Rows: `<attribute>`/`<all-attributes/>`, `<order>`, `<filter>` (nested, `and`/`or`) with the
//! common condition operators, `count`, `page`, `paging-cookie`, `top`. The primary id is always
//! returned. With `Prefer: odata.include-annotations` naming them, a page that has more rows carries
//! `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` (Dataverse's cookie format, `paging.rs`) and
//! `@Microsoft.Dynamics.CRM.morerecords: true`; the last page carries neither (wire-facts B7 [doc]).
//! Not modelled (501): `link-entity`, aggregates other than `count`/`countcolumn`, grouping, and
//! the date/user/hierarchy operators. Our models: the limit error is `0x8004E023`
//! (`AggregateQueryRecordLimit`); a `count` above 5,000 and a FetchXML entity that is not the
//! set's are 400 `0x80060888`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::query::{Ann, project};
use super::{bad, not_modelled, paging};
use crate::sim::odata::filter::{Expr, Func, Op, Operand};
use crate::sim::odata::{self, Query};
use crate::sim::schema::{ColType, no_property};
use crate::sim::server::json_error;
use crate::sim::tables::Table;
use crate::sim::wire;
use crate::sim::world::SimState;
use crate::sim::xml::{self, Element};

const COOKIE: &str = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
const MORE: &str = "Microsoft.Dynamics.CRM.morerecords";

/// Runs a FetchXML query on table `idx`: (body, preferences applied).
pub fn run(
    st: &SimState,
    idx: usize,
    fetch: &str,
    base: &str,
    set: &str,
    headers: &HeaderMap,
) -> Result<(Value, Vec<String>), Response> {
    let doc = xml::parse(fetch).map_err(|e| bad(&format!("The FetchXML is not valid XML: {e}.")))?;
    if !doc.name.eq_ignore_ascii_case("fetch") {
        return Err(bad("The FetchXML root element must be <fetch>."));
    }
    let t = &st.dv[idx];
    let entity = doc
        .children_named("entity")
        .next()
        .ok_or_else(|| bad("The FetchXML has no <entity> element."))?;
    if entity.attr("name") != Some(t.logical.as_str()) {
        return Err(bad(&format!(
            "The entity name in the FetchXML ('{}') does not match the entity set '{set}' ({}).",
            entity.attr("name").unwrap_or(""),
            t.logical
        )));
    }
    if entity.children_named("link-entity").next().is_some() {
        return Err(not_modelled("FetchXML <link-entity>"));
    }
    let filter = filters(st, t, entity)?;
    if doc.attr("aggregate") == Some("true") {
        return aggregate(st, idx, &doc, entity, filter, base, set).map(|v| (v, Vec::new()));
    }
    rows(st, idx, &doc, entity, filter, base, set, headers)
}

/// The `<filter>` elements of `el` (and-ed), as a `$filter` expression.
fn filters(st: &SimState, t: &Table, el: &Element) -> Result<Option<Expr>, Response> {
    let mut out: Option<Expr> = None;
    for f in el.children_named("filter") {
        if let Some(e) = filter(st, t, f)? {
            out = Some(match out {
                Some(o) => Expr::And(Box::new(o), Box::new(e)),
                None => e,
            });
        }
    }
    Ok(out)
}

fn filter(st: &SimState, t: &Table, f: &Element) -> Result<Option<Expr>, Response> {
    let or = f.attr("type").is_some_and(|x| x.eq_ignore_ascii_case("or"));
    let mut parts = Vec::new();
    for c in &f.children {
        match c.name.as_str() {
            "condition" => parts.push(condition(st, t, c)?),
            "filter" => parts.extend(filter(st, t, c)?),
            other => return Err(not_modelled(&format!("FetchXML <{other}> inside <filter>"))),
        }
    }
    Ok(parts.into_iter().reduce(|a, b| {
        if or {
            Expr::Or(Box::new(a), Box::new(b))
        } else {
            Expr::And(Box::new(a), Box::new(b))
        }
    }))
}

fn column(st: &SimState, t: &Table, name: &str) -> Result<String, Response> {
    let schema = st.tables().schema(t);
    match schema.iter().find(|c| c.name == name || c.wire() == name) {
        Some(c) => Ok(c.wire()),
        None => Err(bad(&format!(
            "'{}' entity doesn't contain attribute with Name = '{name}'.",
            t.logical
        ))),
    }
}

fn condition(st: &SimState, t: &Table, c: &Element) -> Result<Expr, Response> {
    if c.attr("entityname").is_some() {
        return Err(not_modelled("A FetchXML condition on a linked entity"));
    }
    let field = column(st, t, c.attr("attribute").unwrap_or(""))?;
    let op = c.attr("operator").unwrap_or("eq").to_ascii_lowercase();
    let values: Vec<Value> = match c.attr("value") {
        Some(v) => vec![json!(v)],
        None => c.children_named("value").map(|v| json!(v.text)).collect(),
    };
    let one = || {
        values
            .first()
            .cloned()
            .ok_or_else(|| bad(&format!("The condition operator '{op}' needs a value.")))
    };
    let f = || Operand::Field(field.clone());
    let cmp = |o: Op, v: Value| Expr::Cmp(o, Operand::Field(field.clone()), Operand::Lit(v));
    let call = |fun: Func, v: String| Expr::Call(fun, Operand::Field(field.clone()), Operand::Lit(json!(v)));
    let text = |v: Value| v.as_str().map_or(v.to_string(), str::to_string);
    Ok(match op.as_str() {
        "eq" => cmp(Op::Eq, one()?),
        "ne" | "neq" => cmp(Op::Ne, one()?),
        "gt" => cmp(Op::Gt, one()?),
        "ge" => cmp(Op::Ge, one()?),
        "lt" => cmp(Op::Lt, one()?),
        "le" => cmp(Op::Le, one()?),
        "null" => cmp(Op::Eq, Value::Null),
        "not-null" => cmp(Op::Ne, Value::Null),
        "in" => Expr::In(f(), values),
        "not-in" => Expr::Not(Box::new(Expr::In(f(), values))),
        "begins-with" => call(Func::StartsWith, text(one()?)),
        "not-begin-with" => Expr::Not(Box::new(call(Func::StartsWith, text(one()?)))),
        "ends-with" => call(Func::EndsWith, text(one()?)),
        "not-end-with" => Expr::Not(Box::new(call(Func::EndsWith, text(one()?)))),
        "like" | "not-like" => {
            let v = text(one()?);
            let inner = v.trim_matches('%').to_string();
            let e = match (v.starts_with('%'), v.ends_with('%') && v.len() > 1) {
                (true, true) => call(Func::Contains, inner),
                (false, true) => call(Func::StartsWith, inner),
                (true, false) => call(Func::EndsWith, inner),
                (false, false) => cmp(Op::Eq, json!(v)),
            };
            if op == "like" { e } else { Expr::Not(Box::new(e)) }
        }
        other => {
            return Err(not_modelled(&format!(
                "The FetchXML condition operator '{other}'"
            )));
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn rows(
    st: &SimState,
    idx: usize,
    doc: &Element,
    entity: &Element,
    filter: Option<Expr>,
    base: &str,
    set: &str,
    headers: &HeaderMap,
) -> Result<(Value, Vec<String>), Response> {
    let t = &st.dv[idx];
    let tables = st.tables();
    let id = t.id_field.clone().unwrap_or_default();
    let all = entity.children_named("all-attributes").next().is_some();
    let mut select = Vec::new();
    for a in entity.children_named("attribute") {
        if a.attr("aggregate").is_some() || a.attr("groupby").is_some() {
            return Err(bad("Aggregate attributes need <fetch aggregate=\"true\">."));
        }
        select.push(column(st, t, a.attr("name").unwrap_or(""))?);
    }
    if !select.contains(&id) {
        select.push(id.clone());
    }
    let mut orderby = Vec::new();
    for o in entity.children_named("order") {
        let Some(a) = o.attr("attribute") else {
            return Err(not_modelled("FetchXML <order alias=...>"));
        };
        orderby.push((column(st, t, a)?, o.attr("descending") == Some("true")));
    }
    let q = Query {
        filter,
        orderby: orderby.clone(),
        ..Default::default()
    };
    let pos = odata::select(&tables, t, &q, None, &st.companies, None);
    let num = |k: &str| {
        doc.attr(k).map(|v| {
            v.parse::<usize>()
                .map_err(|_| bad(&format!("The fetch attribute {k}='{v}' is not a number.")))
        })
    };
    let count = num("count").transpose()?.unwrap_or(5000);
    if count > 5000 || count == 0 {
        return Err(bad("The fetch attribute count must be between 1 and 5000."));
    }
    let page = num("page").transpose()?.unwrap_or(1).max(1);
    let value_at = |p: usize, f: &str| {
        tables
            .value_of(t, &t.rows[p], f, &st.companies)
            .unwrap_or(Value::Null)
    };
    let id_at = |p: usize| value_at(p, &id).as_str().map(str::to_string).unwrap_or_default();
    let (start, take) = match num("top").transpose()? {
        Some(top) if doc.attr("page").is_none() && doc.attr("count").is_none() => (0, top.min(pos.len())),
        Some(_) => return Err(bad("The fetch attribute top cannot be used with count or page.")),
        None => {
            let last = doc.attr("paging-cookie").and_then(|c| paging::last_of(c, &id));
            let ids: Vec<String> = pos.iter().map(|&p| id_at(p)).collect();
            let start = paging::resume(&ids, last.as_deref(), page, count);
            (start, count.min(pos.len() - start))
        }
    };
    let value: Vec<Value> = pos[start..start + take]
        .iter()
        .map(|&p| {
            let sel = (!all).then_some(select.as_slice());
            // FetchXML returns no property whose value is null (unlike OData queries).
            let mut m = project(st, t, &t.rows[p], sel, &[], Ann::of(headers));
            m.retain(|_, v| !v.is_null());
            Value::Object(m)
        })
        .collect();
    let more = start + take < pos.len() && doc.attr("top").is_none();
    let mut body = Map::new();
    let cols = if all {
        String::new()
    } else {
        format!("({})", select.join(","))
    };
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/$metadata#{set}{cols}")),
    );
    body.insert("value".into(), Value::Array(value));
    let mut applied = Vec::new();
    if more && take > 0 {
        let (first, last) = (pos[start], pos[start + take - 1]);
        let text = |v: Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let mut cookie_cols: Vec<(String, String, String)> = orderby
            .iter()
            .filter(|(f, _)| *f != id)
            .map(|(f, _)| (f.clone(), text(value_at(first, f)), text(value_at(last, f))))
            .collect();
        cookie_cols.push((id.clone(), id_at(first), id_at(last)));
        if wire::wants_annotation(headers, COOKIE) {
            body.insert(
                format!("@{COOKIE}"),
                json!(paging::cookie(page + 1, &cookie_cols)),
            );
        }
        if wire::wants_annotation(headers, MORE) {
            body.insert(format!("@{MORE}"), json!(true));
        }
        if let Some(a) = wire::include_annotations(headers)
            .filter(|_| wire::wants_annotation(headers, COOKIE) || wire::wants_annotation(headers, MORE))
        {
            applied.push(a);
        }
    }
    Ok((Value::Object(body), applied))
}

fn aggregate(
    st: &SimState,
    idx: usize,
    doc: &Element,
    entity: &Element,
    filter: Option<Expr>,
    base: &str,
    set: &str,
) -> Result<Value, Response> {
    let t = &st.dv[idx];
    let attrs: Vec<&Element> = entity.children_named("attribute").collect();
    let counted = attrs
        .iter()
        .find(|a| matches!(a.attr("aggregate"), Some("count" | "countcolumn")));
    if attrs.len() != 1 || counted.is_none() || attrs[0].attr("groupby").is_some() {
        return Err(not_modelled(
            "FetchXML aggregates other than one count/countcolumn without groupby",
        ));
    }
    let a = attrs[0];
    let alias = a
        .attr("alias")
        .ok_or_else(|| bad("The FetchXML aggregate attribute needs an alias."))?;
    let name = a.attr("name").unwrap_or("");
    let col = st.tables().column(t, name).or_else(|| {
        st.tables()
            .schema(t)
            .into_iter()
            .find(|c| c.name == name && matches!(c.ty, ColType::Lookup(_)))
    });
    if col.is_none() {
        return Err(bad(&no_property(t, name)));
    }
    let q = Query {
        filter,
        ..Default::default()
    };
    let n = odata::count(&st.tables(), t, &q, None, &st.companies);
    let limit = doc
        .attr("aggregatelimit")
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
