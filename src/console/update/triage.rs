//! The triage side of the update: `:find`, `:ban`/`:unban`, `:export`, `:repro`, `:paste`, and
//! the lists they leave on screen.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::catalog::Severity;
use crate::console::app::{App, Detail, Effect, Mode, ReproProgress, ReproRun, View};
use crate::console::log::{LogEntry, LogKind};
use crate::console::triage::{self, Found};
use crate::protocol::admin::{Closed, Command, CommandResult, PeerInfo};
use crate::session::replay::Outcome;
use crate::session::Session;

/// A peer an action is about: live, or as it was when it closed.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub peer: PeerInfo,
    pub live: bool,
}

/// Whether `name` is fit for a file in the sessions folder.
pub(super) fn valid_session_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

pub(super) const SESSION_NAME_RULE: &str =
    "a session name is letters, digits, '-', '_' and '.' (not first)";

/// Frames of one running session held back until its next step is reported; a session that
/// receives more between two steps has them logged from this many on.
const REPRO_FRAMES_HELD: usize = 1_000;

impl App {
    /// The peer on screen: a detail's, the selected row's (peers, history, find results), or
    /// the one the log line being read names.
    pub(crate) fn subject(&self) -> Option<Subject> {
        let by_id = |id: &str| -> Option<Subject> {
            if let Some(peer) = self.model.peer(id) {
                return Some(Subject {
                    peer: peer.clone(),
                    live: true,
                });
            }
            self.history_peer(id)
        };
        match &self.detail {
            Some(Detail::Peer(id)) => return by_id(id),
            Some(Detail::History(key)) => return self.history_peer(key),
            Some(_) => return None,
            None => {}
        }
        match self.view {
            View::Peers => by_id(&self.selected_key(View::Peers)?),
            View::History => self.history_peer(&self.selected_key(View::History)?),
            View::Find => match &self.find.hits.get(self.find.selected)?.found {
                Found::Peer(id) => by_id(id),
                Found::History(key) => self.history_peer(key),
                Found::Room(_) => None,
            },
            View::Timeline => {
                let event = self.timeline.events.get(self.timeline.selected)?;
                event.matches.iter().find_map(|(found, _)| match found {
                    Found::Peer(id) => by_id(id),
                    Found::History(key) => self.history_peer(key),
                    Found::Room(_) => None,
                })
            }
            View::Log => {
                let entry = self.log.current(None, self.tables.filter(View::Log))?;
                by_id(entry.peer.as_deref()?)
            }
            _ => None,
        }
    }

    fn history_peer(&self, key: &str) -> Option<Subject> {
        match &self.model.history_entry(key)?.closed {
            Closed::Peer(closed) => Some(Subject {
                peer: closed.peer.clone(),
                live: false,
            }),
            Closed::Room(_) => None,
        }
    }

    /// The peer id an export is about: the subject's, or a log line's peer the model no
    /// longer lists (the server's recorder may still hold it).
    fn export_peer(&self) -> Option<String> {
        if let Some(subject) = self.subject() {
            return Some(subject.peer.id);
        }
        if self.detail.is_none() && self.view == View::Log {
            return self
                .log
                .current(None, self.tables.filter(View::Log))?
                .peer
                .clone();
        }
        None
    }

    pub(super) fn find(&mut self, query: &str) {
        self.find = triage::find(&self.model, query);
        let count = self.find.hits.len();
        let more = if self.find.cut { "+" } else { "" };
        self.set_status(
            format!("{count}{more} match(es) for {query:?}"),
            if count == 0 {
                Severity::Warning
            } else {
                Severity::Info
            },
        );
        self.switch(View::Find);
    }

