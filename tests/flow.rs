//! Flow streams over real sockets: every message family of flow-websocket-errors.md with its
//! status and action, and live data on the topics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{Command, FaultTarget};
use serde_json::{json, Value};

/// The next frame is an error with this status, message start and action (`""` when the
/// request was never understood); `subscription_id` is always present.
async fn expect_error(socket: &mut Socket, status: u16, prefix: &str, action: &str) -> Value {
    let frame = recv_json(socket).await;
    assert_eq!(frame["error"]["code"], status, "{frame}");
    assert!(
        frame["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(prefix),
        "{frame}"
    );
    assert_eq!(frame["action"], action, "{frame}");
    assert!(frame["subscription_id"].is_string(), "{frame}");
    frame
}

#[tokio::test]
async fn every_message_family_of_the_seed() {
    // Strict reading gives the seed's unmarshalling errors of missing and unknown fields.
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.strict_requests = true;
    let server = TestServer::start(config).await;
    let mut stream = server.flow().await;

    futures_util::SinkExt::send(
        &mut stream,
        tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3].into()),
    )
    .await
    .unwrap();
    expect_error(&mut stream, 400, "error reading message: ", "").await;
    send_text(&mut stream, "{oops").await;
    expect_error(&mut stream, 400, "error reading message: ", "").await;
    send_json(&mut stream, json!({"action": 5})).await;
    let parsing = "error parsing message: ";
    expect_error(
        &mut stream,
        400,
        &format!("{parsing}error unmarshalling base message: "),
        "",
    )
    .await;
    send_json(
        &mut stream,
        json!({"subscription_id": "s0", "action": "subscribe", "topic": 7}),
    )
    .await;
    let frame = expect_error(
        &mut stream,
        400,
        &format!("{parsing}error unmarshalling subscribe message: "),
        "",
    )
    .await;
    assert_eq!(frame["subscription_id"], "");
    send_json(&mut stream, json!({"action": "unsubscribe"})).await;
    expect_error(
        &mut stream,
        400,
        &format!("{parsing}error unmarshalling unsubscribe message: "),
        "",
    )
    .await;
    send_json(
        &mut stream,
        json!({"action": "list_subscriptions", "topic": "peers"}),
    )
    .await;
    expect_error(
        &mut stream,
        400,
        &format!("{parsing}error unmarshalling list subscriptions message: "),
        "",
    )
    .await;
    send_json(&mut stream, json!({"action": "publish"})).await;
    expect_error(
        &mut stream,
        400,
        &format!("{parsing}unknown action type: publish"),
        "",
    )
    .await;
    send_json(
        &mut stream,
        json!({"subscription_id": "x".repeat(21), "action": "subscribe", "topic": "peers"}),
    )
    .await;
    let long = expect_error(
        &mut stream,
        400,
        "error parsing subscription id: subscription ID provided by the client must not exceed 20 characters",
        "subscribe",
    )
    .await;
    assert_eq!(long["subscription_id"], "x".repeat(21));
    send_json(
        &mut stream,
        json!({"subscription_id": "y".repeat(21), "action": "unsubscribe"}),
    )
    .await;
    expect_error(
        &mut stream,
        400,
        "error parsing subscription id",
        "unsubscribe",
    )
    .await;
    send_json(
        &mut stream,
        json!({"subscription_id": "s1", "action": "subscribe", "topic": "blockz"}),
    )
    .await;
    expect_error(
        &mut stream,
        400,
        r#"error creating data provider: unsupported topic "blockz""#,
        "subscribe",
    )
    .await;
    send_json(&mut stream, json!({"subscription_id": "s1", "action": "subscribe", "topic": "peers", "arguments": {"colour": "red"}})).await;
    let invalid = expect_error(
        &mut stream,
        400,
        "error creating data provider: invalid arguments",
        "subscribe",
    )
    .await;
    assert_eq!(invalid["subscription_id"], "s1");

    send_json(&mut stream, json!({"action": "list_subscriptions"})).await;
    assert_eq!(
        recv_json(&mut stream).await,
        json!({"subscriptions": null, "action": "list_subscriptions"})
    );
    send_json(
        &mut stream,
        json!({"subscription_id": "s1", "action": "subscribe", "topic": "peers"}),
    )
    .await;
    assert_eq!(
        recv_json(&mut stream).await,
        json!({"subscription_id": "s1", "action": "subscribe"})
    );
    send_json(
        &mut stream,
        json!({"subscription_id": "s1", "action": "subscribe", "topic": "rooms"}),
    )
    .await;
    expect_error(
        &mut stream,
        400,
        "error parsing subscription id: subscription ID is already in use: s1",
        "subscribe",
    )
    .await;
    send_json(
        &mut stream,
        json!({"subscription_id": "nope", "action": "unsubscribe"}),
    )
    .await;
    let missing = expect_error(&mut stream, 404, "subscription not found", "unsubscribe").await;
    assert_eq!(missing["subscription_id"], "nope");

    // Generated ids up to the limit of 20, then 429.
    for _ in 1..20 {
        send_json(
            &mut stream,
            json!({"action": "subscribe", "topic": "rooms"}),
        )
        .await;
        assert_eq!(recv_type_action(&mut stream).await, "subscribe");
    }
    send_json(
        &mut stream,
        json!({"action": "subscribe", "topic": "rooms"}),
    )
    .await;
    expect_error(
        &mut stream,
        429,
        "error creating new subscription: maximum number of subscriptions reached",
        "subscribe",
    )
    .await;
    send_json(&mut stream, json!({"action": "list_subscriptions"})).await;
    let list = loop {
        let frame = recv_json(&mut stream).await;
        if frame["action"] == "list_subscriptions" {
            break frame;
        }
    };
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 20);

    let mut admin = server.admin().await;
    let armed = admin
        .command(Command::ArmFault {
            target: FaultTarget::Dialect {
                dialect: Dialect::Flow,
            },
            code: "internal error".into(),
            count: 1,
        })
        .await;
    assert!(armed.ok, "{armed:?}");
    send_json(
        &mut stream,
        json!({"subscription_id": "s1", "action": "unsubscribe"}),
    )
    .await;
    loop {
        if recv_json(&mut stream).await["action"] == "unsubscribe" {
            break;
        }
    }
    send_json(
        &mut stream,
        json!({"subscription_id": "s2", "action": "subscribe", "topic": "errors"}),
    )
    .await;
    loop {
        let frame = recv_json(&mut stream).await;
        if frame.get("error").is_some() {
            assert_eq!(frame["error"]["code"], 500, "{frame}");
            assert!(
                frame["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("internal error"),
                "{frame}"
            );
            break;
        }
    }
}

