//! Dataverse metadata: the service document, `$metadata` (CSDL), and table definitions
//! (`EntityDefinitions`, their `Attributes` and `Keys`) for every table of the scenario.
//!
//! Shapes follow wire-facts B5 [doc]: `EntityDefinitions(LogicalName='x')` is one object with
//! `MetadataId` always present; `$filter` works on its primitive properties; `Attributes` carry
//! `@odata.type` (`#Microsoft.Dynamics.CRM.LookupAttributeMetadata` with `Targets`, picklist, state
//! and status attributes with `OptionSet` under `$expand`), `AttributeType` and `AttributeTypeName`;
//! a cast segment (`Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`) narrows the list.
//! A metadata property the simulator does not model is a 501 that names it, and so are the other
//! metadata paths (relationships, global option sets). Our models: `SchemaName` is the logical name
//! with its first letter upper-cased, display names are derived from logical names, `MetadataId`s
//! are stable GUIDs drawn from the seed, the container is `System` and the CSDL lists entity types
//! and sets only (no functions or actions).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{bad, not_modelled, query_error};
use crate::sim::faults::{hash_str, mix};
use crate::sim::fno::split_key;
use crate::sim::odata::{Dialect, Expand, Query, filter};
use crate::sim::route::Ext;
use crate::sim::schema::{ColType, Column};
use crate::sim::server::App;
use crate::sim::tables::{Table, Tables, guid_from};
use crate::sim::world::SimState;

fn metadata_id(seed: u64, a: &str, b: &str) -> String {
    let h = mix(seed, hash_str(a) ^ hash_str(b).rotate_left(17));
    guid_from(mix(h, 1), mix(h, 2))
}

