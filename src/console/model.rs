//! What the console knows of the server: a pure reducer of the admin snapshot and its numbered
//! deltas. [`Model::apply`] is the only way it changes; it reports what it touched, so that
//! tables can follow a delta without recomputing everything, and what happened worth a log
//! line. No I/O, no clock: the bench drives it exactly as the console does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;

pub use super::history::{history_key, History, HistoryMoves};
use super::log::LogKind;
use crate::catalog::{self, Delivery, Dialect, Entry};
use crate::protocol::admin::{
    AppInfo, BanInfo, ChannelInfo, Closed, CommandResult, Event, FaultInfo, HistoryEntry, NodeInfo,
    PeerInfo, RoomInfo, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};

/// Stats samples kept for the sparklines (one a second).
pub const RATE_HISTORY: usize = 120;
/// Error codes kept for the overview's top list.
pub const TOP_ERRORS: usize = 20;

pub type ChannelKey = (Dialect, String, String);

/// Live peers per app; counted once per peer on every snapshot, hence the quick hasher.
pub type AppCounts = HashMap<String, usize, foldhash::fast::RandomState>;

/// The live peers, by id; the tables keep the order people read them in.
///
/// Peers stay in the vector the snapshot brought them in, found through a table of their
/// positions: a 100,000-peer snapshot then moves no peer (a set of whole peers moved 20 MB
/// into scattered slots, most of a snapshot's cost) and builds a table of 100,000 small
/// positions. Hashed with foldhash: ids come from the server, not from whoever connects.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    all: Vec<PeerInfo>,
    /// Positions in `all`, hashed by the id of the peer there.
    by_id: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl Peers {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn position(&self, id: &str) -> Option<usize> {
        let all = &self.all;
        self.by_id
            .find(self.hash(id), |&at| all.get(at).is_some_and(|p| p.id == id))
            .copied()
    }

    pub fn get(&self, id: &str) -> Option<&PeerInfo> {
        self.all.get(self.position(id)?)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &PeerInfo> {
        self.all.iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.all.iter().map(|p| &p.id)
    }

    /// Insert or replace; returns what was there.
    pub fn insert(&mut self, peer: PeerInfo) -> Option<PeerInfo> {
        if let Some(slot) = self.position(&peer.id).and_then(|at| self.all.get_mut(at)) {
            return Some(std::mem::replace(slot, peer));
        }
        let hash = self.hash(&peer.id);
        let at = self.all.len();
        self.all.push(peer);
        let (all, hasher) = (&self.all, &self.hasher);
        self.by_id.insert_unique(hash, at, |&i| {
            hasher.hash_one(all.get(i).map_or("", |p| p.id.as_str()))
        });
        None
    }

    pub fn remove(&mut self, id: &str) -> Option<PeerInfo> {
        let hash = self.hash(id);
        let all = &self.all;
        let entry = self
            .by_id
            .find_entry(hash, |&at| all.get(at).is_some_and(|p| p.id == id))
            .ok()?;
        let (at, _) = entry.remove();
        if at >= self.all.len() {
            return None;
        }
        let removed = self.all.swap_remove(at);
        // The last peer moved into the freed place: its entry follows it.
        if let Some(moved) = self.all.get(at) {
            let last = self.all.len();
            let moved_hash = self.hasher.hash_one(moved.id.as_str());
            if let Some(slot) = self.by_id.find_mut(moved_hash, |&i| i == last) {
                *slot = at;
            }
        }
        Some(removed)
    }
}

impl FromIterator<PeerInfo> for Peers {
    /// Peers in the order given; of two with one id, the first is kept.
    fn from_iter<I: IntoIterator<Item = PeerInfo>>(iter: I) -> Self {
        let mut peers = Peers {
            all: iter.into_iter().collect(),
            by_id: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        };
        peers.by_id.reserve(peers.all.len(), |_| 0);
        let mut duplicates = Vec::new();
        let (all, hasher, by_id) = (&peers.all, &peers.hasher, &mut peers.by_id);
        for (at, peer) in all.iter().enumerate() {
            let hash = hasher.hash_one(peer.id.as_str());
            let seen = by_id
                .find(hash, |&i| all.get(i).is_some_and(|p| p.id == peer.id))
                .is_some();
            if seen {
                duplicates.push(at);
            } else {
                by_id.insert_unique(hash, at, |&i| {
                    hasher.hash_one(all.get(i).map_or("", |p| p.id.as_str()))
                });
            }
        }
        if duplicates.is_empty() {
            return peers;
        }
        // A server never sends one id twice; should one, the positions are built again
        // without the later copies.
        let mut at = 0;
        let all = std::mem::take(&mut peers.all);
        let kept = all.into_iter().filter(|_| {
            let keep = duplicates.binary_search(&at).is_err();
            at += 1;
            keep
        });
        kept.collect::<Vec<_>>().into_iter().collect()
    }
}

/// What a snapshot replaced: large, and slow to free, so the caller may free it elsewhere.
#[derive(Debug, Default)]
pub struct Retired {
    pub peers: Peers,
    pub rooms: BTreeMap<String, RoomInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub server: ServerInfo,
    pub apps: Vec<AppInfo>,
    pub peers: Peers,
    pub rooms: BTreeMap<String, RoomInfo>,
    pub channels: BTreeMap<ChannelKey, ChannelInfo>,
    pub subscriptions: BTreeMap<(String, String), SubscriptionInfo>,
    pub faults: Vec<FaultInfo>,
    pub stats: Stats,
    /// The last delta (or snapshot) applied.
    pub seq: u64,
    /// False from a gap in the deltas (or a lost link) until the next snapshot.
    pub synced: bool,
    /// Live peers by dialect and by app, kept as peers come and go so that no view counts
    /// every peer to show a number.
    pub peers_by_dialect: BTreeMap<Dialect, usize>,
    pub peers_by_app: AppCounts,
    /// (frames/s, errors/s) per stats tick.
    pub rates: VecDeque<(u64, u64)>,
    last_totals: Option<(u64, u64)>,
    /// The most frequent error codes since the server started, with their catalog entries.
    pub top_errors: Vec<(String, u64, Option<&'static Entry>)>,
    /// Closed peers and rooms, oldest first, trimmed as the server trims its own
    /// ([`ServerInfo::history`]).
    pub history: History,
    /// Bans in force, by id.
    pub bans: BTreeMap<u64, BanInfo>,
    /// The cluster's nodes, with rates from the previous list (empty when running alone).
    pub nodes: Vec<NodeRow>,
    /// The server's clock as of the last delta: ages and expiries are measured against it, so
    /// the model needs no clock of its own and a console with a skewed clock still agrees
    /// with the server.
    pub server_ms: u64,
}

/// What one message changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// A snapshot replaced everything.
    pub everything: bool,
    pub peer: Option<PeerChange>,
    pub room: Option<RoomChange>,
    pub channels: bool,
    pub subscriptions: bool,
    pub apps: bool,
    pub stats: bool,
    /// Something for the log.
    pub happened: Option<Happening>,
    /// Deltas `from..=to` never arrived.
    pub gap: Option<(u64, u64)>,
    /// The answer to one of this console's commands.
    pub result: Option<CommandResult>,
    /// What a snapshot replaced.
    pub retired: Option<Retired>,
    /// The history gained or lost entries.
    pub history: bool,
    /// Which, when a table can follow them one by one (`None` with `history`: rebuild).
    pub history_moves: Option<HistoryMoves>,
    /// A ban was added or lifted.
    pub bans: bool,
    /// A new node list arrived.
    pub nodes: bool,
}

/// A cluster node and its rates since the list before (`None` for a node seen once).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub info: NodeInfo,
    pub frames_per_s: Option<u64>,
    pub errors_per_s: Option<u64>,
}

