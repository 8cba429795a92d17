//! Helpers the rooms' tests share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::catalog::Dialect;
use crate::protocol::signal_fish::GameDataFormat;
use crate::server::config::Config;
use crate::server::hub::{NewPeer, PeerLink};
use crate::server::peer::Outbound;
use serde_json::value::RawValue;

pub(super) fn hub() -> Hub {
    Hub::new(Config::demo(), "127.0.0.1:0".into(), &BTreeMap::new(), 64)
}

pub(super) fn peer(hub: &Hub, name: &str) -> PeerLink {
    let new = NewPeer {
        dialect: Dialect::SignalFish,
        app: Some("demo".into()),
        identity: Some(name.into()),
        addr: "127.0.0.1:1".into(),
        probe_nonce: None,
    };
    hub.register_peer(new, None).unwrap()
}

pub(super) fn request(room_code: Option<&str>, player_name: &str) -> JoinRequest {
    JoinRequest {
        app: "demo".into(),
        game_name: "demo".into(),
        room_code: room_code.map(str::to_owned),
        player_name: player_name.into(),
        max_players: Some(4),
        supports_authority: Some(true),
        join_only: false,
        allow_spectators: None,
        max_spectators: None,
        max_rooms_per_game: 10,
        max_rooms_per_app: 100,
    }
}

/// Every frame queued for a peer so far.
pub(super) fn drain(link: &mut PeerLink) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Ok(Outbound::Text(text)) = link.queues.outbox.try_recv() {
        frames.push(serde_json::from_str(text.as_str()).unwrap());
    }
    frames
}

pub(super) fn last_of(frames: &[Value], kind: &str) -> Value {
    frames
        .iter()
        .rev()
        .find(|f| f["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} in {frames:?}"))
}

/// Alice creates an authority room, Bob joins it; returns (code, alice id, bob id).
pub(super) fn two_players(
    rooms: &Rooms,
    hub: &Hub,
    alice: &mut PeerLink,
    bob: &mut PeerLink,
) -> (String, String, String) {
    rooms.join(hub, &v2(alice), request(None, "Alice")).unwrap();
    let joined = last_of(&drain(alice), "RoomJoined");
    let code = joined["data"]["room_code"].as_str().unwrap().to_owned();
    rooms
        .join(hub, &v2(bob), request(Some(&code), "Bob"))
        .unwrap();
    let bob_joined = last_of(&drain(bob), "RoomJoined");
    drain(alice);
    (
        code,
        joined["data"]["player_id"].as_str().unwrap().to_owned(),
        bob_joined["data"]["player_id"].as_str().unwrap().to_owned(),
    )
}

pub(super) fn payload(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

pub(super) fn data(frames: &[Value], kind: &str) -> Value {
    last_of(frames, kind)["data"].clone()
}

/// The peer as a room holds it, speaking protocol v2 (JSON game data, the relay floor).
pub(super) fn v2(link: &PeerLink) -> RoomPeer {
    negotiated(link, 2)
}

/// The peer as a room holds it, speaking protocol v3 (JSON game data, the relay floor).
pub(super) fn v3(link: &PeerLink) -> RoomPeer {
    negotiated(link, 3)
}

fn negotiated(link: &PeerLink, version: u16) -> RoomPeer {
    RoomPeer::new(
        link.handle.clone(),
        version,
        GameDataFormat::Json,
        std::sync::Arc::new(session_plan::Capabilities::relay_only(2)),
    )
}
