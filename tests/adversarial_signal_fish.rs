//! Hostile Signal Fish clients over real sockets: each attack gets the code the dialect
//! documents (src/server/signal_fish/mod.rs, docs/upstream/signal-fish-0.12.md, SECURITY.md),
//! and the room the attacker sat in keeps its players, who keep relaying game data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::Event;
use relaydeck::server::config::Config;
use serde_json::{json, Value};

/// Tests that allocate megabytes, or measure the process's memory, run one at a time: the
/// server shares this process with every other test of the file.
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn send(socket: &mut Socket, kind: &str, data: Value) {
    let frame = if data.is_null() {
        json!({"type": kind})
    } else {
        json!({"type": kind, "data": data})
    };
    send_json(socket, frame).await;
}

async fn authenticated(server: &TestServer) -> Socket {
    let mut socket = server.connect("/v3/ws").await;
    send(
        &mut socket,
        "Authenticate",
        json!({"app_id": "demo", "sdk_version": "1.0.0"}),
    )
    .await;
    assert_eq!(recv_json(&mut socket).await["type"], "Authenticated");
    assert_eq!(recv_json(&mut socket).await["type"], "ProtocolInfo");
    socket
}

async fn join(socket: &mut Socket, code: Option<&str>, name: &str) -> Value {
    let mut data = json!({"game_name": "demo", "player_name": name});
    if let Some(code) = code {
        data["room_code"] = json!(code);
    }
    send(socket, "JoinRoom", data).await;
    recv_type(socket, "RoomJoined").await
}

/// The next error-carrying frame: `carrier` with `code` (notices before it are skipped).
async fn expect_code(socket: &mut Socket, carrier: &str, code: &str) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["data"].get("error_code").is_none() {
            continue;
        }
        assert_eq!(frame["type"], carrier, "{frame}");
        assert_eq!(frame["data"]["error_code"], code, "{frame}");
        return frame;
    }
}

/// A room of Alice (its creator) and Bob, the bystanders every attack must spare, and the
/// attacker, Mallory, seated in the same room.
struct Table {
    alice: Socket,
    bob: Socket,
    mallory: Socket,
    code: String,
}

async fn table(server: &TestServer) -> Table {
    let mut alice = authenticated(server).await;
    let joined = join(&mut alice, None, "Alice").await;
    let code = joined["data"]["room_code"].as_str().unwrap().to_owned();
    let mut bob = authenticated(server).await;
    join(&mut bob, Some(&code), "Bob").await;
    recv_type(&mut alice, "PlayerJoined").await;
    let mut mallory = authenticated(server).await;
    join(&mut mallory, Some(&code), "Mallory").await;
    recv_type(&mut alice, "PlayerJoined").await;
    recv_type(&mut bob, "PlayerJoined").await;
    Table {
        alice,
        bob,
        mallory,
        code,
    }
}

/// Alice's game data reaches Bob, and Bob's reaches Alice: both are seated and relaying.
/// Game data arriving before the marker (the attacker's) fails the test: nothing the server
/// refused may have been relayed.
async fn still_relaying(alice: &mut Socket, bob: &mut Socket, marker: &str) {
    relays(alice, bob, marker).await;
    relays(bob, alice, marker).await;
}

async fn relays(from: &mut Socket, to: &mut Socket, marker: &str) {
    send(from, "GameData", json!({"data": {"marker": marker}})).await;
    let frame = recv_type(to, "GameData").await;
    let shown: String = frame.to_string().chars().take(300).collect();
    assert_eq!(
        frame["data"]["data"],
        json!({"marker": marker}),
        "the first game data after an attack: {shown}"
    );
}

/// Every text frame until the connection ends, and how it ended.
async fn frames_until_ending(socket: &mut Socket) -> (Vec<Value>, Ending) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("the connection neither closed nor sent anything before the timeout");
        match message {
            Some(Ok(Message::Text(text))) => {
                frames.push(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return (
                    frames,
                    Ending::Close(u16::from(frame.code), frame.reason.to_string()),
                )
            }
            Some(Ok(Message::Close(None))) => return (frames, Ending::Close(1005, String::new())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (frames, Ending::Dropped),
        }
    }
}

/// The room still exists, and holds these players, connected.
async fn room_holds(server: &TestServer, code: &str, connected: &[&str]) {
    let admin = server.admin().await;
    let room = admin
        .snapshot
        .rooms
        .iter()
        .find(|r| r.code == code)
        .unwrap_or_else(|| panic!("room {code} is gone: {:?}", admin.snapshot.rooms));
    for name in connected {
        let member = room
            .players
            .iter()
            .find(|p| p.name == *name)
            .unwrap_or_else(|| panic!("{name} left room {code}: {:?}", room.players));
        assert!(member.peer.is_some(), "{name} is disconnected: {member:?}");
    }
}

