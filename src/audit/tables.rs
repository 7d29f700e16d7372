//! The report's tables defined ONCE, as data, for the three renderers (CSV, HTML, Markdown).
//!
//! Each table is a list of [`Column`]s and rows of [`Val`]s. A column says which formats show it
//! (CSV carries machine columns such as `event_id`, `prompt` or `checklist_done` that the human
//! formats leave out; a few human columns merge or split values differently) and a value says how
//! it prints: CSV wants raw values (`""` for nothing, milliseconds as numbers, `true`/`false`),
//! HTML and Markdown want readable text (`-` for nothing, `1h 02m`, `passed`/`failed`). Escaping
//! stays with each renderer: CSV quotes, HTML escapes, Markdown escapes pipes and newlines.

use super::model::Report;
use super::text::{duration, signed_duration};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Html,
    Md,
}

impl Format {
    fn bit(self) -> u8 {
        match self {
            Format::Csv => CSV,
            Format::Html => HTML,
            Format::Md => MD,
        }
    }
}

/// Shown in CSV.
pub const CSV: u8 = 1;
/// Shown in HTML.
pub const HTML: u8 = 2;
/// Shown in Markdown.
pub const MD: u8 = 4;
/// Shown in the two human formats.
pub const SHOWN: u8 = HTML | MD;
/// Shown everywhere.
pub const ALL: u8 = CSV | HTML | MD;

/// One column: its CSV header, its human header, whether it is a number (right-aligned in
/// HTML) and which formats show it (a bit set of [`CSV`], [`HTML`], [`MD`]).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub title: &'static str,
    pub num: bool,
    pub formats: u8,
}

const fn c(name: &'static str, title: &'static str, formats: u8) -> Column {
    Column {
        name,
        title,
        num: false,
        formats,
    }
}

const fn n(name: &'static str, title: &'static str, formats: u8) -> Column {
    Column {
        name,
        title,
        num: true,
        formats,
    }
}

/// One cell's value; how it prints depends on the format.
#[derive(Debug, Clone)]
pub enum Val {
    /// The same text everywhere.
    Text(String),
    /// `""` in CSV, `-` elsewhere when absent.
    Opt(Option<String>),
    /// Milliseconds: a number in CSV, a duration elsewhere.
    Ms(u64),
    /// Optional milliseconds: empty / `-` when absent.
    OptMs(Option<u64>),
    /// Optional signed milliseconds (over or under plan).
    OptSignedMs(Option<i64>),
    /// A list: space-joined in CSV, comma-joined elsewhere.
    List(Vec<String>),
    /// A flag: `true`/`false` in CSV, the yes/no label elsewhere; `""` / `-` when absent.
    Flag(Option<bool>, &'static str, &'static str),
    /// A hash or digest: back-quoted in Markdown; `""` / `-` when absent.
    Code(Option<String>),
}

impl Val {
    /// The cell's text in `f`, before the renderer's escaping.
    pub fn text(&self, f: Format) -> String {
        let csv = f == Format::Csv;
        let none = || if csv { String::new() } else { "-".to_owned() };
        match self {
            Val::Text(s) => s.clone(),
            Val::Opt(s) => s.clone().unwrap_or_else(none),
            Val::Ms(ms) if csv => ms.to_string(),
            Val::Ms(ms) => duration(*ms),
            Val::OptMs(None) | Val::OptSignedMs(None) => none(),
            Val::OptMs(Some(ms)) if csv => ms.to_string(),
            Val::OptMs(Some(ms)) => duration(*ms),
            Val::OptSignedMs(Some(ms)) if csv => ms.to_string(),
            Val::OptSignedMs(Some(ms)) => signed_duration(*ms),
            Val::List(v) => v.join(if csv { " " } else { ", " }),
            Val::Flag(None, ..) => none(),
            Val::Flag(Some(b), ..) if csv => b.to_string(),
            Val::Flag(Some(b), yes, no) => (if *b { *yes } else { *no }).to_owned(),
            Val::Code(s) if f == Format::Md => format!("`{}`", s.as_deref().unwrap_or("-")),
            Val::Code(s) => s.clone().unwrap_or_else(none),
        }
    }
}

