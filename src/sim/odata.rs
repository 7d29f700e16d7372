//! OData query options shared by the F&O and Dataverse handlers: parsing, filtering, ordering, counting.
//!
//! Supported (the subset the console uses): `$filter` with `eq`/`ne` joined by `and`, `$select`,
//! `$orderby` (`asc`/`desc`, several keys), `$top`, `$skip`, `$count`, `$skiptoken`, `cross-company`.
//! Our model: string comparisons are case-insensitive, as both services' default SQL collation is.
//! Anything else in `$filter` is a 400 with the OData error body, so an unsupported query is loud.

use serde_json::{Value, json};

use super::tables::{Table, Tables};

/// One `field op literal` term.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: String,
    pub negate: bool,
    pub value: Value,
}

/// The parsed query options of a collection request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Vec<Clause>,
    pub select: Option<Vec<String>>,
    pub orderby: Vec<(String, bool)>,
    pub top: Option<usize>,
    pub skip: usize,
    pub count: bool,
    pub cross_company: bool,
    pub skiptoken: Option<String>,
    pub fetch_xml: Option<String>,
    /// Every pair as received (decoded), to rebuild next links.
    pub pairs: Vec<(String, String)>,
}

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
    pub fn parse(raw: Option<&str>) -> Result<Query, String> {
        let mut q = Query {
            pairs: pairs(raw),
            ..Default::default()
        };
        for (k, v) in q.pairs.clone() {
            match k.as_str() {
                "$filter" => q.filter = parse_filter(&v)?,
                "$select" => q.select = Some(v.split(',').map(|s| s.trim().to_string()).collect()),
                "$orderby" => {
                    q.orderby = v
                        .split(',')
                        .map(|t| {
                            let mut it = t.split_whitespace();
                            let f = it.next().unwrap_or("").to_string();
                            (f, it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc")))
                        })
                        .filter(|(f, _)| !f.is_empty())
                        .collect()
                }
                "$top" => q.top = Some(v.parse().map_err(|_| format!("invalid $top `{v}`"))?),
                "$skip" => q.skip = v.parse().map_err(|_| format!("invalid $skip `{v}`"))?,
                "$count" => q.count = v.eq_ignore_ascii_case("true"),
                "cross-company" => q.cross_company = v.eq_ignore_ascii_case("true"),
                "$skiptoken" => q.skiptoken = Some(v),
                "fetchXml" => q.fetch_xml = Some(v),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Parses `a eq 'x' and b ne 3`.
pub fn parse_filter(text: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    for term in split_and(text) {
        let term = term.trim().trim_start_matches('(').trim_end_matches(')').trim();
        let mut it = term.splitn(3, ' ');
        let (field, op, lit) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
            it.next().unwrap_or("").trim(),
        );
        let negate = match op.to_ascii_lowercase().as_str() {
            "eq" => false,
            "ne" => true,
            _ => {
                return Err(format!(
                    "The query operator '{op}' in `{term}` is not supported by this service."
                ));
            }
        };
        if field.is_empty() || lit.is_empty() {
            return Err(format!("Syntax error in $filter term `{term}`"));
        }
        clauses.push(Clause {
            field: field.to_string(),
            negate,
            value: parse_literal(lit),
        });
    }
    Ok(clauses)
}

fn split_and(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
        }
        if !quoted && c == ' ' {
            let rest: String = chars[i..].iter().take(5).collect();
            if rest.eq_ignore_ascii_case(" and ") {
                out.push(std::mem::take(&mut cur));
                i += 5;
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

fn parse_literal(lit: &str) -> Value {
    if let Some(start) = lit.find('\'') {
        // 'text' or Namespace.Enum'Value'; '' escapes a quote.
        let inner = lit[start + 1..].strip_suffix('\'').unwrap_or(&lit[start + 1..]);
        return json!(inner.replace("''", "'"));
    }
    match lit {
        "true" => json!(true),
        "false" => json!(false),
        "null" => Value::Null,
        _ => lit
            .parse::<f64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(lit)),
    }
}

/// Equality as the services' collation sees it.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::Number(y)) | (Value::Number(y), Value::String(x)) => {
            x.parse::<f64>().ok() == y.as_f64()
        }
        _ => a == b,
    }
}

/// The rows a query selects, before `$skip`/`$top`: positions into `t.rows`, ordered.
/// `company` restricts to one company index (F&O without cross-company).
pub fn select(
    tables: &Tables,
    t: &Table,
    q: &Query,
    company: Option<u16>,
    companies: &[String],
) -> Vec<usize> {
    let mut pos: Vec<usize> = (0..t.rows.len())
        .filter(|&i| {
            let row = &t.rows[i];
            if company.is_some_and(|c| row.company != c) {
                return false;
            }
            q.filter.iter().all(|cl| {
                let v = tables
                    .value_of(t, row, &cl.field, companies)
                    .unwrap_or(Value::Null);
                values_equal(&v, &cl.value) != cl.negate
            })
        })
        .collect();
    if !q.orderby.is_empty() {
        // Each row's keys are normalised once (numbers as f64, text lower-cased), so the sort
        // compares without allocating: the sample's `$orderby`+`$skip`+`$top=1` picks sort a whole
        // table per request.
        let keys: Vec<Vec<SortKey>> = pos
            .iter()
            .map(|&i| {
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
            })
            .collect();
        let mut idx: Vec<usize> = (0..pos.len()).collect();
        idx.sort_by(|&a, &b| {
            for (k, (_, desc)) in q.orderby.iter().enumerate() {
                let o = keys[a][k].cmp(&keys[b][k]);
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        pos = idx.into_iter().map(|i| pos[i]).collect();
    }
    pos
}

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
    let company_only = match q.filter.as_slice() {
        [] => Some(company),
        [cl] if !cl.negate
            && t.company_field
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(&cl.field)) =>
        {
            let idx = cl
                .value
                .as_str()
                .and_then(|v| companies.iter().position(|c| c.eq_ignore_ascii_case(v)));
            match (idx, company) {
                (Some(i), None) => Some(Some(i as u16)),
                (Some(i), Some(c)) if i as u16 == c => Some(Some(c)),
                _ => None,
            }
        }
        _ => None,
    };
    // Every row, created ones included, carries its company index, so the cached counts are exact.
    match company_only {
        Some(None) => t.len(),
        Some(Some(c)) => t.count_company(c),
        None => select(tables, t, q, company, companies).len() as u64,
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

    #[test]
    fn filter_terms_and_literals_parse() {
        let c =
            parse_filter("dataAreaId eq 'usmf' and CustomerAccount eq 'O''Neil' and Amount ne 3").unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].value, json!("O'Neil"));
        assert!(c[2].negate);
        assert!(parse_filter("Amount gt 3").is_err());
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode(&encode("x eq 'y'")), "x eq 'y'");
    }
}
