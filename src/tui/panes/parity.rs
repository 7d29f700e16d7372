//! The parity pane: per map (and company) the latest source and target counts, the difference and
//! its percentage, the status against the map's tolerance, the sample time and a sparkline of the
//! difference over time. Worst first by default (the rows a gate is failing on on top); `o` cycles
//! the order.

use std::cmp::Ordering;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::action::PaneId;
use super::super::app::{App, ParitySort};
use super::super::fmt::{fit, hms, pad, rpad, sparkline, thousands};
use super::block;
use crate::engine::state::{ParityKey, ParityRow, ParityStatus};

/// The rows in display order.
pub fn ordered(app: &App) -> Vec<(&ParityKey, &ParityRow)> {
    let table = &app.state.parity;
    match app.parity_sort {
        ParitySort::Worst => {
            table.worst_first_pending(&app.state.gate_failing(), &app.state.parity_pending_maps())
        }
        sort => {
            let mut v: Vec<_> = table.rows.iter().collect();
            if sort != ParitySort::Map {
                v.sort_by(|(ka, a), (kb, b)| {
                    let o = match sort {
                        ParitySort::Difference => {
                            b.difference.unsigned_abs().cmp(&a.difference.unsigned_abs())
                        }
                        _ => b.percent.partial_cmp(&a.percent).unwrap_or(Ordering::Equal),
                    };
                    o.then_with(|| ka.cmp(kb))
                });
            }
            v
        }
    }
}

/// `map@COMPANY` in `width` characters: a long map name loses its middle, never the company nor
/// its ending, so the rows of one map stay told apart (USMF, USRT and DEMF) and so do maps that
/// differ only at the end (`sales…lines`, `sales…aders`) in a narrow pane.
fn label(k: &ParityKey, width: usize) -> String {
    match &k.company {
        Some(c) => {
            let full = format!("{}@{c}", k.map);
            let company = c.chars().count() + 1;
            if full.chars().count() <= width || company + 3 > width {
                pad(&full, width)
            } else {
                pad(&format!("{}@{c}", middle(&k.map, width - company)), width)
            }
        }
        None => pad(&middle(&k.map, width), width),
    }
}

/// `text` in `width` characters, cut in the middle (`sales…lines`).
fn middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width || width < 3 {
        return fit(text, width);
    }
    let head = (width - 1) / 2;
    let tail = width - 1 - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// The wide row before the sample time and the trend: the cells, the status and their spaces.
const WIDE_ROW: usize = 22 + 11 + 11 + 8 + 7 + 5 + 10;

pub fn render(f: &mut Frame, r: Rect, app: &App) {
    let t = app.theme();
    let table = &app.state.parity;
    let pending = app.state.parity_pending_maps();
    let pending_rows = table
        .rows
        .keys()
        .filter(|k| pending.contains(k.map.as_str()))
        .count();
    let title = format!(
        "Parity {} rows · {} drifting{} · {}",
        table.rows.len(),
        app.state.parity_drifting(),
        if pending_rows > 0 {
            format!(" · {pending_rows} pending")
        } else {
            String::new()
        },
        app.parity_sort.label()
    );
    let b = block(title, PaneId::Parity, app);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let w = usize::from(inner.width);
    let narrow = w < 70;
    // The sample time only where it fits beside a trend: at 70..87 columns (the 120-column
    // layout gives the pane 78) the full row would be cut mid-time and lose the sparkline.
    let timed = w >= WIDE_ROW + 8 + 6;
    let header = if narrow {
        format!(
            "{} {} {} {} trend",
            pad("map", 16),
            rpad("diff", 7),
            rpad("%", 6),
            pad("status", 7)
        )
    } else {
        format!(
            "{} {} {} {} {} {} {}trend",
            pad("map@company", 22),
            rpad("source", 11),
            rpad("target", 11),
            rpad("diff", 8),
            rpad("%", 7),
            pad("status", 9),
            if timed { "sampled  " } else { "" }
        )
    };
    let mut lines = vec![Line::from(Span::styled(pad(&header, w), t.title()))];
    if table.rows.is_empty() {
        lines.push(Line::from(Span::styled("no parity sample yet", t.dim())));
    }
    let h = usize::from(inner.height.saturating_sub(1));
    let rows = ordered(app);
    let view = app.parity_view;
    for (i, (k, row)) in rows.iter().enumerate().skip(view.offset).take(h) {
        // Before its initial sync a map is apart by design: pending, not drifting.
        let awaiting = pending.contains(k.map.as_str());
        let status = match row.status {
            _ if awaiting => "pending".to_owned(),
            ParityStatus::Within => format!("✓ ≤{}", row.allowed),
            ParityStatus::Drift => format!("✗ >{}", row.allowed),
        };
        let style = if awaiting {
            t.dim()
        } else if row.status == ParityStatus::Drift {
            t.bad()
        } else {
            t.ok()
        };
        let (cells, trend_w) = if narrow {
            (
                format!(
                    "{} {} {} ",
                    label(k, 16),
                    rpad(&row.difference.to_string(), 7),
                    rpad(&format!("{:.2}", row.percent), 6)
                ),
                w.saturating_sub(16 + 7 + 6 + 3 + 8),
            )
        } else {
            (
                format!(
                    "{} {} {} {} {} ",
                    label(k, 22),
                    rpad(&thousands(row.source), 11),
                    rpad(&thousands(row.target), 11),
                    rpad(&row.difference.to_string(), 8),
                    rpad(&format!("{:.3}", row.percent), 7)
                ),
                w.saturating_sub(WIDE_ROW + if timed { 9 } else { 0 }),
            )
        };
        // Row-level parity (`reconcile`), when there is one, says more than the trend: which rows differ.
        let (trend, trend_style) = match app.state.rows.get(k) {
            Some(rv) if rv.not_matching() == 0 => ("rows ✓ all match".to_owned(), t.ok()),
            Some(rv) => (
                format!(
                    "rows −{} +{} ≠{}",
                    thousands(rv.missing),
                    thousands(rv.extra),
                    thousands(rv.different)
                ),
                t.bad(),
            ),
            None => (sparkline(row.history.iter().map(|(_, d)| *d), trend_w), style),
        };
        let mut spans = vec![
            Span::raw(cells),
            Span::styled(pad(&status, if narrow { 7 } else { 9 }), style),
            Span::raw(" "),
        ];
        if !narrow && timed {
            spans.push(Span::styled(format!("{} ", hms(row.at)), t.dim()));
        }
        spans.push(Span::styled(pad(&trend, trend_w), trend_style));
        let line = Line::from(spans);
        lines.push(if i == view.selected && app.focus == PaneId::Parity {
            line.patch_style(t.selected())
        } else {
            line
        });
    }
    f.render_widget(Paragraph::new(lines), inner);
}
