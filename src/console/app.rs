//! The console's state: what it knows of the server ([`Model`]), the log, the tables, the
//! composer, and where the user is. It changes only in [`App::update`] (see
//! [`super::update`]); drawing reads it through `&App`.

use std::collections::{HashMap, HashSet};

use crossterm::event::KeyEvent;
use tui_textarea::TextArea;

use super::composer::Composer;
pub use super::detail::Detail;
use super::keymap::Keymap;
use super::log::{Log, LogEntry};
use super::model::Model;
use super::tables::{TableData, TableState, TableWindow, Tables};
use super::theme::Theme;
use super::triage::{FindResults, PastedTimeline};
pub use super::views::View;
use crate::catalog::Severity;
use crate::protocol::admin::{Command, CommandEnvelope, ServerMessage};
use crate::session::replay::{SeenFrame, SessionReport, StepReport};
use crate::session::Session;

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
    /// Waiting for y/n on running a session whose steps act on the server.
    ConfirmRun {
        question: String,
        run: Box<ReproRun>,
    },
    /// Typing or pasting a player's log.
    Paste,
}

/// A session the console runs against its server (`:repro`, or a template the composer
/// cannot send frame by frame).
#[derive(Debug, Clone, PartialEq)]
pub struct ReproRun {
    /// What the user asked for: a code or a file.
    pub label: String,
    pub session: Session,
}

/// What a running session reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum ReproProgress {
    Step(StepReport),
    Frame(SeenFrame),
    Done(SessionReport),
    /// It could not start (no server address to run against).
    Failed(String),
}

/// Everything that reaches the console: the server, the link's state, the user, the clock,
/// the terminal, and what the loop did on the app's behalf.
#[derive(Debug)]
pub enum Msg {
    Server(ServerMessage),
    Connection(Connection),
    Key(KeyEvent),
    /// The wall clock, in milliseconds since the epoch.
    Tick(u64),
    /// The terminal's size in columns and rows.
    Resize(u16, u16),
    /// A reply to the composer's plain client (or a note about its connection).
    DirectReply(String),
    /// Something the main loop did for the app (a saved session, a failed write).
    Notice(String, Severity),
    /// A session file `:repro` asked for, read and parsed (or why not).
    SessionLoaded {
        label: String,
        session: Result<Session, String>,
    },
    /// Progress of a running session.
    Repro(String, ReproProgress),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
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
    /// Write a session file named `name` into the sessions folder.
    SaveSession {
        name: String,
        text: String,
    },
    /// Read and parse a session file; the answer comes back as [`Msg::SessionLoaded`].
    LoadSession {
        label: String,
        path: String,
    },
    /// Run a session against the connected server in the background; progress comes back as
    /// [`Msg::Repro`].
    RunSession(Box<ReproRun>),
    /// Put the text on the terminal's clipboard (OSC 52) and into a file in the data folder.
    Copy {
        label: String,
        text: String,
    },
    Quit,
}