/// A peer that connected, changed or closed, with what it was before.
#[derive(Debug, PartialEq)]
pub struct PeerChange {
    pub id: String,
    pub before: Option<PeerInfo>,
}

/// A room that opened, changed or closed, with what it was before.
#[derive(Debug, PartialEq)]
pub struct RoomChange {
    pub code: String,
    pub before: Option<RoomInfo>,
}

/// A thing that happened on the server, as the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Happening {
    pub at_ms: u64,
    pub peer: Option<String>,
    pub dialect: Option<Dialect>,
    pub kind: LogKind,
}

impl Model {
    pub fn peer(&self, id: &str) -> Option<&PeerInfo> {
        self.peers.get(id)
    }

    /// Apply one admin message.
    pub fn apply(&mut self, message: ServerMessage) -> Applied {
        match message {
            ServerMessage::Snapshot { seq, snapshot } => {
                let retired = self.replace(*snapshot);
                self.seq = seq;
                self.synced = true;
                Applied {
                    everything: true,
                    retired: Some(retired),
                    ..Applied::default()
                }
            }
            ServerMessage::Delta { seq, at_ms, event } => {
                // The server bridges its own gaps with a snapshot; a gap without one means the
                // model cannot be trusted until the next snapshot.
                let gap = (self.synced && seq != self.seq.wrapping_add(1))
                    .then(|| (self.seq.wrapping_add(1), seq.wrapping_sub(1)));
                if gap.is_some() {
                    self.synced = false;
                }
                self.seq = seq;
                self.server_ms = self.server_ms.max(at_ms);
                let mut applied = self.apply_event(at_ms, event);
                applied.gap = gap;
                applied
            }
            ServerMessage::Result(result) => Applied {
                result: Some(result),
                ..Applied::default()
            },
        }
    }

