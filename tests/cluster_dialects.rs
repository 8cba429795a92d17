//! The dialects across the nodes of a cluster: Signal Fish rooms when something fails (the
//! node holding a room dies, Redis goes away and comes back), app limits and quotas counted on
//! every node, Flow streams that see every node. Each test starts its own `redis-server` on a
//! free loopback port (`.ci/run` installs it). Signal Fish games across nodes, played by the
//! real SDK, are in tests/sdk_signal_fish.rs; pub/sub across nodes in tests/cluster.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::redis::*;
use common::*;
use relaydeck::protocol::admin::Event;
use serde_json::{json, Value};

/// Long enough for a heartbeat to lapse and be noticed on a loaded machine, with margin.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(15);

async fn send(socket: &mut Socket, kind: &str, data: Value) {
    send_json(socket, json!({"type": kind, "data": data})).await;
}

async fn authenticated_at(url: String) -> Socket {
    let (mut socket, _) =
        tokio::time::timeout(RECEIVE_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect");
    send(&mut socket, "Authenticate", json!({"app_id": "demo"})).await;
    assert_eq!(recv_json(&mut socket).await["type"], "Authenticated");
    assert_eq!(recv_json(&mut socket).await["type"], "ProtocolInfo");
    socket
}

async fn authenticated(server: &TestServer) -> Socket {
    authenticated_at(server.url("/v3/ws")).await
}

/// Create a room; returns its code, its id, the player id and the reconnection token.
async fn create(socket: &mut Socket, name: &str) -> (String, String, String, String) {
    send(
        socket,
        "JoinRoom",
        json!({"game_name": "demo", "player_name": name, "max_players": 4}),
    )
    .await;
    let joined = recv_type(socket, "RoomJoined").await;
    let d = &joined["data"];
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

/// The next frame carrying an error code, skipping notices.
async fn next_error(socket: &mut Socket) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["data"].get("error_code").is_some() {
            return frame;
        }
    }
}

/// Bob's room cannot be reached: he is told, and closed so that his client reconnects rather
/// than waits.
async fn told_to_come_back(bob: &mut Socket) {
    let notice = next_error(bob).await;
    assert_eq!(notice["type"], "Error", "{notice}");
    assert_eq!(
        notice["data"]["error_code"], "SERVICE_UNAVAILABLE",
        "{notice}"
    );
    assert_eq!(recv_close(bob).await, (1013, "try_again_later".to_owned()));
}

