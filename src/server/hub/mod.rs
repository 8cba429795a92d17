//! The hub: the registry of apps, peers, channels, subscriptions and faults, and the one place
//! where admin deltas are numbered.
//!
//! This file is the facade: the lock, the snapshot, the stats tick and shutdown. Each job is a
//! typed part in `parts/`, holding its own data and recording its deltas in the journal it is
//! handed (`parts/journal.rs`, which numbers and broadcasts them); the hub's methods for a part
//! are in the file of the same name here. The parts know neither the hub nor one another
//! (except that a peer's entry names its channels and keeps its last errors), so imports go one
//! way: a part's methods → the facade → the parts → the journal.
//!
//! | part | what |
//! |---|---|
//! | `registry` | peers, their identities and per-app counts; register, update, remove, kick |
//! | `apps` | app statuses, message quotas, what this node's apps use (for the cluster) |
//! | `channels` | channel members by handle, read without the lock on the data path |
//! | `subscriptions` | Flow/pub/sub subscriptions as the console lists them |
//! | `delivery` (`parts/errors.rs`) | the data path: deliver, error frames and closes, counted for admins |
//! | `faults` | armed faults |
//! | `probes` | the server's own probe connections |
//! | `history` | closed peers and rooms, with the flight recorder's frames |
//! | `rooms` | rooms as admins see them, from the [`RoomEvent`]s the dialect's callers record |
//! | `bans` | ban changes (the bans themselves are in [`crate::server::bans::BanStore`]) |
//!
//! The other nodes' peers and rooms are the cluster's ([`crate::server::cluster::mirror`]); the
//! hub only keeps that mirror under its lock so its snapshot and its deltas agree.
//!
//! # Locking
//! Structural state (who is connected, who is in which channel, what is armed) sits behind one
//! `std::sync::Mutex`. Every operation on it is short and does no I/O, so it is never held
//! across an `.await` (it could not be: the guard is not `Send`). A plain mutex is also what
//! makes delta numbering simple: the `seq` of an event is assigned under the same lock as the
//! change it describes, so a snapshot taken under the lock and the deltas after it line up
//! exactly. The journal lives inside the locked state, so a part can only record a delta
//! while the lock is held: a part's changing methods take `&mut Journal`.
//!
//! The data path does not take that lock. Each peer is a [`crate::server::peer::PeerHandle`] shared by
//! `Arc`;
//! channels keep their members' handles in an index of their own, and Signal Fish rooms keep
//! theirs, so a frame fans out with a read lock on one channel or room and a push per member.
//! Counters are atomics read by the stats tick; "is any fault armed" is an atomic check, and so
//! is "is any ban in force". The lock is taken on the data path only for what admins must see
//! in order: an error frame, a close, a tapped frame.
//!
//! Lock order: the state, then the channel index, then one channel; the state, then the ban
//! store. Nothing taken after the state calls back into the hub, and nothing takes the state
//! while it holds a channel's lock: a channel fan-out ([`Hub::deliver_to_channel`]) records a
//! tapped member's frame, or closes a stalled member, only after it has released the
//! channel's read lock, since a leave of that channel holds the state while it waits for the
//! channel's write lock. The Signal Fish rooms' locks come before the state: the rooms
//! deliver to their members, and their callers record room changes, while a rooms lock is
//! held; nothing holding the state calls into the rooms.
//!
//! # Extension points for a dialect
//! - [`crate::server::connection`] runs the connection: it registers the peer
//!   ([`Hub::register_peer`], which enforces the app's connection limit) and removes it.
//!   [`Hub::update_peer`] when identity, app or room becomes known.
//! - [`Hub::record_inbound`] for every frame received; [`Hub::deliver`] /
//!   [`Hub::deliver_many`] to deliver frames (serialized once, shared bytes);
//!   [`Hub::send_error`] and [`Hub::close_peer`] for every error frame and close, so admins
//!   see `error_emitted`.
//! - [`Hub::take_fault`] before handling a request, to honour armed faults.
//! - Channels ([`Hub::channel_join`] …) and subscriptions ([`Hub::add_subscription`] …) for
//!   what the console's channels and subscriptions views show.
//! - Rooms: the dialect that owns rooms delivers to its members' handles and returns each
//!   change as [`RoomEvent`]s, which its callers (the session, the admin's room commands,
//!   the sweep tick) hand to [`Hub::record_rooms`]. The hub never calls a dialect.

mod apps;
mod bans;
mod channels;
mod delivery;
mod faults;
mod history;
mod parts;
mod probes;
mod registry;
mod rooms;
mod subscriptions;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, Notify};

use crate::catalog::Dialect;
use crate::clock::now_ms;
use crate::protocol::admin::{
    AppStatus, Event, NodeInfo, PeerInfo, RoomInfo, ServerInfo, Snapshot, Stats,
};
use crate::server::bans::BanStore;
use crate::server::cluster::mirror::{shown_to_other_nodes, Mirror};
use crate::server::config::Config;
use crate::server::peer::Control;
use crate::server::recorder::Recorder;

