//! Signal Fish over real sockets: every code of its seed from a client frame or a documented
//! condition, each in the message type the seed names, and a scripted two-player game.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{AppStatus, Command, Event, FaultTarget};
use relaydeck::server::config::Config;
use serde_json::{json, Value};

fn fast_config() -> Config {
    let mut config = Config::demo();
    config.signal_fish.auth_timeout_ms = 300;
    config.signal_fish.idle_timeout_ms = 1_500;
    config.signal_fish.reconnect_window_ms = 400;
    config.signal_fish.messages_per_minute = 30;
    config.signal_fish.max_game_data_bytes = 1024;
    config
}

async fn send(socket: &mut Socket, kind: &str, data: Value) {
    let frame = if data.is_null() {
        json!({"type": kind})
    } else {
        json!({"type": kind, "data": data})
    };
    send_json(socket, frame).await;
}

/// The next error frame must be `carrier` carrying `code`; notices before it (a player
/// joining, a lobby change) are skipped, another error is a failure.
async fn expect_code(socket: &mut Socket, carrier: &str, code: &str) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["data"].get("error_code").is_none() {
            continue;
        }
        assert_eq!(frame["type"], carrier, "{frame}");
        assert_eq!(frame["data"]["error_code"], code, "{frame}");
        return frame;
    }
}

/// An authenticated protocol v3 connection (v3 is where reconnection tokens are handed out;
/// the v2 shapes are the real SDK's to judge, in tests/sdk_signal_fish.rs).
async fn authenticated(server: &TestServer, app: &str) -> Socket {
    authenticated_with(server, app).await.0
}

/// [`authenticated`], with the `Authenticated` frame it was answered.
async fn authenticated_with(server: &TestServer, app: &str) -> (Socket, Value) {
    let mut socket = server.connect("/v3/ws").await;
    send(
        &mut socket,
        "Authenticate",
        json!({"app_id": app, "sdk_version": "1.0.0"}),
    )
    .await;
    let authenticated = recv_json(&mut socket).await;
    assert_eq!(authenticated["type"], "Authenticated", "{authenticated}");
    assert_eq!(recv_json(&mut socket).await["type"], "ProtocolInfo");
    (socket, authenticated)
}

/// Create a room; returns (room code, room id, player id, reconnection token).
async fn create(socket: &mut Socket, data: Value) -> (String, String, String, String) {
    let mut data = data;
    data["game_name"] = json!("demo");
    if data.get("player_name").is_none() {
        data["player_name"] = json!("Alice");
    }
    send(socket, "JoinRoom", data).await;
    let joined = recv_type(socket, "RoomJoined").await;
    let d = &joined["data"];
    assert_eq!(recv_json(socket).await["type"], "LobbyStateChanged");
    (
        d["room_code"].as_str().unwrap().to_owned(),
        d["room_id"].as_str().unwrap().to_owned(),
        d["player_id"].as_str().unwrap().to_owned(),
        d["reconnection_token"].as_str().unwrap().to_owned(),
    )
}

async fn join(socket: &mut Socket, code: &str, name: &str) -> Value {
    send(
        socket,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": name}),
    )
    .await;
    recv_type(socket, "RoomJoined").await
}

