//! Signal Fish rooms across nodes: the tunnel, this dialect's namespace on the broker
//! ([`crate::server::broker`], namespace `signal_fish`).
//!
//! A room lives on one node: the node that claimed its code in the Redis hash
//! `{prefix}:rooms` ([`crate::server::cluster::rooms`]).
//! A player whose room is on another node keeps its socket where it connected (the *front*
//! node); from the JoinRoom, JoinAsSpectator or Reconnect that names such a room on, the front
//! forwards the player's frames through the broker to the room's node (the *host*), which runs the
//! very same Signal Fish session for it over a [`TunnelSocket`]: a peer of the host's own whose
//! socket is the broker. What that session sends comes back and goes out of the player's socket;
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

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::refusal::{Carrier, Refusal};
use crate::server::broker::{Broker, Handler, Topic};
use crate::server::peer::{Control, PeerHandle, Priority};
use crate::server::Shared;

/// Frames from a front waiting for the host's session; a front never has more in flight
/// than its rate limit lets through, so reaching this means the host's session is stuck.
const HOSTED_QUEUE: usize = 4_096;

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

/// This dialect's messages between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TunnelMessage {
    /// Front → host: a player's frames start to cross to the node holding its room.
    Open(TunnelOpen),
    /// Front → host: the player's next frame.
    In { peer: String, text: String },
    /// Front → host: the player's connection is over (`removed`: its seat goes too).
    End { peer: String, removed: bool },
    /// Host → front: a frame for the player.
    Out { peer: String, text: String },
    /// Host → front: one frame for several players (a room's relay to the players of one
    /// node, merged before it leaves: see [`merge_fan_out`]).
    OutMany { peers: Vec<String>, text: String },
    /// Host → front: the player's session closed with this code.
    Close {
        peer: String,
        code: u16,
        reason: String,
    },
}

impl Topic for TunnelMessage {
    const NAMESPACE: &'static str = "signal_fish";

    fn weight(&self) -> usize {
        match self {
            TunnelMessage::Open(open) => open.first.len(),
            TunnelMessage::In { text, .. }
            | TunnelMessage::Out { text, .. }
            | TunnelMessage::OutMany { text, .. } => text.len(),
            TunnelMessage::End { .. } | TunnelMessage::Close { .. } => 0,
        }
    }
}

/// This node's tunnels, both ways; the broker's handler of the `signal_fish` namespace.
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

/// The host's side of a tunnel, as the connection loop sees a socket: frames from the front
/// come in through a queue; frames out go through the broker to the front.
pub struct TunnelSocket {
    inbound: mpsc::Receiver<Message>,
    broker: Broker,
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

