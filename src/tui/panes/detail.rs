//! The detail pane: everything about the selected step. Its plan facts and runbook parameters, its
//! status and why, the question it is waiting on (checklist and deadline), its progress, the
//! requests it made (method, path, status, duration), its outputs and install record.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::super::action::PaneId;
use super::super::app::App;
use super::super::fmt::{bar, countdown, duration_ms, hms, since_ms, thousands};
use super::super::params::step_params;
use super::header::decision_keys;
use super::{block, status_style, status_symbol};
use crate::engine::state::{EstimateSource, StepStatus, StepView};

/// Requests listed (newest first).
const REQUESTS_SHOWN: usize = 20;

pub fn render(f: &mut Frame, r: Rect, app: &App) {
    let t = app.theme();
    let step = app.selected_step();
    let title = step.map_or_else(|| "Detail".to_owned(), |s| format!("Detail · {}", s.info.id));
    let b = block(title, PaneId::Detail, app);
    let lines = match step {
        Some(s) => step_lines(app, s),
        None => vec![Line::from(Span::styled(
            "select a step in the tree (enter)",
            t.dim(),
        ))],
    };
    let p = Paragraph::new(lines).block(b).wrap(Wrap { trim: false });
    // Rows the wrapped text takes (borders included), to keep the scroll on the last page.
    let max = u16::try_from(p.line_count(r.width).saturating_sub(usize::from(r.height))).unwrap_or(u16::MAX);
    app.detail_max.set(max);
    let p = p.scroll((app.detail_scroll.min(max), 0));
    f.render_widget(p, r);
}

fn section(app: &App, name: &str) -> Line<'static> {
    Line::from(Span::styled(name.to_owned(), app.theme().title()))
}

