//! The console's state and its update function. No I/O: the main loop feeds [`Msg`]s in and
//! carries out the [`Effect`]s that come back, so every behaviour here is testable directly.
//!
//! The model of the server changes only through the server's snapshot and deltas: an admin
//! action sends a command and shows its result, and the views change when the deltas arrive.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keymap::{Action, Keymap};
use crate::catalog::{self, Delivery, Dialect, Entry, Severity};
use crate::protocol::admin::{
    AppInfo, AppStatus, ChannelInfo, Command, CommandEnvelope, Direction, Event, FaultInfo,
    PeerInfo, RoomInfo, ServerInfo, ServerMessage, Snapshot, Stats, SubscriptionInfo,
};

/// Log entries kept; older ones are dropped first.
pub const LOG_CAPACITY: usize = 5000;
/// Stats samples kept for the sparklines (one a second).
pub const RATE_HISTORY: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Peers,
    Rooms,
    Channels,
    Subscriptions,
    Apps,
    Log,
    Catalog,
    Composer,
}

impl View {
    pub const ALL: [View; 9] = [
        View::Overview,
        View::Peers,
        View::Rooms,
        View::Channels,
        View::Subscriptions,
        View::Apps,
        View::Log,
        View::Catalog,
        View::Composer,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Peers => "Peers",
            View::Rooms => "Rooms",
            View::Channels => "Channels",
            View::Subscriptions => "Subs",
            View::Apps => "Apps",
            View::Log => "Log",
            View::Catalog => "Catalog",
            View::Composer => "Compose",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    Lost {
        error: String,
        retry_in_ms: u64,
        attempt: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum LogKind {
    Error {
        code: String,
        delivery: Delivery,
        request_id: Option<String>,
        frame: String,
    },
    Closed {
        code: Option<u16>,
        reason: String,
    },
    Frame {
        direction: Direction,
        text: String,
    },
    Notice {
        text: String,
        severity: Severity,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub at_ms: u64,
    pub peer: Option<String>,
    pub dialect: Option<Dialect>,
    pub kind: LogKind,
}

impl LogEntry {
    /// The catalog entry that explains this line, if it is an error or an error close.
    pub fn decoded(&self) -> Option<&'static Entry> {
        match (&self.kind, self.dialect) {
            (
                LogKind::Error {
                    code,
                    delivery: Delivery::Close,
                    ..
                },
                Some(dialect),
            ) => code.parse().ok().and_then(|c| catalog::close(dialect, c)),
            (LogKind::Error { code, .. }, Some(dialect)) => catalog::get(dialect, code),
            (
                LogKind::Closed {
                    code: Some(code), ..
                },
                Some(dialect),
            ) => catalog::close(dialect, *code),
            _ => None,
        }
    }
}

/// What the console knows of the server, built from the snapshot and deltas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub server: ServerInfo,
    pub apps: Vec<AppInfo>,
    /// In natural id order (`p2` before `p10`), the order the peers view lists them in.
    pub peers: BTreeMap<PeerKey, PeerInfo>,
    pub rooms: BTreeMap<String, RoomInfo>,
    pub channels: BTreeMap<(Dialect, String, String), ChannelInfo>,
    pub subscriptions: BTreeMap<(String, String), SubscriptionInfo>,
    pub faults: Vec<FaultInfo>,
    pub stats: Stats,
}

/// A peer id ordered as people count: `p2` before `p10`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerKey(pub String);

impl PeerKey {
    pub fn new(id: &str) -> PeerKey {
        PeerKey(id.to_owned())
    }
}

impl Ord for PeerKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The plain comparison breaks ties (`p01` and `p1`) so that order agrees with equality.
        natural_cmp(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for PeerKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Model {
    pub fn peer(&self, id: &str) -> Option<&PeerInfo> {
        self.peers.get(&PeerKey::new(id))
    }

    fn from_snapshot(snapshot: Snapshot) -> Model {
        Model {
            server: snapshot.server,
            apps: snapshot.apps,
            peers: snapshot
                .peers
                .into_iter()
                .map(|p| (PeerKey::new(&p.id), p))
                .collect(),
            rooms: snapshot
                .rooms
                .into_iter()
                .map(|r| (r.code.clone(), r))
                .collect(),
            channels: snapshot
                .channels
                .into_iter()
                .map(|c| ((c.dialect, c.app.clone(), c.name.clone()), c))
                .collect(),
            subscriptions: snapshot
                .subscriptions
                .into_iter()
                .map(|s| ((s.peer.clone(), s.id.clone()), s))
                .collect(),
            faults: snapshot.faults,
            stats: snapshot.stats,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Peer(String),
    Room(String),
    Channel(Dialect, String, String),
    Code(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Filter,
    Command,
    Help,
    /// Waiting for y/n on an admin action.
    Confirm {
        question: String,
        command: Command,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    pub selected: usize,
    pub filter: String,
    /// Column index to sort by; `None` keeps the natural order.
    pub sort: Option<usize>,
    pub descending: bool,
}

/// One table row: a key identifying the object, the cells, and how loud to show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub cells: Vec<String>,
    pub severity: Option<Severity>,
}

pub struct TableData {
    pub headers: &'static [&'static str],
    pub rows: Vec<Row>,
}

/// A window of a table's rows, for drawing without building the rows that are not shown.
pub struct TableWindow {
    pub headers: &'static [&'static str],
    /// Rows in the whole (filtered) table.
    pub total: usize,
    pub rows: Vec<Row>,
}

type RowIter<'a> = Box<dyn Iterator<Item = Row> + 'a>;

struct RowSource<'a> {
    headers: &'static [&'static str],
    len: usize,
    rows: RowIter<'a>,
}

/// A filtered or sorted table as last computed, and what it was computed from.
struct OrderedRows {
    view: View,
    generation: u64,
    filter: String,
    sort: Option<usize>,
    descending: bool,
    headers: &'static [&'static str],
    rows: Vec<Row>,
}

#[derive(Debug)]
pub enum Msg {
    Server(ServerMessage),
    Connection(Connection),
    Key(KeyEvent),
    /// A reply to the composer's plain client (or a note about its connection).
    DirectReply(String),
    /// Something the main loop did for the app (a saved session, a failed write).
    Notice(String, Severity),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(CommandEnvelope),
    /// Send frames to any WebSocket URL with a plain client; replies come back as
    /// [`Msg::DirectReply`].
    Direct {
        url: String,
        frames: Vec<String>,
    },
    /// Write a session file named `name` into the user's sessions folder.
    SaveSession {
        name: String,
        text: String,
    },
    Quit,
}

pub struct App {
    pub model: Model,
    pub seq: u64,
    pub synced: bool,
    pub log: VecDeque<LogEntry>,
    /// Entries ever added to the log, dropped ones included.
    log_total: u64,
    /// The number of the newest log entry on screen while the user reads back; `None`
    /// follows the live log.
    pub log_anchor: Option<u64>,
    /// (frames/s, errors/s) per stats tick.
    pub rates: VecDeque<(u64, u64)>,
    last_totals: Option<(u64, u64)>,
    pub view: View,
    pub mode: Mode,
    pub tables: HashMap<View, TableState>,
    pub command_line: String,
    pub status: Option<(String, Severity)>,
    pub connection: Connection,
    pub readonly: bool,
    pub detail: Option<Detail>,
    pub keymap: Keymap,
    next_command_id: u64,
    pending: HashMap<u64, String>,
    /// Set by every change that needs a redraw; the loop clears it after drawing.
    pub dirty: bool,
    /// Rows visible in the body, for page up/down; the UI keeps it current.
    pub page_rows: usize,
    pub composer: super::composer::Composer,
    /// The view to return to when leaving the composer.
    previous_view: View,
    /// Frames waiting for the composer's probe to be opened (its id is not known yet).
    probe_queue: Vec<Command>,
    probe_request: Option<u64>,
    /// Effects produced while applying server messages (queued probe frames), handed out
    /// with the next update.
    deferred: Vec<Effect>,
    /// Counts changes to the model, so a cached table order knows when it went stale.
    generation: u64,
    ordered: RefCell<Option<OrderedRows>>,
}

const COMMANDS: [&str; 23] = [
    "overview",
    "peers",
    "rooms",
    "channels",
    "subs",
    "apps",
    "log",
    "catalog",
    "compose",
    "kick",
    "suspend",
    "activate",
    "revoke",
    "expire",
    "close-room",
    "transfer",
    "revoke-authority",
    "tap",
    "untap",
    "target",
    "record",
    "fault",
    "quit",
];

impl App {
    pub fn new(keymap: Keymap, readonly: bool) -> App {
        App {
            model: Model::default(),
            seq: 0,
            synced: false,
            log: VecDeque::new(),
            log_total: 0,
            log_anchor: None,
            rates: VecDeque::new(),
            last_totals: None,
            view: View::Overview,
            mode: Mode::Normal,
            tables: HashMap::new(),
            command_line: String::new(),
            status: None,
            connection: Connection::Connecting,
            readonly,
            detail: None,
            keymap,
            next_command_id: 1,
            pending: HashMap::new(),
            dirty: true,
            page_rows: 10,
            composer: super::composer::Composer::new(),
            previous_view: View::Overview,
            probe_queue: Vec::new(),
            probe_request: None,
            deferred: Vec::new(),
            generation: 0,
            ordered: RefCell::new(None),
        }
    }

