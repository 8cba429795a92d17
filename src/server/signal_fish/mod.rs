//! The Signal Fish dialect on `GET /v2/ws` and `GET /v3/ws`: one connection, whose protocol
//! version is what Authenticate negotiates (`protocol_version`, else 2 on `/v2/ws` and 3 on
//! `/v3/ws`, within 2..=3), as signal-fish-server 0.12 does. v2 sessions get v2 shapes (no
//! reconnection token, no delivery stamps); v3 sessions get ProtocolInfo's version window,
//! reconnection tokens, stamped game data, SessionPlan at start, RoomOperations once
//! `room_operation_ids` is granted (`operations.rs`) and GoingAway at shutdown.
//!
//! # Where things live
//! | file | what |
//! |---|---|
//! | `mod.rs` | the upgrade, the session and its lifecycle (timers, notices, end) |
//! | `refusal.rs` | refusals and the message type each travels in; the player-name rule |
//! | `limits.rs` | frame size, messages per minute, the error-reply budget |
//! | `dispatch.rs` | one request: parsed, faults honoured, handed to its handler |
//! | `auth.rs` | Authenticate: app, status, credentials, SDK and protocol versions |
//! | `placement.rs` | in a cluster: where a room lives, the tunnel to it, hosted sessions |
//! | `tunnel.rs` | this dialect's messages between nodes: a player's frames to the node holding its room and back (its broker handler) |
//! | `msgpack.rs` | MessagePack game data: the binary envelope, payloads decoded to JSON |
//! | `operations.rs` | RoomOperation: `room_operation_ids` granted or refused, answers correlated |
//! | `rooms/` | the rooms, one file per request kind (its own map) |
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
//! - UNSUPPORTED_GAME_DATA_FORMAT: a `game_data_format` other than `json` and `message_pack`
//!   (as 0.12's defaults): answered with an `Error`, and the session goes on in JSON. A JSON
//!   session's binary frames are refused with INVALID_INPUT; a MessagePack session's are
//!   relayed ([`rooms`]'s `binary.rs`).
//! - TOO_MANY_CONNECTIONS: more Signal Fish connections of an app than its `max_connections`.
//! - MAX_ROOMS_PER_GAME_EXCEEDED: the app's `max_rooms_per_game` (demo `limited-app`: 1), or
//!   as many rooms of the app as its `limits.max_connections`; rooms nobody is connected to
//!   give way first.
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
//! - INVALID_INPUT / UNSUPPORTED_PROTOCOL_VERSION: a RoomOperation from a v3 / v2 session
//!   that was not granted `room_operation_ids` (`operations.rs`).
//! - UNSUPPORTED_TRANSPORT: a Signal from a connection that did not negotiate v3 with the
//!   `webrtc` transport; SIGNAL_TOO_LARGE, SIGNAL_TARGET_NOT_FOUND, CROSS_ROOM_SIGNAL,
//!   SIGNAL_RATE_LIMITED: the other Signal refusals, in 0.12's order and with its limits
//!   ([`rooms`]'s `signaling.rs`); ROOM_SESSION_INCOMPATIBLE: a seat-fill of a running
//!   WebRTC session by a connection that cannot run it.
//! - 4003 `activity_timeout` after `Error ACTIVITY_TIMEOUT`: no message for `idle_timeout_ms`;
//!   4004 `idle_timeout` after `Error CONNECTION_IDLE_TIMEOUT`: no frame at all, WebSocket
//!   pings included, for `socket_idle_timeout_ms`; 4005 `room_inactive` after `Error
//!   ROOM_NOT_FOUND`: no member of the room sent a message for `inactive_room_timeout_ms`;
//!   4000 `server_shutdown`; 4002 `slow_consumer` (see [`crate::server::peer`]).

mod auth;
mod dispatch;
mod limits;
pub(crate) mod msgpack;
mod operations;
mod placement;
pub(crate) mod refusal;
pub mod rooms;
pub mod tunnel;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use tokio::time::{Duration, Instant};

pub use self::refusal::{status_code, Carrier, Refusal};
use self::rooms::session_plan::Capabilities;
use self::rooms::{RoomChange, RoomPeer, Rooms, SignalBudget};
use self::tunnel::{TunnelOpen, TunnelSocket};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::signal_fish::{GameDataFormat, ServerMessage};
use crate::server::access;
use crate::server::cluster::rooms::Placement;
use crate::server::connection::{self, Flow};
use crate::server::hub::{Hub, NewPeer};
use crate::server::peer::Priority;
use crate::server::peer::{Notice, PeerHandle};
use crate::server::rate_limit::FixedWindow;
use crate::server::{probe_nonce, Shared};

