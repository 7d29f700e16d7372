//! F&O metadata: the OData service document (`/data/`), `$metadata` (CSDL), and the read-only
//! metadata service (`/Metadata/DataEntities`, `/Metadata/PublicEntities`,
//! `/Metadata/PublicEnumerations`).
//!
//! Shapes follow wire-facts C: one `<Schema Namespace="Microsoft.Dynamics.DataEntities">` with the
//! entity types (each with `<Key>`), then the enum types (`NoYes`), and the entity container
//! `Resources` [sample]; metadata-service rows with `Name`, `PublicEntityName`,
//! `PublicCollectionName`, `DataServiceEnabled`, ... [community]. Other `/Metadata/` paths (labels)
//! and properties the simulator does not model are 501s that say so. Our models: an entity's AOT
//! `Name` is `<EntityType>Entity`, its `LabelId` null, and the CSDL lists no actions.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::query_error;
use crate::sim::faults::Service;
use crate::sim::odata::{Dialect, Query, filter};
use crate::sim::route::Ext;
use crate::sim::schema::{ColType, Column};
use crate::sim::server::App;
use crate::sim::tables::Table;
use crate::sim::wire;
use crate::sim::world::SimState;

/// `GET /data/` (and `/data`): the service document.
pub async fn service_document(State(app): State<App>, ext: Ext) -> Response {
    let value: Vec<Value> = app.with(|st| {
        st.fno
            .iter()
            .map(|t| json!({"name": t.name, "kind": "EntitySet", "url": t.name}))
            .collect()
    });
    Json(json!({"@odata.context": format!("{}/data/$metadata", ext.base), "value": value})).into_response()
}

fn edm(ty: &ColType) -> String {
    match ty {
        ColType::Guid => "Edm.Guid",
        ColType::Int | ColType::Picklist(_) | ColType::State | ColType::Status => "Edm.Int32",
        ColType::Decimal => "Edm.Decimal",
        ColType::Date => "Edm.Date",
        ColType::Bool => "Edm.Boolean",
        ColType::NoYes => "Microsoft.Dynamics.DataEntities.NoYes",
        ColType::Enum(name, _) => return format!("Microsoft.Dynamics.DataEntities.{name}"),
        ColType::String | ColType::Lookup(_) => "Edm.String",
    }
    .to_owned()
}

/// The enumerations the entities use: `NoYes`, then each named enum once (name, members in value order).
fn enums(st: &SimState) -> Vec<(String, Vec<String>)> {
    let mut out = vec![("NoYes".to_owned(), vec!["No".to_owned(), "Yes".to_owned()])];
    let tables = st.tables();
    for t in &st.fno {
        for c in tables.schema(t) {
            if let ColType::Enum(n, m) = c.ty
                && !out.iter().any(|(x, _)| *x == n)
            {
                out.push((n, m));
            }
        }
    }
    out
}

/// The key of an F&O entity: `dataAreaId` first on a company-specific set, then the key field.
fn key(t: &Table) -> Vec<String> {
    let mut k = Vec::new();
    if t.company_specific {
        k.extend(t.company_field.clone());
    }
    k.extend(t.key.clone().or_else(|| t.id_field.clone()));
    k
}

/// `GET /data/$metadata`.
pub async fn csdl(State(app): State<App>) -> Response {
    let xml = app.with(|st| {
        let tables = st.tables();
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\"><edmx:DataServices><Schema Namespace=\"Microsoft.Dynamics.DataEntities\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">",
        );
        for t in &st.fno {
            x.push_str(&format!("<EntityType Name=\"{}\">", t.entity_type));
            let k = key(t);
            if !k.is_empty() {
                x.push_str("<Key>");
                for f in &k {
                    x.push_str(&format!("<PropertyRef Name=\"{f}\"/>"));
                }
                x.push_str("</Key>");
            }
            for c in tables.schema(t) {
                let nullable = if k.contains(&c.name) { " Nullable=\"false\"" } else { "" };
                x.push_str(&format!("<Property Name=\"{}\" Type=\"{}\"{nullable}/>", c.name, edm(&c.ty)));
            }
            x.push_str("</EntityType>");
        }
        for (name, members) in enums(st) {
            x.push_str(&format!("<EnumType Name=\"{name}\">"));
            for (i, m) in members.iter().enumerate() {
                x.push_str(&format!("<Member Name=\"{m}\" Value=\"{i}\"/>"));
            }
            x.push_str("</EnumType>");
        }
        x.push_str("<EntityContainer Name=\"Resources\">");
        for t in &st.fno {
            x.push_str(&format!(
                "<EntitySet Name=\"{}\" EntityType=\"Microsoft.Dynamics.DataEntities.{}\"/>",
                t.name, t.entity_type
            ));
        }
        x.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
        x
    });
    (StatusCode::OK, [("content-type", "application/xml")], xml).into_response()
}

