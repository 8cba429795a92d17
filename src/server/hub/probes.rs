//! The hub's methods for the server's own probe connections (the data is in `parts/probes.rs`).

use tokio::sync::{mpsc, oneshot};

use super::Hub;
use crate::protocol::admin::PeerId;

impl Hub {
    /// Expect a probe connection presenting `nonce`; the receiver yields its peer id.
    pub fn expect_probe(&self, nonce: String) -> oneshot::Receiver<PeerId> {
        let (sender, receiver) = oneshot::channel();
        self.lock().probes.pending.insert(nonce, sender);
        receiver
    }

    pub fn forget_probe_nonce(&self, nonce: &str) {
        self.lock().probes.pending.remove(nonce);
    }

    pub fn register_probe_sender(&self, peer: &str, sender: mpsc::UnboundedSender<String>) {
        self.lock().probes.senders.insert(peer.to_owned(), sender);
    }

    pub fn probe_sender(&self, peer: &str) -> Option<mpsc::UnboundedSender<String>> {
        self.lock().probes.senders.get(peer).cloned()
    }
}
