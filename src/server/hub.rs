//! The hub: the registry of apps, peers, channels, subscriptions and faults, and the one place
//! where admin deltas are numbered.
//!
//! # Locking
//! Structural state (who is connected, who is in which channel, what is armed) sits behind one
//! `std::sync::Mutex`. Every operation on it is short and does no I/O, so it is never held
//! across an `.await` (it could not be: the guard is not `Send`). A plain mutex is also what
//! makes delta numbering simple: the `seq` of an event is assigned under the same lock as the
//! change it describes, so a snapshot taken under the lock and the deltas after it line up
//! exactly.
//!
//! The data path does not take that lock. Each peer is a [`PeerHandle`] shared by `Arc`;
//! channels keep their members' handles in an index of their own, and Signal Fish rooms keep
//! theirs, so a frame fans out with a read lock on one channel or room and a push per member.
//! Counters are atomics read by the stats tick; "is any fault armed" is an atomic check. The
//! lock is taken on the data path only for what admins must see in order: an error frame, a
//! close, a tapped frame.
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
//! - Rooms: [`RoomDirectory`], implemented by the Signal Fish dialect, answers the admin's
//!   room commands.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, Notify};

use crate::catalog::{self, Delivery, Dialect, Severity};
use crate::protocol::admin::{
    AppInfo, AppStatus, BanInfo, BanTarget, ChannelInfo, Closed, ClosedPeer, ClosedRoom, Direction,
    Event, FaultInfo, FaultTarget, HistoryEntry, KeyInfo, NodeInfo, PeerId, PeerInfo, RecentError,
    RoomInfo, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};
use crate::server::bans::Bans;
use crate::server::config::Config;
use crate::server::peer::Enqueued;
pub use crate::server::peer::{Control, Outbound, PeerHandle, PeerQueues, Priority};
use crate::server::recorder::{Record, Recorder, Ring};

/// Deltas buffered per console before it is sent a fresh snapshot instead.
pub const EVENT_CAPACITY: usize = 4096;

/// The most of a frame an admin event carries (errors and tapped frames). Clients choose what
/// error frames echo back (a Talo cause is the client's own frame); clipping bounds every
/// event, so the delta ring holds at most [`EVENT_CAPACITY`] × this much frame text.
pub const MAX_EVENT_FRAME_BYTES: usize = 4 * 1024;

/// The errors a closed peer's history entry keeps.
pub const LAST_ERRORS: usize = 5;

/// Room codes a peer's history entry keeps (a peer hopping rooms all day keeps the last ones).
pub const MAX_ROOMS_PER_PEER: usize = 32;

/// `text` cut to `max` bytes on a character boundary, saying how long it was.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// One numbered delta, serialized once for every console.
#[derive(Debug)]
pub struct Delta {
    pub seq: u64,
    pub text: Utf8Bytes,
}

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

/// Admin room commands, answered by the dialect that owns rooms.
pub trait RoomDirectory: Send + Sync {
    fn close_room(&self, hub: &Hub, room: &str) -> Result<String, String>;
    fn transfer_authority(&self, hub: &Hub, room: &str, player_id: &str) -> Result<String, String>;
    fn revoke_authority(&self, hub: &Hub, room: &str) -> Result<String, String>;
}

struct PeerEntry {
    handle: Arc<PeerHandle>,
    /// Identity, app, room and the rest; the counters in it are filled from the handle.
    info: PeerInfo,
    /// What to undo when the peer goes, so removal costs what the peer had, not what the
    /// server has.
    channels: BTreeSet<ChannelKey>,
    subscriptions: BTreeSet<String>,
    /// For its history entry: rooms it was in, its Signal Fish player id, its last errors.
    rooms: Vec<String>,
    player_id: Option<String>,
    last_errors: VecDeque<RecentError>,
}

impl PeerEntry {
    fn info(&self) -> PeerInfo {
        let counters = self.handle.counters();
        PeerInfo {
            frames_in: counters.frames_in,
            frames_out: counters.frames_out,
            errors: counters.errors,
            ..self.info.clone()
        }
    }
}

struct AppState {
    status: AppStatus,
    quota_used: u64,
    quota_period_start_ms: u64,
}

/// A channel's members, held by handle so a message fans out without the hub's lock.
#[derive(Default)]
pub struct Channel {
    members: RwLock<BTreeMap<PeerId, Arc<PeerHandle>>>,
    messages: AtomicU64,
}

