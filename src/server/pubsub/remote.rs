//! Pub/sub between nodes: this dialect's namespace on the broker ([`crate::server::broker`],
//! namespace `pubsub`). Each node announces its peers and channel memberships as they change
//! (and all of them when asked), and sends channel messages to every node and `send`s to the
//! node holding the peer; what arrives is kept in the [`super::directory::Directory`] and delivered to this
//! node's members.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Dialect;
use crate::server::broker::{Handler, Target, Topic};
use crate::server::peer::Priority;
use crate::server::Shared;

/// A pub/sub peer as the other nodes know it: the app and the `peerId` clients address it by.
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
pub enum PubsubMessage {
    /// Everything the sender has: replaces what this node mirrored of it.
    State {
        peers: Vec<RemotePeer>,
        memberships: Vec<Membership>,
    },
    PeerUp(RemotePeer),
    PeerDown(RemotePeer),
    Joined(Membership),
    Left(Membership),
    /// A `message` frame for a channel's members on every node.
    ChannelMessage {
        app: String,
        channel: String,
        text: String,
    },
    /// A `direct` frame for one peer on the receiving node.
    Direct {
        app: String,
        to: String,
        text: String,
    },
}

impl Topic for PubsubMessage {
    const NAMESPACE: &'static str = "pubsub";

    fn weight(&self) -> usize {
        match self {
            PubsubMessage::ChannelMessage { text, .. } | PubsubMessage::Direct { text, .. } => {
                text.len()
            }
            _ => 0,
        }
    }
}

/// The broker's handler of the `pubsub` namespace.
pub struct Remote;

impl Handler for Remote {
    fn message(&self, shared: &Arc<Shared>, from: &str, message: Value) {
        let Ok(message) = serde_json::from_value::<PubsubMessage>(message) else {
            tracing::debug!("cluster: ignoring a malformed pub/sub message");
            return;
        };
        let directory = &shared.pubsub_elsewhere;
        match message {
            PubsubMessage::State { peers, memberships } => {
                let (joined, left) = directory.replace_node(from, peers, memberships);
                for m in left {
                    left_here(shared, &m);
                }
                for m in joined {
                    joined_here(shared, &m);
                }
            }
            PubsubMessage::PeerUp(peer) => directory.peer_up(from, peer),
            PubsubMessage::PeerDown(peer) => {
                for m in directory.peer_down(from, &peer) {
                    left_here(shared, &m);
                }
            }
            PubsubMessage::Joined(m) => {
                if directory.joined(from, m.clone()) {
                    joined_here(shared, &m);
                }
            }
            PubsubMessage::Left(m) => {
                if directory.left(from, &m) {
                    left_here(shared, &m);
                }
            }
            PubsubMessage::ChannelMessage { app, channel, text } => {
                shared.hub.deliver_to_channel(
                    Dialect::Pubsub,
                    &app,
                    &channel,
                    "",
                    &text.into(),
                    Priority::Relay,
                );
            }
            PubsubMessage::Direct { app, to, text } => {
                if let Some(target) = shared.hub.find_peer_by_identity(Dialect::Pubsub, &app, &to) {
                    shared.hub.deliver(&target, &text.into(), Priority::Relay);
                }
            }
        }
    }

    fn announce(&self, shared: &Arc<Shared>, target: Target<'_>) {
        shared.broker.send(target, || {
            let (peers, memberships) = local_state(shared);
            PubsubMessage::State { peers, memberships }
        });
    }

    /// Its peers and memberships go, and this node's presence listeners hear that they left.
    fn node_gone(&self, shared: &Arc<Shared>, node: &str) {
        for (app, channel, identities) in shared.pubsub_elsewhere.forget_node(node) {
            let names: Vec<&str> = identities.iter().map(String::as_str).collect();
            super::announce_remote_presence(shared, &app, &channel, &[], &names);
        }
    }
}

fn joined_here(shared: &Shared, m: &Membership) {
    super::announce_remote_presence(shared, &m.app, &m.channel, &[m.identity.as_str()], &[]);
}

fn left_here(shared: &Shared, m: &Membership) {
    super::announce_remote_presence(shared, &m.app, &m.channel, &[], &[m.identity.as_str()]);
}

/// This node's own pub/sub peers and memberships, read from the hub.
pub fn local_state(shared: &Shared) -> (Vec<RemotePeer>, Vec<Membership>) {
    let (_, snapshot, _) = shared.hub.subscribe();
    let here = shared.hub.node();
    let mut identities = HashMap::new();
    let mut peers = Vec::new();
    for peer in &snapshot.peers {
        // The snapshot also lists the other nodes' peers, for consoles.
        if peer.dialect != Dialect::Pubsub || peer.probe || peer.node.as_deref() != here {
            continue;
        }
        if let (Some(app), Some(identity)) = (&peer.app, &peer.identity) {
            identities.insert(peer.id.clone(), identity.clone());
            peers.push(RemotePeer {
                app: app.clone(),
                identity: identity.clone(),
            });
        }
    }
    let mut memberships = Vec::new();
    for channel in &snapshot.channels {
        if channel.dialect != Dialect::Pubsub {
            continue;
        }
        for member in &channel.members {
            if let Some(identity) = identities.get(member) {
                memberships.push(Membership {
                    app: channel.app.clone(),
                    channel: channel.name.clone(),
                    identity: identity.clone(),
                });
            }
        }
    }
    (peers, memberships)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_shape_on_the_wire() {
        let message = PubsubMessage::Joined(Membership {
            app: "demo".into(),
            channel: "demo/lobby".into(),
            identity: "peer-1".into(),
        });
        let value = serde_json::to_value(&message).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"kind": "joined", "app": "demo", "channel": "demo/lobby", "identity": "peer-1"})
        );
        assert_eq!(
            serde_json::from_value::<PubsubMessage>(value).unwrap(),
            message
        );
    }
}