#[tokio::test]
async fn authentication_codes() {
    let server = TestServer::start(fast_config()).await;

    let mut early = server.connect("/v2/ws").await;
    send(
        &mut early,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Xavier"}),
    )
    .await;
    let frame = expect_code(&mut early, "Error", "MISSING_APP_ID").await;
    assert_eq!(frame["data"]["message"], "Authentication required");
    assert_eq!(
        recv_close(&mut early).await,
        (1000, "unregistered".to_owned())
    );

    for (app, code) in [
        ("not-registered", "INVALID_APP_ID"),
        ("", "MISSING_APP_ID"),
        ("expired-app", "APP_ID_EXPIRED"),
        ("revoked-app", "APP_ID_REVOKED"),
        ("suspended-app", "APP_ID_SUSPENDED"),
    ] {
        let mut socket = server.connect("/v2/ws").await;
        send(&mut socket, "Authenticate", json!({"app_id": app})).await;
        expect_code(&mut socket, "AuthenticationError", code).await;
        assert_eq!(recv_close(&mut socket).await.0, 1000, "{app}");
    }
    for (extra, code) in [
        (json!({}), "AUTHENTICATION_REQUIRED"),
        (json!({"token": "has spaces"}), "INVALID_TOKEN"),
        (json!({"token": "wrong-token"}), "UNAUTHORIZED"),
    ] {
        let mut socket = server.connect("/v2/ws").await;
        let mut data = json!({"app_id": "secure-game"});
        data.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        send(&mut socket, "Authenticate", data).await;
        expect_code(&mut socket, "AuthenticationError", code).await;
    }
    let mut secure = server.connect("/v2/ws").await;
    send(
        &mut secure,
        "Authenticate",
        json!({"app_id": "secure-game", "token": "sf-demo-token"}),
    )
    .await;
    assert_eq!(recv_json(&mut secure).await["type"], "Authenticated");

    let mut old = server.connect("/v2/ws").await;
    send(
        &mut old,
        "Authenticate",
        json!({"app_id": "demo", "sdk_version": "0.0.0"}),
    )
    .await;
    expect_code(&mut old, "AuthenticationError", "SDK_VERSION_UNSUPPORTED").await;

    // The refusal keeps the connection open: the same client tries again.
    send(
        &mut old,
        "Authenticate",
        json!({"app_id": "demo", "sdk_version": "1.0.0"}),
    )
    .await;
    assert_eq!(recv_json(&mut old).await["type"], "Authenticated");

    // An unsupported game data format is answered, then the session goes on in JSON.
    let mut packed = server.connect("/v2/ws").await;
    send(
        &mut packed,
        "Authenticate",
        json!({"app_id": "demo", "game_data_format": "protobuf"}),
    )
    .await;
    expect_code(&mut packed, "Error", "UNSUPPORTED_GAME_DATA_FORMAT").await;
    assert_eq!(recv_json(&mut packed).await["type"], "Authenticated");

    // Upstream's connect tokens: refused, and the connection stays open for another try.
    let mut tenant = server.connect("/v2/ws").await;
    send(
        &mut tenant,
        "Authenticate",
        json!({"app_id": "tenant-game"}),
    )
    .await;
    expect_code(&mut tenant, "AuthenticationError", "CONNECT_TOKEN_REQUIRED").await;
    send(
        &mut tenant,
        "Authenticate",
        json!({"app_id": "tenant-game", "connect_token": "wrong"}),
    )
    .await;
    expect_code(&mut tenant, "AuthenticationError", "CONNECT_TOKEN_INVALID").await;
    send(
        &mut tenant,
        "Authenticate",
        json!({"app_id": "tenant-game", "connect_token": "sf-connect-token"}),
    )
    .await;
    assert_eq!(recv_json(&mut tenant).await["type"], "Authenticated");

    let mut binary = authenticated(&server, "demo").await;
    futures_util::SinkExt::send(
        &mut binary,
        tokio_tungstenite::tungstenite::Message::Binary(vec![0x81, 0xa1].into()),
    )
    .await
    .unwrap();
    let refused = expect_code(&mut binary, "Error", "INVALID_INPUT").await;
    assert_eq!(
        refused["data"]["message"],
        "Binary payloads are disabled for this connection"
    );
    // An oversized text frame is refused and the connection stays open.
    send_text(
        &mut binary,
        &format!("{{\"type\":\"Ping\",\"pad\":\"{}\"}}", "x".repeat(70_000)),
    )
    .await;
    let refused = expect_code(&mut binary, "Error", "MESSAGE_TOO_LARGE").await;
    assert!(
        refused["data"]["message"]
            .as_str()
            .unwrap()
            .ends_with("max 65536 bytes)"),
        "{refused}"
    );
    send(&mut binary, "Ping", Value::Null).await;
    assert_eq!(recv_json(&mut binary).await["type"], "Pong");

    let _first = authenticated(&server, "limited-app").await;
    let _second = authenticated(&server, "limited-app").await;
    let mut third = server.connect("/v2/ws").await;
    send(&mut third, "Authenticate", json!({"app_id": "limited-app"})).await;
    expect_code(&mut third, "AuthenticationError", "TOO_MANY_CONNECTIONS").await;

    let mut silent = server.connect("/v2/ws").await;
    expect_code(&mut silent, "Error", "AUTHENTICATION_TIMEOUT").await;
    assert_eq!(
        recv_close(&mut silent).await,
        (4001, "auth_timeout".to_owned())
    );
}

