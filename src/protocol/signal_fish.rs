//! Signal Fish: `{"type":T,"data":{…}}` frames, field names and order as signal-fish-server
//! 0.12 sends them. Structs serialize their fields in declaration order, which is what keeps the
//! frames byte-compatible with the recording in `tests/fixtures/signal-fish-v2-frames.log`.
//!
//! Protocol v2 and v3 share these types. What v3 adds is optional and skipped when absent
//! (`reconnection_token`, `epoch`/`seq` stamps, delivery classes, replay status), so a v2
//! session simply never fills it: the real SDK rejects any v3 field it sees on a v2 session.
//!
//! [`Request`] is the complete client surface of 0.12: every frame a client sends parses
//! into it, or is refused as upstream refuses it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Highest protocol version relaydeck negotiates (as 0.12 does).
pub const MAX_PROTOCOL_VERSION: u16 = 3;
/// Lowest protocol version relaydeck negotiates (as 0.12 does).
pub const MIN_PROTOCOL_VERSION: u16 = 2;
/// Upper bound of a join password, in bytes (0.12 `MAX_ROOM_PASSWORD_LENGTH`).
pub const MAX_ROOM_PASSWORD_BYTES: usize = 256;
/// The capability a v3 client asks for in `requested_capabilities` to send its membership
/// requests and moderation as correlated `RoomOperation`s; granted by naming it in
/// ProtocolInfo's `capabilities`.
pub const ROOM_OPERATION_IDS: &str = "room_operation_ids";

/// Game data encodings a client may ask for in `Authenticate.game_data_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GameDataFormat {
    Json,
    MessagePack,
    Rkyv,
    Protobuf,
}

impl GameDataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            GameDataFormat::Json => "json",
            GameDataFormat::MessagePack => "message_pack",
            GameDataFormat::Rkyv => "rkyv",
            GameDataFormat::Protobuf => "protobuf",
        }
    }
}

/// Data-path transports of protocol v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Relay,
    Direct,
    #[serde(rename = "webrtc")]
    WebRtc,
}

/// Session topologies of protocol v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    Relay,
    Host,
    Mesh,
}

/// `JoinRoom.relay_transport`: a label only; the relay always runs over the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayTransport {
    Tcp,
    Udp,
    Websocket,
    Auto,
}

/// v3 game data delivery classes; `latest` needs a key, the others must not carry one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryClass {
    Reliable,
    Latest,
    Volatile,
}

