//! Operator decisions: which pending question an action answers, the dialog that confirms it, and
//! the keys inside dialogs and the filter line.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::{Action, OperatorCommand};
use super::app::{App, Flow, ListView};
use super::modal::{Modal, ModalKind};
use crate::engine::event::{DecisionKind, OperatorAction};
use crate::engine::state::{PendingDecision, StepStatus};

fn kinds_for(action: Action) -> &'static [DecisionKind] {
    match action {
        Action::Approve => &[
            DecisionKind::ApproveManual,
            DecisionKind::Confirm,
            DecisionKind::PointOfNoReturn,
        ],
        Action::Retry => &[
            DecisionKind::StepFailed,
            DecisionKind::GateFailure,
            DecisionKind::AmbiguousInFlight,
        ],
        Action::Skip => &[
            DecisionKind::StepFailed,
            DecisionKind::AmbiguousInFlight,
            DecisionKind::Confirm,
            DecisionKind::ApproveManual,
            DecisionKind::PointOfNoReturn,
        ],
        Action::Waive => &[DecisionKind::GateFailure],
        _ => &[],
    }
}

/// The pending decision an action answers: the selected step's when it has a matching one, else
/// the oldest matching one (the dialog names the step, so the operator sees which).
fn target(app: &App, action: Action) -> Option<PendingDecision> {
    let kinds = kinds_for(action);
    let selected = app.selected_step().map(|s| s.info.id.clone());
    let matching = |p: &&PendingDecision| kinds.contains(&p.decision);
    app.state
        .pending
        .iter()
        .filter(matching)
        .find(|p| p.step.is_some() && p.step == selected)
        .or_else(|| app.state.pending.iter().find(matching))
        .cloned()
}

fn command(app: &App, action: OperatorAction, p: Option<&PendingDecision>) -> OperatorCommand {
    OperatorCommand {
        action,
        step: p.and_then(|p| p.step.clone()),
        operator: app.cfg.operator.clone(),
        reason: None,
        checklist_done: Vec::new(),
        map: None,
    }
}

/// The dialog that pauses or resumes the selected step's map, or why there is none (the footer says so):
/// the engine checks the same again and journals a refusal.
fn map_modal(app: &App, who: &str) -> Result<Modal, String> {
    if app.state.header.outcome.is_some() {
        return Err("the run has finished".into());
    }
    let Some(step) = app.selected_step() else {
        return Err("select a wave's map step to pause or resume its map".into());
    };
    let Some(map) = step.info.map.clone() else {
        return Err(format!(
            "`{}` is not a map's step: select a wave's map step to pause or resume its map",
            step.info.id
        ));
    };
    if step.status != StepStatus::Succeeded {
        return Err(format!(
            "map {map} is not live yet (`{}` has not succeeded): nothing to pause",
            step.info.id
        ));
    }
    let pause = !app.state.paused_maps.contains(&map);
    let (title, what) = if pause {
        (
            format!("Pause map {map}?"),
            "Dual-write stops syncing this map (its changes queue) until it is resumed; the run goes on.",
        )
    } else {
        (
            format!("Resume map {map}?"),
            "Dual-write syncs this map again, catching up what queued while it was paused.",
        )
    };
    let cmd = OperatorCommand {
        map: Some(map),
        ..command(
            app,
            if pause {
                OperatorAction::Pause
            } else {
                OperatorAction::Resume
            },
            None,
        )
    };
    Ok(Modal::new(
        &title,
        vec![
            what.into(),
            format!("Journaled {who} before the call; runs as a step of its own."),
        ],
        ModalKind::Confirm,
        Some(cmd),
    ))
}

fn step_label(app: &App, p: &PendingDecision) -> String {
    match &p.step {
        Some(id) => match app.state.step(id.as_str()) {
            Some(s) if &*s.info.title != id.as_str() => format!("{id}: {}", s.info.title),
            _ => id.to_string(),
        },
        None => "the run".to_owned(),
    }
}

