//! The real Signal Fish client SDK (`signal-fish-client` 0.14) beyond the relay floor, on
//! `/v2/ws` and `/v3/ws`: mesh games whose players exchange WebRTC offers, answers and ICE
//! candidates through the server, and MessagePack games whose players exchange binary game
//! data beside a JSON player; and a reconnection replaying what the player missed. Any
//! `DecodeFailed` or `ProtocolViolation` event fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sdk::Sdk;
use common::*;
use relaydeck::protocol::admin::{Command, Direction, RecordedFrame};
use serde_json::{json, Value};
use signal_fish_client::{
    GameDataEncoding, JoinRoomParams, PeerSignal, PlayerId, ProtocolViolationPolicy, ReplayStatus,
    SignalFishClient, SignalFishConfig, SignalFishEvent, Topology, TransportKind,
    WebSocketTransport,
};

const GAME: &str = "mesh-game";

/// What a SessionPlan event said, as far as these tests look.
#[derive(Debug, Clone)]
struct Plan {
    topology: Topology,
    transport: TransportKind,
    host: Option<PlayerId>,
    peers: Vec<(PlayerId, bool)>,
}

impl Sdk {
    async fn ready(
        server: &TestServer,
        path: &str,
        config: SignalFishConfig,
        label: &'static str,
    ) -> Sdk {
        let config = config.with_protocol_violation_policy(ProtocolViolationPolicy::Quarantine);
        let transport = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            WebSocketTransport::connect(&server.url(path)),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        let (client, events) = SignalFishClient::start(transport, config);
        let mut sdk = Sdk {
            client,
            events,
            label,
        };
        sdk.until("ProtocolInfo", |e| {
            matches!(e, SignalFishEvent::ProtocolInfo(_)).then_some(())
        })
        .await;
        sdk
    }

    async fn mesh(server: &TestServer, path: &str, label: &'static str) -> Sdk {
        Sdk::ready(
            server,
            path,
            SignalFishConfig::new("demo").enable_mesh(),
            label,
        )
        .await
    }

    async fn join(&mut self, params: JoinRoomParams) -> (PlayerId, String) {
        self.client.join_room(params).unwrap();
        self.until("RoomJoined", |e| match e {
            SignalFishEvent::RoomJoined {
                player_id,
                room_code,
                ..
            } => Some((*player_id, room_code.clone())),
            SignalFishEvent::RoomJoinFailed { reason, error_code } => {
                panic!("join refused: {reason} {error_code:?}")
            }
            _ => None,
        })
        .await
    }

    async fn plan(&mut self) -> Plan {
        self.until("SessionPlan", |e| match e {
            SignalFishEvent::SessionPlan {
                topology,
                transport,
                host,
                peers,
                ..
            } => Some(Plan {
                topology: *topology,
                transport: *transport,
                host: *host,
                peers: peers.iter().map(|p| (p.player_id, p.initiate)).collect(),
            }),
            _ => None,
        })
        .await
    }

    async fn signal(&mut self) -> (PlayerId, PeerSignal) {
        self.until("SignalReceived", |e| match e {
            SignalFishEvent::SignalReceived { from, signal, .. } => {
                Some((*from, PeerSignal::try_from(signal).expect("a typed signal")))
            }
            _ => None,
        })
        .await
    }

    async fn ready_up(&mut self) {
        self.client.set_ready().unwrap();
    }

    async fn all_ready(&mut self) {
        self.until("all ready", |e| match e {
            SignalFishEvent::LobbyStateChanged {
                all_ready: true, ..
            } => Some(()),
            _ => None,
        })
        .await;
    }
}

fn room(name: &str) -> JoinRoomParams {
    JoinRoomParams::new(GAME, name)
        .with_max_players(4)
        .with_supports_authority(true)
}

#[tokio::test]
async fn a_mesh_game_on_v2_ws_plans_signals_welcomes_a_late_joiner_and_lets_one_leave() {
    mesh_game("/v2/ws").await;
}

#[tokio::test]
async fn a_mesh_game_on_v3_ws_plans_signals_welcomes_a_late_joiner_and_lets_one_leave() {
    mesh_game("/v3/ws").await;
}

