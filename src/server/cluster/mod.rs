//! Several relaydeck nodes over one Redis: `serve --cluster redis://… --node-id NAME`.
//!
//! Without a `cluster` setting nothing here runs and the server is one process with no Redis.
//! With it, each node keeps its own peers, and Redis carries what crosses nodes, the way
//! Centrifugo and the Socket.IO Redis adapter scale out through a broker they do not own:
//!
//! | Redis | what |
//! |---|---|
//! | `{prefix}:node:{id}` (string, TTL `node_timeout_ms`) | a node's heartbeat: [`NodeStatus`] as JSON, refreshed every `heartbeat_ms` |
//! | `{prefix}:nodes` (set) | every node that ever joined and has not been cleaned up |
//! | `{prefix}:bus` (pub/sub) | [`Envelope`]s for every node |
//! | `{prefix}:to:{id}` (pub/sub) | [`Envelope`]s for one node |
//!
//! A node that stops refreshing its heartbeat is noticed by the others within
//! `node_timeout_ms` plus one heartbeat: they forget it (each dialect lets go of what it kept
//! of that node: pub/sub presence listeners hear its peers leave, tunnels through it are cut)
//! and remove it from the set.
//!
//! Each node mirrors what the others announce (their peers and rooms as the consoles see
//! them, in [`mirror`]; each dialect keeps what it needs of the others itself), so a request
//! that needs cluster-wide state is answered from memory without a Redis round trip on the
//! request's path. A node that joins, or that gets Redis back after losing it, asks the
//! others to announce everything again.
//!
//! What crosses nodes: the dialects' messages, which this link carries for the
//! [`crate::server::broker`] without reading them (each dialect registers its handler there);
//! every node's peers, rooms and errors for the consoles (and the Flow streams, which read
//! the same deltas); admin commands; app statuses; each node's app usage, so that connection
//! limits and quotas count every node; the node list with liveness.
//!
//! | Redis | what |
//! |---|---|
//! | `{prefix}:rooms` (hash) | Signal Fish room code → the node holding the room ([`rooms`]) |
//! | `{prefix}:apps` (hash) | app id → the status an operator set |
//!
//! # Where things live
//! | file | what |
//! |---|---|
//! | `settings.rs` | the `cluster` config key, node ids, Redis URLs without passwords, the bounds on what other nodes announce |
//! | `mod.rs` | the Redis link (publisher, subscriber), liveness (heartbeat, forgetting a node), remote commands |
//! | `bus.rs` | the envelopes nodes exchange about membership and state, and what a node does with one |
//! | `mirror.rs` | the other nodes' peers and rooms as the consoles see them |
//! | `rooms.rs` | room codes claimed in Redis: which node holds a room |
//! | `outage.rs` | whether a message can cross now |

pub mod bus;
pub mod mirror;
pub mod outage;
pub mod rooms;
pub mod settings;

pub use self::settings::{limits, redact, valid_node_id, ClusterSettings};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use self::bus::{Body, Envelope};
use self::settings::open_client;
use crate::clock::now_ms;
use crate::protocol::admin::{AppStatus, CommandEnvelope, CommandResult, NodeInfo};
use crate::server::broker::{Handlers, Link, Target};
use crate::server::Shared;

/// Messages waiting for Redis at most, and their bytes; beyond either, cross-node traffic is
/// dropped and counted rather than held in memory while Redis is slow or away.
const OUTGOING_CAPACITY: usize = 65_536;
const OUTGOING_BYTES: usize = 64 << 20;
/// How long an admin command sent to another node waits for its answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// What a node says about itself in its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: String,
    /// The address its clients connect to.
    pub listen: String,
    pub started_at_ms: u64,
    pub heartbeat_at_ms: u64,
    pub peers: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub errors: u64,
    /// False while the node cannot reach Redis (it says so once it can again).
    pub redis_ok: bool,
    /// Its apps' connections and quota use: limits and quotas count every node.
    #[serde(default)]
    pub usage: crate::server::hub::AppUsage,
}