fn t(s: impl ToString) -> Val {
    Val::Text(s.to_string())
}

fn opt(s: Option<&String>) -> Val {
    Val::Opt(s.cloned())
}

/// A table: columns, and rows aligned with them.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Val>>,
}

impl Table {
    fn shows(&self, f: Format) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(move |(_, col)| col.formats & f.bit() != 0)
    }

    /// The headers `f` shows: CSV names for CSV, titles otherwise.
    pub fn headers(&self, f: Format) -> Vec<&'static str> {
        self.shows(f)
            .map(|(_, col)| if f == Format::Csv { col.name } else { col.title })
            .collect()
    }

    /// Positions, among the columns `f` shows, of the numeric ones.
    pub fn numeric(&self, f: Format) -> Vec<usize> {
        self.shows(f)
            .enumerate()
            .filter(|(_, (_, col))| col.num)
            .map(|(i, _)| i)
            .collect()
    }

    /// The rows as `f` prints them, unescaped, with the columns `f` does not show dropped.
    pub fn rows(&self, f: Format) -> Vec<Vec<String>> {
        let keep: Vec<usize> = self.shows(f).map(|(i, _)| i).collect();
        self.rows
            .iter()
            .map(|r| {
                keep.iter()
                    .map(|&i| r.get(i).map(|v| v.text(f)).unwrap_or_default())
                    .collect()
            })
            .collect()
    }
}

