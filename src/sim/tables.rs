//! The simulator's tables and rows.
//!
//! Rows are not stored as JSON: a generated row is (company, number, revision) and its field values
//! are computed from the seed when a response needs them, so a 60,000-row table costs a few hundred
//! kilobytes and a count is a cached integer. Rows created through the API (canaries, error-log
//! entries) are stored as JSON objects.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::faults::{hash_str, mix};
use super::scenario::{EntityDef, Rows, Side};

/// No company: a shared (global) row.
pub const NO_COMPANY: u16 = u16::MAX;

/// One row. `n` is the row's number within its generating table (it makes the key `US-000123`).
#[derive(Debug, Clone)]
pub struct Row {
    pub company: u16,
    pub n: u32,
    pub rev: u32,
    /// Generated through the table's origin map (a copied row) rather than its own generator.
    pub via_origin: bool,
    /// A copied row whose first compared field differs from the source (scenario `corrupt_share`).
    pub corrupt: bool,
    pub owned: Option<Box<Map<String, Value>>>,
}

impl Row {
    pub fn generated(company: u16, n: u32) -> Row {
        Row {
            company,
            n,
            rev: 0,
            via_origin: false,
            corrupt: false,
            owned: None,
        }
    }
}

/// How a target table's copied rows derive from the source table.
#[derive(Debug, Clone)]
pub struct Origin {
    pub source: usize,
    pub key: Option<(String, String)>,
    pub fields: Vec<(String, String)>,
    /// Value maps by source field: F&O enum member → Dataverse option value.
    pub values: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>>,
}

/// A field generator.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Name,
    Phone,
    Email,
    City,
    Amount,
    Int,
    Date,
    Bool,
    Text,
    Enum(Vec<String>),
    /// An F&O enumeration (`enum:SalesStatus:Backorder|Delivered`): its members' names are the values, and
    /// the metadata service and `$metadata` describe it as an enum type of that name.
    NamedEnum(String, Vec<String>),
    Const(String),
    /// F&O `NoYes` enum values `"Yes"`/`"No"`.
    NoYes,
    /// A Dataverse choice (picklist): integer values with labels.
    Choice(Vec<(i64, String)>),
}

