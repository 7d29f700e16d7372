//! The Dataverse table package installs are recorded in (`record_install: {env: <dataverse>, table: ...}`), so
//! the whole estate can read them without X++: its columns, one row's body, and its creation through the Web
//! API's table definitions (`POST EntityDefinitions`, then one `POST EntityDefinitions(LogicalName='t')/Attributes`
//! per column, each answered 204 with `OData-EntityId`: Microsoft Learn, "Create and update table definitions
//! using the Web API" and "Create columns"). The columns carry the table's publisher prefix (`cutover_` for
//! `cutover_packageinstall`). Creating is only done when asked (`cutover preflight --create-install-table`).

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Result;
use super::dataverse::DataverseClient;
use super::transport::{Idempotency, Request};

const API: &str = "/api/data/v9.2";

/// A column's Web API metadata type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Memo,
    Integer,
    DateTime,
}

/// The columns besides the primary id, as (suffix after the prefix, type, display name). The first is the
/// primary name column (the package name).
pub const COLUMNS: &[(&str, ColumnType, &str)] = &[
    ("name", ColumnType::String, "Package name"),
    ("version", ColumnType::String, "Version"),
    ("sha256", ColumnType::String, "SHA-256"),
    ("executionid", ColumnType::String, "Execution id"),
    ("environment", ColumnType::String, "Environment"),
    ("importedat", ColumnType::DateTime, "Imported at"),
    ("importedby", ColumnType::String, "Imported by"),
    ("recordcount", ColumnType::Integer, "Record count"),
    ("status", ColumnType::String, "Status"),
    ("notes", ColumnType::Memo, "Notes"),
];

/// `cutover` of `cutover_packageinstall`.
pub fn prefix(table: &str) -> &str {
    table.split_once('_').map_or(table, |(p, _)| p)
}

/// The Web API entity set of a table logical name (our convention for the tables we create: name + `s`).
pub fn entity_set(table: &str) -> String {
    format!("{table}s")
}

/// One install, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallRow {
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub execution_id: String,
    pub environment: String,
    /// RFC 3339.
    pub imported_at: String,
    pub imported_by: String,
    pub record_count: Option<u64>,
    /// `Succeeded`, `PartialSuccess` or `Failed`.
    pub status: String,
    pub notes: String,
}

/// The record status of a DMF summary status.
pub fn status_of(result: &str) -> &'static str {
    match result {
        "Succeeded" => "Succeeded",
        "PartiallySucceeded" => "PartialSuccess",
        _ => "Failed",
    }
}

/// The row's body for a table of prefix `p`.
pub fn body(p: &str, row: &InstallRow) -> Value {
    let mut o = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(format!("{p}_{k}"), v);
    };
    put("name", json!(row.package));
    put("version", json!(row.version));
    put("sha256", json!(row.sha256));
    put("executionid", json!(row.execution_id));
    put("environment", json!(row.environment));
    put("importedat", json!(row.imported_at));
    put("importedby", json!(row.imported_by));
    if let Some(n) = row.record_count {
        put("recordcount", json!(n));
    }
    put("status", json!(row.status));
    put("notes", json!(row.notes));
    Value::Object(o)
}

/// Writes the row unless one with its execution id exists (the record's handle); true when this call wrote it.
pub async fn write(
    dv: &DataverseClient,
    table: &str,
    row: &InstallRow,
    cancel: &CancellationToken,
) -> Result<bool> {
    let p = prefix(table);
    let key = format!("{p}_executionid");
    let (_, created) = dv
        .ensure_created(
            &entity_set(table),
            &body(p, row),
            (&key, &row.execution_id),
            cancel,
        )
        .await?;
    Ok(created)
}

fn label(text: &str) -> Value {
    json!({"@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}]})
}

fn column(p: &str, suffix: &str, ty: ColumnType, display: &str, primary: bool) -> Value {
    let schema = format!("{p}_{suffix}");
    let mut c = json!({
        "SchemaName": schema,
        "DisplayName": label(display),
        "Description": label(display),
        "RequiredLevel": {"Value": "None", "CanBeChanged": true, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
    });
    let (ty_name, extra) = match ty {
        ColumnType::String => (
            "StringAttributeMetadata",
            json!({"MaxLength": if suffix == "sha256" { 64 } else { 200 }, "FormatName": {"Value": "Text"}}),
        ),
        ColumnType::Memo => (
            "MemoAttributeMetadata",
            json!({"MaxLength": 4000, "Format": "TextArea"}),
        ),
        ColumnType::Integer => (
            "IntegerAttributeMetadata",
            json!({"MinValue": 0, "MaxValue": 2_147_483_647, "Format": "None"}),
        ),
        ColumnType::DateTime => (
            "DateTimeAttributeMetadata",
            json!({"Format": "DateAndTime", "DateTimeBehavior": {"Value": "UserLocal"}}),
        ),
    };
    if let (Some(o), Some(x)) = (c.as_object_mut(), extra.as_object()) {
        o.insert(
            "@odata.type".into(),
            json!(format!("Microsoft.Dynamics.CRM.{ty_name}")),
        );
        o.extend(x.clone());
        if primary {
            o.insert("IsPrimaryName".into(), json!(true));
        }
    }
    c
}

/// Whether the table exists (`GET EntityDefinitions(LogicalName='t')`: 200, or 404 when it does not).
pub async fn exists(dv: &DataverseClient, table: &str, cancel: &CancellationToken) -> Result<bool> {
    let req = Request::get(
        format!("dataverse.table {table}"),
        format!("{API}/EntityDefinitions(LogicalName='{table}')"),
    )
    .query("$select", "LogicalName");
    let resp = dv.transport().send_any(req, cancel).await?;
    match resp.status {
        200..=299 => Ok(true),
        404 => Ok(false),
        _ => Err(dv.transport().status_error(&resp)),
    }
}

/// Creates the table and its columns unless it exists; true when it was created. The table is user-owned, with
/// no activities or notes; the package name is its primary name column.
pub async fn create(dv: &DataverseClient, table: &str, cancel: &CancellationToken) -> Result<bool> {
    if exists(dv, table, cancel).await? {
        return Ok(false);
    }
    let p = prefix(table);
    let (first, rest) = COLUMNS
        .split_first()
        .map_or((None, &[][..]), |(f, r)| (Some(f), r));
    let primary: Vec<Value> = first
        .map(|(s, t, d)| column(p, s, *t, d, true))
        .into_iter()
        .collect();
    let body = json!({
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": table,
        "DisplayName": label("Package install"),
        "DisplayCollectionName": label("Package installs"),
        "Description": label("Data packages imported into each environment, written by cutover"),
        "OwnershipType": "UserOwned",
        "IsActivity": false,
        "HasActivities": false,
        "HasNotes": false,
        "Attributes": primary,
    });
    let req = Request::post(
        format!("dataverse.create-table {table}"),
        format!("{API}/EntityDefinitions"),
    )
    .json(body)
    .idempotency(Idempotency::Unsafe);
    dv.transport().send(req, cancel).await?;
    for (suffix, ty, display) in rest {
        let req = Request::post(
            format!("dataverse.create-column {table}.{suffix}"),
            format!("{API}/EntityDefinitions(LogicalName='{table}')/Attributes"),
        )
        .json(column(p, suffix, *ty, display, false))
        .idempotency(Idempotency::Unsafe);
        dv.transport().send(req, cancel).await?;
    }
    Ok(true)
}
