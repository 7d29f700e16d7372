//! The console's state machine: the run as the reducer folds it ([`RunState`]), the view state
//! (focus, selections, filter, overlays) and the commands waiting to go to the engine.
//!
//! Nothing here touches a terminal or a channel: [`App::apply`] folds an envelope, [`App::on_key`]
//! and [`App::on_mouse`] turn input into view changes, modals and [`OperatorCommand`]s (collected in
//! an outbox the event loop drains). Tests drive it directly. Rendering reads it by `&self`.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::action::{Action, OperatorCommand, PaneId};
use super::keymap;
use super::layout::{self, Areas};
use super::modal::Modal;
use super::theme::Theme;
pub use super::view::{EventLine, ListView, LogMode, ParitySort};
use crate::engine::event::{Envelope, Event};
use crate::engine::state::{RunState, StepStatus, StepView};
use crate::runbook::Runbook;

/// Journal events kept per step for the log pane.
pub const EVENTS_PER_STEP: usize = 200;

/// The console's clock. Injected so tests and snapshots see a fixed time.
pub type Now = Box<dyn Fn() -> DateTime<Utc> + Send>;

/// What the console needs besides the run's state.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// The name every decision is journaled with.
    pub operator: String,
    pub theme: Theme,
    /// Shown when the console crashes or quits, so the operator knows where to resume from.
    pub journal_path: Option<PathBuf>,
    pub log_path: Option<PathBuf>,
    /// The runbook, for step parameters and the error-rate alert threshold. When absent, the console
    /// parses the runbook text of a `RunStarted` it sees.
    pub runbook: Option<Arc<Runbook>>,
}

impl ConsoleConfig {
    pub fn new(operator: impl Into<String>) -> Self {
        Self {
            operator: operator.into(),
            theme: Theme { color: true },
            journal_path: None,
            log_path: None,
            runbook: None,
        }
    }
}

/// A row of the step tree.
#[derive(Clone, Debug, PartialEq)]
pub enum TreeRow {
    Phase {
        name: String,
        steps: Range<usize>,
    },
    Wave {
        name: String,
        steps: Range<usize>,
    },
    /// An index into `RunState::steps`.
    Step(usize),
}

/// What the event loop should do after input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

pub struct App {
    pub state: RunState,
    pub cfg: ConsoleConfig,
    now: Now,
    pub focus: PaneId,
    /// The pane shown beside the tree in the compact layout (the last right-hand pane focused).
    pub side: PaneId,
    pub tree: Vec<TreeRow>,
    tree_steps: usize,
    pub steps_view: ListView,
    pub parity_view: ListView,
    pub parity_sort: ParitySort,
    pub errors_view: ListView,
    pub filter: String,
    pub filter_editing: bool,
    pub detail_scroll: u16,
    /// The detail pane's largest useful scroll at its last frame (its wrapped lines less its height), so
    /// `G` lands on the last page, not past it.
    pub detail_max: std::cell::Cell<u16>,
    pub log_scroll: usize,
    pub log_mode: LogMode,
    pub modal: Option<Modal>,
    pub help: bool,
    /// The help overlay's scroll, for terminals shorter than it (j/k, arrows, page keys).
    pub help_scroll: u16,
    pub flash: Option<String>,
    /// Follow the step the engine is working on (off once the operator moves the selection).
    pub follow: bool,
    pub step_events: HashMap<String, VecDeque<EventLine>>,
    /// The latest step that started, for follow mode.
    last_started: Option<usize>,
    /// The terminal size of the last frame (mouse hits and page sizes use it).
    pub size: Rect,
    pub spinner: usize,
    pub error_rate_threshold: Option<u64>,
    /// Set in a read-only replay or watch: the header shows it instead of live status, the footer
    /// and help show the timeline's keys, and no key produces an [`OperatorCommand`].
    pub replay: Option<super::replay::ReplayStatus>,
    outbox: Vec<OperatorCommand>,
    /// The last command sent, until the journal shows what became of it: the footer says "sending" until
    /// its decision is journaled (or refused), never "done" before.
    unacked: Option<OperatorCommand>,
    dirty: bool,
}

