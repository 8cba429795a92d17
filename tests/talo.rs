//! Talo over real HTTP and sockets: every code of talo-socket-errors.md and
//! talo-http-errors.txt from a real client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use relaydeck::catalog::Dialect;
use relaydeck::protocol::admin::{Command, FaultTarget};
use serde_json::{json, Value};

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    fn new(server: &TestServer) -> Http {
        Http {
            client: reqwest::Client::new(),
            base: server.http(""),
        }
    }

    async fn ticket(&self, key: &str) -> String {
        let response = self
            .client
            .post(format!("{}/v1/socket-tickets", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["ticket"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn identify(&self, service: &str, identifier: &str) -> Value {
        let response = self
            .client
            .get(format!(
                "{}/v1/players/identify?service={service}&identifier={identifier}",
                self.base
            ))
            .bearer_auth("talo_demo_full")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn login(&self, identifier: &str, password: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/players/auth/login", self.base))
            .bearer_auth("talo_demo_full")
            .json(&json!({"identifier": identifier, "password": password}))
            .send()
            .await
            .unwrap()
    }
}

async fn socket(server: &TestServer, http: &Http, key: &str) -> Socket {
    let ticket = http.ticket(key).await;
    let mut socket = server.connect(&format!("/?ticket={ticket}")).await;
    assert_eq!(
        recv_json(&mut socket).await,
        json!({"res": "v1.connected", "data": {}})
    );
    socket
}

/// The next frame other than a presence update (every identify and every identified
/// connection's end tells the game's players with `read:playerPresence`).
async fn recv_talo(socket: &mut Socket) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["res"] != "v1.players.presence.updated" {
            return frame;
        }
    }
}

async fn expect_error(socket: &mut Socket, req: &str, code: &str) -> Value {
    let frame = recv_talo(socket).await;
    assert_eq!(frame["res"], "v1.error", "{frame}");
    assert_eq!(frame["data"]["errorCode"], code, "{frame}");
    assert_eq!(frame["data"]["req"], req, "{frame}");
    frame
}

async fn identified(server: &TestServer, http: &Http, key: &str, identifier: &str) -> Socket {
    let mut socket = socket(server, http, key).await;
    let identity = if identifier == "bob" {
        http.login("bob", "demo-password")
            .await
            .json::<Value>()
            .await
            .unwrap()
    } else {
        http.identify("username", identifier).await
    };
    let mut data =
        json!({"playerAliasId": identity["alias"]["id"], "socketToken": identity["socketToken"]});
    if let Some(session) = identity.get("sessionToken") {
        data["sessionToken"] = session.clone();
    }
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": data}),
    )
    .await;
    assert_eq!(
        recv_talo(&mut socket).await["res"],
        "v1.players.identify.success"
    );
    socket
}

#[tokio::test]
async fn every_socket_code_of_the_seed() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);

    // A bad ticket, and a ticket used twice, are closed with 3000 and no reason, as Talo
    // closes them.
    let mut bad = server.connect("/?ticket=nope").await;
    assert_eq!(recv_close(&mut bad).await, (3000, String::new()));
    let ticket = http.ticket("talo_demo_full").await;
    let _first = server.connect(&format!("/talo?ticket={ticket}")).await;
    let mut reused = server.connect(&format!("/talo?ticket={ticket}")).await;
    assert_eq!(recv_close(&mut reused).await.0, 3000);

    let mut player = socket(&server, &http, "talo_demo_full").await;
    let raw = r#"{"req":"v1.does.not.exist","data":{}}"#;
    send_text(&mut player, raw).await;
    let invalid = expect_error(&mut player, "unknown", "INVALID_MESSAGE").await;
    assert_eq!(invalid["data"]["cause"], raw);
    assert_eq!(invalid["data"]["message"], "Invalid message request");

    send_json(
        &mut player,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "hi"}}),
    )
    .await;
    expect_error(&mut player, "v1.channels.message", "NO_PLAYER_FOUND").await;

    let alice = http.identify("username", "alice").await;
    send_json(&mut player, json!({"req": "v1.players.identify", "data": {"playerAliasId": alice["alias"]["id"], "socketToken": "stale"}})).await;
    expect_error(&mut player, "v1.players.identify", "INVALID_SOCKET_TOKEN").await;
    send_json(
        &mut player,
        json!({"req": "v1.players.identify", "data": {"playerAliasId": "one"}}),
    )
    .await;
    let data_error = expect_error(&mut player, "v1.players.identify", "INVALID_MESSAGE_DATA").await;
    assert_eq!(data_error["data"]["cause"], r#"{"playerAliasId":"one"}"#);
    assert_eq!(
        data_error["data"]["message"],
        "Invalid message data for request"
    );
    // The cause is JSON.stringify of the data: the client's key order, JavaScript's numbers.
    send_text(
        &mut player,
        r#"{"req":"v1.players.identify","data":{"socketToken":"t","playerAliasId":1.0,"sessionToken":null}}"#,
    )
    .await;
    let data_error = expect_error(&mut player, "v1.players.identify", "INVALID_MESSAGE_DATA").await;
    assert_eq!(
        data_error["data"]["cause"],
        r#"{"socketToken":"t","playerAliasId":1,"sessionToken":null}"#
    );
    // Talo's schema takes any number as an alias id; 1.5 is simply no alias's.
    send_json(
        &mut player,
        json!({"req": "v1.players.identify", "data": {"playerAliasId": 1.5, "socketToken": "t"}}),
    )
    .await;
    expect_error(&mut player, "v1.players.identify", "INVALID_SOCKET_TOKEN").await;

    // bob uses Talo player authentication: no session token, no identify.
    let bob = http
        .login("bob", "demo-password")
        .await
        .json::<Value>()
        .await
        .unwrap();
    send_json(&mut player, json!({"req": "v1.players.identify", "data": {"playerAliasId": bob["alias"]["id"], "socketToken": bob["socketToken"]}})).await;
    expect_error(&mut player, "v1.players.identify", "INVALID_SESSION_TOKEN").await;

    let mut alice_socket = identified(&server, &http, "talo_demo_full", "alice").await;
    send_json(&mut alice_socket, json!({"req": "v1.channels.message", "data": {"myMessageToTheChannelIsGoingToBeThis": "general"}})).await;
    let frame = expect_error(
        &mut alice_socket,
        "v1.channels.message",
        "INVALID_MESSAGE_DATA",
    )
    .await;
    assert_eq!(
        frame["data"]["cause"],
        r#"{"myMessageToTheChannelIsGoingToBeThis":"general"}"#
    );
    send_json(
        &mut alice_socket,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 99}, "message": "hi"}}),
    )
    .await;
    assert_eq!(
        expect_error(&mut alice_socket, "v1.channels.message", "LISTENER_ERROR").await["data"]
            ["cause"],
        "Channel not found"
    );
    send_json(
        &mut alice_socket,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 2}, "message": "hi"}}),
    )
    .await;
    assert_eq!(
        expect_error(&mut alice_socket, "v1.channels.message", "LISTENER_ERROR").await["data"]
            ["cause"],
        "Player not in channel"
    );

    let mut reader = identified(&server, &http, "talo_demo_ro", "alice").await;
    send_json(
        &mut reader,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "hi"}}),
    )
    .await;
    let scopes = expect_error(
        &mut reader,
        "v1.channels.message",
        "MISSING_ACCESS_KEY_SCOPES",
    )
    .await;
    assert_eq!(
        scopes["data"]["message"],
        "Missing access key scope(s): write:gameChannels"
    );

    // The server-side codes through armed faults.
    let mut admin = server.admin().await;
    for code in [
        "UNHANDLED_REQUEST",
        "ROUTING_ERROR",
        "INVALID_SIGNATURE",
        "LISTENER_ERROR",
    ] {
        let armed = admin
            .command(Command::ArmFault {
                target: FaultTarget::Dialect {
                    dialect: Dialect::Talo,
                },
                code: code.into(),
                count: 1,
            })
            .await;
        assert!(armed.ok, "{armed:?}");
        send_json(
            &mut alice_socket,
            json!({"req": "v1.player-relationships.broadcast", "data": {"message": "hello"}}),
        )
        .await;
        expect_error(&mut alice_socket, "v1.player-relationships.broadcast", code).await;
    }
}

