//! Signal Fish rooms: membership, authority, readiness, spectators and reconnection seats.
//!
//! This is the one place that knows who is in which room. Connection tasks call in with their
//! peer id; every notice to the other members goes out through the hub, serialized once per
//! distinct frame. The lock here is taken before the hub's and never the other way round
//! (the hub calls the [`RoomDirectory`] methods without holding its own lock).
//!
//! # Locking
//! Joins, leaves, authority, readiness and reconnection change room structure under one lock;
//! they are rare next to game data. Game data takes no rooms lock: each sender has a
//! [`Relay`] (its audience's handles, its epoch and sequence counter) built under the lock
//! and checked against its room's generation, which every mutable access to that room bumps
//! ([`RoomTable::get_mut`]). A change in one room leaves the other rooms' relays current, so
//! their frames never wait for it; a stale relay is rebuilt, under the lock, before use.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;

use super::Refusal;
use crate::catalog::Dialect;
use crate::clock::now_ms;
use crate::protocol::admin::{RoomInfo, RoomMember};
use crate::protocol::game_data;
use crate::protocol::signal_fish::{
    DeliveryClass, PeerConnectionInfo, PlayerInfo, Reconnected, ReplayStatus, RoomJoined,
    RoomOperationRequest, RoomOperationResult, SenderWatermark, ServerMessage, SessionPlan,
    SpectatorInfo, SpectatorJoined, MAX_ROOM_PASSWORD_BYTES,
};
use crate::server::config::SignalFishSettings;
use crate::server::hub::{Hub, RoomDirectory};
use crate::server::peer::{PeerHandle, Priority};

pub const ROOM_CODE_ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const DEFAULT_MAX_PLAYERS: u8 = 8;
/// Rooms one game may have open at once unless the app says otherwise (0.12's default).
pub const DEFAULT_MAX_ROOMS_PER_GAME: usize = 1000;
/// signal-fish-server 0.12's `max_players_limit`.
pub const MAX_PLAYERS_LIMIT: u8 = 100;
/// What the real server announces by default; Signal Fish clients choose their peer transport
/// from it, so anything else would make them take an unknown branch.
const RELAY_TYPE: &str = "matchbox";
/// Expired reconnection tokens are remembered this long, so a late Reconnect learns that its
/// window passed (RECONNECTION_EXPIRED) rather than that its token is unknown.
const EXPIRED_TOKEN_MEMORY_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone)]
struct Player {
    id: String,
    name: String,
    peer: Option<String>,
    ready: bool,
    connected_at: String,
    disconnected_at_ms: Option<u64>,
    /// The membership incarnation v3 clients track: 1 on joining, one more on each reconnect.
    epoch: u32,
    /// Game data messages this player sent in `epoch`; v3 recipients see them numbered.
    /// Shared with the player's [`Relay`], which counts without the rooms lock.
    seq: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct Spectator {
    id: String,
    name: String,
    peer: String,
    connected_at: String,
}

#[derive(Debug, Clone)]
struct Room {
    id: String,
    code: String,
    app: String,
    game: String,
    max_players: u8,
    supports_authority: bool,
    allow_spectators: bool,
    max_spectators: usize,
    players: Vec<Player>,
    spectators: Vec<Spectator>,
    authority: Option<String>,
    /// Player ids in the order they became ready: the order the real server lists
    /// `ready_players` in. Left players are filtered out when listing.
    ready_order: Vec<String>,
    started: bool,
    /// False only while the creator's own RoomJoined is built ("waiting").
    opened: bool,
    created_at_ms: u64,
    /// Set by the creator's JoinRoom `password` (or a v3 SetRoomAccess); every later join
    /// must present exactly this.
    password: Option<String>,
    /// Player ids and connection ids the room's authority banned; the ban dies with the room.
    banned: Vec<String>,
    /// Bumped on every change to the room ([`RoomTable`]); its members' relays were built at
    /// one value of it.
    generation: Arc<AtomicU64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Membership {
    Player { room: String, player_id: String },
    Spectator { room: String, spectator_id: String },
}

#[derive(Debug, Clone)]
struct Seat {
    player_id: String,
    room_id: String,
    room_code: String,
    /// Set once the reconnection window passed.
    expired_at_ms: Option<u64>,
    /// Set when an operator closed the room; a Reconnect then fails as RECONNECTION_FAILED.
    room_closed_at_ms: Option<u64>,
}

/// The rooms by code. Handing out a room to change bumps its generation, so a change cannot
/// forget to make its room's relays stale.
#[derive(Default)]
struct RoomTable(BTreeMap<String, Room>);

impl RoomTable {
    fn get(&self, code: &str) -> Option<&Room> {
        self.0.get(code)
    }

    fn get_mut(&mut self, code: &str) -> Option<&mut Room> {
        let room = self.0.get_mut(code)?;
        room.generation.fetch_add(1, Ordering::AcqRel);
        Some(room)
    }

    fn contains_key(&self, code: &str) -> bool {
        self.0.contains_key(code)
    }

    fn insert(&mut self, code: String, room: Room) {
        room.generation.fetch_add(1, Ordering::AcqRel);
        self.0.insert(code, room);
    }

    fn remove(&mut self, code: &str) -> Option<Room> {
        let room = self.0.remove(code)?;
        room.generation.fetch_add(1, Ordering::AcqRel);
        Some(room)
    }

    fn values(&self) -> impl Iterator<Item = &Room> + Clone {
        self.0.values()
    }
}

#[derive(Default)]
struct State {
    rooms: RoomTable,
    membership: HashMap<String, Membership>,
    /// Handles of members that have received game data, and whether they speak v3, so
    /// relaying a frame takes no hub lock. Filled on first use, emptied when the connection
    /// ends.
    handles: HashMap<String, (Arc<PeerHandle>, bool)>,
    /// Reconnection token → seat.
    seats: HashMap<String, Seat>,
}

pub struct JoinRequest {
    pub app: String,
    pub game_name: String,
    pub room_code: Option<String>,
    pub player_name: String,
    pub max_players: Option<u8>,
    pub supports_authority: Option<bool>,
    pub join_only: bool,
    pub allow_spectators: Option<bool>,
    pub max_spectators: Option<i64>,
    pub max_rooms_per_game: usize,
}

/// What a JoinRoom carries beyond [`JoinRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOptions {
    pub password: Option<String>,
}

/// The frame shapes a peer receives, from the protocol version its session negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// No version was reported for the peer: v2 shapes plus the reconnection token, so that a
    /// connection loop that does not report versions keeps working as it always did.
    Unreported,
    V2,
    V3,
}

impl Wire {
    fn of(version: Option<u16>) -> Wire {
        match version {
            None => Wire::Unreported,
            Some(v) if v >= 3 => Wire::V3,
            Some(_) => Wire::V2,
        }
    }

    fn v3(self) -> bool {
        self == Wire::V3
    }

    /// A v2 client must never see the token (the real server keeps it off the v2 wire).
    fn shows_token(self) -> bool {
        self != Wire::V2
    }
}

/// Set in a player's sequence counter when its membership ends: no number after it.
const SEQ_CLOSED: u64 = 1 << 63;

/// What relaying one sender's game data needs, built under the rooms lock and used without it
/// while `generation` still matches [`Rooms::generation`].
struct Relay {
    /// The room's generation, and the value it had when this relay was built.
    room_generation: Arc<AtomicU64>,
    generation: u64,
    player_id: String,
    epoch: u32,
    seq: Arc<AtomicU64>,
    /// Every other connected member (players and spectators) and whether it speaks v3.
    audience: Vec<(Arc<PeerHandle>, bool)>,
}

pub struct Rooms {
    state: Mutex<State>,
    /// Each game-data sender's relay, by peer id.
    relays: RwLock<HashMap<String, Arc<Relay>>>,
    settings: SignalFishSettings,
    /// Negotiated protocol version per peer, as the connection reported it. Locked after
    /// `state` when both are needed, never before.
    versions: Mutex<HashMap<String, u16>>,
}