pub use self::parts::apps::AppUsage;
pub use self::parts::channels::ChannelKey;
pub use self::parts::errors::MAX_EVENT_FRAME_BYTES;
pub use self::parts::history::PeerRecord;
use self::parts::journal::Journal;
pub use self::parts::journal::{Delta, Forward};
/// Tests that drive the hub directly name what registering returns; the server only receives it.
#[cfg(test)]
pub use self::parts::registry::PeerLink;
pub use self::parts::registry::{NewPeer, RegisterError};
use self::parts::{
    apps::Apps, channels::Channels, errors::ErrorCounts, faults::Faults, history::History,
    probes::Probes, registry::Registry, rooms::Rooms, subscriptions::Subscriptions,
};
pub use self::rooms::RoomEvent;

/// Deltas buffered per console before it is sent a fresh snapshot instead.
pub const EVENT_CAPACITY: usize = 4096;

/// Everything behind the hub's one lock, part by part.
struct State {
    journal: Journal,
    registry: Registry,
    apps: Apps,
    subscriptions: Subscriptions,
    rooms: Rooms,
    faults: Faults,
    probes: Probes,
    history: History,
    errors: ErrorCounts,
    shutting_down: bool,
    /// The cluster's nodes from the last heartbeat (empty when running alone).
    nodes: Vec<NodeInfo>,
    /// The other nodes' peers and rooms, as their deltas describe them.
    remote: Mirror,
}

pub struct Hub {
    state: Mutex<State>,
    /// Channels by key. Changed only while `state` is held (so deltas and snapshots agree);
    /// read without it on the data path. Lock order: `state`, then this, then a channel.
    channels: Channels,
    /// Looked up without `state`; changed only while `state` is held (lock order: `state`,
    /// then the store).
    bans: BanStore,
    config: Config,
    info: ServerInfo,
    peers_gone: Notify,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    frames_dropped: AtomicU64,
    /// How many faults are armed: requests check this before taking the lock.
    faults_armed: AtomicUsize,
    /// Set by `relaydeck proxy`: its peers' frames can be dropped, delayed and the like.
    path_faults: AtomicBool,
    recorder: Arc<Recorder>,
}

