//! The hub: everything the server knows about apps, peers, channels, subscriptions and faults,
//! and the one place where admin deltas are numbered.
//!
//! # Locking
//! The state sits behind one `std::sync::Mutex`. Every operation on it is short and does no
//! I/O: frames are handed to peers with `try_send` on bounded queues and admin deltas go out
//! through a `broadcast` channel, neither of which waits. So the lock is never held across an
//! `.await` (it could not be: the guard is not `Send`), and a slow peer or a slow console can
//! never stall the data path. A plain mutex is also what makes delta numbering simple: the
//! `seq` of an event is assigned under the same lock as the change it describes, so a snapshot
//! taken under the lock and the deltas after it line up exactly.
//!
//! # Extension points for a dialect
//! - [`Hub::register_peer`] when a connection is accepted (it enforces the app's connection
//!   limit) and [`Hub::remove_peer`] when it ends; [`Hub::update_peer`] when identity, app or
//!   room becomes known.
//! - [`Hub::record_inbound`] for every frame received; [`Hub::send`] / [`Hub::send_many`] to
//!   deliver frames (serialized once, shared bytes); [`Hub::send_error`] and
//!   [`Hub::close_peer`] for every error frame and close, so admins see `error_emitted`.
//! - React to [`Control`] messages on the peer's control channel: kick, app status changes,
//!   injected frames, shutdown.
//! - [`Hub::take_fault`] before handling a request, to honour armed faults.
//! - Channels ([`Hub::channel_join`] …) and subscriptions ([`Hub::add_subscription`] …) for
//!   what the console's channels and subscriptions views show.
//! - Rooms: [`RoomDirectory`], implemented by the Signal Fish dialect, answers the admin's
//!   room commands.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};

use crate::catalog::{self, Delivery, Dialect, Severity};
use crate::protocol::admin::{
    AppInfo, AppStatus, ChannelInfo, Direction, Event, FaultInfo, FaultTarget, KeyInfo, PeerId,
    PeerInfo, RoomInfo, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};
use crate::server::config::Config;

/// Frames queued for one peer before it counts as a slow consumer.
pub const OUTBOX_CAPACITY: usize = 512;

/// Deltas buffered per console before it is sent a fresh snapshot instead.
pub const EVENT_CAPACITY: usize = 4096;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// What a peer's writer task sends.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    Close(u16, String),
}

/// Requests to a peer's connection task, which owns the dialect's per-connection state.
#[derive(Debug, Clone)]
pub enum Control {
    /// An admin kick: send the dialect's notice, then close 4020 admin_disconnect.
    Kick { reason: Option<String> },
    /// The peer's app changed status.
    AppStatus(AppStatus),
    /// Handle this frame as if the peer had sent it.
    Inject(String),
    /// The server is shutting down.
    Shutdown,
}

/// One numbered delta, serialized once for every console.
#[derive(Debug)]
pub struct Delta {
    pub seq: u64,
    pub text: Utf8Bytes,
}

/// The channels a connection task uses; the hub keeps the other ends.
pub struct PeerLink {
    pub id: PeerId,
    pub outbox: mpsc::Receiver<Outbound>,
    pub control: mpsc::UnboundedReceiver<Control>,
    /// Set when the peer must be closed at once, without waiting for its queue to drain.
    pub abort: watch::Receiver<Option<(u16, String)>>,
}

pub struct NewPeer {
    pub dialect: Dialect,
    pub app: Option<String>,
    pub identity: Option<String>,
    pub addr: String,
    /// The `x-relaydeck-probe` nonce the connection presented, if any.
    pub probe_nonce: Option<String>,
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
    info: PeerInfo,
    outbox: mpsc::Sender<Outbound>,
    control: mpsc::UnboundedSender<Control>,
    abort: watch::Sender<Option<(u16, String)>>,
    tapped: bool,
    /// Counters changed since the last stats tick; the tick sends `peer_updated` for it.
    counters_changed: bool,
    /// The close this server sent or is sending, reported when the peer is removed.
    closing: Option<(u16, String)>,
}

