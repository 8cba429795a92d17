//! `relaydeck proxy` in front of a server it does not run: relaydeck's own server in-process
//! for the fast cases, and the real `signal-fish-server` 0.12 (installed by scripts/test.sh
//! as scripts/compare-signal-fish.sh installs it) for what the issue asks of a real upstream.
//! The real Signal Fish SDK plays through the proxy; the proxy's `/admin` shows the proxied
//! player, its app and room, decodes the upstream's refusals and kicks with 4020; an export
//! replays against the upstream. The operator's actions are in proxy_actions.rs, the other
//! dialects in proxy_dialects.rs, the handshake (subprotocols, TLS) in proxy_handshake.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::proxy::*;
use common::sdk::Sdk;
use common::*;
use relaydeck::catalog::{self, Dialect};
use relaydeck::protocol::admin::{Command, Event};
use relaydeck::session::replay::{run, Target};
use relaydeck::session::Session;
use serde_json::json;
use signal_fish_client::{
    ErrorCode, JoinRoomParams, PlayerId, ProtocolViolationPolicy, SignalFishClient,
    SignalFishConfig, SignalFishEvent, WebSocketTransport,
};

impl Sdk {
    async fn ready(proxy: &TestServer, v3: bool, label: &'static str) -> Sdk {
        let config = SignalFishConfig::new("demo")
            .with_protocol_violation_policy(ProtocolViolationPolicy::Quarantine);
        let config = if v3 { config.enable_v3() } else { config };
        let transport = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            WebSocketTransport::connect(&proxy.url("/v2/ws")),
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
        sdk.until("Authenticated", |e| {
            matches!(e, SignalFishEvent::Authenticated { .. }).then_some(())
        })
        .await;
        sdk
    }

    async fn join(&mut self, params: JoinRoomParams) -> (String, PlayerId) {
        self.client.join_room(params).unwrap();
        self.until("RoomJoined", |e| match e {
            SignalFishEvent::RoomJoined {
                room_code,
                player_id,
                ..
            } => Some((room_code.clone(), *player_id)),
            SignalFishEvent::RoomJoinFailed { reason, error_code } => {
                panic!("join refused: {reason} {error_code:?}")
            }
            _ => None,
        })
        .await
    }
}

