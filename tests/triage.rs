//! Triage over real sockets: the history of closed peers and rooms, the flight recorder, bans
//! in every dialect, and exports that replay green on a fresh server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::catalog::decode::decode;
use relaydeck::protocol::admin::{BanTarget, Closed, Command, Event, RecordedFrame};
use relaydeck::server::config::Config;
use relaydeck::session::replay::{run, Target};
use relaydeck::session::Session;
use serde_json::{json, Value};

fn authenticate() -> Value {
    json!({"type": "Authenticate", "data": {"app_id": "demo", "sdk_version": "1.0.0"}})
}

async fn signal_fish(server: &TestServer) -> Socket {
    let mut socket = server.connect("/v2/ws").await;
    send_json(&mut socket, authenticate()).await;
    recv_type(&mut socket, "ProtocolInfo").await;
    socket
}

async fn join(socket: &mut Socket, name: &str, room: Option<&str>) -> Value {
    let mut data = json!({"game_name": "demo", "player_name": name, "max_players": 2});
    if let Some(room) = room {
        data["room_code"] = json!(room);
    }
    send_json(socket, json!({"type": "JoinRoom", "data": data})).await;
    loop {
        let frame = recv_json(socket).await;
        if frame["type"] == "RoomJoined" || frame["type"] == "RoomJoinFailed" {
            return frame;
        }
    }
}

/// The id of the peer that connected last, from a fresh snapshot.
async fn newest_peer(server: &TestServer) -> String {
    let snapshot = server.admin().await.snapshot;
    snapshot
        .peers
        .iter()
        .max_by_key(|p| p.id.trim_start_matches('p').parse::<u64>().unwrap_or(0))
        .map(|p| p.id.clone())
        .expect("a live peer")
}

async fn history_of(admin: &mut Admin, peer: &str) -> relaydeck::protocol::admin::ClosedPeer {
    let wanted = peer.to_owned();
    match admin
        .wait_event(|e| matches!(e, Event::HistoryAdded { entry } if matches!(&entry.closed, Closed::Peer(p) if p.peer.id == wanted)))
        .await
    {
        Event::HistoryAdded { entry } => match entry.closed {
            Closed::Peer(peer) => *peer,
            Closed::Room(_) => unreachable!(),
        },
        _ => unreachable!(),
    }
}

async fn frames(admin: &mut Admin, peer: &str) -> Vec<RecordedFrame> {
    let result = admin
        .command(Command::Frames {
            peer: peer.to_owned(),
        })
        .await;
    assert!(result.ok, "{}", result.message);
    serde_json::from_value(result.data.unwrap()["frames"].clone()).unwrap()
}

async fn export(admin: &mut Admin, peer: &str) -> (Session, u64) {
    let result = admin
        .command(Command::Export {
            peer: peer.to_owned(),
        })
        .await;
    assert!(result.ok, "{}", result.message);
    let data = result.data.unwrap();
    let text = data["session"].as_str().unwrap().to_owned();
    (
        Session::parse(&text, "export").unwrap_or_else(|e| panic!("{e}\n{text}")),
        data["connections"].as_u64().unwrap(),
    )
}

/// Replay a session on a fresh server, as `relaydeck replay` does without `--url`.
async fn replays_green(session: &Session) {
    let fresh = TestServer::start(Config::for_replay()).await;
    let target = Target {
        addr: fresh.addr.to_string(),
        admin_token: Some(fresh.token.clone()),
    };
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(session, &target, &mut |_| {}),
    )
    .await
    .expect("the replay took over a minute");
    assert!(
        report.passed(),
        "the export does not replay:\n{}\n{report:#?}",
        session.to_jsonl()
    );
    fresh.stop().await;
}

