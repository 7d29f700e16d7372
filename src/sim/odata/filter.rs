//! `$filter` expressions: a parser for the OData subset real clients send, and its evaluation on a
//! row seen through a field accessor (a table row or a metadata document alike).
//!
//! Modelled: `and`, `or`, `not`, parentheses, `eq ne gt ge lt le` on strings, numbers, booleans,
//! dates, GUIDs and `null`, `in (...)`, `startswith`/`endswith`/`contains`, `tolower`/`toupper`,
//! enum literals `Namespace.Type'Value'`, property paths `A/B`. Anything else (lambda operators,
//! arithmetic, the `Microsoft.Dynamics.CRM.*` query functions, other functions) is answered 501
//! "not modelled by the simulator", never ignored. Our model: string comparison and ordering are
//! case-insensitive (the services' default SQL collation).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Value, json};

/// A parse or evaluation problem: 400 for what the real service refuses too, 501 for what the
/// simulator does not model.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterError {
    pub not_modelled: bool,
    pub message: String,
}

impl FilterError {
    fn syntax(message: String) -> Self {
        FilterError {
            not_modelled: false,
            message,
        }
    }
    fn not_modelled(what: &str) -> Self {
        FilterError {
            not_modelled: true,
            message: format!("{what} in $filter is not modelled by the simulator."),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(String),
    Lit(Value),
    Lower(Box<Operand>),
    Upper(Box<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Op, Operand, Operand),
    Call(Func, Operand, Operand),
    In(Operand, Vec<Value>),
    /// A bare boolean operand (`IsCustomizable/Value`, `true`).
    Truth(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    /// `Namespace.Type'Value'`: the value.
    Enum(String),
    Num(f64),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, FilterError> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |c: &[char], mut i: usize| -> Result<(String, usize), FilterError> {
        let mut s = String::new();
        i += 1;
        loop {
            match c.get(i) {
                None => {
                    return Err(FilterError::syntax(
                        "Unterminated string literal in $filter.".into(),
                    ));
                }
                Some('\'') if c.get(i + 1) == Some(&'\'') => {
                    s.push('\'');
                    i += 2;
                }
                Some('\'') => return Ok((s, i + 1)),
                Some(&ch) => {
                    s.push(ch);
                    i += 1;
                }
            }
        }
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let (s, next) = quoted(&c, i)?;
                out.push(Tok::Str(s));
                i = next;
            }
            _ if ch.is_alphanumeric() || "_-.@/$:+".contains(ch) => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || "_-.@/$:+".contains(c[i])) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                if c.get(i) == Some(&'(') && word.contains('.') {
                    // Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=[...]) and the like.
                    return Err(FilterError::not_modelled(&format!("The query function {word}")));
                }
                if c.get(i) == Some(&'\'') {
                    // An enum or typed literal: Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'.
                    let (s, next) = quoted(&c, i)?;
                    out.push(Tok::Enum(s));
                    i = next;
                } else if let Some(n) = number(&word) {
                    out.push(Tok::Num(n));
                } else {
                    out.push(Tok::Ident(word));
                }
            }
            _ => {
                return Err(FilterError::syntax(format!(
                    "Syntax error at position {i} in $filter: '{ch}'."
                )));
            }
        }
    }
    Ok(out)
}

