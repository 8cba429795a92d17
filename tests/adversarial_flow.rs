//! Hostile Flow stream clients over real sockets: each attack gets the answer the dialect
//! documents (src/server/flow/{mod,request}.rs, SECURITY.md), and the other streams keep their
//! subscriptions and their live data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::server::config::{Config, PubsubRate};
use serde_json::{json, Value};

/// Tests that allocate megabytes, or measure the process's memory, run one at a time: the
/// server shares this process with every other test of the file.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the bystander streams watch: pub/sub publishes refused for want of authorization.
/// Nothing an attack below does emits one, so the next data frame they see is the marker's.
const WATCHED: &str = "channel_not_authorized";

async fn subscribe(stream: &mut Socket, id: &str, topic: &str, arguments: Value) {
    send_json(
        stream,
        json!({"subscription_id": id, "action": "subscribe", "topic": topic, "arguments": arguments}),
    )
    .await;
    assert_eq!(
        recv_json(stream).await,
        json!({"subscription_id": id, "action": "subscribe"})
    );
}

/// Two streams watching refused pub/sub publishes, and the pub/sub peer whose refusals they
/// watch for.
struct Bystanders {
    first: Socket,
    second: Socket,
    publisher: Socket,
}

async fn bystanders(server: &TestServer) -> Bystanders {
    let mut first = server.flow().await;
    subscribe(
        &mut first,
        "watch-1",
        "errors",
        json!({"dialect": "pubsub", "code": WATCHED}),
    )
    .await;
    let mut second = server.flow().await;
    subscribe(
        &mut second,
        "watch-2",
        "errors",
        json!({"dialect": "pubsub", "code": WATCHED}),
    )
    .await;
    let mut publisher = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut publisher, "welcome").await;
    Bystanders {
        first,
        second,
        publisher,
    }
}

/// A refused publish carrying `marker` reaches both streams as the next data frame, and each
/// still lists its subscription.
async fn still_streaming(bystanders: &mut Bystanders, marker: &str) {
    send_json(
        &mut bystanders.publisher,
        json!({"type": "publish", "channel": "elsewhere", "data": 1, "requestId": marker}),
    )
    .await;
    recv_type(&mut bystanders.publisher, "error").await;
    for (stream, id) in [
        (&mut bystanders.first, "watch-1"),
        (&mut bystanders.second, "watch-2"),
    ] {
        let frame = recv_json(stream).await;
        let shown: String = frame.to_string().chars().take(300).collect();
        assert_eq!(frame["subscription_id"], id, "{shown}");
        assert_eq!(frame["topic"], "errors", "{shown}");
        assert_eq!(frame["payload"]["code"], WATCHED, "{shown}");
        assert_eq!(frame["payload"]["request_id"], marker, "{shown}");
        send_json(stream, json!({"action": "list_subscriptions"})).await;
        let list = recv_json(stream).await;
        assert_eq!(list["action"], "list_subscriptions", "{list}");
        assert_eq!(list["subscriptions"][0]["subscription_id"], id, "{list}");
    }
}

/// The next frame is an error with this status and message start, before any request was
/// understood (`subscription_id` and `action` empty).
async fn expect_unread(stream: &mut Socket, prefix: &str) -> Value {
    let frame = recv_json(stream).await;
    assert_eq!(frame["error"]["code"], 400, "{frame}");
    let message = frame["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(prefix), "{frame}");
    assert_eq!(frame["action"], "", "{frame}");
    assert_eq!(frame["subscription_id"], "", "{frame}");
    frame
}

/// The attacker's own stream still answers a request.
async fn still_open(stream: &mut Socket) {
    send_json(stream, json!({"action": "list_subscriptions"})).await;
    assert_eq!(recv_json(stream).await["action"], "list_subscriptions");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_1009() {
    let _memory = MEMORY.lock().await;
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    // The Flow frame limit is its WebSocket read limit (64 KiB): the library refuses the
    // frame, and the connection closes 1009, as flow-go's reader (gorilla/websocket) does past
    // its read limit. The server may end the connection before the frame is written.
    let mut attacker = server.flow().await;
    let padded = json!({"action": "list_subscriptions", "pad": "x".repeat(64 * 1024)});
    let _ = futures_util::SinkExt::send(
        &mut attacker,
        tokio_tungstenite::tungstenite::Message::Text(padded.to_string().into()),
    )
    .await;
    let ending = recv_ending(&mut attacker).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1009, _)),
        "{ending:?}"
    );
    // Far over it, in a binary frame.
    let mut attacker = server.flow().await;
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
    still_streaming(&mut bystanders, "after-oversized").await;
}

