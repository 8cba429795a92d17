//! Peers: who is connected, by id and by identity, and how many per app; registering,
//! updating, removing and kicking them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::channels::ChannelKey;
use super::journal::Journal;
use crate::catalog::Dialect;
use crate::protocol::admin::{
    ClosedPeer, Event, PeerId, PeerInfo, RecentError, RefusedJoin, RoomInfo,
};
use crate::server::peer::{PeerHandle, PeerQueues};

/// The errors a closed peer's history entry keeps.
pub const LAST_ERRORS: usize = 5;

/// Room codes a peer's history entry keeps (a peer hopping rooms all day keeps the last ones).
pub const MAX_ROOMS_PER_PEER: usize = 32;

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
    #[error("this address already holds {limit} of app {app}'s connections")]
    OverAddressShare { app: String, limit: usize },
    #[error("the server is shutting down")]
    ShuttingDown,
}

pub(in crate::server::hub) struct PeerEntry {
    pub(in crate::server::hub) handle: Arc<PeerHandle>,
    /// Identity, app, room and the rest; the counters in it are filled from the handle.
    pub(in crate::server::hub) info: PeerInfo,
    /// What to undo when the peer goes, so removal costs what the peer had, not what the
    /// server has.
    pub(in crate::server::hub) channels: BTreeSet<ChannelKey>,
    pub(in crate::server::hub) subscriptions: BTreeSet<String>,
    /// For its history entry: rooms it was in, its Signal Fish player id, its last errors.
    pub(in crate::server::hub) rooms: Vec<String>,
    pub(in crate::server::hub) player_id: Option<String>,
    pub(in crate::server::hub) last_errors: VecDeque<RecentError>,
    pub(in crate::server::hub) refused_joins: VecDeque<RefusedJoin>,
}

impl PeerEntry {
    pub(in crate::server::hub) fn info(&self) -> PeerInfo {
        let counters = self.handle.counters();
        PeerInfo {
            frames_in: counters.frames_in,
            frames_out: counters.frames_out,
            errors: counters.errors,
            frames_dropped: counters.dropped,
            round_trip_us: counters.round_trip_us,
            ..self.info.clone()
        }
    }

    /// What the history keeps of a peer that closed.
    pub(in crate::server::hub) fn closed(
        &self,
        code: Option<u16>,
        reason: String,
        recorded_frames: u32,
    ) -> ClosedPeer {
        ClosedPeer {
            peer: self.info(),
            code,
            reason,
            rooms: self.rooms.clone(),
            player_id: self.player_id.clone(),
            last_errors: self.last_errors.iter().cloned().collect(),
            recorded_frames,
            refused_joins: self.refused_joins.iter().cloned().collect(),
        }
    }
}

/// The live peers of this node.
#[derive(Default)]
pub(in crate::server::hub) struct Registry {
    pub(in crate::server::hub) next_peer: u64,
    pub(in crate::server::hub) peers: BTreeMap<PeerId, PeerEntry>,
    /// Live peers per app (any dialect) and per dialect and app, kept as peers come, go and
    /// authenticate, so limits are checked without walking every peer.
    pub(in crate::server::hub) peers_per_app: HashMap<String, usize>,
    pub(in crate::server::hub) peers_per_dialect_app: HashMap<(Dialect, String), usize>,
    /// Live peers per app and address (IPv6 by its /64): an address's share of the app.
    pub(in crate::server::hub) peers_per_app_address: HashMap<(String, IpAddr), usize>,
    /// Peers by (dialect, identity): pub/sub `send` targets and REST kicks by peerId.
    pub(in crate::server::hub) identities: HashMap<(Dialect, String), BTreeSet<PeerId>>,
}

impl Registry {
    pub(in crate::server::hub) fn get(&self, id: &str) -> Option<&PeerEntry> {
        self.peers.get(id)
    }

    pub(in crate::server::hub) fn get_mut(&mut self, id: &str) -> Option<&mut PeerEntry> {
        self.peers.get_mut(id)
    }

    pub(in crate::server::hub) fn entries(&self) -> impl Iterator<Item = (&PeerId, &PeerEntry)> {
        self.peers.iter()
    }

    pub(in crate::server::hub) fn infos(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers.values().map(PeerEntry::info)
    }

    pub(in crate::server::hub) fn handles(&self) -> impl Iterator<Item = &Arc<PeerHandle>> {
        self.peers.values().map(|p| &p.handle)
    }

