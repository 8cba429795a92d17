//! JoinRoom: the checks in signal-fish-server 0.12's order, then a seat in an existing room
//! or a new room.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::replay;
use super::table::{new_id, room_code, timestamp, valid_room_code, Membership, Player, Room, Seat};
use super::{
    refusal, JoinOptions, JoinRequest, RoomChange, RoomPeer, Rooms, DEFAULT_MAX_PLAYERS,
    MAX_PLAYERS_LIMIT, RELAY_TYPE,
};
use crate::clock::now_ms;
use crate::protocol::signal_fish::{RoomJoined, ServerMessage, MAX_ROOM_PASSWORD_BYTES};
use crate::server::hub::Hub;
use crate::server::signal_fish::refusal::{player_name_problem, Carrier, Refusal};

impl Rooms {
    pub fn join(
        &self,
        hub: &Hub,
        member: &RoomPeer,
        request: JoinRequest,
    ) -> Result<RoomChange<'_>, Refusal> {
        self.join_with(hub, member, request, JoinOptions::default())
    }

    /// JoinRoom, checked in signal-fish-server 0.12's order: names, player count, join_only,
    /// password shape, membership, room code; then, for an existing room, password, ban,
    /// state and capacity. A well-formed code that names no room creates that room unless the
    /// client asked for `join_only`.
    pub fn join_with(
        &self,
        hub: &Hub,
        member: &RoomPeer,
        request: JoinRequest,
        options: JoinOptions,
    ) -> Result<RoomChange<'_>, Refusal> {
        let (peer, wire) = (member.id(), member.wire);
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
        if let Some(problem) = player_name_problem(&request.player_name) {
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
            peer: Some(member.clone()),
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
                if room.players.len() >= room.max_players as usize {
                    return Err(refusal(Carrier::RoomJoinFailed, "ROOM_FULL", None));
                }
                // A running game takes seat-fills that can run its session, as 0.12 does.
                self.admits_late_joiner(room, member)?;
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
                let (app, game) = (request.app.as_str(), request.game_name.as_str());
                if !self.make_room_for(&mut state, hub, request.max_rooms_per_game, |r| {
                    r.app == app && r.game == game
                }) {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "MAX_ROOMS_PER_GAME_EXCEEDED",
                        None,
                    ));
                }
                if !self.make_room_for(&mut state, hub, request.max_rooms_per_app, |r| r.app == app)
                {
                    return Err(refusal(
                        Carrier::RoomJoinFailed,
                        "MAX_ROOMS_PER_GAME_EXCEEDED",
                        Some(
                            "The maximum number of rooms for this app has been reached.".to_owned(),
                        ),
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
        self.answer(hub, &member.handle, joined);
        // The room leaves "waiting" as soon as its creator is in (as the real server reports).
        room.opened = true;
        if creating {
            Self::send_to(hub, &member.handle, &room.lobby_changed());
        } else if let Some(joiner) = room.players.iter().find(|p| p.id == player_id) {
            let audience = room.audience(Some(peer));
            self.send_shaped(hub, &audience, |v3| ServerMessage::PlayerJoined {
                player: room.player_info(joiner, v3),
            });
            let kept = replay::kept_info(room, joiner);
            self.record_event(&room.id, ServerMessage::PlayerJoined { player: kept });
            self.plan_after_join(hub, room, &player_id);
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
        self.seated(peer, Some(code));
        self.publish(&snapshot);
        drop(state);
        Ok(self.changes())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;
    use crate::server::hub::RoomEvent;

    #[test]
    fn a_game_at_its_room_limit_gives_way_only_to_rooms_nobody_is_connected_to() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let limited = |name: &str| JoinRequest {
            max_rooms_per_game: 2,
            ..request(None, name)
        };
        let mut alice = peer(&hub, "alice");
        let bob = peer(&hub, "bob");
        let mut carol = peer(&hub, "carol");
        // Admins see the rooms as their changes are recorded.
        let joined = rooms.join(&hub, &v2(&alice), limited("Alice")).unwrap();
        hub.record_rooms(joined.events());
        drop(joined);
        let first = last_of(&drain(&mut alice), "RoomJoined")["data"]["room_code"].clone();
        hub.record_rooms(
            rooms
                .join(&hub, &v2(&bob), limited("Bob"))
                .unwrap()
                .events(),
        );
        // Both rooms have a connected player: the third is refused.
        let refused = rooms.join(&hub, &v2(&carol), limited("Carol")).unwrap_err();
        assert_eq!(refused.code, "MAX_ROOMS_PER_GAME_EXCEEDED");
        // Alice drops: her seat waits out the reconnection window, but her room no longer
        // holds a place against a player who is here.
        hub.record_rooms(rooms.disconnected(&hub, alice.id()).events());
        let joined = rooms.join(&hub, &v2(&carol), limited("Carol")).unwrap();
        hub.record_rooms(joined.events());
        drop(joined);
        drain(&mut carol);
        let (_, snapshot, _) = hub.subscribe();
        let codes: Vec<String> = snapshot.rooms.iter().map(|r| r.code.clone()).collect();
        assert_eq!(codes.len(), 2, "{codes:?}");
        assert!(!codes.iter().any(|c| *c == first), "{codes:?}");
    }

    /// A join refused for the app's limit after an abandoned room of its game gave way
    /// still closed that room: the change waits for its caller to take it.
    #[test]
    fn a_room_that_gave_way_to_a_refused_join_is_still_reported_closed() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut carol, dave) = (peer(&hub, "a"), peer(&hub, "c"), peer(&hub, "d"));
        drop(
            rooms
                .join(&hub, &v2(&alice), request(None, "Alice"))
                .unwrap(),
        );
        let abandoned = data(&drain(&mut alice), "RoomJoined")["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        drop(rooms.disconnected(&hub, alice.id()));
        let elsewhere = JoinRequest {
            game_name: "other".into(),
            ..request(None, "Carol")
        };
        drop(rooms.join(&hub, &v2(&carol), elsewhere).unwrap());
        drain(&mut carol);
        let tight = JoinRequest {
            max_rooms_per_game: 1,
            max_rooms_per_app: 1,
            ..request(None, "Dave")
        };
        let refused = rooms.join(&hub, &v2(&dave), tight).unwrap_err();
        assert_eq!(refused.code, "MAX_ROOMS_PER_GAME_EXCEEDED");
        assert!(rooms.changes().events().contains(&RoomEvent::Closed {
            code: abandoned,
            reason: "empty".to_owned()
        }));
    }

    #[test]
    fn an_app_holds_no_more_rooms_than_connections_whatever_its_game_names() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let mut players: Vec<_> = (0..3).map(|n| peer(&hub, &format!("p{n}"))).collect();
        for (n, player) in players.iter_mut().enumerate() {
            let request = JoinRequest {
                game_name: format!("game-{n}"),
                max_rooms_per_app: 2,
                ..request(None, &format!("P{n}"))
            };
            let joined = rooms.join(&hub, &v2(player), request);
            if n < 2 {
                joined.unwrap();
            } else {
                let refused = joined.unwrap_err();
                assert_eq!(refused.code, "MAX_ROOMS_PER_GAME_EXCEEDED");
                assert!(refused.text.unwrap().contains("for this app"));
            }
        }
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
    fn joins_follow_upstream_rules_for_codes_authority_and_player_counts() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let mut alice = peer(&hub, "Alice");
        let refused = |req: JoinRequest| rooms.join(&hub, &v2(&alice), req).unwrap_err();
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
        rooms.join(&hub, &v2(&alice), req).unwrap();
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
            .join_with(&hub, &v2(&alice), request(None, "Alice"), sealed("pw"))
            .unwrap();
        let code = data(&drain(&mut alice), "RoomJoined")["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        for options in [JoinOptions::default(), sealed("PW")] {
            let refusal = rooms
                .join_with(&hub, &v2(&bob), request(Some(&code), "Bob"), options)
                .unwrap_err();
            assert_eq!(
                (refusal.carrier, refusal.code),
                (Carrier::RoomJoinFailed, "PASSWORD_REQUIRED")
            );
        }
        let refusal = rooms
            .join_with(&hub, &v2(&bob), request(Some(&code), "Bob"), sealed(""))
            .unwrap_err();
        assert_eq!(
            refusal.code, "INVALID_INPUT",
            "an empty password is malformed"
        );
        rooms
            .join_with(&hub, &v2(&bob), request(Some(&code), "Bob"), sealed("pw"))
            .unwrap();
        // A password sent to an open room gets the same answer as a wrong one.
        rooms
            .join(&hub, &v2(&carol), request(Some("PQRS23"), "Carol"))
            .unwrap();
        let refusal = rooms
            .join_with(
                &hub,
                &v2(&peer(&hub, "Dan")),
                request(Some("PQRS23"), "Dan"),
                sealed("pw"),
            )
            .unwrap_err();
        assert_eq!(refusal.code, "PASSWORD_REQUIRED");
    }
}