#[tokio::test]
async fn truncated_json_is_an_error_reading_message() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    let whole =
        json!({"subscription_id": "t", "action": "subscribe", "topic": "errors", "arguments": {"dialect": "flow"}})
            .to_string();
    // Every proper prefix of a valid request, the empty one included, is not JSON.
    for end in (0..whole.len()).step_by(5) {
        send_text(&mut attacker, &whole[..end]).await;
        expect_unread(&mut attacker, "error reading message: ").await;
    }
    still_open(&mut attacker).await;
    still_streaming(&mut bystanders, "after-truncated").await;
}

#[tokio::test]
async fn a_binary_frame_is_read_as_json() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    // flow-go reads every data frame as JSON, binary ones too.
    send_binary(
        &mut attacker,
        json!({"subscription_id": "bin", "action": "subscribe", "topic": "rooms"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        recv_json(&mut attacker).await,
        json!({"subscription_id": "bin", "action": "subscribe"})
    );
    send_binary(&mut attacker, vec![0, 1, 2, 3, 0x7f]).await;
    expect_unread(&mut attacker, "error reading message: ").await;
    send_binary(&mut attacker, Vec::new()).await;
    expect_unread(&mut attacker, "error reading message: ").await;
    still_open(&mut attacker).await;
    still_streaming(&mut bystanders, "after-binary").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_binary_frame_is_read_as_go_reads_it() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    send_binary(&mut attacker, vec![0xff, 0xfe, 0xfd, 0xc3, 0x28]).await;
    expect_unread(&mut attacker, "error reading message: ").await;
    // Inside a string, Go's decoder replaces a broken byte with U+FFFD: the id is taken with
    // the replacement character, never the byte.
    let mut frame = br#"{"subscription_id":"a"#.to_vec();
    frame.extend_from_slice(&[0xff, b'b', b'"']);
    frame.extend_from_slice(br#","action":"subscribe","topic":"rooms"}"#);
    send_binary(&mut attacker, frame).await;
    assert_eq!(
        recv_json(&mut attacker).await,
        json!({"subscription_id": "a\u{fffd}b", "action": "subscribe"})
    );
    still_open(&mut attacker).await;
    still_streaming(&mut bystanders, "after-binary-utf8").await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_1007() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    subscribe(&mut attacker, "mine", "rooms", json!({})).await;
    // RFC 6455 makes invalid UTF-8 in a text frame a protocol failure (1007); the WebSocket
    // library ends the connection before the dialect sees the frame.
    let mut frame = br#"{"action":""#.to_vec();
    frame.extend_from_slice(&[0xff, b'"', b'}']);
    send_raw_text(&mut attacker, frame).await;
    let ending = recv_ending(&mut attacker).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1007, _)),
        "{ending:?}"
    );
    still_streaming(&mut bystanders, "after-text-utf8").await;
    // The attacker's subscription went with its connection; the bystanders' stayed.
    let admin = server.admin().await;
    let ids: Vec<&str> = admin
        .snapshot
        .subscriptions
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert!(!ids.contains(&"mine"), "{ids:?}");
    assert!(
        ids.contains(&"watch-1") && ids.contains(&"watch-2"),
        "{ids:?}"
    );
}

