//! Signal Fish v2: `{"type":T,"data":{…}}` frames, field names and order as the real server
//! sends them (see `shared/reference/signal-fish-v2-frames.log`). Structs serialize their
//! fields in declaration order, which is what keeps the frames byte-compatible.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ClientMessage {
    Authenticate {
        app_id: String,
        #[serde(default)]
        sdk_version: Option<String>,
        #[serde(default)]
        platform: Option<String>,
        #[serde(default)]
        game_data_format: Option<String>,
        /// Required only by apps configured with a Signal Fish token.
        #[serde(default)]
        token: Option<String>,
    },
    JoinRoom {
        game_name: String,
        #[serde(default)]
        room_code: Option<String>,
        player_name: String,
        #[serde(default)]
        max_players: Option<i64>,
        #[serde(default)]
        supports_authority: Option<bool>,
        #[serde(default)]
        join_only: Option<bool>,
        /// relaydeck: rooms accept spectators unless created with `false`.
        #[serde(default)]
        allow_spectators: Option<bool>,
        #[serde(default)]
        max_spectators: Option<i64>,
    },
    LeaveRoom,
    GameData {
        data: Value,
    },
    AuthorityRequest {
        become_authority: bool,
    },
    PlayerReady,
    StartGame,
    Ping,
    Reconnect {
        player_id: String,
        room_id: String,
        auth_token: String,
    },
    JoinAsSpectator {
        game_name: String,
        room_code: String,
        spectator_name: String,
    },
    LeaveSpectator,
}

