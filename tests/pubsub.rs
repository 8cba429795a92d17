//! The pub/sub relay over real sockets: every error code and close code of its seed, and the
//! behaviour around them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::protocol::admin::{Command, Event, FaultTarget};
use relaydeck::server::config::Config;
use relaydeck::server::token;
use serde_json::json;

async fn welcomed(server: &TestServer, path: &str) -> (Socket, String) {
    let mut socket = server.connect(path).await;
    let welcome = recv_type(&mut socket, "welcome").await;
    let peer_id = welcome["peerId"].as_str().unwrap().to_owned();
    (socket, peer_id)
}

async fn expect_error(
    socket: &mut Socket,
    code: &str,
    request_id: Option<&str>,
) -> serde_json::Value {
    let frame = recv_json(socket).await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    match request_id {
        Some(id) => assert_eq!(frame["requestId"], id, "{frame}"),
        None => assert!(frame.get("requestId").is_none(), "{frame}"),
    }
    frame
}

#[tokio::test]
async fn publish_reaches_other_subscribers_with_acks_and_presence() {
    let server = TestServer::demo().await;
    let (mut alice, alice_id) = welcomed(&server, "/v1?key=pk_demo").await;
    let (mut bob, bob_id) = welcomed(&server, "/v1?key=pk_demo").await;
    send_json(
        &mut alice,
        json!({"type":"subscribe","channel":"demo/lobby","requestId":"s-1"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"type":"ack","requestId":"s-1"})
    );
    send_json(&mut bob, json!({"type":"subscribe","channel":"demo/lobby"})).await;
    assert_eq!(recv_json(&mut bob).await, json!({"type":"ack"}));
    // Bob is told who is already there; Alice is told Bob joined.
    assert_eq!(
        recv_json(&mut bob).await,
        json!({"type":"presence","channel":"demo/lobby","joined":[alice_id],"left":[]})
    );
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"type":"presence","channel":"demo/lobby","joined":[bob_id],"left":[]})
    );
    send_json(
        &mut alice,
        json!({"type":"publish","channel":"demo/lobby","data":{"hello":1},"requestId":"p-1"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"type":"ack","requestId":"p-1"})
    );
    assert_eq!(
        recv_json(&mut bob).await,
        json!({"type":"message","channel":"demo/lobby","from":alice_id,"data":{"hello":1}})
    );
    send_json(
        &mut bob,
        json!({"type":"send","to":alice_id,"data":"psst","requestId":"d-1"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut bob).await,
        json!({"type":"ack","requestId":"d-1"})
    );
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"type":"direct","from":bob_id,"data":"psst"})
    );
    // The publisher never receives its own message: the next thing Alice sees is Bob leaving.
    drop(bob);
    assert_eq!(
        recv_json(&mut alice).await,
        json!({"type":"presence","channel":"demo/lobby","joined":[],"left":[bob_id]})
    );
}

#[tokio::test]
async fn every_soft_error_code_of_the_seed() {
    let server = TestServer::demo().await;
    let (mut peer, _) = welcomed(&server, "/v1?key=pk_demo").await;

    send_text(&mut peer, "{not json").await;
    expect_error(&mut peer, "malformed_message", None).await;
    send_json(&mut peer, json!({"channel":"demo/a","requestId":"m-2"})).await;
    expect_error(&mut peer, "malformed_message", Some("m-2")).await;
    send_json(&mut peer, json!({"type":"pubish","requestId":"u-1"})).await;
    expect_error(&mut peer, "unknown_type", Some("u-1")).await;
    send_json(
        &mut peer,
        json!({"type":"subscribe","channel":"","requestId":"c-1"}),
    )
    .await;
    expect_error(&mut peer, "invalid_channel", Some("c-1")).await;
    send_json(
        &mut peer,
        json!({"type":"subscribe","channel":"demo/a\u{7}b"}),
    )
    .await;
    expect_error(&mut peer, "invalid_channel", None).await;
    send_json(
        &mut peer,
        json!({"type":"send","to":"","data":1,"requestId":"i-1"}),
    )
    .await;
    expect_error(&mut peer, "invalid_peer_id", Some("i-1")).await;
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"other-app/room-1","data":1,"requestId":"pub-2"}),
    )
    .await;
    let frame = expect_error(&mut peer, "channel_not_authorized", Some("pub-2")).await;
    assert_eq!(frame["message"], "not authorized: other-app/room-1");
    send_json(
        &mut peer,
        json!({"type":"subscribe","channel":"_system/alerts","requestId":"r-1"}),
    )
    .await;
    expect_error(&mut peer, "channel_reserved", Some("r-1")).await;
    send_json(
        &mut peer,
        json!({"type":"send","to":"nobody-here","data":1,"requestId":"n-1"}),
    )
    .await;
    expect_error(&mut peer, "peer_not_found", Some("n-1")).await;
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"demo/a","requestId":"d-1"}),
    )
    .await;
    expect_error(&mut peer, "missing_data", Some("d-1")).await;

    for index in 0..100 {
        send_json(
            &mut peer,
            json!({"type":"subscribe","channel":format!("demo/c/{index}")}),
        )
        .await;
        assert_eq!(recv_json(&mut peer).await["type"], "ack");
    }
    send_json(
        &mut peer,
        json!({"type":"subscribe","channel":"demo/c/one-too-many","requestId":"l-1"}),
    )
    .await;
    expect_error(&mut peer, "channel_limit_exceeded", Some("l-1")).await;

    let (mut reader, _) = welcomed(&server, "/v1?key=pk_demo_ro").await;
    send_json(
        &mut reader,
        json!({"type":"publish","channel":"demo/public/news","data":1,"requestId":"a-1"}),
    )
    .await;
    expect_error(&mut reader, "action_not_permitted", Some("a-1")).await;
    send_json(
        &mut reader,
        json!({"type":"subscribe","channel":"demo/public/news","requestId":"a-2"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut reader).await,
        json!({"type":"ack","requestId":"a-2"})
    );
}

