//! Runbook: YAML text → typed model → diagnostics and plan. Pure: no I/O beyond taking a `&str`
//! (the `cmd_*` entry points read the files and print).

pub mod diag;
pub mod duration;
pub mod kinds;
pub mod load;
pub mod model;
pub mod plan;
pub mod schema;
mod structure;
pub mod tree;
mod typed_error;
pub mod validate;
mod validate_auth;
mod validate_flow;
pub mod vars;

pub use diag::{Diagnostic, Severity};
pub use load::{Loaded, load};
pub use model::*;
pub use validate::{validate, validate_loaded};
pub use vars::{EnvLookup, ProcessEnv};

use crate::cli::{OutputFormat, PlanArgs, ValidateArgs};
use crate::exit;

/// `cutover validate`: every diagnostic of every file on stderr (or a JSON array on stdout), then a
/// summary. Exit 0 when no file has errors (warnings allowed), 2 otherwise.
pub fn cmd_validate(args: &ValidateArgs) -> i32 {
    use std::io::IsTerminal;
    let colour = crate::cli::colour_enabled() && std::io::stderr().is_terminal();
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
        diags.extend(validate::package_diagnostics(&loaded, &file, &|p| {
            dir.join(p).is_file()
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
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into())
        );
    } else {
        for (d, text) in &all {
            eprintln!("{}", d.render(text.as_deref(), colour));
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
fn read_runbook(path: &std::path::Path) -> Result<String, Diagnostic> {
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
    if meta.len() > load::MAX_FILE_BYTES as u64 {
        return Err(fail(
            "file-too-large",
            format!(
                "the file is {} bytes; a runbook may be at most {} bytes",
                meta.len(),
                load::MAX_FILE_BYTES
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail("unreadable-file", format!("cannot read the file: {e}")))?;
    // Binary garbage is not UTF-8; let the parser point at it rather than refusing without a position.
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// `cutover plan`.
pub fn cmd_plan(args: &PlanArgs) -> i32 {
    let file = args.runbook.display().to_string();
    let text = match read_runbook(&args.runbook) {
        Ok(t) => t,
        Err(d) => {
            eprintln!("{}", d.render(None, false));
            return exit::INVALID;
        }
    };
    let loaded = load(&text, &file);
    let diags = validate::validate_loaded(&loaded, &file, &ProcessEnv, false);
    let (Some(rb), false) = (loaded.runbook, diags.iter().any(Diagnostic::is_error)) else {
        for d in &diags {
            eprintln!("{}", d.render(Some(&text), false));
        }
        eprintln!("cannot plan: the runbook does not validate");
        return exit::INVALID;
    };
    let p = plan::plan(&rb);
    if let Some(journal) = &args.from_journal {
        return plan_from_journal(args, journal, &rb, p);
    }
    if args.format == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&p).unwrap_or_else(|_| "{}".into())
        );
    } else {
        print!("{}", plan::render_text(&p));
    }
    exit::OK
}

/// `plan --from-journal`: the journal is read by the audit layer; this module only re-plans with
/// the durations it returns (seconds) and reports the freeze-window budget.
fn plan_from_journal(args: &PlanArgs, journal: &std::path::Path, rb: &Runbook, p: plan::Plan) -> i32 {
    let measured =
        match crate::audit::durations::measured_step_durations(journal, args.journal_run.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("cutover plan: {}: {e}", journal.display());
                return exit::INVALID;
            }
        };
    let secs = measured
        .into_iter()
        .map(|(id, ms)| (id, ms.div_ceil(1000)))
        .collect();
    let window = rb
        .freeze_window
        .as_ref()
        .map(|w| u64::try_from((w.end.at() - w.start.at()).num_seconds()).unwrap_or(0));
    let (p, budget) = plan::with_measured(p, &secs, window);
    if args.format == OutputFormat::Json {
        let value = serde_json::json!({"plan": p, "budget": budget});
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
        );
    } else {
        print!("{}", plan::render_text(&p));
        print!("{}", plan::render_budget(&budget));
    }
    exit::OK
}
