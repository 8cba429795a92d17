//! Subscriptions (Flow streams, pub/sub) as the console's subscriptions view lists them.

use std::collections::BTreeMap;

use super::journal::Journal;
use crate::protocol::admin::{Event, PeerId, SubscriptionInfo};

#[derive(Default)]
pub(in crate::server::hub) struct Subscriptions {
    pub(in crate::server::hub) by_peer: BTreeMap<(PeerId, String), SubscriptionInfo>,
}

impl Subscriptions {
    pub(in crate::server::hub) fn list(&self) -> Vec<SubscriptionInfo> {
        self.by_peer.values().cloned().collect()
    }

    pub(in crate::server::hub) fn add(
        &mut self,
        journal: &mut Journal,
        subscription: SubscriptionInfo,
    ) {
        self.by_peer.insert(
            (subscription.peer.clone(), subscription.id.clone()),
            subscription.clone(),
        );
        journal.record(Event::SubscriptionAdded { subscription });
    }

    /// Remove a subscription; false (and no delta) when there was none.
    pub(in crate::server::hub) fn remove(
        &mut self,
        journal: &mut Journal,
        peer: &str,
        id: &str,
    ) -> bool {
        let removed = self
            .by_peer
            .remove(&(peer.to_owned(), id.to_owned()))
            .is_some();
        if removed {
            journal.record(Event::SubscriptionRemoved {
                peer: peer.to_owned(),
                id: id.to_owned(),
            });
        }
        removed
    }

    /// A closed peer's subscription goes, told to admins as its peer entry listed it.
    pub(in crate::server::hub) fn forget(&mut self, journal: &mut Journal, peer: &str, id: &str) {
        self.by_peer.remove(&(peer.to_owned(), id.to_owned()));
        journal.record(Event::SubscriptionRemoved {
            peer: peer.to_owned(),
            id: id.to_owned(),
        });
    }
}
