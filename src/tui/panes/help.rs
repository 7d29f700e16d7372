//! The help overlay, generated from the key map (so it cannot drift from what the keys do), plus
//! the status symbols.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::app::App;
use super::super::fmt::pad;
use super::super::keymap::help_rows;

pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme();
    let rows = help_rows();
    let mut lines = Vec::new();
    let mut group = "";
    for (g, keys, help) in &rows {
        if *g != group {
            group = g;
            lines.push(Line::from(Span::styled((*g).to_owned(), t.title())));
        }
        lines.push(Line::from(vec![
            Span::styled(pad(&format!("  {keys}"), 20), t.accent()),
            Span::raw(*help),
        ]));
    }
    lines.push(Line::from(Span::styled("Status", t.title())));
    lines.push(Line::raw("  ○ pending  ⠋ running  ◆ waiting for you  ✓ done"));
    lines.push(Line::raw(
        "  ✗ failed  » skipped  ≈ waived  ⚑PNR point of no return",
    ));
    lines.push(Line::raw(
        "  mouse: click selects, wheel scrolls · any key closes",
    ));
    let width = area.width.min(76);
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let r = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    f.render_widget(Clear, r);
    let b = Block::new()
        .borders(Borders::ALL)
        .border_style(t.focus_border())
        .title(Span::styled(" Keys (?) ", t.title()));
    f.render_widget(Paragraph::new(lines).block(b), r);
}
