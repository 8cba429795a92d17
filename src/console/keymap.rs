//! Keybindings as data: the defaults in `keymap.json` (embedded) and the views' keys in the
//! view table, and a user file (`keymap.json` in the config folder) whose entries replace or
//! add to them. A binding maps a key (`q`, `G`, `ctrl-c`, `enter`, `f5`) to an [`Action`], by
//! its name (`"kick"`) or spelled out with parameters (`{"kick": {"reason": "spam"}}`);
//! `"none"` unbinds a key.

use std::collections::BTreeMap;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use super::action::Action;
use super::views::VIEWS;

const DEFAULTS: &str = include_str!("keymap.json");

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
        let mut bindings = parse(DEFAULTS).unwrap_or_default();
        for spec in VIEWS {
            if let Some((key, _, _)) = spec.key {
                bindings.insert(key.to_owned(), Action::Show(spec.view));
            }
        }
        Keymap { bindings }
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
        match parse(&text) {
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
        key_name(key).and_then(|name| self.bindings.get(&name).cloned())
    }

    /// The shortest key bound to an action (`q` over `ctrl-c`), for hints; `None` when the
    /// user unbound every key of it.
    pub fn key_for(&self, action: &Action) -> Option<&str> {
        self.bindings
            .iter()
            .filter(|(_, bound)| *bound == action)
            .map(|(key, _)| key.as_str())
            .min_by_key(|key| key.chars().count())
    }

    /// Every binding grouped by action, for the help screen.
    pub fn by_action(&self) -> BTreeMap<Action, Vec<String>> {
        let mut grouped: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        for (key, action) in &self.bindings {
            grouped.entry(action.clone()).or_default().push(key.clone());
        }
        grouped
    }
}

/// A keymap file: each binding by name or spelled out; one bad binding spoils the file.
fn parse(text: &str) -> Result<BTreeMap<String, Action>, String> {
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    raw.into_iter()
        .map(|(key, binding)| {
            Action::from_binding(binding)
                .map(|action| (key.clone(), action))
                .map_err(|e| format!("{key:?}: {e}"))
        })
        .collect()
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
            Action::KICK,
            Action::Show(super::super::views::View::Catalog),
            Action::Show(super::super::views::View::Nodes),
        ] {
            assert!(bound.contains_key(&action), "{action:?} has no key");
        }
    }

    #[test]
    fn a_user_file_replaces_adds_and_unbinds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("keymap.json"),
            r#"{"K":"kick","x":"none","f5":"view_log","F":{"kick":{"reason":"spam"}}}"#,
        )
        .unwrap();
        let (keymap, problem) = Keymap::load(Some(dir.path()));
        assert_eq!(problem, None);
        let press = |code| KeyEvent::new(code, KeyModifiers::NONE);
        assert_eq!(
            keymap.action(&press(KeyCode::Char('K'))),
            Some(Action::KICK)
        );
        assert_eq!(
            keymap.action(&press(KeyCode::Char('F'))),
            Some(Action::Kick {
                peer: None,
                reason: Some("spam".to_owned())
            })
        );
        assert_eq!(keymap.action(&press(KeyCode::Char('x'))), None);
        assert_eq!(
            keymap.action(&press(KeyCode::F(5))),
            Some(Action::Show(super::super::views::View::Log))
        );
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
