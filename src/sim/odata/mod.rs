//! OData query options shared by the F&O and Dataverse handlers: parsing, validation against the
//! entity's properties, filtering, ordering, counting.
//!
//! Query options are parsed per service ([`Dialect`]): an unknown system query option (`$frobnicate`)
//! is a 400 as on the real services, a known one the simulator does not model (`$apply`, `$search`,
//! ...) a 501 that says so, never silently ignored. `$filter` is parsed by [`filter`]. A property
//! the entity does not have in `$select`, `$filter`, `$orderby` or `$expand` is the OData 400 "Could
//! not find a property named ...". Our model: string comparisons are case-insensitive, as both
//! services' default SQL collation is.

pub mod filter;

use serde_json::Value;

pub use filter::{Expr, FilterError, values_equal};

use super::schema::{ColType, no_property};
use super::tables::{Table, Tables};

/// Which service's query options apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Fno,
    Dataverse,
    /// Dataverse metadata (`EntityDefinitions`, `Attributes`).
    Metadata,
}

/// A refused query: 400 (the real services refuse it too) or 501 (not modelled by the simulator).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub not_modelled: bool,
    pub message: String,
}

impl QueryError {
    pub fn bad(message: impl Into<String>) -> Self {
        QueryError {
            not_modelled: false,
            message: message.into(),
        }
    }
    pub fn not_modelled(message: impl Into<String>) -> Self {
        QueryError {
            not_modelled: true,
            message: message.into(),
        }
    }
}

impl From<FilterError> for QueryError {
    fn from(e: FilterError) -> Self {
        QueryError {
            not_modelled: e.not_modelled,
            message: e.message,
        }
    }
}

/// One `$expand` item: a navigation property and its own options (`$select`, `$filter`, ...).
#[derive(Debug, Clone, Default)]
pub struct Expand {
    pub nav: String,
    pub options: Box<Query>,
}

/// The parsed query options of a collection request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<Expr>,
    pub select: Option<Vec<String>>,
    pub orderby: Vec<(String, bool)>,
    pub expand: Vec<Expand>,
    pub top: Option<usize>,
    pub skip: usize,
    pub count: bool,
    pub cross_company: bool,
    pub skiptoken: Option<String>,
    pub fetch_xml: Option<String>,
    /// Every pair as received (decoded), to rebuild next links.
    pub pairs: Vec<(String, String)>,
}

/// System query options OData defines that no stand-in here models.
const NOT_MODELLED: &[&str] = &[
    "$apply",
    "$search",
    "$compute",
    "$format",
    "$levels",
    "$index",
    "$schemaversion",
    "$deltatoken",
    "$id",
];

/// Decodes `%XX` and `+` in a query component.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a raw query string into decoded pairs.
pub fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Rebuilds a query string from pairs, replacing or dropping the named options.
pub fn rebuild(pairs: &[(String, String)], drop: &[&str], add: &[(&str, String)]) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| !drop.iter().any(|d| d.eq_ignore_ascii_case(k)))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parts.extend(add.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))));
    parts.join("&")
}

impl Query {
    /// Parses a request's query string for `dialect`.
    pub fn parse(raw: Option<&str>, dialect: Dialect) -> Result<Query, QueryError> {
        Query::from_pairs(pairs(raw), dialect)
    }