impl NodeStatus {
    /// As this node saw it: `alive` when its heartbeat key was present, `local` for itself.
    fn seen(self, alive: bool, local: bool) -> NodeInfo {
        NodeInfo {
            node_id: self.node_id,
            listen: self.listen,
            started_at_ms: self.started_at_ms,
            heartbeat_at_ms: self.heartbeat_at_ms,
            peers: self.peers,
            frames_in: self.frames_in,
            frames_out: self.frames_out,
            errors: self.errors,
            redis_ok: self.redis_ok,
            alive,
            local,
        }
    }
}

struct Keys {
    nodes: String,
    bus: String,
    /// App statuses set by operators, app id → status: what a node that starts applies.
    apps: String,
    /// Signal Fish room code → the node holding the room.
    rooms: String,
    prefix: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            nodes: format!("{prefix}:nodes"),
            bus: format!("{prefix}:bus"),
            apps: format!("{prefix}:apps"),
            rooms: format!("{prefix}:rooms"),
            prefix: prefix.to_owned(),
        }
    }

    fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }

    fn inbox(&self, id: &str) -> String {
        format!("{}:to:{id}", self.prefix)
    }
}

impl Outgoing {
    /// The bytes a message holds that a client chose: relayed frames. The rest is small.
    fn weight(&self) -> usize {
        match self {
            Outgoing::Everyone(_, weight) | Outgoing::Node(_, _, weight) => *weight,
            Outgoing::AppStatus { .. } | Outgoing::Release(_) => 0,
        }
    }
}

/// Where an outgoing envelope goes, with the weight its sender gave it.
enum Outgoing {
    Everyone(Body, usize),
    Node(String, Body, usize),
    /// Store an app's status in Redis, then tell every node.
    AppStatus {
        app: String,
        status: AppStatus,
        by: String,
    },
    /// Free a room code this node held (only if it still names this node).
    Release(String),
}

/// This node's link to the cluster. Cheap to call from a connection's handler: sending only
/// queues for the publisher task.
pub struct Cluster {
    pub node_id: String,
    settings: ClusterSettings,
    keys: Keys,
    client: redis::Client,
    outgoing: mpsc::Sender<Outgoing>,
    outgoing_rx: std::sync::Mutex<Option<mpsc::Receiver<Outgoing>>>,
    redis_ok: AtomicBool,
    dropped: AtomicU64,
    published: AtomicU64,
    round_trips: AtomicU64,
    /// Bytes of relayed frames waiting in `outgoing`.
    queued_bytes: std::sync::atomic::AtomicUsize,
    nodes: RwLock<BTreeMap<String, NodeInfo>>,
    /// The nodes that announced their state since they were last forgotten.
    announced: std::sync::Mutex<BTreeSet<String>>,
    /// Commands sent to other nodes, waiting for their answers.
    asked: std::sync::Mutex<HashMap<u64, oneshot::Sender<CommandResult>>>,
    next_request: AtomicU64,
    /// Requests whose answer a player waits for (room lookups and claims); it reconnects
    /// on its own after Redis comes back.
    commands: ConnectionManager,
}

