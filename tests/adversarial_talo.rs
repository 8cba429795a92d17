//! Hostile Talo clients over real sockets and real HTTP: each attack gets the code the dialect
//! documents (src/server/talo/{mod,socket,http}.rs, SECURITY.md), and the players who did
//! nothing wrong stay identified, in their channel, and chatting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::{Config, TaloPlayer};
use serde_json::{json, Value};

const KEY: &str = "talo_demo_full";

/// The demo config with Carol and Mallory, players of the `username` service, added to the
/// `general` channel (id 1) beside Alice.
fn config() -> Config {
    let mut config = Config::demo();
    let talo = config.apps[0].talo.as_mut().unwrap();
    for name in ["carol", "mallory"] {
        talo.players.push(TaloPlayer {
            service: "username".to_owned(),
            identifier: name.to_owned(),
            password: None,
            password_hash: None,
        });
        talo.channels[0].members.push(name.to_owned());
    }
    config
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(RECEIVE_TIMEOUT)
        .build()
        .unwrap()
}

async fn ticket(server: &TestServer) -> String {
    let response = http()
        .post(server.http("/v1/socket-tickets"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn identify_http(server: &TestServer, identifier: &str) -> reqwest::Response {
    http()
        .get(server.http(&format!(
            "/v1/players/identify?service=username&identifier={identifier}"
        )))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
}

/// A socket whose player has identified.
async fn player(server: &TestServer, identifier: &str) -> Socket {
    let mut socket = server
        .connect(&format!("/?ticket={}", ticket(server).await))
        .await;
    assert_eq!(
        recv_json(&mut socket).await,
        json!({"res": "v1.connected", "data": {}})
    );
    let response = identify_http(server, identifier).await;
    assert_eq!(response.status(), 200);
    let identity: Value = response.json().await.unwrap();
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": {
            "playerAliasId": identity["alias"]["id"],
            "socketToken": identity["socketToken"],
        }}),
    )
    .await;
    assert_eq!(
        recv_talo(&mut socket).await["res"],
        "v1.players.identify.success"
    );
    socket
}

/// The next frame other than a presence update.
async fn recv_talo(socket: &mut Socket) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["res"] != "v1.players.presence.updated" {
            return frame;
        }
    }
}

async fn expect_error(socket: &mut Socket, code: &str) -> Value {
    let frame = recv_talo(socket).await;
    assert_eq!(frame["res"], "v1.error", "{frame}");
    assert_eq!(frame["data"]["errorCode"], code, "{frame}");
    frame
}

fn channel_message(message: &str) -> String {
    json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": message}})
        .to_string()
}

/// The bystanders, Alice and Carol, identified and in `general`; and the attacker, Mallory,
/// identified and in `general` too.
async fn players(server: &TestServer) -> (Socket, Socket, Socket) {
    let alice = player(server, "alice").await;
    let carol = player(server, "carol").await;
    let mallory = player(server, "mallory").await;
    (alice, carol, mallory)
}

/// Alice's channel message reaches Carol and Alice herself: both are still identified
/// members. The first channel message either sees must be this one: nothing the server
/// refused was relayed.
async fn still_chatting(alice: &mut Socket, carol: &mut Socket, marker: &str) {
    send_text(alice, &channel_message(marker)).await;
    for socket in [carol, alice] {
        let frame = recv_talo(socket).await;
        let shown: String = frame.to_string().chars().take(300).collect();
        assert_eq!(frame["res"], "v1.channels.message", "{shown}");
        assert_eq!(frame["data"]["message"], marker, "{shown}");
        assert_eq!(frame["data"]["playerAlias"]["identifier"], "alice");
    }
}

/// The attacker's own connection still answers a heartbeat.
async fn still_open(socket: &mut Socket) {
    send_text(socket, "v1.heartbeat").await;
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(socket))
            .await
            .expect("no heartbeat echo before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        if message.to_text().unwrap_or_default() == "v1.heartbeat" {
            return;
        }
    }
}

#[tokio::test]
async fn a_frame_over_1_mib_closes_1009() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    // The Talo socket's frame limit is its WebSocket read limit (1 MiB): the library refuses
    // the frame, and the connection closes 1009, as upstream's `ws` does past its maxPayload.
    // The server may end the connection before the whole frame is written.
    let just_over = channel_message(&"x".repeat(1 << 20));
    let _ = futures_util::SinkExt::send(
        &mut mallory,
        tokio_tungstenite::tungstenite::Message::Text(just_over.into()),
    )
    .await;
    let ending = recv_ending(&mut mallory).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1009, _)),
        "{ending:?}"
    );
    // Far over it, in a binary frame.
    let mut other = player(&server, "mallory").await;
    let _ = futures_util::SinkExt::send(
        &mut other,
        tokio_tungstenite::tungstenite::Message::Binary(vec![b'x'; 5 << 20].into()),
    )
    .await;
    let ending = recv_ending(&mut other).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1009, _)),
        "{ending:?}"
    );
    still_chatting(&mut alice, &mut carol, "after-oversized").await;
}

