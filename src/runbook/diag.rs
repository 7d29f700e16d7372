//! Diagnostics: what validation reports, where (1-based line and column of the offending node), with a
//! stable kebab-case `code` that tests, tools and the JSON output rely on.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// What [`Diagnostic::render_styled`] wraps around the location, the severity and the hint: a
/// prefix each, and `reset` after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Styles {
    pub bold: &'static str,
    pub error: &'static str,
    pub warning: &'static str,
    pub hint: &'static str,
    pub reset: &'static str,
}

impl Styles {
    /// No styling: plain text.
    pub const PLAIN: Styles = Styles {
        bold: "",
        error: "",
        warning: "",
        hint: "",
        reset: "",
    };
}

/// One problem found in a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 only when the problem concerns the whole file (e.g. `file-too-large`).
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub severity: Severity,
    /// Stable kebab-case code, e.g. `dependency-order`.
    pub code: &'static str,
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `FILE:LINE:COL: error: MESSAGE`, then the hint and (with `source`) the line with a caret.
    pub fn render(&self, source: Option<&str>) -> String {
        self.render_styled(source, &Styles::PLAIN)
    }

    /// [`Diagnostic::render`] with each part wrapped in the caller's styles (the edge passes a
    /// terminal's colours; this module knows no terminal).
    pub fn render_styled(&self, source: Option<&str>, styles: &Styles) -> String {
        let Styles {
            bold,
            error,
            warning,
            hint: cyan,
            reset,
        } = *styles;
        let sev_colour = if self.is_error() { error } else { warning };
        let mut out = format!(
            "{bold}{}:{}:{}:{reset} {sev_colour}{bold}{}:{reset} {}",
            self.file,
            self.line,
            self.column,
            self.severity.as_str(),
            self.message
        );
        if let Some(hint) = &self.hint {
            let _ = write!(out, "\n    {cyan}hint:{reset} {hint}");
        }
        let text_line = source.and_then(|s| {
            usize::try_from(self.line)
                .ok()
                .and_then(|l| l.checked_sub(1))
                .and_then(|i| s.lines().nth(i))
        });
        if let Some(text) = text_line {
            // Show printable text only: a line of binary garbage would wreck the terminal.
            let shown: String = text
                .chars()
                .take(200)
                .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                .collect();
            let pad: String = shown
                .chars()
                .take(usize::try_from(self.column.saturating_sub(1)).unwrap_or(0))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(
                out,
                "\n     |\n{:>4} | {shown}\n     | {pad}{sev_colour}^{reset}",
                self.line
            );
        }
        out
    }
}

/// Sorts by position, then code, and drops duplicates (the same finding reached by two passes: same
/// position, code and message).
pub fn sort_and_dedup(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| (a.line, a.column, a.code, &a.message).cmp(&(b.line, b.column, b.code, &b.message)));
    diags.dedup_by(|a, b| (a.line, a.column, a.code, &a.message) == (b.line, b.column, b.code, &b.message));
}

/// The closest candidate by edit distance, when it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("dmf.exprot", ["dmf.export", "dmf.import"]),
            Some("dmf.export")
        );
        assert_eq!(
            did_you_mean("dependson", ["depends_on", "companies"]),
            Some("depends_on")
        );
        assert_eq!(did_you_mean("zzzzzz", ["manual", "wait"]), None);
    }

    #[test]
    fn renders_position_hint_and_caret() {
        let d = Diagnostic {
            file: "r.yaml".into(),
            line: 2,
            column: 3,
            severity: Severity::Error,
            code: "x",
            message: "bad".into(),
            hint: Some("fix it".into()),
        };
        let out = d.render(Some("a: 1\nb: 2\n"));
        assert!(
            out.starts_with("r.yaml:2:3: error: bad\n    hint: fix it"),
            "{out}"
        );
        assert!(out.ends_with("   2 | b: 2\n     |   ^"), "{out}");
    }
}
