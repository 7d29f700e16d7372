//! The log pane: the selected step's journal events, or (`v`) the run's log lines and alerts. The
//! newest line is at the bottom; scrolling moves back in time. Only the lines in view are built.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::action::PaneId;
use super::super::app::{App, LogMode};
use super::super::fmt::hms;
use super::block;
use crate::engine::event::{LogLevel, Severity};

pub fn render(f: &mut Frame, r: Rect, app: &App) {
    let t = app.theme();
    let (title, lines) = match app.log_mode {
        LogMode::StepEvents => {
            let step = app.selected_step();
            let title = step.map_or_else(|| "Events".to_owned(), |s| format!("Events · {}", s.info.id));
            let events = step.and_then(|s| app.step_events.get(s.info.id.as_str()));
            let h = usize::from(r.height.saturating_sub(2));
            let lines: Vec<Line> = match events {
                Some(q) => {
                    let end = q.len().saturating_sub(app.log_scroll);
                    let start = end.saturating_sub(h);
                    q.range(start..end)
                        .map(|e| {
                            Line::from(vec![
                                Span::styled(format!("{} #{} ", hms(e.at), e.seq), t.dim()),
                                Span::raw(e.text.clone()),
                            ])
                        })
                        .collect()
                }
                None => vec![Line::from(Span::styled(
                    "no journal events for this step yet",
                    t.dim(),
                ))],
            };
            (title, lines)
        }
        LogMode::RunLog => {
            let h = usize::from(r.height.saturating_sub(2));
            let logs = &app.state.logs;
            let end = logs.len().saturating_sub(app.log_scroll);
            let start = end.saturating_sub(h);
            let mut lines: Vec<Line> = logs
                .range(start..end)
                .map(|l| {
                    let (lvl, style) = match l.level {
                        LogLevel::Debug => ("debug", t.dim()),
                        LogLevel::Info => ("info ", t.base()),
                        LogLevel::Warn => ("warn ", t.warn()),
                        LogLevel::Error => ("error", t.bad()),
                    };
                    Line::from(vec![
                        Span::styled(format!("{} {lvl} ", hms(l.at)), style),
                        Span::raw(l.message.clone()),
                    ])
                })
                .collect();
            // The latest alerts follow the log, so a warning is never only in the scrollback.
            for a in app.state.alerts.iter().rev().take(3).rev() {
                let style = if a.severity == Severity::Critical {
                    t.bad()
                } else {
                    t.warn()
                };
                lines.push(Line::from(Span::styled(
                    format!("{} ALERT {:?} {}", hms(a.at), a.severity, a.message),
                    style,
                )));
            }
            let skip = lines.len().saturating_sub(h);
            ("Run log".to_owned(), lines.into_iter().skip(skip).collect())
        }
    };
    let b = block(format!("{title} (v: switch)"), PaneId::Log, app);
    f.render_widget(Paragraph::new(lines).block(b), r);
}
