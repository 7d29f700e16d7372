//! The console's state machine without a terminal: keys → actions → modals → commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::tui as tui_support;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use cutover::engine::event::{DecisionKind, Event, OperatorAction};
use cutover::tui::app::Flow;
use cutover::tui::modal::ModalKind;
use cutover::tui::{App, OperatorCommand, PaneId};
use tui_support::*;

fn key(app: &mut App, code: KeyCode) -> Flow {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    app.on_key(KeyEvent::new(code, mods))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn one_command(app: &mut App) -> OperatorCommand {
    let mut cmds = app.take_commands();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    cmds.remove(0)
}

#[test]
fn retry_a_failed_step_is_confirmed_and_carries_the_operator() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    // Follow mode selected the step waiting on the operator.
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:vendors");
    key(&mut app, KeyCode::Char('r'));
    assert!(app.modal.is_some());
    assert!(
        app.take_commands().is_empty(),
        "nothing is sent before confirming"
    );
    key(&mut app, KeyCode::Char('y'));
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Retry);
    assert_eq!(cmd.step.as_ref().unwrap().as_str(), "wave-1:vendors");
    assert_eq!(cmd.operator, "alice");
    assert!(app.modal.is_none());
}

#[test]
fn escape_and_n_cancel_without_sending() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('r'));
    key(&mut app, KeyCode::Esc);
    assert!(app.modal.is_none());
    key(&mut app, KeyCode::Char('r'));
    key(&mut app, KeyCode::Char('n'));
    assert!(app.modal.is_none());
    assert!(app.take_commands().is_empty());
}

#[test]
fn skip_needs_a_reason() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Enter);
    let m = app.modal.as_ref().expect("still open");
    assert!(m.error.as_deref().unwrap().contains("reason"));
    typed(&mut app, "vendors loaded by DMF");
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "F");
    key(&mut app, KeyCode::Enter);
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Skip);
    assert_eq!(cmd.reason.as_deref(), Some("vendors loaded by DMF"));
}

#[test]
fn approve_needs_every_checklist_item_ticked() {
    let mut s = mid_run(30 * 3600);
    s.push(
        1,
        Event::StepIntent {
            step: "freeze-batch".into(),
            attempt: 2,
            handle: None,
        },
    );
    ask(
        &mut s,
        2,
        "freeze-batch",
        DecisionKind::ApproveManual,
        &["batch group stopped", "users logged off"],
    );
    let mut app = live_app(&s, true);
    // Select the manual step: it is the first row under its phase.
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "freeze-batch");
    key(&mut app, KeyCode::Char('a'));
    assert!(matches!(
        app.modal.as_ref().unwrap().kind,
        ModalKind::Checklist { .. }
    ));
    key(&mut app, KeyCode::Enter);
    assert!(
        app.modal
            .as_ref()
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("2 item")
    );
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Enter);
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Approve);
    assert_eq!(cmd.step.as_ref().unwrap().as_str(), "freeze-batch");
    assert_eq!(
        cmd.checklist_done,
        vec!["batch group stopped", "users logged off"]
    );
}

/// The envelope the engine journals for a decision, as the console receives it.
fn journaled(app: &mut App, id: i64, event: Event) {
    app.apply(&cutover::engine::Envelope {
        id,
        seq: u64::try_from(id).unwrap(),
        at: at(5 * 60),
        run_id: "7f3c2a91-5d4e-4b8a-9c1f-0a2b3c4d5e6f".into(),
        event,
    });
    app.after_batch();
}

#[test]
fn point_of_no_return_is_two_dialogs_one_per_journaled_question() {
    let mut s = mid_run(30 * 3600);
    ask(&mut s, 5, "enable-dualwrite", DecisionKind::Confirm, &[]);
    let base = s.envelopes.len() as i64;
    let mut app = live_app(&s, true);

    // First question (Confirm): one plain dialog, and the command goes on its confirmation.
    key(&mut app, KeyCode::Char('a'));
    let m = app.modal.as_ref().expect("the first dialog");
    assert_eq!((m.title.as_str(), &m.kind), ("Confirm step", &ModalKind::Confirm));
    key(&mut app, KeyCode::Enter);
    assert!(app.modal.is_none(), "no second dialog for the first question");
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Confirm);
    // Sent is not done: the footer says so until the journal has it.
    let flash = app.flash.clone().unwrap();
    assert!(
        flash.contains("sending Confirm enable-dualwrite as alice")
            && flash.contains("waiting for the journal"),
        "{flash}"
    );
    journaled(
        &mut app,
        base + 1,
        Event::OperatorDecision {
            step: Some("enable-dualwrite".into()),
            action: OperatorAction::Confirm,
            operator: "alice".into(),
            reason: None,
            checklist_done: vec![],
            identity: None,
        },
    );
    let flash = app.flash.clone().unwrap();
    assert_eq!(
        flash,
        format!(
            "journaled (event #{}): Confirm enable-dualwrite by alice",
            base + 1
        )
    );

    // Second question (PointOfNoReturn): one red dialog; Enter does not pass it, y does.
    journaled(
        &mut app,
        base + 2,
        Event::AwaitingOperator {
            step: Some("enable-dualwrite".into()),
            decision: DecisionKind::PointOfNoReturn,
            prompt: "`enable-dualwrite` is a POINT OF NO RETURN".into(),
            checklist: vec![],
            deadline: None,
        },
    );
    key(&mut app, KeyCode::Char('a'));
    let m = app.modal.as_ref().expect("the second dialog");
    assert_eq!(
        (m.title.as_str(), &m.kind),
        ("POINT OF NO RETURN", &ModalKind::Strong)
    );
    assert!(m.then.is_none(), "one dialog, not two");
    key(&mut app, KeyCode::Enter);
    assert!(app.modal.is_some(), "enter does not pass the point of no return");
    key(&mut app, KeyCode::Char('y'));
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Confirm);
    assert_eq!(cmd.step.as_ref().unwrap().as_str(), "enable-dualwrite");
    assert!(app.flash.clone().unwrap().starts_with("sending"));
}

