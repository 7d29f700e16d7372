//! Dataverse writes: create, update (and upsert), delete, `CreateMultiple`, `UpdateMultiple`.
//!
//! Bodies are checked against the table's properties: an unknown property is the OData 400 "The
//! property 'x' does not exist on type ..."; a lookup is set with `<name>@odata.bind:
//! "/<set>(<id>)"` and a bind to a record that does not exist is that record's 404.
//! Create answers 204 with `OData-EntityId` (and `Location`), or 201 with the record honouring
//! `$select` when `Prefer: return=representation`; CreateMultiple answers 200 `{"Ids":[...]}`
//! (wire-facts B1, B9 [doc]). Our models: a second record with the same alternate-key value is
//! 412 `0x80060892`; UpdateMultiple answers 204; a Web API update changes the row where it is and
//! is not carried through dual-write maps.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::query::{Ann, locate, project};
use super::{bad, query_error, record_missing, segment_not_found};
use crate::sim::fno::split_key;
use crate::sim::live::ChangeKind;
use crate::sim::odata::{Dialect, Query};
use crate::sim::scenario::Side;
use crate::sim::schema::{ColType, type_name};
use crate::sim::server::{App, json_error};
use crate::sim::tables::{NO_COMPANY, Row, lookup_column};
use crate::sim::wire;
use crate::sim::world::SimState;

fn no_such_property(st: &SimState, idx: usize, name: &str) -> Response {
    bad(&format!(
        "The property '{name}' does not exist on type '{}'. Make sure to only use property names that are defined by the type.",
        type_name(&st.dv[idx])
    ))
}

/// Checks a body against table `idx` and turns `x@odata.bind` into `_x_value`.
fn columns(st: &SimState, idx: usize, obj: Map<String, Value>) -> Result<Map<String, Value>, Response> {
    let t = &st.dv[idx];
    let schema = st.tables().schema(t);
    let mut out = Map::new();
    for (k, v) in obj {
        if let Some(nav) = k.strip_suffix("@odata.bind") {
            let Some(target) = schema.iter().find_map(|c| match &c.ty {
                ColType::Lookup(target) if c.name == nav => Some(target.clone()),
                _ => None,
            }) else {
                return Err(no_such_property(st, idx, nav));
            };
            let link = v.as_str().unwrap_or("");
            let tail = link.rsplit('/').next().unwrap_or(link);
            let (set, key) = split_key(tail);
            let Some(&ti) = st.dv_idx.get(set).filter(|_| set == target) else {
                return Err(bad(&format!(
                    "The entity set '{set}' in the @odata.bind of {nav} is not the lookup's target '{target}'."
                )));
            };
            let Some(key) = key else {
                return Err(bad(&format!("The @odata.bind of {nav} does not name a record.")));
            };
            let pos = locate(st, ti, &key)?;
            let tt = &st.dv[ti];
            let id = tt
                .id_field
                .as_ref()
                .and_then(|f| st.tables().value_of(tt, &tt.rows[pos], f, &st.companies))
                .unwrap_or(Value::Null);
            out.insert(lookup_column(nav), id);
        } else if k.starts_with('@') || k.contains('@') {
            // Instance annotations (@odata.type, ...) are not data.
        } else if schema
            .iter()
            .any(|c| c.wire() == k && !matches!(c.ty, ColType::Lookup(_)))
        {
            out.insert(k, v);
        } else {
            return Err(no_such_property(st, idx, &k));
        }
    }
    Ok(out)
}

fn duplicate(st: &SimState, idx: usize, obj: &Map<String, Value>) -> bool {
    let t = &st.dv[idx];
    let Some(k) = &t.key else {
        return false;
    };
    let Some(v) = obj.get(k) else {
        return false;
    };
    let mut pred = vec![(Some(k.clone()), v.clone())];
    if let Some(c) = t.company_field.as_ref().and_then(|c| obj.get(c).map(|v| (c, v))) {
        pred.push((Some(c.0.clone()), c.1.clone()));
    }
    super::query::find(st, idx, &pred).is_some()
}