#[tokio::test]
async fn deeply_nested_json_is_an_error_reading_message() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    let deep = nested_arrays(10_000);
    // As the whole frame, as a field the request reads, and inside the arguments.
    for frame in [
        deep.clone(),
        format!(r#"{{"action":{deep}}}"#),
        format!(r#"{{"action":"subscribe","topic":"peers","arguments":{{"dialect":{deep}}}}}"#),
    ] {
        send_text(&mut attacker, &frame).await;
        expect_unread(&mut attacker, "error reading message: ").await;
    }
    still_open(&mut attacker).await;
    still_streaming(&mut bystanders, "after-nested").await;
}

#[tokio::test]
async fn a_request_flood_is_answered_in_full_and_subscriptions_stop_at_20() {
    let server = TestServer::demo().await;
    let mut bystanders = bystanders(&server).await;
    let mut attacker = server.flow().await;
    // flow-go limits a connection's subscriptions (20, then 429), not its request rate: a
    // flood sent without reading is answered request for request, in order.
    let request = json!({"action": "subscribe", "topic": "rooms"}).to_string();
    for _ in 0..2_000 {
        send_text(&mut attacker, &request).await;
    }
    for n in 0..2_000 {
        let frame = recv_json(&mut attacker).await;
        if n < 20 {
            assert_eq!(frame["action"], "subscribe", "{frame}");
            assert!(frame.get("error").is_none(), "{frame}");
        } else {
            assert_eq!(frame["error"]["code"], 429, "{frame}");
            assert_eq!(
                frame["error"]["message"],
                "error creating new subscription: maximum number of subscriptions reached"
            );
        }
    }
    still_open(&mut attacker).await;
    still_streaming(&mut bystanders, "after-flood").await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_upgrade_headers_is_dropped() {
    let mut config = Config::demo();
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let mut bystanders = bystanders(&server).await;
    let (answer, took) = slowloris(server.addr, "/v1/ws").await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(5), "dropped after {took:?}");
    still_streaming(&mut bystanders, "after-slowloris").await;
}

/// A stream that stops reading while events stream to it: its outbox stays within the
/// configured budget, it is closed 1013 once its writer has made no progress for
/// `outbox.stall_ms`, the process's memory does not grow with the events, and the other
/// streams keep their subscriptions and their data (one of them sees the close as an error).
#[tokio::test]
async fn a_stream_that_stops_reading_is_closed_1013_and_memory_stays_flat() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    // The events come from a pub/sub peer joining and leaving channels as fast as it can.
    config.apps[0].pubsub_keys[0].rate = PubsubRate {
        messages_per_second: 1_000_000,
        burst: 1_000_000,
    };
    // Past 16 KiB queued a stream loses data; with no progress for half a second while
    // frames wait it has stopped reading. The bystanders see almost nothing of the flood, so a
    // short stall time cannot catch them.
    config.outbox = relaydeck::server::peer::OutboxLimits {
        soft_bytes: 16 * 1024,
        hard_bytes: 1 << 20,
        stall_ms: 500,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let mut bystanders = bystanders(&server).await;
    // A third stream watches Flow's own errors: the slow-consumer close is one.
    let mut watcher = server.flow().await;
    subscribe(
        &mut watcher,
        "flow-errors",
        "errors",
        json!({"dialect": "flow"}),
    )
    .await;
    let mut stalled = server.flow_with_small_receive_buffer().await;
    subscribe(&mut stalled, "all-channels", "channels", json!({})).await;

    let before = rss_kib();
    // Channel names near the 256-byte limit make each event a few hundred bytes. The churn
    // runs in rounds of 100 joins and leaves whose acks are read, so that it never runs ahead
    // of the server; until the close is seen and then 50 rounds more, or 20,000 rounds or
    // `STALL_TIMEOUT` at most.
    let closed_seen = Arc::new(AtomicBool::new(false));
    let mut churner = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut churner, "welcome").await;
    let mut churn = tokio::spawn({
        let closed_seen = closed_seen.clone();
        async move {
            let started = std::time::Instant::now();
            let mut after_close = 0;
            for round in 0..20_000 {
                for n in 0..50 {
                    let channel = format!("demo/{:0>240}", round * 50 + n);
                    for kind in ["subscribe", "unsubscribe"] {
                        send_json(&mut churner, json!({"type": kind, "channel": channel})).await;
                    }
                }
                for _ in 0..100 {
                    recv_type(&mut churner, "ack").await;
                }
                if closed_seen.load(Ordering::Relaxed) {
                    after_close += 1;
                }
                if after_close >= 50 || started.elapsed() > STALL_TIMEOUT {
                    return (round, churner);
                }
            }
            (20_000, churner)
        }
    });
    // Past the churn's own bound, so that a churn out of time says so with its count of rounds.
    let deadline = tokio::time::Instant::now() + STALL_TIMEOUT + Duration::from_secs(10);
    // A churn that ends first (its own receive timed out, say) explains a close that never
    // comes: said as such rather than as a silent wait for the deadline.
    let close = loop {
        tokio::select! {
            frame = recv_json_before(&mut watcher, deadline) => {
                if frame["payload"]["code"] == "1013" {
                    break frame;
                }
            }
            ended = &mut churn => {
                let rounds = ended.map(|(rounds, _)| rounds);
                panic!("the churn ended before the close: {rounds:?}")
            }
        }
    };
    closed_seen.store(true, Ordering::Relaxed);
    assert_eq!(
        close["payload"]["frame"], "close 1013 try_again_later",
        "{close}"
    );
    // The stream reads again as soon as it is closed: the server waits only
    // `CLOSE_FLUSH_TIMEOUT` for its close frame to get through, and the rest of the churn can
    // take longer than that on a loaded machine. What the kernel held comes first, the close
    // after it.
    let closed_at = std::time::Instant::now();
    let drained = tokio::spawn(async move {
        let mut data = 0;
        loop {
            if let Some(ending) = recv_ending_counting(&mut stalled, &mut data).await {
                return (ending, data, closed_at.elapsed());
            }
        }
    });
    let (rounds, _churner) = tokio::time::timeout(2 * STALL_TIMEOUT, churn)
        .await
        .expect("the churn ended")
        .unwrap();
    let after = rss_kib();
    eprintln!("RSS {before} KiB before the churn, {after} KiB after {rounds} rounds");
    // The budget held: data past it was dropped, not queued.
    let dropped = frames_dropped(&server).await;
    assert!(dropped > 0, "no frame was dropped");
    // Without the bound the stalled stream's queue would hold every event from the moment its
    // socket buffers filled to the close, about half a kilobyte each. With it the queue holds
    // at most 16 KiB; the growth measured (allocator and runtime slack, the file's other
    // tests alongside) was under 2 MiB; 8 MiB leaves room for a loaded machine.
    assert!(
        after <= before + 8 * 1024,
        "RSS {before} KiB before the churn, {after} KiB after"
    );

    let (ending, data, took) = drained.await.unwrap();
    // A backlog that took longer to read than the server waits for its close frame
    // (`connection::CLOSE_FLUSH_TIMEOUT`, 2 s from its decision) ends without it: the socket
    // is dropped. How long the drain took cannot tell the two apart on a loaded machine, as
    // the watcher may hear of the close late; either way the stream was closed.
    assert!(
        matches!(&ending, Ending::Dropped)
            || ending == Ending::Close(1013, "try_again_later".to_owned()),
        "{ending:?} after {took:?} reading {data} frames"
    );
    assert!(data > 0, "the stream had data before it stopped reading");
    still_streaming(&mut bystanders, "after-stall").await;
    still_open(&mut watcher).await;
}

