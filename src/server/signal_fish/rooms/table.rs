//! The rooms' data: players, spectators, rooms, memberships, reconnection seats, and the
//! table that bumps a room's generation whenever it is handed out to change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::session_plan::Capabilities;
use crate::protocol::admin::{RoomInfo, RoomMember};
use crate::protocol::signal_fish::{GameDataFormat, PlayerInfo, ServerMessage, SpectatorInfo};
use crate::server::peer::PeerHandle;

/// The letters and digits of a room code: no 0/O, 1/I/L, so a code read aloud is unambiguous.
pub const ROOM_CODE_ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Set in a player's sequence counter when its membership ends: no number after it.
pub(super) const SEQ_CLOSED: u64 = 1 << 63;

/// What relaying one sender's game data needs, built under the rooms lock and used without it
/// while `generation` still matches its room's generation.
pub(super) struct Relay {
    /// The room's generation, and the value it had when this relay was built.
    pub(super) room_generation: Arc<AtomicU64>,
    pub(super) generation: u64,
    pub(super) player_id: String,
    pub(super) epoch: u32,
    pub(super) seq: Arc<AtomicU64>,
    /// Every other connected member, players and spectators.
    pub(super) audience: Vec<RoomPeer>,
}

/// The frame shapes a member receives, from the protocol version its session negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    V2,
    V3,
}

impl Wire {
    pub(super) fn of(version: u16) -> Wire {
        if version >= 3 {
            Wire::V3
        } else {
            Wire::V2
        }
    }

    pub(super) fn v3(self) -> bool {
        self == Wire::V3
    }

    /// A v2 client must never see the token (the real server keeps it off the v2 wire).
    pub(super) fn shows_token(self) -> bool {
        self.v3()
    }
}

/// A connected member as its room holds it: the connection's handle, which its frames are
/// queued on, and what its Authenticate negotiated, which is fixed for the connection's life:
/// the frame shapes, the game data format and the data-path capabilities. The session hands
/// it over on joining, spectating or reconnecting; Authenticate always comes first. Frames
/// and plans read these from the member's record, so no map by peer id is kept beside it.
#[derive(Clone)]
pub struct RoomPeer {
    pub(super) handle: Arc<PeerHandle>,
    pub(super) wire: Wire,
    /// How binary game data reaches this member (`binary.rs`).
    pub(super) format: GameDataFormat,
    /// Shared with the session that negotiated them: a member is cloned into every relay
    /// built for its room.
    pub(super) capabilities: Arc<Capabilities>,
}

impl RoomPeer {
    pub fn new(
        handle: Arc<PeerHandle>,
        protocol_version: u16,
        format: GameDataFormat,
        capabilities: Arc<Capabilities>,
    ) -> RoomPeer {
        RoomPeer {
            handle,
            wire: Wire::of(protocol_version),
            format,
            capabilities,
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.handle.id
    }
}

impl std::fmt::Debug for RoomPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomPeer")
            .field("id", &self.handle.id)
            .field("wire", &self.wire)
            .field("format", &self.format)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub(super) struct Player {
    pub(super) id: String,
    pub(super) name: String,
    /// Absent while the seat waits out its reconnection window.
    pub(super) peer: Option<RoomPeer>,
    pub(super) ready: bool,
    pub(super) connected_at: String,
    pub(super) disconnected_at_ms: Option<u64>,
    /// The membership incarnation v3 clients track: 1 on joining, one more on each reconnect.
    pub(super) epoch: u32,
    /// Game data messages this player sent in `epoch`; v3 recipients see them numbered.
    /// Shared with the player's [`Relay`], which counts without the rooms lock.
    pub(super) seq: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
pub(super) struct Spectator {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) peer: RoomPeer,
    pub(super) connected_at: String,
}

#[derive(Debug, Clone)]
pub(super) struct Room {
    pub(super) id: String,
    pub(super) code: String,
    pub(super) app: String,
    pub(super) game: String,
    pub(super) max_players: u8,
    pub(super) supports_authority: bool,
    pub(super) allow_spectators: bool,
    pub(super) max_spectators: usize,
    pub(super) players: Vec<Player>,
    pub(super) spectators: Vec<Spectator>,
    pub(super) authority: Option<String>,
    /// Player ids in the order they became ready: the order the real server lists
    /// `ready_players` in. Left players are filtered out when listing.
    pub(super) ready_order: Vec<String>,
    pub(super) started: bool,
    /// False only while the creator's own RoomJoined is built ("waiting").
    pub(super) opened: bool,
    pub(super) created_at_ms: u64,
    /// Set by the creator's JoinRoom `password` (or a v3 SetRoomAccess); every later join
    /// must present exactly this.
    pub(super) password: Option<String>,
    /// Player ids and connection ids the room's authority banned; the ban dies with the room.
    pub(super) banned: Vec<String>,
    /// Bumped on every change to the room ([`RoomTable`]); its members' relays were built at
    /// one value of it.
    pub(super) generation: Arc<AtomicU64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Membership {
    Player { room: String, player_id: String },
    Spectator { room: String, spectator_id: String },
}

#[derive(Debug, Clone)]
pub(super) struct Seat {
    pub(super) player_id: String,
    pub(super) room_id: String,
    pub(super) room_code: String,
    /// Set once the reconnection window passed.
    pub(super) expired_at_ms: Option<u64>,
    /// Set when an operator closed the room; a Reconnect then fails as RECONNECTION_FAILED.
    pub(super) room_closed_at_ms: Option<u64>,
}

/// The rooms by code. Handing out a room to change bumps its generation, so a change cannot
/// forget to make its room's relays stale.
#[derive(Default)]
pub(super) struct RoomTable(BTreeMap<String, Room>);

impl RoomTable {
    pub(super) fn get(&self, code: &str) -> Option<&Room> {
        self.0.get(code)
    }

