//! Authority and moderation: AuthorityRequest, the v3 RoomOperation moderation, and the
//! admin's room commands.

use super::table::{room_code, Membership, Room};
use super::{refusal, RoomChange, RoomPeer, Rooms};
use crate::catalog::Dialect;
use crate::clock::now_ms;
use crate::protocol::signal_fish::{
    RoomOperationRequest, RoomOperationResult, ServerMessage, MAX_ROOM_PASSWORD_BYTES,
};
use crate::server::hub::Hub;
use crate::server::peer::PeerHandle;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

impl Rooms {
    pub fn authority_request(
        &self,
        hub: &Hub,
        peer: &PeerHandle,
        become_authority: bool,
    ) -> Result<RoomChange<'_>, Refusal> {
        let mut state = self.lock();
        let (code, player_id) = match state.membership.get(&peer.id) {
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
        Self::send_to(
            hub,
            peer,
            &ServerMessage::AuthorityResponse {
                granted: true,
                reason: None,
                error_code: None,
            },
        );
        if room.authority != holder {
            self.announce_authority(hub, room);
        }
        self.publish(room);
        drop(state);
        Ok(self.changes())
    }

    /// AuthorityChanged differs for the holder (`you_are_authority`); two frames, each
    /// serialized once.
    pub(super) fn announce_authority(&self, hub: &Hub, room: &Room) {
        let holder_peer = room
            .authority
            .as_ref()
            .and_then(|id| room.players.iter().find(|p| &p.id == id))
            .and_then(|p| p.peer.clone());
        let others = room.audience(holder_peer.as_ref().map(RoomPeer::id));
        let changed = ServerMessage::AuthorityChanged {
            authority_player: room.authority.clone(),
            you_are_authority: false,
        };
        Self::send(hub, &others, &changed);
        self.record_event(&room.id, changed);
        if let Some(holder) = holder_peer {
            Self::send_to(
                hub,
                &holder.handle,
                &ServerMessage::AuthorityChanged {
                    authority_player: room.authority.clone(),
                    you_are_authority: true,
                },
            );
        }
    }

    /// A v3 `RoomOperation` from the room's authority: kick, ban, unban, authority transfer,
    /// access and code changes. Every outcome, refusals included, goes back to `peer` as a
    /// `RoomOperationResult` carrying `operation_id`.
    pub fn room_operation(
        &self,
        hub: &Hub,
        peer: &PeerHandle,
        operation_id: &str,
        operation: &RoomOperationRequest,
    ) -> RoomChange<'_> {
        let (result, failed) = match self.moderate(hub, &peer.id, operation) {
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
            Some(code) => hub.send_error(peer, code, None, answer.text()),
            None => Self::send_to(hub, peer, &answer),
        }
        self.changes()
    }

    pub(super) fn moderate(
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
                    room.banned
                        .extend(victim.peer.as_ref().map(|peer| peer.id().to_owned()));
                }
                if let Some(victim_peer) = &victim.peer {
                    state.membership.remove(victim_peer.id());
                    let notice = ServerMessage::Error {
                        message: "You were removed from the room by its authority player."
                            .to_owned(),
                        error_code: "KICKED".to_owned(),
                    };
                    hub.send_error(&victim_peer.handle, "KICKED", None, notice.text());
                    hub.close_peer(&victim_peer.handle, 4007, "kicked");
                    self.seated(victim_peer.id(), None);
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
                self.announce_authority(hub, room);
                self.publish(room);
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
                for member in &members {
                    self.seated(member.id(), Some(fresh.clone()));
                }
                self.closed(&code, &format!("renamed to {fresh}"));
                self.publish(&moved);
                state.rooms.insert(fresh.clone(), moved);
                Ok(RoomOperationResult::RoomCodeRegenerated { room_code: fresh })
            }
            RoomOperationRequest::JoinRoom(_)
            | RoomOperationRequest::LeaveRoom
            | RoomOperationRequest::Reconnect(_)
            | RoomOperationRequest::JoinAsSpectator(_)
            // The session hands membership operations to their own handlers; one reaching
            // moderation is refused rather than half-done.
            | RoomOperationRequest::LeaveSpectator => {
                Err(("Not a moderation operation", "INVALID_INPUT"))
            }
        }
    }
}

