//! Loading: text → (positional tree, typed model) plus the diagnostics of getting there.
//!
//! Two passes over the same text, both through serde-saphyr with the same budget:
//! 1. untyped ([`super::tree`]): every node with its position; finds all duplicate keys;
//! 2. typed ([`Runbook`]): `deny_unknown_fields` everywhere. serde stops at the first structural error,
//!    so when it fails the tree is checked against the schema ([`super::structure`]) for every unknown
//!    field and kind, missing field and wrong type at once; semantic validation needs the typed model,
//!    so it runs once the structure is right.
//!
//! Hostile input is refused before or during parsing: files over [`MAX_FILE_BYTES`] are not parsed,
//! and the budget caps nesting depth, aliases (billion laughs) and nodes.

use serde_saphyr::{Budget, DuplicateKeyPolicy, Options};

use super::diag::{Diagnostic, Severity};
use super::model::Runbook;
use super::tree::{Node, Pos, Value};
use super::typed_error;

/// Largest runbook accepted: 4 MiB (a 10,000-step runbook is about 1.5 MiB).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting accepted; a real runbook needs about 8 levels.
pub const MAX_DEPTH: usize = 48;

/// The outcome of loading a runbook: the model if it parsed, and what went wrong.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub runbook: Option<Runbook>,
    /// The positional tree, when the YAML parsed.
    pub tree: Option<Node>,
    pub diagnostics: Vec<Diagnostic>,
}

fn options(duplicates: DuplicateKeyPolicy) -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_nodes = 2_000_000;
    budget.max_events = 4_000_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 4 * 1024 * 1024;
    budget.max_documents = 1;
    let mut opts = Options::default();
    opts.budget = Some(budget);
    opts.duplicate_keys = duplicates;
    // Billion laughs: an alias may replay at most this many events in total (a runbook needs none).
    opts.alias_limits.max_total_replayed_events = 20_000;
    opts.alias_limits.max_replay_stack_depth = 16;
    opts.with_snippet = false;
    #[allow(clippy::needless_update)]
    {
        opts.emit_comments = false;
    }
    opts
}

pub(crate) fn diag(
    file: &str,
    pos: Pos,
    severity: Severity,
    code: &'static str,
    message: String,
) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        severity,
        code,
        message,
        hint: None,
    }
}

/// Parses `text` (the contents of `file`, used in diagnostics). Never panics; every problem is a diagnostic.
pub fn load(text: &str, file: &str) -> Loaded {
    let mut out = Loaded {
        runbook: None,
        tree: None,
        diagnostics: Vec::new(),
    };
    let mut push = |d: Diagnostic| out.diagnostics.push(d);
    if text.len() > MAX_FILE_BYTES {
        let mut d = diag(
            file,
            Pos { line: 1, column: 1 },
            Severity::Error,
            "file-too-large",
            format!(
                "the file is {} bytes; a runbook may be at most {MAX_FILE_BYTES} bytes",
                text.len()
            ),
        );
        d.hint = Some("a runbook this size is almost certainly not a runbook; check the file name".into());
        push(d);
        return out;
    }
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        let mut d = diag(
            file,
            Pos { line: 1, column: 1 },
            Severity::Error,
            "empty-file",
            "the runbook is empty".into(),
        );
        d.hint = Some("start from runbooks/demo.yaml; a runbook needs `runbook`, `version`, `environments` and `phases`".into());
        push(d);
        return out;
    }
    let tree =
        match serde_saphyr::from_str_with_options::<Node>(text, options(DuplicateKeyPolicy::PassThrough)) {
            Ok(tree) => tree,
            Err(e) => {
                // A tab where indentation is expected is the usual cause of a syntax error in a hand-edited
                // file; only then is the plainer message worth giving (tabs inside scalars are legal).
                let mut d =
                    tab_indentation(text, file).unwrap_or_else(|| typed_error::classify(&e, None, file));
                flow_variable_hint(text, &mut d);
                push(d);
                return out;
            }
        };
    if !matches!(tree.value, Value::Map(_)) {
        let mut d = diag(
            file,
            tree.pos,
            Severity::Error,
            "not-a-mapping",
            "a runbook is a mapping of `runbook`, `version`, `environments`, `phases`, ...".into(),
        );
        d.hint = Some("the top level must be `key: value` lines starting in column 1".into());
        push(d);
        out.tree = Some(tree);
        return out;
    }
    let duplicates = duplicate_keys(&tree, file);
    let had_duplicates = !duplicates.is_empty();
    out.diagnostics.extend(duplicates);

    let policy = if had_duplicates {
        DuplicateKeyPolicy::LastWins
    } else {
        DuplicateKeyPolicy::Error
    };
    match serde_saphyr::from_str_with_options::<Runbook>(text, options(policy)) {
        Ok(mut rb) => {
            // serde grows each list by doubling: a phase of 10,000 steps would keep room for 16,384
            // (240 bytes each) for the whole run.
            for p in &mut rb.phases {
                if let Some(s) = p.steps.as_mut() {
                    s.shrink_to_fit();
                }
            }
            out.runbook = Some(rb);
        }
        Err(e) => {
            // serde stops at the first structural error, and may place it on the key after the
            // value it is about: the structural check finds every one at its own node. The typed
            // finding is kept only when the check found nothing of its kind at or before it.
            let typed = typed_error::classify(&e, Some(&tree), file);
            let found = super::structure::check(&tree, file);
            let covered = found
                .iter()
                .any(|d| d.code == typed.code && (d.line, d.column) <= (typed.line, typed.column));
            if !covered {
                out.diagnostics.push(typed);
            }
            out.diagnostics.extend(found);
        }
    }
    out.tree = Some(tree);
    out
}

