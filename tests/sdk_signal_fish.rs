//! The real Signal Fish client SDK (`signal-fish-client` 0.14: `SignalFishClient` over
//! `WebSocketTransport`) plays whole games against the bundled server. The SDK decodes every
//! frame into its own types and checks each against the negotiated protocol and the room's
//! lifecycle; any `DecodeFailed` or `ProtocolViolation` event fails the test, so this suite is
//! the judge of whether an unchanged Signal Fish client works against relaydeck.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sdk::Sdk;
use common::*;
use relaydeck::protocol::admin::{AppStatus, Command};
use relaydeck::server::config::Config;
use serde_json::{json, Value};
use signal_fish_client::{
    ErrorCode, GameDataEncoding, JoinRoomParams, LobbyState, PlayerId, ProtocolViolationPolicy,
    RoomId, SignalFishClient, SignalFishConfig, SignalFishError, SignalFishEvent,
    WebSocketTransport,
};

const GAME: &str = "sdk-game";

/// Why tests need the connection loop: one place, so every ignore names the same change.
const NEEDS_VERSION: &str = "needs signal_fish/mod.rs to report the negotiated protocol version (Rooms::set_protocol_version) after Authenticate, so that a v2 RoomJoined carries no reconnection_token";

impl Sdk {
    async fn connect(server: &TestServer, app: &str, v3: bool, label: &'static str) -> Sdk {
        let config = SignalFishConfig::new(app);
        Sdk::connect_with(server, if v3 { config.enable_v3() } else { config }, label).await
    }

    async fn connect_with(
        server: &TestServer,
        config: SignalFishConfig,
        label: &'static str,
    ) -> Sdk {
        // A violation must surface as an event the test sees, and the connection must stay up
        // so that the test reports the first one rather than a disconnect.
        let config = config.with_protocol_violation_policy(ProtocolViolationPolicy::Quarantine);
        let transport = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            WebSocketTransport::connect(&server.url("/v2/ws")),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        let (client, events) = SignalFishClient::start(transport, config);
        Sdk {
            client,
            events,
            label,
        }
    }

    /// Connect and wait until Authenticated and ProtocolInfo arrived.
    async fn ready(server: &TestServer, v3: bool, label: &'static str) -> Sdk {
        let mut sdk = Sdk::connect(server, "demo", v3, label).await;
        sdk.until("Authenticated", |e| {
            matches!(e, SignalFishEvent::Authenticated { .. }).then_some(())
        })
        .await;
        let info = sdk
            .until("ProtocolInfo", |e| match e {
                SignalFishEvent::ProtocolInfo(info) => Some(info.protocol_version),
                _ => None,
            })
            .await;
        assert_eq!(info, v3.then_some(3), "{label}: negotiated version");
        sdk
    }

    /// Wait until Authenticated and ProtocolInfo arrived; ProtocolInfo's capabilities.
    async fn capabilities(&mut self) -> Vec<String> {
        self.until("Authenticated", |e| {
            matches!(e, SignalFishEvent::Authenticated { .. }).then_some(())
        })
        .await;
        self.until("ProtocolInfo", |e| match e {
            SignalFishEvent::ProtocolInfo(info) => Some(info.capabilities.clone()),
            _ => None,
        })
        .await
    }

    async fn create(&mut self, params: JoinRoomParams) -> Joined {
        self.client.join_room(params).unwrap();
        self.joined().await
    }

    async fn join_code(&mut self, code: &str, name: &str) -> Joined {
        self.client
            .join_room(JoinRoomParams::new(GAME, name).with_room_code(code))
            .unwrap();
        self.joined().await
    }

    async fn joined(&mut self) -> Joined {
        self.until("RoomJoined", |e| match e {
            SignalFishEvent::RoomJoined {
                room_id,
                room_code,
                player_id,
                is_authority,
                reconnection_token,
                current_players,
                ..
            } => Some(Joined {
                room_id: *room_id,
                code: room_code.clone(),
                player: *player_id,
                authority: *is_authority,
                token: reconnection_token.clone(),
                roster: current_players.len(),
            }),
            SignalFishEvent::RoomJoinFailed { reason, error_code } => {
                panic!("join refused: {reason} {error_code:?}")
            }
            _ => None,
        })
        .await
    }

