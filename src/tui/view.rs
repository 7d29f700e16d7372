//! View state of the panes: list selection and scroll, the parity order, the log mode, and the
//! per-step journal event lines.

use chrono::{DateTime, Utc};

/// Selection and scroll of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListView {
    pub selected: usize,
    pub offset: usize,
}

impl ListView {
    /// Keeps the selection inside `len` rows and visible in a window of `height` rows.
    pub fn clamp(&mut self, len: usize, height: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
    }
}

/// Parity table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ParitySort {
    #[default]
    Worst,
    Map,
    Difference,
    Percent,
}

impl ParitySort {
    pub fn next(self) -> Self {
        match self {
            ParitySort::Worst => ParitySort::Map,
            ParitySort::Map => ParitySort::Difference,
            ParitySort::Difference => ParitySort::Percent,
            ParitySort::Percent => ParitySort::Worst,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ParitySort::Worst => "worst first",
            ParitySort::Map => "by map",
            ParitySort::Difference => "by difference",
            ParitySort::Percent => "by percent",
        }
    }
}

/// The log pane's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogMode {
    #[default]
    StepEvents,
    RunLog,
}

/// One journal event of a step, as the log pane lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventLine {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub text: String,
}