pub struct App {
    pub model: Model,
    pub log: Log,
    pub tables: Tables,
    pub view: View,
    pub mode: Mode,
    /// First line of the help overlay on screen.
    pub help_scroll: u16,
    pub command_line: String,
    pub status: Option<(String, Severity)>,
    pub connection: Connection,
    pub readonly: bool,
    pub detail: Option<Detail>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub composer: Composer,
    /// The last clock tick.
    pub now_ms: u64,
    /// The terminal's size, as last told.
    pub size: (u16, u16),
    /// Peers whose frames are tapped, as this console has seen the server confirm.
    pub tapped: HashSet<String>,
    /// Set by every change that needs a redraw; the loop clears it after drawing.
    pub dirty: bool,
    pub(super) next_command_id: u64,
    /// Commands sent and not yet answered, by id.
    pub(super) pending: HashMap<u64, Command>,
    /// The view to return to when leaving the composer.
    pub(super) previous_view: View,
    /// Frames waiting for the composer's probe to be opened (its id is not known yet).
    pub(super) probe_queue: Vec<Command>,
    pub(super) probe_request: Option<u64>,
    /// Commands sent after the one a confirmation names, once it is accepted.
    pub(super) confirm_then: Vec<Command>,
    /// The last `:find`.
    pub find: FindResults,
    /// The last pasted log, read.
    pub timeline: PastedTimeline,
    /// The editor `:paste` opens.
    pub paste: TextArea<'static>,
    /// `:export` commands awaiting their session, by command id: the name to save it as.
    pub(super) exports: HashMap<u64, String>,
    /// Sessions running now, by label.
    pub running: Vec<String>,
    /// The last flight recorder read (`f`).
    pub recorded: super::frames::RecordedFrames,
    /// The `frames` command awaiting its answer.
    pub(super) frames_request: Option<u64>,
    /// Frames of running sessions waiting for their step's report, by session label.
    pub(super) repro_frames: HashMap<String, Vec<LogEntry>>,
}

impl App {
    pub fn new(keymap: Keymap, readonly: bool) -> App {
        App {
            model: Model::default(),
            log: Log::default(),
            tables: Tables::new(),
            view: View::Overview,
            mode: Mode::Normal,
            help_scroll: 0,
            command_line: String::new(),
            status: None,
            connection: Connection::Connecting,
            readonly,
            detail: None,
            keymap,
            theme: Theme::built_in("default", false),
            composer: Composer::new(),
            now_ms: 0,
            size: (80, 24),
            tapped: HashSet::new(),
            dirty: true,
            next_command_id: 1,
            pending: HashMap::new(),
            previous_view: View::Overview,
            probe_queue: Vec::new(),
            probe_request: None,
            confirm_then: Vec::new(),
            find: FindResults::default(),
            timeline: PastedTimeline::default(),
            paste: TextArea::default(),
            exports: HashMap::new(),
            running: Vec::new(),
            recorded: super::frames::RecordedFrames::default(),
            frames_request: None,
            repro_frames: HashMap::new(),
        }
    }

    /// Bring the table on screen up to date with everything applied so far; the loop calls
    /// it once before each draw, so a burst of deltas costs one rebuild, not one per delta.
    pub fn settle(&mut self) {
        self.tables.refresh(&self.model, self.view);
    }

    pub fn set_status(&mut self, text: impl Into<String>, severity: Severity) {
        self.status = Some((text.into(), severity));
        self.dirty = true;
    }

    pub fn table_state(&self, view: View) -> TableState {
        self.tables.state(view)
    }

    /// Every row of a view's table, filtered and sorted as the user asked.
    pub fn table(&self, view: View) -> TableData {
        self.tables.table(&self.model, view)
    }

    /// The rows `first..first + count` of a view's table, with the table's total.
    pub fn table_window(&self, view: View, first: usize, count: usize) -> TableWindow {
        self.tables.window(&self.model, view, first, count)
    }

    /// How many rows a view's table shows after filtering.
    pub fn row_count(&self, view: View) -> usize {
        self.tables.total(&self.model, view)
    }

    pub fn selected_key(&self, view: View) -> Option<String> {
        self.tables.selected_key(&self.model, view)
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

    /// Log entries of `peer` (all when `None`) that match the log's filter, numbered.
    pub fn log_entries(&self, peer: Option<&str>) -> Vec<(u64, &LogEntry)> {
        self.log.entries(peer, self.tables.filter(View::Log))
    }

    /// Table rows that fit the body at the current terminal size (for page up and down).
    pub fn page_rows(&self) -> usize {
        // Tabs, info, status and hints lines, then the table's borders and header.
        (self.size.1 as usize).saturating_sub(4 + 3).max(1)
    }

    pub fn is_tapped(&self, peer: &str) -> bool {
        self.tapped.contains(peer)
    }
}
