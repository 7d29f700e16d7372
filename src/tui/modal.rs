//! The confirmation dialogs. Every decision the console sends goes through one; a
//! point-of-no-return step is asked twice (the second ask takes only `y`, never Enter, so a
//! reflexive double Enter cannot pass it).

use super::action::OperatorCommand;

/// What the dialog asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum ModalKind {
    /// `y`/Enter confirms, `n`/Esc cancels.
    Confirm,
    /// The point-of-no-return ask: only `y` confirms.
    Strong,
    /// Tick items with space (or their number); Enter approves once all are ticked.
    Checklist {
        items: Vec<(String, bool)>,
        cursor: usize,
    },
    /// Type a reason; Enter confirms a non-empty one.
    Reason { input: String },
    /// Quit while a step is running: `y`/`n`.
    Quit,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Modal {
    pub title: String,
    pub lines: Vec<String>,
    pub kind: ModalKind,
    /// The command this dialog confirms (`None` for quit).
    pub cmd: Option<OperatorCommand>,
    /// The dialog that must also be confirmed before the command is sent.
    pub then: Option<Box<Modal>>,
    /// Why the last Enter was refused (an empty reason, unticked items).
    pub error: Option<String>,
}

impl Modal {
    pub fn new(
        title: impl Into<String>,
        lines: Vec<String>,
        kind: ModalKind,
        cmd: Option<OperatorCommand>,
    ) -> Self {
        Self {
            title: title.into(),
            lines,
            kind,
            cmd,
            then: None,
            error: None,
        }
    }

    pub fn then(mut self, next: Modal) -> Self {
        self.then = Some(Box::new(next));
        self
    }

    pub fn quit() -> Self {
        Self::new(
            "Quit the console?",
            vec![
                "A step is running. Quitting stops the run safely:".into(),
                "the journal stays consistent and the run resumes".into(),
                "where it stopped the next time you start it.".into(),
            ],
            ModalKind::Quit,
            None,
        )
    }

    /// The key hints shown at the bottom of the dialog.
    pub fn hints(&self) -> &'static str {
        match self.kind {
            ModalKind::Confirm => "y/enter: confirm   n/esc: cancel",
            ModalKind::Strong => "y: proceed (no undo)   n/esc: cancel",
            ModalKind::Checklist { .. } => "↑↓: move   space: tick   enter: approve   esc: cancel",
            ModalKind::Reason { .. } => "type a reason   enter: confirm   esc: cancel",
            ModalKind::Quit => "y: quit   n/esc: stay",
        }
    }
}
