//! Acting on proxied peers through the proxy's `/admin`: tap, inject toward the upstream
//! and toward the client, faults (server-side codes answered at the proxy, and path faults
//! on the frames relayed either way), bans by address and by identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::proxy::*;
use common::*;
use relaydeck::protocol::admin::{Command, Event};
use serde_json::{json, Value};

#[tokio::test]
async fn a_tapped_proxied_player_shows_both_ways_and_takes_frames_injected_either_way() {
    use relaydeck::protocol::admin::{Direction, InjectTarget};
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    let mut alice = raw_player(&proxy).await;
    let code = create_room(&mut alice, "Alice").await;
    let player = proxied_player_in(&mut admin, &code).await;
    let tapped = admin
        .command(Command::Tap {
            peer: player.id.clone(),
            on: true,
        })
        .await;
    assert!(tapped.ok, "{}", tapped.message);

    // Toward the upstream, as if Alice had sent it: the upstream's answer reaches her.
    let injected = admin
        .command(Command::Inject {
            target: InjectTarget::Peer {
                peer: player.id.clone(),
            },
            frame: json!({"type": "LeaveRoom"}).to_string(),
        })
        .await;
    assert!(injected.ok, "{}", injected.message);
    recv_type(&mut alice, "RoomLeft").await;
    admin
        .wait_event(|e| matches!(e, Event::Frame { direction: Direction::In, text, .. } if text.contains("LeaveRoom")))
        .await;
    admin
        .wait_event(|e| matches!(e, Event::Frame { direction: Direction::Out, text, .. } if text.contains("RoomLeft")))
        .await;

    // Toward Alice only: the upstream never sees it.
    let notice = json!({"type": "Error", "data": {"message": "from the operator", "error_code": "INTERNAL_ERROR"}});
    let injected = admin
        .command(Command::Inject {
            target: InjectTarget::ToClient {
                peer: player.id.clone(),
            },
            frame: notice.to_string(),
        })
        .await;
    assert!(injected.ok, "{}", injected.message);
    assert_eq!(recv_type(&mut alice, "Error").await, notice);
    close_and_drain(&mut alice).await;
}

#[tokio::test]
async fn a_fault_armed_on_a_proxied_player_answers_its_next_request_at_the_proxy() {
    use relaydeck::protocol::admin::FaultTarget;
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    let mut alice = raw_player(&proxy).await;
    let code = create_room(&mut alice, "Alice").await;
    let player = proxied_player_in(&mut admin, &code).await;
    let armed = admin
        .command(Command::ArmFault {
            target: FaultTarget::Peer {
                peer: player.id.clone(),
            },
            code: "ROOM_FULL".into(),
            count: 1,
        })
        .await;
    assert!(armed.ok, "{}", armed.message);
    send_json(&mut alice, json!({"type": "LeaveRoom"})).await;
    let refused = recv_type(&mut alice, "Error").await;
    assert_eq!(refused["data"]["error_code"], "ROOM_FULL");
    admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { code, .. } if code == "ROOM_FULL"))
        .await;
    // Spent: the next request reaches the upstream, which still has Alice in her room.
    send_json(&mut alice, json!({"type": "LeaveRoom"})).await;
    recv_type(&mut alice, "RoomLeft").await;
    close_and_drain(&mut alice).await;
}

/// A correlated RoomOperation (room_operation_ids) whose answer a fault replaces is answered
/// inside its result, carrying its id, as relaydeck's own server answers it: a client waits
/// for that result and no other frame.
#[tokio::test]
async fn a_fault_on_a_correlated_operation_is_answered_inside_its_result() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    let (mut player, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "ROOM_FULL", 2).await;
    let id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    for (operation, result_type) in [
        (
            json!({"type": "JoinRoom", "data": {"game_name": "g", "player_name": "Ann"}}),
            "RoomJoinFailed",
        ),
        (json!({"type": "LeaveRoom"}), "OperationFailed"),
    ] {
        send_json(
            &mut player,
            json!({"type": "RoomOperation", "data": {"operation_id": id, "operation": operation}}),
        )
        .await;
        let answer = recv_json(&mut player).await;
        assert_eq!(answer["type"], "RoomOperationResult", "{answer}");
        assert_eq!(answer["data"]["operation_id"], id, "{answer}");
        assert_eq!(answer["data"]["result"]["type"], result_type, "{answer}");
        assert_eq!(
            answer["data"]["result"]["data"]["error_code"], "ROOM_FULL",
            "{answer}"
        );
    }
    close_and_drain(&mut player).await;
}

