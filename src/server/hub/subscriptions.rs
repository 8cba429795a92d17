//! The hub's methods for subscriptions (the list is in `parts/subscriptions.rs`).

use super::{Hub, State};
use crate::protocol::admin::SubscriptionInfo;

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
