//! Signal Fish rooms: membership, authority, readiness, spectators and reconnection seats.
//!
//! This is the one place that knows who is in which room. Calls go one way: the session (or
//! the admin endpoint, or the server's sweep tick) → the rooms → the members' connections.
//! A session hands over its connection as a [`RoomPeer`] (its handle and what Authenticate
//! negotiated, fixed for the connection's life: protocol version, game data format, data-path
//! capabilities) when it joins, spectates or reconnects, and names itself by peer id or handle
//! otherwise. The room's players and spectators hold those handles, so
//! every notice goes straight to them, through the hub's per-handle delivery only (counting,
//! taps, slow consumers), serialized once per distinct frame shape; nothing is looked up by
//! id in the hub's registry.
//!
//! The rooms never tell the hub what changed: each call that changes rooms returns a
//! [`RoomChange`] (rooms updated or closed, the room each peer is now in) and its caller
//! records it with [`Hub::record_rooms`] at once, so admins see the changes in the order
//! players saw them.
//!
//! One file per request kind, each its own `impl Rooms` block with its tests beside it:
//!
//! | file | what |
//! |---|---|
//! | `table.rs` | the data: players, spectators, rooms, memberships, seats, relays; the table that bumps generations |
//! | `relay.rs` | GameData: each sender's cached relay |
//! | `binary.rs` | MessagePack frames relayed in each member's format (read from its `RoomPeer`) |
//! | `join.rs` | JoinRoom |
//! | `authority.rs` | AuthorityRequest, RoomOperation moderation, the admin's room commands |
//! | `correlation.rs` | a correlated RoomOperation's membership answer, wrapped with its id |
//! | `lobby.rs` | PlayerReady, StartGame |
//! | `reconnect.rs` | Reconnect |
//! | `spectators.rs` | JoinAsSpectator, LeaveSpectator |
//! | `lifecycle.rs` | LeaveRoom, a dropped connection, the seat sweep, an admin kick |
//! | `replay.rs` | the control events a disconnected player misses, for its Reconnected |
//! | `inactivity.rs` | rooms reaped after their members' silence (4005) |
//! | `session_plan.rs` | negotiated capabilities, the session ladder, each member's SessionPlan |
//! | `signaling.rs` | SessionPlans at start, late join, host loss; Signal and its `SignalBudget`; ProvideConnectionInfo |
//!
//! This file keeps the shared state, the locks, delivery to members' handles, and the room
//! changes waiting for their caller.
//!
//! # What is kept by peer id
//! Nothing a connection negotiated: that is on its `RoomPeer`, and its signal budget on its
//! session. By peer id remain only what a request that names its sender by id must find:
//! `membership` (the room and seat a peer is in), `relays` (each sender's cached relay, read
//! once per game data frame; a member's own format comes with it), and `correlations` (the
//! RoomOperation a peer's request in hand answers, alive for one request).
//!
//! # Locking
//! Joins, leaves, authority, readiness and reconnection change room structure under one lock;
//! they are rare next to game data. Game data takes no rooms lock: each sender has a
//! [`Relay`] (its audience's handles, its epoch and sequence counter) built under the lock
//! and checked against its room's generation, which every mutable access to that room bumps
//! ([`RoomTable::get_mut`]). A change in one room leaves the other rooms' relays current, so
//! their frames never wait for it; a stale relay is rebuilt, under the lock, before use.
//!
//! Lock order: `state`, then `in_order`, then the leaf locks (`changes`, signaling (each
//! room's running session plan), activity, replay, correlations, relays). Relaying a frame
//! takes only the `relays` read lock: each member's format and version are on its record.
//! A change is noted in `changes` under `state`, so notes are in the order of the changes;
//! `Rooms::changes` takes `in_order` before it empties `changes`, and the [`RoomChange`] it
//! returns holds `in_order` until the caller has recorded it, so one caller's changes reach
//! the hub before the next caller's. The hub's lock is taken only by delivery (a tapped
//! frame, an error frame, a close) and by a caller recording a change; the hub never calls
//! into the rooms.

mod authority;
mod binary;
mod correlation;
mod inactivity;
mod join;
mod lifecycle;
mod lobby;
mod reconnect;
mod relay;
mod replay;
pub mod session_plan;
mod signaling;
mod spectators;
mod table;
#[cfg(test)]
mod test_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::protocol::signal_fish::ServerMessage;
use crate::server::config::SignalFishSettings;
use crate::server::hub::{Hub, RoomEvent};
use crate::server::peer::{PeerHandle, Priority};
use crate::server::signal_fish::refusal::{Carrier, Refusal};

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
/// Why a room closed when its last member went.
const EMPTY: &str = "empty";