#[tokio::test]
async fn the_message_quota_fails_requests_but_keeps_the_connection() {
    let server = TestServer::demo().await;
    let (mut peer, _) = welcomed(&server, "/v1?key=pk_limited").await;
    for n in 0..3 {
        send_json(
            &mut peer,
            json!({"type":"publish","channel":"limited/x","data":n}),
        )
        .await;
        assert_eq!(recv_json(&mut peer).await["type"], "ack");
    }
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"limited/x","data":4,"requestId":"q-1"}),
    )
    .await;
    expect_error(&mut peer, "over_message_quota", Some("q-1")).await;
    // Still open: other requests work.
    send_json(
        &mut peer,
        json!({"type":"subscribe","channel":"limited/x","requestId":"q-2"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut peer).await,
        json!({"type":"ack","requestId":"q-2"})
    );
}

#[tokio::test]
async fn armed_faults_produce_server_side_codes() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let (mut peer, _) = welcomed(&server, "/v1?key=pk_demo").await;
    for code in ["backend_error", "internal_error"] {
        let result = admin
            .command(Command::ArmFault {
                target: FaultTarget::Dialect {
                    dialect: relaydeck::catalog::Dialect::Pubsub,
                },
                code: code.to_owned(),
                count: 1,
            })
            .await;
        assert!(result.ok, "{result:?}");
        send_json(
            &mut peer,
            json!({"type":"publish","channel":"demo/a","data":1,"requestId":"f-1"}),
        )
        .await;
        expect_error(&mut peer, code, Some("f-1")).await;
    }
    // Each fault fired once: the next request succeeds.
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"demo/a","data":1,"requestId":"f-2"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut peer).await,
        json!({"type":"ack","requestId":"f-2"})
    );
    let refused = admin
        .command(Command::ArmFault {
            target: FaultTarget::Dialect {
                dialect: relaydeck::catalog::Dialect::Pubsub,
            },
            code: "NOT_A_CODE".to_owned(),
            count: 1,
        })
        .await;
    assert!(!refused.ok);
}

#[tokio::test]
async fn a_disarmed_fault_stops_failing_requests() {
    let server = TestServer::demo().await;
    let mut admin = server.admin().await;
    let (mut peer, _) = welcomed(&server, "/v1?key=pk_demo").await;
    // Admin commands name peers by their hub id, not by the pub/sub peerId of the welcome.
    let Event::PeerConnected { peer: info } = admin
        .wait_event(|event| matches!(event, Event::PeerConnected { .. }))
        .await
    else {
        unreachable!("wait_event returns the event it matched")
    };
    let armed = admin
        .command(Command::ArmFault {
            target: FaultTarget::Peer { peer: info.id },
            code: "backend_error".to_owned(),
            count: 5,
        })
        .await;
    assert!(armed.ok, "{armed:?}");
    let Event::FaultArmed { fault } = admin
        .wait_event(|event| matches!(event, Event::FaultArmed { .. }))
        .await
    else {
        unreachable!("wait_event returns the event it matched")
    };
    assert_eq!(fault.remaining, 5);
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"demo/a","data":1,"requestId":"d-1"}),
    )
    .await;
    expect_error(&mut peer, "backend_error", Some("d-1")).await;

    let disarmed = admin
        .command(Command::DisarmFault { fault: fault.id })
        .await;
    assert!(disarmed.ok, "{disarmed:?}");
    send_json(
        &mut peer,
        json!({"type":"publish","channel":"demo/a","data":1,"requestId":"d-2"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut peer).await,
        json!({"type":"ack","requestId":"d-2"})
    );
    let again = admin
        .command(Command::DisarmFault { fault: fault.id })
        .await;
    assert!(!again.ok, "a fault is disarmed once: {again:?}");
}