fn schema_name(logical: &str) -> String {
    let mut c = logical.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn label(seed: u64, text: &str) -> Value {
    let l = json!({"Label": text, "LanguageCode": 1033, "IsManaged": true,
                   "MetadataId": metadata_id(seed, "label", text), "HasChanged": null});
    json!({"LocalizedLabels": [l.clone()], "UserLocalizedLabel": l})
}

fn display(logical: &str) -> String {
    let base = logical.split_once('_').map_or(logical, |(_, r)| r);
    schema_name(base)
}

/// `EntityMetadata` of a table (without `Attributes`/`Keys`).
fn entity(st: &SimState, t: &Table) -> Map<String, Value> {
    let seed = st.scenario.seed;
    let tables = st.tables();
    let mut m = Map::new();
    m.insert("MetadataId".into(), json!(metadata_id(seed, &t.logical, "")));
    m.insert("LogicalName".into(), json!(t.logical));
    m.insert("SchemaName".into(), json!(schema_name(&t.logical)));
    m.insert("EntitySetName".into(), json!(t.name));
    m.insert("LogicalCollectionName".into(), json!(t.name));
    m.insert("PrimaryIdAttribute".into(), json!(t.id_field));
    m.insert("PrimaryNameAttribute".into(), json!(tables.primary_name(t)));
    m.insert("IsCustomEntity".into(), json!(t.logical.contains('_')));
    m.insert("IsActivity".into(), json!(false));
    m.insert("DisplayName".into(), label(seed, &display(&t.logical)));
    m.insert("DisplayCollectionName".into(), label(seed, &display(&t.name)));
    m
}

fn type_names(ty: &ColType) -> (&'static str, &'static str) {
    match ty {
        ColType::Guid => ("UniqueIdentifier", "Uniqueidentifier"),
        ColType::String | ColType::Enum(..) => ("String", "String"),
        ColType::Int => ("Integer", "Integer"),
        ColType::Decimal => ("Decimal", "Decimal"),
        ColType::Date => ("DateTime", "DateTime"),
        ColType::Bool | ColType::NoYes => ("Boolean", "Boolean"),
        ColType::Picklist(_) => ("Picklist", "Picklist"),
        ColType::State => ("State", "State"),
        ColType::Status => ("Status", "Status"),
        ColType::Lookup(_) => ("Lookup", "Lookup"),
    }
}

fn options(st: &SimState, t: &Table, c: &Column) -> Option<Value> {
    let opts: Vec<(i64, String)> = match &c.ty {
        ColType::Picklist(o) => o.clone(),
        ColType::State => vec![(0, "Active".into()), (1, "Inactive".into())],
        ColType::Status => vec![(1, "Active".into()), (2, "Inactive".into())],
        _ => return None,
    };
    let seed = st.scenario.seed;
    let kind = type_names(&c.ty).1;
    Some(json!({
        "MetadataId": metadata_id(seed, &t.logical, &format!("{}.optionset", c.name)),
        "Name": format!("{}_{}", t.logical, c.name),
        "IsGlobal": false,
        "OptionSetType": kind,
        "Options": opts.iter().map(|(v, l)| json!({"Value": v, "Label": label(seed, l)})).collect::<Vec<_>>(),
    }))
}

/// `AttributeMetadata` of one column (with `OptionSet` when `expand_options`).
fn attribute(st: &SimState, tables: &Tables, t: &Table, c: &Column) -> Map<String, Value> {
    let seed = st.scenario.seed;
    let (odata, ty) = type_names(&c.ty);
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        json!(format!("#Microsoft.Dynamics.CRM.{odata}AttributeMetadata")),
    );
    m.insert("MetadataId".into(), json!(metadata_id(seed, &t.logical, &c.name)));
    m.insert("LogicalName".into(), json!(c.name));
    m.insert("SchemaName".into(), json!(schema_name(&c.name)));
    m.insert("EntityLogicalName".into(), json!(t.logical));
    m.insert("AttributeType".into(), json!(ty));
    m.insert("AttributeTypeName".into(), json!({"Value": format!("{ty}Type")}));
    m.insert(
        "IsPrimaryId".into(),
        json!(t.id_field.as_deref() == Some(c.name.as_str())),
    );
    m.insert(
        "IsPrimaryName".into(),
        json!(tables.primary_name(t).as_deref() == Some(c.name.as_str())),
    );
    m.insert("IsValidForRead".into(), json!(true));
    m.insert(
        "IsValidForCreate".into(),
        json!(!matches!(c.ty, ColType::State | ColType::Status)),
    );
    m.insert(
        "IsValidForUpdate".into(),
        json!(t.id_field.as_deref() != Some(c.name.as_str())),
    );
    m.insert("AttributeOf".into(), Value::Null);
    m.insert("DisplayName".into(), label(seed, &display(&c.name)));
    if let ColType::Lookup(target) = &c.ty {
        let logical = st
            .dv_idx
            .get(target)
            .map_or_else(|| target.clone(), |&i| st.dv[i].logical.clone());
        m.insert("Targets".into(), json!([logical]));
    }
    m
}

fn keys(st: &SimState, t: &Table) -> Vec<Value> {
    let seed = st.scenario.seed;
    t.key
        .iter()
        .map(|k| {
            let name = format!("{}_{k}", t.logical);
            json!({"MetadataId": metadata_id(seed, &t.logical, &format!("key.{k}")),
                   "LogicalName": name, "SchemaName": schema_name(&name), "EntityLogicalName": t.logical,
                   "KeyAttributes": [k], "EntityKeyIndexStatus": "Active", "DisplayName": label(seed, &display(k))})
        })
        .collect()
}

/// Applies `$filter` and `$select` (and named nested expansions) to metadata objects.
/// The property at `path` (`Name` or `Nav/Name`) of an item, walked by reference: only the value a filter
/// names is copied, not the whole item for every field it names.
fn property(m: &Map<String, Value>, path: &str) -> Value {
    let mut parts = path.split('/');
    let first = parts.next().and_then(|p| m.get(p));
    parts
        .try_fold(first, |v, p| Some(v?.get(p)))
        .flatten()
        .cloned()
        .unwrap_or(Value::Null)
}

fn shape(items: Vec<Map<String, Value>>, q: &Query, what: &str) -> Result<Vec<Value>, Response> {
    let mut out = Vec::new();
    for m in items {
        if let Some(f) = &q.filter {
            for name in filter::fields(f) {
                let top = name.split('/').next().unwrap_or(&name);
                if !m.contains_key(top) {
                    return Err(not_modelled(&format!("The {what} property {top}")));
                }
            }
            if !filter::eval(f, &|path: &str| property(&m, path)) {
                continue;
            }
        }
        out.push(Value::Object(select(m, q.select.as_deref(), &q.expand, what)?));
    }
    Ok(out)
}

