//! What nodes tell each other over Redis pub/sub, and what a node does with it.
//!
//! An [`Envelope`] is one JSON message on `{prefix}:bus` (every node) or `{prefix}:to:{id}`
//! (one node). A node ignores its own envelopes and any it cannot read: the bus is input like
//! any other, and one malformed message must not stop the others.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::catalog::Dialect;
use crate::protocol::admin::{
    AppStatus, CommandEnvelope, CommandResult, Event, PeerInfo, RoomInfo,
};
use crate::server::peer::Priority;
use crate::server::Shared;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: String,
    pub body: Body,
}

/// A pub/sub peer as the cluster knows it: the app and the `peerId` clients address it by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RemotePeer {
    pub app: String,
    pub identity: String,
}

/// A pub/sub peer's membership of one channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub app: String,
    pub channel: String,
    pub identity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A node joined or got Redis back: every node answers with its [`Body::State`].
    Hello,
    /// The sender is shutting down: forget it now rather than when its heartbeat expires.
    Goodbye,
    /// Everything the sender has: replaces what this node mirrored of it.
    State {
        peers: Vec<RemotePeer>,
        memberships: Vec<Membership>,
    },
    PeerUp(RemotePeer),
    PeerDown(RemotePeer),
    Joined(Membership),
    Left(Membership),
    /// A pub/sub `message` frame for a channel's members on every node.
    ChannelMessage {
        app: String,
        channel: String,
        text: String,
    },
    /// A pub/sub `direct` frame for one peer on the receiving node.
    Direct {
        app: String,
        to: String,
        text: String,
    },
    /// One of the sender's admin deltas (peers, rooms, errors), for every node's consoles.
    Admin {
        event: Event,
    },
    /// The sender's peers and rooms now, for every node's consoles.
    AdminState {
        peers: Vec<PeerInfo>,
        rooms: Vec<RoomInfo>,
    },
    /// An operator on the sender changed an app's status (already stored in Redis).
    AppStatus {
        app: String,
        status: AppStatus,
        by: String,
    },
    /// An operator on the sender acts on a peer or room of the receiving node.
    Command {
        request: u64,
        envelope: CommandEnvelope,
        by: String,
    },
    /// The receiving node's answer to its `request`.
    CommandResult {
        request: u64,
        result: CommandResult,
    },
    /// Several messages for the same channel, in order: what one publish carries when the
    /// sender had more than one queued.
    Batch {
        bodies: Vec<Body>,
    },
    /// A Talo presence, channel or broadcast frame: each node delivers it to its own players
    /// in the audience.
    TaloFanOut {
        app: String,
        audience: crate::server::talo::socket::Audience,
        text: String,
    },
    /// Front → host: a player's frames start to cross to the node holding its room.
    TunnelOpen(super::tunnel::TunnelOpen),
    /// Front → host: the player's next frame.
    TunnelIn {
        peer: String,
        text: String,
    },
    /// Front → host: the player's connection is over (`removed`: its seat goes too).
    TunnelEnd {
        peer: String,
        removed: bool,
    },
    /// Host → front: a frame for the player.
    TunnelOut {
        peer: String,
        text: String,
    },
    /// Host → front: one frame for several players (a room's relay to the players of one
    /// node, merged by the publisher).
    TunnelOutMany {
        peers: Vec<String>,
        text: String,
    },
    /// Host → front: the player's session closed with this code.
    TunnelClose {
        peer: String,
        code: u16,
        reason: String,
    },
}