#[tokio::test]
async fn an_address_banned_at_the_proxy_is_refused_before_the_upstream_hears_of_it() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&format!("ws://{}", upstream.addr)).await;
    let mut live = raw_player(&proxy).await;
    let mut admin = proxy.admin().await;
    let banned = admin
        .command(Command::Ban {
            target: relaydeck::protocol::admin::BanTarget::Address {
                ip: "127.0.0.1".into(),
            },
            duration_ms: 3_600_000,
            reason: "connection flood".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    assert_eq!(recv_close(&mut live).await.0, 4020, "live peers are kicked");
    let mut upstream_admin = upstream.admin().await;
    let peers_before = upstream_admin.snapshot.peers.len();
    for path in ["/v2/ws", "/v1?key=pk_demo", "/health"] {
        let refused = reqwest::Client::new()
            .get(proxy.http(path))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send();
        let refused = tokio::time::timeout(RECEIVE_TIMEOUT, refused)
            .await
            .expect("an answer before the timeout")
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{path}");
        let body = refused.text().await.unwrap();
        assert!(body.contains("connection flood"), "{path}: {body}");
    }
    assert!(admin.command(Command::Resync).await.ok);
    assert!(
        admin.snapshot.peers.is_empty(),
        "{:?}",
        admin.snapshot.peers
    );
    assert!(upstream_admin.command(Command::Resync).await.ok);
    assert!(upstream_admin.snapshot.peers.len() <= peers_before);
    let lifted = admin
        .command(Command::Unban {
            ban: banned.data.unwrap()["ban"].as_u64().unwrap(),
        })
        .await;
    assert!(lifted.ok, "{}", lifted.message);
    raw_player(&proxy).await;
}

#[tokio::test]
async fn an_identity_banned_at_the_proxy_is_kicked_when_its_frames_name_it() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&format!("ws://{}", upstream.addr)).await;
    let mut admin = proxy.admin().await;
    let banned = admin
        .command(Command::Ban {
            target: relaydeck::protocol::admin::BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Mallory".into(),
            },
            duration_ms: 3_600_000,
            reason: "griefing".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    // Someone else plays on.
    let mut alice = raw_player(&proxy).await;
    create_room(&mut alice, "Alice").await;
    // Mallory's join is answered by the upstream, but the answer that names her never
    // reaches her: she is closed as a banned live peer is.
    let mut mallory = raw_player(&proxy).await;
    send_json(
        &mut mallory,
        json!({"type": "JoinRoom", "data": {"game_name": "arena", "player_name": "Mallory", "max_players": 4}}),
    )
    .await;
    loop {
        match tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(&mut mallory))
            .await
            .expect("a close before the timeout")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                assert!(!text.as_str().contains("RoomJoined"), "{text}");
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                let frame = frame.expect("a close frame with a code");
                assert_eq!(u16::from(frame.code), 4020, "{frame:?}");
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    }
    send_json(&mut alice, json!({"type": "Ping"})).await;
    recv_type(&mut alice, "Pong").await;
}

/// The next text frame as it came, JSON or not.
async fn recv_text(socket: &mut Socket) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Close(frame) => panic!("expected a frame, got close {frame:?}"),
            _ => continue,
        }
    }
}