fn number(word: &str) -> Option<f64> {
    let w = word.trim_end_matches(['m', 'M', 'd', 'D', 'L', 'l', 'f', 'F']);
    let first = w.chars().next()?;
    if !(first.is_ascii_digit() || first == '-' || first == '+') {
        return None;
    }
    w.parse::<f64>().ok().filter(|n| n.is_finite())
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(k))
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), FilterError> {
        if self.next() == Some(t) {
            Ok(())
        } else {
            Err(FilterError::syntax(format!(
                "Syntax error in $filter: expected {what}."
            )))
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            // A parenthesised boolean expression (an operand in parentheses is not used by clients).
            self.at += 1;
            let e = self.or()?;
            self.expect(Tok::Close, "')'")?;
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        if let Some(Tok::Ident(name)) = self.peek().cloned() {
            if self.toks.get(self.at + 1) == Some(&Tok::Open) {
                let lname = name.to_ascii_lowercase();
                if let Some(f) = match lname.as_str() {
                    "startswith" => Some(Func::StartsWith),
                    "endswith" => Some(Func::EndsWith),
                    "contains" => Some(Func::Contains),
                    _ => None,
                } {
                    self.at += 2;
                    let a = self.operand()?;
                    self.expect(Tok::Comma, "','")?;
                    let b = self.operand()?;
                    self.expect(Tok::Close, "')'")?;
                    return self.maybe_compared(Expr::Call(f, a, b));
                }
            }
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Ident(w)) => w.to_ascii_lowercase(),
            _ => return Ok(Expr::Truth(left)),
        };
        let op = match op.as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "in" => {
                self.at += 1;
                self.expect(Tok::Open, "'(' after in")?;
                let mut list = Vec::new();
                loop {
                    match self.operand()? {
                        Operand::Lit(v) => list.push(v),
                        _ => {
                            return Err(FilterError::syntax(
                                "The in operator takes a list of literals.".into(),
                            ));
                        }
                    }
                    match self.next() {
                        Some(Tok::Comma) => {}
                        Some(Tok::Close) => break,
                        _ => {
                            return Err(FilterError::syntax(
                                "Syntax error in the in list of $filter.".into(),
                            ));
                        }
                    }
                }
                return Ok(Expr::In(left, list));
            }
            "has" => return Err(FilterError::not_modelled("The has operator")),
            "add" | "sub" | "mul" | "div" | "mod" => {
                return Err(FilterError::not_modelled(&format!("Arithmetic ({op})")));
            }
            "and" | "or" => return Ok(Expr::Truth(left)),
            other => {
                return Err(FilterError::syntax(format!(
                    "Syntax error in $filter: '{other}' is not an operator."
                )));
            }
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Expr::Cmp(op, left, right))
    }

    /// `startswith(a,'x') eq true` is the OData 4.0 form some clients send.
    fn maybe_compared(&mut self, call: Expr) -> Result<Expr, FilterError> {
        let negate = match self.peek() {
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("eq") => false,
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("ne") => true,
            _ => return Ok(call),
        };
        self.at += 1;
        match self.next() {
            Some(Tok::Ident(b)) if b.eq_ignore_ascii_case("true") => {
                Ok(if negate { Expr::Not(Box::new(call)) } else { call })
            }
            Some(Tok::Ident(b)) if b.eq_ignore_ascii_case("false") => {
                Ok(if negate { call } else { Expr::Not(Box::new(call)) })
            }
            _ => Err(FilterError::syntax(
                "A function result can only be compared with true or false.".into(),
            )),
        }
    }

    fn operand(&mut self) -> Result<Operand, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) | Some(Tok::Enum(s)) => Ok(Operand::Lit(json!(s))),
            Some(Tok::Num(n)) => Ok(Operand::Lit(json!(n))),
            Some(Tok::Ident(w)) => {
                if self.peek() == Some(&Tok::Open) {
                    let lw = w.to_ascii_lowercase();
                    let wrap: fn(Box<Operand>) -> Operand = match lw.as_str() {
                        "tolower" => Operand::Lower,
                        "toupper" => Operand::Upper,
                        _ if w.contains('.') => {
                            return Err(FilterError::not_modelled(&format!("The query function {w}")));
                        }
                        _ => return Err(FilterError::not_modelled(&format!("The function {w}()"))),
                    };
                    self.at += 1;
                    let inner = self.operand()?;
                    self.expect(Tok::Close, "')'")?;
                    return Ok(wrap(Box::new(inner)));
                }
                match w.to_ascii_lowercase().as_str() {
                    "null" => Ok(Operand::Lit(Value::Null)),
                    "true" => Ok(Operand::Lit(json!(true))),
                    "false" => Ok(Operand::Lit(json!(false))),
                    _ if w.contains("/any") || w.contains("/all") => {
                        Err(FilterError::not_modelled("A lambda operator (any/all)"))
                    }
                    _ if is_guid(&w) || is_date(&w) => Ok(Operand::Lit(json!(w))),
                    _ if w.starts_with('@') => Err(FilterError::not_modelled("A parameter alias")),
                    _ => Ok(Operand::Field(w)),
                }
            }
            _ => Err(FilterError::syntax(
                "Syntax error in $filter: expected a property or a literal.".into(),
            )),
        }
    }
}

pub fn is_guid(w: &str) -> bool {
    let parts: Vec<&str> = w.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
}

