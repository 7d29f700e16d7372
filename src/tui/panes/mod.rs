//! The panes. Each renders from `&App` (the run's state plus view state) into its rectangle and
//! draws only what is visible: lists are indexed from their scroll offset, never walked whole.

pub mod detail;
pub mod errors;
pub mod header;
pub mod help;
pub mod log;
pub mod modal;
pub mod parity;
pub mod steps;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use super::action::{Action, PaneId};
use super::app::App;
use super::keymap::key_for;
use super::theme::Theme;
use crate::engine::state::StepStatus;

/// Draws the whole console for the app's current size.
pub fn draw(f: &mut Frame, app: &App) {
    let areas = super::layout::compute(f.area(), app);
    header::render(f, areas.header, app, areas.compact);
    steps::render(f, areas.steps, app);
    if let Some(r) = areas.tabs {
        render_tabs(f, r, app);
    }
    if let Some(r) = areas.parity {
        parity::render(f, r, app);
    }
    if let Some(r) = areas.errors {
        errors::render(f, r, app, areas.compact);
    }
    if let Some(r) = areas.detail {
        detail::render(f, r, app);
    }
    if let Some(r) = areas.log {
        log::render(f, r, app);
    }
    render_footer(f, areas.footer, app);
    if app.help {
        help::render(f, f.area(), app);
    }
    if let Some(m) = &app.modal {
        modal::render(f, f.area(), m, app.theme());
    }
}

/// A pane's frame: the title, and a bold border when it has the focus.
pub fn block(title: String, pane: PaneId, app: &App) -> Block<'static> {
    let t = app.theme();
    let focused = app.focus == pane;
    let (border, ty, mark) = if focused {
        (t.focus_border(), BorderType::Thick, "▶ ")
    } else {
        (t.border(), BorderType::Plain, "")
    };
    Block::new()
        .borders(Borders::ALL)
        .border_type(ty)
        .border_style(border)
        .title(Span::styled(format!("{mark}{title}"), t.title()))
}

/// The symbol and word of a step status; the symbol alone is readable without colour.
pub fn status_symbol(status: &StepStatus, spinner: usize) -> (&'static str, &'static str) {
    const SPIN: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
    match status {
        StepStatus::Pending => ("○", "pending"),
        StepStatus::Running { .. } => (SPIN[spinner % SPIN.len()], "running"),
        StepStatus::AwaitingOperator { .. } => ("◆", "waiting for you"),
        StepStatus::Succeeded => ("✓", "done"),
        StepStatus::Failed { .. } => ("✗", "failed"),
        StepStatus::Skipped { .. } => ("»", "skipped"),
        StepStatus::Waived { .. } => ("≈", "waived"),
    }
}

pub fn status_style(status: &StepStatus, t: Theme) -> Style {
    match status {
        StepStatus::Pending => t.dim(),
        StepStatus::Running { .. } => t.running(),
        StepStatus::AwaitingOperator { .. } => t.warn(),
        StepStatus::Succeeded => t.ok(),
        StepStatus::Failed { .. } => t.bad(),
        StepStatus::Skipped { .. } | StepStatus::Waived { .. } => t.warn(),
    }
}

fn render_tabs(f: &mut Frame, r: Rect, app: &App) {
    let t = app.theme();
    let mut spans = Vec::new();
    for p in [PaneId::Parity, PaneId::Errors, PaneId::Detail, PaneId::Log] {
        let badge = match p {
            PaneId::Parity if app.state.parity_drifting() > 0 => format!(" ✗{}", app.state.parity_drifting()),
            PaneId::Errors if app.state.errors.seen_total > 0 => format!(" {}", app.state.errors.seen_total),
            _ => String::new(),
        };
        let text = format!(" {}{badge} ", p.title());
        let style = if app.side == p { t.selected() } else { t.dim() };
        spans.push(Span::styled(text, style));
        spans.push(Span::raw("│"));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), r);
}

fn render_footer(f: &mut Frame, r: Rect, app: &App) {
    let t = app.theme();
    let k = |a: Action| key_for(a).unwrap_or_default();
    let text = match (&app.flash, app.filter_editing) {
        (_, true) => "type to filter by map or category · enter: keep · esc: clear".to_owned(),
        (Some(msg), _) => msg.clone(),
        (None, _) => {
            // One list of (action, label): the narrow footer drops the labels of the decisions.
            let decide = [
                (Action::Approve, "approve"),
                (Action::Retry, "retry"),
                (Action::Skip, "skip"),
                (Action::Waive, "waive"),
                (Action::PauseResume, "pause"),
                (Action::Abort, "abort"),
            ];
            let decisions = if r.width < 100 {
                let keys: Vec<String> = decide.iter().map(|(a, _)| k(*a)).collect();
                format!("{} decide", keys.join(" "))
            } else {
                let keys: Vec<String> = decide.iter().map(|(a, l)| format!("{} {l}", k(*a))).collect();
                keys.join("  ")
            };
            format!(
                "{} help  tab pane  {} filter  {decisions}  {} quit",
                k(Action::Help),
                k(Action::Filter),
                k(Action::Quit)
            )
        }
    };
    let mut right = String::new();
    if app.state.paused {
        right.push_str(" PAUSED");
    }
    if app.follow {
        right.push_str(" follow");
    }
    let width = usize::from(r.width);
    let left = super::fmt::fit(&text, width.saturating_sub(right.chars().count() + 1));
    let gap = width.saturating_sub(left.chars().count() + right.chars().count());
    let style = if app.flash.is_some() { t.accent() } else { t.dim() };
    let line = Line::from(vec![
        Span::styled(left, style),
        Span::raw(" ".repeat(gap)),
        Span::styled(right, t.warn()),
    ]);
    f.render_widget(Paragraph::new(line), r);
}