/// Arm `code` on `peer` for its next `count` frames; the result's message.
async fn arm(admin: &mut Admin, peer: &str, code: &str, count: u32) -> String {
    use relaydeck::protocol::admin::FaultTarget;
    let armed = admin
        .command(Command::ArmFault {
            target: FaultTarget::Peer {
                peer: peer.to_owned(),
            },
            code: code.to_owned(),
            count,
        })
        .await;
    assert!(armed.ok, "{code}: {}", armed.message);
    armed.message
}

async fn ping(socket: &mut Socket) {
    send_json(socket, json!({"type": "Ping"})).await;
}

/// An authenticated player of the real server through the proxy, and its peer id. It is in
/// no room, so nothing reaches it unasked: the only frames a fault can act on are the
/// answers to what the test sends.
async fn faulted_player(proxy: &TestServer, admin: &mut Admin) -> (Socket, String) {
    use tokio_tungstenite::MaybeTlsStream;
    let player = raw_player(proxy).await;
    let MaybeTlsStream::Plain(tcp) = player.get_ref() else {
        unreachable!("the proxy listens without TLS")
    };
    // The proxy names a peer by the address it sees, this socket's own.
    let addr = tcp.local_addr().unwrap().to_string();
    assert!(admin.command(Command::Resync).await.ok);
    let peer = admin
        .snapshot
        .peers
        .iter()
        .find(|p| p.addr == addr)
        .unwrap_or_else(|| panic!("no peer from {addr} in {:?}", admin.snapshot.peers))
        .id
        .clone();
    (player, peer)
}

/// The pongs that arrive before the answer to a join: the upstream answers in order, so the
/// join marks the end of what the fault could act on, and counting needs no wait.
async fn pongs_before_joining(player: &mut Socket) -> usize {
    send_json(
        player,
        json!({"type": "JoinRoom", "data": {"game_name": GAME, "player_name": "Marker", "max_players": 2}}),
    )
    .await;
    let mut pongs = 0;
    loop {
        let frame = recv_json(player).await;
        match frame["type"].as_str() {
            Some("Pong") => pongs += 1,
            Some("RoomJoined") => return pongs,
            _ => panic!("unexpected {frame}"),
        }
    }
}

#[tokio::test]
async fn path_faults_toward_the_client_drop_duplicate_corrupt_delay_and_close_the_real_servers_frames(
) {
    let real = RealSignalFish::start().await;
    let proxy = proxy_to(&real.url()).await;
    let mut admin = proxy.admin().await;

    let (mut alice, peer) = faulted_player(&proxy, &mut admin).await;
    let said = arm(&mut admin, &peer, "drop", 1).await;
    assert!(
        said.contains("drop the next frame toward the client"),
        "{said}"
    );
    ping(&mut alice).await;
    ping(&mut alice).await;
    assert_eq!(
        pongs_before_joining(&mut alice).await,
        1,
        "one pong dropped"
    );
    admin
        .wait_event(|e| matches!(e, Event::FaultUpdated { fault } if fault.code == "drop@client" && fault.remaining == 0))
        .await;

    let (mut bob, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "duplicate@client", 1).await;
    ping(&mut bob).await;
    assert_eq!(pongs_before_joining(&mut bob).await, 2, "one pong twice");

    let (mut carol, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "corrupt", 1).await;
    ping(&mut carol).await;
    let damaged = recv_text(&mut carol).await;
    ping(&mut carol).await;
    let intact = recv_text(&mut carol).await;
    assert_eq!(
        serde_json::from_str::<Value>(&intact).unwrap()["type"],
        "Pong"
    );
    assert_eq!(damaged.len(), intact.len(), "{damaged} / {intact}");
    assert_ne!(damaged, intact);
    assert!(
        serde_json::from_str::<Value>(&damaged).is_err(),
        "{damaged}"
    );

    // A delay holds the frame and those behind it; it can only make the answer later.
    let (mut dave, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "delay=300", 1).await;
    let sent = tokio::time::Instant::now();
    ping(&mut dave).await;
    ping(&mut dave).await;
    assert_eq!(pongs_before_joining(&mut dave).await, 2, "nothing lost");
    assert!(sent.elapsed() >= std::time::Duration::from_millis(300));

    let (mut erin, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "close=1011", 1).await;
    ping(&mut erin).await;
    assert_eq!(recv_close(&mut erin).await.0, 1011);
    admin
        .wait_event(
            |e| matches!(e, Event::PeerClosed { peer: closed, code: Some(1011), .. } if *closed == peer),
        )
        .await;
    for socket in [&mut alice, &mut bob, &mut carol, &mut dave] {
        close_and_drain(socket).await;
    }
}

