//! Channels (pub/sub, Talo): their members by handle, in an index of their own so that a
//! message fans out without the hub's lock.
//!
//! The index is changed only by methods that take the [`Journal`], which lives behind the hub's
//! lock: membership changes and their deltas happen together. Lock order: the hub's state,
//! then the index, then one channel's members.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::ws::Utf8Bytes;

use super::{Hub, Journal};
use crate::catalog::Dialect;
use crate::protocol::admin::{ChannelInfo, Event, PeerId};
use crate::server::peer::{PeerHandle, Priority};

pub type ChannelKey = (Dialect, String, String);

/// A channel's members, held by handle so a message fans out without the hub's lock.
#[derive(Default)]
pub struct Channel {
    members: RwLock<BTreeMap<PeerId, Arc<PeerHandle>>>,
    messages: AtomicU64,
}

impl Channel {
    fn members(&self) -> RwLockReadGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn members_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
pub(super) struct Channels {
    index: RwLock<HashMap<ChannelKey, Arc<Channel>>>,
}

impl Channels {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &ChannelKey) -> Option<Arc<Channel>> {
        self.read().get(key).cloned()
    }

    pub(super) fn len(&self) -> usize {
        self.read().len()
    }

    fn join(&self, journal: &mut Journal, key: ChannelKey, peer: &Arc<PeerHandle>) {
        self.write()
            .entry(key.clone())
            .or_default()
            .members_mut()
            .insert(peer.id.clone(), peer.clone());
        let (dialect, app, channel) = key;
        journal.record(Event::ChannelJoined {
            dialect,
            app,
            channel,
            peer: peer.id.clone(),
        });
    }

    /// Take `peer` out of a channel (dropping the channel once empty).
    pub(super) fn leave(&self, journal: &mut Journal, key: &ChannelKey, peer: &str) {
        {
            let mut index = self.write();
            if let Some(channel) = index.get(key) {
                let empty = {
                    let mut members = channel.members_mut();
                    members.remove(peer);
                    members.is_empty()
                };
                if empty {
                    index.remove(key);
                }
            }
        }
        journal.record(Event::ChannelLeft {
            dialect: key.0,
            app: key.1.clone(),
            channel: key.2.clone(),
            peer: peer.to_owned(),
        });
    }

    /// The channels as a snapshot lists them, in a stable order.
    pub(super) fn infos(&self) -> Vec<ChannelInfo> {
        let index = self.read();
        let mut channels: Vec<ChannelInfo> = index
            .iter()
            .map(|((dialect, app, name), channel)| ChannelInfo {
                dialect: *dialect,
                app: app.clone(),
                name: name.clone(),
                members: channel.members().keys().cloned().collect(),
                messages: channel.messages.load(Ordering::Relaxed),
            })
            .collect();
        channels.sort_by(|a, b| (a.dialect, &a.app, &a.name).cmp(&(b.dialect, &b.app, &b.name)));
        channels
    }

    /// Messages per channel that has had any, for the stats.
    pub(super) fn message_counts(&self) -> BTreeMap<String, u64> {
        self.read()
            .iter()
            .filter_map(|((dialect, app, name), channel)| {
                let messages = channel.messages.load(Ordering::Relaxed);
                (messages > 0).then(|| (format!("{}/{app}/{name}", dialect.id()), messages))
            })
            .collect()
    }
}

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
        let members = channel.members();
        members
            .values()
            .filter(|member| member.id != from)
            .filter(|member| self.deliver(member, text, priority))
            .count()
    }
}
