//! Several nodes over one real Redis: each test starts its own `redis-server` on a free
//! loopback port (`.ci/run` installs it) and two or three relaydeck nodes against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::redis::*;
use common::*;
use relaydeck::protocol::admin::Event;
use serde_json::{json, Value};

const CHANNEL: &str = "demo/lobby";
/// Long enough for a heartbeat to lapse and be noticed on a loaded machine, with margin.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(15);

async fn welcomed(server: &TestServer) -> (Socket, String) {
    let mut socket = server.connect("/v1?key=pk_demo").await;
    let welcome = recv_type(&mut socket, "welcome").await;
    (socket, welcome["peerId"].as_str().unwrap().to_owned())
}

/// The next presence frame that names `who` as joined (or left), skipping others.
async fn presence_of(socket: &mut Socket, who: &str, joined: bool) -> Value {
    let field = if joined { "joined" } else { "left" };
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no presence {field} of {who}");
        let frame = recv_json_within(socket, left).await;
        if frame["type"] == "presence"
            && frame[field]
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n == who))
        {
            return frame;
        }
    }
}

async fn subscribe(socket: &mut Socket, channel: &str) {
    send_json(socket, json!({"type":"subscribe","channel":channel})).await;
    recv_type(socket, "ack").await;
}

/// Alice on node a and Bob on node b in one channel, each having seen the other arrive: from
/// then on both nodes' bus subscriptions are known to work.
async fn pair(a: &TestServer, b: &TestServer) -> (Socket, String, Socket, String) {
    let (mut alice, alice_id) = welcomed(a).await;
    subscribe(&mut alice, CHANNEL).await;
    let (mut bob, bob_id) = welcomed(b).await;
    send_json(&mut bob, json!({"type":"subscribe","channel":CHANNEL})).await;
    // Bob learns of Alice from the presence list or a later notice; Alice of Bob by notice.
    presence_of(&mut bob, &alice_id, true).await;
    presence_of(&mut alice, &bob_id, true).await;
    (alice, alice_id, bob, bob_id)
}

async fn recv_json_within(socket: &mut Socket, within: Duration) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(within, socket.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("socket ended")
            .expect("socket error");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// The next frame of `kind`, skipping presence and others.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {kind} frame");
        let frame = recv_json_within(socket, left).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test]
async fn channel_messages_presence_and_direct_sends_cross_nodes() {
    let redis = Redis::start();
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let (mut alice, alice_id, mut bob, bob_id) = pair(&a, &b).await;

    send_json(
        &mut alice,
        json!({"type":"publish","channel":CHANNEL,"data":{"hp":3},"requestId":"p1"}),
    )
    .await;
    assert_eq!(recv_type(&mut alice, "ack").await["requestId"], "p1");
    assert_eq!(
        next_of(&mut bob, "message").await,
        json!({"type":"message","channel":CHANNEL,"from":alice_id,"data":{"hp":3}})
    );

    send_json(
        &mut bob,
        json!({"type":"send","to":alice_id,"data":"psst","requestId":"s1"}),
    )
    .await;
    assert_eq!(next_of(&mut bob, "ack").await["requestId"], "s1");
    let direct = next_of(&mut alice, "direct").await;
    assert_eq!(direct["from"], bob_id.as_str());
    assert_eq!(direct["data"], "psst");

    // A peer on neither node is still not found.
    send_json(
        &mut bob,
        json!({"type":"send","to":"peer-nobody","data":1,"requestId":"s2"}),
    )
    .await;
    let refused = next_of(&mut bob, "error").await;
    assert_eq!(refused["code"], "peer_not_found");

    // Bob leaves the channel: Alice hears it from the other node.
    send_json(&mut bob, json!({"type":"unsubscribe","channel":CHANNEL})).await;
    presence_of(&mut alice, &bob_id, false).await;
}

/// The node list a console of `node` sees, once it names exactly `alive` as live nodes.
async fn nodes_until(
    admin: &mut Admin,
    alive: &[&str],
) -> Vec<relaydeck::protocol::admin::NodeInfo> {
    let event = admin
        .wait_event(|event| match event {
            Event::Nodes { nodes } => {
                let live: Vec<&str> = nodes
                    .iter()
                    .filter(|n| n.alive)
                    .map(|n| n.node_id.as_str())
                    .collect();
                live == alive
            }
            _ => false,
        })
        .await;
    match event {
        Event::Nodes { nodes } => nodes,
        _ => unreachable!(),
    }
}