#[tokio::test]
async fn a_kicked_peer_leaves_a_history_entry_with_its_code_errors_and_frames() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let mut socket = signal_fish(&server).await;
    let peer = newest_peer(&server).await;
    send_json(&mut socket, json!({"type": "NoSuchMessage"})).await;
    recv_type(&mut socket, "Error").await;
    let kicked = admin
        .command(Command::Kick {
            peer: peer.clone(),
            reason: Some("testing".into()),
        })
        .await;
    assert!(kicked.ok, "{}", kicked.message);
    assert_eq!(recv_close(&mut socket).await.0, 4020);
    admin
        .wait_event(|e| matches!(e, Event::PeerClosed { peer: p, .. } if *p == peer))
        .await;
    let closed = history_of(&mut admin, &peer).await;
    assert_eq!(closed.code, Some(4020));
    let codes: Vec<&str> = closed.last_errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["INVALID_INPUT", "KICKED", "4020"]);
    assert!(closed.recorded_frames >= 4, "{}", closed.recorded_frames);

    // The closed peer's frames and its export.
    let recorded = frames(&mut admin, &peer).await;
    assert_eq!(recorded.len() as u32, closed.recorded_frames);
    assert!(recorded[0].text.contains("Authenticate"));
    let (session, connections) = export(&mut admin, &peer).await;
    assert_eq!(connections, 1);
    assert!(session.has_admin_steps());
    replays_green(&session).await;

    // A fresh console sees the entry in its snapshot.
    let again = server.admin().await;
    assert!(again
        .snapshot
        .history
        .iter()
        .any(|h| matches!(&h.closed, Closed::Peer(p) if p.peer.id == peer)));
    server.stop().await;
}

#[tokio::test]
async fn history_is_bounded_by_count_and_by_age() {
    let mut config = Config::demo();
    config.history.max_entries = 3;
    config.history.retain_ms = 1_000;
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    assert_eq!(admin.snapshot.server.history.max_entries, 3);
    for _ in 0..5 {
        let mut socket = server.connect("/v1?key=pk_demo").await;
        recv_type(&mut socket, "welcome").await;
        close_and_drain(&mut socket).await;
        admin
            .wait_event(|e| matches!(e, Event::HistoryAdded { .. }))
            .await;
    }
    let snapshot = server.admin().await.snapshot;
    assert_eq!(snapshot.history.len(), 3, "only the newest three are kept");
    // Entries past their age (1 s here) are gone from the next snapshot. The wait is the age
    // itself passing, not readiness.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert!(server.admin().await.snapshot.history.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_recorder_keeps_the_last_frames_of_a_live_peer_within_its_bounds() {
    let mut config = Config::demo();
    config.recorder.frames_per_peer = 4;
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    let mut socket = signal_fish(&server).await;
    let peer = newest_peer(&server).await;
    for _ in 0..5 {
        send_json(&mut socket, json!({"type": "Ping"})).await;
        recv_type(&mut socket, "Pong").await;
    }
    let recorded = frames(&mut admin, &peer).await;
    assert_eq!(recorded.len(), 4);
    let texts: Vec<&str> = recorded.iter().map(|f| f.text.as_str()).collect();
    assert!(
        texts
            .iter()
            .all(|t| t.contains("Ping") || t.contains("Pong")),
        "{texts:?}"
    );
    assert!(texts[3].contains("Pong"));

    // Off: nothing is kept, and the export says why it cannot help.
    let mut config = Config::demo();
    config.recorder.enabled = false;
    let off = TestServer::start(config).await;
    let mut admin = off.admin().await;
    let _socket = signal_fish(&off).await;
    let peer = newest_peer(&off).await;
    assert!(frames(&mut admin, &peer).await.is_empty());
    let result = admin.command(Command::Export { peer }).await;
    assert!(
        !result.ok && result.message.contains("recorder"),
        "{}",
        result.message
    );
    off.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_room_full_export_replays_with_the_players_who_filled_the_room() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let mut alice = signal_fish(&server).await;
    let joined = join(&mut alice, "Alice", None).await;
    let code = joined["data"]["room_code"].as_str().unwrap().to_owned();
    let mut bob = signal_fish(&server).await;
    assert_eq!(
        join(&mut bob, "Bob", Some(&code)).await["type"],
        "RoomJoined"
    );
    let mut carol = signal_fish(&server).await;
    let carol_id = newest_peer(&server).await;
    let failed = join(&mut carol, "Carol", Some(&code)).await;
    assert_eq!(failed["data"]["error_code"], "ROOM_FULL");

    // Live: the export carries the two players who filled the room.
    let (session, connections) = export(&mut admin, &carol_id).await;
    assert_eq!(connections, 3, "{}", session.to_jsonl());
    assert!(session.to_jsonl().contains("${"), "{}", session.to_jsonl());
    replays_green(&session).await;

    // Closed: the same from the history.
    close_and_drain(&mut carol).await;
    history_of(&mut admin, &carol_id).await;
    let (session, _) = export(&mut admin, &carol_id).await;
    replays_green(&session).await;
    server.stop().await;
}

fn decodes_to_a_ban(input: &str) {
    let decoding = decode(input, None).unwrap_or_else(|e| panic!("{input}: {e}"));
    let entry = decoding.best().unwrap();
    assert!(
        entry.meaning.contains("banned"),
        "{input} decodes to {} which does not say it is a ban",
        entry.qualified()
    );
}