use self::correlation::Correlations;
use self::inactivity::Activity;
use self::replay::Replay;
pub use self::signaling::SignalBudget;
use self::signaling::Signaling;
pub use self::table::{room_code, valid_room_code, RoomPeer};
use self::table::{Membership, Relay, Room, RoomTable, Seat};

#[derive(Default)]
struct State {
    rooms: RoomTable,
    membership: HashMap<String, Membership>,
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
    /// Rooms of the app in all (its `limits.max_connections`).
    pub max_rooms_per_app: usize,
}

/// What a JoinRoom carries beyond [`JoinRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JoinOptions {
    pub password: Option<String>,
}

pub struct Rooms {
    state: Mutex<State>,
    /// Each game-data sender's relay, by peer id.
    relays: RwLock<HashMap<String, Arc<Relay>>>,
    settings: SignalFishSettings,
    /// Each room's running session; locked after `state`, never before.
    signaling: Mutex<Signaling>,
    /// When each room last heard from a member; locked after `state`, never before.
    activity: Activity,
    /// Events kept for players who are away; locked after `state`, never before.
    replay: Replay,
    /// The correlated operation each peer's request in hand answers; a leaf lock.
    correlations: Correlations,
    /// Room changes for admins not yet handed to a caller, in the order they happened; a
    /// leaf lock.
    changes: Mutex<Vec<RoomEvent>>,
    /// Held from taking changes until the caller has recorded them ([`RoomChange`]); locked
    /// after `state`, never before.
    in_order: Mutex<()>,
}

/// Room changes for admins, in the order they happened, for the caller to record through
/// [`Hub::record_rooms`] at once. While it is held no later change is handed out, so admins
/// see changes in the order players did; the caller must not call into the rooms before
/// letting it go.
pub struct RoomChange<'r> {
    events: Vec<RoomEvent>,
    _in_order: MutexGuard<'r, ()>,
}

impl RoomChange<'_> {
    pub fn events(&self) -> &[RoomEvent] {
        &self.events
    }
}

thread_local! {
    /// [`RoomChange`]s alive on this thread. Its guard cannot cross an `.await` (it is not
    /// `Send`), so a thread that holds one and takes the rooms lock is a caller that called
    /// back into the rooms before recording: a wait on itself, caught in debug builds.
    static CHANGES_HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Drop for RoomChange<'_> {
    fn drop(&mut self) {
        CHANGES_HELD.with(|held| held.set(held.get().saturating_sub(1)));
    }
}

impl std::fmt::Debug for RoomChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.events).finish()
    }
}

fn refusal(carrier: Carrier, code: &'static str, text: Option<String>) -> Refusal {
    Refusal {
        carrier,
        code,
        text,
    }
}

impl Rooms {
    pub fn new(settings: SignalFishSettings) -> Rooms {
        Rooms {
            state: Mutex::new(State::default()),
            relays: RwLock::new(HashMap::new()),
            settings,
            signaling: Mutex::new(Signaling::default()),
            activity: Activity::default(),
            replay: Replay::default(),
            correlations: Correlations::default(),
            changes: Mutex::new(Vec::new()),
            in_order: Mutex::new(()),
        }
    }