    async fn join_refused(&mut self, params: JoinRoomParams) -> ErrorCode {
        self.client.join_room(params).unwrap();
        self.until("RoomJoinFailed", |e| match e {
            SignalFishEvent::RoomJoinFailed { error_code, .. } => {
                Some(error_code.clone().expect("a typed error code"))
            }
            SignalFishEvent::RoomJoined { .. } => panic!("joined, expected a refusal"),
            _ => None,
        })
        .await
    }

    async fn error(&mut self) -> ErrorCode {
        self.until("Error", |e| match e {
            SignalFishEvent::Error { error_code, .. } => {
                Some(error_code.clone().expect("a typed error code"))
            }
            _ => None,
        })
        .await
    }

    async fn disconnected(&mut self) -> Option<String> {
        self.until("Disconnected", |e| match e {
            SignalFishEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await
    }

    async fn stop(mut self) {
        self.client.shutdown().await;
    }
}

#[derive(Debug, Clone)]
struct Joined {
    room_id: RoomId,
    code: String,
    player: PlayerId,
    authority: bool,
    token: Option<String>,
    roster: usize,
}

fn room(name: &str, max_players: u8) -> JoinRoomParams {
    JoinRoomParams::new(GAME, name)
        .with_max_players(max_players)
        .with_supports_authority(true)
}

#[tokio::test]
async fn the_sdk_authenticates_pings_and_leaves_without_a_violation() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    alice.client.ping().unwrap();
    alice
        .until("Pong", |e| matches!(e, SignalFishEvent::Pong).then_some(()))
        .await;
    assert!(alice.client.is_authenticated());
    assert_eq!(alice.client.negotiated_protocol_version(), None);
    alice.stop().await;
}

#[tokio::test]
async fn refusals_reach_the_sdk_as_its_typed_error_codes() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    assert_eq!(
        alice.join_refused(room("Alice", 0)).await,
        ErrorCode::InvalidMaxPlayers
    );
    assert_eq!(
        alice.join_refused(room("Alice", 101)).await,
        ErrorCode::InvalidMaxPlayers
    );
    assert_eq!(
        alice.join_refused(room(" Alice", 4)).await,
        ErrorCode::InvalidPlayerName
    );
    assert_eq!(
        alice.join_refused(JoinRoomParams::new("", "Alice")).await,
        ErrorCode::InvalidGameName
    );
    assert_eq!(
        alice
            .join_refused(JoinRoomParams::new(GAME, "Alice").with_room_code("ab!"))
            .await,
        ErrorCode::InvalidRoomCode
    );

