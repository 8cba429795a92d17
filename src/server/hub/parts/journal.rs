//! Where admin deltas are numbered and broadcast.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use crate::clock::now_ms;
use crate::protocol::admin::{Event, ServerMessage};
use crate::server::cluster::mirror::shown_to_other_nodes;

/// One numbered delta, serialized once for every console.
#[derive(Debug)]
pub struct Delta {
    pub seq: u64,
    pub text: Utf8Bytes,
}

/// Hands a delta to the cluster link; called under the hub lock, so it must only queue.
pub type Forward = Box<dyn Fn(&Event) + Send + Sync>;

/// Where deltas are numbered and broadcast. It lives inside the locked state, so holding a
/// `&mut Journal` proves the lock is held: a change and its delta cannot come apart.
pub(in crate::server::hub) struct Journal {
    pub(in crate::server::hub) seq: u64,
    pub(in crate::server::hub) events: broadcast::Sender<Arc<Delta>>,
    /// Where this node's deltas go for the other nodes of a cluster.
    pub(in crate::server::hub) forward: Option<Forward>,
}

impl Journal {
    /// Number a delta and tell this node's consoles and, if shown there, the other nodes.
    pub(in crate::server::hub) fn record(&mut self, event: Event) {
        if let Some(forward) = &self.forward {
            if shown_to_other_nodes(&event) {
                forward(&event);
            }
        }
        self.record_here(event);
    }

    /// A delta for this node's consoles and streams only (one that came from another node).
    pub(in crate::server::hub) fn record_here(&mut self, event: Event) {
        self.seq += 1;
        let seq = self.seq;
        // With nobody listening (no console, no Flow stream) the delta is only counted: a
        // subscriber that arrives later starts from a snapshot taken at this seq anyway.
        if !self.listening() {
            return;
        }
        let message = ServerMessage::Delta {
            seq,
            at_ms: now_ms(),
            event,
        };
        // Serializing plain data with string keys cannot fail.
        let text = serde_json::to_string(&message).unwrap_or_default();
        let _ = self.events.send(Arc::new(Delta {
            seq,
            text: text.into(),
        }));
    }

    pub(in crate::server::hub) fn listening(&self) -> bool {
        self.events.receiver_count() > 0
    }
}