async fn mesh_game(path: &str) {
    let server = TestServer::demo().await;
    let mut alice = Sdk::mesh(&server, path, "alice").await;
    let mut bob = Sdk::mesh(&server, path, "bob").await;
    let (alice_id, code) = alice.join(room("Alice")).await;
    let (bob_id, _) = bob.join(room("Bob").with_room_code(&code)).await;

    alice.ready_up().await;
    bob.ready_up().await;
    alice.all_ready().await;
    bob.all_ready().await;
    alice.client.start_game().unwrap();

    let alice_plan = alice.plan().await;
    let bob_plan = bob.plan().await;
    for plan in [&alice_plan, &bob_plan] {
        assert_eq!(
            (plan.topology, plan.transport, plan.host),
            (Topology::Mesh, TransportKind::WebRtc, None)
        );
    }
    assert_eq!(alice_plan.peers.len(), 1);
    assert_eq!(bob_plan.peers.len(), 1);
    let (listed_bob, alice_offers) = alice_plan.peers[0];
    let (listed_alice, bob_offers) = bob_plan.peers[0];
    assert_eq!((listed_bob, listed_alice), (bob_id, alice_id));
    assert!(alice_offers != bob_offers, "exactly one side offers");

    // Offer from the initiator, answer from the other, an ICE candidate each way.
    let (offerer, answerer, offerer_id, answerer_id) = if alice_offers {
        (&mut alice, &mut bob, alice_id, bob_id)
    } else {
        (&mut bob, &mut alice, bob_id, alice_id)
    };
    offerer.client.send_offer(answerer_id, "v=0 offer").unwrap();
    assert_eq!(
        answerer.signal().await,
        (offerer_id, PeerSignal::Offer("v=0 offer".into()))
    );
    answerer
        .client
        .send_answer(offerer_id, "v=0 answer")
        .unwrap();
    assert_eq!(
        offerer.signal().await,
        (answerer_id, PeerSignal::Answer("v=0 answer".into()))
    );
    offerer
        .client
        .send_ice_candidate(answerer_id, "candidate:1 1 udp 1 127.0.0.1 9 typ host")
        .unwrap();
    assert_eq!(
        answerer.signal().await,
        (
            offerer_id,
            PeerSignal::IceCandidate("candidate:1 1 udp 1 127.0.0.1 9 typ host".into())
        )
    );
    answerer
        .client
        .send_ice_candidate(offerer_id, "candidate:2 1 udp 1 127.0.0.1 10 typ host")
        .unwrap();
    assert!(matches!(
        offerer.signal().await,
        (from, PeerSignal::IceCandidate(_)) if from == answerer_id
    ));

    // Carol joins the running game: a plan listing both incumbents, and each incumbent a
    // fresh plan listing her and a NewPeer naming her.
    let mut carol = Sdk::mesh(&server, path, "carol").await;
    let (carol_id, _) = carol.join(room("Carol").with_room_code(&code)).await;
    let carol_plan = carol.plan().await;
    let mut listed: Vec<PlayerId> = carol_plan.peers.iter().map(|p| p.0).collect();
    listed.sort();
    let mut expected = vec![alice_id, bob_id];
    expected.sort();
    assert_eq!(listed, expected);
    for sdk in [&mut alice, &mut bob] {
        let plan = sdk.plan().await;
        assert!(plan.peers.iter().any(|p| p.0 == carol_id), "{plan:?}");
        let (peer, you_initiate) = sdk
            .until("NewPeer", |e| match e {
                SignalFishEvent::NewPeer {
                    peer_id,
                    you_initiate,
                } => Some((*peer_id, *you_initiate)),
                _ => None,
            })
            .await;
        assert_eq!(peer, carol_id);
        let carol_offers = carol_plan
            .peers
            .iter()
            .find(|p| Some(p.0) == sdk.client.snapshot().player_id)
            .map(|p| p.1);
        assert_eq!(carol_offers, Some(!you_initiate));
    }
    carol.client.send_offer(alice_id, "carol offer").unwrap();
    assert_eq!(
        alice.signal().await,
        (carol_id, PeerSignal::Offer("carol offer".into()))
    );

    // Bob leaves: the mesh carries on between Alice and Carol.
    bob.client.leave_room().unwrap();
    for sdk in [&mut alice, &mut carol] {
        sdk.until("PlayerLeft", |e| match e {
            SignalFishEvent::PlayerLeft { player_id, .. } if *player_id == bob_id => Some(()),
            _ => None,
        })
        .await;
    }
    alice.client.send_answer(carol_id, "alice answer").unwrap();
    assert_eq!(
        carol.signal().await,
        (alice_id, PeerSignal::Answer("alice answer".into()))
    );
    for mut sdk in [alice, bob, carol] {
        sdk.client.shutdown().await;
    }
}