async fn admin_sees_peers(admin: &mut Admin, node: &str, peers: u64) {
    admin
        .wait_event(|event| {
            matches!(event, Event::Nodes { nodes }
                if nodes.iter().any(|n| n.node_id == node && n.peers == peers))
        })
        .await;
}

#[tokio::test]
async fn a_node_that_shuts_down_or_dies_is_forgotten() {
    let redis = Redis::start();
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut console = a.admin().await;
    let (mut alice, _, _bob, bob_id) = pair(&a, &b).await;
    let nodes = nodes_until(&mut console, &["node-a", "node-b"]).await;
    assert!(nodes
        .iter()
        .any(|n| n.node_id == "node-a" && n.local && n.redis_ok));
    assert!(nodes.iter().any(|n| n.node_id == "node-b" && !n.local));
    // Node b's own heartbeat reports Bob within one heartbeat of his arrival.
    admin_sees_peers(&mut console, "node-b", 1).await;
    // A clean shutdown says goodbye: Bob leaves Alice's channel at once, and the console's
    // node list loses node b.
    b.stop().await;
    presence_of(&mut alice, &bob_id, false).await;
    nodes_until(&mut console, &["node-a"]).await;

    // A node killed outright says nothing: its heartbeat lapses instead.
    let (mut c, addr, _dir) = node_process(&redis, "node-c");
    let (mut carol, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1?key=pk_demo"))
        .await
        .unwrap();
    let welcome = next_of(&mut carol, "welcome").await;
    let carol_id = welcome["peerId"].as_str().unwrap().to_owned();
    send_json(&mut carol, json!({"type":"subscribe","channel":CHANNEL})).await;
    presence_of(&mut alice, &carol_id, true).await;
    c.kill().unwrap();
    c.wait().unwrap();
    presence_of(&mut alice, &carol_id, false).await;
}

/// The answer (`ack` or `error`) to the request `id`, skipping every other frame.
async fn answer_to(socket: &mut Socket, id: &str) -> Value {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no answer to {id}");
        let frame = recv_json_within(socket, left).await;
        if frame["requestId"] == id {
            return frame;
        }
    }
}

/// The channel message carrying `data`, skipping every other frame.
async fn message_with(socket: &mut Socket, data: &str) -> Value {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no message {data}");
        let frame = recv_json_within(socket, left).await;
        if frame["type"] == "message" && frame["data"] == data {
            return frame;
        }
    }
}

/// Whether `socket` receives, within `within`, a channel message whose data starts with
/// `tag`; other frames are skipped.
async fn hears_within(socket: &mut Socket, tag: &str, within: Duration) -> bool {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["type"] == "message"
                    && frame["data"].as_str().is_some_and(|d| d.starts_with(tag))
                {
                    return true;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("the socket ended: {other:?}"),
        }
    }
}

/// What a publish loop waits for.
enum Until {
    /// The publisher is refused: its node knows Redis is gone.
    Refused,
    /// The listener on the other node hears one of the publishes.
    Heard,
}

/// Publishes `{tag}-1`, `{tag}-2`, … on the channel from `from`, each answered before the
/// next, and gives `to` (on another node) 100 ms to hear one, which also paces the tries;
/// until `until`, bounded in count and time. Returns the last publish's data and answer.
async fn publish_until(
    from: &mut Socket,
    to: &mut Socket,
    tag: &str,
    until: Until,
) -> (String, Value) {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    for attempt in 1..=150u32 {
        assert!(
            Instant::now() < deadline,
            "{tag}: gave up after {attempt} publishes"
        );
        let data = format!("{tag}-{attempt}");
        send_json(
            from,
            json!({"type":"publish","channel":CHANNEL,"data":data,"requestId":data}),
        )
        .await;
        let answer = answer_to(from, &data).await;
        match answer["type"].as_str() {
            Some("ack") => {}
            Some("error") => assert_eq!(answer["code"], "backend_error", "{answer}"),
            _ => panic!("not an answer: {answer}"),
        }
        if matches!(until, Until::Refused) && answer["type"] == "error" {
            return (data, answer);
        }
        let heard = hears_within(to, tag, Duration::from_millis(100)).await;
        if matches!(until, Until::Heard) && heard {
            return (data, answer);
        }
    }
    panic!("{tag}: 150 publishes and still not there")
}

