//! The composer: edit a frame (or a JSON array of frames), check it is JSON, and send it
//! through a new probe connection of a dialect, as an existing peer, or to any WebSocket URL
//! with a plain client. What comes back is shown decoded, and the exchange can be saved as a
//! session file that `relaydeck replay` runs.
//!
//! Templates are the shipped reproduction sessions (`sessions/`, embedded at build time): the
//! frames a session sends, in order, for every code a client can trigger.

use serde_json::Value;
use tui_textarea::TextArea;

use crate::catalog::{Dialect, Entry};
use crate::protocol::admin::{Command, InjectTarget};
use crate::protocol::routes::dialect_path;
use crate::session::{Header, Session, Step, FORMAT_VERSION};

include!(concat!(env!("OUT_DIR"), "/session_templates.rs"));

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new connection of a dialect, opened by the server against itself.
    Probe { dialect: Dialect, query: String },
    /// Handled as if this peer had sent it.
    Peer(String),
    /// Sent to this peer's client as if the server (or a proxy's upstream) had sent it.
    Client(String),
    /// Any WebSocket server, through a plain client of this console.
    Url(String),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Probe { dialect, query } if query.is_empty() => format!("new {dialect} probe"),
            Target::Probe { dialect, query } => format!("new {dialect} probe ?{query}"),
            Target::Peer(peer) => format!("as peer {peer}"),
            Target::Client(peer) => format!("to {peer}'s client"),
            Target::Url(url) => format!("plain client to {url}"),
        }
    }

    /// Parse `probe pubsub key=pk_demo`, `peer p3`, `client p3`, `url ws://host:7878/v1?key=…`.
    pub fn parse(words: &[&str]) -> Result<Target, String> {
        match words {
            ["probe", dialect, rest @ ..] => {
                let dialect: Dialect = dialect
                    .parse()
                    .map_err(|e: crate::catalog::UnknownDialect| e.to_string())?;
                dialect_path(dialect)?;
                Ok(Target::Probe {
                    dialect,
                    query: rest.join("&"),
                })
            }
            ["peer", peer] => Ok(Target::Peer((*peer).to_owned())),
            ["client", peer] => Ok(Target::Client((*peer).to_owned())),
            ["url", url] if url.starts_with("ws://") || url.starts_with("wss://") => {
                Ok(Target::Url((*url).to_owned()))
            }
            _ => Err(
                "target: probe <dialect> [query] | peer <id> | client <id> | url ws://…".to_owned(),
            ),
        }
    }
}

/// A template: the frames a shipped session sends to reproduce its codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub codes: Vec<String>,
    pub dialect: Dialect,
    /// The path of the session's first connection (with its query), for a probe.
    pub query: String,
    pub frames: Vec<Value>,
    /// The whole session: what runs when the frames alone cannot (several connections,
    /// placeholders filled from earlier answers).
    pub session: Session,
}

impl Template {
    /// Connections the session opens.
    pub fn connections(&self) -> usize {
        self.session
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Connect { .. }))
            .count()
    }
}

/// Every shipped session, parsed.
pub fn shipped_sessions() -> Vec<Session> {
    SESSION_TEMPLATES
        .iter()
        .filter_map(|(name, text)| Session::parse(text, name).ok())
        .collect()
}

fn code_matches(listed: &str, asked: &str) -> bool {
    listed.eq_ignore_ascii_case(asked)
        || listed
            .split_once(':')
            .is_some_and(|(_, bare)| bare.eq_ignore_ascii_case(asked))
}

/// The shipped session that reproduces `code` (bare or qualified), the first in name order.
pub fn session_for(code: &str) -> Option<Session> {
    shipped_sessions()
        .into_iter()
        .find(|s| s.header.expect_codes.iter().any(|c| code_matches(c, code)))
}