/// Parses a `$filter` value.
pub fn parse(text: &str) -> Result<Expr, FilterError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(FilterError::syntax("The $filter expression is empty.".into()));
    }
    let mut p = Parser { toks, at: 0 };
    let e = p.or()?;
    if p.at < p.toks.len() {
        return Err(FilterError::syntax(format!(
            "Syntax error in $filter: unexpected '{}' at term {}.",
            tok_text(&p.toks[p.at]),
            p.at + 1
        )));
    }
    Ok(e)
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        Tok::Str(s) | Tok::Enum(s) => format!("'{s}'"),
        Tok::Num(n) => n.to_string(),
        Tok::Open => "(".into(),
        Tok::Close => ")".into(),
        Tok::Comma => ",".into(),
    }
}

/// Whether the expression uses the `in` operator anywhere.
pub fn uses_in(e: &Expr) -> bool {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => uses_in(a) || uses_in(b),
        Expr::Not(a) => uses_in(a),
        Expr::In(..) => true,
        Expr::Cmp(..) | Expr::Call(..) | Expr::Truth(_) => false,
    }
}

/// The (property, string value) pairs of an `or` of `<property> eq '<value>'` terms over `props`, when every
/// row the expression can match has one of them: the keys an index lookup can start from (the whole
/// expression still decides). `a and b` takes either side's; any other shape is `None` (scan every row).
pub fn eq_candidates(e: &Expr, props: &[&str]) -> Option<Vec<(String, String)>> {
    match e {
        Expr::Cmp(Op::Eq, Operand::Field(f), Operand::Lit(Value::String(v)))
        | Expr::Cmp(Op::Eq, Operand::Lit(Value::String(v)), Operand::Field(f))
            if props.contains(&f.as_str()) =>
        {
            Some(vec![(f.clone(), v.clone())])
        }
        Expr::Or(a, b) => {
            let mut out = eq_candidates(a, props)?;
            out.extend(eq_candidates(b, props)?);
            Some(out)
        }
        Expr::And(a, b) => match (eq_candidates(a, props), eq_candidates(b, props)) {
            (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
            (x, y) => x.or(y),
        },
        _ => None,
    }
}

/// Every property an expression names (for validation against the entity's properties).
pub fn fields(e: &Expr) -> Vec<String> {
    fn op(o: &Operand, out: &mut Vec<String>) {
        match o {
            Operand::Field(f) => out.push(f.clone()),
            Operand::Lower(x) | Operand::Upper(x) => op(x, out),
            Operand::Lit(_) => {}
        }
    }
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Expr::Not(a) => walk(a, out),
            Expr::Cmp(_, a, b) | Expr::Call(_, a, b) => {
                op(a, out);
                op(b, out);
            }
            Expr::In(a, _) | Expr::Truth(a) => op(a, out),
        }
    }
    let mut out = Vec::new();
    walk(e, &mut out);
    out
}

