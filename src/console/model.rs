//! What the console knows of the server: a pure reducer of the admin snapshot and its numbered
//! deltas. [`Model::apply`] is the only way it changes; it reports what it touched, so that
//! tables can follow a delta without recomputing everything, and what happened worth a log
//! line. No I/O, no clock: the bench drives it exactly as the console does.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use super::log::LogKind;
use crate::catalog::{self, Delivery, Dialect, Entry};
use crate::protocol::admin::{
    AppInfo, ChannelInfo, CommandResult, Event, FaultInfo, PeerInfo, RoomInfo, ServerInfo,
    ServerMessage, Snapshot, Stats, SubscriptionInfo,
};

/// Stats samples kept for the sparklines (one a second).
pub const RATE_HISTORY: usize = 120;
/// Error codes kept for the overview's top list.
pub const TOP_ERRORS: usize = 20;

pub type ChannelKey = (Dialect, String, String);

/// Live peers per app; counted once per peer on every snapshot, hence the quick hasher.
pub type AppCounts = HashMap<String, usize, foldhash::fast::RandomState>;

/// A peer stored under its own id: looked up by `&str` without a second copy of every id,
/// which at 100,000 peers is 100,000 allocations saved on each snapshot and freed on the next.
#[derive(Debug, Clone)]
struct ById(PeerInfo);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it.
        self.0.id.as_str().hash(state)
    }
}

impl Borrow<str> for ById {
    fn borrow(&self) -> &str {
        &self.0.id
    }
}

/// The live peers, by id; the tables keep the order people read them in. Hashed with
/// foldhash: ids come from the server, not from whoever connects, and SipHash was a tenth of
/// applying a 100,000-peer snapshot.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    set: HashSet<ById, foldhash::fast::RandomState>,
}

impl Peers {
    pub fn get(&self, id: &str) -> Option<&PeerInfo> {
        self.set.get(id).map(|p| &p.0)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &PeerInfo> {
        self.set.iter().map(|p| &p.0)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.set.iter().map(|p| &p.0.id)
    }

    /// Insert or replace; returns what was there.
    pub fn insert(&mut self, peer: PeerInfo) -> Option<PeerInfo> {
        self.set.replace(ById(peer)).map(|p| p.0)
    }

    pub fn remove(&mut self, id: &str) -> Option<PeerInfo> {
        self.set.take(id).map(|p| p.0)
    }
}

impl FromIterator<PeerInfo> for Peers {
    fn from_iter<I: IntoIterator<Item = PeerInfo>>(iter: I) -> Self {
        Peers {
            set: iter.into_iter().map(ById).collect(),
        }
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
            }
            Event::HistoryAdded { .. } | Event::BanAdded { .. } | Event::BanLifted { .. } => {} // TODO(triage-console)
        }
        applied
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
