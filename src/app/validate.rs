//! `cutover validate RUNBOOK...`: every diagnostic of every file on stderr (coloured on a terminal
//! unless `NO_COLOR`), or a JSON array on stdout; exit 0 when no file has errors, 2 otherwise.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, exit};
use crate::runbook::{self, Diagnostic, ProcessEnv, Severity, Styles, load, validate_loaded};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Runbook files to check.
    #[arg(required = true)]
    pub runbooks: Vec<PathBuf>,
    /// Treat unset `${VAR}`s as errors (as `run` does).
    #[arg(long)]
    pub strict: bool,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// The terminal's colours for a diagnostic: bold location, red errors, yellow warnings, cyan hints.
const ANSI: Styles = Styles {
    bold: "\x1b[1m",
    error: "\x1b[31m",
    warning: "\x1b[33m",
    hint: "\x1b[36m",
    reset: "\x1b[0m",
};

/// `cutover validate`: every diagnostic of every file on stderr (or a JSON array on stdout), then a
/// summary. Exit 0 when no file has errors (warnings allowed), 2 otherwise.
pub fn run(args: &ValidateArgs) -> i32 {
    let styles = if super::colour_enabled() && std::io::stderr().is_terminal() {
        ANSI
    } else {
        Styles::PLAIN
    };
    let mut all = Vec::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
    for path in &args.runbooks {
        let file = path.display().to_string();
        let text = match read_runbook(path) {
            Ok(t) => t,
            Err(d) => {
                errors += 1;
                all.push((d, None));
                continue;
            }
        };
        let loaded = load(&text, &file);
        let mut diags = validate_loaded(&loaded, &file, &ProcessEnv, args.strict);
        let dir = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        diags.extend(runbook::validate::package_diagnostics(&loaded, &file, &|p| {
            crate::engine::runner::read_package(&dir, p)
        }));
        for d in diags {
            if d.is_error() {
                errors += 1;
            } else {
                warnings += 1;
            }
            all.push((d, Some(text.clone())));
        }
    }
    if args.format == OutputFormat::Json {
        let list: Vec<&Diagnostic> = all.iter().map(|(d, _)| d).collect();
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into())
        );
    } else {
        for (d, text) in &all {
            eprintln!("{}", d.render_styled(text.as_deref(), &styles));
        }
        let n = args.runbooks.len();
        let files = if n == 1 {
            "1 runbook".to_owned()
        } else {
            format!("{n} runbooks")
        };
        if errors == 0 {
            eprintln!(
                "{files} valid ({warnings} warning{})",
                if warnings == 1 { "" } else { "s" }
            );
        } else {
            eprintln!(
                "{files} checked: {errors} error{}, {warnings} warning{}",
                plural(errors),
                plural(warnings)
            );
        }
    }
    if errors == 0 { exit::OK } else { exit::INVALID }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Reads a runbook file, refusing huge files before reading them whole.
pub(super) fn read_runbook(path: &std::path::Path) -> Result<String, Diagnostic> {
    let file = path.display().to_string();
    let fail = |code: &'static str, message: String| Diagnostic {
        file: file.clone(),
        line: 0,
        column: 0,
        severity: Severity::Error,
        code,
        message,
        hint: None,
    };
    let meta =
        std::fs::metadata(path).map_err(|e| fail("unreadable-file", format!("cannot read the file: {e}")))?;
    if meta.len() > runbook::load::MAX_FILE_BYTES as u64 {
        return Err(fail(
            "file-too-large",
            format!(
                "the file is {} bytes; a runbook may be at most {} bytes",
                meta.len(),
                runbook::load::MAX_FILE_BYTES
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail("unreadable-file", format!("cannot read the file: {e}")))?;
    // Binary garbage is not UTF-8; let the parser point at it rather than refusing without a position.
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}