impl FieldKind {
    pub fn parse(s: &str) -> Result<FieldKind, String> {
        Ok(match s {
            "name" => FieldKind::Name,
            "phone" => FieldKind::Phone,
            "email" => FieldKind::Email,
            "city" => FieldKind::City,
            "amount" => FieldKind::Amount,
            "int" => FieldKind::Int,
            "date" => FieldKind::Date,
            "bool" => FieldKind::Bool,
            "text" => FieldKind::Text,
            "noyes" => FieldKind::NoYes,
            _ => {
                if let Some(v) = s.strip_prefix("choice:") {
                    let options = v
                        .split('|')
                        .map(|o| {
                            let (n, label) = o.split_once('=').unwrap_or((o, o));
                            n.trim()
                                .parse::<i64>()
                                .map(|n| (n, label.trim().to_string()))
                                .map_err(|_| {
                                    format!(
                                        "choice option `{o}` needs an integer value: choice:1=Label|2=Label"
                                    )
                                })
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    FieldKind::Choice(options)
                } else if let Some(v) = s.strip_prefix("enum:") {
                    match v.split_once(':') {
                        Some((name, members)) if !name.contains('|') => {
                            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            {
                                return Err(format!("enum name `{name}` must be letters, digits and `_`"));
                            }
                            FieldKind::NamedEnum(
                                name.to_string(),
                                members.split('|').map(str::to_string).collect(),
                            )
                        }
                        _ => FieldKind::Enum(v.split('|').map(str::to_string).collect()),
                    }
                } else if let Some(v) = s.strip_prefix("const:") {
                    FieldKind::Const(v.to_string())
                } else {
                    return Err(format!(
                        "unknown field kind `{s}` (name, phone, email, city, amount, int, date, bool, text, noyes, enum:A|B, enum:Name:A|B, choice:1=A|2=B, const:V)"
                    ));
                }
            }
        })
    }

    fn value(&self, h: u64) -> Value {
        const A: [&str; 12] = [
            "Contoso",
            "Fabrikam",
            "Northwind",
            "Adventure",
            "Tailspin",
            "Litware",
            "Proseware",
            "Woodgrove",
            "Alpine",
            "Coho",
            "Wingtip",
            "Trey",
        ];
        const B: [&str; 10] = [
            "Retail",
            "Foods",
            "Traders",
            "Works",
            "Supplies",
            "Logistics",
            "Systems",
            "Partners",
            "Motors",
            "Outfitters",
        ];
        const C: [&str; 6] = ["Ltd", "Inc", "GmbH", "LLC", "AG", "Corp"];
        const CITY: [&str; 8] = [
            "Seattle", "Chicago", "Munich", "Berlin", "Dallas", "Atlanta", "Hamburg", "Denver",
        ];
        let pick = |list: &[&'static str], k: u64| list[(mix(h, k) % list.len() as u64) as usize];
        match self {
            FieldKind::Name => {
                // Built in place: a million-row page asks for this once a row.
                let (a, b, c) = (pick(&A, 1), pick(&B, 2), pick(&C, 3));
                let mut s = String::with_capacity(a.len() + b.len() + c.len() + 2);
                for (i, part) in [a, b, c].into_iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(part);
                }
                Value::String(s)
            }
            FieldKind::Phone => json!(format!("+1 555 {:03} {:04}", h % 1000, (h >> 10) % 10_000)),
            FieldKind::Email => json!(format!(
                "contact{}@{}.example",
                h % 100_000,
                pick(&A, 4).to_lowercase()
            )),
            FieldKind::City => json!(pick(&CITY, 5)),
            FieldKind::Amount => json!(((h % 10_000_000) as f64) / 100.0),
            FieldKind::Int => json!(h % 1000),
            FieldKind::Date => json!(format!("2025-{:02}-{:02}", 1 + h % 12, 1 + (h >> 8) % 28)),
            FieldKind::Bool => json!(h % 2 == 0),
            FieldKind::Text => json!(format!("T{:06x}", h % 0xFF_FFFF)),
            FieldKind::Enum(v) if !v.is_empty() => json!(v[(h % v.len() as u64) as usize]),
            FieldKind::Enum(_) => Value::Null,
            FieldKind::NamedEnum(_, v) if !v.is_empty() => json!(v[(h % v.len() as u64) as usize]),
            FieldKind::NamedEnum(..) => Value::Null,
            FieldKind::Const(v) => json!(v),
            FieldKind::NoYes => json!(if h % 2 == 0 { "Yes" } else { "No" }),
            FieldKind::Choice(v) if !v.is_empty() => json!(v[(h % v.len() as u64) as usize].0),
            FieldKind::Choice(_) => Value::Null,
        }
    }
}

/// A table's primary ids by position, for finding where a page continues. Built on first use, dropped whenever
/// a row is added or removed (a row's id never changes in place); a clone starts empty.
#[derive(Debug, Default)]
pub struct IdIndex(std::sync::Mutex<Option<Ids>>);

/// The ids of an [`IdIndex`]: a GUID as its 128 bits (a million-row table's index is a fraction of what its ids
/// as text would take), anything else as lower-case text.
#[derive(Debug, Default)]
pub struct Ids {
    guids: std::collections::HashMap<u128, usize>,
    other: std::collections::HashMap<String, usize>,
}

impl Ids {
    fn insert(&mut self, id: &str, p: usize) {
        match guid_bits(id) {
            Some(g) => self.guids.entry(g).or_insert(p),
            None => self.other.entry(id.to_ascii_lowercase()).or_insert(p),
        };
    }

    fn get(&self, id: &str) -> Option<usize> {
        match guid_bits(id) {
            Some(g) => self.guids.get(&g).copied(),
            None => self.other.get(&id.to_ascii_lowercase()).copied(),
        }
    }
}

/// The 128 bits of a GUID written as 32 hex digits in the 8-4-4-4-12 form (either case), `None` for anything else.
fn guid_bits(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

impl Clone for IdIndex {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl IdIndex {
    fn clear(&mut self) {
        *self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

/// The row the next page of a paged F&O listing starts at: (the query without `$skip`, the `$skip` of that
/// next page, its first row). Dropped whenever a row is added or removed; a clone starts empty.
#[derive(Debug, Default)]
pub struct SkipHint(std::sync::Mutex<Option<(String, usize, usize)>>);

impl Clone for SkipHint {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl SkipHint {
    fn clear(&mut self) {
        *self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
    /// The first row of the page at `skip` of `query`, when the last page served said so.
    pub fn get(&self, query: &str, skip: usize) -> Option<usize> {
        let g = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.as_ref()
            .filter(|(q, s, _)| q == query && *s == skip)
            .map(|(_, _, r)| *r)
    }
    pub fn set(&self, query: String, skip: usize, row: usize) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((query, skip, row));
    }
}

/// One entity set on one side.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub side: Side,
    /// Rows carry a company (F&O `dataAreaId`, Dataverse `company_field`).
    pub company_specific: bool,
    pub key: Option<String>,
    pub id_field: Option<String>,
    pub company_field: Option<String>,
    pub logical: String,
    /// Dataverse lookups: (logical name, target entity set).
    pub lookups: Vec<(String, String)>,
    /// Dataverse `PrimaryNameAttribute` as the scenario names it (see `schema.rs` for the default).
    pub primary_name: Option<String>,
    /// F&O entity type name (`CustomerV3`).
    pub entity_type: String,
    pub prefixes: Vec<String>,
    /// The legal entities' codes when this is the F&O set keyed by `DataArea` (see [`Table::key_value`]).
    pub codes: Vec<String>,
    pub gens: Vec<(String, FieldKind)>,
    pub origin: Option<Origin>,
    pub rows: Vec<Row>,
    /// Primary id → position, built when a page continues after a row and kept until the rows change.
    pub id_index: IdIndex,
    /// Where the next page of the last paged listing starts, kept until the rows change.
    pub skip_hint: SkipHint,
    /// Rows per company index, last slot for rows without a company.
    pub counts: Vec<u64>,
    pub next_n: u32,
    pub salt: u64,
}

impl Table {
    /// Builds a table and its generated rows (numbered across companies so keys are unique).
    pub fn new(name: &str, side: Side, def: &EntityDef, companies: &[String], seed: u64) -> Table {
        let company_specific = matches!(def.rows, Rows::PerCompany(_)) || def.company_field.is_some();
        let logical = def.logical_name.clone().unwrap_or_else(|| logical_of(name));
        let id_field = match side {
            Side::Dataverse => Some(def.id.clone().unwrap_or_else(|| format!("{logical}id"))),
            Side::Fno => def.id.clone(),
        };
        let company_field = match side {
            Side::Fno if company_specific => Some("dataAreaId".to_string()),
            Side::Fno => None,
            Side::Dataverse => def
                .company_field
                .clone()
                .or_else(|| def.company_lookup.as_deref().map(lookup_column)),
        };
        let company_specific = company_specific || company_field.is_some();
        let codes = if side == Side::Fno && !company_specific && def.key.as_deref() == Some("DataArea") {
            companies.to_vec()
        } else {
            Vec::new()
        };
        let shared_prefix: String = name.chars().filter(char::is_ascii_alphabetic).take(3).collect();
        let prefixes = companies
            .iter()
            .map(|c| {
                def.key_prefix
                    .clone()
                    .unwrap_or_else(|| c.chars().take(2).collect::<String>().to_uppercase())
            })
            .chain(std::iter::once(
                def.key_prefix
                    .clone()
                    .unwrap_or_else(|| shared_prefix.to_uppercase()),
            ))
            .collect();
        let gens = def
            .fields
            .iter()
            .filter_map(|(f, k)| FieldKind::parse(k).ok().map(|k| (f.clone(), k)))
            .collect();
        let mut t = Table {
            name: name.to_string(),
            side,
            company_specific,
            key: def.key.clone(),
            id_field,
            company_field,
            logical,
            lookups: def.lookups.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            primary_name: def.primary_name.clone(),
            entity_type: def.entity_type.clone().unwrap_or_else(|| singular_type(name)),
            prefixes,
            codes,
            gens,
            origin: None,
            rows: Vec::new(),
            id_index: IdIndex::default(),
            skip_hint: SkipHint::default(),
            counts: vec![0; companies.len() + 1],
            next_n: 1,
            salt: mix(seed, hash_str(name) ^ side as u64),
        };
        match &def.rows {
            Rows::Shared(n) => {
                t.add_generated(NO_COMPANY, *n);
            }
            Rows::PerCompany(m) => {
                for (i, c) in companies.iter().enumerate() {
                    let n = m
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(c))
                        .map_or(0, |(_, v)| *v);
                    t.add_generated(i as u16, n);
                }
            }
        }
        t
    }

    /// Appends `n` freshly generated rows of one company; returns the first new position.
    pub fn add_generated(&mut self, company: u16, n: u64) -> usize {
        let first = self.rows.len();
        for _ in 0..n {
            let row = Row::generated(company, self.next_n);
            self.next_n += 1;
            self.push(row);
        }
        first
    }

    pub fn push(&mut self, row: Row) {
        let slot = self.slot(row.company);
        self.counts[slot] += 1;
        self.rows.push(row);
        self.id_index.clear();
        self.skip_hint.clear();
    }

    pub fn remove(&mut self, pos: usize) -> Row {
        let row = self.rows.remove(pos);
        self.id_index.clear();
        self.skip_hint.clear();
        let slot = self.slot(row.company);
        self.counts[slot] = self.counts[slot].saturating_sub(1);
        row
    }

    fn slot(&self, company: u16) -> usize {
        if company == NO_COMPANY {
            self.counts.len() - 1
        } else {
            company as usize
        }
    }

    pub fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows of one company (index) in O(1).
    pub fn count_company(&self, company: u16) -> u64 {
        self.counts[self.slot(company)]
    }

    /// Whether the company column is a lookup to `cdm_company` (`_<lookup>_value`, a GUID) rather than a
    /// text column holding the code.
    pub fn company_is_lookup(&self) -> bool {
        self.side == Side::Dataverse
            && self
                .company_field
                .as_deref()
                .is_some_and(|f| f.starts_with('_') && f.ends_with("_value"))
    }

    /// The company index a company-column value names (a code, or on a lookup column the company's GUID).
    pub fn company_of_value(&self, v: &str, companies: &[String]) -> Option<u16> {
        companies
            .iter()
            .position(|c| {
                if self.company_is_lookup() {
                    company_guid(c).eq_ignore_ascii_case(v.trim_matches(|ch| ch == '{' || ch == '}'))
                } else {
                    c.eq_ignore_ascii_case(v)
                }
            })
            .map(|i| i as u16)
    }

    /// The key value a generated row `n` of `company` has in this table. Our model: the legal entities
    /// (an F&O set keyed by `DataArea`) are the scenario's companies, in order, lower-cased as F&O stores them.
    pub fn key_value(&self, company: u16, n: u32) -> String {
        if let Some(code) = n
            .checked_sub(1)
            .and_then(|i| self.codes.get(i as usize))
            .filter(|_| company == NO_COMPANY)
        {
            return code.to_lowercase();
        }
        let p = &self.prefixes[self.slot(company)];
        // `{p}-{n:06}`, written without the formatting machinery (once a row of every page).
        let mut s = String::with_capacity(p.len() + 11);
        s.push_str(p);
        s.push('-');
        push_padded(&mut s, u64::from(n), 6);
        s
    }

    /// Builds the id index now if it is not built ([`Table::position_of_id`]).
    pub fn warm_id_index(&self, tables: &Tables, companies: &[String]) {
        if self.id_field.is_some() && !self.rows.is_empty() {
            self.position_of_id("", tables, companies);
        }
    }

    /// The position of the row whose primary id is `id` (case-insensitive), through the id index.
    pub fn position_of_id(&self, id: &str, tables: &Tables, companies: &[String]) -> Option<usize> {
        let field = self.id_field.as_ref()?;
        let mut idx = self
            .id_index
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ids = idx.get_or_insert_with(|| {
            let mut ids = Ids {
                guids: std::collections::HashMap::with_capacity(self.rows.len()),
                other: std::collections::HashMap::new(),
            };
            for (p, row) in self.rows.iter().enumerate() {
                if let Some(Value::String(v)) = tables.value_of(self, row, field, companies) {
                    ids.insert(&v, p);
                }
            }
            ids
        });
        ids.get(id)
    }

    /// A deterministic GUID for generated row `n`.
    pub fn guid(&self, n: u32) -> String {
        guid_from(
            mix(self.salt, u64::from(n)),
            mix(self.salt ^ 0x5555, u64::from(n)),
        )
    }

    /// The position of the first row whose field `field` equals `value` (case-insensitive strings).
    pub fn find(&self, field: &str, value: &Value, ctx: &Tables, companies: &[String]) -> Option<usize> {
        (0..self.rows.len()).find(|&i| {
            ctx.value_of(self, &self.rows[i], field, companies)
                .is_some_and(|v| super::odata::filter::values_equal(&v, value))
        })
    }
}

/// All tables of both sides (read-only helpers that need to reach a copied row's source table).
pub struct Tables<'a> {
    pub fno: &'a [Table],
}

impl Tables<'_> {
    /// One field of one row, or None when the row has no such field.
    pub fn value_of(&self, t: &Table, row: &Row, field: &str, companies: &[String]) -> Option<Value> {
        if let Some(guid) = self.company_row_id(t, row, field, companies) {
            return Some(guid);
        }
        if let Some(o) = &row.owned {
            return o.get(field).cloned().or_else(|| system_default(t, row, field));
        }
        if let Some(v) = system_default(t, row, field) {
            return Some(v);
        }
        if row.via_origin {
            if let Some(origin) = &t.origin {
                let src = self.fno.get(origin.source)?;
                if t.id_field.as_deref() == Some(field) {
                    return Some(json!(t.guid(row.n)));
                }
                if t.company_field.as_deref() == Some(field) {
                    return Some(company_value(t, row.company, companies));
                }
                if let Some((sk, tk)) = &origin.key {
                    if tk == field {
                        return self.value_of(
                            src,
                            &Row {
                                via_origin: false,
                                ..row.clone()
                            },
                            sk,
                            companies,
                        );
                    }
                }
                if let Some(idx) = origin.fields.iter().position(|(_, tf)| tf == field) {
                    let sf = &origin.fields[idx].0;
                    let v = self.value_of(
                        src,
                        &Row {
                            via_origin: false,
                            corrupt: false,
                            ..row.clone()
                        },
                        sf,
                        companies,
                    );
                    let v = match origin.values.get(sf) {
                        // Through the map's value map; a value it does not map leaves the choice empty.
                        Some(vm) => v.map(|v| {
                            v.as_str()
                                .and_then(|s| vm.get(s))
                                .map_or(Value::Null, |n| json!(n))
                        }),
                        None => v,
                    };
                    return if row.corrupt && idx == 0 {
                        v.map(corrupt_value)
                    } else {
                        v
                    };
                }
            }
        }
        if t.id_field.as_deref() == Some(field) {
            return Some(json!(t.guid(row.n)));
        }
        if t.company_field.as_deref() == Some(field) {
            return Some(company_value(t, row.company, companies));
        }
        if t.key.as_deref() == Some(field) {
            return Some(json!(t.key_value(row.company, row.n)));
        }
        let (i, (_, kind)) = t.gens.iter().enumerate().find(|(_, (f, _))| f == field)?;
        Some(kind.value(mix(
            mix(t.salt, i as u64),
            u64::from(row.n) | (u64::from(row.rev) << 32),
        )))
    }

    /// On `cdm_company`, the primary id of a row whose code is a scenario company is that company's GUID, the
    /// value company lookups hold (see [`company_guid`]).
    fn company_row_id(&self, t: &Table, row: &Row, field: &str, companies: &[String]) -> Option<Value> {
        if t.side != Side::Dataverse || t.logical != "cdm_company" || t.id_field.as_deref() != Some(field) {
            return None;
        }
        if row.owned.as_ref().is_some_and(|o| o.contains_key(field)) {
            return None;
        }
        let key = t.key.as_deref().filter(|k| *k != field)?;
        let code = self.value_of(t, row, key, companies)?;
        let code = code.as_str()?;
        companies
            .iter()
            .find(|c| c.eq_ignore_ascii_case(code))
            .map(|c| json!(company_guid(c)))
    }

    /// Every field of a row, in a stable order.
    pub fn materialize(&self, t: &Table, row: &Row, companies: &[String]) -> Map<String, Value> {
        self.materialize_only(t, row, companies, |_| true)
    }

    /// The fields of a row that `keep` names: what [`Tables::materialize`] gives, less the rest, without
    /// computing the rest (a `$select`ed page of a million-row read computes two or three fields a row, not all).
    pub fn materialize_only(
        &self,
        t: &Table,
        row: &Row,
        companies: &[String],
        keep: impl Fn(&str) -> bool,
    ) -> Map<String, Value> {
        let mut fields = Vec::new();
        self.fields_only(t, row, companies, keep, &mut fields);
        fields.into_iter().map(|(k, v)| (k.into_owned(), v)).collect()
    }

    /// Writes the rows at `positions` of `t` as a page's `value` items ([`crate::sim::wire::write_object`]): each
    /// its `@odata.etag` and the fields `keep` names, with no map per row.
    pub fn write_rows(
        &self,
        t: &Table,
        positions: &[usize],
        companies: &[String],
        etag: impl Fn(&Row) -> String,
        keep: impl Fn(&str) -> bool,
        out: &mut Vec<u8>,
    ) {
        let mut fields = Vec::new();
        for &p in positions {
            let row = &t.rows[p];
            fields.clear();
            fields.push((Cow::Borrowed("@odata.etag"), Value::String(etag(row))));
            self.fields_only(t, row, companies, &keep, &mut fields);
            super::wire::write_object(out, &mut fields);
        }
    }

    /// What [`Tables::materialize_only`] gives, as (name, value) pairs appended to `out`, each name once, in
    /// no particular order: a page writer sorts them as the map would, without a map per row
    /// ([`crate::sim::wire::write_object`]).
    pub fn fields_only<'t>(
        &self,
        t: &'t Table,
        row: &'t Row,
        companies: &[String],
        keep: impl Fn(&str) -> bool,
        out: &mut Vec<(Cow<'t, str>, Value)>,
    ) {
        if let Some(o) = &row.owned {
            out.extend(
                o.iter()
                    .filter(|(k, _)| keep(k))
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.clone())),
            );
            for f in system_columns(t) {
                if keep(&f) && !o.contains_key(&f) {
                    if let Some(v) = system_default(t, row, &f) {
                        out.push((Cow::Owned(f), v));
                    }
                }
            }
            return;
        }
        // Id, company, key, the origin's columns (a copied row), the generated ones, then the system columns,
        // without building that list for every row; a column named twice is computed once (its value depends
        // on its name alone).
        let first = out.len();
        let mut add = |f: Cow<'t, str>| {
            if keep(&f) && !out[first..].iter().any(|(k, _)| *k == f) {
                if let Some(v) = self.value_of(t, row, &f, companies) {
                    out.push((f, v));
                }
            }
        };
        for f in t.id_field.iter().chain(&t.company_field).chain(&t.key) {
            add(Cow::Borrowed(f));
        }
        if row.via_origin {
            if let Some(o) = &t.origin {
                for f in o
                    .key
                    .iter()
                    .map(|(_, k)| k)
                    .chain(o.fields.iter().map(|(_, f)| f))
                {
                    add(Cow::Borrowed(f));
                }
            }
        }
        for (f, _) in &t.gens {
            add(Cow::Borrowed(f));
        }
        if t.side == Side::Dataverse {
            for f in ["statecode", "statuscode", "createdon"] {
                add(Cow::Borrowed(f));
            }
            for (l, _) in &t.lookups {
                add(Cow::Owned(lookup_column(l)));
            }
        }
    }
}

