//! A replay's input: the timeline keys ([`keymap::REPLAY_KEYMAP`]), the jump prompt, and the
//! console's own keys, of which the view keys work as live and the decision keys only say that the
//! replay is read-only (no key can put an [`OperatorCommand`](crate::tui::OperatorCommand) in the app's
//! outbox).

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseEvent};

use super::{Replay, ReplayAction, SPEEDS, parse_jump};
use crate::tui::action::Action;
use crate::tui::app::Flow;
use crate::tui::keymap;

impl Replay {
    /// Handles a key. Returns [`Flow::Quit`] when the replay should close.
    pub fn on_key(&mut self, key: KeyEvent) -> Flow {
        if key.kind == KeyEventKind::Release {
            return Flow::Continue;
        }
        self.app.mark_dirty();
        if self.prompt.is_some() {
            self.prompt_key(key);
            return Flow::Continue;
        }
        if self.app.filter_editing {
            return self.app.on_key(key);
        }
        let action = keymap::action_for(&key);
        if self.help {
            self.help = false;
            if action != Some(Action::Quit) {
                return Flow::Continue;
            }
        }
        if let Some(ra) = keymap::replay_action_for(&key) {
            self.on_action(ra);
            return Flow::Continue;
        }
        match action {
            Some(Action::Quit) => Flow::Quit,
            Some(Action::Help) => {
                self.help = true;
                Flow::Continue
            }
            Some(
                a @ (Action::Approve
                | Action::Retry
                | Action::Skip
                | Action::Waive
                | Action::PauseResume
                | Action::MapPauseResume
                | Action::Abort),
            ) => {
                self.app.flash = Some(format!(
                    "read-only {}: {} is disabled; nothing here can change the journal",
                    self.mode.label().to_lowercase(),
                    keymap::key_for(a).unwrap_or_default()
                ));
                Flow::Continue
            }
            Some(_) => self.app.on_key(key),
            None => Flow::Continue,
        }
    }

    /// Mouse input selects and scrolls as in the live console.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        if self.prompt.is_none() {
            self.app.on_mouse(m);
        }
    }

    /// Carries out a timeline action.
    pub fn on_action(&mut self, action: ReplayAction) {
        self.app.flash = None;
        let len = self.index.len();
        match action {
            ReplayAction::StepForward => {
                self.playing = false;
                self.target = (self.target + 1).min(len);
            }
            ReplayAction::StepBack => {
                self.playing = false;
                self.target = self.target.saturating_sub(1).max(len.min(1));
            }
            ReplayAction::NextLandmark | ReplayAction::PrevLandmark => {
                self.playing = false;
                let forward = action == ReplayAction::NextLandmark;
                let found = if forward {
                    self.landmarks.iter().position(|(p, _)| *p > self.target)
                } else {
                    self.landmarks.iter().rposition(|(p, _)| *p < self.target)
                };
                match found {
                    Some(i) => {
                        let (p, m) = &self.landmarks[i];
                        self.target = *p;
                        self.app.flash = Some(format!(
                            "landmark {}/{} · {}: {}",
                            i + 1,
                            self.landmarks.len(),
                            crate::audit::text::enum_name(&m.kind),
                            m.label
                        ));
                    }
                    None => {
                        self.app.flash = Some(
                            if forward {
                                "no landmark after this event"
                            } else {
                                "no landmark before this event"
                            }
                            .into(),
                        );
                    }
                }
            }
            ReplayAction::JumpPrompt => self.prompt = Some(String::new()),
            ReplayAction::PlayPause => {
                if self.playing {
                    self.playing = false;
                    self.app.flash = Some("paused".into());
                } else {
                    self.start_playing();
                }
            }
            ReplayAction::Faster | ReplayAction::Slower => {
                let i = SPEEDS.iter().position(|s| *s >= self.speed).unwrap_or(0);
                let i = if action == ReplayAction::Faster {
                    (i + 1).min(SPEEDS.len() - 1)
                } else {
                    i.saturating_sub(1)
                };
                self.speed = SPEEDS[i];
                self.app.flash = Some(format!("speed {}×", self.speed));
            }
            ReplayAction::Start => {
                self.playing = false;
                self.target = len.min(1);
            }
            ReplayAction::End => {
                self.playing = false;
                self.target = len;
            }
        }
        self.sync_status();
    }

    fn prompt_key(&mut self, key: KeyEvent) {
        let Some(text) = self.prompt.as_mut() else { return };
        match key.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let input = std::mem::take(text);
                self.prompt = None;
                let reference = self
                    .pos
                    .checked_sub(1)
                    .and_then(|i| self.index.get(i))
                    .or(self.index.first())
                    .map_or_else(Utc::now, |e| e.at);
                let first = self.index.first().map_or(reference, |e| e.at);
                match parse_jump(&input, first) {
                    Ok(j) => {
                        self.playing = false;
                        self.jump(j);
                    }
                    Err(m) => self.app.flash = Some(m),
                }
            }
            KeyCode::Char(c) if text.chars().count() < 40 => text.push(c),
            _ => {}
        }
    }

    /// A resize, as in the live console.
    pub fn on_resize(&mut self, width: u16, height: u16) {
        self.app.on_resize(width, height);
    }
}