/// `{ secret: ${X} }` is the classic trap: inside a flow mapping `{` and `}` end a plain value.
fn flow_variable_hint(text: &str, d: &mut Diagnostic) {
    let line = usize::try_from(d.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|i| text.lines().nth(i));
    if d.code == "yaml-syntax" && line.is_some_and(|l| l.contains('{') && l.contains("${")) {
        d.hint = Some(
            "inside `{ ... }` a `${VAR}` must be quoted (`\"${VAR}\"`), or write the mapping in block style"
                .into(),
        );
    }
}

/// YAML forbids tabs for indentation; say so plainly, at the first offending line.
fn tab_indentation(text: &str, file: &str) -> Option<Diagnostic> {
    let mut in_block_scalar = false;
    for (i, line) in text.lines().enumerate() {
        let indent: String = line.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
        let rest = &line[indent.len()..];
        if in_block_scalar && (indent.is_empty() && !rest.is_empty()) {
            in_block_scalar = false;
        }
        if !in_block_scalar && rest.trim_end().ends_with(['|', '>']) {
            in_block_scalar = true;
            continue;
        }
        if in_block_scalar || rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if let Some(col) = indent.find('\t') {
            let mut d = diag(
                file,
                Pos {
                    line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    column: u32::try_from(col + 1).unwrap_or(1),
                },
                Severity::Error,
                "tab-indentation",
                "a tab is used for indentation; YAML allows only spaces".into(),
            );
            d.hint = Some("replace the tabs with spaces (two per level is usual)".into());
            return Some(d);
        }
    }
    None
}

/// Every repeated key in every mapping (YAML requires unique keys; serde would keep one silently).
fn duplicate_keys(tree: &Node, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    tree.walk(&mut |node, _| {
        let entries = node.entries();
        for (i, (k, _)) in entries.iter().enumerate() {
            let Some(name) = k.as_str() else { continue };
            if let Some((first, _)) = entries[..i].iter().find(|(p, _)| p.as_str() == Some(name)) {
                let mut d = diag(
                    file,
                    k.pos,
                    Severity::Error,
                    "duplicate-key",
                    format!("duplicate key `{name}` (first at line {})", first.pos.line),
                );
                d.hint = Some("YAML keys must be unique in a mapping; merge the two or rename one".into());
                out.push(d);
            }
        }
    });
    out
}