    /// Send a frame whose shape depends on the recipient's version: each shape is serialized
    /// once and shared by every recipient of that version.
    fn send_shaped(&self, hub: &Hub, members: &[RoomPeer], make: impl Fn(bool) -> ServerMessage) {
        let (v3, v2): (Vec<&RoomPeer>, Vec<&RoomPeer>) =
            members.iter().partition(|member| member.wire.v3());
        Self::send(hub, v2, &make(false));
        Self::send(hub, v3, &make(true));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        debug_assert_eq!(
            CHANGES_HELD.with(std::cell::Cell::get),
            0,
            "a RoomChange must be recorded and dropped before calling into the rooms again"
        );
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

    /// Every change noted and not yet handed out, for the caller to record: what a call
    /// that changed rooms returns, and what a refused call may have changed before it was
    /// refused. A change is noted under the rooms lock, so notes are in the order of the
    /// changes; whichever caller takes them records them before the next caller can take any.
    pub fn changes(&self) -> RoomChange<'_> {
        debug_assert_eq!(
            CHANGES_HELD.with(std::cell::Cell::get),
            0,
            "a RoomChange must be recorded and dropped before taking the next"
        );
        let in_order = self.in_order.lock().unwrap_or_else(|p| p.into_inner());
        let events = std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()));
        CHANGES_HELD.with(|held| held.set(held.get().saturating_add(1)));
        RoomChange {
            events,
            _in_order: in_order,
        }
    }

    fn note(&self, event: RoomEvent) {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    fn publish(&self, room: &Room) {
        self.note(RoomEvent::Updated(room.info()));
    }

    fn closed(&self, code: &str, reason: &str) {
        self.note(RoomEvent::Closed {
            code: code.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// The room `peer` is in now, as admins see it on the peer.
    fn seated(&self, peer: &str, room: Option<String>) {
        self.note(RoomEvent::Seated {
            peer: peer.to_owned(),
            room,
            identity: None,
        });
    }

    /// One frame, serialized once, for every member.
    fn send<'m>(
        hub: &Hub,
        members: impl IntoIterator<Item = &'m RoomPeer>,
        message: &ServerMessage,
    ) {
        let mut members = members.into_iter().peekable();
        if members.peek().is_some() {
            let text = message.text().into();
            hub.deliver_many(members.map(|m| &m.handle), &text, Priority::Reply);
        }
    }

    /// One frame for one connection: the answer to its request, or a notice no other member
    /// gets.
    fn send_to(hub: &Hub, peer: &PeerHandle, message: &ServerMessage) {
        hub.deliver(peer, &message.text().into(), Priority::Reply);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::*;
    use super::*;

    #[test]
    fn frames_take_the_shape_of_each_peers_protocol_version() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob, mut carol) =
            (peer(&hub, "Alice"), peer(&hub, "Bob"), peer(&hub, "Carol"));

        rooms
            .join(&hub, &v3(&alice), request(None, "Alice"))
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
            .join(&hub, &v2(&bob), request(Some(&code), "Bob"))
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

        // Each member's own version, whatever the others speak.
        rooms
            .join(&hub, &v2(&carol), request(Some(&code), "Carol"))
            .unwrap();
        let carol_joined = data(&drain(&mut carol), "RoomJoined");
        assert!(carol_joined.get("reconnection_token").is_none());
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

        rooms.leave(&hub, &bob.handle).unwrap();
        let left = data(&drain(&mut alice), "PlayerLeft");
        assert_eq!(
            (left["epoch"].clone(), left["final_seq"].clone()),
            (1.into(), 2.into())
        );
        let left = data(&drain(&mut carol), "PlayerLeft");
        assert!(left.get("final_seq").is_none());
    }

    /// Calling into the rooms while holding a change would wait on itself in a release build;
    /// a debug build says so at once.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "a RoomChange must be recorded and dropped")]
    fn calling_back_into_the_rooms_while_holding_a_change_is_caught() {
        let rooms = Rooms::new(SignalFishSettings::default());
        let _held = rooms.changes();
        rooms.holds_code("ABCDEF");
    }

    /// The rooms record nothing for admins themselves: each change comes back to its caller,
    /// in the order it happened, and admins see it once the caller records it.
    #[test]
    fn a_change_comes_back_to_its_caller_in_order() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let mut alice = peer(&hub, "Alice");
        let joined = rooms
            .join(&hub, &v2(&alice), request(None, "Alice"))
            .unwrap();
        drain(&mut alice);
        let (_, unrecorded, _) = hub.subscribe();
        assert!(unrecorded.rooms.is_empty());
        let code = match joined.events() {
            [RoomEvent::Seated {
                peer,
                room: Some(code),
                identity: None,
            }, RoomEvent::Updated(room)]
                if peer == alice.id() && room.code == *code =>
            {
                code.clone()
            }
            other => panic!("{other:?}"),
        };
        hub.record_rooms(joined.events());
        drop(joined);
        let (_, recorded, _) = hub.subscribe();
        assert_eq!(recorded.rooms.len(), 1);
        let shown = recorded.peers.iter().find(|p| p.id == alice.id()).unwrap();
        assert_eq!(shown.room.as_deref(), Some(code.as_str()));

        let left = rooms.leave(&hub, &alice.handle).unwrap();
        assert_eq!(
            left.events(),
            [
                RoomEvent::Closed {
                    code: code.clone(),
                    reason: EMPTY.to_owned()
                },
                RoomEvent::Seated {
                    peer: alice.id().to_owned(),
                    room: None,
                    identity: None
                }
            ]
        );
        hub.record_rooms(left.events());
        drop(left);
        let (_, after, _) = hub.subscribe();
        assert!(after.rooms.is_empty());
        assert!(
            rooms.sweep(&hub).events().is_empty(),
            "nothing is handed out twice"
        );
    }
}
