//! The Signal Fish v2 dialect on `GET /v2/ws` (and `/v3/ws`, which accepts the same frames).
//!
//! # Connection
//! Authenticate first: any other message before it gets `Error MISSING_APP_ID` and close
//! 1000 `unregistered`, as the real server does; nothing within `auth_timeout_ms` gets
//! `Error AUTHENTICATION_TIMEOUT` and close 4001. Refused authentications
//! (`AuthenticationError`) close 1000 `unregistered`.
//!
//! # Conditions behind the codes that are not a client mistake
//! - APP_ID_EXPIRED / APP_ID_REVOKED / APP_ID_SUSPENDED: the app's status (config or admin).
//!   A live connection whose app leaves `active` gets the same AuthenticationError, then
//!   close 4007 kicked.
//! - AUTHENTICATION_REQUIRED / INVALID_TOKEN / UNAUTHORIZED: apps configured with a token
//!   (demo `secure-game`, token `sf-demo-token`): missing, malformed, wrong.
//! - SDK_VERSION_UNSUPPORTED: `sdk_version` below the app's `min_sdk_version` (or unparsable).
//! - UNSUPPORTED_GAME_DATA_FORMAT: `game_data_format` other than `json`, or a binary frame.
//! - TOO_MANY_CONNECTIONS: more Signal Fish connections of an app than its `max_connections`.
//! - MAX_ROOMS_PER_GAME_EXCEEDED: the app's `max_rooms_per_game` (demo `limited-app`: 1).
//! - MESSAGE_TOO_LARGE: `GameData.data` over `max_game_data_bytes`; frames over 64 KiB close 1009.
//! - RATE_LIMIT_EXCEEDED: more than `messages_per_minute` in a minute (the excess is
//!   dropped, and the client is told once per minute); twice that closes 4006.
//! - INTERNAL_ERROR, STORAGE_ERROR, SERVICE_UNAVAILABLE, ROOM_CREATION_FAILED: armed faults
//!   (a fault on a JoinRoom answers with RoomJoinFailed, on anything else with Error).
//! - KICKED: an admin kick (then close 4020) or an admin closing the room.
//! - 4003: nothing received for `idle_timeout_ms`; 4000: server shutdown; 4002: slow consumer.

pub mod rooms;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::value::RawValue;
use tokio::time::{Duration, Instant};

use self::rooms::{JoinRequest, Rooms};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{
    ClientMessage, PlayerNameRules, ProtocolInfo, RateLimits, ServerMessage,
};
use crate::server::access;
use crate::server::connection::{self, Flow};
use crate::server::hub::{Hub, NewPeer};
use crate::server::peer::Priority;
use crate::server::peer::{Control, PeerHandle};
use crate::server::rate_limit::FixedWindow;
use crate::server::{probe_nonce, Shared};

const DIALECT: Dialect = Dialect::SignalFish;
const MAX_FRAME_BYTES: usize = 64 * 1024;
const READ_LIMIT_BYTES: usize = 4 << 20;
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
    pub fn frame(&self) -> ServerMessage {
        let text = self.text.clone().unwrap_or_else(|| {
            catalog::get(DIALECT, self.code)
                .map(|e| e.wire_text.to_owned())
                .unwrap_or_else(|| self.code.to_owned())
        });
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

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), false) {
        return refused;
    }
    let probe_nonce = probe_nonce(&headers);
    connection::configure(upgrade, READ_LIMIT_BYTES).on_upgrade(move |socket| {
        let new = NewPeer {
            dialect: DIALECT,
            app: None,
            identity: None,
            addr: addr.to_string(),
            probe_nonce,
        };
        connection::serve(
            socket,
            shared.clone(),
            new,
            None,
            |_| (4000, close_reason(4000)),
            move |peer| Session::new(shared, peer),
        )
    })
}

fn close_reason(code: u16) -> String {
    catalog::close(DIALECT, code)
        .map(|e| e.wire_text.to_owned())
        .unwrap_or_default()
}