impl Cluster {
    /// Reach Redis once, so that a wrong URL fails `serve` with a clear error instead of a
    /// node that silently runs alone.
    pub async fn connect(settings: &ClusterSettings) -> anyhow::Result<Arc<Cluster>> {
        let (Some(url), Some(node_id)) = (&settings.redis, &settings.node_id) else {
            anyhow::bail!("cluster.redis and cluster.node_id are both required");
        };
        // Errors name Redis without the password a URL may carry.
        let url = &redact(url);
        let client = open_client(settings.redis.as_deref().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("cluster.redis {url}: {e}"))?;
        let mut probe = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach Redis at {url}: timed out after 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot reach Redis at {url}: {e}"))?;
        let keys = Keys::new(&settings.prefix);
        let existing: Option<String> = probe
            .get(keys.node(node_id))
            .await
            .map_err(|e| anyhow::anyhow!("cannot read from Redis at {url}: {e}"))?;
        if existing.is_some() {
            anyhow::bail!(
                "node id {node_id:?} is already live in this cluster (its heartbeat key {} exists); \
                 choose another --node-id, or wait {} ms for it to expire",
                keys.node(node_id),
                settings.node_timeout_ms
            );
        }
        let commands =
            tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
                .await
                .map_err(|_| anyhow::anyhow!("cannot reach Redis at {url}: timed out after 5 s"))?
                .map_err(|e| anyhow::anyhow!("cannot reach Redis at {url}: {e}"))?;
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_CAPACITY);
        Ok(Arc::new(Cluster {
            commands,
            node_id: node_id.clone(),
            settings: settings.clone(),
            keys,
            client,
            outgoing,
            outgoing_rx: std::sync::Mutex::new(Some(outgoing_rx)),
            redis_ok: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            published: AtomicU64::new(0),
            round_trips: AtomicU64::new(0),
            queued_bytes: std::sync::atomic::AtomicUsize::new(0),
            nodes: RwLock::new(BTreeMap::new()),
            announced: std::sync::Mutex::new(BTreeSet::new()),
            asked: std::sync::Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        }))
    }

    /// Start the heartbeat, the subscriber and the publisher. They hold the server weakly and
    /// end when it is gone.
    pub fn start(self: &Arc<Self>, shared: &Arc<Shared>) -> Vec<tokio::task::JoinHandle<()>> {
        let receiver = self
            .outgoing_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let forwarding = Arc::clone(self);
        shared.hub.forward_events(Box::new(move |event| {
            if let crate::protocol::admin::Event::RoomClosed { code } = event {
                forwarding.release_room(code);
            }
            forwarding.broadcast(Body::Admin {
                event: event.clone(),
            })
        }));
        let mut tasks = Vec::new();
        if let Some(receiver) = receiver {
            tasks.push(tokio::spawn(publisher(
                Arc::clone(self),
                receiver,
                Arc::clone(shared.broker.handlers()),
            )));
        }
        tasks.push(tokio::spawn(heartbeat(
            Arc::clone(self),
            Arc::downgrade(shared),
        )));
        tasks.push(tokio::spawn(subscriber(
            Arc::clone(self),
            Arc::downgrade(shared),
        )));
        tasks
    }

    /// Leave the cluster at shutdown: say goodbye and take the heartbeat down, so that the
    /// other nodes forget this one at once. Bounded: a Redis that does not answer is left
    /// to expire the heartbeat.
    pub async fn leave(&self) {
        let goodbye = serde_json::to_string(&self.envelope(Body::Goodbye)).unwrap_or_default();
        let leaving = async {
            let mut conn = self.client.get_multiplexed_async_connection().await?;
            let _: () = redis::pipe()
                .publish(&self.keys.bus, goodbye)
                .ignore()
                .del(self.keys.node(&self.node_id))
                .ignore()
                .srem(&self.keys.nodes, &self.node_id)
                .ignore()
                .query_async(&mut conn)
                .await?;
            redis::RedisResult::Ok(())
        };
        if tokio::time::timeout(Duration::from_secs(1), leaving)
            .await
            .is_err()
        {
            tracing::warn!(node = %self.node_id, "could not leave the cluster cleanly: Redis did not answer");
        }
    }

    /// Whether Redis answered the last time this node spoke to it.
    pub fn redis_ok(&self) -> bool {
        self.redis_ok.load(Ordering::Relaxed)
    }

    /// Messages published to Redis, and the pipelines (round trips) that carried them.
    pub fn publish_counts(&self) -> (u64, u64) {
        (
            self.published.load(Ordering::Relaxed),
            self.round_trips.load(Ordering::Relaxed),
        )
    }

    /// Envelopes dropped because Redis was away or slow.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// An operator changed an app's status on this node: Redis keeps it for nodes that start
    /// later, and every node applies it.
    pub fn set_app_status(&self, app: &str, status: AppStatus, by: &str) {
        self.queue(Outgoing::AppStatus {
            app: app.to_owned(),
            status,
            by: by.to_owned(),
        });
    }

    /// Have another node run an admin command and wait (bounded) for its answer, which keeps
    /// the command's own id.
    pub async fn ask(&self, node: &str, envelope: CommandEnvelope, by: &str) -> CommandResult {
        let id = envelope.id;
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request, answer);
        self.tell(
            node,
            Body::Command {
                request,
                envelope,
                by: by.to_owned(),
            },
        );
        let outcome = tokio::time::timeout(ASK_TIMEOUT, answered).await;
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request);
        match outcome {
            Ok(Ok(mut result)) => {
                result.id = id;
                result.message = format!("node {node}: {}", result.message);
                result
            }
            _ => CommandResult {
                id,
                ok: false,
                message: format!(
                    "node {node} did not answer within {} s; it may be gone, or Redis away",
                    ASK_TIMEOUT.as_secs()
                ),
                data: None,
            },
        }
    }

    /// Another node answered request `request`.
    pub fn answered(&self, request: u64, result: CommandResult) {
        let waiting = self
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&request);
        if let Some(waiting) = waiting {
            let _ = waiting.send(result);
        }
    }

    /// To every other node.
    pub fn broadcast(&self, body: Body) {
        self.queue(Outgoing::Everyone(body, 0));
    }

    /// The node holding a peer, from its id (`node.pN`), when that is another node.
    pub fn node_of_peer<'a>(&self, peer: &'a str) -> Option<&'a str> {
        peer.rsplit_once('.')
            .map(|(node, _)| node)
            .filter(|node| *node != self.node_id)
    }

    /// To one node.
    pub fn tell(&self, node: &str, body: Body) {
        self.queue(Outgoing::Node(node.to_owned(), body, 0));
    }

    /// `node` announced its state: it is known until forgotten. Bounded like the mirrors.
    fn announced(&self, node: &str) {
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        if announced.len() < limits::REMOTE_NODES {
            announced.insert(node.to_owned());
        }
    }

    fn announced_nodes(&self) -> Vec<String> {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn queue(&self, message: Outgoing) {
        let bytes = message.weight();
        if self.queued_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes > OUTGOING_BYTES
            || self.outgoing.try_send(message).is_err()
        {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn set_redis_ok(&self, ok: bool) -> bool {
        let was = self.redis_ok.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                tracing::info!(node = %self.node_id, "Redis reachable again");
            } else {
                tracing::warn!(node = %self.node_id, "Redis unreachable: cross-node traffic is dropped until it returns");
            }
        }
        was
    }

    fn envelope(&self, body: Body) -> Envelope {
        Envelope {
            from: self.node_id.clone(),
            body,
        }
    }
}

