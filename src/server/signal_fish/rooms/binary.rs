//! Binary game data: a MessagePack sender's frames relayed to every other member in the form
//! its own format requires (the format its Authenticate negotiated, held on its
//! [`RoomPeer`](super::RoomPeer)), as 0.12 does.
//!
//! A MessagePack member gets the binary envelope around the sender's bytes, never re-encoded
//! (v3: stamped with the sender's sequence number and epoch, shared with its text game data;
//! v2: without). A JSON member gets a `GameData` text frame of the payload decoded to JSON,
//! stamped the same way; a payload JSON cannot hold (too deep, malformed, bins) reaches no JSON
//! member. Text game data reaches every member as text, whatever it negotiated.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde_json::value::RawValue;

use super::table::SEQ_CLOSED;
use super::{refusal, Rooms};
use crate::protocol::game_data;
use crate::protocol::signal_fish::GameDataFormat;
use crate::server::hub::Hub;
use crate::server::peer::Priority;
use crate::server::signal_fish::msgpack;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

impl Rooms {
    /// Relay one binary frame of a MessagePack sender to every other connected member.
    pub fn binary_game_data(&self, hub: &Hub, peer: &str, payload: &[u8]) -> Result<(), Refusal> {
        let relay = self.relay_of(peer).map_err(|_| {
            refusal(
                Carrier::Error,
                "NOT_IN_ROOM",
                Some("Not in a room".to_owned()),
            )
        })?;
        let numbered = relay.seq.fetch_add(1, Ordering::AcqRel);
        if numbered & SEQ_CLOSED != 0 {
            return Err(refusal(Carrier::Error, "NOT_IN_ROOM", None));
        }
        let stamp = (numbered + 1, relay.epoch);
        let from = relay.player_id.as_str();
        let shown = || Utf8Bytes::from(msgpack::describe(payload));
        let (mut binary_v2, mut binary_v3): (Option<Option<Bytes>>, Option<Option<Bytes>>) =
            (None, None);
        let mut decoded: Option<Option<Box<RawValue>>> = None;
        let (mut text_v2, mut text_v3): (Option<Utf8Bytes>, Option<Utf8Bytes>) = (None, None);
        for member in &relay.audience {
            let (handle, v3) = (&member.handle, member.wire.v3());
            if member.format == GameDataFormat::MessagePack {
                let slot = if v3 { &mut binary_v3 } else { &mut binary_v2 };
                let frame = slot.get_or_insert_with(|| {
                    msgpack::envelope(from, payload, v3.then_some(stamp)).map(Bytes::from)
                });
                if let Some(frame) = frame {
                    hub.deliver_binary(handle, frame, Priority::Relay, shown);
                }
                continue;
            }
            let Some(data) = decoded
                .get_or_insert_with(|| {
                    let value = msgpack::to_json(payload).ok()?;
                    serde_json::value::to_raw_value(&value).ok()
                })
                .as_deref()
            else {
                continue;
            };
            let text = if v3 {
                text_v3.get_or_insert_with(|| {
                    let stamp = game_data::Stamp {
                        seq: stamp.0,
                        epoch: stamp.1,
                        class: None,
                        key: None,
                    };
                    game_data::relayed(from, data, Some(&stamp)).into()
                })
            } else {
                text_v2.get_or_insert_with(|| game_data::relayed(from, data, None).into())
            };
            hub.deliver(handle, text, Priority::Relay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::session_plan::Capabilities;
    use super::super::test_support::*;
    use super::super::RoomPeer;
    use super::*;
    use crate::server::config::SignalFishSettings;
    use crate::server::hub::PeerLink;
    use crate::server::peer::Outbound;

    fn message_pack(link: &PeerLink, version: u16) -> RoomPeer {
        RoomPeer::new(
            link.handle.clone(),
            version,
            GameDataFormat::MessagePack,
            Arc::new(Capabilities::relay_only(2)),
        )
    }

    fn binary_frames(link: &mut PeerLink) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Ok(frame) = link.queues.outbox.try_recv() {
            if let Outbound::Binary(bytes) = frame {
                frames.push(bytes);
            }
        }
        frames
    }

    /// Each member gets the frame its own negotiation asks for, read from its record.
    #[test]
    fn a_binary_frame_reaches_each_member_in_its_own_format_and_version() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob, mut carol) =
            (peer(&hub, "Alice"), peer(&hub, "Bob"), peer(&hub, "Carol"));
        rooms
            .join(&hub, &message_pack(&alice, 3), request(None, "Alice"))
            .unwrap();
        let joined = data(&drain(&mut alice), "RoomJoined");
        let (code, alice_id) = (
            joined["room_code"].as_str().unwrap().to_owned(),
            joined["player_id"].as_str().unwrap().to_owned(),
        );
        rooms
            .join(&hub, &message_pack(&bob, 2), request(Some(&code), "Bob"))
            .unwrap();
        rooms
            .join(&hub, &v3(&carol), request(Some(&code), "Carol"))
            .unwrap();
        drain(&mut alice);
        drain(&mut bob);
        drain(&mut carol);

        let payload = [0x81, 0xa1, b'n', 0x01];
        rooms.binary_game_data(&hub, alice.id(), &payload).unwrap();

        let to_bob = binary_frames(&mut bob);
        let expected = msgpack::envelope(&alice_id, &payload, None).unwrap();
        assert_eq!(
            to_bob,
            [Bytes::from(expected)],
            "v2 MessagePack: the bare envelope"
        );
        let to_carol = data(&drain(&mut carol), "GameData");
        assert_eq!(
            to_carol,
            json!({"from_player": alice_id, "data": {"n": 1}, "seq": 1, "epoch": 1})
        );
        assert!(
            binary_frames(&mut alice).is_empty(),
            "not back to the sender"
        );
    }
}
