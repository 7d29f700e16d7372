//! Read-only metadata reads (what `cutover preflight` asks before the weekend): an F&O entity's public
//! properties and keys from the metadata service, a Dataverse table's definition with its attributes, and
//! whether an F&O data project (definition group) exists. Each is one GET; none writes anything.
//!
//! - F&O: `GET /Metadata/PublicEntities?$filter=EntitySetName eq '<set>'` [doc: the metadata service is
//!   read-only OData]; rows carry `Name`, `EntitySetName` and `Properties[{Name, IsKey}]`. The OData
//!   `$metadata` document says the same, but on a real environment it is tens of megabytes.
//! - Dataverse: `GET /api/data/v9.2/EntityDefinitions?$filter=EntitySetName eq '<set>'&$select=..&$expand=Attributes`
//!   [doc]; a lookup attribute is `AttributeType` `Lookup` with `Targets` (logical names).
//! - DMF: `GET /data/DataManagementDefinitionGroups?$filter=Name eq '<group>'`: the public entity
//!   `DataManagementDefinitionGroupEntity` (key `Name`) [doc: CDM schema], whose set the DMF actions are bound to.

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::fno::odata_string;
use super::transport::{Request, Transport};
use super::{Result, parse};

/// An F&O public entity as the metadata service describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnoEntity {
    /// The entity's public name (`CustomerV3`).
    pub name: String,
    pub set: String,
    /// (property name, is part of the key).
    pub properties: Vec<(String, bool)>,
    /// (property name, enumeration name) of the properties whose `DataType` is `Enum`.
    pub enums: Vec<(String, String)>,
}

impl FnoEntity {
    /// The property of this name, case-sensitively as F&O matches them.
    pub fn has(&self, property: &str) -> bool {
        self.properties.iter().any(|(p, _)| p == property)
    }
    /// The enumeration a property is typed with (`SalesStatus`), if it is an enum.
    pub fn enum_of(&self, property: &str) -> Option<&str> {
        self.enums
            .iter()
            .find(|(p, _)| p == property)
            .map(|(_, e)| e.as_str())
    }
    /// The key properties.
    pub fn keys(&self) -> Vec<&str> {
        self.properties
            .iter()
            .filter(|(_, k)| *k)
            .map(|(p, _)| p.as_str())
            .collect()
    }
}

/// One Dataverse attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvAttribute {
    pub logical_name: String,
    /// `AttributeType` (`String`, `Lookup`, `Picklist`, ...).
    pub attribute_type: String,
    /// A lookup's target tables (logical names); empty otherwise.
    pub targets: Vec<String>,
}

/// A Dataverse table definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DvTable {
    pub logical_name: String,
    pub set: String,
    pub primary_id: String,
    pub attributes: Vec<DvAttribute>,
}

impl DvTable {
    pub fn attribute(&self, logical_name: &str) -> Option<&DvAttribute> {
        self.attributes
            .iter()
            .find(|a| a.logical_name.eq_ignore_ascii_case(logical_name))
    }
    /// The lookups that point at `table` (a logical name such as `cdm_company`).
    pub fn lookups_to(&self, table: &str) -> Vec<&DvAttribute> {
        self.attributes
            .iter()
            .filter(|a| a.targets.iter().any(|t| t.eq_ignore_ascii_case(table)))
            .collect()
    }
}

fn first_row(body: &[u8]) -> std::result::Result<Option<Value>, parse::ParseError> {
    let o = parse::object(body)?;
    match o.get("value") {
        Some(Value::Array(rows)) => Ok(rows.first().cloned()),
        _ => Err(parse::ParseError("no `value` list in the response".into())),
    }
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(parse::scalar_string).unwrap_or_default()
}

/// Parses the metadata service's `PublicEntities` answer (its first row).
pub fn parse_fno_entity(body: &[u8]) -> std::result::Result<Option<FnoEntity>, parse::ParseError> {
    let Some(row) = first_row(body)? else {
        return Ok(None);
    };
    let properties = row
        .get("Properties")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        text(p, "Name"),
                        p.get("IsKey").and_then(Value::as_bool).unwrap_or(false),
                    )
                })
                .filter(|(n, _)| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let enums = row
        .get("Properties")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter(|p| text(p, "DataType") == "Enum")
                .map(|p| {
                    let ty = text(p, "TypeName");
                    let short = ty.rsplit('.').next().unwrap_or(&ty).to_owned();
                    (text(p, "Name"), short)
                })
                .filter(|(n, e)| !n.is_empty() && !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(FnoEntity {
        name: text(&row, "Name"),
        set: text(&row, "EntitySetName"),
        properties,
        enums,
    }))
}

