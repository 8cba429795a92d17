//! Signal Fish rooms across nodes.
//!
//! A room lives on one node: the node that claimed its code in the Redis hash
//! `{prefix}:rooms` (code → node, `HSETNX`, so a code names one room in the whole cluster).
//! A player whose room is on another node keeps its socket where it connected (the *front*
//! node); from the JoinRoom, JoinAsSpectator or Reconnect that names such a room on, the front
//! forwards the player's frames over the bus to the room's node (the *host*), which runs the
//! very same Signal Fish session for it over a [`TunnelSocket`]: a peer of the host's own whose
//! socket is the bus. What that session sends comes back and goes out of the player's socket;
//! a close it decides closes the socket with the same code and reason. Membership, authority,
//! readiness, spectators, game data and reconnection seats are therefore decided in one place,
//! by the code that decides them for a single node.
//!
//! The front keeps what belongs to the socket: authentication, size and rate limits, the
//! activity and idle timers. A front that ends (its player left, or the node died) ends the
//! host's session as a disconnection, so the seat waits for a reconnection, which may arrive
//! on any node: its Reconnect names the room, and the room's node is found the same way.
//!
//! When the host dies, or Redis goes away so that frames can no longer cross, every tunnel
//! through it is cut: the player gets `Error SERVICE_UNAVAILABLE` and close 1013
//! `try_again_later`, and its seat (if the host lives) waits for the reconnection.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::bus::Body;
use super::Cluster;
use crate::server::peer::{Control, PeerHandle, Priority};
use crate::server::Shared;

/// Frames from a front waiting for the host's session; a front never has more in flight
/// than its rate limit lets through, so reaching this means the host's session is stuck.
const HOSTED_QUEUE: usize = 4_096;
/// How long a room lookup or claim may wait for Redis before the player is told.
const ROOM_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Moves a room claim from a node that is gone to this one, only if the dead node still holds it.
const TAKE_OVER: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 else return 0 end";
/// Tries to find a free code for a new room before giving up.
const CLAIM_TRIES: usize = 8;

/// What a front tells the host when a player's frames start to cross.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelOpen {
    /// The player's peer on the front (`node.pN`): the tunnel's name on both sides.
    pub peer: String,
    pub app: String,
    pub address: String,
    /// The protocol version its Authenticate negotiated.
    pub version: u16,
    /// The first frame, the one that named the room.
    pub first: String,
    /// Whether Authenticate granted `room_operation_ids`: the host's session answers the
    /// player's RoomOperations with their ids, as the front would have.
    #[serde(default)]
    pub room_operation_ids: bool,
}

/// Where a room lives, as Redis says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this node (`Some(code)`: a code this node just claimed for a new room).
    Here(Option<String>),
    There(String),
    /// Nowhere yet, and the request only joins.
    Nowhere,
}

#[derive(Default)]
pub struct Tunnels {
    /// Players of other nodes whose rooms are here, by their front peer id.
    hosted: Mutex<HashMap<String, Hosted>>,
    /// This node's players whose rooms are elsewhere, by peer id: the host's frames reach
    /// them through their handle, without the hub's lock.
    fronted: Mutex<HashMap<String, Fronted>>,
}

struct Fronted {
    /// The node holding the player's room.
    node: String,
    handle: Arc<PeerHandle>,
}

struct Hosted {
    node: String,
    inbound: mpsc::Sender<Message>,
    /// Set when the front ended the player for good (kicked, its app cut off): the seat goes.
    removed: Arc<AtomicBool>,
}