    /// The link broke: what is shown is the last known state until a snapshot arrives.
    pub fn link_lost(&mut self) {
        self.synced = false;
    }

    fn replace(&mut self, snapshot: Snapshot) -> Retired {
        self.server = snapshot.server;
        self.apps = snapshot.apps;
        let peers = std::mem::replace(&mut self.peers, snapshot.peers.into_iter().collect());
        let rooms = std::mem::replace(
            &mut self.rooms,
            snapshot
                .rooms
                .into_iter()
                .map(|r| (r.code.clone(), r))
                .collect(),
        );
        self.channels = snapshot
            .channels
            .into_iter()
            .map(|c| ((c.dialect, c.app.clone(), c.name.clone()), c))
            .collect();
        self.subscriptions = snapshot
            .subscriptions
            .into_iter()
            .map(|s| ((s.peer.clone(), s.id.clone()), s))
            .collect();
        self.faults = snapshot.faults;
        self.history = snapshot.history.into_iter().collect();
        self.bans = snapshot.bans.into_iter().map(|b| (b.id, b)).collect();
        self.nodes.clear();
        self.set_nodes(snapshot.nodes);
        // A snapshot is not dated; its newest entry is the latest moment it is known to show.
        let newest = self.history.iter().map(|h| h.closed_at_ms).max();
        self.server_ms = self
            .server_ms
            .max(newest.unwrap_or(0))
            .max(self.server.started_at_ms);
        // A snapshot rebuilds every table: which entries went does not matter.
        self.trim_history(&mut HistoryMoves::default());
        self.peers_by_dialect.clear();
        self.peers_by_app.clear();
        let peers_by_app = &mut self.peers_by_app;
        for peer in self.peers.values() {
            *self.peers_by_dialect.entry(peer.dialect).or_default() += 1;
            if let Some(app) = &peer.app {
                bump(peers_by_app, app, true);
            }
        }
        // Rates restart: totals before and after a gap are not one second apart.
        self.last_totals = None;
        self.set_stats(snapshot.stats);
        Retired { peers, rooms }
    }