/// Keeps the `$select`ed properties, `MetadataId`, annotations and the expanded navigation
/// properties (`expanded`), as OData does.
fn select(
    m: Map<String, Value>,
    sel: Option<&[String]>,
    expanded: &[Expand],
    what: &str,
) -> Result<Map<String, Value>, Response> {
    let Some(sel) = sel else {
        return Ok(m);
    };
    if let Some(missing) = sel.iter().find(|s| !m.contains_key(s.as_str())) {
        return Err(not_modelled(&format!("The {what} property {missing}")));
    }
    Ok(m.into_iter()
        .filter(|(k, _)| {
            k.starts_with('@') || k == "MetadataId" || sel.contains(k) || expanded.iter().any(|e| &e.nav == k)
        })
        .collect())
}

/// The table whose `EntitySetName` (or `LogicalName`) is `v`, compared without regard to case as the
/// service compares strings: the set index first, a scan only when the exact name is not in it.
fn table_index(st: &SimState, prop: &str, v: &str) -> Option<usize> {
    if prop == "EntitySetName" {
        if let Some(&i) = st.dv_idx.get(v) {
            return Some(i);
        }
        return st.dv.iter().position(|t| t.name.eq_ignore_ascii_case(v));
    }
    st.dv.iter().position(|t| t.logical.eq_ignore_ascii_case(v))
}

fn find_table<'a>(st: &'a SimState, seg: &str) -> Result<&'a Table, Response> {
    let (_, key) = split_key(seg);
    let Some(key) = key else {
        return Err(bad("EntityDefinitions needs a key."));
    };
    let hit = st.dv.iter().find(|t| {
        key.iter().all(|(k, v)| {
            let v = v.as_str().unwrap_or("");
            match k.as_deref() {
                Some("LogicalName") => t.logical.eq_ignore_ascii_case(v),
                None | Some("MetadataId") => {
                    metadata_id(st.scenario.seed, &t.logical, "").eq_ignore_ascii_case(v)
                }
                _ => false,
            }
        })
    });
    hit.ok_or_else(|| {
        super::super::server::json_error(
            StatusCode::NOT_FOUND,
            "0x80040217",
            &format!(
                "Could not find entity with key {}",
                seg.trim_start_matches("EntityDefinitions")
            ),
        )
    })
}

