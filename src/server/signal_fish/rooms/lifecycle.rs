//! How memberships end: LeaveRoom, a dropped connection (the seat waits out the reconnection
//! window), the sweep that releases expired seats, an admin kick, an operator closing a room.

use std::sync::atomic::Ordering;

use super::table::{Membership, Room, Seat, SEQ_CLOSED};
use super::{refusal, RoomChange, Rooms, State, EMPTY, EXPIRED_TOKEN_MEMORY_MS};
use crate::clock::now_ms;
use crate::protocol::signal_fish::ServerMessage;
use crate::server::hub::Hub;
use crate::server::peer::PeerHandle;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

impl Rooms {
    /// Whether a new room fits under `limit` rooms among those `in_scope`. At the limit, the
    /// oldest room nobody is connected to (every seat waiting out its reconnection window, no
    /// spectator) gives way: players who dropped must not keep a game from opening rooms for
    /// the whole window.
    pub(super) fn make_room_for(
        &self,
        state: &mut State,
        hub: &Hub,
        limit: usize,
        in_scope: impl Fn(&Room) -> bool,
    ) -> bool {
        let rooms = state.rooms.values().filter(|r| in_scope(r)).count();
        if rooms < limit {
            return true;
        }
        let abandoned = state
            .rooms
            .values()
            .filter(|r| in_scope(r))
            .filter(|r| r.spectators.is_empty() && r.players.iter().all(|p| p.peer.is_none()))
            .min_by_key(|r| {
                let last_left = r.players.iter().filter_map(|p| p.disconnected_at_ms).max();
                (last_left, r.created_at_ms)
            })
            .map(|r| {
                (
                    r.code.clone(),
                    r.players.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
                )
            });
        let Some((code, players)) = abandoned else {
            return false;
        };
        for player in players {
            self.remove_player(state, hub, &code, &player);
        }
        // The room holds no seat now; anything left (an empty room never was) goes too. A join
        // refused after this still closed it: its caller takes the noted closure with
        // `Rooms::changes`.
        if let Some(room) = state.rooms.remove(&code) {
            self.forget_plan(&room.id);
            self.closed(&code, EMPTY);
        }
        rooms - 1 < limit
    }

    /// Remove a player (leave, or a seat whose window expired); closes an empty room.
    pub(super) fn remove_player(&self, state: &mut State, hub: &Hub, code: &str, player_id: &str) {
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
        let left = ServerMessage::PlayerLeft {
            player_id: player_id.to_owned(),
            epoch: departed.as_ref().map(|p| p.epoch),
            final_seq,
        };
        self.record_event(&room.id, left);
        if room.authority.as_deref() == Some(player_id) {
            room.authority = None;
            let cleared = ServerMessage::AuthorityChanged {
                authority_player: None,
                you_are_authority: false,
            };
            Self::send(hub, &audience, &cleared);
            self.record_event(&room.id, cleared);
        }
        if !room.started && !room.players.is_empty() {
            Self::send(hub, &room.audience(None), &room.lobby_changed());
            self.record_event(&room.id, room.lobby_changed());
        }
        self.plan_after_departure(hub, room);
        state.seats.retain(|_, seat| seat.player_id != player_id);
        if room.players.is_empty() && room.spectators.is_empty() {
            if let Some(room) = state.rooms.remove(code) {
                self.forget_plan(&room.id);
            }
            self.closed(code, EMPTY);
        } else {
            self.publish(room);
        }
    }

    pub fn leave(&self, hub: &Hub, peer: &PeerHandle) -> Result<RoomChange<'_>, Refusal> {
        let mut state = self.lock();
        let Some(Membership::Player { room, player_id }) = state.membership.get(&peer.id).cloned()
        else {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        };
        state.membership.remove(&peer.id);
        self.answer(hub, peer, ServerMessage::RoomLeft);
        self.remove_player(&mut state, hub, &room, &player_id);
        self.seated(&peer.id, None);
        drop(state);
        Ok(self.changes())
    }

    /// The peer's connection ended: a player's seat is held for the reconnection window, a
    /// spectator simply leaves.
    pub fn disconnected(&self, hub: &Hub, peer: &str) -> RoomChange<'_> {
        self.forget_relay(peer);
        let mut state = self.lock();
        match state.membership.remove(peer) {
            Some(Membership::Player { room, player_id }) => {
                let Some(entry) = state.rooms.get_mut(&room) else {
                    drop(state);
                    return self.changes();
                };
                if let Some(player) = entry.players.iter_mut().find(|p| p.id == player_id) {
                    player.peer = None;
                    player.disconnected_at_ms = Some(now_ms());
                    self.mark_away(&entry.id, &player_id);
                }
                self.publish(entry);
            }
            Some(Membership::Spectator { room, spectator_id }) => {
                self.remove_spectator(&mut state, hub, &room, &spectator_id, None)
            }
            None => {}
        }
        drop(state);
        self.changes()
    }

    /// Close inactive rooms; release the seats whose reconnection window passed; forget
    /// long-expired tokens.
    pub fn sweep(&self, hub: &Hub) -> RoomChange<'_> {
        self.reap_inactive(hub);
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
        let away: Vec<(String, String)> = state
            .rooms
            .values()
            .flat_map(|room| {
                room.players
                    .iter()
                    .filter(|p| p.peer.is_none())
                    .map(|p| (room.id.clone(), p.id.clone()))
            })
            .collect();
        drop(state);
        self.prune_replay(&away);
        self.changes()
    }

    /// Kick a peer out of its room (admin kick): players leave, spectators too.
    pub fn remove_peer_now(&self, hub: &Hub, peer: &str) -> RoomChange<'_> {
        self.forget_relay(peer);
        let mut state = self.lock();
        match state.membership.remove(peer) {
            Some(Membership::Player { room, player_id }) => {
                self.remove_player(&mut state, hub, &room, &player_id)
            }
            Some(Membership::Spectator { room, spectator_id }) => {
                self.remove_spectator(&mut state, hub, &room, &spectator_id, None)
            }
            None => {}
        }
        drop(state);
        self.changes()
    }
}