impl ClientMessage {
    /// Messages allowed before authentication.
    pub fn is_authenticate(&self) -> bool {
        matches!(self, ClientMessage::Authenticate { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerNameRules {
    pub max_length: usize,
    pub min_length: usize,
    pub allow_unicode_alphanumeric: bool,
    pub allow_spaces: bool,
    pub allow_leading_trailing_whitespace: bool,
    pub allowed_symbols: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    pub capabilities: Vec<String>,
    pub game_data_formats: Vec<String>,
    pub player_name_rules: PlayerNameRules,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerInfo {
    pub id: String,
    pub name: String,
    pub is_authority: bool,
    pub is_ready: bool,
    pub connected_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectatorInfo {
    pub id: String,
    pub name: String,
    pub connected_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerConnectionInfo {
    pub player_id: String,
    pub player_name: String,
    pub is_authority: bool,
    pub relay_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomJoined {
    pub room_id: String,
    pub room_code: String,
    pub player_id: String,
    pub game_name: String,
    pub max_players: u8,
    pub supports_authority: bool,
    pub current_players: Vec<PlayerInfo>,
    pub is_authority: bool,
    pub lobby_state: String,
    pub ready_players: Vec<String>,
    pub relay_type: String,
    pub current_spectators: Vec<SpectatorInfo>,
    /// relaydeck's addition (the real server has none): the secret a client later presents as
    /// `Reconnect.auth_token`. Always sent by relaydeck; optional so that frames recorded from
    /// the real server still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconnected {
    pub room_id: String,
    pub room_code: String,
    pub player_id: String,
    pub game_name: String,
    pub max_players: u8,
    pub supports_authority: bool,
    pub current_players: Vec<PlayerInfo>,
    pub is_authority: bool,
    pub lobby_state: String,
    pub ready_players: Vec<String>,
    pub relay_type: String,
    pub current_spectators: Vec<SpectatorInfo>,
    pub missed_events: Vec<Value>,
    pub reconnection_token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectatorJoined {
    pub room_id: String,
    pub room_code: String,
    pub spectator_id: String,
    pub game_name: String,
    pub current_players: Vec<PlayerInfo>,
    pub current_spectators: Vec<SpectatorInfo>,
    pub lobby_state: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ServerMessage {
    Authenticated {
        app_name: String,
        rate_limits: RateLimits,
    },
    ProtocolInfo(ProtocolInfo),
    AuthenticationError {
        error: String,
        error_code: String,
    },
    RoomJoined(Box<RoomJoined>),
    RoomJoinFailed {
        reason: String,
        error_code: String,
    },
    RoomLeft,
    PlayerJoined {
        player: PlayerInfo,
    },
    PlayerLeft {
        player_id: String,
    },
    GameData {
        from_player: String,
        data: Value,
    },
    AuthorityChanged {
        authority_player: Option<String>,
        you_are_authority: bool,
    },
    AuthorityResponse {
        granted: bool,
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    LobbyStateChanged {
        lobby_state: String,
        ready_players: Vec<String>,
        all_ready: bool,
    },
    GameStarting {
        peer_connections: Vec<PeerConnectionInfo>,
    },
    Pong,
    Reconnected(Box<Reconnected>),
    ReconnectionFailed {
        reason: String,
        error_code: String,
    },
    PlayerReconnected {
        player_id: String,
    },
    SpectatorJoined(Box<SpectatorJoined>),
    SpectatorJoinFailed {
        reason: String,
        error_code: String,
    },
    SpectatorLeft {
        room_id: String,
        room_code: String,
        reason: String,
        current_spectators: Vec<SpectatorInfo>,
    },
    NewSpectatorJoined {
        spectator: SpectatorInfo,
        current_spectators: Vec<SpectatorInfo>,
        reason: String,
    },
    SpectatorDisconnected {
        spectator_id: String,
        reason: String,
        current_spectators: Vec<SpectatorInfo>,
    },
    Error {
        message: String,
        error_code: String,
    },
}

impl ServerMessage {
    /// The frame's text. Serializing these plain types cannot fail.
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/signal-fish-v2-frames.log");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the reference log is expected beside the repository",
                path.display()
            )
        })
    }

    #[test]
    fn every_client_frame_of_the_reference_log_parses_except_the_deliberately_bad_ones() {
        for line in log()
            .lines()
            .filter(|l| l.starts_with('[') && l.contains(" >> "))
        {
            let frame = line.split(" >> ").nth(1).unwrap();
            let parsed = serde_json::from_str::<ClientMessage>(frame);
            let deliberately_bad = frame.contains("Bogus") || frame.starts_with("{not");
            assert_eq!(parsed.is_err(), deliberately_bad, "{frame}");
        }
    }

    /// Parsing each recorded server frame into our types and serializing it again must give
    /// back the recorded bytes: any renamed, missing, extra or reordered field shows up here.
    #[test]
    fn every_server_frame_of_the_reference_log_round_trips_byte_for_byte() {
        let log = log();
        let frames: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with('['))
            .filter_map(|l| l.split(" << ").nth(1))
            .filter(|f| f.starts_with('{'))
            .collect();
        assert!(
            frames.len() >= 40,
            "only {} server frames found",
            frames.len()
        );
        let mut types = std::collections::BTreeSet::new();
        for frame in frames {
            let parsed: ServerMessage =
                serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
            assert_eq!(parsed.text(), frame);
            let value: Value = serde_json::from_str(frame).unwrap();
            types.insert(value["type"].as_str().unwrap().to_owned());
        }
        // Every message type the recording shows is covered, not only the easy ones.
        for expected in [
            "AuthenticationError",
            "Authenticated",
            "ProtocolInfo",
            "RoomJoined",
            "RoomJoinFailed",
            "PlayerJoined",
            "PlayerLeft",
            "RoomLeft",
            "GameData",
            "AuthorityResponse",
            "LobbyStateChanged",
            "GameStarting",
            "SpectatorJoined",
            "NewSpectatorJoined",
            "Pong",
            "Error",
        ] {
            assert!(
                types.contains(expected),
                "{expected} missing from the log check"
            );
        }
    }

    #[test]
    fn our_room_joined_only_appends_the_reconnection_token() {
        let log = log();
        let recorded = log
            .lines()
            .find(|l| l.contains(r#"<< {"type":"RoomJoined""#))
            .and_then(|l| l.split(" << ").nth(1))
            .unwrap();
        let ServerMessage::RoomJoined(mut joined) = serde_json::from_str(recorded).unwrap() else {
            panic!("not a RoomJoined: {recorded}");
        };
        joined.reconnection_token = Some("secret".into());
        let ours = ServerMessage::RoomJoined(joined).text();
        let prefix = recorded.strip_suffix("}}").unwrap();
        assert_eq!(
            ours,
            format!(r#"{prefix},"reconnection_token":"secret"}}}}"#)
        );
    }

    #[test]
    fn malformed_client_frames_are_errors_not_panics() {
        for frame in [
            "",
            "{",
            "null",
            "[]",
            r#"{"type":"JoinRoom"}"#,
            r#"{"type":"JoinRoom","data":{"game_name":5,"player_name":"a"}}"#,
            r#"{"type":"JoinRoom","data":{"game_name":"g","player_name":"a","max_players":"8"}}"#,
            r#"{"type":"Reconnect","data":{"player_id":"p"}}"#,
            r#"{"data":{}}"#,
            r#"{"type":7}"#,
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(frame).is_err(),
                "{frame}"
            );
        }
    }

    #[test]
    fn server_frames_serialize_like_the_real_server() {
        let error = ServerMessage::Error {
            message: "Invalid client message".into(),
            error_code: "INVALID_INPUT".into(),
        };
        assert_eq!(
            error.text(),
            r#"{"type":"Error","data":{"message":"Invalid client message","error_code":"INVALID_INPUT"}}"#
        );
        assert_eq!(ServerMessage::Pong.text(), r#"{"type":"Pong"}"#);
        assert_eq!(ServerMessage::RoomLeft.text(), r#"{"type":"RoomLeft"}"#);
        let denied = ServerMessage::AuthorityResponse {
            granted: false,
            reason: Some("Another player already has authority".into()),
            error_code: Some("AUTHORITY_CONFLICT".into()),
        };
        let log = log();
        let expected = log
            .lines()
            .find(|l| l.contains("<< ") && l.contains("AUTHORITY_CONFLICT"))
            .and_then(|l| l.split("<< ").nth(1))
            .unwrap();
        assert_eq!(denied.text(), expected);
        let lobby = ServerMessage::LobbyStateChanged {
            lobby_state: "lobby".into(),
            ready_players: vec![],
            all_ready: false,
        };
        assert_eq!(
            lobby.text(),
            r#"{"type":"LobbyStateChanged","data":{"lobby_state":"lobby","ready_players":[],"all_ready":false}}"#
        );
    }
}