    pub(in crate::server::hub) fn dialects(&self) -> impl Iterator<Item = Dialect> + '_ {
        self.peers.values().map(|p| p.info.dialect)
    }

    pub(in crate::server::hub) fn len(&self) -> usize {
        self.peers.len()
    }

    /// Peers whose counters moved since the last tick (the flags are cleared as they are read).
    pub(in crate::server::hub) fn changed_counters(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers
            .values()
            .filter(|p| p.handle.take_counters_changed())
            .map(PeerEntry::info)
    }

    pub(in crate::server::hub) fn clear_counter_flags(&self) {
        for peer in self.peers.values() {
            peer.handle.take_counters_changed();
        }
    }

    /// Live peers of `app` here, any dialect.
    pub(in crate::server::hub) fn app_count(&self, app: &str) -> usize {
        self.peers_per_app.get(app).copied().unwrap_or(0)
    }

    pub(in crate::server::hub) fn per_app(&self) -> impl Iterator<Item = (&String, usize)> {
        self.peers_per_app.iter().map(|(app, n)| (app, *n))
    }

    pub(in crate::server::hub) fn per_dialect_app(
        &self,
    ) -> impl Iterator<Item = (&(Dialect, String), usize)> {
        self.peers_per_dialect_app.iter().map(|(key, n)| (key, *n))
    }

    pub(in crate::server::hub) fn dialect_app_count(&self, dialect: Dialect, app: &str) -> usize {
        self.peers_per_dialect_app
            .get(&(dialect, app.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub(in crate::server::hub) fn next_id(&mut self, node: Option<&str>) -> PeerId {
        self.next_peer += 1;
        // In a cluster, ids name their node, so that every node's peers can share one console
        // and a command finds the node that holds its peer.
        match node {
            Some(node) => format!("{node}.p{}", self.next_peer),
            None => format!("p{}", self.next_peer),
        }
    }

    pub(in crate::server::hub) fn insert(
        &mut self,
        journal: &mut Journal,
        handle: Arc<PeerHandle>,
        info: PeerInfo,
    ) {
        self.count_peer(info.dialect, info.app.as_ref(), &info.addr, 1);
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
                refused_joins: VecDeque::new(),
            },
        );
        journal.record(Event::PeerConnected { peer: info });
    }

    pub(in crate::server::hub) fn update(
        &mut self,
        journal: &mut Journal,
        id: &str,
        change: impl FnOnce(&mut PeerInfo),
    ) {
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
            let addr = info.addr.clone();
            self.count_peer(dialect, before.0.as_ref(), &addr, -1);
            self.count_peer(dialect, after.0.as_ref(), &addr, 1);
        }
        if before.1 != after.1 {
            self.index_identity(dialect, before.1.as_ref(), id, false);
            self.index_identity(dialect, after.1.as_ref(), id, true);
        }
        journal.record(Event::PeerUpdated { peer: info });
    }

    /// Take a peer out of the indexes and counts; the caller undoes the rest.
    pub(in crate::server::hub) fn remove(&mut self, id: &str) -> Option<PeerEntry> {
        let peer = self.peers.remove(id)?;
        self.count_peer(
            peer.info.dialect,
            peer.info.app.as_ref(),
            &peer.info.addr,
            -1,
        );
        self.index_identity(peer.info.dialect, peer.info.identity.as_ref(), id, false);
        Some(peer)
    }

    /// Keep an error a peer was sent, for its history entry.
    pub(in crate::server::hub) fn note_error(&mut self, id: &str, error: RecentError) {
        if let Some(entry) = self.peers.get_mut(id) {
            if entry.last_errors.len() >= LAST_ERRORS {
                entry.last_errors.pop_front();
            }
            entry.last_errors.push_back(error);
        }
    }

    /// Keep a join the server refused the peer, for its history entry.
    pub(in crate::server::hub) fn note_refused_join(&mut self, id: &str, refused: RefusedJoin) {
        if let Some(entry) = self.peers.get_mut(id) {
            if entry.refused_joins.len() >= LAST_ERRORS {
                entry.refused_joins.pop_front();
            }
            entry.refused_joins.push_back(refused);
        }
    }

    /// Members learn their player id from a room: it links a player's connections across
    /// reconnects in the history.
    pub(in crate::server::hub) fn note_player_ids(&mut self, room: &RoomInfo) {
        for member in room.players.iter().chain(&room.spectators) {
            if let Some(entry) = member.peer.as_ref().and_then(|p| self.peers.get_mut(p)) {
                if entry.player_id.as_ref() != Some(&member.player_id) {
                    entry.player_id = Some(member.player_id.clone());
                }
            }
        }
    }

    pub(in crate::server::hub) fn count_peer(
        &mut self,
        dialect: Dialect,
        app: Option<&String>,
        addr: &str,
        delta: isize,
    ) {
        let Some(app) = app else { return };
        adjust(&mut self.peers_per_app, app.clone(), delta);
        adjust(
            &mut self.peers_per_dialect_app,
            (dialect, app.clone()),
            delta,
        );
        if let Some(address) = address_of(addr) {
            adjust(
                &mut self.peers_per_app_address,
                (app.clone(), address),
                delta,
            );
        }
    }

    /// Live peers of `app` here from the address (and /64) a peer connected from.
    pub(in crate::server::hub) fn app_address_count(&self, app: &str, addr: &str) -> usize {
        address_of(addr)
            .and_then(|address| {
                self.peers_per_app_address
                    .get(&(app.to_owned(), address))
                    .copied()
            })
            .unwrap_or(0)
    }

    pub(in crate::server::hub) fn index_identity(
        &mut self,
        dialect: Dialect,
        identity: Option<&String>,
        id: &str,
        add: bool,
    ) {
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

/// Count a peer in or out of one of the registry's tallies, dropping keys that reach zero.
fn adjust<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K, delta: isize) {
    match counts.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut entry) => {
            *entry.get_mut() = entry.get().saturating_add_signed(delta);
            if *entry.get() == 0 {
                entry.remove();
            }
        }
        std::collections::hash_map::Entry::Vacant(entry) => {
            if delta > 0 {
                entry.insert(delta.unsigned_abs());
            }
        }
    }
}

/// The address a peer's share is counted under (IPv6 by its /64); an address that does not
/// parse is not counted.
fn address_of(addr: &str) -> Option<IpAddr> {
    addr.parse::<SocketAddr>()
        .ok()
        .map(|addr| crate::server::auth_failures::address_key(addr.ip()))
}