#[tokio::test]
async fn connect_refusals_are_close_codes() {
    let server = TestServer::demo().await;
    let mut bad_key = server.connect("/v1?key=pk_nope").await;
    assert_eq!(
        recv_close(&mut bad_key).await,
        (4001, "invalid_token".to_owned())
    );
    let mut no_credentials = server.connect("/v1").await;
    assert_eq!(recv_close(&mut no_credentials).await.0, 4001);
    let mut bad_token = server.connect("/v1?token=not.a.token").await;
    assert_eq!(recv_close(&mut bad_token).await.0, 4001);

    let expired = token::mint(
        "sk_demo",
        &token::Claims {
            sub: "late".into(),
            app: "demo".into(),
            exp: 1,
            channels: None,
            permissions: None,
        },
    );
    let mut late = server.connect(&format!("/v1?token={expired}")).await;
    assert_eq!(
        recv_close(&mut late).await,
        (4002, "token_expired".to_owned())
    );

    let mut outside = server
        .connect("/v1?key=pk_demo&channels=demo/ok,other/room")
        .await;
    assert_eq!(
        recv_close(&mut outside).await,
        (4003, "channel_not_authorized".to_owned())
    );

    let mut suspended = server.connect("/v1?key=pk_suspended").await;
    assert_eq!(
        recv_close(&mut suspended).await,
        (4012, "account_suspended".to_owned())
    );

    let (_first, _) = welcomed(&server, "/v1?key=pk_limited").await;
    let (_second, _) = welcomed(&server, "/v1?key=pk_limited").await;
    let mut third = server.connect("/v1?key=pk_limited").await;
    assert_eq!(
        recv_close(&mut third).await,
        (4010, "over_concurrent_limit".to_owned())
    );
}