/// Adds a record to table `idx`; returns its id.
fn insert(st: &mut SimState, idx: usize, mut obj: Map<String, Value>) -> Result<String, Response> {
    if duplicate(st, idx, &obj) {
        return Err(json_error(
            StatusCode::PRECONDITION_FAILED,
            "0x80060892",
            "A record that has the attribute values of the alternate key already exists.",
        ));
    }
    let t = &st.dv[idx];
    let (id_field, key_field, company_field) = (t.id_field.clone(), t.key.clone(), t.company_field.clone());
    let id = match id_field.as_ref().and_then(|f| obj.get(f)).and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => st.next_guid(),
    };
    if let Some(f) = &id_field {
        obj.insert(f.clone(), json!(id));
    }
    let company = company_field
        .as_ref()
        .and_then(|f| obj.get(f))
        .and_then(Value::as_str)
        .and_then(|v| st.dv[idx].company_of_value(v, &st.companies))
        .unwrap_or(NO_COMPANY);
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
    Ok(id)
}

/// `POST <set>`.
pub fn create(
    app: &App,
    base: &str,
    set: &str,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: Value,
) -> Response {
    let Value::Object(obj) = body else {
        return bad("The request body must be a JSON object.");
    };
    let q = match Query::parse(raw, Dialect::Dataverse) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let representation = wire::prefers(headers, "return=representation");
    let out = app.with(|st| -> Result<(String, Option<Value>), Response> {
        let idx = *st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?;
        q.validate(&st.tables(), &st.dv[idx]).map_err(query_error)?;
        let obj = columns(st, idx, obj)?;
        let id = insert(st, idx, obj)?;
        let rep = representation.then(|| {
            let pos = super::query::find(st, idx, &[(None, json!(id))]).unwrap_or(0);
            let t = &st.dv[idx];
            let mut m = Map::new();
            let ctx = match &q.select {
                Some(s) => format!("{base}/$metadata#{set}({})/$entity", s.join(",")),
                None => format!("{base}/$metadata#{set}/$entity"),
            };
            m.insert("@odata.context".into(), json!(ctx));
            m.extend(project(
                st,
                t,
                &t.rows[pos],
                q.select.as_deref(),
                &[],
                Ann::default(),
            ));
            Value::Object(m)
        });
        Ok((id, rep))
    });
    let (id, rep) = match out {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut r = match rep {
        Some(v) => {
            let mut r = (StatusCode::CREATED, Json(v)).into_response();
            wire::preference_applied(&mut r, &["return=representation".to_string()]);
            r
        }
        None => StatusCode::NO_CONTENT.into_response(),
    };
    entity_id(&mut r, &format!("{base}/{set}({id})"));
    r
}

fn entity_id(r: &mut Response, url: &str) {
    if let Ok(v) = HeaderValue::from_str(url) {
        r.headers_mut().insert("odata-entityid", v.clone());
        r.headers_mut().insert("location", v);
    }
}

/// `PATCH <set>(<key>)`: updates the record, or creates it (upsert) unless `If-Match: *`.
pub fn update(app: &App, base: &str, seg: &str, headers: &HeaderMap, body: Value) -> Response {
    let Value::Object(obj) = body else {
        return bad("The request body must be a JSON object.");
    };
    let (set, key) = split_key(seg);
    let Some(key) = key else {
        return bad("PATCH needs a record: /<set>(<id>).");
    };
    let if_match = headers.get("if-match").is_some_and(|v| v == "*");
    let if_none_match = headers.get("if-none-match").is_some_and(|v| v == "*");
    let out = app.with(|st| -> Result<String, Response> {
        let idx = *st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?;
        let obj = columns(st, idx, obj)?;
        match locate(st, idx, &key) {
            Ok(pos) if if_none_match => {
                let _ = pos;
                Err(json_error(
                    StatusCode::PRECONDITION_FAILED,
                    "0x80060892",
                    "A record with matching key values already exists.",
                ))
            }
            Ok(pos) => {
                let t = &st.dv[idx];
                let mut row = st.tables().materialize(t, &t.rows[pos], &st.companies);
                row.extend(obj);
                let id = t
                    .id_field
                    .as_ref()
                    .and_then(|f| row.get(f))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let r = &mut st.dv[idx].rows[pos];
                r.owned = Some(Box::new(row));
                r.rev += 1;
                Ok(id)
            }
            Err(e) if if_match => Err(e),
            Err(_) => {
                let mut obj = obj;
                for (k, v) in &key {
                    let f = k
                        .clone()
                        .or_else(|| st.dv[idx].id_field.clone())
                        .unwrap_or_default();
                    obj.entry(f).or_insert(v.clone());
                }
                insert(st, idx, obj)
            }
        }
    });
    match out {
        Ok(id) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            entity_id(&mut r, &format!("{base}/{set}({id})"));
            r
        }
        Err(r) => r,
    }
}