impl Tunnels {
    fn hosted(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hosted>> {
        self.hosted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fronted(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fronted>> {
        self.fronted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fronted_handle(&self, peer: &str) -> Option<Arc<PeerHandle>> {
        self.fronted().get(peer).map(|f| Arc::clone(&f.handle))
    }
}

/// The host's side of a tunnel, as the connection loop sees a socket: frames from the front
/// come in through a queue; frames out go on the bus to the front.
pub struct TunnelSocket {
    inbound: mpsc::Receiver<Message>,
    cluster: Arc<Cluster>,
    front: String,
    peer: String,
}

impl Stream for TunnelSocket {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbound.poll_recv(cx).map(|message| message.map(Ok))
    }
}

impl Sink<Message> for TunnelSocket {
    type Error = axum::Error;

    // The bus queue never blocks a writer: it drops and counts when Redis is away or slow.
    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let body = match message {
            Message::Text(text) => Body::TunnelOut {
                peer: self.peer.clone(),
                text: text.as_str().to_owned(),
            },
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (f.code, f.reason.as_str().to_owned()))
                    .unwrap_or((1000, String::new()));
                Body::TunnelClose {
                    peer: self.peer.clone(),
                    code,
                    reason,
                }
            }
            _ => return Ok(()),
        };
        self.cluster.tell(&self.front, body);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl Cluster {
    /// The front starts forwarding the frames of `handle`'s player to `node`, which holds
    /// its room.
    pub fn open_tunnel(&self, node: &str, handle: Arc<PeerHandle>, open: TunnelOpen) {
        self.tunnels.fronted().insert(
            open.peer.clone(),
            Fronted {
                node: node.to_owned(),
                handle,
            },
        );
        self.tell(node, Body::TunnelOpen(open));
    }

    /// One more frame of a fronted player.
    pub fn forward(&self, node: &str, peer: &str, text: &str) {
        self.tell(
            node,
            Body::TunnelIn {
                peer: peer.to_owned(),
                text: text.to_owned(),
            },
        );
    }

    /// A fronted player's connection is over; `removed` when its seat must go with it.
    pub fn end_tunnel(&self, peer: &str, removed: bool) {
        let fronted = self.tunnels.fronted().remove(peer);
        if let Some(Fronted { node, .. }) = fronted {
            self.tell(
                &node,
                Body::TunnelEnd {
                    peer: peer.to_owned(),
                    removed,
                },
            );
        }
    }

    /// A front opened a tunnel here: run the player's session on this node.
    pub(super) fn host(self: &Arc<Self>, shared: &Arc<Shared>, front: &str, open: TunnelOpen) {
        let (sender, inbound) = mpsc::channel(HOSTED_QUEUE);
        let removed = Arc::new(AtomicBool::new(false));
        let _ = sender.try_send(Message::Text(open.first.clone().into()));
        // An entry already there lost its TunnelEnd (a front that restarted counts its peer ids
        // from 1 again): its session ends as its queue drops with it.
        self.tunnels.hosted().insert(
            open.peer.clone(),
            Hosted {
                node: front.to_owned(),
                inbound: sender,
                removed: Arc::clone(&removed),
            },
        );
        let socket = TunnelSocket {
            inbound,
            cluster: Arc::clone(self),
            front: front.to_owned(),
            peer: open.peer.clone(),
        };
        let shared = Arc::clone(shared);
        let cluster = Arc::clone(self);
        let peer = open.peer.clone();
        let mine = Arc::clone(&removed);
        tokio::spawn(async move {
            crate::server::signal_fish::host_tunnel(shared, socket, open, removed).await;
            // Only this session's entry: a newer tunnel may have the same name by now.
            let mut hosted = cluster.tunnels.hosted();
            if hosted
                .get(&peer)
                .is_some_and(|entry| Arc::ptr_eq(&entry.removed, &mine))
            {
                hosted.remove(&peer);
            }
        });
    }

    pub(super) fn hosted_frame(&self, peer: &str, text: String) {
        let hosted = self.tunnels.hosted();
        if let Some(entry) = hosted.get(peer) {
            if entry.inbound.try_send(Message::Text(text.into())).is_err() {
                self.note_dropped();
            }
        }
    }

    pub(super) fn hosted_end(&self, peer: &str, removed: bool) {
        if let Some(entry) = self.tunnels.hosted().remove(peer) {
            entry.removed.store(removed, Ordering::Relaxed);
            // Dropping the queue ends the session's stream: the loop ends as a disconnection.
        }
    }

    /// A frame the host sent a fronted player.
    pub(super) fn fronted_frame(
        &self,
        shared: &Shared,
        peer: &str,
        text: &axum::extract::ws::Utf8Bytes,
    ) {
        if let Some(handle) = self.tunnels.fronted_handle(peer) {
            shared.hub.deliver(&handle, text, Priority::Reply);
        }
    }

    /// The host closed a fronted player's session: the socket closes the same way. The
    /// tunnel stays listed until the connection ends, so that its end reaches the host, whose
    /// session waits for it to finish its close.
    pub(super) fn fronted_close(&self, peer: &str, code: u16, reason: String) {
        if let Some(handle) = self.tunnels.fronted_handle(peer) {
            handle.control(Control::Close(code, reason));
        }
    }

    /// Cut the tunnels to and from `node` (gone), or every tunnel (`None`: Redis is away).
    pub(super) fn cut_tunnels(&self, shared: &Shared, node: Option<&str>) {
        let through = |other: &str| node.is_none_or(|n| n == other);
        let hosted: Vec<String> = self
            .tunnels
            .hosted()
            .iter()
            .filter(|(_, h)| through(&h.node))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in hosted {
            self.hosted_end(&peer, false);
        }
        let cut: Vec<Fronted> = {
            let mut fronted = self.tunnels.fronted();
            let peers: Vec<String> = fronted
                .iter()
                .filter(|(_, f)| through(&f.node))
                .map(|(peer, _)| peer.clone())
                .collect();
            peers
                .iter()
                .filter_map(|peer| fronted.remove(peer))
                .collect()
        };
        let notice = crate::server::signal_fish::Refusal {
            carrier: crate::server::signal_fish::Carrier::Error,
            code: "SERVICE_UNAVAILABLE",
            text: Some(
                "The node holding this room cannot be reached; reconnect to take the seat back"
                    .to_owned(),
            ),
        }
        .frame()
        .text();
        for Fronted { handle, .. } in cut {
            shared
                .hub
                .send_error(&handle, "SERVICE_UNAVAILABLE", None, notice.clone());
            handle.control(Control::Close(1013, "try_again_later".to_owned()));
        }
    }

    /// Where the room with `code` lives. With `claim`, a code no node holds is claimed for
    /// this node (the caller then creates the room).
    pub async fn place_room(&self, code: &str, claim: bool) -> redis::RedisResult<Placement> {
        let mut conn = self.commands.clone();
        let lookup = async {
            if claim {
                let claimed: bool = conn.hset_nx(&self.keys.rooms, code, &self.node_id).await?;
                if claimed {
                    return Ok(Placement::Here(Some(code.to_owned())));
                }
            }
            let owner: Option<String> = conn.hget(&self.keys.rooms, code).await?;
            let Some(owner) = owner else {
                return Ok(Placement::Nowhere);
            };
            if owner == self.node_id {
                return Ok(Placement::Here(None));
            }
            // A claim outlives its node until a survivor notices the lapsed heartbeat and frees
            // it; the heartbeat key itself says at once whether the holder still lives. Its
            // room went with it, so the code is free.
            let alive: bool = conn.exists(self.keys.node(&owner)).await?;
            if alive {
                return Ok(Placement::There(owner));
            }
            if !claim {
                return Ok(Placement::Nowhere);
            }
            let taken: i64 = redis::cmd("EVAL")
                .arg(TAKE_OVER)
                .arg(1)
                .arg(&self.keys.rooms)
                .arg(code)
                .arg(&owner)
                .arg(&self.node_id)
                .query_async(&mut conn)
                .await?;
            if taken == 1 {
                return Ok(Placement::Here(Some(code.to_owned())));
            }
            // Another node took it first.
            let owner: Option<String> = conn.hget(&self.keys.rooms, code).await?;
            Ok(match owner {
                Some(owner) if owner == self.node_id => Placement::Here(None),
                Some(owner) => Placement::There(owner),
                None => Placement::Nowhere,
            })
        };
        tokio::time::timeout(ROOM_LOOKUP_TIMEOUT, lookup)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// Claim a fresh code for a new room, drawn by `draw`.
    pub async fn claim_new_room(&self, draw: impl Fn() -> String) -> redis::RedisResult<String> {
        let mut conn = self.commands.clone();
        let claim = async {
            for _ in 0..CLAIM_TRIES {
                let code = draw();
                let claimed: bool = conn.hset_nx(&self.keys.rooms, &code, &self.node_id).await?;
                if claimed {
                    return Ok(code);
                }
            }
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "no free room code",
            )))
        };
        tokio::time::timeout(ROOM_LOOKUP_TIMEOUT, claim)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// A room of this node closed (or was never created after its claim): free its code.
    pub fn release_room(&self, code: &str) {
        self.queue(super::Outgoing::Release(code.to_owned()));
    }
}

/// One publish's messages with the copies of a frame for several players of the receiving
/// node merged into one message: a room relays each frame to every remote player, and the
/// node those players sit on needs it once. A player's frames keep their order: a copy joins
/// an earlier message only if none of that player's frames lies between.
pub(super) fn merge_fan_out(bodies: Vec<Body>) -> Vec<Body> {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    if bodies.len() < 2 {
        return bodies;
    }
    let mut merged: Vec<Body> = Vec::with_capacity(bodies.len());
    // The latest merged message carrying a text (by hash; checked for equality).
    let mut by_text: HashMap<u64, usize> = HashMap::new();
    // Each player's latest message.
    let mut last_of: HashMap<String, usize> = HashMap::new();
    for body in bodies {
        let Body::TunnelOut { peer, text } = body else {
            merged.push(body);
            continue;
        };
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let key = hasher.finish();
        let joinable = by_text.get(&key).copied().filter(|&at| {
            last_of.get(&peer).is_none_or(|&last| last < at)
                && matches!(&merged[at], Body::TunnelOutMany { text: t, .. } if *t == text)
        });
        match joinable {
            Some(at) => {
                if let Body::TunnelOutMany { peers, .. } = &mut merged[at] {
                    peers.push(peer.clone());
                }
                last_of.insert(peer, at);
            }
            None => {
                let at = merged.len();
                last_of.insert(peer.clone(), at);
                by_text.insert(key, at);
                merged.push(Body::TunnelOutMany {
                    peers: vec![peer],
                    text,
                });
            }
        }
    }
    // A message for one player keeps the plain shape.
    merged
        .into_iter()
        .map(|body| match body {
            Body::TunnelOutMany { mut peers, text } if peers.len() == 1 => Body::TunnelOut {
                peer: peers.pop().unwrap_or_default(),
                text,
            },
            other => other,
        })
        .collect()
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(peer: &str, text: &str) -> Body {
        Body::TunnelOut {
            peer: peer.into(),
            text: text.into(),
        }
    }

    /// What each player receives, in order.
    fn received(bodies: &[Body]) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut got: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for body in bodies {
            match body {
                Body::TunnelOut { peer, text } => {
                    got.entry(peer.clone()).or_default().push(text.clone())
                }
                Body::TunnelOutMany { peers, text } => {
                    for peer in peers {
                        got.entry(peer.clone()).or_default().push(text.clone());
                    }
                }
                _ => {}
            }
        }
        got
    }

    #[test]
    fn copies_of_a_frame_for_one_node_travel_once() {
        let bodies = vec![
            out("a.p1", "x"),
            out("a.p2", "x"),
            out("a.p3", "x"),
            out("a.p1", "y"),
        ];
        let merged = merge_fan_out(bodies.clone());
        assert_eq!(merged.len(), 2, "{merged:?}");
        assert_eq!(received(&merged), received(&bodies));
    }

    #[test]
    fn a_players_frames_keep_their_order_when_copies_merge() {
        // p2 has t0 before its copy of t1: its t1 cannot join p1's earlier t1.
        let bodies = vec![
            out("a.p1", "t1"),
            out("a.p2", "t0"),
            out("a.p2", "t1"),
            out("a.p1", "t1"),
        ];
        let merged = merge_fan_out(bodies.clone());
        assert_eq!(received(&merged), received(&bodies));
        // The same frame twice to one player stays twice.
        assert_eq!(received(&merged)["a.p1"], ["t1", "t1"]);
    }

    #[test]
    fn other_messages_pass_unchanged() {
        let bodies = vec![Body::Hello, out("a.p1", "x"), Body::Goodbye];
        assert_eq!(merge_fan_out(bodies.clone()), bodies);
    }
}