    pub fn table_state(&self, view: View) -> TableState {
        self.tables.get(&view).cloned().unwrap_or_default()
    }

    fn table_state_mut(&mut self) -> &mut TableState {
        self.tables.entry(self.view).or_default()
    }

    pub fn set_status(&mut self, text: impl Into<String>, severity: Severity) {
        self.status = Some((text.into(), severity));
        self.dirty = true;
    }

    fn push_log(&mut self, entry: LogEntry) {
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(entry);
        self.log_total += 1;
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Server(message) => {
                self.apply(message);
                std::mem::take(&mut self.deferred)
            }
            Msg::Connection(connection) => {
                // A warning already on the status line (a bad keymap or theme file found at
                // start-up) outlives the connect: it is the only place that tells of it.
                let warning_shown =
                    matches!(self.status, Some((_, Severity::Warning | Severity::Error)));
                if connection == Connection::Connected && !warning_shown {
                    self.set_status("connected", Severity::Info);
                }
                if matches!(connection, Connection::Lost { .. }) {
                    self.synced = false;
                }
                self.connection = connection;
                self.dirty = true;
                Vec::new()
            }
            Msg::Key(key) => self.on_key(key),
            Msg::DirectReply(text) => {
                self.composer.direct_replies.push(text);
                self.dirty = true;
                Vec::new()
            }
            Msg::Notice(text, severity) => {
                self.set_status(text, severity);
                Vec::new()
            }
        }
    }

    // --------------------------------------------------------------------------------------
    // Server messages
    // --------------------------------------------------------------------------------------

    fn apply(&mut self, message: ServerMessage) {
        self.dirty = true;
        self.generation = self.generation.wrapping_add(1);
        match message {
            ServerMessage::Snapshot { seq, snapshot } => {
                self.model = Model::from_snapshot(*snapshot);
                self.seq = seq;
                self.synced = true;
                self.last_totals = None;
            }
            ServerMessage::Delta { seq, at_ms, event } => {
                if self.synced && seq != self.seq + 1 {
                    // The server bridges gaps with a snapshot; a gap without one means the
                    // model can no longer be trusted until the next snapshot.
                    self.synced = false;
                    self.set_status(
                        format!(
                            "missed deltas {}..{}; waiting for a fresh snapshot",
                            self.seq + 1,
                            seq - 1
                        ),
                        Severity::Warning,
                    );
                }
                self.seq = seq;
                self.apply_event(at_ms, event);
            }
            ServerMessage::Result(result) => {
                if self.probe_request == Some(result.id) {
                    self.probe_request = None;
                    let probe = result
                        .data
                        .as_ref()
                        .and_then(|d| d.get("peer"))
                        .and_then(|p| p.as_str())
                        .map(str::to_owned);
                    let queued = std::mem::take(&mut self.probe_queue);
                    if let (true, Some(probe)) = (result.ok, probe) {
                        self.composer.watching = Some(probe.clone());
                        for command in queued {
                            let command = match command {
                                Command::Inject {
                                    target:
                                        crate::protocol::admin::InjectTarget::ExistingProbe { .. },
                                    frame,
                                } => Command::Inject {
                                    target: crate::protocol::admin::InjectTarget::ExistingProbe {
                                        peer: probe.clone(),
                                    },
                                    frame,
                                },
                                other => other,
                            };
                            for effect in self.send(command) {
                                self.deferred.push(effect);
                            }
                        }
                    }
                }
                let asked = self.pending.remove(&result.id).unwrap_or_default();
                let severity = if result.ok {
                    Severity::Info
                } else {
                    Severity::Error
                };
                let text = if result.ok {
                    result.message.clone()
                } else {
                    format!("{asked} failed: {}", result.message)
                };
                self.push_log(LogEntry {
                    at_ms: crate::server::hub::now_ms(),
                    peer: None,
                    dialect: None,
                    kind: LogKind::Notice {
                        text: text.clone(),
                        severity,
                    },
                });
                self.set_status(text, severity);
            }
        }
    }