    pub(super) fn get_mut(&mut self, code: &str) -> Option<&mut Room> {
        let room = self.0.get_mut(code)?;
        room.generation.fetch_add(1, Ordering::AcqRel);
        Some(room)
    }

    pub(super) fn contains_key(&self, code: &str) -> bool {
        self.0.contains_key(code)
    }

    pub(super) fn insert(&mut self, code: String, room: Room) {
        room.generation.fetch_add(1, Ordering::AcqRel);
        self.0.insert(code, room);
    }

    pub(super) fn remove(&mut self, code: &str) -> Option<Room> {
        let room = self.0.remove(code)?;
        room.generation.fetch_add(1, Ordering::AcqRel);
        Some(room)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Room> + Clone {
        self.0.values()
    }
}

pub(super) fn timestamp() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

pub(super) fn new_id() -> String {
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
    pub(super) fn player_info(&self, p: &Player, v3: bool) -> PlayerInfo {
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
    pub(super) fn player_infos(&self, v3: bool) -> Vec<PlayerInfo> {
        self.players
            .iter()
            .map(|p| self.player_info(p, v3))
            .collect()
    }

    pub(super) fn spectator_infos(&self) -> Vec<SpectatorInfo> {
        self.spectators
            .iter()
            .map(|s| SpectatorInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                connected_at: s.connected_at.clone(),
            })
            .collect()
    }

    pub(super) fn ready_players(&self) -> Vec<String> {
        self.ready_order
            .iter()
            .filter(|id| self.players.iter().any(|p| &p.id == *id && p.ready))
            .cloned()
            .collect()
    }

    pub(super) fn all_ready(&self) -> bool {
        !self.players.is_empty() && self.players.iter().all(|p| p.ready)
    }

    pub(super) fn lobby_state(&self) -> &'static str {
        if self.started {
            "finalized"
        } else if !self.opened {
            "waiting"
        } else {
            "lobby"
        }
    }

    /// Every connected member, players and spectators, except the peer `except`.
    pub(super) fn audience(&self, except: Option<&str>) -> Vec<RoomPeer> {
        self.players
            .iter()
            .filter_map(|p| p.peer.as_ref())
            .chain(self.spectators.iter().map(|s| &s.peer))
            .filter(|peer| Some(peer.id()) != except)
            .cloned()
            .collect()
    }

    pub(super) fn info(&self) -> RoomInfo {
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
                    peer: p.peer.as_ref().map(|peer| peer.id().to_owned()),
                    ready: p.ready,
                })
                .collect(),
            spectators: self
                .spectators
                .iter()
                .map(|s| RoomMember {
                    player_id: s.id.clone(),
                    name: s.name.clone(),
                    peer: Some(s.peer.id().to_owned()),
                    ready: false,
                })
                .collect(),
            authority: self.authority.clone(),
            created_at_ms: self.created_at_ms,
        }
    }

    pub(super) fn lobby_changed(&self) -> ServerMessage {
        ServerMessage::LobbyStateChanged {
            lobby_state: self.lobby_state().to_owned(),
            ready_players: self.ready_players(),
            all_ready: self.all_ready(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.players.is_empty() && self.spectators.is_empty()
    }
}
