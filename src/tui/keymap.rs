//! The key map: one table from keys to [`Action`]s. The help overlay and the footer hints are
//! generated from it, so what `?` lists is exactly what the keys do.
//!
//! Conventions follow k9s and lazygit: arrows and `hjkl`, `tab`/`shift-tab` between panes, `/`
//! filter, `?` help, `q` quit, `esc` back. Decisions are single lower-case letters; the one that
//! ends the run, abort, is the capital `X` so a stray key cannot start it (it is confirmed anyway).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::Action;
use super::replay::ReplayAction;

/// One key a binding answers to.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub code: KeyCode,
    /// Control is the only modifier that distinguishes bindings (shift is in the character itself).
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

/// A row of the key map: the keys, the action, and the help text.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub group: &'static str,
    pub help: &'static str,
}

/// Every binding of the console outside modals (modals list their own keys on screen).
pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        group: "Move",
        help: "up",
    },
    Binding {
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        group: "Move",
        help: "down",
    },
    Binding {
        keys: &[code(KeyCode::Left), k('h')],
        action: Action::Left,
        group: "Move",
        help: "focus the step tree",
    },
    Binding {
        keys: &[code(KeyCode::Right), k('l')],
        action: Action::Right,
        group: "Move",
        help: "focus the pane beside the tree",
    },
    Binding {
        keys: &[code(KeyCode::PageUp), ctrl('u')],
        action: Action::PageUp,
        group: "Move",
        help: "page up",
    },
    Binding {
        keys: &[code(KeyCode::PageDown), ctrl('d')],
        action: Action::PageDown,
        group: "Move",
        help: "page down",
    },
    Binding {
        keys: &[code(KeyCode::Home), k('g')],
        action: Action::Top,
        group: "Move",
        help: "first row",
    },
    Binding {
        keys: &[code(KeyCode::End), k('G')],
        action: Action::Bottom,
        group: "Move",
        help: "last row",
    },
    Binding {
        keys: &[code(KeyCode::Tab)],
        action: Action::FocusNext,
        group: "Move",
        help: "next pane",
    },
    Binding {
        keys: &[code(KeyCode::BackTab)],
        action: Action::FocusPrev,
        group: "Move",
        help: "previous pane",
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        action: Action::Select,
        group: "View",
        help: "show the selection in the detail pane",
    },
    Binding {
        keys: &[k('/')],
        action: Action::Filter,
        group: "View",
        help: "filter the error queue by map or category",
    },
    Binding {
        keys: &[k('o')],
        action: Action::Sort,
        group: "View",
        help: "parity: cycle the sort order",
    },
    Binding {
        keys: &[k('v')],
        action: Action::ToggleLog,
        group: "View",
        help: "log: step events / run log",
    },
    Binding {
        keys: &[k('f')],
        action: Action::Follow,
        group: "View",
        help: "follow the active step",
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        action: Action::Back,
        group: "View",
        help: "close / clear the filter",
    },
    Binding {
        keys: &[k('?')],
        action: Action::Help,
        group: "View",
        help: "this help",
    },
    Binding {
        keys: &[k('a')],
        action: Action::Approve,
        group: "Decide",
        help: "approve a manual step / confirm a step",
    },
    Binding {
        keys: &[k('r')],
        action: Action::Retry,
        group: "Decide",
        help: "retry a failed step or gate",
    },
    Binding {
        keys: &[k('s')],
        action: Action::Skip,
        group: "Decide",
        help: "skip a failed step (with a reason)",
    },
    Binding {
        keys: &[k('w')],
        action: Action::Waive,
        group: "Decide",
        help: "waive a failed gate (with a reason)",
    },
    Binding {
        keys: &[k('p')],
        action: Action::PauseResume,
        group: "Decide",
        help: "pause / resume the run",
    },
    Binding {
        keys: &[k('P')],
        action: Action::MapPauseResume,
        group: "Decide",
        help: "pause / resume the selected step's map (a live map)",
    },
    Binding {
        keys: &[k('X')],
        action: Action::Abort,
        group: "Decide",
        help: "abort the run (with a reason)",
    },
    Binding {
        keys: &[k('q'), ctrl('c')],
        action: Action::Quit,
        group: "Console",
        help: "quit (the run resumes next time)",
    },
];

/// A row of the replay's timeline keys (`cutover replay`, `cutover watch`).
#[derive(Clone, Copy, Debug)]
pub struct ReplayBinding {
    pub keys: &'static [Key],
    pub action: ReplayAction,
    pub help: &'static str,
}