async fn refused_upgrade(server: &TestServer, path: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(server.url(path)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("{path}: {other}"),
        Ok(_) => panic!("{path}: the upgrade succeeded"),
    }
}

#[tokio::test]
async fn bans_refuse_each_dialect_with_its_code_and_are_lifted_or_expire() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;

    // An identity ban kicks the live player and refuses the name at JoinRoom.
    let mut bob = signal_fish(&server).await;
    join(&mut bob, "Bob", None).await;
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Bob".into(),
            },
            duration_ms: 3_600_000,
            reason: "griefing".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    let id = banned.data.unwrap()["ban"].as_u64().unwrap();
    assert_eq!(
        recv_close(&mut bob).await,
        (4020, "admin_disconnect".into())
    );
    let mut again = signal_fish(&server).await;
    let refused = join(&mut again, "Bob", None).await;
    assert_eq!(refused["data"]["error_code"], "BANNED");
    assert_eq!(refused["data"]["reason"], "Player is banned from this room");
    decodes_to_a_ban(&refused.to_string());
    assert_eq!(join(&mut again, "Robert", None).await["type"], "RoomJoined");
    let lifted = admin.command(Command::Unban { ban: id }).await;
    assert!(lifted.ok, "{}", lifted.message);
    admin
        .wait_event(|e| matches!(e, Event::BanLifted { id: i, .. } if *i == id))
        .await;

    // A pub/sub token names its peer id before the upgrade: a banned one gets 403.
    let minted: Value = reqwest::Client::new()
        .post(server.http("/v1/tokens"))
        .bearer_auth("sk_demo")
        .json(&json!({"peerId": "player-9"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/v1?token={}", minted["token"].as_str().unwrap());
    let mut player = server.connect(&path).await;
    recv_type(&mut player, "welcome").await;
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "player-9".into(),
            },
            duration_ms: 3_600_000,
            reason: "spam".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    assert_eq!(recv_close(&mut player).await.0, 4020);
    let (status, body) = refused_upgrade(&server, &path).await;
    assert_eq!(status, 403);
    decodes_to_a_ban(&format!("403 {body}"));
    let token_ban = banned.data.unwrap()["ban"].as_u64().unwrap();
    assert!(admin.command(Command::Unban { ban: token_ban }).await.ok);

    // An address ban: every dialect refuses loopback clients.
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Address {
                ip: "127.0.0.1".into(),
            },
            duration_ms: 3_600_000,
            reason: "connection flood".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    let address_ban = banned.data.unwrap()["ban"].as_u64().unwrap();
    assert_eq!(
        recv_close(&mut again).await.0,
        4020,
        "live peers are kicked"
    );
    let mut socket = server.connect("/v2/ws").await;
    send_json(&mut socket, authenticate()).await;
    let refusal = recv_type(&mut socket, "AuthenticationError").await;
    assert_eq!(refusal["data"]["error_code"], "UNAUTHORIZED");
    decodes_to_a_ban(&refusal.to_string());
    for path in ["/v1?key=pk_demo", "/?ticket=x", "/v1/ws"] {
        let (status, body) = refused_upgrade(&server, path).await;
        assert_eq!(status, 403, "{path}");
        decodes_to_a_ban(&format!("403 {body}"));
    }
    let response = reqwest::Client::new()
        .post(server.http("/v1/socket-tickets"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    decodes_to_a_ban(&format!("403 {}", response.text().await.unwrap()));
    let lifted = admin.command(Command::Unban { ban: address_ban }).await;
    assert!(lifted.ok, "{}", lifted.message);
    let mut socket = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut socket, "welcome").await;

    // A short ban expires by itself.
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Identity {
                app: None,
                identity: "Eve".into(),
            },
            duration_ms: 1_000,
            reason: "brief".into(),
        })
        .await;
    let short = banned.data.unwrap()["ban"].as_u64().unwrap();
    match admin
        .wait_event(|e| matches!(e, Event::BanLifted { id, .. } if *id == short))
        .await
    {
        Event::BanLifted { by, .. } => assert_eq!(by, "expired"),
        _ => unreachable!(),
    }

    // Refused commands: no reason, too long.
    for (duration_ms, reason) in [(1_000, ""), (u64::MAX, "x")] {
        let result = admin
            .command(Command::Ban {
                target: BanTarget::Identity {
                    app: None,
                    identity: "Eve".into(),
                },
                duration_ms,
                reason: reason.into(),
            })
            .await;
        assert!(!result.ok);
    }
    server.stop().await;
}

