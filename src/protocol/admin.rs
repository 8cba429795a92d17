//! The admin peer protocol spoken on `GET /admin` between the bundled server and a console.
//!
//! # Format
//! JSON text frames. The server speaks first, with a full snapshot; after it, a stream of
//! numbered deltas. Every delta has a `seq` one higher than the one before; the snapshot carries
//! the `seq` of the last delta it already includes, so a console that applies a snapshot and then
//! every delta with a higher `seq` is exactly in step with the server. A console that falls
//! behind (its outbox fills) is not waited for: its queued deltas are dropped and it is sent a
//! fresh snapshot instead, so a gap in `seq` only ever precedes a snapshot.
//!
//! ```text
//! server → console   {"type":"snapshot","seq":41,"snapshot":{…}}
//! server → console   {"type":"delta","seq":42,"at_ms":1764000000000,"event":{"kind":"peer_connected",…}}
//! console → server   {"id":7,"command":"kick","peer":"p12","reason":"spamming channel"}
//! server → console   {"type":"result","id":7,"ok":true,"message":"closed p12 with 4020 admin_disconnect"}
//! ```
//!
//! Commands carry a console-chosen `id` that the result echoes. A command's effect is seen by
//! every console through deltas (a kick produces `peer_closed`), never only through the result.
//!
//! Every message has an example in [`examples`]; the tests parse each one back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Delivery, Dialect};

/// Peer ids are assigned by the hub, unique for the server's lifetime (`p1`, `p2`, …).
pub type PeerId = String;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

// ----------------------------------------------------------------------------------------------
// Server → console
// ----------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole state; sent on connect and whenever the console fell behind.
    Snapshot { seq: u64, snapshot: Box<Snapshot> },
    /// One change, numbered.
    Delta {
        seq: u64,
        at_ms: UnixMillis,
        event: Event,
    },
    /// The answer to one command.
    Result(CommandResult),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The `id` of the command this answers.
    pub id: u64,
    pub ok: bool,
    /// What happened, in words fit for a status line.
    pub message: String,
    /// Command-specific data (the probe's peer id for an inject through a probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub server: ServerInfo,
    pub apps: Vec<AppInfo>,
    pub peers: Vec<PeerInfo>,
    pub rooms: Vec<RoomInfo>,
    pub channels: Vec<ChannelInfo>,
    pub subscriptions: Vec<SubscriptionInfo>,
    pub faults: Vec<FaultInfo>,
    pub stats: Stats,
    /// Peers and rooms that closed, oldest first, within the server's history limits
    /// ([`HistoryLimits`]): what a support engineer searches when the player is already gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Bans in force, oldest first. Expired bans are not listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<BanInfo>,
    /// The cluster's nodes as this node last saw them; empty when the server runs alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeInfo>,
}

/// One node of a cluster (`serve --cluster`), from its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// The address its clients connect to.
    pub listen: String,
    pub started_at_ms: UnixMillis,
    pub heartbeat_at_ms: UnixMillis,
    pub peers: u64,
    /// Totals since the node started; consoles derive rates from successive lists.
    pub frames_in: u64,
    pub frames_out: u64,
    pub errors: u64,
    /// Whether the node reached Redis on its last try.
    pub redis_ok: bool,
    /// Its heartbeat was present at the last check.
    pub alive: bool,
    /// The node this console is connected to.
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    /// The address the server listens on, as bound (`127.0.0.1:7878`).
    pub listen: String,
    pub started_at_ms: UnixMillis,
    /// How much history the server keeps; a console trims its copy the same way.
    #[serde(default)]
    pub history: HistoryLimits,
}

/// The bounds of the closed-peer and closed-room history (config key `history`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLimits {
    /// Entries kept at most; the oldest go first.
    pub max_entries: u32,
    /// Entries older than this are dropped.
    pub retain_ms: u64,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_entries: 2_000,
            retain_ms: 3_600_000,
        }
    }
}

