//! Correlated room operations (`room_operation_ids`): while a peer's `RoomOperation` is being
//! handled, the membership answer it gets (RoomJoined, RoomLeft, Reconnected, SpectatorJoined,
//! SpectatorLeft) travels inside a `RoomOperationResult` carrying the operation's id. Every
//! other frame the peer gets meanwhile, room traffic included, goes out as it is.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Rooms;
use crate::protocol::signal_fish::ServerMessage;
use crate::server::hub::Hub;
use crate::server::peer::PeerHandle;

/// The operation each peer's request in hand answers, by peer id. A leaf lock: taken and
/// released on its own, inside or outside the rooms lock.
#[derive(Default)]
pub(super) struct Correlations(Mutex<HashMap<String, String>>);

impl Correlations {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Rooms {
    /// The request `peer` is about to have handled is the operation `operation_id`.
    pub fn begin_operation(&self, peer: &str, operation_id: &str) {
        self.correlations
            .map()
            .insert(peer.to_owned(), operation_id.to_owned());
    }

    /// The operation of `peer` is handled; true when it was answered by a membership answer
    /// (a refusal is the caller's to correlate).
    pub fn end_operation(&self, peer: &str) -> bool {
        self.correlations.map().remove(peer).is_none()
    }

    /// Send `peer` the answer to its own membership request: correlated with the operation
    /// in hand, if any, which it then settles.
    pub(super) fn answer(&self, hub: &Hub, peer: &PeerHandle, message: ServerMessage) {
        let operation = self.correlations.map().remove(&peer.id);
        let message = match operation {
            Some(operation_id) => message.correlate(&operation_id),
            None => message,
        };
        Self::send_to(hub, peer, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

    #[test]
    fn only_the_answer_to_the_operation_in_hand_is_correlated() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        rooms.begin_operation(alice.id(), "op-alice");
        rooms
            .join(&hub, &v3(&alice), request(None, "Alice"))
            .unwrap();
        assert!(rooms.end_operation(alice.id()), "answered");
        let frames = drain(&mut alice);
        let answer = data(&frames, "RoomOperationResult");
        assert_eq!(answer["operation_id"], "op-alice");
        assert_eq!(answer["result"]["type"], "RoomJoined");
        let code = answer["result"]["data"]["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        // The lobby notice after the answer is room traffic, not the operation's.
        data(&frames, "LobbyStateChanged");

        // Bob's plain join is answered plainly, and Alice hears of it plainly.
        rooms
            .join(&hub, &v3(&bob), request(Some(&code), "Bob"))
            .unwrap();
        data(&drain(&mut bob), "RoomJoined");
        data(&drain(&mut alice), "PlayerJoined");

        rooms.begin_operation(bob.id(), "op-bob");
        rooms.leave(&hub, &bob.handle).unwrap();
        assert!(rooms.end_operation(bob.id()));
        let left = data(&drain(&mut bob), "RoomOperationResult");
        assert_eq!(
            (left["operation_id"].clone(), left["result"]["type"].clone()),
            ("op-bob".into(), "RoomLeft".into())
        );

        // A refused operation stays pending for its caller to correlate.
        rooms.begin_operation(bob.id(), "op-again");
        assert!(rooms.leave(&hub, &bob.handle).is_err());
        assert!(!rooms.end_operation(bob.id()));
    }
}