    pub(super) fn ban(&mut self, duration: &str, reason: &str) {
        let Some(subject) = self.subject() else {
            self.set_status(
                "select a peer or a closed peer (peers, history, find) to ban it",
                Severity::Warning,
            );
            return;
        };
        // The server's own limit: the reason is shown to the kicked player and audited.
        if reason.len() > 200 {
            self.set_status(
                "a ban's reason is at most 200 bytes: it is shown to the player and audited",
                Severity::Warning,
            );
            return;
        }
        let duration_ms = match triage::parse_duration(duration) {
            Ok(ms) => ms,
            Err(problem) => {
                self.set_status(problem, Severity::Warning);
                return;
            }
        };
        let target = triage::ban_target(&subject.peer);
        let live = self
            .model
            .peers
            .values()
            .filter(|p| triage::ban_target(p) == target)
            .count();
        let span = triage::span(duration_ms);
        let until = super::super::tables::time_of(self.model.server_ms.saturating_add(duration_ms));
        let whose = if subject.live {
            format!("peer {}", subject.peer.id)
        } else {
            format!("closed peer {}", subject.peer.id)
        };
        let question = format!(
            "Ban {} for {span} (until {until} UTC), from {whose}, because \"{reason}\"? {live} live peer(s) matching it are closed with 4020 and new connections refused.",
            target.describe(),
        );
        self.confirm_then.clear();
        self.mode = Mode::Confirm {
            question,
            command: Command::Ban {
                target,
                duration_ms,
                reason: reason.to_owned(),
            },
        };
    }

    pub(super) fn unban(&mut self, id: Option<&str>) {
        let id = match id {
            Some(text) => text.parse::<u64>().ok(),
            None if self.view == View::Bans && self.detail.is_none() => self
                .selected_key(View::Bans)
                .and_then(|k| k.parse::<u64>().ok()),
            None => None,
        };
        let Some(id) = id else {
            self.set_status(
                "name a ban (:unban ID) or select one in the bans view",
                Severity::Warning,
            );
            return;
        };
        let Some(ban) = self.model.bans.get(&id) else {
            self.set_status(format!("no ban {id} in force"), Severity::Warning);
            return;
        };
        let question = format!(
            "Lift ban {id} on {} (\"{}\", by {}, {})? Matching connections are accepted again.",
            ban.target.describe(),
            ban.reason,
            ban.by,
            triage::until(self.model.server_ms, ban.until_ms)
        );
        self.confirm_then.clear();
        self.mode = Mode::Confirm {
            question,
            command: Command::Unban { ban: id },
        };
    }

    pub(super) fn export(&mut self, name: &str) -> Vec<Effect> {
        if !valid_session_name(name) {
            self.set_status(SESSION_NAME_RULE, Severity::Warning);
            return Vec::new();
        }
        let Some(peer) = self.export_peer() else {
            self.set_status(
                "select a peer, a closed peer or a log line naming one to export it",
                Severity::Warning,
            );
            return Vec::new();
        };
        let effects = self.send(Command::Export { peer });
        for effect in &effects {
            if let Effect::Send(envelope) = effect {
                self.exports.insert(envelope.id, name.to_owned());
            }
        }
        effects
    }

    /// The answer to an `:export`: the session to save, or nothing to save.
    pub(super) fn exported(&mut self, result: &CommandResult) -> Vec<Effect> {
        let Some(name) = self.exports.remove(&result.id) else {
            return Vec::new();
        };
        if !result.ok {
            return Vec::new();
        }
        let session = result
            .data
            .as_ref()
            .and_then(|d| d.get("session"))
            .and_then(|s| s.as_str());
        match session {
            Some(text) => vec![Effect::SaveSession {
                name,
                text: text.to_owned(),
            }],
            None => {
                self.set_status("the server's export carried no session", Severity::Error);
                Vec::new()
            }
        }
    }

    pub(super) fn repro(&mut self, what: &str) -> Vec<Effect> {
        if let Some(session) = crate::console::composer::session_for(what) {
            return self.start_session(ReproRun {
                label: what.to_owned(),
                session,
            });
        }
        let looks_like_file = what.contains('/') || what.contains('\\') || what.ends_with(".jsonl");
        if !looks_like_file {
            self.set_status(
                format!("no shipped session reproduces {what}; name a code or a session file"),
                Severity::Warning,
            );
            return Vec::new();
        }
        vec![Effect::LoadSession {
            label: what.to_owned(),
            path: what.to_owned(),
        }]
    }