/// One closed peer or room, as it was when it closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub closed_at_ms: UnixMillis,
    #[serde(flatten)]
    pub closed: Closed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Closed {
    Peer(Box<ClosedPeer>),
    Room(Box<ClosedRoom>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedPeer {
    /// The peer as last known: identity, app, room, counters.
    pub peer: PeerInfo,
    /// The close code sent, or `None` when the socket simply dropped.
    pub code: Option<u16>,
    pub reason: String,
    /// Every room code the peer was in during its life, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
    /// The Signal Fish player id: the same player across reconnects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    /// The peer's last errors, oldest first (a few, each frame clipped like `error_emitted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_errors: Vec<RecentError>,
    /// Frames the flight recorder still holds for this peer (read them with `frames`).
    #[serde(default)]
    pub recorded_frames: u32,
    /// Signal Fish joins the server refused (the last few): a player turned away is found
    /// by the room or game it asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_joins: Vec<RefusedJoin>,
}

/// A Signal Fish JoinRoom the server refused: what the player asked for, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedJoin {
    pub game: String,
    /// The room code asked for; none when the player asked for any room of the game.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The refusal's error code (ROOM_FULL, ROOM_NOT_FOUND, …).
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentError {
    pub at_ms: UnixMillis,
    pub dialect: Dialect,
    pub code: String,
    pub frame: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedRoom {
    /// The room as it last was.
    pub room: RoomInfo,
    /// Why it closed: `empty`, `closed by admin@…`, `inactive`, …
    pub reason: String,
}

/// A ban in force: matching connections get their dialect's own refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanInfo {
    pub id: u64,
    pub target: BanTarget,
    pub reason: String,
    /// Who banned (the admin's label).
    pub by: String,
    pub created_at_ms: UnixMillis,
    pub until_ms: UnixMillis,
}

/// What a ban matches. A console bans a peer by its identity, or by its address when the peer
/// has no identity yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum BanTarget {
    /// A player name, Talo alias or pub/sub peer id, within one app (or every app).
    Identity {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<String>,
        identity: String,
    },
    /// Every connection from one IP address (the port is ignored).
    Address { ip: String },
}

/// One frame kept by the flight recorder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedFrame {
    pub at_ms: UnixMillis,
    pub direction: Direction,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStatus {
    Active,
    Suspended,
    Revoked,
    Expired,
}

impl AppStatus {
    pub const ALL: [AppStatus; 4] = [
        AppStatus::Active,
        AppStatus::Suspended,
        AppStatus::Revoked,
        AppStatus::Expired,
    ];

    pub fn id(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Suspended => "suspended",
            AppStatus::Revoked => "revoked",
            AppStatus::Expired => "expired",
        }
    }
}