impl DeliveryClass {
    /// INVALID_DELIVERY_CLASS is the answer when this is false.
    pub fn accepts_key(class: Option<DeliveryClass>, key: Option<u32>) -> bool {
        matches!(
            (class, key),
            (Some(DeliveryClass::Latest), Some(_))
                | (
                    None | Some(DeliveryClass::Reliable | DeliveryClass::Volatile),
                    None
                )
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Authenticate {
    pub app_id: String,
    /// A tenant credential; refused as CONNECT_TOKEN_INVALID / CONNECT_TOKEN_REQUIRED in an
    /// AuthenticationError that leaves the connection open for another try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_data_format: Option<GameDataFormat>,
    /// The highest version the client speaks; absent means the endpoint's default
    /// (`/v2/ws` → 2, `/v3/ws` → 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_transports: Option<Vec<Transport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_topologies: Option<Vec<Topology>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_capabilities: Option<Vec<String>>,
    /// relaydeck's addition, for apps configured with a shared token; clients that never
    /// send it are unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Authenticate {
    /// The version this session speaks: the client's claim (or the endpoint default) clamped
    /// into what relaydeck supports. A result below [`MIN_PROTOCOL_VERSION`] is refused with
    /// UNSUPPORTED_PROTOCOL_VERSION.
    pub fn negotiated_version(&self, endpoint_default: u16) -> u16 {
        self.protocol_version
            .unwrap_or(endpoint_default)
            .min(MAX_PROTOCOL_VERSION)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JoinRoom {
    pub game_name: String,
    #[serde(default)]
    pub room_code: Option<String>,
    pub player_name: String,
    /// Typed as upstream: a count outside 0..=255 does not parse (INVALID_INPUT); 0 and
    /// anything above 100 parse and are refused as INVALID_MAX_PLAYERS.
    #[serde(default)]
    pub max_players: Option<u8>,
    #[serde(default)]
    pub supports_authority: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_transport: Option<RelayTransport>,
    /// Creating with a password seals the room; joining must present the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_only: Option<bool>,
    /// relaydeck: rooms accept spectators unless created with `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_spectators: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_spectators: Option<i64>,
}

/// Reconnect: a player returns to its seat within the reconnection window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Reconnect {
    pub player_id: String,
    pub room_id: String,
    pub auth_token: String,
}

/// JoinAsSpectator: watch a room without a seat.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct JoinAsSpectator {
    pub game_name: String,
    pub room_code: String,
    pub spectator_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The operations a v3 client wraps in `RoomOperation` once `room_operation_ids` is agreed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum RoomOperationRequest {
    JoinRoom(JoinRoom),
    LeaveRoom,
    Reconnect(Reconnect),
    JoinAsSpectator(JoinAsSpectator),
    LeaveSpectator,
    KickPlayer {
        player_id: String,
    },
    RegenerateRoomCode,
    SetRoomAccess {
        #[serde(default)]
        password: Option<String>,
    },
    BanPlayer {
        player_id: String,
    },
    UnbanPlayer {
        player_id: String,
    },
    TransferAuthority {
        player_id: String,
    },
}

/// Every client message of signal-fish-server 0.12, fields typed as upstream types them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", content = "data")]
pub enum Request {
    Authenticate(Authenticate),
    JoinRoom(JoinRoom),
    LeaveRoom,
    GameData {
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<DeliveryClass>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<u32>,
    },
    Signal {
        to: String,
        /// The generation of the sender's latest SessionPlan, forwarded unchanged.
        generation: String,
        signal: Value,
    },
    AuthorityRequest {
        become_authority: bool,
    },
    PlayerReady,
    StartGame,
    ProvideConnectionInfo {
        connection_info: Value,
    },
    Ping,
    Reconnect(Reconnect),
    JoinAsSpectator(JoinAsSpectator),
    LeaveSpectator,
    RoomOperation {
        operation_id: String,
        operation: Box<RoomOperationRequest>,
    },
    TransportStatus {
        transport: Transport,
        connected: bool,
    },
}

impl RoomOperationRequest {
    /// The plain request a correlated operation stands for, where placing it in a cluster
    /// depends on what it asks: a join, a spectator's join or a reconnection. `None` for the
    /// rest, which act on the room the player is already in.
    pub fn placed_as(&self) -> Option<Request> {
        match self {
            RoomOperationRequest::JoinRoom(join) => Some(Request::JoinRoom(join.clone())),
            RoomOperationRequest::JoinAsSpectator(spectate) => {
                Some(Request::JoinAsSpectator(spectate.clone()))
            }
            RoomOperationRequest::Reconnect(reconnect) => {
                Some(Request::Reconnect(reconnect.clone()))
            }
            _ => None,
        }
    }
}

impl Request {
    /// The join this request makes, plain or wrapped in a correlated `RoomOperation`.
    pub fn join_mut(&mut self) -> Option<&mut JoinRoom> {
        match self {
            Request::JoinRoom(join) => Some(join),
            Request::RoomOperation { operation, .. } => match &mut **operation {
                RoomOperationRequest::JoinRoom(join) => Some(join),
                _ => None,
            },
            _ => None,
        }
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

/// The v2 ProtocolInfo: exactly the fields a v2 client may see.
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

/// ProtocolInfo of a session that negotiated v3: the v2 fields, then the version window and
/// the message transport. The SDK treats these fields on a v2 session as a violation and
/// their absence on a v3 session likewise, so the two never mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProtocolInfoV3 {
    #[serde(flatten)]
    pub base: ProtocolInfo,
    pub protocol_version: u16,
    pub min_protocol_version: u16,
    pub max_protocol_version: u16,
    /// Always `["websocket"]`.
    pub transports: Vec<String>,
    pub max_outbound_message_size: usize,
}

impl ProtocolInfoV3 {
    pub fn new(base: ProtocolInfo, max_outbound_message_size: usize) -> ProtocolInfoV3 {
        ProtocolInfoV3 {
            base,
            protocol_version: MAX_PROTOCOL_VERSION,
            min_protocol_version: MIN_PROTOCOL_VERSION,
            max_protocol_version: MAX_PROTOCOL_VERSION,
            transports: vec!["websocket".to_owned()],
            max_outbound_message_size,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerInfo {
    pub id: String,
    pub name: String,
    pub is_authority: bool,
    pub is_ready: bool,
    /// v2 rosters carry it; v3 rosters do not (they carry `epoch` and `seq` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
    /// v3 only: the membership incarnation of this player.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// v3 only: the last game data sequence number this player sent in `epoch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
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
    /// The secret a client later presents as `Reconnect.auth_token`. Sent to v3 sessions only:
    /// the real server never shows it to a v2 client, and the SDK rejects a v2 RoomJoined that
    /// carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_token: Option<String>,
}

/// How much of what a reconnecting v3 player missed is replayed in `missed_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayStatus {
    Complete,
    Truncated,
    Unavailable,
}

/// A sender's delivery position as a reconnecting v3 player should resume from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderWatermark {
    pub player_id: String,
    pub epoch: u32,
    pub seq: u64,
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
    /// v3 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayStatus>,
    /// v3 only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender_watermarks: Vec<SenderWatermark>,
    /// v3 only: the rotated token (the one presented is spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnection_token: Option<String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPeer {
    pub player_id: String,
    pub player_name: String,
    pub is_authority: bool,
    pub initiate: bool,
}

/// A STUN or TURN server a WebRTC client gathers candidates against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The v3 data-path decision for one recipient: the topology and transport the room runs,
/// the peers this recipient connects to and which of them it offers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionPlan {
    /// A UUID naming this plan publication (upstream's `SessionGeneration`).
    pub generation: String,
    pub topology: Topology,
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub peers: Vec<SessionPeer>,
    /// Only WebRTC plans carry any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    pub fallback: Transport,
}

impl SessionPlan {
    pub fn relay(generation: String) -> SessionPlan {
        SessionPlan {
            generation,
            topology: Topology::Relay,
            transport: Transport::Relay,
            host: None,
            peers: Vec::new(),
            ice_servers: Vec::new(),
            fallback: Transport::Relay,
        }
    }
}

/// Answers to a v3 `RoomOperation`, correlated by its `operation_id`: the membership answers
/// a plain request would get, in 0.12's shapes, then the moderation outcomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RoomOperationResult {
    RoomJoined(Box<RoomJoined>),
    RoomJoinFailed {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    RoomLeft,
    Reconnected(Box<Reconnected>),
    ReconnectionFailed {
        reason: String,
        error_code: String,
    },
    SpectatorJoined(Box<SpectatorJoined>),
    SpectatorJoinFailed {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    SpectatorLeft {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default)]
        current_spectators: Vec<SpectatorInfo>,
    },
    OperationFailed {
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    PlayerKicked {
        player_id: String,
    },
    RoomCodeRegenerated {
        room_code: String,
    },
    RoomAccessUpdated {
        requires_password: bool,
    },
    PlayerBanned {
        player_id: String,
    },
    PlayerUnbanned {
        player_id: String,
    },
    AuthorityTransferred {
        player_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ServerMessage {
    Authenticated {
        app_name: String,
        rate_limits: RateLimits,
    },
    ProtocolInfo(ProtocolInfo),
    /// Serializes as `ProtocolInfo`; parsing always yields the v2 variant above.
    #[serde(rename = "ProtocolInfo", skip_deserializing)]
    ProtocolInfoV3(Box<ProtocolInfoV3>),
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
        /// v3 only: the departing membership's epoch and its last sequence number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        final_seq: Option<u64>,
    },
    GameData {
        from_player: String,
        data: Value,
        /// v3 only: the sender's per-epoch sequence number, from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<DeliveryClass>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<u32>,
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
    SessionPlan(Box<SessionPlan>),
    /// v3 only: a WebRTC signal from another player of the room, its payload untouched.
    Signal {
        from: String,
        generation: String,
        signal: Value,
    },
    /// v3 only: a player joined a running WebRTC session; `you_initiate` says who offers.
    NewPeer {
        peer_id: String,
        you_initiate: bool,
    },
    Pong,
    Reconnected(Box<Reconnected>),
    ReconnectionFailed {
        reason: String,
        error_code: String,
    },
    PlayerReconnected {
        player_id: String,
        /// v3 only: the new membership epoch and the roster entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        player: Option<Box<PlayerInfo>>,
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
    RoomOperationResult {
        operation_id: String,
        result: Box<RoomOperationResult>,
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
    /// v3 only: the server is draining; reconnect elsewhere or after `retry_after_secs`.
    GoingAway {
        deadline_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
}

impl ServerMessage {
    /// The frame's text. Serializing these plain types cannot fail.
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The answer to a correlated `RoomOperation`: a membership answer wrapped in a
    /// `RoomOperationResult` carrying `operation_id`, as 0.12 wraps it. Every other frame is
    /// returned unchanged, so that room traffic can never pass for an operation's answer.
    pub fn correlate(self, operation_id: &str) -> ServerMessage {
        let result = match self {
            ServerMessage::RoomJoined(joined) => RoomOperationResult::RoomJoined(joined),
            ServerMessage::RoomJoinFailed { reason, error_code } => {
                RoomOperationResult::RoomJoinFailed {
                    reason,
                    error_code: Some(error_code),
                }
            }
            ServerMessage::RoomLeft => RoomOperationResult::RoomLeft,
            ServerMessage::Reconnected(reconnected) => {
                RoomOperationResult::Reconnected(reconnected)
            }
            ServerMessage::ReconnectionFailed { reason, error_code } => {
                RoomOperationResult::ReconnectionFailed { reason, error_code }
            }
            ServerMessage::SpectatorJoined(joined) => RoomOperationResult::SpectatorJoined(joined),
            ServerMessage::SpectatorJoinFailed { reason, error_code } => {
                RoomOperationResult::SpectatorJoinFailed {
                    reason,
                    error_code: Some(error_code),
                }
            }
            ServerMessage::SpectatorLeft {
                room_id,
                room_code,
                reason,
                current_spectators,
            } => RoomOperationResult::SpectatorLeft {
                room_id: Some(room_id),
                room_code: Some(room_code),
                reason: Some(reason),
                current_spectators,
            },
            other => return other,
        };
        ServerMessage::RoomOperationResult {
            operation_id: operation_id.to_owned(),
            result: Box::new(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames recorded from signal-fish-server 0.12 (a copy kept in the repository).
    fn log() -> String {
        include_str!("../../tests/fixtures/signal-fish-v2-frames.log").to_owned()
    }

    #[test]
    fn every_client_frame_of_the_reference_log_parses_except_the_deliberately_bad_ones() {
        for line in log()
            .lines()
            .filter(|l| l.starts_with('[') && l.contains(" >> "))
        {
            let frame = line.split(" >> ").nth(1).unwrap();
            let deliberately_bad = frame.contains("Bogus") || frame.starts_with("{not");
            let full = serde_json::from_str::<Request>(frame);
            assert_eq!(full.is_err(), deliberately_bad, "{frame}");
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
            assert!(serde_json::from_str::<Request>(frame).is_err(), "{frame}");
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

    #[test]
    fn authenticate_carries_every_upstream_field_typed() {
        let frame = r#"{"type":"Authenticate","data":{"app_id":"demo","connect_token":"sfct_v1.x","sdk_version":"0.14.0","platform":"rust","game_data_format":"message_pack","protocol_version":3,"supported_transports":["relay"],"supported_topologies":["relay"],"requested_capabilities":["room_operation_ids"]}}"#;
        let Request::Authenticate(auth) = serde_json::from_str(frame).unwrap() else {
            panic!("not an Authenticate");
        };
        assert_eq!(auth.connect_token.as_deref(), Some("sfct_v1.x"));
        assert_eq!(auth.game_data_format, Some(GameDataFormat::MessagePack));
        assert_eq!(auth.protocol_version, Some(3));
        assert_eq!(auth.supported_transports, Some(vec![Transport::Relay]));
        assert_eq!(auth.supported_topologies, Some(vec![Topology::Relay]));
        assert_eq!(auth.negotiated_version(2), 3);
        // Serializing it back gives the same frame: the field order is upstream's.
        assert_eq!(
            serde_json::to_string(&Request::Authenticate(auth)).unwrap(),
            frame
        );
        let bare: Request =
            serde_json::from_str(r#"{"type":"Authenticate","data":{"app_id":"demo"}}"#).unwrap();
        let Request::Authenticate(bare) = bare else {
            panic!("not an Authenticate");
        };
        assert_eq!(bare.negotiated_version(2), 2);
        assert_eq!(bare.negotiated_version(3), 3);
        let future = Authenticate {
            protocol_version: Some(9),
            ..bare
        };
        assert_eq!(future.negotiated_version(2), MAX_PROTOCOL_VERSION);
        assert!(serde_json::from_str::<Request>(
            r#"{"type":"Authenticate","data":{"app_id":"demo","game_data_format":"xml"}}"#
        )
        .is_err());
    }

    #[test]
    fn join_room_types_max_players_as_a_byte_and_carries_the_password() {
        let join = |extra: &str| {
            serde_json::from_str::<Request>(&format!(
                r#"{{"type":"JoinRoom","data":{{"game_name":"g","player_name":"p"{extra}}}}}"#
            ))
        };
        let Ok(Request::JoinRoom(room)) = join(r#","max_players":255,"password":"pw""#) else {
            panic!("a byte-sized max_players parses");
        };
        assert_eq!(room.max_players, Some(255));
        assert_eq!(room.password.as_deref(), Some("pw"));
        for bad in [
            r#","max_players":256"#,
            r#","max_players":-1"#,
            r#","max_players":"8""#,
        ] {
            assert!(join(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn room_operations_parse_as_upstream_frames_them() {
        let frame = r#"{"type":"RoomOperation","data":{"operation_id":"6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234","operation":{"type":"KickPlayer","data":{"player_id":"p1"}}}}"#;
        let Request::RoomOperation { operation, .. } = serde_json::from_str(frame).unwrap() else {
            panic!("not a RoomOperation");
        };
        assert_eq!(
            *operation,
            RoomOperationRequest::KickPlayer {
                player_id: "p1".into()
            }
        );
        let failed = ServerMessage::RoomOperationResult {
            operation_id: "op".into(),
            result: Box::new(RoomOperationResult::OperationFailed {
                reason: "Only the room's authority player may moderate this room".into(),
                error_code: Some("NOT_ROOM_AUTHORITY".into()),
            }),
        };
        assert_eq!(
            failed.text(),
            r#"{"type":"RoomOperationResult","data":{"operation_id":"op","result":{"type":"OperationFailed","data":{"reason":"Only the room's authority player may moderate this room","error_code":"NOT_ROOM_AUTHORITY"}}}}"#
        );
    }

    #[test]
    fn membership_answers_are_correlated_and_upstreams_parse_back() {
        assert_eq!(
            ServerMessage::RoomLeft.correlate("op").text(),
            r#"{"type":"RoomOperationResult","data":{"operation_id":"op","result":{"type":"RoomLeft"}}}"#
        );
        let refused = ServerMessage::RoomJoinFailed {
            reason: "Room not found".into(),
            error_code: "ROOM_NOT_FOUND".into(),
        };
        assert_eq!(
            refused.correlate("op").text(),
            r#"{"type":"RoomOperationResult","data":{"operation_id":"op","result":{"type":"RoomJoinFailed","data":{"reason":"Room not found","error_code":"ROOM_NOT_FOUND"}}}}"#
        );
        // Room traffic is never dressed up as an operation's answer.
        assert_eq!(ServerMessage::Pong.correlate("op"), ServerMessage::Pong);
        // As 0.12 sent it (the console and the flight recorder parse these).
        let upstream = r#"{"type":"RoomOperationResult","data":{"operation_id":"op","result":{"type":"SpectatorLeft","data":{"current_spectators":[],"reason":"voluntary_leave","room_code":"VZ8QXD","room_id":"37010d06-d868-4975-83aa-e1bfff939f76"}}}}"#;
        let parsed: ServerMessage = serde_json::from_str(upstream).unwrap();
        let ServerMessage::RoomOperationResult { result, .. } = parsed else {
            panic!("not a RoomOperationResult");
        };
        assert_eq!(
            *result,
            RoomOperationResult::SpectatorLeft {
                room_id: Some("37010d06-d868-4975-83aa-e1bfff939f76".into()),
                room_code: Some("VZ8QXD".into()),
                reason: Some("voluntary_leave".into()),
                current_spectators: Vec::new(),
            }
        );
    }

    #[test]
    fn a_v2_room_joined_has_no_v3_fields_and_a_v3_one_appends_them_in_order() {
        let player = |v3: bool| PlayerInfo {
            id: "p".into(),
            name: "Alice".into(),
            is_authority: true,
            is_ready: false,
            connected_at: (!v3).then(|| "2026-01-01T00:00:00Z".to_owned()),
            epoch: v3.then_some(1),
            seq: v3.then_some(0),
        };
        let joined = |v3: bool| {
            ServerMessage::RoomJoined(Box::new(RoomJoined {
                room_id: "r".into(),
                room_code: "ABCDEF".into(),
                player_id: "p".into(),
                game_name: "g".into(),
                max_players: 8,
                supports_authority: true,
                current_players: vec![player(v3)],
                is_authority: true,
                lobby_state: "waiting".into(),
                ready_players: vec![],
                relay_type: "matchbox".into(),
                current_spectators: vec![],
                reconnection_token: v3.then(|| "t".to_owned()),
            }))
            .text()
        };
        assert_eq!(
            joined(false),
            r#"{"type":"RoomJoined","data":{"room_id":"r","room_code":"ABCDEF","player_id":"p","game_name":"g","max_players":8,"supports_authority":true,"current_players":[{"id":"p","name":"Alice","is_authority":true,"is_ready":false,"connected_at":"2026-01-01T00:00:00Z"}],"is_authority":true,"lobby_state":"waiting","ready_players":[],"relay_type":"matchbox","current_spectators":[]}}"#
        );
        assert_eq!(
            joined(true),
            r#"{"type":"RoomJoined","data":{"room_id":"r","room_code":"ABCDEF","player_id":"p","game_name":"g","max_players":8,"supports_authority":true,"current_players":[{"id":"p","name":"Alice","is_authority":true,"is_ready":false,"epoch":1,"seq":0}],"is_authority":true,"lobby_state":"waiting","ready_players":[],"relay_type":"matchbox","current_spectators":[],"reconnection_token":"t"}}"#
        );
    }

    #[test]
    fn v3_protocol_info_appends_the_version_window_after_the_v2_fields() {
        let base = ProtocolInfo {
            platform: None,
            sdk_version: Some("0.14.0".into()),
            capabilities: vec!["reconnection".into()],
            game_data_formats: vec!["json".into()],
            player_name_rules: PlayerNameRules {
                max_length: 32,
                min_length: 1,
                allow_unicode_alphanumeric: true,
                allow_spaces: true,
                allow_leading_trailing_whitespace: false,
                allowed_symbols: vec!["-".into(), "_".into()],
            },
        };
        let v2 = ServerMessage::ProtocolInfo(base.clone()).text();
        let v3 = ServerMessage::ProtocolInfoV3(Box::new(ProtocolInfoV3::new(base, 1 << 20))).text();
        let prefix = v2.strip_suffix("}}").unwrap();
        assert_eq!(
            v3,
            format!(
                r#"{prefix},"protocol_version":3,"min_protocol_version":2,"max_protocol_version":3,"transports":["websocket"],"max_outbound_message_size":1048576}}}}"#
            )
        );
        // Read back, a v3 ProtocolInfo is still a ProtocolInfo.
        assert!(matches!(
            serde_json::from_str::<ServerMessage>(&v3),
            Ok(ServerMessage::ProtocolInfo(_))
        ));
    }

    #[test]
    fn delivery_classes_pair_with_keys_as_upstream_requires() {
        use DeliveryClass::*;
        assert!(DeliveryClass::accepts_key(None, None));
        assert!(DeliveryClass::accepts_key(Some(Reliable), None));
        assert!(DeliveryClass::accepts_key(Some(Volatile), None));
        assert!(DeliveryClass::accepts_key(Some(Latest), Some(7)));
        assert!(!DeliveryClass::accepts_key(Some(Latest), None));
        assert!(!DeliveryClass::accepts_key(Some(Reliable), Some(7)));
        assert!(!DeliveryClass::accepts_key(None, Some(7)));
        let relay = ServerMessage::SessionPlan(Box::new(SessionPlan::relay("g".into()))).text();
        assert_eq!(
            relay,
            r#"{"type":"SessionPlan","data":{"generation":"g","topology":"relay","transport":"relay","peers":[],"fallback":"relay"}}"#
        );
    }
}