    // A reconnection with credentials the server never issued.
    alice
        .client
        .reconnect(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            "not-a-token".into(),
        )
        .unwrap();
    let code = alice
        .until("ReconnectionFailed", |e| match e {
            SignalFishEvent::ReconnectionFailed { error_code, .. } => Some(error_code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::ReconnectionTokenInvalid);

    // Refused connections: an unknown app.
    let mut stranger = Sdk::connect(&server, "not-registered", false, "stranger").await;
    let code = stranger
        .until("AuthenticationError", |e| match e {
            SignalFishEvent::AuthenticationError { error_code, .. } => Some(error_code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::InvalidAppId);
    stranger.disconnected().await;
    alice.stop().await;
}

#[tokio::test]
async fn an_operator_kick_reaches_the_sdk_as_kicked() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    assert!(admin.command(Command::Resync).await.ok);
    let peer = admin
        .snapshot
        .peers
        .iter()
        .find(|p| p.app.as_deref() == Some("demo"))
        .expect("the SDK's peer")
        .id
        .clone();
    assert!(admin.command(Command::Kick { peer, reason: None }).await.ok);
    assert_eq!(alice.error().await, ErrorCode::Kicked);
    alice.disconnected().await;
}

#[tokio::test]
async fn a_whole_v2_game_create_join_data_authority_ready_start_leave() {
    let _ = NEEDS_VERSION;
    whole_game(false).await;
}

#[tokio::test]
async fn a_whole_v3_relay_game_create_join_data_authority_ready_start_leave() {
    whole_game(true).await;
}

/// Two nodes over one Redis, each with its own players: a room lives on one node, and the
/// players of the other reach it through their own.
#[tokio::test]
async fn a_whole_v2_game_with_players_on_two_nodes() {
    let redis = common::redis::Redis::start();
    let a = common::redis::node(&redis, "a").await;
    let b = common::redis::node(&redis, "b").await;
    whole_game_on(false, &a, &b).await;
}

#[tokio::test]
async fn a_whole_v3_game_with_players_on_two_nodes() {
    let redis = common::redis::Redis::start();
    let a = common::redis::node(&redis, "a").await;
    let b = common::redis::node(&redis, "b").await;
    whole_game_on(true, &a, &b).await;
}

async fn whole_game(v3: bool) {
    let server = TestServer::demo().await;
    whole_game_on(v3, &server, &server).await;
}

/// Alice creates the room on `home`; Bob, and Carol whom the full room refuses, play from
/// `away`.
async fn whole_game_on(v3: bool, home: &TestServer, away: &TestServer) {
    let mut alice = Sdk::ready(home, v3, "alice").await;
    let mut bob = Sdk::ready(away, v3, "bob").await;

    let created = alice.create(room("Alice", 2)).await;
    assert!(created.authority, "the creator holds authority");
    assert_eq!(created.token.is_some(), v3, "the token is for v3 only");
    let joined = bob.join_code(&created.code, "Bob").await;
    assert_eq!(joined.room_id, created.room_id);
    assert_eq!(joined.roster, 2);
    assert!(!joined.authority);
    alice
        .until("PlayerJoined", |e| match e {
            SignalFishEvent::PlayerJoined { player } => Some(player.id),
            _ => None,
        })
        .await;
    if home.addr != away.addr {
        // The room is on Alice's node, and Bob sits in it through a peer that node runs
        // for him, named after his connection on the other node.
        let mut admin = home.admin().await;
        assert!(admin.command(Command::Resync).await.ok);
        let room = admin
            .snapshot
            .rooms
            .iter()
            .find(|r| r.code == created.code)
            .expect("the room is on Alice's node");
        assert_eq!(room.players.len(), 2);
        let through = admin
            .snapshot
            .peers
            .iter()
            .filter(|p| p.addr.contains(" via b."))
            .count();
        assert_eq!(through, 1, "Bob's seat is held through node b");
    }

    // A full room refuses a third player with the SDK's own ROOM_FULL.
    let mut carol = Sdk::ready(away, v3, "carol").await;
    assert_eq!(
        carol
            .join_refused(JoinRoomParams::new(GAME, "Carol").with_room_code(&created.code))
            .await,
        ErrorCode::RoomFull
    );

    // Game data both ways, in order.
    for n in 0..3 {
        alice.client.send_game_data(json!({"move": n})).unwrap();
    }
    for n in 0..3 {
        let (from, data) = bob.game_data().await;
        assert_eq!((from, data), (created.player, json!({"move": n})));
    }
    bob.client.send_game_data(json!({"ack": 2})).unwrap();
    assert_eq!(alice.game_data().await, (joined.player, json!({"ack": 2})));

    // Authority: a claim on a held authority is refused; released, it can be claimed.
    bob.client.request_authority(true).unwrap();
    let refused = bob
        .until("AuthorityResponse", |e| match e {
            SignalFishEvent::AuthorityResponse {
                granted,
                error_code,
                ..
            } => Some((*granted, error_code.clone())),
            _ => None,
        })
        .await;
    assert_eq!(refused, (false, Some(ErrorCode::AuthorityConflict)));
    alice.client.request_authority(false).unwrap();
    alice
        .until("AuthorityChanged", |e| match e {
            SignalFishEvent::AuthorityChanged {
                authority_player: None,
                you_are_authority: false,
            } => Some(()),
            _ => None,
        })
        .await;
    bob.until("AuthorityChanged", |e| {
        matches!(
            e,
            SignalFishEvent::AuthorityChanged {
                authority_player: None,
                ..
            }
        )
        .then_some(())
    })
    .await;
    bob.client.request_authority(true).unwrap();
    bob.until("AuthorityChanged to Bob", |e| match e {
        SignalFishEvent::AuthorityChanged {
            you_are_authority: true,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    alice
        .until("AuthorityChanged to Bob", |e| match e {
            SignalFishEvent::AuthorityChanged {
                authority_player: Some(holder),
                you_are_authority: false,
            } if *holder == joined.player => Some(()),
            _ => None,
        })
        .await;

    // Readiness and start: only the holder may start (the SDK itself refuses the others, as
    // the server would with GAME_START_FORBIDDEN).
    alice.client.set_ready().unwrap();
    bob.client.set_ready().unwrap();
    for sdk in [&mut alice, &mut bob] {
        sdk.until("all ready", |e| match e {
            SignalFishEvent::LobbyStateChanged {
                all_ready: true, ..
            } => Some(()),
            _ => None,
        })
        .await;
    }
    assert!(matches!(
        alice.client.start_game(),
        Err(SignalFishError::AuthorityRequired)
    ));
    bob.client.start_game().unwrap();
    for sdk in [&mut alice, &mut bob] {
        let peers = sdk
            .until("GameStarting", |e| match e {
                SignalFishEvent::GameStarting { peer_connections } => Some(peer_connections.len()),
                _ => None,
            })
            .await;
        assert_eq!(peers, 2);
    }
    if v3 {
        for sdk in [&mut alice, &mut bob] {
            sdk.until("SessionPlan", |e| {
                matches!(e, SignalFishEvent::SessionPlan { .. }).then_some(())
            })
            .await;
        }
    }

    // Leaving.
    bob.client.leave_room().unwrap();
    bob.until("RoomLeft", |e| {
        matches!(e, SignalFishEvent::RoomLeft).then_some(())
    })
    .await;
    let left = alice
        .until("PlayerLeft", |e| match e {
            SignalFishEvent::PlayerLeft {
                player_id,
                final_seq,
                ..
            } => Some((*player_id, *final_seq)),
            _ => None,
        })
        .await;
    assert_eq!(left, (joined.player, v3.then_some(1)));
    for sdk in [alice, bob, carol] {
        sdk.stop().await;
    }
}

#[tokio::test]
async fn spectators_watch_and_leave() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    let created = alice.create(room("Alice", 4)).await;
    let mut watcher = Sdk::ready(&server, false, "watcher").await;
    watcher
        .client
        .join_as_spectator(GAME.into(), created.code.clone(), "Watcher".into())
        .unwrap();
    let seen = watcher
        .until("SpectatorJoined", |e| match e {
            SignalFishEvent::SpectatorJoined {
                current_players,
                lobby_state,
                ..
            } => Some((current_players.len(), lobby_state.clone())),
            SignalFishEvent::SpectatorJoinFailed { error_code, .. } => {
                panic!("refused: {error_code:?}")
            }
            _ => None,
        })
        .await;
    assert_eq!(seen, (1, LobbyState::Lobby));
    alice
        .until("NewSpectatorJoined", |e| {
            matches!(e, SignalFishEvent::NewSpectatorJoined { .. }).then_some(())
        })
        .await;
    alice.client.send_game_data(json!({"tick": 1})).unwrap();
    assert_eq!(
        watcher.game_data().await,
        (created.player, json!({"tick": 1}))
    );
    watcher.client.leave_spectator().unwrap();
    watcher
        .until("SpectatorLeft", |e| {
            matches!(e, SignalFishEvent::SpectatorLeft { .. }).then_some(())
        })
        .await;
    alice
        .until("SpectatorDisconnected", |e| {
            matches!(e, SignalFishEvent::SpectatorDisconnected { .. }).then_some(())
        })
        .await;
    alice.stop().await;
    watcher.stop().await;
}

#[tokio::test]
async fn a_v3_player_reconnects_within_the_window_with_a_rotated_token() {
    let server = TestServer::demo().await;
    reconnection_on(&server, &server, &server).await;
}

/// Bob plays from node b in Alice's room on node a, loses his connection, and takes his
/// seat back through node c.
#[tokio::test]
async fn a_v3_player_reconnects_through_another_node_within_the_window() {
    let redis = common::redis::Redis::start();
    let a = common::redis::node(&redis, "a").await;
    let b = common::redis::node(&redis, "b").await;
    let c = common::redis::node(&redis, "c").await;
    reconnection_on(&a, &b, &c).await;
}

async fn reconnection_on(home: &TestServer, first: &TestServer, again: &TestServer) {
    let mut alice = Sdk::ready(home, true, "alice").await;
    let mut bob = Sdk::ready(first, true, "bob").await;
    let created = alice.create(room("Alice", 4)).await;
    let joined = bob.join_code(&created.code, "Bob").await;
    bob.client.send_game_data(json!({"before": true})).unwrap();
    assert_eq!(alice.game_data().await.1, json!({"before": true}));
    let token = joined.token.clone().expect("a v3 token");
    bob.stop().await;

    let mut again = Sdk::ready(again, true, "bob again").await;
    again
        .client
        .reconnect(joined.player, joined.room_id, token.clone())
        .unwrap();
    let (player, rotated) = again
        .until("Reconnected", |e| match e {
            SignalFishEvent::Reconnected {
                player_id,
                reconnection_token,
                ..
            } => Some((*player_id, reconnection_token.clone())),
            SignalFishEvent::ReconnectionFailed { error_code, .. } => {
                panic!("refused: {error_code:?}")
            }
            _ => None,
        })
        .await;
    assert_eq!(player, joined.player);
    assert!(rotated.is_some_and(|t| t != token));
    alice
        .until("PlayerReconnected", |e| match e {
            SignalFishEvent::PlayerReconnected { player_id, epoch } => Some((*player_id, *epoch)),
            _ => None,
        })
        .await;
    again.client.send_game_data(json!({"after": true})).unwrap();
    assert_eq!(
        alice.game_data().await,
        (joined.player, json!({"after": true}))
    );
    alice.stop().await;
    again.stop().await;
}

#[tokio::test]
async fn suspending_the_app_disconnects_a_connected_sdk_without_a_violation() {
    let server = TestServer::start(Config::demo()).await;
    let mut admin = server.admin().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    assert!(
        admin
            .command(Command::SetAppStatus {
                app: "demo".into(),
                status: AppStatus::Suspended,
            })
            .await
            .ok
    );
    assert_eq!(alice.error().await, ErrorCode::AppIdSuspended);
    alice.disconnected().await;
}

#[tokio::test]
async fn a_sealed_room_admits_only_its_password() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    let created = alice
        .create(room("Alice", 4).with_password("open sesame"))
        .await;
    let mut bob = Sdk::ready(&server, false, "bob").await;
    for attempt in [
        JoinRoomParams::new(GAME, "Bob").with_room_code(&created.code),
        JoinRoomParams::new(GAME, "Bob")
            .with_room_code(&created.code)
            .with_password("wrong"),
    ] {
        assert_eq!(bob.join_refused(attempt).await, ErrorCode::PasswordRequired);
    }
    bob.client
        .join_room(
            JoinRoomParams::new(GAME, "Bob")
                .with_room_code(&created.code)
                .with_password("open sesame"),
        )
        .unwrap();
    assert_eq!(bob.joined().await.room_id, created.room_id);
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn the_room_authority_kicks_an_sdk_player() {
    for v3 in [false, true] {
        authority_kicks(v3).await;
    }
}

async fn authority_kicks(v3: bool) {
    let server = TestServer::demo().await;
    // The SDK issues no moderation operations, so the authority is a plain v3 socket that
    // negotiates room_operation_ids as the SDK does.
    let mut host = server.connect("/v2/ws").await;
    send_json(
        &mut host,
        json!({"type": "Authenticate", "data": {
            "app_id": "demo",
            "protocol_version": 3,
            "requested_capabilities": ["room_operation_ids"],
        }}),
    )
    .await;
    let info = recv_type(&mut host, "ProtocolInfo").await;
    assert!(info["data"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("room_operation_ids")));
    send_json(
        &mut host,
        json!({"type": "JoinRoom", "data": {"game_name": GAME, "player_name": "Host"}}),
    )
    .await;
    let code = recv_type(&mut host, "RoomJoined").await["data"]["room_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob = Sdk::ready(&server, v3, "bob").await;
    let joined = bob.join_code(&code, "Bob").await;

    let operation = |kind: &str, player: Value| {
        json!({"type": "RoomOperation", "data": {
            "operation_id": uuid::Uuid::new_v4().to_string(),
            "operation": {"type": kind, "data": {"player_id": player}},
        }})
    };
    send_json(
        &mut host,
        operation("KickPlayer", json!(uuid::Uuid::new_v4().to_string())),
    )
    .await;
    let missing = recv_type(&mut host, "RoomOperationResult").await;
    assert_eq!(
        missing["data"]["result"]["data"]["error_code"],
        "KICK_TARGET_NOT_FOUND"
    );
    send_json(
        &mut host,
        operation("TransferAuthority", json!(uuid::Uuid::new_v4().to_string())),
    )
    .await;
    let missing = recv_type(&mut host, "RoomOperationResult").await;
    assert_eq!(
        missing["data"]["result"]["data"]["error_code"],
        "TRANSFER_TARGET_NOT_FOUND"
    );
    send_json(
        &mut host,
        operation("KickPlayer", json!(joined.player.to_string())),
    )
    .await;
    let kicked = recv_type(&mut host, "RoomOperationResult").await;
    assert_eq!(kicked["data"]["result"]["type"], "PlayerKicked");
    assert_eq!(bob.error().await, ErrorCode::Kicked);
    bob.disconnected().await;
}

/// A v3 SDK asks for room_operation_ids and, granted it, sends its joins, leaves, spectator
/// requests and reconnections as correlated RoomOperations: an answer without the operation's
/// id, or with another's, would be a ProtocolViolation. A v2 SDK is not granted it.
#[tokio::test]
async fn the_sdk_plays_its_membership_as_correlated_room_operations() {
    let server = TestServer::demo().await;
    let mut v2 = Sdk::connect(&server, "demo", false, "v2").await;
    assert!(!v2
        .capabilities()
        .await
        .iter()
        .any(|c| c == "room_operation_ids"));
    v2.stop().await;

    let mut alice = Sdk::connect(&server, "demo", true, "alice").await;
    assert!(alice
        .capabilities()
        .await
        .iter()
        .any(|c| c == "room_operation_ids"));
    let created = alice.create(room("Alice", 2)).await;
    assert!(created.authority);
    let mut bob = Sdk::ready(&server, true, "bob").await;
    let joined = bob.join_code(&created.code, "Bob").await;
    assert_eq!(joined.roster, 2);
    bob.client.leave_room().unwrap();
    bob.until("RoomLeft", |e| {
        matches!(e, SignalFishEvent::RoomLeft).then_some(())
    })
    .await;
    bob.join_code(&created.code, "Bob").await;

    // A refused join is answered inside the operation's result, and the SDK surfaces it as
    // the plain refusal.
    let mut carol = Sdk::ready(&server, true, "carol").await;
    assert_eq!(
        carol
            .join_refused(JoinRoomParams::new(GAME, "Carol").with_room_code(&created.code))
            .await,
        ErrorCode::RoomFull
    );
    carol
        .client
        .join_as_spectator(GAME.into(), created.code.clone(), "Carol".into())
        .unwrap();
    carol
        .until("SpectatorJoined", |e| match e {
            SignalFishEvent::SpectatorJoined { room_id, .. } => Some(*room_id),
            _ => None,
        })
        .await;
    carol.client.leave_spectator().unwrap();
    carol
        .until("SpectatorLeft", |e| {
            matches!(e, SignalFishEvent::SpectatorLeft { .. }).then_some(())
        })
        .await;
    carol.stop().await;
    alice.stop().await;
    bob.stop().await;
}

async fn authentication_error(sdk: &mut Sdk) -> ErrorCode {
    sdk.until("AuthenticationError", |e| match e {
        SignalFishEvent::AuthenticationError { error_code, .. } => Some(error_code.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn message_pack_is_negotiated_and_other_game_data_formats_fall_back_to_json() {
    let server = TestServer::demo().await;
    for v3 in [false, true] {
        let mut config = SignalFishConfig::new("demo");
        if v3 {
            config = config.enable_v3();
        }
        config.game_data_format = Some(GameDataEncoding::MessagePack);
        let mut packer = Sdk::connect_with(&server, config, "packer").await;
        let formats = packer
            .until("ProtocolInfo", |e| match e {
                SignalFishEvent::ProtocolInfo(info) => Some(info.game_data_formats.clone()),
                _ => None,
            })
            .await;
        assert_eq!(
            formats,
            [GameDataEncoding::Json, GameDataEncoding::MessagePack]
        );
        assert_eq!(
            packer.client.effective_game_data_format(),
            Some(GameDataEncoding::MessagePack)
        );
        packer.stop().await;
    }

    let mut config = SignalFishConfig::new("demo");
    config.game_data_format = Some(GameDataEncoding::Rkyv);
    let mut alice = Sdk::connect_with(&server, config, "alice").await;
    assert_eq!(alice.error().await, ErrorCode::UnsupportedGameDataFormat);
    alice
        .until("ProtocolInfo", |e| {
            matches!(e, SignalFishEvent::ProtocolInfo(_)).then_some(())
        })
        .await;
    assert_eq!(
        alice.client.effective_game_data_format(),
        Some(GameDataEncoding::Json)
    );
    let created = alice.create(room("Alice", 2)).await;
    assert_eq!(created.roster, 1);
    alice.stop().await;
}

#[tokio::test]
async fn a_missing_or_wrong_connect_token_is_refused_with_the_upstream_codes() {
    let server = TestServer::demo().await;
    let mut anonymous = Sdk::connect(&server, "tenant-game", false, "anonymous").await;
    assert_eq!(
        authentication_error(&mut anonymous).await,
        ErrorCode::ConnectTokenRequired
    );
    let config = SignalFishConfig::new("tenant-game").with_connect_token("sfct_v1.wrong");
    let mut forger = Sdk::connect_with(&server, config, "forger").await;
    assert_eq!(
        authentication_error(&mut forger).await,
        ErrorCode::ConnectTokenInvalid
    );
    let config = SignalFishConfig::new("tenant-game").with_connect_token("sf-connect-token");
    let mut member = Sdk::connect_with(&server, config, "member").await;
    member
        .until("ProtocolInfo", |e| {
            matches!(e, SignalFishEvent::ProtocolInfo(_)).then_some(())
        })
        .await;
    for sdk in [anonymous, forger, member] {
        sdk.stop().await;
    }
}

#[tokio::test]
async fn an_oversized_frame_is_refused_and_the_game_goes_on() {
    let server = TestServer::demo().await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    let mut bob = Sdk::ready(&server, false, "bob").await;
    let created = alice.create(room("Alice", 2)).await;
    bob.join_code(&created.code, "Bob").await;
    alice
        .client
        .send_game_data(json!({"blob": "x".repeat(70 * 1024)}))
        .unwrap();
    assert_eq!(alice.error().await, ErrorCode::MessageTooLarge);
    alice.client.send_game_data(json!({"small": true})).unwrap();
    assert_eq!(bob.game_data().await.1, json!({"small": true}));
    alice.stop().await;
    bob.stop().await;
}

#[tokio::test]
async fn an_idle_sdk_is_told_before_it_is_closed() {
    let mut config = Config::demo();
    config.signal_fish.socket_idle_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let mut alice = Sdk::ready(&server, false, "alice").await;
    assert_eq!(alice.error().await, ErrorCode::ConnectionIdleTimeout);
    let reason = alice.disconnected().await.unwrap_or_default();
    assert!(
        reason.contains("4004") && reason.contains("idle_timeout"),
        "{reason}"
    );
}