/// The dialects' messages ride the bus as [`Body::Published`], weighed like the rest of the
/// queue.
impl Link for Cluster {
    fn send(
        &self,
        target: Target<'_>,
        namespace: &'static str,
        message: serde_json::Value,
        weight: usize,
    ) {
        let body = Body::Published {
            namespace: namespace.to_owned(),
            message,
        };
        self.queue(match target {
            Target::Others => Outgoing::Everyone(body, weight),
            Target::Node(node) => Outgoing::Node(node.to_owned(), body, weight),
        });
    }

    fn can_cross(&self) -> bool {
        Cluster::can_cross(self)
    }

    fn note_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Deletes a room claim only while it still names the node releasing it: a code freed and
/// claimed again by another node in between stays with the new holder.
const RELEASE_IF_OURS: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end";

/// Claims of a node that is gone, deleted by whichever node notices first.
const RELEASE_NODE: &str = "local all = redis.call('HGETALL', KEYS[1]) local n = 0 for i = 1, #all, 2 do if all[i + 1] == ARGV[1] then n = n + redis.call('HDEL', KEYS[1], all[i]) end end return n";

/// Messages sent to Redis in one pipeline: one round trip for everything queued meanwhile.
const PUBLISH_BATCH: usize = 256;

/// Drains the outgoing queue into Redis, in order: whatever queued while the previous batch
/// was on its way goes in one pipeline, so cross-node traffic costs a round trip per batch,
/// not per message.
async fn publisher(
    cluster: Arc<Cluster>,
    mut receiver: mpsc::Receiver<Outgoing>,
    handlers: Arc<Handlers>,
) {
    let mut connection: Option<ConnectionManager> = None;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        if receiver.recv_many(&mut batch, PUBLISH_BATCH).await == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        let mut messages = 0u64;
        // Consecutive messages for one channel travel as one publish: Redis and the receiving
        // node handle one message instead of many, in the same order.
        let mut run: Option<(String, Vec<Body>)> = None;
        let publish = |pipe: &mut redis::Pipeline, (channel, bodies): (String, Vec<Body>)| {
            let mut bodies = coalesce(&handlers, bodies);
            let body = if bodies.len() == 1 {
                bodies.pop()
            } else {
                Some(Body::Batch { bodies })
            };
            if let Some(Ok(text)) = body.map(|b| serde_json::to_string(&cluster.envelope(b))) {
                pipe.publish(channel, text).ignore();
            }
        };
        for message in batch.drain(..) {
            cluster
                .queued_bytes
                .fetch_sub(message.weight(), Ordering::AcqRel);
            let (channel, body) = match message {
                Outgoing::Release(code) => {
                    if let Some(pending) = run.take() {
                        publish(&mut pipe, pending);
                    }
                    pipe.cmd("EVAL")
                        .arg(RELEASE_IF_OURS)
                        .arg(1)
                        .arg(&cluster.keys.rooms)
                        .arg(&code)
                        .arg(&cluster.node_id)
                        .ignore();
                    continue;
                }
                Outgoing::Everyone(body, _) => (cluster.keys.bus.clone(), body),
                Outgoing::Node(node, body, _) => (cluster.keys.inbox(&node), body),
                Outgoing::AppStatus { app, status, by } => {
                    if let Some(pending) = run.take() {
                        publish(&mut pipe, pending);
                    }
                    pipe.hset(&cluster.keys.apps, &app, status.id()).ignore();
                    (
                        cluster.keys.bus.clone(),
                        // The receiving node adds where it came from: see `bus::remote_operator`.
                        Body::AppStatus { app, status, by },
                    )
                }
            };
            messages += 1;
            match &mut run {
                Some((current, bodies)) if *current == channel => bodies.push(body),
                _ => {
                    if let Some(pending) = run.replace((channel, vec![body])) {
                        publish(&mut pipe, pending);
                    }
                }
            }
        }
        if let Some(pending) = run.take() {
            publish(&mut pipe, pending);
        }
        if connection.is_none() {
            connection = cluster.client.get_connection_manager().await.ok();
        }
        let Some(conn) = connection.as_mut() else {
            cluster.set_redis_ok(false);
            cluster.dropped.fetch_add(messages, Ordering::Relaxed);
            continue;
        };
        let sent: redis::RedisResult<()> = pipe.query_async(conn).await;
        if sent.is_err() {
            cluster.set_redis_ok(false);
            cluster.dropped.fetch_add(messages, Ordering::Relaxed);
        } else {
            cluster.published.fetch_add(messages, Ordering::Relaxed);
            cluster.round_trips.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One publish's messages with each run of one namespace's messages coalesced by its handler
/// (a room's relay to several players of one node travels once, see
/// [`Handler::coalesce`](crate::server::broker::Handler::coalesce)).
fn coalesce(handlers: &Handlers, bodies: Vec<Body>) -> Vec<Body> {
    if bodies.len() < 2 {
        return bodies;
    }
    let mut out = Vec::with_capacity(bodies.len());
    let mut run: Option<(String, Vec<serde_json::Value>)> = None;
    let flush = |out: &mut Vec<Body>, (namespace, messages): (String, Vec<serde_json::Value>)| {
        for message in handlers.coalesce(&namespace, messages) {
            out.push(Body::Published {
                namespace: namespace.clone(),
                message,
            });
        }
    };
    for body in bodies {
        match body {
            Body::Published { namespace, message } => match &mut run {
                Some((current, messages)) if *current == namespace => messages.push(message),
                _ => {
                    if let Some(pending) = run.replace((namespace, vec![message])) {
                        flush(&mut out, pending);
                    }
                }
            },
            other => {
                if let Some(pending) = run.take() {
                    flush(&mut out, pending);
                }
                out.push(other);
            }
        }
    }
    if let Some(pending) = run.take() {
        flush(&mut out, pending);
    }
    out
}

/// Refreshes this node's heartbeat and reads every node's.
async fn heartbeat(cluster: Arc<Cluster>, shared: Weak<Shared>) {
    let mut interval = tokio::time::interval(Duration::from_millis(cluster.settings.heartbeat_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut connection: Option<ConnectionManager> = None;
    // When each other node was last seen alive, by this node's clock. A node is gone once
    // it has not been for `node_timeout_ms`, whether its heartbeat key expired or vanished
    // with a Redis that restarted empty.
    let mut last_alive: HashMap<String, u64> = HashMap::new();
    // Whether the last beat reached Redis. The time this node could not look does not count
    // as the others' silence: after an outage each gets a full `node_timeout_ms` to beat again.
    let mut beating = true;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if connection.is_none() {
            connection = cluster.client.get_connection_manager().await.ok();
        }
        let beat = match connection.as_mut() {
            Some(conn) => beat_once(&cluster, &shared, conn).await,
            None => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "no connection",
            ))),
        };
        match beat {
            Ok((views, usages)) => {
                if !beating {
                    let now = now_ms();
                    last_alive.values_mut().for_each(|seen| *seen = now);
                    beating = true;
                }
                cluster.set_redis_ok(true);
                shared.hub.set_remote_usage(usages);
                let gone = replace_nodes(&cluster, views, &mut last_alive);
                shared.hub.set_nodes(cluster.nodes());
                for node in gone {
                    forget_node(&cluster, &shared, &node);
                    if let Some(conn) = connection.as_mut() {
                        let _: redis::RedisResult<i64> =
                            conn.srem(&cluster.keys.nodes, &node).await;
                        let _: redis::RedisResult<i64> = redis::cmd("EVAL")
                            .arg(RELEASE_NODE)
                            .arg(1)
                            .arg(&cluster.keys.rooms)
                            .arg(&node)
                            .query_async(conn)
                            .await;
                    }
                }
            }
            Err(_) => {
                beating = false;
                cluster.set_redis_ok(false);
                // Messages can no longer cross: the dialects tell their clients that wait on
                // another node now, not left hanging (again at every beat, for whatever
                // started in between).
                shared.broker.handlers().link_lost(&shared);
                // Consoles learn that this node lost Redis; the others are as last seen.
                let nodes = cluster
                    .nodes()
                    .into_iter()
                    .map(|mut node| {
                        if node.local {
                            node.redis_ok = false;
                        }
                        node
                    })
                    .collect();
                shared.hub.set_nodes(nodes);
            }
        }
    }
}

async fn beat_once(
    cluster: &Cluster,
    shared: &Shared,
    conn: &mut ConnectionManager,
) -> redis::RedisResult<(Vec<NodeInfo>, Vec<crate::server::hub::AppUsage>)> {
    let (stats, _, peers) = shared.hub.metrics();
    let status = NodeStatus {
        node_id: cluster.node_id.clone(),
        listen: shared.hub.info().listen.clone(),
        started_at_ms: shared.hub.info().started_at_ms,
        heartbeat_at_ms: now_ms(),
        peers: peers as u64,
        frames_in: stats.frames_in,
        frames_out: stats.frames_out,
        errors: stats.errors,
        redis_ok: true,
        usage: shared.hub.app_usage(),
    };
    let text = serde_json::to_string(&status).unwrap_or_default();
    let _: () = redis::pipe()
        .set_options(
            cluster.keys.node(&cluster.node_id),
            text,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(cluster.settings.node_timeout_ms)),
        )
        .ignore()
        .sadd(&cluster.keys.nodes, &cluster.node_id)
        .ignore()
        .query_async(conn)
        .await?;
    let members: Vec<String> = conn.smembers(&cluster.keys.nodes).await?;
    let mut views = Vec::with_capacity(members.len());
    let mut usages = Vec::new();
    if members.is_empty() {
        return Ok((views, usages));
    }
    let keys: Vec<String> = members.iter().map(|m| cluster.keys.node(m)).collect();
    let beats: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(conn).await?;
    for (node, beat) in members.into_iter().zip(beats) {
        let status = beat.and_then(|text| serde_json::from_str::<NodeStatus>(&text).ok());
        let alive = status.is_some();
        let local = node == cluster.node_id;
        let status = status.unwrap_or(NodeStatus {
            node_id: node,
            listen: String::new(),
            started_at_ms: 0,
            heartbeat_at_ms: 0,
            peers: 0,
            frames_in: 0,
            frames_out: 0,
            errors: 0,
            redis_ok: false,
            usage: Default::default(),
        });
        if alive && !local {
            usages.push(status.usage.clone());
        }
        views.push(status.seen(alive, local));
    }
    Ok((views, usages))
}

