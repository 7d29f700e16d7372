//! The evidence pack as ONE self-contained HTML file: inline CSS, inline SVG charts (parity drift
//! per map over time, error-queue entries over time), no script, no font, no URL of any kind, so
//! it opens the same offline in ten years. An unverified journal gets a red UNVERIFIED banner at
//! the top and on every section.

use std::fmt::Write as _;

use super::model::{Report, Series};
use super::svg;
use super::text::{duration, signed_duration};

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body{font-family:sans-serif;margin:24px;color:#1d1d24;background:#fff;max-width:1180px}
h1{font-size:24px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde}
table{border-collapse:collapse;width:100%;font-size:12px;margin:4px 0 8px}
th,td{border:1px solid #dde;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f6}tr:nth-child(even) td{background:#fafafc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17702d;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.banner{background:#b00020;color:#fff;padding:10px 14px;font-weight:bold;margin:8px 0}
.verified{background:#e8f5ec;border:1px solid #17702d;padding:8px 12px;margin:8px 0}
.tag{background:#b00020;color:#fff;font-size:12px;padding:1px 6px;margin-left:8px;vertical-align:middle}
.mono{font-family:monospace;word-break:break-all}
.chart{width:100%;height:auto;display:block}.tick{font-size:11px;fill:#555}.muted{fill:#888}
.legend{list-style:none;padding:0;margin:4px 0 12px;font-size:12px}
.legend li{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
";

struct Page {
    out: String,
    unverified: bool,
}

impl Page {
    fn h2(&mut self, title: &str) {
        let tag = if self.unverified {
            r#"<span class="tag">UNVERIFIED</span>"#
        } else {
            ""
        };
        let _ = write!(self.out, "<h2>{}{tag}</h2>", esc(title));
    }

    /// A table; `num` marks which columns are numbers (right-aligned).
    fn table(&mut self, head: &[&str], num: &[usize], rows: impl IntoIterator<Item = Vec<String>>) {
        self.out.push_str("<table><thead><tr>");
        for h in head {
            let _ = write!(self.out, "<th>{}</th>", esc(h));
        }
        self.out.push_str("</tr></thead><tbody>");
        let mut any = false;
        for r in rows {
            any = true;
            self.out.push_str("<tr>");
            for (i, c) in r.iter().enumerate() {
                let class = if num.contains(&i) { r#" class="num""# } else { "" };
                let _ = write!(self.out, "<td{class}>{}</td>", esc(c));
            }
            self.out.push_str("</tr>");
        }
        if !any {
            let _ = write!(self.out, r#"<tr><td colspan="{}">none</td></tr>"#, head.len());
        }
        self.out.push_str("</tbody></table>");
    }
}

fn o(s: Option<&str>) -> String {
    s.unwrap_or("-").to_owned()
}

fn oms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), duration)
}

/// Render the report as one HTML document.
pub fn render(r: &Report) -> String {
    let unverified = !r.verification.verified;
    let run = &r.run;
    let mut p = Page {
        out: String::with_capacity(64 * 1024),
        unverified,
    };
    let _ = write!(
        p.out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}Cutover evidence: {} {}</title><style>{CSS}</style></head><body>",
        if unverified { "UNVERIFIED " } else { "" },
        esc(&run.runbook),
        esc(&run.version)
    );
    let _ = write!(
        p.out,
        "<h1>Cutover evidence pack: {} {}</h1>",
        esc(&run.runbook),
        esc(&run.version)
    );
    match &r.verification.failure {
        Some(f) => {
            let _ = write!(
                p.out,
                r#"<div class="banner">UNVERIFIED: the journal does not verify. Event {} (run {}, seq {}): {}. Nothing in this report can be trusted as evidence.</div>"#,
                f.event_id,
                esc(f.run_id.as_deref().unwrap_or("-")),
                f.seq.map_or_else(|| "-".into(), |s| s.to_string()),
                esc(&f.reason)
            );
        }
        None => {
            let _ = write!(
                p.out,
                r#"<div class="verified">Journal verified: {} events; chain head <span class="mono">{}</span> (event {}).</div>"#,
                r.verification.events,
                esc(r.verification.head_hash.as_deref().unwrap_or("-")),
                r.verification.head_event_id.unwrap_or(0)
            );
        }
    }
    p.h2("Run summary");
    let outcome = match &run.outcome_detail {
        Some(d) => format!("{}: {d}", run.outcome),
        None => run.outcome.clone(),
    };
    let freeze = match (&run.freeze_window_start, &run.freeze_window_end) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "-".into(),
    };
    let summary = vec![
        vec!["Run".into(), run.run_id.clone()],
        vec!["Runbook".into(), format!("{} {}", run.runbook, run.version)],
        vec!["Runbook sha256".into(), run.runbook_sha256.clone()],
        vec!["Operators".into(), run.operators.join(", ")],
        vec!["Hosts".into(), run.hosts.join(", ")],
        vec!["Started".into(), o(run.started_at.as_deref())],
        vec!["Finished".into(), o(run.finished_at.as_deref())],
        vec!["Outcome".into(), outcome],
        vec!["Elapsed".into(), duration(run.elapsed_ms)],
        vec!["Freeze window".into(), freeze],
        vec![
            "Resumes / lease take-overs".into(),
            format!("{} / {}", run.resumes, run.lease_takeovers),
        ],
        vec![
            "Events".into(),
            format!(
                "{} (ids {} to {})",
                run.events, run.first_event_id, run.last_event_id
            ),
        ],
        vec!["Run's last event hash".into(), o(run.last_event_hash.as_deref())],
        vec![
            "Journal chain head hash".into(),
            o(run.chain_head_hash.as_deref()),
        ],
    ];
    p.table(&["Field", "Value"], &[], summary);
    if r.runs.len() > 1 {
        p.h2("Runs in this journal");
        p.table(
            &["Run", "Runbook", "Operator", "Started", "Outcome", "Events", ""],
            &[5],
            r.runs.iter().map(|x| {
                vec![
                    x.run_id.clone(),
                    format!("{} {}", x.runbook, x.version),
                    x.operator.clone(),
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
    p.h2("Parity drift over time");
    charts(&mut p, r);
    p.h2("Planned vs actual by phase");
    p.table(
        &[
            "Phase", "Steps", "Status", "Started", "Finished", "Planned", "Actual", "Over",
        ],
        &[1, 5, 6, 7],
        r.phases.iter().map(|x| {
            vec![
                x.phase.clone(),
                x.steps.to_string(),
                x.status.clone(),
                o(x.started_at.as_deref()),
                o(x.finished_at.as_deref()),
                duration(x.planned_ms),
                oms(x.actual_ms),
                x.over_ms.map_or_else(|| "-".into(), signed_duration),
            ]
        }),
    );
    p.h2("Waves");
    p.table(
        &[
            "Phase", "Wave", "Maps", "Started", "Finished", "Planned", "Actual", "Gate",
        ],
        &[5, 6],
        r.waves.iter().map(|w| {
            vec![
                w.phase.clone(),
                w.wave.clone(),
                w.maps.join(", "),
                o(w.started_at.as_deref()),
                o(w.finished_at.as_deref()),
                duration(w.planned_ms),
                oms(w.actual_ms),
                w.gate_passed
                    .map_or("-", |g| if g { "passed" } else { "failed" })
                    .into(),
            ]
        }),
    );
    p.h2("Timeline of steps");
    p.table(
        &[
            "Step", "Phase", "Wave", "Kind", "Status", "Attempts", "Started", "Finished", "Duration",
            "Estimate",
        ],
        &[5, 8, 9],
        r.steps.iter().map(|s| {
            vec![
                s.id.clone(),
                s.phase.clone(),
                o(s.wave.as_deref()),
                s.kind.clone(),
                match &s.detail {
                    Some(d) => format!("{}: {d}", s.status),
                    None => s.status.clone(),
                },
                s.attempts.to_string(),
                o(s.first_started_at.as_deref()),
                o(s.finished_at.as_deref()),
                oms(s.duration_ms),
                duration(s.estimate_ms),
            ]
        }),
    );
    p.h2("Operator decisions");
    p.table(
        &["Time", "Event", "Operator", "Action", "Step", "Asked", "Reason"],
        &[1],
        r.decisions.iter().map(|d| {
            vec![
                d.at.clone(),
                d.event_id.to_string(),
                d.operator.clone(),
                d.action.clone(),
                o(d.step.as_deref()),
                o(d.asked.as_deref()),
                o(d.reason.as_deref()),
            ]
        }),
    );
    p.h2("Gates");
    if r.gates_total > r.gates.len() as u64 {
        let _ = write!(
            p.out,
            "<p>The newest {} of {} gate verdicts.</p>",
            r.gates.len(),
            r.gates_total
        );
    }
    p.table(
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
        &[6, 7, 8, 9, 10],
        r.gates.iter().flat_map(|g| {
            let head = vec![
                g.at.clone(),
                g.step.clone(),
                o(g.wave.as_deref()),
                if g.passed {
                    "passed".into()
                } else {
                    "FAILED".into()
                },
            ];
            let mut rows: Vec<Vec<String>> = g
                .counts
                .iter()
                .map(|c| {
                    let mut row = head.clone();
                    row.extend([
                        format!("{}{}", c.map, if c.failed { " (failed)" } else { "" }),
                        o(c.company.as_deref()),
                        c.source.to_string(),
                        c.target.to_string(),
                        c.difference.to_string(),
                        c.allowed.to_string(),
                        c.errors.to_string(),
                    ]);
                    row
                })
                .collect();
            if rows.is_empty() {
                let mut row = head;
                row.extend(std::iter::repeat_n("-".to_owned(), 7));
                rows.push(row);
            }
            rows
        }),
    );
    p.h2("Parity before and after");
    p.table(
        &[
            "Map",
            "Company",
            "First sample",
            "Before src",
            "Before tgt",
            "Before diff",
            "Last sample",
            "After src",
            "After tgt",
            "After diff",
            "Allowed",
            "Status",
        ],
        &[3, 4, 5, 7, 8, 9, 10],
        r.parity.iter().map(|x| {
            vec![
                x.map.clone(),
                o(x.company.as_deref()),
                x.first_at.clone(),
                x.first_source.to_string(),
                x.first_target.to_string(),
                x.first_difference.to_string(),
                x.last_at.clone(),
                x.last_source.to_string(),
                x.last_target.to_string(),
                x.last_difference.to_string(),
                x.allowed.to_string(),
                x.status.clone(),
            ]
        }),
    );
    p.h2("Error queue totals");
    let _ = write!(
        p.out,
        "<p>{} entries seen during the run.</p>",
        r.errors_seen_total
    );
    p.table(
        &["Map", "Category", "Count", "Source"],
        &[2],
        r.errors.iter().map(|e| {
            vec![
                e.map.clone(),
                e.category.clone(),
                e.count.to_string(),
                e.source.clone(),
            ]
        }),
    );
    p.h2("Alerts");
    p.table(
        &["Time", "Severity", "Map", "Message"],
        &[],
        r.alerts.iter().map(|a| {
            vec![
                a.at.clone(),
                a.severity.clone(),
                o(a.map.as_deref()),
                a.message.clone(),
            ]
        }),
    );
    p.h2("DMF install records");
    p.table(
        &[
            "Time",
            "Step",
            "Package",
            "Version",
            "sha256",
            "Execution",
            "Result",
        ],
        &[],
        r.installs.iter().map(|i| {
            vec![
                i.at.clone(),
                i.step.clone(),
                i.package.clone(),
                i.version.clone(),
                i.sha256.clone(),
                i.execution_id.clone(),
                i.result.clone(),
            ]
        }),
    );
    let _ = writeln!(
        p.out,
        "<p class=\"tick\">Generated by {} from a read-only journal.</p></body></html>",
        esc(&r.generated_by)
    );
    p.out
}

fn charts(p: &mut Page, r: &Report) {
    let c = &r.charts;
    p.out.push_str(&svg::line_chart(
        "Parity difference (source - target) per map over time",
        &c.parity,
        c.span_ms,
        "source - target",
    ));
    p.out.push_str(&svg::legend(&c.parity));
    if c.parity_omitted > 0 {
        let _ = write!(
            p.out,
            "<p>{} more map/company rows drifted less and are in the parity table only.</p>",
            c.parity_omitted
        );
    }
    p.h2("Error-queue entries over time");
    let errors = [Series {
        label: "entries seen (cumulative)".into(),
        points: svg::cumulative_steps(&c.errors, c.span_ms),
    }];
    p.out.push_str(&svg::line_chart(
        "Error-queue entries seen over time",
        &errors,
        c.span_ms,
        "entries",
    ));
    p.out.push_str(&svg::legend(&errors));
}