fn data_type(ty: &ColType) -> &'static str {
    match ty {
        ColType::Int | ColType::Picklist(_) | ColType::State | ColType::Status => "Int32",
        ColType::Decimal => "Decimal",
        ColType::Date => "Date",
        ColType::Bool => "Boolean",
        ColType::NoYes | ColType::Enum(..) => "Enum",
        ColType::Guid => "Guid",
        ColType::String | ColType::Lookup(_) => "String",
    }
}

fn data_entity(t: &Table) -> Map<String, Value> {
    let m = json!({
        "Name": format!("{}Entity", t.entity_type),
        "PublicEntityName": t.entity_type,
        "PublicCollectionName": t.name,
        "LabelId": null,
        "DataServiceEnabled": true,
        "DataManagementEnabled": true,
        "EntityCategory": "Master",
        "IsReadOnly": false,
    });
    m.as_object().cloned().unwrap_or_default()
}

fn public_entity(st: &SimState, t: &Table) -> Map<String, Value> {
    let k = key(t);
    let props: Vec<Value> = st
        .tables()
        .schema(t)
        .iter()
        .map(|c: &Column| {
            json!({"Name": c.name, "TypeName": edm(&c.ty), "DataType": data_type(&c.ty), "LabelId": null,
                   "IsKey": k.contains(&c.name), "IsMandatory": k.contains(&c.name)})
        })
        .collect();
    let m = json!({
        "Name": t.entity_type,
        "EntitySetName": t.name,
        "LabelId": null,
        "IsReadOnly": false,
        "ConfigurationEnabled": true,
        "Properties": props,
        "NavigationProperties": [],
    });
    m.as_object().cloned().unwrap_or_default()
}

fn enumerations(st: &SimState) -> Vec<Map<String, Value>> {
    enums(st)
        .into_iter()
        .map(|(name, members)| {
            let members: Vec<Value> = members
                .iter()
                .enumerate()
                .map(|(i, m)| json!({"Name": m, "Value": i, "LabelId": null, "ConfigurationEnabled": false}))
                .collect();
            let m = json!({"Name": name, "LabelId": null, "Members": members});
            m.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

/// `GET /Metadata/<collection>[('<Name>')]` with `$filter $select $top $skip`.
pub async fn metadata_service(
    State(app): State<App>,
    ext: Ext,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (name, key) = super::split_key(&rest);
    let items: Option<Vec<Map<String, Value>>> = app.with(|st| match name {
        "DataEntities" => Some(st.fno.iter().map(data_entity).collect()),
        "PublicEntities" => Some(st.fno.iter().map(|t| public_entity(st, t)).collect()),
        "PublicEnumerations" => Some(enumerations(st)),
        _ => None,
    });
    let Some(mut items) = items else {
        return wire::not_modelled(
            Service::Fno,
            &format!("The metadata service path /Metadata/{rest}"),
        );
    };
    let q = match Query::parse(raw.as_deref(), Dialect::Fno) {
        Ok(q) => q,
        Err(e) => return query_error(e),
    };
    let missing = |m: &Map<String, Value>, f: &str| !m.contains_key(f.split('/').next().unwrap_or(f));
    let named: Vec<String> = q
        .filter
        .iter()
        .flat_map(filter::fields)
        .chain(q.select.iter().flatten().cloned())
        .collect();
    if let Some(f) = items.first().and_then(|m| named.iter().find(|f| missing(m, f))) {
        return wire::not_modelled(Service::Fno, &format!("The metadata property {f}"));
    }
    if let Some(key) = key {
        let want = key
            .first()
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string();
        return match items.into_iter().find(|m| m["Name"] == want.as_str()) {
            Some(m) => {
                let mut out = Map::new();
                out.insert(
                    "@odata.context".into(),
                    json!(format!("{}/Metadata/$metadata#{name}/$entity", ext.base)),
                );
                out.extend(m);
                Json(Value::Object(out)).into_response()
            }
            None => super::record_missing(&rest),
        };
    }
    if let Some(f) = &q.filter {
        items.retain(|m| filter::eval(f, &|p: &str| m.get(p).cloned().unwrap_or(Value::Null)));
    }
    let value: Vec<Value> = items
        .into_iter()
        .skip(q.skip)
        .take(q.top.unwrap_or(usize::MAX))
        .map(|m| match &q.select {
            Some(sel) => Value::Object(m.into_iter().filter(|(k, _)| sel.contains(k)).collect()),
            None => Value::Object(m),
        })
        .collect();
    Json(json!({"@odata.context": format!("{}/Metadata/$metadata#{name}", ext.base), "value": value}))
        .into_response()
}