/// Store the latest node list; returns the nodes gone since the last check: listed but not
/// alive, or known (from the list or from what they announced) and not seen alive for
/// `node_timeout_ms`.
fn replace_nodes(
    cluster: &Cluster,
    views: Vec<NodeInfo>,
    last_alive: &mut HashMap<String, u64>,
) -> Vec<String> {
    let now = now_ms();
    let mut gone = Vec::new();
    for view in &views {
        if view.local {
            continue;
        }
        if view.alive {
            // A node seen alive that this one did not know (new, or forgotten while it was
            // paused) is asked for everything it has: it may not know it was forgotten.
            if last_alive.insert(view.node_id.clone(), now).is_none()
                && !cluster.announced_nodes().contains(&view.node_id)
            {
                cluster.tell(&view.node_id, Body::Hello);
            }
        } else {
            gone.push(view.node_id.clone());
        }
    }
    for node in cluster.announced_nodes() {
        last_alive.entry(node).or_insert(now);
    }
    let alive: std::collections::HashSet<&str> = views
        .iter()
        .filter(|v| v.alive)
        .map(|v| v.node_id.as_str())
        .collect();
    for (node, seen) in last_alive.iter() {
        if !alive.contains(node.as_str())
            && now.saturating_sub(*seen) >= cluster.settings.node_timeout_ms
            && !gone.contains(node)
        {
            gone.push(node.clone());
        }
    }
    for node in &gone {
        last_alive.remove(node);
    }
    *cluster.nodes.write().unwrap_or_else(|p| p.into_inner()) = views
        .into_iter()
        .filter(|v| v.alive || v.local)
        .map(|v| (v.node_id.clone(), v))
        .collect();
    gone
}

