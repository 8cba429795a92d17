//! The hub's methods for channels: join, leave, members, and the fan-out that takes only a
//! channel's own locks (the index is in `parts/channels.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use super::Hub;
use crate::catalog::Dialect;
use crate::server::peer::{PeerHandle, Priority};

impl Hub {
    /// Add a member; returns false when it already was one.
    pub fn channel_join(&self, peer: &Arc<PeerHandle>, app: &str, channel: &str) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let key = (peer.dialect, app.to_owned(), channel.to_owned());
        let Some(entry) = state.registry.get_mut(&peer.id) else {
            return false;
        };
        if !entry.channels.insert(key.clone()) {
            return false;
        }
        self.channels.join(&mut state.journal, key, peer);
        true
    }

    pub fn channel_leave(&self, peer: &PeerHandle, app: &str, channel: &str) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let key = (peer.dialect, app.to_owned(), channel.to_owned());
        let removed = state
            .registry
            .get_mut(&peer.id)
            .is_some_and(|entry| entry.channels.remove(&key));
        if removed {
            self.channels.leave(&mut state.journal, &key, &peer.id);
        }
        removed
    }

    /// A channel's members, for presence listings.
    pub fn channel_members(
        &self,
        dialect: Dialect,
        app: &str,
        channel: &str,
    ) -> Vec<Arc<PeerHandle>> {
        self.channels
            .get(&(dialect, app.to_owned(), channel.to_owned()))
            .map(|c| c.members().values().cloned().collect())
            .unwrap_or_default()
    }

    /// Deliver one message to a channel's members except `from`; counts the message. Takes
    /// only the channel's own locks.
    pub fn deliver_to_channel(
        &self,
        dialect: Dialect,
        app: &str,
        channel: &str,
        from: &str,
        text: &Utf8Bytes,
        priority: Priority,
    ) -> usize {
        let Some(channel) = self
            .channels
            .get(&(dialect, app.to_owned(), channel.to_owned()))
        else {
            return 0;
        };
        channel.messages.fetch_add(1, Ordering::Relaxed);
        // Tapped and stalled members are seen to after the members' read lock is released:
        // both take the hub's lock, and a peer leaving the channel holds the hub's lock while
        // it waits for the members' write lock. Empty, as it nearly always is, the list costs
        // no allocation.
        let mut after = Vec::new();
        let delivered = {
            let members = channel.members();
            members
                .values()
                .filter(|member| member.id != from)
                .filter(|member| {
                    let (queued, follow) = self.enqueue(member, text, priority);
                    if let Some(follow) = follow {
                        after.push((Arc::clone(member), follow));
                    }
                    queued
                })
                .count()
        };
        for (member, follow) in after {
            self.follow_up(&member, follow, text);
        }
        delivered
    }
}
