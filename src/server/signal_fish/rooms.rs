//! Signal Fish rooms: membership, authority, readiness, spectators and reconnection seats.
//!
//! This is the one place that knows who is in which room. Connection tasks call in with their
//! peer id; every notice to the other members goes out through the hub, serialized once per
//! distinct frame. The lock here is taken before the hub's and never the other way round
//! (the hub calls the [`RoomDirectory`] methods without holding its own lock).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;

use super::Refusal;
use crate::catalog::Dialect;
use crate::protocol::admin::{RoomInfo, RoomMember};
use crate::protocol::signal_fish::{
    PeerConnectionInfo, PlayerInfo, Reconnected, RoomJoined, ServerMessage, SpectatorInfo,
    SpectatorJoined,
};
use crate::server::config::SignalFishSettings;
use crate::server::hub::{now_ms, Hub, RoomDirectory};
use crate::server::peer::{PeerHandle, Priority};

pub const ROOM_CODE_ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const DEFAULT_MAX_PLAYERS: u8 = 8;
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

#[derive(Default)]
struct State {
    rooms: BTreeMap<String, Room>,
    membership: HashMap<String, Membership>,
    /// Handles of members that have sent or received game data, so relaying a frame takes no
    /// hub lock. Filled on first use, emptied when the connection ends.
    handles: HashMap<String, Arc<PeerHandle>>,
    /// Reconnection token → seat.
    seats: HashMap<String, Seat>,
}

pub struct JoinRequest {
    pub app: String,
    pub game_name: String,
    pub room_code: Option<String>,
    pub player_name: String,
    pub max_players: Option<i64>,
    pub supports_authority: Option<bool>,
    pub join_only: bool,
    pub allow_spectators: Option<bool>,
    pub max_spectators: Option<i64>,
    pub max_rooms_per_game: usize,
}

pub struct Rooms {
    state: Mutex<State>,
    settings: SignalFishSettings,
}