    fn from_pairs(pairs: Vec<(String, String)>, dialect: Dialect) -> Result<Query, QueryError> {
        let mut q = Query::default();
        for (k, v) in &pairs {
            match k.as_str() {
                "$filter" => {
                    let f = filter::parse(v)?;
                    // Our model of the refusal (status, code and message): metadata queries take `eq`, `ne`, `not`,
                    // `and` and `or`; several tables are asked for with an `or` of `eq`.
                    if dialect == Dialect::Metadata && filter::uses_in(&f) {
                        return Err(QueryError::bad(
                            "The 'in' operator is not supported in a metadata query's $filter: use 'or' of 'eq'.",
                        ));
                    }
                    q.filter = Some(f);
                }
                "$select" => q.select = Some(list(v)),
                "$orderby" => q.orderby = orderby(v)?,
                "$expand" => q.expand = expand(v, dialect)?,
                "$top" => {
                    q.top = Some(v.trim().parse().map_err(|_| {
                        QueryError::bad(format!("Invalid value '{v}' for $top query option found."))
                    })?)
                }
                "$skip" if dialect == Dialect::Dataverse => {
                    return Err(QueryError::bad("The query parameter $skip is not supported"));
                }
                "$skip" => {
                    q.skip = v.trim().parse().map_err(|_| {
                        QueryError::bad(format!("Invalid value '{v}' for $skip query option found."))
                    })?
                }
                "$count" => {
                    q.count = match v.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(QueryError::bad(format!("'{v}' is not a valid count option."))),
                    }
                }
                "$skiptoken" => q.skiptoken = Some(v.clone()),
                "cross-company" if dialect == Dialect::Fno => {
                    q.cross_company = v.eq_ignore_ascii_case("true")
                }
                "fetchXml" if dialect == Dialect::Dataverse => q.fetch_xml = Some(v.clone()),
                "savedQuery" | "userQuery" if dialect == Dialect::Dataverse => {
                    return Err(QueryError::not_modelled(format!(
                        "The {k} query parameter is not modelled by the simulator."
                    )));
                }
                _ if k.starts_with('@') && dialect != Dialect::Fno => {} // parameter aliases (@p1=...)
                _ if NOT_MODELLED.iter().any(|n| n.eq_ignore_ascii_case(k)) => {
                    return Err(QueryError::not_modelled(format!(
                        "The query option {k} is not modelled by the simulator."
                    )));
                }
                _ if k.starts_with('$') => {
                    return Err(QueryError::bad(format!(
                        "The query parameter {k} is not supported"
                    )));
                }
                // F&O is an ASP.NET OData service: custom query options (no `$`) are the
                // application's to read and others are ignored (our model). Dataverse refuses
                // them ("sql query parameter is not supported").
                _ if dialect == Dialect::Fno => {}
                _ => {
                    return Err(QueryError::bad(format!(
                        "The query parameter {k} is not supported"
                    )));
                }
            }
        }
        q.pairs = pairs;
        Ok(q)
    }

    /// Checks every property the query names against `t`'s properties (the 400 both services
    /// answer for an unknown one). `$expand` navigation properties are checked by the caller.
    pub fn validate(&self, tables: &Tables, t: &Table) -> Result<(), QueryError> {
        let schema = tables.schema(t);
        let known = |f: &str| schema.iter().any(|c| c.wire() == f);
        let mut named: Vec<String> = Vec::new();
        named.extend(
            self.select
                .iter()
                .flatten()
                .filter(|f| f.as_str() != "*")
                .cloned(),
        );
        named.extend(self.filter.iter().flat_map(filter::fields));
        named.extend(self.orderby.iter().map(|(f, _)| f.clone()));
        if let Some(f) = named.into_iter().find(|f| !known(f)) {
            return Err(QueryError::bad(no_property(t, &f)));
        }
        let is_guid = |f: &str| {
            schema
                .iter()
                .any(|c| c.wire() == f && matches!(c.ty, ColType::Guid | ColType::Lookup(_)))
        };
        match self.filter.as_ref().and_then(|e| guid_vs_string(e, &is_guid)) {
            Some(op) => Err(QueryError::bad(format!(
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and 'Edm.String' for operator kind '{op}'."
            ))),
            None => Ok(()),
        }
    }
}

/// The operator kind of the first comparison of a GUID column with a string that is not a GUID
/// (`cdm_companyid eq 'USMF'`): the 400 Dataverse answers.
fn guid_vs_string(e: &Expr, is_guid: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    use filter::Operand::{Field, Lit};
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => guid_vs_string(a, is_guid).or_else(|| guid_vs_string(b, is_guid)),
        Expr::Not(a) => guid_vs_string(a, is_guid),
        Expr::Cmp(op, Field(f), Lit(Value::String(v))) | Expr::Cmp(op, Lit(Value::String(v)), Field(f))
            if is_guid(f) && !filter::is_guid(v.trim_matches(|c| c == '{' || c == '}')) =>
        {
            Some(match op {
                filter::Op::Eq => "Equal",
                filter::Op::Ne => "NotEqual",
                filter::Op::Gt => "GreaterThan",
                filter::Op::Ge => "GreaterThanOrEqual",
                filter::Op::Lt => "LessThan",
                filter::Op::Le => "LessThanOrEqual",
            })
        }
        _ => None,
    }
}

