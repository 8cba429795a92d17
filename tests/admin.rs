//! The admin peer over real sockets: snapshot and deltas, kick, suspend, persistence across a
//! restart and a SIGKILL, taps, injection, and the token check.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command as Process, Stdio};

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{AppStatus, Command, Direction, Event, InjectTarget};
use relaydeck::server::config::{Config, PubsubRate};
use serde_json::json;

#[tokio::test]
async fn the_snapshot_and_deltas_follow_connects_and_disconnects() {
    let server = TestServer::demo().await;
    let mut early = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut early, "welcome").await;
    let mut admin = server.admin().await;
    assert_eq!(admin.snapshot.peers.len(), 1);
    assert_eq!(admin.snapshot.peers[0].dialect, Dialect::Pubsub);
    let apps: Vec<&str> = admin.snapshot.apps.iter().map(|a| a.id.as_str()).collect();
    assert!(
        apps.starts_with(&["demo", "suspended-app", "limited-app"]),
        "{apps:?}"
    );

    let mut late = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut late, "welcome").await;
    let Event::PeerConnected { peer } = admin
        .wait_event(|e| matches!(e, Event::PeerConnected { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(peer.app.as_deref(), Some("demo"));

    send_json(
        &mut late,
        json!({"type":"subscribe","channel":"demo/lobby"}),
    )
    .await;
    let joined = admin
        .wait_event(|e| matches!(e, Event::ChannelJoined { .. }))
        .await;
    assert!(matches!(joined, Event::ChannelJoined { channel, .. } if channel == "demo/lobby"));

    send_json(
        &mut late,
        json!({"type":"publish","channel":"elsewhere","data":1,"requestId":"x-1"}),
    )
    .await;
    let error = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await;
    let Event::ErrorEmitted {
        code,
        request_id,
        dialect,
        ..
    } = error
    else {
        unreachable!()
    };
    assert_eq!(
        (dialect, code.as_str(), request_id.as_deref()),
        (Dialect::Pubsub, "channel_not_authorized", Some("x-1"))
    );

    late.close(None).await.unwrap();
    let closed = admin
        .wait_event(|e| matches!(e, Event::PeerClosed { .. }))
        .await;
    assert!(matches!(closed, Event::PeerClosed { peer: id, .. } if id == peer.id));
    let stats = admin.wait_event(|e| matches!(e, Event::Stats { .. })).await;
    let Event::Stats { stats } = stats else {
        unreachable!()
    };
    assert_eq!(
        stats.errors_by_code.get("pubsub:channel_not_authorized"),
        Some(&1)
    );
}

#[tokio::test]
async fn kick_closes_with_4020_and_is_audited() {
    let server = TestServer::demo().await;
    let mut peer = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut peer, "welcome").await;
    let mut admin = server.admin().await;
    let id = admin.snapshot.peers[0].id.clone();
    let result = admin
        .command(Command::Kick {
            peer: id.clone(),
            reason: Some("testing".into()),
        })
        .await;
    assert!(result.ok, "{result:?}");
    assert!(result.message.contains("4020"), "{}", result.message);
    assert_eq!(
        recv_close(&mut peer).await,
        (4020, "admin_disconnect".to_owned())
    );
    let closed = admin
        .wait_event(|e| matches!(e, Event::PeerClosed { .. }))
        .await;
    // The operator's reason goes with the kick into the log and the history; the wire keeps
    // the documented reason alone.
    match &closed {
        Event::PeerClosed {
            code: Some(4020),
            reason,
            ..
        } => assert_eq!(reason, "admin_disconnect — operator's reason: testing"),
        other => panic!("{other:?}"),
    }
    let audit = relaydeck::server::persist::read_audit(server.data.path()).unwrap();
    // An intent line before the action, its outcome after.
    let outcome = audit.last().unwrap();
    assert_eq!(
        (outcome.action.as_str(), outcome.target.as_str()),
        ("kick", id.as_str())
    );
    assert!(
        outcome.result.contains("reason \"testing\""),
        "the audit log keeps why: {}",
        outcome.result
    );

    // The REST kick takes the pub/sub peerId a backend knows, as well as the hub id.
    let mut peer = server.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut peer, "welcome").await;
    let peer_id = welcome["peerId"].as_str().unwrap();
    let http = reqwest::Client::new();
    let response = http
        .delete(server.http(&format!("/v1/peers/{peer_id}")))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        recv_close(&mut peer).await,
        (4020, "admin_disconnect".to_owned())
    );
    let response = http
        .delete(server.http("/v1/peers/peer-nobody"))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let missing = admin
        .command(Command::Kick {
            peer: "p999".into(),
            reason: None,
        })
        .await;
    assert!(!missing.ok);
}