/// The timeline keys of a read-only replay or watch. They are looked up before [`KEYMAP`], so in a
/// replay `home`/`end` move on the timeline (the tree's first/last row stay on `g`/`G`). The
/// decision keys of [`KEYMAP`] are inert there.
pub const REPLAY_KEYMAP: &[ReplayBinding] = &[
    ReplayBinding {
        keys: &[k('.')],
        action: ReplayAction::StepForward,
        help: "next event",
    },
    ReplayBinding {
        keys: &[k(',')],
        action: ReplayAction::StepBack,
        help: "previous event",
    },
    ReplayBinding {
        keys: &[k('n'), k(']')],
        action: ReplayAction::NextLandmark,
        help: "next landmark (decision, question, gate, failure, alert, resume, finish)",
    },
    ReplayBinding {
        keys: &[k('N'), k('[')],
        action: ReplayAction::PrevLandmark,
        help: "previous landmark",
    },
    ReplayBinding {
        keys: &[k('t'), k(':')],
        action: ReplayAction::JumpPrompt,
        help: "jump to a time (HH:MM[:SS] UTC, RFC 3339) or an event (#ID)",
    },
    ReplayBinding {
        keys: &[k(' ')],
        action: ReplayAction::PlayPause,
        help: "play / pause at the recorded pace times the speed",
    },
    ReplayBinding {
        keys: &[k('+'), k('=')],
        action: ReplayAction::Faster,
        help: "faster (1×, 10×, 60×, 600×)",
    },
    ReplayBinding {
        keys: &[k('-')],
        action: ReplayAction::Slower,
        help: "slower",
    },
    ReplayBinding {
        keys: &[code(KeyCode::Home)],
        action: ReplayAction::Start,
        help: "the run's first event",
    },
    ReplayBinding {
        keys: &[code(KeyCode::End)],
        action: ReplayAction::End,
        help: "the run's last event (a watch follows new events there)",
    },
];

/// The timeline action bound to a key press in a replay, if any.
pub fn replay_action_for(key: &KeyEvent) -> Option<ReplayAction> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let is_ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    REPLAY_KEYMAP
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.ctrl == is_ctrl && same_code(k.code, key.code))
        })
        .map(|b| b.action)
}

/// The help rows of a replay: the timeline keys, then the console's keys that still work (keys the
/// timeline took are left out), then the decisions, marked inert.
pub fn replay_help_rows() -> Vec<(&'static str, String, &'static str)> {
    let taken = |key: &Key| {
        REPLAY_KEYMAP.iter().any(|b| {
            b.keys
                .iter()
                .any(|r| r.ctrl == key.ctrl && same_code(r.code, key.code))
        })
    };
    let mut rows: Vec<(&'static str, String, &'static str)> = REPLAY_KEYMAP
        .iter()
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(label).collect();
            ("Timeline", keys.join("/"), b.help)
        })
        .collect();
    let mut inert = Vec::new();
    for b in KEYMAP {
        let keys: Vec<String> = b.keys.iter().filter(|k| !taken(k)).map(label).collect();
        if keys.is_empty() {
            continue;
        }
        if b.group == "Decide" {
            inert.extend(keys);
        } else if b.action == Action::Quit {
            rows.push((b.group, keys.join("/"), "quit"));
        } else {
            rows.push((b.group, keys.join("/"), b.help));
        }
    }
    rows.push((
        "Read-only",
        inert.join(" "),
        "decisions: inert; the journal is open read-only (any key closes this)",
    ));
    rows
}

/// The action bound to a key press, if any. Key releases and repeats of the Windows console are
/// ignored by the caller; here only the code and the control modifier count.
pub fn action_for(key: &KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let is_ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    KEYMAP
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.ctrl == is_ctrl && same_code(k.code, key.code))
        })
        .map(|b| b.action)
}

fn same_code(a: KeyCode, b: KeyCode) -> bool {
    match (a, b) {
        // Some terminals report ctrl-letters in upper case.
        (KeyCode::Char(x), KeyCode::Char(y)) => x == y,
        _ => a == b,
    }
}

/// A key's label as the help shows it (`↑`, `k`, `ctrl-d`, `shift-tab`).
pub fn label(key: &Key) -> String {
    let base = match key.code {
        KeyCode::Up => "↑".to_owned(),
        KeyCode::Down => "↓".to_owned(),
        KeyCode::Left => "←".to_owned(),
        KeyCode::Right => "→".to_owned(),
        KeyCode::PageUp => "pgup".to_owned(),
        KeyCode::PageDown => "pgdn".to_owned(),
        KeyCode::Home => "home".to_owned(),
        KeyCode::End => "end".to_owned(),
        KeyCode::Tab => "tab".to_owned(),
        KeyCode::BackTab => "shift-tab".to_owned(),
        KeyCode::Enter => "enter".to_owned(),
        KeyCode::Esc => "esc".to_owned(),
        KeyCode::Char(' ') => "space".to_owned(),
        KeyCode::Char(c) => c.to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    if key.ctrl { format!("ctrl-{base}") } else { base }
}

/// The help rows: (group, keys joined with `/`, description), in table order.
pub fn help_rows() -> Vec<(&'static str, String, &'static str)> {
    KEYMAP
        .iter()
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(label).collect();
            (b.group, keys.join("/"), b.help)
        })
        .collect()
}