    fn apply_event(&mut self, at_ms: u64, event: Event) {
        let model = &mut self.model;
        match event {
            Event::PeerConnected { peer } | Event::PeerUpdated { peer } => {
                model.peers.insert(PeerKey::new(&peer.id), peer);
            }
            Event::PeerClosed { peer, code, reason } => {
                let dialect = model.peers.remove(&PeerKey::new(&peer)).map(|p| p.dialect);
                model.subscriptions.retain(|(p, _), _| *p != peer);
                self.push_log(LogEntry {
                    at_ms,
                    peer: Some(peer),
                    dialect,
                    kind: LogKind::Closed { code, reason },
                });
            }
            Event::RoomUpdated { room } => {
                model.rooms.insert(room.code.clone(), room);
            }
            Event::RoomClosed { code } => {
                model.rooms.remove(&code);
            }
            Event::ChannelJoined {
                dialect,
                app,
                channel,
                peer,
            } => {
                let entry = model
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
            }
            Event::ChannelLeft {
                dialect,
                app,
                channel,
                peer,
            } => {
                let key = (dialect, app, channel);
                if let Some(entry) = model.channels.get_mut(&key) {
                    entry.members.retain(|m| *m != peer);
                    if entry.members.is_empty() {
                        model.channels.remove(&key);
                    }
                }
            }
            Event::SubscriptionAdded { subscription } => {
                model.subscriptions.insert(
                    (subscription.peer.clone(), subscription.id.clone()),
                    subscription,
                );
            }
            Event::SubscriptionRemoved { peer, id } => {
                model.subscriptions.remove(&(peer, id));
            }
            Event::AppStatusChanged { app, status, by } => {
                if let Some(entry) = model.apps.iter_mut().find(|a| a.id == app) {
                    entry.status = status;
                }
                self.push_log(LogEntry {
                    at_ms,
                    peer: None,
                    dialect: None,
                    kind: LogKind::Notice {
                        text: format!("app {app} is now {} (by {by})", status.id()),
                        severity: Severity::Warning,
                    },
                });
            }
            Event::ErrorEmitted {
                peer,
                dialect,
                code,
                delivery,
                request_id,
                frame,
            } => {
                if delivery == Delivery::Close {
                    // The peer_closed that follows carries the same code; log it once, there.
                    if peer.is_some() {
                        return;
                    }
                }
                self.push_log(LogEntry {
                    at_ms,
                    peer,
                    dialect: Some(dialect),
                    kind: LogKind::Error {
                        code,
                        delivery,
                        request_id,
                        frame,
                    },
                });
            }
            Event::Frame {
                peer,
                direction,
                text,
            } => {
                let dialect = model.peer(&peer).map(|p| p.dialect);
                self.push_log(LogEntry {
                    at_ms,
                    peer: Some(peer),
                    dialect,
                    kind: LogKind::Frame { direction, text },
                });
            }
            Event::FaultArmed { fault } => {
                model.faults.push(fault);
            }
            Event::FaultUpdated { fault } => {
                model.faults.retain(|f| f.id != fault.id);
                if fault.remaining > 0 {
                    model.faults.push(fault);
                }
            }
            Event::Stats { stats } => {
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
                for (key, channel) in model.channels.iter_mut() {
                    if let Some(count) =
                        stats
                            .channel_messages
                            .get(&format!("{}/{}/{}", key.0.id(), key.1, key.2))
                    {
                        channel.messages = *count;
                    }
                }
                model.stats = stats;
            }
        }
    }