/// The action of the next frame that has one (data frames from earlier subscriptions skipped).
async fn recv_type_action(socket: &mut Socket) -> String {
    loop {
        let frame = recv_json(socket).await;
        if let Some(action) = frame.get("action").and_then(Value::as_str) {
            assert!(frame.get("error").is_none(), "{frame}");
            return action.to_owned();
        }
    }
}

#[tokio::test]
async fn topics_carry_live_data_filtered_by_their_arguments() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    send_json(&mut stream, json!({"subscription_id": "errs", "action": "subscribe", "topic": "errors", "arguments": {"dialect": "pubsub"}})).await;
    assert_eq!(recv_json(&mut stream).await["action"], "subscribe");
    let mut peer = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut peer, "welcome").await;
    send_json(
        &mut peer,
        json!({"type": "publish", "channel": "elsewhere", "data": 1}),
    )
    .await;
    let data = loop {
        let frame = recv_json(&mut stream).await;
        if frame["subscription_id"] == "errs" {
            break frame;
        }
    };
    assert_eq!(data["topic"], "errors");
    assert_eq!(data["payload"]["code"], "channel_not_authorized");
}

#[tokio::test]
async fn admins_see_subscriptions_and_kick_streams_with_4020() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    send_json(
        &mut stream,
        json!({"subscription_id": "watch-talo", "action": "subscribe", "topic": "errors", "arguments": {"dialect": "talo"}}),
    )
    .await;
    assert_eq!(recv_type_action(&mut stream).await, "subscribe");

    let mut admin = server.admin().await;
    let subscription = admin
        .snapshot
        .subscriptions
        .iter()
        .find(|s| s.dialect == Dialect::Flow && s.id == "watch-talo")
        .unwrap_or_else(|| panic!("no Flow subscription in {:?}", admin.snapshot.subscriptions))
        .clone();
    assert_eq!(subscription.topic, "errors");
    assert_eq!(subscription.arguments, json!({"dialect": "talo"}));
    assert!(admin
        .snapshot
        .peers
        .iter()
        .any(|p| p.id == subscription.peer && p.dialect == Dialect::Flow));

    let result = admin
        .command(Command::Kick {
            peer: subscription.peer.clone(),
            reason: None,
        })
        .await;
    assert!(result.ok, "{result:?}");
    assert_eq!(
        recv_close(&mut stream).await,
        (4020, "admin_disconnect".to_owned())
    );
}