/// The attacker's own connection still answers a request.
async fn still_open(socket: &mut Socket) {
    send(socket, "Ping", Value::Null).await;
    recv_type(socket, "Pong").await;
}

#[tokio::test]
async fn a_text_frame_over_64_kib_is_refused_and_the_connection_stays_open() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    // Upstream's answer: MESSAGE_TOO_LARGE naming both sizes, the frame dropped, the
    // connection open (docs/upstream/signal-fish-0.12.md, section 6).
    let frame = json!({"type":"GameData","data":{"data":{"pad":"x".repeat(70_000)}}}).to_string();
    let size = frame.len();
    send_text(&mut mallory, &frame).await;
    let refused = expect_code(&mut mallory, "Error", "MESSAGE_TOO_LARGE").await;
    assert_eq!(
        refused["data"]["message"],
        format!("Message too large ({size} bytes, max 65536 bytes)")
    );
    // Game data under the frame limit but over max_game_data_bytes (16 KiB) is refused too.
    send(
        &mut mallory,
        "GameData",
        json!({"data": {"pad": "y".repeat(20_000)}}),
    )
    .await;
    expect_code(&mut mallory, "Error", "MESSAGE_TOO_LARGE").await;
    // A binary frame of the same size is refused as binary (JSON sessions take no binary).
    send_binary(&mut mallory, frame.into_bytes()).await;
    expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
    still_open(&mut mallory).await;
    still_relaying(&mut alice, &mut bob, "after-oversized").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

#[tokio::test]
async fn a_frame_over_the_read_limit_ends_only_that_connection() {
    let _memory = MEMORY.lock().await;
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    // Past the 4 MiB read limit the WebSocket library refuses the frame before the dialect
    // sees it (close 1009); the server may end the connection before the frame is written.
    let _ = futures_util::SinkExt::send(
        &mut mallory,
        tokio_tungstenite::tungstenite::Message::Text("x".repeat(5 << 20).into()),
    )
    .await;
    let ending = recv_ending(&mut mallory).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1009, _)),
        "{ending:?}"
    );
    still_relaying(&mut alice, &mut bob, "after-read-limit").await;
    room_holds(&server, &code, &["Alice", "Bob"]).await;
}

#[tokio::test]
async fn truncated_json_is_invalid_input_and_the_connection_stays_open() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    let whole = json!({"type":"GameData","data":{"data":{"k":[1,2,3],"s":"t"}}}).to_string();
    // Every proper prefix of a valid frame, the empty one included, is refused the same way
    // and relays nothing.
    for end in (0..whole.len()).step_by(5) {
        send_text(&mut mallory, &whole[..end]).await;
        let refused = expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
        assert_eq!(refused["data"]["message"], "Invalid client message");
    }
    still_open(&mut mallory).await;
    still_relaying(&mut alice, &mut bob, "after-truncated").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