fn timestamp() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn room_code() -> String {
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
    fn player_infos(&self) -> Vec<PlayerInfo> {
        self.players
            .iter()
            .map(|p| PlayerInfo {
                id: p.id.clone(),
                name: p.name.clone(),
                is_authority: self.authority.as_deref() == Some(p.id.as_str()),
                is_ready: p.ready,
                connected_at: p.connected_at.clone(),
            })
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
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut state = self.lock();
        if state.membership.contains_key(peer) {
            return Err(refusal(Carrier::RoomJoinFailed, "ALREADY_IN_ROOM", None));
        }
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
        let player = Player {
            id: new_id(),
            name: request.player_name.clone(),
            peer: Some(peer.to_owned()),
            ready: false,
            connected_at: timestamp(),
            disconnected_at_ms: None,
        };
        let code = match &request.room_code {
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
                let room = state
                    .rooms
                    .get(code)
                    .filter(|r| r.app == request.app && r.game == request.game_name)
                    .ok_or_else(|| refusal(Carrier::RoomJoinFailed, "ROOM_NOT_FOUND", None))?;
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
                code.clone()
            }
            None => {
                if request.join_only {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "ROOM_NOT_FOUND",
                        Some("join_only was set and no room_code was given".to_owned()),
                    ));
                }
                let max_players = match request.max_players {
                    None => DEFAULT_MAX_PLAYERS,
                    Some(n) if (1..=100).contains(&n) => n as u8,
                    Some(_) => {
                        return Err(refusal(
                            Carrier::RoomJoinFailed,
                            "INVALID_MAX_PLAYERS",
                            Some("max_players must be between 1 and 100".to_owned()),
                        ))
                    }
                };
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
                let mut code = room_code();
                while state.rooms.contains_key(&code) {
                    code = room_code();
                }
                let supports_authority = request.supports_authority.unwrap_or(false);
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
            current_players: room.player_infos(),
            is_authority: room.authority.as_deref() == Some(player_id.as_str()),
            lobby_state: room.lobby_state().to_owned(),
            ready_players: room.ready_players(),
            relay_type: RELAY_TYPE.to_owned(),
            current_spectators: room.spectator_infos(),
            reconnection_token: Some(token.clone()),
        }));
        hub.send(peer, joined.text());
        // The room leaves "waiting" as soon as its creator is in (as the real server reports).
        room.opened = true;
        if creating {
            hub.send(peer, room.lobby_changed().text());
        } else {
            let player_info = room.player_infos().into_iter().find(|p| p.id == player_id);
            if let Some(player_info) = player_info {
                Self::send(
                    hub,
                    &room.audience(Some(peer)),
                    &ServerMessage::PlayerJoined {
                        player: player_info,
                    },
                );
            }
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
    fn remove_player(state: &mut State, hub: &Hub, code: &str, player_id: &str) {
        let Some(room) = state.rooms.get_mut(code) else {
            return;
        };
        room.players.retain(|p| p.id != player_id);
        let audience = room.audience(None);
        Self::send(
            hub,
            &audience,
            &ServerMessage::PlayerLeft {
                player_id: player_id.to_owned(),
            },
        );
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
        Self::remove_player(&mut state, hub, &room, &player_id);
        drop(state);
        hub.update_peer(peer, |p| p.room = None);
        Ok(())
    }

    /// Relay one GameData payload to every other connected member, spliced as sent. The
    /// frame is serialized once and pushed to the members' handles under this lock only.
    pub fn game_data(&self, hub: &Hub, peer: &str, data: &RawValue) -> Result<(), Refusal> {
        let mut state = self.lock();
        let State {
            rooms,
            membership,
            handles,
            ..
        } = &mut *state;
        let Some(Membership::Player { room, player_id }) = membership.get(peer) else {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        };
        let Some(room) = rooms.get(room) else {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        };
        let text: Utf8Bytes = crate::protocol::game_data::relayed(player_id, data).into();
        let members = room
            .players
            .iter()
            .filter_map(|p| p.peer.as_deref())
            .chain(room.spectators.iter().map(|s| s.peer.as_str()))
            .filter(|member| *member != peer);
        for member in members {
            let handle = match handles.get(member) {
                Some(handle) => handle,
                None => match hub.handle(member) {
                    Some(handle) => handles.entry(member.to_owned()).or_insert(handle),
                    None => continue,
                },
            };
            hub.deliver(handle, &text, Priority::Relay);
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
        if room
            .authority
            .as_deref()
            .is_some_and(|holder| holder != player_id)
        {
            return Err(refusal(
                Carrier::Error,
                "AUTHORITY_DENIED",
                Some("Only the authority player can start the game".to_owned()),
            ));
        }
        if !room.all_ready() {
            return Err(refusal(Carrier::Error, "GAME_START_NOT_READY", None));
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
        Self::send(
            hub,
            &room.audience(None),
            &ServerMessage::GameStarting { peer_connections },
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
        player.peer = Some(peer.to_owned());
        player.disconnected_at_ms = None;
        let new_token = new_id();
        let reconnected = ServerMessage::Reconnected(Box::new(Reconnected {
            room_id: room.id.clone(),
            room_code: room.code.clone(),
            player_id: player_id.to_owned(),
            game_name: room.game.clone(),
            max_players: room.max_players,
            supports_authority: room.supports_authority,
            current_players: room.player_infos(),
            is_authority: room.authority.as_deref() == Some(player_id),
            lobby_state: room.lobby_state().to_owned(),
            ready_players: room.ready_players(),
            relay_type: RELAY_TYPE.to_owned(),
            current_spectators: room.spectator_infos(),
            missed_events: Vec::new(),
            reconnection_token: new_token.clone(),
        }));
        hub.send(peer, reconnected.text());
        Self::send(
            hub,
            &room.audience(Some(peer)),
            &ServerMessage::PlayerReconnected {
                player_id: player_id.to_owned(),
            },
        );
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
        hub.update_peer(peer, |p| p.room = Some(code));
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
            current_players: room.player_infos(),
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
        if let Some(peer) = told {
            let left = ServerMessage::SpectatorLeft {
                room_id: room.id.clone(),
                room_code: room.code.clone(),
                reason: "left".to_owned(),
                current_spectators: room.spectator_infos(),
            };
            hub.send(peer, left.text());
        }
        Self::send(
            hub,
            &room.audience(None),
            &ServerMessage::SpectatorDisconnected {
                spectator_id: spectator_id.to_owned(),
                reason: "left".to_owned(),
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
            Self::remove_player(&mut state, hub, &code, &player_id);
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
        let mut state = self.lock();
        state.handles.remove(peer);
        match state.membership.remove(peer) {
            Some(Membership::Player { room, player_id }) => {
                Self::remove_player(&mut state, hub, &room, &player_id)
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
            Some("The game has already started".to_owned()),
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
        hub.room_closed(code);
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
    use serde_json::Value;

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
        assert_eq!(refusal.code, "AUTHORITY_DENIED", "only the holder starts");
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
}
