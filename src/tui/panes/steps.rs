//! The step tree: phases → waves → steps with live status, a spinner and elapsed time for running
//! steps, a progress gauge for long operations and point-of-no-return markers. Only the rows in
//! view are formatted.

use std::ops::Range;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::action::PaneId;
use super::super::app::{App, TreeRow};
use super::super::fmt::{bar, countdown, duration_ms, fit, pad, since_ms};
use super::{block, status_style, status_symbol};
use crate::engine::state::{StepStatus, StepView};

pub fn render(f: &mut Frame, r: Rect, app: &App) {
    let s = &app.state;
    let done = s.steps.iter().filter(|st| st.status.is_done()).count();
    let title = format!("Steps {done}/{}", s.steps.len());
    let b = block(title, PaneId::Steps, app);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let h = usize::from(inner.height);
    let w = usize::from(inner.width);
    let view = app.steps_view;
    let lines: Vec<Line> = app
        .tree
        .iter()
        .enumerate()
        .skip(view.offset)
        .take(h)
        .map(|(i, row)| row_line(app, row, w, i == view.selected))
        .collect();
    if lines.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled("waiting for the plan…", app.theme().dim())),
            inner,
        );
    } else {
        f.render_widget(Paragraph::new(lines), inner);
    }
}

fn counts(app: &App, range: &Range<usize>) -> (usize, usize, usize) {
    let steps = &app.state.steps[range.clone()];
    let done = steps.iter().filter(|s| s.status.is_done()).count();
    let failed = steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Failed { .. }))
        .count();
    (done, failed, steps.len())
}

fn row_line(app: &App, row: &TreeRow, w: usize, selected: bool) -> Line<'static> {
    let t = app.theme();
    let line = match row {
        TreeRow::Phase { name, steps } | TreeRow::Wave { name, steps } => {
            let (done, failed, total) = counts(app, steps);
            let (indent, mark) = if matches!(row, TreeRow::Phase { .. }) {
                ("", "▾ ")
            } else {
                ("  ", "▸ wave ")
            };
            let fail = if failed > 0 {
                format!(" ✗{failed}")
            } else {
                String::new()
            };
            let right = format!("{done}/{total}{fail}");
            let left = fit(
                &format!("{indent}{mark}{name}"),
                w.saturating_sub(right.chars().count() + 1),
            );
            let style = if failed > 0 { t.bad() } else { t.title() };
            Line::from(vec![
                Span::styled(pad(&left, w.saturating_sub(right.chars().count())), t.title()),
                Span::styled(right, style),
            ])
        }
        TreeRow::Step(i) => match app.state.steps.get(*i) {
            Some(step) => step_line(app, step, w),
            None => Line::raw(""),
        },
    };
    if selected {
        line.patch_style(t.selected())
    } else {
        line
    }
}

/// The right-hand text of a step row: elapsed and gauge when running, duration when done.
fn right_text(app: &App, s: &StepView, compact: bool) -> String {
    let now = app.now();
    match &s.status {
        StepStatus::Running { since, attempt } => {
            let el = duration_ms(since_ms(*since, now));
            let retry = if *attempt > 1 {
                format!(" #{attempt}")
            } else {
                String::new()
            };
            match s.progress.as_ref().and_then(|p| p.total.map(|t| (p.done, t))) {
                Some((d, total)) if total > 0 => {
                    let pct = d.min(total) * 100 / total;
                    let gw = if compact { 5 } else { 10 };
                    format!("{} {pct:>3}% {el}{retry}", bar(d, total, gw))
                }
                _ => format!("{el}{retry}"),
            }
        }
        StepStatus::AwaitingOperator { since, .. } => format!("WAIT {}", duration_ms(since_ms(*since, now))),
        StepStatus::Succeeded => s.duration_ms.map(duration_ms).unwrap_or_default(),
        StepStatus::Failed { .. } => match s.next_check {
            Some(c) => format!("re-check {}/{} {}", c.check, c.of, countdown(c.at, now)),
            None => "FAILED".to_owned(),
        },
        StepStatus::Skipped { .. } => "skipped".to_owned(),
        StepStatus::Waived { .. } => "waived".to_owned(),
        StepStatus::Pending => String::new(),
    }
}

fn step_line(app: &App, s: &StepView, w: usize) -> Line<'static> {
    let t = app.theme();
    let indent = if s.info.wave.is_some() { "    " } else { "  " };
    let (sym, _) = status_symbol(&s.status, app.spinner);
    // A map paused from the console says so on its map step, beside the step's own status.
    let pnr = if s.info.point_of_no_return {
        " ⚑PNR"
    } else if s
        .info
        .map
        .as_ref()
        .is_some_and(|m| app.state.paused_maps.contains(m))
    {
        " ⏸map paused"
    } else {
        ""
    };
    let right = right_text(app, s, w < 50);
    let rw = right.chars().count();
    let title = if s.info.title.is_empty() {
        s.info.id.as_str()
    } else {
        &s.info.title
    };
    let left_w = w.saturating_sub(rw + 1 + indent.len() + 2 + pnr.chars().count());
    let style = status_style(&s.status, t);
    Line::from(vec![
        Span::raw(indent),
        Span::styled(format!("{sym} "), style),
        Span::raw(pad(&fit(title, left_w), left_w)),
        Span::styled(
            pnr,
            if s.info.point_of_no_return {
                t.bad()
            } else {
                t.warn()
            },
        ),
        Span::raw(" "),
        Span::styled(right, style),
    ])
}