/// Semantic version as numbers; anything unparsable compares as unsupported.
fn version(text: &str) -> Option<Vec<u64>> {
    text.trim_start_matches('v')
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

struct Session {
    shared: Arc<Shared>,
    peer: Arc<PeerHandle>,
    app: Option<String>,
    /// Messages this minute (RATE_LIMIT_EXCEEDED past the limit, close 4006 at twice it).
    rate_window: FixedWindow,
    /// One RATE_LIMIT_EXCEEDED per window: answering every dropped message would flood the
    /// very client that is sending too much.
    warned_this_window: bool,
    auth_deadline: Instant,
    last_activity: Instant,
    /// When the idle timer is next looked at; moved only when it fires, so a busy
    /// connection does not re-arm a timer per frame.
    idle_check: Instant,
    /// Kicked or cut off by its app's status: its seat is not kept for a reconnection.
    removed_from_room: bool,
}

impl Session {
    fn new(shared: Arc<Shared>, peer: Arc<PeerHandle>) -> Session {
        let settings = &shared.hub.config().signal_fish;
        let now = Instant::now();
        Session {
            auth_deadline: now + Duration::from_millis(settings.auth_timeout_ms),
            idle_check: now + Duration::from_millis(settings.idle_timeout_ms),
            shared,
            peer,
            app: None,
            rate_window: FixedWindow::new(Duration::from_secs(60), now.into_std()),
            warned_this_window: false,
            last_activity: now,
            removed_from_room: false,
        }
    }
}

impl connection::Session for Session {
    fn on_text(&mut self, text: &str) -> Flow {
        self.handle(text)
    }

    fn on_binary(&mut self, _bytes: &[u8]) -> Flow {
        self.last_activity = Instant::now();
        self.refuse(&Refusal {
            carrier: Carrier::Error,
            code: "UNSUPPORTED_GAME_DATA_FORMAT",
            text: Some("This server accepts JSON text frames only".to_owned()),
        });
        Flow::Continue
    }

    fn on_control(&mut self, control: Control) -> Flow {
        match control {
            Control::Kick { .. } => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "KICKED",
                    text: None,
                });
                Flow::close(4020, "admin_disconnect")
            }
            Control::AppStatus(AppStatus::Active) => Flow::Continue,
            Control::AppStatus(status) if self.app.is_some() => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::AuthenticationError,
                    code: status_code(status),
                    text: None,
                });
                Flow::close(4007, close_reason(4007))
            }
            Control::AppStatus(_) => Flow::Continue,
            Control::Shutdown => Flow::close(4000, close_reason(4000)),
            // Injected frames reach `on_text`.
            Control::Inject(_) => Flow::Continue,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        Some(if self.app.is_none() {
            self.auth_deadline.min(self.idle_check)
        } else {
            self.idle_check
        })
    }

    fn on_deadline(&mut self) -> Flow {
        let now = Instant::now();
        if self.app.is_none() && now >= self.auth_deadline {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "AUTHENTICATION_TIMEOUT",
                text: None,
            });
            return Flow::close(4001, close_reason(4001));
        }
        let idle_timeout = Duration::from_millis(self.hub().config().signal_fish.idle_timeout_ms);
        let idle_until = self.last_activity + idle_timeout;
        if now >= idle_until {
            return Flow::close(4003, close_reason(4003));
        }
        self.idle_check = idle_until;
        Flow::Continue
    }

    fn on_end(&mut self) {
        if self.removed_from_room {
            self.rooms().remove_peer_now(self.hub(), &self.peer.id);
        } else {
            self.rooms().disconnected(self.hub(), &self.peer.id);
        }
    }
}