#[tokio::test]
async fn binary_frames_are_refused_and_before_authentication_they_close_1000() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    // A JSON session takes no binary, even a binary frame holding a valid request (0.12:
    // "Binary payloads are disabled for this connection", stays open).
    for bytes in [
        json!({"type":"GameData","data":{"data":"sneaky"}})
            .to_string()
            .into_bytes(),
        vec![0, 1, 2, 3, 0x7f],
        Vec::new(),
    ] {
        send_binary(&mut mallory, bytes).await;
        let refused = expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
        assert_eq!(
            refused["data"]["message"],
            "Binary payloads are disabled for this connection"
        );
    }
    still_open(&mut mallory).await;

    // Before Authenticate, a binary frame is a farewell MISSING_APP_ID and close 1000.
    let mut stranger = server.connect("/v3/ws").await;
    send_binary(&mut stranger, vec![1, 2, 3]).await;
    let refused = expect_code(&mut stranger, "Error", "MISSING_APP_ID").await;
    assert_eq!(
        refused["data"]["message"],
        "Authentication required before sending binary data"
    );
    assert_eq!(
        recv_close(&mut stranger).await,
        (1000, "unregistered".to_owned())
    );
    still_relaying(&mut alice, &mut bob, "after-binary").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_binary_frame_is_refused_like_any_binary_frame() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    let mut broken = br#"{"type":"GameData","data":{"data":""#.to_vec();
    broken.extend_from_slice(&[0xff, 0xfe, b'"', b'}', b'}']);
    for bytes in [vec![0xff, 0xfe, 0xfd, 0xc3, 0x28], broken] {
        send_binary(&mut mallory, bytes).await;
        expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
    }
    still_open(&mut mallory).await;
    // Nothing of the broken frames was relayed: the first game data Bob sees is the marker.
    still_relaying(&mut alice, &mut bob, "after-binary-utf8").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_1007_and_the_seat_is_kept() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    // RFC 6455 makes invalid UTF-8 in a text frame a protocol failure (1007); the WebSocket
    // library ends the connection before the dialect sees the frame.
    let mut frame = br#"{"type":"GameData","data":{"data":""#.to_vec();
    frame.extend_from_slice(&[0xff, b'"', b'}', b'}']);
    send_raw_text(&mut mallory, frame).await;
    let ending = recv_ending(&mut mallory).await;
    assert!(
        matches!(ending, Ending::Dropped | Ending::Close(1007, _)),
        "{ending:?}"
    );
    still_relaying(&mut alice, &mut bob, "after-text-utf8").await;
    room_holds(&server, &code, &["Alice", "Bob"]).await;
    // A dropped connection keeps its seat for the reconnection window, as any other would.
    let admin = server.admin().await;
    let room = admin
        .snapshot
        .rooms
        .iter()
        .find(|r| r.code == code)
        .unwrap();
    let seat = room.players.iter().find(|p| p.name == "Mallory").unwrap();
    assert_eq!(seat.peer, None, "{seat:?}");
}