const DIALECT: Dialect = Dialect::SignalFish;
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The largest frame this server sends, announced to v3 clients (0.12: 8 MiB).
const MAX_OUTBOUND_MESSAGE_BYTES: usize = 8 << 20;
/// How long a v3 client is told it has before the connection closes at shutdown.
const SHUTDOWN_NOTICE_MS: u64 = 1_000;
const READ_LIMIT_BYTES: usize = 4 << 20;
/// Frames that may arrive while a cluster node looks up where a room lives; they wait, in
/// order, and a client that sends more in that moment is flooding.
const MAX_HELD_FRAMES: usize = 256;

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
    /// When this session last told the rooms it is active (the inactive-room reaper, 4005).
    activity_reported: Option<Instant>,
    /// What Authenticate negotiated for game data: binary frames need MessagePack.
    game_data_format: GameDataFormat,
    /// What Authenticate negotiated for the data path (transports, topologies); until then,
    /// and on a hosted session whose player negotiated on its own node, the relay floor.
    capabilities: Arc<Capabilities>,
    /// Signals relayed and refused this window ([`rooms`]'s `signaling.rs`).
    signal_budget: SignalBudget,
    /// Whether Authenticate granted `room_operation_ids` (`operations.rs`).
    room_operation_ids: bool,
    /// In a cluster: the node holding this player's room, when it is another node; every
    /// frame from then on goes there ([`tunnel`]).
    tunnel: Option<String>,
    /// A lookup of where a room lives, under way; frames meanwhile wait in `held`.
    pending: Option<Pin<Box<dyn Future<Output = Resolved> + Send>>>,
    held: VecDeque<String>,
    /// Set when this session runs on the room's node for a player of another node; the flag
    /// says the player's own node ended it for good (its seat goes).
    hosted: Option<Arc<AtomicBool>>,
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
            game_data_format: GameDataFormat::Json,
            capabilities: Arc::new(Capabilities::relay_only(2)),
            signal_budget: SignalBudget::default(),
            room_operation_ids: false,
            activity_reported: None,
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
        session.room_operation_ids = open.room_operation_ids;
        session.hosted = Some(removed);
        session
    }
}

/// Where Redis says a requested room lives, with the request that asked.
struct Resolved {
    text: String,
    carrier: Carrier,
    /// The RoomOperation the request is, when it is one: refusals answer it.
    operation: Option<String>,
    placement: Result<Placement, ()>,
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

    fn on_binary(&mut self, bytes: &[u8]) -> Flow {
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
        self.binary(bytes)
    }

    fn show_binary(&self, bytes: &[u8]) -> String {
        if self.game_data_format == GameDataFormat::MessagePack {
            msgpack::describe(bytes)
        } else {
            format!("<{} binary bytes>", bytes.len())
        }
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

    fn on_control(&mut self, notice: Notice) -> Flow {
        match notice {
            // The operator's reason, when given, is the notice's message; the close reason stays
            // the documented `admin_disconnect`, which clients match on.
            Notice::Kick { reason } => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: "KICKED",
                    text: reason,
                });
                Flow::close(4020, "admin_disconnect")
            }
            Notice::AppStatus(AppStatus::Active) => Flow::Continue,
            // An `Error`, not an AuthenticationError: the SDK treats an AuthenticationError
            // after authentication as a protocol violation.
            Notice::AppStatus(status) if self.app.is_some() => {
                self.removed_from_room = true;
                self.refuse(&Refusal {
                    carrier: Carrier::Error,
                    code: status_code(status),
                    text: None,
                });
                Flow::close(4007, close_reason(4007))
            }
            Notice::AppStatus(_) => Flow::Continue,
            Notice::Shutdown => {
                if self.version >= 3 && self.app.is_some() {
                    self.reply(&ServerMessage::GoingAway {
                        deadline_ms: SHUTDOWN_NOTICE_MS,
                        retry_after_secs: Some(1),
                    });
                }
                Flow::close(4000, close_reason(4000))
            }
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
            self.shared
                .tunnels
                .end(&self.shared.broker, &self.peer.id, self.removed_from_room);
        }
        let change = if self.removed_from_room {
            self.rooms().remove_peer_now(self.hub(), &self.peer.id)
        } else {
            self.rooms().disconnected(self.hub(), &self.peer.id)
        };
        self.record(change);
    }
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn rooms(&self) -> &Rooms {
        &self.shared.signal_fish
    }

    /// What the rooms changed, recorded for admins before anything else reaches the rooms.
    fn record(&self, change: RoomChange<'_>) {
        self.hub().record_rooms(change.events());
    }

    /// This connection as a room holds it once it joins, spectates or reconnects, with what
    /// Authenticate (which comes first) negotiated: the version shapes its frames, the format
    /// its binary game data, the capabilities its part in a session plan.
    fn room_peer(&self) -> RoomPeer {
        RoomPeer::new(
            Arc::clone(&self.peer),
            self.version,
            self.game_data_format,
            Arc::clone(&self.capabilities),
        )
    }

    fn refuse(&self, refusal: &Refusal) {
        self.hub()
            .send_error(&self.peer, refusal.code, None, refusal.frame().text());
    }

    fn reply(&self, message: &ServerMessage) {
        self.hub()
            .deliver(&self.peer, &message.text().into(), Priority::Reply);
    }
}