/// The codes shipped sessions reproduce, bare, for completion.
pub fn session_codes() -> Vec<String> {
    let mut codes: Vec<String> = shipped_sessions()
        .iter()
        .flat_map(|s| s.header.expect_codes.clone())
        .map(|c| c.split_once(':').map(|(_, b)| b.to_owned()).unwrap_or(c))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

pub fn templates() -> Vec<Template> {
    SESSION_TEMPLATES
        .iter()
        .filter_map(|(name, text)| {
            let session = Session::parse(text, name).ok()?;
            let query = session.steps.iter().find_map(|s| match s {
                Step::Connect { path, .. } => Some(
                    path.split_once('?')
                        .map(|(_, q)| q.to_owned())
                        .unwrap_or_default(),
                ),
                _ => None,
            })?;
            let frames: Vec<Value> = session
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Send {
                        frame: Some(frame), ..
                    } => Some(frame.clone()),
                    Step::Send {
                        text: Some(text), ..
                    } => Some(Value::String(text.clone())),
                    _ => None,
                })
                .collect();
            (!frames.is_empty()).then(|| Template {
                name: session.header.name.clone(),
                codes: session.header.expect_codes.clone(),
                dialect: session.header.dialect,
                query,
                frames,
                session,
            })
        })
        .collect()
}

pub struct Composer {
    pub editor: TextArea<'static>,
    pub target: Target,
    /// Why the text is not sendable, or None when it is.
    pub problem: Option<String>,
    pub templates: Vec<Template>,
    pub template: Option<usize>,
    /// The peer whose frames answer what was sent (the probe, or the injected-as peer).
    pub watching: Option<String>,
    /// Replies to a plain client, which never pass through the admin log.
    pub direct_replies: Vec<DirectReply>,
    /// What was sent, in order, for recording as a session.
    pub sent: Vec<Value>,
    /// A template run as a session (several connections): its label and what it reported,
    /// shown as the answers.
    pub session_answers: Option<(String, Vec<super::log::LogEntry>)>,
    /// The editor's text as the selected template left it, to tell an edit from the template.
    template_text: Option<String>,
}

/// A reply to the plain client, decoded when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectReply {
    pub text: String,
    pub decoded: Option<&'static Entry>,
}

impl DirectReply {
    pub fn new(text: String) -> DirectReply {
        let decoded = crate::catalog::decode::decode(&text, None)
            .ok()
            .and_then(|d| d.best());
        DirectReply { text, decoded }
    }
}

/// What the composer asks the console to do when sending.
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    Admin(Vec<Command>),
    Direct { url: String, frames: Vec<String> },
}

impl Default for Composer {
    fn default() -> Self {
        Composer::new()
    }
}

/// Entries a template's session keeps for the answers pane; older ones stay in the log.
const SESSION_ANSWERS_KEPT: usize = 500;

impl Composer {
    /// Keep `entry` as an answer when the composer started the session `label`.
    pub fn answer_session(&mut self, label: &str, entry: &super::log::LogEntry) {
        if let Some((running, entries)) = self.session_answers.as_mut() {
            if running == label {
                if entries.len() >= SESSION_ANSWERS_KEPT {
                    entries.remove(0);
                }
                entries.push(entry.clone());
            }
        }
    }

