//! Game data: each sender's relay (its audience's handles, its epoch and sequence counter),
//! built under the rooms lock and used without it while its room's generation holds.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;

use super::table::{Membership, Relay, SEQ_CLOSED};
use super::{refusal, Rooms, State};
use crate::protocol::game_data;
use crate::protocol::signal_fish::DeliveryClass;
use crate::server::hub::Hub;
use crate::server::peer::Priority;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

impl Rooms {
    pub(super) fn forget_relay(&self, peer: &str) {
        self.relays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    /// The sender's relay, rebuilt under the lock when room structure changed since it was
    /// built.
    pub(super) fn relay_of(&self, peer: &str) -> Result<Arc<Relay>, Refusal> {
        let cached = self
            .relays
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned();
        if let Some(relay) = cached {
            if relay.generation == relay.room_generation.load(Ordering::Acquire) {
                return Ok(relay);
            }
        }
        let state = self.lock();
        let State {
            rooms, membership, ..
        } = &*state;
        let not_in_room = || refusal(Carrier::Error, "NOT_IN_ROOM", None);
        let Some(Membership::Player { room, player_id }) = membership.get(peer) else {
            drop(state);
            self.forget_relay(peer);
            return Err(not_in_room());
        };
        let Some(room) = rooms.get(room) else {
            return Err(not_in_room());
        };
        let Some(sender) = room.players.iter().find(|p| &p.id == player_id) else {
            return Err(not_in_room());
        };
        let audience = room.audience(Some(peer));
        let relay = Arc::new(Relay {
            // Read under the rooms lock: a change bumps it only once it holds the lock and
            // has the room in hand, after this relay is in the index.
            generation: room.generation.load(Ordering::Acquire),
            room_generation: Arc::clone(&room.generation),
            player_id: sender.id.clone(),
            epoch: sender.epoch,
            seq: Arc::clone(&sender.seq),
            audience,
        });
        // Still under the rooms lock: a change that makes this relay stale bumps the
        // generation only once it holds the lock, after this insert.
        self.relays
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.to_owned(), Arc::clone(&relay));
        drop(state);
        Ok(relay)
    }

    pub fn game_data(&self, hub: &Hub, peer: &str, data: &RawValue) -> Result<(), Refusal> {
        self.game_data_with(hub, peer, data, None, None)
    }

    /// Relay game data to every other connected member, the payload spliced as sent. v3
    /// recipients get the sender's epoch and sequence number (and the delivery class it asked
    /// for); v2 recipients get the bare frame. No rooms lock is taken while the sender's relay
    /// is current; each shape is serialized at most once.
    pub fn game_data_with(
        &self,
        hub: &Hub,
        peer: &str,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if !DeliveryClass::accepts_key(class, key) {
            return Err(refusal(
                Carrier::Error,
                "INVALID_DELIVERY_CLASS",
                Some(
                    "Invalid delivery class: latest requires a key; reliable and volatile forbid one"
                        .to_owned(),
                ),
            ));
        }
        let relay = self.relay_of(peer)?;
        // A sender's frames stay in order: its connection relays one before reading the next.
        let numbered = relay.seq.fetch_add(1, Ordering::AcqRel);
        if numbered & SEQ_CLOSED != 0 {
            // The player left (or was kicked) while this frame was on its way.
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        }
        let stamp = game_data::Stamp {
            seq: numbered + 1,
            epoch: relay.epoch,
            class,
            key,
        };
        let mut v2_text: Option<Utf8Bytes> = None;
        let mut v3_text: Option<Utf8Bytes> = None;
        for member in &relay.audience {
            let text = if member.wire.v3() {
                v3_text.get_or_insert_with(|| {
                    game_data::relayed(&relay.player_id, data, Some(&stamp)).into()
                })
            } else {
                v2_text
                    .get_or_insert_with(|| game_data::relayed(&relay.player_id, data, None).into())
            };
            hub.deliver(&member.handle, text, Priority::Relay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

    /// Game data relays without the rooms lock while the sender's relay is current, and a
    /// change of room structure (a third player joining) reaches the next frame.
    #[test]
    fn game_data_does_not_wait_for_room_structure() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob, mut carol) = (peer(&hub, "a"), peer(&hub, "b"), peer(&hub, "c"));
        let (code, alice_id, _) = two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms.game_data(&hub, alice.id(), &payload("1")).unwrap();
        assert_eq!(last_of(&drain(&mut bob), "GameData")["data"]["data"], 1);

        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let held = rooms.lock();
            scope.spawn(|| {
                let relayed = rooms.game_data(&hub, alice.id(), &payload("2"));
                let _ = done_tx.send(relayed.is_ok());
            });
            let finished = done_rx.recv_timeout(std::time::Duration::from_secs(5));
            drop(held);
            assert_eq!(finished, Ok(true), "game data waited for the rooms lock");
        });
        let frame = last_of(&drain(&mut bob), "GameData");
        assert_eq!(frame["data"]["data"], 2);
        assert_eq!(frame["data"]["from_player"], alice_id.as_str());