/// The run summary (human formats only).
pub fn summary(r: &Report) -> Table {
    let run = &r.run;
    let waivers = run.exceptions.iter().filter(|e| e.status == "waived").count();
    let skips = run.exceptions.len() - waivers;
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let outcome = match &run.outcome_detail {
        Some(d) => format!("{}: {d}", run.outcome),
        None if run.outcome == "succeeded" && !run.exceptions.is_empty() => format!(
            "succeeded with {}, {}",
            plural(waivers, "waiver", "waivers"),
            plural(skips, "skip", "skips")
        ),
        None => run.outcome.clone(),
    };
    let exceptions = if run.exceptions.is_empty() {
        "none".to_owned()
    } else {
        run.exceptions
            .iter()
            .map(|e| match &e.reason {
                Some(r) => format!("{} ({}: {r})", e.step, e.status),
                None => format!("{} ({})", e.step, e.status),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let freeze = match (&run.freeze_window_start, &run.freeze_window_end) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "-".into(),
    };
    let rows = vec![
        ("Run", t(&run.run_id)),
        ("Runbook", t(format!("{} {}", run.runbook, run.version))),
        ("Runbook sha256", Val::Code(Some(run.runbook_sha256.clone()))),
        ("Operators", t(run.operators.join(", "))),
        ("Hosts", t(run.hosts.join(", "))),
        ("Started", opt(run.started_at.as_ref())),
        ("Finished", opt(run.finished_at.as_ref())),
        ("Outcome", t(outcome)),
        ("Waived and skipped", t(exceptions)),
        (
            "Unsupported by Microsoft",
            t(if run.unsupported.is_empty() {
                "-".to_owned()
            } else {
                run.unsupported.join("; ")
            }),
        ),
        ("Elapsed", Val::Ms(run.elapsed_ms)),
        ("Freeze window", t(freeze)),
        (
            "Resumes / lease take-overs",
            t(format!("{} / {}", run.resumes, run.lease_takeovers)),
        ),
        (
            "Events",
            t(format!(
                "{} (ids {} to {})",
                run.events, run.first_event_id, run.last_event_id
            )),
        ),
        ("Run's last event hash", Val::Code(run.last_event_hash.clone())),
        ("Journal chain head hash", Val::Code(run.chain_head_hash.clone())),
    ];
    Table {
        columns: vec![c("field", "Field", SHOWN), c("value", "Value", SHOWN)],
        rows: rows.into_iter().map(|(k, v)| vec![t(k), v]).collect(),
    }
}

/// Every run in the journal; the selected one carries the summary's hashes in CSV.
pub fn runs(r: &Report) -> Table {
    let run = &r.run;
    let columns = vec![
        c("run_id", "Run", ALL),
        c("runbook", "", CSV),
        c("version", "", CSV),
        c("", "Runbook", SHOWN),
        c("operator", "Operator", ALL),
        c("started_at", "Started", ALL),
        c("finished_at", "", CSV),
        c("outcome", "Outcome", ALL),
        n("events", "Events", ALL),
        c("selected", "", ALL),
        c("runbook_sha256", "", CSV),
        c("operators", "", CSV),
        c("last_event_hash", "", CSV),
        c("chain_head_hash", "", CSV),
    ];
    let rows = r
        .runs
        .iter()
        .map(|x| {
            let sel = |v: String| t(if x.selected { v } else { String::new() });
            vec![
                t(&x.run_id),
                t(&x.runbook),
                t(&x.version),
                t(format!("{} {}", x.runbook, x.version)),
                t(&x.operator),
                t(&x.started_at),
                opt(x.finished_at.as_ref()),
                t(&x.outcome),
                t(x.events),
                Val::Flag(Some(x.selected), "this report", ""),
                sel(run.runbook_sha256.clone()),
                sel(run.operators.join("; ")),
                sel(run.last_event_hash.clone().unwrap_or_default()),
                sel(run.chain_head_hash.clone().unwrap_or_default()),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Planned vs actual by phase.
pub fn phases(r: &Report) -> Table {
    let columns = vec![
        c("phase", "Phase", ALL),
        n("steps", "Steps", ALL),
        c("status", "Status", ALL),
        c("started_at", "Started", ALL),
        c("finished_at", "Finished", ALL),
        n("planned_ms", "Planned", ALL),
        n("actual_ms", "Actual", ALL),
        n("over_ms", "Over", ALL),
    ];
    let rows = r
        .phases
        .iter()
        .map(|p| {
            vec![
                t(&p.phase),
                t(p.steps),
                t(&p.status),
                opt(p.started_at.as_ref()),
                opt(p.finished_at.as_ref()),
                Val::Ms(p.planned_ms),
                Val::OptMs(p.actual_ms),
                Val::OptSignedMs(p.over_ms),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Waves.
pub fn waves(r: &Report) -> Table {
    let columns = vec![
        c("phase", "Phase", ALL),
        c("wave", "Wave", ALL),
        c("maps", "Maps", ALL),
        c("steps", "", CSV),
        c("started_at", "Started", ALL),
        c("finished_at", "Finished", ALL),
        n("planned_ms", "Planned", ALL),
        n("actual_ms", "Actual", ALL),
        c("gate_passed", "Gate", ALL),
    ];
    let rows = r
        .waves
        .iter()
        .map(|w| {
            vec![
                t(&w.phase),
                t(&w.wave),
                Val::List(w.maps.clone()),
                t(w.steps),
                opt(w.started_at.as_ref()),
                opt(w.finished_at.as_ref()),
                Val::Ms(w.planned_ms),
                Val::OptMs(w.actual_ms),
                Val::Flag(w.gate_passed, "passed", "failed"),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// The timeline of steps. CSV keeps status and detail apart; the human formats join them.
pub fn steps(r: &Report) -> Table {
    let columns = vec![
        c("id", "Step", ALL),
        c("phase", "Phase", ALL),
        c("wave", "Wave", ALL),
        c("kind", "Kind", ALL),
        c("title", "", CSV),
        c("map", "", CSV),
        c("planned", "", CSV),
        c("status", "", CSV),
        c("", "Status", SHOWN),
        c("detail", "", CSV),
        n("attempts", "Attempts", ALL),
        c("first_started_at", "Started", ALL),
        c("started_at", "", CSV),
        c("finished_at", "Finished", ALL),
        n("duration_ms", "Duration", ALL),
        c("elapsed_ms", "", CSV),
        n("estimate_ms", "Estimate", ALL),
        c("requests", "", CSV),
        c("handle", "", CSV),
    ];
    let rows = r
        .steps
        .iter()
        .map(|s| {
            let status = match &s.detail {
                Some(d) => format!("{}: {d}", s.status),
                None => s.status.clone(),
            };
            vec![
                t(&s.id),
                t(&s.phase),
                opt(s.wave.as_ref()),
                t(&s.kind),
                t(&s.title),
                opt(s.map.as_ref()),
                t(s.planned),
                t(&s.status),
                t(status),
                opt(s.detail.as_ref()),
                t(s.attempts),
                opt(s.first_started_at.as_ref()),
                opt(s.started_at.as_ref()),
                opt(s.finished_at.as_ref()),
                Val::OptMs(s.duration_ms),
                Val::OptMs(s.elapsed_ms),
                Val::Ms(s.estimate_ms),
                t(s.requests),
                opt(s.handle.as_ref()),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Operator decisions.
pub fn decisions(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        n("event_id", "Event", ALL),
        c("operator", "Operator", ALL),
        c("action", "Action", ALL),
        c("step", "Step", ALL),
        c("asked", "Asked", ALL),
        c("prompt", "", CSV),
        c("reason", "Reason", ALL),
        c("checklist_done", "", CSV),
    ];
    let rows = r
        .decisions
        .iter()
        .map(|d| {
            vec![
                t(&d.at),
                t(d.event_id),
                t(&d.operator),
                t(&d.action),
                opt(d.step.as_ref()),
                opt(d.asked.as_ref()),
                opt(d.prompt.as_ref()),
                opt(d.reason.as_ref()),
                t(d.checklist_done.join("; ")),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Gate verdicts, one row per counted map (or one empty row for a gate without counts).
pub fn gates(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("event_id", "", CSV),
        c("gate", "Gate", ALL),
        c("wave", "Wave", ALL),
        c("passed", "", CSV),
        c("waived", "", CSV),
        c("", "Verdict", SHOWN),
        c("map", "", CSV),
        c("", "Map", SHOWN),
        c("company", "Company", ALL),
        n("source", "Source", ALL),
        n("target", "Target", ALL),
        n("difference", "Difference", ALL),
        n("allowed", "Allowed", ALL),
        n("errors", "Errors", ALL),
        c("row_failed", "", CSV),
    ];
    let mut rows = Vec::new();
    for g in &r.gates {
        let head = vec![
            t(&g.at),
            t(g.event_id),
            t(&g.step),
            opt(g.wave.as_ref()),
            Val::Flag(Some(g.passed), "passed", "FAILED"),
            t(g.waived),
            t(match (g.passed, g.waived) {
                (true, _) => "passed",
                (false, true) => "FAILED, waived",
                (false, false) => "FAILED",
            }),
        ];
        if g.counts.is_empty() {
            let mut row = head;
            row.extend(std::iter::repeat_n(Val::Opt(None), 9));
            rows.push(row);
            continue;
        }
        for k in &g.counts {
            let mut row = head.clone();
            row.extend([
                t(&k.map),
                t(format!("{}{}", k.map, if k.failed { " (failed)" } else { "" })),
                opt(k.company.as_ref()),
                t(k.source),
                t(k.target),
                t(k.difference),
                t(k.allowed),
                t(k.errors),
                t(k.failed),
            ]);
            rows.push(row);
        }
    }
    Table { columns, rows }
}

/// Parity before and after. The three formats differ on purpose: CSV has every number, HTML
/// splits source/target/difference into columns, Markdown joins them to keep the table narrow
/// and adds the sample count.
pub fn parity(r: &Report) -> Table {
    const CH: u8 = CSV | HTML;
    let columns = vec![
        c("map", "Map", ALL),
        c("company", "Company", ALL),
        c("first_at", "First sample", ALL),
        n("first_source", "Before src", CH),
        n("first_target", "Before tgt", CH),
        n("first_difference", "Before diff", CH),
        c("", "Before (src/tgt/diff)", MD),
        c("last_at", "Last sample", ALL),
        n("last_source", "After src", CH),
        n("last_target", "After tgt", CH),
        n("last_difference", "After diff", CH),
        c("", "After (src/tgt/diff)", MD),
        n("allowed", "Allowed", ALL),
        c("status", "Status", ALL),
        c("samples", "Samples", CSV | MD),
        c("peak_difference", "", CSV),
    ];
    let rows = r
        .parity
        .iter()
        .map(|p| {
            vec![
                t(&p.map),
                opt(p.company.as_ref()),
                t(&p.first_at),
                t(p.first_source),
                t(p.first_target),
                t(p.first_difference),
                t(format!(
                    "{} / {} / {}",
                    p.first_source, p.first_target, p.first_difference
                )),
                t(&p.last_at),
                t(p.last_source),
                t(p.last_target),
                t(p.last_difference),
                t(format!(
                    "{} / {} / {}",
                    p.last_source, p.last_target, p.last_difference
                )),
                t(p.allowed),
                t(&p.status),
                t(p.samples),
                t(p.peak_difference),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Error-queue totals.
pub fn errors(r: &Report) -> Table {
    let columns = vec![
        c("map", "Map", ALL),
        c("category", "Category", ALL),
        n("count", "Count", ALL),
        c("source", "Source", ALL),
    ];
    let rows = r
        .errors
        .iter()
        .map(|e| match &e.unavailable {
            Some(why) => vec![
                t(&e.map),
                t(&e.category),
                t(format!("not available ({why})")),
                t(&e.source),
            ],
            None => vec![t(&e.map), t(&e.category), t(e.count), t(&e.source)],
        })
        .collect();
    Table { columns, rows }
}

/// Alerts.
pub fn alerts(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("event_id", "", CSV),
        c("severity", "Severity", ALL),
        c("map", "Map", ALL),
        c("message", "Message", ALL),
    ];
    let rows = r
        .alerts
        .iter()
        .map(|a| {
            vec![
                t(&a.at),
                t(a.event_id),
                t(&a.severity),
                opt(a.map.as_ref()),
                t(&a.message),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// DMF install records.
pub fn installs(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("step", "Step", ALL),
        c("package", "Package", ALL),
        c("version", "Version", ALL),
        c("sha256", "sha256", ALL),
        c("execution_id", "Execution", ALL),
        c("result", "Result", ALL),
    ];
    let rows = r
        .installs
        .iter()
        .map(|i| {
            vec![
                t(&i.at),
                t(&i.step),
                t(&i.package),
                t(&i.version),
                Val::Code(Some(i.sha256.clone())),
                t(&i.execution_id),
                t(&i.result),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Who owns each map and field after go-live.
pub fn ownership(r: &Report) -> Table {
    let columns = vec![
        c("map", "Map", ALL),
        c("field", "Field", ALL),
        c("owner", "Owner", ALL),
        c("why", "Why", ALL),
        c("master", "Initial-sync master", ALL),
    ];
    let rows = r
        .ownership
        .iter()
        .map(|o| {
            vec![
                t(&o.map),
                t(o.field.as_deref().unwrap_or("(the map)")),
                t(if o.owner == "none" {
                    "NONE: not written down"
                } else {
                    &o.owner
                }),
                t(o.why.as_deref().unwrap_or("")),
                t(&o.master),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Package installs of every run in the journal, newest first, with drift flagged.
pub fn package_installs(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("environment", "Environment", ALL),
        c("package", "Package", ALL),
        c("version", "Version", ALL),
        c("sha256", "sha256", ALL),
        c("result", "Result", ALL),
        c("run_id", "Run", ALL),
        c("drift", "Drift", ALL),
    ];
    let rows = r
        .package_installs
        .iter()
        .map(|i| {
            vec![
                t(&i.at),
                t(&i.environment),
                t(&i.package),
                t(&i.version),
                Val::Code(Some(i.sha256.clone())),
                t(&i.result),
                t(&i.run_id),
                t(if i.drift { "drift" } else { "" }),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Plug-in steps and flows the run turned off.
pub fn automation(r: &Report) -> Table {
    let columns = vec![
        c("env", "Env", ALL),
        c("kind", "Kind", ALL),
        c("name", "Name", ALL),
        c("table", "Table", ALL),
        c("before", "Before", ALL),
        c("off_at", "Off at", ALL),
        c("restored_at", "Back at", ALL),
        c("restored_by", "Put back by", ALL),
        c("off_for", "Off for", ALL),
    ];
    let rows = r
        .automation
        .iter()
        .map(|a| {
            vec![
                t(&a.env),
                t(a.kind.replace('_', " ")),
                t(&a.name),
                t(&a.table),
                t(&a.before),
                t(&a.off_at),
                t(a.restored_at.as_deref().unwrap_or("still off")),
                t(a.restored_by.as_deref().unwrap_or("")),
                t(&a.off_for),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Maps paused for batch jobs.
pub fn batch_windows(r: &Report) -> Table {
    let columns = vec![
        c("step", "Step", ALL),
        c("maps", "Maps", ALL),
        c("paused_at", "Paused at", ALL),
        c("resumed_at", "Resumed at", ALL),
        c("resumed_by", "Resumed by", ALL),
        c("confirmed", "Batch job confirmed", ALL),
        c("paused_for", "Paused for", ALL),
    ];
    let rows = r
        .batch_windows
        .iter()
        .map(|w| {
            vec![
                t(&w.step),
                t(w.maps.join(", ")),
                t(&w.paused_at),
                t(w.resumed_at.as_deref().unwrap_or("still paused")),
                t(w.resumed_by.as_deref().unwrap_or("")),
                t(if w.confirmed { "yes" } else { "no" }),
                t(&w.paused_for),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Exported packages kept beside the journal, with their hashes.
pub fn downloads(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("step", "Step", ALL),
        c("package", "Package", ALL),
        c("file", "File", ALL),
        c("bytes", "Bytes", ALL),
        c("sha256", "sha256", ALL),
        c("execution_id", "Execution", ALL),
    ];
    let rows = r
        .downloads
        .iter()
        .map(|d| {
            vec![
                t(&d.at),
                t(&d.step),
                t(&d.package),
                t(&d.file),
                t(d.bytes.to_string()),
                Val::Code(Some(d.sha256.clone())),
                t(&d.execution_id),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Journaled preflights, one row each.
pub fn preflights(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("event_id", "", CSV),
        c("operator", "Operator", ALL),
        c("host", "Host", ALL),
        c("target", "Against", ALL),
        c("runbook", "", CSV),
        c("version", "", CSV),
        c("", "Runbook", SHOWN),
        c("runbook_sha256", "", CSV),
        c("same_runbook", "This run's runbook", ALL),
        n("ok", "Ok", ALL),
        n("warnings", "Warnings", ALL),
        n("errors", "Errors", ALL),
        n("skipped", "Skipped", ALL),
    ];
    let rows = r
        .preflights
        .iter()
        .map(|p| {
            vec![
                t(&p.at),
                t(p.event_id),
                t(&p.operator),
                t(&p.host),
                t(&p.target),
                t(&p.runbook),
                t(&p.version),
                t(format!("{} {}", p.runbook, p.version)),
                Val::Code(Some(p.runbook_sha256.clone())),
                Val::Flag(Some(p.same_runbook), "yes", "no (another version)"),
                t(p.ok),
                t(p.warnings),
                t(p.errors),
                t(p.skipped),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Every line of every journaled preflight (the human formats show the lines that were not ok).
pub fn preflight_checks(r: &Report, format: Format) -> Table {
    let columns = vec![
        c("at", "Preflight", ALL),
        c("check", "Check", ALL),
        c("subject", "About", ALL),
        c("status", "Status", ALL),
        c("message", "Result", ALL),
        c("fix", "Fix", ALL),
    ];
    let rows = r
        .preflights
        .iter()
        .flat_map(|p| p.checks.iter().map(move |l| (p, l)))
        .filter(|(_, l)| format == Format::Csv || l.status != "ok")
        .map(|(p, l)| {
            vec![
                t(&p.at),
                t(&l.check),
                t(&l.subject),
                t(&l.status),
                t(&l.message),
                opt(l.fix.as_ref()),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Row-level parity per map and company.
pub fn rows(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("step", "Step", ALL),
        c("map", "Map", ALL),
        c("company", "Company", ALL),
        n("source_rows", "Source rows", ALL),
        n("target_rows", "Target rows", ALL),
        n("matching", "Matching", ALL),
        n("missing", "Missing", ALL),
        n("extra", "Extra", ALL),
        n("different", "Different", ALL),
        n("scratch_bytes", "", CSV),
    ];
    let rows = r
        .rows
        .iter()
        .map(|x| {
            vec![
                t(&x.at),
                t(&x.step),
                t(&x.map),
                opt(x.company.as_ref()),
                t(x.source_rows),
                t(x.target_rows),
                t(x.matching),
                t(x.missing),
                t(x.extra),
                t(x.different),
                t(x.scratch_bytes),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// The keys row-level parity sampled, per map and company.
pub fn row_sample(r: &Report) -> Table {
    let columns = vec![
        c("map", "Map", ALL),
        c("company", "Company", ALL),
        c("class", "Class", ALL),
        c("key", "Key", ALL),
        c("differences", "Differences", ALL),
    ];
    let rows = r
        .rows
        .iter()
        .flat_map(|x| x.sample.iter().map(move |s| (x, s)))
        .map(|(x, s)| {
            vec![
                t(&x.map),
                opt(x.company.as_ref()),
                t(&s.class),
                t(&s.key),
                t(s.differences.join("; ")),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// The keys `sample` steps found still differing or missing after the settle, per map.
pub fn sample_keys(r: &Report) -> Table {
    let columns = vec![
        c("at", "Time", ALL),
        c("step", "Step", ALL),
        c("map", "Map", ALL),
        c("company", "Company", ALL),
        c("class", "Class", ALL),
        c("key", "Key", ALL),
        c("differences", "Differences", ALL),
    ];
    let rows = r
        .sample_keys
        .iter()
        .map(|s| {
            vec![
                t(&s.at),
                t(&s.step),
                t(&s.map),
                opt(s.company.as_ref()),
                t(&s.class),
                t(&s.key),
                t(s.differences.join("; ")),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// Dual-write errors seen during the run and gone from their source by the end.
pub fn errors_resolved(r: &Report) -> Table {
    let columns = vec![
        c("map", "Map", ALL),
        c("source", "Source", ALL),
        c("id", "Id", CSV),
        c("key", "Key", ALL),
        c("category", "Category", ALL),
        c("message", "Message", ALL),
        c("seen_at", "Seen", ALL),
        c("resolved_by", "Gone at", ALL),
    ];
    let rows = r
        .errors_resolved
        .iter()
        .map(|e| {
            vec![
                t(&e.map),
                t(&e.source),
                t(&e.id),
                t(&e.key),
                t(&e.category),
                t(&e.message),
                t(&e.seen_at),
                t(&e.resolved_by),
            ]
        })
        .collect();
    Table { columns, rows }
}