    // The broker never blocks a writer: its link drops and counts when Redis is away or slow.
    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let message = match message {
            Message::Text(text) => TunnelMessage::Out {
                peer: self.peer.clone(),
                text: text.as_str().to_owned(),
            },
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (f.code, f.reason.as_str().to_owned()))
                    .unwrap_or((1000, String::new()));
                TunnelMessage::Close {
                    peer: self.peer.clone(),
                    code,
                    reason,
                }
            }
            _ => return Ok(()),
        };
        self.broker.send_to(&self.front, || message);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
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

    /// The front starts forwarding the frames of `handle`'s player to `node`, which holds
    /// its room.
    pub fn open(&self, broker: &Broker, node: &str, handle: Arc<PeerHandle>, open: TunnelOpen) {
        self.fronted().insert(
            open.peer.clone(),
            Fronted {
                node: node.to_owned(),
                handle,
            },
        );
        broker.send_to(node, || TunnelMessage::Open(open));
    }

    /// One more frame of a fronted player.
    pub fn forward(&self, broker: &Broker, node: &str, peer: &str, text: &str) {
        broker.send_to(node, || TunnelMessage::In {
            peer: peer.to_owned(),
            text: text.to_owned(),
        });
    }

    /// A fronted player's connection is over; `removed` when its seat must go with it.
    pub fn end(&self, broker: &Broker, peer: &str, removed: bool) {
        let fronted = self.fronted().remove(peer);
        if let Some(Fronted { node, .. }) = fronted {
            broker.send_to(&node, || TunnelMessage::End {
                peer: peer.to_owned(),
                removed,
            });
        }
    }

    /// A front opened a tunnel here: run the player's session on this node.
    fn host(self: &Arc<Self>, shared: &Arc<Shared>, front: &str, open: TunnelOpen) {
        let (sender, inbound) = mpsc::channel(HOSTED_QUEUE);
        let removed = Arc::new(AtomicBool::new(false));
        let _ = sender.try_send(Message::Text(open.first.clone().into()));
        // An entry already there lost its End (a front that restarted counts its peer ids
        // from 1 again): its session ends as its queue drops with it.
        self.hosted().insert(
            open.peer.clone(),
            Hosted {
                node: front.to_owned(),
                inbound: sender,
                removed: Arc::clone(&removed),
            },
        );
        let socket = TunnelSocket {
            inbound,
            broker: shared.broker.clone(),
            front: front.to_owned(),
            peer: open.peer.clone(),
        };
        let shared = Arc::clone(shared);
        let tunnels = Arc::clone(self);
        let peer = open.peer.clone();
        let mine = Arc::clone(&removed);
        tokio::spawn(async move {
            super::host_tunnel(shared, socket, open, removed).await;
            // Only this session's entry: a newer tunnel may have the same name by now.
            let mut hosted = tunnels.hosted();
            if hosted
                .get(&peer)
                .is_some_and(|entry| Arc::ptr_eq(&entry.removed, &mine))
            {
                hosted.remove(&peer);
            }
        });
    }

    fn hosted_frame(&self, shared: &Shared, peer: &str, text: String) {
        let hosted = self.hosted();
        if let Some(entry) = hosted.get(peer) {
            if entry.inbound.try_send(Message::Text(text.into())).is_err() {
                shared.broker.note_dropped();
            }
        }
    }

    fn hosted_end(&self, peer: &str, removed: bool) {
        if let Some(entry) = self.hosted().remove(peer) {
            entry.removed.store(removed, Ordering::Relaxed);
            // Dropping the queue ends the session's stream: the loop ends as a disconnection.
        }
    }

    /// A frame the host sent a fronted player.
    fn fronted_frame(&self, shared: &Shared, peer: &str, text: &axum::extract::ws::Utf8Bytes) {
        if let Some(handle) = self.fronted_handle(peer) {
            shared.hub.deliver(&handle, text, Priority::Reply);
        }
    }

    /// The host closed a fronted player's session: the socket closes the same way. The
    /// tunnel stays listed until the connection ends, so that its end reaches the host, whose
    /// session waits for it to finish its close.
    fn fronted_close(&self, peer: &str, code: u16, reason: String) {
        if let Some(handle) = self.fronted_handle(peer) {
            handle.control(Control::Close(code, reason));
        }
    }

    /// Cut the tunnels to and from `node` (gone), or every tunnel (`None`: Redis is away).
    fn cut(&self, shared: &Shared, node: Option<&str>) {
        let through = |other: &str| node.is_none_or(|n| n == other);
        let hosted: Vec<String> = self
            .hosted()
            .iter()
            .filter(|(_, h)| through(&h.node))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in hosted {
            self.hosted_end(&peer, false);
        }
        let cut: Vec<Fronted> = {
            let mut fronted = self.fronted();
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
        if cut.is_empty() {
            return;
        }
        let notice = Refusal {
            carrier: Carrier::Error,
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
}

/// The handler is the tunnels themselves: what arrives is a frame for one of them.
pub struct Remote(pub Arc<Tunnels>);

impl Handler for Remote {
    fn message(&self, shared: &Arc<Shared>, from: &str, message: Value) {
        let Ok(message) = serde_json::from_value::<TunnelMessage>(message) else {
            tracing::debug!("cluster: ignoring a malformed tunnel message");
            return;
        };
        let tunnels = &self.0;
        match message {
            TunnelMessage::Open(open) => tunnels.host(shared, from, open),
            TunnelMessage::In { peer, text } => tunnels.hosted_frame(shared, &peer, text),
            TunnelMessage::End { peer, removed } => tunnels.hosted_end(&peer, removed),
            TunnelMessage::Out { peer, text } => tunnels.fronted_frame(shared, &peer, &text.into()),
            TunnelMessage::OutMany { peers, text } => {
                let text = text.into();
                for peer in peers {
                    tunnels.fronted_frame(shared, &peer, &text);
                }
            }
            TunnelMessage::Close { peer, code, reason } => {
                tunnels.fronted_close(&peer, code, reason)
            }
        }
    }

    fn node_gone(&self, shared: &Arc<Shared>, node: &str) {
        self.0.cut(shared, Some(node));
    }

    /// Frames can no longer cross: players waiting on another node are told now, not left
    /// hanging.
    fn link_lost(&self, shared: &Arc<Shared>) {
        self.0.cut(shared, None);
    }

    fn coalesce(&self, messages: Vec<Value>) -> Vec<Value> {
        let mut read = Vec::with_capacity(messages.len());
        for message in &messages {
            match TunnelMessage::deserialize(message) {
                Ok(message) => read.push(message),
                // Not ours to judge: it leaves as it came.
                Err(_) => return messages,
            }
        }
        merge_fan_out(read)
            .into_iter()
            .filter_map(|message| serde_json::to_value(message).ok())
            .collect()
    }
}

/// One publish's messages with the copies of a frame for several players of the receiving
/// node merged into one message: a room relays each frame to every remote player, and the
/// node those players sit on needs it once. A player's frames keep their order: a copy joins
/// an earlier message only if none of that player's frames lies between.
pub(crate) fn merge_fan_out(messages: Vec<TunnelMessage>) -> Vec<TunnelMessage> {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    if messages.len() < 2 {
        return messages;
    }
    let mut merged: Vec<TunnelMessage> = Vec::with_capacity(messages.len());
    // The latest merged message carrying a text (by hash; checked for equality).
    let mut by_text: HashMap<u64, usize> = HashMap::new();
    // Each player's latest message.
    let mut last_of: HashMap<String, usize> = HashMap::new();
    for message in messages {
        let TunnelMessage::Out { peer, text } = message else {
            merged.push(message);
            continue;
        };
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let key = hasher.finish();
        let joinable = by_text.get(&key).copied().filter(|&at| {
            last_of.get(&peer).is_none_or(|&last| last < at)
                && matches!(&merged[at], TunnelMessage::OutMany { text: t, .. } if *t == text)
        });
        match joinable {
            Some(at) => {
                if let TunnelMessage::OutMany { peers, .. } = &mut merged[at] {
                    peers.push(peer.clone());
                }
                last_of.insert(peer, at);
            }
            None => {
                let at = merged.len();
                last_of.insert(peer.clone(), at);
                by_text.insert(key, at);
                merged.push(TunnelMessage::OutMany {
                    peers: vec![peer],
                    text,
                });
            }
        }
    }
    // A message for one player keeps the plain shape.
    merged
        .into_iter()
        .map(|message| match message {
            TunnelMessage::OutMany { mut peers, text } if peers.len() == 1 => TunnelMessage::Out {
                peer: peers.pop().unwrap_or_default(),
                text,
            },
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(peer: &str, text: &str) -> TunnelMessage {
        TunnelMessage::Out {
            peer: peer.into(),
            text: text.into(),
        }
    }

    /// What each player receives, in order.
    fn received(bodies: &[TunnelMessage]) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut got: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for body in bodies {
            match body {
                TunnelMessage::Out { peer, text } => {
                    got.entry(peer.clone()).or_default().push(text.clone())
                }
                TunnelMessage::OutMany { peers, text } => {
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
    fn the_handler_merges_what_the_publisher_hands_it() {
        let messages: Vec<Value> = [out("a.p1", "x"), out("a.p2", "x")]
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        let merged = Remote(Arc::default()).coalesce(messages);
        assert_eq!(
            merged,
            [serde_json::json!({"kind": "out_many", "peers": ["a.p1", "a.p2"], "text": "x"})]
        );
        // What it cannot read leaves as it came.
        let odd = vec![serde_json::json!({"kind": "new"}), serde_json::json!(1)];
        assert_eq!(Remote(Arc::default()).coalesce(odd.clone()), odd);
    }

    #[test]
    fn other_messages_pass_unchanged() {
        let end = TunnelMessage::End {
            peer: "a.p2".into(),
            removed: false,
        };
        let bodies = vec![end.clone(), out("a.p1", "x"), end];
        assert_eq!(merge_fan_out(bodies.clone()), bodies);
    }
}