/// Everything [`App::apply`] has folded from the journal (as opposed to view state the keys
/// change): the replay keeps these as checkpoints and restores one instead of refolding a whole
/// run from its first event.
#[derive(Clone, Debug)]
pub struct Folded {
    state: RunState,
    step_events: HashMap<String, VecDeque<EventLine>>,
    last_started: Option<usize>,
    runbook: Option<Arc<Runbook>>,
    error_rate_threshold: Option<u64>,
}

impl Folded {
    /// The run's state at this checkpoint.
    pub fn state(&self) -> &RunState {
        &self.state
    }
}

impl App {
    pub fn new(state: RunState, cfg: ConsoleConfig, now: Now) -> Self {
        let mut app = Self {
            state,
            cfg,
            now,
            focus: PaneId::Steps,
            side: PaneId::Parity,
            tree: Vec::new(),
            tree_steps: usize::MAX,
            steps_view: ListView::default(),
            parity_view: ListView::default(),
            parity_sort: ParitySort::Worst,
            errors_view: ListView::default(),
            filter: String::new(),
            filter_editing: false,
            detail_scroll: 0,
            detail_max: std::cell::Cell::new(u16::MAX),
            log_scroll: 0,
            log_mode: LogMode::StepEvents,
            modal: None,
            help: false,
            help_scroll: 0,
            flash: None,
            unacked: None,
            follow: true,
            step_events: HashMap::new(),
            last_started: None,
            size: Rect::new(0, 0, 80, 24),
            spinner: 0,
            error_rate_threshold: None,
            replay: None,
            outbox: Vec::new(),
            dirty: true,
        };
        if let Some(rb) = app.cfg.runbook.clone() {
            app.error_rate_threshold = super::params::error_rate_threshold(&rb);
        }
        app.rebuild_tree();
        app.last_started = app
            .state
            .steps
            .iter()
            .rposition(|s| matches!(s.status, StepStatus::Running { .. }));
        app.follow_active();
        app
    }

    /// The console's current time.
    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    pub fn theme(&self) -> Theme {
        self.cfg.theme
    }

