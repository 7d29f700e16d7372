//! The header: what run this is, where it is, how long it has taken and has left, the freeze
//! window, and a banner for everything waiting on the operator (with deadlines).

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::App;
use super::super::fmt::{clock_ms, countdown, duration_ms, fit, hms, since_ms};
use super::super::layout::WIDE_BANNER_LINES;
use super::super::theme::Theme;
use crate::engine::event::{DecisionKind, RunOutcome, Severity};
use crate::engine::state::PendingDecision;

/// The freeze countdown turns red this close to the end.
pub const FREEZE_RED_MS: i64 = 4 * 3600 * 1000;

pub fn render(f: &mut Frame, r: Rect, app: &App, compact: bool) {
    let t = app.theme();
    let s = &app.state;
    let h = &s.header;
    let now = app.now();
    let w = usize::from(r.width);

    let run8: String = h.run_id.as_str().chars().take(8).collect();
    let mut l1 = match &app.replay {
        Some(rs) => replay_spans(rs, compact, t),
        None => vec![Span::styled(" cutover ", t.accent())],
    };
    l1.extend([Span::styled(
        if h.runbook.is_empty() {
            "(no run yet)".to_owned()
        } else {
            format!("{} v{}", h.runbook, h.version)
        },
        t.title(),
    )]);
    // Gateway mode is unsupported by Microsoft: said right after the runbook, where it is never cut off.
    if app
        .cfg
        .runbook
        .as_ref()
        .is_some_and(|rb| !rb.gateway_envs().is_empty())
    {
        // Short, so the facts after it still fit (the report and `validate` carry the whole sentence).
        let label = if compact {
            "  gateway: unsupported"
        } else {
            "  gateway mode: unsupported by Microsoft"
        };
        l1.push(Span::styled(label, t.warn()));
    }
    l1.extend([
        Span::raw(format!("  run {run8}")),
        Span::raw(format!("  operator {}", h.operators.join(", "))),
    ]);
    if let Some(who) = &h.signed_in {
        l1.push(Span::raw(format!(" (signed in: {who})")));
    }
    if h.resumes > 0 {
        l1.push(Span::styled(format!("  resumed ×{}", h.resumes), t.warn()));
    }

    let (phase, wave) = (
        h.phase.as_deref().unwrap_or("-"),
        h.wave.as_deref().unwrap_or("-"),
    );
    let mut l2 = vec![Span::raw(if compact {
        format!(" {phase} › {wave}")
    } else {
        format!(" phase {phase} · wave {wave}")
    })];
    if let Some(start) = h.started_at {
        let end = h.finished_at.unwrap_or(now);
        let label = if compact { "" } else { "elapsed " };
        l2.push(Span::raw(format!(" · {label}{}", clock_ms(since_ms(start, end)))));
    }
    // How the run ended comes first; then, once a point of no return has started, that it has and when; then the
    // ETA and the freeze window, which a narrow terminal cuts first.
    if let Some(o) = &h.outcome {
        let (text, style) = match o {
            RunOutcome::Succeeded => ("FINISHED ✓ succeeded".to_owned(), t.ok()),
            RunOutcome::Failed { message } => (format!("FINISHED ✗ failed: {message}"), t.bad()),
            RunOutcome::Aborted { reason } => (format!("ABORTED: {reason}"), t.bad()),
        };
        l2.push(Span::raw(" · "));
        l2.push(Span::styled(text, style));
    }
    if let Some(pnr) = s
        .steps
        .iter()
        .find(|st| st.info.point_of_no_return && st.attempts > 0)
        && let Some(at) = pnr.started_at
    {
        let text = if compact {
            format!(" · ⚑PNR {}", at.format("%H:%M"))
        } else {
            format!(
                " · ⚑ past the point of no return at {} ({})",
                super::super::fmt::hms(at),
                pnr.info.id
            )
        };
        l2.push(Span::styled(text, t.bad()));
    }
    if h.outcome.is_none() {
        let eta = s.eta();
        let left = if compact {
            String::new()
        } else if eta.rehearsed > 0 {
            format!(
                " ({} left, {} from an earlier run)",
                eta.remaining_steps, eta.rehearsed
            )
        } else {
            format!(" ({} left)", eta.remaining_steps)
        };
        l2.push(Span::raw(format!(
            " · ETA ≤{}{left}",
            duration_ms(eta.remaining_ms)
        )));
    }
    if let Some(fw) = &h.freeze_window {
        l2.push(Span::raw(" · "));
        l2.push(freeze_span(fw.start, fw.end, now, t));
    }
    if s.paused {
        l2.push(Span::styled(" · PAUSED", t.warn()));
    }
    let mut lines = vec![Line::from(l1), Line::from(l2)];
    let max = if compact { 1 } else { WIDE_BANNER_LINES };
    if s.pending.is_empty() {
        lines.push(quiet_line(app, w));
    } else {
        for (i, p) in s.pending.iter().take(max).enumerate() {
            let more = if i + 1 == max && s.pending.len() > max {
                s.pending.len() - max
            } else {
                0
            };
            let text = banner_text(p, now, compact, more, w);
            // A watcher or an auditor is not the one being waited on, and has no key that answers.
            let text = if app.replay.is_some() {
                watcher_text(&text)
            } else {
                text
            };
            lines.push(Line::from(Span::styled(
                super::super::fmt::pad(&text, w),
                t.banner(),
            )));
        }
    }
    f.render_widget(Paragraph::new(lines), r);
}