/// Columns every row of a Dataverse table has beyond the scenario's: `statecode`, `statuscode`, `createdon`
/// and one `_<lookup>_value` per lookup.
pub fn system_columns(t: &Table) -> Vec<String> {
    if t.side != Side::Dataverse {
        return Vec::new();
    }
    let mut cols = vec![
        "statecode".to_string(),
        "statuscode".to_string(),
        "createdon".to_string(),
    ];
    cols.extend(t.lookups.iter().map(|(l, _)| lookup_column(l)));
    cols
}

/// Our model: a Dataverse row's `createdon` is 2024-01-01T00:00:00Z plus its row number in seconds (rows are
/// numbered in the order they were created; a row created while the simulator runs gets the next number, so
/// the order of `createdon` is the order of creation, though not the simulated time of it).
pub fn created_on(n: u32) -> String {
    // Asked for once or twice per row a `createdon` range scans: the date is worked out from the day number
    // (Hinnant's days-to-civil) and written digit by digit, not through chrono and `format!`.
    let secs = 1_704_067_200u64 + u64::from(n);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = [0u8; 20];
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            // A digit: the cast cannot truncate.
            out[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, rem / 3_600, 2);
    put(14, rem / 60 % 60, 2);
    put(17, rem % 60, 2);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        out[at] = c;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `_<lookup>_value`, the column a lookup is read from.
pub fn lookup_column(lookup: &str) -> String {
    format!("_{lookup}_value")
}

/// A system column's value on a row that does not set it: every row is active (statecode 0,
/// statuscode 1), was created [`created_on`] its number, and a lookup nobody set is null.
fn system_default(t: &Table, row: &Row, field: &str) -> Option<Value> {
    if t.side != Side::Dataverse {
        return None;
    }
    match field {
        "statecode" => Some(json!(0)),
        "statuscode" => Some(json!(1)),
        "createdon" => Some(json!(created_on(row.n))),
        _ if field
            .strip_prefix('_')
            .and_then(|f| f.strip_suffix("_value"))
            .is_some_and(|l| t.lookups.iter().any(|(x, _)| x == l)) =>
        {
            Some(Value::Null)
        }
        _ => None,
    }
}

/// The entity type of an F&O set: `CustomersV3` → `CustomerV3`, `Currencies` → `Currency`.
pub fn singular_type(set: &str) -> String {
    let stem = set.trim_end_matches(|c: char| c.is_ascii_digit());
    let (stem, version) = match stem.strip_suffix('V') {
        Some(s) if stem.len() < set.len() => (s, &set[s.len()..]),
        _ => (set, ""),
    };
    format!("{}{version}", logical_of_case(stem))
}

fn logical_of_case(s: &str) -> String {
    if let Some(x) = s.strip_suffix("ies") {
        format!("{x}y")
    } else if let Some(x) = s.strip_suffix("sses") {
        format!("{x}ss")
    } else {
        s.strip_suffix('s').unwrap_or(s).to_string()
    }
}

fn company_value(t: &Table, company: u16, companies: &[String]) -> Value {
    match companies.get(company as usize) {
        Some(c) if t.side == Side::Fno => json!(c.to_lowercase()),
        Some(c) if t.company_is_lookup() => json!(company_guid(c)),
        Some(c) => json!(c),
        None => Value::Null,
    }
}

/// The `cdm_companyid` (a GUID) of the `cdm_company` row whose `cdm_companycode` is `code`: what a company
/// lookup (`_msdyn_company_value`) holds. Our model: derived from the code alone, so it is stable across runs.
pub fn company_guid(code: &str) -> String {
    // Asked for once per row a company filter scans: the few companies' GUIDs are kept per thread.
    thread_local! {
        static KNOWN: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KNOWN.with_borrow_mut(|known| {
        if let Some((_, g)) = known.iter().find(|(c, _)| c == code) {
            return g.clone();
        }
        let up = code.to_ascii_uppercase();
        let g = guid_from(
            hash_str(&format!("cdm_company:{up}")),
            hash_str(&up).rotate_left(29),
        );
        if known.len() < 64 {
            known.push((code.to_owned(), g.clone()));
        }
        g
    })
}

/// The company lookup Dataverse puts on company-specific tables (`msdyn_company`).
pub const DEFAULT_COMPANY_LOOKUP: &str = "msdyn_company";

/// What `corrupt_share` does to a compared value: it differs from the source.
fn corrupt_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(format!("{s} (stale)")),
        Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) + 1.0),
        Value::Bool(b) => Value::Bool(!b),
        other => other,
    }
}