/// A star: when one player cannot run a mesh, the room runs host over WebRTC around the
/// authority; when the host leaves, the others get a fresh plan around a newly elected host.
#[tokio::test]
async fn a_host_game_re_plans_when_its_host_leaves() {
    let server = TestServer::demo().await;
    let star_only = SignalFishConfig::new("demo")
        .enable_mesh()
        .with_topologies([Topology::Host, Topology::Relay]);
    let mut alice = Sdk::mesh(&server, "/v3/ws", "alice").await;
    let mut bob = Sdk::ready(&server, "/v3/ws", star_only, "bob").await;
    let mut carol = Sdk::mesh(&server, "/v3/ws", "carol").await;
    let (alice_id, code) = alice.join(room("Alice")).await;
    let (bob_id, _) = bob.join(room("Bob").with_room_code(&code)).await;
    let (carol_id, _) = carol.join(room("Carol").with_room_code(&code)).await;
    for sdk in [&mut alice, &mut bob, &mut carol] {
        sdk.ready_up().await;
    }
    alice.all_ready().await;
    alice.client.start_game().unwrap();

    let alice_plan = alice.plan().await;
    assert_eq!(
        (alice_plan.topology, alice_plan.host),
        (Topology::Host, Some(alice_id)),
        "the authority hosts"
    );
    let mut answered: Vec<PlayerId> = alice_plan.peers.iter().map(|p| p.0).collect();
    answered.sort();
    let mut clients = vec![bob_id, carol_id];
    clients.sort();
    assert_eq!(answered, clients);
    assert!(alice_plan.peers.iter().all(|p| !p.1), "the host answers");
    for sdk in [&mut bob, &mut carol] {
        let plan = sdk.plan().await;
        assert_eq!(
            plan.peers,
            vec![(alice_id, true)],
            "clients offer to the host"
        );
    }
    bob.client.send_offer(alice_id, "bob offer").unwrap();
    assert_eq!(
        alice.signal().await,
        (bob_id, PeerSignal::Offer("bob offer".into()))
    );

    alice.client.leave_room().unwrap();
    let bob_plan = bob.plan().await;
    let carol_plan = carol.plan().await;
    let host = bob_plan.host.expect("a new host");
    assert_eq!(carol_plan.host, Some(host));
    assert!([bob_id, carol_id].contains(&host));
    let (client, client_plan) = if host == bob_id {
        (&mut carol, carol_plan)
    } else {
        (&mut bob, bob_plan)
    };
    assert_eq!(client_plan.peers, vec![(host, true)]);
    client.client.send_offer(host, "to the new host").unwrap();
    let host_sdk = if host == bob_id { &mut bob } else { &mut carol };
    assert!(matches!(host_sdk.signal().await, (_, PeerSignal::Offer(_))));
    for mut sdk in [alice, bob, carol] {
        sdk.client.shutdown().await;
    }
}

async fn binary(sdk: &mut Sdk) -> (PlayerId, Vec<u8>) {
    sdk.until("GameDataBinary", |e| match e {
        SignalFishEvent::GameDataBinary {
            from_player,
            encoding: GameDataEncoding::MessagePack,
            payload,
            ..
        } => Some((*from_player, payload.clone())),
        SignalFishEvent::GameDataBinary { encoding, .. } => {
            panic!("binary game data in {encoding:?}")
        }
        _ => None,
    })
    .await
}