/// The point of no return's own question (the engine's second of two): one red dialog that only `y` passes.
fn strong_ask(app: &App, p: &PendingDecision, cmd: Option<OperatorCommand>) -> Modal {
    Modal::new(
        "POINT OF NO RETURN",
        vec![
            format!("{} cannot be undone.", step_label(app, p)),
            "After it, rolling back means restoring from backup.".into(),
            format!(
                "Press y to start it as {} (journaled before it starts).",
                app.cfg.operator
            ),
        ],
        ModalKind::Strong,
        cmd,
    )
}

/// Opens the dialog for a decision action, or explains in the footer why there is nothing to decide.
pub fn open(app: &mut App, action: Action) {
    let who = format!("as {}", app.cfg.operator);
    let modal = match action {
        Action::PauseResume => {
            let (act, title, what) = if app.state.paused {
                (OperatorAction::Resume, "Resume the run?", "Steps start again.")
            } else {
                (
                    OperatorAction::Pause,
                    "Pause the run?",
                    "No new step starts; running steps finish.",
                )
            };
            Some(Modal::new(
                title,
                vec![what.into(), who],
                ModalKind::Confirm,
                Some(command(app, act, None)),
            ))
        }
        Action::Abort => {
            let first = Modal::new(
                "Abort the run",
                vec![
                    "Running steps are cancelled and the run ends Aborted.".into(),
                    format!("Why? (journaled {who})"),
                ],
                ModalKind::Reason { input: String::new() },
                Some(command(app, OperatorAction::Abort, None)),
            );
            Some(first.then(Modal::new(
                "Really abort?",
                vec!["The run ends. A new run starts from the beginning.".into()],
                ModalKind::Strong,
                None,
            )))
        }
        Action::MapPauseResume => match map_modal(app, &who) {
            Ok(m) => Some(m),
            Err(why) => {
                app.flash = Some(why);
                return;
            }
        },
        _ => target(app, action).map(|p| decision_modal(app, action, &p, &who)),
    };
    match modal {
        Some(m) => app.modal = Some(m),
        None => {
            let what = match action {
                Action::Approve => "approve or confirm",
                Action::Retry => "retry",
                Action::Skip => "skip",
                Action::Waive => "waive (only a failed gate can be waived)",
                _ => "decide",
            };
            app.flash = Some(format!("nothing is waiting to {what}"));
        }
    }
}

fn decision_modal(app: &App, action: Action, p: &PendingDecision, who: &str) -> Modal {
    let label = step_label(app, p);
    let mut lines = vec![label.clone()];
    // A manual step's prompt opens with its title, which the label already shows.
    let title = p
        .step
        .as_ref()
        .and_then(|id| app.state.step(id.as_str()))
        .map(|s| s.info.title.clone());
    let prompt = match (&title, p.prompt.split_once('\n')) {
        (Some(t), Some((first, rest))) if first.trim() == t.trim() => rest.trim_start_matches('\n'),
        _ => p.prompt.as_str(),
    };
    if !prompt.is_empty() {
        lines.push(String::new());
        lines.push(prompt.to_owned());
    }
    let m = match action {
        // The engine asks a point of no return twice (Confirm, then PointOfNoReturn), each journaled: one
        // dialog per question, the second red.
        Action::Approve if p.decision == DecisionKind::PointOfNoReturn && p.checklist.is_empty() => {
            strong_ask(app, p, Some(command(app, OperatorAction::Confirm, Some(p))))
        }
        Action::Approve => {
            let act = if p.decision == DecisionKind::ApproveManual {
                OperatorAction::Approve
            } else {
                OperatorAction::Confirm
            };
            lines.push(who.to_owned());
            let cmd = Some(command(app, act, Some(p)));
            if p.checklist.is_empty() {
                let title = if act == OperatorAction::Approve {
                    "Approve step"
                } else {
                    "Confirm step"
                };
                Modal::new(title, lines, ModalKind::Confirm, cmd)
            } else {
                let items = p.checklist.iter().map(|c| (c.clone(), false)).collect();
                Modal::new(
                    "Approve step",
                    lines,
                    ModalKind::Checklist { items, cursor: 0 },
                    cmd,
                )
            }
        }
        Action::Retry => {
            lines.push(format!("Run it again (a new attempt) {who}?"));
            Modal::new(
                "Retry",
                lines,
                ModalKind::Confirm,
                Some(command(app, OperatorAction::Retry, Some(p))),
            )
        }
        Action::Skip => {
            lines.push(format!("Why skip it? (journaled {who})"));
            Modal::new(
                "Skip step",
                lines,
                ModalKind::Reason { input: String::new() },
                Some(command(app, OperatorAction::Skip, Some(p))),
            )
        }
        _ => {
            lines.push(format!("Why waive the failed gate? (journaled {who})"));
            Modal::new(
                "Waive gate",
                lines,
                ModalKind::Reason { input: String::new() },
                Some(command(app, OperatorAction::Waive, Some(p))),
            )
        }
    };
    if p.decision == DecisionKind::PointOfNoReturn
        && !p.checklist.is_empty()
        && matches!(action, Action::Approve)
    {
        m.then(strong_ask(app, p, None))
    } else {
        m
    }
}