#[tokio::test]
async fn frames_keep_flow_field_order_and_empty_ids_are_generated() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    send_json(
        &mut stream,
        json!({"subscription_id": "sub-1", "action": "subscribe", "topic": "rooms"}),
    )
    .await;
    assert_eq!(
        recv_text(&mut stream).await,
        r#"{"subscription_id":"sub-1","action":"subscribe"}
"#
    );
    // An empty id asks for a generated one, as an absent id does: 20 characters of URL-safe
    // base64, as flow-go generates them.
    for request in [
        json!({"action": "subscribe", "topic": "rooms"}),
        json!({"subscription_id": "", "action": "subscribe", "topic": "rooms"}),
    ] {
        send_json(&mut stream, request).await;
        let ack = recv_json(&mut stream).await;
        assert_eq!(ack["action"], "subscribe", "{ack}");
        let id = ack["subscription_id"].as_str().unwrap();
        assert_eq!(id.len(), 20, "{ack}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{ack}"
        );
    }
    send_json(
        &mut stream,
        json!({"subscription_id": "gone", "action": "unsubscribe"}),
    )
    .await;
    assert_eq!(
        recv_text(&mut stream).await,
        r#"{"subscription_id":"gone","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}
"#
    );
}

/// The next text frame exactly as sent, data frames of earlier subscriptions skipped.
async fn recv_text(socket: &mut Socket) -> String {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        if let Message::Text(text) = message {
            if !text.as_str().contains(r#""payload":"#) {
                return text.as_str().to_owned();
            }
        }
    }
}

async fn upgrade_status(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
    }
}

/// Streams open as flow-go's do: no credential and any Origin. A credential unlocks
/// relaydeck's own topics; from a page the config does not allow it is ignored.
#[tokio::test]
async fn streams_are_open_and_own_topics_need_a_credential() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::demo().await;
    let request = |headers: &[(&'static str, String)]| {
        let mut request = server.url("/v1/ws").into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        request
    };
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));
    let page = ("origin", "https://page.example".to_owned());
    for headers in [
        vec![],
        vec![bearer("wrong")],
        vec![page.clone()],
        vec![bearer(&server.token)],
        vec![bearer("sk_demo")],
    ] {
        assert_eq!(upgrade_status(request(&headers)).await, 101, "{headers:?}");
    }
    let own_topic = json!({"subscription_id": "p", "action": "subscribe", "topic": "peers"});
    // Open connections: relaydeck's topics are refused with an error frame, chain topics served.
    for headers in [vec![], vec![bearer(&server.token), page.clone()]] {
        let (mut open, _) = tokio_tungstenite::connect_async(request(&headers))
            .await
            .unwrap();
        send_json(&mut open, own_topic.clone()).await;
        let frame = expect_error(
            &mut open,
            400,
            r#"error creating data provider: topic "peers" shows server-wide state"#,
            "subscribe",
        )
        .await;
        assert_eq!(frame["subscription_id"], "p");
        send_json(&mut open, json!({"action": "list_subscriptions"})).await;
        assert_eq!(
            recv_json(&mut open).await,
            json!({"subscriptions": null, "action": "list_subscriptions"})
        );
    }
    let (mut credentialed, _) = tokio_tungstenite::connect_async(request(&[bearer(&server.token)]))
        .await
        .unwrap();
    send_json(&mut credentialed, own_topic).await;
    assert_eq!(
        recv_json(&mut credentialed).await,
        json!({"subscription_id": "p", "action": "subscribe"})
    );
    let mut admin = server.url("/admin").into_client_request().unwrap();
    admin.headers_mut().insert(
        "authorization",
        format!("Bearer {}", server.token).parse().unwrap(),
    );
    admin
        .headers_mut()
        .insert("origin", "https://page.example".parse().unwrap());
    assert_eq!(upgrade_status(admin).await, 403);
}

