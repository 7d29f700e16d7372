//! The errors pane: one line with each error source's figure over the maps (the source named beside it; a
//! source that could not be read shows "not available (why)", never 0), counts by map × category, the rate
//! per hour against the runbook's alert
//! threshold, and the newest entries (time, map, record key, category, message), filtered by map
//! or category with `/`. The list reads only the entries in view (plus, with a filter, the
//! entries skipped to reach them), never the whole queue.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::action::PaneId;
use super::super::app::App;
use super::super::fmt::{fit, hms, pad, thousands};
use super::block;
use crate::engine::event::ErrorEntry;

/// Count lines shown above the list.
fn count_lines(compact: bool) -> usize {
    if compact { 2 } else { 4 }
}

fn filter_shown(app: &App) -> bool {
    app.filter_editing || !app.filter.is_empty()
}

/// Lines above the list: the total/rate line, the counts, the filter line, the column header.
fn summary_height(app: &App, compact: bool) -> u16 {
    let pairs = app.state.errors.counts().len();
    let sources = usize::from(!app.state.errors.source_summary().is_empty());
    let n = 1
        + sources
        + pairs.min(count_lines(compact))
        + usize::from(pairs > count_lines(compact))
        + usize::from(filter_shown(app))
        + 1;
    u16::try_from(n).unwrap_or(4)
}

/// Where the entries go inside the pane's border.
pub fn list_area(inner: Rect, app: &App, compact: bool) -> Rect {
    let top = summary_height(app, compact).min(inner.height);
    Rect::new(inner.x, inner.y + top, inner.width, inner.height - top)
}

/// Does an entry pass the filter (case-insensitive substring of its map or category)?
pub fn matches(e: &ErrorEntry, filter_lower: &str) -> bool {
    filter_lower.is_empty()
        || e.map.to_lowercase().contains(filter_lower)
        || e.category.to_lowercase().contains(filter_lower)
}

/// How many kept entries the filter lets through, from the exact per-(map, category) totals
/// (bounded by the entries kept), so it costs a few map lookups instead of a scan.
pub fn filtered_len_hint(app: &App) -> usize {
    let q = &app.state.errors;
    if app.filter.is_empty() {
        return q.newest.len();
    }
    let f = app.filter.to_lowercase();
    let n: u64 = q
        .seen_by
        .iter()
        .flat_map(|(m, cats)| cats.iter().map(move |(c, n)| (m, c, n)))
        .filter(|(m, c, _)| m.to_lowercase().contains(&f) || c.to_lowercase().contains(&f))
        .map(|(_, _, n)| *n)
        .sum();
    usize::try_from(n).unwrap_or(usize::MAX).min(q.newest.len())
}

pub fn render(f: &mut Frame, r: Rect, app: &App, compact: bool) {
    let t = app.theme();
    let q = &app.state.errors;
    let b = block(
        format!("Error queue {}", thousands(q.seen_total)),
        PaneId::Errors,
        app,
    );
    let inner = b.inner(r);
    f.render_widget(b, r);
    let w = usize::from(inner.width);

    let rate = q.rate_per_hour(app.now());
    let (rate_text, over) = match app.error_rate_threshold {
        Some(th) => (format!("rate {rate}/h (alert at {th}/h)"), rate >= th),
        None => (format!("rate {rate}/h (no alert threshold)"), false),
    };
    let mut lines = vec![Line::from(vec![
        Span::raw(format!("seen {} · ", thousands(q.seen_total))),
        Span::styled(
            format!("{rate_text}{}", if over { " ✗ OVER" } else { "" }),
            if over { t.bad() } else { t.base() },
        ),
    ])];

    // Each source's figure over the maps, the source named beside it; "not available (why)" is never a zero.
    let sources = q.source_summary();
    if !sources.is_empty() {
        let text = format!("sources: {}", sources.join(" · "));
        let style = if text.contains("not available") {
            t.warn()
        } else {
            t.base()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    let mut pairs: Vec<((String, String), u64)> = q.counts().into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let shown = count_lines(compact);
    for ((map, cat), n) in pairs.iter().take(shown) {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>8} ", thousands(*n)), t.warn()),
            Span::raw(fit(&format!("{map} × {cat}"), w.saturating_sub(9))),
        ]));
    }
    if pairs.len() > shown {
        lines.push(Line::from(Span::styled(
            format!("  +{} more map × category", pairs.len() - shown),
            t.dim(),
        )));
    }
    if filter_shown(app) {
        let cursor = if app.filter_editing { "▏" } else { "" };
        lines.push(Line::from(vec![
            Span::styled(format!("/{}{cursor}", app.filter), t.accent()),
            Span::styled(
                format!("  {} match", thousands(filtered_len_hint(app) as u64)),
                t.dim(),
            ),
        ]));
    }
    let head = if compact {
        format!("{} {} {}", pad("time", 8), pad("map", 10), "key · message")
    } else {
        format!(
            "{} {} {} {} message",
            pad("time", 8),
            pad("map", 14),
            pad("key", 14),
            pad("category", 16)
        )
    };
    lines.push(Line::from(Span::styled(pad(&head, w), t.title())));
    let header = Paragraph::new(lines);
    let top = list_area(inner, app, compact);
    f.render_widget(header, Rect::new(inner.x, inner.y, inner.width, top.y - inner.y));

    let h = usize::from(top.height);
    let view = app.errors_view;
    let filter = app.filter.to_lowercase();
    let rows: Vec<Line> = q
        .newest
        .iter()
        .filter(|e| matches(e, &filter))
        .enumerate()
        .skip(view.offset)
        .take(h)
        .map(|(i, e)| {
            let text = if compact {
                format!("{} {} {} · {}", hms(e.at), pad(&e.map, 10), e.key, e.message)
            } else {
                format!(
                    "{} {} {} {} {}",
                    hms(e.at),
                    pad(&e.map, 14),
                    pad(&e.key, 14),
                    pad(&e.category, 16),
                    e.message
                )
            };
            let line = Line::raw(pad(&text, w));
            if i == view.selected && app.focus == PaneId::Errors {
                line.patch_style(t.selected())
            } else {
                line
            }
        })
        .collect();
    if rows.is_empty() {
        let msg = if q.newest.is_empty() {
            "the error queue is empty"
        } else {
            "no entry matches the filter"
        };
        f.render_widget(Paragraph::new(Span::styled(msg, t.dim())), top);
    } else {
        f.render_widget(Paragraph::new(rows), top);
    }
}