#[test]
fn a_command_the_engine_did_not_take_says_so_instead_of_sent() {
    let mut s = mid_run(30 * 3600);
    ask(&mut s, 5, "enable-dualwrite", DecisionKind::Confirm, &[]);
    let base = s.envelopes.len() as i64;
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Enter);
    one_command(&mut app);
    journaled(
        &mut app,
        base + 1,
        Event::ApprovalRefused {
            step: Some("enable-dualwrite".into()),
            action: OperatorAction::Confirm,
            operator: "alice".into(),
            identity: None,
            reason: "alice may not approve a point of no return".into(),
        },
    );
    let flash = app.flash.clone().unwrap();
    assert!(
        flash.starts_with("NOT journaled: Confirm enable-dualwrite was refused"),
        "{flash}"
    );
}

#[test]
fn waive_applies_only_to_a_failed_gate() {
    let mut s = mid_run(30 * 3600);
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Char('w'));
    assert!(app.modal.is_none());
    assert!(
        app.flash
            .as_deref()
            .unwrap()
            .contains("nothing is waiting to waive")
    );
    s.push(
        10,
        Event::GateEvaluated {
            step: "wave-1:gate".into(),
            wave: Some("wave-1".into()),
            passed: false,
            failures: Vec::new(),
        },
    );
    ask(&mut s, 11, "wave-1:gate", DecisionKind::GateFailure, &[]);
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Char('w'));
    typed(&mut app, "drift is test data");
    key(&mut app, KeyCode::Enter);
    let cmd = one_command(&mut app);
    assert_eq!(
        (cmd.action, cmd.step.unwrap().as_str().to_owned()),
        (OperatorAction::Waive, "wave-1:gate".to_owned())
    );
    assert_eq!(cmd.reason.as_deref(), Some("drift is test data"));
}

#[test]
fn pause_then_resume_follows_the_journal() {
    let mut s = mid_run(30 * 3600);
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Char('p'));
    key(&mut app, KeyCode::Char('y'));
    assert_eq!(one_command(&mut app).action, OperatorAction::Pause);
    s.push(
        3,
        Event::OperatorDecision {
            step: None,
            action: OperatorAction::Pause,
            operator: "alice".into(),
            reason: None,
            checklist_done: Vec::new(),
            identity: None,
        },
    );
    let mut app = live_app(&s, true);
    assert!(app.state.paused);
    key(&mut app, KeyCode::Char('p'));
    key(&mut app, KeyCode::Char('y'));
    assert_eq!(one_command(&mut app).action, OperatorAction::Resume);
}

#[test]
fn abort_takes_a_reason_then_a_strong_confirmation() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('x'));
    assert!(app.modal.is_none(), "lower-case x is not abort");
    key(&mut app, KeyCode::Char('X'));
    typed(&mut app, "sponsor called it off");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.modal.as_ref().unwrap().kind, ModalKind::Strong);
    key(&mut app, KeyCode::Char('y'));
    let cmd = one_command(&mut app);
    assert_eq!(cmd.action, OperatorAction::Abort);
    assert_eq!(cmd.step, None);
    assert_eq!(cmd.reason.as_deref(), Some("sponsor called it off"));
}

#[test]
fn quit_asks_while_a_step_runs() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    assert!(app.any_running());
    assert_eq!(key(&mut app, KeyCode::Char('q')), Flow::Continue);
    assert_eq!(app.modal.as_ref().unwrap().kind, ModalKind::Quit);
    assert_eq!(key(&mut app, KeyCode::Char('n')), Flow::Continue);
    assert!(app.modal.is_none());
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(key(&mut app, KeyCode::Char('y')), Flow::Quit);
    let mut idle = app_from_nothing();
    assert_eq!(key(&mut idle, KeyCode::Char('q')), Flow::Quit);
}

