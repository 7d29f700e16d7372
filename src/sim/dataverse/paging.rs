//! Dataverse paging cookies, in the service's own format (wire-facts B3/B7 [doc]).
//!
//! The Web API's `$skiptoken` and FetchXML's `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` are both
//! `<cookie pagenumber="N" pagingcookie="P" istracking="False" />`, where `P` is, URL-encoded twice,
//! `<cookie page="N-1"><col last="..." first="..." />...</cookie>`: the first and last value of the
//! page's order columns and primary id. The next page starts after the row whose primary id is
//! `last`. Our model: when that row is gone, the page number alone decides where it starts.

use crate::sim::xml;

/// Lower-case percent-encoding of everything but unreserved characters, as Dataverse writes it.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The cookie of a page that ends at `last` and starts at `first`: (column, first, last) per order
/// column and the primary id, GUIDs in braces and upper case.
pub fn cookie(next_page: usize, cols: &[(String, String, String)]) -> String {
    let shown = |v: &str| {
        if v.len() == 36 && v.chars().filter(|c| *c == '-').count() == 4 {
            format!("{{{}}}", v.to_uppercase())
        } else {
            v.to_string()
        }
    };
    let mut inner = format!("<cookie page=\"{}\">", next_page.saturating_sub(1));
    for (c, first, last) in cols {
        inner.push_str(&format!(
            "<{c} last=\"{}\" first=\"{}\" />",
            xml::escape(&shown(last)),
            xml::escape(&shown(first))
        ));
    }
    inner.push_str("</cookie>");
    format!(
        "<cookie pagenumber=\"{next_page}\" pagingcookie=\"{}\" istracking=\"False\" />",
        enc(&enc(&inner))
    )
}

/// A `$skiptoken`: the page number it asks for and the inner cookie.
pub fn parse_outer(token: &str) -> Option<(usize, String)> {
    let el = xml::parse(token).ok()?;
    let page = el.attr("pagenumber")?.parse().ok()?;
    let inner = el.attr("pagingcookie")?;
    let once = crate::sim::odata::decode(inner);
    Some((page, crate::sim::odata::decode(&once)))
}

/// The `last` value of column `col` in an inner cookie (`<cookie page="1"><col last=... /></cookie>`),
/// braces stripped.
pub fn last_of(inner: &str, col: &str) -> Option<String> {
    let el = xml::parse(inner).ok()?;
    let c = el.children_named(col).next()?;
    Some(c.attr("last")?.trim_matches(['{', '}']).to_string())
}

/// Where the next page starts in `ids` (the ordered primary ids): after `last`, else by page
/// number.
pub fn resume(ids: &[String], last: Option<&str>, page: usize, size: usize) -> usize {
    last.and_then(|l| ids.iter().position(|id| id.eq_ignore_ascii_case(l)))
        .map_or(page.saturating_sub(1) * size, |i| i + 1)
        .min(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_round_trips_and_names_the_last_row_as_dataverse_does() {
        let id = "0a1b2c3d-0000-4000-8000-00000000beef";
        let c = cookie(
            2,
            &[
                ("accountnumber".into(), "US-1".into(), "US-50".into()),
                ("accountid".into(), id.into(), id.into()),
            ],
        );
        assert!(c.starts_with(
            "<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e"
        ));
        let (page, inner) = parse_outer(&c).unwrap();
        assert_eq!(page, 2);
        assert!(inner.starts_with("<cookie page=\"1\"><accountnumber last=\"US-50\""));
        assert_eq!(last_of(&inner, "accountid").unwrap(), id.to_uppercase());
        let ids = vec!["a".to_string(), id.to_string(), "c".to_string()];
        assert_eq!(resume(&ids, Some(&id.to_uppercase()), 2, 1), 2);
        assert_eq!(resume(&ids, Some("gone"), 2, 1), 1);
    }
}