/// One frame of a stream being drained: `None` and a count for data, the ending otherwise.
async fn recv_ending_counting(stream: &mut Socket, data: &mut usize) -> Option<Ending> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let message = tokio::time::timeout(RECEIVE_TIMEOUT, stream.next())
        .await
        .expect("the stream neither closed nor sent anything before the timeout");
    match message {
        Some(Ok(Message::Close(Some(frame)))) => Some(Ending::Close(
            u16::from(frame.code),
            frame.reason.to_string(),
        )),
        Some(Ok(Message::Close(None))) => Some(Ending::Close(1005, String::new())),
        Some(Ok(_)) => {
            *data += 1;
            None
        }
        Some(Err(_)) | None => Some(Ending::Dropped),
    }
}

/// Open `/v1/ws` from `source` presenting `token` (if any); the HTTP status of a refusal.
async fn flow_from(server: &TestServer, source: &str, token: Option<&str>) -> Result<Socket, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = tokio::time::timeout(RECEIVE_TIMEOUT, tcp.connect(server.addr))
        .await
        .expect("connect timed out")
        .unwrap();
    let mut request = server.url("/v1/ws").into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let handshake =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream));
    match tokio::time::timeout(RECEIVE_TIMEOUT, handshake)
        .await
        .expect("handshake timed out")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn guessing_a_token_on_flow_streams_is_limited_like_on_admin() {
    let server = TestServer::demo().await;
    let mut refused = 0;
    for n in 0..40 {
        match flow_from(&server, "127.0.0.1", Some(&format!("guess-{n:040}"))).await {
            // A wrong credential opens the stream as none would (flow-go ignores the header)...
            Ok(mut socket) => {
                assert_eq!(refused, 0, "a stream opened after a refusal");
                close_and_drain(&mut socket).await;
            }
            // ...and counts as a guess: past the limit the address is refused.
            Err(status) => {
                assert_eq!(status, 429);
                refused += 1;
            }
        }
    }
    assert!(refused >= 15, "{refused} of 40 guesses refused");
    assert_eq!(
        flow_from(&server, "127.0.0.1", Some(&server.token))
            .await
            .err(),
        Some(429),
        "the guessing address is refused whatever it presents"
    );
    // Flow's open streams stay open to it without a credential, and the token works from
    // another address.
    assert!(flow_from(&server, "127.0.0.1", None).await.is_ok());
    assert!(flow_from(&server, "127.0.0.2", Some(&server.token))
        .await
        .is_ok());
}