#[tokio::test]
async fn deeply_nested_json_is_invalid_input_and_never_relayed() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    let deep = nested_arrays(10_000);
    // As the whole frame, as a field the envelope reads, and as the relayed `data`: far past
    // serde_json's limit, and just past it. serde_json reads 127 levels; the payload sits two
    // objects deep, so 126 levels of payload make a frame of 128, refused as upstream's
    // parser refuses it (docs/upstream/signal-fish-0.12.md, INVALID_INPUT).
    for frame in [
        deep.clone(),
        format!(r#"{{"type":"JoinRoom","data":{{"game_name":{deep},"player_name":"M"}}}}"#),
        format!(r#"{{"type":"GameData","data":{{"data":{deep}}}}}"#),
        format!(
            r#"{{"type":"GameData","data":{{"data":{}}}}}"#,
            nested_arrays(126)
        ),
    ] {
        send_text(&mut mallory, &frame).await;
        expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
    }
    // 125 levels make a frame of 127 both ways: relayed whole, and readable by a client whose
    // parser has serde_json's limit (this test's).
    send_text(
        &mut mallory,
        &format!(
            r#"{{"type":"GameData","data":{{"data":{}}}}}"#,
            nested_arrays(125)
        ),
    )
    .await;
    for bystander in [&mut alice, &mut bob] {
        let relayed = recv_type(bystander, "GameData").await;
        assert_eq!(relayed["data"]["data"].to_string(), nested_arrays(125));
    }
    still_open(&mut mallory).await;
    still_relaying(&mut alice, &mut bob, "after-nested").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

#[tokio::test]
async fn a_message_flood_warns_once_then_closes_4006() {
    let server = TestServer::demo().await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    // 600 messages a minute are answered, the 601st earns one RATE_LIMIT_EXCEEDED, the rest
    // are dropped, and twice the limit closes 4006 (SECURITY.md). 1,300 pings sent without
    // reading pass twice the limit however slowly the machine runs: the window is a minute.
    for _ in 0..1_300 {
        if futures_util::SinkExt::send(
            &mut mallory,
            tokio_tungstenite::tungstenite::Message::Text(r#"{"type":"Ping"}"#.into()),
        )
        .await
        .is_err()
        {
            break;
        }
    }
    let (frames, ending) = frames_until_ending(&mut mallory).await;
    assert_eq!(
        ending,
        Ending::Close(4006, "inbound_rate_limited".to_owned())
    );
    let pongs = frames.iter().filter(|f| f["type"] == "Pong").count();
    let warnings: Vec<_> = frames.iter().filter(|f| f["type"] == "Error").collect();
    // Authenticate and JoinRoom were two of the minute's 600.
    assert_eq!(pongs, 598);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["data"]["error_code"], "RATE_LIMIT_EXCEEDED");
    still_relaying(&mut alice, &mut bob, "after-flood").await;
    room_holds(&server, &code, &["Alice", "Bob"]).await;
}

#[tokio::test]
async fn refusals_past_the_reply_budget_close_4006() {
    let mut config = Config::demo();
    // Refusals charge their own budget (upstream's error-reply budget, section 7); the message
    // rate is raised so that it is this budget that runs out.
    config.signal_fish.messages_per_minute = 100_000;
    config.signal_fish.error_replies_per_minute = 50;
    let server = TestServer::start(config).await;
    let Table {
        mut alice,
        mut bob,
        mut mallory,
        code,
    } = table(&server).await;
    for _ in 0..60 {
        send_text(&mut mallory, "{not json").await;
    }
    for _ in 0..50 {
        expect_code(&mut mallory, "Error", "INVALID_INPUT").await;
    }
    let farewell = expect_code(&mut mallory, "Error", "RATE_LIMIT_EXCEEDED").await;
    assert_eq!(
        farewell["data"]["message"],
        "Inbound error-reply rate limit exceeded"
    );
    assert_eq!(
        recv_close(&mut mallory).await,
        (4006, "inbound_rate_limited".to_owned())
    );
    still_relaying(&mut alice, &mut bob, "after-refusals").await;
    room_holds(&server, &code, &["Alice", "Bob"]).await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_upgrade_headers_is_dropped() {
    let mut config = Config::demo();
    config.security.header_read_timeout_ms = 300;
    let server = TestServer::start(config).await;
    let Table {
        mut alice,
        mut bob,
        mallory: _mallory,
        code,
    } = table(&server).await;
    for path in ["/v2/ws", "/v3/ws"] {
        let (answer, took) = slowloris(server.addr, path).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        assert!(took < Duration::from_secs(5), "dropped after {took:?}");
    }
    still_relaying(&mut alice, &mut bob, "after-slowloris").await;
    room_holds(&server, &code, &["Alice", "Bob", "Mallory"]).await;
}

/// A player that stops reading just as the room goes quiet: nothing newer is queued for it to
/// notice the stall by, so its writer, stuck for `outbox.stall_ms`, gives it up and the
/// admin sees the documented 4002 `slow_consumer` rather than a connection that vanished.
#[tokio::test]
async fn a_player_that_stops_reading_as_the_room_goes_quiet_is_closed_4002() {
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    config.signal_fish.messages_per_minute = 1_000_000;
    config.outbox = relaydeck::server::peer::OutboxLimits {
        soft_bytes: 64 * 1024,
        hard_bytes: 1 << 20,
        stall_ms: 1_000,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    let Table {
        mut alice,
        bob,
        mallory: mut stalled,
        ..
    } = table(&server).await;
    // Bob leaves, so that only the player who stopped reading receives the burst.
    drop(bob);
    // Rounds of 15 kB game data until one whole round is dropped: the kernel's buffers are
    // full and the writer took nothing during the round. Then silence, well within
    // `stall_ms` of the writer's last progress, so no later frame can reveal the stall.
    // Bounded in count and time.
    let filler = "x".repeat(15_000);
    let started = std::time::Instant::now();
    let mut round = 0;
    let mut dropped = frames_dropped(&server).await;
    loop {
        assert!(
            round < 400 && started.elapsed() < STALL_TIMEOUT,
            "the stalled player's writer never stopped"
        );
        for n in 0..50 {
            send(
                &mut alice,
                "GameData",
                json!({"data": {"n": round * 50 + n, "filler": filler}}),
            )
            .await;
        }
        still_open(&mut alice).await;
        round += 1;
        let now = frames_dropped(&server).await;
        if now - dropped >= 50 {
            break;
        }
        dropped = now;
    }
    let event = admin
        .wait_error_before("4002", tokio::time::Instant::now() + STALL_TIMEOUT)
        .await;
    let Event::ErrorEmitted { dialect, frame, .. } = event else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::SignalFish);
    assert_eq!(frame, "close 4002 slow_consumer");
    still_open(&mut alice).await;
    // Reading again, the player drains what the kernel held, then finds the close.
    assert_eq!(
        recv_ending(&mut stalled).await,
        Ending::Close(4002, "slow_consumer".to_owned())
    );
}

/// A player that stops reading while the room keeps talking: its outbox stays within the
/// configured budget, it is closed 4002 `slow_consumer` once its writer has made no progress
/// for `outbox.stall_ms`, the process's memory does not grow with the flood, and the players
/// who kept reading keep their seats and their game data.
#[tokio::test]
async fn a_player_that_stops_reading_is_closed_4002_and_memory_stays_flat() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _memory = MEMORY.lock().await;
    let mut config = Config::demo();
    // The flood must meet the outbox bound, not the sender's rate limit.
    config.signal_fish.messages_per_minute = 1_000_000;
    // Past 64 KiB queued a player loses game data; with no progress for a second while frames
    // wait it has stopped reading. A second, not less: Bob below reads while the flood runs,
    // and a loaded machine must not make her look stalled.
    config.outbox = relaydeck::server::peer::OutboxLimits {
        soft_bytes: 64 * 1024,
        hard_bytes: 1 << 20,
        stall_ms: 1_000,
        ..Default::default()
    };
    let server = TestServer::start(config).await;
    let mut admin = server.admin().await;
    let Table {
        mut alice,
        mut bob,
        mallory: mut stalled,
        code,
    } = table(&server).await;

    // Bob reads everything, on her own task, until told to stop; a cancelled `next` loses
    // nothing, so her socket comes back whole.
    let (stop_bob, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let bob_reader = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut frames = 0usize;
        loop {
            tokio::select! {
                _ = &mut stopped => return (bob, frames),
                message = bob.next() => match message {
                    Some(Ok(_)) => frames += 1,
                    other => panic!("Bob's connection ended: {other:?}"),
                },
            }
        }
    });

    let before = rss_kib();
    // Alice floods 15 kB game data until the server reports the stall, then 1,000 frames more
    // (15 MB that the closed player must not hold). The stall is noticed when a frame is
    // queued a second after the stalled writer last moved, so the flood runs on until then:
    // in rounds of 100 frames closed by a ping, so that it never runs ahead of the server,
    // and for 20,000 frames or `STALL_TIMEOUT` at most.
    let stalled_seen = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn({
        let stalled_seen = stalled_seen.clone();
        async move {
            let filler = "x".repeat(15_000);
            let started = std::time::Instant::now();
            let mut after_stall = 0;
            for round in 0..200 {
                for n in 0..100 {
                    send(
                        &mut alice,
                        "GameData",
                        json!({"data": {"n": round * 100 + n, "filler": filler}}),
                    )
                    .await;
                }
                still_open(&mut alice).await;
                if stalled_seen.load(Ordering::Relaxed) {
                    after_stall += 100;
                }
                if after_stall >= 1_000 || started.elapsed() > STALL_TIMEOUT {
                    break;
                }
            }
            alice
        }
    });
    let event = admin
        .wait_error_before("4002", tokio::time::Instant::now() + STALL_TIMEOUT)
        .await;
    stalled_seen.store(true, Ordering::Relaxed);
    let Event::ErrorEmitted { dialect, frame, .. } = event else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::SignalFish);
    assert_eq!(frame, "close 4002 slow_consumer");
    let mut alice = tokio::time::timeout(2 * STALL_TIMEOUT, flood)
        .await
        .expect("the flood ended")
        .unwrap();
    let after = rss_kib();
    eprintln!("RSS {before} KiB before the flood, {after} KiB after");
    // The budget held: game data past it was dropped, not queued.
    assert!(frames_dropped(&server).await > 0, "no frame was dropped");
    // Without the bound the stalled player's queue would hold what was sent in the second
    // before the stall was noticed and the 15 MB after it. With it, the queue holds at most
    // 64 KiB; the growth measured (allocator and runtime slack, the other tests of this file
    // running alongside) was under 1 MiB; 12 MiB leaves room for a loaded machine and stays
    // under the 15 MB an unbounded queue would have kept.
    assert!(
        after <= before + 12 * 1024,
        "RSS {before} KiB before the flood, {after} KiB after"
    );

    // Reading again drains what the kernel held; the close comes after it.
    let (_, ending) = frames_until_ending(&mut stalled).await;
    assert_eq!(ending, Ending::Close(4002, "slow_consumer".to_owned()));

    // Bob kept reading and keeps her seat: a pong (a reply, queued behind whatever game data
    // she has not read yet) catches her up, then Alice's next game data reaches her.
    // The flood ended on Alice's pong: the server has relayed all of it.
    stop_bob.send(()).unwrap();
    let (mut bob, frames) = bob_reader.await.unwrap();
    assert!(frames > 0, "Bob received the flood while it ran");
    still_open(&mut bob).await;
    still_relaying(&mut alice, &mut bob, "after-stall").await;
    room_holds(&server, &code, &["Alice", "Bob"]).await;
}