fn timestamp() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random code from the room code alphabet (a cluster node claims it before using it).
pub fn room_code() -> String {
    use rand::RngExt as _;
    let alphabet = ROOM_CODE_ALPHABET.as_bytes();
    let mut rng = rand::rng();
    (0..6)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub fn valid_room_code(code: &str) -> bool {
    code.len() == 6 && code.chars().all(|c| ROOM_CODE_ALPHABET.contains(c))
}

impl Room {
    fn player_info(&self, p: &Player, v3: bool) -> PlayerInfo {
        PlayerInfo {
            id: p.id.clone(),
            name: p.name.clone(),
            is_authority: self.authority.as_deref() == Some(p.id.as_str()),
            is_ready: p.ready,
            connected_at: (!v3).then(|| p.connected_at.clone()),
            epoch: v3.then_some(p.epoch),
            seq: v3.then_some(p.seq.load(Ordering::Relaxed) & !SEQ_CLOSED),
        }
    }

    /// The roster: v2 entries carry `connected_at`, v3 entries the delivery baseline instead.
    fn player_infos(&self, v3: bool) -> Vec<PlayerInfo> {
        self.players
            .iter()
            .map(|p| self.player_info(p, v3))
            .collect()
    }

    fn spectator_infos(&self) -> Vec<SpectatorInfo> {
        self.spectators
            .iter()
            .map(|s| SpectatorInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                connected_at: s.connected_at.clone(),
            })
            .collect()
    }

    fn ready_players(&self) -> Vec<String> {
        self.ready_order
            .iter()
            .filter(|id| self.players.iter().any(|p| &p.id == *id && p.ready))
            .cloned()
            .collect()
    }

    fn all_ready(&self) -> bool {
        !self.players.is_empty() && self.players.iter().all(|p| p.ready)
    }

    fn lobby_state(&self) -> &'static str {
        if self.started {
            "finalized"
        } else if !self.opened {
            "waiting"
        } else {
            "lobby"
        }
    }

    /// Every connected member, players and spectators, except `except`.
    fn audience(&self, except: Option<&str>) -> Vec<String> {
        self.players
            .iter()
            .filter_map(|p| p.peer.clone())
            .chain(self.spectators.iter().map(|s| s.peer.clone()))
            .filter(|peer| Some(peer.as_str()) != except)
            .collect()
    }

    fn info(&self) -> RoomInfo {
        RoomInfo {
            code: self.code.clone(),
            room_id: self.id.clone(),
            app: self.app.clone(),
            game: self.game.clone(),
            max_players: self.max_players,
            supports_authority: self.supports_authority,
            lobby_state: self.lobby_state().to_owned(),
            players: self
                .players
                .iter()
                .map(|p| RoomMember {
                    player_id: p.id.clone(),
                    name: p.name.clone(),
                    peer: p.peer.clone(),
                    ready: p.ready,
                })
                .collect(),
            spectators: self
                .spectators
                .iter()
                .map(|s| RoomMember {
                    player_id: s.id.clone(),
                    name: s.name.clone(),
                    peer: Some(s.peer.clone()),
                    ready: false,
                })
                .collect(),
            authority: self.authority.clone(),
            created_at_ms: self.created_at_ms,
        }
    }

    fn lobby_changed(&self) -> ServerMessage {
        ServerMessage::LobbyStateChanged {
            lobby_state: self.lobby_state().to_owned(),
            ready_players: self.ready_players(),
            all_ready: self.all_ready(),
        }
    }

    fn is_empty(&self) -> bool {
        self.players.is_empty() && self.spectators.is_empty()
    }
}

fn refusal(carrier: super::Carrier, code: &'static str, text: Option<String>) -> Refusal {
    Refusal {
        carrier,
        code,
        text,
    }
}

use super::Carrier;

