//! What the user asks the console to do, whether by a key (the keymap) or by a command line
//! (`:kick p3 spam`): one [`Action`], carried out in one place (`App::perform`). An action
//! about an object names it, or leaves it unset to mean the row selected (or the object on
//! screen) in the view of its kind.

use serde::{Deserialize, Serialize};

use super::views::{View, VIEWS};
use crate::protocol::admin::AppStatus;

/// In a keymap file a binding is a name (`"kick"`, `"view_peers"`), as it always was, or an
/// action with its parameters (`{"kick": {"reason": "spam"}}`, `{"show": "nodes"}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    Show(View),
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Sort,
    /// Flip the sort direction.
    ReverseSort,
    /// Close a peer with 4020, saying why when there is a reason.
    Kick {
        #[serde(default)]
        peer: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    SetAppStatus {
        #[serde(default)]
        app: Option<String>,
        status: AppStatus,
    },
    CloseRoom {
        #[serde(default)]
        room: Option<String>,
    },
    /// Show a peer's frames in the log, or stop; `on` unset turns it around.
    Tap {
        #[serde(default)]
        peer: Option<String>,
        #[serde(default)]
        on: Option<bool>,
    },
    /// Open the selected log line in the composer.
    Edit,
    /// The composer; a code opens its template.
    Compose {
        #[serde(default)]
        code: Option<String>,
    },
    /// Lift a ban.
    Unban {
        #[serde(default)]
        ban: Option<String>,
    },
    /// Copy the frame on screen (clipboard and a file).
    Copy,
    /// Read the flight recorder of the peer on screen.
    RecordedFrames,
    /// Where the composer sends: `probe <dialect> [query]`, `peer <id>`, `client <id>`, `url ws://…`.
    Target {
        words: Vec<String>,
    },
    /// Save the probe's exchange as a session.
    Record {
        name: String,
    },
    /// Fail the next requests of a dialect or a peer with a code.
    Fault {
        target: String,
        code: String,
        #[serde(default)]
        count: Option<String>,
    },
    TransferAuthority {
        room: String,
        player: String,
    },
    RevokeAuthority {
        room: String,
    },
    Find {
        text: String,
    },
    /// Ban the selected peer's player or address for a while.
    Ban {
        duration: String,
        reason: String,
    },
    /// Save the selected peer as a session.
    Export {
        name: String,
    },
    /// Run a code's session, or a session file, against the server.
    Repro {
        session: String,
    },
    /// Read a player's log into a timeline.
    Paste,
    /// Unbinds a key in a user file.
    None,
}

/// Names of the actions a key is bound to by a plain name, in the order the help lists them.
/// The views' names (`view_peers`) come from the view table.
const NAMED: &[(&str, Action)] = &[
    ("quit", Action::Quit),
    ("help", Action::Help),
    ("command", Action::Command),
    ("filter", Action::Filter),
    ("back", Action::Back),
    ("open", Action::Open),
    ("next_view", Action::NextView),
    ("previous_view", Action::PreviousView),
    ("down", Action::Down),
    ("up", Action::Up),
    ("page_down", Action::PageDown),
    ("page_up", Action::PageUp),
    ("top", Action::Top),
    ("bottom", Action::Bottom),
    ("sort", Action::Sort),
    ("reverse_sort", Action::ReverseSort),
    ("kick", Action::KICK),
    ("suspend_app", Action::SUSPEND_APP),
    ("activate_app", Action::ACTIVATE_APP),
    ("close_room", Action::CLOSE_ROOM),
    ("tap", Action::TAP),
    ("edit", Action::Edit),
    ("lift_ban", Action::LIFT_BAN),
    ("copy", Action::Copy),
    ("recorded_frames", Action::RecordedFrames),
    ("paste", Action::Paste),
    ("none", Action::None),
];