/// A two-player game through `proxy`: create, join, a refused join, game data both ways,
/// authority handed over, ready, start, leave. Returns the room code.
async fn play(proxy: &TestServer, v3: bool) -> String {
    let mut alice = Sdk::ready(proxy, v3, "alice").await;
    let mut bob = Sdk::ready(proxy, v3, "bob").await;
    let (code, alice_id) = alice
        .join(
            JoinRoomParams::new(GAME, "Alice")
                .with_max_players(2)
                .with_supports_authority(true),
        )
        .await;
    let (bob_code, bob_id) = bob
        .join(JoinRoomParams::new(GAME, "Bob").with_room_code(&code))
        .await;
    assert_eq!(bob_code, code);
    alice
        .until("PlayerJoined", |e| match e {
            SignalFishEvent::PlayerJoined { player } => Some(player.id),
            _ => None,
        })
        .await;

    let mut carol = Sdk::ready(proxy, v3, "carol").await;
    carol
        .client
        .join_room(JoinRoomParams::new(GAME, "Carol").with_room_code(&code))
        .unwrap();
    let refused = carol
        .until("RoomJoinFailed", |e| match e {
            SignalFishEvent::RoomJoinFailed { error_code, .. } => Some(error_code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(refused, Some(ErrorCode::RoomFull));

    for n in 0..3 {
        alice.client.send_game_data(json!({"move": n})).unwrap();
    }
    for n in 0..3 {
        assert_eq!(bob.game_data().await, (alice_id, json!({"move": n})));
    }
    bob.client.send_game_data(json!({"ack": 2})).unwrap();
    assert_eq!(alice.game_data().await, (bob_id, json!({"ack": 2})));

    alice.client.request_authority(false).unwrap();
    bob.until("authority released", |e| {
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
    bob.until("authority to Bob", |e| {
        matches!(
            e,
            SignalFishEvent::AuthorityChanged {
                you_are_authority: true,
                ..
            }
        )
        .then_some(())
    })
    .await;

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
    bob.client.start_game().unwrap();
    for sdk in [&mut alice, &mut bob] {
        sdk.until("GameStarting", |e| {
            matches!(e, SignalFishEvent::GameStarting { .. }).then_some(())
        })
        .await;
    }

    bob.client.leave_room().unwrap();
    bob.until("RoomLeft", |e| {
        matches!(e, SignalFishEvent::RoomLeft).then_some(())
    })
    .await;
    let left = alice
        .until("PlayerLeft", |e| match e {
            SignalFishEvent::PlayerLeft { player_id, .. } => Some(*player_id),
            _ => None,
        })
        .await;
    assert_eq!(left, bob_id);
    for mut sdk in [alice, bob, carol] {
        sdk.client.shutdown().await;
    }
    code
}

/// The Done-when of the proxy, against any Signal Fish upstream: the proxied player with its
/// app and room in the proxy's snapshot, a refusal as a decoded error delta, a kick as 4020.
async fn admin_views_and_kick(proxy: &TestServer, mut upstream_admin: Option<&mut Admin>) {
    let mut admin = proxy.admin().await;
    let mut alice = raw_player(proxy).await;
    let code = create_room(&mut alice, "Alice").await;
    let player = proxied_player_in(&mut admin, &code).await;
    assert_eq!(player.dialect, Dialect::SignalFish);
    assert_eq!(player.app.as_deref(), Some("demo"));
    assert_eq!(player.identity.as_deref(), Some("Alice"));
    assert!(admin.command(Command::Resync).await.ok);
    let room = admin
        .snapshot
        .rooms
        .iter()
        .find(|r| r.code == code)
        .unwrap_or_else(|| panic!("room {code} is not in {:?}", admin.snapshot.rooms));
    assert_eq!(room.players.len(), 1);
    assert_eq!(room.players[0].peer.as_ref(), Some(&player.id));
    assert_eq!(room.app, "demo");

    // Carol fills the room; the upstream refuses Bob, and the proxy decodes its refusal.
    let mut carol = raw_player(proxy).await;
    send_json(
        &mut carol,
        json!({"type": "JoinRoom", "data": {"game_name": GAME, "player_name": "Carol", "room_code": code}}),
    )
    .await;
    recv_type(&mut carol, "RoomJoined").await;
    let mut bob = raw_player(proxy).await;
    send_json(
        &mut bob,
        json!({"type": "JoinRoom", "data": {"game_name": GAME, "player_name": "Bob", "room_code": code}}),
    )
    .await;
    let refused = recv_type(&mut bob, "RoomJoinFailed").await;
    let sent_code = refused["data"]["error_code"].as_str().unwrap().to_owned();
    let Event::ErrorEmitted {
        peer,
        code: emitted,
        dialect,
        frame,
        ..
    } = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(emitted, sent_code);
    assert_eq!(emitted, "ROOM_FULL");
    assert_eq!(dialect, Dialect::SignalFish);
    assert!(
        peer.is_some_and(|p| p != player.id),
        "Bob's error, not Alice's"
    );
    assert!(frame.contains("RoomJoinFailed"), "{frame}");
    assert!(
        catalog::get(Dialect::SignalFish, &emitted).is_some(),
        "{emitted} is not in the catalog"
    );

    // The operator's kick.
    let kicked = admin
        .command(Command::Kick {
            peer: player.id.clone(),
            reason: Some("through the proxy".into()),
        })
        .await;
    assert!(kicked.ok, "{}", kicked.message);
    let notice = recv_type(&mut alice, "Error").await;
    assert_eq!(notice["data"]["error_code"], "KICKED");
    assert_eq!(
        recv_close(&mut alice).await,
        (4020, "admin_disconnect".to_owned())
    );
    admin
        .wait_event(
            |e| matches!(e, Event::PeerClosed { peer, code: Some(4020), .. } if *peer == player.id),
        )
        .await;
    if let Some(upstream) = upstream_admin.as_mut() {
        // Alice's side on the upstream closed as a client leaving does, not as an error.
        let closed = upstream
            .wait_event(|e| matches!(e, Event::PeerClosed { .. }))
            .await;
        let Event::PeerClosed { code, .. } = closed else {
            unreachable!()
        };
        assert_eq!(code, Some(1000), "{closed:?}");
    }
    close_and_drain(&mut bob).await;
    close_and_drain(&mut carol).await;
}

#[tokio::test]
async fn the_sdk_plays_through_the_proxy_in_front_of_relaydeck_v2() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    play(&proxy, false).await;
}

#[tokio::test]
async fn the_sdk_plays_through_the_proxy_in_front_of_relaydeck_v3() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    play(&proxy, true).await;
}

#[tokio::test]
async fn proxied_players_show_with_app_and_room_refusals_decode_and_kicks_close_4020() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut upstream_admin = upstream.admin().await;
    admin_views_and_kick(&proxy, Some(&mut upstream_admin)).await;
}

#[tokio::test]
async fn the_real_sdk_plays_through_the_proxy_in_front_of_the_real_server() {
    let real = RealSignalFish::start().await;
    let proxy = proxy_to(&real.url()).await;
    play(&proxy, false).await;
    play(&proxy, true).await;
}

#[tokio::test]
async fn in_front_of_the_real_server_players_show_refusals_decode_and_kicks_close_4020() {
    let real = RealSignalFish::start().await;
    let proxy = proxy_to(&real.url()).await;
    admin_views_and_kick(&proxy, None).await;
}

#[tokio::test]
async fn the_upstreams_close_reaches_the_client_unchanged_and_decoded() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    // The pub/sub relay closes a connection without a key with its own code.
    let mut direct = upstream.connect("/v1").await;
    let expected = recv_close(&mut direct).await;
    let mut proxied = proxy.connect("/v1").await;
    assert_eq!(recv_close(&mut proxied).await, expected);
    let Event::ErrorEmitted { dialect, frame, .. } = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::Pubsub);
    assert_eq!(frame, format!("close {} {}", expected.0, expected.1));

    let health = tokio::time::timeout(RECEIVE_TIMEOUT, reqwest::get(proxy.http("/health")))
        .await
        .expect("no answer before the timeout")
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "plain HTTP is forwarded");
}