/// The attributes of `t` after an optional cast segment, with `OptionSet` when expanded.
fn attributes(
    st: &SimState,
    t: &Table,
    cast: Option<&str>,
    expand: &[Expand],
) -> Result<Vec<Map<String, Value>>, Response> {
    let tables = st.tables();
    let mut out = Vec::new();
    for e in expand {
        if !matches!(e.nav.as_str(), "OptionSet" | "GlobalOptionSet") {
            return Err(not_modelled(&format!("$expand={} on attributes", e.nav)));
        }
    }
    for c in tables.schema(t) {
        let mut m = attribute(st, &tables, t, &c);
        let ty = m["@odata.type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('#')
            .to_string();
        if cast.is_some_and(|x| x != ty) {
            continue;
        }
        for e in expand {
            let has = options(st, t, &c);
            if has.is_none() {
                return Err(bad(&format!(
                    "Could not find a property named '{}' on type '{ty}'.",
                    e.nav
                )));
            }
            let v = if e.nav == "OptionSet" {
                has.unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            m.insert(e.nav.clone(), v);
        }
        out.push(m);
    }
    Ok(out)
}

/// `GET EntityDefinitions[...]`.
pub fn entity_definitions(app: &App, base: &str, segs: &[String], raw: Option<&str>) -> Response {
    let q = match Query::parse(raw, Dialect::Metadata) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let out = app.with(|st| -> Result<Value, Response> {
        let is_cast = |s: &str| s.starts_with("Microsoft.Dynamics.CRM.") && s.ends_with("AttributeMetadata");
        match segs {
            [all] if all == "EntityDefinitions" => {
                // A filter on the table's own properties is tried before its attributes and keys are expanded:
                // a read of one table by its set name (asked once per map) does not build every table's
                // metadata. What the filter names that is not there is left to `shape` to refuse.
                let own = q.filter.as_ref().filter(|f| {
                    filter::fields(f).iter().all(|n| {
                        let top = n.split('/').next().unwrap_or(n);
                        !q.expand.iter().any(|e| e.nav == top)
                    })
                });
                // An `or` of `EntitySetName eq` / `LogicalName eq` (a sweep asking for its tables in a few requests)
                // reads only the tables it names, through the set index: a request costs the tables it asks for,
                // not every table of the scenario.
                let picked = own
                    .and_then(|f| filter::eq_candidates(f, &["EntitySetName", "LogicalName"]))
                    .map(|keys| {
                        let mut ix: Vec<usize> = keys.iter().filter_map(|(p, v)| table_index(st, p, v)).collect();
                        ix.sort_unstable();
                        ix.dedup();
                        ix
                    });
                let tables: Vec<&Table> = match &picked {
                    Some(ix) => ix.iter().map(|&i| &st.dv[i]).collect(),
                    None => st.dv.iter().collect(),
                };
                let mut items = Vec::new();
                for t in tables {
                    if let Some(f) = own {
                        let m = entity(st, t);
                        let known = filter::fields(f)
                            .iter()
                            .all(|n| m.contains_key(n.split('/').next().unwrap_or(n)));
                        if known && !filter::eval(f, &|path: &str| property(&m, path)) {
                            continue;
                        }
                    }
                    items.push(with_expansions(st, t, &q)?);
                }
                let value = shape(items, &q, "EntityMetadata")?;
                Ok(json!({"@odata.context": format!("{base}/$metadata#EntityDefinitions"), "value": value}))
            }
            [one] => {
                let t = find_table(st, one)?;
                let mut m = Map::new();
                m.insert("@odata.context".into(), json!(format!("{base}/$metadata#EntityDefinitions/$entity")));
                m.extend(select(with_expansions(st, t, &q)?, q.select.as_deref(), &q.expand, "EntityMetadata")?);
                Ok(Value::Object(m))
            }
            [one, attrs, rest @ ..] if attrs.starts_with("Attributes") => {
                let t = find_table(st, one)?;
                let (_, key) = split_key(attrs);
                let cast = match rest {
                    [] => None,
                    [c] if is_cast(c) => Some(c.as_str()),
                    _ => return Err(not_modelled(&format!("The metadata path {}", segs.join("/")))),
                };
                let mut items = attributes(st, t, cast, &q.expand)?;
                let ctx = format!("{base}/$metadata#EntityDefinitions('{}')/Attributes", t.logical);
                if let Some(key) = key {
                    let want = key.first().and_then(|(_, v)| v.as_str()).unwrap_or("").to_string();
                    items.retain(|m| m["LogicalName"] == want.as_str() || m["MetadataId"] == want.as_str());
                    let Some(m) = items.pop() else {
                        return Err(super::super::server::json_error(
                            StatusCode::NOT_FOUND,
                            "0x80040217",
                            &format!("Could not find attribute '{want}' on entity '{}'.", t.logical),
                        ));
                    };
                    let mut out = Map::new();
                    out.insert("@odata.context".into(), json!(format!("{ctx}/$entity")));
                    out.extend(select(m, q.select.as_deref(), &q.expand, "AttributeMetadata")?);
                    return Ok(Value::Object(out));
                }
                let value = shape(items, &q, "AttributeMetadata")?;
                Ok(json!({"@odata.context": ctx, "value": value}))
            }
            [one, k] if k == "Keys" => {
                let t = find_table(st, one)?;
                let items = keys(st, t).into_iter().filter_map(|v| v.as_object().cloned()).collect();
                let value = shape(items, &q, "EntityKeyMetadata")?;
                Ok(json!({"@odata.context": format!("{base}/$metadata#EntityDefinitions('{}')/Keys", t.logical), "value": value}))
            }
            _ => Err(not_modelled(&format!("The metadata path {}", segs.join("/")))),
        }
    });
    match out {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

fn with_expansions(st: &SimState, t: &Table, q: &Query) -> Result<Map<String, Value>, Response> {
    let mut m = entity(st, t);
    for e in &q.expand {
        let v = match e.nav.as_str() {
            "Attributes" => Value::Array(shape(
                attributes(st, t, None, &e.options.expand)?,
                &e.options,
                "AttributeMetadata",
            )?),
            "Keys" => {
                let items = keys(st, t)
                    .into_iter()
                    .filter_map(|v| v.as_object().cloned())
                    .collect();
                Value::Array(shape(items, &e.options, "EntityKeyMetadata")?)
            }
            other => return Err(not_modelled(&format!("$expand={other} on EntityDefinitions"))),
        };
        m.insert(e.nav.clone(), v);
    }
    Ok(m)
}

/// `GET /api/data/v9.2/`: the service document.
pub async fn service_document(axum::extract::State(app): axum::extract::State<App>, ext: Ext) -> Response {
    let base = super::api_base(&ext);
    let mut value: Vec<Value> = app.with(|st| {
        st.dv
            .iter()
            .map(|t| json!({"name": t.name, "kind": "EntitySet", "url": t.name}))
            .collect()
    });
    value.push(json!({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"}));
    for f in ["WhoAmI", "RetrieveVersion", "RetrieveTotalRecordCount"] {
        value.push(json!({"name": f, "kind": "FunctionImport", "url": f}));
    }
    Json(json!({"@odata.context": format!("{base}/$metadata"), "value": value})).into_response()
}

fn edm(ty: &ColType) -> &'static str {
    match ty {
        ColType::Guid | ColType::Lookup(_) => "Edm.Guid",
        ColType::String | ColType::Enum(..) => "Edm.String",
        ColType::Int | ColType::Picklist(_) | ColType::State | ColType::Status => "Edm.Int32",
        ColType::Decimal => "Edm.Decimal",
        ColType::Date => "Edm.Date",
        ColType::Bool | ColType::NoYes => "Edm.Boolean",
    }
}

/// `GET /api/data/v9.2/$metadata`: CSDL with an entity type per table (key, properties, lookup
/// navigation properties) and the entity sets.
pub async fn csdl(axum::extract::State(app): axum::extract::State<App>) -> Response {
    let xml = app.with(|st| {
        let tables = st.tables();
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\"><edmx:DataServices><Schema Namespace=\"Microsoft.Dynamics.CRM\" Alias=\"mscrm\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\"><EntityType Name=\"crmbaseentity\" Abstract=\"true\"/>",
        );
        for t in &st.dv {
            x.push_str(&format!("<EntityType Name=\"{}\" BaseType=\"mscrm.crmbaseentity\">", t.logical));
            if let Some(id) = &t.id_field {
                x.push_str(&format!("<Key><PropertyRef Name=\"{id}\"/></Key>"));
            }
            let schema = tables.schema(t);
            for c in &schema {
                x.push_str(&format!("<Property Name=\"{}\" Type=\"{}\"/>", c.wire(), edm(&c.ty)));
            }
            for c in &schema {
                if let ColType::Lookup(target) = &c.ty {
                    let logical = st.dv_idx.get(target).map_or_else(|| target.clone(), |&i| st.dv[i].logical.clone());
                    x.push_str(&format!("<NavigationProperty Name=\"{}\" Type=\"mscrm.{logical}\"/>", c.name));
                }
            }
            x.push_str("</EntityType>");
        }
        x.push_str("<EntityContainer Name=\"System\">");
        for t in &st.dv {
            x.push_str(&format!(
                "<EntitySet Name=\"{}\" EntityType=\"Microsoft.Dynamics.CRM.{}\"/>",
                t.name, t.logical
            ));
        }
        x.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
        x
    });
    (StatusCode::OK, [("content-type", "application/xml")], xml).into_response()
}

/// `POST EntityDefinitions`: creates a table from an `EntityMetadata` body (Microsoft Learn, "Create and update
/// table definitions using the Web API"): `SchemaName` and exactly one `StringAttributeMetadata` with
/// `IsPrimaryName: true` in `Attributes` are required; 204 with `OData-EntityId`. Our model: the logical name is
/// the schema name in lower case, the entity set is the logical name plus `s`, the primary id column is
/// `<logical>id`; a name that is taken is 400 `0x80047013`; the other properties are accepted and not kept.
pub fn create_table(app: &App, base: &str, body: &Value) -> Response {
    let Some(schema) = body
        .get("SchemaName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return bad("The SchemaName of the entity is missing.");
    };
    let primary: Vec<&Value> = body
        .get("Attributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|c| c.get("IsPrimaryName").and_then(Value::as_bool) == Some(true))
                .collect()
        })
        .unwrap_or_default();
    let [p] = primary.as_slice() else {
        return bad("The entity must have exactly one primary name attribute (IsPrimaryName).");
    };
    if p.get("@odata.type").and_then(Value::as_str) != Some("Microsoft.Dynamics.CRM.StringAttributeMetadata")
    {
        return bad("The primary name attribute must be a StringAttributeMetadata.");
    }
    let Some(pname) = p.get("SchemaName").and_then(Value::as_str) else {
        return bad("The SchemaName of the primary name attribute is missing.");
    };
    let logical = schema.to_ascii_lowercase();
    let pname = pname.to_ascii_lowercase();
    let made = app.with(|st| {
        if st.dv.iter().any(|t| t.logical == logical) {
            return Err(());
        }
        let def = crate::sim::sections::EntityDef {
            id: Some(format!("{logical}id")),
            logical_name: Some(logical.clone()),
            primary_name: Some(pname.clone()),
            fields: std::collections::BTreeMap::from([(pname.clone(), "text".to_owned())]),
            ..Default::default()
        };
        let set = format!("{logical}s");
        let t = Table::new(
            &set,
            crate::sim::scenario::Side::Dataverse,
            &def,
            &st.companies,
            st.scenario.seed,
        );
        st.dv_idx.insert(set, st.dv.len());
        st.dv.push(t);
        st.effect(format!("dataverse.create_table:{logical}"));
        Ok(metadata_id(st.scenario.seed, &logical, ""))
    });
    match made {
        Ok(id) => entity_id_response(&format!("{base}/EntityDefinitions({id})")),
        Err(()) => super::super::server::json_error(
            StatusCode::BAD_REQUEST,
            "0x80047013",
            &format!("An entity with the specified name {schema} already exists."),
        ),
    }
}

/// `POST EntityDefinitions(LogicalName='t')/Attributes`: adds a column (Microsoft Learn, "Create columns"), 204
/// with `OData-EntityId`. String, Memo, Integer and DateTime columns are modelled; other types are 501.
pub fn create_column(app: &App, base: &str, seg: &str, body: &Value) -> Response {
    let ty = body.get("@odata.type").and_then(Value::as_str).unwrap_or("");
    let kind = match ty.trim_start_matches('#') {
        "Microsoft.Dynamics.CRM.StringAttributeMetadata" | "Microsoft.Dynamics.CRM.MemoAttributeMetadata" => {
            crate::sim::tables::FieldKind::Text
        }
        "Microsoft.Dynamics.CRM.IntegerAttributeMetadata" => crate::sim::tables::FieldKind::Int,
        "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata" => crate::sim::tables::FieldKind::Date,
        "" => return bad("The @odata.type of the attribute is missing."),
        other => return not_modelled(&format!("Creating a column of type {other}")),
    };
    let Some(name) = body
        .get("SchemaName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return bad("The SchemaName of the attribute is missing.");
    };
    let name = name.to_ascii_lowercase();
    let done = app.with(|st| {
        let logical = match find_table(st, seg) {
            Ok(t) => t.logical.clone(),
            Err(r) => return Err(r),
        };
        let seed = st.scenario.seed;
        let Some(t) = st.dv.iter_mut().find(|t| t.logical == logical) else {
            return Err(bad("no such table"));
        };
        if t.gens.iter().any(|(n, _)| *n == name) {
            return Err(super::super::server::json_error(
                StatusCode::BAD_REQUEST,
                "0x80047013",
                &format!("An attribute with the specified name {name} already exists."),
            ));
        }
        t.gens.push((name.clone(), kind));
        Ok(metadata_id(seed, &logical, &name))
    });
    match done {
        Ok(id) => entity_id_response(&format!("{base}/{}/Attributes({id})", seg.trim_end_matches('/'))),
        Err(r) => r,
    }
}

fn entity_id_response(link: &str) -> Response {
    (StatusCode::NO_CONTENT, [("OData-EntityId", link.to_owned())]).into_response()
}
