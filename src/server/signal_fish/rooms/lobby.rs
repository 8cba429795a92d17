//! The lobby: PlayerReady and StartGame.

use super::table::{Membership, Room};
use super::{refusal, RoomChange, Rooms, State, RELAY_TYPE};
use crate::protocol::signal_fish::{PeerConnectionInfo, ServerMessage};
use crate::server::hub::Hub;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

impl Rooms {
    pub fn ready(&self, hub: &Hub, peer: &str) -> Result<RoomChange<'_>, Refusal> {
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
        self.record_event(&room.id, room.lobby_changed());
        self.publish(room);
        drop(state);
        Ok(self.changes())
    }

    pub fn start(&self, hub: &Hub, peer: &str) -> Result<RoomChange<'_>, Refusal> {
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
        // Finalization hands every v3 player one authoritative plan.
        self.plan_at_start(hub, room);
        self.publish(room);
        drop(state);
        Ok(self.changes())
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

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

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
        let refusal = rooms
            .authority_request(&hub, &bob.handle, true)
            .unwrap_err();
        assert_eq!(refusal.code, "AUTHORITY_DENIED");
    }
}