/// A key while a dialog is open.
pub fn modal_key(app: &mut App, key: KeyEvent) -> Flow {
    let Some(mut m) = app.modal.take() else {
        return Flow::Continue;
    };
    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
    if key.code == KeyCode::Esc || ctrl_c {
        app.flash = Some("cancelled".into());
        return Flow::Continue;
    }
    let confirmed = match &mut m.kind {
        ModalKind::Confirm => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => true,
            KeyCode::Char('n' | 'N') => {
                app.flash = Some("cancelled".into());
                return Flow::Continue;
            }
            _ => false,
        },
        ModalKind::Strong | ModalKind::Quit => match key.code {
            KeyCode::Char('y' | 'Y') => true,
            KeyCode::Char('n' | 'N') => {
                app.flash = Some("cancelled".into());
                return Flow::Continue;
            }
            _ => false,
        },
        ModalKind::Checklist { items, cursor } => match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                *cursor = cursor.saturating_sub(1);
                false
            }
            KeyCode::Down | KeyCode::Char('j') => {
                *cursor = (*cursor + 1).min(items.len().saturating_sub(1));
                false
            }
            KeyCode::Char(' ' | 'x') => {
                if let Some(item) = items.get_mut(*cursor) {
                    item.1 = !item.1;
                }
                false
            }
            KeyCode::Char(c @ '1'..='9') => {
                let i = (c as usize) - ('1' as usize);
                if let Some(item) = items.get_mut(i) {
                    item.1 = !item.1;
                    *cursor = i;
                }
                false
            }
            KeyCode::Enter => {
                let open = items.iter().filter(|(_, done)| !done).count();
                if open == 0 {
                    if let Some(cmd) = m.cmd.as_mut() {
                        cmd.checklist_done = items.iter().map(|(t, _)| t.clone()).collect();
                    }
                    true
                } else {
                    m.error = Some(format!("{open} item(s) not ticked yet"));
                    false
                }
            }
            _ => false,
        },
        ModalKind::Reason { input } => match key.code {
            KeyCode::Enter => {
                let reason = input.trim().to_owned();
                if reason.is_empty() {
                    m.error = Some("a reason is required".into());
                    false
                } else {
                    if let Some(cmd) = m.cmd.as_mut() {
                        cmd.reason = Some(reason);
                    }
                    true
                }
            }
            KeyCode::Backspace => {
                input.pop();
                false
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                if input.chars().count() < 500 {
                    input.push(c);
                }
                false
            }
            _ => false,
        },
    };
    if !confirmed {
        app.modal = Some(m);
        return Flow::Continue;
    }
    if m.kind == ModalKind::Quit {
        return Flow::Quit;
    }
    match m.then.take() {
        Some(mut next) => {
            next.cmd = m.cmd.take();
            app.modal = Some(*next);
        }
        None => {
            if let Some(cmd) = m.cmd.take() {
                app.send(cmd);
            }
        }
    }
    Flow::Continue
}

/// A key while the error-queue filter is being typed. Enter keeps the filter, Esc clears it.
pub fn filter_key(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Enter => app.filter_editing = false,
        KeyCode::Esc => {
            app.filter_editing = false;
            app.filter.clear();
        }
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => app.filter.push(c),
        _ => return,
    }
    app.errors_view = ListView::default();
}
