//! Peers: who is connected, by id and by identity, and how many per app; registering,
//! updating, removing and kicking them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::{ChannelKey, Hub, Journal, State, MAX_ROOMS_PER_PEER};
use crate::catalog::Dialect;
use crate::clock::now_ms;
use crate::protocol::admin::{
    Closed, ClosedPeer, Event, HistoryEntry, PeerId, PeerInfo, RecentError, RoomInfo,
};
use crate::server::peer::{Control, PeerHandle, PeerQueues};

/// A registered peer: its handle for the data path, its queues for its connection task.
pub struct PeerLink {
    pub handle: Arc<PeerHandle>,
    pub queues: PeerQueues,
}

impl PeerLink {
    pub fn id(&self) -> &str {
        &self.handle.id
    }
}

pub struct NewPeer {
    pub dialect: Dialect,
    pub app: Option<String>,
    pub identity: Option<String>,
    pub addr: String,
    /// The `x-relaydeck-probe` nonce the connection presented, if any.
    pub probe_nonce: Option<String>,
}

impl NewPeer {
    /// A connection that has not said who it is yet (its dialect authenticates in-band).
    pub fn anonymous(
        dialect: Dialect,
        addr: std::net::SocketAddr,
        probe_nonce: Option<String>,
    ) -> NewPeer {
        NewPeer {
            dialect,
            app: None,
            identity: None,
            addr: addr.to_string(),
            probe_nonce,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("app {app} already has {limit} connections")]
    OverConcurrentLimit { app: String, limit: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
}

pub(super) struct PeerEntry {
    pub(super) handle: Arc<PeerHandle>,
    /// Identity, app, room and the rest; the counters in it are filled from the handle.
    pub(super) info: PeerInfo,
    /// What to undo when the peer goes, so removal costs what the peer had, not what the
    /// server has.
    pub(super) channels: BTreeSet<ChannelKey>,
    pub(super) subscriptions: BTreeSet<String>,
    /// For its history entry: rooms it was in, its Signal Fish player id, its last errors.
    pub(super) rooms: Vec<String>,
    player_id: Option<String>,
    last_errors: VecDeque<RecentError>,
}

impl PeerEntry {
    pub(super) fn info(&self) -> PeerInfo {
        let counters = self.handle.counters();
        PeerInfo {
            frames_in: counters.frames_in,
            frames_out: counters.frames_out,
            errors: counters.errors,
            ..self.info.clone()
        }
    }

    /// What the history keeps of a peer that closed.
    fn closed(&self, code: Option<u16>, reason: String, recorded_frames: u32) -> ClosedPeer {
        ClosedPeer {
            peer: self.info(),
            code,
            reason,
            rooms: self.rooms.clone(),
            player_id: self.player_id.clone(),
            last_errors: self.last_errors.iter().cloned().collect(),
            recorded_frames,
        }
    }
}

/// The live peers of this node.
#[derive(Default)]
pub(super) struct Registry {
    next_peer: u64,
    peers: BTreeMap<PeerId, PeerEntry>,
    /// Live peers per app (any dialect) and per dialect and app, kept as peers come, go and
    /// authenticate, so limits are checked without walking every peer.
    peers_per_app: HashMap<String, usize>,
    peers_per_dialect_app: HashMap<(Dialect, String), usize>,
    /// Peers by (dialect, identity): pub/sub `send` targets and REST kicks by peerId.
    identities: HashMap<(Dialect, String), BTreeSet<PeerId>>,
}

impl Registry {
    pub(super) fn get(&self, id: &str) -> Option<&PeerEntry> {
        self.peers.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut PeerEntry> {
        self.peers.get_mut(id)
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = (&PeerId, &PeerEntry)> {
        self.peers.iter()
    }

    pub(super) fn infos(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers.values().map(PeerEntry::info)
    }

    pub(super) fn handles(&self) -> impl Iterator<Item = &Arc<PeerHandle>> {
        self.peers.values().map(|p| &p.handle)
    }

    pub(super) fn dialects(&self) -> impl Iterator<Item = Dialect> + '_ {
        self.peers.values().map(|p| p.info.dialect)
    }

    pub(super) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Peers whose counters moved since the last tick (the flags are cleared as they are read).
    pub(super) fn changed_counters(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers
            .values()
            .filter(|p| p.handle.take_counters_changed())
            .map(PeerEntry::info)
    }

    pub(super) fn clear_counter_flags(&self) {
        for peer in self.peers.values() {
            peer.handle.take_counters_changed();
        }
    }

    /// Live peers of `app` here, any dialect.
    pub(super) fn app_count(&self, app: &str) -> usize {
        self.peers_per_app.get(app).copied().unwrap_or(0)
    }

    pub(super) fn per_app(&self) -> impl Iterator<Item = (&String, usize)> {
        self.peers_per_app.iter().map(|(app, n)| (app, *n))
    }

    pub(super) fn per_dialect_app(&self) -> impl Iterator<Item = (&(Dialect, String), usize)> {
        self.peers_per_dialect_app.iter().map(|(key, n)| (key, *n))
    }

    pub(super) fn dialect_app_count(&self, dialect: Dialect, app: &str) -> usize {
        self.peers_per_dialect_app
            .get(&(dialect, app.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn next_id(&mut self, node: Option<&str>) -> PeerId {
        self.next_peer += 1;
        // In a cluster, ids name their node, so that every node's peers can share one console
        // and a command finds the node that holds its peer.
        match node {
            Some(node) => format!("{node}.p{}", self.next_peer),
            None => format!("p{}", self.next_peer),
        }
    }

    fn insert(&mut self, journal: &mut Journal, handle: Arc<PeerHandle>, info: PeerInfo) {
        self.count_peer(info.dialect, info.app.as_ref(), 1);
        self.index_identity(info.dialect, info.identity.as_ref(), &info.id, true);
        self.peers.insert(
            info.id.clone(),
            PeerEntry {
                handle,
                info: info.clone(),
                channels: BTreeSet::new(),
                subscriptions: BTreeSet::new(),
                rooms: Vec::new(),
                player_id: None,
                last_errors: VecDeque::new(),
            },
        );
        journal.record(Event::PeerConnected { peer: info });
    }

    fn update(&mut self, journal: &mut Journal, id: &str, change: impl FnOnce(&mut PeerInfo)) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        let before = (peer.info.app.clone(), peer.info.identity.clone());
        change(&mut peer.info);
        let dialect = peer.info.dialect;
        let after = (peer.info.app.clone(), peer.info.identity.clone());
        if let Some(room) = &peer.info.room {
            if peer.rooms.last() != Some(room) {
                if peer.rooms.len() >= MAX_ROOMS_PER_PEER {
                    peer.rooms.remove(0);
                }
                peer.rooms.push(room.clone());
            }
        }
        let info = peer.info();
        if before.0 != after.0 {
            self.count_peer(dialect, before.0.as_ref(), -1);
            self.count_peer(dialect, after.0.as_ref(), 1);
        }
        if before.1 != after.1 {
            self.index_identity(dialect, before.1.as_ref(), id, false);
            self.index_identity(dialect, after.1.as_ref(), id, true);
        }
        journal.record(Event::PeerUpdated { peer: info });
    }

    /// Take a peer out of the indexes and counts; the caller undoes the rest.
    fn remove(&mut self, id: &str) -> Option<PeerEntry> {
        let peer = self.peers.remove(id)?;
        self.count_peer(peer.info.dialect, peer.info.app.as_ref(), -1);
        self.index_identity(peer.info.dialect, peer.info.identity.as_ref(), id, false);
        Some(peer)
    }

    /// Keep an error a peer was sent, for its history entry.
    pub(super) fn note_error(&mut self, id: &str, error: RecentError) {
        if let Some(entry) = self.peers.get_mut(id) {
            if entry.last_errors.len() >= super::LAST_ERRORS {
                entry.last_errors.pop_front();
            }
            entry.last_errors.push_back(error);
        }
    }

    /// Members learn their player id from a room: it links a player's connections across
    /// reconnects in the history.
    pub(super) fn note_player_ids(&mut self, room: &RoomInfo) {
        for member in room.players.iter().chain(&room.spectators) {
            if let Some(entry) = member.peer.as_ref().and_then(|p| self.peers.get_mut(p)) {
                if entry.player_id.as_ref() != Some(&member.player_id) {
                    entry.player_id = Some(member.player_id.clone());
                }
            }
        }
    }

    fn count_peer(&mut self, dialect: Dialect, app: Option<&String>, delta: isize) {
        let Some(app) = app else { return };
        for count in [
            self.peers_per_app.entry(app.clone()).or_default(),
            self.peers_per_dialect_app
                .entry((dialect, app.clone()))
                .or_default(),
        ] {
            *count = count.saturating_add_signed(delta);
        }
        if self.peers_per_app.get(app) == Some(&0) {
            self.peers_per_app.remove(app);
        }
        if self.peers_per_dialect_app.get(&(dialect, app.clone())) == Some(&0) {
            self.peers_per_dialect_app.remove(&(dialect, app.clone()));
        }
    }

    fn index_identity(&mut self, dialect: Dialect, identity: Option<&String>, id: &str, add: bool) {
        let Some(identity) = identity else { return };
        let key = (dialect, identity.clone());
        if add {
            self.identities
                .entry(key)
                .or_default()
                .insert(id.to_owned());
        } else if let Some(set) = self.identities.get_mut(&key) {
            set.remove(id);
            if set.is_empty() {
                self.identities.remove(&key);
            }
        }
    }
}

impl Hub {
    pub fn register_peer(
        &self,
        new: NewPeer,
        app_limit: Option<usize>,
    ) -> Result<PeerLink, RegisterError> {
        let mut state = self.lock();
        if state.shutting_down {
            return Err(RegisterError::ShuttingDown);
        }
        if let (Some(app), Some(limit)) = (&new.app, app_limit) {
            let here = state.registry.app_count(app);
            if here.saturating_add(state.apps.remote_peers(app)) >= limit {
                return Err(RegisterError::OverConcurrentLimit {
                    app: app.clone(),
                    limit,
                });
            }
        }
        let id = state.registry.next_id(self.node());
        let probe = new
            .probe_nonce
            .as_ref()
            .is_some_and(|nonce| state.probes.arrived(nonce, &id));
        let (handle, queues) = PeerHandle::new(
            id.clone(),
            new.dialect,
            self.config.outbox,
            probe,
            Some(&self.recorder),
        );
        let info = PeerInfo {
            id,
            dialect: new.dialect,
            app: new.app,
            identity: new.identity,
            addr: new.addr,
            connected_at_ms: now_ms(),
            room: None,
            probe,
            frames_in: 0,
            frames_out: 0,
            errors: 0,
            node: self.node().map(str::to_owned),
        };
        let State {
            journal, registry, ..
        } = &mut *state;
        registry.insert(journal, handle.clone(), info);
        Ok(PeerLink { handle, queues })
    }

    pub fn update_peer(&self, id: &str, change: impl FnOnce(&mut PeerInfo)) {
        let mut state = self.lock();
        let State {
            journal, registry, ..
        } = &mut *state;
        registry.update(journal, id, change);
    }

    pub fn peer(&self, id: &str) -> Option<PeerInfo> {
        self.lock().registry.get(id).map(PeerEntry::info)
    }

    /// The handle of a live peer, for callers that deliver to it repeatedly.
    pub fn handle(&self, id: &str) -> Option<Arc<PeerHandle>> {
        self.lock().registry.get(id).map(|p| p.handle.clone())
    }

    /// The peers of a dialect and app whose identity is `identity` (pub/sub `send` targets).
    pub fn find_peer_by_identity(
        &self,
        dialect: Dialect,
        app: &str,
        identity: &str,
    ) -> Option<Arc<PeerHandle>> {
        let state = self.lock();
        let registry = &state.registry;
        registry
            .identities
            .get(&(dialect, identity.to_owned()))?
            .iter()
            .filter_map(|id| registry.peers.get(id))
            .find(|p| p.info.app.as_deref() == Some(app))
            .map(|p| p.handle.clone())
    }

    /// A peer named by its hub id or, failing that, by its identity in `dialect` (the
    /// pub/sub `peerId` a backend knows). An identity live in several apps is ambiguous.
    pub fn resolve_peer(&self, name: &str, dialect: Dialect) -> Result<PeerId, String> {
        let state = self.lock();
        if state.registry.peers.contains_key(name) {
            return Ok(name.to_owned());
        }
        let matching = state.registry.identities.get(&(dialect, name.to_owned()));
        let mut matching = matching.into_iter().flatten();
        match (matching.next(), matching.next()) {
            (Some(peer), None) => Ok(peer.clone()),
            (Some(_), Some(_)) => Err(format!(
                "{name} is live in several apps; name the peer by its hub id"
            )),
            (None, _) => Err(format!("no peer {name}")),
        }
    }

    /// Forget a peer whose connection ended; `client_close` is the close the client sent, if
    /// any. Channel memberships and subscriptions go with it; the channels it left are
    /// returned (for presence notices).
    pub fn remove_peer(&self, id: &str, client_close: Option<(u16, String)>) -> Vec<ChannelKey> {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            subscriptions,
            probes,
            history,
            ..
        } = &mut *state;
        let Some(peer) = registry.remove(id) else {
            return Vec::new();
        };
        probes.forget_peer(id);
        let (code, reason) = match (peer.handle.closing().cloned(), client_close) {
            (Some((code, reason)), _) => (Some(code), reason),
            // A client that closes without a code (1005) closed normally as far as it is
            // concerned; reporting 1005 would dress a clean goodbye up as an error.
            (None, Some((1005, _))) => (None, "closed by the client".to_owned()),
            (None, Some((code, reason))) if reason.is_empty() => {
                (Some(code), "closed by the client".to_owned())
            }
            (None, Some((code, reason))) => (Some(code), format!("closed by the client: {reason}")),
            (None, None) => (None, "connection dropped".to_owned()),
        };
        for key in &peer.channels {
            self.channels.leave(journal, key, id);
        }
        for subscription in &peer.subscriptions {
            subscriptions.forget(journal, id, subscription);
        }
        let ring = peer.handle.recording().map(|r| r.take());
        let path = peer
            .handle
            .recording()
            .and_then(|r| r.path().map(str::to_owned));
        let recorded = ring.as_ref().map_or(0, |r| r.len() as u32);
        let entry = HistoryEntry {
            closed_at_ms: now_ms(),
            closed: Closed::Peer(Box::new(peer.closed(code, reason.clone(), recorded))),
        };
        journal.record(Event::PeerClosed {
            peer: id.to_owned(),
            code,
            reason,
        });
        history.add(journal, self.config.history, entry, path, ring);
        if registry.len() == 0 {
            self.peers_gone.notify_waiters();
        }
        peer.channels.into_iter().collect()
    }

    /// Peers of a dialect and app that have said who they are.
    pub fn identified_peers(&self, dialect: Dialect, app: &str) -> Vec<Arc<PeerHandle>> {
        self.lock()
            .registry
            .peers
            .values()
            .filter(|p| {
                p.info.dialect == dialect
                    && p.info.app.as_deref() == Some(app)
                    && p.info.identity.is_some()
            })
            .map(|p| p.handle.clone())
            .collect()
    }

    /// Live peers of an app in one dialect, on every node of a cluster (as their last
    /// heartbeats reported the others).
    pub fn app_peer_count(&self, dialect: Dialect, app: &str) -> usize {
        let state = self.lock();
        let here = state.registry.dialect_app_count(dialect, app);
        here.saturating_add(state.apps.remote_dialect_peers(dialect, app))
    }

    pub fn peer_count(&self) -> usize {
        self.lock().registry.len()
    }

    /// Tell a peer's connection task something.
    pub fn control(&self, id: &str, control: Control) -> bool {
        self.handle(id).is_some_and(|p| p.control(control))
    }

    pub fn kick(&self, id: &str, reason: Option<String>) -> Result<PeerInfo, String> {
        let state = self.lock();
        let peer = state
            .registry
            .get(id)
            .ok_or_else(|| format!("no peer {id}"))?;
        if peer.handle.closing().is_some() || !peer.handle.control(Control::Kick { reason }) {
            return Err(format!("peer {id} is already closing"));
        }
        Ok(peer.info())
    }

    pub fn set_tap(&self, id: &str, on: bool) -> Result<(), String> {
        let state = self.lock();
        let peer = state
            .registry
            .get(id)
            .ok_or_else(|| format!("no peer {id}"))?;
        peer.handle.set_tapped(on);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::server::config::Config;
    use crate::server::peer::Priority;

    #[test]
    fn removing_a_peer_undoes_its_channels_subscriptions_and_counts() {
        let hub = Hub::new(Config::demo(), "test".into(), &BTreeMap::new(), 64);
        let new = |identity: &str| NewPeer {
            dialect: Dialect::Pubsub,
            app: Some("demo".into()),
            identity: Some(identity.into()),
            addr: "127.0.0.1:1".into(),
            probe_nonce: None,
        };
        let alice = hub.register_peer(new("alice"), None).unwrap();
        let bob = hub.register_peer(new("bob"), Some(2)).unwrap();
        assert_eq!(
            hub.register_peer(new("carol"), Some(2)).err(),
            Some(RegisterError::OverConcurrentLimit {
                app: "demo".into(),
                limit: 2
            })
        );
        assert!(hub.channel_join(&alice.handle, "demo", "lobby"));
        assert!(hub.channel_join(&bob.handle, "demo", "lobby"));
        assert!(!hub.channel_join(&bob.handle, "demo", "lobby"));
        let text: Utf8Bytes = "hi".into();
        assert_eq!(
            hub.deliver_to_channel(
                Dialect::Pubsub,
                "demo",
                "lobby",
                alice.id(),
                &text,
                Priority::Relay
            ),
            1
        );
        assert_eq!(
            hub.find_peer_by_identity(Dialect::Pubsub, "demo", "bob")
                .map(|p| p.id.clone()),
            Some(bob.id().to_owned())
        );
        let left = hub.remove_peer(bob.id(), None);
        assert_eq!(left, vec![(Dialect::Pubsub, "demo".into(), "lobby".into())]);
        assert!(hub
            .find_peer_by_identity(Dialect::Pubsub, "demo", "bob")
            .is_none());
        assert_eq!(hub.app_peer_count(Dialect::Pubsub, "demo"), 1);
        hub.remove_peer(alice.id(), None);
        assert!(hub
            .channel_members(Dialect::Pubsub, "demo", "lobby")
            .is_empty());
        let (_, snapshot, _) = hub.subscribe();
        assert!(snapshot.channels.is_empty() && snapshot.peers.is_empty());
    }
}
