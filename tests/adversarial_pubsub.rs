//! Hostile pub/sub clients over real sockets: each attack gets the code the dialect documents
//! (src/server/pubsub/mod.rs, SECURITY.md), and the channel members who did nothing wrong keep
//! their membership and their traffic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::Config;
use serde_json::json;

const CHANNEL: &str = "demo/lobby";

/// Tests that allocate megabytes, or measure the process's memory, run one at a time: the
/// server shares this process with every other test of the file.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn welcomed(server: &TestServer) -> (Socket, String) {
    let mut socket = server.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut socket, "welcome").await;
    (socket, welcome["peerId"].as_str().unwrap().to_owned())
}

/// Two members of `CHANNEL` who watch each other: the bystanders every attack must spare.
async fn bystanders(server: &TestServer) -> (Socket, Socket, String) {
    let (mut alice, _) = welcomed(server).await;
    let (mut bob, bob_id) = welcomed(server).await;
    send_json(&mut alice, json!({"type":"subscribe","channel":CHANNEL})).await;
    assert_eq!(recv_json(&mut alice).await, json!({"type":"ack"}));
    send_json(&mut bob, json!({"type":"subscribe","channel":CHANNEL})).await;
    assert_eq!(recv_json(&mut bob).await, json!({"type":"ack"}));
    (alice, bob, bob_id)
}

/// Bob publishes and Alice receives it: both are still members, and the relay still works.
async fn still_relaying(alice: &mut Socket, bob: &mut Socket, bob_id: &str, marker: &str) {
    send_json(
        bob,
        json!({"type":"publish","channel":CHANNEL,"data":marker,"requestId":marker}),
    )
    .await;
    assert_eq!(
        recv_type(bob, "ack").await,
        json!({"type":"ack","requestId":marker})
    );
    assert_eq!(
        recv_type(alice, "message").await,
        json!({"type":"message","channel":CHANNEL,"from":bob_id,"data":marker})
    );
}

/// The attacker's own connection still answers a request normally.
async fn still_open(socket: &mut Socket, request_id: &str) {
    send_json(
        socket,
        json!({"type":"subscribe","channel":"demo/after","requestId":request_id}),
    )
    .await;
    assert_eq!(
        recv_type(socket, "ack").await,
        json!({"type":"ack","requestId":request_id})
    );
}

async fn expect_error(socket: &mut Socket, code: &str) {
    let frame = recv_type(socket, "error").await;
    assert_eq!(frame["code"], code, "{frame}");
}

#[tokio::test]
async fn an_oversized_frame_closes_1009_and_spares_the_channel() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;

    let (mut text_sender, _) = welcomed(&server).await;
    let padding = "x".repeat(64 * 1024);
    send_text(
        &mut text_sender,
        &json!({"type":"publish","channel":CHANNEL,"data":padding}).to_string(),
    )
    .await;
    assert_eq!(recv_close(&mut text_sender).await.0, 1009);

    // The same bytes in a binary frame are measured the same way.
    let (mut binary_sender, _) = welcomed(&server).await;
    send_binary(
        &mut binary_sender,
        json!({"type":"publish","channel":CHANNEL,"data":padding})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(recv_close(&mut binary_sender).await.0, 1009);

    still_relaying(&mut alice, &mut bob, &bob_id, "after-oversized").await;
}

#[tokio::test]
async fn a_frame_over_the_read_limit_ends_only_that_connection() {
    let _memory = MEMORY.lock().await;
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    // Past the 4 MiB read limit the WebSocket library refuses the frame before the dialect
    // sees it; whatever the ending, it must be this connection's alone.
    // The server may end the connection before the whole frame is written.
    let _ = futures_util::SinkExt::send(
        &mut attacker,
        tokio_tungstenite::tungstenite::Message::Binary(vec![b'x'; 5 << 20].into()),
    )
    .await;
    let ending = recv_ending(&mut attacker).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1009, _)),
        "{ending:?}"
    );
    still_relaying(&mut alice, &mut bob, &bob_id, "after-read-limit").await;
}

#[tokio::test]
async fn truncated_json_is_malformed_and_the_connection_stays_open() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    let whole = json!({"type":"publish","channel":CHANNEL,"data":{"k":[1,2,3]},"requestId":"t"})
        .to_string();
    // Every proper prefix of a valid frame, the empty one included, is refused the same way.
    for end in (0..whole.len()).step_by(7) {
        send_text(&mut attacker, &whole[..end]).await;
        expect_error(&mut attacker, "malformed_message").await;
    }
    still_open(&mut attacker, "after-truncated").await;
    still_relaying(&mut alice, &mut bob, &bob_id, "after-truncated").await;
}