impl Rooms {
    pub fn new(settings: SignalFishSettings) -> Rooms {
        Rooms {
            state: Mutex::new(State::default()),
            relays: RwLock::new(HashMap::new()),
            settings,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The connection reports the protocol version its Authenticate negotiated; from then on
    /// the peer's frames take that version's shape (v2: no reconnection token, no delivery
    /// stamps; v3: both).
    pub fn set_protocol_version(&self, peer: &str, version: u16) {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_owned(), version);
    }

    /// The version reported for `peer`, if any.
    pub fn protocol_version(&self, peer: &str) -> Option<u16> {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .copied()
    }

    fn wire(&self, peer: &str) -> Wire {
        Wire::of(self.protocol_version(peer))
    }

    fn forget_version(&self, peer: &str) {
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    /// Send a frame whose shape depends on the recipient's version: each shape is serialized
    /// once and shared by every recipient of that version.
    fn send_shaped(&self, hub: &Hub, peers: &[String], make: impl Fn(bool) -> ServerMessage) {
        let (v3, v2): (Vec<String>, Vec<String>) = {
            let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            peers
                .iter()
                .cloned()
                .partition(|peer| versions.get(peer).is_some_and(|v| *v >= 3))
        };
        Self::send(hub, &v2, &make(false));
        Self::send(hub, &v3, &make(true));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the room with this code is on this node.
    pub fn holds_code(&self, code: &str) -> bool {
        self.lock().rooms.contains_key(code)
    }

    /// Whether the room with this id is on this node (a Reconnect names rooms by id).
    pub fn holds_room_id(&self, room_id: &str) -> bool {
        self.lock().rooms.values().any(|room| room.id == room_id)
    }

    fn forget_relay(&self, peer: &str) {
        self.relays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    /// The sender's relay, rebuilt under the lock when room structure changed since it was
    /// built.
    fn relay_of(&self, hub: &Hub, peer: &str) -> Result<Arc<Relay>, Refusal> {
        let cached = self
            .relays
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned();
        if let Some(relay) = cached {
            if relay.generation == relay.room_generation.load(Ordering::Acquire) {
                return Ok(relay);
            }
        }
        let mut state = self.lock();
        let State {
            rooms,
            membership,
            handles,
            ..
        } = &mut *state;
        let not_in_room = || refusal(Carrier::Error, "NOT_IN_ROOM", None);
        let Some(Membership::Player { room, player_id }) = membership.get(peer) else {
            drop(state);
            self.forget_relay(peer);
            return Err(not_in_room());
        };
        let Some(room) = rooms.get(room) else {
            return Err(not_in_room());
        };
        let Some(sender) = room.players.iter().find(|p| &p.id == player_id) else {
            return Err(not_in_room());
        };
        let members = room
            .players
            .iter()
            .filter_map(|p| p.peer.as_deref())
            .chain(room.spectators.iter().map(|s| s.peer.as_str()))
            .filter(|member| *member != peer);
        let mut audience = Vec::with_capacity(room.players.len() + room.spectators.len());
        for member in members {
            let known = match handles.get(member) {
                Some(known) => known,
                None => match hub.handle(member) {
                    Some(handle) => {
                        let v3 = self.wire(member).v3();
                        handles.entry(member.to_owned()).or_insert((handle, v3))
                    }
                    None => continue,
                },
            };
            audience.push(known.clone());
        }
        let relay = Arc::new(Relay {
            // Read under the rooms lock: a change bumps it only once it holds the lock and
            // has the room in hand, after this relay is in the index.
            generation: room.generation.load(Ordering::Acquire),
            room_generation: Arc::clone(&room.generation),
            player_id: sender.id.clone(),
            epoch: sender.epoch,
            seq: Arc::clone(&sender.seq),
            audience,
        });
        // Still under the rooms lock: a change that makes this relay stale bumps the
        // generation only once it holds the lock, after this insert.
        self.relays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_owned(), Arc::clone(&relay));
        drop(state);
        Ok(relay)
    }

    fn publish(hub: &Hub, room: &Room) {
        hub.room_updated(room.info());
    }

    fn send(hub: &Hub, peers: &[String], message: &ServerMessage) {
        if !peers.is_empty() {
            hub.send_many(peers, message.text());
        }
    }

    pub fn join(&self, hub: &Hub, peer: &str, request: JoinRequest) -> Result<(), Refusal> {
        self.join_with(hub, peer, request, JoinOptions::default())
    }

    /// JoinRoom, checked in signal-fish-server 0.12's order: names, player count, join_only,
    /// password shape, membership, room code; then, for an existing room, password, ban,
    /// state and capacity. A well-formed code that names no room creates that room unless the
    /// client asked for `join_only`.
    pub fn join_with(
        &self,
        hub: &Hub,
        peer: &str,
        request: JoinRequest,
        options: JoinOptions,
    ) -> Result<(), Refusal> {
        let wire = self.wire(peer);
        let mut state = self.lock();
        let name_chars = request.game_name.chars().count();
        if name_chars == 0
            || name_chars > 64
            || !request
                .game_name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
        {
            return Err(refusal(Carrier::RoomJoinFailed, "INVALID_GAME_NAME", None));
        }
        if let Some(problem) = super::player_name_problem(&request.player_name) {
            return Err(refusal(
                Carrier::RoomJoinFailed,
                "INVALID_PLAYER_NAME",
                Some(format!("Invalid player name: {problem}")),
            ));
        }
        let max_players = request.max_players.unwrap_or(DEFAULT_MAX_PLAYERS);
        if max_players < 1 {
            return Err(refusal(
                Carrier::RoomJoinFailed,
                "INVALID_MAX_PLAYERS",
                Some("Max players must be at least 1".to_owned()),
            ));
        }
        if max_players > MAX_PLAYERS_LIMIT {
            return Err(refusal(
                Carrier::RoomJoinFailed,
                "INVALID_MAX_PLAYERS",
                Some(format!("Max players cannot exceed {MAX_PLAYERS_LIMIT}")),
            ));
        }
        if request.join_only && request.room_code.is_none() {
            return Err(refusal(
                Carrier::RoomJoinFailed,
                "INVALID_INPUT",
                Some("join_only requires an explicit room_code".to_owned()),
            ));
        }
        if let Some(password) = &options.password {
            if password.is_empty() || password.len() > MAX_ROOM_PASSWORD_BYTES {
                return Err(refusal(
                    Carrier::RoomJoinFailed,
                    "INVALID_INPUT",
                    Some(format!(
                        "Join password must be non-empty and at most {MAX_ROOM_PASSWORD_BYTES} bytes"
                    )),
                ));
            }
        }
        if state.membership.contains_key(peer) {
            return Err(refusal(Carrier::RoomJoinFailed, "ALREADY_IN_ROOM", None));
        }
        let player = Player {
            id: new_id(),
            name: request.player_name.clone(),
            peer: Some(peer.to_owned()),
            ready: false,
            connected_at: timestamp(),
            disconnected_at_ms: None,
            epoch: 1,
            seq: Arc::new(AtomicU64::new(0)),
        };
        let requested_code = match &request.room_code {
            Some(code) => {
                if !valid_room_code(code) {
                    let text = if code.len() != 6 {
                        "Room code must be exactly 6 characters"
                    } else {
                        "Room code contains characters outside the room code alphabet"
                    };
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "INVALID_ROOM_CODE",
                        Some(text.to_owned()),
                    ));
                }
                Some(code.clone())
            }
            None => None,
        };
        let existing = requested_code
            .as_ref()
            .and_then(|code| state.rooms.get(code));
        let code = match (existing, requested_code) {
            (Some(room), Some(code)) => {
                // Another app's or game's room is invisible, exactly like a missing one.
                if room.app != request.app || room.game != request.game_name {
                    return Err(refusal(Carrier::RoomJoinFailed, "ROOM_NOT_FOUND", None));
                }
                // Missing, wrong, or stray (open room) passwords share one answer, so that
                // the answer does not tell which rooms are sealed.
                if room.password != options.password {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "PASSWORD_REQUIRED",
                        Some("Room requires the join password set by its authority".to_owned()),
                    ));
                }
                // Player ids are minted per join here, so the ban also names the connection.
                if room.banned.iter().any(|id| id == peer) {
                    return Err(refusal(Carrier::RoomJoinFailed, "BANNED", None));
                }
                if room.started {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "INVALID_ROOM_STATE",
                        Some("The game in this room has already started".to_owned()),
                    ));
                }
                if room.players.len() >= room.max_players as usize {
                    return Err(refusal(Carrier::RoomJoinFailed, "ROOM_FULL", None));
                }
                code
            }
            (None, Some(_)) if request.join_only => {
                return Err(refusal(Carrier::RoomJoinFailed, "ROOM_NOT_FOUND", None));
            }
            (_, requested) => {
                let max_spectators = match request.max_spectators {
                    None => self.settings.max_spectators,
                    Some(n) if (0..=100).contains(&n) => n as usize,
                    Some(_) => {
                        return Err(refusal(
                            Carrier::RoomJoinFailed,
                            "INVALID_INPUT",
                            Some("max_spectators must be between 0 and 100".to_owned()),
                        ))
                    }
                };
                let open_rooms = state
                    .rooms
                    .values()
                    .filter(|r| r.app == request.app && r.game == request.game_name)
                    .count();
                if open_rooms >= request.max_rooms_per_game {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "MAX_ROOMS_PER_GAME_EXCEEDED",
                        None,
                    ));
                }
                let code = match requested {
                    Some(code) => code,
                    None => {
                        let mut code = room_code();
                        while state.rooms.contains_key(&code) {
                            code = room_code();
                        }
                        code
                    }
                };
                // The real server gives rooms authority support unless the creator declines.
                let supports_authority = request.supports_authority.unwrap_or(true);
                state.rooms.insert(
                    code.clone(),
                    Room {
                        id: new_id(),
                        code: code.clone(),
                        app: request.app.clone(),
                        game: request.game_name.clone(),
                        max_players,
                        supports_authority,
                        allow_spectators: request.allow_spectators.unwrap_or(true),
                        max_spectators,
                        players: Vec::new(),
                        spectators: Vec::new(),
                        authority: None,
                        ready_order: Vec::new(),
                        started: false,
                        opened: false,
                        created_at_ms: now_ms(),
                        password: options.password.clone(),
                        banned: Vec::new(),
                        generation: Arc::new(AtomicU64::new(0)),
                    },
                );
                code
            }
        };
        let token = new_id();
        let player_id = player.id.clone();
        let creating = state.rooms.get(&code).is_some_and(|r| r.players.is_empty());
        let Some(room) = state.rooms.get_mut(&code) else {
            return Err(refusal(
                Carrier::RoomJoinFailed,
                "ROOM_CREATION_FAILED",
                None,
            ));
        };
        if creating && room.supports_authority {
            room.authority = Some(player_id.clone());
        }
        room.players.insert(0, player.clone());
        let joined = ServerMessage::RoomJoined(Box::new(RoomJoined {
            room_id: room.id.clone(),
            room_code: room.code.clone(),
            player_id: player_id.clone(),
            game_name: room.game.clone(),
            max_players: room.max_players,
            supports_authority: room.supports_authority,
            current_players: room.player_infos(wire.v3()),
            is_authority: room.authority.as_deref() == Some(player_id.as_str()),
            lobby_state: room.lobby_state().to_owned(),
            ready_players: room.ready_players(),
            relay_type: RELAY_TYPE.to_owned(),
            current_spectators: room.spectator_infos(),
            reconnection_token: wire.shows_token().then(|| token.clone()),
        }));
        hub.send(peer, joined.text());
        // The room leaves "waiting" as soon as its creator is in (as the real server reports).
        room.opened = true;
        if creating {
            hub.send(peer, room.lobby_changed().text());
        } else if let Some(joiner) = room.players.iter().find(|p| p.id == player_id) {
            let audience = room.audience(Some(peer));
            self.send_shaped(hub, &audience, |v3| ServerMessage::PlayerJoined {
                player: room.player_info(joiner, v3),
            });
        }
        let room_id = room.id.clone();
        let snapshot = room.clone();
        state.seats.insert(
            token,
            Seat {
                player_id: player_id.clone(),
                room_id,
                room_code: code.clone(),
                expired_at_ms: None,
                room_closed_at_ms: None,
            },
        );
        state.membership.insert(
            peer.to_owned(),
            Membership::Player {
                room: code.clone(),
                player_id,
            },
        );
        drop(state);
        hub.update_peer(peer, |p| p.room = Some(code));
        Self::publish(hub, &snapshot);
        Ok(())
    }

    /// Remove a player (leave, or a seat whose window expired); closes an empty room.
    fn remove_player(&self, state: &mut State, hub: &Hub, code: &str, player_id: &str) {
        let Some(room) = state.rooms.get_mut(code) else {
            return;
        };
        let departed = room.players.iter().find(|p| p.id == player_id).cloned();
        room.players.retain(|p| p.id != player_id);
        let audience = room.audience(None);
        // The membership's numbering ends here: closing the counter takes its last number,
        // and a frame the player's connection is relaying at this moment, outside the rooms
        // lock, finds it closed and is not relayed past `final_seq`.
        let final_seq = departed
            .as_ref()
            .map(|p| p.seq.fetch_or(SEQ_CLOSED, Ordering::AcqRel) & !SEQ_CLOSED);
        // v3 recipients learn the departing membership's last sequence number, so they can
        // tell a complete stream from a truncated one.
        self.send_shaped(hub, &audience, |v3| ServerMessage::PlayerLeft {
            player_id: player_id.to_owned(),
            epoch: departed.as_ref().filter(|_| v3).map(|p| p.epoch),
            final_seq: final_seq.filter(|_| v3),
        });
        if room.authority.as_deref() == Some(player_id) {
            room.authority = None;
            Self::send(
                hub,
                &audience,
                &ServerMessage::AuthorityChanged {
                    authority_player: None,
                    you_are_authority: false,
                },
            );
        }
        if !room.started && !room.players.is_empty() {
            Self::send(hub, &room.audience(None), &room.lobby_changed());
        }
        state.seats.retain(|_, seat| seat.player_id != player_id);
        if room.players.is_empty() && room.spectators.is_empty() {
            state.rooms.remove(code);
            hub.room_closed(code);
        } else {
            Self::publish(hub, room);
        }
    }

    pub fn leave(&self, hub: &Hub, peer: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let Some(Membership::Player { room, player_id }) = state.membership.get(peer).cloned()
        else {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        };
        state.membership.remove(peer);
        hub.send(peer, ServerMessage::RoomLeft.text());
        self.remove_player(&mut state, hub, &room, &player_id);
        drop(state);
        hub.update_peer(peer, |p| p.room = None);
        Ok(())
    }

    pub fn game_data(&self, hub: &Hub, peer: &str, data: &RawValue) -> Result<(), Refusal> {
        self.game_data_with(hub, peer, data, None, None)
    }

    /// Relay game data to every other connected member, the payload spliced as sent. v3
    /// recipients get the sender's epoch and sequence number (and the delivery class it asked
    /// for); v2 recipients get the bare frame. No rooms lock is taken while the sender's relay
    /// is current; each shape is serialized at most once.
    pub fn game_data_with(
        &self,
        hub: &Hub,
        peer: &str,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if !DeliveryClass::accepts_key(class, key) {
            return Err(refusal(
                Carrier::Error,
                "INVALID_DELIVERY_CLASS",
                Some(
                    "Invalid delivery class: latest requires a key; reliable and volatile forbid one"
                        .to_owned(),
                ),
            ));
        }
        let relay = self.relay_of(hub, peer)?;
        // A sender's frames stay in order: its connection relays one before reading the next.
        let numbered = relay.seq.fetch_add(1, Ordering::AcqRel);
        if numbered & SEQ_CLOSED != 0 {
            // The player left (or was kicked) while this frame was on its way.
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        }
        let stamp = game_data::Stamp {
            seq: numbered + 1,
            epoch: relay.epoch,
            class,
            key,
        };
        let mut v2_text: Option<Utf8Bytes> = None;
        let mut v3_text: Option<Utf8Bytes> = None;
        for (handle, v3) in &relay.audience {
            let text = if *v3 {
                v3_text.get_or_insert_with(|| {
                    game_data::relayed(&relay.player_id, data, Some(&stamp)).into()
                })
            } else {
                v2_text
                    .get_or_insert_with(|| game_data::relayed(&relay.player_id, data, None).into())
            };
            hub.deliver(handle, text, Priority::Relay);
        }
        Ok(())
    }

    pub fn authority_request(
        &self,
        hub: &Hub,
        peer: &str,
        become_authority: bool,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        let (code, player_id) = match state.membership.get(peer) {
            Some(Membership::Player { room, player_id }) => (room.clone(), player_id.clone()),
            Some(Membership::Spectator { .. }) => {
                return Err(refusal(
                    Carrier::AuthorityResponse,
                    "AUTHORITY_DENIED",
                    Some("Spectators cannot hold authority".to_owned()),
                ))
            }
            None => return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None)),
        };
        let Some(room) = state.rooms.get_mut(&code) else {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        };
        if !room.supports_authority {
            return Err(refusal(
                Carrier::AuthorityResponse,
                "AUTHORITY_NOT_SUPPORTED",
                Some("This room was created without authority support".to_owned()),
            ));
        }
        if room.started {
            return Err(refusal(
                Carrier::AuthorityResponse,
                "AUTHORITY_DENIED",
                Some("Authority cannot change once the game has started".to_owned()),
            ));
        }
        let holder = room.authority.clone();
        if become_authority {
            match holder.as_deref() {
                // The real server answers a repeated claim by the holder itself with the same
                // conflict (recorded in the reference log); clients rely on that answer.
                Some(_) => {
                    return Err(refusal(
                        Carrier::AuthorityResponse,
                        "AUTHORITY_CONFLICT",
                        None,
                    ))
                }
                None => room.authority = Some(player_id.clone()),
            }
        } else if holder.as_deref() == Some(player_id.as_str()) {
            room.authority = None;
        }
        hub.send(
            peer,
            ServerMessage::AuthorityResponse {
                granted: true,
                reason: None,
                error_code: None,
            }
            .text(),
        );
        if room.authority != holder {
            Self::announce_authority(hub, room);
        }
        Self::publish(hub, room);
        Ok(())
    }

    /// AuthorityChanged differs for the holder (`you_are_authority`); two frames, each
    /// serialized once.
    fn announce_authority(hub: &Hub, room: &Room) {
        let holder_peer = room
            .authority
            .as_ref()
            .and_then(|id| room.players.iter().find(|p| &p.id == id))
            .and_then(|p| p.peer.clone());
        let others: Vec<String> = room.audience(holder_peer.as_deref());
        Self::send(
            hub,
            &others,
            &ServerMessage::AuthorityChanged {
                authority_player: room.authority.clone(),
                you_are_authority: false,
            },
        );
        if let Some(holder) = holder_peer {
            hub.send(
                &holder,
                ServerMessage::AuthorityChanged {
                    authority_player: room.authority.clone(),
                    you_are_authority: true,
                }
                .text(),
            );
        }
    }

    /// A v3 `RoomOperation` from the room's authority: kick, ban, unban, authority transfer,
    /// access and code changes. Every outcome, refusals included, goes back to `peer` as a
    /// `RoomOperationResult` carrying `operation_id`.
    pub fn room_operation(
        &self,
        hub: &Hub,
        peer: &str,
        operation_id: &str,
        operation: &RoomOperationRequest,
    ) {
        let (result, failed) = match self.moderate(hub, peer, operation) {
            Ok(result) => (result, None),
            Err((reason, code)) => (
                RoomOperationResult::OperationFailed {
                    reason: reason.to_owned(),
                    error_code: Some(code.to_owned()),
                },
                Some(code),
            ),
        };
        let answer = ServerMessage::RoomOperationResult {
            operation_id: operation_id.to_owned(),
            result: Box::new(result),
        };
        match failed {
            Some(code) => {
                if let Some(handle) = hub.handle(peer) {
                    hub.send_error(&handle, code, None, answer.text());
                }
            }
            None => {
                hub.send(peer, answer.text());
            }
        }
    }

    fn moderate(
        &self,
        hub: &Hub,
        peer: &str,
        operation: &RoomOperationRequest,
    ) -> Result<RoomOperationResult, (&'static str, &'static str)> {
        const NOT_AUTHORITY: (&str, &str) = (
            "Only the room's authority player may moderate this room",
            "NOT_ROOM_AUTHORITY",
        );
        let mut state = self.lock();
        let Some(Membership::Player {
            room: code,
            player_id,
        }) = state.membership.get(peer).cloned()
        else {
            return Err(("Not currently in a room", "NOT_IN_ROOM"));
        };
        let Some(room) = state.rooms.get_mut(&code) else {
            return Err(("Room no longer exists", "ROOM_NOT_FOUND"));
        };
        let is_authority = room.authority.as_deref() == Some(player_id.as_str());
        match operation {
            RoomOperationRequest::KickPlayer { player_id: target }
            | RoomOperationRequest::BanPlayer { player_id: target } => {
                if !is_authority {
                    return Err(NOT_AUTHORITY);
                }
                if *target == player_id {
                    return Err((
                        "The authority cannot target itself; use LeaveRoom instead",
                        "INVALID_INPUT",
                    ));
                }
                let Some(victim) = room.players.iter().find(|p| &p.id == target).cloned() else {
                    return Err((
                        "Moderation target is not a member of this room",
                        "KICK_TARGET_NOT_FOUND",
                    ));
                };
                let banning = matches!(operation, RoomOperationRequest::BanPlayer { .. });
                if banning {
                    room.banned.push(victim.id.clone());
                    room.banned.extend(victim.peer.clone());
                }
                if let Some(victim_peer) = &victim.peer {
                    state.membership.remove(victim_peer);
                    let notice = ServerMessage::Error {
                        message: "You were removed from the room by its authority player."
                            .to_owned(),
                        error_code: "KICKED".to_owned(),
                    };
                    if let Some(handle) = hub.handle(victim_peer) {
                        hub.send_error(&handle, "KICKED", None, notice.text());
                        hub.close_peer(&handle, 4007, "kicked");
                    }
                    hub.update_peer(victim_peer, |p| p.room = None);
                }
                self.remove_player(&mut state, hub, &code, target);
                Ok(if banning {
                    RoomOperationResult::PlayerBanned {
                        player_id: target.clone(),
                    }
                } else {
                    RoomOperationResult::PlayerKicked {
                        player_id: target.clone(),
                    }
                })
            }
            RoomOperationRequest::UnbanPlayer { player_id: target } => {
                if !is_authority {
                    return Err(NOT_AUTHORITY);
                }
                room.banned.retain(|id| id != target);
                Ok(RoomOperationResult::PlayerUnbanned {
                    player_id: target.clone(),
                })
            }
            RoomOperationRequest::TransferAuthority { player_id: target } => {
                if !is_authority {
                    return Err((
                        "Only the room's authority player may transfer the authority role",
                        "NOT_ROOM_AUTHORITY",
                    ));
                }
                if *target == player_id {
                    return Err(("The authority cannot transfer to itself", "INVALID_INPUT"));
                }
                if !room.players.iter().any(|p| &p.id == target) {
                    return Err((
                        "Transfer target is not a member of this room",
                        "TRANSFER_TARGET_NOT_FOUND",
                    ));
                }
                room.authority = Some(target.clone());
                Self::announce_authority(hub, room);
                Self::publish(hub, room);
                Ok(RoomOperationResult::AuthorityTransferred {
                    player_id: target.clone(),
                })
            }
            RoomOperationRequest::SetRoomAccess { password } => {
                if !is_authority {
                    return Err(NOT_AUTHORITY);
                }
                if password
                    .as_ref()
                    .is_some_and(|p| p.is_empty() || p.len() > MAX_ROOM_PASSWORD_BYTES)
                {
                    return Err((
                        "The room password must be non-empty and at most 256 bytes",
                        "INVALID_INPUT",
                    ));
                }
                room.password = password.clone();
                Ok(RoomOperationResult::RoomAccessUpdated {
                    requires_password: room.password.is_some(),
                })
            }
            RoomOperationRequest::RegenerateRoomCode => {
                if !is_authority {
                    return Err((
                        "Only the room's authority player may regenerate the room code",
                        "NOT_ROOM_AUTHORITY",
                    ));
                }
                let mut fresh = room_code();
                while state.rooms.contains_key(&fresh) {
                    fresh = room_code();
                }
                let Some(mut moved) = state.rooms.remove(&code) else {
                    return Err(("Room no longer exists", "ROOM_NOT_FOUND"));
                };
                moved.code = fresh.clone();
                let members = moved.audience(None);
                for membership in state.membership.values_mut() {
                    match membership {
                        Membership::Player { room, .. } | Membership::Spectator { room, .. }
                            if *room == code =>
                        {
                            *room = fresh.clone();
                        }
                        _ => {}
                    }
                }
                for seat in state.seats.values_mut().filter(|s| s.room_code == code) {
                    seat.room_code = fresh.clone();
                }
                let snapshot = moved.clone();
                state.rooms.insert(fresh.clone(), moved);
                drop(state);
                for member in &members {
                    hub.update_peer(member, |p| p.room = Some(fresh.clone()));
                }
                hub.room_closed_because(&code, &format!("renamed to {fresh}"));
                Self::publish(hub, &snapshot);
                Ok(RoomOperationResult::RoomCodeRegenerated { room_code: fresh })
            }
            RoomOperationRequest::JoinRoom(_)
            | RoomOperationRequest::LeaveRoom
            | RoomOperationRequest::Reconnect(_)
            | RoomOperationRequest::JoinAsSpectator(_)
            | RoomOperationRequest::LeaveSpectator => Err((
                "relaydeck does not negotiate room_operation_ids: send this request as a plain message",
                "INVALID_INPUT",
            )),
        }
    }

    pub fn ready(&self, hub: &Hub, peer: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let (room, player_id) = open_room_of_player(&mut state, peer)?;
        if let Some(player) = room.players.iter_mut().find(|p| p.id == player_id) {
            player.ready = !player.ready;
            room.ready_order.retain(|id| id != &player_id);
            if player.ready {
                room.ready_order.push(player_id);
            }
        }
        Self::send(hub, &room.audience(None), &room.lobby_changed());
        Self::publish(hub, room);
        Ok(())
    }

    pub fn start(&self, hub: &Hub, peer: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let (room, player_id) = open_room_of_player(&mut state, peer)?;
        // As 0.12 decides: a designated authority alone may start; without one, anyone may.
        if room
            .authority
            .as_deref()
            .is_some_and(|holder| holder != player_id)
        {
            return Err(refusal(
                Carrier::Error,
                "GAME_START_FORBIDDEN",
                Some("Only the room's authority player may start the game.".to_owned()),
            ));
        }
        if !room.all_ready() {
            return Err(refusal(
                Carrier::Error,
                "GAME_START_NOT_READY",
                Some("Cannot start the game: every player must be ready first.".to_owned()),
            ));
        }
        room.started = true;
        let peer_connections = room
            .players
            .iter()
            .map(|p| PeerConnectionInfo {
                player_id: p.id.clone(),
                player_name: p.name.clone(),
                is_authority: room.authority.as_deref() == Some(p.id.as_str()),
                relay_type: RELAY_TYPE.to_owned(),
            })
            .collect();
        let audience = room.audience(None);
        Self::send(
            hub,
            &audience,
            &ServerMessage::GameStarting { peer_connections },
        );
        // Finalization hands every v3 player one authoritative plan; relaydeck only relays.
        let players: Vec<String> = room.players.iter().filter_map(|p| p.peer.clone()).collect();
        let v3_players: Vec<String> = players.into_iter().filter(|p| self.wire(p).v3()).collect();
        Self::send(
            hub,
            &v3_players,
            &ServerMessage::SessionPlan(Box::new(SessionPlan::relay(new_id()))),
        );
        Self::publish(hub, room);
        Ok(())
    }

    pub fn reconnect(
        &self,
        hub: &Hub,
        peer: &str,
        player_id: &str,
        room_id: &str,
        token: &str,
        banned: impl Fn(&str) -> bool,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        if state.membership.contains_key(peer) {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "ALREADY_IN_ROOM",
                None,
            ));
        }
        let Some(seat) = state.seats.get(token).cloned() else {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_TOKEN_INVALID",
                None,
            ));
        };
        if seat.player_id != player_id || seat.room_id != room_id {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_TOKEN_INVALID",
                Some("The token belongs to another player or room".to_owned()),
            ));
        }
        if seat.room_closed_at_ms.is_some() {
            state.seats.remove(token);
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_FAILED",
                Some("The room was closed".to_owned()),
            ));
        }
        if seat.expired_at_ms.is_some() {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_EXPIRED",
                None,
            ));
        }
        let Some(room) = state
            .rooms
            .get_mut(&seat.room_code)
            .filter(|r| r.id == seat.room_id)
        else {
            state.seats.remove(token);
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_FAILED",
                Some("The room has closed".to_owned()),
            ));
        };
        let Some(player) = room.players.iter_mut().find(|p| p.id == player_id) else {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "RECONNECTION_FAILED",
                Some("The player is no longer in the room".to_owned()),
            ));
        };
        if player.peer.is_some() {
            return Err(refusal(
                Carrier::ReconnectionFailed,
                "PLAYER_ALREADY_CONNECTED",
                None,
            ));
        }
        // An operator's ban on the player's name holds across reconnects: the seat waits out
        // its window instead.
        if banned(&player.name) {
            return Err(refusal(Carrier::ReconnectionFailed, "BANNED", None));
        }
        let name = player.name.clone();
        player.peer = Some(peer.to_owned());
        player.disconnected_at_ms = None;
        // A new membership incarnation: v3 clients restart this sender's numbering.
        player.epoch += 1;
        // A fresh counter: a relay still holding the old one counts for the old epoch only.
        player.seq = Arc::new(AtomicU64::new(0));
        let epoch = player.epoch;
        let wire = self.wire(peer);
        let new_token = new_id();
        let roster = room.player_infos(wire.v3());
        let watermarks = if wire.v3() {
            roster
                .iter()
                .map(|p| SenderWatermark {
                    player_id: p.id.clone(),
                    epoch: p.epoch.unwrap_or(1),
                    seq: p.seq.unwrap_or(0),
                })
                .collect()
        } else {
            Vec::new()
        };
        let reconnected = ServerMessage::Reconnected(Box::new(Reconnected {
            room_id: room.id.clone(),
            room_code: room.code.clone(),
            player_id: player_id.to_owned(),
            game_name: room.game.clone(),
            max_players: room.max_players,
            supports_authority: room.supports_authority,
            current_players: roster,
            is_authority: room.authority.as_deref() == Some(player_id),
            lobby_state: room.lobby_state().to_owned(),
            ready_players: room.ready_players(),
            relay_type: RELAY_TYPE.to_owned(),
            current_spectators: room.spectator_infos(),
            missed_events: Vec::new(),
            // Nothing sent while the player was away is kept for it.
            replay: wire.v3().then_some(ReplayStatus::Unavailable),
            sender_watermarks: watermarks,
            reconnection_token: wire.shows_token().then(|| new_token.clone()),
        }));
        hub.send(peer, reconnected.text());
        let returning = room.players.iter().find(|p| p.id == player_id);
        let audience = room.audience(Some(peer));
        self.send_shaped(hub, &audience, |v3| ServerMessage::PlayerReconnected {
            player_id: player_id.to_owned(),
            epoch: v3.then_some(epoch),
            player: returning
                .filter(|_| v3)
                .map(|p| Box::new(room.player_info(p, true))),
        });
        let code = room.code.clone();
        let snapshot = room.clone();
        state.seats.remove(token);
        state.seats.insert(
            new_token,
            Seat {
                expired_at_ms: None,
                room_closed_at_ms: None,
                ..seat
            },
        );
        state.membership.insert(
            peer.to_owned(),
            Membership::Player {
                room: code.clone(),
                player_id: player_id.to_owned(),
            },
        );
        drop(state);
        // The same player as before: an identity ban made later finds this connection too.
        hub.update_peer(peer, |p| {
            p.room = Some(code);
            p.identity = Some(name);
        });
        Self::publish(hub, &snapshot);
        Ok(())
    }

    pub fn spectate(
        &self,
        hub: &Hub,
        peer: &str,
        app: &str,
        game: &str,
        code: &str,
        name: &str,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        if state.membership.contains_key(peer) {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "SPECTATOR_JOIN_FAILED",
                Some("Leave your current room before spectating".to_owned()),
            ));
        }
        if let Some(problem) = super::player_name_problem(name) {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "INVALID_PLAYER_NAME",
                Some(format!("Invalid spectator name: {problem}")),
            ));
        }
        let Some(room) = state
            .rooms
            .get_mut(code)
            .filter(|r| r.app == app && r.game == game)
        else {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "SPECTATOR_JOIN_FAILED",
                Some("Room not found".to_owned()),
            ));
        };
        if !room.allow_spectators {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "SPECTATOR_NOT_ALLOWED",
                None,
            ));
        }
        if room.spectators.len() >= room.max_spectators {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "TOO_MANY_SPECTATORS",
                None,
            ));
        }
        let spectator = Spectator {
            id: new_id(),
            name: name.to_owned(),
            peer: peer.to_owned(),
            connected_at: timestamp(),
        };
        let info = SpectatorInfo {
            id: spectator.id.clone(),
            name: spectator.name.clone(),
            connected_at: spectator.connected_at.clone(),
        };
        let audience = room.audience(None);
        room.spectators.push(spectator.clone());
        let joined = ServerMessage::SpectatorJoined(Box::new(SpectatorJoined {
            room_id: room.id.clone(),
            room_code: room.code.clone(),
            spectator_id: spectator.id.clone(),
            game_name: room.game.clone(),
            current_players: room.player_infos(self.wire(peer).v3()),
            current_spectators: room.spectator_infos(),
            lobby_state: room.lobby_state().to_owned(),
            reason: "joined".to_owned(),
        }));
        hub.send(peer, joined.text());
        Self::send(
            hub,
            &audience,
            &ServerMessage::NewSpectatorJoined {
                spectator: info,
                current_spectators: room.spectator_infos(),
                reason: "joined".to_owned(),
            },
        );
        let snapshot = room.clone();
        state.membership.insert(
            peer.to_owned(),
            Membership::Spectator {
                room: code.to_owned(),
                spectator_id: spectator.id,
            },
        );
        drop(state);
        hub.update_peer(peer, |p| p.room = Some(code.to_owned()));
        Self::publish(hub, &snapshot);
        Ok(())
    }

    pub fn leave_spectator(&self, hub: &Hub, peer: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let Some(Membership::Spectator { room, spectator_id }) =
            state.membership.get(peer).cloned()
        else {
            return Err(refusal(Carrier::Error, "NOT_A_SPECTATOR", None));
        };
        state.membership.remove(peer);
        Self::remove_spectator(&mut state, hub, &room, &spectator_id, Some(peer));
        drop(state);
        hub.update_peer(peer, |p| p.room = None);
        Ok(())
    }

    fn remove_spectator(
        state: &mut State,
        hub: &Hub,
        code: &str,
        spectator_id: &str,
        told: Option<&str>,
    ) {
        let Some(room) = state.rooms.get_mut(code) else {
            return;
        };
        room.spectators.retain(|s| s.id != spectator_id);
        // Upstream's SpectatorStateChangeReason tokens: a LeaveSpectator is a voluntary
        // leave, a dropped connection a disconnect. Clients reject any other word.
        let reason = if told.is_some() {
            "voluntary_leave"
        } else {
            "disconnected"
        };
        if let Some(peer) = told {
            let left = ServerMessage::SpectatorLeft {
                room_id: room.id.clone(),
                room_code: room.code.clone(),
                reason: reason.to_owned(),
                current_spectators: room.spectator_infos(),
            };
            hub.send(peer, left.text());
        }
        Self::send(
            hub,
            &room.audience(None),
            &ServerMessage::SpectatorDisconnected {
                spectator_id: spectator_id.to_owned(),
                reason: reason.to_owned(),
                current_spectators: room.spectator_infos(),
            },
        );
        if room.is_empty() {
            state.rooms.remove(code);
            hub.room_closed(code);
        } else {
            Self::publish(hub, room);
        }
    }

    /// The peer's connection ended: a player's seat is held for the reconnection window, a
    /// spectator simply leaves.
    pub fn disconnected(&self, hub: &Hub, peer: &str) {
        self.forget_version(peer);
        self.forget_relay(peer);
        let mut state = self.lock();
        state.handles.remove(peer);
        match state.membership.remove(peer) {
            Some(Membership::Player { room, player_id }) => {
                let Some(entry) = state.rooms.get_mut(&room) else {
                    return;
                };
                if let Some(player) = entry.players.iter_mut().find(|p| p.id == player_id) {
                    player.peer = None;
                    player.disconnected_at_ms = Some(now_ms());
                }
                Self::publish(hub, entry);
            }
            Some(Membership::Spectator { room, spectator_id }) => {
                Self::remove_spectator(&mut state, hub, &room, &spectator_id, None)
            }
            None => {}
        }
    }

    /// Release the seats whose reconnection window passed; forget long-expired tokens.
    pub fn sweep(&self, hub: &Hub) {
        let now = now_ms();
        let window = self.settings.reconnect_window_ms;
        // Reading every room hands none out to change: game data keeps its relays through
        // the sweep's every-second tick unless a seat is released.
        let mut state = self.lock();
        let expired: Vec<(String, String)> = state
            .rooms
            .values()
            .flat_map(|room| {
                room.players
                    .iter()
                    .filter(|p| {
                        p.disconnected_at_ms
                            .is_some_and(|at| now.saturating_sub(at) >= window)
                    })
                    .map(|p| (room.code.clone(), p.id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (code, player_id) in expired {
            let seats: Vec<(String, Seat)> = state
                .seats
                .iter()
                .filter(|(_, seat)| seat.player_id == player_id)
                .map(|(token, seat)| (token.clone(), seat.clone()))
                .collect();
            self.remove_player(&mut state, hub, &code, &player_id);
            for (token, seat) in seats {
                state.seats.insert(
                    token,
                    Seat {
                        expired_at_ms: Some(now),
                        ..seat
                    },
                );
            }
        }
        state.seats.retain(|_, seat| {
            seat.expired_at_ms
                .or(seat.room_closed_at_ms)
                .is_none_or(|at| now.saturating_sub(at) < EXPIRED_TOKEN_MEMORY_MS)
        });
    }

    /// Kick a peer out of its room (admin kick): players leave, spectators too.
    pub fn remove_peer_now(&self, hub: &Hub, peer: &str) {
        self.forget_version(peer);
        self.forget_relay(peer);
        let mut state = self.lock();
        state.handles.remove(peer);
        match state.membership.remove(peer) {
            Some(Membership::Player { room, player_id }) => {
                self.remove_player(&mut state, hub, &room, &player_id)
            }
            Some(Membership::Spectator { room, spectator_id }) => {
                Self::remove_spectator(&mut state, hub, &room, &spectator_id, None)
            }
            None => {}
        }
    }
}

/// The room a peer plays in, while its game has not started, and the peer's player id.
fn open_room_of_player<'s>(
    state: &'s mut State,
    peer: &str,
) -> Result<(&'s mut Room, String), Refusal> {
    let Some(Membership::Player { room, player_id }) = state.membership.get(peer).cloned() else {
        return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
    };
    let Some(room) = state.rooms.get_mut(&room) else {
        return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
    };
    if room.started {
        return Err(refusal(
            Carrier::Error,
            "INVALID_ROOM_STATE",
            Some("The game has already started.".to_owned()),
        ));
    }
    Ok((room, player_id))
}

impl RoomDirectory for Rooms {
    fn close_room(&self, hub: &Hub, code: &str) -> Result<String, String> {
        let mut state = self.lock();
        let room = state
            .rooms
            .remove(code)
            .ok_or_else(|| format!("no room {code}"))?;
        let members: Vec<String> = room.audience(None);
        state.membership.retain(|peer, _| !members.contains(peer));
        let now = now_ms();
        for seat in state
            .seats
            .values_mut()
            .filter(|seat| seat.room_code == code)
        {
            seat.room_closed_at_ms = Some(now);
        }
        drop(state);
        let kicked = crate::catalog::get(Dialect::SignalFish, "KICKED")
            .map(|e| e.wire_text)
            .unwrap_or("Removed from the room");
        Self::send(
            hub,
            &members,
            &ServerMessage::Error {
                message: format!("{kicked} (the room was closed by an operator)"),
                error_code: "KICKED".to_owned(),
            },
        );
        for peer in &members {
            hub.update_peer(peer, |p| p.room = None);
        }
        hub.room_closed_because(code, "closed by an operator");
        Ok(format!(
            "room {code} closed; {} members removed",
            members.len()
        ))
    }

    fn transfer_authority(&self, hub: &Hub, code: &str, player_id: &str) -> Result<String, String> {
        let mut state = self.lock();
        let room = state
            .rooms
            .get_mut(code)
            .ok_or_else(|| format!("no room {code}"))?;
        if !room.supports_authority {
            return Err(format!("room {code} was created without authority support"));
        }
        let player = room
            .players
            .iter()
            .find(|p| p.id == player_id)
            .ok_or_else(|| format!("no player {player_id} in room {code}"))?;
        let name = player.name.clone();
        room.authority = Some(player_id.to_owned());
        Self::announce_authority(hub, room);
        Self::publish(hub, room);
        Ok(format!(
            "{name} ({player_id}) now holds authority in {code}"
        ))
    }

    fn revoke_authority(&self, hub: &Hub, code: &str) -> Result<String, String> {
        let mut state = self.lock();
        let room = state
            .rooms
            .get_mut(code)
            .ok_or_else(|| format!("no room {code}"))?;
        if room.authority.take().is_none() {
            return Err(format!("nobody holds authority in {code}"));
        }
        Self::announce_authority(hub, room);
        Self::publish(hub, room);
        Ok(format!("authority in {code} revoked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Config;
    use crate::server::hub::{NewPeer, Outbound, PeerLink};
    use serde_json::{json, Value};

    fn hub() -> Hub {
        Hub::new(Config::demo(), "127.0.0.1:0".into(), &BTreeMap::new(), 64)
    }

    fn peer(hub: &Hub, name: &str) -> PeerLink {
        let new = NewPeer {
            dialect: Dialect::SignalFish,
            app: Some("demo".into()),
            identity: Some(name.into()),
            addr: "127.0.0.1:1".into(),
            probe_nonce: None,
        };
        hub.register_peer(new, None).unwrap()
    }

    fn request(room_code: Option<&str>, player_name: &str) -> JoinRequest {
        JoinRequest {
            app: "demo".into(),
            game_name: "demo".into(),
            room_code: room_code.map(str::to_owned),
            player_name: player_name.into(),
            max_players: Some(4),
            supports_authority: Some(true),
            join_only: false,
            allow_spectators: None,
            max_spectators: None,
            max_rooms_per_game: 10,
        }
    }

    /// Every frame queued for a peer so far.
    fn drain(link: &mut PeerLink) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Ok(Outbound::Text(text)) = link.queues.outbox.try_recv() {
            frames.push(serde_json::from_str(text.as_str()).unwrap());
        }
        frames
    }

    fn last_of(frames: &[Value], kind: &str) -> Value {
        frames
            .iter()
            .rev()
            .find(|f| f["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {frames:?}"))
    }

    /// Alice creates an authority room, Bob joins it; returns (code, alice id, bob id).
    fn two_players(
        rooms: &Rooms,
        hub: &Hub,
        alice: &mut PeerLink,
        bob: &mut PeerLink,
    ) -> (String, String, String) {
        rooms.join(hub, alice.id(), request(None, "Alice")).unwrap();
        let joined = last_of(&drain(alice), "RoomJoined");
        let code = joined["data"]["room_code"].as_str().unwrap().to_owned();
        rooms
            .join(hub, bob.id(), request(Some(&code), "Bob"))
            .unwrap();
        let bob_joined = last_of(&drain(bob), "RoomJoined");
        drain(alice);
        (
            code,
            joined["data"]["player_id"].as_str().unwrap().to_owned(),
            bob_joined["data"]["player_id"].as_str().unwrap().to_owned(),
        )
    }

    fn payload(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    /// Game data relays without the rooms lock while the sender's relay is current, and a
    /// change of room structure (a third player joining) reaches the next frame.
    #[test]
    fn game_data_does_not_wait_for_room_structure() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob, mut carol) = (peer(&hub, "a"), peer(&hub, "b"), peer(&hub, "c"));
        let (code, alice_id, _) = two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms.game_data(&hub, alice.id(), &payload("1")).unwrap();
        assert_eq!(last_of(&drain(&mut bob), "GameData")["data"]["data"], 1);

        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let held = rooms.lock();
            scope.spawn(|| {
                let relayed = rooms.game_data(&hub, alice.id(), &payload("2"));
                let _ = done_tx.send(relayed.is_ok());
            });
            let finished = done_rx.recv_timeout(std::time::Duration::from_secs(5));
            drop(held);
            assert_eq!(finished, Ok(true), "game data waited for the rooms lock");
        });
        let frame = last_of(&drain(&mut bob), "GameData");
        assert_eq!(frame["data"]["data"], 2);
        assert_eq!(frame["data"]["from_player"], alice_id.as_str());

        rooms
            .join(&hub, carol.id(), request(Some(&code), "Carol"))
            .unwrap();
        drain(&mut carol);
        rooms.game_data(&hub, alice.id(), &payload("3")).unwrap();
        assert_eq!(last_of(&drain(&mut carol), "GameData")["data"]["data"], 3);
        assert_eq!(last_of(&drain(&mut bob), "GameData")["data"]["data"], 3);

        rooms.leave(&hub, bob.id()).unwrap();
        drain(&mut bob);
        rooms.game_data(&hub, alice.id(), &payload("4")).unwrap();
        assert!(drain(&mut bob).iter().all(|f| f["type"] != "GameData"));
        assert_eq!(last_of(&drain(&mut carol), "GameData")["data"]["data"], 4);
    }

    /// A join in one room leaves the relays of another room current.
    #[test]
    fn a_change_in_one_room_keeps_the_other_rooms_relays() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob) = (peer(&hub, "a"), peer(&hub, "b"));
        let (mut carol, dave) = (peer(&hub, "c"), peer(&hub, "d"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms
            .join(&hub, carol.id(), request(None, "Carol"))
            .unwrap();
        let code = last_of(&drain(&mut carol), "RoomJoined")["data"]["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        let relay = rooms.relay_of(&hub, alice.id()).unwrap();
        let current =
            |relay: &Relay| relay.generation == relay.room_generation.load(Ordering::Acquire);
        assert!(current(&relay));
        rooms
            .join(&hub, dave.id(), request(Some(&code), "Dave"))
            .unwrap();
        rooms.ready(&hub, carol.id()).unwrap();
        assert!(
            current(&relay),
            "another room's join made Alice's relay stale"
        );
        rooms.ready(&hub, bob.id()).unwrap();
        assert!(!current(&relay), "her own room changed");
    }

    /// A frame whose relay was taken before its player left is never numbered past the
    /// `final_seq` the room was told.
    #[test]
    fn a_departed_players_counter_is_closed_at_its_final_seq() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob) = (peer(&hub, "a"), peer(&hub, "b"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms.game_data(&hub, bob.id(), &payload("1")).unwrap();
        rooms.game_data(&hub, bob.id(), &payload("2")).unwrap();
        // What Bob's connection holds while the room changes under it.
        let in_flight = rooms.relay_of(&hub, bob.id()).unwrap();
        rooms.leave(&hub, bob.id()).unwrap();
        assert_eq!(
            in_flight.seq.load(Ordering::Relaxed) & !SEQ_CLOSED,
            2,
            "final_seq is the last number handed out"
        );
        assert_ne!(in_flight.seq.load(Ordering::Relaxed) & SEQ_CLOSED, 0);
        assert!(rooms.game_data(&hub, bob.id(), &payload("3")).is_err());
    }

    #[test]
    fn generated_room_codes_use_only_the_unambiguous_alphabet() {
        for _ in 0..2000 {
            let code = room_code();
            assert!(valid_room_code(&code), "{code}");
        }
        assert!(!valid_room_code("ab!"));
        assert!(!valid_room_code("WWGV8O"), "O is left out as ambiguous");
        assert!(!valid_room_code("WWGV8"));
    }

    #[test]
    fn ready_players_are_listed_in_the_order_they_became_ready() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        let (_, alice_id, bob_id) = two_players(&rooms, &hub, &mut alice, &mut bob);

        rooms.ready(&hub, bob.id()).unwrap();
        rooms.ready(&hub, alice.id()).unwrap();
        let lobby = last_of(&drain(&mut alice), "LobbyStateChanged");
        assert_eq!(
            lobby["data"]["ready_players"],
            serde_json::json!([bob_id, alice_id])
        );
        assert_eq!(lobby["data"]["all_ready"], true);

        // A second PlayerReady takes readiness back; readying again goes to the end.
        rooms.ready(&hub, bob.id()).unwrap();
        rooms.ready(&hub, bob.id()).unwrap();
        let lobby = last_of(&drain(&mut bob), "LobbyStateChanged");
        assert_eq!(
            lobby["data"]["ready_players"],
            serde_json::json!([alice_id, bob_id])
        );
    }

    #[test]
    fn authority_claims_follow_the_real_server() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        for claimant in [bob.id(), alice.id()] {
            let refusal = rooms.authority_request(&hub, claimant, true).unwrap_err();
            assert_eq!(refusal.code, "AUTHORITY_CONFLICT");
            assert_eq!(refusal.carrier, Carrier::AuthorityResponse);
        }
        // Released by its holder, authority goes to the next claimant.
        rooms.authority_request(&hub, alice.id(), false).unwrap();
        rooms.authority_request(&hub, bob.id(), true).unwrap();
        let changed = last_of(&drain(&mut bob), "AuthorityChanged");
        assert_eq!(changed["data"]["you_are_authority"], true);
    }

    #[test]
    fn a_game_starts_once_everyone_is_ready_and_only_once() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        two_players(&rooms, &hub, &mut alice, &mut bob);

        rooms.ready(&hub, alice.id()).unwrap();
        let refusal = rooms.start(&hub, alice.id()).unwrap_err();
        assert_eq!(refusal.code, "GAME_START_NOT_READY");
        rooms.ready(&hub, bob.id()).unwrap();
        let refusal = rooms.start(&hub, bob.id()).unwrap_err();
        assert_eq!(
            refusal.code, "GAME_START_FORBIDDEN",
            "only the holder starts"
        );
        rooms.start(&hub, alice.id()).unwrap();
        let starting = last_of(&drain(&mut bob), "GameStarting");
        assert_eq!(
            starting["data"]["peer_connections"][0]["relay_type"],
            "matchbox"
        );
        for refused in [rooms.start(&hub, alice.id()), rooms.ready(&hub, bob.id())] {
            assert_eq!(refused.unwrap_err().code, "INVALID_ROOM_STATE");
        }
        let refusal = rooms.authority_request(&hub, bob.id(), true).unwrap_err();
        assert_eq!(refusal.code, "AUTHORITY_DENIED");
    }

    fn data(frames: &[Value], kind: &str) -> Value {
        last_of(frames, kind)["data"].clone()
    }

    #[test]
    fn frames_take_the_shape_of_each_peers_protocol_version() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob, mut carol) =
            (peer(&hub, "Alice"), peer(&hub, "Bob"), peer(&hub, "Carol"));
        rooms.set_protocol_version(alice.id(), 3);
        rooms.set_protocol_version(bob.id(), 2);

        rooms
            .join(&hub, alice.id(), request(None, "Alice"))
            .unwrap();
        let joined = data(&drain(&mut alice), "RoomJoined");
        assert!(
            joined["reconnection_token"].is_string(),
            "v3 gets the token"
        );
        let me = &joined["current_players"][0];
        assert_eq!(
            (me["epoch"].clone(), me["seq"].clone()),
            (1.into(), 0.into())
        );
        assert!(
            me.get("connected_at").is_none(),
            "v3 rosters carry no timestamps"
        );
        let code = joined["room_code"].as_str().unwrap().to_owned();

        rooms
            .join(&hub, bob.id(), request(Some(&code), "Bob"))
            .unwrap();
        let bob_joined = data(&drain(&mut bob), "RoomJoined");
        assert!(
            bob_joined.get("reconnection_token").is_none(),
            "v2 never sees it"
        );
        for player in bob_joined["current_players"].as_array().unwrap() {
            assert!(player["connected_at"].is_string());
            assert!(player.get("epoch").is_none() && player.get("seq").is_none());
        }
        let announced = data(&drain(&mut alice), "PlayerJoined");
        assert_eq!(announced["player"]["epoch"], 1);

        // A peer whose version was never reported keeps the token, as before versions existed.
        rooms
            .join(&hub, carol.id(), request(Some(&code), "Carol"))
            .unwrap();
        let carol_joined = data(&drain(&mut carol), "RoomJoined");
        assert!(carol_joined["reconnection_token"].is_string());
        assert!(carol_joined["current_players"][0]["connected_at"].is_string());
        drain(&mut alice);
        drain(&mut bob);

        for n in 1..=2 {
            rooms
                .game_data(
                    &hub,
                    bob.id(),
                    &serde_json::value::to_raw_value(&json!({"n": n})).unwrap(),
                )
                .unwrap();
        }
        let to_alice = data(&drain(&mut alice), "GameData");
        assert_eq!(
            (to_alice["seq"].clone(), to_alice["epoch"].clone()),
            (2.into(), 1.into())
        );
        let to_carol = data(&drain(&mut carol), "GameData");
        assert_eq!(
            to_carol,
            json!({"from_player": to_alice["from_player"], "data": {"n": 2}})
        );

        rooms.leave(&hub, bob.id()).unwrap();
        let left = data(&drain(&mut alice), "PlayerLeft");
        assert_eq!(
            (left["epoch"].clone(), left["final_seq"].clone()),
            (1.into(), 2.into())
        );
        let left = data(&drain(&mut carol), "PlayerLeft");
        assert!(left.get("final_seq").is_none());
    }

    #[test]
    fn a_v3_reconnect_starts_a_new_epoch_and_rotates_the_token() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        rooms.set_protocol_version(alice.id(), 3);
        rooms.set_protocol_version(bob.id(), 3);
        rooms
            .join(&hub, alice.id(), request(None, "Alice"))
            .unwrap();
        let code = data(&drain(&mut alice), "RoomJoined")["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        rooms
            .join(&hub, bob.id(), request(Some(&code), "Bob"))
            .unwrap();
        let joined = data(&drain(&mut bob), "RoomJoined");
        let (player, room, token) = (
            joined["player_id"].as_str().unwrap().to_owned(),
            joined["room_id"].as_str().unwrap().to_owned(),
            joined["reconnection_token"].as_str().unwrap().to_owned(),
        );
        rooms
            .game_data(
                &hub,
                bob.id(),
                &serde_json::value::to_raw_value(&json!(1)).unwrap(),
            )
            .unwrap();
        rooms.disconnected(&hub, bob.id());
        drain(&mut alice);

        let mut again = peer(&hub, "Bob");
        rooms.set_protocol_version(again.id(), 3);
        rooms
            .reconnect(&hub, again.id(), &player, &room, &token, |_| false)
            .unwrap();
        let back = data(&drain(&mut again), "Reconnected");
        assert_eq!(back["replay"], "unavailable");
        let rotated = back["reconnection_token"].as_str().unwrap();
        assert_ne!(rotated, token);
        let watermarks = back["sender_watermarks"].as_array().unwrap();
        assert_eq!(watermarks.len(), 2, "one per roster entry");
        let mine = watermarks
            .iter()
            .find(|w| w["player_id"] == player.as_str())
            .unwrap();
        assert_eq!(
            (mine["epoch"].clone(), mine["seq"].clone()),
            (2.into(), 0.into())
        );
        let notice = data(&drain(&mut alice), "PlayerReconnected");
        assert_eq!(notice["epoch"], 2);
        assert_eq!(notice["player"]["epoch"], 2);
        let refusal = rooms
            .reconnect(&hub, peer(&hub, "Eve").id(), &player, &room, &token, |_| {
                false
            })
            .unwrap_err();
        assert_eq!(refusal.code, "RECONNECTION_TOKEN_INVALID", "a spent token");
    }

    #[test]
    fn joins_follow_upstream_rules_for_codes_authority_and_player_counts() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let mut alice = peer(&hub, "Alice");
        let refused = |req: JoinRequest| rooms.join(&hub, alice.id(), req).unwrap_err();
        let join_only = JoinRequest {
            join_only: true,
            ..request(Some("ZZZZZZ"), "Alice")
        };
        assert_eq!(refused(join_only).code, "ROOM_NOT_FOUND");
        let join_only_without_code = JoinRequest {
            join_only: true,
            ..request(None, "Alice")
        };
        assert_eq!(refused(join_only_without_code).code, "INVALID_INPUT");
        for max_players in [0, 101, 255] {
            let req = JoinRequest {
                max_players: Some(max_players),
                ..request(None, "Alice")
            };
            assert_eq!(refused(req).code, "INVALID_MAX_PLAYERS", "{max_players}");
        }
        // A well-formed code that names no room creates that room, with authority support
        // unless the creator declines it.
        let req = JoinRequest {
            supports_authority: None,
            max_players: None,
            ..request(Some("ZZZZZZ"), "Alice")
        };
        rooms.join(&hub, alice.id(), req).unwrap();
        let joined = data(&drain(&mut alice), "RoomJoined");
        assert_eq!(joined["room_code"], "ZZZZZZ");
        assert_eq!(joined["max_players"], DEFAULT_MAX_PLAYERS);
        assert_eq!(joined["supports_authority"], true);
        assert_eq!(joined["is_authority"], true);
    }

    #[test]
    fn sealed_rooms_admit_only_their_password() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, bob, carol) = (peer(&hub, "Alice"), peer(&hub, "Bob"), peer(&hub, "Carol"));
        let sealed = |password: &str| JoinOptions {
            password: Some(password.to_owned()),
        };
        rooms
            .join_with(&hub, alice.id(), request(None, "Alice"), sealed("pw"))
            .unwrap();
        let code = data(&drain(&mut alice), "RoomJoined")["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        for options in [JoinOptions::default(), sealed("PW")] {
            let refusal = rooms
                .join_with(&hub, bob.id(), request(Some(&code), "Bob"), options)
                .unwrap_err();
            assert_eq!(
                (refusal.carrier, refusal.code),
                (Carrier::RoomJoinFailed, "PASSWORD_REQUIRED")
            );
        }
        let refusal = rooms
            .join_with(&hub, bob.id(), request(Some(&code), "Bob"), sealed(""))
            .unwrap_err();
        assert_eq!(
            refusal.code, "INVALID_INPUT",
            "an empty password is malformed"
        );
        rooms
            .join_with(&hub, bob.id(), request(Some(&code), "Bob"), sealed("pw"))
            .unwrap();
        // A password sent to an open room gets the same answer as a wrong one.
        rooms
            .join(&hub, carol.id(), request(Some("PQRS23"), "Carol"))
            .unwrap();
        let refusal = rooms
            .join_with(
                &hub,
                peer(&hub, "Dan").id(),
                request(Some("PQRS23"), "Dan"),
                sealed("pw"),
            )
            .unwrap_err();
        assert_eq!(refusal.code, "PASSWORD_REQUIRED");
    }

    #[test]
    fn the_authority_kicks_bans_and_transfers_by_room_operation() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        let (code, alice_id, bob_id) = two_players(&rooms, &hub, &mut alice, &mut bob);
        let operate = |peer: &str, op: RoomOperationRequest| {
            rooms.room_operation(&hub, peer, "op-1", &op);
        };
        let outcome = |link: &mut PeerLink| {
            let answer = data(&drain(link), "RoomOperationResult");
            assert_eq!(answer["operation_id"], "op-1");
            answer["result"].clone()
        };
        let kick = |id: &str| RoomOperationRequest::KickPlayer {
            player_id: id.to_owned(),
        };

        operate(bob.id(), kick(&alice_id));
        assert_eq!(
            outcome(&mut bob)["data"]["error_code"],
            "NOT_ROOM_AUTHORITY"
        );
        operate(alice.id(), kick("nobody"));
        assert_eq!(
            outcome(&mut alice)["data"]["error_code"],
            "KICK_TARGET_NOT_FOUND"
        );
        operate(alice.id(), kick(&alice_id));
        assert_eq!(outcome(&mut alice)["data"]["error_code"], "INVALID_INPUT");
        operate(
            alice.id(),
            RoomOperationRequest::TransferAuthority {
                player_id: "nobody".into(),
            },
        );
        assert_eq!(
            outcome(&mut alice)["data"]["error_code"],
            "TRANSFER_TARGET_NOT_FOUND"
        );

        operate(
            alice.id(),
            RoomOperationRequest::TransferAuthority {
                player_id: bob_id.clone(),
            },
        );
        assert_eq!(outcome(&mut alice)["type"], "AuthorityTransferred");
        assert_eq!(
            data(&drain(&mut bob), "AuthorityChanged")["you_are_authority"],
            true
        );

        operate(
            bob.id(),
            RoomOperationRequest::BanPlayer {
                player_id: alice_id.clone(),
            },
        );
        let frames = drain(&mut bob);
        assert_eq!(data(&frames, "PlayerLeft")["player_id"], alice_id);
        assert_eq!(
            data(&frames, "RoomOperationResult")["result"]["type"],
            "PlayerBanned"
        );
        let notice = data(&drain(&mut alice), "Error");
        assert_eq!(notice["error_code"], "KICKED");
        let refusal = rooms
            .join(&hub, alice.id(), request(Some(&code), "Alice"))
            .unwrap_err();
        assert_eq!(refusal.code, "BANNED");
    }

    #[test]
    fn delivery_classes_must_pair_with_keys() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        let refusal = rooms
            .game_data_with(
                &hub,
                alice.id(),
                &serde_json::value::to_raw_value(&json!(1)).unwrap(),
                Some(DeliveryClass::Latest),
                None,
            )
            .unwrap_err();
        assert_eq!(refusal.code, "INVALID_DELIVERY_CLASS");
        rooms
            .game_data_with(
                &hub,
                alice.id(),
                &serde_json::value::to_raw_value(&json!(1)).unwrap(),
                Some(DeliveryClass::Latest),
                Some(4),
            )
            .unwrap();
        // Bob's version was never reported: no v3 metadata reaches him.
        assert_eq!(data(&drain(&mut bob), "GameData").get("class"), None);
    }
}