impl Action {
    /// Kick the selected peer.
    pub const KICK: Action = Action::Kick {
        peer: None,
        reason: None,
    };
    pub const SUSPEND_APP: Action = Action::SetAppStatus {
        app: None,
        status: AppStatus::Suspended,
    };
    pub const ACTIVATE_APP: Action = Action::SetAppStatus {
        app: None,
        status: AppStatus::Active,
    };
    pub const CLOSE_ROOM: Action = Action::CloseRoom { room: None };
    /// Tap the selected peer, or stop tapping it.
    pub const TAP: Action = Action::Tap {
        peer: None,
        on: None,
    };
    /// Lift the selected ban.
    pub const LIFT_BAN: Action = Action::Unban { ban: None };

    /// The action a keymap file's plain name stands for.
    pub fn named(name: &str) -> Option<Action> {
        NAMED
            .iter()
            .find(|(named, _)| *named == name)
            .map(|(_, action)| action.clone())
            .or_else(|| {
                VIEWS
                    .iter()
                    .find(|spec| spec.key.is_some_and(|(_, named, _)| named == name))
                    .map(|spec| Action::Show(spec.view))
            })
    }

    /// Where the help lists a key bound to this action: named ones as [`NAMED`] lists them,
    /// then the rest.
    pub fn rank(&self) -> usize {
        NAMED
            .iter()
            .position(|(_, action)| action == self)
            .unwrap_or(NAMED.len())
    }

    /// A keymap file's binding: a plain name, or the action spelled out with its parameters.
    ///
    /// # Errors
    /// Neither a known name nor an action.
    pub fn from_binding(binding: serde_json::Value) -> Result<Action, String> {
        if let serde_json::Value::String(name) = &binding {
            return Action::named(name).ok_or_else(|| format!("unknown action {name:?}"));
        }
        serde_json::from_value(binding).map_err(|e| e.to_string())
    }

    /// What the help says a key bound to this action does.
    pub fn describe(&self) -> String {
        let text = match self {
            Action::Quit => "quit",
            Action::Help => "this help",
            Action::Command => "command line (:peers, :kick p3, :suspend demo …)",
            Action::Filter => "filter the current table",
            Action::Back => "back: close a dialog, clear the filter, leave a detail",
            Action::Open => "open the selected row",
            Action::NextView => "next view",
            Action::PreviousView => "previous view",
            Action::Show(view) => view
                .spec()
                .key
                .map_or(view.spec().name, |(_, _, says)| says),
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
            Action::Kick { peer: None, .. } => "kick the selected peer (4020)",
            Action::SetAppStatus {
                app: None,
                status: AppStatus::Suspended,
            } => "suspend the selected app",
            Action::SetAppStatus {
                app: None,
                status: AppStatus::Active,
            } => "activate the selected app",
            Action::CloseRoom { room: None } => "close the selected room",
            Action::Tap { peer: None, .. } => "tap the selected peer's frames on or off",
            Action::Edit => "edit the selected log line in the composer",
            Action::Compose { .. } => "composer",
            Action::Unban { ban: None } => "lift the selected ban",
            Action::None => "nothing",
            // An action bound with its parameters is shown as a file would spell it.
            other => return serde_json::to_string(other).unwrap_or_default(),
        };
        text.to_owned()
    }

    /// Actions that change the server: they ask first, and `--readonly` refuses them.
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Action::Kick { .. }
                | Action::SetAppStatus { .. }
                | Action::CloseRoom { .. }
                | Action::Tap { .. }
                | Action::Unban { .. }
                | Action::Fault { .. }
                | Action::TransferAuthority { .. }
                | Action::RevokeAuthority { .. }
                | Action::Ban { .. }
                | Action::Repro { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_spelled_out_actions_both_bind() {
        assert_eq!(Action::named("kick"), Some(Action::KICK));
        assert_eq!(Action::named("view_nodes"), Some(Action::Show(View::Nodes)));
        assert_eq!(Action::named("explode"), None);
        let spelled = serde_json::json!({"kick": {"reason": "spam"}});
        assert_eq!(
            Action::from_binding(spelled),
            Ok(Action::Kick {
                peer: None,
                reason: Some("spam".to_owned())
            })
        );
        assert_eq!(
            Action::from_binding(serde_json::json!({"show": "bans"})),
            Ok(Action::Show(View::Bans))
        );
        assert!(Action::from_binding(serde_json::json!(3)).is_err());
    }
}