async fn json_data(sdk: &mut Sdk) -> (PlayerId, Value) {
    sdk.until("GameData", |e| match e {
        SignalFishEvent::GameData {
            from_player, data, ..
        } => Some((*from_player, data.clone())),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_message_pack_game_on_v2_ws_beside_a_json_player() {
    message_pack_game("/v2/ws").await;
}

#[tokio::test]
async fn a_message_pack_game_on_v3_ws_beside_a_json_player() {
    message_pack_game("/v3/ws").await;
}

/// Alice and Bob negotiate MessagePack, Carol JSON. Binary game data reaches the MessagePack
/// players as the sender's bytes and Carol as JSON; Carol's JSON reaches everyone as JSON.
async fn message_pack_game(path: &str) {
    let server = TestServer::demo().await;
    let packer = || {
        let mut config = SignalFishConfig::new("demo").enable_v3();
        config.game_data_format = Some(GameDataEncoding::MessagePack);
        config
    };
    let mut alice = Sdk::ready(&server, path, packer(), "alice").await;
    let mut bob = Sdk::ready(&server, path, packer(), "bob").await;
    let mut carol = Sdk::ready(
        &server,
        path,
        SignalFishConfig::new("demo").enable_v3(),
        "carol",
    )
    .await;
    let (alice_id, code) = alice.join(room("Alice")).await;
    let (bob_id, _) = bob.join(room("Bob").with_room_code(&code)).await;
    let (carol_id, _) = carol.join(room("Carol").with_room_code(&code)).await;
    // On /v2/ws, Dan speaks protocol v2 with MessagePack: he receives the v2 envelope.
    let mut dan = if path == "/v2/ws" {
        let mut config = SignalFishConfig::new("demo");
        config.game_data_format = Some(GameDataEncoding::MessagePack);
        let mut dan = Sdk::ready(&server, path, config, "dan").await;
        dan.join(room("Dan").with_room_code(&code)).await;
        Some(dan)
    } else {
        None
    };

    // A payload as a game would pack it, with a byte order the server must not disturb.
    let payload = rmp_serde::to_vec_named(&json!({"x": 3, "y": -1, "name": "move"})).unwrap();
    alice.client.send_binary_game_data(payload.clone()).unwrap();
    assert_eq!(binary(&mut bob).await, (alice_id, payload.clone()));
    if let Some(dan) = &mut dan {
        assert_eq!(binary(dan).await, (alice_id, payload.clone()));
    }
    assert_eq!(
        json_data(&mut carol).await,
        (alice_id, json!({"x": 3, "y": -1, "name": "move"}))
    );

    let reply = rmp_serde::to_vec(&(1u8, "ack", [true, false])).unwrap();
    bob.client.send_binary_game_data(reply.clone()).unwrap();
    assert_eq!(binary(&mut alice).await, (bob_id, reply));
    assert_eq!(
        json_data(&mut carol).await,
        (bob_id, json!([1, "ack", [true, false]]))
    );

    // JSON game data stays JSON for everyone.
    carol.client.send_game_data(json!({"chat": "hi"})).unwrap();
    for sdk in [&mut alice, &mut bob] {
        assert_eq!(json_data(sdk).await, (carol_id, json!({"chat": "hi"})));
    }
    // A JSON player cannot send binary: the SDK itself refuses.
    assert!(carol.client.send_binary_game_data(vec![1]).is_err());

    // The flight recorder shows the binary frames decoded, both ways.
    let mut admin = server.admin().await;
    for (name, direction) in [("Alice", Direction::In), ("Bob", Direction::Out)] {
        let peer = admin
            .snapshot
            .peers
            .iter()
            .find(|p| p.identity.as_deref() == Some(name))
            .expect("the player's peer")
            .id
            .clone();
        let result = admin.command(Command::Frames { peer }).await;
        assert!(result.ok, "{}", result.message);
        let frames: Vec<RecordedFrame> =
            serde_json::from_value(result.data.unwrap()["frames"].clone()).unwrap();
        assert!(
            frames.iter().any(|f| f.direction == direction
                && f.text.contains("bytes of MessagePack>")
                && f.text.contains(r#""name":"move""#)),
            "{name}: {frames:?}"
        );
    }
    for mut sdk in [Some(alice), Some(bob), Some(carol), dan]
        .into_iter()
        .flatten()
    {
        sdk.client.shutdown().await;
    }
}

/// A player of a running mesh game drops and reconnects: it gets a plan listing its peer
/// again, and the peer a fresh plan and a NewPeer naming it.
#[tokio::test]
async fn a_mesh_player_reconnecting_is_planned_back_in() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::mesh(&server, "/v3/ws", "alice").await;
    let mut bob = Sdk::mesh(&server, "/v3/ws", "bob").await;
    let (alice_id, code) = alice.join(room("Alice")).await;
    bob.client
        .join_room(room("Bob").with_room_code(&code))
        .unwrap();
    let (bob_id, room_id, token) = bob
        .until("RoomJoined", |e| match e {
            SignalFishEvent::RoomJoined {
                player_id,
                room_id,
                reconnection_token,
                ..
            } => Some((*player_id, *room_id, reconnection_token.clone())),
            _ => None,
        })
        .await;
    alice.ready_up().await;
    bob.ready_up().await;
    alice.all_ready().await;
    alice.client.start_game().unwrap();
    alice.plan().await;
    bob.plan().await;
    bob.client.shutdown().await;

    let mut again = Sdk::mesh(&server, "/v3/ws", "bob again").await;
    again
        .client
        .reconnect(bob_id, room_id, token.expect("a v3 token"))
        .unwrap();
    again
        .until("Reconnected", |e| {
            matches!(e, SignalFishEvent::Reconnected { .. }).then_some(())
        })
        .await;
    let plan = again.plan().await;
    assert_eq!(plan.topology, Topology::Mesh);
    assert_eq!(
        plan.peers.iter().map(|p| p.0).collect::<Vec<_>>(),
        [alice_id]
    );
    let plan = alice.plan().await;
    assert_eq!(plan.peers.iter().map(|p| p.0).collect::<Vec<_>>(), [bob_id]);
    let (peer, _) = alice
        .until("NewPeer", |e| match e {
            SignalFishEvent::NewPeer {
                peer_id,
                you_initiate,
            } => Some((*peer_id, *you_initiate)),
            _ => None,
        })
        .await;
    assert_eq!(peer, bob_id);
    again.client.send_offer(alice_id, "again").unwrap();
    assert_eq!(
        alice.signal().await,
        (bob_id, PeerSignal::Offer("again".into()))
    );
    alice.client.shutdown().await;
    again.client.shutdown().await;
}

/// What happened in the room while a player was away arrives in its v3 Reconnected, as 0.12
/// replays it, with `replay: complete`.
#[tokio::test]
async fn a_reconnecting_player_is_told_what_it_missed() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let config = || SignalFishConfig::new("demo").enable_v3();
    let mut alice = Sdk::ready(&server, "/v3/ws", config(), "alice").await;
    let mut bob = Sdk::ready(&server, "/v3/ws", config(), "bob").await;
    let (_, code) = alice.join(room("Alice")).await;
    bob.client
        .join_room(room("Bob").with_room_code(&code))
        .unwrap();
    let (bob_id, room_id, token) = bob
        .until("RoomJoined", |e| match e {
            SignalFishEvent::RoomJoined {
                player_id,
                room_id,
                reconnection_token,
                ..
            } => Some((*player_id, *room_id, reconnection_token.clone())),
            _ => None,
        })
        .await;
    bob.client.shutdown().await;
    // The seat is held from the moment the server saw the connection end.
    admin
        .wait_event(|e| matches!(e, relaydeck::protocol::admin::Event::PeerClosed { .. }))
        .await;

    let mut carol = Sdk::ready(&server, "/v3/ws", config(), "carol").await;
    let (carol_id, _) = carol.join(room("Carol").with_room_code(&code)).await;
    alice.ready_up().await;
    alice
        .until("LobbyStateChanged", |e| {
            matches!(e, SignalFishEvent::LobbyStateChanged { .. }).then_some(())
        })
        .await;

    let mut again = Sdk::ready(&server, "/v3/ws", config(), "bob again").await;
    again
        .client
        .reconnect(bob_id, room_id, token.expect("a v3 token"))
        .unwrap();
    let (missed, replay) = again
        .until("Reconnected", |e| match e {
            SignalFishEvent::Reconnected {
                missed_events,
                replay,
                ..
            } => Some((missed_events.clone(), *replay)),
            _ => None,
        })
        .await;
    assert_eq!(replay, Some(ReplayStatus::Complete));
    assert!(
        matches!(missed.first(), Some(SignalFishEvent::PlayerJoined { player }) if player.id == carol_id),
        "{missed:?}"
    );
    assert!(matches!(
        missed.last(),
        Some(SignalFishEvent::LobbyStateChanged { .. })
    ));
    for mut sdk in [alice, carol, again] {
        sdk.client.shutdown().await;
    }
}
