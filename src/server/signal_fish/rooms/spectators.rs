//! Spectators: JoinAsSpectator and LeaveSpectator.

use super::table::{new_id, timestamp, Membership, Spectator};
use super::{refusal, RoomChange, RoomPeer, Rooms, State, EMPTY};
use crate::protocol::signal_fish::{ServerMessage, SpectatorInfo, SpectatorJoined};
use crate::server::hub::Hub;
use crate::server::peer::PeerHandle;
use crate::server::signal_fish::refusal::{player_name_problem, Carrier, Refusal};

impl Rooms {
    pub fn spectate(
        &self,
        hub: &Hub,
        member: &RoomPeer,
        app: &str,
        game: &str,
        code: &str,
        name: &str,
    ) -> Result<RoomChange<'_>, Refusal> {
        let peer = member.id();
        let mut state = self.lock();
        if state.membership.contains_key(peer) {
            return Err(refusal(
                Carrier::SpectatorJoinFailed,
                "SPECTATOR_JOIN_FAILED",
                Some("Leave your current room before spectating".to_owned()),
            ));
        }
        if let Some(problem) = player_name_problem(name) {
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
            peer: member.clone(),
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
            current_players: room.player_infos(member.wire.v3()),
            current_spectators: room.spectator_infos(),
            lobby_state: room.lobby_state().to_owned(),
            reason: "joined".to_owned(),
        }));
        self.answer(hub, &member.handle, joined);
        let arrived = ServerMessage::NewSpectatorJoined {
            spectator: info,
            current_spectators: room.spectator_infos(),
            reason: "joined".to_owned(),
        };
        Self::send(hub, &audience, &arrived);
        self.record_event(&room.id, arrived);
        let snapshot = room.clone();
        state.membership.insert(
            peer.to_owned(),
            Membership::Spectator {
                room: code.to_owned(),
                spectator_id: spectator.id,
            },
        );
        self.seated(peer, Some(code.to_owned()));
        self.publish(&snapshot);
        drop(state);
        Ok(self.changes())
    }

    pub fn leave_spectator(&self, hub: &Hub, peer: &PeerHandle) -> Result<RoomChange<'_>, Refusal> {
        let mut state = self.lock();
        let Some(Membership::Spectator { room, spectator_id }) =
            state.membership.get(&peer.id).cloned()
        else {
            return Err(refusal(Carrier::Error, "NOT_A_SPECTATOR", None));
        };
        state.membership.remove(&peer.id);
        self.remove_spectator(&mut state, hub, &room, &spectator_id, Some(peer));
        self.seated(&peer.id, None);
        drop(state);
        Ok(self.changes())
    }

    pub(super) fn remove_spectator(
        &self,
        state: &mut State,
        hub: &Hub,
        code: &str,
        spectator_id: &str,
        told: Option<&PeerHandle>,
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
            self.answer(hub, peer, left);
        }
        let disconnected = ServerMessage::SpectatorDisconnected {
            spectator_id: spectator_id.to_owned(),
            reason: reason.to_owned(),
            current_spectators: room.spectator_infos(),
        };
        Self::send(hub, &room.audience(None), &disconnected);
        self.record_event(&room.id, disconnected);
        if room.is_empty() {
            state.rooms.remove(code);
            self.closed(code, EMPTY);
        } else {
            self.publish(room);
        }
    }
}