/// The chain topics stream a simulated chain with flow-go's models, from a connection with no
/// credential, and stop on unsubscribe.
#[tokio::test]
async fn chain_topics_stream_blocks_without_a_credential() {
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.block_interval_ms = 100;
    let server = TestServer::start(config).await;
    let (mut open, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    send_json(
        &mut open,
        json!({"subscription_id": "b", "action": "subscribe", "topic": "blocks", "arguments": {"block_status": "finalized"}}),
    )
    .await;
    assert_eq!(
        recv_json(&mut open).await,
        json!({"subscription_id": "b", "action": "subscribe"})
    );
    let first = recv_json(&mut open).await;
    assert_eq!(
        (&first["subscription_id"], &first["topic"]),
        (&json!("b"), &json!("blocks"))
    );
    let block = &first["payload"];
    let height: u64 = block["header"]["height"].as_str().unwrap().parse().unwrap();
    assert_eq!(block["header"]["id"].as_str().unwrap().len(), 64);
    assert_eq!(block["block_status"], "BLOCK_FINALIZED");
    assert!(block["payload"]["collection_guarantees"].is_array());
    assert!(block["payload"]["block_seals"].is_array());
    let second = recv_json(&mut open).await;
    assert_eq!(
        second["payload"]["header"]["parent_id"], block["header"]["id"],
        "{second}"
    );
    assert_eq!(
        second["payload"]["header"]["height"],
        (height + 1).to_string()
    );

    let start = height.to_string();
    send_json(
        &mut open,
        json!({"subscription_id": "h", "action": "subscribe", "topic": "block_headers", "arguments": {"block_status": "sealed", "start_block_height": start}}),
    )
    .await;
    send_json(
        &mut open,
        json!({"subscription_id": "d", "action": "subscribe", "topic": "block_digests", "arguments": {"block_status": "finalized", "start_block_id": block["header"]["id"]}}),
    )
    .await;
    send_json(
        &mut open,
        json!({"subscription_id": "b", "action": "unsubscribe"}),
    )
    .await;
    let (mut header, mut digest, mut unsubscribed) = (None, None, false);
    for _ in 0..200 {
        let frame = recv_json(&mut open).await;
        match (frame["subscription_id"].as_str(), frame.get("payload")) {
            (Some("h"), Some(payload)) => {
                header.get_or_insert(payload.clone());
            }
            (Some("d"), Some(payload)) => {
                digest.get_or_insert(payload.clone());
            }
            (Some("b"), None) => unsubscribed = frame["action"] == "unsubscribe",
            (Some("b"), Some(_)) => assert!(!unsubscribed, "data after unsubscribe"),
            _ => {}
        }
        if header.is_some() && digest.is_some() && unsubscribed {
            break;
        }
    }
    let header = header.unwrap();
    assert_eq!(header["height"], start);
    assert_eq!(header["id"], block["header"]["id"]);
    assert_eq!(header["timestamp"], block["header"]["timestamp"]);
    let digest = digest.unwrap();
    assert_eq!(
        digest,
        json!({"block_id": block["header"]["id"], "height": start, "timestamp": block["header"]["timestamp"]})
    );

    send_json(
        &mut open,
        json!({"subscription_id": "x", "action": "subscribe", "topic": "blocks", "arguments": {"block_status": "executed"}}),
    )
    .await;
    let mut seen = false;
    for _ in 0..200 {
        let frame = recv_json(&mut open).await;
        if frame["subscription_id"] == "x" {
            assert_eq!(
                frame["error"]["message"],
                "error creating data provider: invalid arguments: invalid 'block_status', must be 'finalized' or 'sealed'"
            );
            seen = true;
            break;
        }
    }
    assert!(seen, "no answer to the bad block_status");
}

/// An app's secret key opens a stream of that app's peers and errors only.
#[tokio::test]
async fn an_app_key_sees_its_own_app_only() {
    let server = TestServer::demo().await;
    let mut scoped = server.connect_bearer("/v1/ws", "sk_demo").await;
    send_json(
        &mut scoped,
        json!({"subscription_id": "p", "action": "subscribe", "topic": "peers"}),
    )
    .await;
    recv_json(&mut scoped).await;
    // A peer of another app first, then one of the demo app: only the second is seen.
    let mut other = server.connect("/v1?key=pk_limited").await;
    recv_type(&mut other, "welcome").await;
    let mut mine = server.connect("/v1?key=pk_demo").await;
    recv_type(&mut mine, "welcome").await;
    let seen = recv_json(&mut scoped).await;
    assert_eq!(seen["payload"]["kind"], "peer_connected", "{seen}");
    assert_eq!(seen["payload"]["peer"]["app"], "demo", "{seen}");
}

#[tokio::test]
async fn binary_frames_are_read_as_json() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    let request = br#"{"subscription_id":"b1","action":"subscribe","topic":"stats"}"#;
    futures_util::SinkExt::send(
        &mut stream,
        tokio_tungstenite::tungstenite::Message::Binary(request.to_vec().into()),
    )
    .await
    .unwrap();
    assert_eq!(
        recv_text(&mut stream).await,
        r#"{"subscription_id":"b1","action":"subscribe"}
"#
    );
}

