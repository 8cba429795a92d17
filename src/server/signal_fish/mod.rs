//! The Signal Fish dialect on `GET /v2/ws` and `GET /v3/ws`: one connection, whose protocol
//! version is what Authenticate negotiates (`protocol_version`, else 2 on `/v2/ws` and 3 on
//! `/v3/ws`, within 2..=3), as signal-fish-server 0.12 does. v2 sessions get v2 shapes (no
//! reconnection token, no delivery stamps); v3 sessions get ProtocolInfo's version window,
//! reconnection tokens, stamped game data, SessionPlan at start, RoomOperation moderation and
//! GoingAway at shutdown.
//!
//! # Connection
//! Authenticate first: any other message before it gets `Error MISSING_APP_ID` and close
//! 1000 `unregistered`, as the real server does (a binary frame too); nothing within
//! `auth_timeout_ms` gets `Error AUTHENTICATION_TIMEOUT` and close 4001 `auth_timeout`.
//! Refusals of the app itself (`AuthenticationError`) close 1000 `unregistered`; refusals the
//! client can fix on the same connection (connect token, SDK version, protocol version) leave
//! it open, as upstream.
//!
//! # Conditions behind the codes that are not a client mistake
//! - APP_ID_EXPIRED / APP_ID_REVOKED / APP_ID_SUSPENDED: the app's status (config or admin), a
//!   relaydeck addition (0.12 reserves these codes). A live connection whose app leaves
//!   `active` gets `Error` with the code (the SDK rejects an AuthenticationError once
//!   authenticated), then close 4007 kicked.
//! - CONNECT_TOKEN_REQUIRED / CONNECT_TOKEN_INVALID: apps with a `connect_token` (demo
//!   `tenant-game`, `sf-connect-token`), as upstream.
//! - AUTHENTICATION_REQUIRED / INVALID_TOKEN / UNAUTHORIZED: relaydeck's own `token` (demo
//!   `secure-game`, `sf-demo-token`): missing, malformed, wrong; each closes 1000.
//! - SDK_VERSION_UNSUPPORTED: `sdk_version` below the app's `min_sdk_version` (or unparsable).
//! - UNSUPPORTED_PROTOCOL_VERSION: a client whose highest version is below 2.
//! - UNSUPPORTED_GAME_DATA_FORMAT: a `game_data_format` other than `json`: answered with an
//!   `Error`, and the session goes on in JSON (0.12 also offers `message_pack`; relaydeck
//!   offers JSON only, so binary game data is refused with INVALID_INPUT).
//! - TOO_MANY_CONNECTIONS: more Signal Fish connections of an app than its `max_connections`.
//! - MAX_ROOMS_PER_GAME_EXCEEDED: the app's `max_rooms_per_game` (demo `limited-app`: 1).
//! - MESSAGE_TOO_LARGE: a text frame over 64 KiB (the connection stays open), or
//!   `GameData.data` over `max_game_data_bytes`.
//! - RATE_LIMIT_EXCEEDED: more than `messages_per_minute` in a minute (the excess is dropped,
//!   the client is told once per minute; twice that closes 4006, a relaydeck addition), or the
//!   error-reply budget (`error_replies_per_minute` refusals and pongs, as upstream) spent,
//!   which closes 4006 inbound_rate_limited.
//! - INTERNAL_ERROR, STORAGE_ERROR, SERVICE_UNAVAILABLE, ROOM_CREATION_FAILED: armed faults
//!   (a fault on a JoinRoom answers with RoomJoinFailed, on anything else with Error).
//! - KICKED: an admin kick (then close 4020), an admin closing the room, or the room's
//!   authority kicking the player (v3 RoomOperation, then close 4007).
//! - UNSUPPORTED_TRANSPORT: Signal or ProvideConnectionInfo: peer-to-peer transports are
//!   never negotiated here.
//! - 4003 `activity_timeout` after `Error ACTIVITY_TIMEOUT`: no message for `idle_timeout_ms`;
//!   4004 `idle_timeout` after `Error CONNECTION_IDLE_TIMEOUT`: no frame at all, WebSocket
//!   pings included, for `socket_idle_timeout_ms`; 4000 `server_shutdown`; 4002
//!   `slow_consumer` (see [`crate::server::peer`]).