#[tokio::test]
async fn bans_survive_a_restart_and_are_audited() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let ban = |identity: &str| Command::Ban {
        target: BanTarget::Identity {
            app: Some("demo".into()),
            identity: identity.into(),
        },
        duration_ms: 3_600_000,
        reason: "testing".into(),
    };
    let kept = admin.command(ban("Mallory")).await;
    assert!(kept.ok);
    let lifted = admin.command(ban("Trudy")).await;
    let lifted_id = lifted.data.unwrap()["ban"].as_u64().unwrap();
    assert!(admin.command(Command::Unban { ban: lifted_id }).await.ok);
    let data = server.stop().await;

    let records = relaydeck::server::persist::read_audit(data.path()).unwrap();
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.action.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(actions.iter().filter(|(a, _)| *a == "ban").count(), 4);
    assert!(actions
        .iter()
        .any(|(a, r)| *a == "unban" && r.contains("lifted")));
    // The audit log names a ban's target in the words the console asks about it in.
    assert!(records
        .iter()
        .any(|r| r.action == "ban" && r.target == "identity Mallory in app demo"));

    let server = TestServer::start_in(Config::demo(), data).await;
    let admin = server.admin().await;
    let names: Vec<String> = admin
        .snapshot
        .bans
        .iter()
        .map(|b| match &b.target {
            BanTarget::Identity { identity, .. } => identity.clone(),
            BanTarget::Address { ip } => ip.clone(),
        })
        .collect();
    assert_eq!(names, ["Mallory"]);
    let mut socket = signal_fish(&server).await;
    assert_eq!(
        join(&mut socket, "Mallory", None).await["data"]["error_code"],
        "BANNED"
    );
    let mut admin = server.admin().await;
    let next = admin.command(ban("Oscar")).await;
    assert!(
        next.data.unwrap()["ban"].as_u64().unwrap() > lifted_id,
        "ids are not reused"
    );
    server.stop().await;
}

/// A viewer reads the flight recorder (frames, export) but may not ban.
#[tokio::test]
async fn viewers_read_recorded_frames_and_may_not_ban() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::demo().await;
    let _player = signal_fish(&server).await;
    let peer = newest_peer(&server).await;
    let viewer = relaydeck::server::access::viewer_token(&server.token);
    let mut request = server.url("/admin").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {viewer}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(recv_json(&mut socket).await["type"], "snapshot");
    let commands = [
        json!({"id": 1, "command": "frames", "peer": peer}),
        json!({"id": 2, "command": "export", "peer": peer}),
        json!({"id": 3, "command": "ban", "target": {"by": "identity", "identity": "x"}, "duration_ms": 1000, "reason": "r"}),
    ];
    for command in commands {
        let id = command["id"].clone();
        send_json(&mut socket, command).await;
        let result = loop {
            let message = recv_json(&mut socket).await;
            if message["type"] == "result" && message["id"] == id {
                break message;
            }
        };
        let may = id != 3;
        assert_eq!(result["ok"], may, "{result}");
        if may {
            assert!(result["data"].is_object(), "{result}");
        } else {
            assert!(result["message"].as_str().unwrap().contains("viewer token"));
        }
    }
    server.stop().await;
}

/// A pub/sub peer's refused subscribe, exported after it left, replays green.
#[tokio::test]
async fn a_pubsub_export_replays_green() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let mut socket = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut socket, "welcome").await;
    let peer = newest_peer(&server).await;
    send_json(
        &mut socket,
        json!({"type": "subscribe", "channel": "demo/lobby", "requestId": "s-1"}),
    )
    .await;
    recv_json(&mut socket).await;
    send_json(
        &mut socket,
        json!({"type": "subscribe", "channel": "other-app/room-1", "requestId": "s-2"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut socket, "error").await["code"],
        "channel_not_authorized"
    );
    close_and_drain(&mut socket).await;
    history_of(&mut admin, &peer).await;
    let (session, connections) = export(&mut admin, &peer).await;
    assert_eq!(connections, 1);
    assert_eq!(
        session.header.expect_codes,
        ["pubsub:channel_not_authorized"]
    );
    replays_green(&session).await;
    server.stop().await;
}

