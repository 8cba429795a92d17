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

use axum::extract::ws::WebSocket;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use tokio::time::{sleep_until, Duration, Instant};

use self::rooms::{JoinRequest, Rooms};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{
    ClientMessage, PlayerNameRules, ProtocolInfo, RateLimits, ServerMessage,
};
use crate::server::connection::{self, Incoming};
use crate::server::hub::{Control, Hub, NewPeer, RegisterError};
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
    let probe_nonce = probe_nonce(&headers);
    upgrade
        .max_message_size(READ_LIMIT_BYTES)
        .max_frame_size(READ_LIMIT_BYTES)
        .on_upgrade(move |socket| serve(socket, shared, addr, probe_nonce))
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
    id: String,
    app: Option<String>,
    window_start: Instant,
    window_count: u32,
    /// One RATE_LIMIT_EXCEEDED per window: answering every dropped message would flood the
    /// very client that is sending too much.
    warned_this_window: bool,
    last_activity: Instant,
}

enum Flow {
    Continue,
    Stop,
}

async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    addr: SocketAddr,
    probe_nonce: Option<String>,
) {
    let link = match shared.hub.register_peer(
        NewPeer {
            dialect: DIALECT,
            app: None,
            identity: None,
            addr: addr.to_string(),
            probe_nonce,
        },
        None,
    ) {
        Ok(link) => link,
        Err(RegisterError::ShuttingDown | RegisterError::OverConcurrentLimit { .. }) => {
            let mut socket = socket;
            let _ = futures_util::SinkExt::send(
                &mut socket,
                connection::close_message(4000, &close_reason(4000)),
            )
            .await;
            return;
        }
    };
    let (sink, mut stream) = connection::split(socket);
    let writer = connection::spawn_writer(sink, link.outbox, link.abort);
    let mut control = link.control;
    let settings = shared.hub.config().signal_fish.clone();
    let auth_deadline = Instant::now() + Duration::from_millis(settings.auth_timeout_ms);
    let mut session = Session {
        shared: shared.clone(),
        id: link.id.clone(),
        app: None,
        window_start: Instant::now(),
        window_count: 0,
        warned_this_window: false,
        last_activity: Instant::now(),
    };
    let mut client_close = None;
    let mut kicked_from_room = false;
    loop {
        let idle_deadline = session.last_activity + Duration::from_millis(settings.idle_timeout_ms);
        let flow = tokio::select! {
            incoming = connection::next_incoming(&mut stream) => match incoming {
                Incoming::Text(text) => session.handle(&text),
                Incoming::Binary(bytes) => {
                    session.shared.hub.record_inbound(&session.id, &format!("<{} binary bytes>", bytes.len()));
                    session.refuse(&Refusal { carrier: Carrier::Error, code: "UNSUPPORTED_GAME_DATA_FORMAT", text: Some("This server accepts JSON text frames only".to_owned()) });
                    Flow::Continue
                }
                Incoming::Closed(frame) => {
                    client_close = Some(frame.unwrap_or((1005, String::new())));
                    Flow::Stop
                }
                Incoming::Dropped => Flow::Stop,
            },
            command = control.recv() => match command {
                Some(Control::Kick { .. }) => {
                    kicked_from_room = true;
                    session.refuse(&Refusal { carrier: Carrier::Error, code: "KICKED", text: None });
                    shared.hub.close_peer(&session.id, 4020, "admin_disconnect");
                    Flow::Stop
                }
                Some(Control::AppStatus(AppStatus::Active)) => Flow::Continue,
                Some(Control::AppStatus(status)) => {
                    if session.app.is_some() {
                        kicked_from_room = true;
                        session.refuse(&Refusal { carrier: Carrier::AuthenticationError, code: status_code(status), text: None });
                        shared.hub.close_peer(&session.id, 4007, &close_reason(4007));
                        Flow::Stop
                    } else {
                        Flow::Continue
                    }
                }
                Some(Control::Inject(text)) => session.handle(&text),
                Some(Control::Shutdown) => {
                    shared.hub.close_peer(&session.id, 4000, &close_reason(4000));
                    Flow::Stop
                }
                None => Flow::Stop,
            },
            _ = sleep_until(auth_deadline), if session.app.is_none() => {
                session.refuse(&Refusal { carrier: Carrier::Error, code: "AUTHENTICATION_TIMEOUT", text: None });
                shared.hub.close_peer(&session.id, 4001, &close_reason(4001));
                Flow::Stop
            }
            _ = sleep_until(idle_deadline) => {
                shared.hub.close_peer(&session.id, 4003, &close_reason(4003));
                Flow::Stop
            }
        };
        if matches!(flow, Flow::Stop) {
            break;
        }
    }
    if kicked_from_room {
        shared.signal_fish.remove_peer_now(&shared.hub, &session.id);
    } else {
        shared.signal_fish.disconnected(&shared.hub, &session.id);
    }
    shared.hub.remove_peer(&session.id, client_close);
    connection::finish_writer(writer).await;
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
        self.hub().send_error(
            &self.id,
            DIALECT,
            refusal.code,
            None,
            refusal.frame().text(),
        );
    }

    /// Refuse an authentication and close the way the real server does.
    fn refuse_authentication(&self, code: &'static str, text: Option<String>) -> Flow {
        self.refuse(&Refusal {
            carrier: Carrier::AuthenticationError,
            code,
            text,
        });
        self.hub().close_peer(&self.id, 1000, "unregistered");
        Flow::Stop
    }

    fn handle(&mut self, text: &str) -> Flow {
        self.hub().record_inbound(&self.id, text);
        self.last_activity = Instant::now();
        if text.len() > MAX_FRAME_BYTES {
            self.hub().close_peer(&self.id, 1009, &close_reason(1009));
            return Flow::Stop;
        }
        let per_minute = self.hub().config().signal_fish.messages_per_minute;
        if self.window_start.elapsed() >= Duration::from_secs(60) {
            self.window_start = Instant::now();
            self.window_count = 0;
            self.warned_this_window = false;
        }
        self.window_count += 1;
        if self.window_count > per_minute.saturating_mul(2) {
            self.hub().close_peer(&self.id, 4006, &close_reason(4006));
            return Flow::Stop;
        }
        if self.window_count > per_minute {
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
            self.hub().close_peer(&self.id, 1000, "unregistered");
            return Flow::Stop;
        }
        if !matches!(
            message,
            ClientMessage::Ping | ClientMessage::Authenticate { .. }
        ) {
            if let Some(code) = self.hub().take_fault(&self.id, DIALECT) {
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
                self.hub().send(&self.id, ServerMessage::Pong.text());
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
                let joined = self.rooms().join(self.hub(), &self.id, request);
                if joined.is_ok() {
                    self.hub()
                        .update_peer(&self.id, |p| p.identity = Some(player_name));
                }
                joined
            }
            ClientMessage::LeaveRoom => self.rooms().leave(self.hub(), &self.id),
            ClientMessage::GameData { data } => {
                let size = serde_json::to_string(&data)
                    .map(|s| s.len())
                    .unwrap_or(usize::MAX);
                if size > self.hub().config().signal_fish.max_game_data_bytes {
                    Err(Refusal {
                        carrier: Carrier::Error,
                        code: "MESSAGE_TOO_LARGE",
                        text: None,
                    })
                } else {
                    self.rooms().game_data(self.hub(), &self.id, data)
                }
            }
            ClientMessage::AuthorityRequest { become_authority } => {
                self.rooms()
                    .authority_request(self.hub(), &self.id, become_authority)
            }
            ClientMessage::PlayerReady => self.rooms().ready(self.hub(), &self.id),
            ClientMessage::StartGame => self.rooms().start(self.hub(), &self.id),
            ClientMessage::Reconnect {
                player_id,
                room_id,
                auth_token,
            } => self
                .rooms()
                .reconnect(self.hub(), &self.id, &player_id, &room_id, &auth_token),
            ClientMessage::JoinAsSpectator {
                game_name,
                room_code,
                spectator_name,
            } => {
                let app = self.app.clone().unwrap_or_default();
                let joined = self.rooms().spectate(
                    self.hub(),
                    &self.id,
                    &app,
                    &game_name,
                    &room_code,
                    &spectator_name,
                );
                if joined.is_ok() {
                    self.hub()
                        .update_peer(&self.id, |p| p.identity = Some(spectator_name));
                }
                joined
            }
            ClientMessage::LeaveSpectator => self.rooms().leave_spectator(self.hub(), &self.id),
        };
        if let Err(refusal) = outcome {
            self.refuse(&refusal);
        }
        Flow::Continue
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
        self.hub().update_peer(&self.id, |p| p.app = Some(app_id));
        let per_minute = config.signal_fish.messages_per_minute;
        let authenticated = ServerMessage::Authenticated {
            app_name: app.name.clone(),
            rate_limits: RateLimits {
                per_minute,
                per_hour: per_minute * 60,
                per_day: per_minute * 60 * 24,
            },
        };
        self.hub().send(&self.id, authenticated.text());
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
        self.hub().send(&self.id, info.text());
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
