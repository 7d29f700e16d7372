//! The properties of each entity set, with their types: what `$select`, `$filter`, `$orderby`
//! and a create body are checked against, and what both services' metadata documents describe.
//!
//! A table's properties are its primary id, company column, key, the columns a map copies into it,
//! its generated fields, and on Dataverse `statecode`, `statuscode` and one `_<name>_value` per
//! lookup. Our model: a type follows the field's generator (`amount` is a decimal, `date` a
//! date, `noyes` the F&O `NoYes` enum, `choice:` a Dataverse picklist, the rest strings).

use super::scenario::Side;
use super::tables::{FieldKind, Table, Tables, lookup_column};

/// The type of one property.
#[derive(Debug, Clone, PartialEq)]
pub enum ColType {
    Guid,
    String,
    Int,
    Decimal,
    Date,
    Bool,
    NoYes,
    /// An F&O enumeration: its name and members (values are the members' positions).
    Enum(String, Vec<String>),
    Picklist(Vec<(i64, String)>),
    State,
    Status,
    /// A Dataverse lookup to this entity set.
    Lookup(String),
}

/// One property. A lookup's `name` is its logical name (`primarycontactid`); rows carry it as
/// [`Column::wire`] (`_primarycontactid_value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
}

impl Column {
    /// The name a row carries the value under.
    pub fn wire(&self) -> String {
        match self.ty {
            ColType::Lookup(_) => lookup_column(&self.name),
            _ => self.name.clone(),
        }
    }
}

fn of_kind(k: &FieldKind) -> ColType {
    match k {
        FieldKind::Amount => ColType::Decimal,
        FieldKind::Int => ColType::Int,
        FieldKind::Date => ColType::Date,
        FieldKind::Bool => ColType::Bool,
        FieldKind::NoYes => ColType::NoYes,
        FieldKind::Choice(o) => ColType::Picklist(o.clone()),
        FieldKind::NamedEnum(n, m) => ColType::Enum(n.clone(), m.clone()),
        _ => ColType::String,
    }
}

impl Tables<'_> {
    /// Every property of `t`, each once, in a stable order (id, company, key, copied, generated,
    /// system).
    pub fn schema(&self, t: &Table) -> Vec<Column> {
        let mut cols: Vec<Column> = Vec::new();
        let mut add = |name: &str, ty: ColType| {
            if !cols.iter().any(|c| c.name == name) {
                cols.push(Column {
                    name: name.to_string(),
                    ty,
                });
            }
        };
        if let Some(id) = &t.id_field {
            add(
                id,
                if t.side == Side::Dataverse {
                    ColType::Guid
                } else {
                    ColType::String
                },
            );
        }
        if let Some(c) = &t.company_field {
            match c.strip_prefix('_').and_then(|l| l.strip_suffix("_value")) {
                Some(lookup) if t.side == Side::Dataverse => {
                    add(lookup, ColType::Lookup("cdm_companies".into()));
                }
                _ => add(c, ColType::String),
            }
        }
        if let Some(k) = &t.key {
            add(k, ColType::String);
        }
        if let Some(o) = &t.origin {
            let src = self.fno.get(o.source);
            if let Some((_, k)) = &o.key {
                add(k, ColType::String);
            }
            for (sf, tf) in &o.fields {
                // A choice the Dataverse table declares itself (an enum's image through a value map).
                if let Some((_, k @ FieldKind::Choice(_))) = t.gens.iter().find(|(f, _)| f == tf) {
                    add(tf, of_kind(k));
                    continue;
                }
                let ty = src.and_then(|s| s.gens.iter().find(|(f, _)| f == sf)).map_or(
                    ColType::String,
                    |(_, k)| match of_kind(k) {
                        // dual-write turns NoYes into a Dataverse boolean.
                        ColType::NoYes => ColType::Bool,
                        // Without a choice of its own, an enum's image is its member name.
                        ColType::Enum(..) => ColType::String,
                        ty => ty,
                    },
                );
                add(tf, ty);
            }
        }
        for (f, k) in &t.gens {
            add(f, of_kind(k));
        }
        if t.side == Side::Dataverse {
            add("statecode", ColType::State);
            add("statuscode", ColType::Status);
            add("createdon", ColType::Date);
            for (l, target) in &t.lookups {
                add(l, ColType::Lookup(target.clone()));
            }
        }
        cols
    }

    /// The property a row carries as `wire` (`_x_value` finds the lookup `x`).
    pub fn column(&self, t: &Table, wire: &str) -> Option<Column> {
        self.schema(t).into_iter().find(|c| c.wire() == wire)
    }

    /// Dataverse `PrimaryNameAttribute`: the scenario's, else `name`, else the first string
    /// column ending in `name` (our model).
    pub fn primary_name(&self, t: &Table) -> Option<String> {
        if t.primary_name.is_some() {
            return t.primary_name.clone();
        }
        let schema = self.schema(t);
        if schema.iter().any(|c| c.name == "name") {
            return Some("name".into());
        }
        schema
            .iter()
            .find(|c| c.ty == ColType::String && c.name.ends_with("name") && Some(&c.name) != t.key.as_ref())
            .map(|c| c.name.clone())
    }
}

/// The type name an error message uses: `Microsoft.Dynamics.CRM.account`,
/// `Microsoft.Dynamics.DataEntities.CustomerV3`.
pub fn type_name(t: &Table) -> String {
    match t.side {
        Side::Dataverse => format!("Microsoft.Dynamics.CRM.{}", t.logical),
        Side::Fno => format!("Microsoft.Dynamics.DataEntities.{}", t.entity_type),
    }
}

/// The OData message for a property the type does not have.
pub fn no_property(t: &Table, name: &str) -> String {
    format!(
        "Could not find a property named '{name}' on type '{}'.",
        type_name(t)
    )
}