impl Channel {
    fn members(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn members_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<PeerId, Arc<PeerHandle>>> {
        self.members.write().unwrap_or_else(|p| p.into_inner())
    }
}

pub type ChannelKey = (Dialect, String, String);

#[derive(Default)]
struct State {
    seq: u64,
    next_peer: u64,
    next_fault: u64,
    apps: BTreeMap<String, AppState>,
    peers: BTreeMap<PeerId, PeerEntry>,
    /// Live peers per app (any dialect) and per dialect and app, kept as peers come, go and
    /// authenticate, so limits are checked without walking every peer.
    peers_per_app: HashMap<String, usize>,
    peers_per_dialect_app: HashMap<(Dialect, String), usize>,
    /// What the other nodes of a cluster last reported their apps use, one entry per live
    /// node: connection limits and message quotas count them too.
    remote_usage: Vec<AppUsage>,
    /// Peers by (dialect, identity): pub/sub `send` targets and REST kicks by peerId.
    identities: HashMap<(Dialect, String), BTreeSet<PeerId>>,
    subscriptions: BTreeMap<(PeerId, String), SubscriptionInfo>,
    rooms: BTreeMap<String, RoomInfo>,
    faults: Vec<FaultInfo>,
    errors: u64,
    errors_by_code: BTreeMap<String, u64>,
    pending_probes: HashMap<String, oneshot::Sender<PeerId>>,
    probes: HashMap<PeerId, mpsc::UnboundedSender<String>>,
    shutting_down: bool,
    /// Closed peers and rooms, oldest first.
    history: VecDeque<HistoryItem>,
    bans: Bans,
    /// The cluster's nodes from the last heartbeat (empty when running alone).
    nodes: Vec<NodeInfo>,
    /// The other nodes' peers and rooms, as their deltas describe them.
    remote: BTreeMap<String, RemoteNode>,
}

/// One history entry and what only the server keeps of it: the peer's recorded frames.
struct HistoryItem {
    entry: HistoryEntry,
    path: Option<String>,
    /// Dropped with the entry, which gives its bytes back to the recorder's budget.
    ring: Option<Ring>,
}

/// What the flight recorder holds of one peer, live or closed (for `frames` and `export`).
#[derive(Debug, Clone)]
pub struct PeerRecord {
    pub info: PeerInfo,
    pub path: Option<String>,
    pub frames: Vec<Record>,
    /// `Some` once closed: the close code sent (if any) and the reason.
    pub closed: Option<(Option<u16>, String)>,
    pub closed_at_ms: Option<u64>,
    pub rooms: Vec<String>,
}

/// What a node's apps use, as it reports it to the other nodes of a cluster in its heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppUsage {
    /// Live peers per app, any dialect.
    pub peers: BTreeMap<String, u64>,
    /// Live peers per `dialect/app`.
    pub dialect_peers: BTreeMap<String, u64>,
    /// Messages charged against each app's quota in the node's current period.
    pub quota: BTreeMap<String, QuotaUse>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuotaUse {
    pub period_start_ms: u64,
    pub used: u64,
}

fn dialect_app(dialect: Dialect, app: &str) -> String {
    format!("{}/{app}", dialect.id())
}

impl State {
    /// Peers of `app` on the other nodes of the cluster (0 alone).
    fn remote_peers(&self, app: &str) -> usize {
        let total: u64 = self
            .remote_usage
            .iter()
            .filter_map(|usage| usage.peers.get(app))
            .sum();
        usize::try_from(total).unwrap_or(usize::MAX)
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

pub struct Hub {
    state: Mutex<State>,
    /// Channels by key. Changed only while `state` is held (so deltas and snapshots agree);
    /// read without it on the data path. Lock order: `state`, then this, then a channel.
    channels: RwLock<HashMap<ChannelKey, Arc<Channel>>>,
    events: broadcast::Sender<Arc<Delta>>,
    config: Config,
    info: ServerInfo,
    rooms: Mutex<Option<Arc<dyn RoomDirectory>>>,
    peers_gone: Notify,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    frames_dropped: AtomicU64,
    /// How many faults are armed: requests check this before taking the lock.
    faults_armed: AtomicUsize,
    recorder: Arc<Recorder>,
    /// How many bans are in force: connections check this before taking the lock.
    bans_active: AtomicUsize,
    /// Where this node's deltas go for the other nodes of a cluster.
    forward: OnceLock<Forward>,
}

/// Hands a delta to the cluster link; called under the hub lock, so it must only queue.
pub type Forward = Box<dyn Fn(&Event) + Send + Sync>;

/// The deltas other nodes' consoles see: peers, rooms and errors. Channels, subscriptions,
/// faults, history and bans stay with the node that holds them.
fn shown_to_other_nodes(event: &Event) -> bool {
    matches!(
        event,
        Event::PeerConnected { .. }
            | Event::PeerUpdated { .. }
            | Event::PeerClosed { .. }
            | Event::RoomUpdated { .. }
            | Event::RoomClosed { .. }
            | Event::ErrorEmitted { .. }
            // A console on another node tapped the peer or armed the fault (commands run on
            // the peer's node): it sees what came of it.
            | Event::Frame { .. }
            | Event::FaultArmed { .. }
            | Event::FaultUpdated { .. }
    )
}

/// Another node's peers and rooms.
#[derive(Default)]
struct RemoteNode {
    peers: BTreeMap<PeerId, PeerInfo>,
    rooms: BTreeMap<String, RoomInfo>,
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
        let mut state = State::default();
        for app in &config.apps {
            state.apps.insert(
                app.id.clone(),
                AppState {
                    status: statuses.get(&app.id).copied().unwrap_or(app.status),
                    quota_used: 0,
                    quota_period_start_ms: started,
                },
            );
        }
        Hub {
            state: Mutex::new(state),
            channels: RwLock::new(HashMap::new()),
            events,
            config,
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                listen,
                started_at_ms: started,
                history,
            },
            rooms: Mutex::new(None),
            peers_gone: Notify::new(),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            faults_armed: AtomicUsize::new(0),
            recorder,
            bans_active: AtomicUsize::new(0),
            forward: OnceLock::new(),
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

    /// A poisoned lock means a panic happened while the state was being changed; the state
    /// itself is still structurally valid (every change is a few assignments), so keep serving.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn channel_index(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.channels.read().unwrap_or_else(|p| p.into_inner())
    }

    fn channel_index_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<ChannelKey, Arc<Channel>>> {
        self.channels.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_room_directory(&self, directory: Arc<dyn RoomDirectory>) {
        *self.rooms.lock().unwrap_or_else(|p| p.into_inner()) = Some(directory);
    }

    fn room_directory(&self) -> Option<Arc<dyn RoomDirectory>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn emit(&self, state: &mut State, event: Event) {
        if let Some(forward) = self.forward.get() {
            if shown_to_other_nodes(&event) {
                forward(&event);
            }
        }
        self.emit_here(state, event);
    }

    /// A delta for this node's consoles and streams only (one that came from another node).
    fn emit_here(&self, state: &mut State, event: Event) {
        state.seq += 1;
        let seq = state.seq;
        // With nobody listening (no console, no Flow stream) the delta is only counted: a
        // subscriber that arrives later starts from a snapshot taken at this seq anyway.
        if self.events.receiver_count() == 0 {
            return;
        }
        let message = ServerMessage::Delta {
            seq,
            at_ms: now_ms(),
            event,
        };
        // Serializing plain data with string keys cannot fail.
        let text = serde_json::to_string(&message).unwrap_or_default();
        let _ = self.events.send(Arc::new(Delta {
            seq,
            text: text.into(),
        }));
    }

    // ------------------------------------------------------------------------------------
    // Admins
    // ------------------------------------------------------------------------------------

    /// A snapshot and a receiver of every delta after it, taken atomically.
    pub fn subscribe(&self) -> (u64, Snapshot, broadcast::Receiver<Arc<Delta>>) {
        let mut state = self.lock();
        self.trim_history(&mut state, now_ms());
        let receiver = self.events.subscribe();
        let snapshot = self.snapshot_of(&state);
        (state.seq, snapshot, receiver)
    }

    fn snapshot_of(&self, state: &State) -> Snapshot {
        let remote = state.remote.values();
        Snapshot {
            server: self.info.clone(),
            apps: self.apps_of(state),
            peers: state
                .peers
                .values()
                .map(PeerEntry::info)
                .chain(remote.clone().flat_map(|n| n.peers.values().cloned()))
                .collect(),
            rooms: state
                .rooms
                .values()
                .cloned()
                .chain(remote.flat_map(|n| n.rooms.values().cloned()))
                .collect(),
            channels: self.channel_infos(),
            subscriptions: state.subscriptions.values().cloned().collect(),
            faults: state.faults.clone(),
            stats: self.stats_of(state),
            history: state.history.iter().map(|h| h.entry.clone()).collect(),
            bans: state.bans.list(),
            nodes: state.nodes.clone(),
        }
    }

    fn channel_infos(&self) -> Vec<ChannelInfo> {
        let index = self.channel_index();
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

    fn apps_of(&self, state: &State) -> Vec<AppInfo> {
        self.config
            .apps
            .iter()
            .map(|app| AppInfo {
                id: app.id.clone(),
                name: app.name.clone(),
                status: state
                    .apps
                    .get(&app.id)
                    .map(|a| a.status)
                    .unwrap_or(app.status),
                keys: app
                    .pubsub_keys
                    .iter()
                    .map(|key| KeyInfo {
                        id: key.id.clone(),
                        dialect: Dialect::Pubsub,
                        grants: key
                            .channel_patterns
                            .iter()
                            .cloned()
                            .chain(key.actions.iter().map(|a| a.id().to_owned()))
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn stats_of(&self, state: &State) -> Stats {
        let mut peers_by_dialect: BTreeMap<Dialect, u64> = BTreeMap::new();
        for peer in state.peers.values() {
            *peers_by_dialect.entry(peer.info.dialect).or_default() += 1;
        }
        let channel_messages = self
            .channel_index()
            .iter()
            .filter_map(|((dialect, app, name), channel)| {
                let messages = channel.messages.load(Ordering::Relaxed);
                (messages > 0).then(|| (format!("{}/{app}/{name}", dialect.id()), messages))
            })
            .collect();
        Stats {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            errors: state.errors,
            peers_by_dialect,
            errors_by_code: state.errors_by_code.clone(),
            channel_messages,
        }
    }

    /// Relayed frames dropped since start because their peer was behind.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    /// Once a second: the counters of peers that were busy, then the totals. Per-frame deltas
    /// would cost consoles more than the frames themselves; a second is fresh enough.
    /// Send this node's peer, room and error deltas to the other nodes (set once, by the
    /// cluster link).
    pub fn forward_events(&self, forward: Forward) {
        let _ = self.forward.set(forward);
    }

    /// The other node holding a room, by its code.
    pub fn remote_room_node(&self, code: &str) -> Option<String> {
        let state = self.lock();
        state
            .remote
            .iter()
            .find(|(_, node)| node.rooms.contains_key(code))
            .map(|(name, _)| name.clone())
    }

    /// The other node holding a room, by its id.
    pub fn remote_room_node_by_id(&self, room_id: &str) -> Option<String> {
        let state = self.lock();
        state
            .remote
            .iter()
            .find(|(_, node)| node.rooms.values().any(|room| room.room_id == room_id))
            .map(|(name, _)| name.clone())
    }

    /// A peer of another node, as its deltas last described it.
    pub fn remote_peer(&self, id: &str) -> Option<PeerInfo> {
        let state = self.lock();
        state
            .remote
            .values()
            .find_map(|node| node.peers.get(id).cloned())
    }

    /// This node's own peers and rooms, for the other nodes' consoles.
    pub fn local_admin_state(&self) -> (Vec<PeerInfo>, Vec<RoomInfo>) {
        let state = self.lock();
        (
            state.peers.values().map(PeerEntry::info).collect(),
            state.rooms.values().cloned().collect(),
        )
    }

    /// A delta from another node: kept for snapshots and passed on to this node's consoles
    /// and streams. Only the kinds [`shown_to_other_nodes`] lets through are kept.
    pub fn apply_remote(&self, node: &str, event: Event) {
        if !shown_to_other_nodes(&event) {
            return;
        }
        let mut state = self.lock();
        let mirror = state.remote.entry(node.to_owned()).or_default();
        match &event {
            Event::PeerConnected { peer } | Event::PeerUpdated { peer } => {
                mirror.peers.insert(peer.id.clone(), peer.clone());
            }
            Event::PeerClosed { peer, .. } => {
                mirror.peers.remove(peer);
            }
            Event::RoomUpdated { room } => {
                mirror.rooms.insert(room.code.clone(), room.clone());
            }
            Event::RoomClosed { code } => {
                mirror.rooms.remove(code);
            }
            _ => {}
        }
        self.emit_here(&mut state, event);
    }

    /// Everything another node has now (when it joins, or after Redis came back): consoles
    /// see the difference as deltas.
    pub fn replace_remote(&self, node: &str, peers: Vec<PeerInfo>, rooms: Vec<RoomInfo>) {
        let mut state = self.lock();
        let before = state.remote.remove(node).unwrap_or_default();
        let mut after = RemoteNode::default();
        for peer in peers {
            after.peers.insert(peer.id.clone(), peer);
        }
        for room in rooms {
            after.rooms.insert(room.code.clone(), room);
        }
        let mut events = Vec::new();
        for id in before
            .peers
            .keys()
            .filter(|id| !after.peers.contains_key(*id))
        {
            events.push(Event::PeerClosed {
                peer: id.clone(),
                code: None,
                reason: String::new(),
            });
        }
        for code in before
            .rooms
            .keys()
            .filter(|c| !after.rooms.contains_key(*c))
        {
            events.push(Event::RoomClosed { code: code.clone() });
        }
        for (id, peer) in &after.peers {
            match before.peers.get(id) {
                Some(known) if known == peer => {}
                Some(_) => events.push(Event::PeerUpdated { peer: peer.clone() }),
                None => events.push(Event::PeerConnected { peer: peer.clone() }),
            }
        }
        for (code, room) in &after.rooms {
            if before.rooms.get(code) != Some(room) {
                events.push(Event::RoomUpdated { room: room.clone() });
            }
        }
        state.remote.insert(node.to_owned(), after);
        for event in events {
            self.emit_here(&mut state, event);
        }
    }

    /// A node went away: its peers and rooms close for this node's consoles.
    pub fn forget_remote(&self, node: &str) {
        let mut state = self.lock();
        let Some(gone) = state.remote.remove(node) else {
            return;
        };
        for id in gone.peers.into_keys() {
            self.emit_here(
                &mut state,
                Event::PeerClosed {
                    peer: id,
                    code: None,
                    reason: format!("node {node} gone"),
                },
            );
        }
        for code in gone.rooms.into_keys() {
            self.emit_here(&mut state, Event::RoomClosed { code });
        }
    }

    /// The cluster's node list, from this node's heartbeat; told to consoles every time, as
    /// it carries the nodes' counters.
    pub fn set_nodes(&self, nodes: Vec<NodeInfo>) {
        let mut state = self.lock();
        state.nodes = nodes.clone();
        self.emit(&mut state, Event::Nodes { nodes });
    }

    pub fn emit_stats(&self) {
        let mut state = self.lock();
        let now = now_ms();
        self.trim_history(&mut state, now);
        self.expire_bans(&mut state, now);
        if self.events.receiver_count() == 0 {
            // Nobody to tell; the flags are cleared so a console arriving later is not sent
            // a burst of stale updates (its snapshot has the counters).
            for peer in state.peers.values() {
                peer.handle.take_counters_changed();
            }
            return;
        }
        let changed: Vec<PeerInfo> = state
            .peers
            .values()
            .filter(|p| p.handle.take_counters_changed())
            .map(PeerEntry::info)
            .collect();
        for peer in changed {
            self.emit(&mut state, Event::PeerUpdated { peer });
        }
        let stats = self.stats_of(&state);
        self.emit(&mut state, Event::Stats { stats });
    }

    // ------------------------------------------------------------------------------------
    // Apps
    // ------------------------------------------------------------------------------------

    pub fn app_status(&self, app: &str) -> Option<AppStatus> {
        self.lock().apps.get(app).map(|a| a.status)
    }

    /// Every app's status, as persisted.
    pub fn app_statuses(&self) -> BTreeMap<String, AppStatus> {
        self.lock()
            .apps
            .iter()
            .map(|(id, app)| (id.clone(), app.status))
            .collect()
    }

    /// Change an app's status and tell its live peers; the caller persists first.
    pub fn set_app_status(&self, app: &str, status: AppStatus, by: &str) -> Result<usize, String> {
        let mut state = self.lock();
        let Some(entry) = state.apps.get_mut(app) else {
            return Err(format!("no app {app:?}"));
        };
        entry.status = status;
        let mut told = 0;
        for peer in state.peers.values() {
            if peer.info.app.as_deref() == Some(app) {
                peer.handle.control(Control::AppStatus(status));
                told += 1;
            }
        }
        self.emit(
            &mut state,
            Event::AppStatusChanged {
                app: app.to_owned(),
                status,
                by: by.to_owned(),
            },
        );
        Ok(told)
    }

    /// Count one message against the app's quota; false when the quota is exhausted.
    pub fn charge_quota(&self, app: &str) -> bool {
        let Some(quota) = self.config.app(app).and_then(|a| a.limits.message_quota) else {
            return true;
        };
        let now = now_ms();
        let mut state = self.lock();
        let Some(entry) = state.apps.get_mut(app) else {
            return true;
        };
        if now.saturating_sub(entry.quota_period_start_ms) >= quota.period_secs * 1000 {
            entry.quota_period_start_ms = now;
            entry.quota_used = 0;
        }
        let used_here = entry.quota_used;
        // Other nodes' messages in their own current periods count too; each node starts
        // its period at its first message, so the cluster's total is as fresh as a heartbeat.
        let period_ms = quota.period_secs.saturating_mul(1000);
        let used_elsewhere: u64 = state
            .remote_usage
            .iter()
            .filter_map(|usage| usage.quota.get(app))
            .filter(|q| now.saturating_sub(q.period_start_ms) < period_ms)
            .map(|q| q.used)
            .sum();
        if used_here.saturating_add(used_elsewhere) >= quota.max_messages {
            return false;
        }
        if let Some(entry) = state.apps.get_mut(app) {
            entry.quota_used += 1;
        }
        true
    }

    // ------------------------------------------------------------------------------------
    // Peers
    // ------------------------------------------------------------------------------------

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
            let here = state.peers_per_app.get(app).copied().unwrap_or(0);
            if here.saturating_add(state.remote_peers(app)) >= limit {
                return Err(RegisterError::OverConcurrentLimit {
                    app: app.clone(),
                    limit,
                });
            }
        }
        state.next_peer += 1;
        // In a cluster, ids name their node, so that every node's peers can share one console
        // and a command finds the node that holds its peer.
        let id = match self.node() {
            Some(node) => format!("{node}.p{}", state.next_peer),
            None => format!("p{}", state.next_peer),
        };
        let probe = new
            .probe_nonce
            .as_ref()
            .and_then(|nonce| state.pending_probes.remove(nonce))
            .map(|waiter| {
                let _ = waiter.send(id.clone());
            })
            .is_some();
        let (handle, queues) = PeerHandle::new(
            id.clone(),
            new.dialect,
            self.config.outbox,
            probe,
            Some(&self.recorder),
        );
        let info = PeerInfo {
            id: id.clone(),
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
        state.count_peer(info.dialect, info.app.as_ref(), 1);
        state.index_identity(info.dialect, info.identity.as_ref(), &id, true);
        state.peers.insert(
            id.clone(),
            PeerEntry {
                handle: handle.clone(),
                info: info.clone(),
                channels: BTreeSet::new(),
                subscriptions: BTreeSet::new(),
                rooms: Vec::new(),
                player_id: None,
                last_errors: VecDeque::new(),
            },
        );
        self.emit(&mut state, Event::PeerConnected { peer: info });
        Ok(PeerLink { handle, queues })
    }

    pub fn update_peer(&self, id: &str, change: impl FnOnce(&mut PeerInfo)) {
        let mut state = self.lock();
        let Some(peer) = state.peers.get_mut(id) else {
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
            state.count_peer(dialect, before.0.as_ref(), -1);
            state.count_peer(dialect, after.0.as_ref(), 1);
        }
        if before.1 != after.1 {
            state.index_identity(dialect, before.1.as_ref(), id, false);
            state.index_identity(dialect, after.1.as_ref(), id, true);
        }
        self.emit(&mut state, Event::PeerUpdated { peer: info });
    }

    pub fn peer(&self, id: &str) -> Option<PeerInfo> {
        self.lock().peers.get(id).map(PeerEntry::info)
    }

    /// The handle of a live peer, for callers that deliver to it repeatedly.
    pub fn handle(&self, id: &str) -> Option<Arc<PeerHandle>> {
        self.lock().peers.get(id).map(|p| p.handle.clone())
    }

    /// The peers of a dialect and app whose identity is `identity` (pub/sub `send` targets).
    pub fn find_peer_by_identity(
        &self,
        dialect: Dialect,
        app: &str,
        identity: &str,
    ) -> Option<Arc<PeerHandle>> {
        let state = self.lock();
        state
            .identities
            .get(&(dialect, identity.to_owned()))?
            .iter()
            .filter_map(|id| state.peers.get(id))
            .find(|p| p.info.app.as_deref() == Some(app))
            .map(|p| p.handle.clone())
    }

    /// A peer named by its hub id or, failing that, by its identity in `dialect` (the
    /// pub/sub `peerId` a backend knows). An identity live in several apps is ambiguous.
    pub fn resolve_peer(&self, name: &str, dialect: Dialect) -> Result<PeerId, String> {
        let state = self.lock();
        if state.peers.contains_key(name) {
            return Ok(name.to_owned());
        }
        let matching = state.identities.get(&(dialect, name.to_owned()));
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
        let Some(peer) = state.peers.remove(id) else {
            return Vec::new();
        };
        state.probes.remove(id);
        state.count_peer(peer.info.dialect, peer.info.app.as_ref(), -1);
        state.index_identity(peer.info.dialect, peer.info.identity.as_ref(), id, false);
        let (code, reason) = match (peer.handle.closing().cloned(), client_close) {
            // An operator's reason goes with the kick into the history and the log, where the
            // person triaging the player looks; the close frame keeps only the wire reason.
            (Some((code, reason)), _) => match peer.handle.kick_reason() {
                Some(why) => (Some(code), format!("{reason} — operator's reason: {why}")),
                None => (Some(code), reason),
            },
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
            self.leave_channel_locked(&mut state, key, id);
        }
        for subscription in &peer.subscriptions {
            state
                .subscriptions
                .remove(&(id.to_owned(), subscription.clone()));
            self.emit(
                &mut state,
                Event::SubscriptionRemoved {
                    peer: id.to_owned(),
                    id: subscription.clone(),
                },
            );
        }
        let ring = peer.handle.recording().map(|r| r.take());
        let path = peer
            .handle
            .recording()
            .and_then(|r| r.path().map(str::to_owned));
        let entry = HistoryEntry {
            closed_at_ms: now_ms(),
            closed: Closed::Peer(Box::new(ClosedPeer {
                peer: peer.info(),
                code,
                reason: reason.clone(),
                rooms: peer.rooms.clone(),
                player_id: peer.player_id.clone(),
                last_errors: peer.last_errors.iter().cloned().collect(),
                recorded_frames: ring.as_ref().map_or(0, |r| r.len() as u32),
            })),
        };
        self.emit(
            &mut state,
            Event::PeerClosed {
                peer: id.to_owned(),
                code,
                reason,
            },
        );
        self.add_history(&mut state, entry, path, ring);
        if state.peers.is_empty() {
            self.peers_gone.notify_waiters();
        }
        peer.channels.into_iter().collect()
    }

    /// Peers of a dialect and app that have said who they are.
    pub fn identified_peers(&self, dialect: Dialect, app: &str) -> Vec<Arc<PeerHandle>> {
        self.lock()
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

    /// Live peers of one dialect belonging to an app.
    /// Live peers of an app in one dialect, on every node of a cluster (as their last
    /// heartbeats reported the others).
    pub fn app_peer_count(&self, dialect: Dialect, app: &str) -> usize {
        let state = self.lock();
        let here = state
            .peers_per_dialect_app
            .get(&(dialect, app.to_owned()))
            .copied()
            .unwrap_or(0);
        let key = dialect_app(dialect, app);
        let elsewhere: u64 = state
            .remote_usage
            .iter()
            .filter_map(|usage| usage.dialect_peers.get(&key))
            .sum();
        here.saturating_add(usize::try_from(elsewhere).unwrap_or(usize::MAX))
    }

    /// This node's use of its apps, for the other nodes' limits and quotas.
    pub fn app_usage(&self) -> AppUsage {
        let state = self.lock();
        AppUsage {
            peers: state
                .peers_per_app
                .iter()
                .map(|(app, n)| (app.clone(), *n as u64))
                .collect(),
            dialect_peers: state
                .peers_per_dialect_app
                .iter()
                .map(|((dialect, app), n)| (dialect_app(*dialect, app), *n as u64))
                .collect(),
            quota: state
                .apps
                .iter()
                .filter(|(_, a)| a.quota_used > 0)
                .map(|(app, a)| {
                    (
                        app.clone(),
                        QuotaUse {
                            period_start_ms: a.quota_period_start_ms,
                            used: a.quota_used,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The other live nodes' use of their apps, from their latest heartbeats.
    pub fn set_remote_usage(&self, usage: Vec<AppUsage>) {
        self.lock().remote_usage = usage;
    }

    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Count an inbound frame and show it to admins tapping the peer.
    pub fn record_inbound(&self, peer: &PeerHandle, text: &str) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        peer.count_inbound();
        if peer.is_tapped() {
            let mut state = self.lock();
            self.emit(
                &mut state,
                Event::Frame {
                    peer: peer.id.clone(),
                    direction: Direction::In,
                    text: clip(text, MAX_EVENT_FRAME_BYTES),
                },
            );
        }
    }

    /// Queue a frame for one peer without touching the hub's lock (unless an admin taps the
    /// peer or it has to be closed). False when the frame was not queued.
    pub fn deliver(&self, peer: &PeerHandle, text: &Utf8Bytes, priority: Priority) -> bool {
        match peer.enqueue(text, priority) {
            Enqueued::Queued => {
                self.frames_out.fetch_add(1, Ordering::Relaxed);
                if peer.is_tapped() {
                    let mut state = self.lock();
                    self.emit(
                        &mut state,
                        Event::Frame {
                            peer: peer.id.clone(),
                            direction: Direction::Out,
                            text: clip(text.as_str(), MAX_EVENT_FRAME_BYTES),
                        },
                    );
                }
                true
            }
            Enqueued::Dropped => {
                self.frames_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Enqueued::Closed => false,
            Enqueued::Stalled => {
                self.close_slow_consumer(peer);
                false
            }
        }
    }

    /// Queue the same bytes for many peers (serialized once by the caller); how many took it.
    pub fn deliver_many<'a>(
        &self,
        peers: impl IntoIterator<Item = &'a Arc<PeerHandle>>,
        text: &Utf8Bytes,
        priority: Priority,
    ) -> usize {
        peers
            .into_iter()
            .filter(|peer| self.deliver(peer, text, priority))
            .count()
    }

    /// Close a peer that stopped reading, with its dialect's code, counted like any error
    /// close. Also for a peer whose writer gave up while nothing more was being queued.
    pub fn close_slow_consumer(&self, peer: &PeerHandle) {
        let (code, reason) = slow_consumer_close(peer.dialect);
        if !peer.begin_close(code, reason) {
            return;
        }
        peer.abort();
        self.count_close(peer, code, reason);
    }

    /// A close this server sent, counted and shown to admins like an error frame.
    fn count_close(&self, peer: &PeerHandle, code: u16, reason: &str) {
        let mut state = self.lock();
        self.count_error(
            &mut state,
            Some(peer),
            peer.dialect,
            &code.to_string(),
            Delivery::Close,
            None,
            format!("close {code} {reason}"),
        );
    }

    /// Queue a reply for one peer by id. False when the peer is gone or closing.
    pub fn send(&self, id: &str, text: impl Into<Utf8Bytes>) -> bool {
        let Some(peer) = self.handle(id) else {
            return false;
        };
        self.deliver(&peer, &text.into(), Priority::Reply)
    }

    /// Queue the same reply for peers named by id (structural notices: joins, leaves,
    /// authority). The handles are looked up under the lock and delivered outside it.
    pub fn send_many<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a PeerId>,
        text: impl Into<Utf8Bytes>,
    ) -> usize {
        let handles: Vec<Arc<PeerHandle>> = {
            let state = self.lock();
            ids.into_iter()
                .filter_map(|id| state.peers.get(id).map(|p| p.handle.clone()))
                .collect()
        };
        self.deliver_many(&handles, &text.into(), Priority::Reply)
    }

    #[allow(clippy::too_many_arguments)]
    fn count_error(
        &self,
        state: &mut State,
        peer: Option<&PeerHandle>,
        dialect: Dialect,
        code: &str,
        delivery: Delivery,
        request_id: Option<&str>,
        frame: String,
    ) {
        state.errors += 1;
        *state
            .errors_by_code
            .entry(format!("{}:{code}", dialect.id()))
            .or_default() += 1;
        let frame = clip(&frame, MAX_EVENT_FRAME_BYTES);
        if let Some(peer) = peer {
            peer.count_error();
            if let Some(entry) = state.peers.get_mut(&peer.id) {
                if entry.last_errors.len() >= LAST_ERRORS {
                    entry.last_errors.pop_front();
                }
                entry.last_errors.push_back(RecentError {
                    at_ms: now_ms(),
                    dialect,
                    code: code.to_owned(),
                    frame: frame.clone(),
                });
            }
        }
        self.emit(
            state,
            Event::ErrorEmitted {
                peer: peer.map(|p| p.id.clone()),
                dialect,
                code: code.to_owned(),
                delivery,
                request_id: request_id.map(|id| clip(id, MAX_EVENT_FRAME_BYTES)),
                frame,
            },
        );
    }

    /// Send an error frame: the single path every dialect's error frames take, so that they
    /// are counted and every console sees them.
    pub fn send_error(
        &self,
        peer: &PeerHandle,
        code: &str,
        request_id: Option<&str>,
        frame: String,
    ) {
        let text: Utf8Bytes = frame.into();
        if self.deliver(peer, &text, Priority::Reply) {
            let mut state = self.lock();
            self.count_error(
                &mut state,
                Some(peer),
                peer.dialect,
                code,
                Delivery::Frame,
                request_id,
                text.as_str().to_owned(),
            );
        }
    }

    /// Record an error that went out over HTTP (no peer).
    pub fn record_http_error(&self, dialect: Dialect, code: &str, body: String) {
        let mut state = self.lock();
        self.count_error(&mut state, None, dialect, code, Delivery::Http, None, body);
    }

    /// Record a close sent to a connection refused before it became a peer.
    pub fn record_unattached_error(&self, dialect: Dialect, code: &str, frame: String) {
        let mut state = self.lock();
        self.count_error(
            &mut state,
            None,
            dialect,
            code,
            Delivery::Close,
            None,
            frame,
        );
    }

    /// Close a peer after the frames already queued (at once if it is too far behind for
    /// them to matter). Error closes are reported like error frames; normal ones (1000, 1001)
    /// are not.
    pub fn close_peer(&self, peer: &PeerHandle, code: u16, reason: &str) {
        if !peer.begin_close(code, reason) {
            return;
        }
        if peer.queued_bytes() > self.config.outbox.soft_bytes {
            peer.abort();
        } else {
            peer.queue_close(code, reason);
        }
        let is_error =
            catalog::close(peer.dialect, code).is_none_or(|e| e.severity() != Severity::Info);
        if is_error {
            self.count_close(peer, code, reason);
        }
    }

    /// Tell a peer's connection task something.
    pub fn control(&self, id: &str, control: Control) -> bool {
        self.handle(id).is_some_and(|p| p.control(control))
    }

    pub fn kick(&self, id: &str, reason: Option<String>) -> Result<PeerInfo, String> {
        let state = self.lock();
        let peer = state.peers.get(id).ok_or_else(|| format!("no peer {id}"))?;
        if peer.handle.closing().is_some() || !peer.handle.control(Control::Kick { reason }) {
            return Err(format!("peer {id} is already closing"));
        }
        Ok(peer.info())
    }

    pub fn set_tap(&self, id: &str, on: bool) -> Result<(), String> {
        let state = self.lock();
        let peer = state.peers.get(id).ok_or_else(|| format!("no peer {id}"))?;
        peer.handle.set_tapped(on);
        Ok(())
    }

    // ------------------------------------------------------------------------------------
    // Channels and subscriptions
    // ------------------------------------------------------------------------------------

    /// Add a member; returns false when it already was one.
    pub fn channel_join(&self, peer: &Arc<PeerHandle>, app: &str, channel: &str) -> bool {
        let mut state = self.lock();
        let key = (peer.dialect, app.to_owned(), channel.to_owned());
        let Some(entry) = state.peers.get_mut(&peer.id) else {
            return false;
        };
        if !entry.channels.insert(key.clone()) {
            return false;
        }
        self.channel_index_mut()
            .entry(key)
            .or_default()
            .members_mut()
            .insert(peer.id.clone(), peer.clone());
        self.emit(
            &mut state,
            Event::ChannelJoined {
                dialect: peer.dialect,
                app: app.to_owned(),
                channel: channel.to_owned(),
                peer: peer.id.clone(),
            },
        );
        true
    }

    pub fn channel_leave(&self, peer: &PeerHandle, app: &str, channel: &str) -> bool {
        let mut state = self.lock();
        let key = (peer.dialect, app.to_owned(), channel.to_owned());
        let removed = state
            .peers
            .get_mut(&peer.id)
            .is_some_and(|entry| entry.channels.remove(&key));
        if removed {
            self.leave_channel_locked(&mut state, &key, &peer.id);
        }
        removed
    }

    fn leave_channel_locked(&self, state: &mut State, key: &ChannelKey, peer: &str) {
        {
            let mut index = self.channel_index_mut();
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
        self.emit(
            state,
            Event::ChannelLeft {
                dialect: key.0,
                app: key.1.clone(),
                channel: key.2.clone(),
                peer: peer.to_owned(),
            },
        );
    }

    /// A channel's members, for presence listings.
    pub fn channel_members(
        &self,
        dialect: Dialect,
        app: &str,
        channel: &str,
    ) -> Vec<Arc<PeerHandle>> {
        self.channel_index()
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
            .channel_index()
            .get(&(dialect, app.to_owned(), channel.to_owned()))
            .cloned()
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

    pub fn add_subscription(&self, subscription: SubscriptionInfo) {
        let mut state = self.lock();
        let Some(entry) = state.peers.get_mut(&subscription.peer) else {
            return;
        };
        entry.subscriptions.insert(subscription.id.clone());
        state.subscriptions.insert(
            (subscription.peer.clone(), subscription.id.clone()),
            subscription.clone(),
        );
        self.emit(&mut state, Event::SubscriptionAdded { subscription });
    }

    pub fn remove_subscription(&self, peer: &str, id: &str) {
        let mut state = self.lock();
        if let Some(entry) = state.peers.get_mut(peer) {
            entry.subscriptions.remove(id);
        }
        if state
            .subscriptions
            .remove(&(peer.to_owned(), id.to_owned()))
            .is_some()
        {
            self.emit(
                &mut state,
                Event::SubscriptionRemoved {
                    peer: peer.to_owned(),
                    id: id.to_owned(),
                },
            );
        }
    }

    // ------------------------------------------------------------------------------------
    // Rooms (owned by the Signal Fish dialect; the hub keeps what admins see)
    // ------------------------------------------------------------------------------------

    pub fn room_updated(&self, room: RoomInfo) {
        let mut state = self.lock();
        // Members learn their player id here: it links a player's connections across
        // reconnects in the history.
        for member in room.players.iter().chain(&room.spectators) {
            if let Some(entry) = member.peer.as_ref().and_then(|p| state.peers.get_mut(p)) {
                if entry.player_id.as_ref() != Some(&member.player_id) {
                    entry.player_id = Some(member.player_id.clone());
                }
            }
        }
        state.rooms.insert(room.code.clone(), room.clone());
        self.emit(&mut state, Event::RoomUpdated { room });
    }

    /// A room closed because its last member left.
    pub fn room_closed(&self, code: &str) {
        self.room_closed_because(code, "empty");
    }

    pub fn room_closed_because(&self, code: &str, reason: &str) {
        let mut state = self.lock();
        if let Some(room) = state.rooms.remove(code) {
            self.emit(
                &mut state,
                Event::RoomClosed {
                    code: code.to_owned(),
                },
            );
            let entry = HistoryEntry {
                closed_at_ms: now_ms(),
                closed: Closed::Room(Box::new(ClosedRoom {
                    room,
                    reason: reason.to_owned(),
                })),
            };
            self.add_history(&mut state, entry, None, None);
        }
    }

    pub fn close_room(&self, room: &str) -> Result<String, String> {
        match self.room_directory() {
            Some(directory) => directory.close_room(self, room),
            None => Err(format!(
                "no room {room}: this server has no room-based dialect running"
            )),
        }
    }

    pub fn transfer_authority(&self, room: &str, player_id: &str) -> Result<String, String> {
        match self.room_directory() {
            Some(directory) => directory.transfer_authority(self, room, player_id),
            None => Err(format!(
                "no room {room}: this server has no room-based dialect running"
            )),
        }
    }

    pub fn revoke_authority(&self, room: &str) -> Result<String, String> {
        match self.room_directory() {
            Some(directory) => directory.revoke_authority(self, room),
            None => Err(format!(
                "no room {room}: this server has no room-based dialect running"
            )),
        }
    }

    // ------------------------------------------------------------------------------------
    // Faults
    // ------------------------------------------------------------------------------------

    pub fn arm_fault(&self, target: FaultTarget, code: String, count: u32) -> FaultInfo {
        let mut state = self.lock();
        state.next_fault += 1;
        let fault = FaultInfo {
            id: state.next_fault,
            target,
            code,
            remaining: count,
        };
        state.faults.push(fault.clone());
        self.faults_armed
            .store(state.faults.len(), Ordering::Relaxed);
        self.emit(
            &mut state,
            Event::FaultArmed {
                fault: fault.clone(),
            },
        );
        fault
    }

    pub fn disarm_fault(&self, id: u64) -> Result<FaultInfo, String> {
        let mut state = self.lock();
        let index = state
            .faults
            .iter()
            .position(|f| f.id == id)
            .ok_or_else(|| format!("no armed fault {id}"))?;
        let mut fault = state.faults.remove(index);
        self.faults_armed
            .store(state.faults.len(), Ordering::Relaxed);
        fault.remaining = 0;
        self.emit(
            &mut state,
            Event::FaultUpdated {
                fault: fault.clone(),
            },
        );
        Ok(fault)
    }

    /// The code the peer's next request must fail with, if a fault is armed for it (a fault
    /// on the peer wins over one on its dialect). Free when nothing is armed.
    pub fn take_fault(&self, peer: &PeerHandle) -> Option<String> {
        if self.faults_armed.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut state = self.lock();
        let index = state
            .faults
            .iter()
            .position(|f| matches!(&f.target, FaultTarget::Peer { peer: p } if *p == peer.id))
            .or_else(|| {
                state.faults.iter().position(
                    |f| matches!(&f.target, FaultTarget::Dialect { dialect: d } if *d == peer.dialect),
                )
            })?;
        let fault = &mut state.faults[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let updated = fault.clone();
        if updated.remaining == 0 {
            state.faults.remove(index);
            self.faults_armed
                .store(state.faults.len(), Ordering::Relaxed);
        }
        let code = updated.code.clone();
        self.emit(&mut state, Event::FaultUpdated { fault: updated });
        Some(code)
    }

    // ------------------------------------------------------------------------------------
    // Probes
    // ------------------------------------------------------------------------------------

    /// Expect a probe connection presenting `nonce`; the receiver yields its peer id.
    pub fn expect_probe(&self, nonce: String) -> oneshot::Receiver<PeerId> {
        let (sender, receiver) = oneshot::channel();
        self.lock().pending_probes.insert(nonce, sender);
        receiver
    }

    pub fn forget_probe_nonce(&self, nonce: &str) {
        self.lock().pending_probes.remove(nonce);
    }

    pub fn register_probe_sender(&self, peer: &str, sender: mpsc::UnboundedSender<String>) {
        self.lock().probes.insert(peer.to_owned(), sender);
    }

    pub fn probe_sender(&self, peer: &str) -> Option<mpsc::UnboundedSender<String>> {
        self.lock().probes.get(peer).cloned()
    }

    // ------------------------------------------------------------------------------------
    // History and the flight recorder
    // ------------------------------------------------------------------------------------

    fn add_history(
        &self,
        state: &mut State,
        entry: HistoryEntry,
        path: Option<String>,
        ring: Option<Ring>,
    ) {
        self.emit(
            state,
            Event::HistoryAdded {
                entry: entry.clone(),
            },
        );
        state.history.push_back(HistoryItem { entry, path, ring });
        self.trim_history(state, now_ms());
    }

    /// Drop entries past the count or the age limit; each costs only its own removal.
    fn trim_history(&self, state: &mut State, now: u64) {
        let limits = self.config.history;
        while state.history.len() > limits.max_entries as usize
            || state
                .history
                .front()
                .is_some_and(|h| h.entry.closed_at_ms.saturating_add(limits.retain_ms) <= now)
        {
            state.history.pop_front();
        }
    }

    /// What the recorder holds of a peer, live or in the history.
    pub fn peer_record(&self, id: &str) -> Option<PeerRecord> {
        let state = self.lock();
        if let Some(peer) = state.peers.get(id) {
            let recording = peer.handle.recording();
            return Some(PeerRecord {
                info: peer.info(),
                path: recording.and_then(|r| r.path().map(str::to_owned)),
                frames: recording.map(|r| r.records()).unwrap_or_default(),
                closed: None,
                closed_at_ms: None,
                rooms: peer.rooms.clone(),
            });
        }
        // The newest entry first: a history holds one entry per peer id, but be sure.
        state
            .history
            .iter()
            .rev()
            .find_map(|item| match &item.entry.closed {
                Closed::Peer(closed) if closed.peer.id == id => Some(PeerRecord {
                    info: closed.peer.clone(),
                    path: item.path.clone(),
                    frames: item
                        .ring
                        .as_ref()
                        .map(|r| r.records().cloned().collect())
                        .unwrap_or_default(),
                    closed: Some((closed.code, closed.reason.clone())),
                    closed_at_ms: Some(item.entry.closed_at_ms),
                    rooms: closed.rooms.clone(),
                }),
                _ => None,
            })
    }

    /// The peers, live and closed, that were in (or tried to join) room `code`, except
    /// `except`. An export of a room failure replays them too.
    pub fn room_participants(&self, code: &str, except: &str) -> Vec<PeerRecord> {
        let ids: Vec<PeerId> = {
            let state = self.lock();
            let live = state
                .peers
                .iter()
                .filter(|(id, p)| id.as_str() != except && p.rooms.iter().any(|r| r == code))
                .map(|(id, _)| id.clone());
            let closed = state
                .history
                .iter()
                .filter_map(|item| match &item.entry.closed {
                    Closed::Peer(c) if c.peer.id != except && c.rooms.iter().any(|r| r == code) => {
                        Some(c.peer.id.clone())
                    }
                    _ => None,
                });
            live.chain(closed).collect()
        };
        ids.iter().filter_map(|id| self.peer_record(id)).collect()
    }

    // ------------------------------------------------------------------------------------
    // Bans
    // ------------------------------------------------------------------------------------

    /// Bans read from the data folder at start.
    pub fn restore_bans(&self, bans: Vec<BanInfo>, next_id: u64) {
        let mut state = self.lock();
        let now = now_ms();
        for ban in bans.into_iter().filter(|b| b.until_ms > now) {
            state.bans.insert(ban);
        }
        state.bans.set_next_id(next_id);
        self.bans_active.store(state.bans.len(), Ordering::Relaxed);
    }

    pub fn bans(&self) -> (Vec<BanInfo>, u64) {
        let state = self.lock();
        (state.bans.list(), state.bans.next_id())
    }

    pub fn allocate_ban_id(&self) -> u64 {
        self.lock().bans.allocate_id()
    }

    /// Put a ban in force and kick the live peers it matches; returns how many.
    pub fn add_ban(&self, ban: BanInfo) -> usize {
        let mut state = self.lock();
        let kick = Control::Kick {
            reason: Some(format!("banned: {}", ban.reason)),
        };
        let mut kicked = 0;
        for peer in state.peers.values() {
            let matches = match &ban.target {
                BanTarget::Identity { app, identity } => {
                    peer.info.identity.as_ref() == Some(identity)
                        && (app.is_none() || peer.info.app == *app)
                }
                BanTarget::Address { ip } => {
                    crate::server::bans::ip_of(&peer.info.addr).map(|a| a.to_string())
                        == Some(ip.clone())
                }
            };
            if matches && peer.handle.closing().is_none() && peer.handle.control(kick.clone()) {
                kicked += 1;
            }
        }
        state.bans.insert(ban.clone());
        self.bans_active.store(state.bans.len(), Ordering::Relaxed);
        self.emit(&mut state, Event::BanAdded { ban });
        kicked
    }

    pub fn lift_ban(&self, id: u64, by: &str) -> Result<BanInfo, String> {
        let mut state = self.lock();
        let ban = state
            .bans
            .remove(id)
            .ok_or_else(|| format!("no ban {id} in force"))?;
        self.bans_active.store(state.bans.len(), Ordering::Relaxed);
        self.emit(
            &mut state,
            Event::BanLifted {
                id,
                by: by.to_owned(),
            },
        );
        Ok(ban)
    }

    fn expire_bans(&self, state: &mut State, now: u64) {
        if self.bans_active.load(Ordering::Relaxed) == 0 {
            return;
        }
        for ban in state.bans.expire(now) {
            self.emit(
                state,
                Event::BanLifted {
                    id: ban.id,
                    by: "expired".to_owned(),
                },
            );
        }
        self.bans_active.store(state.bans.len(), Ordering::Relaxed);
    }

    pub fn bans_in_force(&self) -> bool {
        self.bans_active.load(Ordering::Relaxed) > 0
    }

    /// The ban in force on a client address, if any; free while no ban is in force.
    pub fn address_ban(&self, addr: std::net::IpAddr) -> Option<BanInfo> {
        if self.bans_active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.lock().bans.address(addr, now_ms()).cloned()
    }

    /// The ban in force on an identity within an app, if any; free while no ban is in force.
    pub fn identity_ban(&self, app: Option<&str>, identity: &str) -> Option<BanInfo> {
        if self.bans_active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.lock().bans.identity(app, identity, now_ms()).cloned()
    }

    // ------------------------------------------------------------------------------------
    // Shutdown
    // ------------------------------------------------------------------------------------

    /// Refuse new peers and tell every live one to close.
    pub fn begin_shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for peer in state.peers.values() {
            peer.handle.control(Control::Shutdown);
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
        let apps = state
            .apps
            .iter()
            .map(|(k, v)| (k.clone(), v.status))
            .collect();
        (self.stats_of(&state), apps, self.channel_index().len())
    }
}

/// The close code for a peer that cannot keep up, per dialect.
pub fn slow_consumer_close(dialect: Dialect) -> (u16, &'static str) {
    match dialect {
        Dialect::SignalFish => (4002, "slow_consumer"),
        _ => (1013, "try_again_later"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::server::peer::OutboxLimits;

    #[test]
    fn a_peer_that_stops_reading_is_closed_as_a_slow_consumer() {
        let mut config = Config::demo();
        config.outbox = OutboxLimits {
            soft_bytes: 4,
            hard_bytes: 8,
            stall_ms: u64::MAX,
        };
        let hub = Hub::new(config, "test".into(), &BTreeMap::new(), 64);
        let (_, _, mut events) = hub.subscribe();
        let link = hub
            .register_peer(
                NewPeer {
                    dialect: Dialect::Pubsub,
                    app: Some("demo".into()),
                    identity: None,
                    addr: "127.0.0.1:1".into(),
                    probe_nonce: None,
                },
                None,
            )
            .unwrap();
        let frame: Utf8Bytes = "{}".into();
        for _ in 0..4 {
            assert!(hub.deliver(&link.handle, &frame, Priority::Reply));
        }
        assert!(
            !hub.deliver(&link.handle, &frame, Priority::Reply),
            "the frame past the hard budget is refused"
        );
        assert_eq!(
            link.handle.closing().cloned(),
            Some((1013, "try_again_later".to_owned()))
        );
        assert!(
            !hub.deliver(&link.handle, &frame, Priority::Reply),
            "a closing peer takes no more frames"
        );
        let mut emitted = None;
        while let Ok(delta) = events.try_recv() {
            let message: ServerMessage = serde_json::from_str(delta.text.as_str()).unwrap();
            if let ServerMessage::Delta {
                event: Event::ErrorEmitted { code, frame, .. },
                ..
            } = message
            {
                emitted = Some((code, frame));
            }
        }
        assert_eq!(
            emitted,
            Some(("1013".to_owned(), "close 1013 try_again_later".to_owned()))
        );
    }

    #[test]
    fn a_closed_peers_frames_move_to_its_history_entry_and_leave_with_it() {
        let mut config = Config::demo();
        config.history.max_entries = 1;
        let hub = Hub::new(config, "test".into(), &BTreeMap::new(), 64);
        let new = || NewPeer {
            dialect: Dialect::Pubsub,
            app: Some("demo".into()),
            identity: None,
            addr: "127.0.0.1:1".into(),
            probe_nonce: None,
        };
        let first = hub.register_peer(new(), None).unwrap();
        let frame: Utf8Bytes = "hello".into();
        assert!(hub.deliver(&first.handle, &frame, Priority::Reply));
        first.handle.record(Direction::In, &"hi".into());
        assert_eq!(hub.recorder().used_bytes(), 7);
        hub.remove_peer(first.id(), None);
        let record = hub.peer_record(first.id()).unwrap();
        assert_eq!(record.frames.len(), 2);
        assert_eq!(record.closed, Some((None, "connection dropped".to_owned())));
        assert_eq!(hub.recorder().used_bytes(), 7, "kept while in the history");
        let second = hub.register_peer(new(), None).unwrap();
        hub.remove_peer(second.id(), None);
        assert!(
            hub.peer_record(first.id()).is_none(),
            "pushed out by the newer entry"
        );
        assert_eq!(hub.recorder().used_bytes(), 0, "its frames left with it");
        let (_, snapshot, _) = hub.subscribe();
        assert_eq!(snapshot.history.len(), 1);
    }

    #[test]
    fn event_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é… (6 bytes in all)");
        assert!(
            clip(&"x".repeat(100_000), MAX_EVENT_FRAME_BYTES).len() < MAX_EVENT_FRAME_BYTES + 32
        );
    }

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
