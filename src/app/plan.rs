//! `cutover plan RUNBOOK`: the execution order and the critical path, estimated per step kind or
//! (`--from-journal`) with the durations a rehearsal measured, against the freeze window.

use std::path::PathBuf;

use clap::Args;

use super::{OutputFormat, exit};
use crate::runbook::{self, Diagnostic, ProcessEnv, Runbook, load};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The runbook to plan.
    pub runbook: PathBuf,
    /// Replace estimates with the step durations measured in a journal's run (a rehearsal), and
    /// show where the plan would overrun the freeze window (exit 1 when it would).
    #[arg(long, value_name = "JOURNAL")]
    pub from_journal: Option<PathBuf>,
    /// The run of `--from-journal` to measure (id or unique prefix; default: the latest).
    #[arg(long, value_name = "ID", requires = "from_journal")]
    pub journal_run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// `cutover plan`.
pub fn run(args: &PlanArgs) -> i32 {
    let file = args.runbook.display().to_string();
    let text = match super::validate::read_runbook(&args.runbook) {
        Ok(t) => t,
        Err(d) => {
            eprintln!("{}", d.render(None));
            return exit::INVALID;
        }
    };
    let loaded = load(&text, &file);
    let diags = runbook::validate_loaded(&loaded, &file, &ProcessEnv, false);
    let (Some(rb), false) = (loaded.runbook, diags.iter().any(Diagnostic::is_error)) else {
        for d in &diags {
            eprintln!("{}", d.render(Some(&text)));
        }
        eprintln!("cannot plan: the runbook does not validate");
        return exit::INVALID;
    };
    let p = runbook::plan::plan(&rb);
    // Text only: the JSON form is read whole by tools, stderr included by some.
    let gateway = rb.gateway_envs();
    if !gateway.is_empty() && args.format != OutputFormat::Json {
        eprintln!(
            "note: {} (environment {})",
            runbook::model::GATEWAY_UNSUPPORTED,
            gateway.join(", ")
        );
    }
    if let Some(journal) = &args.from_journal {
        return plan_from_journal(args, journal, &rb, p);
    }
    if args.format == OutputFormat::Json {
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&p).unwrap_or_else(|_| "{}".into())
        );
    } else {
        super::out!("{}", runbook::plan::render_text(&p));
        super::out!("{}", runbook::plan::render_sizing(&p));
        super::out!("{}", runbook::plan::render_batch_windows(&p));
        let dir = args
            .runbook
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        super::out!("{}", packages_text(&rb, &dir));
    }
    exit::OK
}

/// The plan's package section: each `dmf.import`'s package, its version and hash, and its entities in import
/// order (ExecutionUnit/LevelInExecutionUnit/SequenceInLevel) with the map each stands for. Empty without imports.
pub fn packages_text(rb: &Runbook, dir: &std::path::Path) -> String {
    use crate::runbook::steps::dmf_import::{check_package, map_for_entity};
    use crate::runbook::{StepKind, validate::PackageFile};
    let clean = |s: &str| crate::util::inert_line(s).into_owned();
    let mut out = String::new();
    for step in rb.phases.iter().flat_map(|p| p.steps.iter().flatten()) {
        let StepKind::DmfImport(imp) = &step.kind else {
            continue;
        };
        if out.is_empty() {
            out.push_str("\nPackages (dmf.import, entities in import order: unit/level/sequence)\n");
        }
        let file = clean(&imp.package_file);
        let bytes = match crate::engine::runner::read_package(dir, &imp.package_file) {
            PackageFile::Bytes(b) => b,
            PackageFile::Missing => {
                out.push_str(&format!("  {}  {file}: missing\n", step.id));
                continue;
            }
            PackageFile::Unreadable(e) => {
                out.push_str(&format!("  {}  {file}: cannot be read: {}\n", step.id, clean(&e)));
                continue;
            }
        };
        let check = check_package(rb, imp, &bytes);
        let pinned = if imp.package_sha256.is_some() {
            " (pinned)"
        } else {
            ""
        };
        let Some(m) = &check.manifest else {
            out.push_str(&format!(
                "  {}  {file}  sha256 {}{pinned}: {}\n",
                step.id,
                check.sha256,
                clean(&check.errors().join("; "))
            ));
            continue;
        };
        out.push_str(&format!(
            "  {}  {file}  version {}  sha256 {}{pinned}\n",
            step.id,
            clean(m.version.as_deref().unwrap_or("(none in Manifest.xml)")),
            check.sha256
        ));
        for (i, e) in m.entities.iter().enumerate() {
            let map = map_for_entity(rb, &e.name).map_or_else(|| "no map".to_owned(), |m| format!("map {m}"));
            out.push_str(&format!(
                "    {:>2}. {:<32} {:<9} {map}\n",
                i + 1,
                clean(&e.name),
                e.position()
            ));
        }
        for f in &check.findings {
            out.push_str(&format!(
                "    {}: {}\n",
                if f.error { "error" } else { "warning" },
                clean(&f.message)
            ));
        }
    }
    out
}

/// `plan --from-journal`: the journal is read by the audit layer; this module only re-plans with
/// the durations it returns (seconds) and reports the freeze-window budget.
fn plan_from_journal(
    args: &PlanArgs,
    journal: &std::path::Path,
    rb: &Runbook,
    p: runbook::plan::Plan,
) -> i32 {
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
    let (p, budget) =
        runbook::plan::with_measured_from(Some(rb), p, &secs, window, &journal.display().to_string());
    if args.format == OutputFormat::Json {
        let value = serde_json::json!({"plan": p, "budget": budget});
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into())
        );
    } else {
        super::out!("{}", runbook::plan::render_text(&p));
        super::out!("{}", runbook::plan::render_sizing(&p));
        super::out!("{}", runbook::plan::render_batch_windows(&p));
        super::out!("{}", runbook::plan::render_budget(&budget));
    }
    // An overrun is a finding a rehearsal script must not miss.
    if budget.past_window.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}