    /// True when something changed since the last [`App::take_dirty`].
    pub fn take_dirty(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Commands confirmed since the last call, oldest first.
    pub fn take_commands(&mut self) -> Vec<OperatorCommand> {
        std::mem::take(&mut self.outbox)
    }

    pub(super) fn send(&mut self, cmd: OperatorCommand) {
        self.flash = Some(format!(
            "sending {} as {}: waiting for the journal",
            command_label(&cmd),
            cmd.operator
        ));
        self.unacked = Some(cmd.clone());
        self.outbox.push(cmd);
    }

    /// What the journal says about the command in flight, once it says it.
    fn acknowledge(&mut self, env: &Envelope) {
        let Some(cmd) = &self.unacked else {
            return;
        };
        let text = match &env.event {
            Event::OperatorDecision {
                step,
                action,
                operator,
                ..
            } if *step == cmd.step && (*action == cmd.action || cmd.step.is_some()) => format!(
                "journaled (event #{}): {} by {operator}",
                env.id,
                command_label(&OperatorCommand {
                    action: *action,
                    ..cmd.clone()
                })
            ),
            Event::ApprovalRefused { step, reason, .. } if *step == cmd.step => {
                format!("NOT journaled: {} was refused: {reason}", command_label(cmd))
            }
            Event::Log {
                level: crate::model::event::LogLevel::Warn,
                message,
            } if message.starts_with(&format!("{:?} ", cmd.action)) => {
                format!("NOT journaled: {message}")
            }
            _ => return,
        };
        self.flash = Some(crate::util::inert_line(&text).into_owned());
        self.unacked = None;
    }

    /// Folds one journaled envelope into the console's state. Cheap: no work proportional to the
    /// run's size except when the plan itself changes.
    pub fn apply(&mut self, env: &Envelope) {
        if let Event::RunStarted { runbook, .. } = &env.event {
            self.step_events.clear();
            self.last_started = None;
            if self.cfg.runbook.is_none()
                && let Some(rb) = crate::runbook::load::load(&runbook.text, "runbook").runbook
            {
                self.cfg.runbook = Some(Arc::new(rb));
            }
            if let Some(rb) = &self.cfg.runbook {
                self.error_rate_threshold = super::params::error_rate_threshold(rb);
            }
        }
        self.state.apply(env);
        self.acknowledge(env);
        if self.state.steps.len() != self.tree_steps {
            self.rebuild_tree();
        }
        if let Some((step, text)) = super::params::event_line(env, &self.state) {
            let q = self.step_events.entry(step.to_owned()).or_default();
            if q.len() == EVENTS_PER_STEP {
                q.pop_front();
            }
            q.push_back(EventLine {
                seq: env.seq,
                at: env.at,
                text,
            });
        }
        if let Event::StepIntent { step, .. } = &env.event {
            self.last_started = self.state.steps.iter().position(|s| &s.info.id == step);
        }
        self.dirty = true;
    }

    /// A copy of what the envelopes folded so far produced (see [`Folded`]).
    pub fn folded(&self) -> Folded {
        Folded {
            state: self.state.clone(),
            step_events: self.step_events.clone(),
            last_started: self.last_started,
            runbook: self.cfg.runbook.clone(),
            error_rate_threshold: self.error_rate_threshold,
        }
    }

    /// Puts back what [`App::folded`] copied, keeping the view state (focus, selections, filter,
    /// follow). Afterwards the app is as if exactly those envelopes had been applied; call
    /// [`App::after_batch`] once the next envelopes are folded.
    pub fn restore_folded(&mut self, f: Folded) {
        self.state = f.state;
        self.step_events = f.step_events;
        self.last_started = f.last_started;
        self.cfg.runbook = f.runbook;
        self.error_rate_threshold = f.error_rate_threshold;
        self.rebuild_tree();
        self.dirty = true;
    }

    /// After a batch of envelopes: move the selection to the active step when following.
    pub fn after_batch(&mut self) {
        self.follow_active();
        self.sync_scroll();
    }

    fn follow_active(&mut self) {
        if !self.follow {
            return;
        }
        let waiting = self.state.pending.iter().find_map(|p| {
            p.step
                .as_ref()
                .and_then(|id| self.state.steps.iter().position(|s| &s.info.id == id))
        });
        if let Some(i) = waiting.or(self.last_started)
            && let Some(row) = self.tree.iter().position(|r| *r == TreeRow::Step(i))
        {
            self.steps_view.selected = row;
        }
        if !matches!(self.tree.get(self.steps_view.selected), Some(TreeRow::Step(_))) {
            self.steps_view.selected = self.next_step_row(self.steps_view.selected, true);
        }
    }

    fn rebuild_tree(&mut self) {
        self.tree.clear();
        let steps = &self.state.steps;
        let mut i = 0;
        while i < steps.len() {
            let phase = &steps[i].info.phase;
            let mut end = i;
            while end < steps.len() && steps[end].info.phase == *phase {
                end += 1;
            }
            let name = if phase.is_empty() {
                "unplanned".to_owned()
            } else {
                phase.to_string()
            };
            self.tree.push(TreeRow::Phase { name, steps: i..end });
            let mut j = i;
            while j < end {
                match &steps[j].info.wave {
                    Some(w) => {
                        let mut wend = j;
                        while wend < end && steps[wend].info.wave.as_ref() == Some(w) {
                            wend += 1;
                        }
                        self.tree.push(TreeRow::Wave {
                            name: w.clone(),
                            steps: j..wend,
                        });
                        self.tree.extend((j..wend).map(TreeRow::Step));
                        j = wend;
                    }
                    None => {
                        self.tree.push(TreeRow::Step(j));
                        j += 1;
                    }
                }
            }
            i = end;
        }
        self.tree_steps = steps.len();
    }

    /// The step under the tree's selection.
    pub fn selected_step(&self) -> Option<&StepView> {
        match self.tree.get(self.steps_view.selected) {
            Some(TreeRow::Step(i)) => self.state.steps.get(*i),
            _ => None,
        }
    }

    /// True while any step is running (quitting then asks first).
    pub fn any_running(&self) -> bool {
        self.state.header.outcome.is_none()
            && self
                .state
                .steps
                .iter()
                .any(|s| matches!(s.status, StepStatus::Running { .. }))
    }

    /// The layout of the current terminal size.
    pub fn areas(&self) -> Areas {
        layout::compute(self.size, self)
    }

    /// Handles one key press. Returns [`Flow::Quit`] when the console should close.
    pub fn on_key(&mut self, key: KeyEvent) -> Flow {
        if key.kind == KeyEventKind::Release {
            return Flow::Continue;
        }
        self.dirty = true;
        if self.modal.is_some() {
            return super::decide::modal_key(self, key);
        }
        if self.filter_editing {
            super::decide::filter_key(self, key);
            self.sync_scroll();
            return Flow::Continue;
        }
        if self.help {
            // Moving keys scroll a help taller than the terminal; any other key closes it (`q` still quits).
            let step: i32 = match key.code {
                KeyCode::Down | KeyCode::Char('j') => 1,
                KeyCode::Up | KeyCode::Char('k') => -1,
                KeyCode::PageDown | KeyCode::Char(' ') => 10,
                KeyCode::PageUp => -10,
                _ => 0,
            };
            if step != 0 {
                let v = i32::from(self.help_scroll) + step;
                self.help_scroll = u16::try_from(v.max(0)).unwrap_or(0);
                self.dirty = true;
                return Flow::Continue;
            }
            self.help = false;
            self.help_scroll = 0;
            if keymap::action_for(&key) != Some(Action::Quit) {
                return Flow::Continue;
            }
        }
        match keymap::action_for(&key) {
            Some(a) => self.on_action(a),
            None => Flow::Continue,
        }
    }

    /// Carries out one action.
    pub fn on_action(&mut self, action: Action) -> Flow {
        self.dirty = true;
        self.flash = None;
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-self.page()),
            Action::PageDown => self.move_by(self.page()),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::Left => self.focus_pane(PaneId::Steps),
            Action::Right => {
                let side = self.side;
                self.focus_pane(side);
            }
            Action::FocusNext => self.focus_pane(self.focus.next()),
            Action::FocusPrev => self.focus_pane(self.focus.prev()),
            Action::Select => {
                if self.focus == PaneId::Steps {
                    self.detail_scroll = 0;
                    self.focus_pane(PaneId::Detail);
                }
            }
            Action::Filter => {
                self.focus_pane(PaneId::Errors);
                self.filter_editing = true;
            }
            Action::Help => self.help = true,
            Action::Sort => {
                self.parity_sort = self.parity_sort.next();
                self.flash = Some(format!("parity sorted {}", self.parity_sort.label()));
            }
            Action::ToggleLog => {
                self.log_mode = match self.log_mode {
                    LogMode::StepEvents => LogMode::RunLog,
                    LogMode::RunLog => LogMode::StepEvents,
                };
                self.log_scroll = 0;
            }
            Action::Follow => {
                self.follow = !self.follow;
                self.follow_active();
                self.flash = Some(
                    if self.follow {
                        "following the active step"
                    } else {
                        "follow off"
                    }
                    .into(),
                );
            }
            Action::Back => {
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.errors_view = ListView::default();
                }
            }
            Action::Quit => {
                if self.any_running() {
                    self.modal = Some(Modal::quit());
                } else {
                    return Flow::Quit;
                }
            }
            Action::Approve
            | Action::Retry
            | Action::Skip
            | Action::Waive
            | Action::PauseResume
            | Action::MapPauseResume
            | Action::Abort => super::decide::open(self, action),
        }
        self.sync_scroll();
        Flow::Continue
    }

    fn focus_pane(&mut self, pane: PaneId) {
        self.focus = pane;
        if pane != PaneId::Steps {
            self.side = pane;
        }
    }

    fn page(&self) -> isize {
        let rows = layout::list_rows(&self.areas(), self, self.focus);
        isize::try_from(rows.max(2) - 1).unwrap_or(10)
    }

    fn move_by(&mut self, delta: isize) {
        match self.focus {
            PaneId::Steps => {
                self.follow = false;
                let cur = self.steps_view.selected;
                let target = step_by(cur, delta, self.tree.len());
                let forward = delta > 0;
                self.steps_view.selected = if matches!(self.tree.get(target), Some(TreeRow::Step(_))) {
                    target
                } else {
                    let n = self.next_step_row(target, forward);
                    if matches!(self.tree.get(n), Some(TreeRow::Step(_))) {
                        n
                    } else {
                        self.next_step_row(target, !forward)
                    }
                };
                self.detail_scroll = 0;
            }
            PaneId::Parity => {
                let len = self.state.parity.rows.len();
                self.parity_view.selected = step_by(self.parity_view.selected, delta, len);
            }
            PaneId::Errors => {
                let len = super::panes::errors::filtered_len_hint(self);
                self.errors_view.selected = step_by(self.errors_view.selected, delta, len);
            }
            PaneId::Detail => {
                let d = i64::try_from(delta).unwrap_or(0);
                let v = (i64::from(self.detail_scroll.min(self.detail_max.get())) + d)
                    .clamp(0, i64::from(self.detail_max.get()));
                self.detail_scroll = u16::try_from(v).unwrap_or(0);
            }
            PaneId::Log => {
                // The log is anchored at its newest line; scrolling moves back in time.
                let v = isize::try_from(self.log_scroll).unwrap_or(0) - delta;
                self.log_scroll = usize::try_from(v.max(0)).unwrap_or(0);
            }
        }
    }

    /// The nearest step row at or after (`forward`) / before `from`.
    fn next_step_row(&self, from: usize, forward: bool) -> usize {
        let is_step = |i: usize| matches!(self.tree.get(i), Some(TreeRow::Step(_)));
        if forward {
            (from..self.tree.len()).find(|&i| is_step(i)).unwrap_or(from)
        } else {
            (0..=from.min(self.tree.len().saturating_sub(1)))
                .rev()
                .find(|&i| is_step(i))
                .unwrap_or(from)
        }
    }

    /// Keeps every list's selection visible for the current layout.
    pub fn sync_scroll(&mut self) {
        let areas = self.areas();
        let h = layout::list_rows(&areas, self, PaneId::Steps);
        self.steps_view.clamp(self.tree.len(), h);
        let h = layout::list_rows(&areas, self, PaneId::Parity);
        self.parity_view.clamp(self.state.parity.rows.len(), h);
        let h = layout::list_rows(&areas, self, PaneId::Errors);
        let len = super::panes::errors::filtered_len_hint(self);
        self.errors_view.clamp(len, h);
    }

    /// A resize: remember the size and keep selections visible.
    pub fn on_resize(&mut self, width: u16, height: u16) {
        self.size = Rect::new(0, 0, width, height);
        self.sync_scroll();
        self.dirty = true;
    }

    /// A mouse click selects the row under it (and focuses its pane); the wheel scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        if self.modal.is_some() {
            return;
        }
        let pos = Position::new(m.column, m.row);
        let areas = self.areas();
        let Some(pane) = areas.pane_at(pos) else { return };
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                self.help = false;
                self.focus_pane(pane);
                if let Some(list) = layout::list_area(&areas, self, pane)
                    && list.contains(pos)
                {
                    let row = usize::from(pos.y - list.y);
                    match pane {
                        PaneId::Steps => {
                            let i = self.steps_view.offset + row;
                            if matches!(self.tree.get(i), Some(TreeRow::Step(_))) {
                                self.steps_view.selected = i;
                                self.follow = false;
                                self.detail_scroll = 0;
                            }
                        }
                        PaneId::Parity => self.parity_view.selected = self.parity_view.offset + row,
                        PaneId::Errors => self.errors_view.selected = self.errors_view.offset + row,
                        PaneId::Detail | PaneId::Log => {}
                    }
                }
            }
            MouseEventKind::ScrollDown => {
                self.focus_pane(pane);
                self.move_by(3);
            }
            MouseEventKind::ScrollUp => {
                self.focus_pane(pane);
                self.move_by(-3);
            }
            _ => return,
        }
        self.sync_scroll();
        self.dirty = true;
    }

    /// A clock tick: advance the spinner; redraw when something on screen moves with time.
    pub fn on_tick(&mut self) {
        self.spinner = self.spinner.wrapping_add(1);
        self.dirty = true;
    }
}

fn step_by(cur: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let v = isize::try_from(cur).unwrap_or(0).saturating_add(delta);
    usize::try_from(v.max(0)).unwrap_or(0).min(len - 1)
}

/// `Confirm enable-live-sync` / `Pause the run`.
fn command_label(cmd: &OperatorCommand) -> String {
    match &cmd.step {
        Some(s) => format!("{:?} {s}", cmd.action),
        None => format!("{:?} the run", cmd.action),
    }
}