#[tokio::test]
async fn path_faults_toward_the_upstream_reach_the_real_server_dropped_doubled_damaged_late_or_as_a_close(
) {
    let real = RealSignalFish::start().await;
    let proxy = proxy_to(&real.url()).await;
    let mut admin = proxy.admin().await;

    let (mut alice, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "drop@upstream", 1).await;
    ping(&mut alice).await;
    ping(&mut alice).await;
    assert_eq!(
        pongs_before_joining(&mut alice).await,
        1,
        "one ping dropped"
    );

    let (mut bob, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "duplicate@upstream", 1).await;
    ping(&mut bob).await;
    assert_eq!(pongs_before_joining(&mut bob).await, 2, "one ping twice");

    // The real server reads the damaged ping as the malformed frame it is.
    let (mut carol, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "corrupt@upstream", 1).await;
    ping(&mut carol).await;
    let refusal = recv_json(&mut carol).await;
    assert_eq!(refusal["type"], "Error", "{refusal}");
    ping(&mut carol).await;
    recv_type(&mut carol, "Pong").await;

    let (mut dave, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "delay=300@upstream", 2).await;
    let sent = tokio::time::Instant::now();
    ping(&mut dave).await;
    ping(&mut dave).await;
    assert_eq!(pongs_before_joining(&mut dave).await, 2, "nothing lost");
    // Each is held 300 ms from when it came, as latency does, not one after the other.
    assert!(sent.elapsed() >= std::time::Duration::from_millis(300));

    let (mut erin, peer) = faulted_player(&proxy, &mut admin).await;
    arm(&mut admin, &peer, "close=4000@upstream", 1).await;
    ping(&mut erin).await;
    assert_eq!(recv_close(&mut erin).await.0, 4000);
    for socket in [&mut alice, &mut bob, &mut carol, &mut dave] {
        close_and_drain(socket).await;
    }
}

#[tokio::test]
async fn a_path_fault_on_a_dialect_takes_every_proxied_peer_of_it_and_relaydeck_refuses_it_for_its_own(
) {
    use relaydeck::catalog::Dialect;
    use relaydeck::protocol::admin::FaultTarget;
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    let armed = admin
        .command(Command::ArmFault {
            target: FaultTarget::Dialect {
                dialect: Dialect::SignalFish,
            },
            code: "close=4000@upstream".into(),
            count: 1,
        })
        .await;
    assert!(armed.ok, "{}", armed.message);
    let mut upstream_admin = upstream.admin().await;
    // Its very first frame is the one the fault takes.
    let mut mallory = proxy.connect("/v2/ws").await;
    send_json(
        &mut mallory,
        json!({"type": "Authenticate", "data": {"app_id": "demo"}}),
    )
    .await;
    assert_eq!(recv_close(&mut mallory).await.0, 4000);
    // The upstream saw its client close with the code too (waited for, bounded by the
    // receive timeout).
    upstream_admin
        .wait_event(|e| {
            matches!(
                e,
                Event::PeerClosed {
                    code: Some(4000),
                    ..
                }
            )
        })
        .await;

    let refused = upstream_admin
        .command(Command::ArmFault {
            target: FaultTarget::Dialect {
                dialect: Dialect::SignalFish,
            },
            code: "drop".into(),
            count: 1,
        })
        .await;
    assert!(!refused.ok);
    assert!(
        refused.message.contains("relaydeck proxy"),
        "{}",
        refused.message
    );
}