/// Follows a console's node list (its snapshot, then its updates) until `node` is alive
/// there, with Redis reachable or not as `redis_ok` says, in a heartbeat written at
/// `since_ms` or later. Bounded by `NOTICE_TIMEOUT`: a node may take a few reconnection tries
/// to find Redis back.
async fn console_sees(console: &mut Admin, node: &str, redis_ok: bool, since_ms: u64) {
    use relaydeck::protocol::admin::{NodeInfo, ServerMessage};
    let says = |nodes: &[NodeInfo]| {
        nodes.iter().any(|n| {
            n.node_id == node && n.alive && n.redis_ok == redis_ok && n.heartbeat_at_ms >= since_ms
        })
    };
    if says(&console.snapshot.nodes) {
        return;
    }
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the console never said {node} has redis_ok {redis_ok}"
        );
        match console.next().await {
            ServerMessage::Delta { seq, event, .. } => {
                console.seq = seq;
                if matches!(&event, Event::Nodes { nodes } if says(nodes)) {
                    return;
                }
            }
            ServerMessage::Snapshot { seq, snapshot } => {
                console.seq = seq;
                console.snapshot = *snapshot;
                if says(&console.snapshot.nodes) {
                    return;
                }
            }
            ServerMessage::Result(_) => {}
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A newcomer's view of the channel, from the list it gets at subscribe and the notices
/// after it, until it names every one of `wanted`; bounded in time.
async fn presence_reaches(socket: &mut Socket, wanted: &[&str]) {
    send_json(socket, json!({"type":"subscribe","channel":CHANNEL})).await;
    let mut here = std::collections::BTreeSet::new();
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    while !wanted.iter().all(|w| here.contains(*w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "presence never named {wanted:?}, only {here:?}"
        );
        let frame = recv_json_within(socket, left).await;
        if frame["type"] != "presence" {
            continue;
        }
        let names = |field: &str| -> Vec<String> {
            frame[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        here.extend(names("joined"));
        for gone in names("left") {
            here.remove(&gone);
        }
    }
}

fn dropped_across(metrics: &str, node: &str) -> u64 {
    let prefix = format!("relaydeck_cluster_dropped_total{{node=\"{node}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
}

/// Redis goes away and comes back under two nodes. Meanwhile each node's peers keep talking,
/// a publish or `send` that other nodes should have had is answered `backend_error` (with
/// its requestId) instead of a silent ack, and a console attached during the outage shows the
/// nodes losing Redis and getting it back. Afterwards, without any client reconnecting,
/// messages cross both ways and what node b's clients did meanwhile is known on node a.
#[tokio::test]
async fn local_traffic_flows_without_redis_and_the_cluster_heals_when_it_returns() {
    let mut redis = Redis::start();
    let port = redis.port;
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let (mut alice, _, mut bob, bob_id) = pair(&a, &b).await;
    let (mut carol, carol_id) = welcomed(&a).await;
    subscribe(&mut carol, CHANNEL).await;
    presence_of(&mut alice, &carol_id, true).await;

    let up = metrics(&a).await;
    assert!(
        up.contains("relaydeck_cluster_redis_up{node=\"node-a\"} 1"),
        "{up}"
    );

    redis.kill();
    // Node a notices when its bus subscription drops or a heartbeat fails; until then its
    // publishes are acked (and lost for Bob). Once it knows, Alice is told.
    let (refused, answer) = publish_until(&mut alice, &mut bob, "out", Until::Refused).await;
    assert_eq!(
        answer,
        json!({"type":"error","requestId":refused,"code":"backend_error","message":"backend error"})
    );
    // Carol shares node a: the refused message reached her all the same.
    assert_eq!(message_with(&mut carol, &refused).await["channel"], CHANNEL);
    let down = metrics(&a).await;
    assert!(
        down.contains("relaydeck_cluster_redis_up{node=\"node-a\"} 0"),
        "{down}"
    );
    assert!(dropped_across(&down, "node-a") >= 1, "{down}");

    // A console attached during the outage says node a has lost Redis.
    let mut console_a = a.admin().await;
    console_sees(&mut console_a, "node-a", false, 0).await;

    // Carol is refused likewise (Bob is in the channel on node b), and Alice hears her.
    send_json(
        &mut carol,
        json!({"type":"publish","channel":CHANNEL,"data":"local","requestId":"c1"}),
    )
    .await;
    assert_eq!(next_of(&mut alice, "message").await["data"], "local");
    assert_eq!(answer_to(&mut carol, "c1").await["code"], "backend_error");

    // A channel with no member on another node loses nothing: acked.
    subscribe(&mut carol, "demo/side").await;
    send_json(
        &mut alice,
        json!({"type":"publish","channel":"demo/side","data":"aside","requestId":"side-1"}),
    )
    .await;
    assert_eq!(
        answer_to(&mut alice, "side-1").await,
        json!({"type":"ack","requestId":"side-1"})
    );
    assert_eq!(
        message_with(&mut carol, "aside").await["channel"],
        "demo/side"
    );

    // A direct send to a peer of node a is delivered; to Bob, on node b, it is refused.
    send_json(
        &mut alice,
        json!({"type":"send","to":carol_id,"data":"psst","requestId":"d1"}),
    )
    .await;
    assert_eq!(answer_to(&mut alice, "d1").await["type"], "ack");
    assert_eq!(next_of(&mut carol, "direct").await["data"], "psst");
    send_json(
        &mut alice,
        json!({"type":"send","to":bob_id,"data":"psst","requestId":"d2"}),
    )
    .await;
    assert_eq!(
        answer_to(&mut alice, "d2").await,
        json!({"type":"error","requestId":"d2","code":"backend_error","message":"backend error"})
    );

    // Once node b knows too, Frank arrives there and joins the channel: node a cannot hear
    // of it until Redis returns.
    let mut console_b = b.admin().await;
    console_sees(&mut console_b, "node-b", false, 0).await;
    let (mut frank, frank_id) = welcomed(&b).await;
    subscribe(&mut frank, CHANNEL).await;

    let restarted = now_ms();
    let _redis = Redis::start_on(port);
    // The same console shows both nodes' fresh heartbeats with Redis back.
    console_sees(&mut console_a, "node-a", true, restarted).await;
    console_sees(&mut console_a, "node-b", true, restarted).await;
    // The first publishes may still be lost while the nodes resubscribe; keep trying, bounded.
    publish_until(&mut alice, &mut bob, "again", Until::Heard).await;
    publish_until(&mut bob, &mut alice, "back", Until::Heard).await;
    // Node a learns of Frank: Carol hears him join, a newcomer finds Bob and Frank in the
    // channel, and Alice's direct send reaches Frank on node b.
    presence_of(&mut carol, &frank_id, true).await;
    let (mut erin, _) = welcomed(&a).await;
    presence_reaches(&mut erin, &[bob_id.as_str(), frank_id.as_str()]).await;
    send_json(
        &mut alice,
        json!({"type":"send","to":frank_id,"data":"welcome","requestId":"d3"}),
    )
    .await;
    assert_eq!(
        answer_to(&mut alice, "d3").await,
        json!({"type":"ack","requestId":"d3"})
    );
    assert_eq!(next_of(&mut frank, "direct").await["data"], "welcome");
}

#[tokio::test]
async fn a_second_node_with_a_live_nodes_name_is_refused() {
    let redis = Redis::start();
    let _a = node(&redis, "node-a").await;
    let data = tempfile::tempdir().unwrap();
    // The first node's heartbeat is written within one heartbeat (100 ms) of starting.
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    let error = loop {
        let attempt = relaydeck::server::Server::bind(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            node_config(&redis, "node-a"),
            relaydeck::server::ServerOptions {
                data_dir: data.path().to_path_buf(),
                admin_token: None,
                admin_buffer: None,
                readonly: false,
            },
        )
        .await;
        match attempt {
            Err(e) => break e.to_string(),
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "a duplicate node id was accepted"
                );
                // Polling a state that announces nothing: once per heartbeat.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(error.contains("already live"), "{error}");
}

/// A console on node a sees node b's players, named by node, and kicks one of them: node b
/// closes it with 4020, and the close reaches the console from node b.
#[tokio::test]
async fn a_console_on_one_node_sees_and_kicks_the_peers_of_another() {
    use relaydeck::protocol::admin::Command;
    let redis = Redis::start();
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut console = a.admin().await;
    let (_alice, _, mut bob, bob_identity) = pair(&a, &b).await;
    let connected = console
        .wait_event(|event| {
            matches!(event, Event::PeerConnected { peer }
                if peer.identity.as_deref() == Some(bob_identity.as_str()))
        })
        .await;
    let Event::PeerConnected { peer: bob_info } = connected else {
        unreachable!()
    };
    assert_eq!(bob_info.node.as_deref(), Some("node-b"));
    assert!(bob_info.id.starts_with("node-b.p"), "{}", bob_info.id);

    // A console that connects later finds Bob in its snapshot.
    let late = a.admin().await;
    assert!(
        late.snapshot.peers.iter().any(|p| p.id == bob_info.id),
        "{:?}",
        late.snapshot.peers
    );

    // Node b answers for its own peer's flight recorder.
    let frames = console
        .command(Command::Frames {
            peer: bob_info.id.clone(),
        })
        .await;
    assert!(frames.ok, "{}", frames.message);
    let data = frames.data.expect("frames carry data");
    assert!(
        data["frames"].as_array().is_some_and(|f| !f.is_empty()),
        "{data}"
    );

    let result = console
        .command(Command::Kick {
            peer: bob_info.id.clone(),
            reason: Some("griefing".into()),
        })
        .await;
    assert!(result.ok, "{}", result.message);
    assert!(result.message.contains("node node-b"), "{}", result.message);
    assert_eq!(
        recv_ending(&mut bob).await,
        Ending::Close(4020, "admin_disconnect".to_owned())
    );
    console
        .wait_event(|event| {
            matches!(event, Event::PeerClosed { peer, code: Some(4020), .. } if *peer == bob_info.id)
        })
        .await;

    // A peer id of node b that node b never had is refused, not sent.
    let refused = console
        .command(Command::Kick {
            peer: "node-b.p999".into(),
            reason: None,
        })
        .await;
    assert!(!refused.ok);
}

/// An operator suspends an app on node a: node b closes its live peers of that app with the
/// dialect's code, its console says which node acted, and a node that starts later refuses
/// the app from the start (Redis keeps the status).
#[tokio::test]
async fn an_app_suspended_on_one_node_is_suspended_on_every_node() {
    use relaydeck::protocol::admin::{AppStatus, Command};
    let redis = Redis::start();
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut console_b = b.admin().await;
    let (_alice, _, mut bob, _) = pair(&a, &b).await;
    let mut console_a = a.admin().await;
    let result = console_a
        .command(Command::SetAppStatus {
            app: "demo".into(),
            status: AppStatus::Suspended,
        })
        .await;
    assert!(result.ok, "{}", result.message);
    let Ending::Close(code, _) = recv_ending(&mut bob).await else {
        panic!("Bob's connection dropped without a close")
    };
    assert_eq!(code, 4012);
    let changed = console_b
        .wait_event(|event| matches!(event, Event::AppStatusChanged { app, .. } if app == "demo"))
        .await;
    let Event::AppStatusChanged { status, by, .. } = changed else {
        unreachable!()
    };
    assert_eq!(status, AppStatus::Suspended);
    assert!(by.ends_with("on node-a"), "{by}");

    let c = node(&redis, "node-c").await;
    // Node c adopts the stored status as it joins the bus; its console's snapshot may come
    // before that, so wait for the change rather than read the snapshot.
    let mut console_c = c.admin().await;
    if console_c
        .snapshot
        .apps
        .iter()
        .any(|app| app.id == "demo" && app.status != AppStatus::Suspended)
    {
        console_c
            .wait_event(|event| {
                matches!(event, Event::AppStatusChanged { app, status: AppStatus::Suspended, .. } if app == "demo")
            })
            .await;
    }
    let mut refused = c.connect("/v1?key=pk_demo").await;
    let Ending::Close(code, _) = recv_ending(&mut refused).await else {
        panic!("node c dropped the connection without a close")
    };
    assert_eq!(code, 4012);
}