#[tokio::test]
async fn a_large_frame_under_the_limit_is_echoed_cut_to_256_characters() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    // JSON, but not an envelope: INVALID_MESSAGE quotes the frame as `cause`, cut.
    let large = json!({"req": "v1.nope", "pad": "y".repeat(900 * 1024)}).to_string();
    send_text(&mut mallory, &large).await;
    let refused = expect_error(&mut mallory, "INVALID_MESSAGE").await;
    let cause = refused["data"]["cause"].as_str().unwrap();
    assert_eq!(
        cause.chars().count(),
        257,
        "256 characters and the ellipsis"
    );
    assert!(cause.ends_with('…'));
    // A channel message of the same size is relayed: requests carry no size of their own.
    send_text(&mut mallory, &channel_message(&"z".repeat(900 * 1024))).await;
    for socket in [&mut alice, &mut carol] {
        let frame = recv_talo(socket).await;
        assert_eq!(frame["data"]["message"].as_str().unwrap().len(), 900 * 1024);
    }
    still_open(&mut mallory).await;
    still_chatting(&mut alice, &mut carol, "after-large").await;
}

#[tokio::test]
async fn truncated_json_is_a_routing_error_and_the_connection_stays_open() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    let whole = channel_message("truncated");
    // Every proper prefix of a valid request, the empty one included, is not JSON.
    for end in (0..whole.len()).step_by(6) {
        send_text(&mut mallory, &whole[..end]).await;
        let refused = expect_error(&mut mallory, "ROUTING_ERROR").await;
        assert_eq!(refused["data"]["req"], "unknown");
    }
    still_open(&mut mallory).await;
    still_chatting(&mut alice, &mut carol, "after-truncated").await;
}

#[tokio::test]
async fn a_binary_frame_is_read_as_its_text() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    // Upstream's socket reads every data frame as text (`ws` hands it a Buffer, which the
    // router turns into a string), so a request in a binary frame is a request.
    send_binary(&mut mallory, channel_message("from-binary").into_bytes()).await;
    for socket in [&mut alice, &mut carol, &mut mallory] {
        let frame = recv_talo(socket).await;
        assert_eq!(frame["data"]["message"], "from-binary", "{frame}");
    }
    send_binary(&mut mallory, vec![0, 1, 2, 3, 0x7f]).await;
    expect_error(&mut mallory, "ROUTING_ERROR").await;
    still_open(&mut mallory).await;
    still_chatting(&mut alice, &mut carol, "after-binary").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_binary_frame_is_read_as_node_reads_it() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    send_binary(&mut mallory, vec![0xff, 0xfe, 0xfd, 0xc3, 0x28]).await;
    expect_error(&mut mallory, "ROUTING_ERROR").await;
    // Inside a string, a broken byte becomes U+FFFD, as Node's Buffer#toString makes it
    // upstream: the request goes through with the replacement character, never the byte.
    let mut frame =
        br#"{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"a"#.to_vec();
    frame.extend_from_slice(&[0xff, b'b', b'"', b'}', b'}']);
    send_binary(&mut mallory, frame).await;
    for socket in [&mut alice, &mut carol, &mut mallory] {
        let frame = recv_talo(socket).await;
        assert_eq!(frame["data"]["message"], "a\u{fffd}b", "{frame}");
    }
    still_open(&mut mallory).await;
    still_chatting(&mut alice, &mut carol, "after-binary-utf8").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_1007_and_the_player_goes_offline() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    // RFC 6455 makes invalid UTF-8 in a text frame a protocol failure (1007); the WebSocket
    // library ends the connection before the dialect sees the frame.
    let mut frame = channel_message("a").into_bytes();
    let at = frame.len() - 4;
    frame.insert(at, 0xff);
    send_raw_text(&mut mallory, frame).await;
    let ending = recv_ending(&mut mallory).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1007, _)),
        "{ending:?}"
    );
    // The others hear that Mallory went offline (after the presence updates of everyone
    // coming online), and nothing else of her.
    for socket in [&mut alice, &mut carol] {
        loop {
            let presence = recv_json(socket).await;
            assert_eq!(presence["res"], "v1.players.presence.updated", "{presence}");
            let data = &presence["data"]["presence"];
            if data["playerAlias"]["identifier"] == "mallory" && data["online"] == false {
                break;
            }
        }
    }
    still_chatting(&mut alice, &mut carol, "after-text-utf8").await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_routing_error_and_the_connection_stays_open() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    let deep = nested_arrays(10_000);
    // Past serde_json's nesting limit a frame is not JSON this server reads: as the whole
    // frame, as `data`, and as the message itself.
    for frame in [
        deep.clone(),
        format!(r#"{{"req":"v1.channels.message","data":{deep}}}"#),
        format!(
            r#"{{"req":"v1.channels.message","data":{{"channel":{{"id":1}},"message":{deep}}}}}"#
        ),
    ] {
        send_text(&mut mallory, &frame).await;
        expect_error(&mut mallory, "ROUTING_ERROR").await;
    }
    still_open(&mut mallory).await;
    still_chatting(&mut alice, &mut carol, "after-nested").await;
}