    fn count(&mut self, peer: &PeerInfo, add: bool) {
        let count = self.peers_by_dialect.entry(peer.dialect).or_default();
        *count = if add {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
        if let Some(app) = &peer.app {
            bump(&mut self.peers_by_app, app, add);
        }
    }

    fn apply_event(&mut self, at_ms: u64, event: Event) -> Applied {
        let mut applied = Applied::default();
        let happening = |peer, dialect, kind| {
            Some(Happening {
                at_ms,
                peer,
                dialect,
                kind,
            })
        };
        match event {
            Event::PeerConnected { peer } | Event::PeerUpdated { peer } => {
                self.count(&peer, true);
                let id = peer.id.clone();
                let before = self.peers.insert(peer);
                if let Some(before) = &before {
                    self.count(before, false);
                }
                applied.peer = Some(PeerChange { id, before });
            }
            Event::PeerClosed { peer, code, reason } => {
                let before = self.peers.remove(&peer);
                if let Some(before) = &before {
                    self.count(before, false);
                }
                let dialect = before.as_ref().map(|p| p.dialect);
                let count = self.subscriptions.len();
                self.subscriptions.retain(|(p, _), _| *p != peer);
                applied.subscriptions = self.subscriptions.len() != count;
                applied.happened = happening(
                    Some(peer.clone()),
                    dialect,
                    LogKind::Closed { code, reason },
                );
                applied.peer = Some(PeerChange { id: peer, before });
            }
            Event::RoomUpdated { room } => {
                let code = room.code.clone();
                let before = self.rooms.insert(code.clone(), room);
                applied.room = Some(RoomChange { code, before });
            }
            Event::RoomClosed { code } => {
                let before = self.rooms.remove(&code);
                applied.room = Some(RoomChange { code, before });
            }
            Event::ChannelJoined {
                dialect,
                app,
                channel,
                peer,
            } => {
                let entry = self
                    .channels
                    .entry((dialect, app.clone(), channel.clone()))
                    .or_insert_with(|| ChannelInfo {
                        dialect,
                        app,
                        name: channel,
                        members: Vec::new(),
                        messages: 0,
                    });
                if !entry.members.contains(&peer) {
                    entry.members.push(peer);
                }
                applied.channels = true;
            }
            Event::ChannelLeft {
                dialect,
                app,
                channel,
                peer,
            } => {
                let key = (dialect, app, channel);
                if let Some(entry) = self.channels.get_mut(&key) {
                    entry.members.retain(|m| *m != peer);
                    if entry.members.is_empty() {
                        self.channels.remove(&key);
                    }
                    applied.channels = true;
                }
            }
            Event::SubscriptionAdded { subscription } => {
                self.subscriptions.insert(
                    (subscription.peer.clone(), subscription.id.clone()),
                    subscription,
                );
                applied.subscriptions = true;
            }
            Event::SubscriptionRemoved { peer, id } => {
                applied.subscriptions = self.subscriptions.remove(&(peer, id)).is_some();
            }
            Event::AppStatusChanged { app, status, by } => {
                if let Some(entry) = self.apps.iter_mut().find(|a| a.id == app) {
                    entry.status = status;
                }
                applied.apps = true;
                applied.happened = happening(
                    None,
                    None,
                    LogKind::Notice {
                        text: format!("app {app} is now {} (by {by})", status.id()),
                        severity: catalog::Severity::Warning,
                    },
                );
            }
            Event::ErrorEmitted {
                peer,
                dialect,
                code,
                delivery,
                request_id,
                frame,
            } => {
                // The peer_closed that follows an error close carries the same code; it is
                // logged once, there.
                if !(delivery == Delivery::Close && peer.is_some()) {
                    applied.happened = happening(
                        peer,
                        Some(dialect),
                        LogKind::Error {
                            code,
                            delivery,
                            request_id,
                            frame,
                        },
                    );
                }
            }
            Event::Frame {
                peer,
                direction,
                text,
            } => {
                let dialect = self.peer(&peer).map(|p| p.dialect);
                applied.happened =
                    happening(Some(peer), dialect, LogKind::Frame { direction, text });
            }
            Event::FaultArmed { fault } => {
                self.faults.push(fault);
            }
            Event::FaultUpdated { fault } => {
                self.faults.retain(|f| f.id != fault.id);
                if fault.remaining > 0 {
                    self.faults.push(fault);
                }
            }
            Event::Stats { stats } => {
                self.set_stats(stats);
                applied.stats = true;
                applied.channels = !self.channels.is_empty();
                // Once a second: entries age out even when nothing closes.
                let mut moves = HistoryMoves::default();
                applied.history = self.trim_history(&mut moves);
                applied.history_moves = applied.history.then_some(moves);
            }
            Event::HistoryAdded { entry } => {
                let key = history_key(&entry);
                let mut moves = HistoryMoves::default();
                if self.history.push(entry) {
                    moves.gone.push(key.clone());
                }
                moves.added.push(key);
                self.trim_history(&mut moves);
                applied.history = true;
                applied.history_moves = Some(moves);
            }
            Event::BanAdded { ban } => {
                applied.happened = happening(
                    None,
                    None,
                    LogKind::Notice {
                        text: format!(
                            "ban {} on {} ({}) by {}",
                            ban.id,
                            ban.target.describe(),
                            ban.reason,
                            ban.by
                        ),
                        severity: catalog::Severity::Warning,
                    },
                );
                self.bans.insert(ban.id, ban);
                applied.bans = true;
            }
            Event::Nodes { nodes } => {
                self.set_nodes(nodes);
                applied.nodes = true;
            }
            Event::BanLifted { id, by } => {
                let lifted = self.bans.remove(&id);
                let target = lifted
                    .map(|b| format!(" on {}", b.target.describe()))
                    .unwrap_or_default();
                applied.happened = happening(
                    None,
                    None,
                    LogKind::Notice {
                        text: format!("ban {id}{target} lifted by {by}"),
                        severity: catalog::Severity::Info,
                    },
                );
                applied.bans = true;
            }
        }
        applied
    }

    /// Drop what the server would have dropped: the oldest entries past the count, and those
    /// older than the retention at the server's clock. True when something went.
    /// Drop what the server's limits no longer keep; true when anything went. `moves` gains
    /// the keys that no longer show.
    fn trim_history(&mut self, moves: &mut HistoryMoves) -> bool {
        let limits = self.server.history;
        let before = self.history.len();
        let keep = usize::try_from(limits.max_entries).unwrap_or(usize::MAX);
        while self.history.len() > keep {
            if let Some(Some(gone)) = self.history.pop_oldest() {
                moves.gone.push(gone);
            }
        }
        let oldest_kept = self.server_ms.saturating_sub(limits.retain_ms);
        // Entries arrive in closing order, so the old ones are at the front; one out of order
        // (a clock step on the server) is left for the count to push out.
        while self
            .history
            .oldest()
            .is_some_and(|h| h.closed_at_ms < oldest_kept)
        {
            if let Some(Some(gone)) = self.history.pop_oldest() {
                moves.gone.push(gone);
            }
        }
        self.history.len() != before
    }

    /// The history entry with `key` (see [`history_key`]); the newest, should a key recur.
    pub fn history_entry(&self, key: &str) -> Option<&HistoryEntry> {
        self.history.get(key)
    }

    /// The Signal Fish player id of a live peer, from the room it is a member of.
    pub fn player_id_of(&self, peer: &PeerInfo) -> Option<&str> {
        let room = self.rooms.get(peer.room.as_deref()?)?;
        room.players
            .iter()
            .chain(&room.spectators)
            .find(|m| m.peer.as_deref() == Some(peer.id.as_str()))
            .map(|m| m.player_id.as_str())
    }

    /// One player's life across reconnects: every live peer and closed peer that shares the
    /// identity (within the same app) or the Signal Fish player id of `peer`, oldest first.
    pub fn player_timeline(&self, peer: &PeerInfo, player_id: Option<&str>) -> Vec<Life<'_>> {
        let same = |other: &PeerInfo, other_player: Option<&str>| {
            other.id == peer.id
                || (peer.identity.is_some()
                    && other.identity == peer.identity
                    && other.app == peer.app
                    && other.dialect == peer.dialect)
                || (player_id.is_some() && other_player == player_id)
        };
        let mut lives: Vec<Life<'_>> = self
            .history
            .iter()
            .filter_map(|h| match &h.closed {
                Closed::Peer(closed) => Some((h.closed_at_ms, closed.as_ref())),
                Closed::Room(_) => None,
            })
            .filter(|(_, closed)| same(&closed.peer, closed.player_id.as_deref()))
            .map(|(closed_at_ms, closed)| Life::Closed {
                closed_at_ms,
                peer: closed,
            })
            .collect();
        lives.extend(
            self.peers
                .values()
                .filter(|p| same(p, self.player_id_of(p)))
                .map(Life::Live),
        );
        lives.sort_by(|a, b| {
            a.peer()
                .connected_at_ms
                .cmp(&b.peer().connected_at_ms)
                .then_with(|| natural_cmp(&a.peer().id, &b.peer().id))
        });
        lives
    }