/// The logical name of a Dataverse set: `accounts` → `account`, `transactioncurrencies` → `transactioncurrency`.
pub fn logical_of(set: &str) -> String {
    if let Some(s) = set.strip_suffix("ies") {
        format!("{s}y")
    } else if let Some(s) = set.strip_suffix("ses") {
        format!("{s}s")
    } else {
        set.strip_suffix('s').unwrap_or(set).to_string()
    }
}

/// Formats two 64-bit draws as a GUID.
pub fn guid_from(a: u64, b: u64) -> String {
    // `{:08x}-{:04x}-{:04x}-{:04x}-{:012x}` of (a >> 32, a >> 16, a, b >> 48, b), written digit by digit: a
    // Dataverse page asks for one or two a row.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut put = |at: usize, v: u64, width: usize| {
        for k in 0..width {
            // A nibble: the cast cannot truncate.
            out[at + k] = HEX[((v >> (4 * (width - 1 - k))) & 0xf) as usize];
        }
    };
    put(0, a >> 32, 8);
    put(9, (a >> 16) & 0xffff, 4);
    put(14, a & 0xffff, 4);
    put(19, b >> 48, 4);
    put(24, b & 0xffff_ffff_ffff, 12);
    // Hex digits and dashes: always UTF-8.
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Appends `n` in decimal, zero-padded to `width` digits (more when it needs them): `{n:0width$}`.
pub fn push_padded(s: &mut String, n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut v = n;
    loop {
        // A digit: the cast cannot truncate.
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in len..width {
        s.push('0');
    }
    digits[..len].reverse();
    // Decimal digits: always UTF-8.
    s.push_str(std::str::from_utf8(&digits[..len]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    #[test]
    fn guids_and_padded_numbers_are_what_format_writes() {
        let mut h = 0x1234_5678_9abc_def0u64;
        for i in 0..10_000u64 {
            h = super::mix(h, i);
            let (a, b) = (h, super::mix(h, 7));
            let want = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff,
                b >> 48,
                b & 0xffff_ffff_ffff
            );
            assert_eq!(super::guid_from(a, b), want);
            for (n, width) in [(h % 1_000_000_000, 6), (h % 100, 6), (h, 0), (0, 6), (i, 9)] {
                let mut s = String::from("x");
                super::push_padded(&mut s, n, width);
                assert_eq!(s, format!("x{n:0width$}"), "{n} to {width}");
            }
        }
        assert_eq!(super::guid_from(0, 0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            super::guid_from(u64::MAX, u64::MAX),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }

    #[test]
    fn created_on_writes_what_chrono_would() {
        let base = chrono::DateTime::<chrono::Utc>::from_timestamp(1_704_067_200, 0).unwrap();
        for n in [
            0u32,
            1,
            59,
            86_399,
            86_400,
            5_097_600,
            31_622_399,
            31_622_400,
            1_000_000,
            123_456_789,
            u32::MAX,
        ] {
            let at = base + chrono::Duration::seconds(i64::from(n));
            assert_eq!(
                super::created_on(n),
                at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "row {n}"
            );
        }
    }

    #[test]
    fn an_id_is_found_whatever_its_case_and_a_non_guid_id_too() {
        let mut ids = super::Ids::default();
        ids.insert("0A1B2C3D-0000-4000-8000-00000000abcd", 7);
        ids.insert("not-a-guid", 9);
        ids.insert("0a1b2c3d-0000-4000-8000-00000000ABCD", 8); // the first position is kept
        assert_eq!(ids.get("0a1b2c3d-0000-4000-8000-00000000abcd"), Some(7));
        assert_eq!(ids.get("NOT-A-GUID"), Some(9));
        assert_eq!(ids.get("0a1b2c3d-0000-4000-8000-00000000abce"), None);
        assert_eq!(super::guid_bits("0a1b2c3d00004000800000000000abcd"), None);
        assert_eq!(super::guid_bits("0a1b2c3d-0000-4000-8000-00000000abcg"), None);
        assert_eq!(super::guid_bits("00000000-0000-0000-0000-000000000010"), Some(16));
    }

    use super::*;

    #[test]
    fn generated_rows_are_deterministic_and_counted_per_company() {
        let def = EntityDef {
            key: Some("CustomerAccount".into()),
            rows: Rows::PerCompany([("USMF".to_string(), 3), ("DEMF".to_string(), 2)].into()),
            fields: [("OrganizationName".to_string(), "name".to_string())].into(),
            ..Default::default()
        };
        let cos = vec!["USMF".to_string(), "DEMF".to_string()];
        let a = Table::new("CustomersV3", Side::Fno, &def, &cos, 1);
        let b = Table::new("CustomersV3", Side::Fno, &def, &cos, 1);
        assert_eq!(a.count_company(0), 3);
        assert_eq!(a.count_company(1), 2);
        let tables = Tables { fno: &[] };
        let ra = tables.materialize(&a, &a.rows[4], &cos);
        assert_eq!(ra, tables.materialize(&b, &b.rows[4], &cos));
        assert_eq!(ra["CustomerAccount"], "DE-000005");
        assert_eq!(ra["dataAreaId"], "demf");
        assert_eq!(logical_of("transactioncurrencies"), "transactioncurrency");
        assert_eq!(singular_type("CustomersV3"), "CustomerV3");
        assert_eq!(singular_type("Currencies"), "Currency");
        assert_eq!(singular_type("SalesOrderLines"), "SalesOrderLine");
        assert_eq!(singular_type("ReleasedProductsV2"), "ReleasedProductV2");
    }
}