/// A node is gone: what this node mirrored of it goes, and each dialect lets go of it.
fn forget_node(cluster: &Cluster, shared: &Arc<Shared>, node: &str) {
    tracing::warn!(node, "cluster node gone");
    // Its rooms leave the mirror first: a player told to come back must not be routed there.
    shared.hub.forget_remote(node);
    cluster
        .announced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(node);
    shared.broker.handlers().node_gone(shared, node);
}

/// Reads both this node's inbox and the bus, and hands each envelope to its handler. After
/// losing Redis it reconnects with a backoff and asks every node to announce again.
async fn subscriber(cluster: Arc<Cluster>, shared: Weak<Shared>) {
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        if shared.strong_count() == 0 {
            return;
        }
        let subscribed = async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(&cluster.keys.bus).await?;
            pubsub
                .subscribe(cluster.keys.inbox(&cluster.node_id))
                .await?;
            redis::RedisResult::Ok(pubsub)
        }
        .await;
        let pubsub = match subscribed {
            Ok(pubsub) => pubsub,
            Err(_) => {
                cluster.set_redis_ok(false);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            // Joining, or back after losing Redis: take the app statuses operators set while
            // this node was away, tell everyone what is here and ask them to do the same.
            adopt_app_statuses(&cluster, &shared).await;
            reclaim_rooms(&cluster, &shared).await;
            shared.broker.handlers().announce(&shared, Target::Others);
            let (peers, rooms) = shared.hub.local_admin_state();
            cluster.broadcast(Body::AdminState { peers, rooms });
            cluster.broadcast(Body::Hello);
        }
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if message.get_payload_bytes().len() > limits::ENVELOPE_BYTES {
                tracing::debug!("cluster: ignoring an oversized envelope");
                continue;
            }
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let Ok(envelope) = serde_json::from_str::<Envelope>(&payload) else {
                tracing::debug!("cluster: ignoring a malformed envelope");
                continue;
            };
            if envelope.from == cluster.node_id || valid_node_id(&envelope.from).is_err() {
                continue;
            }
            bus::handle(&cluster, &shared, envelope);
        }
        // The stream ended: the connection to Redis is gone.
        cluster.set_redis_ok(false);
        if let Some(shared) = shared.upgrade() {
            shared.broker.handlers().link_lost(&shared);
        }
    }
}

