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