/// The replay's mark, first on the header's first line: `REPLAY` (or `WATCH`), `UNVERIFIED` when
/// the journal failed verification, and where on the timeline the panes are.
fn replay_spans(rs: &super::super::replay::ReplayStatus, compact: bool, t: Theme) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(format!(" {} ", rs.mode.label()), t.banner())];
    if rs.unverified {
        spans.push(Span::styled(" UNVERIFIED ", t.bad()));
    }
    let at = rs.at.map_or_else(String::new, |a| {
        if compact {
            format!(" {}", hms(a))
        } else {
            format!(" {}", a.format("%Y-%m-%d %H:%M:%S%.3fZ"))
        }
    });
    let id = match rs.event_id {
        Some(id) if !compact => format!(" #{id}"),
        _ => String::new(),
    };
    let play = if rs.playing {
        format!(" ▶ {}×", rs.speed)
    } else {
        " ❚❚".to_owned()
    };
    let loading = if rs.loading { " reading…" } else { "" };
    spans.push(Span::styled(
        format!(" event {}/{}{id}{at}{play}{loading} ", rs.position, rs.total),
        t.accent(),
    ));
    spans.push(Span::raw("│ "));
    spans
}

fn freeze_span(start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>, t: Theme) -> Span<'static> {
    if now < start {
        Span::raw(format!("freeze starts {}", countdown(start, now)))
    } else if now < end {
        let left = (end - now).num_milliseconds();
        let text = format!("freeze ends {}", countdown(end, now));
        if left <= FREEZE_RED_MS {
            Span::styled(format!("{text} !"), t.bad())
        } else {
            Span::raw(text)
        }
    } else {
        Span::styled(
            format!("freeze ENDED {} ago !", duration_ms(since_ms(end, now))),
            t.bad(),
        )
    }
}

/// The keys that answer a decision.
pub fn decision_keys(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::ApproveManual => "a approve",
        DecisionKind::Confirm | DecisionKind::PointOfNoReturn => "a confirm · s skip",
        DecisionKind::StepFailed => "r retry · s skip · X abort",
        DecisionKind::GateFailure => "r retry · w waive · X abort",
        DecisionKind::AmbiguousInFlight => "r re-run · s skip · X abort",
    }
}

fn decision_word(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::ApproveManual => "APPROVE",
        DecisionKind::Confirm => "CONFIRM",
        DecisionKind::PointOfNoReturn => "POINT OF NO RETURN",
        DecisionKind::StepFailed => "STEP FAILED",
        DecisionKind::GateFailure => "GATE FAILED",
        DecisionKind::AmbiguousInFlight => "IN-FLIGHT STEP",
    }
}

/// One banner line: `▶ WAITING ON YOU · APPROVE cutover-freeze: prompt · deadline 14:00 (in 12m) · [a approve]`.
/// Compact: the count of further decisions first and no prompt, so the keys and deadline fit 80 columns.
/// Wide: the prompt (at most 60 characters) gives way first, so the keys that answer the decision
/// stay on screen in `width` columns.
pub fn banner_text(
    p: &PendingDecision,
    now: DateTime<Utc>,
    compact: bool,
    more: usize,
    width: usize,
) -> String {
    let step = p.step.as_ref().map_or("run", |s| s.as_str());
    let deadline = p
        .deadline
        .map(|d| format!(" · deadline {} ({})", hms(d), countdown(d, now)))
        .unwrap_or_default();
    let more_text = if more > 0 {
        format!(" (+{more} more)")
    } else {
        String::new()
    };
    if compact {
        let due = p
            .deadline
            .map(|d| format!(" · due {}", countdown(d, now)))
            .unwrap_or_default();
        return format!(
            " ▶ YOU{more_text}: {} {step}{due} · {}",
            decision_word(p.decision),
            decision_keys(p.decision)
        );
    }
    let prompt = p.prompt.lines().next().unwrap_or("");
    let line = |prompt: &str| {
        format!(
            " ▶ WAITING ON YOU · {} {step}: {prompt} · for {}{deadline} · [{}]{more_text}",
            decision_word(p.decision),
            duration_ms(since_ms(p.since, now)),
            decision_keys(p.decision)
        )
    };
    let room = width.saturating_sub(line("").chars().count());
    line(&fit(prompt, room.min(60)))
}

/// The banner as a watcher or a replay shows it: who is waited on, without the keys that answer.
fn watcher_text(line: &str) -> String {
    let line = line
        .replacen("▶ WAITING ON YOU", "▶ WAITING ON THE OPERATOR", 1)
        .replacen("▶ YOU", "▶ OPERATOR", 1);
    match line.rfind(" · [") {
        Some(i) if line[i..].contains(']') => {
            let end = line[i..].find(']').map_or(line.len(), |j| i + j + 1);
            format!("{}{}", &line[..i], &line[end..])
        }
        _ => match line.rfind(" · ") {
            Some(i) if line.starts_with(" ▶ OPERATOR") => line[..i].to_owned(),
            _ => line,
        },
    }
}

fn quiet_line(app: &App, w: usize) -> Line<'static> {
    let t = app.theme();
    match app.state.alerts.back() {
        Some(a) if a.severity >= Severity::Warning => {
            let text = format!(
                " {} {} {}{}",
                if a.severity == Severity::Critical {
                    "ALERT"
                } else {
                    "warning"
                },
                hms(a.at),
                a.map.as_ref().map(|m| format!("[{m}] ")).unwrap_or_default(),
                a.message
            );
            let style = if a.severity == Severity::Critical {
                t.bad()
            } else {
                t.warn()
            };
            Line::from(Span::styled(fit(&text, w), style))
        }
        _ => Line::from(Span::styled(" nothing is waiting on you", t.dim())),
    }
}