/// `:export` of a proxied player replays green against the upstream itself.
async fn export_replays_against(proxy: &TestServer, upstream_addr: String) {
    let mut admin = proxy.admin().await;
    let mut alice = raw_player(proxy).await;
    let code = create_room(&mut alice, "Alice").await;
    let player = proxied_player_in(&mut admin, &code).await;
    send_json(&mut alice, json!({"type": "LeaveRoom"})).await;
    recv_type(&mut alice, "RoomLeft").await;
    let result = admin
        .command(Command::Export {
            peer: player.id.clone(),
        })
        .await;
    assert!(result.ok, "{}", result.message);
    let text = result.data.unwrap()["session"].as_str().unwrap().to_owned();
    let session = Session::parse(&text, "export").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains(r#""match":{"type":"RoomJoined"}"#),
        "what the upstream answered is expected:\n{text}"
    );
    let target = Target {
        addr: upstream_addr,
        admin_token: None,
    };
    let report = tokio::time::timeout(EVENT_TIMEOUT * 6, run(&session, &target, &mut |_| {}))
        .await
        .expect("the replay took over a minute");
    assert!(
        report.passed(),
        "the export does not replay:\n{text}\n{report:#?}"
    );
    close_and_drain(&mut alice).await;
}

#[tokio::test]
async fn an_export_of_a_proxied_player_replays_against_relaydeck() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    export_replays_against(&proxy, upstream.addr.to_string()).await;
}

#[tokio::test]
async fn an_export_of_a_proxied_player_replays_against_the_real_server() {
    let real = RealSignalFish::start().await;
    let proxy = proxy_to(&real.url()).await;
    export_replays_against(&proxy, format!("127.0.0.1:{}", real.port)).await;
}