    pub(super) fn session_loaded(
        &mut self,
        label: String,
        session: Result<Session, String>,
    ) -> Vec<Effect> {
        match session {
            Ok(session) => self.start_session(ReproRun { label, session }),
            Err(problem) => {
                self.set_status(format!("{label}: {problem}"), Severity::Error);
                Vec::new()
            }
        }
    }

    /// Run a session now, or ask first when its steps act on the server as an admin.
    pub(super) fn start_session(&mut self, run: ReproRun) -> Vec<Effect> {
        if self.admin_refused() {
            return Vec::new();
        }
        if run.session.has_admin_steps() {
            let actions: Vec<String> = run
                .session
                .steps
                .iter()
                .filter(|s| matches!(s, crate::session::Step::Admin { .. }))
                .map(|s| s.describe())
                .collect();
            let question = format!(
                "Run session {} ({})? It acts on the server as an admin: {}.",
                run.session.header.name,
                run.label,
                crate::text::one_line(&actions.join("; "), 160)
            );
            self.mode = Mode::ConfirmRun {
                question,
                run: Box::new(run),
            };
            return Vec::new();
        }
        self.run_session(run)
    }

    pub(super) fn run_session(&mut self, run: ReproRun) -> Vec<Effect> {
        let text = format!(
            "running {} ({} steps, {}) against the server",
            run.session.header.name,
            run.session.steps.len(),
            run.label
        );
        self.log_notice(text.clone(), Severity::Info);
        self.set_status(text, Severity::Info);
        self.running.push(run.label.clone());
        vec![Effect::RunSession(Box::new(run))]
    }

    /// A session's notice, with the frames held since its last one: after them when the
    /// session ended (`last`), before them otherwise. Into the log, and into the composer's
    /// answers when the composer started the session.
    fn repro_notice(&mut self, label: &str, text: String, severity: Severity, last: bool) {
        let notice = LogEntry::new(self.now_ms, None, None, LogKind::Notice { text, severity });
        let frames = self.repro_frames.remove(label).unwrap_or_default();
        let entries: Vec<LogEntry> = if last {
            frames.into_iter().chain([notice]).collect()
        } else {
            [notice].into_iter().chain(frames).collect()
        };
        for entry in entries {
            self.composer.answer_session(label, &entry);
            self.log.push(entry);
        }
    }

    fn log_notice(&mut self, text: String, severity: Severity) {
        self.log.push(LogEntry::new(
            self.now_ms,
            None,
            None,
            LogKind::Notice { text, severity },
        ));
    }

