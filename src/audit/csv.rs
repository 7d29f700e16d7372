//! The evidence pack as CSV: one RFC 4180 file per table (CRLF line ends, a header row, fields
//! quoted when they hold a comma, a quote, CR or LF, quotes doubled). Every row starts with a
//! `verification` column, `verified` or `UNVERIFIED`, so a sheet copied out of context still says so.

use std::path::Path;

use super::AuditError;
use super::model::Report;

/// The files written, in order.
pub const FILES: [&str; 10] = [
    "runs.csv",
    "phases.csv",
    "waves.csv",
    "steps.csv",
    "decisions.csv",
    "gates.csv",
    "parity.csv",
    "errors.csv",
    "alerts.csv",
    "installs.csv",
];

/// One field, quoted when RFC 4180 requires it.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn o<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// A table's text: header, then rows, each prefixed with the verification column.
fn table(verified: bool, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mark = if verified { "verified" } else { "UNVERIFIED" };
    let mut out = String::new();
    out.push_str("verification,");
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for r in rows {
        out.push_str(mark);
        for f in r {
            out.push(',');
            out.push_str(&field(&f));
        }
        out.push_str("\r\n");
    }
    out
}

/// Every table as (file name, contents).
pub fn render(r: &Report) -> Vec<(&'static str, String)> {
    let v = r.verification.verified;
    let run = &r.run;
    let runs = table(
        v,
        &[
            "run_id",
            "runbook",
            "version",
            "operator",
            "started_at",
            "finished_at",
            "outcome",
            "events",
            "selected",
            "runbook_sha256",
            "operators",
            "last_event_hash",
            "chain_head_hash",
        ],
        r.runs.iter().map(|x| {
            let sel = x.selected;
            vec![
                x.run_id.clone(),
                x.runbook.clone(),
                x.version.clone(),
                x.operator.clone(),
                x.started_at.clone(),
                o(x.finished_at.as_ref()),
                x.outcome.clone(),
                x.events.to_string(),
                sel.to_string(),
                if sel {
                    run.runbook_sha256.clone()
                } else {
                    String::new()
                },
                if sel {
                    run.operators.join("; ")
                } else {
                    String::new()
                },
                if sel {
                    o(run.last_event_hash.as_ref())
                } else {
                    String::new()
                },
                if sel {
                    o(run.chain_head_hash.as_ref())
                } else {
                    String::new()
                },
            ]
        }),
    );
    let phases = table(
        v,
        &[
            "phase",
            "steps",
            "status",
            "started_at",
            "finished_at",
            "planned_ms",
            "actual_ms",
            "over_ms",
        ],
        r.phases.iter().map(|p| {
            vec![
                p.phase.clone(),
                p.steps.to_string(),
                p.status.clone(),
                o(p.started_at.as_ref()),
                o(p.finished_at.as_ref()),
                p.planned_ms.to_string(),
                o(p.actual_ms),
                o(p.over_ms),
            ]
        }),
    );
    let waves = table(
        v,
        &[
            "phase",
            "wave",
            "maps",
            "steps",
            "started_at",
            "finished_at",
            "planned_ms",
            "actual_ms",
            "gate_passed",
        ],
        r.waves.iter().map(|w| {
            vec![
                w.phase.clone(),
                w.wave.clone(),
                w.maps.join(" "),
                w.steps.to_string(),
                o(w.started_at.as_ref()),
                o(w.finished_at.as_ref()),
                w.planned_ms.to_string(),
                o(w.actual_ms),
                o(w.gate_passed),
            ]
        }),
    );
    let steps = table(
        v,
        &[
            "id",
            "phase",
            "wave",
            "kind",
            "title",
            "map",
            "planned",
            "status",
            "detail",
            "attempts",
            "first_started_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "elapsed_ms",
            "estimate_ms",
            "requests",
            "handle",
        ],
        r.steps.iter().map(|s| {
            vec![
                s.id.clone(),
                s.phase.clone(),
                o(s.wave.as_ref()),
                s.kind.clone(),
                s.title.clone(),
                o(s.map.as_ref()),
                s.planned.to_string(),
                s.status.clone(),
                o(s.detail.as_ref()),
                s.attempts.to_string(),
                o(s.first_started_at.as_ref()),
                o(s.started_at.as_ref()),
                o(s.finished_at.as_ref()),
                o(s.duration_ms),
                o(s.elapsed_ms),
                s.estimate_ms.to_string(),
                s.requests.to_string(),
                o(s.handle.as_ref()),
            ]
        }),
    );
    let decisions = table(
        v,
        &[
            "at",
            "event_id",
            "operator",
            "action",
            "step",
            "asked",
            "prompt",
            "reason",
            "checklist_done",
        ],
        r.decisions.iter().map(|d| {
            vec![
                d.at.clone(),
                d.event_id.to_string(),
                d.operator.clone(),
                d.action.clone(),
                o(d.step.as_ref()),
                o(d.asked.as_ref()),
                o(d.prompt.as_ref()),
                o(d.reason.as_ref()),
                d.checklist_done.join("; "),
            ]
        }),
    );
    let gates = table(
        v,
        &[
            "at",
            "event_id",
            "gate",
            "wave",
            "passed",
            "map",
            "company",
            "source",
            "target",
            "difference",
            "allowed",
            "errors",
            "row_failed",
        ],
        r.gates.iter().flat_map(|g| {
            let head = vec![
                g.at.clone(),
                g.event_id.to_string(),
                g.step.clone(),
                o(g.wave.as_ref()),
                g.passed.to_string(),
            ];
            if g.counts.is_empty() {
                let mut row = head;
                row.extend(std::iter::repeat_n(String::new(), 8));
                return vec![row];
            }
            g.counts
                .iter()
                .map(|c| {
                    let mut row = head.clone();
                    row.extend([
                        c.map.clone(),
                        o(c.company.as_ref()),
                        c.source.to_string(),
                        c.target.to_string(),
                        c.difference.to_string(),
                        c.allowed.to_string(),
                        c.errors.to_string(),
                        c.failed.to_string(),
                    ]);
                    row
                })
                .collect()
        }),
    );
    let parity = table(
        v,
        &[
            "map",
            "company",
            "first_at",
            "first_source",
            "first_target",
            "first_difference",
            "last_at",
            "last_source",
            "last_target",
            "last_difference",
            "allowed",
            "status",
            "samples",
            "peak_difference",
        ],
        r.parity.iter().map(|p| {
            vec![
                p.map.clone(),
                o(p.company.as_ref()),
                p.first_at.clone(),
                p.first_source.to_string(),
                p.first_target.to_string(),
                p.first_difference.to_string(),
                p.last_at.clone(),
                p.last_source.to_string(),
                p.last_target.to_string(),
                p.last_difference.to_string(),
                p.allowed.to_string(),
                p.status.clone(),
                p.samples.to_string(),
                p.peak_difference.to_string(),
            ]
        }),
    );
    let errors = table(
        v,
        &["map", "category", "count", "source"],
        r.errors.iter().map(|e| {
            vec![
                e.map.clone(),
                e.category.clone(),
                e.count.to_string(),
                e.source.clone(),
            ]
        }),
    );
    let alerts = table(
        v,
        &["at", "event_id", "severity", "map", "message"],
        r.alerts.iter().map(|a| {
            vec![
                a.at.clone(),
                a.event_id.to_string(),
                a.severity.clone(),
                o(a.map.as_ref()),
                a.message.clone(),
            ]
        }),
    );
    let installs = table(
        v,
        &[
            "at",
            "step",
            "package",
            "version",
            "sha256",
            "execution_id",
            "result",
        ],
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
    FILES
        .into_iter()
        .zip([
            runs, phases, waves, steps, decisions, gates, parity, errors, alerts, installs,
        ])
        .collect()
}

/// Write every table into `dir` (created when missing).
pub fn write(r: &Report, dir: &Path) -> Result<(), AuditError> {
    let io = |e: std::io::Error| AuditError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for (name, text) in render(r) {
        std::fs::write(dir.join(name), text).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_rfc_4180_requires() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn every_row_carries_the_verification_mark() {
        let t = table(false, &["a", "b"], [vec!["1".into(), "x,y".into()]]);
        assert_eq!(t, "verification,a,b\r\nUNVERIFIED,1,\"x,y\"\r\n");
    }
}
