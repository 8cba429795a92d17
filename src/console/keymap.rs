//! Keybindings as data: the defaults in `keymap.json` (embedded), and a user file
//! (`keymap.json` in the config folder) whose entries replace or add to them. A binding maps a
//! key (`q`, `G`, `ctrl-c`, `enter`, `f5`) to an [`Action`]; `"none"` unbinds a key.

use std::collections::BTreeMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("keymap.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    Command,
    Filter,
    Back,
    Open,
    NextView,
    PreviousView,
    ViewOverview,
    ViewPeers,
    ViewRooms,
    ViewChannels,
    ViewSubscriptions,
    ViewApps,
    ViewLog,
    ViewCatalog,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Sort,
    /// Flip the sort direction.
    ReverseSort,
    Kick,
    SuspendApp,
    ActivateApp,
    CloseRoom,
    Tap,
    /// Open the selected log line in the composer.
    Edit,
    ViewComposer,
    ViewHistory,
    ViewBans,
    ViewNodes,
    /// Lift the selected ban.
    LiftBan,
    /// Copy the frame on screen (clipboard and a file).
    Copy,
    /// Read the flight recorder of the peer on screen.
    RecordedFrames,
    /// Unbinds a key in a user file.
    None,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "this help",
            Action::Command => "command line (:peers, :kick p3, :suspend demo …)",
            Action::Filter => "filter the current table",
            Action::Back => "back: close a dialog, clear the filter, leave a detail",
            Action::Open => "open the selected row",
            Action::NextView => "next view",
            Action::PreviousView => "previous view",
            Action::ViewOverview => "overview",
            Action::ViewPeers => "peers",
            Action::ViewRooms => "rooms",
            Action::ViewChannels => "channels",
            Action::ViewSubscriptions => "subscriptions",
            Action::ViewApps => "apps",
            Action::ViewLog => "live log",
            Action::ViewCatalog => "catalog of codes",
            Action::Down => "next row, newer log",
            Action::Up => "prev row, older log",
            Action::PageDown => "page down",
            Action::PageUp => "page up",
            Action::Top => "first row, oldest log",
            Action::Bottom => "last row, live log",
            Action::Sort => "sort by the next column (numbers largest first)",
            Action::ReverseSort => "reverse the sort",
            Action::Copy => "copy the frame on screen (clipboard and a file)",
            Action::RecordedFrames => "the peer's frames from the flight recorder",
            Action::Kick => "kick the selected peer (4020)",
            Action::SuspendApp => "suspend the selected app",
            Action::ActivateApp => "activate the selected app",
            Action::CloseRoom => "close the selected room",
            Action::Tap => "tap the selected peer's frames on or off",
            Action::Edit => "edit the selected log line in the composer",
            Action::ViewComposer => "composer",
            Action::ViewHistory => "history of closed peers and rooms",
            Action::ViewBans => "bans in force",
            Action::ViewNodes => "the cluster's nodes",
            Action::LiftBan => "lift the selected ban",
            Action::None => "nothing",
        }
    }

    /// Actions that change the server (asking first); `--readonly` refuses them. The
    /// command table says which they are.
    pub fn is_admin_action(self) -> bool {
        super::commands::for_action(self).is_some_and(|spec| spec.admin)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    bindings: BTreeMap<String, Action>,
}

/// The canonical name of a key press: `q`, `G`, `ctrl-c`, `enter`, `f5`.
pub fn key_name(key: &KeyEvent) -> Option<String> {
    let base = match key.code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        Some(format!("ctrl-{base}"))
    } else if key.modifiers.contains(KeyModifiers::ALT) {
        Some(format!("alt-{base}"))
    } else {
        Some(base)
    }
}

impl Keymap {
    pub fn defaults() -> Keymap {
        // The embedded defaults are checked by a test; an empty map is the fallback.
        Keymap {
            bindings: serde_json::from_str(DEFAULTS).unwrap_or_default(),
        }
    }

    /// The defaults with the user's file merged on top. A bad file is reported and ignored.
    pub fn load(config_dir: Option<&Path>) -> (Keymap, Option<String>) {
        let mut keymap = Keymap::defaults();
        let Some(path) = config_dir
            .map(|dir| dir.join("keymap.json"))
            .filter(|p| p.exists())
        else {
            return (keymap, None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                return (
                    keymap,
                    Some(format!(
                        "keymap {}: {e}; using the defaults",
                        path.display()
                    )),
                )
            }
        };
        match serde_json::from_str::<BTreeMap<String, Action>>(&text) {
            Ok(user) => {
                keymap.merge(user);
                (keymap, None)
            }
            Err(e) => (
                keymap,
                Some(format!(
                    "keymap {}: {e}; using the defaults",
                    path.display()
                )),
            ),
        }
    }

    pub fn merge(&mut self, user: BTreeMap<String, Action>) {
        for (key, action) in user {
            if action == Action::None {
                self.bindings.remove(&key);
            } else {
                self.bindings.insert(key, action);
            }
        }
    }

    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        key_name(key).and_then(|name| self.bindings.get(&name).copied())
    }

    /// The shortest key bound to an action (`q` over `ctrl-c`), for hints; `None` when the
    /// user unbound every key of it.
    pub fn key_for(&self, action: Action) -> Option<&str> {
        self.bindings
            .iter()
            .filter(|(_, bound)| **bound == action)
            .map(|(key, _)| key.as_str())
            .min_by_key(|key| key.chars().count())
    }

    /// Every binding grouped by action, for the help screen.
    pub fn by_action(&self) -> BTreeMap<Action, Vec<String>> {
        let mut grouped: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        for (key, action) in &self.bindings {
            grouped.entry(*action).or_default().push(key.clone());
        }
        grouped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_parse_and_bind_every_action() {
        let keymap = Keymap::defaults();
        let bound = keymap.by_action();
        for action in [
            Action::Quit,
            Action::Help,
            Action::Command,
            Action::Filter,
            Action::Kick,
            Action::ViewCatalog,
        ] {
            assert!(bound.contains_key(&action), "{action:?} has no key");
        }
    }

    #[test]
    fn a_user_file_replaces_adds_and_unbinds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keymap.json"),
            r#"{"K":"kick","x":"none","f5":"view_log"}"#,
        )
        .unwrap();
        let (keymap, problem) = Keymap::load(Some(dir.path()));
        assert_eq!(problem, None);
        let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
        assert_eq!(
            keymap.action(&press(KeyCode::Char('K'))),
            Some(Action::Kick)
        );
        assert_eq!(keymap.action(&press(KeyCode::Char('x'))), None);
        assert_eq!(keymap.action(&press(KeyCode::F(5))), Some(Action::ViewLog));
        assert_eq!(
            keymap.action(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );

        std::fs::write(dir.path().join("keymap.json"), r#"{"x":"explode"}"#).unwrap();
        let (keymap, problem) = Keymap::load(Some(dir.path()));
        assert!(problem.unwrap().contains("using the defaults"));
        assert_eq!(keymap, Keymap::defaults());
    }
}