fn list(v: &str) -> Vec<String> {
    split_top(v, ',')
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn orderby(v: &str) -> Result<Vec<(String, bool)>, QueryError> {
    list(v)
        .into_iter()
        .map(|t| {
            let mut it = t.split_whitespace();
            let f = it.next().unwrap_or("").to_string();
            let desc = match it.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => return Err(QueryError::bad(format!("Syntax error in $orderby: '{other}'."))),
            };
            Ok((f, desc))
        })
        .collect()
}

/// `a($select=x;$top=1),b` → two items.
fn expand(v: &str, dialect: Dialect) -> Result<Vec<Expand>, QueryError> {
    list(v)
        .into_iter()
        .map(|item| {
            let (nav, inner) = match item.split_once('(') {
                Some((n, rest)) => (
                    n.trim().to_string(),
                    rest.strip_suffix(')').unwrap_or(rest).to_string(),
                ),
                None => (item.trim().to_string(), String::new()),
            };
            let pairs = split_top(&inner, ';')
                .into_iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), v.to_string()),
                    None => (p.trim().to_string(), String::new()),
                })
                .collect();
            let options = Box::new(Query::from_pairs(pairs, dialect)?);
            Ok(Expand { nav, options })
        })
        .collect()
}

/// Splits on `sep` outside parentheses and quotes.
fn split_top(v: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in v.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            _ if c == sep && depth == 0 && !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// The rows a query selects, before `$skip`/`$top`: positions into `t.rows`, ordered.
/// `company` restricts to one company index (F&O without cross-company).
///
/// `first`: only the first `n` positions will be read (the caller still sees how many match): with an
/// `$orderby`, the rest are left in no particular order.
pub fn select(
    tables: &Tables,
    t: &Table,
    q: &Query,
    company: Option<u16>,
    companies: &[String],
    first: Option<usize>,
) -> Vec<usize> {
    let mut pos: Vec<usize> = (0..t.rows.len())
        .filter(|&i| {
            let row = &t.rows[i];
            if company.is_some_and(|c| row.company != c) {
                return false;
            }
            q.filter.as_ref().is_none_or(|e| {
                filter::eval(e, &|f| {
                    tables.value_of(t, row, f, companies).unwrap_or(Value::Null)
                })
            })
        })
        .collect();
    let key_of = |i: usize| -> Vec<SortKey> {
        q.orderby
            .iter()
            .map(|(f, _)| {
                SortKey::of(
                    tables
                        .value_of(t, &t.rows[i], f, companies)
                        .unwrap_or(Value::Null),
                )
            })
            .collect()
    };
    // Ties keep table order (the position decides last): a total order.
    let order_keys = |a: &[SortKey], pa: usize, b: &[SortKey], pb: usize| {
        for (k, (_, desc)) in q.orderby.iter().enumerate() {
            let o = a[k].cmp(&b[k]);
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        pa.cmp(&pb)
    };
    match first {
        // A few first rows in order (`$top=1` on `createdon`, the oldest and newest of a million-row table, asked
        // for at once when a reconcile starts): one pass keeps the best few, without a key kept per row. The rest
        // follow in table order, as the partial sort below leaves them in no particular order.
        Some(n) if !q.orderby.is_empty() && n <= TOP_STREAMED && n < pos.len() / 2 => {
            let mut best: Vec<(Vec<SortKey>, usize)> = Vec::with_capacity(n + 1);
            for &p in &pos {
                let keys = key_of(p);
                if best.len() == n
                    && best
                        .last()
                        .is_none_or(|(w, pw)| order_keys(&keys, p, w, *pw) != std::cmp::Ordering::Less)
                {
                    continue;
                }
                let at =
                    best.partition_point(|(k, pk)| order_keys(k, *pk, &keys, p) == std::cmp::Ordering::Less);
                best.insert(at, (keys, p));
                best.truncate(n);
            }
            let mut out: Vec<usize> = best.iter().map(|(_, p)| *p).collect();
            // The rest by a search of the few kept, sorted: not a scan of them for each of a million rows.
            let mut kept = out.clone();
            kept.sort_unstable();
            out.extend(pos.iter().filter(|p| kept.binary_search(p).is_err()));
            return out;
        }
        _ => {}
    }
    if !q.orderby.is_empty() {
        // Each row's keys are normalised once (numbers as f64, text lower-cased), so the sort
        // compares without allocating: the sample's `$orderby`+`$skip`+`$top=1` picks sort a whole
        // table per request.
        let keys: Vec<Vec<SortKey>> = pos.iter().map(|&i| key_of(i)).collect();
        let mut idx: Vec<usize> = (0..pos.len()).collect();
        // A total order, so a partial sort below gives the same first rows a full stable sort would.
        let order = |&a: &usize, &b: &usize| order_keys(&keys[a], a, &keys[b], b);
        match first {
            // Only the first `n` are read: those are found in linear time and sorted; the rest stay in no
            // particular order.
            Some(n) if n < idx.len() / 2 => {
                idx.select_nth_unstable_by(n, order);
                idx[..n].sort_unstable_by(order);
            }
            _ => idx.sort_unstable_by(order),
        }
        pos = idx.into_iter().map(|i| pos[i]).collect();
    }
    pos
}

/// In table order: the positions of at most `want` rows matching `q`'s filter, from row `from` on (a page and
/// one more, to know whether there is a next). The same rows [`select`] gives, in the same order, without
/// evaluating the filter on the rest of the table.
pub fn select_window(
    tables: &Tables,
    t: &Table,
    q: &Query,
    company: Option<u16>,
    companies: &[String],
    from: usize,
    want: usize,
) -> Vec<usize> {
    (from.min(t.rows.len())..t.rows.len())
        .filter(|&i| {
            if company.is_some_and(|c| t.rows[i].company != c) {
                return false;
            }
            q.filter.as_ref().is_none_or(|e| {
                filter::eval(e, &|f| {
                    tables
                        .value_of(t, &t.rows[i], f, companies)
                        .unwrap_or(Value::Null)
                })
            })
        })
        .take(want)
        .collect()
}

/// At most this many first rows of an ordered selection are found in one pass keeping the best
/// ([`select`]).
const TOP_STREAMED: usize = 64;

/// A value as `$orderby` compares it, computed once per row.
enum SortKey {
    Num(f64),
    Text(String),
    Other(String),
}

impl SortKey {
    fn of(v: Value) -> Self {
        match v {
            Value::Number(n) => Self::Num(n.as_f64().unwrap_or(0.0)),
            // In place when it can be: one allocation a row fewer over a million-row sort.
            Value::String(mut s) if s.is_ascii() => {
                s.make_ascii_lowercase();
                Self::Text(s)
            }
            Value::String(s) => Self::Text(s.to_lowercase()),
            other => Self::Other(other.to_string()),
        }
    }

    /// Numbers by value, text case-insensitively; a column mixing kinds (which no real entity
    /// has) orders numbers, then text, then anything else by its JSON text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Self::Num(x), Self::Num(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
            (Self::Text(x), Self::Text(y)) | (Self::Other(x), Self::Other(y)) => x.cmp(y),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Num(_) => 0,
            Self::Text(_) => 1,
            Self::Other(_) => 2,
        }
    }
}