    /// A node's rates come from its counters in the previous list and the time between the
    /// two heartbeats, both the node's own.
    fn set_nodes(&mut self, nodes: Vec<NodeInfo>) {
        let before = std::mem::take(&mut self.nodes);
        self.nodes = nodes
            .into_iter()
            .map(|info| {
                let previous = before
                    .iter()
                    .find(|b| b.info.node_id == info.node_id)
                    .map(|b| &b.info)
                    .filter(|b| info.heartbeat_at_ms > b.heartbeat_at_ms);
                let per_s = |now: u64, then: u64, b: &NodeInfo| {
                    let ms = info.heartbeat_at_ms - b.heartbeat_at_ms;
                    now.saturating_sub(then).saturating_mul(1000) / ms
                };
                NodeRow {
                    frames_per_s: previous.map(|b| {
                        per_s(
                            info.frames_in + info.frames_out,
                            b.frames_in + b.frames_out,
                            b,
                        )
                    }),
                    errors_per_s: previous.map(|b| per_s(info.errors, b.errors, b)),
                    info,
                }
            })
            .collect();
    }

    fn set_stats(&mut self, stats: Stats) {
        let totals = (stats.frames_in + stats.frames_out, stats.errors);
        if let Some((frames, errors)) = self.last_totals {
            if self.rates.len() >= RATE_HISTORY {
                self.rates.pop_front();
            }
            self.rates.push_back((
                totals.0.saturating_sub(frames),
                totals.1.saturating_sub(errors),
            ));
        }
        self.last_totals = Some(totals);
        for (key, channel) in self.channels.iter_mut() {
            if let Some(count) =
                stats
                    .channel_messages
                    .get(&format!("{}/{}/{}", key.0.id(), key.1, key.2))
            {
                channel.messages = *count;
            }
        }
        let mut codes: Vec<(String, u64)> = stats
            .errors_by_code
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        codes.truncate(TOP_ERRORS);
        self.top_errors = codes
            .into_iter()
            .map(|(qualified, count)| {
                let entry = lookup_qualified(&qualified);
                (qualified, count, entry)
            })
            .collect();
        self.stats = stats;
    }
}