fn value<'e>(o: &'e Operand, get: &dyn Fn(&str) -> Value) -> Cow<'e, Value> {
    // A literal is compared where it stands: a filter evaluated over a million rows copies none.
    match o {
        Operand::Field(f) => Cow::Owned(get(f)),
        Operand::Lit(v) => Cow::Borrowed(v),
        Operand::Lower(x) => match value(x, get).into_owned() {
            Value::String(s) => Cow::Owned(json!(s.to_lowercase())),
            v => Cow::Owned(v),
        },
        Operand::Upper(x) => match value(x, get).into_owned() {
            Value::String(s) => Cow::Owned(json!(s.to_uppercase())),
            v => Cow::Owned(v),
        },
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

/// Order of two non-null values, or None when they do not compare.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Case-insensitively; ASCII (ids, codes, dates) without lower-cased copies.
        (Value::String(x), Value::String(y)) if x.is_ascii() && y.is_ascii() => Some(
            x.bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(y.bytes().map(|c| c.to_ascii_lowercase())),
        ),
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::String(x), Value::Number(y)) => x.parse::<f64>().ok()?.partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::String(y)) => x.as_f64()?.partial_cmp(&y.parse::<f64>().ok()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Evaluates an expression on one row.
pub fn eval(e: &Expr, get: &dyn Fn(&str) -> Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, get) && eval(b, get),
        Expr::Or(a, b) => eval(a, get) || eval(b, get),
        Expr::Not(a) => !eval(a, get),
        Expr::Truth(a) => *value(a, get) == Value::Bool(true),
        Expr::In(a, list) => {
            let v = value(a, get);
            list.iter().any(|x| values_equal(&v, x))
        }
        Expr::Call(f, a, b) => {
            let (a, b) = (value(a, get), value(b, get));
            let (Value::String(x), Value::String(y)) = (&*a, &*b) else {
                return false;
            };
            let (x, y) = (x.to_lowercase(), y.to_lowercase());
            match f {
                Func::StartsWith => x.starts_with(&y),
                Func::EndsWith => x.ends_with(&y),
                Func::Contains => x.contains(&y),
            }
        }
        Expr::Cmp(op, a, b) => {
            let (x, y) = (value(a, get), value(b, get));
            match op {
                Op::Eq => values_equal(&x, &y),
                Op::Ne => !values_equal(&x, &y),
                _ if x.is_null() || y.is_null() => false,
                Op::Gt => order(&x, &y) == Some(Ordering::Greater),
                Op::Ge => matches!(order(&x, &y), Some(Ordering::Greater | Ordering::Equal)),
                Op::Lt => order(&x, &y) == Some(Ordering::Less),
                Op::Le => matches!(order(&x, &y), Some(Ordering::Less | Ordering::Equal)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(field: &str) -> Value {
        match field {
            "accountnumber" => json!("US-000012"),
            "amount" => json!(12.5),
            "statecode" => json!(0),
            "createdon" => json!("2025-03-04T10:00:00Z"),
            "flag" => json!(true),
            _ => Value::Null,
        }
    }

    fn t(text: &str) -> bool {
        eval(&parse(text).unwrap(), &row)
    }

    #[test]
    fn the_operators_clients_send_evaluate_as_the_service_does() {
        assert!(t("startswith(accountnumber,'us')"));
        assert!(t("contains(accountnumber, '0001') and statecode eq 0"));
        assert!(!t("endswith(accountnumber,'13')"));
        assert!(t("amount gt 12 and amount le 12.5 and not (amount lt 3)"));
        assert!(t("accountnumber ge 'US-000012' and accountnumber lt 'US-1'"));
        assert!(t("createdon gt 2025-01-01T00:00:00Z"));
        assert!(t("nosuch eq null or amount eq 1"));
        assert!(t("statecode in (0,1)"));
        assert!(t("flag"));
        assert!(t("startswith(accountnumber,'US') eq true"));
        assert!(t("tolower(accountnumber) eq 'us-000012'"));
        assert!(t(
            "x eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist' or amount ne 1"
        ));
        assert_eq!(fields(&parse("a eq 1 or startswith(b,'x')").unwrap()), ["a", "b"]);
    }

    #[test]
    fn an_or_of_eq_names_its_candidates_and_in_is_found() {
        let e = parse("EntitySetName eq 'a' or 'b' eq LogicalName or EntitySetName eq 'c'").unwrap();
        let got = eq_candidates(&e, &["EntitySetName", "LogicalName"]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], ("LogicalName".to_owned(), "b".to_owned()));
        let e = parse("(EntitySetName eq 'a' or EntitySetName eq 'b') and IsActivity eq false").unwrap();
        assert_eq!(eq_candidates(&e, &["EntitySetName"]).unwrap().len(), 2);
        for text in [
            "EntitySetName eq 'a' or IsActivity eq false",
            "EntitySetName ne 'a'",
            "not (EntitySetName eq 'a')",
        ] {
            assert!(
                eq_candidates(&parse(text).unwrap(), &["EntitySetName"]).is_none(),
                "{text}"
            );
        }
        assert!(uses_in(&parse("a eq 1 or not (b in (1,2))").unwrap()));
        assert!(!uses_in(&parse("a eq 1 or b eq 2").unwrap()));
    }

    #[test]
    fn what_is_not_modelled_says_so_and_bad_syntax_is_a_400() {
        for text in [
            "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=['1'])",
            "contact_customer_accounts/any(c:c/fullname eq 'x')",
            "amount add 1 gt 2",
            "length(accountnumber) eq 9",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.not_modelled, "{text}: {e:?}");
            assert!(e.message.contains("not modelled by the simulator"));
        }
        for text in ["a eq", "a frob 1", "(a eq 1", "a eq 'x", ""] {
            assert!(!parse(text).unwrap_err().not_modelled, "{text}");
        }
    }
}
