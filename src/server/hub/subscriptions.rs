//! Subscriptions (Flow streams, pub/sub) as the console's subscriptions view lists them.

use std::collections::BTreeMap;

use super::{Hub, Journal, State};
use crate::protocol::admin::{Event, PeerId, SubscriptionInfo};

#[derive(Default)]
pub(super) struct Subscriptions {
    by_peer: BTreeMap<(PeerId, String), SubscriptionInfo>,
}

impl Subscriptions {
    pub(super) fn list(&self) -> Vec<SubscriptionInfo> {
        self.by_peer.values().cloned().collect()
    }

    fn add(&mut self, journal: &mut Journal, subscription: SubscriptionInfo) {
        self.by_peer.insert(
            (subscription.peer.clone(), subscription.id.clone()),
            subscription.clone(),
        );
        journal.record(Event::SubscriptionAdded { subscription });
    }

    /// Remove a subscription; false (and no delta) when there was none.
    fn remove(&mut self, journal: &mut Journal, peer: &str, id: &str) -> bool {
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
    pub(super) fn forget(&mut self, journal: &mut Journal, peer: &str, id: &str) {
        self.by_peer.remove(&(peer.to_owned(), id.to_owned()));
        journal.record(Event::SubscriptionRemoved {
            peer: peer.to_owned(),
            id: id.to_owned(),
        });
    }
}

impl Hub {
    pub fn add_subscription(&self, subscription: SubscriptionInfo) {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            subscriptions,
            ..
        } = &mut *state;
        let Some(entry) = registry.get_mut(&subscription.peer) else {
            return;
        };
        entry.subscriptions.insert(subscription.id.clone());
        subscriptions.add(journal, subscription);
    }

    pub fn remove_subscription(&self, peer: &str, id: &str) {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            subscriptions,
            ..
        } = &mut *state;
        if let Some(entry) = registry.get_mut(peer) {
            entry.subscriptions.remove(id);
        }
        subscriptions.remove(journal, peer, id);
    }
}