/// Wait (bounded) until `server`'s metrics say whether it reaches Redis.
async fn redis_up_is(server: &TestServer, node: &str, up: bool) {
    let wanted = format!(
        "relaydeck_cluster_redis_up{{node=\"{node}\"}} {}",
        u8::from(up)
    );
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    while !metrics(server).await.contains(&wanted) {
        assert!(Instant::now() < deadline, "{node} never reported {wanted}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn players_elsewhere_are_told_when_the_node_holding_their_room_dies() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let (mut b, b_addr, _dir) = node_process(&redis, "b");
    let mut alice = authenticated_at(format!("ws://{b_addr}/v3/ws")).await;
    let (code, ..) = create(&mut alice, "Alice").await;
    let mut bob = authenticated(&a).await;
    join(&mut bob, &code, "Bob").await;

    // Killed outright: no goodbye, no close. Node a notices the lapsed heartbeat and tells
    // Bob, whose room went with the node, instead of leaving him waiting.
    b.kill().unwrap();
    b.wait().unwrap();
    told_to_come_back(&mut bob).await;

    // The dead node's claim on the code is gone with it: the code can name a new room.
    let mut carol = authenticated(&a).await;
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        send(
            &mut carol,
            "JoinRoom",
            json!({"game_name": "demo", "room_code": code, "player_name": "Carol"}),
        )
        .await;
        let answer = recv_json(&mut carol).await;
        if answer["type"] == "RoomJoined" {
            break;
        }
        // Until the claim is released the code still points at the dead node.
        assert!(
            Instant::now() < deadline,
            "the code stayed claimed: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn without_redis_local_rooms_play_on_and_a_seat_elsewhere_comes_back_with_it() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut alice = authenticated(&a).await;
    let (code, room_id, _, _) = create(&mut alice, "Alice").await;
    let mut bob = authenticated(&b).await;
    let joined = join(&mut bob, &code, "Bob").await;
    let bob_player = joined["data"]["player_id"].as_str().unwrap().to_owned();
    let bob_token = joined["data"]["reconnection_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut dave = authenticated(&b).await;
    let mut frank = authenticated(&a).await;

    redis.kill();
    // Bob's frames can no longer reach the room.
    told_to_come_back(&mut bob).await;
    redis_up_is(&b, "b", false).await;

    // A room on another node cannot be reached: the documented storage error, at once.
    send(
        &mut dave,
        "JoinRoom",
        json!({"game_name": "demo", "room_code": code, "player_name": "Dave"}),
    )
    .await;
    let refused = next_error(&mut dave).await;
    assert_eq!(refused["type"], "RoomJoinFailed", "{refused}");
    assert_eq!(refused["data"]["error_code"], "STORAGE_ERROR", "{refused}");

    // Alice's room is on her own node: Frank joins it and they play without Redis.
    join(&mut frank, &code, "Frank").await;
    send(&mut alice, "GameData", json!({"data": {"tick": 1}})).await;
    let data = recv_type(&mut frank, "GameData").await;
    assert_eq!(data["data"]["data"], json!({"tick": 1}));

    // Redis returns: Bob takes his seat back through node b within the window.
    let _redis = Redis::start_on(port);
    redis_up_is(&b, "b", true).await;
    redis_up_is(&a, "a", true).await;
    let mut again = authenticated(&b).await;
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        send(
            &mut again,
            "Reconnect",
            json!({"player_id": bob_player, "room_id": room_id, "auth_token": bob_token}),
        )
        .await;
        let answer = recv_json(&mut again).await;
        if answer["type"] == "Reconnected" {
            break;
        }
        // Until both nodes are back on the bus the room's node cannot be reached.
        assert_eq!(answer["data"]["error_code"], "STORAGE_ERROR", "{answer}");
        assert!(Instant::now() < deadline, "Bob never got his seat back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(&mut again, "GameData", json!({"data": {"back": true}})).await;
    loop {
        let frame = recv_type(&mut alice, "GameData").await;
        if frame["data"]["data"] == json!({"back": true}) {
            break;
        }
    }
}

// App limits and quotas.

/// `limited-app` in the demo config: 2 connections, 3 messages an hour.
const LIMITED: &str = "/v1?key=pk_limited";
const CHANNEL: &str = "limited/room";

/// Wait until `console`'s node has read a heartbeat of `other` written after `after_ms`: from
/// then on its limits count what `other` had at that moment.
async fn heard_from_since(console: &mut Admin, other: &str, after_ms: u64) {
    console
        .wait_event(|event| {
            matches!(event, Event::Nodes { nodes }
                if nodes.iter().any(|n| n.node_id == other && n.heartbeat_at_ms > after_ms))
        })
        .await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn welcomed(server: &TestServer) -> Socket {
    let mut socket = server.connect(LIMITED).await;
    recv_type(&mut socket, "welcome").await;
    socket
}

#[tokio::test]
async fn an_apps_connection_limit_counts_its_peers_on_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut console = a.admin().await;
    let _first = welcomed(&a).await;
    let _second = welcomed(&b).await;
    heard_from_since(&mut console, "b", now_ms()).await;

    // One on each node: the app's two connections are taken, and node a knows it.
    let mut third = a.connect(LIMITED).await;
    let (code, _) = recv_close(&mut third).await;
    assert_eq!(code, 4010, "over_concurrent_limit across the cluster");
}

#[tokio::test]
async fn an_apps_message_quota_counts_its_messages_on_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut console = b.admin().await;
    let mut alice = welcomed(&a).await;
    let mut bob = welcomed(&b).await;
    for n in 0..2 {
        send_json(
            &mut alice,
            json!({"type":"publish","channel":CHANNEL,"data":n,"requestId":format!("a{n}")}),
        )
        .await;
        recv_type(&mut alice, "ack").await;
    }
    heard_from_since(&mut console, "a", now_ms()).await;

    // Two of the three spent on node a: node b lets one more through, then refuses.
    send_json(
        &mut bob,
        json!({"type":"publish","channel":CHANNEL,"data":"b0","requestId":"b0"}),
    )
    .await;
    recv_type(&mut bob, "ack").await;
    send_json(
        &mut bob,
        json!({"type":"publish","channel":CHANNEL,"data":"b1","requestId":"b1"}),
    )
    .await;
    let refused = recv_type(&mut bob, "error").await;
    assert_eq!(refused["code"], "over_message_quota", "{refused}");
    assert_eq!(refused["requestId"], "b1", "{refused}");
}

// Flow streams.

#[tokio::test]
async fn a_flow_stream_on_one_node_sees_the_peers_and_errors_of_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut stream = a.flow().await;
    send_json(
        &mut stream,
        json!({"subscription_id": "p", "action": "subscribe", "topic": "peers"}),
    )
    .await;
    send_json(&mut stream, json!({"subscription_id": "e", "action": "subscribe", "topic": "errors", "arguments": {"dialect": "pubsub"}})).await;

    // A pub/sub peer on node b, and an error it earns there.
    let mut bob = b.connect("/v1?key=pk_demo").await;
    recv_type(&mut bob, "welcome").await;
    send_json(
        &mut bob,
        json!({"type": "publish", "channel": "elsewhere", "data": 1}),
    )
    .await;
    recv_type(&mut bob, "error").await;

    let mut saw_peer = false;
    let mut saw_error = false;
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    while !(saw_peer && saw_error) {
        assert!(
            Instant::now() < deadline,
            "node a's stream never showed node b's peer and error"
        );
        let frame = recv_json(&mut stream).await;
        match frame["subscription_id"].as_str() {
            Some("p") if frame["payload"]["peer"]["node"] == "b" => saw_peer = true,
            Some("e") if frame["payload"]["code"] == "channel_not_authorized" => saw_error = true,
            _ => {}
        }
    }
}

// The console.

/// A console on node a taps a player on node b: the command runs on node b, and the player's
/// frames reach the console from there.
#[tokio::test]
async fn a_console_on_one_node_taps_a_player_of_another() {
    use relaydeck::protocol::admin::{Command, Direction};
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut console = a.admin().await;
    let mut bob = authenticated(&b).await;
    let connected = console
        .wait_event(|event| {
            matches!(event, Event::PeerUpdated { peer } | Event::PeerConnected { peer }
                if peer.node.as_deref() == Some("b") && peer.app.as_deref() == Some("demo"))
        })
        .await;
    let (Event::PeerUpdated { peer } | Event::PeerConnected { peer }) = connected else {
        unreachable!()
    };
    let tapped = console
        .command(Command::Tap {
            peer: peer.id.clone(),
            on: true,
        })
        .await;
    assert!(tapped.ok, "{}", tapped.message);
    send(&mut bob, "Ping", json!(null)).await;
    assert_eq!(recv_json(&mut bob).await["type"], "Pong");
    console
        .wait_event(|event| {
            matches!(event, Event::Frame { peer: id, direction: Direction::In, text }
                if *id == peer.id && text.contains("Ping"))
        })
        .await;
    console
        .wait_event(|event| {
            matches!(event, Event::Frame { peer: id, direction: Direction::Out, text }
                if *id == peer.id && text.contains("Pong"))
        })
        .await;
}