#[tokio::test]
async fn chat_heartbeat_and_broadcast_between_identified_players() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let mut alice = identified(&server, &http, "talo_demo_full", "alice").await;
    let mut bob = identified(&server, &http, "talo_demo_full", "bob").await;
    // Alice hears that bob came online, with his alias's full JSON.
    let presence = recv_json(&mut alice).await;
    assert_eq!(presence["res"], "v1.players.presence.updated", "{presence}");
    assert_eq!(presence["data"]["presence"]["online"], true);
    assert_eq!(presence["data"]["presence"]["customStatus"], "");
    assert_eq!(
        presence["data"]["presence"]["playerAlias"]["identifier"],
        "bob"
    );
    assert_eq!(presence["data"]["meta"]["onlineChanged"], true);

    send_text(&mut alice, "v1.heartbeat").await;
    let echoed = tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(&mut alice))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.to_text().unwrap(), "v1.heartbeat");

    // Every member with read:gameChannels gets the message, the sender included.
    send_json(&mut alice, json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "hello bob"}})).await;
    for socket in [&mut bob, &mut alice] {
        let message = recv_talo(socket).await;
        assert_eq!(message["res"], "v1.channels.message", "{message}");
        let data = &message["data"];
        assert_eq!(data["message"], "hello bob");
        assert_eq!(data["channel"]["id"], 1);
        assert_eq!(data["channel"]["totalMessages"], 0);
        for field in [
            "name",
            "owner",
            "props",
            "private",
            "autoCleanup",
            "temporaryMembership",
            "createdAt",
            "updatedAt",
        ] {
            assert!(
                data["channel"].get(field).is_some(),
                "channel {field}: {message}"
            );
        }
        let alias = &data["playerAlias"];
        assert_eq!(alias["identifier"], "alice");
        assert_eq!(alias["displayName"], "alice");
        assert!(alias["player"]["props"].is_array(), "{message}");
        assert!(alias["player"]["groups"].is_array(), "{message}");
        assert_eq!(alias["player"]["presence"]["online"], true);
        assert!(alias["player"].get("aliases").is_none(), "{message}");
    }
    send_json(
        &mut bob,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "again"}}),
    )
    .await;
    assert_eq!(
        recv_talo(&mut alice).await["data"]["channel"]["totalMessages"],
        1
    );

    send_json(
        &mut bob,
        json!({"req": "v1.player-relationships.broadcast", "data": {"message": "gg"}}),
    )
    .await;
    let broadcast = recv_talo(&mut alice).await;
    assert_eq!(broadcast["res"], "v1.player-relationships.broadcast");
    assert_eq!(broadcast["data"]["message"], "gg");
    assert_eq!(broadcast["data"]["playerAlias"]["identifier"], "bob");

    // Bob leaving is a presence change too.
    drop(bob);
    let offline = recv_json(&mut alice).await;
    assert_eq!(offline["res"], "v1.players.presence.updated", "{offline}");
    assert_eq!(offline["data"]["presence"]["online"], false);
    assert_eq!(
        offline["data"]["presence"]["playerAlias"]["identifier"],
        "bob"
    );
}