fn quick_inactivity() -> relaydeck::server::config::Config {
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.inactivity_timeout_ms = 300;
    config
}

#[tokio::test]
async fn a_connection_without_subscriptions_is_closed_when_inactive() {
    let server = TestServer::start(quick_inactivity()).await;
    let mut idle = server.flow().await;
    assert_eq!(
        recv_close(&mut idle).await,
        (1000, relaydeck::server::flow::INACTIVITY_REASON.to_owned())
    );

    // A subscription keeps the connection open however quiet it is; once it is gone the
    // clock runs again from the last frame sent.
    let mut busy = server.flow().await;
    send_json(
        &mut busy,
        json!({"subscription_id": "r", "action": "subscribe", "topic": "rooms"}),
    )
    .await;
    assert_eq!(recv_json(&mut busy).await["action"], "subscribe");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(900), recv_json(&mut busy));
    assert!(
        quiet.await.is_err(),
        "a subscribed stream was sent something"
    );
    send_json(
        &mut busy,
        json!({"subscription_id": "r", "action": "unsubscribe"}),
    )
    .await;
    assert_eq!(recv_json(&mut busy).await["action"], "unsubscribe");
    assert_eq!(
        recv_close(&mut busy).await,
        (1000, relaydeck::server::flow::INACTIVITY_REASON.to_owned())
    );
}

#[tokio::test]
async fn without_strict_requests_missing_fields_are_read_as_flow_go_reads_them() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    send_json(&mut stream, json!({"action": "unsubscribe"})).await;
    expect_error(
        &mut stream,
        400,
        "error parsing subscription id: subscription ID provided by the client must not be empty",
        "unsubscribe",
    )
    .await;
    send_json(&mut stream, json!({"topic": "rooms"})).await;
    expect_error(
        &mut stream,
        400,
        "error parsing message: unknown action type: ",
        "",
    )
    .await;
    send_json(
        &mut stream,
        json!({"subscription_id": "t", "action": "subscribe"}),
    )
    .await;
    expect_error(
        &mut stream,
        400,
        r#"error creating data provider: unsupported topic """#,
        "subscribe",
    )
    .await;
    send_json(
        &mut stream,
        json!({"action": "list_subscriptions", "extra": 1}),
    )
    .await;
    assert_eq!(
        recv_json(&mut stream).await,
        json!({"subscriptions": null, "action": "list_subscriptions"})
    );
}

/// By default frames go out as Go's json.Encoder writes them and come in as gorilla's
/// ReadJSON reads them: the first value, field names in any case.
#[tokio::test]
async fn bytes_are_written_and_read_as_flow_go_does() {
    let server = TestServer::demo().await;
    let mut stream = server.flow().await;
    send_text(
        &mut stream,
        r#"{"Subscription_ID":"a<b>&","ACTION":"unsubscribe"} {"action":"ignored"}"#,
    )
    .await;
    assert_eq!(
        recv_text(&mut stream).await,
        "{\"subscription_id\":\"a\\u003cb\\u003e\\u0026\",\"error\":{\"code\":404,\"message\":\"subscription not found\"},\"action\":\"unsubscribe\"}\n"
    );
    send_text(&mut stream, "").await;
    assert_eq!(
        recv_text(&mut stream).await,
        "{\"subscription_id\":\"\",\"error\":{\"code\":400,\"message\":\"error reading message: EOF\"},\"action\":\"\"}\n"
    );
}