#[tokio::test]
async fn a_binary_frame_is_read_as_its_text() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    send_binary(
        &mut attacker,
        json!({"type":"subscribe","channel":"demo/bin","requestId":"b-1"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        recv_json(&mut attacker).await,
        json!({"type":"ack","requestId":"b-1"})
    );
    send_binary(&mut attacker, vec![0, 1, 2, 3, 0x7f]).await;
    expect_error(&mut attacker, "malformed_message").await;
    still_open(&mut attacker, "after-binary").await;
    still_relaying(&mut alice, &mut bob, &bob_id, "after-binary").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_binary_frame_is_malformed_and_the_connection_stays_open() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    send_binary(&mut attacker, vec![0xff, 0xfe, 0xfd, 0xc3, 0x28]).await;
    expect_error(&mut attacker, "malformed_message").await;
    // A broken byte inside an otherwise valid envelope must not turn into a valid request.
    let mut frame = br#"{"type":"subscribe","channel":"demo/lobby""#.to_vec();
    frame.extend_from_slice(&[0xff, b'}']);
    send_binary(&mut attacker, frame).await;
    expect_error(&mut attacker, "malformed_message").await;
    still_open(&mut attacker, "after-utf8").await;
    still_relaying(&mut alice, &mut bob, &bob_id, "after-utf8").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_ends_only_that_connection() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    // RFC 6455 makes invalid UTF-8 in a text frame a protocol failure (1007); the WebSocket
    // library ends the connection before the dialect sees the frame.
    send_raw_text(&mut attacker, vec![b'{', 0xff, 0xfe, b'}']).await;
    let ending = recv_ending(&mut attacker).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1007, _)),
        "{ending:?}"
    );
    still_relaying(&mut alice, &mut bob, &bob_id, "after-text-utf8").await;
}

#[tokio::test]
async fn deeply_nested_json_is_malformed_and_the_connection_stays_open() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    let deep = nested_arrays(10_000);
    // As the whole frame, as a field the envelope reads, and as the relayed `data`.
    send_text(&mut attacker, &deep).await;
    expect_error(&mut attacker, "malformed_message").await;
    send_text(
        &mut attacker,
        &format!(r#"{{"type":"subscribe","channel":{deep}}}"#),
    )
    .await;
    expect_error(&mut attacker, "malformed_message").await;
    still_open(&mut attacker, "after-nested").await;
    still_relaying(&mut alice, &mut bob, &bob_id, "after-nested").await;
}

#[tokio::test]
async fn deeply_nested_data_is_not_relayed() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    send_json(&mut attacker, json!({"type":"subscribe","channel":CHANNEL})).await;
    recv_type(&mut attacker, "ack").await;
    send_text(
        &mut attacker,
        &format!(
            r#"{{"type":"publish","channel":"{CHANNEL}","data":{},"requestId":"deep"}}"#,
            nested_arrays(10_000)
        ),
    )
    .await;
    expect_error(&mut attacker, "malformed_message").await;
    // serde_json reads 127 levels and the relayed message holds `data` one object deep: 127
    // levels of data are refused, 126 relayed whole, readable by a client with serde_json's
    // limit (this test's).
    send_text(
        &mut attacker,
        &format!(
            r#"{{"type":"publish","channel":"{CHANNEL}","data":{},"requestId":"edge"}}"#,
            nested_arrays(127)
        ),
    )
    .await;
    let refused = recv_type(&mut attacker, "error").await;
    assert_eq!(refused["code"], "malformed_message", "{refused}");
    assert_eq!(
        refused["message"],
        "malformed message: data is nested deeper than 126 levels"
    );
    send_text(
        &mut attacker,
        &format!(
            r#"{{"type":"publish","channel":"{CHANNEL}","data":{},"requestId":"fits"}}"#,
            nested_arrays(126)
        ),
    )
    .await;
    recv_type(&mut attacker, "ack").await;
    for member in [&mut alice, &mut bob] {
        let relayed = recv_type(member, "message").await;
        assert_eq!(relayed["data"].to_string(), nested_arrays(126));
    }
    still_relaying(&mut alice, &mut bob, &bob_id, "after-deep-data").await;
}

#[tokio::test]
async fn a_publish_flood_closes_4011_and_spares_the_channel() {
    let server = TestServer::demo().await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut attacker, _) = welcomed(&server).await;
    // The documented bucket holds a burst of 200; twice that, sent without reading, must
    // overflow it however slowly the machine runs.
    let frame = json!({"type":"publish","channel":"demo/flood","data":1}).to_string();
    for _ in 0..400 {
        if futures_util::SinkExt::send(
            &mut attacker,
            tokio_tungstenite::tungstenite::Message::Text(frame.clone().into()),
        )
        .await
        .is_err()
        {
            break;
        }
    }
    assert_eq!(recv_close(&mut attacker).await.0, 4011);
    still_relaying(&mut alice, &mut bob, &bob_id, "after-flood").await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_upgrade_headers_is_dropped() {
    let mut config = Config::demo();
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let (mut alice, mut bob, bob_id) = bystanders(&server).await;
    let (answer, took) = slowloris(server.addr, "/v1?key=pk_demo").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(5), "dropped after {took:?}");
    still_relaying(&mut alice, &mut bob, &bob_id, "after-slowloris").await;
}