/// One connection of a player: still live, or closed and in the history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Life<'a> {
    Live(&'a PeerInfo),
    Closed {
        closed_at_ms: u64,
        peer: &'a crate::protocol::admin::ClosedPeer,
    },
}

impl Life<'_> {
    pub fn peer(&self) -> &PeerInfo {
        match self {
            Life::Live(peer) => peer,
            Life::Closed { peer, .. } => &peer.peer,
        }
    }
}

/// Count one peer more or less for `app`, allocating its name only the first time it is seen.
fn bump(counts: &mut AppCounts, app: &str, add: bool) {
    match counts.get_mut(app) {
        Some(n) => *n = if add { *n + 1 } else { n.saturating_sub(1) },
        None if add => {
            counts.insert(app.to_owned(), 1);
        }
        None => {}
    }
}

/// The catalog entry for `dialect:code`, a close code included.
pub fn lookup_qualified(qualified: &str) -> Option<&'static Entry> {
    let (dialect, code) = qualified.split_once(':')?;
    let dialect: Dialect = dialect.parse().ok()?;
    catalog::get(dialect, code)
        .or_else(|| code.parse().ok().and_then(|n| catalog::close(dialect, n)))
}

/// Text order in which runs of digits compare as numbers, so that `p2` sorts before `p10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    // Bytes, not chars: digits are ASCII, and UTF-8 byte order is code point order.
    loop {
        let (Some(&x), Some(&y)) = (a.first(), b.first()) else {
            return a.len().cmp(&b.len());
        };
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let a_end = a
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(a.len());
            let b_end = b
                .iter()
                .position(|c| !c.is_ascii_digit())
                .unwrap_or(b.len());
            let (a_digits, b_digits) = (trim_zeros(&a[..a_end]), trim_zeros(&b[..b_end]));
            let ordering = a_digits
                .len()
                .cmp(&b_digits.len())
                .then_with(|| a_digits.cmp(b_digits));
            if ordering != Ordering::Equal {
                return ordering;
            }
            a = &a[a_end..];
            b = &b[b_end..];
        } else {
            if x != y {
                return x.cmp(&y);
            }
            a = &a[1..];
            b = &b[1..];
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|c| **c == b'0').count();
    digits.get(zeros..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::protocol::admin::{BanTarget, ClosedPeer, ClosedRoom, HistoryLimits, RoomMember};

    proptest! {
        /// Peers found through their positions agree with a plain map, however they are
        /// inserted, replaced and removed (a removal moves the last peer into the gap), and a
        /// snapshot naming one id twice keeps the first.
        #[test]
        fn peers_agree_with_a_map(
            start in prop::collection::vec((0u8..12, 0u64..3), 0..12),
            ops in prop::collection::vec((0u8..12, 0u64..3, any::<bool>()), 0..60),
        ) {
            let mut reference: HashMap<String, u64> = HashMap::new();
            for (id, frames) in &start {
                reference.entry(format!("p{id}")).or_insert(*frames);
            }
            let mut peers: Peers = start
                .iter()
                .map(|(id, frames)| PeerInfo { frames_in: *frames, ..peer(&format!("p{id}"), None, 0) })
                .collect();
            for (id, frames, remove) in ops {
                let id = format!("p{id}");
                if remove {
                    let gone = peers.remove(&id).map(|p| p.frames_in);
                    prop_assert_eq!(gone, reference.remove(&id));
                } else {
                    let before = peers
                        .insert(PeerInfo { frames_in: frames, ..peer(&id, None, 0) })
                        .map(|p| p.frames_in);
                    prop_assert_eq!(before, reference.insert(id, frames));
                }
                prop_assert_eq!(peers.len(), reference.len());
                for (id, frames) in &reference {
                    prop_assert_eq!(peers.get(id).map(|p| p.frames_in), Some(*frames));
                }
                let mut listed: Vec<&String> = peers.keys().collect();
                listed.sort();
                let mut expected: Vec<&String> = reference.keys().collect();
                expected.sort();
                prop_assert_eq!(listed, expected);
            }
        }
    }

    fn peer(id: &str, identity: Option<&str>, connected_at_ms: u64) -> PeerInfo {
        PeerInfo {
            id: id.into(),
            dialect: Dialect::SignalFish,
            app: Some("demo".into()),
            identity: identity.map(str::to_owned),
            addr: "127.0.0.1:5000".into(),
            connected_at_ms,
            room: None,
            probe: false,
            frames_in: 0,
            frames_out: 0,
            errors: 0,
            frames_dropped: 0,
            round_trip_us: None,
            node: None,
        }
    }

    fn closed(id: &str, identity: Option<&str>, at: u64, player: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            closed_at_ms: at,
            closed: Closed::Peer(Box::new(ClosedPeer {
                peer: peer(id, identity, at.saturating_sub(500)),
                code: Some(4020),
                reason: "admin_disconnect".into(),
                rooms: vec![],
                player_id: player.map(str::to_owned),
                last_errors: vec![],
                recorded_frames: 0,
                refused_joins: Vec::new(),
            })),
        }
    }

    fn ban(id: u64) -> BanInfo {
        BanInfo {
            id,
            target: BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Bob".into(),
            },
            reason: "griefing".into(),
            by: "admin".into(),
            created_at_ms: 1000,
            until_ms: 5000,
        }
    }

    fn snapshot(limits: HistoryLimits, history: Vec<HistoryEntry>) -> ServerMessage {
        ServerMessage::Snapshot {
            seq: 1,
            snapshot: Box::new(Snapshot {
                server: ServerInfo {
                    history: limits,
                    ..ServerInfo::default()
                },
                history,
                bans: vec![ban(1)],
                ..Snapshot::default()
            }),
        }
    }

    fn delta(seq: u64, at_ms: u64, event: Event) -> ServerMessage {
        ServerMessage::Delta { seq, at_ms, event }
    }

    fn keys(model: &Model) -> Vec<String> {
        model.history.iter().map(history_key).collect()
    }

    #[test]
    fn history_comes_from_the_snapshot_and_grows_with_deltas_within_the_count() {
        let mut model = Model::default();
        let limits = HistoryLimits {
            max_entries: 3,
            retain_ms: 1_000_000,
        };
        model.apply(snapshot(
            limits,
            vec![closed("p1", None, 100, None), closed("p2", None, 200, None)],
        ));
        assert_eq!(keys(&model), ["p1", "p2"]);
        let applied = model.apply(delta(
            2,
            300,
            Event::HistoryAdded {
                entry: closed("p3", None, 300, None),
            },
        ));
        assert!(applied.history);
        model.apply(delta(
            3,
            400,
            Event::HistoryAdded {
                entry: closed("p4", None, 400, None),
            },
        ));
        assert_eq!(keys(&model), ["p2", "p3", "p4"], "the oldest goes first");
        assert_eq!(model.history_entry("p3").unwrap().closed_at_ms, 300);
        assert!(model.history_entry("p1").is_none());
    }

    #[test]
    fn history_ages_out_at_the_server_clock() {
        let mut model = Model::default();
        let limits = HistoryLimits {
            max_entries: 100,
            retain_ms: 1000,
        };
        model.apply(snapshot(
            limits,
            vec![closed("p1", None, 100, None), closed("p2", None, 900, None)],
        ));
        assert_eq!(keys(&model), ["p1", "p2"]);
        // A stats tick moves the clock: p1 is now older than the retention, p2 is not.
        let applied = model.apply(delta(
            2,
            1500,
            Event::Stats {
                stats: Stats::default(),
            },
        ));
        assert!(applied.history);
        assert_eq!(keys(&model), ["p2"]);
        let applied = model.apply(delta(
            3,
            1600,
            Event::Stats {
                stats: Stats::default(),
            },
        ));
        assert!(!applied.history, "nothing changed");
        let room = HistoryEntry {
            closed_at_ms: 2500,
            closed: Closed::Room(Box::new(ClosedRoom {
                room: RoomInfo {
                    code: "ABC123".into(),
                    room_id: "r".into(),
                    app: "demo".into(),
                    game: "g".into(),
                    max_players: 2,
                    supports_authority: false,
                    lobby_state: "lobby".into(),
                    players: vec![],
                    spectators: vec![],
                    authority: None,
                    created_at_ms: 0,
                },
                reason: "empty".into(),
            })),
        };
        model.apply(delta(4, 2500, Event::HistoryAdded { entry: room }));
        assert_eq!(keys(&model), ["ABC123@2500"]);
    }

    #[test]
    fn bans_follow_the_snapshot_and_their_deltas_and_are_logged() {
        let mut model = Model::default();
        model.apply(snapshot(HistoryLimits::default(), vec![]));
        assert_eq!(model.bans.keys().copied().collect::<Vec<_>>(), [1]);
        let applied = model.apply(delta(2, 2000, Event::BanAdded { ban: ban(2) }));
        assert!(applied.bans);
        let happened = applied.happened.unwrap();
        assert!(
            matches!(&happened.kind, LogKind::Notice { text, .. } if text.contains("identity Bob in app demo")),
            "{happened:?}"
        );
        let applied = model.apply(delta(
            3,
            2100,
            Event::BanLifted {
                id: 1,
                by: "admin".into(),
            },
        ));
        assert!(applied.bans);
        assert_eq!(model.bans.keys().copied().collect::<Vec<_>>(), [2]);
        // Lifting an unknown ban (already gone) changes nothing and does not fail.
        model.apply(delta(
            4,
            2200,
            Event::BanLifted {
                id: 9,
                by: "admin".into(),
            },
        ));
        assert_eq!(model.bans.len(), 1);
    }

    #[test]
    fn a_players_timeline_joins_identity_and_player_id_across_reconnects() {
        let mut model = Model::default();
        model.apply(snapshot(
            HistoryLimits::default(),
            vec![
                closed("p1", Some("Bob"), 1000, Some("pl-9")),
                closed("p2", Some("Alice"), 1100, None),
                // Renamed, but the same Signal Fish player.
                closed("p3", Some("Bobby"), 2000, Some("pl-9")),
            ],
        ));
        let mut live = peer("p7", Some("Bob"), 3000);
        live.room = Some("ROOM01".into());
        model.apply(delta(2, 3000, Event::PeerConnected { peer: live.clone() }));
        model.apply(delta(
            3,
            3001,
            Event::RoomUpdated {
                room: RoomInfo {
                    code: "ROOM01".into(),
                    room_id: "r".into(),
                    app: "demo".into(),
                    game: "g".into(),
                    max_players: 2,
                    supports_authority: false,
                    lobby_state: "lobby".into(),
                    players: vec![RoomMember {
                        player_id: "pl-9".into(),
                        name: "Bob".into(),
                        peer: Some("p7".into()),
                        ready: false,
                    }],
                    spectators: vec![],
                    authority: None,
                    created_at_ms: 0,
                },
            },
        ));
        assert_eq!(model.player_id_of(&live), Some("pl-9"));
        let ids: Vec<String> = model
            .player_timeline(&live, Some("pl-9"))
            .iter()
            .map(|l| l.peer().id.clone())
            .collect();
        assert_eq!(ids, ["p1", "p3", "p7"]);
        // Another app's Bob is someone else.
        let mut elsewhere = peer("p8", Some("Bob"), 3500);
        elsewhere.app = Some("other".into());
        assert!(model.player_timeline(&elsewhere, None).is_empty());
    }
}