#[tokio::test]
async fn recipients_are_chosen_by_their_access_key_scopes() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    // talo_demo_ro reads game channels but not broadcasts or presence, and may not write.
    let mut reader = identified(&server, &http, "talo_demo_ro", "alice").await;
    let mut writer = identified(&server, &http, "talo_demo_full", "bob").await;
    send_json(
        &mut reader,
        json!({"req": "v1.player-relationships.broadcast", "data": {"message": "x"}}),
    )
    .await;
    let refused = expect_error(
        &mut reader,
        "v1.player-relationships.broadcast",
        "MISSING_ACCESS_KEY_SCOPES",
    )
    .await;
    assert_eq!(
        refused["data"]["message"],
        "Missing access key scope(s): write:playerBroadcasts"
    );
    send_json(
        &mut writer,
        json!({"req": "v1.player-relationships.broadcast", "data": {"message": "gg"}}),
    )
    .await;
    send_json(
        &mut writer,
        json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "hi"}}),
    )
    .await;
    // The reader gets the channel message, and nothing before it: no broadcast, no presence.
    let first = recv_json(&mut reader).await;
    assert_eq!(first["res"], "v1.channels.message", "{first}");
    assert_eq!(recv_talo(&mut writer).await["res"], "v1.channels.message");
}

#[tokio::test]
async fn not_json_is_a_routing_error_and_a_bad_envelope_an_invalid_message() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let mut player = socket(&server, &http, "talo_demo_full").await;
    send_text(&mut player, "{not json").await;
    let routing = expect_error(&mut player, "unknown", "ROUTING_ERROR").await;
    assert_eq!(
        routing["data"]["message"],
        "An error occurred while routing the message"
    );
    assert!(routing["data"].get("cause").is_none(), "{routing}");
    let envelope = r#"{"req":"v1.channels.message"}"#;
    send_text(&mut player, envelope).await;
    let invalid = expect_error(&mut player, "unknown", "INVALID_MESSAGE").await;
    assert_eq!(invalid["data"]["cause"], envelope);
}