/// events and account_statuses stream heartbeats of the simulated chain when no transaction
/// matches, every `heartbeat_interval` blocks, counted by `message_index`.
#[tokio::test]
async fn events_and_account_statuses_send_heartbeats() {
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.block_interval_ms = 50;
    let server = TestServer::start(config).await;
    let (mut open, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    send_json(
        &mut open,
        json!({"subscription_id": "e", "action": "subscribe", "topic": "events", "arguments": {"heartbeat_interval": "2", "event_types": ["A.f8d6e0586b0a20c7.X.Y"]}}),
    )
    .await;
    send_json(
        &mut open,
        json!({"subscription_id": "a", "action": "subscribe", "topic": "account_statuses", "arguments": {}}),
    )
    .await;
    let (mut events, mut statuses) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let frame = recv_json(&mut open).await;
        match (frame["subscription_id"].as_str(), frame.get("payload")) {
            (Some("e"), Some(payload)) => events.push(payload.clone()),
            (Some("a"), Some(payload)) => statuses.push(payload.clone()),
            (_, None) => assert_eq!(frame["action"], "subscribe", "{frame}"),
            _ => {}
        }
        if events.len() >= 2 && statuses.len() >= 2 {
            break;
        }
    }
    let height = |p: &Value, field: &str| p[field].as_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(events[0]["message_index"], 0);
    assert_eq!(events[1]["message_index"], 1);
    assert_eq!(
        height(&events[1], "block_height"),
        height(&events[0], "block_height") + 2
    );
    assert!(events[0].get("events").is_none(), "{}", events[0]);
    assert!(events[0]["block_timestamp"].is_string());
    assert_eq!(statuses[0]["account_events"], json!({}));
    assert_eq!(
        height(&statuses[1], "height"),
        height(&statuses[0], "height") + 1
    );
    send_json(
        &mut open,
        json!({"subscription_id": "x", "action": "subscribe", "topic": "account_statuses", "arguments": {"addresses": []}}),
    )
    .await;
    let mut refused = false;
    for _ in 0..200 {
        let frame = recv_json(&mut open).await;
        if frame["subscription_id"] == "x" {
            assert_eq!(
                frame["error"]["message"],
                "error creating data provider: invalid arguments for account statuses data provider: unexpected field: 'addresses'"
            );
            refused = true;
            break;
        }
    }
    assert!(refused);
}

/// A transaction body as a client sends it, signed by the emulator's service account.
fn transaction_body(reference_block_id: &str, script: &str) -> Value {
    use base64::Engine as _;
    let service = "0xf8d6e0586b0a20c7";
    json!({
        "script": base64::engine::general_purpose::STANDARD.encode(script),
        "arguments": [],
        "reference_block_id": reference_block_id,
        "gas_limit": "9999",
        "payer": service,
        "proposal_key": {"address": service, "key_index": "0", "sequence_number": "0"},
        "authorizers": [service],
        "payload_signatures": [],
        "envelope_signatures": [{"address": service, "key_index": "0", "signature": "AAEC"}],
    })
}

/// A socket whose frames are read per subscription: frames of others wait their turn.
struct Sorted {
    socket: Socket,
    waiting: Vec<Value>,
}

impl Sorted {
    /// The next frame of subscription `id` (`""` for frames without one).
    async fn next(&mut self, id: &str) -> Value {
        let mine = |frame: &Value| frame["subscription_id"].as_str().unwrap_or("") == id;
        if let Some(at) = self.waiting.iter().position(mine) {
            return self.waiting.remove(at);
        }
        for _ in 0..500 {
            let frame = recv_json(&mut self.socket).await;
            if mine(&frame) {
                return frame;
            }
            self.waiting.push(frame);
        }
        panic!("nothing for {id}");
    }
}

