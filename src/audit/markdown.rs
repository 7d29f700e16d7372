//! The evidence pack as Markdown: a summary list, then one table per section. An unverified
//! journal puts an UNVERIFIED banner at the top and in every section heading.

use std::fmt::Write as _;

use super::model::Report;
use super::text::{duration, signed_duration};

/// Escape a table cell: pipes, newlines and backslashes would break the row.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_owned(), cell)
}

fn opt_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), duration)
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
    let summary = [
        ("Run", run.run_id.clone()),
        ("Runbook", format!("{} {}", run.runbook, run.version)),
        ("Runbook sha256", format!("`{}`", run.runbook_sha256)),
        ("Operators", run.operators.join(", ")),
        ("Hosts", run.hosts.join(", ")),
        ("Started", opt(run.started_at.as_deref())),
        ("Finished", opt(run.finished_at.as_deref())),
        (
            "Outcome",
            match &run.outcome_detail {
                Some(d) => format!("{}: {}", run.outcome, d),
                None => run.outcome.clone(),
            },
        ),
        ("Elapsed", duration(run.elapsed_ms)),
        (
            "Freeze window",
            match (&run.freeze_window_start, &run.freeze_window_end) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                _ => "-".into(),
            },
        ),
        (
            "Resumes / lease take-overs",
            format!("{} / {}", run.resumes, run.lease_takeovers),
        ),
        (
            "Events",
            format!(
                "{} (ids {} to {})",
                run.events, run.first_event_id, run.last_event_id
            ),
        ),
        (
            "Run's last event hash",
            format!("`{}`", opt(run.last_event_hash.as_deref())),
        ),
        (
            "Journal chain head hash",
            format!("`{}`", opt(run.chain_head_hash.as_deref())),
        ),
    ];
    table(
        &mut out,
        &["Field", "Value"],
        summary.iter().map(|(k, v)| vec![(*k).to_owned(), cell(v)]),
    );
    if r.runs.len() > 1 {
        h2(&mut out, "Runs in this journal");
        table(
            &mut out,
            &["Run", "Runbook", "Operator", "Started", "Outcome", "Events", ""],
            r.runs.iter().map(|x| {
                vec![
                    cell(&x.run_id),
                    cell(&format!("{} {}", x.runbook, x.version)),
                    cell(&x.operator),
                    x.started_at.clone(),
                    x.outcome.clone(),
                    x.events.to_string(),
                    if x.selected {
                        "this report".into()
                    } else {
                        String::new()
                    },
                ]
            }),
        );
    }
    h2(&mut out, "Planned vs actual by phase");
    table(
        &mut out,
        &[
            "Phase", "Steps", "Status", "Started", "Finished", "Planned", "Actual", "Over",
        ],
        r.phases.iter().map(|p| {
            vec![
                cell(&p.phase),
                p.steps.to_string(),
                p.status.clone(),
                opt(p.started_at.as_deref()),
                opt(p.finished_at.as_deref()),
                duration(p.planned_ms),
                opt_ms(p.actual_ms),
                p.over_ms.map_or_else(|| "-".into(), signed_duration),
            ]
        }),
    );
    h2(&mut out, "Waves");
    table(
        &mut out,
        &[
            "Phase", "Wave", "Maps", "Started", "Finished", "Planned", "Actual", "Gate",
        ],
        r.waves.iter().map(|w| {
            vec![
                cell(&w.phase),
                cell(&w.wave),
                cell(&w.maps.join(", ")),
                opt(w.started_at.as_deref()),
                opt(w.finished_at.as_deref()),
                duration(w.planned_ms),
                opt_ms(w.actual_ms),
                w.gate_passed
                    .map_or("-", |p| if p { "passed" } else { "failed" })
                    .into(),
            ]
        }),
    );
    h2(&mut out, "Timeline of steps");
    table(
        &mut out,
        &[
            "Step", "Phase", "Wave", "Kind", "Status", "Attempts", "Started", "Finished", "Duration",
            "Estimate",
        ],
        r.steps.iter().map(|s| {
            let status = match &s.detail {
                Some(d) => format!("{}: {}", s.status, d),
                None => s.status.clone(),
            };
            vec![
                cell(&s.id),
                cell(&s.phase),
                opt(s.wave.as_deref()),
                cell(&s.kind),
                cell(&status),
                s.attempts.to_string(),
                opt(s.first_started_at.as_deref()),
                opt(s.finished_at.as_deref()),
                opt_ms(s.duration_ms),
                duration(s.estimate_ms),
            ]
        }),
    );
    h2(&mut out, "Operator decisions");
    table(
        &mut out,
        &["Time", "Event", "Operator", "Action", "Step", "Asked", "Reason"],
        r.decisions.iter().map(|d| {
            vec![
                d.at.clone(),
                d.event_id.to_string(),
                cell(&d.operator),
                d.action.clone(),
                opt(d.step.as_deref()),
                opt(d.asked.as_deref()),
                opt(d.reason.as_deref()),
            ]
        }),
    );
    h2(&mut out, "Gates");
    if r.gates_total > r.gates.len() as u64 {
        let _ = writeln!(
            out,
            "The newest {} of {} gate verdicts.\n",
            r.gates.len(),
            r.gates_total
        );
    }
    table(
        &mut out,
        &[
            "Time",
            "Gate",
            "Wave",
            "Verdict",
            "Map",
            "Company",
            "Source",
            "Target",
            "Difference",
            "Allowed",
            "Errors",
        ],
        r.gates.iter().flat_map(|g| {
            let head = vec![
                g.at.clone(),
                cell(&g.step),
                opt(g.wave.as_deref()),
                if g.passed {
                    "passed".to_owned()
                } else {
                    "FAILED".to_owned()
                },
            ];
            if g.counts.is_empty() {
                let mut row = head;
                row.extend(std::iter::repeat_n("-".to_owned(), 7));
                return vec![row];
            }
            g.counts
                .iter()
                .map(|c| {
                    let mut row = head.clone();
                    row.extend([
                        format!("{}{}", cell(&c.map), if c.failed { " (failed)" } else { "" }),
                        opt(c.company.as_deref()),
                        c.source.to_string(),
                        c.target.to_string(),
                        c.difference.to_string(),
                        c.allowed.to_string(),
                        c.errors.to_string(),
                    ]);
                    row
                })
                .collect()
        }),
    );
    h2(&mut out, "Parity before and after");
    table(
        &mut out,
        &[
            "Map",
            "Company",
            "First sample",
            "Before (src/tgt/diff)",
            "Last sample",
            "After (src/tgt/diff)",
            "Allowed",
            "Status",
            "Samples",
        ],
        r.parity.iter().map(|p| {
            vec![
                cell(&p.map),
                opt(p.company.as_deref()),
                p.first_at.clone(),
                format!("{} / {} / {}", p.first_source, p.first_target, p.first_difference),
                p.last_at.clone(),
                format!("{} / {} / {}", p.last_source, p.last_target, p.last_difference),
                p.allowed.to_string(),
                p.status.clone(),
                p.samples.to_string(),
            ]
        }),
    );
    h2(&mut out, "Error queue totals");
    let _ = writeln!(out, "{} entries seen during the run.\n", r.errors_seen_total);
    table(
        &mut out,
        &["Map", "Category", "Count", "Source"],
        r.errors.iter().map(|e| {
            vec![
                cell(&e.map),
                cell(&e.category),
                e.count.to_string(),
                e.source.clone(),
            ]
        }),
    );
    h2(&mut out, "Alerts");
    table(
        &mut out,
        &["Time", "Severity", "Map", "Message"],
        r.alerts.iter().map(|a| {
            vec![
                a.at.clone(),
                a.severity.clone(),
                opt(a.map.as_deref()),
                cell(&a.message),
            ]
        }),
    );
    h2(&mut out, "DMF install records");
    table(
        &mut out,
        &[
            "Time",
            "Step",
            "Package",
            "Version",
            "sha256",
            "Execution",
            "Result",
        ],
        r.installs.iter().map(|i| {
            vec![
                i.at.clone(),
                cell(&i.step),
                cell(&i.package),
                cell(&i.version),
                format!("`{}`", cell(&i.sha256)),
                cell(&i.execution_id),
                cell(&i.result),
            ]
        }),
    );
    let _ = writeln!(out, "_Generated by {} from a read-only journal._", r.generated_by);
    out
}
