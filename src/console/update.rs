//! [`App::update`]: every message in, the effects the loop must carry out back. No I/O and no
//! clock of its own (time arrives as [`Msg::Tick`]), so every behaviour is testable directly.
//!
//! The model changes only through the server's snapshot and deltas: an admin action sends a
//! command (after a confirmation) and shows its result; the views change when deltas arrive.

mod composer;
mod frames;
mod triage;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Connection, Detail, Effect, Mode, Msg, View};
use super::commands;
use super::composer::{DirectReply, Target};
use super::confirm::{self, Confirmation};
use super::keymap::Action;
use super::log::{LogEntry, LogKind};
use crate::catalog::Severity;
use crate::protocol::admin::{
    Command, CommandEnvelope, CommandResult, InjectTarget, ServerMessage,
};

impl App {
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut retired = None;
        let from_server = matches!(msg, Msg::Server(_));
        if !from_server {
            // A key or command acts on the rows as drawn: deltas that left the table stale
            // are folded in first.
            self.settle();
        }
        let effects = match msg {
            Msg::Server(message) => self.on_server(message, &mut retired),
            Msg::Connection(connection) => {
                self.on_connection(connection);
                Vec::new()
            }
            Msg::Key(key) => self.on_key(key),
            Msg::Tick(now_ms) => {
                self.now_ms = now_ms;
                // Keeps the reconnect countdown fresh; nothing else on screen reads the clock.
                if matches!(self.connection, Connection::Lost { .. }) {
                    self.dirty = true;
                }
                Vec::new()
            }
            Msg::Resize(width, height) => {
                self.size = (width, height);
                self.help_scroll = self.help_scroll.min(self.help_scroll_max());
                self.dirty = true;
                Vec::new()
            }
            Msg::DirectReply(text) => {
                self.composer.direct_replies.push(DirectReply::new(text));
                self.dirty = true;
                Vec::new()
            }
            Msg::Notice(text, severity) => {
                self.set_status(text, severity);
                Vec::new()
            }
            Msg::SessionLoaded { label, session } => self.session_loaded(label, session),
            Msg::Repro(label, progress) => {
                self.on_repro(label, progress);
                Vec::new()
            }
            Msg::Paste(text) => {
                self.pasted(&text);
                Vec::new()
            }
        };
        // A server message moves the table's index or marks it stale; a burst of them is
        // folded in once, by `settle` before the next draw. Anything else (a key, a view
        // change) leaves the table ready to be drawn from `&App`.
        if !from_server {
            self.settle();
        }
        if let Some(retired) = retired {
            // Freeing 100,000 peers takes about as long as building them; the screen need
            // not wait for it. Should no thread start, the closure is dropped right here, and
            // the old state with it.
            let _ = std::thread::Builder::new()
                .name("retired-snapshot".into())
                .spawn(move || drop(retired));
        }
        effects
    }

    fn on_connection(&mut self, connection: Connection) {
        // A warning already on the status line (a bad keymap or theme file found at start-up)
        // outlives the connect: it is the only place that tells of it.
        let warning_shown = matches!(self.status, Some((_, Severity::Warning | Severity::Error)));
        if connection == Connection::Connected && !warning_shown {
            self.set_status("connected", Severity::Info);
        }
        if matches!(connection, Connection::Lost { .. }) {
            self.model.link_lost();
        }
        self.connection = connection;
        self.dirty = true;
    }

    // --------------------------------------------------------------------------------------
    // Server messages
    // --------------------------------------------------------------------------------------

    fn on_server(
        &mut self,
        message: ServerMessage,
        retired: &mut Option<super::model::Retired>,
    ) -> Vec<Effect> {
        self.dirty = true;
        let mut applied = self.model.apply(message);
        *retired = applied.retired.take();
        self.tables.follow(&self.model, &applied);
        if let Some((from, to)) = applied.gap {
            self.set_status(
                format!("missed deltas {from}..{to}; waiting for a fresh snapshot"),
                Severity::Warning,
            );
        }
        // The server taps its probes from the start; what this console tapped ends with the
        // peer.
        if applied.everything {
            let model = &self.model;
            self.tapped.retain(|peer| model.peers.contains_key(peer));
            self.tapped.extend(
                model
                    .peers
                    .values()
                    .filter(|p| p.probe)
                    .map(|p| p.id.clone()),
            );
        }
        if let Some(change) = &applied.peer {
            match self.model.peer(&change.id) {
                Some(peer) if peer.probe && change.before.is_none() => {
                    self.tapped.insert(peer.id.clone());
                }
                None => {
                    self.tapped.remove(&change.id);
                }
                Some(_) => {}
            }
        }
        if let Some(happened) = applied.happened {
            self.log.push(LogEntry::new(
                happened.at_ms,
                happened.peer,
                happened.dialect,
                happened.kind,
            ));
        }
        match applied.result {
            Some(result) => self.on_result(result),
            None => Vec::new(),
        }
    }

    fn on_result(&mut self, result: CommandResult) -> Vec<Effect> {
        let mut effects = Vec::new();
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
                            target: InjectTarget::ExistingProbe { .. },
                            frame,
                        } => Command::Inject {
                            target: InjectTarget::ExistingProbe {
                                peer: probe.clone(),
                            },
                            frame,
                        },
                        other => other,
                    };
                    effects.extend(self.send(command));
                }
            }
        }
        effects.extend(self.exported(&result));
        self.recorded_frames_answered(&result);
        let asked = self.pending.remove(&result.id);
        if let (true, Some(Command::Tap { peer, on })) = (result.ok, &asked) {
            if *on {
                self.tapped.insert(peer.clone());
            } else {
                self.tapped.remove(peer);
            }
        }
        let (text, severity) = if result.ok {
            (result.message.clone(), Severity::Info)
        } else {
            let asked = asked
                .as_ref()
                .map(|command| command.describe().text)
                .unwrap_or_else(|| format!("command {}", result.id));
            (
                format!("{asked} failed: {}", result.message),
                Severity::Error,
            )
        };
        self.log.push(LogEntry::new(
            self.now_ms,
            None,
            None,
            LogKind::Notice {
                text: text.clone(),
                severity,
            },
        ));
        self.set_status(text, severity);
        effects
    }

    // --------------------------------------------------------------------------------------
    // Keys
    // --------------------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.dirty = true;
        match &self.mode {
            Mode::Filter => {
                self.edit_filter(key);
                Vec::new()
            }
            Mode::Command => self.on_command_key(key),
            Mode::Help => {
                self.on_help_key(key);
                Vec::new()
            }
            Mode::Confirm { command, .. } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    let command = command.clone();
                    self.mode = Mode::Normal;
                    let mut effects = self.send(command);
                    for command in std::mem::take(&mut self.confirm_then) {
                        effects.extend(self.send(command));
                    }
                    effects
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.confirm_then.clear();
                    self.set_status("cancelled", Severity::Info);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::ConfirmRun { run, .. } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    let run = (**run).clone();
                    self.mode = Mode::Normal;
                    self.run_session(run)
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.mode = Mode::Normal;
                    self.set_status("cancelled", Severity::Info);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            Mode::Paste => {
                self.paste_key(key);
                Vec::new()
            }
            Mode::Normal if self.view == View::Composer => self.composer_key(key),
            Mode::Normal => match self.keymap.action(&key) {
                Some(action) => self.perform(action),
                None => Vec::new(),
            },
        }
    }

    /// Lines the help overlay can scroll past at the current size.
    fn help_scroll_max(&self) -> u16 {
        let lines = commands::help_lines(&self.keymap, self.readonly).len();
        let visible = super::ui::help::visible_lines(self.size.1);
        lines.saturating_sub(visible).min(u16::MAX as usize) as u16
    }

    fn on_help_key(&mut self, key: KeyEvent) {
        let page = super::ui::help::visible_lines(self.size.1).max(1) as i32;
        let delta: i32 = match self.keymap.action(&key) {
            Some(Action::Down) => 1,
            Some(Action::Up) => -1,
            Some(Action::PageDown) => page,
            Some(Action::PageUp) => -page,
            Some(Action::Top) => i32::MIN / 2,
            Some(Action::Bottom) => i32::MAX / 2,
            _ => {
                self.mode = Mode::Normal;
                self.help_scroll = 0;
                return;
            }
        };
        let max = i32::from(self.help_scroll_max());
        self.help_scroll = (i32::from(self.help_scroll).saturating_add(delta)).clamp(0, max) as u16;
    }

    fn edit_filter(&mut self, key: KeyEvent) {
        let view = self.view;
        let state = self.tables.entry(view);
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                state.filter.push(c)
            }
            KeyCode::Backspace => {
                state.filter.pop();
            }
            KeyCode::Esc => {
                state.filter.clear();
                self.mode = Mode::Normal;
            }
            KeyCode::Enter => self.mode = Mode::Normal,
            _ => {}
        }
        self.tables.entry(view).selected = 0;
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
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.command_line.push(c);
                Vec::new()
            }
            KeyCode::Backspace => {
                self.command_line.pop();
                Vec::new()
            }
            KeyCode::Esc => {
                self.command_line.clear();
                self.mode = Mode::Normal;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Completion candidates for the word being typed on the command line.
    pub fn completions(&self) -> Vec<String> {
        commands::completions(&self.command_line, &self.model, self.readonly)
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
            words.push(common);
        } else if let Some(last) = words.last_mut() {
            *last = common;
        }
        self.command_line = words.join(" ");
        if candidates.len() == 1 {
            self.command_line.push(' ');
        } else {
            // A long list (every peer of a big server) is cut, not spread over the screen.
            let shown: Vec<&str> = candidates.iter().take(40).map(String::as_str).collect();
            let more = candidates.len().saturating_sub(shown.len());
            let mut text = shown.join("  ");
            if more > 0 {
                text.push_str(&format!("  … {more} more"));
            }
            self.set_status(text, Severity::Info);
        }
    }

    /// Run one command line (without its `:`), as typed.
    pub fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        match commands::parse(line) {
            Ok(Some(action)) => self.perform(action),
            Ok(None) => Vec::new(),
            Err(problem) => {
                self.set_status(problem, Severity::Warning);
                Vec::new()
            }
        }
    }

    /// Put a confirmation on screen, or say why there is nothing to confirm.
    fn ask(&mut self, asked: Result<Confirmation, String>) {
        match asked {
            Ok(Confirmation { question, command }) => {
                self.confirm_then.clear();
                self.mode = Mode::Confirm { question, command };
            }
            Err(problem) => self.set_status(problem, Severity::Warning),
        }
    }

    /// The user moves to another view: what the last view said (a sort, a completion, a
    /// result) is about that view and goes; a warning or an error stays until read.
    fn go_to(&mut self, view: View) {
        if view != self.view && matches!(self.status, Some((_, Severity::Info))) {
            self.status = None;
        }
        self.switch(view);
    }

    fn switch(&mut self, view: View) {
        self.view = view;
        self.detail = None;
        self.log.anchor = None;
        self.dirty = true;
    }

    /// Carry out an action, whether a key or a command line asked for it. An action about an
    /// object that does not name it acts on the row selected in the view of its kind (in a
    /// detail, on the object on screen).
    fn perform(&mut self, action: Action) -> Vec<Effect> {
        if action.is_admin() && self.admin_refused() {
            return Vec::new();
        }
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Help => {
                self.help_scroll = 0;
                self.mode = Mode::Help;
            }
            Action::Command => {
                self.command_line.clear();
                self.mode = Mode::Command;
            }
            Action::Filter => self.mode = Mode::Filter,
            Action::Back => {
                if self.back_from_frames() {
                    self.log.anchor = None;
                } else if self.detail.is_some() {
                    self.detail = None;
                    self.log.anchor = None;
                } else if !self.tables.filter(self.view).is_empty() {
                    self.tables.entry(self.view).filter.clear();
                } else {
                    self.status = None;
                }
            }
            Action::Open if self.open_log_entry() => {}
            Action::Open => {
                let listed = self.detail.is_none() && self.open_in_list();
                if !listed {
                    self.open_selected();
                }
            }
            Action::NextView => self.go_to(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            Action::PreviousView => {
                self.go_to(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            Action::Show(View::Composer) => self.open_composer(),
            Action::Show(view) => self.go_to(view),
            Action::Compose { code } => {
                self.open_composer();
                if let Some(code) = code {
                    if !self.composer.template_for(&code) {
                        self.set_status(
                            format!("no template reproduces {code}"),
                            Severity::Warning,
                        );
                    }
                }
            }
            Action::Target { words } => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                match Target::parse(&words) {
                    Ok(target) => {
                        self.set_status(
                            format!("composer target: {}", target.describe()),
                            Severity::Info,
                        );
                        self.composer.target = target;
                    }
                    Err(problem) => self.set_status(problem, Severity::Warning),
                }
            }
            Action::Record { name } => return self.record(&name),
            Action::Copy => return self.copy_on_screen(),
            Action::RecordedFrames => return self.read_recorded_frames(),
            Action::Unban { ban: Some(ban) } => self.unban(Some(&ban)),
            Action::Unban { ban: None } => match self.view {
                View::Bans if self.detail.is_none() => self.unban(None),
                _ => self.set_status(
                    "select a ban in the bans view to lift it",
                    Severity::Warning,
                ),
            },
            Action::Down => self.move_selection(1),
            Action::Up => self.move_selection(-1),
            Action::PageDown => self.move_selection(self.page_rows() as isize),
            Action::PageUp => self.move_selection(-(self.page_rows() as isize)),
            Action::Top if self.log_shown().is_some() => self.move_selection(isize::MIN / 2),
            Action::Top if matches!(self.view, View::Find | View::Timeline) => {
                self.move_selection(isize::MIN / 2)
            }
            Action::Bottom if self.log_shown().is_some() => self.log.anchor = None,
            Action::Top => self.tables.entry(self.view).selected = 0,
            Action::Bottom => self.move_selection(isize::MAX / 2),
            // One press per column, each in the direction people read it in (counts largest
            // first); `r` turns it around.
            Action::Sort => {
                let columns = self.view.columns().len();
                let largest_first = self.view.table().map_or(&[][..], |t| t.largest_first);
                let state = self.tables.entry(self.view);
                state.sort = match state.sort {
                    None => Some(0),
                    Some(c) => (c + 1 < columns).then_some(c + 1),
                };
                state.descending = state.sort.is_some_and(|c| largest_first.contains(&c));
            }
            Action::ReverseSort => {
                let state = self.tables.entry(self.view);
                if state.sort.is_some() {
                    state.descending = !state.descending;
                } else {
                    self.set_status("press s to sort by a column first", Severity::Info);
                }
            }
            Action::Kick {
                peer: Some(peer),
                reason,
            } => {
                let asked = confirm::kick(&self.model, &peer, reason);
                self.ask(asked);
            }
            // In a detail, an action is about the object on screen, not whichever row the
            // table's selection has drifted to since.
            Action::Kick { peer: None, reason } => match self.detail_or_selected(View::Peers) {
                Some(peer) if self.view == View::Peers => {
                    let asked = confirm::kick(&self.model, &peer, reason);
                    self.ask(asked);
                }
                _ => self.set_status(
                    "select a peer in the peers view to kick it",
                    Severity::Warning,
                ),
            },
            Action::SetAppStatus {
                app: Some(app),
                status,
            } => {
                let asked = confirm::app_status(&self.model, &app, status);
                self.ask(asked);
            }
            Action::SetAppStatus { app: None, status } => match self.selected_key(View::Apps) {
                Some(app) if self.view == View::Apps => {
                    let asked = confirm::app_status(&self.model, &app, status);
                    self.ask(asked);
                }
                _ => self.set_status("select an app in the apps view", Severity::Warning),
            },
            Action::CloseRoom { room: Some(room) } => {
                let asked = confirm::close_room(&self.model, &room);
                self.ask(asked);
            }
            Action::CloseRoom { room: None } => match self.detail_or_selected(View::Rooms) {
                Some(room) if self.view == View::Rooms => {
                    let asked = confirm::close_room(&self.model, &room);
                    self.ask(asked);
                }
                _ => self.set_status(
                    "select a room in the rooms view to close it",
                    Severity::Warning,
                ),
            },
            Action::TransferAuthority { room, player } => {
                let asked = confirm::authority(&self.model, &room, Some(&player));
                self.ask(asked);
            }
            Action::RevokeAuthority { room } => {
                let asked = confirm::authority(&self.model, &room, None);
                self.ask(asked);
            }
            Action::Tap {
                peer: Some(peer),
                on,
            } => {
                let on = on.unwrap_or_else(|| !self.is_tapped(&peer));
                let asked = confirm::tap(&self.model, &peer, on);
                self.ask(asked);
            }
            Action::Tap { peer: None, on } => match self.detail_or_selected(View::Peers) {
                Some(peer) if self.view == View::Peers => {
                    let on = on.unwrap_or_else(|| !self.is_tapped(&peer));
                    let asked = confirm::tap(&self.model, &peer, on);
                    self.ask(asked);
                }
                _ => self.set_status(
                    "select a peer in the peers view to tap it",
                    Severity::Warning,
                ),
            },
            Action::Fault {
                target,
                code,
                count,
            } => {
                let asked = confirm::fault(&self.model, &target, &code, count.as_deref());
                self.ask(asked);
            }
            Action::Find { text } => self.find(&text),
            Action::Ban { duration, reason } => self.ban(&duration, &reason),
            Action::Export { name } => return self.export(&name),
            Action::Repro { session } => return self.repro(&session),
            Action::Paste => self.open_paste(),
            Action::Edit => self.edit_selected(),
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

    fn move_selection(&mut self, delta: isize) {
        if self.move_in_recorded(delta) {
            return;
        }
        if self.detail.is_none() && self.move_in_list(delta) {
            return;
        }
        if let Some(peer) = self.log_shown() {
            let peer = peer.map(str::to_owned);
            let filter = self.tables.filter(View::Log).to_owned();
            self.log.scroll(peer.as_deref(), &filter, delta);
            return;
        }
        let count = self.row_count(self.view);
        let state = self.tables.entry(self.view);
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

    fn open_selected(&mut self) {
        let Some(key) = self.selected_key(self.view) else {
            return;
        };
        self.log.anchor = None;
        self.detail = self
            .view
            .table()
            .and_then(|table| (table.opens)(&self.model, &key));
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
        let described = command.describe().text;
        self.pending.insert(id, command.clone());
        self.set_status(format!("{described}…"), Severity::Info);
        vec![Effect::Send(CommandEnvelope { id, command })]
    }
}
