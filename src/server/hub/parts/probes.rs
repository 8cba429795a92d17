//! The server's own probe connections: a probe presents a nonce the server expects, and its
//! peer then takes the probe's frames from a sender of its own.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::protocol::admin::PeerId;

#[derive(Default)]
pub(in crate::server::hub) struct Probes {
    pub(in crate::server::hub) pending: HashMap<String, oneshot::Sender<PeerId>>,
    pub(in crate::server::hub) senders: HashMap<PeerId, mpsc::UnboundedSender<String>>,
}

impl Probes {
    /// A connection presenting `nonce` registered as `peer`: true (and its waiter told) when
    /// the nonce was expected.
    pub(in crate::server::hub) fn arrived(&mut self, nonce: &str, peer: &str) -> bool {
        self.pending
            .remove(nonce)
            .map(|waiter| {
                let _ = waiter.send(peer.to_owned());
            })
            .is_some()
    }

    pub(in crate::server::hub) fn forget_peer(&mut self, peer: &str) {
        self.senders.remove(peer);
    }
}
