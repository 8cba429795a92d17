//! Themes: role-keyed JSON files. The built-ins in `themes/` are embedded; a file of the same
//! name in the user's config folder (`themes/<name>.json`) overrides one. With NO_COLOR set,
//! every role is the terminal's default colour and emphasis comes from modifiers alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::catalog::Severity;

const BUILT_IN: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.json")),
    ("light", include_str!("../../themes/light.json")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.json"),
    ),
];

pub const NAMES: [&str; 3] = ["default", "light", "high-contrast"];

#[derive(Debug, Deserialize)]
struct ThemeFile {
    #[allow(dead_code)]
    name: Option<String>,
    roles: BTreeMap<String, String>,
}

/// Resolved styles by role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub border: Style,
    pub title: Style,
    pub selection: Style,
    pub header: Style,
    pub info: Style,
    pub warning: Style,
    pub error: Style,
    pub status: Style,
    pub banner: Style,
}

impl Theme {
    pub fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Info => self.info,
            Severity::Warning => self.warning,
            Severity::Error => self.error,
        }
    }

    /// The theme `name`: the user's file if there is one, else the built-in. Problems come
    /// back as a message for the status line, with the default theme in use.
    pub fn load(name: &str, config_dir: Option<&Path>, no_color: bool) -> (Theme, Option<String>) {
        let user = config_dir
            .map(|dir| dir.join("themes").join(format!("{name}.json")))
            .filter(|path| path.exists());
        let text = match &user {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(text),
                Err(e) => {
                    return (
                        Theme::built_in("default", no_color),
                        Some(format!("theme {}: {e}", path.display())),
                    )
                }
            },
            None => BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| (*t).to_owned()),
        };
        let Some(text) = text else {
            return (
                Theme::built_in("default", no_color),
                Some(format!(
                    "no theme {name:?}; built-ins are {}",
                    NAMES.join(", ")
                )),
            );
        };
        match Theme::parse(name, &text, no_color) {
            Ok(theme) => (theme, None),
            Err(e) => (
                Theme::built_in("default", no_color),
                Some(format!("theme {name}: {e}; using default")),
            ),
        }
    }

    pub fn built_in(name: &str, no_color: bool) -> Theme {
        let text = BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .unwrap_or(BUILT_IN[0].1);
        // The built-in files are tested to parse; a fallback keeps this total anyway.
        Theme::parse(name, text, no_color).unwrap_or_else(|_| Theme::monochrome(name))
    }

    pub fn parse(name: &str, text: &str, no_color: bool) -> Result<Theme, String> {
        let file: ThemeFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if no_color {
            return Ok(Theme::monochrome(name));
        }
        let color = |role: &str| -> Result<Color, String> {
            let value = file
                .roles
                .get(role)
                .ok_or_else(|| format!("role {role:?} is missing"))?;
            if value == "reset" {
                return Ok(Color::Reset);
            }
            Color::from_str(value).map_err(|_| format!("role {role:?}: {value:?} is not a colour"))
        };
        let fg = |role: &str| color(role).map(|c| Style::new().fg(c));
        Ok(Theme {
            name: name.to_owned(),
            text: fg("text")?,
            muted: fg("muted")?,
            accent: fg("accent")?.add_modifier(Modifier::BOLD),
            border: fg("border")?,
            title: fg("title")?.add_modifier(Modifier::BOLD),
            selection: Style::new()
                .fg(color("selection_fg")?)
                .bg(color("selection_bg")?),
            header: fg("header_fg")?.add_modifier(Modifier::BOLD),
            info: fg("info")?,
            warning: fg("warning")?,
            error: fg("error")?.add_modifier(Modifier::BOLD),
            status: Style::new().fg(color("status_fg")?).bg(color("status_bg")?),
            banner: Style::new()
                .fg(color("banner_fg")?)
                .bg(color("banner_bg")?)
                .add_modifier(Modifier::BOLD),
        })
    }

    /// No colours at all: NO_COLOR, or a last resort.
    pub fn monochrome(name: &str) -> Theme {
        let plain = Style::new();
        Theme {
            name: name.to_owned(),
            text: plain,
            muted: plain.add_modifier(Modifier::DIM),
            accent: plain.add_modifier(Modifier::BOLD),
            border: plain,
            title: plain.add_modifier(Modifier::BOLD),
            selection: plain.add_modifier(Modifier::REVERSED),
            header: plain.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            info: plain,
            warning: plain.add_modifier(Modifier::BOLD),
            error: plain.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            status: plain.add_modifier(Modifier::REVERSED),
            banner: plain.add_modifier(Modifier::REVERSED | Modifier::BOLD),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_parses() {
        for name in NAMES {
            let (theme, problem) = Theme::load(name, None, false);
            assert_eq!(problem, None, "{name}");
            assert_eq!(theme.name, name);
        }
    }

    #[test]
    fn a_user_theme_of_the_same_name_overrides_and_a_bad_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes")).unwrap();
        let mut custom: serde_json::Value = serde_json::from_str(BUILT_IN[0].1).unwrap();
        custom["roles"]["error"] = serde_json::json!("#123456");
        std::fs::write(dir.path().join("themes/default.json"), custom.to_string()).unwrap();
        let (theme, problem) = Theme::load("default", Some(dir.path()), false);
        assert_eq!(problem, None);
        assert_eq!(theme.error.fg, Some(Color::Rgb(0x12, 0x34, 0x56)));

        std::fs::write(
            dir.path().join("themes/light.json"),
            r#"{"roles":{"text":"nope"}}"#,
        )
        .unwrap();
        let (theme, problem) = Theme::load("light", Some(dir.path()), false);
        assert_eq!(theme.name, "default");
        assert!(problem.unwrap().contains("light"));
    }

    #[test]
    fn no_color_uses_modifiers_only() {
        let (theme, _) = Theme::load("default", None, true);
        assert_eq!(theme.error.fg, None);
        assert!(theme.selection.add_modifier.contains(Modifier::REVERSED));
    }
}