    pub(super) fn on_repro(&mut self, label: String, progress: ReproProgress) {
        self.dirty = true;
        match progress {
            ReproProgress::Frame(frame) => {
                // The session's connections are real peers: shown under the server's id for
                // them when the server has listed them, else under the session's name.
                let addr = frame.local_addr.to_string();
                let peer = self
                    .model
                    .peers
                    .values()
                    .find(|p| p.addr == addr)
                    .map(|p| (p.id.clone(), Some(p.dialect)));
                let (peer, dialect) = peer.unwrap_or_else(|| (frame.conn.clone(), None));
                // Held until the step they belong to is reported, so that the log reads
                // "step 3 connect", then what that connection was told.
                let entry = LogEntry::new(
                    self.now_ms,
                    Some(peer),
                    dialect,
                    LogKind::Frame {
                        direction: frame.direction,
                        text: frame.text,
                    },
                );
                let held = self.repro_frames.entry(label).or_default();
                if held.len() < REPRO_FRAMES_HELD {
                    held.push(entry);
                }
            }
            ReproProgress::Step(report) => {
                let (mark, severity, detail) = match &report.outcome {
                    Outcome::Passed(lines) => ("✓", Severity::Info, lines.join("; ")),
                    Outcome::Mismatch { expected, received } => (
                        "✗",
                        Severity::Error,
                        format!("expected {expected}; received {}", received.join("; ")),
                    ),
                    Outcome::Failed(why) => ("✗", Severity::Error, why.clone()),
                };
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", crate::text::one_line(&detail, 200))
                };
                let text = format!(
                    "{label} step {} {mark} {}{detail}",
                    report.number, report.description
                );
                self.repro_notice(&label, text, severity, false);
            }
            ReproProgress::Done(report) => {
                if let Some(at) = self.running.iter().position(|l| *l == label) {
                    self.running.remove(at);
                }
                let passed = report.steps.iter().filter(|s| s.passed()).count();
                let (text, severity) = if report.passed() {
                    (
                        format!(
                            "{label}: session {} passed ({passed} steps; codes seen: {})",
                            report.name,
                            if report.codes_seen.is_empty() {
                                "none".to_owned()
                            } else {
                                report.codes_seen.join(", ")
                            }
                        ),
                        Severity::Info,
                    )
                } else {
                    (
                        format!(
                            "{label}: session {} failed at step {} ({} passed, {} skipped)",
                            report.name,
                            report.steps.len(),
                            passed,
                            report.skipped
                        ),
                        Severity::Error,
                    )
                };
                self.repro_notice(&label, text.clone(), severity, true);
                self.set_status(text, severity);
            }
            ReproProgress::Failed(why) => {
                if let Some(at) = self.running.iter().position(|l| *l == label) {
                    self.running.remove(at);
                }
                let text = format!("{label}: {why}");
                self.repro_notice(&label, text.clone(), Severity::Error, true);
                self.set_status(text, Severity::Error);
            }
        }
    }

    pub(super) fn open_paste(&mut self) {
        self.paste = tui_textarea::TextArea::default();
        self.paste
            .set_cursor_line_style(ratatui::style::Style::default());
        self.mode = Mode::Paste;
    }

    pub(super) fn paste_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match (key.code, ctrl) {
            (KeyCode::Esc, _) => {
                self.mode = Mode::Normal;
                self.set_status("paste cancelled", Severity::Info);
            }
            (KeyCode::Char('s'), true) | (KeyCode::Char('d'), true) => self.submit_paste(),
            _ => {
                self.paste.input(key);
            }
        }
    }

    pub(super) fn pasted(&mut self, text: &str) {
        if self.mode == Mode::Paste {
            // Line by line: the editor takes a newline as a key, and a pasted `\r\n` is one.
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            self.paste.insert_str(text);
            self.dirty = true;
        }
    }

    fn submit_paste(&mut self) {
        let text = self.paste.lines().join("\n");
        let timeline = crate::catalog::timeline::timeline(&text, None);
        self.timeline = triage::correlate(&self.model, &timeline);
        self.mode = Mode::Normal;
        let count = self.timeline.events.len();
        let cut = if self.timeline.truncated {
            " (only the start was read)"
        } else {
            ""
        };
        self.set_status(
            format!(
                "{count} decoded error(s) and close(s) in {} line(s){cut}",
                self.timeline.lines
            ),
            if count == 0 {
                Severity::Warning
            } else {
                Severity::Info
            },
        );
        self.switch(View::Timeline);
    }

    /// Move in the find results or the pasted timeline.
    pub(super) fn move_in_list(&mut self, delta: isize) -> bool {
        let (selected, count) = match self.view {
            View::Find => (&mut self.find.selected, self.find.hits.len()),
            View::Timeline => (&mut self.timeline.selected, self.timeline.events.len()),
            _ => return false,
        };
        *selected = (*selected as isize)
            .saturating_add(delta)
            .clamp(0, count.saturating_sub(1) as isize) as usize;
        true
    }

    /// Enter on a find result or a timeline event: the detail of what it points at.
    pub(super) fn open_in_list(&mut self) -> bool {
        let found = match self.view {
            View::Find => self
                .find
                .hits
                .get(self.find.selected)
                .map(|h| h.found.clone()),
            View::Timeline => self
                .timeline
                .events
                .get(self.timeline.selected)
                .and_then(|e| e.matches.first())
                .map(|(found, _)| found.clone()),
            _ => return false,
        };
        match found {
            Some(Found::Peer(id)) => self.detail = Some(Detail::Peer(id)),
            Some(Found::Room(code)) => self.detail = Some(Detail::Room(code)),
            Some(Found::History(key)) => self.detail = Some(Detail::History(key)),
            None => self.set_status("nothing on this line matches a peer", Severity::Info),
        }
        self.log.anchor = None;
        true
    }
}