#[tokio::test]
async fn suspending_closes_live_peers_refuses_new_ones_and_survives_a_restart() {
    let server = TestServer::demo().await;
    let mut live = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut live, "welcome").await;
    let mut admin = server.admin().await;
    let result = admin
        .command(Command::SetAppStatus {
            app: "demo".into(),
            status: AppStatus::Suspended,
        })
        .await;
    assert!(result.ok, "{result:?}");
    assert_eq!(
        recv_close(&mut live).await,
        (4012, "account_suspended".to_owned())
    );
    let changed = admin
        .wait_event(|e| matches!(e, Event::AppStatusChanged { .. }))
        .await;
    assert!(matches!(
        changed,
        Event::AppStatusChanged {
            status: AppStatus::Suspended,
            ..
        }
    ));
    let mut refused = server.connect("/v1?key=pk_demo").await;
    assert_eq!(recv_close(&mut refused).await.0, 4012);

    let data = server.stop().await;
    let restarted = TestServer::start_in(Config::demo(), data).await;
    let mut still_refused = restarted.connect("/v1?key=pk_demo").await;
    assert_eq!(recv_close(&mut still_refused).await.0, 4012);
    let mut admin = restarted.admin().await;
    let demo = admin.snapshot.apps.iter().find(|a| a.id == "demo").unwrap();
    assert_eq!(demo.status, AppStatus::Suspended);
    let result = admin
        .command(Command::SetAppStatus {
            app: "demo".into(),
            status: AppStatus::Active,
        })
        .await;
    assert!(result.ok);
    let mut welcome_again = restarted.connect("/v1?key=pk_demo").await;
    recv_type(&mut welcome_again, "welcome").await;
}