/// The admin's room commands: what was done, for the audit log, and the change to record.
impl Rooms {
    pub fn close_room(&self, hub: &Hub, code: &str) -> Result<(String, RoomChange<'_>), String> {
        let mut state = self.lock();
        let room = state
            .rooms
            .remove(code)
            .ok_or_else(|| format!("no room {code}"))?;
        let members = room.audience(None);
        state
            .membership
            .retain(|peer, _| !members.iter().any(|member| member.id() == peer));
        let now = now_ms();
        for seat in state
            .seats
            .values_mut()
            .filter(|seat| seat.room_code == code)
        {
            seat.room_closed_at_ms = Some(now);
        }
        drop(state);
        self.forget_plan(&room.id);
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
        for member in &members {
            self.seated(member.id(), None);
        }
        self.closed(code, "closed by an operator");
        let done = format!("room {code} closed; {} members removed", members.len());
        Ok((done, self.changes()))
    }

    pub fn transfer_authority(
        &self,
        hub: &Hub,
        code: &str,
        player_id: &str,
    ) -> Result<(String, RoomChange<'_>), String> {
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
        self.announce_authority(hub, room);
        self.publish(room);
        drop(state);
        let done = format!("{name} ({player_id}) now holds authority in {code}");
        Ok((done, self.changes()))
    }

    pub fn revoke_authority(
        &self,
        hub: &Hub,
        code: &str,
    ) -> Result<(String, RoomChange<'_>), String> {
        let mut state = self.lock();
        let room = state
            .rooms
            .get_mut(code)
            .ok_or_else(|| format!("no room {code}"))?;
        if room.authority.take().is_none() {
            return Err(format!("nobody holds authority in {code}"));
        }
        self.announce_authority(hub, room);
        self.publish(room);
        drop(state);
        Ok((format!("authority in {code} revoked"), self.changes()))
    }
}

#[cfg(test)]
mod tests {
    use crate::server::hub::PeerLink;

    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

    #[test]
    fn authority_claims_follow_the_real_server() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        for claimant in [&bob.handle, &alice.handle] {
            let refusal = rooms.authority_request(&hub, claimant, true).unwrap_err();
            assert_eq!(refusal.code, "AUTHORITY_CONFLICT");
            assert_eq!(refusal.carrier, Carrier::AuthorityResponse);
        }
        // Released by its holder, authority goes to the next claimant.
        rooms.authority_request(&hub, &alice.handle, false).unwrap();
        rooms.authority_request(&hub, &bob.handle, true).unwrap();
        let changed = last_of(&drain(&mut bob), "AuthorityChanged");
        assert_eq!(changed["data"]["you_are_authority"], true);
    }

    #[test]
    fn the_authority_kicks_bans_and_transfers_by_room_operation() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        let (code, alice_id, bob_id) = two_players(&rooms, &hub, &mut alice, &mut bob);
        let operate = |peer: &PeerHandle, op: RoomOperationRequest| {
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

        operate(&bob.handle, kick(&alice_id));
        assert_eq!(
            outcome(&mut bob)["data"]["error_code"],
            "NOT_ROOM_AUTHORITY"
        );
        operate(&alice.handle, kick("nobody"));
        assert_eq!(
            outcome(&mut alice)["data"]["error_code"],
            "KICK_TARGET_NOT_FOUND"
        );
        operate(&alice.handle, kick(&alice_id));
        assert_eq!(outcome(&mut alice)["data"]["error_code"], "INVALID_INPUT");
        operate(
            &alice.handle,
            RoomOperationRequest::TransferAuthority {
                player_id: "nobody".into(),
            },
        );
        assert_eq!(
            outcome(&mut alice)["data"]["error_code"],
            "TRANSFER_TARGET_NOT_FOUND"
        );

        operate(
            &alice.handle,
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
            &bob.handle,
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
            .join(&hub, &v2(&alice), request(Some(&code), "Alice"))
            .unwrap_err();
        assert_eq!(refusal.code, "BANNED");
    }
}