#[tokio::test]
async fn a_heartbeat_forgives_one_rate_limit_warning() {
    let mut config = relaydeck::server::config::Config::demo();
    config.talo.unidentified_per_second = 2;
    let server = TestServer::start(config).await;
    let http = Http::new(&server);
    let mut player = socket(&server, &http, "talo_demo_full").await;
    // Two allowed, three warned. Everything here happens well within the connection's first
    // one-second window (a heartbeat text would itself be an excess now, which is why the
    // forgiving heartbeat below is a WebSocket ping).
    let bad = r#"{"req":"nope","data":{}}"#;
    for _ in 0..5 {
        send_text(&mut player, bad).await;
    }
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(recv_talo(&mut player).await["data"]["errorCode"].clone());
    }
    assert_eq!(
        codes,
        [
            "INVALID_MESSAGE",
            "INVALID_MESSAGE",
            "RATE_LIMIT_EXCEEDED",
            "RATE_LIMIT_EXCEEDED",
            "RATE_LIMIT_EXCEEDED"
        ]
    );
    // Upstream counts a pong as a heartbeat; relaydeck counts the ping its library answers.
    futures_util::SinkExt::send(
        &mut player,
        tokio_tungstenite::tungstenite::Message::Ping(Vec::new().into()),
    )
    .await
    .unwrap();
    // The fourth excess would close; after forgiveness it warns once more, then closes.
    let mut frames = Vec::new();
    for _ in 0..3 {
        send_text(&mut player, bad).await;
    }
    let close = loop {
        let message =
            tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(&mut player))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        match message {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                frames.push(frame["data"]["errorCode"].clone());
            }
            tokio_tungstenite::tungstenite::Message::Close(Some(frame)) => {
                break (u16::from(frame.code), frame.reason.to_string());
            }
            _ => {}
        }
    };
    assert_eq!(close, (1008, "RATE_LIMIT_EXCEEDED".to_owned()));
    assert_eq!(frames, ["RATE_LIMIT_EXCEEDED"], "{frames:?}");
}

