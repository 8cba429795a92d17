//! The proxy in front of the dialects other than Signal Fish (pub/sub, Flow, Talo over its
//! socket and its HTTP API), and the `relaydeck proxy` command itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::proxy::*;
use common::*;
use relaydeck::catalog::{self, Dialect};
use relaydeck::protocol::admin::Event;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn error_frames_of_the_other_dialects_are_decoded_error_deltas() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;

    let mut pubsub = proxy.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut pubsub, "welcome").await;
    let updated = admin
        .wait_event(|e| matches!(e, Event::PeerUpdated { peer } if peer.identity.is_some()))
        .await;
    let Event::PeerUpdated { peer } = updated else {
        unreachable!()
    };
    assert_eq!(peer.identity.as_deref(), welcome["peerId"].as_str());
    assert_eq!(peer.app.as_deref(), Some("demo"));
    send_json(
        &mut pubsub,
        json!({"type": "publish", "channel": "elsewhere/a", "data": 1}),
    )
    .await;
    let error = recv_type(&mut pubsub, "error").await;
    let sent = error["code"].as_str().unwrap().to_owned();
    let Event::ErrorEmitted { code, dialect, .. } = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!((code.as_str(), dialect), (sent.as_str(), Dialect::Pubsub));
    assert!(catalog::sent(Dialect::Pubsub, &code).is_some(), "{code}");
    close_and_drain(&mut pubsub).await;

    // Flow: the upstream's credential passes through the proxy in `Authorization`.
    let mut flow = proxy.connect_bearer("/v1/ws", &upstream.token).await;
    send_json(
        &mut flow,
        json!({"subscription_id": "s1", "action": "subscribe", "topic": "no_such_topic"}),
    )
    .await;
    let answer = recv_json(&mut flow).await;
    assert!(answer.get("error").is_some(), "{answer}");
    let Event::ErrorEmitted { dialect, frame, .. } = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::Flow);
    assert!(frame.contains("s1"), "{frame}");
    close_and_drain(&mut flow).await;
}

#[tokio::test]
async fn a_talo_player_identifies_through_the_proxys_http_and_socket() {
    let upstream = TestServer::demo().await;
    let proxy = proxy_to(&upstream.url("")).await;
    let mut admin = proxy.admin().await;
    let http = reqwest::Client::new();
    let post_ticket = http
        .post(proxy.http("/v1/socket-tickets"))
        .bearer_auth("talo_demo_full")
        .send();
    let ticket: Value = tokio::time::timeout(RECEIVE_TIMEOUT, post_ticket)
        .await
        .expect("no ticket before the timeout")
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let mut socket = proxy.connect(&format!("/?ticket={ticket}")).await;
    assert_eq!(
        recv_json(&mut socket).await,
        json!({"res": "v1.connected", "data": {}})
    );
    let identify = http
        .get(proxy.http("/v1/players/identify?service=username&identifier=alice"))
        .bearer_auth("talo_demo_full")
        .send();
    let identity: Value = tokio::time::timeout(RECEIVE_TIMEOUT, identify)
        .await
        .expect("no identity before the timeout")
        .unwrap()
        .json()
        .await
        .unwrap();
    send_json(
        &mut socket,
        json!({"req": "v1.players.identify", "data": {"playerAliasId": identity["alias"]["id"], "socketToken": identity["socketToken"]}}),
    )
    .await;
    loop {
        let frame = recv_json(&mut socket).await;
        if frame["res"] == "v1.players.identify.success" {
            break;
        }
    }
    let Event::PeerUpdated { peer } = admin
        .wait_event(|e| matches!(e, Event::PeerUpdated { peer } if peer.identity.is_some()))
        .await
    else {
        unreachable!()
    };
    assert_eq!(peer.dialect, Dialect::Talo);
    assert_eq!(peer.identity.as_deref(), Some("alice (username)"));
    close_and_drain(&mut socket).await;

    // An HTTP refusal from the upstream is an error delta too.
    let refused = http
        .post(proxy.http("/v1/socket-tickets"))
        .bearer_auth("not_a_key")
        .send();
    let refused = tokio::time::timeout(RECEIVE_TIMEOUT, refused)
        .await
        .expect("no answer before the timeout")
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let Event::ErrorEmitted { dialect, frame, .. } = admin
        .wait_event(|e| matches!(e, Event::ErrorEmitted { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(dialect, Dialect::TaloHttp);
    assert!(frame.starts_with("401 "), "{frame}");
}

#[tokio::test]
async fn the_proxy_command_says_where_it_listens_and_refuses_to_run_without_an_upstream() {
    let data = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_relaydeck");
    let refused = tokio::process::Command::new(bin)
        .arg("--data-dir")
        .arg(data.path())
        .args(["proxy", "--listen", "127.0.0.1:0"])
        .output();
    let refused = tokio::time::timeout(EVENT_TIMEOUT, refused)
        .await
        .expect("the proxy did not exit")
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("give --upstream"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let mut child = tokio::process::Command::new(bin)
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "proxy",
            "--upstream",
            "ws://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    while said.len() < 3 {
        let line = tokio::time::timeout(EVENT_TIMEOUT, lines.next_line())
            .await
            .expect("the proxy said nothing")
            .unwrap()
            .expect("the proxy exited");
        said.push(line);
    }
    assert!(said[0].starts_with("listening on 127.0.0.1:"), "{said:?}");
    assert!(said[1].contains("to ws://127.0.0.1:9"), "{said:?}");
    assert!(said[2].contains("admin token in"), "{said:?}");
    child.kill().await.unwrap();
}
