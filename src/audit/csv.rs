//! The evidence pack as CSV: one RFC 4180 file per table (CRLF line ends, a header row, fields
//! quoted when they hold a comma, a quote, CR or LF, quotes doubled). Every row starts with a
//! `verification` column, `verified` or `UNVERIFIED`, so a sheet copied out of context still says so.

use std::path::Path;

use super::AuditError;
use super::model::Report;
use super::tables::{self, Format};

/// The files written, in order.
pub const FILES: [&str; 16] = [
    "runs.csv",
    "phases.csv",
    "waves.csv",
    "steps.csv",
    "decisions.csv",
    "gates.csv",
    "parity.csv",
    "errors.csv",
    "alerts.csv",
    "installs.csv",
    "preflights.csv",
    "preflight_checks.csv",
    "rows.csv",
    "row_sample.csv",
    "sample_keys.csv",
    "errors_resolved.csv",
];

/// One field, quoted when RFC 4180 requires it. A cell a spreadsheet would read as a formula (starting
/// with `=`, `+`, `-`, `@`, a tab or a CR) gets a leading `'`, unless it is a plain number or a lone `-`.
pub fn field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s != "-" && s.parse::<f64>().is_err();
    let neutral;
    let s = if formula {
        neutral = format!("'{s}");
        neutral.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A table's text: header, then rows, each prefixed with the verification column.
fn table(verified: bool, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mark = if verified { "verified" } else { "UNVERIFIED" };
    let mut out = String::new();
    out.push_str("verification,");
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for r in rows {
        out.push_str(mark);
        for f in r {
            out.push(',');
            out.push_str(&field(&f));
        }
        out.push_str("\r\n");
    }
    out
}

/// Every table as (file name, contents), from the shared definitions in [`super::tables`].
pub fn render(r: &Report) -> Vec<(&'static str, String)> {
    let v = r.verification.verified;
    let all = [
        tables::runs(r),
        tables::phases(r),
        tables::waves(r),
        tables::steps(r),
        tables::decisions(r),
        tables::gates(r),
        tables::parity(r),
        tables::errors(r),
        tables::alerts(r),
        tables::installs(r),
        tables::preflights(r),
        tables::preflight_checks(r, Format::Csv),
        tables::rows(r),
        tables::row_sample(r),
        tables::sample_keys(r),
        tables::errors_resolved(r),
    ];
    FILES
        .into_iter()
        .zip(all)
        .map(|(name, t)| (name, table(v, &t.headers(Format::Csv), t.rows(Format::Csv))))
        .collect()
}

/// Write every table into `dir` (created when missing).
pub fn write(r: &Report, dir: &Path) -> Result<(), AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for (name, text) in render(r) {
        std::fs::write(dir.join(name), text).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_rfc_4180_requires() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn every_row_carries_the_verification_mark() {
        let t = table(false, &["a", "b"], [vec!["1".into(), "x,y".into()]]);
        assert_eq!(t, "verification,a,b\r\nUNVERIFIED,1,\"x,y\"\r\n");
    }
}
