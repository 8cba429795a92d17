//! Refusals: the documented codes a request is refused with, the message type each travels
//! in, and the player-name rule behind INVALID_PLAYER_NAME. A leaf both the session and the
//! rooms use.

use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{RoomOperationResult, ServerMessage};

const DIALECT: Dialect = Dialect::SignalFish;
pub const MAX_PLAYER_NAME: usize = 32;

/// The message type a refusal travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Error,
    RoomJoinFailed,
    AuthenticationError,
    ReconnectionFailed,
    SpectatorJoinFailed,
    AuthorityResponse,
}

/// A request refused with a documented code; `text` overrides the catalog's wire text.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub carrier: Carrier,
    pub code: &'static str,
    pub text: Option<String>,
}

/// The catalog's `'static` spelling of a code (armed faults arrive as owned strings).
pub fn static_code(code: &str) -> &'static str {
    catalog::get(DIALECT, code)
        .map(|e| e.code)
        .unwrap_or("INTERNAL_ERROR")
}

pub fn player_name_problem(name: &str) -> Option<&'static str> {
    let length = name.chars().count();
    if length == 0 {
        Some("it is empty")
    } else if length > MAX_PLAYER_NAME {
        Some("it is longer than 32 characters")
    } else if name.trim() != name {
        Some("it starts or ends with whitespace")
    } else if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
    {
        Some("only letters, digits, spaces, '-' and '_' are allowed")
    } else {
        None
    }
}

impl Refusal {
    /// The text the refusal carries: its own, else the catalog's wire text.
    fn wire_text(&self) -> String {
        self.text.clone().unwrap_or_else(|| {
            catalog::get(DIALECT, self.code)
                .map(|e| e.wire_text.to_owned())
                .unwrap_or_else(|| self.code.to_owned())
        })
    }

    /// The refusal of a correlated `RoomOperation`: a join or reconnection refusal inside the
    /// operation's result as the plain request would get it, anything else an
    /// `OperationFailed` (0.12 never lets a top-level `Error` answer an operation).
    pub fn correlated(&self, operation_id: &str) -> ServerMessage {
        match self.carrier {
            Carrier::RoomJoinFailed
            | Carrier::ReconnectionFailed
            | Carrier::SpectatorJoinFailed => self.frame().correlate(operation_id),
            Carrier::Error | Carrier::AuthenticationError | Carrier::AuthorityResponse => {
                ServerMessage::RoomOperationResult {
                    operation_id: operation_id.to_owned(),
                    result: Box::new(RoomOperationResult::OperationFailed {
                        reason: self.wire_text(),
                        error_code: Some(self.code.to_owned()),
                    }),
                }
            }
        }
    }

    pub fn frame(&self) -> ServerMessage {
        let text = self.wire_text();
        let code = self.code.to_owned();
        match self.carrier {
            Carrier::Error => ServerMessage::Error {
                message: text,
                error_code: code,
            },
            Carrier::RoomJoinFailed => ServerMessage::RoomJoinFailed {
                reason: text,
                error_code: code,
            },
            Carrier::AuthenticationError => ServerMessage::AuthenticationError {
                error: text,
                error_code: code,
            },
            Carrier::ReconnectionFailed => ServerMessage::ReconnectionFailed {
                reason: text,
                error_code: code,
            },
            Carrier::SpectatorJoinFailed => ServerMessage::SpectatorJoinFailed {
                reason: text,
                error_code: code,
            },
            Carrier::AuthorityResponse => ServerMessage::AuthorityResponse {
                granted: false,
                reason: Some(text),
                error_code: Some(code),
            },
        }
    }
}

pub fn status_code(status: AppStatus) -> &'static str {
    match status {
        AppStatus::Active => "INVALID_APP_ID",
        AppStatus::Suspended => "APP_ID_SUSPENDED",
        AppStatus::Revoked => "APP_ID_REVOKED",
        AppStatus::Expired => "APP_ID_EXPIRED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_names_follow_the_announced_rules() {
        assert_eq!(player_name_problem("Alice"), None);
        assert_eq!(player_name_problem("Zoë the-2nd_"), None);
        assert!(player_name_problem("").is_some());
        assert!(player_name_problem(" Alice").is_some());
        assert!(player_name_problem("a!").is_some());
        assert!(player_name_problem(&"a".repeat(33)).is_some());
    }

    #[test]
    fn refusals_use_the_carrier_the_seed_names() {
        let full = Refusal {
            carrier: Carrier::RoomJoinFailed,
            code: "ROOM_FULL",
            text: None,
        };
        assert_eq!(
            full.frame().text(),
            r#"{"type":"RoomJoinFailed","data":{"reason":"Room is full","error_code":"ROOM_FULL"}}"#
        );
        let conflict = Refusal {
            carrier: Carrier::AuthorityResponse,
            code: "AUTHORITY_CONFLICT",
            text: None,
        };
        assert!(conflict
            .frame()
            .text()
            .starts_with(r#"{"type":"AuthorityResponse","data":{"granted":false"#));
    }
}
