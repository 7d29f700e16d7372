//! Drawing a replay: the live console's panes exactly as [`crate::tui::panes::draw`] draws them (the
//! header says REPLAY, see `panes/header.rs`), with the footer and the help overlay replaced by
//! the timeline's: its keys, the jump prompt, and the decisions marked inert.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::Replay;
use crate::tui::fmt::{fit, pad};
use crate::tui::keymap::replay_help_rows;

/// Draws the whole replay screen for the app's current size.
pub fn draw(f: &mut Frame, replay: &Replay) {
    let app = &replay.app;
    crate::tui::panes::draw(f, app);
    let areas = crate::tui::layout::compute(f.area(), app);
    render_footer(f, areas.footer, replay);
    if replay.help {
        render_help(f, f.area(), replay);
    }
}

fn render_footer(f: &mut Frame, r: Rect, replay: &Replay) {
    let app = &replay.app;
    let t = app.theme();
    let (text, style) = match (&replay.prompt, &app.flash, app.filter_editing) {
        (Some(p), _, _) => (
            format!("jump to (HH:MM[:SS] UTC, RFC 3339 or #event-id), enter: go, esc: cancel: {p}▏"),
            t.accent(),
        ),
        (None, _, true) => (
            "type to filter by map or category · enter: keep · esc: clear".to_owned(),
            t.dim(),
        ),
        (None, Some(msg), false) => (msg.clone(), t.accent()),
        (None, None, false) => {
            let text = if r.width < 100 {
                ", . step  n N mark  t jump  space play  ? help  q quit"
            } else {
                ", . step  n N landmark  t jump to time  space play/pause  + - speed  home end  ? help  q quit"
            };
            (text.to_owned(), t.dim())
        }
    };
    let right = if app.follow { " follow" } else { "" };
    let width = usize::from(r.width);
    let left = fit(&text, width.saturating_sub(right.chars().count() + 1));
    let gap = width.saturating_sub(left.chars().count() + right.chars().count());
    let line = Line::from(vec![
        Span::styled(left, style),
        Span::raw(" ".repeat(gap)),
        Span::styled(right, t.warn()),
    ]);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(line), r);
}

fn render_help(f: &mut Frame, area: Rect, replay: &Replay) {
    let t = replay.app.theme();
    let mut lines = Vec::new();
    let mut group = "";
    for (g, keys, help) in replay_help_rows() {
        if g != group {
            group = g;
            lines.push(Line::from(Span::styled(g.to_owned(), t.title())));
        }
        lines.push(Line::from(vec![
            Span::styled(pad(&format!("  {keys}"), 20), t.accent()),
            Span::raw(help),
        ]));
    }
    let width = area.width.min(90);
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
    let title = format!(" Keys · {} (?) ", replay.mode().label());
    let b = Block::new()
        .borders(Borders::ALL)
        .border_style(t.focus_border())
        .title(Span::styled(title, t.title()));
    f.render_widget(Paragraph::new(lines).block(b), r);
}
