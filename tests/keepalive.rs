//! Server pings over real sockets, on short intervals from the config: Flow streams and Talo
//! sockets that answer stay open past `security.idle_timeout_ms` (and a Flow stream receiving
//! data needs nothing else), and one that stops answering is dropped without a close frame,
//! as flow-go and Talo drop it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use relaydeck::server::config::Config;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

fn config() -> Config {
    let mut config = Config::demo();
    config.security.idle_timeout_ms = 3_000;
    config.flow.ping_interval_ms = 1_000;
    config.flow.pong_wait_ms = 1_500;
    config.flow.block_interval_ms = 500;
    config.talo.ping_interval_ms = 1_000;
    config
}

/// Read (answering pings, as every WebSocket client does) until `until`; the count of pings
/// seen and the texts received. Fails if the connection ends.
async fn read_until(socket: &mut Socket, until: Instant) -> (usize, Vec<String>) {
    let (mut pings, mut texts) = (0, Vec::new());
    loop {
        match tokio::time::timeout_at(until, socket.next()).await {
            Err(_) => return (pings, texts),
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(text)))) => texts.push(text.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("the connection ended: {other:?}"),
        }
    }
}

/// After a pause in which the client did not read (so answered nothing), the connection ends
/// within `within` and without a close frame.
async fn expect_dropped(socket: &mut Socket, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("still open")
        {
            Some(Ok(Message::Close(frame))) => panic!("expected a drop, got close {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

async fn talo_socket(server: &TestServer) -> Socket {
    let client = reqwest::Client::new();
    let ticket: Value = client
        .post(server.http("/v1/socket-tickets"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let identity: Value = client
        .get(server.http("/v1/players/identify?service=username&identifier=keepalive"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut socket = server
        .connect(&format!("/?ticket={}", ticket["ticket"].as_str().unwrap()))
        .await;
    assert_eq!(recv_json(&mut socket).await["res"], "v1.connected");
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": {"playerAliasId": identity["alias"]["id"], "socketToken": identity["socketToken"]}}),
    )
    .await;
    let mut identified = false;
    for _ in 0..10 {
        if recv_json(&mut socket).await["res"] == "v1.players.identify.success" {
            identified = true;
            break;
        }
    }
    assert!(identified);
    socket
}

#[tokio::test]
async fn an_answering_flow_stream_outlives_the_idle_timeout_and_is_pinged() {
    let server = TestServer::start(config()).await;
    let (mut stream, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    send_json(
        &mut stream,
        json!({"subscription_id": "d", "action": "subscribe", "topic": "block_digests", "arguments": {"block_status": "finalized"}}),
    )
    .await;
    let start = Instant::now();
    let (pings, texts) = read_until(&mut stream, start + Duration::from_secs(8)).await;
    assert!(pings >= 6, "{pings} pings in 8 s at one a second");
    assert!(texts.len() >= 10, "{} frames in 8 s", texts.len());
    send_json(&mut stream, json!({"action": "list_subscriptions"})).await;
    let mut answered = false;
    for _ in 0..100 {
        let frame = recv_json(&mut stream).await;
        if frame["action"] == "list_subscriptions" {
            assert_eq!(frame["subscriptions"][0]["subscription_id"], "d");
            answered = true;
            break;
        }
    }
    assert!(answered);
}

#[tokio::test]
async fn a_flow_stream_that_stops_answering_is_dropped() {
    let server = TestServer::start(config()).await;
    let (mut stream, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    let start = Instant::now();
    // Not reading means not answering: the pong wait (1.5 s) passes with no pong.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    expect_dropped(&mut stream, Duration::from_secs(5)).await;
    assert!(start.elapsed() < Duration::from_secs(7));
}

#[tokio::test]
async fn an_answering_talo_socket_outlives_the_idle_timeout_and_is_pinged() {
    let server = TestServer::start(config()).await;
    let mut socket = talo_socket(&server).await;
    let (pings, _) = read_until(&mut socket, Instant::now() + Duration::from_secs(8)).await;
    assert!(pings >= 6, "{pings} pings in 8 s at one a second");
    socket
        .send(Message::Text("v1.heartbeat".into()))
        .await
        .unwrap();
    let mut echoed = false;
    for _ in 0..10 {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        if message == Message::Text("v1.heartbeat".into()) {
            echoed = true;
            break;
        }
    }
    assert!(echoed, "the socket is still open and answers");
}

#[tokio::test]
async fn a_talo_socket_that_stops_answering_is_dropped_at_the_next_tick() {
    let server = TestServer::start(config()).await;
    let mut socket = talo_socket(&server).await;
    // The first ping (1 s) goes unanswered; the tick after it (2 s) drops the socket.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    expect_dropped(&mut socket, Duration::from_secs(5)).await;
}

/// The defaults are upstream's: flow-go pings every 9 s and waits 10 s for a pong, Talo pings
/// every 30 s.
#[test]
fn the_defaults_are_upstreams() {
    let config = Config::demo();
    assert_eq!(
        (config.flow.ping_interval_ms, config.flow.pong_wait_ms),
        (9_000, 10_000)
    );
    assert_eq!(config.talo.ping_interval_ms, 30_000);
    assert_eq!(config.flow.block_interval_ms, 1_000);
    assert!(!config.flow.strict_requests);
}

#[tokio::test]
async fn a_pinged_peers_round_trip_reaches_the_console() {
    let server = TestServer::start(config()).await;
    let mut admin = server.admin().await;
    let mut stream = server.connect("/v1/ws").await;
    // Reading answers the server's pings; the console hears of the peer's measured round
    // trip with the next counters it is sent.
    let reader = tokio::spawn(async move {
        let _ = read_until(&mut stream, Instant::now() + Duration::from_secs(20)).await;
        stream
    });
    let updated = admin
        .wait_event(|event| {
            matches!(
                event,
                relaydeck::protocol::admin::Event::PeerUpdated { peer }
                    if peer.round_trip_us.is_some()
            )
        })
        .await;
    let relaydeck::protocol::admin::Event::PeerUpdated { peer } = updated else {
        unreachable!()
    };
    assert_eq!(peer.dialect, relaydeck::catalog::Dialect::Flow);
    assert!(
        peer.round_trip_us
            .is_some_and(|us| us > 0 && us < 20_000_000),
        "{peer:?}"
    );
    reader.abort();
}
