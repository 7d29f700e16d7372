//! Draws a confirmation dialog centred over the console.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::super::modal::{Modal, ModalKind};
use super::super::theme::Theme;

pub fn render(f: &mut Frame, area: Rect, m: &Modal, t: Theme) {
    let strong = matches!(m.kind, ModalKind::Strong);
    // A prompt's own line breaks (a manual step's title, a blank line, its instructions) stay line breaks.
    let mut lines: Vec<Line> = m
        .lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| Line::raw(l.trim_end_matches('\r').to_owned()))
        .collect();
    match &m.kind {
        ModalKind::Checklist { items, cursor } => {
            lines.push(Line::raw(""));
            for (i, (text, done)) in items.iter().enumerate() {
                let mark = if *done { "[x]" } else { "[ ]" };
                let line = Line::raw(format!(" {}. {mark} {text}", i + 1));
                lines.push(if i == *cursor {
                    line.patch_style(t.selected())
                } else {
                    line
                });
            }
        }
        ModalKind::Reason { input } => {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(format!("> {input}▏"), t.accent())));
        }
        _ => {}
    }
    if let Some(e) = &m.error {
        lines.push(Line::from(Span::styled(e.clone(), t.bad())));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(m.hints(), t.dim())));
    let width = area.width.saturating_sub(4).min(70);
    let inner_w = usize::from(width.saturating_sub(2)).max(1);
    let wrapped: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner_w)).sum();
    let height = u16::try_from(wrapped + 2).unwrap_or(u16::MAX).min(area.height);
    let r = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    f.render_widget(Clear, r);
    let style = if strong { t.bad() } else { t.focus_border() };
    let b = Block::new()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(style)
        .title(Span::styled(format!(" {} ", m.title), style));
    f.render_widget(Paragraph::new(lines).block(b).wrap(Wrap { trim: false }), r);
}