        rooms
            .join(&hub, &v2(&carol), request(Some(&code), "Carol"))
            .unwrap();
        drain(&mut carol);
        rooms.game_data(&hub, alice.id(), &payload("3")).unwrap();
        assert_eq!(last_of(&drain(&mut carol), "GameData")["data"]["data"], 3);
        assert_eq!(last_of(&drain(&mut bob), "GameData")["data"]["data"], 3);

        rooms.leave(&hub, &bob.handle).unwrap();
        drain(&mut bob);
        rooms.game_data(&hub, alice.id(), &payload("4")).unwrap();
        assert!(drain(&mut bob).iter().all(|f| f["type"] != "GameData"));
        assert_eq!(last_of(&drain(&mut carol), "GameData")["data"]["data"], 4);
    }

    /// A join in one room leaves the relays of another room current.
    #[test]
    fn a_change_in_one_room_keeps_the_other_rooms_relays() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob) = (peer(&hub, "a"), peer(&hub, "b"));
        let (mut carol, dave) = (peer(&hub, "c"), peer(&hub, "d"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms
            .join(&hub, &v2(&carol), request(None, "Carol"))
            .unwrap();
        let code = last_of(&drain(&mut carol), "RoomJoined")["data"]["room_code"]
            .as_str()
            .unwrap()
            .to_owned();
        let relay = rooms.relay_of(alice.id()).unwrap();
        let current =
            |relay: &Relay| relay.generation == relay.room_generation.load(Ordering::Acquire);
        assert!(current(&relay));
        rooms
            .join(&hub, &v2(&dave), request(Some(&code), "Dave"))
            .unwrap();
        rooms.ready(&hub, carol.id()).unwrap();
        assert!(
            current(&relay),
            "another room's join made Alice's relay stale"
        );
        rooms.ready(&hub, bob.id()).unwrap();
        assert!(!current(&relay), "her own room changed");
    }

    /// A frame whose relay was taken before its player left is never numbered past the
    /// `final_seq` the room was told.
    #[test]
    fn a_departed_players_counter_is_closed_at_its_final_seq() {
        let hub = hub();
        let rooms = Rooms::new(SignalFishSettings::default());
        let (mut alice, mut bob) = (peer(&hub, "a"), peer(&hub, "b"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms.game_data(&hub, bob.id(), &payload("1")).unwrap();
        rooms.game_data(&hub, bob.id(), &payload("2")).unwrap();
        // What Bob's connection holds while the room changes under it.
        let in_flight = rooms.relay_of(bob.id()).unwrap();
        rooms.leave(&hub, &bob.handle).unwrap();
        assert_eq!(
            in_flight.seq.load(Ordering::Relaxed) & !SEQ_CLOSED,
            2,
            "final_seq is the last number handed out"
        );
        assert_ne!(in_flight.seq.load(Ordering::Relaxed) & SEQ_CLOSED, 0);
        assert!(rooms.game_data(&hub, bob.id(), &payload("3")).is_err());
    }

    #[test]
    fn delivery_classes_must_pair_with_keys() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        two_players(&rooms, &hub, &mut alice, &mut bob);
        let refusal = rooms
            .game_data_with(
                &hub,
                alice.id(),
                &serde_json::value::to_raw_value(&json!(1)).unwrap(),
                Some(DeliveryClass::Latest),
                None,
            )
            .unwrap_err();
        assert_eq!(refusal.code, "INVALID_DELIVERY_CLASS");
        rooms
            .game_data_with(
                &hub,
                alice.id(),
                &serde_json::value::to_raw_value(&json!(1)).unwrap(),
                Some(DeliveryClass::Latest),
                Some(4),
            )
            .unwrap();
        // Bob speaks v2: no v3 metadata reaches him.
        assert_eq!(data(&drain(&mut bob), "GameData").get("class"), None);
    }
}
