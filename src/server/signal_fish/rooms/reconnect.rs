//! Reconnect: a player takes its seat back with the token it was given, within the window.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::replay;
use super::table::{new_id, Membership, Seat};
use super::{refusal, RoomChange, RoomPeer, Rooms, RELAY_TYPE};
use crate::protocol::signal_fish::{Reconnected, SenderWatermark, ServerMessage};
use crate::server::hub::{Hub, RoomEvent};
use crate::server::signal_fish::refusal::{Carrier, Refusal};

/// Why a Reconnect into a room that is gone fails, whether an operator closed it or it went
/// some other way: the client can do the same thing about either (join again).
const ROOM_CLOSED: &str = "The room was closed";

impl Rooms {
    pub fn reconnect(
        &self,
        hub: &Hub,
        member: &RoomPeer,
        player_id: &str,
        room_id: &str,
        token: &str,
        banned: impl Fn(&str) -> bool,
    ) -> Result<RoomChange<'_>, Refusal> {
        let peer = member.id();
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
                Some(ROOM_CLOSED.to_owned()),
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
                Some(ROOM_CLOSED.to_owned()),
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
        player.peer = Some(member.clone());
        player.disconnected_at_ms = None;
        // A new membership incarnation: v3 clients restart this sender's numbering.
        player.epoch += 1;
        // A fresh counter: a relay still holding the old one counts for the old epoch only.
        player.seq = Arc::new(AtomicU64::new(0));
        let epoch = player.epoch;
        let wire = member.wire;
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
        let (missed, replay) = self.missed_events(player_id, wire.v3(), room.authority.as_deref());
        let missed_events = missed
            .iter()
            .filter_map(|event| serde_json::to_value(event).ok())
            .collect();
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
            missed_events,
            replay: wire.v3().then_some(replay),
            sender_watermarks: watermarks,
            reconnection_token: wire.shows_token().then(|| new_token.clone()),
        }));
        self.answer(hub, &member.handle, reconnected);
        let returning = room.players.iter().find(|p| p.id == player_id);
        let audience = room.audience(Some(peer));
        self.send_shaped(hub, &audience, |v3| ServerMessage::PlayerReconnected {
            player_id: player_id.to_owned(),
            epoch: v3.then_some(epoch),
            player: returning
                .filter(|_| v3)
                .map(|p| Box::new(room.player_info(p, true))),
        });
        if let Some(returning) = room.players.iter().find(|p| p.id == player_id) {
            let back = ServerMessage::PlayerReconnected {
                player_id: player_id.to_owned(),
                epoch: Some(epoch),
                player: Some(Box::new(replay::kept_info(room, returning))),
            };
            self.record_event(&room.id, back);
        }
        // A running session takes the player back in: fresh plans for every member.
        self.plan_after_join(hub, room, player_id);
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
        // The same player as before: an identity ban made later finds this connection too.
        self.note(RoomEvent::Seated {
            peer: peer.to_owned(),
            room: Some(code),
            identity: Some(name),
        });
        self.publish(&snapshot);
        drop(state);
        Ok(self.changes())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

    #[test]
    fn a_v3_reconnect_starts_a_new_epoch_and_rotates_the_token() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        rooms
            .join(&hub, &v3(&alice), request(None, "Alice"))
            .unwrap();
        let code = data(&drain(&mut alice), "RoomJoined")["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        rooms
            .join(&hub, &v3(&bob), request(Some(&code), "Bob"))
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
        // While Bob is away, Carol joins and Alice readies up: Bob's Reconnected replays both.
        let carol = peer(&hub, "Carol");
        rooms
            .join(&hub, &v2(&carol), request(Some(&code), "Carol"))
            .unwrap();
        rooms.ready(&hub, alice.id()).unwrap();
        drain(&mut alice);

        let mut again = peer(&hub, "Bob");
        rooms
            .reconnect(&hub, &v3(&again), &player, &room, &token, |_| false)
            .unwrap();
        let back = data(&drain(&mut again), "Reconnected");
        assert_eq!(back["replay"], "complete");
        let missed: Vec<&Value> = back["missed_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["type"])
            .collect();
        assert_eq!(missed, ["PlayerJoined", "LobbyStateChanged"]);
        let carol_joined = &back["missed_events"][0]["data"]["player"];
        assert_eq!(carol_joined["name"], "Carol");
        assert!(carol_joined.get("connected_at").is_none(), "v3 shape");
        let rotated = back["reconnection_token"].as_str().unwrap();
        assert_ne!(rotated, token);
        let watermarks = back["sender_watermarks"].as_array().unwrap();
        assert_eq!(watermarks.len(), 3, "one per roster entry");
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
            .reconnect(
                &hub,
                &v2(&peer(&hub, "Eve")),
                &player,
                &room,
                &token,
                |_| false,
            )
            .unwrap_err();
        assert_eq!(refusal.code, "RECONNECTION_TOKEN_INVALID", "a spent token");
    }
}