#[tokio::test]
async fn minted_tokens_connect_with_their_peer_id_and_channels() {
    let server = TestServer::demo().await;
    let client = reqwest::Client::new();
    let response = client
        .post(server.http("/v1/tokens"))
        .bearer_auth("sk_demo")
        .json(&json!({"peerId":"player-9","channels":["demo/lobby"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let mut socket = server
        .connect(&format!("/v1?token={}", body["token"].as_str().unwrap()))
        .await;
    let welcome = recv_type(&mut socket, "welcome").await;
    assert_eq!(welcome["peerId"], "player-9");
    assert_eq!(
        recv_json(&mut socket).await,
        json!({"type":"ack"}),
        "pre-subscribed to demo/lobby"
    );

    let refused = client
        .post(server.http("/v1/tokens"))
        .bearer_auth("sk_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let bad_body = client
        .post(server.http("/v1/tokens"))
        .bearer_auth("sk_demo")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), 400);
}

#[tokio::test]
async fn floods_close_with_4011_and_big_frames_with_1009() {
    let server = TestServer::demo().await;
    let (mut flooder, _) = welcomed(&server, "/v1?key=pk_demo").await;
    let frame = json!({"type":"publish","channel":"demo/flood","data":0}).to_string();
    for _ in 0..400 {
        if futures_util::SinkExt::feed(
            &mut flooder,
            tokio_tungstenite::tungstenite::Message::Text(frame.clone().into()),
        )
        .await
        .is_err()
        {
            break;
        }
    }
    let _ = futures_util::SinkExt::flush(&mut flooder).await;
    assert_eq!(
        recv_close(&mut flooder).await,
        (4011, "over_message_rate".to_owned())
    );

    let (mut big, _) = welcomed(&server, "/v1?key=pk_demo").await;
    let data = "x".repeat(70 * 1024);
    send_json(
        &mut big,
        json!({"type":"publish","channel":"demo/big","data":data}),
    )
    .await;
    assert_eq!(
        recv_close(&mut big).await,
        (1009, "frame_too_big".to_owned())
    );
}

/// A client still sending when it is closed reads its 4011, three times in a row. (The server
/// reads on until the client's close so that unread frames never make the kernel answer with a
/// reset, which would destroy the close frame in flight; this loopback delivers the close
/// either way, so the test pins the outcome, not that mechanism.)
#[tokio::test]
async fn a_client_still_flooding_receives_its_4011() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = TestServer::demo().await;
    for attempt in 0..3 {
        let (flooder, _) = welcomed(&server, "/v1?key=pk_demo").await;
        let (mut sink, mut stream) = flooder.split();
        let frame = json!({"type":"publish","channel":"demo/flood","data":attempt}).to_string();
        // Bounded: far past the burst of 200, and it stops at the first failed send. Reading
        // starts only once the client is done sending, as a busy client's would.
        for _ in 0..5_000 {
            if sink
                .send(Message::Text(frame.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let close = loop {
            let message = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
                .await
                .expect("no close before the timeout");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    break (u16::from(frame.code), frame.reason.to_string())
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("attempt {attempt}: the connection failed first: {e}"),
                None => panic!("attempt {attempt}: the connection ended without a close"),
            }
        };
        assert_eq!(
            close,
            (4011, "over_message_rate".to_owned()),
            "attempt {attempt}"
        );
    }
}

#[tokio::test]
async fn shutdown_sends_going_away_then_1001() {
    let server = TestServer::demo().await;
    let (mut peer, _) = welcomed(&server, "/v1?key=pk_demo").await;
    let stopping = tokio::spawn(server.stop());
    let notice = recv_json(&mut peer).await;
    assert_eq!(notice["type"], "going_away");
    assert!(notice["retryAfterMs"].as_u64().unwrap() > 0);
    assert_eq!(recv_close(&mut peer).await, (1001, "going_away".to_owned()));
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_custom_config_is_honoured() {
    let mut config = Config::demo();
    config.apps[0].limits.max_connections = 1;
    let server = TestServer::start(config).await;
    let (_only, _) = welcomed(&server, "/v1?key=pk_demo").await;
    let mut refused = server.connect("/v1?key=pk_demo_ro").await;
    assert_eq!(recv_close(&mut refused).await.0, 4010);
}

#[tokio::test]
async fn a_key_sets_its_own_message_rate() {
    let mut config = Config::demo();
    config.apps[0].pubsub_keys[0].rate = relaydeck::server::config::PubsubRate {
        messages_per_second: 1,
        burst: 3,
    };
    let server = TestServer::start(config).await;
    let mut socket = server.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut socket, "welcome").await;
    assert_eq!(
        welcome["limits"],
        json!({"maxChannels": 100, "messagesPerSecond": 1, "burst": 3, "maxFrameBytes": 65536})
    );
    for n in 0..3 {
        send_json(
            &mut socket,
            json!({"type":"publish","channel":"demo/rate","data":n,"requestId":format!("r{n}")}),
        )
        .await;
        assert_eq!(
            recv_type(&mut socket, "ack").await["requestId"],
            format!("r{n}")
        );
    }
    send_json(
        &mut socket,
        json!({"type":"publish","channel":"demo/rate","data":3}),
    )
    .await;
    assert_eq!(
        recv_close(&mut socket).await,
        (4011, "over_message_rate".to_owned())
    );
}

/// Overload degrades: a subscriber that falls behind loses channel messages, keeps its
/// replies and its connection, and catches up once it reads again.
#[tokio::test]
async fn a_subscriber_behind_loses_messages_but_stays_connected() {
    let mut config = Config::demo();
    config.apps[0].pubsub_keys[0].rate = relaydeck::server::config::PubsubRate {
        messages_per_second: 100_000,
        burst: 100_000,
    };
    config.outbox = relaydeck::server::peer::OutboxLimits {
        soft_bytes: 32 * 1024,
        hard_bytes: 64 << 20,
        stall_ms: 60_000,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let (mut subscriber, _) = welcomed(&server, "/v1?key=pk_demo").await;
    send_json(
        &mut subscriber,
        json!({"type":"subscribe","channel":"demo/busy","requestId":"s1"}),
    )
    .await;
    recv_type(&mut subscriber, "ack").await;
    let (mut publisher, _) = welcomed(&server, "/v1?key=pk_demo").await;

    // 2,000 messages of 4 KiB (8 MB) while the subscriber reads nothing: far more than the
    // loopback buffers and the 32 KiB budget hold.
    const PUBLISHED: usize = 2_000;
    let data = "x".repeat(4096);
    for n in 0..PUBLISHED {
        send_json(
            &mut publisher,
            json!({"type":"publish","channel":"demo/busy","data":{"n":n,"pad":data}}),
        )
        .await;
    }
    let mut acks = 0;
    while acks < PUBLISHED {
        recv_type(&mut publisher, "ack").await;
        acks += 1;
    }

    // The subscriber reads again: a reply it asks for now arrives after what was kept.
    send_json(
        &mut subscriber,
        json!({"type":"subscribe","channel":"demo/other","requestId":"s2"}),
    )
    .await;
    let mut received = 0;
    loop {
        let frame = recv_json(&mut subscriber).await;
        match frame["type"].as_str() {
            Some("message") => received += 1,
            Some("ack") if frame["requestId"] == "s2" => break,
            _ => {}
        }
    }
    assert!(received > 0, "the subscriber kept receiving while behind");
    assert!(
        received < PUBLISHED,
        "messages past the budget were dropped, not queued without bound ({received})"
    );
    let metrics = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "relaydeck_frames_dropped_total {}",
            PUBLISHED - received
        )),
        "every dropped message is counted:\n{metrics}"
    );
}
