//! The server's own probe connections: a probe presents a nonce the server expects, and its
//! peer then takes the probe's frames from a sender of its own.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use super::Hub;
use crate::protocol::admin::PeerId;

#[derive(Default)]
pub(super) struct Probes {
    pending: HashMap<String, oneshot::Sender<PeerId>>,
    senders: HashMap<PeerId, mpsc::UnboundedSender<String>>,
}

impl Probes {
    /// A connection presenting `nonce` registered as `peer`: true (and its waiter told) when
    /// the nonce was expected.
    pub(super) fn arrived(&mut self, nonce: &str, peer: &str) -> bool {
        self.pending
            .remove(nonce)
            .map(|waiter| {
                let _ = waiter.send(peer.to_owned());
            })
            .is_some()
    }

    pub(super) fn forget_peer(&mut self, peer: &str) {
        self.senders.remove(peer);
    }
}

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