    // --------------------------------------------------------------------------------------
    // Keys
    // --------------------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        match self.mode.clone() {
            Mode::Filter => {
                self.edit_line(key, true);
                Vec::new()
            }
            Mode::Command => self.on_command_key(key),
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Confirm { command, .. } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    self.send(command)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.set_status("cancelled", Severity::Info);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::Normal if self.view == View::Composer => self.composer_key(key),
            Mode::Normal => match self.keymap.action(&key) {
                Some(action) => self.on_action(action),
                None => Vec::new(),
            },
        }
    }

    fn edit_line(&mut self, key: KeyEvent, filter: bool) {
        let line = if filter {
            &mut self.table_state_mut().filter
        } else {
            &mut self.command_line
        };
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => line.push(c),
            KeyCode::Backspace => {
                line.pop();
            }
            KeyCode::Esc => {
                line.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => self.mode = Mode::Normal,
            _ => {}
        }
        if filter {
            self.table_state_mut().selected = 0;
        }
    }

    fn on_command_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Enter => {
                let line = std::mem::take(&mut self.command_line);
                self.mode = Mode::Normal;
                self.run_command_line(&line)
            }
            KeyCode::Tab => {
                self.complete();
                Vec::new()
            }
            _ => {
                self.edit_line(key, false);
                Vec::new()
            }
        }
    }

    /// Completion candidates for the word being typed on the command line.
    pub fn completions(&self) -> Vec<String> {
        let line = &self.command_line;
        let words: Vec<&str> = line.split_whitespace().collect();
        let typing_first = words.len() <= 1 && !line.ends_with(' ');
        if typing_first {
            let prefix = words.first().copied().unwrap_or("");
            return COMMANDS
                .iter()
                .filter(|c| c.starts_with(prefix))
                .map(|c| c.to_string())
                .collect();
        }
        let prefix = if line.ends_with(' ') {
            ""
        } else {
            words.last().copied().unwrap_or("")
        };
        let pool: Vec<String> = match words.first().copied().unwrap_or("") {
            "kick" | "tap" | "untap" => self.model.peers.keys().map(|k| k.0.clone()).collect(),
            "suspend" | "activate" | "revoke" | "expire" => {
                self.model.apps.iter().map(|a| a.id.clone()).collect()
            }
            "close-room" | "revoke-authority" => self.model.rooms.keys().cloned().collect(),
            "transfer" if words.len() <= 2 && !(words.len() == 2 && line.ends_with(' ')) => {
                self.model.rooms.keys().cloned().collect()
            }
            "transfer" => words
                .get(1)
                .and_then(|room| self.model.rooms.get(*room))
                .map(|room| room.players.iter().map(|p| p.player_id.clone()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        pool.into_iter().filter(|c| c.starts_with(prefix)).collect()
    }

    fn complete(&mut self) {
        let candidates = self.completions();
        let Some(first) = candidates.first() else {
            return;
        };
        let common = candidates.iter().fold(first.clone(), |acc, c| {
            acc.chars()
                .zip(c.chars())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect()
        });
        let mut words: Vec<String> = self
            .command_line
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if self.command_line.ends_with(' ') || words.is_empty() {
            words.push(common.clone());
        } else if let Some(last) = words.last_mut() {
            *last = common.clone();
        }
        self.command_line = words.join(" ");
        if candidates.len() == 1 {
            self.command_line.push(' ');
        } else {
            self.set_status(candidates.join("  "), Severity::Info);
        }
    }

    pub fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&name, args)) = words.split_first() else {
            return Vec::new();
        };
        let view = match name {
            "overview" => Some(View::Overview),
            "peers" => Some(View::Peers),
            "rooms" => Some(View::Rooms),
            "channels" => Some(View::Channels),
            "subs" | "subscriptions" => Some(View::Subscriptions),
            "apps" => Some(View::Apps),
            "log" => Some(View::Log),
            "catalog" | "codes" => Some(View::Catalog),
            _ => None,
        };
        if let Some(view) = view {
            self.switch(view);
            return Vec::new();
        }
        let arg = args.first().copied();
        match (name, arg) {
            ("q" | "quit", _) => vec![Effect::Quit],
            ("compose", code) => {
                self.open_composer();
                if let Some(code) = code {
                    if !self.composer.template_for(code) {
                        self.set_status(
                            format!("no template reproduces {code}"),
                            Severity::Warning,
                        );
                    }
                }
                Vec::new()
            }
            ("target", Some(_)) => {
                match super::composer::Target::parse(args) {
                    Ok(target) => {
                        self.set_status(
                            format!("composer target: {}", target.describe()),
                            Severity::Info,
                        );
                        self.composer.target = target;
                    }
                    Err(problem) => self.set_status(problem, Severity::Warning),
                }
                Vec::new()
            }
            ("record", Some(name)) => self.record(name),
            ("fault", Some(target)) => {
                self.arm_fault(target, args.get(1).copied(), args.get(2).copied())
            }
            ("kick", Some(peer)) => self.confirm_kick(peer),
            ("suspend", Some(app)) => self.confirm_app_status(app, AppStatus::Suspended),
            ("activate", Some(app)) => self.confirm_app_status(app, AppStatus::Active),
            ("revoke", Some(app)) => self.confirm_app_status(app, AppStatus::Revoked),
            ("expire", Some(app)) => self.confirm_app_status(app, AppStatus::Expired),
            ("close-room", Some(room)) => self.confirm_close_room(room),
            ("revoke-authority", Some(room)) => self.confirm_authority(room, None),
            ("transfer", Some(room)) => match args.get(1) {
                Some(player) => self.confirm_authority(room, Some(player)),
                None => {
                    self.set_status(
                        ":transfer needs a room and a player id (Tab completes both)",
                        Severity::Warning,
                    );
                    Vec::new()
                }
            },
            ("tap", Some(peer)) => self.request(Command::Tap {
                peer: peer.to_owned(),
                on: true,
            }),
            ("untap", Some(peer)) => self.request(Command::Tap {
                peer: peer.to_owned(),
                on: false,
            }),
            (
                "kick" | "suspend" | "activate" | "revoke" | "expire" | "close-room" | "tap"
                | "untap",
                None,
            ) => {
                self.set_status(
                    format!(":{name} needs an argument (Tab completes it)"),
                    Severity::Warning,
                );
                Vec::new()
            }
            _ => {
                self.set_status(
                    format!("unknown command :{name}; press ? for help"),
                    Severity::Warning,
                );
                Vec::new()
            }
        }
    }

    fn switch(&mut self, view: View) {
        self.view = view;
        self.detail = None;
        self.log_anchor = None;
        self.dirty = true;
    }

    fn on_action(&mut self, action: Action) -> Vec<Effect> {
        if self.readonly && action.is_admin_action() {
            self.set_status(
                "read-only console: admin actions are disabled",
                Severity::Warning,
            );
            return Vec::new();
        }
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => self.mode = Mode::Help,
            Action::Command => {
                self.command_line.clear();
                self.mode = Mode::Command;
            }
            Action::Filter => self.mode = Mode::Filter,
            Action::Back => {
                if self.detail.is_some() {
                    self.detail = None;
                    self.log_anchor = None;
                } else if !self.table_state(self.view).filter.is_empty() {
                    self.table_state_mut().filter.clear();
                } else {
                    self.status = None;
                }
            }
            Action::Open => self.open_selected(),
            Action::NextView => self.switch(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PreviousView => {
                self.switch(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            Action::ViewOverview => self.switch(View::Overview),
            Action::ViewPeers => self.switch(View::Peers),
            Action::ViewRooms => self.switch(View::Rooms),
            Action::ViewChannels => self.switch(View::Channels),
            Action::ViewSubscriptions => self.switch(View::Subscriptions),
            Action::ViewApps => self.switch(View::Apps),
            Action::ViewLog => self.switch(View::Log),
            Action::ViewCatalog => self.switch(View::Catalog),
            Action::Down => self.move_selection(1),
            Action::Up => self.move_selection(-1),
            Action::PageDown => self.move_selection(self.page_rows.max(1) as isize),
            Action::PageUp => self.move_selection(-(self.page_rows.max(1) as isize)),
            Action::Top if self.log_shown().is_some() => self.scroll_log(isize::MIN / 2),
            Action::Bottom if self.log_shown().is_some() => self.log_anchor = None,
            Action::Top => self.table_state_mut().selected = 0,
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::Sort => {
                let columns = self.row_source(self.view).headers.len();
                let state = self.table_state_mut();
                state.sort = match (state.sort, state.descending) {
                    (None, _) => Some(0),
                    (Some(c), false) => {
                        state.descending = true;
                        Some(c)
                    }
                    (Some(c), true) => {
                        state.descending = false;
                        if c + 1 < columns {
                            Some(c + 1)
                        } else {
                            None
                        }
                    }
                };
            }
            // In a detail, an action is about the object on screen, not whichever row the
            // table's selection has drifted to since.
            Action::Kick => match self.detail_or_selected(View::Peers) {
                Some(peer) if self.view == View::Peers => return self.confirm_kick(&peer),
                _ => self.set_status(
                    "select a peer in the peers view to kick it",
                    Severity::Warning,
                ),
            },
            Action::SuspendApp | Action::ActivateApp => match self.selected_key(View::Apps) {
                Some(app) if self.view == View::Apps => {
                    let status = if action == Action::SuspendApp {
                        AppStatus::Suspended
                    } else {
                        AppStatus::Active
                    };
                    return self.confirm_app_status(&app, status);
                }
                _ => self.set_status("select an app in the apps view", Severity::Warning),
            },
            Action::CloseRoom => match self.detail_or_selected(View::Rooms) {
                Some(room) if self.view == View::Rooms => return self.confirm_close_room(&room),
                _ => self.set_status(
                    "select a room in the rooms view to close it",
                    Severity::Warning,
                ),
            },
            Action::Tap => match self.detail_or_selected(View::Peers) {
                Some(peer) if self.view == View::Peers => {
                    return self.request(Command::Tap { peer, on: true });
                }
                _ => self.set_status(
                    "select a peer in the peers view to tap it",
                    Severity::Warning,
                ),
            },
            Action::Edit => self.edit_selected(),
            Action::ViewComposer => self.open_composer(),
            Action::None => {}
        }
        Vec::new()
    }

    fn open_composer(&mut self) {
        if self.view != View::Composer {
            self.previous_view = self.view;
        }
        self.switch(View::Composer);
    }

    /// `e` on a log line: a frame a peer sent opens in the composer as that peer; an error
    /// opens the template that reproduces its code.
    fn edit_selected(&mut self) {
        // The line being read: the newest on screen (where reading back stopped, or the live
        // end), in the live log or in a peer's detail.
        let Some(peer) = self.log_shown() else {
            self.set_status(
                "open the log (7) or a peer's detail to edit a line",
                Severity::Warning,
            );
            return;
        };
        let peer = peer.map(str::to_owned);
        let entries = self.log_entries(peer.as_deref());
        let chosen = match self.log_anchor {
            Some(anchor) => entries.iter().rev().find(|(n, _)| *n <= anchor),
            None => entries.last(),
        };
        let Some(entry) = chosen.map(|(_, e)| (*e).clone()) else {
            self.set_status("nothing to edit yet", Severity::Warning);
            return;
        };
        match (&entry.kind, &entry.peer) {
            (
                LogKind::Frame {
                    direction: Direction::In,
                    text,
                },
                Some(peer),
            ) => {
                self.open_composer();
                self.composer.set_text(text);
                self.composer.target = super::composer::Target::Peer(peer.clone());
                self.composer.pretty_print();
            }
            (LogKind::Error { code, .. }, _)
            | (
                LogKind::Closed {
                    code: Some(_),
                    reason: code,
                },
                _,
            ) => {
                let qualified = entry
                    .decoded()
                    .map(|e| e.qualified())
                    .unwrap_or_else(|| code.clone());
                self.open_composer();
                if !self.composer.template_for(&qualified) {
                    self.set_status(
                        format!("no template reproduces {qualified}"),
                        Severity::Warning,
                    );
                }
            }
            _ => self.set_status(
                "only frames a peer sent, and errors, can be edited",
                Severity::Warning,
            ),
        }
    }

    fn composer_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match (key.code, ctrl) {
            (KeyCode::Esc, _) => {
                let back = self.previous_view;
                self.switch(back);
                Vec::new()
            }
            (KeyCode::Char('s'), true) => self.composer_send(),
            (KeyCode::Char('p'), true) => {
                self.composer.pretty_print();
                Vec::new()
            }
            (KeyCode::Char('n'), true) | (KeyCode::Char('b'), true) => {
                let back = key.code == KeyCode::Char('b');
                if let Some(template) = self.composer.cycle_template(back) {
                    let text =
                        format!("template {} ({})", template.name, template.codes.join(", "));
                    self.set_status(text, Severity::Info);
                }
                Vec::new()
            }
            (KeyCode::Char('o'), true) => {
                self.command_line.clear();
                self.mode = Mode::Command;
                Vec::new()
            }
            (KeyCode::Char('c'), true) => vec![Effect::Quit],
            _ => {
                self.composer.editor.input(key);
                self.composer.validate();
                Vec::new()
            }
        }
    }

    fn composer_send(&mut self) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        match self.composer.dispatch() {
            Err(problem) => {
                self.set_status(problem, Severity::Warning);
                Vec::new()
            }
            Ok(super::composer::Dispatch::Direct { url, frames }) => {
                self.set_status(
                    format!("sending {} frame(s) to {url}", frames.len()),
                    Severity::Info,
                );
                vec![Effect::Direct { url, frames }]
            }
            Ok(super::composer::Dispatch::Admin(commands)) => {
                let mut commands = commands.into_iter();
                let mut effects = Vec::new();
                if let Some(first) = commands.next() {
                    let opens_probe = matches!(
                        &first,
                        Command::Inject {
                            target: crate::protocol::admin::InjectTarget::Probe { .. },
                            ..
                        }
                    );
                    effects.extend(self.send(first));
                    if opens_probe {
                        self.probe_request = Some(self.next_command_id - 1);
                        self.probe_queue = commands.collect();
                        return effects;
                    }
                }
                for command in commands {
                    effects.extend(self.send(command));
                }
                effects
            }
        }
    }

    /// The composer's probe exchange as a session file.
    fn record(&mut self, name: &str) -> Vec<Effect> {
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            self.set_status(
                "a session name is letters, digits, '-', '_' and '.'",
                Severity::Warning,
            );
            return Vec::new();
        }
        let watching = self.composer.watching.clone();
        let mut codes: Vec<String> = self
            .log
            .iter()
            .filter(|e| e.peer.is_some() && e.peer == watching)
            .filter_map(|e| e.decoded())
            .filter(|e| e.severity() != Severity::Info)
            .map(|e| e.qualified())
            .collect();
        codes.dedup();
        match self.composer.to_session(name, &codes) {
            Ok(session) => vec![Effect::SaveSession {
                name: name.to_owned(),
                text: session.to_jsonl(),
            }],
            Err(problem) => {
                self.set_status(problem, Severity::Warning);
                Vec::new()
            }
        }
    }

    /// `:fault <dialect|peer> <code> [count]`.
    fn arm_fault(&mut self, target: &str, code: Option<&str>, count: Option<&str>) -> Vec<Effect> {
        let Some(code) = code else {
            self.set_status(":fault <dialect|peer> <code> [count]", Severity::Warning);
            return Vec::new();
        };
        let target = match target.parse::<Dialect>() {
            Ok(dialect) => crate::protocol::admin::FaultTarget::Dialect { dialect },
            Err(_) => crate::protocol::admin::FaultTarget::Peer {
                peer: target.to_owned(),
            },
        };
        let count = count.and_then(|c| c.parse().ok()).unwrap_or(1);
        self.request(Command::ArmFault {
            target,
            code: code.to_owned(),
            count,
        })
    }

    fn move_selection(&mut self, delta: isize) {
        if self.log_shown().is_some() {
            self.scroll_log(delta);
            return;
        }
        let count = self.row_count(self.view);
        let state = self.table_state_mut();
        let current = state.selected as isize;
        state.selected =
            (current.saturating_add(delta)).clamp(0, count.saturating_sub(1) as isize) as usize;
    }

    /// The object a detail shows when it is of `view`'s kind, else the selected row's key.
    fn detail_or_selected(&self, view: View) -> Option<String> {
        match (&self.detail, view) {
            (Some(Detail::Peer(peer)), View::Peers) => Some(peer.clone()),
            (Some(Detail::Room(room)), View::Rooms) => Some(room.clone()),
            _ => self.selected_key(view),
        }
    }

    pub fn selected_key(&self, view: View) -> Option<String> {
        let selected = self
            .table_state(view)
            .selected
            .min(self.row_count(view).saturating_sub(1));
        self.table_window(view, selected, 1)
            .rows
            .into_iter()
            .next()
            .map(|r| r.key)
    }

    fn open_selected(&mut self) {
        let Some(key) = self.selected_key(self.view) else {
            return;
        };
        self.log_anchor = None;
        self.detail = match self.view {
            View::Peers => Some(Detail::Peer(key)),
            View::Rooms => Some(Detail::Room(key)),
            View::Channels => self
                .model
                .channels
                .keys()
                .find(|(d, a, n)| format!("{}/{a}/{n}", d.id()) == key)
                .map(|(d, a, n)| Detail::Channel(*d, a.clone(), n.clone())),
            View::Catalog => Some(Detail::Code(key)),
            View::Subscriptions => key
                .split_once('\u{1f}')
                .map(|(peer, _)| Detail::Peer(peer.to_owned())),
            _ => None,
        };
    }

    fn admin_refused(&mut self) -> bool {
        if self.readonly {
            self.set_status(
                "read-only console: admin actions are disabled",
                Severity::Warning,
            );
        }
        self.readonly
    }

    pub fn confirm_kick(&mut self, peer: &str) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        let Some(info) = self.model.peer(peer) else {
            self.set_status(format!("no peer {peer}"), Severity::Warning);
            return Vec::new();
        };
        let question = format!(
            "Close peer {} ({}, app {}, {}) with 4020 admin_disconnect?",
            info.id,
            info.dialect,
            info.app.as_deref().unwrap_or("none"),
            info.identity.as_deref().unwrap_or("anonymous")
        );
        self.mode = Mode::Confirm {
            question,
            command: Command::Kick {
                peer: peer.to_owned(),
                reason: None,
            },
        };
        Vec::new()
    }

    pub fn confirm_app_status(&mut self, app: &str, status: AppStatus) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        if !self.model.apps.iter().any(|a| a.id == app) {
            self.set_status(format!("no app {app}"), Severity::Warning);
            return Vec::new();
        }
        let live = self
            .model
            .peers
            .values()
            .filter(|p| p.app.as_deref() == Some(app))
            .count();
        let question = match status {
            AppStatus::Active => format!("Set app {app} active, accepting its connections again?"),
            other => format!(
                "Set app {app} {}? Its {live} live peers will be closed and new connections refused.",
                other.id()
            ),
        };
        self.mode = Mode::Confirm {
            question,
            command: Command::SetAppStatus {
                app: app.to_owned(),
                status,
            },
        };
        Vec::new()
    }

    pub fn confirm_close_room(&mut self, room: &str) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        let Some(info) = self.model.rooms.get(room) else {
            self.set_status(format!("no room {room}"), Severity::Warning);
            return Vec::new();
        };
        let question = format!(
            "Close room {room} ({}, {} players, {} spectators)? Every member is removed.",
            info.game,
            info.players.len(),
            info.spectators.len()
        );
        self.mode = Mode::Confirm {
            question,
            command: Command::CloseRoom {
                room: room.to_owned(),
            },
        };
        Vec::new()
    }

    /// Transfer authority to `player`, or revoke it when `None`.
    pub fn confirm_authority(&mut self, room: &str, player: Option<&str>) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        let Some(info) = self.model.rooms.get(room) else {
            self.set_status(format!("no room {room}"), Severity::Warning);
            return Vec::new();
        };
        let name_of = |id: &str| {
            info.players
                .iter()
                .find(|p| p.player_id == id)
                .map(|p| p.name.clone())
        };
        let holder = info
            .authority
            .as_deref()
            .and_then(name_of)
            .unwrap_or_else(|| "nobody".to_owned());
        let (question, command) = match player {
            Some(player) => {
                let Some(name) = name_of(player) else {
                    self.set_status(format!("no player {player} in room {room}"), Severity::Warning);
                    return Vec::new();
                };
                (
                    format!("Move authority in room {room} from {holder} to {name} ({player})? Every member is told."),
                    Command::TransferAuthority { room: room.to_owned(), player_id: player.to_owned() },
                )
            }
            None => (
                format!("Revoke authority in room {room} (held by {holder})? The room has no authority afterwards."),
                Command::RevokeAuthority { room: room.to_owned() },
            ),
        };
        self.mode = Mode::Confirm { question, command };
        Vec::new()
    }

    fn request(&mut self, command: Command) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        self.send(command)
    }

    fn send(&mut self, command: Command) -> Vec<Effect> {
        if self.connection != Connection::Connected {
            self.set_status(
                "not connected to the server; the action was not sent",
                Severity::Error,
            );
            return Vec::new();
        }
        let id = self.next_command_id;
        self.next_command_id += 1;
        let described = describe_command(&command);
        self.pending.insert(id, described.clone());
        self.set_status(format!("{described}…"), Severity::Info);
        vec![Effect::Send(CommandEnvelope { id, command })]
    }

    // --------------------------------------------------------------------------------------
    // Tables
    // --------------------------------------------------------------------------------------

    /// A view's rows in natural order, built lazily so that a window of them costs only what
    /// it shows, with their number known without building any.
    fn row_source(&self, view: View) -> RowSource<'_> {
        let (headers, len, rows): (&'static [&'static str], usize, RowIter<'_>) = match view {
            View::Peers => (
                &[
                    "ID", "DIALECT", "APP", "IDENTITY", "ROOM", "IN", "OUT", "ERR", "ADDRESS",
                ],
                self.model.peers.len(),
                Box::new(self.model.peers.values().map(|p| Row {
                    key: p.id.clone(),
                    cells: vec![
                        p.id.clone(),
                        p.dialect.id().to_owned(),
                        p.app.clone().unwrap_or_default(),
                        p.identity.clone().unwrap_or_default(),
                        p.room.clone().unwrap_or_default(),
                        p.frames_in.to_string(),
                        p.frames_out.to_string(),
                        p.errors.to_string(),
                        p.addr.clone(),
                    ],
                    severity: (p.errors > 0).then_some(Severity::Warning),
                })),
            ),
            View::Rooms => (
                &[
                    "CODE",
                    "APP",
                    "GAME",
                    "PLAYERS",
                    "SPECT",
                    "LOBBY",
                    "AUTHORITY",
                ],
                self.model.rooms.len(),
                Box::new(self.model.rooms.values().map(|r| Row {
                    key: r.code.clone(),
                    cells: vec![
                            r.code.clone(),
                            r.app.clone(),
                            r.game.clone(),
                            format!("{}/{}", r.players.len(), r.max_players),
                            r.spectators.len().to_string(),
                            r.lobby_state.clone(),
                            r.authority
                                .as_ref()
                                .map(|id| {
                                    r.players
                                        .iter()
                                        .find(|p| p.player_id == *id)
                                        .map(|p| p.name.clone())
                                        .unwrap_or_else(|| id.clone())
                                })
                                .unwrap_or_else(|| "—".to_owned()),
                        ],
                    severity: None,
                })),
            ),
            View::Channels => (
                &["DIALECT", "APP", "CHANNEL", "MEMBERS", "MESSAGES"],
                self.model.channels.len(),
                Box::new(self.model.channels.values().map(|c| Row {
                    key: format!("{}/{}/{}", c.dialect.id(), c.app, c.name),
                    cells: vec![
                        c.dialect.id().to_owned(),
                        c.app.clone(),
                        c.name.clone(),
                        c.members.len().to_string(),
                        c.messages.to_string(),
                    ],
                    severity: None,
                })),
            ),
            View::Subscriptions => (
                &["PEER", "DIALECT", "ID", "TOPIC", "ARGUMENTS"],
                self.model.subscriptions.len(),
                Box::new(self.model.subscriptions.values().map(|s| Row {
                    key: format!("{}\u{1f}{}", s.peer, s.id),
                    cells: vec![
                        s.peer.clone(),
                        s.dialect.id().to_owned(),
                        s.id.clone(),
                        s.topic.clone(),
                        s.arguments.to_string(),
                    ],
                    severity: None,
                })),
            ),
            View::Apps => {
                // One pass over the peers, not one per app.
                let mut live: HashMap<&str, usize> = HashMap::new();
                for app in self.model.peers.values().filter_map(|p| p.app.as_deref()) {
                    *live.entry(app).or_default() += 1;
                }
                (
                    &["APP", "NAME", "STATUS", "PEERS", "KEYS"],
                    self.model.apps.len(),
                    Box::new(self.model.apps.iter().map(move |a| Row {
                        key: a.id.clone(),
                        cells: vec![
                            a.id.clone(),
                            a.name.clone(),
                            a.status.id().to_owned(),
                            live.get(a.id.as_str()).copied().unwrap_or(0).to_string(),
                            a.keys
                                .iter()
                                .map(|k| format!("{} ({})", k.id, k.grants.join(" ")))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ],
                        severity: (a.status != AppStatus::Active).then_some(Severity::Warning),
                    })),
                )
            }
            View::Catalog => {
                // The catalog's own search applies the filter, ranking best first.
                let entries = catalog::search(&self.table_state(View::Catalog).filter);
                (
                    &["DIALECT", "CODE", "DELIVERY", "RETRY", "TITLE"],
                    entries.len(),
                    Box::new(entries.into_iter().map(|e| Row {
                        key: e.qualified(),
                        cells: vec![
                            e.dialect.id().to_owned(),
                            e.code.to_owned(),
                            e.delivery.id().to_owned(),
                            e.retry.id().to_owned(),
                            e.title.to_owned(),
                        ],
                        severity: Some(e.severity()),
                    })),
                )
            }
            View::Overview | View::Log | View::Composer => (&[], 0, Box::new(std::iter::empty())),
        };
        RowSource { headers, len, rows }
    }

    /// Every row of a view's table, filtered and sorted as the user asked.
    pub fn table(&self, view: View) -> TableData {
        let RowSource { headers, rows, .. } = self.row_source(view);
        let state = self.table_state(view);
        let filter = state.filter.to_lowercase();
        let rows: Vec<Row> = if filter.is_empty() || view == View::Catalog {
            rows.collect()
        } else {
            rows.filter(|row| row.cells.iter().any(|c| contains_folded(c, &filter)))
                .collect()
        };
        TableData {
            headers,
            rows: self.sorted(view, rows),
        }
    }

    /// The rows `first..first + count` of a view's table as the user filtered and sorted it,
    /// with the table's total. In natural order only the window is built; a filtered or sorted
    /// order is computed once per model change and reused by every draw and key press until
    /// the model, the filter or the sort changes.
    pub fn table_window(&self, view: View, first: usize, count: usize) -> TableWindow {
        let state = self.table_state(view);
        if state.filter.is_empty() && state.sort.is_none() {
            let RowSource { headers, len, rows } = self.row_source(view);
            return TableWindow {
                headers,
                total: len,
                rows: rows.skip(first).take(count).collect(),
            };
        }
        let mut cache = self.ordered.borrow_mut();
        let fresh = cache.as_ref().is_some_and(|c| {
            c.view == view
                && c.generation == self.generation
                && c.filter == state.filter
                && c.sort == state.sort
                && c.descending == state.descending
        });
        if !fresh {
            let TableData { headers, rows } = self.table(view);
            *cache = Some(OrderedRows {
                view,
                generation: self.generation,
                filter: state.filter.clone(),
                sort: state.sort,
                descending: state.descending,
                headers,
                rows,
            });
        }
        match cache.as_ref() {
            Some(ordered) => TableWindow {
                headers: ordered.headers,
                total: ordered.rows.len(),
                rows: ordered
                    .rows
                    .iter()
                    .skip(first)
                    .take(count)
                    .cloned()
                    .collect(),
            },
            None => TableWindow {
                headers: &[],
                total: 0,
                rows: Vec::new(),
            },
        }
    }

    /// How many rows a view's table shows after filtering.
    pub fn row_count(&self, view: View) -> usize {
        self.table_window(view, 0, 0).total
    }

    /// Numbers sort as numbers, everything else as text; each cell is parsed once, not once
    /// per comparison.
    fn sorted(&self, view: View, rows: Vec<Row>) -> Vec<Row> {
        let state = self.table_state(view);
        let Some(column) = state.sort else {
            return rows;
        };
        let mut keyed: Vec<(Option<f64>, Row)> = rows
            .into_iter()
            .map(|row| {
                let number = row.cells.get(column).and_then(|v| v.parse::<f64>().ok());
                (number, row)
            })
            .collect();
        keyed.sort_by(|(x_number, x), (y_number, y)| {
            let ordering = match (x_number, y_number) {
                (Some(a), Some(b)) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
                _ => match (x.cells.get(column), y.cells.get(column)) {
                    (Some(a), Some(b)) => natural_cmp(a, b),
                    (a, b) => a.cmp(&b),
                },
            };
            if state.descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
        keyed.into_iter().map(|(_, row)| row).collect()
    }

    /// Log entries shown in the log view (or a peer's detail), filtered, each with its number
    /// (counted since the console started, so it survives older entries being dropped).
    pub fn log_entries(&self, peer: Option<&str>) -> Vec<(u64, &LogEntry)> {
        let filter = self.table_state(View::Log).filter.to_lowercase();
        let first = self.log_total - self.log.len() as u64;
        self.log
            .iter()
            .enumerate()
            .map(|(offset, entry)| (first + offset as u64, entry))
            .filter(|(_, e)| peer.is_none_or(|p| e.peer.as_deref() == Some(p)))
            .filter(|(_, e)| filter.is_empty() || log_haystack(e).contains(&filter))
            .collect()
    }

    /// `Some(peer filter)` when the screen shows a log: the live log, or a peer's detail.
    pub fn log_shown(&self) -> Option<Option<&str>> {
        match &self.detail {
            Some(Detail::Peer(peer)) => Some(Some(peer.as_str())),
            Some(_) => None,
            None if self.view == View::Log => Some(None),
            None => None,
        }
    }

    /// Scroll the shown log by `delta` entries (negative: back in time). Scrolling back pins
    /// the view to an entry, so new arrivals do not move what is being read; scrolling past
    /// the newest entry follows the live log again.
    fn scroll_log(&mut self, delta: isize) {
        let Some(peer) = self.log_shown() else {
            return;
        };
        let numbers: Vec<u64> = self.log_entries(peer).iter().map(|(n, _)| *n).collect();
        let Some(last) = numbers.len().checked_sub(1) else {
            self.log_anchor = None;
            return;
        };
        let current = match self.log_anchor {
            None => last,
            Some(anchor) => numbers.partition_point(|n| *n <= anchor).saturating_sub(1),
        };
        let target = (current as isize)
            .saturating_add(delta)
            .clamp(0, last as isize) as usize;
        self.log_anchor = (target < last).then(|| numbers[target]);
    }

    /// The most frequent error codes since the server started.
    pub fn top_errors(&self, count: usize) -> Vec<(String, u64)> {
        let mut codes: Vec<(String, u64)> = self
            .model
            .stats
            .errors_by_code
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        codes.truncate(count);
        codes
    }
}

/// Text order in which runs of digits compare as numbers, so that `p2` sorts before `p10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(x), Some(y)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let a_end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let b_end = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let (a_digits, b_digits) = (
                a[..a_end].trim_start_matches('0'),
                b[..b_end].trim_start_matches('0'),
            );
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
            a = &a[x.len_utf8()..];
            b = &b[y.len_utf8()..];
        }
    }
}