#[tokio::test]
async fn a_wrong_or_missing_admin_token_is_refused_before_the_upgrade() {
    let server = TestServer::demo().await;
    for request in [
        server.url("/admin"),
        server.url("/admin?token=wrong"),
        format!("{}?token={}x", server.url("/admin"), server.token),
    ] {
        match tokio_tungstenite::connect_async(request.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            other => panic!(
                "{request}: expected HTTP 401, got {:?}",
                other.map(|_| "a connection")
            ),
        }
    }
    // The right token in the query is refused too: tokens travel only in the header.
    let in_query = format!("{}?token={}", server.url("/admin"), server.token);
    assert!(
        matches!(
            tokio_tungstenite::connect_async(in_query.as_str()).await,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == 401
        ),
        "a token in the query string is not a credential"
    );
    let _ok = server.admin().await;
    let response = reqwest::Client::new()
        .delete(server.http("/v1/peers/p1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn taps_and_injection_as_a_peer_and_through_a_probe() {
    let server = TestServer::demo().await;
    let mut peer = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut peer, "welcome").await;
    let mut admin = server.admin().await;
    let id = admin.snapshot.peers[0].id.clone();
    assert!(
        admin
            .command(Command::Tap {
                peer: id.clone(),
                on: true
            })
            .await
            .ok
    );

    // Injected as the peer: the peer itself receives the server's answer.
    let injected = admin
        .command(Command::Inject {
            target: InjectTarget::Peer { peer: id.clone() },
            frame: json!({"type":"subscribe","channel":"_internal/x","requestId":"inj-1"})
                .to_string(),
        })
        .await;
    assert!(injected.ok, "{injected:?}");
    let answer = recv_json(&mut peer).await;
    assert_eq!(
        (answer["code"].as_str(), answer["requestId"].as_str()),
        (Some("channel_reserved"), Some("inj-1"))
    );
    let tapped_in = admin
        .wait_event(|e| {
            matches!(
                e,
                Event::Frame {
                    direction: Direction::In,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(tapped_in, Event::Frame { text, .. } if text.contains("inj-1")));
    admin.wait_event(|e| matches!(e, Event::Frame { direction: Direction::Out, text, .. } if text.contains("channel_reserved"))).await;

    // Through a new probe: its answers arrive as tapped frames.
    let probe = admin
        .command(Command::Inject {
            target: InjectTarget::Probe {
                dialect: Dialect::Pubsub,
                query: "key=pk_demo".into(),
            },
            frame: json!({"type":"publish","channel":"demo/x","requestId":"probe-1"}).to_string(),
        })
        .await;
    assert!(probe.ok, "{probe:?}");
    let probe_id = probe.data.unwrap()["peer"].as_str().unwrap().to_owned();
    admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { peer: Some(p), code, .. } if *p == probe_id && code == "missing_data"))
        .await;
    let again = admin
        .command(Command::Inject {
            target: InjectTarget::ExistingProbe {
                peer: probe_id.clone(),
            },
            frame: json!({"type":"subscribe","channel":"demo/y","requestId":"probe-2"}).to_string(),
        })
        .await;
    assert!(again.ok, "{again:?}");
    admin
        .wait_event(|e| matches!(e, Event::Frame { peer, direction: Direction::Out, text } if *peer == probe_id && text.contains("probe-2")))
        .await;

    let refused = admin
        .command(Command::Inject {
            target: InjectTarget::Probe {
                dialect: Dialect::Pubsub,
                query: "key=nope".into(),
            },
            frame: "{}".into(),
        })
        .await;
    assert!(!refused.ok);
    assert!(refused.message.contains("4001"), "{}", refused.message);
}

#[tokio::test]
async fn a_console_that_falls_behind_gets_a_fresh_snapshot() {
    // A small delta buffer, and tapped frames that fill the console's socket while it reads
    // nothing: the server must drop the backlog and resynchronise it with a snapshot. How much
    // the kernel buffers between the two differs from machine to machine, so the flood grows
    // round by round until the console is behind; a round the buffers absorbed ends with every
    // peer's marker read in order.
    let mut config = Config::demo();
    for key in config.apps.iter_mut().flat_map(|app| &mut app.pubsub_keys) {
        key.rate = PubsubRate {
            messages_per_second: 1_000_000,
            burst: 1_000_000,
        };
    }
    let server = TestServer::start_with(config, tempfile::tempdir().unwrap(), Some(16)).await;
    let mut admin = server.admin_with_small_receive_buffer().await;
    // Tapped frames are clipped to 4 KiB in an event; bigger frames would only cost time.
    let payload = "x".repeat(4 * 1024);
    let mut peers = Vec::new();
    for _ in 0..4 {
        let mut peer = server.connect("/v1?key=pk_demo").await;
        recv_type(&mut peer, "welcome").await;
        peers.push(peer);
    }
    assert!(admin.command(Command::Resync).await.ok);
    let ids: Vec<String> = admin.snapshot.peers.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids.len(), 4);
    for id in &ids {
        assert!(
            admin
                .command(Command::Tap {
                    peer: id.clone(),
                    on: true
                })
                .await
                .ok
        );
    }
    for round in 0..6u32 {
        let frames_per_peer = 250usize << round;
        let marker = format!("last-{round}");
        for peer in &mut peers {
            for index in 0..frames_per_peer {
                send_json(peer, json!({"type":"publish","channel":"demo/big","data":payload,"requestId":index.to_string()})).await;
            }
            send_json(
                peer,
                json!({"type":"publish","channel":"demo/big","data":1,"requestId":marker}),
            )
            .await;
            loop {
                if recv_json(peer).await["requestId"] == marker.as_str() {
                    break;
                }
            }
        }
        // Now read: somewhere in the stream a gap is bridged by a snapshot, never skipped.
        let mut markers_seen = 0;
        let mut deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        while markers_seen < peers.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "neither a fresh snapshot nor the round's last frames arrived"
            );
            match admin.next().await {
                relaydeck::protocol::admin::ServerMessage::Snapshot { seq, .. } => {
                    assert!(
                        seq > admin.seq,
                        "the fresh snapshot is newer than what the console had"
                    );
                    return;
                }
                relaydeck::protocol::admin::ServerMessage::Delta { seq, event, .. } => {
                    assert_eq!(
                        seq,
                        admin.seq + 1,
                        "a gap in seq must be bridged by a snapshot"
                    );
                    admin.seq = seq;
                    if let Event::Frame {
                        direction: Direction::In,
                        text,
                        ..
                    } = event
                    {
                        deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
                        if text.contains(&format!("\"{marker}\"")) {
                            markers_seen += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    panic!("the console read nothing through six growing floods and never fell behind");
}

#[test]
fn an_admin_action_survives_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_relaydeck");
    let start = || {
        let mut child = Process::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("RELAYDECK_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let addr = first_line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        (child, addr)
    };
    let token = || std::fs::read_to_string(data.path().join("admin-token")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (mut child, addr) = start();
    runtime.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/admin").into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", token()).parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        use futures_util::{SinkExt, StreamExt};
        socket
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({"id":1,"command":"set_app_status","app":"demo","status":"revoked"})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let value: serde_json::Value =
                serde_json::from_str(message.to_text().unwrap()).unwrap();
            if value["type"] == "result" {
                assert_eq!(value["ok"], true, "{value}");
                break;
            }
        }
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, addr) = start();
    runtime.block_on(async {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/admin").into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", token()).parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        use futures_util::StreamExt;
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        let demo = value["snapshot"]["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "demo")
            .unwrap()
            .clone();
        assert_eq!(demo["status"], "revoked");
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn metrics_and_health() {
    let server = TestServer::demo().await;
    let mut peer = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut peer, "welcome").await;
    send_json(&mut peer, json!({"type":"bogus"})).await;
    recv_type(&mut peer, "error").await;
    let client = reqwest::Client::new();
    let health: serde_json::Value = client
        .get(server.http("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = client
        .get(server.http("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("relaydeck_peers{dialect=\"pubsub\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("relaydeck_errors_total{dialect=\"pubsub\",code=\"unknown_type\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("relaydeck_app_status{app=\"suspended-app\",status=\"suspended\"} 1"),
        "{metrics}"
    );
}

/// The viewer token watches and never acts; neither does any console of a read-only server.
#[tokio::test]
async fn viewers_and_read_only_servers_watch_without_acting() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::demo().await;
    let viewer = relaydeck::server::access::viewer_token(&server.token);
    let mut request = server.url("/admin").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {viewer}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let snapshot = recv_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "a viewer gets the snapshot");
    send_json(
        &mut socket,
        json!({"id": 7, "command": "set_app_status", "app": "demo", "status": "suspended"}),
    )
    .await;
    let refused = loop {
        let message = recv_json(&mut socket).await;
        if message["type"] == "result" {
            break message;
        }
    };
    assert_eq!(refused["id"], 7);
    assert_eq!(refused["ok"], false);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("viewer token"),
        "{refused}"
    );
    send_json(&mut socket, json!({"id": 8, "command": "resync"})).await;
    let mut resynced = false;
    for _ in 0..10 {
        let message = recv_json(&mut socket).await;
        if message["type"] == "result" && message["id"] == 8 {
            resynced = message["ok"] == true;
            break;
        }
    }
    assert!(resynced, "a viewer may resync");
    let mut admin = server.admin().await;
    assert_eq!(
        admin
            .snapshot
            .apps
            .iter()
            .find(|a| a.id == "demo")
            .unwrap()
            .status,
        relaydeck::protocol::admin::AppStatus::Active,
        "nothing changed"
    );
    assert!(admin.command(Command::Resync).await.ok);

    // `serve --readonly`: even the admin token only watches.
    let data = tempfile::tempdir().unwrap();
    let readonly = relaydeck::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Config::demo(),
        relaydeck::server::ServerOptions {
            data_dir: data.path().to_path_buf(),
            admin_token: Some("ro-admin".into()),
            admin_buffer: None,
            readonly: true,
        },
    )
    .await
    .unwrap();
    let mut request = format!("ws://{}/admin", readonly.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer ro-admin".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    recv_json(&mut socket).await;
    send_json(
        &mut socket,
        json!({"id": 1, "command": "kick", "peer": "p1", "reason": null}),
    )
    .await;
    let refused = loop {
        let message = recv_json(&mut socket).await;
        if message["type"] == "result" {
            break message;
        }
    };
    assert_eq!(refused["ok"], false);
    assert!(
        refused["message"].as_str().unwrap().contains("read-only"),
        "{refused}"
    );
    readonly.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_kick_reason_is_one_short_line() {
    let server = TestServer::demo().await;
    let mut peer = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut peer, "welcome").await;
    let mut admin = server.admin().await;
    let id = admin.snapshot.peers[0].id.clone();
    for reason in ["x".repeat(257), "two\nlines".to_owned()] {
        let result = admin
            .command(Command::Kick {
                peer: id.clone(),
                reason: Some(reason),
            })
            .await;
        assert!(!result.ok, "{result:?}");
    }
    // Refused, so the peer is still there to be kicked with a proper reason.
    let result = admin
        .command(Command::Kick {
            peer: id,
            reason: Some("x".repeat(256)),
        })
        .await;
    assert!(result.ok, "{result:?}");
    assert_eq!(
        recv_close(&mut peer).await,
        (4020, "admin_disconnect".to_owned())
    );
}