async fn open_stream(server: &TestServer) -> Sorted {
    let (socket, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    Sorted {
        socket,
        waiting: Vec::new(),
    }
}

/// A transaction sent through send_and_get_transaction_statuses goes pending → finalized →
/// executed → sealed, is in its block's collection, emits events that the events topic
/// filters as flow-go does, and a second stream following it by id gets every status.
#[tokio::test]
async fn a_sent_transaction_goes_through_its_lifecycle_into_the_chain() {
    let mut config = relaydeck::server::config::Config::demo();
    config.flow.block_interval_ms = 100;
    let server = TestServer::start(config).await;
    let mut open = open_stream(&server).await;
    send_json(&mut open.socket, json!({"subscription_id": "d", "action": "subscribe", "topic": "block_digests", "arguments": {"block_status": "finalized"}})).await;
    assert_eq!(open.next("d").await["action"], "subscribe");
    let reference = open.next("d").await["payload"]["block_id"]
        .as_str()
        .unwrap()
        .to_owned();
    send_json(
        &mut open.socket,
        json!({"subscription_id": "d", "action": "unsubscribe"}),
    )
    .await;
    assert_eq!(open.next("d").await["action"], "unsubscribe");
    send_json(&mut open.socket, json!({"subscription_id": "fees", "action": "subscribe", "topic": "events", "arguments": {"contracts": ["A.e5a8b7f23e8b548f.FlowFees"], "heartbeat_interval": "1000"}})).await;
    assert_eq!(open.next("fees").await["action"], "subscribe");

    send_json(&mut open.socket, json!({"subscription_id": "tx", "action": "subscribe", "topic": "send_and_get_transaction_statuses", "arguments": transaction_body(&reference, "transaction {}")})).await;
    assert_eq!(open.next("tx").await["action"], "subscribe");
    let mut results = Vec::new();
    for index in 0..4 {
        let frame = open.next("tx").await;
        assert_eq!(
            frame["topic"], "send_and_get_transaction_statuses",
            "{frame}"
        );
        assert_eq!(frame["payload"]["message_index"], index, "{frame}");
        results.push(frame["payload"]["transaction_result"].clone());
    }
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Pending", "Finalized", "Executed", "Sealed"]);
    let executions: Vec<&str> = results
        .iter()
        .map(|r| r["execution"].as_str().unwrap())
        .collect();
    assert_eq!(executions, ["Pending", "Pending", "Pending", "Success"]);
    let pending = &results[0];
    assert_eq!(
        (
            pending["block_id"].as_str(),
            pending["events"].as_array().map(Vec::len)
        ),
        (Some(""), Some(0))
    );
    let block_id = results[1]["block_id"].as_str().unwrap().to_owned();
    let collection_id = results[1]["collection_id"].as_str().unwrap().to_owned();
    assert_eq!(block_id.len(), 64);
    assert_eq!(results[3]["block_id"], block_id.as_str());
    let events = results[3]["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "A.0ae53cb6e3f42a79.FlowToken.TokensWithdrawn",
            "A.0ae53cb6e3f42a79.FlowToken.TokensDeposited",
            "A.e5a8b7f23e8b548f.FlowFees.FeesDeducted"
        ]
    );
    let tx_id = events[0]["transaction_id"].as_str().unwrap().to_owned();
    assert_eq!(
        results[3]["_links"]["_self"],
        format!("/v1/transaction_results/{tx_id}")
    );
    // A sealed transaction's stream ends without a word, as flow-go's does.
    send_json(&mut open.socket, json!({"action": "list_subscriptions"})).await;
    let listed = open.next("").await;
    let topics: Vec<&str> = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["events"], "{listed}");

    // The contracts filter lets FlowFees' event through, and only it.
    let fees = open.next("fees").await;
    assert_eq!(fees["payload"]["block_id"], block_id.as_str(), "{fees}");
    let fee_events = fees["payload"]["events"].as_array().unwrap();
    assert_eq!(fee_events.len(), 1, "{fees}");
    assert_eq!(
        fee_events[0]["type"],
        "A.e5a8b7f23e8b548f.FlowFees.FeesDeducted"
    );
    assert_eq!(fee_events[0]["transaction_id"], tx_id.as_str());

    // The transaction is in its block: the block's collection is the transaction's.
    send_json(&mut open.socket, json!({"subscription_id": "b", "action": "subscribe", "topic": "blocks", "arguments": {"block_status": "sealed", "start_block_id": block_id}})).await;
    assert_eq!(open.next("b").await["action"], "subscribe");
    let block = open.next("b").await;
    assert_eq!(block["payload"]["header"]["id"], block_id.as_str());
    assert_eq!(
        block["payload"]["payload"]["collection_guarantees"][0]["collection_id"],
        collection_id.as_str()
    );

    // Another stream following the sealed transaction by id gets all four statuses at once.
    let mut other = open_stream(&server).await;
    send_json(&mut other.socket, json!({"subscription_id": "w", "action": "subscribe", "topic": "transaction_statuses", "arguments": {"tx_id": tx_id}})).await;
    assert_eq!(other.next("w").await["action"], "subscribe");
    let mut followed = Vec::new();
    for _ in 0..4 {
        let frame = other.next("w").await;
        assert_eq!(frame["topic"], "transaction_statuses");
        followed.push(
            frame["payload"]["transaction_result"]["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(followed, ["Pending", "Finalized", "Executed", "Sealed"]);
}

/// Transaction topics' refusals: argument checks before the acknowledgement, flow-go's
/// validator after it (a 500 that ends the subscription).
#[tokio::test]
async fn transaction_and_event_arguments_are_refused_with_flow_go_texts() {
    let server = TestServer::demo().await;
    let (mut open, _) = tokio_tungstenite::connect_async(server.url("/v1/ws"))
        .await
        .unwrap();
    let provider = "error creating data provider: ";
    let cases = [
        (json!({"topic": "transaction_statuses", "arguments": {"tx_id": "abc"}}), "invalid arguments for tx statuses data provider: invalid 'tx_id': invalid ID format"),
        (json!({"topic": "transaction_statuses", "arguments": {}}), "invalid arguments for tx statuses data provider: missing 'tx_id' field"),
        (json!({"topic": "send_and_get_transaction_statuses", "arguments": {"script": 1}}), "invalid arguments for send tx statuses data provider: failed to parse transaction: request body contains an invalid value for the \"script\" field (at position 11)"),
        (json!({"topic": "send_and_get_transaction_statuses", "arguments": {"payer": "0x1"}}), "invalid arguments for send tx statuses data provider: failed to parse transaction: proposal key not provided"),
        (json!({"topic": "events", "arguments": {"addresses": ["0x1"]}}), "invalid arguments for events data provider: error creating event filter: invalid address for chain: 0000000000000001"),
        (json!({"topic": "events", "arguments": {"event_types": ["A.B"]}}), "invalid arguments for events data provider: error creating event filter: invalid event type A.B: invalid event type: A.B"),
        (json!({"topic": "events", "arguments": {"contracts": ["B.x.y"]}}), "invalid arguments for events data provider: error creating event filter: invalid contract: B.x.y"),
        (json!({"topic": "account_statuses", "arguments": {"event_types": ["flow.X"]}}), "invalid arguments for account statuses data provider: failed to create event filter: invalid provided event types for filter"),
        (json!({"topic": "account_statuses", "arguments": {"account_addresses": ["0xf8d6e0586b0a20c7"], "event_types": ["flow.X"]}}), "invalid arguments for account statuses data provider: failed to create event filter: unsupported event type: flow.X"),
    ];
    for (request, message) in cases {
        let mut request = request;
        request["subscription_id"] = json!("r");
        request["action"] = json!("subscribe");
        send_json(&mut open, request).await;
        let frame = recv_json(&mut open).await;
        assert_eq!(frame["error"]["code"], 400, "{frame}");
        assert_eq!(frame["error"]["message"], format!("{provider}{message}"));
        assert_eq!(frame["subscription_id"], "r");
    }
    // A reference block the chain does not have: acknowledged, then the send fails.
    let unknown = "0".repeat(64);
    send_json(&mut open, json!({"subscription_id": "s", "action": "subscribe", "topic": "send_and_get_transaction_statuses", "arguments": transaction_body(&unknown, "transaction {}")})).await;
    assert_eq!(
        recv_json(&mut open).await,
        json!({"subscription_id": "s", "action": "subscribe"})
    );
    let failure = recv_json(&mut open).await;
    assert_eq!(
        failure,
        json!({"subscription_id": "s", "error": {"code": 500, "message": "internal error: subscription finished with error: rpc error: code = InvalidArgument desc = failed to send transaction: invalid transaction: unknown reference block"}, "action": "subscribe"})
    );
    send_json(&mut open, json!({"action": "list_subscriptions"})).await;
    assert_eq!(
        recv_json(&mut open).await,
        json!({"subscriptions": null, "action": "list_subscriptions"})
    );
}