impl std::str::FromStr for AppStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AppStatus::ALL
            .into_iter()
            .find(|status| status.id().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown app status {s:?}; expected active, suspended, revoked or expired")
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppInfo {
    pub id: String,
    pub name: String,
    pub status: AppStatus,
    /// Credentials that belong to the app, described without their secrets.
    pub keys: Vec<KeyInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The public key id (`pk_demo`) or access key name; never a secret.
    pub id: String,
    pub dialect: Dialect,
    /// Human summary of what the key may do: channel patterns and actions, or Talo scopes.
    pub grants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    pub dialect: Dialect,
    /// The app the peer authenticated as, once known.
    pub app: Option<String>,
    /// Who the peer says it is: player name, Talo alias, pub/sub peerId.
    pub identity: Option<String>,
    /// The remote socket address.
    pub addr: String,
    pub connected_at_ms: UnixMillis,
    /// The room the peer is in (Signal Fish), as a room code.
    pub room: Option<String>,
    /// True for connections opened by an admin `inject` through a probe.
    pub probe: bool,
    pub frames_in: u64,
    pub frames_out: u64,
    pub errors: u64,
    /// Relayed frames the peer did not get because it fell behind (its outbox was full).
    #[serde(default)]
    pub frames_dropped: u64,
    /// The last round trip of a server ping to its pong, in microseconds, outbox wait
    /// included; absent until one was measured (Flow and Talo get keepalive pings; Signal
    /// Fish and pub/sub clients ping the server, not the other way round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_us: Option<u64>,
    /// The cluster node the peer is connected to (`serve --cluster`); absent when the server
    /// runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The 6-character room code; rooms are addressed by it in commands.
    pub code: String,
    pub room_id: String,
    pub app: String,
    pub game: String,
    pub max_players: u8,
    pub supports_authority: bool,
    /// `waiting`, `lobby`, `finalized` or `started`, as Signal Fish names them.
    pub lobby_state: String,
    pub players: Vec<RoomMember>,
    pub spectators: Vec<RoomMember>,
    /// The player id holding authority, if any.
    pub authority: Option<String>,
    pub created_at_ms: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomMember {
    /// The Signal Fish player (or spectator) id.
    pub player_id: String,
    pub name: String,
    /// The hub peer behind this member; `None` while the player is disconnected and still
    /// inside the reconnection window.
    pub peer: Option<PeerId>,
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// `pubsub` channels and `talo` game channels.
    pub dialect: Dialect,
    pub app: String,
    /// The channel name; Talo channels are named `<id>:<name>`.
    pub name: String,
    pub members: Vec<PeerId>,
    /// Messages delivered into the channel since the server started.
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub peer: PeerId,
    pub dialect: Dialect,
    /// The Flow subscription_id, or the channel name of a pub/sub subscription.
    pub id: String,
    pub topic: String,
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultInfo {
    pub id: u64,
    pub target: FaultTarget,
    /// The server-side code the armed requests fail with (`INTERNAL_ERROR`, `backend_error`,
    /// `internal error`, `LISTENER_ERROR`, …).
    pub code: String,
    /// Requests still to fail.
    pub remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum FaultTarget {
    Peer { peer: PeerId },
    Dialect { dialect: Dialect },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Totals since start; consoles derive rates from successive ticks.
    pub frames_in: u64,
    pub frames_out: u64,
    pub errors: u64,
    pub peers_by_dialect: BTreeMap<Dialect, u64>,
    /// Errors emitted since start, by `dialect:code`.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Messages delivered into each channel since start, by `dialect/app/channel`; refreshed
    /// with every tick so the channels view shows rates without a delta per message.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channel_messages: BTreeMap<String, u64>,
}

/// One change in the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    PeerConnected {
        peer: PeerInfo,
    },
    /// Identity, app or room of a peer changed (for example a Talo identify or a room join).
    PeerUpdated {
        peer: PeerInfo,
    },
    PeerClosed {
        peer: PeerId,
        /// The close code sent, or `None` when the socket simply dropped.
        code: Option<u16>,
        reason: String,
    },
    RoomUpdated {
        room: RoomInfo,
    },
    RoomClosed {
        code: String,
    },
    ChannelJoined {
        dialect: Dialect,
        app: String,
        channel: String,
        peer: PeerId,
    },
    ChannelLeft {
        dialect: Dialect,
        app: String,
        channel: String,
        peer: PeerId,
    },
    SubscriptionAdded {
        subscription: SubscriptionInfo,
    },
    SubscriptionRemoved {
        peer: PeerId,
        id: String,
    },
    AppStatusChanged {
        app: String,
        status: AppStatus,
        /// Who changed it (the admin's label).
        by: String,
    },
    /// Every error frame, error close and error HTTP response the server sends.
    ErrorEmitted {
        peer: Option<PeerId>,
        dialect: Dialect,
        code: String,
        delivery: Delivery,
        request_id: Option<String>,
        /// The exact bytes sent (the frame, or `close 4011 over_message_rate`).
        frame: String,
    },
    /// A frame of a tapped peer.
    Frame {
        peer: PeerId,
        direction: Direction,
        text: String,
    },
    FaultArmed {
        fault: FaultInfo,
    },
    /// A fault fired (`remaining` already decremented) or was disarmed (`remaining` 0).
    FaultUpdated {
        fault: FaultInfo,
    },
    /// Once a second.
    Stats {
        stats: Stats,
    },
    /// A peer or room closed and went into the history (right after its `peer_closed` or
    /// `room_closed`).
    HistoryAdded {
        entry: HistoryEntry,
    },
    BanAdded {
        ban: BanInfo,
    },
    /// Lifted by an admin, or expired.
    BanLifted {
        id: u64,
        by: String,
    },
    /// The cluster's node list, after each heartbeat of the node the console is connected
    /// to (only with `serve --cluster`).
    Nodes {
        nodes: Vec<NodeInfo>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the peer to the server.
    In,
    /// From the server to the peer.
    Out,
}

// ----------------------------------------------------------------------------------------------
// Console → server
// ----------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Close the peer with 4020 admin_disconnect, after the dialect's own notice where it has
    /// one (a Signal Fish `Error` frame).
    Kick {
        peer: PeerId,
        /// Why, in a person's words (one line, at most 256 bytes): written to the audit log,
        /// and shown to the peer where its dialect's kick notice has a text field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Persisted. Leaving `active` closes the app's live peers with the dialect's code and
    /// refuses new ones.
    SetAppStatus {
        app: String,
        status: AppStatus,
    },
    /// Close a Signal Fish room: every member gets `PlayerLeft`/`Error` and leaves.
    CloseRoom {
        room: String,
    },
    TransferAuthority {
        room: String,
        player_id: String,
    },
    RevokeAuthority {
        room: String,
    },
    /// Start or stop streaming a peer's frames as `frame` events.
    Tap {
        peer: PeerId,
        on: bool,
    },
    /// Send a frame into the server as if a client had sent it.
    Inject {
        target: InjectTarget,
        frame: String,
    },
    /// Make the next `count` requests of the target fail with `code`.
    ArmFault {
        target: FaultTarget,
        code: String,
        count: u32,
    },
    DisarmFault {
        fault: u64,
    },
    /// Ask for a fresh snapshot (answered by a `snapshot` message, then the result).
    Resync,
    /// Refuse connections matching `target` for `duration_ms` (persisted, audited). Live
    /// matching peers are kicked with 4020 `admin_disconnect`. `duration_ms` is 1 ms to 90
    /// days; `reason` is required (one line, at most 200 bytes). The result's `data` is
    /// `{"ban":<id>}`.
    Ban {
        target: BanTarget,
        duration_ms: u64,
        reason: String,
    },
    Unban {
        ban: u64,
    },
    /// Read the flight recorder of a live or closed peer: the result's `data` is
    /// `{"peer":…,"path":…,"frames":[RecordedFrame…]}` (`path` is null and `frames` empty
    /// when the recorder was off). Read-only, not audited.
    Frames {
        peer: PeerId,
    },
    /// Build a session file that reproduces what a live or closed peer went through: the
    /// result's `data` is `{"name":…,"session":"<JSONL text>","connections":N}`. Read-only,
    /// not audited; refused (`ok: false`) when the recorder holds no upgrade path for the peer.
    Export {
        peer: PeerId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum InjectTarget {
    /// As an existing peer: the frame is handled exactly as if that peer had sent it.
    Peer { peer: PeerId },
    /// Through a new probe connection of a dialect, opened by the server against itself;
    /// `query` is the connection's query string (`key=pk_demo`, `ticket=…`). The probe is
    /// tapped from the start and its id is returned in the result's `data.peer`.
    Probe {
        dialect: Dialect,
        #[serde(default)]
        query: String,
    },
    /// A probe opened earlier, reused.
    ExistingProbe { peer: PeerId },
    /// Toward an existing peer's client: the frame is sent to it as if the server (or, for
    /// a peer of `relaydeck proxy`, its upstream) had sent it.
    ToClient { peer: PeerId },
}

/// One example of every message, for documentation and tests.
pub mod examples {
    pub const SNAPSHOT: &str = r#"{"type":"snapshot","seq":41,"snapshot":{"server":{"version":"0.1.0","listen":"127.0.0.1:7878","started_at_ms":1764000000000,"history":{"max_entries":2000,"retain_ms":3600000}},"apps":[{"id":"demo","name":"Demo","status":"active","keys":[{"id":"pk_demo","dialect":"pubsub","grants":["demo/**","publish","subscribe","presence","send"]}]}],"peers":[{"id":"p1","dialect":"pubsub","app":"demo","identity":"peer-7f3a","addr":"127.0.0.1:50123","connected_at_ms":1764000001000,"room":null,"probe":false,"frames_in":12,"frames_out":30,"errors":1,"frames_dropped":0}],"rooms":[{"code":"WWGV8B","room_id":"16dde87b-ee1f-4f7c-8a66-d0bc1a8a709b","app":"demo","game":"demo","max_players":2,"supports_authority":true,"lobby_state":"lobby","players":[{"player_id":"d64d4457","name":"Alice","peer":"p2","ready":false}],"spectators":[],"authority":"d64d4457","created_at_ms":1764000002000}],"channels":[{"dialect":"pubsub","app":"demo","name":"demo/lobby","members":["p1"],"messages":5}],"subscriptions":[{"peer":"p3","dialect":"flow","id":"sub1","topic":"rooms","arguments":{}}],"faults":[],"stats":{"frames_in":12,"frames_out":30,"errors":1,"peers_by_dialect":{"pubsub":1},"errors_by_code":{"pubsub:channel_not_authorized":1}}}}"#;
    pub const PEER_CONNECTED: &str = r#"{"type":"delta","seq":42,"at_ms":1764000003000,"event":{"kind":"peer_connected","peer":{"id":"p4","dialect":"signal-fish","app":null,"identity":null,"addr":"127.0.0.1:50200","connected_at_ms":1764000003000,"room":null,"probe":false,"frames_in":0,"frames_out":0,"errors":0,"frames_dropped":0}}}"#;
    pub const PEER_UPDATED: &str = r#"{"type":"delta","seq":43,"at_ms":1764000003100,"event":{"kind":"peer_updated","peer":{"id":"p4","dialect":"signal-fish","app":"demo","identity":"Bob","addr":"127.0.0.1:50200","connected_at_ms":1764000003000,"room":"WWGV8B","probe":false,"frames_in":2,"frames_out":3,"errors":0,"frames_dropped":0,"round_trip_us":23400}}}"#;
    pub const PEER_CLOSED: &str = r#"{"type":"delta","seq":44,"at_ms":1764000004000,"event":{"kind":"peer_closed","peer":"p1","code":4020,"reason":"admin_disconnect"}}"#;
    pub const ROOM_UPDATED: &str = r#"{"type":"delta","seq":45,"at_ms":1764000004100,"event":{"kind":"room_updated","room":{"code":"WWGV8B","room_id":"16dde87b-ee1f-4f7c-8a66-d0bc1a8a709b","app":"demo","game":"demo","max_players":2,"supports_authority":true,"lobby_state":"lobby","players":[{"player_id":"d64d4457","name":"Alice","peer":"p2","ready":true}],"spectators":[{"player_id":"s1","name":"Watcher","peer":"p5","ready":false}],"authority":"d64d4457","created_at_ms":1764000002000}}}"#;
    pub const ROOM_CLOSED: &str = r#"{"type":"delta","seq":46,"at_ms":1764000004200,"event":{"kind":"room_closed","code":"WWGV8B"}}"#;
    pub const CHANNEL_JOINED: &str = r#"{"type":"delta","seq":47,"at_ms":1764000004300,"event":{"kind":"channel_joined","dialect":"pubsub","app":"demo","channel":"demo/lobby","peer":"p6"}}"#;
    pub const CHANNEL_LEFT: &str = r#"{"type":"delta","seq":48,"at_ms":1764000004400,"event":{"kind":"channel_left","dialect":"talo","app":"demo","channel":"1:general","peer":"p7"}}"#;
    pub const SUBSCRIPTION_ADDED: &str = r#"{"type":"delta","seq":49,"at_ms":1764000004500,"event":{"kind":"subscription_added","subscription":{"peer":"p3","dialect":"flow","id":"sub2","topic":"errors","arguments":{"dialect":"pubsub"}}}}"#;
    pub const SUBSCRIPTION_REMOVED: &str = r#"{"type":"delta","seq":50,"at_ms":1764000004600,"event":{"kind":"subscription_removed","peer":"p3","id":"sub2"}}"#;
    pub const APP_STATUS_CHANGED: &str = r#"{"type":"delta","seq":51,"at_ms":1764000004700,"event":{"kind":"app_status_changed","app":"demo","status":"suspended","by":"admin@127.0.0.1:50300"}}"#;
    pub const ERROR_EMITTED: &str = r#"{"type":"delta","seq":52,"at_ms":1764000004800,"event":{"kind":"error_emitted","peer":"p6","dialect":"pubsub","code":"channel_not_authorized","delivery":"frame","request_id":"pub-2","frame":"{\"type\":\"error\",\"requestId\":\"pub-2\",\"code\":\"channel_not_authorized\",\"message\":\"not authorized: other-app/room-1\"}"}}"#;
    pub const FRAME: &str = r#"{"type":"delta","seq":53,"at_ms":1764000004900,"event":{"kind":"frame","peer":"p6","direction":"in","text":"{\"type\":\"publish\",\"channel\":\"demo/lobby\",\"data\":1}"}}"#;
    pub const FAULT_ARMED: &str = r#"{"type":"delta","seq":54,"at_ms":1764000005000,"event":{"kind":"fault_armed","fault":{"id":1,"target":{"scope":"dialect","dialect":"pubsub"},"code":"backend_error","remaining":2}}}"#;
    pub const FAULT_UPDATED: &str = r#"{"type":"delta","seq":55,"at_ms":1764000005100,"event":{"kind":"fault_updated","fault":{"id":1,"target":{"scope":"peer","peer":"p6"},"code":"backend_error","remaining":1}}}"#;
    pub const STATS: &str = r#"{"type":"delta","seq":56,"at_ms":1764000006000,"event":{"kind":"stats","stats":{"frames_in":100,"frames_out":250,"errors":3,"peers_by_dialect":{"pubsub":4,"signal-fish":2},"errors_by_code":{"pubsub:channel_not_authorized":3}}}}"#;
    pub const HISTORY_ADDED_PEER: &str = r#"{"type":"delta","seq":57,"at_ms":1764000007000,"event":{"kind":"history_added","entry":{"closed_at_ms":1764000007000,"what":"peer","peer":{"id":"p4","dialect":"signal-fish","app":"demo","identity":"Bob","addr":"127.0.0.1:50200","connected_at_ms":1764000003000,"room":"WWGV8B","probe":false,"frames_in":9,"frames_out":14,"errors":1,"frames_dropped":0},"code":4020,"reason":"admin_disconnect","rooms":["WWGV8B"],"player_id":"93f3d64e","last_errors":[{"at_ms":1764000006000,"dialect":"signal-fish","code":"KICKED","frame":"{\"type\":\"Error\",\"data\":{\"message\":\"Kicked: spamming\",\"error_code\":\"KICKED\"}}"}],"recorded_frames":23}}}"#;
    pub const HISTORY_ADDED_ROOM: &str = r#"{"type":"delta","seq":58,"at_ms":1764000007100,"event":{"kind":"history_added","entry":{"closed_at_ms":1764000007100,"what":"room","room":{"code":"WWGV8B","room_id":"16dde87b-ee1f-4f7c-8a66-d0bc1a8a709b","app":"demo","game":"demo","max_players":2,"supports_authority":true,"lobby_state":"lobby","players":[],"spectators":[],"authority":null,"created_at_ms":1764000002000},"reason":"empty"}}}"#;
    pub const BAN_ADDED: &str = r#"{"type":"delta","seq":59,"at_ms":1764000008000,"event":{"kind":"ban_added","ban":{"id":3,"target":{"by":"identity","app":"demo","identity":"Bob"},"reason":"griefing","by":"admin@127.0.0.1:50300","created_at_ms":1764000008000,"until_ms":1764003608000}}}"#;
    pub const BAN_LIFTED: &str = r#"{"type":"delta","seq":60,"at_ms":1764000009000,"event":{"kind":"ban_lifted","id":3,"by":"admin@127.0.0.1:50300"}}"#;
    pub const NODES: &str = r#"{"type":"delta","seq":61,"at_ms":1764000010000,"event":{"kind":"nodes","nodes":[{"node_id":"node-a","listen":"127.0.0.1:7001","started_at_ms":1764000000000,"heartbeat_at_ms":1764000010000,"peers":12,"frames_in":5000,"frames_out":42000,"errors":3,"redis_ok":true,"alive":true,"local":true},{"node_id":"node-b","listen":"127.0.0.1:7002","started_at_ms":1764000001000,"heartbeat_at_ms":1764000009800,"peers":9,"frames_in":3100,"frames_out":27000,"errors":0,"redis_ok":true,"alive":true,"local":false}]}}"#;
    pub const RESULT: &str =
        r#"{"type":"result","id":7,"ok":true,"message":"closed p1 with 4020 admin_disconnect"}"#;
    pub const RESULT_WITH_DATA: &str =
        r#"{"type":"result","id":9,"ok":true,"message":"probe p9 connected","data":{"peer":"p9"}}"#;

    pub const KICK: &str =
        r#"{"id":7,"command":"kick","peer":"p1","reason":"spamming demo/lobby"}"#;
    pub const SET_APP_STATUS: &str =
        r#"{"id":8,"command":"set_app_status","app":"demo","status":"suspended"}"#;
    pub const CLOSE_ROOM: &str = r#"{"id":10,"command":"close_room","room":"WWGV8B"}"#;
    pub const TRANSFER_AUTHORITY: &str =
        r#"{"id":11,"command":"transfer_authority","room":"WWGV8B","player_id":"93f3d64e"}"#;
    pub const REVOKE_AUTHORITY: &str = r#"{"id":12,"command":"revoke_authority","room":"WWGV8B"}"#;
    pub const TAP: &str = r#"{"id":13,"command":"tap","peer":"p6","on":true}"#;
    pub const INJECT_AS_PEER: &str = r#"{"id":14,"command":"inject","target":{"via":"peer","peer":"p6"},"frame":"{\"type\":\"publish\",\"channel\":\"_system/x\",\"data\":1}"}"#;
    pub const INJECT_PROBE: &str = r#"{"id":9,"command":"inject","target":{"via":"probe","dialect":"pubsub","query":"key=pk_demo"},"frame":"{\"type\":\"subscribe\",\"channel\":\"demo/a\"}"}"#;
    pub const INJECT_TO_CLIENT: &str = r#"{"id":16,"command":"inject","target":{"via":"to_client","peer":"p2"},"frame":"{\"type\":\"Error\",\"data\":{\"message\":\"maintenance\",\"error_code\":\"INTERNAL_ERROR\"}}"}"#;
    pub const INJECT_EXISTING_PROBE: &str = r#"{"id":15,"command":"inject","target":{"via":"existing_probe","peer":"p9"},"frame":"{\"type\":\"unsubscribe\",\"channel\":\"demo/a\"}"}"#;
    pub const ARM_FAULT: &str = r#"{"id":16,"command":"arm_fault","target":{"scope":"dialect","dialect":"signal-fish"},"code":"STORAGE_ERROR","count":1}"#;
    pub const DISARM_FAULT: &str = r#"{"id":17,"command":"disarm_fault","fault":1}"#;
    pub const RESYNC: &str = r#"{"id":18,"command":"resync"}"#;
    pub const BAN_IDENTITY: &str = r#"{"id":19,"command":"ban","target":{"by":"identity","app":"demo","identity":"Bob"},"duration_ms":3600000,"reason":"griefing"}"#;
    pub const BAN_ADDRESS: &str = r#"{"id":20,"command":"ban","target":{"by":"address","ip":"203.0.113.7"},"duration_ms":600000,"reason":"connection flood"}"#;
    pub const UNBAN: &str = r#"{"id":21,"command":"unban","ban":3}"#;
    pub const FRAMES: &str = r#"{"id":22,"command":"frames","peer":"p4"}"#;
    pub const EXPORT: &str = r#"{"id":23,"command":"export","peer":"p4"}"#;

    pub const SERVER_MESSAGES: &[&str] = &[
        SNAPSHOT,
        PEER_CONNECTED,
        PEER_UPDATED,
        PEER_CLOSED,
        ROOM_UPDATED,
        ROOM_CLOSED,
        CHANNEL_JOINED,
        CHANNEL_LEFT,
        SUBSCRIPTION_ADDED,
        SUBSCRIPTION_REMOVED,
        APP_STATUS_CHANGED,
        ERROR_EMITTED,
        FRAME,
        FAULT_ARMED,
        FAULT_UPDATED,
        STATS,
        HISTORY_ADDED_PEER,
        HISTORY_ADDED_ROOM,
        BAN_ADDED,
        BAN_LIFTED,
        NODES,
        RESULT,
        RESULT_WITH_DATA,
    ];

    pub const COMMANDS: &[&str] = &[
        KICK,
        SET_APP_STATUS,
        CLOSE_ROOM,
        TRANSFER_AUTHORITY,
        REVOKE_AUTHORITY,
        TAP,
        INJECT_AS_PEER,
        INJECT_PROBE,
        INJECT_EXISTING_PROBE,
        INJECT_TO_CLIENT,
        ARM_FAULT,
        DISARM_FAULT,
        RESYNC,
        BAN_IDENTITY,
        BAN_ADDRESS,
        UNBAN,
        FRAMES,
        EXPORT,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each example parses, and serializing the parsed value gives back the same JSON value:
    /// the examples are the protocol, not an approximation of it.
    #[test]
    fn every_server_example_round_trips() {
        for text in examples::SERVER_MESSAGES {
            let parsed: ServerMessage = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("example does not parse: {e}\n{text}"));
            let again = serde_json::to_value(&parsed).unwrap();
            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(again, original, "example does not round-trip: {text}");
        }
    }

    #[test]
    fn every_command_example_round_trips() {
        for text in examples::COMMANDS {
            let parsed: CommandEnvelope = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("example does not parse: {e}\n{text}"));
            let again = serde_json::to_value(&parsed).unwrap();
            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(again, original, "example does not round-trip: {text}");
        }
    }

    #[test]
    fn every_event_kind_has_an_example() {
        let kinds: std::collections::HashSet<String> = examples::SERVER_MESSAGES
            .iter()
            .filter_map(|text| serde_json::from_str::<Value>(text).ok())
            .filter_map(|v| v["event"]["kind"].as_str().map(str::to_owned))
            .collect();
        for kind in [
            "peer_connected",
            "peer_updated",
            "peer_closed",
            "room_updated",
            "room_closed",
            "channel_joined",
            "channel_left",
            "subscription_added",
            "subscription_removed",
            "app_status_changed",
            "error_emitted",
            "frame",
            "fault_armed",
            "fault_updated",
            "stats",
            "history_added",
            "ban_added",
            "ban_lifted",
            "nodes",
        ] {
            assert!(kinds.contains(kind), "no example of event {kind}");
        }
    }
}

impl BanTarget {
    /// `identity Bob in app demo`, `identity Bob in every app`, `address 203.0.113.7`: one
    /// wording for the console's questions and log, the server's replies and its audit log.
    pub fn describe(&self) -> String {
        match self {
            BanTarget::Identity {
                app: Some(app),
                identity,
            } => format!("identity {identity} in app {app}"),
            BanTarget::Identity {
                app: None,
                identity,
            } => format!("identity {identity} in every app"),
            BanTarget::Address { ip } => format!("address {ip}"),
        }
    }
}

/// How a command is named on each side: both read it from [`Command::describe`], so the
/// console's words and the audit log cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The audit log's name of the action (`kick`, `set_app_status`).
    pub action: &'static str,
    /// What it acts on, as the audit log records it.
    pub target: String,
    /// The action in words, as the console shows it while it is pending or when it fails.
    pub text: String,
}

impl Command {
    pub fn describe(&self) -> Described {
        let described = |action, target: String, text: String| Described {
            action,
            target,
            text,
        };
        match self {
            Command::Resync => described("resync", String::new(), "resync".to_owned()),
            Command::Kick { peer, reason } => described(
                "kick",
                peer.clone(),
                match reason {
                    Some(reason) => format!("kick {peer} ({reason})"),
                    None => format!("kick {peer}"),
                },
            ),
            Command::SetAppStatus { app, status } => described(
                "set_app_status",
                format!("{app} → {}", status.id()),
                format!("set {app} {}", status.id()),
            ),
            Command::CloseRoom { room } => {
                described("close_room", room.clone(), format!("close room {room}"))
            }
            Command::TransferAuthority { room, player_id } => described(
                "transfer_authority",
                format!("{room} → {player_id}"),
                format!("transfer authority in {room} to {player_id}"),
            ),
            Command::RevokeAuthority { room } => described(
                "revoke_authority",
                room.clone(),
                format!("revoke authority in {room}"),
            ),
            Command::Tap { peer, on } => described(
                "tap",
                peer.clone(),
                format!("tap {peer} {}", if *on { "on" } else { "off" }),
            ),
            Command::Inject { target, .. } => described(
                "inject",
                match target {
                    InjectTarget::Peer { peer }
                    | InjectTarget::ExistingProbe { peer }
                    | InjectTarget::ToClient { peer } => peer.clone(),
                    InjectTarget::Probe { dialect, .. } => format!("new {dialect} probe"),
                },
                "inject".to_owned(),
            ),
            Command::ArmFault { target, code, .. } => described(
                "arm_fault",
                match target {
                    FaultTarget::Peer { peer } => peer.clone(),
                    FaultTarget::Dialect { dialect } => dialect.id().to_owned(),
                },
                format!("arm fault {code}"),
            ),
            Command::DisarmFault { fault } => described(
                "disarm_fault",
                fault.to_string(),
                format!("disarm fault {fault}"),
            ),
            Command::Ban {
                target,
                duration_ms,
                ..
            } => described(
                "ban",
                target.describe(),
                format!(
                    "ban {} for {}",
                    target.describe(),
                    humantime::format_duration(std::time::Duration::from_millis(*duration_ms))
                ),
            ),
            Command::Unban { ban } => {
                described("unban", ban.to_string(), format!("lift ban {ban}"))
            }
            Command::Frames { peer } => described(
                "frames",
                peer.clone(),
                format!("read the recorded frames of {peer}"),
            ),
            Command::Export { peer } => described(
                "export",
                peer.clone(),
                format!("export {peer} as a session"),
            ),
        }
    }
}