pub mod rooms;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::value::RawValue;
use tokio::time::{Duration, Instant};

use self::rooms::{JoinOptions, JoinRequest, Rooms};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{
    Authenticate, DeliveryClass, GameDataFormat, JoinAsSpectator, JoinRoom, PlayerNameRules,
    ProtocolInfo, ProtocolInfoV3, RateLimits, Reconnect, Request, ServerMessage,
    MIN_PROTOCOL_VERSION,
};
use crate::server::access;
use crate::server::cluster::tunnel::{Placement, TunnelOpen, TunnelSocket};
use crate::server::connection::{self, Flow};
use crate::server::hub::{Hub, NewPeer};
use crate::server::peer::Priority;
use crate::server::peer::{Control, PeerHandle};
use crate::server::rate_limit::FixedWindow;
use crate::server::{probe_nonce, Shared};

const DIALECT: Dialect = Dialect::SignalFish;
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest frame this server sends, announced to v3 clients (0.12: 8 MiB).
const MAX_OUTBOUND_MESSAGE_BYTES: usize = 8 << 20;
/// How long a v3 client is told it has before the connection closes at shutdown.
const SHUTDOWN_NOTICE_MS: u64 = 1_000;
const READ_LIMIT_BYTES: usize = 4 << 20;
pub const MAX_PLAYER_NAME: usize = 32;
/// Frames that may arrive while a cluster node looks up where a room lives; they wait, in
/// order, and a client that sends more in that moment is flooding.
const MAX_HELD_FRAMES: usize = 256;

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

/// `GET /v2/ws`: sessions default to protocol v2 unless Authenticate asks for more.
pub async fn upgrade_v2(
    state: State<Arc<Shared>>,
    addr: ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    serve_upgrade(state, addr, &uri, headers, upgrade, 2)
}

/// `GET /v3/ws`: the same connection, defaulting to protocol v3.
pub async fn upgrade_v3(
    state: State<Arc<Shared>>,
    addr: ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    serve_upgrade(state, addr, &uri, headers, upgrade, 3)
}