impl Hub {
    /// `statuses` are the persisted app statuses, which win over the config's.
    pub fn new(
        config: Config,
        listen: String,
        statuses: &BTreeMap<String, AppStatus>,
        admin_buffer: usize,
    ) -> Hub {
        let (events, _) = broadcast::channel(admin_buffer.max(1));
        let started = now_ms();
        let recorder = Arc::new(Recorder::new(config.recorder));
        let history = config.history.limits();
        let state = State {
            journal: Journal {
                seq: 0,
                events,
                forward: None,
            },
            registry: Registry::default(),
            apps: Apps::new(&config, statuses, started),
            subscriptions: Subscriptions::default(),
            rooms: Rooms::default(),
            faults: Faults::default(),
            probes: Probes::default(),
            history: History::default(),
            errors: ErrorCounts::default(),
            shutting_down: false,
            nodes: Vec::new(),
            remote: Mirror::default(),
        };
        Hub {
            state: Mutex::new(state),
            channels: Channels::default(),
            bans: BanStore::default(),
            config,
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                listen,
                started_at_ms: started,
                history,
            },
            peers_gone: Notify::new(),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            faults_armed: AtomicUsize::new(0),
            path_faults: AtomicBool::new(false),
            recorder,
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// This node's name when it is part of a cluster.
    pub fn node(&self) -> Option<&str> {
        self.config
            .cluster
            .enabled()
            .then_some(self.config.cluster.node_id.as_deref())
            .flatten()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The bans in force, for the connections and HTTP endpoints that refuse banned clients.
    pub fn bans(&self) -> &BanStore {
        &self.bans
    }

    /// A poisoned lock means a panic happened while the state was being changed; the state
    /// itself is still structurally valid (every change is a few assignments), so keep serving.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ------------------------------------------------------------------------------------
    // Admins
    // ------------------------------------------------------------------------------------

    /// A snapshot and a receiver of every delta after it, taken atomically.
    pub fn subscribe(&self) -> (u64, Snapshot, broadcast::Receiver<Arc<Delta>>) {
        let mut state = self.lock();
        state.history.trim(self.config.history, now_ms());
        let receiver = state.journal.events.subscribe();
        let snapshot = self.snapshot_of(&state);
        (state.journal.seq, snapshot, receiver)
    }

    fn snapshot_of(&self, state: &State) -> Snapshot {
        Snapshot {
            server: self.info.clone(),
            apps: state.apps.infos(&self.config),
            peers: state
                .registry
                .infos()
                .chain(state.remote.peers().cloned())
                .collect(),
            rooms: state
                .rooms
                .list()
                .chain(state.remote.rooms())
                .cloned()
                .collect(),
            channels: self.channels.infos(),
            subscriptions: state.subscriptions.list(),
            faults: state.faults.list(),
            stats: self.stats_of(state),
            history: state.history.entries(),
            bans: self.bans.list().0,
            nodes: state.nodes.clone(),
        }
    }

    fn stats_of(&self, state: &State) -> Stats {
        let mut peers_by_dialect: BTreeMap<Dialect, u64> = BTreeMap::new();
        for dialect in state.registry.dialects() {
            *peers_by_dialect.entry(dialect).or_default() += 1;
        }
        Stats {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            errors: state.errors.total,
            peers_by_dialect,
            errors_by_code: state.errors.by_code.clone(),
            channel_messages: self.channels.message_counts(),
        }
    }

    /// Relayed frames dropped since start because their peer was behind.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    /// Send this node's peer, room and error deltas to the other nodes (set once, by the
    /// cluster link).
    pub fn forward_events(&self, forward: Forward) {
        let mut state = self.lock();
        if state.journal.forward.is_none() {
            state.journal.forward = Some(forward);
        }
    }

    /// Once a second: the counters of peers that were busy, then the totals. Per-frame deltas
    /// would cost consoles more than the frames themselves; a second is fresh enough.
    pub fn emit_stats(&self) {
        let mut state = self.lock();
        let now = now_ms();
        state.history.trim(self.config.history, now);
        self.expire_bans(&mut state, now);
        let State {
            journal, registry, ..
        } = &mut *state;
        if !journal.listening() {
            // Nobody to tell; the flags are cleared so a console arriving later is not sent
            // a burst of stale updates (its snapshot has the counters).
            registry.clear_counter_flags();
            return;
        }
        let changed: Vec<PeerInfo> = registry.changed_counters().collect();
        for peer in changed {
            journal.record(Event::PeerUpdated { peer });
        }
        let stats = self.stats_of(&state);
        state.journal.record(Event::Stats { stats });
    }

    // ------------------------------------------------------------------------------------
    // The cluster (its mirror of the other nodes is kept here so snapshots agree with deltas)
    // ------------------------------------------------------------------------------------

    /// The other node holding a room, by its code.
    pub fn remote_room_node(&self, code: &str) -> Option<String> {
        self.lock().remote.room_node(code)
    }

    /// The other node holding a room, by its id.
    pub fn remote_room_node_by_id(&self, room_id: &str) -> Option<String> {
        self.lock().remote.room_node_by_id(room_id)
    }

    /// A peer of another node, as its deltas last described it.
    pub fn remote_peer(&self, id: &str) -> Option<PeerInfo> {
        self.lock().remote.peer(id)
    }

    /// This node's own peers and rooms, for the other nodes' consoles.
    pub fn local_admin_state(&self) -> (Vec<PeerInfo>, Vec<RoomInfo>) {
        let state = self.lock();
        (
            state.registry.infos().collect(),
            state.rooms.list().cloned().collect(),
        )
    }

    /// A delta from another node: kept for snapshots and passed on to this node's consoles
    /// and streams. Only the kinds [`shown_to_other_nodes`] lets through are kept.
    pub fn apply_remote(&self, node: &str, event: Event) {
        if !shown_to_other_nodes(&event) {
            return;
        }
        let mut state = self.lock();
        state.remote.apply(node, &event);
        state.journal.record_here(event);
    }

    /// Everything another node has now (when it joins, or after Redis came back): consoles
    /// see the difference as deltas.
    pub fn replace_remote(&self, node: &str, peers: Vec<PeerInfo>, rooms: Vec<RoomInfo>) {
        let mut state = self.lock();
        for event in state.remote.replace(node, peers, rooms) {
            state.journal.record_here(event);
        }
    }

    /// A node went away: its peers and rooms close for this node's consoles.
    pub fn forget_remote(&self, node: &str) {
        let mut state = self.lock();
        for event in state.remote.forget(node) {
            state.journal.record_here(event);
        }
    }

    /// The cluster's node list, from this node's heartbeat; told to consoles every time, as
    /// it carries the nodes' counters.
    pub fn set_nodes(&self, nodes: Vec<NodeInfo>) {
        let mut state = self.lock();
        state.nodes = nodes.clone();
        state.journal.record(Event::Nodes { nodes });
    }

    /// Error codes sent that the catalog lacks, with how often (see `ErrorCounts`).
    pub fn uncatalogued_errors(&self) -> Vec<(String, u64)> {
        let state = self.lock();
        state
            .errors
            .uncatalogued
            .iter()
            .map(|(code, n)| (code.clone(), *n))
            .collect()
    }

    // ------------------------------------------------------------------------------------
    // Shutdown
    // ------------------------------------------------------------------------------------

    /// Refuse new peers and tell every live one to close.
    pub fn begin_shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for peer in state.registry.handles() {
            peer.control(Control::Shutdown);
        }
    }

    /// Wait until every peer is gone.
    pub async fn peers_drained(&self) {
        loop {
            let notified = self.peers_gone.notified();
            if self.peer_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Every value in an admin-facing text form, for `/metrics`.
    pub fn metrics(&self) -> (Stats, BTreeMap<String, AppStatus>, usize) {
        let state = self.lock();
        (
            self.stats_of(&state),
            state.apps.statuses(),
            self.channels.len(),
        )
    }
}
