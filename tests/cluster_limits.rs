//! An app's connection limit and message quota count every node of a cluster, as fresh as the
//! nodes' heartbeats. Each test starts its own `redis-server` on a free loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::redis::*;
use common::*;
use relaydeck::protocol::admin::Event;
use serde_json::json;

/// `limited-app` in the demo config: 2 connections, 3 messages an hour.
const LIMITED: &str = "/v1?key=pk_limited";
const CHANNEL: &str = "limited/room";

/// Wait until `console`'s node has read a heartbeat of `other` written after `after_ms`: from
/// then on its limits count what `other` had at that moment.
async fn heard_from_since(console: &mut Admin, other: &str, after_ms: u64) {
    console
        .wait_event(|event| {
            matches!(event, Event::Nodes { nodes }
                if nodes.iter().any(|n| n.node_id == other && n.heartbeat_at_ms > after_ms))
        })
        .await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn welcomed(server: &TestServer) -> Socket {
    let mut socket = server.connect(LIMITED).await;
    recv_type(&mut socket, "welcome").await;
    socket
}

#[tokio::test]
async fn an_apps_connection_limit_counts_its_peers_on_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut console = a.admin().await;
    let _first = welcomed(&a).await;
    let _second = welcomed(&b).await;
    heard_from_since(&mut console, "b", now_ms()).await;

    // One on each node: the app's two connections are taken, and node a knows it.
    let mut third = a.connect(LIMITED).await;
    let (code, _) = recv_close(&mut third).await;
    assert_eq!(code, 4010, "over_concurrent_limit across the cluster");
}

#[tokio::test]
async fn an_apps_message_quota_counts_its_messages_on_every_node() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut console = b.admin().await;
    let mut alice = welcomed(&a).await;
    let mut bob = welcomed(&b).await;
    for n in 0..2 {
        send_json(
            &mut alice,
            json!({"type":"publish","channel":CHANNEL,"data":n,"requestId":format!("a{n}")}),
        )
        .await;
        recv_type(&mut alice, "ack").await;
    }
    heard_from_since(&mut console, "a", now_ms()).await;

    // Two of the three spent on node a: node b lets one more through, then refuses.
    send_json(
        &mut bob,
        json!({"type":"publish","channel":CHANNEL,"data":"b0","requestId":"b0"}),
    )
    .await;
    recv_type(&mut bob, "ack").await;
    send_json(
        &mut bob,
        json!({"type":"publish","channel":CHANNEL,"data":"b1","requestId":"b1"}),
    )
    .await;
    let refused = recv_type(&mut bob, "error").await;
    assert_eq!(refused["code"], "over_message_quota", "{refused}");
    assert_eq!(refused["requestId"], "b1", "{refused}");
}