fn app_from_nothing() -> App {
    app(cutover::engine::RunState::default(), true)
}

#[test]
fn focus_moves_with_tab_and_hl_and_filter_types_into_the_error_queue() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    assert_eq!(app.focus, PaneId::Steps);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, PaneId::Parity);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, PaneId::Steps);
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.focus, PaneId::Parity);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.focus, PaneId::Steps);
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.focus, PaneId::Errors);
    typed(&mut app, "dup");
    // While typing, decision keys are text, not actions.
    typed(&mut app, "a");
    assert!(app.modal.is_none());
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.filter, "dup");
    assert_eq!(cutover::tui::panes::errors::filtered_len_hint(&app), 3);
    key(&mut app, KeyCode::Esc);
    assert!(app.filter.is_empty());
}

#[test]
fn moving_in_the_tree_skips_headers_and_stops_following() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    assert!(app.follow);
    key(&mut app, KeyCode::Char('g'));
    assert!(!app.follow);
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "freeze-batch");
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    // Past the phase and wave headers, onto the first map step.
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:customers");
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "enable-dualwrite");
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:vendors");
}

#[test]
fn parity_sort_cycles_and_worst_is_first_by_default() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    let order = |app: &App| -> Vec<String> {
        cutover::tui::panes::parity::ordered(app)
            .iter()
            .map(|(k, _)| {
                format!(
                    "{}{}",
                    k.map,
                    k.company.as_deref().map(|c| format!("@{c}")).unwrap_or_default()
                )
            })
            .collect()
    };
    assert_eq!(order(&app), ["vendors", "customers@USMF", "customers@DEMF"]);
    key(&mut app, KeyCode::Char('o'));
    assert_eq!(order(&app), ["customers@DEMF", "customers@USMF", "vendors"]);
    key(&mut app, KeyCode::Char('o'));
    key(&mut app, KeyCode::Char('o'));
    // By percent: vendors 1.5%, USMF 0.2%, DEMF 0%.
    assert_eq!(order(&app), ["vendors", "customers@USMF", "customers@DEMF"]);
    assert!(app.flash.as_deref().unwrap().contains("by percent"));
}

#[test]
fn help_closes_on_any_key_without_acting_on_it() {
    let mut app = live_app(&mid_run(30 * 3600), true);
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    key(&mut app, KeyCode::Char('r'));
    assert!(!app.help);
    assert!(
        app.modal.is_none(),
        "the key that closes the help does nothing else"
    );
}

#[test]
fn shift_p_pauses_and_resumes_the_selected_live_map_not_the_run() {
    use cutover::engine::event::StepOutcome;
    let mut s = mid_run(30 * 3600);
    let mut app = live_app(&s, true);
    // The failed vendors step is selected: its map is not live, nothing opens.
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:vendors");
    key(&mut app, KeyCode::Char('P'));
    assert!(app.modal.is_none());
    assert!(
        app.flash.as_deref().unwrap_or("").contains("not live yet"),
        "{:?}",
        app.flash
    );
    assert!(app.take_commands().is_empty());

    s.push(
        2,
        Event::StepFinished {
            step: "wave-1:customers".into(),
            outcome: StepOutcome::Succeeded,
            outputs: std::collections::BTreeMap::new(),
        },
    );
    let mut app = live_app(&s, true);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:customers");
    key(&mut app, KeyCode::Char('P'));
    assert!(app.modal.is_some(), "{:?}", app.flash);
    assert!(
        app.take_commands().is_empty(),
        "nothing is sent before confirming"
    );
    key(&mut app, KeyCode::Char('y'));
    let cmd = one_command(&mut app);
    assert_eq!(
        (cmd.action, cmd.step, cmd.map.as_deref()),
        (OperatorAction::Pause, None, Some("customers"))
    );

    // The engine journaled the decision and ran the console's pause step: the map shows paused.
    let id = cutover::model::console_map_step(true, "customers", 1);
    s.push(
        3,
        Event::OperatorDecision {
            step: Some(id.clone()),
            action: OperatorAction::Pause,
            operator: "alice".into(),
            reason: None,
            checklist_done: Vec::new(),
            identity: None,
        },
    );
    s.push(
        4,
        Event::StepIntent {
            step: id.clone(),
            attempt: 1,
            handle: None,
        },
    );
    s.push(
        5,
        Event::StepFinished {
            step: id,
            outcome: StepOutcome::Succeeded,
            outputs: std::collections::BTreeMap::new(),
        },
    );
    let mut app = live_app(&s, true);
    assert!(app.state.paused_maps.contains("customers"));
    assert!(!app.state.paused, "the run is not paused");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected_step().unwrap().info.id.as_str(), "wave-1:customers");
    key(&mut app, KeyCode::Char('P'));
    key(&mut app, KeyCode::Char('y'));
    let cmd = one_command(&mut app);
    assert_eq!(
        (cmd.action, cmd.map.as_deref()),
        (OperatorAction::Resume, Some("customers"))
    );
}
