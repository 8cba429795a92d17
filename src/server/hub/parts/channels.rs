//! Channels (pub/sub, Talo): their members by handle, in an index of their own so that a
//! message fans out without the hub's lock.
//!
//! The index is changed only by methods that take the [`Journal`], which lives behind the hub's
//! lock: membership changes and their deltas happen together. Lock order: the hub's state,
//! then the index, then one channel's members.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::journal::Journal;
use crate::catalog::Dialect;
use crate::protocol::admin::{ChannelInfo, Event, PeerId};
use crate::server::peer::PeerHandle;

pub type ChannelKey = (Dialect, String, String);

/// A channel's members, held by handle so a message fans out without the hub's lock.
#[derive(Default)]
pub struct Channel {
    pub(in crate::server::hub) members: RwLock<BTreeMap<PeerId, Arc<PeerHandle>>>,
    pub(in crate::server::hub) messages: AtomicU64,
}

impl Channel {
    pub(in crate::server::hub) fn members(
        &self,
    ) -> RwLockReadGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(in crate::server::hub) fn members_mut(
        &self,
    ) -> RwLockWriteGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
pub(in crate::server::hub) struct Channels {
    pub(in crate::server::hub) index: RwLock<HashMap<ChannelKey, Arc<Channel>>>,
}

impl Channels {
    pub(in crate::server::hub) fn read(
        &self,
    ) -> RwLockReadGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(in crate::server::hub) fn write(
        &self,
    ) -> RwLockWriteGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(in crate::server::hub) fn get(&self, key: &ChannelKey) -> Option<Arc<Channel>> {
        self.read().get(key).cloned()
    }

    pub(in crate::server::hub) fn len(&self) -> usize {
        self.read().len()
    }

    pub(in crate::server::hub) fn join(
        &self,
        journal: &mut Journal,
        key: ChannelKey,
        peer: &Arc<PeerHandle>,
    ) {
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
    pub(in crate::server::hub) fn leave(
        &self,
        journal: &mut Journal,
        key: &ChannelKey,
        peer: &str,
    ) {
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
    pub(in crate::server::hub) fn infos(&self) -> Vec<ChannelInfo> {
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
    pub(in crate::server::hub) fn message_counts(&self) -> BTreeMap<String, u64> {
        self.read()
            .iter()
            .filter_map(|((dialect, app, name), channel)| {
                let messages = channel.messages.load(Ordering::Relaxed);
                (messages > 0).then(|| (format!("{}/{app}/{name}", dialect.id()), messages))
            })
            .collect()
    }
}
