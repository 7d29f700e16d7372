//! A small XML reader for FetchXML and paging cookies: elements, attributes, text, the five
//! predefined entities and numeric character references. No namespaces, DTDs or CDATA (FetchXML
//! uses none).

/// One element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Replaces `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` and `&#NN;`/`&#xNN;`.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find(';').filter(|e| *e <= 8) else {
            out.push('&');
            rest = after;
            continue;
        };
        let ent = &after[..end];
        let ch = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an attribute value.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Parses a document with one root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut p = P {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_misc();
    let root = p.element()?;
    p.skip_misc();
    if p.i < p.s.len() {
        return Err(format!(
            "unexpected content after the root element at byte {}",
            p.i
        ));
    }
    Ok(root)
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn starts(&self, pat: &str) -> bool {
        self.s[self.i..].starts_with(pat.as_bytes())
    }

    /// Whitespace, comments and processing instructions.
    fn skip_misc(&mut self) {
        loop {
            self.skip_ws();
            let end = if self.starts("<?") {
                "?>"
            } else if self.starts("<!--") {
                "-->"
            } else {
                return;
            };
            match find(&self.s[self.i..], end.as_bytes()) {
                Some(k) => self.i += k + end.len(),
                None => {
                    self.i = self.s.len();
                    return;
                }
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_-.:".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("expected a name at byte {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn element(&mut self) -> Result<Element, String> {
        if !self.starts("<") {
            return Err(format!("expected '<' at byte {}", self.i));
        }
        self.i += 1;
        let mut el = Element {
            name: self.name()?,
            ..Default::default()
        };
        loop {
            self.skip_ws();
            if self.starts("/>") {
                self.i += 2;
                return Ok(el);
            }
            if self.starts(">") {
                self.i += 1;
                break;
            }
            let key = self.name()?;
            self.skip_ws();
            if !self.starts("=") {
                return Err(format!("attribute {key} has no value"));
            }
            self.i += 1;
            self.skip_ws();
            let q = *self.s.get(self.i).ok_or("unterminated attribute")?;
            if q != b'"' && q != b'\'' {
                return Err(format!("attribute {key} is not quoted"));
            }
            self.i += 1;
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != q {
                self.i += 1;
            }
            if self.i >= self.s.len() {
                return Err(format!("attribute {key} is not terminated"));
            }
            let raw = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.i += 1;
            el.attrs.push((key, unescape(&raw)));
        }
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'<' {
                self.i += 1;
            }
            el.text
                .push_str(&unescape(&String::from_utf8_lossy(&self.s[start..self.i])));
            if self.i >= self.s.len() {
                return Err(format!("element {} is not closed", el.name));
            }
            if self.starts("</") {
                self.i += 2;
                let name = self.name()?;
                if name != el.name {
                    return Err(format!("</{name}> closes <{}>", el.name));
                }
                self.skip_ws();
                if !self.starts(">") {
                    return Err(format!("expected '>' after </{name}"));
                }
                self.i += 1;
                el.text = el.text.trim().to_string();
                return Ok(el);
            }
            if self.starts("<!--") || self.starts("<?") {
                self.skip_misc();
                continue;
            }
            el.children.push(self.element()?);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetchxml_and_a_paging_cookie_parse() {
        let f = parse(
            "<?xml version='1.0'?><fetch count=\"50\" paging-cookie=\"&lt;cookie page=&quot;1&quot;&gt;&lt;/cookie&gt;\"><entity name='account'><attribute name='name'/><filter type='or'><condition attribute='x' operator='in'><value>a&amp;b</value><value>c</value></condition></filter></entity></fetch>",
        )
        .unwrap();
        assert_eq!(f.attr("count"), Some("50"));
        assert_eq!(f.attr("paging-cookie"), Some("<cookie page=\"1\"></cookie>"));
        let e = &f.children[0];
        assert_eq!(e.attr("name"), Some("account"));
        let cond = &e.children[1].children[0];
        let values: Vec<&str> = cond.children_named("value").map(|v| v.text.as_str()).collect();
        assert_eq!(values, ["a&b", "c"]);
        assert!(parse("<fetch><entity></fetch>").is_err());
        assert_eq!(unescape("&#60;&#x3E;&bogus;"), "<>&bogus;");
    }
}
