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
    let full = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let height = full.min(area.height);
    // Shorter than the help: it scrolls, and the title says so and where.
    let max = full.saturating_sub(height);
    let scroll = app.help_scroll.min(max);
    let title = if max == 0 {
        " Keys (?) ".to_owned()
    } else {
        format!(
            " Keys (?) · j/k scroll · {}{} ",
            if scroll > 0 { "↑ " } else { "" },
            if scroll < max { "more ↓" } else { "end" }
        )
    };
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
        .title(Span::styled(title, t.title()));
    f.render_widget(Paragraph::new(lines).block(b).scroll((scroll, 0)), r);
}