struct AppState {
    status: AppStatus,
    quota_used: u64,
    quota_period_start_ms: u64,
}

#[derive(Default)]
struct ChannelState {
    members: BTreeSet<PeerId>,
    messages: u64,
}

type ChannelKey = (Dialect, String, String);

#[derive(Default)]
struct State {
    seq: u64,
    next_peer: u64,
    next_fault: u64,
    apps: BTreeMap<String, AppState>,
    peers: BTreeMap<PeerId, PeerEntry>,
    channels: BTreeMap<ChannelKey, ChannelState>,
    subscriptions: BTreeMap<(PeerId, String), SubscriptionInfo>,
    rooms: BTreeMap<String, RoomInfo>,
    faults: Vec<FaultInfo>,
    stats: Stats,
    pending_probes: HashMap<String, oneshot::Sender<PeerId>>,
    probes: HashMap<PeerId, mpsc::UnboundedSender<String>>,
    shutting_down: bool,
}

pub struct Hub {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Delta>>,
    config: Config,
    info: ServerInfo,
    rooms: Mutex<Option<Arc<dyn RoomDirectory>>>,
    peers_gone: Notify,
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
            events,
            config,
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                listen,
                started_at_ms: started,
            },
            rooms: Mutex::new(None),
            peers_gone: Notify::new(),
        }
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

    pub fn set_room_directory(&self, directory: Arc<dyn RoomDirectory>) {
        *self.rooms.lock().unwrap_or_else(|p| p.into_inner()) = Some(directory);
    }

    fn room_directory(&self) -> Option<Arc<dyn RoomDirectory>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn emit(&self, state: &mut State, event: Event) {
        state.seq += 1;
        let seq = state.seq;
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
        let state = self.lock();
        let receiver = self.events.subscribe();
        let snapshot = self.snapshot_of(&state);
        (state.seq, snapshot, receiver)
    }

    fn snapshot_of(&self, state: &State) -> Snapshot {
        Snapshot {
            server: self.info.clone(),
            apps: self.apps_of(state),
            peers: state.peers.values().map(|p| p.info.clone()).collect(),
            rooms: state.rooms.values().cloned().collect(),
            channels: state
                .channels
                .iter()
                .map(|((dialect, app, name), channel)| ChannelInfo {
                    dialect: *dialect,
                    app: app.clone(),
                    name: name.clone(),
                    members: channel.members.iter().cloned().collect(),
                    messages: channel.messages,
                })
                .collect(),
            subscriptions: state.subscriptions.values().cloned().collect(),
            faults: state.faults.clone(),
            stats: Self::stats_of(state),
        }
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

    fn stats_of(state: &State) -> Stats {
        let mut stats = state.stats.clone();
        stats.peers_by_dialect.clear();
        for peer in state.peers.values() {
            *stats.peers_by_dialect.entry(peer.info.dialect).or_default() += 1;
        }
        stats.channel_messages = state
            .channels
            .iter()
            .filter(|(_, channel)| channel.messages > 0)
            .map(|((dialect, app, name), channel)| {
                (format!("{}/{app}/{name}", dialect.id()), channel.messages)
            })
            .collect();
        stats
    }

    /// Once a second: the counters of peers that were busy, then the totals. Per-frame deltas
    /// would cost consoles more than the frames themselves; a second is fresh enough.
    pub fn emit_stats(&self) {
        let mut state = self.lock();
        let changed: Vec<PeerInfo> = state
            .peers
            .values_mut()
            .filter(|p| p.counters_changed)
            .map(|p| {
                p.counters_changed = false;
                p.info.clone()
            })
            .collect();
        for peer in changed {
            self.emit(&mut state, Event::PeerUpdated { peer });
        }
        let stats = Self::stats_of(&state);
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
                let _ = peer.control.send(Control::AppStatus(status));
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
        if entry.quota_used >= quota.max_messages {
            return false;
        }
        entry.quota_used += 1;
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
            let live = state
                .peers
                .values()
                .filter(|p| p.info.app.as_ref() == Some(app))
                .count();
            if live >= limit {
                return Err(RegisterError::OverConcurrentLimit {
                    app: app.clone(),
                    limit,
                });
            }
        }
        state.next_peer += 1;
        let id = format!("p{}", state.next_peer);
        let (outbox_tx, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (abort_tx, abort_rx) = watch::channel(None);
        let probe = new
            .probe_nonce
            .as_ref()
            .and_then(|nonce| state.pending_probes.remove(nonce))
            .map(|waiter| {
                let _ = waiter.send(id.clone());
            })
            .is_some();
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
        };
        state.peers.insert(
            id.clone(),
            PeerEntry {
                info: info.clone(),
                outbox: outbox_tx,
                control: control_tx,
                abort: abort_tx,
                tapped: probe,
                counters_changed: false,
                closing: None,
            },
        );
        self.emit(&mut state, Event::PeerConnected { peer: info });
        Ok(PeerLink {
            id,
            outbox: outbox_rx,
            control: control_rx,
            abort: abort_rx,
        })
    }

    pub fn update_peer(&self, id: &str, change: impl FnOnce(&mut PeerInfo)) {
        let mut state = self.lock();
        let Some(peer) = state.peers.get_mut(id) else {
            return;
        };
        change(&mut peer.info);
        let info = peer.info.clone();
        self.emit(&mut state, Event::PeerUpdated { peer: info });
    }

    pub fn peer(&self, id: &str) -> Option<PeerInfo> {
        self.lock().peers.get(id).map(|p| p.info.clone())
    }

    /// The peers of a dialect and app whose identity is `identity` (pub/sub `send` targets).
    pub fn find_peer_by_identity(
        &self,
        dialect: Dialect,
        app: &str,
        identity: &str,
    ) -> Option<PeerId> {
        self.lock()
            .peers
            .values()
            .find(|p| {
                p.info.dialect == dialect
                    && p.info.app.as_deref() == Some(app)
                    && p.info.identity.as_deref() == Some(identity)
            })
            .map(|p| p.info.id.clone())
    }

    /// A peer named by its hub id or, failing that, by its identity in `dialect` (the
    /// pub/sub `peerId` a backend knows). An identity live in several apps is ambiguous.
    pub fn resolve_peer(&self, name: &str, dialect: Dialect) -> Result<PeerId, String> {
        let state = self.lock();
        if state.peers.contains_key(name) {
            return Ok(name.to_owned());
        }
        let mut matching = state
            .peers
            .values()
            .filter(|p| p.info.dialect == dialect && p.info.identity.as_deref() == Some(name));
        match (matching.next(), matching.next()) {
            (Some(peer), None) => Ok(peer.info.id.clone()),
            (Some(_), Some(_)) => Err(format!(
                "{name} is live in several apps; name the peer by its hub id"
            )),
            (None, _) => Err(format!("no peer {name}")),
        }
    }

    /// Forget a peer whose connection ended; `client_close` is the close the client sent, if
    /// any. Channel memberships and subscriptions go with it.
    pub fn remove_peer(
        &self,
        id: &str,
        client_close: Option<(u16, String)>,
    ) -> Vec<(Dialect, String, String)> {
        let mut state = self.lock();
        let Some(peer) = state.peers.remove(id) else {
            return Vec::new();
        };
        state.probes.remove(id);
        let (code, reason) = match (peer.closing, client_close) {
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
        let mut left = Vec::new();
        let keys: Vec<ChannelKey> = state
            .channels
            .iter()
            .filter(|(_, c)| c.members.contains(id))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            if let Some(channel) = state.channels.get_mut(&key) {
                channel.members.remove(id);
                if channel.members.is_empty() {
                    state.channels.remove(&key);
                }
            }
            self.emit(
                &mut state,
                Event::ChannelLeft {
                    dialect: key.0,
                    app: key.1.clone(),
                    channel: key.2.clone(),
                    peer: id.to_owned(),
                },
            );
            left.push(key);
        }
        let subscriptions: Vec<(PeerId, String)> = state
            .subscriptions
            .keys()
            .filter(|(peer, _)| peer == id)
            .cloned()
            .collect();
        for key in subscriptions {
            state.subscriptions.remove(&key);
            self.emit(
                &mut state,
                Event::SubscriptionRemoved {
                    peer: key.0,
                    id: key.1,
                },
            );
        }
        self.emit(
            &mut state,
            Event::PeerClosed {
                peer: id.to_owned(),
                code,
                reason,
            },
        );
        if state.peers.is_empty() {
            self.peers_gone.notify_waiters();
        }
        left
    }

    /// Peers of a dialect and app that have said who they are.
    pub fn identified_peers(&self, dialect: Dialect, app: &str) -> Vec<PeerId> {
        self.lock()
            .peers
            .values()
            .filter(|p| {
                p.info.dialect == dialect
                    && p.info.app.as_deref() == Some(app)
                    && p.info.identity.is_some()
            })
            .map(|p| p.info.id.clone())
            .collect()
    }

    /// Live peers of one dialect belonging to an app.
    pub fn app_peer_count(&self, dialect: Dialect, app: &str) -> usize {
        self.lock()
            .peers
            .values()
            .filter(|p| p.info.dialect == dialect && p.info.app.as_deref() == Some(app))
            .count()
    }

    pub fn peer_count(&self) -> usize {
        self.lock().peers.len()
    }

    /// Count an inbound frame and show it to admins tapping the peer.
    pub fn record_inbound(&self, id: &str, text: &str) {
        let mut state = self.lock();
        state.stats.frames_in += 1;
        let Some(peer) = state.peers.get_mut(id) else {
            return;
        };
        peer.info.frames_in += 1;
        peer.counters_changed = true;
        if peer.tapped {
            self.emit(
                &mut state,
                Event::Frame {
                    peer: id.to_owned(),
                    direction: Direction::In,
                    text: text.to_owned(),
                },
            );
        }
    }

    fn enqueue(&self, state: &mut State, id: &str, text: &Utf8Bytes) -> bool {
        let Some(peer) = state.peers.get_mut(id) else {
            return false;
        };
        if peer.closing.is_some() {
            return false;
        }
        match peer.outbox.try_send(Outbound::Text(text.clone())) {
            Ok(()) => {
                peer.info.frames_out += 1;
                peer.counters_changed = true;
                let tapped = peer.tapped;
                state.stats.frames_out += 1;
                if tapped {
                    self.emit(
                        state,
                        Event::Frame {
                            peer: id.to_owned(),
                            direction: Direction::Out,
                            text: text.as_str().to_owned(),
                        },
                    );
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dialect = peer.info.dialect;
                let (code, reason) = slow_consumer_close(dialect);
                peer.closing = Some((code, reason.to_owned()));
                let _ = peer.abort.send(Some((code, reason.to_owned())));
                self.count_error(
                    state,
                    Some(id),
                    dialect,
                    &code.to_string(),
                    Delivery::Close,
                    None,
                    format!("close {code} {reason}"),
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queue a frame for one peer. False when the peer is gone or closing.
    pub fn send(&self, id: &str, text: impl Into<Utf8Bytes>) -> bool {
        let text = text.into();
        let mut state = self.lock();
        self.enqueue(&mut state, id, &text)
    }

    /// Queue the same bytes for many peers (serialized once by the caller).
    pub fn send_many<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a PeerId>,
        text: impl Into<Utf8Bytes>,
    ) -> usize {
        let text = text.into();
        let mut state = self.lock();
        ids.into_iter()
            .filter(|id| self.enqueue(&mut state, id, &text))
            .count()
    }

    #[allow(clippy::too_many_arguments)]
    fn count_error(
        &self,
        state: &mut State,
        peer: Option<&str>,
        dialect: Dialect,
        code: &str,
        delivery: Delivery,
        request_id: Option<&str>,
        frame: String,
    ) {
        state.stats.errors += 1;
        *state
            .stats
            .errors_by_code
            .entry(format!("{}:{code}", dialect.id()))
            .or_default() += 1;
        if let Some(entry) = peer.and_then(|id| state.peers.get_mut(id)) {
            entry.info.errors += 1;
            entry.counters_changed = true;
        }
        self.emit(
            state,
            Event::ErrorEmitted {
                peer: peer.map(str::to_owned),
                dialect,
                code: code.to_owned(),
                delivery,
                request_id: request_id.map(str::to_owned),
                frame,
            },
        );
    }

    /// Send an error frame: the single path every dialect's error frames take, so that they
    /// are counted and every console sees them.
    pub fn send_error(
        &self,
        id: &str,
        dialect: Dialect,
        code: &str,
        request_id: Option<&str>,
        frame: String,
    ) {
        let text: Utf8Bytes = frame.into();
        let mut state = self.lock();
        if self.enqueue(&mut state, id, &text) {
            self.count_error(
                &mut state,
                Some(id),
                dialect,
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

    /// Close a peer after the frames already queued. Error closes are reported like error
    /// frames; normal ones (1000, 1001) are not.
    pub fn close_peer(&self, id: &str, code: u16, reason: &str) {
        let mut state = self.lock();
        let Some(peer) = state.peers.get_mut(id) else {
            return;
        };
        if peer.closing.is_some() {
            return;
        }
        peer.closing = Some((code, reason.to_owned()));
        let dialect = peer.info.dialect;
        if peer
            .outbox
            .try_send(Outbound::Close(code, reason.to_owned()))
            .is_err()
        {
            let _ = peer.abort.send(Some((code, reason.to_owned())));
        }
        let is_error = catalog::close(dialect, code).is_none_or(|e| e.severity() != Severity::Info);
        if is_error {
            let code_text = code.to_string();
            self.count_error(
                &mut state,
                Some(id),
                dialect,
                &code_text,
                Delivery::Close,
                None,
                format!("close {code} {reason}"),
            );
        }
    }

    /// Tell a peer's connection task something.
    pub fn control(&self, id: &str, control: Control) -> bool {
        self.lock()
            .peers
            .get(id)
            .is_some_and(|p| p.control.send(control).is_ok())
    }

    pub fn kick(&self, id: &str, reason: Option<String>) -> Result<PeerInfo, String> {
        let state = self.lock();
        let peer = state.peers.get(id).ok_or_else(|| format!("no peer {id}"))?;
        peer.control
            .send(Control::Kick { reason })
            .map_err(|_| format!("peer {id} is already closing"))?;
        Ok(peer.info.clone())
    }

    pub fn set_tap(&self, id: &str, on: bool) -> Result<(), String> {
        let mut state = self.lock();
        let peer = state
            .peers
            .get_mut(id)
            .ok_or_else(|| format!("no peer {id}"))?;
        peer.tapped = on;
        Ok(())
    }

    // ------------------------------------------------------------------------------------
    // Channels and subscriptions
    // ------------------------------------------------------------------------------------

    /// Add a member; returns false when it already was one.
    pub fn channel_join(&self, dialect: Dialect, app: &str, channel: &str, peer: &str) -> bool {
        let mut state = self.lock();
        let key = (dialect, app.to_owned(), channel.to_owned());
        let added = state
            .channels
            .entry(key)
            .or_default()
            .members
            .insert(peer.to_owned());
        if added {
            self.emit(
                &mut state,
                Event::ChannelJoined {
                    dialect,
                    app: app.to_owned(),
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                },
            );
        }
        added
    }

    pub fn channel_leave(&self, dialect: Dialect, app: &str, channel: &str, peer: &str) -> bool {
        let mut state = self.lock();
        let key = (dialect, app.to_owned(), channel.to_owned());
        let Some(entry) = state.channels.get_mut(&key) else {
            return false;
        };
        let removed = entry.members.remove(peer);
        if entry.members.is_empty() {
            state.channels.remove(&key);
        }
        if removed {
            self.emit(
                &mut state,
                Event::ChannelLeft {
                    dialect,
                    app: app.to_owned(),
                    channel: channel.to_owned(),
                    peer: peer.to_owned(),
                },
            );
        }
        removed
    }

    pub fn channel_members(&self, dialect: Dialect, app: &str, channel: &str) -> Vec<PeerId> {
        self.lock()
            .channels
            .get(&(dialect, app.to_owned(), channel.to_owned()))
            .map(|c| c.members.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Deliver one message to a channel's members except `from`; counts the message.
    pub fn deliver_to_channel(
        &self,
        dialect: Dialect,
        app: &str,
        channel: &str,
        from: &str,
        text: impl Into<Utf8Bytes>,
    ) -> usize {
        let text = text.into();
        let mut state = self.lock();
        let key = (dialect, app.to_owned(), channel.to_owned());
        let members: Vec<PeerId> = match state.channels.get_mut(&key) {
            Some(entry) => {
                entry.messages += 1;
                entry
                    .members
                    .iter()
                    .filter(|m| *m != from)
                    .cloned()
                    .collect()
            }
            None => return 0,
        };
        members
            .iter()
            .filter(|id| self.enqueue(&mut state, id, &text))
            .count()
    }

    pub fn add_subscription(&self, subscription: SubscriptionInfo) {
        let mut state = self.lock();
        state.subscriptions.insert(
            (subscription.peer.clone(), subscription.id.clone()),
            subscription.clone(),
        );
        self.emit(&mut state, Event::SubscriptionAdded { subscription });
    }

    pub fn remove_subscription(&self, peer: &str, id: &str) {
        let mut state = self.lock();
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
        state.rooms.insert(room.code.clone(), room.clone());
        self.emit(&mut state, Event::RoomUpdated { room });
    }

    pub fn room_closed(&self, code: &str) {
        let mut state = self.lock();
        if state.rooms.remove(code).is_some() {
            self.emit(
                &mut state,
                Event::RoomClosed {
                    code: code.to_owned(),
                },
            );
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
    /// on the peer wins over one on its dialect).
    pub fn take_fault(&self, peer: &str, dialect: Dialect) -> Option<String> {
        let mut state = self.lock();
        let index = state
            .faults
            .iter()
            .position(|f| matches!(&f.target, FaultTarget::Peer { peer: p } if p == peer))
            .or_else(|| {
                state.faults.iter().position(
                    |f| matches!(&f.target, FaultTarget::Dialect { dialect: d } if *d == dialect),
                )
            })?;
        let fault = &mut state.faults[index];
        fault.remaining = fault.remaining.saturating_sub(1);
        let updated = fault.clone();
        if updated.remaining == 0 {
            state.faults.remove(index);
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
    // Shutdown
    // ------------------------------------------------------------------------------------

    /// Refuse new peers and tell every live one to close.
    pub fn begin_shutdown(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for peer in state.peers.values() {
            let _ = peer.control.send(Control::Shutdown);
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
        (Self::stats_of(&state), apps, state.channels.len())
    }
}

/// The close code for a peer that cannot keep up, per dialect.
pub fn slow_consumer_close(dialect: Dialect) -> (u16, &'static str) {
    match dialect {
        Dialect::SignalFish => (4002, "slow consumer"),
        _ => (1013, "try_again_later"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_peer_that_stops_reading_is_closed_as_a_slow_consumer() {
        let hub = Hub::new(Config::demo(), "test".into(), &BTreeMap::new(), 64);
        let (_, _, mut events) = hub.subscribe();
        let mut link = hub
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
        for _ in 0..OUTBOX_CAPACITY {
            assert!(hub.send(&link.id, "{}"));
        }
        assert!(
            !hub.send(&link.id, "{}"),
            "the frame past the outbox capacity is refused"
        );
        assert_eq!(
            link.abort.borrow_and_update().clone(),
            Some((1013, "try_again_later".to_owned()))
        );
        assert!(
            !hub.send(&link.id, "{}"),
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
}