#[tokio::test]
async fn validation_and_room_codes() {
    let server = TestServer::start(fast_config()).await;
    let mut alice = authenticated(&server, "demo").await;
    send_text(&mut alice, "{not json").await;
    expect_code(&mut alice, "Error", "INVALID_INPUT").await;
    send(&mut alice, "Bogus", json!({})).await;
    expect_code(&mut alice, "Error", "INVALID_INPUT").await;
    for (data, code) in [
        (
            json!({"game_name": "", "player_name": "Alice"}),
            "INVALID_GAME_NAME",
        ),
        (
            json!({"game_name": "demo", "room_code": "ab!", "player_name": "Carol"}),
            "INVALID_ROOM_CODE",
        ),
        (
            json!({"game_name": "demo", "player_name": " Alice"}),
            "INVALID_PLAYER_NAME",
        ),
        (
            json!({"game_name": "demo", "player_name": "Alice", "max_players": 0}),
            "INVALID_MAX_PLAYERS",
        ),
        (
            json!({"game_name": "demo", "player_name": "Alice", "max_players": 101}),
            "INVALID_MAX_PLAYERS",
        ),
        (
            json!({"game_name": "demo", "room_code": "ZZZZZZ", "player_name": "Alice", "join_only": true}),
            "ROOM_NOT_FOUND",
        ),
    ] {
        send(&mut alice, "JoinRoom", data).await;
        expect_code(&mut alice, "RoomJoinFailed", code).await;
    }
    let frame = {
        send(
            &mut alice,
            "JoinRoom",
            json!({"game_name": "demo", "room_code": "ab!", "player_name": "Carol"}),
        )
        .await;
        expect_code(&mut alice, "RoomJoinFailed", "INVALID_ROOM_CODE").await
    };
    assert_eq!(
        frame["data"]["reason"],
        "Room code must be exactly 6 characters"
    );

    for kind in ["LeaveRoom", "PlayerReady", "StartGame"] {
        send(&mut alice, kind, Value::Null).await;
        expect_code(&mut alice, "Error", "NOT_IN_ROOM").await;
    }
    send(&mut alice, "GameData", json!({"data": {"x": 1}})).await;
    expect_code(&mut alice, "Error", "NOT_IN_ROOM").await;

    let (code, ..) = create(
        &mut alice,
        json!({"max_players": 1, "supports_authority": false}),
    )
    .await;
    assert!(
        code.len() == 6
            && code
                .chars()
                .all(|c| "23456789ABCDEFGHJKLMNPQRSTUVWXYZ".contains(c))
    );
    send(
        &mut alice,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Alice"}),
    )
    .await;
    expect_code(&mut alice, "RoomJoinFailed", "ALREADY_IN_ROOM").await;
    send(&mut alice, "GameData", json!({"data": "x".repeat(2000)})).await;
    expect_code(&mut alice, "Error", "MESSAGE_TOO_LARGE").await;

    let mut bob = authenticated(&server, "demo").await;
    send(
        &mut bob,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": "Bob"}),
    )
    .await;
    let full = expect_code(&mut bob, "RoomJoinFailed", "ROOM_FULL").await;
    assert_eq!(full["data"]["reason"], "Room is full");
    // Bob was turned away, yet whoever looks for him finds the peer he came in on.
    let peers = server.admin().await.snapshot.peers;
    assert!(
        peers
            .iter()
            .any(|p| p.identity.as_deref() == Some("Bob") && p.room.is_none()),
        "{peers:?}"
    );

    // limited-app allows one room per game.
    let mut first = authenticated(&server, "limited-app").await;
    create(&mut first, json!({})).await;
    let mut second = authenticated(&server, "limited-app").await;
    send(
        &mut second,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Late"}),
    )
    .await;
    expect_code(&mut second, "RoomJoinFailed", "MAX_ROOMS_PER_GAME_EXCEEDED").await;

    // Starting twice.
    send(&mut alice, "PlayerReady", Value::Null).await;
    recv_type(&mut alice, "LobbyStateChanged").await;
    send(&mut alice, "StartGame", Value::Null).await;
    recv_type(&mut alice, "GameStarting").await;
    send(&mut alice, "StartGame", Value::Null).await;
    expect_code(&mut alice, "Error", "INVALID_ROOM_STATE").await;
    send(
        &mut alice,
        "AuthorityRequest",
        json!({"become_authority": true}),
    )
    .await;
    expect_code(&mut alice, "AuthorityResponse", "AUTHORITY_NOT_SUPPORTED").await;
}

