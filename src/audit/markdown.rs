//! The evidence pack as Markdown: a summary list, then one table per section. An unverified
//! journal puts an UNVERIFIED banner at the top and in every section heading.

use std::fmt::Write as _;

use super::model::Report;
use super::tables::{self, Format, Table};

/// Escape a table cell: pipes, newlines and backslashes would break the row; HTML (`<script>`) would
/// run in a viewer that renders it; control, escape and bidi characters are written as visible escapes
/// ([`crate::util::inert_line`]).
fn cell(s: &str) -> String {
    let one_line = s.replace(['\r', '\n'], " ");
    crate::util::inert_line(&one_line)
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A shared table in its Markdown form, every cell escaped.
fn put(out: &mut String, t: &Table) {
    let rows = t.rows(Format::Md);
    table(
        out,
        &t.headers(Format::Md),
        rows.iter().map(|r| r.iter().map(|c| cell(c)).collect()),
    );
}

fn table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    let mut any = false;
    for r in rows {
        any = true;
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    if !any {
        let _ = writeln!(
            out,
            "| {} |",
            head.iter().map(|_| "-").collect::<Vec<_>>().join(" | ")
        );
    }
    out.push('\n');
}

/// The banner an unverified report repeats on every section.
pub const UNVERIFIED: &str = "UNVERIFIED";

/// Render the report as Markdown.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let mark = if r.verification.verified {
        String::new()
    } else {
        format!(" ({UNVERIFIED})")
    };
    let h2 = |out: &mut String, title: &str| {
        let _ = writeln!(out, "## {title}{mark}\n");
    };
    let run = &r.run;
    let _ = writeln!(
        out,
        "# Cutover evidence pack: {} {}{mark}\n",
        cell(&run.runbook),
        cell(&run.version)
    );
    match &r.verification.failure {
        None => {
            let _ = writeln!(
                out,
                "Journal verified: {} events, chain head `{}` (event {}).\n",
                r.verification.events,
                r.verification.head_hash.as_deref().unwrap_or("-"),
                r.verification.head_event_id.unwrap_or(0)
            );
            let a = &r.verification.anchoring;
            let _ = writeln!(
                out,
                "Evidence: {}.{}\n",
                a.statement,
                super::text::checkpoint_keys(a)
            );
        }
        Some(f) => {
            let _ = writeln!(
                out,
                "> **{UNVERIFIED}**: the journal does not verify. Event {} ({}, seq {}): {}. Nothing below can be trusted as evidence.\n",
                f.event_id,
                f.run_id.as_deref().map_or_else(|| "no run".to_owned(), cell),
                f.seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                cell(&f.reason)
            );
        }
    }
    h2(&mut out, "Run summary");
    put(&mut out, &tables::summary(r));
    if r.runs.len() > 1 {
        h2(&mut out, "Runs in this journal");
        put(&mut out, &tables::runs(r));
    }
    h2(&mut out, "Preflight");
    if r.preflights.is_empty() {
        out.push_str("No preflight in this journal (run `cutover preflight RUNBOOK --journal JOURNAL` before the weekend).\n\n");
    } else {
        put(&mut out, &tables::preflights(r));
        let problems = tables::preflight_checks(r, tables::Format::Md);
        if problems.rows.is_empty() {
            out.push_str("Every check was ok.\n\n");
        } else {
            put(&mut out, &problems);
        }
    }
    h2(&mut out, "Planned vs actual by phase");
    put(&mut out, &tables::phases(r));
    h2(&mut out, "Waves");
    put(&mut out, &tables::waves(r));
    h2(&mut out, "Timeline of steps");
    put(&mut out, &tables::steps(r));
    h2(&mut out, "Operator decisions");
    put(&mut out, &tables::decisions(r));
    h2(&mut out, "Gates");
    if r.gates_total > r.gates.len() as u64 {
        let _ = writeln!(
            out,
            "The newest {} of {} gate verdicts.\n",
            r.gates.len(),
            r.gates_total
        );
    }
    put(&mut out, &tables::gates(r));
    h2(&mut out, "Parity before and after");
    put(&mut out, &tables::parity(r));
    if !r.rows.is_empty() {
        h2(&mut out, "Row-level parity");
        put(&mut out, &tables::rows(r));
        put(&mut out, &tables::row_sample(r));
    }
    h2(&mut out, "Dual-write error totals by source");
    let _ = writeln!(out, "{} entries seen during the run.\n", r.errors_seen_total);
    put(&mut out, &tables::errors(r));
    h2(&mut out, "Sample keys that differed");
    if r.sample_keys.is_empty() {
        out.push_str("No sampled key differed.\n\n");
    } else {
        if r.sample_keys_total > r.sample_keys.len() as u64 {
            let _ = writeln!(
                out,
                "The first {} of {} sampled keys that differed.\n",
                r.sample_keys.len(),
                r.sample_keys_total
            );
        }
        put(&mut out, &tables::sample_keys(r));
    }
    h2(&mut out, "Errors resolved during the run");
    if r.errors_resolved.is_empty() {
        out.push_str("No error seen during the run was gone from its source by the end.\n\n");
    } else {
        out.push_str(
            "Seen during the run, and absent from the last read of their source (a read that listed every entry it held).\n\n",
        );
        put(&mut out, &tables::errors_resolved(r));
    }
    h2(&mut out, "Alerts");
    put(&mut out, &tables::alerts(r));
    h2(&mut out, "DMF install records");
    put(&mut out, &tables::installs(r));
    if r.ownership.iter().any(|o| o.owner != "none") {
        h2(&mut out, "Ownership");
        put(&mut out, &tables::ownership(r));
    }
    if !r.automation.is_empty() {
        h2(&mut out, "Plug-ins and flows turned off");
        put(&mut out, &tables::automation(r));
    }
    if !r.batch_windows.is_empty() {
        h2(&mut out, "Maps paused for batch jobs");
        put(&mut out, &tables::batch_windows(r));
    }
    if r.package_installs.iter().any(|i| i.run_id != r.run.run_id) || !r.package_drift.is_empty() {
        h2(&mut out, "Package installs in this journal");
        put(&mut out, &tables::package_installs(r));
        for d in &r.package_drift {
            let vs: Vec<String> = d.versions.iter().map(|(e, v)| format!("{e} at {v}")).collect();
            let _ = writeln!(out, "Drift: {}: {}\n", d.package, vs.join(", "));
        }
    }
    if !r.downloads.is_empty() {
        h2(&mut out, "Exported packages kept");
        put(&mut out, &tables::downloads(r));
    }
    let _ = writeln!(out, "_Generated by {} from a read-only journal._", r.generated_by);
    out
}
