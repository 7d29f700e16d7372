//! User intents ([`Action`], produced by the key map) and what the console sends to the engine
//! ([`OperatorCommand`], one per confirmed modal).

use crate::engine::StepId;
use crate::engine::event::OperatorAction;

/// A pane of the console. `Tab` cycles through them in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaneId {
    Steps,
    Parity,
    Errors,
    Detail,
    Log,
}

impl PaneId {
    /// Every pane, in focus order.
    pub const ALL: [PaneId; 5] = [
        PaneId::Steps,
        PaneId::Parity,
        PaneId::Errors,
        PaneId::Detail,
        PaneId::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Steps => "Steps",
            PaneId::Parity => "Parity",
            PaneId::Errors => "Errors",
            PaneId::Detail => "Detail",
            PaneId::Log => "Log",
        }
    }

    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    pub fn prev(self) -> Self {
        let i = Self::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Self::ALL[(i + Self::ALL.len() - 1) % Self::ALL.len()]
    }
}

/// What the operator asked for, independent of the key that asked. Keys map to actions through
/// [`crate::tui::keymap::KEYMAP`]; the app turns actions into view changes, modals and commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Focus the pane to the left (`h`): the step tree.
    Left,
    /// Focus the pane to the right (`l`): the pane shown beside the tree.
    Right,
    FocusNext,
    FocusPrev,
    /// Show the selected item in the detail pane (Enter).
    Select,
    /// Start typing a filter for the error queue.
    Filter,
    Help,
    Quit,
    /// Approve a manual step or confirm a step waiting to start.
    Approve,
    Retry,
    Skip,
    Waive,
    PauseResume,
    /// Pause or resume the dual-write map of the selected step (a wave's map step), not the run.
    MapPauseResume,
    Abort,
    /// Cycle the parity table's sort order.
    Sort,
    /// Switch the log pane between the selected step's journal events and the run log.
    ToggleLog,
    /// Keep the selection on the step the engine is working on.
    Follow,
    /// Close the overlay or clear the filter.
    Back,
}

/// One operator decision, confirmed in a modal, for the engine's command channel. It carries the
/// operator's name so the scheduler journals who decided; the fields mirror the engine's
/// `engine::driver::Command` so wiring is a field-by-field copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorCommand {
    pub action: OperatorAction,
    /// The step decided on (`None` for pause, resume and abort).
    pub step: Option<StepId>,
    pub operator: String,
    /// Required for skip, waive and abort.
    pub reason: Option<String>,
    /// The checklist items the operator ticked (approve of a manual step).
    pub checklist_done: Vec<String>,
    /// With pause/resume: the one dual-write map to pause or resume, not the run.
    pub map: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_cycles_both_ways() {
        let mut p = PaneId::Steps;
        for _ in 0..PaneId::ALL.len() {
            p = p.next();
        }
        assert_eq!(p, PaneId::Steps);
        assert_eq!(PaneId::Steps.prev(), PaneId::Log);
        assert_eq!(PaneId::Log.next(), PaneId::Steps);
    }
}
