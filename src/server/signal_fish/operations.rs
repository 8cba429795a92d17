//! RoomOperation: the `room_operation_ids` capability as signal-fish-server 0.12 has it.
//!
//! A v3 client that names the capability in Authenticate's `requested_capabilities` is granted
//! it in ProtocolInfo's `capabilities`, and may then send its joins, leaves, reconnections and
//! spectator requests, and the room authority's moderation, as `RoomOperation`s. Each is
//! answered by one `RoomOperationResult` carrying its `operation_id`: the membership answer
//! the plain request would get, or `OperationFailed` where the plain request gets an `Error`.
//! Without the capability every `RoomOperation` is refused with a top-level `Error`
//! (INVALID_INPUT on v3, UNSUPPORTED_PROTOCOL_VERSION on v2, whose wire has no operations),
//! and nothing happens.
//!
//! In a cluster, a correlated join, spectator join or reconnection is placed as the plain one
//! (`placement.rs`); the room's node learns from the tunnel that the player was granted the
//! capability and answers with the operation's id.

use super::refusal::{Carrier, Refusal};
use super::Session;
use crate::protocol::signal_fish::{
    RoomOperationRequest, MAX_PROTOCOL_VERSION, ROOM_OPERATION_IDS,
};
use crate::server::connection::Flow;

/// 0.12's text for a `RoomOperation` from a connection that did not negotiate the capability.
const NOT_NEGOTIATED: &str = "RoomOperation requires the negotiated room_operation_ids capability";

/// Whether a session that negotiated `version` and asked for `requested` gets the
/// capability.
pub(super) fn grants_room_operation_ids(version: u16, requested: Option<&[String]>) -> bool {
    version >= MAX_PROTOCOL_VERSION
        && requested.is_some_and(|asked| asked.iter().any(|c| c == ROOM_OPERATION_IDS))
}

/// 0.12 parses operation ids as UUIDs written one way only (lowercase, hyphenated); any
/// other spelling fails to parse, as a malformed message does.
pub(super) fn canonical_operation_id(operation_id: &str) -> bool {
    uuid::Uuid::parse_str(operation_id).is_ok_and(|id| id.hyphenated().to_string() == operation_id)
}

impl Session {
    pub(super) fn room_operation(
        &mut self,
        operation_id: &str,
        operation: RoomOperationRequest,
    ) -> Flow {
        if !self.room_operation_ids {
            let code = if self.version >= MAX_PROTOCOL_VERSION {
                "INVALID_INPUT"
            } else {
                "UNSUPPORTED_PROTOCOL_VERSION"
            };
            return self.answer_refusal(&Refusal {
                carrier: Carrier::Error,
                code,
                text: Some(NOT_NEGOTIATED.to_owned()),
            });
        }
        let peer = self.peer.id.clone();
        self.rooms().begin_operation(&peer, operation_id);
        let outcome = match operation {
            RoomOperationRequest::JoinRoom(join) => self.join(join),
            RoomOperationRequest::LeaveRoom => self
                .rooms()
                .leave(self.hub(), &self.peer)
                .map(|change| self.record(change))
                .map_err(|refusal| with_text(refusal, "NOT_IN_ROOM", "Not currently in a room")),
            RoomOperationRequest::Reconnect(reconnect) => self.reconnect(reconnect),
            RoomOperationRequest::JoinAsSpectator(spectate) => self.spectate(spectate),
            RoomOperationRequest::LeaveSpectator => self
                .rooms()
                .leave_spectator(self.hub(), &self.peer)
                .map(|change| self.record(change))
                .map_err(|refusal| {
                    with_text(
                        refusal,
                        "NOT_A_SPECTATOR",
                        "You are not currently spectating a room",
                    )
                }),
            moderation => {
                let change =
                    self.rooms()
                        .room_operation(self.hub(), &self.peer, operation_id, &moderation);
                self.record(change);
                Ok(())
            }
        };
        self.rooms().end_operation(&peer);
        match outcome {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.answer_operation_refusal(operation_id, &refusal),
        }
    }

    /// A refused operation, answered inside its `RoomOperationResult`.
    pub(super) fn answer_operation_refusal(
        &mut self,
        operation_id: &str,
        refusal: &Refusal,
    ) -> Flow {
        if !self.charge_reply() {
            return self.budget_spent();
        }
        self.hub().send_error(
            &self.peer,
            refusal.code,
            None,
            refusal.correlated(operation_id).text(),
        );
        Flow::Continue
    }
}

/// A correlated refusal in 0.12's words where they differ from the plain request's.
fn with_text(refusal: Refusal, code: &str, text: &str) -> Refusal {
    if refusal.code == code && refusal.text.is_none() {
        Refusal {
            text: Some(text.to_owned()),
            ..refusal
        }
    } else {
        refusal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capability_is_for_v3_sessions_that_ask_for_it() {
        let asked = vec!["other".to_owned(), ROOM_OPERATION_IDS.to_owned()];
        assert!(grants_room_operation_ids(3, Some(&asked)));
        assert!(!grants_room_operation_ids(2, Some(&asked)));
        assert!(!grants_room_operation_ids(3, Some(&asked[..1])));
        assert!(!grants_room_operation_ids(3, None));
    }

    #[test]
    fn operation_ids_are_lowercase_hyphenated_uuids() {
        assert!(canonical_operation_id(
            "6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234"
        ));
        for other in [
            "6F1C2A8E-2B7D-4C1E-9A0B-3D5E7F901234",
            "6f1c2a8e2b7d4c1e9a0b3d5e7f901234",
            "{6f1c2a8e-2b7d-4c1e-9a0b-3d5e7f901234}",
            "op-1",
            "",
        ] {
            assert!(!canonical_operation_id(other), "{other}");
        }
    }
}