/// `DELETE <set>(<key>)`.
pub fn delete(app: &App, seg: &str) -> Response {
    let (set, key) = split_key(seg);
    let Some(key) = key else {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "0x80060888",
            "DELETE needs a record: /<set>(<id>).",
        );
    };
    let done = app.with(|st| -> Result<(), Response> {
        let idx = *st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?;
        let pos = locate(st, idx, &key)?;
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
        Ok(())
    });
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// `POST <set>/Microsoft.Dynamics.CRM.CreateMultiple` (or `UpdateMultiple`): all or nothing.
pub fn multiple(app: &App, base: &str, set: &str, body: Value, update: bool) -> Response {
    let Some(targets) = body.get("Targets").and_then(Value::as_array).cloned() else {
        return bad("The parameter 'Targets' is missing or is not a collection.");
    };
    let out = app.with(|st| -> Result<Vec<String>, Response> {
        let idx = *st.dv_idx.get(set).ok_or_else(|| segment_not_found(set))?;
        let t = &st.dv[idx];
        let want = format!("Microsoft.Dynamics.CRM.{}", t.logical);
        let id_field = t.id_field.clone().unwrap_or_default();
        let mut rows = Vec::with_capacity(targets.len());
        for target in targets {
            let Value::Object(obj) = target else {
                return Err(bad("Each of 'Targets' must be an entity object."));
            };
            let ty = obj.get("@odata.type").and_then(Value::as_str).unwrap_or("");
            if ty.trim_start_matches('#') != want {
                return Err(bad(&format!(
                    "Each of 'Targets' needs \"@odata.type\": \"{want}\" (got \"{ty}\")."
                )));
            }
            let cols = columns(st, idx, obj)?;
            if update {
                let Some(id) = cols.get(&id_field).and_then(Value::as_str).map(str::to_string) else {
                    return Err(bad(&format!("UpdateMultiple needs {id_field} on every target.")));
                };
                if super::query::find(st, idx, &[(None, json!(id))]).is_none() {
                    return Err(record_missing(&st.dv[idx].logical, &id));
                }
            }
            rows.push(cols);
        }
        let mut ids = Vec::with_capacity(rows.len());
        for cols in rows {
            if update {
                let id = cols.get(&id_field).cloned().unwrap_or(Value::Null);
                if let Some(pos) = super::query::find(st, idx, &[(None, id.clone())]) {
                    let t = &st.dv[idx];
                    let mut row = st.tables().materialize(t, &t.rows[pos], &st.companies);
                    row.extend(cols);
                    let r = &mut st.dv[idx].rows[pos];
                    r.owned = Some(Box::new(row));
                    r.rev += 1;
                }
                ids.push(id.as_str().unwrap_or_default().to_string());
            } else {
                ids.push(insert(st, idx, cols)?);
            }
        }
        Ok(ids)
    });
    match out {
        Ok(_) if update => StatusCode::NO_CONTENT.into_response(),
        Ok(ids) => Json(json!({
            "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"),
            "Ids": ids,
        }))
        .into_response(),
        Err(r) => r,
    }
}