#[tokio::test]
async fn authority_spectators_and_rate_limits() {
    let server = TestServer::start(fast_config()).await;
    let mut alice = authenticated(&server, "demo").await;
    let (code, ..) = create(
        &mut alice,
        json!({"supports_authority": true, "max_players": 4, "max_spectators": 1}),
    )
    .await;
    let mut bob = authenticated(&server, "demo").await;
    join(&mut bob, &code, "Bob").await;
    recv_type(&mut alice, "PlayerJoined").await;
    send(
        &mut bob,
        "AuthorityRequest",
        json!({"become_authority": true}),
    )
    .await;
    let denied = expect_code(&mut bob, "AuthorityResponse", "AUTHORITY_CONFLICT").await;
    assert_eq!(denied["data"]["granted"], false);

    send(&mut bob, "StartGame", Value::Null).await;
    expect_code(&mut bob, "Error", "GAME_START_FORBIDDEN").await;
    send(&mut alice, "StartGame", Value::Null).await;
    expect_code(&mut alice, "Error", "GAME_START_NOT_READY").await;

    let mut watcher = authenticated(&server, "demo").await;
    send(
        &mut watcher,
        "JoinAsSpectator",
        json!({"game_name": "demo", "room_code": code, "spectator_name": "Watcher"}),
    )
    .await;
    let joined = recv_type(&mut watcher, "SpectatorJoined").await;
    assert_eq!(
        joined["data"]["current_players"].as_array().unwrap().len(),
        2
    );
    recv_type(&mut alice, "NewSpectatorJoined").await;
    let mut second = authenticated(&server, "demo").await;
    send(
        &mut second,
        "JoinAsSpectator",
        json!({"game_name": "demo", "room_code": code, "spectator_name": "Second"}),
    )
    .await;
    expect_code(&mut second, "SpectatorJoinFailed", "TOO_MANY_SPECTATORS").await;
    send(
        &mut second,
        "JoinAsSpectator",
        json!({"game_name": "demo", "room_code": "ZZZZZZ", "spectator_name": "Second"}),
    )
    .await;
    expect_code(&mut second, "SpectatorJoinFailed", "SPECTATOR_JOIN_FAILED").await;
    send(&mut second, "LeaveSpectator", Value::Null).await;
    expect_code(&mut second, "Error", "NOT_A_SPECTATOR").await;
    send(
        &mut watcher,
        "AuthorityRequest",
        json!({"become_authority": true}),
    )
    .await;
    expect_code(&mut watcher, "AuthorityResponse", "AUTHORITY_DENIED").await;

    let mut closed_room_owner = authenticated(&server, "demo").await;
    let (private_code, ..) =
        create(&mut closed_room_owner, json!({"allow_spectators": false})).await;
    send(
        &mut second,
        "JoinAsSpectator",
        json!({"game_name": "demo", "room_code": private_code, "spectator_name": "Second"}),
    )
    .await;
    expect_code(&mut second, "SpectatorJoinFailed", "SPECTATOR_NOT_ALLOWED").await;

    // 30 a minute in this config: the 31st is refused, the 61st closes.
    let mut chatty = authenticated(&server, "demo").await;
    for _ in 0..29 {
        send(&mut chatty, "Ping", Value::Null).await;
        assert_eq!(recv_json(&mut chatty).await["type"], "Pong");
    }
    send(&mut chatty, "Ping", Value::Null).await;
    expect_code(&mut chatty, "Error", "RATE_LIMIT_EXCEEDED").await;
    for _ in 0..30 {
        send(&mut chatty, "Ping", Value::Null).await;
    }
    assert_eq!(
        recv_close(&mut chatty).await,
        (4006, "inbound_rate_limited".to_owned())
    );
}