/// Whether `haystack` contains `needle_lower` ignoring case; allocation-free for ASCII text,
/// which is nearly every cell, since filtering runs over every row of a large table.
fn contains_folded(haystack: &str, needle_lower: &str) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let needle = needle_lower.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(needle_lower)
}

fn log_haystack(entry: &LogEntry) -> String {
    let body = match &entry.kind {
        LogKind::Error { code, frame, .. } => format!("{code} {frame}"),
        LogKind::Closed { code, reason } => format!(
            "{} {reason}",
            code.map(|c| c.to_string()).unwrap_or_default()
        ),
        LogKind::Frame { text, .. } => text.clone(),
        LogKind::Notice { text, .. } => text.clone(),
    };
    format!(
        "{} {} {body}",
        entry.peer.as_deref().unwrap_or(""),
        entry.dialect.map(|d| d.id()).unwrap_or("")
    )
    .to_lowercase()
}

pub fn describe_command(command: &Command) -> String {
    match command {
        Command::Kick { peer, .. } => format!("kick {peer}"),
        Command::SetAppStatus { app, status } => format!("set {app} {}", status.id()),
        Command::CloseRoom { room } => format!("close room {room}"),
        Command::TransferAuthority { room, player_id } => {
            format!("transfer authority in {room} to {player_id}")
        }
        Command::RevokeAuthority { room } => format!("revoke authority in {room}"),
        Command::Tap { peer, on } => format!("tap {peer} {}", if *on { "on" } else { "off" }),
        Command::Inject { .. } => "inject".to_owned(),
        Command::ArmFault { code, .. } => format!("arm fault {code}"),
        Command::DisarmFault { fault } => format!("disarm fault {fault}"),
        Command::Resync => "resync".to_owned(),
    }
}