#[tokio::test]
async fn the_rate_limit_warns_three_times_then_closes_1008() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let mut player = socket(&server, &http, "talo_demo_full").await;
    for _ in 0..29 {
        send_text(&mut player, "v1.heartbeat").await;
    }
    let mut warnings = 0;
    loop {
        let message =
            tokio::time::timeout(RECEIVE_TIMEOUT, futures_util::StreamExt::next(&mut player))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        match message {
            tokio_tungstenite::tungstenite::Message::Text(text)
                if text.as_str() == "v1.heartbeat" => {}
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(frame["data"]["errorCode"], "RATE_LIMIT_EXCEEDED", "{frame}");
                assert_eq!(frame["data"]["req"], "unknown");
                warnings += 1;
            }
            tokio_tungstenite::tungstenite::Message::Close(Some(frame)) => {
                assert_eq!(
                    (u16::from(frame.code), frame.reason.as_str()),
                    (1008, "RATE_LIMIT_EXCEEDED")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(warnings, 3);
}

#[tokio::test]
async fn every_http_code_of_the_seed() {
    let server = TestServer::demo().await;
    let client = reqwest::Client::new();
    let url = |path: &str| server.http(path);

    let unauthenticated = client.post(url("/v1/socket-tickets")).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.json::<Value>().await.unwrap(),
        json!({"message": "Authentication Error"})
    );
    for malformed in [
        "talo_demo_full",
        "Basic talo_demo_full",
        "Bearer  talo_demo_full",
    ] {
        let answer = client
            .post(url("/v1/socket-tickets"))
            .header("authorization", malformed)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{malformed}");
        assert_eq!(
            answer.json::<Value>().await.unwrap(),
            json!({"message": "Bad Authorization header format. Format is \"Authorization: Bearer <token>\""}),
            "{malformed}"
        );
    }
    let lower_case = client
        .post(url("/v1/socket-tickets"))
        .header("authorization", "bearer talo_demo_full")
        .send()
        .await
        .unwrap();
    assert_eq!(
        lower_case.status(),
        200,
        "koa-jwt takes the scheme in any case"
    );
    let unknown_key = client
        .post(url("/v1/socket-tickets"))
        .bearer_auth("not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_key.status(), 401);
    assert_eq!(
        unknown_key.json::<Value>().await.unwrap(),
        json!({"message": "Please provide a valid token in the Authorization header"})
    );
    let unknown_talo = client
        .get(url("/v1/players/identify?service=talo&identifier=nobody"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_talo.status(), 404);
    assert_eq!(
        unknown_talo.json::<Value>().await.unwrap(),
        json!({"message": "Player not found: Talo aliases must be created using the /v1/players/auth API"})
    );

    let scopes = client
        .post(url("/v1/players/socket-token"))
        .bearer_auth("talo_demo_ro")
        .header("x-talo-alias", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(scopes.status(), 403);
    assert_eq!(
        scopes.json::<Value>().await.unwrap()["message"],
        "Missing access key scope(s): write:players"
    );
    // Login needs read:players and write:players; the message names the missing one.
    let login_scopes = client
        .post(url("/v1/players/auth/login"))
        .bearer_auth("talo_demo_ro")
        .json(&json!({"identifier": "bob", "password": "demo-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login_scopes.status(), 403);
    assert_eq!(
        login_scopes.json::<Value>().await.unwrap()["message"],
        "Missing access key scope(s): write:players"
    );

    let missing = client
        .get(url("/v1/players/identify?service=username"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"errors": {"identifier": ["identifier is missing from the request query"]}})
    );
    // Talo tells an empty value from a missing one, and checks the alias header's form before
    // looking the alias up (404 for one the game does not have).
    let empty = client
        .get(url("/v1/players/identify?service=&identifier=x"))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    assert_eq!(
        empty.json::<Value>().await.unwrap(),
        json!({"errors": {"service": ["Invalid service, must be a non-empty string"]}})
    );
    for (alias, status, body) in [
        (
            "abc",
            400,
            json!({"errors": {"x-talo-alias": ["x-talo-alias header must be a numeric string"]}}),
        ),
        ("999999", 404, json!({"message": "Player not found"})),
    ] {
        let answer = client
            .post(url("/v1/players/socket-token"))
            .bearer_auth("talo_demo_full")
            .header("x-talo-alias", alias)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{alias}");
        assert_eq!(answer.json::<Value>().await.unwrap(), body, "{alias}");
    }

    let bob_alias = client
        .post(url("/v1/players/auth/login"))
        .bearer_auth("talo_demo_full")
        .json(&json!({"identifier": "bob", "password": "demo-password"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let alias_id = bob_alias["alias"]["id"].to_string();
    let no_session = client
        .post(url("/v1/players/socket-token"))
        .bearer_auth("talo_demo_full")
        .header("x-talo-alias", &alias_id)
        .send()
        .await
        .unwrap();
    assert_eq!(no_session.status(), 401);
    assert_eq!(
        no_session.json::<Value>().await.unwrap()["errorCode"],
        "MISSING_SESSION"
    );
    let bad_session = client
        .post(url("/v1/players/socket-token"))
        .bearer_auth("talo_demo_full")
        .header("x-talo-alias", &alias_id)
        .header("x-talo-session", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_session.json::<Value>().await.unwrap()["errorCode"],
        "INVALID_SESSION"
    );
    let good_session = client
        .post(url("/v1/players/socket-token"))
        .bearer_auth("talo_demo_full")
        .header("x-talo-alias", &alias_id)
        .header(
            "x-talo-session",
            bob_alias["sessionToken"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(good_session.status(), 200);

    let wrong_password = client
        .post(url("/v1/players/auth/login"))
        .bearer_auth("talo_demo_full")
        .json(&json!({"identifier": "bob", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_password.status(), 401);

    // 20 a minute on authentication endpoints, then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..25 {
        let response = client
            .get(url(
                "/v1/players/identify?service=username&identifier=carol",
            ))
            .bearer_auth("talo_demo_full")
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the 21st identify is rate limited");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        limited.json::<Value>().await.unwrap(),
        json!({"message": "Too Many Requests"})
    );
}

#[tokio::test]
async fn admins_see_players_and_game_channels_and_kick_with_4020() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let mut alice = identified(&server, &http, "talo_demo_full", "alice").await;

    let mut admin = server.admin().await;
    let peer = admin
        .snapshot
        .peers
        .iter()
        .find(|p| p.dialect == Dialect::Talo && p.identity.as_deref() == Some("alice"))
        .unwrap_or_else(|| panic!("no Talo peer for alice in {:?}", admin.snapshot.peers))
        .id
        .clone();
    let general = admin
        .snapshot
        .channels
        .iter()
        .find(|c| c.dialect == Dialect::Talo && c.name == "1:general")
        .unwrap_or_else(|| panic!("no Talo channel 1:general in {:?}", admin.snapshot.channels));
    assert!(general.members.contains(&peer), "{general:?}");

    let result = admin
        .command(Command::Kick {
            peer: peer.clone(),
            reason: None,
        })
        .await;
    assert!(result.ok, "{result:?}");
    assert_eq!(
        recv_close(&mut alice).await,
        (4020, "admin_disconnect".to_owned())
    );
}

/// An operator's ban on a player's identifier reaches its live socket (as identified over
/// HTTP, so the ban's name and the socket's identity agree) and refuses it a new socket token
/// for an alias id it already knows.
#[tokio::test]
async fn a_banned_identifier_is_kicked_and_gets_no_new_socket_token() {
    use relaydeck::protocol::admin::BanTarget;
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let alias = http.identify("username", "alice").await["alias"]["id"].clone();
    let mut alice = identified(&server, &http, "talo_demo_full", "alice").await;
    let mut admin = server.admin().await;
    let banned = admin
        .command(Command::Ban {
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "alice".into(),
            },
            duration_ms: 600_000,
            reason: "cheating".into(),
        })
        .await;
    assert!(banned.ok, "{}", banned.message);
    assert_eq!(
        recv_close(&mut alice).await,
        (4020, "admin_disconnect".to_owned())
    );
    let refused = http
        .client
        .post(format!("{}/v1/players/socket-token", http.base))
        .bearer_auth("talo_demo_full")
        .header("x-talo-alias", alias.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errorCode"], "BANNED", "{body}");
}

#[tokio::test]
async fn a_game_that_verifies_requests_needs_signed_frames_once_identified() {
    let mut config = relaydeck::server::config::Config::demo();
    for app in &mut config.apps {
        if let Some(talo) = &mut app.talo {
            talo.verification_keys
                .insert("1".to_owned(), "verification-secret".to_owned());
        }
    }
    let server = TestServer::start(config).await;
    let http = Http::new(&server);
    // Identify itself is never checked.
    let mut alice = identified(&server, &http, "talo_demo_full", "alice").await;
    let json = r#"{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"signed"}}"#;
    send_text(&mut alice, json).await;
    expect_error(&mut alice, "v1.channels.message", "INVALID_SIGNATURE").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let wrong = relaydeck::server::talo::signature::sign("1", "not-the-key", "r0", json, now);
    send_text(&mut alice, &format!("{wrong}\n{json}")).await;
    expect_error(&mut alice, "v1.channels.message", "INVALID_SIGNATURE").await;
    let signature =
        relaydeck::server::talo::signature::sign("1", "verification-secret", "r1", json, now);
    let frame = format!("{signature}\n{json}");
    send_text(&mut alice, &frame).await;
    let message = recv_talo(&mut alice).await;
    assert_eq!(message["res"], "v1.channels.message", "{message}");
    assert_eq!(message["data"]["message"], "signed");
    // The same request id again is a replay.
    send_text(&mut alice, &frame).await;
    expect_error(&mut alice, "v1.channels.message", "INVALID_SIGNATURE").await;
    // A bad envelope names the whole frame, signature line included, as upstream does.
    let bad = format!("{signature}\n{{\"req\":\"nope\",\"data\":{{}}}}");
    send_text(&mut alice, &bad).await;
    let invalid = expect_error(&mut alice, "unknown", "INVALID_MESSAGE").await;
    assert_eq!(invalid["data"]["cause"], bad);
}

/// Authorization comes before rate accounting: requests without a valid key are refused 401
/// however many there are, and never spend the window of the player they name.
#[tokio::test]
async fn unauthorized_requests_never_spend_a_players_rate_window() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    for _ in 0..30 {
        let response = http
            .client
            .post(format!("{}/v1/players/auth/login", http.base))
            .bearer_auth("not-a-key")
            .json(&json!({"identifier": "bob", "password": "demo-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            401,
            "refused as unauthorized, not limited"
        );
    }
    let login = http.login("bob", "demo-password").await;
    assert_eq!(login.status(), 200, "bob's own window is untouched");
}

/// Alice on node a, Bob on node b: channel messages, broadcasts and presence reach the
/// players of the other node (each identifies on the node it connects to).
#[tokio::test]
async fn channel_messages_broadcasts_and_presence_cross_the_nodes_of_a_cluster() {
    let redis = common::redis::Redis::start();
    let a = common::redis::node(&redis, "a").await;
    let b = common::redis::node(&redis, "b").await;
    let (http_a, http_b) = (Http::new(&a), Http::new(&b));
    let mut alice = identified(&a, &http_a, "talo_demo_full", "alice").await;
    let mut bob = identified(&b, &http_b, "talo_demo_full", "bob").await;
    // Node b's identify reaches Alice on node a as a presence update.
    let presence = recv_json(&mut alice).await;
    assert_eq!(presence["res"], "v1.players.presence.updated", "{presence}");
    assert_eq!(
        presence["data"]["presence"]["playerAlias"]["identifier"],
        "bob"
    );

    send_json(&mut alice, json!({"req": "v1.channels.message", "data": {"channel": {"id": 1}, "message": "hello bob"}})).await;
    let message = recv_talo(&mut bob).await;
    assert_eq!(message["res"], "v1.channels.message", "{message}");
    assert_eq!(message["data"]["message"], "hello bob");
    assert_eq!(message["data"]["playerAlias"]["identifier"], "alice");
    // The sender is a member too, and hears its own message once.
    assert_eq!(recv_talo(&mut alice).await["data"]["message"], "hello bob");

    send_json(
        &mut bob,
        json!({"req": "v1.player-relationships.broadcast", "data": {"message": "gg"}}),
    )
    .await;
    let broadcast = recv_talo(&mut alice).await;
    assert_eq!(
        broadcast["res"], "v1.player-relationships.broadcast",
        "{broadcast}"
    );
    assert_eq!(broadcast["data"]["playerAlias"]["identifier"], "bob");

    drop(bob);
    let offline = recv_json(&mut alice).await;
    assert_eq!(offline["res"], "v1.players.presence.updated", "{offline}");
    assert_eq!(offline["data"]["presence"]["online"], false);
}

/// The next Talo frame of type `res`, as the text the server wrote.
async fn recv_text_of(socket: &mut Socket, res: &str) -> String {
    use futures_util::StreamExt as _;
    for _ in 0..50 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            if text.starts_with(&format!(r#"{{"res":"{res}""#)) {
                return text.to_string();
            }
        }
    }
    panic!("no {res}");
}

/// The keys of `text`'s objects appear in this order (each `"key":` after the previous one).
fn assert_key_order(text: &str, keys: &[&str]) {
    let mut from = 0;
    for key in keys {
        let needle = format!("\"{key}\":");
        let at = text[from..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{key} not after position {from} in {text}"));
        from += at + needle.len();
    }
}

const ALIAS_KEYS: [&str; 5] = ["id", "service", "identifier", "displayName", "player"];
const ALIAS_TAIL: [&str; 3] = ["lastSeenAt", "createdAt", "updatedAt"];

/// Frames and bodies write their keys as upstream's entities' `toJSON` order them, and a
/// `talo`-service alias carries `player.auth` where upstream loads it (identify and login).
#[tokio::test]
async fn entities_keep_upstream_key_order_and_talo_aliases_carry_auth() {
    let server = TestServer::demo().await;
    let http = Http::new(&server);
    let login = http
        .login("bob", "demo-password")
        .await
        .text()
        .await
        .unwrap();
    assert!(login.starts_with(r#"{"alias":{"id":"#), "{login}");
    assert_key_order(&login, &ALIAS_KEYS);
    assert_key_order(
        &login,
        &[
            "player",
            "id",
            "props",
            "devBuild",
            "createdAt",
            "lastSeenAt",
            "groups",
            "auth",
            "email",
            "verificationEnabled",
            "sessionCreatedAt",
            "presence",
        ],
    );
    assert_key_order(&login, &ALIAS_TAIL);
    assert_key_order(&login, &["alias", "sessionToken", "socketToken"]);
    assert!(
        login.contains(r#""auth":{"email":null,"verificationEnabled":false,"sessionCreatedAt":""#),
        "{login}"
    );
    let login: Value = serde_json::from_str(&login).unwrap();

    let identify = http
        .client
        .get(format!(
            "{}/v1/players/identify?service=username&identifier=ann",
            http.base
        ))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_key_order(&identify, &ALIAS_KEYS);
    assert!(!identify.contains("\"auth\""), "{identify}");
    assert_key_order(&identify, &["alias", "socketToken"]);

    let missing = http
        .client
        .get(format!("{}/v1/players/identify", http.base))
        .bearer_auth("talo_demo_full")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        missing,
        r#"{"errors":{"service":["service is missing from the request query"],"identifier":["identifier is missing from the request query"]}}"#
    );

    let refused = http.login("bob", "wrong").await.text().await.unwrap();
    assert_eq!(
        refused,
        r#"{"message":"Incorrect identifier or password","errorCode":"INVALID_CREDENTIALS"}"#
    );

    let mut socket = socket(&server, &http, "talo_demo_full").await;
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": {"playerAliasId": login["alias"]["id"], "socketToken": login["socketToken"], "sessionToken": login["sessionToken"]}}),
    )
    .await;
    let presence = recv_text_of(&mut socket, "v1.players.presence.updated").await;
    assert!(
        presence.starts_with(
            r#"{"res":"v1.players.presence.updated","data":{"presence":{"playerAlias":{"id":"#
        ),
        "{presence}"
    );
    assert_key_order(&presence, &ALIAS_KEYS);
    assert_key_order(
        &presence,
        &["auth", "presence", "online", "customStatus", "updatedAt"],
    );
    assert_key_order(&presence, &ALIAS_TAIL);
    assert_key_order(
        &presence,
        &[
            "online",
            "customStatus",
            "updatedAt",
            "meta",
            "onlineChanged",
            "customStatusChanged",
        ],
    );
    let success = recv_text_of(&mut socket, "v1.players.identify.success").await;
    assert!(
        success.starts_with(r#"{"res":"v1.players.identify.success","data":{"id":"#),
        "{success}"
    );
    assert_key_order(&success, &ALIAS_KEYS);
    assert_key_order(
        &success,
        &[
            "groups",
            "auth",
            "presence",
            "online",
            "customStatus",
            "updatedAt",
        ],
    );
    assert_key_order(&success, &ALIAS_TAIL);
}