/// A subscriber that stops reading while a publisher keeps publishing: its outbox stays within
/// the configured budget, it is closed 1013 once its writer has made no progress for
/// `outbox.stall_ms`, the process's memory does not grow with the publishing, and the
/// publisher and the subscriber who kept reading keep relaying.
#[tokio::test]
async fn a_subscriber_that_stops_reading_is_closed_1013_and_memory_stays_flat() {
    use relaydeck::protocol::admin::Event;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    // The publishing must meet the outbox bound, not the publisher's rate limit.
    config.apps[0].pubsub_keys[0].rate = relaydeck::server::config::PubsubRate {
        messages_per_second: 1_000_000,
        burst: 1_000_000,
    };
    // Past 64 KiB queued a subscriber loses messages; with no progress for a second while
    // frames wait it has stopped reading. A second, not less: Alice below reads while the
    // publishing runs, and a loaded machine must not make her look stalled.
    config.outbox = relaydeck::server::peer::OutboxLimits {
        soft_bytes: 64 * 1024,
        hard_bytes: 1 << 20,
        stall_ms: 1_000,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    let (alice, mut bob, bob_id) = bystanders(&server).await;
    let (mut stalled, _) = welcomed(&server).await;
    send_json(&mut stalled, json!({"type":"subscribe","channel":CHANNEL})).await;
    assert_eq!(recv_json(&mut stalled).await, json!({"type":"ack"}));

    // Alice reads everything, on her own task, until told to stop; a cancelled `next` loses
    // nothing, so her socket comes back whole.
    let (stop_alice, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let alice_reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut alice = alice;
        let mut frames = 0usize;
        loop {
            tokio::select! {
                _ = &mut stopped => return (alice, frames),
                message = alice.next() => match message {
                    Some(Ok(_)) => frames += 1,
                    other => panic!("Alice's connection ended: {other:?}"),
                },
            }
        }
    });

    let before = rss_kib();
    // Bob publishes 16 kB messages until the server reports the stall, then 1,000 more (16 MB
    // that the closed subscriber must not hold), in rounds of 100 whose acks he reads, so
    // that he never runs ahead of the server; 20,000 messages or `STALL_TIMEOUT` at most.
    let stalled_seen = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn({
        let stalled_seen = stalled_seen.clone();
        async move {
            let pad = "p".repeat(16_000);
            let started = std::time::Instant::now();
            let mut after_stall = 0;
            for round in 0..200 {
                for n in 0..100 {
                    send_json(
                        &mut bob,
                        json!({"type":"publish","channel":CHANNEL,"data":{"n": round * 100 + n, "pad": pad}}),
                    )
                    .await;
                }
                for _ in 0..100 {
                    recv_type(&mut bob, "ack").await;
                }
                if stalled_seen.load(Ordering::Relaxed) {
                    after_stall += 100;
                }
                if after_stall >= 1_000 || started.elapsed() > STALL_TIMEOUT {
                    break;
                }
            }
            bob
        }
    });
    let event = admin
        .wait_error_before("1013", tokio::time::Instant::now() + STALL_TIMEOUT)
        .await;
    stalled_seen.store(true, Ordering::Relaxed);
    let Event::ErrorEmitted { frame, .. } = event else {
        unreachable!()
    };
    assert_eq!(frame, "close 1013 try_again_later");
    let mut bob = tokio::time::timeout(2 * STALL_TIMEOUT, publishing)
        .await
        .expect("the publishing ended")
        .unwrap();
    let after = rss_kib();
    eprintln!("RSS {before} KiB before the publishing, {after} KiB after");
    // The budget held: messages past it were dropped, not queued.
    assert!(frames_dropped(&server).await > 0, "no frame was dropped");
    // Without the bound the stalled subscriber's queue would hold what was published in the
    // second before the stall was noticed and the 16 MB after it. With it, the queue holds at
    // most 64 KiB; the growth measured (allocator and runtime slack, the file's other tests
    // alongside) was under 1 MiB; 12 MiB leaves room for a loaded machine and stays under the
    // 16 MB an unbounded queue would have kept.
    assert!(
        after <= before + 12 * 1024,
        "RSS {before} KiB before the publishing, {after} KiB after"
    );

    // Reading again drains what the kernel held; the close comes after it.
    let ending = recv_ending(&mut stalled).await;
    assert_eq!(ending, Ending::Close(1013, "try_again_later".to_owned()));

    // Alice kept reading and keeps her membership: an ack (a reply, queued behind whatever
    // messages she has not read yet) catches her up, then Bob's next message reaches her.
    stop_alice.send(()).unwrap();
    let (mut alice, frames) = alice_reader.await.unwrap();
    assert!(
        frames > 0,
        "Alice received messages while the publishing ran"
    );
    still_open(&mut alice, "catch-up").await;
    still_relaying(&mut alice, &mut bob, &bob_id, "after-stall").await;
}