#[tokio::test]
async fn a_scripted_two_player_game_with_reconnection() {
    let server = TestServer::start(fast_config()).await;
    let mut admin = server.admin().await;
    let mut alice = authenticated(&server, "demo").await;
    let (code, room_id, alice_id, _) = create(
        &mut alice,
        json!({"supports_authority": true, "max_players": 2}),
    )
    .await;
    let mut bob = authenticated(&server, "demo").await;
    let joined = join(&mut bob, &code, "Bob").await;
    let bob_id = joined["data"]["player_id"].as_str().unwrap().to_owned();
    let bob_token = joined["data"]["reconnection_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        joined["data"]["current_players"].as_array().unwrap().len(),
        2
    );
    assert_eq!(joined["data"]["is_authority"], false);
    let player_joined = recv_type(&mut alice, "PlayerJoined").await;
    assert_eq!(player_joined["data"]["player"]["name"], "Bob");

    // The admin sees the room with its authority holder.
    let room = admin
        .wait_event(|e| matches!(e, Event::RoomUpdated { room } if room.players.len() == 2))
        .await;
    let Event::RoomUpdated { room } = room else {
        unreachable!()
    };
    assert_eq!(room.authority.as_deref(), Some(alice_id.as_str()));

    for socket in [&mut alice, &mut bob] {
        send(socket, "PlayerReady", Value::Null).await;
    }
    let lobby = recv_type(&mut alice, "LobbyStateChanged").await;
    let lobby = if lobby["data"]["all_ready"] == true {
        lobby
    } else {
        recv_type(&mut alice, "LobbyStateChanged").await
    };
    assert_eq!(lobby["data"]["all_ready"], true);
    send(&mut alice, "StartGame", Value::Null).await;
    let starting = recv_type(&mut bob, "GameStarting").await;
    assert_eq!(
        starting["data"]["peer_connections"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    recv_type(&mut alice, "GameStarting").await;

    send(
        &mut alice,
        "GameData",
        json!({"data": {"action": "move", "x": 1}}),
    )
    .await;
    let data = recv_type(&mut bob, "GameData").await;
    // Over v3, relayed game data carries the sender's epoch and sequence number.
    assert_eq!(
        data["data"],
        json!({"from_player": alice_id, "data": {"action": "move", "x": 1}, "seq": 1, "epoch": 1})
    );
    send(&mut bob, "GameData", json!({"data": {"action": "shoot"}})).await;
    assert_eq!(
        recv_type(&mut alice, "GameData").await["data"]["from_player"],
        bob_id
    );

    // Bob drops and comes back inside the window.
    drop(bob);
    let mut bob = authenticated(&server, "demo").await;
    send(
        &mut bob,
        "Reconnect",
        json!({"player_id": bob_id, "room_id": room_id, "auth_token": "not-the-token"}),
    )
    .await;
    expect_code(&mut bob, "ReconnectionFailed", "RECONNECTION_TOKEN_INVALID").await;
    send(
        &mut bob,
        "Reconnect",
        json!({"player_id": bob_id, "room_id": room_id, "auth_token": bob_token}),
    )
    .await;
    let reconnected = recv_type(&mut bob, "Reconnected").await;
    assert_eq!(reconnected["data"]["room_code"], code);
    let fresh_token = reconnected["data"]["reconnection_token"]
        .as_str()
        .unwrap()
        .to_owned();
    recv_type(&mut alice, "PlayerReconnected").await;
    let mut imposter = authenticated(&server, "demo").await;
    send(
        &mut imposter,
        "Reconnect",
        json!({"player_id": bob_id, "room_id": room_id, "auth_token": fresh_token}),
    )
    .await;
    expect_code(
        &mut imposter,
        "ReconnectionFailed",
        "PLAYER_ALREADY_CONNECTED",
    )
    .await;

    // Bob drops again and returns too late.
    drop(bob);
    let left = recv_type(&mut alice, "PlayerLeft").await;
    assert_eq!(left["data"]["player_id"], bob_id);
    let mut bob = authenticated(&server, "demo").await;
    send(
        &mut bob,
        "Reconnect",
        json!({"player_id": bob_id, "room_id": room_id, "auth_token": fresh_token}),
    )
    .await;
    expect_code(&mut bob, "ReconnectionFailed", "RECONNECTION_EXPIRED").await;

    // Alice leaves: the room closes; a reconnect into it fails.
    send(&mut alice, "LeaveRoom", Value::Null).await;
    assert_eq!(recv_json(&mut alice).await["type"], "RoomLeft");
    admin
        .wait_event(|e| matches!(e, Event::RoomClosed { code: c } if *c == code))
        .await;
}

#[tokio::test]
async fn a_reconnect_into_a_closed_room_fails() {
    let server = TestServer::start(fast_config()).await;
    let mut alice = authenticated(&server, "demo").await;
    let (code, room_id, _, _) = create(&mut alice, json!({"max_players": 2})).await;
    let mut bob = authenticated(&server, "demo").await;
    let joined = join(&mut bob, &code, "Bob").await;
    let (bob_id, token) = (
        joined["data"]["player_id"].clone(),
        joined["data"]["reconnection_token"].clone(),
    );
    drop(bob);
    let mut admin = server.admin().await;
    let closed = admin
        .command(Command::CloseRoom { room: code.clone() })
        .await;
    assert!(closed.ok, "{closed:?}");
    expect_code(&mut alice, "Error", "KICKED").await;
    let mut bob = authenticated(&server, "demo").await;
    send(
        &mut bob,
        "Reconnect",
        json!({"player_id": bob_id, "room_id": room_id, "auth_token": token}),
    )
    .await;
    expect_code(&mut bob, "ReconnectionFailed", "RECONNECTION_FAILED").await;
}

#[tokio::test]
async fn faults_admin_actions_and_closes() {
    let server = TestServer::start(fast_config()).await;
    let mut admin = server.admin().await;
    let mut alice = authenticated(&server, "demo").await;
    for (code, message, carrier) in [
        (
            "ROOM_CREATION_FAILED",
            json!({"type":"JoinRoom","data":{"game_name":"demo","player_name":"Alice"}}),
            "RoomJoinFailed",
        ),
        ("INTERNAL_ERROR", json!({"type":"PlayerReady"}), "Error"),
        ("STORAGE_ERROR", json!({"type":"PlayerReady"}), "Error"),
        (
            "SERVICE_UNAVAILABLE",
            json!({"type":"PlayerReady"}),
            "Error",
        ),
    ] {
        let armed = admin
            .command(Command::ArmFault {
                target: FaultTarget::Dialect {
                    dialect: Dialect::SignalFish,
                },
                code: code.into(),
                count: 1,
            })
            .await;
        assert!(armed.ok, "{armed:?}");
        send_json(&mut alice, message).await;
        expect_code(&mut alice, carrier, code).await;
    }

    let (code, ..) = create(
        &mut alice,
        json!({"supports_authority": true, "max_players": 3}),
    )
    .await;
    let mut bob = authenticated(&server, "demo").await;
    let joined = join(&mut bob, &code, "Bob").await;
    let bob_player = joined["data"]["player_id"].as_str().unwrap().to_owned();
    recv_type(&mut alice, "PlayerJoined").await;
    let transferred = admin
        .command(Command::TransferAuthority {
            room: code.clone(),
            player_id: bob_player.clone(),
        })
        .await;
    assert!(transferred.ok, "{transferred:?}");
    let change = recv_type(&mut bob, "AuthorityChanged").await;
    assert_eq!(
        change["data"],
        json!({"authority_player": bob_player, "you_are_authority": true})
    );
    assert_eq!(
        recv_type(&mut alice, "AuthorityChanged").await["data"]["you_are_authority"],
        false
    );
    assert!(
        admin
            .command(Command::RevokeAuthority { room: code.clone() })
            .await
            .ok
    );
    assert_eq!(
        recv_type(&mut bob, "AuthorityChanged").await["data"]["authority_player"],
        Value::Null
    );

    // An admin kick: an Error KICKED first, then close 4020; the others see the player leave.
    assert!(admin.command(Command::Resync).await.ok);
    let bob_peer = admin
        .snapshot
        .peers
        .iter()
        .find(|p| p.identity.as_deref() == Some("Bob"))
        .unwrap()
        .id
        .clone();
    assert!(
        admin
            .command(Command::Kick {
                peer: bob_peer,
                reason: Some("cheating, reported by three players".into())
            })
            .await
            .ok
    );
    let notice = expect_code(&mut bob, "Error", "KICKED").await;
    assert_eq!(
        notice["data"]["message"], "cheating, reported by three players",
        "the operator's reason reaches the player"
    );
    assert_eq!(
        recv_close(&mut bob).await,
        (4020, "admin_disconnect".to_owned())
    );
    assert_eq!(
        recv_type(&mut alice, "PlayerLeft").await["data"]["player_id"],
        bob_player
    );

    // Suspending the app: Error APP_ID_SUSPENDED (an AuthenticationError after authentication
    // is a protocol violation to the SDK), then close 4007.
    assert!(
        admin
            .command(Command::SetAppStatus {
                app: "demo".into(),
                status: AppStatus::Suspended
            })
            .await
            .ok
    );
    expect_code(&mut alice, "Error", "APP_ID_SUSPENDED").await;
    assert_eq!(recv_close(&mut alice).await, (4007, "kicked".to_owned()));
    assert!(
        admin
            .command(Command::SetAppStatus {
                app: "demo".into(),
                status: AppStatus::Active
            })
            .await
            .ok
    );

    // A connection that sends no message: Error ACTIVITY_TIMEOUT, close 4003. Shutdown: a v3
    // session is told GoingAway first, then close 4000.
    let mut idle = authenticated(&server, "demo").await;
    expect_code(&mut idle, "Error", "ACTIVITY_TIMEOUT").await;
    assert_eq!(
        recv_close(&mut idle).await,
        (4003, "activity_timeout".to_owned())
    );
    let mut last = authenticated(&server, "demo").await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(recv_type(&mut last, "GoingAway").await["type"], "GoingAway");
    assert_eq!(
        recv_close(&mut last).await,
        (4000, "server_shutdown".to_owned())
    );
    stopping.await.unwrap();
}

/// A socket on which nothing arrives at all, WebSocket pings included: Error
/// CONNECTION_IDLE_TIMEOUT, then close 4004 idle_timeout. A client that pings stays.
#[tokio::test]
async fn a_silent_socket_is_told_then_closed_4004() {
    let mut config = Config::demo();
    config.signal_fish.socket_idle_timeout_ms = 400;
    let server = TestServer::start(config).await;
    let mut silent = authenticated(&server, "demo").await;
    let told = expect_code(&mut silent, "Error", "CONNECTION_IDLE_TIMEOUT").await;
    assert_eq!(
        told["data"]["message"],
        "Idle timeout - no messages received for 1 seconds"
    );
    assert_eq!(
        recv_close(&mut silent).await,
        (4004, "idle_timeout".to_owned())
    );
}

/// A player that stops reading while its room keeps talking is closed 4002 once its outbox is
/// full, instead of growing the server's memory.
#[tokio::test]
async fn a_player_that_stops_reading_is_closed_as_a_slow_consumer() {
    let mut config = Config::demo();
    // The flood below must hit the outbox bound, not the sender's rate limit.
    config.signal_fish.messages_per_minute = 1_000_000;
    // A reader that is merely behind loses game data and stays; one whose writer makes no
    // progress for this long with frames waiting has stopped reading and is closed.
    config.outbox.stall_ms = 300;
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    let mut alice = authenticated(&server, "demo").await;
    let (code, ..) = create(&mut alice, json!({})).await;
    let mut bob = authenticated(&server, "demo").await;
    join(&mut bob, &code, "Bob").await;
    recv_type(&mut alice, "PlayerJoined").await;

    // Bob reads nothing from here on. 3000 frames of 15 kB are far more than the loopback
    // buffers plus the outbox's byte budget can hold, and bounded all the same.
    let filler = "x".repeat(15_000);
    let flood = tokio::spawn(async move {
        for n in 0..3000 {
            send(
                &mut alice,
                "GameData",
                json!({"data": {"n": n, "filler": filler}}),
            )
            .await;
        }
        alice
    });
    let event = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { code, .. } if code == "4002"))
        .await;
    let Event::ErrorEmitted { dialect, frame, .. } = event else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::SignalFish);
    assert_eq!(frame, "close 4002 slow_consumer");
    // Reading again drains what was queued; the close comes after it.
    assert_eq!(
        recv_close(&mut bob).await,
        (4002, "slow_consumer".to_owned())
    );
    // The rest of the flood is of no interest once the bound has held.
    flood.abort();
}