fn step_lines(app: &App, s: &StepView) -> Vec<Line<'static>> {
    let t = app.theme();
    let now = app.now();
    let i = &s.info;
    let mut out = vec![Line::from(Span::styled(i.title.to_string(), t.title()))];
    let mut facts = format!("kind {} · phase {}", i.kind, i.phase);
    if let Some(w) = &i.wave {
        facts.push_str(&format!(" · wave {w}"));
    }
    if let Some(m) = &i.map {
        facts.push_str(&format!(" · map {m}"));
    }
    out.push(Line::raw(facts));
    let (sym, word) = status_symbol(&s.status, app.spinner);
    let why = match &s.status {
        StepStatus::Failed { message, .. } => format!(": {message}"),
        StepStatus::Skipped { reason } => format!(": {reason}"),
        StepStatus::Waived { reason: Some(r) } => format!(": {r}"),
        StepStatus::Running { since, attempt } => {
            format!(" for {} (attempt {attempt})", duration_ms(since_ms(*since, now)))
        }
        StepStatus::AwaitingOperator { since, .. } => format!(" for {}", duration_ms(since_ms(*since, now))),
        _ => String::new(),
    };
    out.push(Line::from(vec![
        Span::raw("status "),
        Span::styled(format!("{sym} {word}{why}"), status_style(&s.status, t)),
    ]));
    if let StepStatus::Failed { reason: Some(r), .. } = &s.status {
        out.push(Line::from(vec![
            Span::raw("why    "),
            Span::styled(format!("the service said: {r}"), t.bad()),
        ]));
    }
    let mut timing = format!("attempts {}", s.attempts);
    if let Some(st) = s.started_at {
        timing.push_str(&format!(" · started {}", hms(st)));
    }
    if let Some(d) = s.duration_ms {
        timing.push_str(&format!(" · took {}", duration_ms(d)));
    }
    let (est, source) = app.state.estimate(s);
    // A measured estimate says where it was measured; the plan's and the default say nothing.
    let from = match &source {
        EstimateSource::EarlierRun(_) | EstimateSource::ThisRun => format!(" ({})", source.words()),
        EstimateSource::Plan | EstimateSource::Default => String::new(),
    };
    timing.push_str(&format!(" · estimate {}{from}", duration_ms(est)));
    out.push(Line::raw(timing));
    if let (StepStatus::Failed { .. }, Some(c)) = (&s.status, s.next_check) {
        out.push(Line::raw(format!(
            "next re-check {}/{} at {} ({}), as the gate's retries/retry_every say",
            c.check,
            c.of,
            hms(c.at),
            countdown(c.at, now)
        )));
    }
    if i.point_of_no_return {
        out.push(Line::from(Span::styled(
            "⚑ point of no return: the console asks twice",
            t.bad(),
        )));
    }
    if i.confirm {
        out.push(Line::raw("confirm: the operator confirms before it starts"));
    }
    if !i.needs.is_empty() {
        let needs: Vec<&str> = i.needs.iter().map(|n| n.as_str()).collect();
        out.push(Line::raw(format!("needs {}", needs.join(", "))));
    }
    if let Some(h) = &s.handle {
        out.push(Line::raw(format!("handle {} {}", h.kind, h.id)));
    }
    if let Some(p) = &s.progress {
        let text = match p.total {
            Some(total) if total > 0 => format!(
                "progress {} {} / {} ({}%)",
                bar(p.done, total, 20),
                thousands(p.done),
                thousands(total),
                p.done.min(total) * 100 / total
            ),
            _ => format!("progress {}", thousands(p.done)),
        };
        out.push(Line::raw(text));
        if let Some(n) = &p.note {
            out.push(Line::raw(format!("  {n}")));
        }
    }
    for p in app
        .state
        .pending
        .iter()
        .filter(|p| p.step.as_ref() == Some(&i.id))
    {
        out.push(Line::from(Span::styled(
            format!(
                "▶ waiting for you ({:?}) · [{}]",
                p.decision,
                decision_keys(p.decision)
            ),
            t.warn(),
        )));
        for l in p.prompt.lines() {
            out.push(Line::raw(format!("  {l}")));
        }
        for (n, c) in p.checklist.iter().enumerate() {
            out.push(Line::raw(format!("  {}. [ ] {c}", n + 1)));
        }
        if let Some(d) = p.deadline {
            out.push(Line::raw(format!(
                "  deadline {} ({})",
                hms(d),
                countdown(d, now)
            )));
        }
    }
    if let Some(rb) = &app.cfg.runbook {
        let params = step_params(rb, i.id.as_str());
        if !params.is_empty() {
            out.push(section(app, "Parameters"));
            out.extend(params.into_iter().map(|(k, v)| Line::raw(format!("  {k}: {v}"))));
        }
    }
    if s.request_count > 0 {
        out.push(section(
            app,
            &format!("Requests ({} total, newest first)", s.request_count),
        ));
        for rq in s.requests.iter().rev().take(REQUESTS_SHOWN) {
            let status = rq.status.map_or_else(|| "---".to_owned(), |c| c.to_string());
            let bad = rq.error.is_some() || rq.status.is_some_and(|c| c >= 400);
            let text = format!(
                "  {} {} {} {} {}ms{}",
                hms(rq.at),
                rq.method,
                rq.path,
                status,
                rq.duration_ms,
                rq.error.as_ref().map(|e| format!(" {e}")).unwrap_or_default()
            );
            out.push(Line::from(Span::styled(
                text,
                if bad { t.bad() } else { t.base() },
            )));
        }
    }
    if !s.outputs.is_empty() {
        out.push(section(app, "Outputs"));
        out.extend(s.outputs.iter().map(|(k, v)| Line::raw(format!("  {k} = {v}"))));
    }
    if let Some(inst) = &s.install {
        out.push(section(app, "Install record"));
        out.push(Line::raw(format!(
            "  {} {} sha256 {}… execution {} → {}",
            inst.package,
            inst.version,
            inst.sha256.chars().take(12).collect::<String>(),
            inst.execution_id,
            inst.result
        )));
    }
    // A reconcile's findings: per map and company, the counts and the keys it sampled.
    let found: Vec<_> = app.state.rows.iter().filter(|(_, v)| v.step == i.id).collect();
    if !found.is_empty() {
        out.push(section(app, "Rows"));
        for (k, v) in found {
            out.push(Line::raw(format!(
                "  {}{}: {} match · {} missing · {} extra · {} different ({} / {} rows)",
                k.map,
                k.company.as_ref().map(|c| format!("@{c}")).unwrap_or_default(),
                v.matching,
                v.missing,
                v.extra,
                v.different,
                v.source_rows,
                v.target_rows
            )));
            for d in &v.sample {
                let what = match d.class {
                    crate::model::event::RowClass::Missing => "missing on the target".to_owned(),
                    crate::model::event::RowClass::Extra => "extra on the target".to_owned(),
                    crate::model::event::RowClass::Different => d
                        .fields
                        .iter()
                        .map(|f| format!("{}: {:?} ≠ {:?}", f.field, f.source, f.target))
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                out.push(Line::raw(format!("    {} {what}", d.key)));
            }
        }
    }
    out
}