/// The number of rows a query matches, without materialising rows when it can: no filter, or only
/// a company filter, is a cached count.
pub fn count(tables: &Tables, t: &Table, q: &Query, company: Option<u16>, companies: &[String]) -> u64 {
    let company_only = match &q.filter {
        None => Some(company),
        Some(Expr::Cmp(
            filter::Op::Eq,
            filter::Operand::Field(f),
            filter::Operand::Lit(Value::String(v)),
        )) if t
            .company_field
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(f)) =>
        {
            let idx = t.company_of_value(v, companies);
            match (idx, company) {
                (Some(i), None) => Some(Some(i)),
                (Some(i), Some(c)) if i == c => Some(Some(c)),
                _ => None,
            }
        }
        _ => None,
    };
    // Every row, created ones included, carries its company index, so the cached counts are exact.
    match company_only {
        Some(None) => t.len(),
        Some(Some(c)) => t.count_company(c),
        None => select(tables, t, q, company, companies, None).len() as u64,
    }
}

/// The company index of `name` (any case), or none.
pub fn company_index(companies: &[String], name: &str) -> Option<u16> {
    companies
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| i as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first rows of an ordered selection are the same whether found in one pass keeping the best few, by a
    /// partial sort, or by a full sort: ascending and descending, on text with ties (case-insensitive), numbers
    /// and dates, with and without a filter; and every matching row is still there after them.
    #[test]
    fn the_first_rows_of_an_ordering_are_the_same_however_they_are_found() {
        let st = crate::sim::world::SimState::new(
            crate::sim::scenario::Scenario::from_yaml(
                "name: o\nseed: 9\ncompanies: [USMF, DEMF]\ndefault_company: USMF\nentities:\n  fno:\n    \
                 CustomersV3: { key: CustomerAccount, rows: { USMF: 300, DEMF: 250 }, fields: { City: city, Credit: amount, \
                 Since: date, Group: \"enum:a|B|c\" } }\n  dataverse: {}\n",
            )
            .unwrap(),
        );
        let tables = st.tables();
        let t = &st.fno[0];
        for order in [
            "City",
            "City desc",
            "Credit",
            "Credit desc",
            "Since desc,City",
            "Group,Credit desc",
            "dataAreaId desc,Since",
        ] {
            for filter in ["", "&$filter=Credit%20gt%2020000"] {
                let raw = format!(
                    "$orderby={}{filter}&cross-company=true",
                    order.replace(' ', "%20")
                );
                let q = Query::parse(Some(&raw), Dialect::Fno).unwrap();
                let all = select(&tables, t, &q, None, &st.companies, None);
                assert!(all.len() > 100, "{raw}: only {} rows", all.len());
                for n in [0, 1, 2, 7, 64, 65, 200] {
                    let got = select(&tables, t, &q, None, &st.companies, Some(n));
                    assert_eq!(
                        got[..n.min(got.len())],
                        all[..n.min(all.len())],
                        "{raw}, first {n}"
                    );
                    let mut every = got.clone();
                    every.sort_unstable();
                    let mut want = all.clone();
                    want.sort_unstable();
                    assert_eq!(every, want, "{raw}, first {n}: the matching rows");
                }
            }
        }
    }

    #[test]
    fn options_parse_per_service_and_unknown_ones_are_refused() {
        let q = Query::parse(
            Some("$filter=a%20eq%201&$select=a,b&$orderby=a%20desc,b&$top=3"),
            Dialect::Fno,
        )
        .unwrap();
        assert_eq!(q.select.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
        assert_eq!(q.orderby, [("a".to_string(), true), ("b".to_string(), false)]);
        let q = Query::parse(
            Some("$expand=primarycontactid($select=fullname;$top=1),Keys"),
            Dialect::Dataverse,
        )
        .unwrap();
        assert_eq!(q.expand.len(), 2);
        assert_eq!(
            q.expand[0].options.select.as_deref(),
            Some(&["fullname".to_string()][..])
        );
        let e = Query::parse(Some("$frobnicate=1"), Dialect::Dataverse).unwrap_err();
        assert!(!e.not_modelled && e.message.contains("$frobnicate"));
        assert!(
            Query::parse(Some("$apply=groupby((a))"), Dialect::Dataverse)
                .unwrap_err()
                .not_modelled
        );
        assert!(Query::parse(Some("$skip=1"), Dialect::Dataverse).is_err());
        assert!(Query::parse(Some("sql=select"), Dialect::Dataverse).is_err());
        assert!(
            Query::parse(Some("cross-company=true&other=1"), Dialect::Fno)
                .unwrap()
                .cross_company
        );
        assert!(Query::parse(Some("@p1=1"), Dialect::Dataverse).is_ok());
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode(&encode("x eq 'y'")), "x eq 'y'");
    }
}