/// A Flow stream's credential is not recorded: its export presents the replay's own admin
/// token, and replays green.
#[tokio::test]
async fn a_flow_export_replays_with_the_replays_own_credential() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let mut socket = server.connect_bearer("/v1/ws", "sk_demo").await;
    let peer = newest_peer(&server).await;
    send_json(
        &mut socket,
        json!({"subscription_id": "s1", "action": "subscribe", "topic": "no-such-topic"}),
    )
    .await;
    let refused = recv_json(&mut socket).await;
    assert!(refused.get("error").is_some(), "{refused}");
    close_and_drain(&mut socket).await;
    history_of(&mut admin, &peer).await;
    let (session, connections) = export(&mut admin, &peer).await;
    assert_eq!(connections, 1);
    let text = session.to_jsonl();
    assert!(text.contains("Bearer ${admin_token}"), "{text}");
    assert!(!text.contains("sk_demo"), "{text}");
    replays_green(&session).await;
    server.stop().await;
}

/// A v3 player who reconnects into its seat: the export replays the room's creator and the
/// player's first connection (closed where it closed), and substitutes the player id, room id
/// and reconnection token the server generated.
#[tokio::test]
async fn a_reconnection_export_replays_with_the_generated_token() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let v3 = |server: &TestServer| {
        let url = server.url("/v3/ws");
        async move {
            let (mut socket, _) =
                tokio::time::timeout(RECEIVE_TIMEOUT, tokio_tungstenite::connect_async(url))
                    .await
                    .unwrap()
                    .unwrap();
            send_json(&mut socket, authenticate()).await;
            recv_type(&mut socket, "ProtocolInfo").await;
            socket
        }
    };
    let mut alice = v3(&server).await;
    let created = join(&mut alice, "Alice", None).await;
    let code = created["data"]["room_code"].as_str().unwrap().to_owned();
    let room_id = created["data"]["room_id"].clone();
    let mut bob = v3(&server).await;
    let joined = join(&mut bob, "Bob", Some(&code)).await;
    let bob_peer = newest_peer(&server).await;
    close_and_drain(&mut bob).await;
    history_of(&mut admin, &bob_peer).await;
    let mut again = v3(&server).await;
    let peer = newest_peer(&server).await;
    send_json(
        &mut again,
        json!({"type": "Reconnect", "data": {
            "player_id": joined["data"]["player_id"],
            "room_id": room_id,
            "auth_token": joined["data"]["reconnection_token"],
        }}),
    )
    .await;
    recv_type(&mut again, "Reconnected").await;
    let (session, connections) = export(&mut admin, &peer).await;
    assert_eq!(connections, 3, "{}", session.to_jsonl());
    let text = session.to_jsonl();
    assert!(
        !text.contains(joined["data"]["reconnection_token"].as_str().unwrap()),
        "the token is captured, not replayed verbatim:\n{text}"
    );
    assert!(
        text.contains(&format!(r#"{{"step":"close","conn":"{bob_peer}"}}"#)),
        "{text}"
    );
    replays_green(&session).await;
    server.stop().await;
}

/// A banned player whose socket dropped cannot come back through its reconnection token: the
/// ban on its name holds for the seat too, refused as BANNED.
#[tokio::test]
async fn a_ban_holds_against_a_reconnection_into_the_seat() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let v3 = |server: &TestServer| {
        let url = server.url("/v3/ws");
        async move {
            let (mut socket, _) =
                tokio::time::timeout(RECEIVE_TIMEOUT, tokio_tungstenite::connect_async(url))
                    .await
                    .unwrap()
                    .unwrap();
            send_json(&mut socket, authenticate()).await;
            recv_type(&mut socket, "ProtocolInfo").await;
            socket
        }
    };
    let mut alice = v3(&server).await;
    let created = join(&mut alice, "Alice", None).await;
    let code = created["data"]["room_code"].as_str().unwrap().to_owned();
    let mut bob = v3(&server).await;
    let joined = join(&mut bob, "Bob", Some(&code)).await;
    close_and_drain(&mut bob).await;
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Bob".into(),
            },
            duration_ms: 3_600_000,
            reason: "griefing".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    let mut again = v3(&server).await;
    send_json(
        &mut again,
        json!({"type": "Reconnect", "data": {
            "player_id": joined["data"]["player_id"],
            "room_id": created["data"]["room_id"],
            "auth_token": joined["data"]["reconnection_token"],
        }}),
    )
    .await;
    let refused = recv_type(&mut again, "ReconnectionFailed").await;
    assert_eq!(refused["data"]["error_code"], "BANNED", "{refused}");
    server.stop().await;
}