#[tokio::test]
async fn a_request_flood_warns_three_times_then_closes_1008() {
    let mut config = config();
    // 250 a second is the documented default; a lower limit makes the 1,000 requests below
    // overflow it even if sending them took ten seconds.
    config.talo.identified_per_second = 50;
    let server = TestServer::start(config).await;
    let (mut alice, mut carol, mut mallory) = players(&server).await;
    for _ in 0..1_000 {
        if futures_util::SinkExt::send(
            &mut mallory,
            tokio_tungstenite::tungstenite::Message::Text("{}".into()),
        )
        .await
        .is_err()
        {
            break;
        }
    }
    let mut warnings = 0;
    let ending = loop {
        let message =
            tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(&mut mallory))
                .await
                .expect("neither a frame nor the close before the timeout");
        match message {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                match frame["data"]["errorCode"].as_str() {
                    Some("RATE_LIMIT_EXCEEDED") => warnings += 1,
                    Some("INVALID_MESSAGE") => {}
                    _ => panic!("{frame}"),
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                break (u16::from(frame.code), frame.reason.to_string());
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(ending, (1008, "RATE_LIMIT_EXCEEDED".to_owned()));
    assert_eq!(warnings, 3);
    still_chatting(&mut alice, &mut carol, "after-flood").await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_upgrade_headers_is_dropped() {
    let mut config = config();
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let (mut alice, mut carol, _mallory) = players(&server).await;
    for path in ["/?ticket=x", "/talo?ticket=x", "/v1/socket-tickets"] {
        let (answer, took) = slowloris(server.addr, path).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        assert!(took < Duration::from_secs(5), "dropped after {took:?}");
    }
    still_chatting(&mut alice, &mut carol, "after-slowloris").await;
}

#[tokio::test]
async fn oversized_and_malformed_http_bodies_are_refused() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, _mallory) = players(&server).await;
    let login = server.http("/v1/players/auth/login");
    // Past the 2 MiB body limit: 413, as upstream's body parser answers past its own (1 MiB).
    // The server may stop reading and close before the whole body is written.
    let oversized = http()
        .post(&login)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(format!(r#"{{"identifier":"{}"}}"#, "x".repeat(3 << 20)))
        .send()
        .await;
    match oversized {
        Ok(response) => assert_eq!(response.status(), 413),
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }
    // Not JSON, truncated JSON, JSON too deep, JSON of the wrong shape: the fields are
    // missing, 400 naming both.
    for body in [
        "not json".to_owned(),
        r#"{"identifier":"bob","pass"#.to_owned(),
        format!(r#"{{"identifier":{}}}"#, nested_arrays(10_000)),
        "[1,2,3]".to_owned(),
    ] {
        let response = http()
            .post(&login)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:.40}");
        let errors: Value = response.json().await.unwrap();
        assert_eq!(
            errors,
            json!({"errors": {
                "identifier": ["identifier is missing from the request body"],
                "password": ["password is missing from the request body"],
            }})
        );
    }
    // The API still serves the bystanders.
    assert_eq!(identify_http(&server, "alice").await.status(), 200);
    still_chatting(&mut alice, &mut carol, "after-bodies").await;
}

#[tokio::test]
async fn an_http_flood_is_answered_429_and_spares_other_players() {
    let server = TestServer::start(config()).await;
    let (mut alice, mut carol, _mallory) = players(&server).await;
    // Identify is an authentication endpoint: 20 a minute per player (players() spent one).
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let response = identify_http(&server, "mallory").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                json!({"message": "Too Many Requests"})
            );
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 19);
    assert!(statuses[19..].iter().all(|s| *s == 429), "{statuses:?}");

    // Socket tokens are not: 100 a minute per alias.
    let alias = identify_http(&server, "carol")
        .await
        .json::<Value>()
        .await
        .unwrap()["alias"]["id"]
        .as_u64()
        .unwrap();
    let response = identify_http(&server, "alice").await;
    assert_eq!(response.status(), 200, "Alice's window is her own");
    // Aliases are numbered in the order players are configured: alice, bob, carol, mallory.
    let mallory_alias = alias + 1;
    let mut limited = 0;
    for _ in 0..105 {
        let response = http()
            .post(server.http("/v1/players/socket-token"))
            .bearer_auth(KEY)
            .header("x-talo-alias", mallory_alias.to_string())
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {}
            429 => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert_eq!(limited, 5);
    // Alice's and Carol's sockets never noticed; Carol's windows are untouched.
    let response = http()
        .post(server.http("/v1/players/socket-token"))
        .bearer_auth(KEY)
        .header("x-talo-alias", alias.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    still_chatting(&mut alice, &mut carol, "after-http-flood").await;
}
