//! Where each pane goes, as a pure function of the terminal size and the app (so mouse hits and
//! page sizes are computed from the same rectangles the renderer uses).
//!
//! - Compact (narrower than [`WIDE_MIN_WIDTH`] or shorter than [`WIDE_MIN_HEIGHT`], e.g. 80×24):
//!   header, then the step tree on the left and one pane on the right chosen with a tab bar
//!   (Parity | Errors | Detail | Log), then the footer.
//! - Wide (e.g. 200×60): header with every pending decision, the tree on the left, and on the right
//!   parity above the error queue above detail and log side by side.

use ratatui::layout::{Position, Rect};

use super::action::PaneId;
use super::app::App;

pub const WIDE_MIN_WIDTH: u16 = 120;
pub const WIDE_MIN_HEIGHT: u16 = 32;
/// Pending decisions listed in the wide header (the rest are counted).
pub const WIDE_BANNER_LINES: usize = 3;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    pub compact: bool,
    pub header: Rect,
    pub steps: Rect,
    /// The tab bar above the side pane (compact only).
    pub tabs: Option<Rect>,
    pub parity: Option<Rect>,
    pub errors: Option<Rect>,
    pub detail: Option<Rect>,
    pub log: Option<Rect>,
    pub footer: Rect,
}

impl Areas {
    pub fn pane(&self, p: PaneId) -> Option<Rect> {
        match p {
            PaneId::Steps => Some(self.steps),
            PaneId::Parity => self.parity,
            PaneId::Errors => self.errors,
            PaneId::Detail => self.detail,
            PaneId::Log => self.log,
        }
    }

    /// The pane under a screen position.
    pub fn pane_at(&self, pos: Position) -> Option<PaneId> {
        PaneId::ALL
            .into_iter()
            .find(|p| self.pane(*p).is_some_and(|r| r.contains(pos)))
    }
}

/// The header's height: two lines of facts plus the banner (one line per pending decision in the
/// wide layout, up to [`WIDE_BANNER_LINES`]).
pub fn header_height(compact: bool, app: &App) -> u16 {
    let banner = if compact {
        1
    } else {
        app.state.pending.len().clamp(1, WIDE_BANNER_LINES)
    };
    2 + u16::try_from(banner).unwrap_or(1)
}

fn split_h(r: Rect, left: u16) -> (Rect, Rect) {
    let left = left.min(r.width);
    (
        Rect::new(r.x, r.y, left, r.height),
        Rect::new(r.x + left, r.y, r.width - left, r.height),
    )
}

fn split_v(r: Rect, top: u16) -> (Rect, Rect) {
    let top = top.min(r.height);
    (
        Rect::new(r.x, r.y, r.width, top),
        Rect::new(r.x, r.y + top, r.width, r.height - top),
    )
}

pub fn compute(size: Rect, app: &App) -> Areas {
    let compact = size.width < WIDE_MIN_WIDTH || size.height < WIDE_MIN_HEIGHT;
    let (header, rest) = split_v(size, header_height(compact, app));
    let (body, footer) = split_v(rest, rest.height.saturating_sub(1));
    let mut a = Areas {
        compact,
        header,
        footer,
        ..Areas::default()
    };
    if compact {
        let left = (body.width * 45 / 100).max(28.min(body.width));
        let (steps, right) = split_h(body, left);
        let (tabs, pane) = split_v(right, 1);
        a.steps = steps;
        a.tabs = Some(tabs);
        match app.side {
            PaneId::Parity | PaneId::Steps => a.parity = Some(pane),
            PaneId::Errors => a.errors = Some(pane),
            PaneId::Detail => a.detail = Some(pane),
            PaneId::Log => a.log = Some(pane),
        }
    } else {
        let left = (body.width * 34 / 100).max(40);
        let (steps, right) = split_h(body, left);
        let (parity, rest) = split_v(right, right.height * 36 / 100);
        let (errors, bottom) = split_v(rest, rest.height * 45 / 100);
        let (detail, log) = split_h(bottom, bottom.width / 2);
        a.steps = steps;
        a.parity = Some(parity);
        a.errors = Some(errors);
        a.detail = Some(detail);
        a.log = Some(log);
    }
    a
}

/// Inside a pane's border.
pub fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x.saturating_add(1),
        r.y.saturating_add(1),
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

/// Where a list pane draws its rows (inside the border, below any header lines).
pub fn list_area(areas: &Areas, app: &App, pane: PaneId) -> Option<Rect> {
    let r = inner(areas.pane(pane)?);
    match pane {
        PaneId::Steps => Some(r),
        PaneId::Parity => Some(split_v(r, 1).1),
        PaneId::Errors => Some(super::panes::errors::list_area(r, app, areas.compact)),
        PaneId::Detail | PaneId::Log => None,
    }
}

/// How many rows a pane shows (for paging and keeping the selection visible). A pane hidden in the
/// compact layout keeps the height it would have when shown.
pub fn list_rows(areas: &Areas, app: &App, pane: PaneId) -> usize {
    let shown = list_area(areas, app, pane).or_else(|| {
        // Hidden side pane: measure it in the slot it would take.
        let slot = areas.parity.or(areas.errors).or(areas.detail).or(areas.log)?;
        let r = inner(slot);
        Some(match pane {
            PaneId::Parity => split_v(r, 1).1,
            PaneId::Errors => super::panes::errors::list_area(r, app, areas.compact),
            _ => r,
        })
    });
    shown.map_or(1, |r| usize::from(r.height.max(1)))
}
