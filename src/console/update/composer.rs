//! The composer's side of the update: its keys, sending (through the admin link or the plain
//! client), recording the exchange, and opening a log line in it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::catalog::Severity;
use crate::console::app::{App, Effect, Mode, View};
use crate::console::composer::{Dispatch, Target};
use crate::console::log::LogKind;
use crate::protocol::admin::{Command, Direction, InjectTarget};

impl App {
    /// `e` on a log line: a frame a peer sent opens in the composer as that peer; an error
    /// opens the template that reproduces its code.
    pub(super) fn edit_selected(&mut self) {
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
        let Some(entry) = self
            .log
            .current(peer.as_deref(), self.tables.filter(View::Log))
        else {
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
                self.composer.target = Target::Peer(peer.clone());
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

    pub(super) fn composer_key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
        // A template of several connections, or with answers to capture, runs as the
        // session it comes from; the replay engine fills its placeholders.
        if let Some(template) = self.composer.template_session() {
            let run = crate::console::app::ReproRun {
                label: format!("template {}", template.name),
                session: template.session.clone(),
            };
            // Its connections are its own, not the probe's: the answers pane follows it.
            self.composer.watching = None;
            self.composer.session_answers = Some((run.label.clone(), Vec::new()));
            return self.start_session(run);
        }
        match self.composer.dispatch() {
            Err(problem) => {
                self.set_status(problem, Severity::Warning);
                Vec::new()
            }
            Ok(Dispatch::Direct { url, frames }) => {
                self.set_status(
                    format!("sending {} frame(s) to {url}", frames.len()),
                    Severity::Info,
                );
                vec![Effect::Direct { url, frames }]
            }
            Ok(Dispatch::Admin(commands)) => {
                let mut commands = commands.into_iter();
                let Some(first) = commands.next() else {
                    return Vec::new();
                };
                // Frames as an existing peer act on a real client's session: ask first, as
                // for every other action on a live peer.
                if let Target::Peer(peer) | Target::Client(peer) = &self.composer.target {
                    let frames = commands.len();
                    let who = self
                        .model
                        .peer(peer)
                        .map(|p| {
                            format!(
                                "{}, {}",
                                p.dialect,
                                p.identity.as_deref().unwrap_or("anonymous")
                            )
                        })
                        .unwrap_or_else(|| "not listed".to_owned());
                    self.mode = Mode::Confirm {
                        question: if matches!(self.composer.target, Target::Client(_)) {
                            format!(
                                "Send {frames} frame(s) to {peer}'s client ({who})? It takes them as if its server sent them, and {peer} is tapped."
                            )
                        } else {
                            format!(
                                "Send {frames} frame(s) as peer {peer} ({who})? The server handles them as if {peer} sent them, and taps it."
                            )
                        },
                        command: first,
                    };
                    self.confirm_then = commands.collect();
                    return Vec::new();
                }
                let opens_probe = matches!(
                    &first,
                    Command::Inject {
                        target: InjectTarget::Probe { .. },
                        ..
                    }
                );
                let mut effects = self.send(first);
                if opens_probe {
                    self.probe_request = effects.iter().find_map(|e| match e {
                        Effect::Send(envelope) => Some(envelope.id),
                        _ => None,
                    });
                    self.probe_queue = commands.collect();
                    return effects;
                }
                for command in commands {
                    effects.extend(self.send(command));
                }
                effects
            }
        }
    }

    /// The composer's probe exchange as a session file.
    pub(super) fn record(&mut self, name: &str) -> Vec<Effect> {
        if !super::triage::valid_session_name(name) {
            self.set_status(super::triage::SESSION_NAME_RULE, Severity::Warning);
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
}