fn status_code(status: AppStatus) -> &'static str {
    match status {
        AppStatus::Active => "INVALID_APP_ID",
        AppStatus::Suspended => "APP_ID_SUSPENDED",
        AppStatus::Revoked => "APP_ID_REVOKED",
        AppStatus::Expired => "APP_ID_EXPIRED",
    }
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn rooms(&self) -> &Rooms {
        &self.shared.signal_fish
    }

    fn refuse(&self, refusal: &Refusal) {
        self.hub()
            .send_error(&self.peer, refusal.code, None, refusal.frame().text());
    }

    /// Refuse an authentication and close the way the real server does.
    fn refuse_authentication(&self, code: &'static str, text: Option<String>) -> Flow {
        self.refuse(&Refusal {
            carrier: Carrier::AuthenticationError,
            code,
            text,
        });
        Flow::close(1000, "unregistered")
    }

    fn reply(&self, message: &ServerMessage) {
        self.hub()
            .deliver(&self.peer, &message.text().into(), Priority::Reply);
    }

    fn handle(&mut self, text: &str) -> Flow {
        self.last_activity = Instant::now();
        if text.len() > MAX_FRAME_BYTES {
            return Flow::close(1009, close_reason(1009));
        }
        let per_minute = self.hub().config().signal_fish.messages_per_minute;
        let now = Instant::now();
        if self.rate_window.rolled_over(now.into_std()) {
            self.warned_this_window = false;
        }
        let this_minute = self.rate_window.hit(now.into_std());
        if this_minute > per_minute.saturating_mul(2) {
            return Flow::close(4006, close_reason(4006));
        }
        if this_minute > per_minute {
            if !self.warned_this_window {
                self.warned_this_window = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "RATE_LIMIT_EXCEEDED",
                    text: None,
                });
            }
            return Flow::Continue;
        }
        if self.app.is_some() {
            if let Some(data) = crate::protocol::game_data::payload(text) {
                if let Err(refusal) = self.game_data(data) {
                    self.refuse(&refusal);
                }
                return Flow::Continue;
            }
        }
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(_) => {
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: Some("Invalid client message".to_owned()),
                });
                return Flow::Continue;
            }
        };
        if self.app.is_none() && !message.is_authenticate() {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "MISSING_APP_ID",
                text: None,
            });
            return Flow::close(1000, "unregistered");
        }
        if !matches!(
            message,
            ClientMessage::Ping | ClientMessage::Authenticate { .. }
        ) {
            if let Some(code) = self.hub().take_fault(&self.peer) {
                let carrier = if matches!(message, ClientMessage::JoinRoom { .. }) {
                    Carrier::RoomJoinFailed
                } else {
                    Carrier::Error
                };
                self.refuse(&Refusal {
                    carrier,
                    code: static_code(&code),
                    text: None,
                });
                return Flow::Continue;
            }
        }
        let outcome = match message {
            ClientMessage::Authenticate {
                app_id,
                sdk_version,
                platform,
                game_data_format,
                token,
            } => {
                return self.authenticate(app_id, sdk_version, platform, game_data_format, token);
            }
            ClientMessage::Ping => {
                self.reply(&ServerMessage::Pong);
                Ok(())
            }
            ClientMessage::JoinRoom {
                game_name,
                room_code,
                player_name,
                max_players,
                supports_authority,
                join_only,
                allow_spectators,
                max_spectators,
            } => {
                let app = self.app.clone().unwrap_or_default();
                let max_rooms_per_game = self
                    .hub()
                    .config()
                    .app(&app)
                    .and_then(|a| a.signal_fish.as_ref())
                    .map(|sf| sf.max_rooms_per_game)
                    .unwrap_or(100);
                let request = JoinRequest {
                    app,
                    game_name,
                    room_code,
                    player_name: player_name.clone(),
                    max_players,
                    supports_authority,
                    join_only: join_only.unwrap_or(false),
                    allow_spectators,
                    max_spectators,
                    max_rooms_per_game,
                };
                let joined = self.rooms().join(self.hub(), &self.peer.id, request);
                if joined.is_ok() {
                    self.hub()
                        .update_peer(&self.peer.id, |p| p.identity = Some(player_name));
                }
                joined
            }
            ClientMessage::LeaveRoom => self.rooms().leave(self.hub(), &self.peer.id),
            // Reached only by GameData frames the fast path could not read (the fault was
            // taken above).
            ClientMessage::GameData { data } => serde_json::value::to_raw_value(&data)
                .map_err(|_| Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: None,
                })
                .and_then(|raw| self.relay_game_data(&raw)),
            ClientMessage::AuthorityRequest { become_authority } => {
                self.rooms()
                    .authority_request(self.hub(), &self.peer.id, become_authority)
            }
            ClientMessage::PlayerReady => self.rooms().ready(self.hub(), &self.peer.id),
            ClientMessage::StartGame => self.rooms().start(self.hub(), &self.peer.id),
            ClientMessage::Reconnect {
                player_id,
                room_id,
                auth_token,
            } => {
                self.rooms()
                    .reconnect(self.hub(), &self.peer.id, &player_id, &room_id, &auth_token)
            }
            ClientMessage::JoinAsSpectator {
                game_name,
                room_code,
                spectator_name,
            } => {
                let app = self.app.clone().unwrap_or_default();
                let joined = self.rooms().spectate(
                    self.hub(),
                    &self.peer.id,
                    &app,
                    &game_name,
                    &room_code,
                    &spectator_name,
                );
                if joined.is_ok() {
                    self.hub()
                        .update_peer(&self.peer.id, |p| p.identity = Some(spectator_name));
                }
                joined
            }
            ClientMessage::LeaveSpectator => {
                self.rooms().leave_spectator(self.hub(), &self.peer.id)
            }
        };
        if let Err(refusal) = outcome {
            self.refuse(&refusal);
        }
        Flow::Continue
    }

    /// The hot path: a GameData frame read without building a tree of its payload.
    fn game_data(&mut self, data: &RawValue) -> Result<(), Refusal> {
        if let Some(code) = self.hub().take_fault(&self.peer) {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: static_code(&code),
                text: None,
            });
        }
        self.relay_game_data(data)
    }

    fn relay_game_data(&self, data: &RawValue) -> Result<(), Refusal> {
        if data.get().len() > self.hub().config().signal_fish.max_game_data_bytes {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: None,
            });
        }
        self.rooms().game_data(self.hub(), &self.peer.id, data)
    }

    fn authenticate(
        &mut self,
        app_id: String,
        sdk_version: Option<String>,
        platform: Option<String>,
        game_data_format: Option<String>,
        token: Option<String>,
    ) -> Flow {
        if self.app.is_some() {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "INVALID_INPUT",
                text: Some("Already authenticated".to_owned()),
            });
            return Flow::Continue;
        }
        if app_id.trim().is_empty() {
            return self
                .refuse_authentication("MISSING_APP_ID", Some("app_id is required".to_owned()));
        }
        let shared = self.shared.clone();
        let config = shared.hub.config();
        let Some((app, settings)) = config
            .app(&app_id)
            .and_then(|a| a.signal_fish.as_ref().map(|sf| (a, sf)))
        else {
            return self.refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()));
        };
        match self.hub().app_status(&app.id) {
            Some(AppStatus::Active) => {}
            Some(status) => return self.refuse_authentication(status_code(status), None),
            None => {
                return self
                    .refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()))
            }
        }
        if let Some(expected) = &settings.token {
            match &token {
                None => return self.refuse_authentication("AUTHENTICATION_REQUIRED", None),
                Some(given)
                    if given.is_empty()
                        || given.len() > 256
                        || given.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    return self.refuse_authentication("INVALID_TOKEN", None)
                }
                Some(given)
                    if !bool::from(subtle::ConstantTimeEq::ct_eq(
                        given.as_bytes(),
                        expected.as_bytes(),
                    )) =>
                {
                    return self.refuse_authentication("UNAUTHORIZED", None)
                }
                Some(_) => {}
            }
        }
        if let (Some(minimum), Some(given)) = (&settings.min_sdk_version, &sdk_version) {
            let supported =
                matches!((version(given), version(minimum)), (Some(g), Some(m)) if g >= m);
            if !supported {
                return self.refuse_authentication(
                    "SDK_VERSION_UNSUPPORTED",
                    Some(format!(
                        "SDK version {given} is older than the minimum {minimum}"
                    )),
                );
            }
        }
        if game_data_format.as_deref().is_some_and(|f| f != "json") {
            return self.refuse_authentication(
                "UNSUPPORTED_GAME_DATA_FORMAT",
                Some("This server supports the json game data format only".to_owned()),
            );
        }
        let live = self.hub().app_peer_count(DIALECT, &app.id);
        if live >= app.limits.max_connections {
            return self.refuse_authentication("TOO_MANY_CONNECTIONS", None);
        }
        self.app = Some(app.id.clone());
        let app_id = app.id.clone();
        self.hub()
            .update_peer(&self.peer.id, |p| p.app = Some(app_id));
        let per_minute = config.signal_fish.messages_per_minute;
        let authenticated = ServerMessage::Authenticated {
            app_name: app.name.clone(),
            rate_limits: RateLimits {
                per_minute,
                per_hour: per_minute * 60,
                per_day: per_minute * 60 * 24,
            },
        };
        self.reply(&authenticated);
        let info = ServerMessage::ProtocolInfo(ProtocolInfo {
            platform,
            sdk_version,
            capabilities: vec![
                "reconnection".into(),
                "spectator-mode".into(),
                "rate-limits-v2".into(),
            ],
            game_data_formats: vec!["json".into()],
            player_name_rules: PlayerNameRules {
                max_length: MAX_PLAYER_NAME,
                min_length: 1,
                allow_unicode_alphanumeric: true,
                allow_spaces: true,
                allow_leading_trailing_whitespace: false,
                allowed_symbols: vec!["-".into(), "_".into()],
            },
        });
        self.reply(&info);
        Flow::Continue
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
    fn versions_compare_numerically() {
        assert!(version("0.10.0") > version("0.9.9"));
        assert_eq!(version("v1.2.3"), Some(vec![1, 2, 3]));
        assert_eq!(version("one"), None);
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