/// A room whose members all fall silent is closed as 0.12 closes it: Error ROOM_NOT_FOUND,
/// then close 4005 `room_inactive`; its reconnection seats go with it.
#[tokio::test]
async fn an_inactive_room_is_reaped_with_4005() {
    let mut config = Config::demo();
    config.signal_fish.inactive_room_timeout_ms = 1_200;
    let server = TestServer::start(config).await;
    let mut alice = authenticated(&server, "demo").await;
    let (_, room_id, player_id, token) = create(&mut alice, json!({})).await;
    expect_code(&mut alice, "Error", "ROOM_NOT_FOUND").await;
    assert_eq!(
        recv_close(&mut alice).await,
        (4005, "room_inactive".to_owned())
    );

    let mut again = authenticated(&server, "demo").await;
    send(
        &mut again,
        "Reconnect",
        json!({"player_id": player_id, "room_id": room_id, "auth_token": token}),
    )
    .await;
    expect_code(
        &mut again,
        "ReconnectionFailed",
        "RECONNECTION_TOKEN_INVALID",
    )
    .await;
}

/// A message budget set out of reach (a load test's 100,000,000 a minute) authenticates, and
/// the hour's and day's budgets it implies show as the most the field holds instead of
/// overflowing.
#[tokio::test]
async fn a_budget_out_of_reach_shows_as_the_largest_one() {
    let mut config = fast_config();
    config.signal_fish.messages_per_minute = 100_000_000;
    let server = TestServer::start(config).await;
    let (_socket, authenticated) = authenticated_with(&server, "demo").await;
    assert_eq!(
        authenticated["data"]["rate_limits"],
        json!({"per_minute": 100_000_000, "per_hour": u32::MAX, "per_day": u32::MAX})
    );
}