/// Claim this node's rooms again: a Redis that restarted empty forgot them, and a code
/// unclaimed could be given to a second room elsewhere.
async fn reclaim_rooms(cluster: &Cluster, shared: &Shared) {
    let (_, rooms) = shared.hub.local_admin_state();
    if rooms.is_empty() {
        return;
    }
    let mut conn = cluster.commands.clone();
    for room in rooms {
        let claimed: redis::RedisResult<bool> = conn
            .hset_nx(&cluster.keys.rooms, &room.code, &cluster.node_id)
            .await;
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                let owner: Option<String> = conn
                    .hget(&cluster.keys.rooms, &room.code)
                    .await
                    .unwrap_or_default();
                if owner.as_deref() != Some(cluster.node_id.as_str()) {
                    tracing::warn!(code = %room.code, ?owner, "room code claimed by another node while Redis was away");
                }
            }
            Err(_) => return,
        }
    }
}

/// Apply the app statuses stored in Redis that differ from this node's.
async fn adopt_app_statuses(cluster: &Cluster, shared: &Arc<Shared>) {
    let stored: redis::RedisResult<HashMap<String, String>> = async {
        let mut conn = cluster.client.get_multiplexed_async_connection().await?;
        conn.hgetall(&cluster.keys.apps).await
    }
    .await;
    let Ok(stored) = stored else {
        return;
    };
    let here = shared.hub.app_statuses();
    for (app, status) in stored {
        let Ok(status) = status.parse::<AppStatus>() else {
            continue;
        };
        if here.get(&app).is_some_and(|current| *current != status) {
            let by = format!("the cluster (Redis {})", cluster.keys.apps);
            if let Err(error) =
                crate::server::admin::apply_app_status(shared, &by, &app, status).await
            {
                tracing::warn!(app, error, "could not adopt the cluster's app status");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges every run it is handed into one message listing them.
    struct Joins;

    impl crate::server::broker::Handler for Joins {
        fn message(&self, _: &Arc<Shared>, _: &str, _: serde_json::Value) {}

        fn coalesce(&self, messages: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
            vec![serde_json::Value::Array(messages)]
        }
    }

    #[test]
    fn each_run_of_one_namespace_is_coalesced_by_its_handler_in_place() {
        let handlers = Handlers::default();
        handlers.register("joins", Arc::new(Joins));
        let published = |namespace: &str, n: u64| Body::Published {
            namespace: namespace.to_owned(),
            message: n.into(),
        };
        let bodies = vec![
            published("joins", 1),
            published("joins", 2),
            Body::Hello,
            published("joins", 3),
            published("other", 4),
            published("other", 5),
        ];
        let joined = |messages: &[u64]| Body::Published {
            namespace: "joins".to_owned(),
            message: serde_json::json!(messages),
        };
        assert_eq!(
            coalesce(&handlers, bodies),
            [
                joined(&[1, 2]),
                Body::Hello,
                // A run of one is left alone; a namespace without a handler passes as it came.
                published("joins", 3),
                published("other", 4),
                published("other", 5),
            ]
        );
    }
}
