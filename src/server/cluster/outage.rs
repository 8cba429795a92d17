//! Cross-node traffic while this node has lost Redis.

use std::sync::atomic::Ordering;

use super::Cluster;

impl Cluster {
    /// Whether a client's message for other nodes may be queued now. Once this node knows it
    /// has lost Redis the answer is no, and the message counts as dropped: queued, it would
    /// either be dropped by the publisher anyway or, were Redis back by then, arrive after the
    /// client had been told it failed and had retried it.
    pub fn can_cross(&self) -> bool {
        let ok = self.redis_ok();
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}