/// The first key label of an action (for footer hints), if bound.
pub fn key_for(action: Action) -> Option<String> {
    KEYMAP
        .iter()
        .find(|b| b.action == action)
        .and_then(|b| b.keys.first())
        .map(label)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn conventional_keys_map_to_their_actions() {
        let cases = [
            (KeyCode::Char('j'), KeyModifiers::NONE, Action::Down),
            (KeyCode::Down, KeyModifiers::NONE, Action::Down),
            (KeyCode::Char('k'), KeyModifiers::NONE, Action::Up),
            (KeyCode::Char('h'), KeyModifiers::NONE, Action::Left),
            (KeyCode::Char('l'), KeyModifiers::NONE, Action::Right),
            (KeyCode::Tab, KeyModifiers::NONE, Action::FocusNext),
            (KeyCode::BackTab, KeyModifiers::SHIFT, Action::FocusPrev),
            (KeyCode::Char('/'), KeyModifiers::NONE, Action::Filter),
            (KeyCode::Char('?'), KeyModifiers::SHIFT, Action::Help),
            (KeyCode::Char('q'), KeyModifiers::NONE, Action::Quit),
            (KeyCode::Char('c'), KeyModifiers::CONTROL, Action::Quit),
            (KeyCode::Char('a'), KeyModifiers::NONE, Action::Approve),
            (KeyCode::Char('r'), KeyModifiers::NONE, Action::Retry),
            (KeyCode::Char('s'), KeyModifiers::NONE, Action::Skip),
            (KeyCode::Char('w'), KeyModifiers::NONE, Action::Waive),
            (KeyCode::Char('p'), KeyModifiers::NONE, Action::PauseResume),
            (KeyCode::Char('P'), KeyModifiers::SHIFT, Action::MapPauseResume),
            (KeyCode::Char('X'), KeyModifiers::SHIFT, Action::Abort),
            (KeyCode::Enter, KeyModifiers::NONE, Action::Select),
            (KeyCode::Char('d'), KeyModifiers::CONTROL, Action::PageDown),
        ];
        for (code, mods, want) in cases {
            assert_eq!(action_for(&press(code, mods)), Some(want), "{code:?} {mods:?}");
        }
    }

    #[test]
    fn unbound_and_released_keys_do_nothing() {
        assert_eq!(action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE)), None);
        assert_eq!(
            action_for(&press(KeyCode::Char('j'), KeyModifiers::CONTROL)),
            None
        );
        let mut release = press(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for(&release), None);
    }

    #[test]
    fn no_key_is_bound_twice_and_every_action_is_documented() {
        let mut seen = HashSet::new();
        for b in KEYMAP {
            assert!(!b.help.is_empty());
            for key in b.keys {
                assert!(seen.insert(label(key)), "{} bound twice", label(key));
            }
        }
        let rows = help_rows();
        assert_eq!(rows.len(), KEYMAP.len());
        assert!(rows.iter().any(|(_, keys, _)| keys == "X"));
        assert_eq!(key_for(Action::Help).as_deref(), Some("?"));
    }

    #[test]
    fn replay_keys_are_unique_and_shadow_only_home_and_end() {
        let mut seen = HashSet::new();
        for b in REPLAY_KEYMAP {
            for key in b.keys {
                assert!(seen.insert(label(key)), "{} bound twice", label(key));
                let live = action_for(&press(key.code, KeyModifiers::NONE));
                assert!(
                    live.is_none() || matches!(live, Some(Action::Top | Action::Bottom)),
                    "{} also means {live:?}",
                    label(key)
                );
            }
        }
        assert_eq!(
            replay_action_for(&press(KeyCode::Char('.'), KeyModifiers::NONE)),
            Some(ReplayAction::StepForward)
        );
        assert_eq!(
            replay_action_for(&press(KeyCode::Char('a'), KeyModifiers::NONE)),
            None
        );
        let rows = replay_help_rows();
        assert!(
            rows.iter()
                .any(|(g, keys, _)| *g == "Read-only" && keys.contains('X'))
        );
        // `g` still moves to the first row; `home` is the timeline's now.
        let top = rows.iter().find(|(_, _, h)| *h == "first row").unwrap();
        assert_eq!(top.1, "g");
    }
}