/// Parses `EntityDefinitions?$filter=..&$expand=Attributes` (its first row).
pub fn parse_dv_table(body: &[u8]) -> std::result::Result<Option<DvTable>, parse::ParseError> {
    let Some(row) = first_row(body)? else {
        return Ok(None);
    };
    let attributes = row
        .get("Attributes")
        .and_then(Value::as_array)
        .map(|attrs| {
            attrs
                .iter()
                .map(|a| DvAttribute {
                    logical_name: text(a, "LogicalName"),
                    attribute_type: text(a, "AttributeType"),
                    targets: a
                        .get("Targets")
                        .and_then(Value::as_array)
                        .map(|t| t.iter().filter_map(parse::scalar_string).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(DvTable {
        logical_name: text(&row, "LogicalName"),
        set: text(&row, "EntitySetName"),
        primary_id: text(&row, "PrimaryIdAttribute"),
        attributes,
    }))
}

/// The F&O entity whose public collection is `set`, or `None` when there is none.
pub async fn fno_entity(t: &Transport, set: &str, cancel: &CancellationToken) -> Result<Option<FnoEntity>> {
    let req = Request::get("fno.metadata.entity", "/Metadata/PublicEntities")
        .query("$filter", format!("EntitySetName eq {}", odata_string(set)));
    let resp = t.send(req, cancel).await?;
    t.parse(&resp, parse_fno_entity)
}

/// The Dataverse table whose entity set is `set`, with its attributes, or `None`.
pub async fn dataverse_table(
    t: &Transport,
    set: &str,
    cancel: &CancellationToken,
) -> Result<Option<DvTable>> {
    let req = Request::get("dataverse.metadata.table", "/api/data/v9.2/EntityDefinitions")
        .query("$filter", format!("EntitySetName eq {}", odata_string(set)))
        .query("$select", "LogicalName,EntitySetName,PrimaryIdAttribute")
        .query("$expand", "Attributes");
    let resp = t.send(req, cancel).await?;
    t.parse(&resp, parse_dv_table)
}

/// The members (name, value) of the F&O enumeration `name` from the metadata service
/// (`/Metadata/PublicEnumerations`, rows `{Name, Members[{Name, Value}]}`), or `None` when it lists no such enum.
pub async fn fno_enum_members(
    t: &Transport,
    name: &str,
    cancel: &CancellationToken,
) -> Result<Option<Vec<(String, i64)>>> {
    let req = Request::get("fno.metadata.enum", "/Metadata/PublicEnumerations")
        .query("$filter", format!("Name eq {}", odata_string(name)));
    let resp = t.send(req, cancel).await?;
    t.parse(&resp, parse_enum_members)
}

/// Parses `PublicEnumerations` (its first row's `Members`).
pub fn parse_enum_members(body: &[u8]) -> std::result::Result<Option<Vec<(String, i64)>>, parse::ParseError> {
    let Some(row) = first_row(body)? else {
        return Ok(None);
    };
    let members = row
        .get("Members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        text(m, "Name"),
                        m.get("Value").and_then(Value::as_i64).unwrap_or(-1),
                    )
                })
                .filter(|(n, _)| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(members))
}

/// The options (value, label) of a Dataverse choice column: `GET EntityDefinitions(LogicalName='t')/
/// Attributes(LogicalName='c')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet`
/// [doc: query metadata using the Web API]. `None` when the column is not a choice (the cast finds nothing: 404).
pub async fn dataverse_options(
    t: &Transport,
    table: &str,
    column: &str,
    cancel: &CancellationToken,
) -> Result<Option<Vec<(i64, String)>>> {
    let path = format!(
        "/api/data/v9.2/EntityDefinitions(LogicalName='{}')/Attributes(LogicalName='{}')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        table.replace('\'', "''"),
        column.replace('\'', "''")
    );
    let req = Request::get("dataverse.metadata.optionset", path)
        .query("$select", "LogicalName")
        .query("$expand", "OptionSet");
    match t.send(req, cancel).await {
        Ok(resp) => t.parse(&resp, parse_options).map(Some),
        Err(super::ConnectorError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses one `PicklistAttributeMetadata` with its `OptionSet.Options[{Value, Label.UserLocalizedLabel.Label}]`.
pub fn parse_options(body: &[u8]) -> std::result::Result<Vec<(i64, String)>, parse::ParseError> {
    let o = parse::object(body)?;
    let Some(opts) = o
        .get("OptionSet")
        .and_then(|s| s.get("Options"))
        .and_then(Value::as_array)
    else {
        return Err(parse::ParseError(
            "no `OptionSet.Options` in the attribute".into(),
        ));
    };
    Ok(opts
        .iter()
        .filter_map(|x| {
            let v = x.get("Value").and_then(Value::as_i64)?;
            let label = x
                .pointer("/Label/UserLocalizedLabel/Label")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            Some((v, label))
        })
        .collect())
}

/// Whether the F&O data project (definition group) `name` exists.
pub async fn definition_group_exists(t: &Transport, name: &str, cancel: &CancellationToken) -> Result<bool> {
    let req = Request::get("dmf.definition_group", "/data/DataManagementDefinitionGroups")
        .query("$filter", format!("Name eq {}", odata_string(name)))
        .query("$select", "Name");
    let resp = t.send(req, cancel).await?;
    Ok(t.parse(&resp, first_row)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_tables_and_their_absence_parse() {
        let fno = br#"{"value":[{"Name":"CustomerV3","EntitySetName":"CustomersV3","Properties":[{"Name":"dataAreaId","IsKey":true},{"Name":"CustomerAccount","IsKey":true},{"Name":"OrganizationName","IsKey":false}]}]}"#;
        let e = parse_fno_entity(fno).unwrap().unwrap();
        assert_eq!(e.keys(), ["dataAreaId", "CustomerAccount"]);
        assert!(e.has("OrganizationName") && !e.has("organizationname"));
        assert_eq!(parse_fno_entity(br#"{"value":[]}"#).unwrap(), None);
        assert!(parse_fno_entity(br#"{"nope":1}"#).is_err());
        let dv = br#"{"value":[{"LogicalName":"account","EntitySetName":"accounts","PrimaryIdAttribute":"accountid","Attributes":[{"LogicalName":"msdyn_company","AttributeType":"Lookup","Targets":["cdm_company"]},{"LogicalName":"name","AttributeType":"String"}]}]}"#;
        let t = parse_dv_table(dv).unwrap().unwrap();
        assert_eq!(t.primary_id, "accountid");
        assert_eq!(t.lookups_to("cdm_company")[0].logical_name, "msdyn_company");
        assert!(t.attribute("NAME").is_some() && t.attribute("telephone1").is_none());
    }

    #[test]
    fn enum_properties_members_and_options_parse() {
        let fno = br#"{"value":[{"Name":"SalesOrderHeaderV2","EntitySetName":"SalesOrderHeadersV2","Properties":[{"Name":"SalesOrderStatus","DataType":"Enum","TypeName":"Microsoft.Dynamics.DataEntities.SalesStatus","IsKey":false},{"Name":"SalesOrderNumber","DataType":"String","TypeName":"Edm.String","IsKey":true}]}]}"#;
        let e = parse_fno_entity(fno).unwrap().unwrap();
        assert_eq!(e.enum_of("SalesOrderStatus"), Some("SalesStatus"));
        assert_eq!(e.enum_of("SalesOrderNumber"), None);
        let members = br#"{"value":[{"Name":"SalesStatus","Members":[{"Name":"Backorder","Value":1},{"Name":"Delivered","Value":2}]}]}"#;
        assert_eq!(
            parse_enum_members(members).unwrap().unwrap(),
            [("Backorder".to_owned(), 1), ("Delivered".to_owned(), 2)]
        );
        assert_eq!(parse_enum_members(br#"{"value":[]}"#).unwrap(), None);
        let options = br#"{"LogicalName":"msdyn_salesstatus","OptionSet":{"Options":[{"Value":192350000,"Label":{"UserLocalizedLabel":{"Label":"Backorder"}}}]}}"#;
        assert_eq!(
            parse_options(options).unwrap(),
            [(192_350_000, "Backorder".to_owned())]
        );
        assert!(parse_options(br#"{"LogicalName":"x"}"#).is_err());
    }
}