/// Act on one envelope from another node.
pub fn handle(cluster: &Arc<Cluster>, shared: &Arc<Shared>, envelope: Envelope) {
    let from = envelope.from;
    match envelope.body {
        Body::Batch { bodies } => {
            for body in bodies {
                handle(
                    cluster,
                    shared,
                    Envelope {
                        from: from.clone(),
                        body,
                    },
                );
            }
        }
        Body::AppStatus { app, status, by } => {
            // Persisting waits for the disk: not on the bus reader. The audit log names the
            // node the change came from: a bus message cannot pass for a local operator.
            let who = remote_operator(&by, &from);
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                if let Err(error) =
                    crate::server::admin::apply_app_status(&shared, &who, &app, status).await
                {
                    tracing::warn!(app, error, "could not apply another node's app status");
                }
            });
        }
        Body::Hello => {
            let (peers, memberships) = super::directory::local_state(shared);
            cluster.tell(&from, Body::State { peers, memberships });
            let (peers, rooms) = shared.hub.local_admin_state();
            cluster.tell(&from, Body::AdminState { peers, rooms });
        }
        Body::Admin { event } => shared.hub.apply_remote(&from, event),
        Body::AdminState { peers, rooms } => shared.hub.replace_remote(&from, peers, rooms),
        Body::Command {
            request,
            envelope,
            by,
        } => {
            let shared = Arc::clone(shared);
            let cluster = shared.cluster.clone();
            let by = crate::text::clip(&by, super::limits::OPERATOR_BYTES).into_owned();
            tokio::spawn(async move {
                let result =
                    crate::server::admin::execute_for_node(&shared, &by, &from, envelope).await;
                if let Some(cluster) = cluster {
                    cluster.tell(&from, Body::CommandResult { request, result });
                }
            });
        }
        Body::CommandResult { request, result } => cluster.answered(request, result),
        Body::TaloFanOut {
            app,
            audience,
            text,
        } => crate::server::talo::socket::deliver_remote(shared, &app, &audience, text),
        Body::TunnelOpen(open) => cluster.host(shared, &from, open),
        Body::TunnelIn { peer, text } => cluster.hosted_frame(&peer, text),
        Body::TunnelEnd { peer, removed } => cluster.hosted_end(&peer, removed),
        Body::TunnelOut { peer, text } => cluster.fronted_frame(shared, &peer, &text.into()),
        Body::TunnelOutMany { peers, text } => {
            let text = text.into();
            for peer in peers {
                cluster.fronted_frame(shared, &peer, &text);
            }
        }
        Body::TunnelClose { peer, code, reason } => cluster.fronted_close(&peer, code, reason),
        Body::Goodbye => super::forget_node(cluster, shared, &from),
        Body::State { peers, memberships } => {
            let (joined, left) = cluster.directory.replace_node(&from, peers, memberships);
            for m in left {
                crate::server::pubsub::announce_remote_presence(
                    shared,
                    &m.app,
                    &m.channel,
                    &[],
                    &[m.identity.as_str()],
                );
            }
            for m in joined {
                crate::server::pubsub::announce_remote_presence(
                    shared,
                    &m.app,
                    &m.channel,
                    &[m.identity.as_str()],
                    &[],
                );
            }
        }
        Body::PeerUp(peer) => cluster.directory.peer_up(&from, peer),
        Body::PeerDown(peer) => {
            for m in cluster.directory.peer_down(&from, &peer) {
                crate::server::pubsub::announce_remote_presence(
                    shared,
                    &m.app,
                    &m.channel,
                    &[],
                    &[m.identity.as_str()],
                );
            }
        }
        Body::Joined(m) => {
            if cluster.directory.joined(&from, m.clone()) {
                crate::server::pubsub::announce_remote_presence(
                    shared,
                    &m.app,
                    &m.channel,
                    &[m.identity.as_str()],
                    &[],
                );
            }
        }
        Body::Left(m) => {
            if cluster.directory.left(&from, &m) {
                crate::server::pubsub::announce_remote_presence(
                    shared,
                    &m.app,
                    &m.channel,
                    &[],
                    &[m.identity.as_str()],
                );
            }
        }
        Body::ChannelMessage { app, channel, text } => {
            shared.hub.deliver_to_channel(
                Dialect::Pubsub,
                &app,
                &channel,
                "",
                &text.into(),
                Priority::Relay,
            );
        }
        Body::Direct { app, to, text } => {
            if let Some(target) = shared.hub.find_peer_by_identity(Dialect::Pubsub, &app, &to) {
                shared.hub.deliver(&target, &text.into(), Priority::Relay);
            }
        }
    }
}

/// How an operator of another node is named here: as that node reported them, clipped,
/// with the node the message came from (a node of an older release named itself already).
fn remote_operator(by: &str, from: &str) -> String {
    let by = by.strip_suffix(&format!(" on {from}")).unwrap_or(by);
    format!(
        "{} on {from}",
        crate::text::clip(by, super::limits::OPERATOR_BYTES)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let bodies = [
            Body::Hello,
            Body::PeerUp(RemotePeer {
                app: "demo".into(),
                identity: "peer-1".into(),
            }),
            Body::Joined(Membership {
                app: "demo".into(),
                channel: "demo/lobby".into(),
                identity: "peer-1".into(),
            }),
            Body::ChannelMessage {
                app: "demo".into(),
                channel: "demo/lobby".into(),
                text: r#"{"type":"message"}"#.into(),
            },
        ];
        for body in bodies {
            let envelope = Envelope {
                from: "node-a".into(),
                body,
            };
            let text = serde_json::to_string(&envelope).unwrap();
            assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), envelope);
        }
    }

    #[test]
    fn another_nodes_operator_is_named_with_the_node_and_clipped() {
        assert_eq!(remote_operator("alice", "node-b"), "alice on node-b");
        assert_eq!(
            remote_operator("alice on node-b", "node-b"),
            "alice on node-b"
        );
        assert_eq!(
            remote_operator("alice on node-a", "node-b"),
            "alice on node-a on node-b"
        );
        let long = "x".repeat(1000);
        let named = remote_operator(&long, "node-b");
        assert!(named.len() < 200, "{named}");
        assert!(named.ends_with(" on node-b"));
        assert_eq!(
            remote_operator("a\u{1b}]2;t\u{7}", "n"),
            "a\\u{1b}]2;t\\u{7} on n"
        );
    }
}
