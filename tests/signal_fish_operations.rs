//! Signal Fish `room_operation_ids` over real sockets, as signal-fish-server 0.12 has it: the
//! capability granted only to a v3 session that asks for it; membership requests and
//! moderation sent as `RoomOperation`s answered by one `RoomOperationResult` carrying the
//! operation's id; and every `RoomOperation` of a session without the capability refused
//! with a top-level `Error`, changing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{Command, FaultTarget};
use serde_json::{json, Value};

const CAPABILITY: &str = "room_operation_ids";
const NOT_NEGOTIATED: &str = "RoomOperation requires the negotiated room_operation_ids capability";

/// Authenticate on `path`, asking for the capability when `ask`; returns the socket and
/// ProtocolInfo's capabilities.
async fn authenticated(
    server: &TestServer,
    path: &str,
    version: Option<u16>,
    ask: bool,
) -> (Socket, Vec<String>) {
    let mut socket = server.connect(path).await;
    let mut data = json!({"app_id": "demo", "sdk_version": "1.0.0"});
    if let Some(version) = version {
        data["protocol_version"] = json!(version);
    }
    if ask {
        data["requested_capabilities"] = json!([CAPABILITY]);
    }
    send_json(&mut socket, json!({"type": "Authenticate", "data": data})).await;
    assert_eq!(recv_json(&mut socket).await["type"], "Authenticated");
    let info = recv_json(&mut socket).await;
    assert_eq!(info["type"], "ProtocolInfo");
    let capabilities = info["data"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (socket, capabilities)
}

fn operation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn operate(socket: &mut Socket, id: &str, kind: &str, data: Value) {
    let operation = if data.is_null() {
        json!({"type": kind})
    } else {
        json!({"type": kind, "data": data})
    };
    send_json(
        socket,
        json!({"type": "RoomOperation", "data": {"operation_id": id, "operation": operation}}),
    )
    .await;
}

/// Send a fresh operation and read its result (`type` and `data`).
async fn ask(socket: &mut Socket, kind: &str, data: Value) -> Value {
    let id = operation_id();
    operate(socket, &id, kind, data).await;
    result_of(socket, &id).await
}

/// The answer to operation `id`: no other `RoomOperationResult` and no `Error` may come
/// first (room notices may). Returns the result (`type` and `data`).
async fn result_of(socket: &mut Socket, id: &str) -> Value {
    loop {
        let frame = recv_json(socket).await;
        assert_ne!(frame["type"], "Error", "{frame}");
        if frame["type"] == "RoomOperationResult" {
            assert_eq!(frame["data"]["operation_id"], id, "{frame}");
            return frame["data"]["result"].clone();
        }
        for answer in ["RoomJoined", "RoomLeft", "Reconnected", "SpectatorJoined"] {
            assert_ne!(frame["type"], answer, "an uncorrelated answer: {frame}");
        }
    }
}

/// Ping and read up to the Pong: every frame queued before it, in order.
async fn frames_until_pong(socket: &mut Socket) -> Vec<Value> {
    send_json(socket, json!({"type": "Ping"})).await;
    let mut frames = Vec::new();
    for _ in 0..64 {
        let frame = recv_json(socket).await;
        if frame["type"] == "Pong" {
            return frames;
        }
        frames.push(frame);
    }
    panic!("no Pong among {frames:?}");
}

#[tokio::test]
async fn the_capability_is_granted_to_v3_sessions_that_ask_for_it() {
    let server = TestServer::demo().await;
    for (path, version, ask, granted) in [
        ("/v3/ws", None, true, true),
        ("/v2/ws", Some(3), true, true),
        ("/v3/ws", None, false, false),
        ("/v2/ws", None, true, false),
        ("/v3/ws", Some(2), true, false),
    ] {
        let (_, capabilities) = authenticated(&server, path, version, ask).await;
        assert_eq!(
            capabilities.iter().any(|c| c == CAPABILITY),
            granted,
            "{path} {version:?} asked={ask}: {capabilities:?}"
        );
    }
}

#[tokio::test]
async fn membership_and_moderation_operations_are_answered_with_their_ids() {
    let server = TestServer::demo().await;
    let (mut alice, _) = authenticated(&server, "/v3/ws", None, true).await;
    let created = ask(
        &mut alice,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Alice", "supports_authority": true}),
    )
    .await;
    assert_eq!(created["type"], "RoomJoined");
    assert_eq!(created["data"]["is_authority"], true);
    assert!(created["data"]["reconnection_token"].is_string());
    let code = created["data"]["room_code"].as_str().unwrap().to_owned();
    let room_id = created["data"]["room_id"].as_str().unwrap().to_owned();

    let (mut bob, _) = authenticated(&server, "/v3/ws", None, true).await;
    let join_bob = json!({"game_name": "demo", "room_code": code, "player_name": "Bob"});
    assert_eq!(
        ask(&mut bob, "JoinRoom", join_bob.clone()).await["type"],
        "RoomJoined"
    );
    // The others hear of it as room traffic, uncorrelated.
    recv_type(&mut alice, "PlayerJoined").await;

    assert_eq!(
        ask(&mut bob, "LeaveRoom", Value::Null).await,
        json!({"type": "RoomLeft"})
    );
    recv_type(&mut alice, "PlayerLeft").await;
    // Leaving again: OperationFailed in 0.12's words, never a top-level Error.
    let id = operation_id();
    operate(&mut bob, &id, "LeaveRoom", Value::Null).await;
    assert_eq!(
        result_of(&mut bob, &id).await,
        json!({"type": "OperationFailed", "data": {"reason": "Not currently in a room", "error_code": "NOT_IN_ROOM"}})
    );
    // A join refusal stays a join refusal, inside the result.
    let refused = ask(
        &mut bob,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": "bad name!"}),
    )
    .await;
    assert_eq!(refused["type"], "RoomJoinFailed", "{refused}");
    assert_eq!(refused["data"]["error_code"], "INVALID_PLAYER_NAME");
    let rejoined = ask(&mut bob, "JoinRoom", join_bob).await;
    assert_eq!(rejoined["type"], "RoomJoined");
    let bob_id = rejoined["data"]["player_id"].as_str().unwrap().to_owned();

    // A spectator comes and goes.
    let (mut carol, _) = authenticated(&server, "/v3/ws", None, true).await;
    let watching = ask(
        &mut carol,
        "JoinAsSpectator",
        json!({"game_name": "demo", "room_code": code, "spectator_name": "Carol"}),
    )
    .await;
    assert_eq!(watching["type"], "SpectatorJoined");
    assert_eq!(watching["data"]["room_id"], room_id);
    let left = ask(&mut carol, "LeaveSpectator", Value::Null).await;
    assert_eq!(left["type"], "SpectatorLeft");
    assert_eq!(left["data"]["reason"], "voluntary_leave");
    let id = operation_id();
    operate(&mut carol, &id, "LeaveSpectator", Value::Null).await;
    assert_eq!(
        result_of(&mut carol, &id).await["data"]["error_code"],
        "NOT_A_SPECTATOR"
    );

    // Moderation: the authority kicks Bob.
    let id = operation_id();
    operate(&mut alice, &id, "KickPlayer", json!({"player_id": bob_id})).await;
    assert_eq!(
        result_of(&mut alice, &id).await,
        json!({"type": "PlayerKicked", "data": {"player_id": bob_id}})
    );
    assert_eq!(recv_close(&mut bob).await.0, 4007);

    // An operation id spelled any other way than lowercase hyphenated does not parse.
    let upper = operation_id().to_uppercase();
    operate(&mut alice, &upper, "RegenerateRoomCode", Value::Null).await;
    let refused = recv_type(&mut alice, "Error").await;
    assert_eq!(
        refused["data"],
        json!({"message": "Invalid client message", "error_code": "INVALID_INPUT"})
    );
}

#[tokio::test]
async fn a_reconnection_is_answered_with_its_operation_id() {
    let server = TestServer::demo().await;
    let (mut alice, _) = authenticated(&server, "/v3/ws", None, true).await;
    let id = operation_id();
    operate(
        &mut alice,
        &id,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Alice"}),
    )
    .await;
    let code = result_of(&mut alice, &id).await["data"]["room_code"].clone();
    let (mut bob, _) = authenticated(&server, "/v3/ws", None, true).await;
    let id = operation_id();
    operate(
        &mut bob,
        &id,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": "Bob"}),
    )
    .await;
    let joined = result_of(&mut bob, &id).await["data"].clone();
    let seat = |token: &Value| json!({"player_id": joined["player_id"], "room_id": joined["room_id"], "auth_token": token});
    close_and_drain(&mut bob).await;

    let (mut again, _) = authenticated(&server, "/v3/ws", None, true).await;
    let refused = ask(&mut again, "Reconnect", seat(&json!("not-the-token"))).await;
    assert_eq!(refused["type"], "ReconnectionFailed", "{refused}");
    assert_eq!(refused["data"]["error_code"], "RECONNECTION_TOKEN_INVALID");
    // The server may not have seen the old connection end yet: a bounded number of tries,
    // each a full round trip, until the seat is free.
    let mut back = Value::Null;
    for _ in 0..100 {
        let id = operation_id();
        operate(
            &mut again,
            &id,
            "Reconnect",
            seat(&joined["reconnection_token"]),
        )
        .await;
        back = result_of(&mut again, &id).await;
        if back["data"]["error_code"] != "PLAYER_ALREADY_CONNECTED" {
            break;
        }
    }
    assert_eq!(back["type"], "Reconnected", "{back}");
    assert_eq!(back["data"]["player_id"], joined["player_id"]);
    recv_type(&mut alice, "PlayerReconnected").await;
}

#[tokio::test]
async fn without_the_capability_every_room_operation_is_refused_and_changes_nothing() {
    let server = TestServer::demo().await;
    // The authority of the room never asked for the capability.
    let (mut alice, _) = authenticated(&server, "/v3/ws", None, false).await;
    send_json(
        &mut alice,
        json!({"type": "JoinRoom", "data": {"game_name": "demo", "player_name": "Alice", "supports_authority": true}}),
    )
    .await;
    let created = recv_type(&mut alice, "RoomJoined").await;
    assert_eq!(created["data"]["is_authority"], true);
    let code = created["data"]["room_code"].clone();
    let (mut bob, _) = authenticated(&server, "/v2/ws", None, false).await;
    send_json(
        &mut bob,
        json!({"type": "JoinRoom", "data": {"game_name": "demo", "room_code": code, "player_name": "Bob"}}),
    )
    .await;
    let bob_id = recv_type(&mut bob, "RoomJoined").await["data"]["player_id"].clone();
    recv_type(&mut alice, "PlayerJoined").await;
    frames_until_pong(&mut alice).await;
    frames_until_pong(&mut bob).await;

    for (kind, data) in [
        ("KickPlayer", json!({"player_id": bob_id})),
        ("BanPlayer", json!({"player_id": bob_id})),
        ("TransferAuthority", json!({"player_id": bob_id})),
        ("RegenerateRoomCode", Value::Null),
        ("SetRoomAccess", json!({"password": "sealed"})),
        ("LeaveRoom", Value::Null),
    ] {
        operate(&mut alice, &operation_id(), kind, data).await;
        let frames = frames_until_pong(&mut alice).await;
        assert_eq!(
            frames,
            vec![
                json!({"type": "Error", "data": {"message": NOT_NEGOTIATED, "error_code": "INVALID_INPUT"}})
            ],
            "{kind}"
        );
    }
    // Bob is still seated, and heard of nothing.
    let heard = frames_until_pong(&mut bob).await;
    assert!(heard.is_empty(), "{heard:?}");
    send_json(
        &mut bob,
        json!({"type": "GameData", "data": {"data": {"still": "here"}}}),
    )
    .await;
    assert_eq!(
        recv_type(&mut alice, "GameData").await["data"]["data"],
        json!({"still": "here"})
    );

    // v2 has no operations at all: the version is what is wrong.
    operate(&mut bob, &operation_id(), "LeaveRoom", Value::Null).await;
    assert_eq!(
        frames_until_pong(&mut bob).await,
        vec![
            json!({"type": "Error", "data": {"message": NOT_NEGOTIATED, "error_code": "UNSUPPORTED_PROTOCOL_VERSION"}})
        ]
    );
}

/// Bob, on node b, joins and leaves Alice's room on node a by RoomOperation: node a answers
/// through the tunnel, with Bob's operation ids.
#[tokio::test]
async fn a_correlated_join_into_another_nodes_room_is_answered_with_its_id() {
    let redis = common::redis::Redis::start();
    let a = common::redis::node(&redis, "a").await;
    let b = common::redis::node(&redis, "b").await;
    let (mut alice, _) = authenticated(&a, "/v3/ws", None, true).await;
    let id = operation_id();
    operate(
        &mut alice,
        &id,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": "Alice"}),
    )
    .await;
    let code = result_of(&mut alice, &id).await["data"]["room_code"].clone();

    let (mut bob, capabilities) = authenticated(&b, "/v3/ws", None, true).await;
    assert!(capabilities.iter().any(|c| c == CAPABILITY));
    let joined = ask(
        &mut bob,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": "Bob"}),
    )
    .await;
    assert_eq!(joined["type"], "RoomJoined");
    assert_eq!(joined["data"]["room_code"], code);
    recv_type(&mut alice, "PlayerJoined").await;
    assert_eq!(
        ask(&mut bob, "LeaveRoom", Value::Null).await,
        json!({"type": "RoomLeft"})
    );
    recv_type(&mut alice, "PlayerLeft").await;
}

/// An armed fault answers the operation it refuses: a join's as RoomJoinFailed, any other's
/// as OperationFailed, each with the operation's id.
#[tokio::test]
async fn an_armed_fault_refuses_the_operation_inside_its_result() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let (mut alice, _) = authenticated(&server, "/v3/ws", None, true).await;
    for (kind, data, carrier) in [
        (
            "JoinRoom",
            json!({"game_name": "demo", "player_name": "Alice"}),
            "RoomJoinFailed",
        ),
        ("LeaveRoom", Value::Null, "OperationFailed"),
    ] {
        let armed = admin
            .command(Command::ArmFault {
                target: FaultTarget::Dialect {
                    dialect: Dialect::SignalFish,
                },
                code: "STORAGE_ERROR".into(),
                count: 1,
            })
            .await;
        assert!(armed.ok, "{armed:?}");
        let id = operation_id();
        operate(&mut alice, &id, kind, data).await;
        let refused = result_of(&mut alice, &id).await;
        assert_eq!(refused["type"], carrier, "{kind}: {refused}");
        assert_eq!(refused["data"]["error_code"], "STORAGE_ERROR");
    }
}
