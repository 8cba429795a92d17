//! What nodes tell each other over Redis pub/sub, and what a node does with it.
//!
//! The bus itself speaks of node membership and state (hello, goodbye, the consoles' view of
//! each node, app statuses, admin commands); a dialect's messages travel as
//! [`Body::Published`], opaque here and read by the handler the dialect registered with the
//! [`crate::server::broker`].
//!
//! An [`Envelope`] is one JSON message on `{prefix}:bus` (every node) or `{prefix}:to:{id}`
//! (one node). A node ignores its own envelopes and any it cannot read: the bus is input like
//! any other, and one malformed message must not stop the others.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Cluster;
use crate::protocol::admin::{
    AppStatus, CommandEnvelope, CommandResult, Event, PeerInfo, RoomInfo,
};
use crate::server::broker::Target;
use crate::server::Shared;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: String,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A node joined or got Redis back: every node answers with its [`Body::AdminState`] and
    /// each dialect's announcement ([`crate::server::broker::Handler::announce`]).
    Hello,
    /// The sender is shutting down: forget it now rather than when its heartbeat expires.
    Goodbye,
    /// A dialect's message ([`crate::server::broker`]): the handler registered for
    /// `namespace` reads it.
    Published {
        namespace: String,
        message: serde_json::Value,
    },
    /// One of the sender's admin deltas (peers, rooms, errors), for every node's consoles.
    Admin { event: Event },
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
    CommandResult { request: u64, result: CommandResult },
    /// Several messages for the same channel, in order: what one publish carries when the
    /// sender had more than one queued.
    Batch { bodies: Vec<Body> },
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
            shared
                .broker
                .handlers()
                .announce(shared, Target::Node(&from));
            let (peers, rooms) = shared.hub.local_admin_state();
            cluster.tell(&from, Body::AdminState { peers, rooms });
        }
        Body::Admin { event } => shared.hub.apply_remote(&from, event),
        Body::AdminState { peers, rooms } => {
            cluster.announced(&from);
            shared.hub.replace_remote(&from, peers, rooms);
        }
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
        Body::Goodbye => super::forget_node(cluster, shared, &from),
        Body::Published { namespace, message } => {
            shared
                .broker
                .handlers()
                .deliver(shared, &from, &namespace, message);
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
            Body::Published {
                namespace: "ping".into(),
                message: serde_json::json!({"kind": "peer_up", "app": "demo", "identity": "p"}),
            },
            Body::Batch {
                bodies: vec![Body::Goodbye],
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
