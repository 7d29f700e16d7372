//! The evidence pack as ONE self-contained HTML file: inline CSS, inline SVG charts (parity drift
//! per map over time, error-queue entries over time), no script, no font, no URL of any kind, so
//! it opens the same offline in ten years. An unverified journal gets a red UNVERIFIED banner at
//! the top and on every section.

use std::fmt::Write as _;

use super::model::{Point, Report, Series};
use super::svg;
use super::tables::{self, Format, Table};

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

    /// A shared table in its HTML form; numeric columns right-aligned.
    fn put(&mut self, t: &Table) {
        self.table(
            &t.headers(Format::Html),
            &t.numeric(Format::Html),
            t.rows(Format::Html),
        );
    }
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
    let a = &r.verification.anchoring;
    let class = if a.ok { "verified" } else { "banner" };
    let _ = write!(
        p.out,
        r#"<div class="{class}">Evidence: {}.{}</div>"#,
        esc(&a.statement),
        esc(&super::text::checkpoint_keys(a))
    );
    p.h2("Run summary");
    p.put(&tables::summary(r));
    if r.runs.len() > 1 {
        p.h2("Runs in this journal");
        p.put(&tables::runs(r));
    }
    p.h2("Preflight");
    if r.preflights.is_empty() {
        p.out.push_str("<p>No preflight in this journal (run <code>cutover preflight RUNBOOK --journal JOURNAL</code> before the weekend).</p>");
    } else {
        p.put(&tables::preflights(r));
        let problems = tables::preflight_checks(r, tables::Format::Html);
        if problems.rows.is_empty() {
            p.out.push_str("<p>Every check was ok.</p>");
        } else {
            p.put(&problems);
        }
    }
    p.h2("Parity drift over time");
    charts(&mut p, r);
    if !r.trend.is_empty() {
        p.h2("Trend: day by day, every run of this journal");
        trend(&mut p, r);
    }
    p.h2("Planned vs actual by phase");
    p.put(&tables::phases(r));
    p.h2("Waves");
    p.put(&tables::waves(r));
    p.h2("Timeline of steps");
    p.put(&tables::steps(r));
    p.h2("Operator decisions");
    p.put(&tables::decisions(r));
    p.h2("Gates");
    if r.gates_total > r.gates.len() as u64 {
        let _ = write!(
            p.out,
            "<p>The newest {} of {} gate verdicts.</p>",
            r.gates.len(),
            r.gates_total
        );
    }
    p.put(&tables::gates(r));
    p.h2("Parity before and after");
    p.put(&tables::parity(r));
    if !r.rows.is_empty() {
        p.h2("Row-level parity");
        p.put(&tables::rows(r));
        p.put(&tables::row_sample(r));
    }
    p.h2("Dual-write error totals by source");
    let _ = write!(
        p.out,
        "<p>{} entries seen during the run.</p>",
        r.errors_seen_total
    );
    p.put(&tables::errors(r));
    p.h2("Sample keys that differed");
    if r.sample_keys.is_empty() {
        p.out.push_str("<p>No sampled key differed.</p>");
    } else {
        if r.sample_keys_total > r.sample_keys.len() as u64 {
            let _ = write!(
                p.out,
                "<p>The first {} of {} sampled keys that differed.</p>",
                r.sample_keys.len(),
                r.sample_keys_total
            );
        }
        p.put(&tables::sample_keys(r));
    }
    p.h2("Errors resolved during the run");
    if r.errors_resolved.is_empty() {
        p.out
            .push_str("<p>No error seen during the run was gone from its source by the end.</p>");
    } else {
        p.out.push_str(
            "<p>Seen during the run, and absent from the last read of their source (a read that listed every entry it held).</p>",
        );
        p.put(&tables::errors_resolved(r));
    }
    p.h2("Alerts");
    p.put(&tables::alerts(r));
    p.h2("DMF install records");
    p.put(&tables::installs(r));
    if r.ownership.iter().any(|o| o.owner != "none") {
        p.h2("Ownership");
        p.put(&tables::ownership(r));
    }
    if !r.automation.is_empty() {
        p.h2("Plug-ins and flows turned off");
        p.put(&tables::automation(r));
    }
    if !r.batch_windows.is_empty() {
        p.h2("Maps paused for batch jobs");
        p.put(&tables::batch_windows(r));
    }
    if r.package_installs.iter().any(|i| i.run_id != r.run.run_id) || !r.package_drift.is_empty() {
        p.h2("Package installs in this journal");
        p.put(&tables::package_installs(r));
    }
    if !r.downloads.is_empty() {
        p.h2("Exported packages kept");
        p.put(&tables::downloads(r));
    }
    let _ = writeln!(
        p.out,
        "<p class=\"tick\">Generated by {} from a read-only journal.</p></body></html>",
        esc(&r.generated_by)
    );
    p.out
}

/// The trend across the journal's runs: the drift per map as a chart (x: time since the first run), and
/// the table `cutover trend` prints.
fn trend(p: &mut Page, r: &Report) {
    let rows = &r.trend;
    let t0 = rows
        .iter()
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(&t.at).ok())
        .min();
    let ms = |at: &str| -> u64 {
        match (t0, chrono::DateTime::parse_from_rfc3339(at)) {
            (Some(a), Ok(b)) => u64::try_from((b - a).num_milliseconds()).unwrap_or(0),
            _ => 0,
        }
    };
    let mut by_map: std::collections::BTreeMap<&str, Vec<Point>> = std::collections::BTreeMap::new();
    let mut errors: std::collections::BTreeMap<&str, Vec<Point>> = std::collections::BTreeMap::new();
    for t in rows {
        if let Some(d) = t.drift {
            by_map.entry(&t.map).or_default().push(Point {
                t_ms: ms(&t.at),
                value: d,
            });
        }
        if let Some(n) = t.errors {
            errors.entry(&t.map).or_default().push(Point {
                t_ms: ms(&t.at),
                value: i64::try_from(n).unwrap_or(i64::MAX),
            });
        }
    }
    let span = rows.iter().map(|t| ms(&t.at)).max().unwrap_or(0);
    let series: Vec<Series> = by_map
        .into_iter()
        .map(|(m, points)| Series {
            label: m.to_owned(),
            points,
        })
        .collect();
    p.out.push_str(&svg::line_chart(
        "Trend: drift (source - target) per map, run by run",
        &series,
        span,
        "source - target",
    ));
    p.out.push_str(&svg::legend(&series));
    let series: Vec<Series> = errors
        .into_iter()
        .map(|(m, points)| Series {
            label: format!("{m}: dual-write errors"),
            points,
        })
        .collect();
    p.out.push_str(&svg::line_chart(
        "Trend: dual-write errors per map, over each run's error sweep (a day in hypercare.yaml)",
        &series,
        span,
        "errors",
    ));
    p.out.push_str(&svg::legend(&series));
    let _ = write!(
        p.out,
        "<pre class=\"mono trend\">{}</pre>",
        esc(&super::trend::text(rows))
    );
}

fn charts(p: &mut Page, r: &Report) {
    let c = &r.charts;
    p.out.push_str(&svg::line_chart(
        "Parity difference (source - target) per map, from its initial sync on",
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