fn serve_upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: &axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
    endpoint_version: u16,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), false) {
        return refused;
    }
    let probe_nonce = probe_nonce(&headers);
    let path = crate::server::bans::path_of(uri);
    connection::configure(upgrade, READ_LIMIT_BYTES).on_upgrade(move |socket| {
        let new = NewPeer::anonymous(DIALECT, addr, probe_nonce);
        connection::serve(
            socket,
            shared.clone(),
            path,
            new,
            None,
            |_| (4000, close_reason(4000)),
            move |peer| Session::new(shared, peer, endpoint_version),
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
    /// The last message (text or binary): the activity timeout (4003) counts from it.
    last_activity: Instant,
    /// The last frame of any kind, WebSocket pings included: the socket idle timeout (4004).
    last_frame: Instant,
    /// Refusals and pongs this minute (4006 past the budget).
    reply_window: FixedWindow,
    /// The protocol version the endpoint defaults to, and the one Authenticate negotiated.
    endpoint_version: u16,
    version: u16,
    /// When the idle timer is next looked at; moved only when it fires, so a busy
    /// connection does not re-arm a timer per frame.
    idle_check: Instant,
    /// Kicked or cut off by its app's status: its seat is not kept for a reconnection.
    removed_from_room: bool,
    /// In a cluster: the node holding this player's room, when it is another node; every
    /// frame from then on goes there ([`crate::server::cluster::tunnel`]).
    tunnel: Option<String>,
    /// A lookup of where a room lives, under way; frames meanwhile wait in `held`.
    pending: Option<Pin<Box<dyn Future<Output = Resolved> + Send>>>,
    held: VecDeque<String>,
    /// Set when this session runs on the room's node for a player of another node; the flag
    /// says the player's own node ended it for good (its seat goes).
    hosted: Option<Arc<AtomicBool>>,
}

/// Where Redis says a requested room lives, with the request that asked.
struct Resolved {
    text: String,
    carrier: Carrier,
    placement: Result<Placement, ()>,
}

impl Session {
    fn new(shared: Arc<Shared>, peer: Arc<PeerHandle>, endpoint_version: u16) -> Session {
        let settings = &shared.hub.config().signal_fish;
        let now = Instant::now();
        Session {
            last_frame: now,
            reply_window: FixedWindow::new(Duration::from_secs(60), now.into_std()),
            endpoint_version,
            version: endpoint_version,
            auth_deadline: now + Duration::from_millis(settings.auth_timeout_ms),
            idle_check: now
                + Duration::from_millis(
                    settings
                        .idle_timeout_ms
                        .min(settings.socket_idle_timeout_ms),
                ),
            shared,
            peer,
            app: None,
            rate_window: FixedWindow::new(Duration::from_secs(60), now.into_std()),
            warned_this_window: false,
            last_activity: now,
            removed_from_room: false,
            tunnel: None,
            pending: None,
            held: VecDeque::new(),
            hosted: None,
        }
    }

    /// The session a room's node runs for a player connected to another node: already
    /// authenticated there, with its timers kept there.
    fn hosted(
        shared: Arc<Shared>,
        peer: Arc<PeerHandle>,
        open: &TunnelOpen,
        removed: Arc<AtomicBool>,
    ) -> Session {
        let mut session = Session::new(shared, peer, open.version);
        session.app = Some(open.app.clone());
        session
            .rooms()
            .set_protocol_version(&session.peer.id, open.version);
        session.hosted = Some(removed);
        session
    }
}

/// Run the session of a player of another node whose room is here, over the bus.
pub async fn host_tunnel(
    shared: Arc<Shared>,
    socket: TunnelSocket,
    open: TunnelOpen,
    removed: Arc<AtomicBool>,
) {
    // Without an app: the player counts against its app's limits on its own node only, and
    // an app suspension reaches it there (which ends this session, seat and all).
    let new = NewPeer {
        dialect: DIALECT,
        app: None,
        identity: None,
        addr: format!("{} via {}", open.address, open.peer),
        probe_nonce: None,
    };
    let path = format!("/v{}/ws", open.version);
    let session_shared = Arc::clone(&shared);
    connection::serve(
        socket,
        shared,
        path,
        new,
        None,
        |_| (4000, close_reason(4000)),
        move |peer| Session::hosted(session_shared, peer, &open, removed),
    )
    .await;
}

impl connection::Session for Session {
    fn on_text(&mut self, text: &str) -> Flow {
        self.handle(text)
    }

    fn on_binary(&mut self, _bytes: &[u8]) -> Flow {
        self.last_activity = Instant::now();
        self.last_frame = self.last_activity;
        if self.app.is_none() {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "MISSING_APP_ID",
                text: Some("Authentication required before sending binary data".to_owned()),
            });
            return Flow::close(1000, "unregistered");
        }
        // Every session here negotiates JSON game data, as 0.12 answers binary on one.
        self.answer_refusal(&Refusal {
            carrier: Carrier::Error,
            code: "INVALID_INPUT",
            text: Some("Binary payloads are disabled for this connection".to_owned()),
        })
    }

    fn on_socket_frame(&mut self) {
        self.last_frame = Instant::now();
    }

    fn identified(&self) -> bool {
        self.app.is_some()
    }

    // Signal Fish has its own activity (4003) and socket idle (4004) timers.
    fn idle_close(&self) -> Option<(u16, &'static str)> {
        None
    }

    fn on_control(&mut self, control: Control) -> Flow {
        match control {
            // The operator's reason, when given, is the notice's message; the close reason stays
            // the documented `admin_disconnect`, which clients match on.
            Control::Kick { reason } => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "KICKED",
                    text: reason,
                });
                Flow::close(4020, "admin_disconnect")
            }
            Control::AppStatus(AppStatus::Active) => Flow::Continue,
            // An `Error`, not an AuthenticationError: the SDK treats an AuthenticationError
            // after authentication as a protocol violation.
            Control::AppStatus(status) if self.app.is_some() => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: status_code(status),
                    text: None,
                });
                Flow::close(4007, close_reason(4007))
            }
            Control::AppStatus(_) => Flow::Continue,
            Control::Shutdown => {
                if self.version >= 3 && self.app.is_some() {
                    self.reply(&ServerMessage::GoingAway {
                        deadline_ms: SHUTDOWN_NOTICE_MS,
                        retry_after_secs: Some(1),
                    });
                }
                Flow::close(4000, close_reason(4000))
            }
            // Injected frames reach `on_text`.
            Control::Inject(_) => Flow::Continue,
            Control::Close(code, reason) => Flow::Close(code, reason),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        // The player's own node keeps its timers: it sees the socket's every frame.
        if self.hosted.is_some() {
            return None;
        }
        Some(if self.app.is_none() {
            self.auth_deadline.min(self.idle_check)
        } else {
            self.idle_check
        })
    }

    fn on_deadline(&mut self) -> Flow {
        let now = Instant::now();
        if self.app.is_none() && now >= self.auth_deadline {
            let seconds = self
                .hub()
                .config()
                .signal_fish
                .auth_timeout_ms
                .div_ceil(1000);
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "AUTHENTICATION_TIMEOUT",
                text: Some(format!(
                    "Authentication timeout - must authenticate within {seconds} seconds"
                )),
            });
            return Flow::close(4001, close_reason(4001));
        }
        let settings = &self.hub().config().signal_fish;
        let socket_idle = Duration::from_millis(settings.socket_idle_timeout_ms);
        let activity = Duration::from_millis(settings.idle_timeout_ms);
        let (socket_idle_until, activity_until) =
            (self.last_frame + socket_idle, self.last_activity + activity);
        if now >= socket_idle_until {
            let seconds = socket_idle.as_millis().div_ceil(1000);
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "CONNECTION_IDLE_TIMEOUT",
                text: Some(format!(
                    "Idle timeout - no messages received for {seconds} seconds"
                )),
            });
            return Flow::close(4004, close_reason(4004));
        }
        if now >= activity_until {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "ACTIVITY_TIMEOUT",
                text: None,
            });
            return Flow::close(4003, close_reason(4003));
        }
        self.idle_check = socket_idle_until.min(activity_until);
        Flow::Continue
    }

    async fn background(&mut self) -> Flow {
        let Some(pending) = self.pending.as_mut() else {
            return std::future::pending().await;
        };
        // Nothing after this await can be cancelled: the lookup's outcome is used at once.
        let resolved = pending.await;
        self.pending = None;
        let mut flow = self.resolved(resolved);
        while flow == Flow::Continue && self.pending.is_none() {
            let Some(text) = self.held.pop_front() else {
                break;
            };
            flow = self.process(&text);
        }
        flow
    }

    fn on_end(&mut self) {
        if self
            .hosted
            .as_ref()
            .is_some_and(|r| r.load(Ordering::Relaxed))
        {
            self.removed_from_room = true;
        }
        if self.tunnel.is_some() {
            if let Some(cluster) = &self.shared.cluster {
                cluster.end_tunnel(&self.peer.id, self.removed_from_room);
            }
        }
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

    /// Charge one reply against the error-reply budget (refusals and pongs, as the real
    /// server counts them); false once it is spent, when the connection must close 4006.
    fn charge_reply(&mut self) -> bool {
        let budget = self.hub().config().signal_fish.error_replies_per_minute;
        self.reply_window.hit(std::time::Instant::now()) <= budget
    }

    /// Answer with a refusal; when the reply budget is spent, close 4006 instead.
    fn answer_refusal(&mut self, refusal: &Refusal) -> Flow {
        if !self.charge_reply() {
            return self.budget_spent();
        }
        self.refuse(refusal);
        Flow::Continue
    }

    fn budget_spent(&self) -> Flow {
        self.refuse(&Refusal {
            carrier: Carrier::Error,
            code: "RATE_LIMIT_EXCEEDED",
            text: Some("Inbound error-reply rate limit exceeded".to_owned()),
        });
        Flow::close(4006, close_reason(4006))
    }

    fn handle(&mut self, text: &str) -> Flow {
        self.last_activity = Instant::now();
        self.last_frame = self.last_activity;
        if text.len() > MAX_FRAME_BYTES {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: Some(format!(
                    "Message too large ({} bytes, max {MAX_FRAME_BYTES} bytes)",
                    text.len()
                )),
            });
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
                return self.answer_refusal(&Refusal {
                    carrier: Carrier::Error,
                    code: "RATE_LIMIT_EXCEEDED",
                    text: None,
                });
            }
            return Flow::Continue;
        }
        self.process(text)
    }

    /// A frame past the size and rate limits: held while a room lookup runs, forwarded when
    /// the player's room is on another node, handled here otherwise.
    fn process(&mut self, text: &str) -> Flow {
        if self.pending.is_some() {
            if self.held.len() >= MAX_HELD_FRAMES {
                return self.budget_spent();
            }
            self.held.push_back(text.to_owned());
            return Flow::Continue;
        }
        if let (Some(node), Some(cluster)) = (&self.tunnel, &self.shared.cluster) {
            cluster.forward(node, &self.peer.id, text);
            return Flow::Continue;
        }
        if self.app.is_some() {
            if let Some(frame) = crate::protocol::game_data::payload(text) {
                if let Err(refusal) = self.game_data(frame.data, frame.class, frame.key) {
                    return self.answer_refusal(&refusal);
                }
                return Flow::Continue;
            }
        }
        let request = match serde_json::from_str::<Request>(text) {
            Ok(request) => request,
            Err(_) => {
                return self.answer_refusal(&Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: Some("Invalid client message".to_owned()),
                });
            }
        };
        if self.app.is_none() && !matches!(request, Request::Authenticate(_)) {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "MISSING_APP_ID",
                text: None,
            });
            return Flow::close(1000, "unregistered");
        }
        if !matches!(request, Request::Ping | Request::Authenticate(_)) {
            if let Some(code) = self.hub().take_fault(&self.peer) {
                let carrier = if matches!(request, Request::JoinRoom(_)) {
                    Carrier::RoomJoinFailed
                } else {
                    Carrier::Error
                };
                return self.answer_refusal(&Refusal {
                    carrier,
                    code: static_code(&code),
                    text: None,
                });
            }
        }
        self.dispatch(request, text, false)
    }

    /// Act on one request; `placed` once the cluster said the room it names is here.
    fn dispatch(&mut self, request: Request, text: &str, placed: bool) -> Flow {
        if !placed {
            if let Some(flow) = self.route(&request, text) {
                return flow;
            }
        }
        let peer = self.peer.id.clone();
        let outcome = match request {
            Request::Authenticate(authenticate) => return self.authenticate(authenticate),
            Request::Ping => {
                if !self.charge_reply() {
                    return self.budget_spent();
                }
                self.reply(&ServerMessage::Pong);
                Ok(())
            }
            Request::JoinRoom(join) => self.join(join),
            Request::LeaveRoom => self.rooms().leave(self.hub(), &peer),
            // Reached only by GameData frames the fast path could not read (the fault was
            // taken above).
            Request::GameData { data, class, key } => serde_json::value::to_raw_value(&data)
                .map_err(|_| Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: None,
                })
                .and_then(|raw| self.relay_game_data(&raw, class, key)),
            Request::AuthorityRequest { become_authority } => {
                self.rooms()
                    .authority_request(self.hub(), &peer, become_authority)
            }
            Request::PlayerReady => self.rooms().ready(self.hub(), &peer),
            Request::StartGame => self.rooms().start(self.hub(), &peer),
            Request::Reconnect(Reconnect {
                player_id,
                room_id,
                auth_token,
            }) => {
                let app = self.app.clone();
                let hub = self.hub();
                self.rooms()
                    .reconnect(hub, &peer, &player_id, &room_id, &auth_token, |name| {
                        hub.identity_ban(app.as_deref(), name).is_some()
                    })
            }
            Request::JoinAsSpectator(JoinAsSpectator {
                game_name,
                room_code,
                spectator_name,
                password: _,
            }) => {
                let app = self.app.clone().unwrap_or_default();
                if self.hub().identity_ban(Some(&app), &spectator_name).is_some() {
                    return self.answer_refusal(&Refusal {
                        carrier: Carrier::SpectatorJoinFailed,
                        code: "BANNED",
                        text: None,
                    });
                }
                let joined = self.rooms().spectate(
                    self.hub(),
                    &peer,
                    &app,
                    &game_name,
                    &room_code,
                    &spectator_name,
                );
                if joined.is_ok() {
                    self.hub()
                        .update_peer(&peer, |p| p.identity = Some(spectator_name));
                }
                joined
            }
            Request::LeaveSpectator => self.rooms().leave_spectator(self.hub(), &peer),
            Request::RoomOperation {
                operation_id,
                operation,
            } => {
                self.rooms()
                    .room_operation(self.hub(), &peer, &operation_id, &operation);
                Ok(())
            }
            // Peer-to-peer transports are never negotiated here (ProtocolInfo offers the
            // websocket relay only), so signaling has nowhere to go.
            Request::Signal { .. } | Request::ProvideConnectionInfo { .. } => Err(Refusal {
                carrier: Carrier::Error,
                code: "UNSUPPORTED_TRANSPORT",
                text: Some(
                    "This server relays over the WebSocket only; peer-to-peer signaling is not negotiated"
                        .to_owned(),
                ),
            }),
            // A transport report for the relay changes nothing.
            Request::TransportStatus { .. } => Ok(()),
        };
        match outcome {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.answer_refusal(&refusal),
        }
    }

    /// In a cluster, a request naming a room that is not on this node: forwarded to the
    /// room's node, looked up in Redis first when no node has announced it, or (creating a
    /// room) given a code claimed cluster-wide. `None`: handle it here.
    fn route(&mut self, request: &Request, text: &str) -> Option<Flow> {
        let cluster = self.shared.cluster.clone()?;
        let rooms = self.rooms();
        let (carrier, code, claim) = match request {
            Request::JoinRoom(join) => match &join.room_code {
                // A malformed code is refused here, as on a single node.
                Some(code) if !rooms::valid_room_code(code) || rooms.holds_code(code) => {
                    return None
                }
                Some(code) => (
                    Carrier::RoomJoinFailed,
                    Some(code.clone()),
                    !join.join_only.unwrap_or(false),
                ),
                None => (Carrier::RoomJoinFailed, None, true),
            },
            Request::JoinAsSpectator(spectate) => {
                if !rooms::valid_room_code(&spectate.room_code)
                    || rooms.holds_code(&spectate.room_code)
                {
                    return None;
                }
                (
                    Carrier::SpectatorJoinFailed,
                    Some(spectate.room_code.clone()),
                    false,
                )
            }
            // Seats are found by the room id the player was given; a room gone everywhere is
            // refused here as on a single node.
            Request::Reconnect(reconnect) => {
                if rooms.holds_room_id(&reconnect.room_id) {
                    return None;
                }
                let node = self.hub().remote_room_node_by_id(&reconnect.room_id)?;
                return Some(self.open_tunnel(&node, text, Carrier::ReconnectionFailed));
            }
            _ => return None,
        };
        if !cluster.redis_ok() {
            return Some(self.storage_unreachable(carrier));
        }
        if let Some(node) = code.as_deref().and_then(|c| self.hub().remote_room_node(c)) {
            return Some(self.open_tunnel(&node, text, carrier));
        }
        let text = text.to_owned();
        self.pending = Some(Box::pin(async move {
            let placement = match code {
                Some(code) => cluster.place_room(&code, claim).await,
                None => cluster
                    .claim_new_room(rooms::room_code)
                    .await
                    .map(|code| Placement::Here(Some(code))),
            };
            Resolved {
                text,
                carrier,
                placement: placement.map_err(|error| {
                    tracing::warn!(%error, "cluster: room lookup failed");
                }),
            }
        }));
        Some(Flow::Continue)
    }

    fn resolved(&mut self, resolved: Resolved) -> Flow {
        let Resolved {
            text,
            carrier,
            placement,
        } = resolved;
        let claimed = match placement {
            Err(()) => return self.storage_unreachable(carrier),
            Ok(Placement::There(node)) => return self.open_tunnel(&node, &text, carrier),
            Ok(Placement::Here(claimed)) => claimed,
            Ok(Placement::Nowhere) => None,
        };
        // The frame parsed before it was held.
        let Ok(mut request) = serde_json::from_str::<Request>(&text) else {
            return Flow::Continue;
        };
        if let (Request::JoinRoom(join), Some(code)) = (&mut request, &claimed) {
            join.room_code = Some(code.clone());
            join.join_only = Some(false);
        }
        let flow = self.dispatch(request, &text, true);
        // A claim the join did not use (a refused name, say) is freed at once.
        if let (Some(code), Some(cluster)) = (claimed, &self.shared.cluster) {
            if !self.rooms().holds_code(&code) {
                cluster.release_room(&code);
            }
        }
        flow
    }

    /// From now on this player's frames go to `node`, which holds its room.
    fn open_tunnel(&mut self, node: &str, text: &str, carrier: Carrier) -> Flow {
        let Some(cluster) = self.shared.cluster.clone() else {
            return Flow::Continue;
        };
        // A player served for another node stays with this node's rooms: one hop only.
        if self.hosted.is_some() {
            return self.answer_refusal(&Refusal {
                carrier,
                code: "ROOM_NOT_FOUND",
                text: Some("The room is held by another node; connect again to join it".to_owned()),
            });
        }
        if !cluster.redis_ok() {
            return self.storage_unreachable(carrier);
        }
        let address = self
            .hub()
            .peer(&self.peer.id)
            .map(|p| p.addr)
            .unwrap_or_default();
        cluster.open_tunnel(
            node,
            Arc::clone(&self.peer),
            TunnelOpen {
                peer: self.peer.id.clone(),
                app: self.app.clone().unwrap_or_default(),
                address,
                version: self.version,
                first: text.to_owned(),
            },
        );
        self.tunnel = Some(node.to_owned());
        Flow::Continue
    }

    /// Redis, which says where rooms live, cannot be reached.
    fn storage_unreachable(&mut self, carrier: Carrier) -> Flow {
        self.answer_refusal(&Refusal {
            carrier,
            code: "STORAGE_ERROR",
            text: Some(
                "The cluster's room directory cannot be reached; try again in a few seconds"
                    .to_owned(),
            ),
        })
    }

    fn join(&mut self, join: JoinRoom) -> Result<(), Refusal> {
        let app = self.app.clone().unwrap_or_default();
        let max_rooms_per_game = self
            .hub()
            .config()
            .app(&app)
            .and_then(|a| a.signal_fish.as_ref())
            .map(|sf| sf.max_rooms_per_game)
            .unwrap_or(rooms::DEFAULT_MAX_ROOMS_PER_GAME);
        let player_name = join.player_name.clone();
        if let Some(_ban) = self.hub().identity_ban(Some(&app), &player_name) {
            return Err(Refusal {
                carrier: Carrier::RoomJoinFailed,
                code: "BANNED",
                text: None,
            });
        }
        let request = JoinRequest {
            app,
            game_name: join.game_name,
            room_code: join.room_code,
            player_name: join.player_name,
            max_players: join.max_players,
            supports_authority: join.supports_authority,
            join_only: join.join_only.unwrap_or(false),
            allow_spectators: join.allow_spectators,
            max_spectators: join.max_spectators,
            max_rooms_per_game,
        };
        let joined = self.rooms().join_with(
            self.hub(),
            &self.peer.id,
            request,
            JoinOptions {
                password: join.password,
            },
        );
        if joined.is_ok() {
            self.hub()
                .update_peer(&self.peer.id, |p| p.identity = Some(player_name));
        }
        joined
    }

    /// The hot path: a GameData frame read without building a tree of its payload.
    fn game_data(
        &mut self,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if let Some(code) = self.hub().take_fault(&self.peer) {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: static_code(&code),
                text: None,
            });
        }
        self.relay_game_data(data, class, key)
    }

    fn relay_game_data(
        &self,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if data.get().len() > self.hub().config().signal_fish.max_game_data_bytes {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: None,
            });
        }
        self.rooms()
            .game_data_with(self.hub(), &self.peer.id, data, class, key)
    }

    /// Refuse an authentication but keep the connection open for another try, as the real
    /// server does for connect tokens, SDK versions and protocol versions.
    fn refuse_and_stay(&mut self, code: &'static str, text: Option<String>) -> Flow {
        self.answer_refusal(&Refusal {
            carrier: Carrier::AuthenticationError,
            code,
            text,
        })
    }

    /// Authenticate, in signal-fish-server 0.12's order: already authenticated, app id,
    /// app status (relaydeck's addition), tokens, SDK version, protocol version, connection
    /// limit; then the game data format, which never refuses (it falls back to JSON).
    fn authenticate(&mut self, authenticate: Authenticate) -> Flow {
        if self.app.is_some() {
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code: "INVALID_INPUT",
                text: Some("Authenticate already completed on this connection".to_owned()),
            });
        }
        if authenticate.app_id.trim().is_empty() {
            return self
                .refuse_authentication("MISSING_APP_ID", Some("app_id is required".to_owned()));
        }
        let shared = self.shared.clone();
        let config = shared.hub.config();
        let Some((app, settings)) = config
            .app(&authenticate.app_id)
            .and_then(|a| a.signal_fish.as_ref().map(|sf| (a, sf)))
        else {
            return self.refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()));
        };
        if self.hub().bans_in_force() {
            let banned = self
                .hub()
                .peer(&self.peer.id)
                .and_then(|p| crate::server::bans::ip_of(&p.addr))
                .and_then(|ip| self.hub().address_ban(ip));
            if banned.is_some() {
                return self.refuse_authentication(
                    "UNAUTHORIZED",
                    Some("Access denied: this address is banned".to_owned()),
                );
            }
        }
        match self.hub().app_status(&app.id) {
            Some(AppStatus::Active) => {}
            Some(status) => return self.refuse_authentication(status_code(status), None),
            None => {
                return self
                    .refuse_authentication("INVALID_APP_ID", Some("InvalidAppId".to_owned()))
            }
        }
        if let Some(expected) = &settings.connect_token {
            match &authenticate.connect_token {
                None => {
                    return self.refuse_and_stay(
                        "CONNECT_TOKEN_REQUIRED",
                        Some("A connect token is required for this app".to_owned()),
                    )
                }
                Some(given) if !token_equals(given, expected) => {
                    return self.refuse_and_stay(
                        "CONNECT_TOKEN_INVALID",
                        Some("The connect token is not valid for this app".to_owned()),
                    )
                }
                Some(_) => {}
            }
        }
        if let Some(expected) = &settings.token {
            match &authenticate.token {
                None => return self.refuse_authentication("AUTHENTICATION_REQUIRED", None),
                Some(given)
                    if given.is_empty()
                        || given.len() > 256
                        || given.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    return self.refuse_authentication("INVALID_TOKEN", None)
                }
                Some(given) if !token_equals(given, expected) => {
                    return self.refuse_authentication("UNAUTHORIZED", None)
                }
                Some(_) => {}
            }
        }
        if let (Some(minimum), Some(given)) = (&settings.min_sdk_version, &authenticate.sdk_version)
        {
            let supported =
                matches!((version(given), version(minimum)), (Some(g), Some(m)) if g >= m);
            if !supported {
                return self.refuse_and_stay(
                    "SDK_VERSION_UNSUPPORTED",
                    Some(format!(
                        "SDK version `{given}` is below the minimum supported version `{minimum}`"
                    )),
                );
            }
        }
        let negotiated = authenticate.negotiated_version(self.endpoint_version);
        if negotiated < MIN_PROTOCOL_VERSION {
            return self.refuse_and_stay(
                "UNSUPPORTED_PROTOCOL_VERSION",
                Some(format!(
                    "Client protocol version {negotiated} is below the server minimum {MIN_PROTOCOL_VERSION}"
                )),
            );
        }
        let live = self.hub().app_peer_count(DIALECT, &app.id);
        if live >= app.limits.max_connections {
            return self.refuse_authentication("TOO_MANY_CONNECTIONS", None);
        }
        self.app = Some(app.id.clone());
        self.version = negotiated;
        self.rooms().set_protocol_version(&self.peer.id, negotiated);
        let app_id = app.id.clone();
        self.hub()
            .update_peer(&self.peer.id, |p| p.app = Some(app_id));
        if let Some(format) = authenticate
            .game_data_format
            .filter(|f| *f != GameDataFormat::Json)
        {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "UNSUPPORTED_GAME_DATA_FORMAT",
                text: Some(format!(
                    "Requested game data format '{}' is not supported. Server supports: json. Falling back to JSON.",
                    format.as_str()
                )),
            });
        }
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
        let info = ProtocolInfo {
            platform: authenticate.platform,
            sdk_version: authenticate.sdk_version,
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
        };
        let info = if negotiated >= 3 {
            ServerMessage::ProtocolInfoV3(Box::new(ProtocolInfoV3::new(
                info,
                MAX_OUTBOUND_MESSAGE_BYTES,
            )))
        } else {
            ServerMessage::ProtocolInfo(info)
        };
        self.reply(&info);
        Flow::Continue
    }
}

fn token_equals(given: &str, expected: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.as_bytes(),
    ))
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