    pub fn new() -> Composer {
        let mut composer = Composer {
            editor: TextArea::default(),
            target: Target::Probe {
                dialect: Dialect::Pubsub,
                query: "key=pk_demo".to_owned(),
            },
            problem: None,
            templates: templates(),
            template: None,
            watching: None,
            direct_replies: Vec::new(),
            sent: Vec::new(),
            session_answers: None,
            template_text: None,
        };
        composer.set_text(
            r#"{"type":"publish","channel":"other-app/room-1","data":1,"requestId":"pub-2"}"#,
        );
        composer
    }

    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }

    pub fn set_text(&mut self, text: &str) {
        self.editor = TextArea::from(text.lines().map(str::to_owned).collect::<Vec<_>>());
        // The cursor is enough to show where typing goes; a highlighted line only adds noise.
        self.editor
            .set_cursor_line_style(ratatui::style::Style::default());
        self.validate();
    }

    /// The frames to send: one JSON object, or a JSON array of frames (strings are sent raw).
    pub fn frames(&self) -> Result<Vec<String>, String> {
        let text = self.text();
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        Ok(match value {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(raw) => raw,
                    other => other.to_string(),
                })
                .collect(),
            other => vec![other.to_string()],
        })
    }

    pub fn validate(&mut self) {
        self.problem = self.frames().err();
    }

    pub fn pretty_print(&mut self) {
        if let Ok(value) = serde_json::from_str::<Value>(&self.text()) {
            if let Ok(pretty) = serde_json::to_string_pretty(&value) {
                self.set_text(&pretty);
            }
        }
    }

    /// Load the next template (or the previous, with `back`) into the editor and target.
    pub fn cycle_template(&mut self, back: bool) -> Option<&Template> {
        if self.templates.is_empty() {
            return None;
        }
        let count = self.templates.len();
        let next = match (self.template, back) {
            (None, false) => 0,
            (None, true) => count - 1,
            (Some(i), false) => (i + 1) % count,
            (Some(i), true) => (i + count - 1) % count,
        };
        self.template = Some(next);
        let template = self.templates[next].clone();
        let text = if template.frames.len() == 1 {
            serde_json::to_string_pretty(&template.frames[0]).unwrap_or_default()
        } else {
            serde_json::to_string_pretty(&Value::Array(template.frames.clone())).unwrap_or_default()
        };
        self.set_text(&text);
        self.template_text = Some(self.text());
        self.target = Target::Probe {
            dialect: template.dialect,
            query: template.query.clone(),
        };
        self.templates.get(next)
    }

    /// The selected template's whole session, when the editor still holds that template and
    /// its frames cannot be sent one by one through a probe: several connections, or
    /// placeholders only earlier answers fill.
    pub fn template_session(&self) -> Option<&Template> {
        let template = self.templates.get(self.template?)?;
        let unchanged = self.template_text.as_deref() == Some(self.text().as_str());
        let needs_session = template.connections() > 1 || self.text().contains("${");
        (unchanged && needs_session && matches!(self.target, Target::Probe { .. }))
            .then_some(template)
    }

    /// Select the template reproducing `code` (bare or qualified).
    pub fn template_for(&mut self, code: &str) -> bool {
        let found = self
            .templates
            .iter()
            .position(|t| t.codes.iter().any(|c| code_matches(c, code)));
        match found {
            Some(index) => {
                self.template = Some((index + self.templates.len() - 1) % self.templates.len());
                self.cycle_template(false);
                true
            }
            None => false,
        }
    }

    /// What sending the editor's frames takes; the frames are remembered for recording.
    pub fn dispatch(&mut self) -> Result<Dispatch, String> {
        let frames = self.frames()?;
        if frames.iter().any(|f| f.contains("${")) {
            return Err(
                "the frames still contain ${…} placeholders from the template; fill them in first"
                    .to_owned(),
            );
        }
        self.sent.extend(
            frames
                .iter()
                .map(|f| serde_json::from_str(f).unwrap_or(Value::String(f.clone()))),
        );
        Ok(match &self.target {
            Target::Url(url) => {
                self.direct_replies.clear();
                Dispatch::Direct {
                    url: url.clone(),
                    frames,
                }
            }
            Target::Peer(peer) => {
                self.watching = Some(peer.clone());
                let mut commands = vec![Command::Tap {
                    peer: peer.clone(),
                    on: true,
                }];
                commands.extend(frames.into_iter().map(|frame| Command::Inject {
                    target: InjectTarget::Peer { peer: peer.clone() },
                    frame,
                }));
                Dispatch::Admin(commands)
            }
            Target::Client(peer) => {
                self.watching = Some(peer.clone());
                let mut commands = vec![Command::Tap {
                    peer: peer.clone(),
                    on: true,
                }];
                commands.extend(frames.into_iter().map(|frame| Command::Inject {
                    target: InjectTarget::ToClient { peer: peer.clone() },
                    frame,
                }));
                Dispatch::Admin(commands)
            }
            Target::Probe { dialect, query } => {
                let mut frames = frames.into_iter();
                let first = frames.next().unwrap_or_default();
                let mut commands = vec![Command::Inject {
                    target: InjectTarget::Probe {
                        dialect: *dialect,
                        query: query.clone(),
                    },
                    frame: first,
                }];
                // The rest go through the same probe once its id is known (see `probe_opened`).
                commands.extend(frames.map(|frame| Command::Inject {
                    target: InjectTarget::ExistingProbe {
                        peer: String::new(),
                    },
                    frame,
                }));
                Dispatch::Admin(commands)
            }
        })
    }

    /// The exchange so far as a session: connect (for a probe), every frame sent, and an
    /// expectation for every error code that came back.
    pub fn to_session(&self, name: &str, codes_seen: &[String]) -> Result<Session, String> {
        let Target::Probe { dialect, query } = &self.target else {
            return Err(
                "only a probe exchange can be recorded: a session opens its own connection"
                    .to_owned(),
            );
        };
        if self.sent.is_empty() {
            return Err("nothing was sent yet".to_owned());
        }
        let path = dialect_path(*dialect)?;
        let path = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let mut steps = vec![Step::Connect {
            conn: "a".into(),
            path,
            headers: Default::default(),
            expect_status: None,
        }];
        for frame in &self.sent {
            let (frame, text) = match frame {
                Value::String(raw) => (None, Some(raw.clone())),
                other => (Some(other.clone()), None),
            };
            steps.push(Step::Send {
                conn: "a".into(),
                frame,
                text,
                repeat: None,
                pad_to: None,
                binary: false,
            });
        }
        for code in codes_seen {
            steps.push(Step::Expect {
                conn: "a".into(),
                code: Some(code.clone()),
                matches: None,
                capture: Default::default(),
                timeout_ms: None,
            });
        }
        Ok(Session {
            header: Header {
                session: FORMAT_VERSION,
                name: name.to_owned(),
                description: format!("Recorded in the console: {}", self.target.describe()),
                dialect: *dialect,
                expect_codes: codes_seen.to_vec(),
                upstream: None,
            },
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_session_with_frames_is_a_template() {
        let templates = templates();
        assert!(templates.len() > 80, "only {} templates", templates.len());
        assert!(templates.iter().all(|t| !t.frames.is_empty()));
    }

    #[test]
    fn validation_catches_bad_json_and_accepts_sequences() {
        let mut composer = Composer::new();
        composer.set_text("{\"type\":");
        assert!(composer.problem.as_deref().unwrap().starts_with("not JSON"));
        composer.set_text(r#"[{"type":"Ping"}, "v1.heartbeat"]"#);
        assert_eq!(composer.problem, None);
        assert_eq!(
            composer.frames().unwrap(),
            vec![r#"{"type":"Ping"}"#.to_owned(), "v1.heartbeat".to_owned()]
        );
        composer.set_text(r#"{"a":1}"#);
        composer.pretty_print();
        assert_eq!(composer.text(), "{\n  \"a\": 1\n}");
    }

    #[test]
    fn templates_load_by_code_and_refuse_unfilled_placeholders() {
        let mut composer = Composer::new();
        assert!(composer.template_for("channel_not_authorized"));
        assert_eq!(
            composer.target,
            Target::Probe {
                dialect: Dialect::Pubsub,
                query: "key=pk_demo".into()
            }
        );
        assert!(composer.dispatch().is_ok());
        assert!(composer.template_for("ROOM_FULL"));
        assert!(composer.dispatch().unwrap_err().contains("placeholders"));
    }

    #[test]
    fn dispatch_by_target() {
        let mut composer = Composer::new();
        composer.target = Target::Peer("p3".into());
        let Dispatch::Admin(commands) = composer.dispatch().unwrap() else {
            panic!()
        };
        assert_eq!(
            commands[0],
            Command::Tap {
                peer: "p3".into(),
                on: true
            }
        );
        assert!(
            matches!(&commands[1], Command::Inject { target: InjectTarget::Peer { peer }, .. } if peer == "p3")
        );
        composer.target = Target::parse(&["client", "p3"]).unwrap();
        let Dispatch::Admin(commands) = composer.dispatch().unwrap() else {
            panic!()
        };
        assert!(
            matches!(&commands[1], Command::Inject { target: InjectTarget::ToClient { peer }, .. } if peer == "p3")
        );
        composer.target = Target::Url("ws://127.0.0.1:9/v1".into());
        assert!(matches!(
            composer.dispatch().unwrap(),
            Dispatch::Direct { .. }
        ));
        assert_eq!(
            Target::parse(&["probe", "signal-fish"]).unwrap(),
            Target::Probe {
                dialect: Dialect::SignalFish,
                query: String::new()
            }
        );
        assert!(Target::parse(&["probe", "talo-http"]).is_err());
    }

    #[test]
    fn a_probe_exchange_records_as_a_replayable_session() {
        let mut composer = Composer::new();
        composer.dispatch().unwrap();
        let session = composer
            .to_session("mine", &["pubsub:channel_not_authorized".to_owned()])
            .unwrap();
        let again = Session::parse(&session.to_jsonl(), "mine").unwrap();
        assert_eq!(again, session);
        assert!(
            matches!(&session.steps[0], Step::Connect { path, .. } if path == "/v1?key=pk_demo")
        );
        composer.target = Target::Peer("p1".into());
        assert!(composer.to_session("x", &[]).is_err());
    }
}
