//! Replays the frames recorded from the real signal-fish-server
//! (`tests/fixtures/signal-fish-v2-frames.log`) against relaydeck over real sockets: every
//! server frame must come back byte for byte once ids, room codes and timestamps are mapped
//! onto the recorded ones, and every recorded close must carry the same code and reason. One
//! difference is deliberate and tolerated: relaydeck's extra `reconnection_token` at the end of
//! RoomJoined.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use futures_util::StreamExt;
use relaydeck::server::config::{AppConfig, Config};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Keys whose values the real server generates afresh on every run.
const GENERATED_KEYS: [&str; 7] = [
    "room_id",
    "room_code",
    "player_id",
    "id",
    "spectator_id",
    "from_player",
    "connected_at",
];

enum Step {
    Send { text: String },
    Frame { text: String },
    Closed { code: u16, reason: String },
}

fn reference_log() -> Vec<(String, Step)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/signal-fish-v2-frames.log");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut steps = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('[')) {
        let (label, rest) = line.split_once("] ").unwrap();
        let label = label.trim_start_matches('[').to_owned();
        if let Some(frame) = rest.strip_prefix(">> ") {
            steps.push((label, Step::Send { text: frame.into() }));
        } else if let Some(close) = rest.strip_prefix("<< CLOSED code=") {
            let (code, reason) = close.split_once(" reason=").unwrap();
            let reason = reason.trim_matches('\'').to_owned();
            let code = code.parse().unwrap();
            steps.push((label, Step::Closed { code, reason }));
        } else if let Some(frame) = rest.strip_prefix("<< ") {
            steps.push((label, Step::Frame { text: frame.into() }));
        } else {
            panic!("unreadable log line: {line}");
        }
    }
    steps
}

/// The recorded server's app and limits: `my-game`, 60 messages a minute.
fn recorded_config() -> Config {
    let mut config = Config::demo();
    config.signal_fish.messages_per_minute = 60;
    let template = config
        .apps
        .iter()
        .find(|app| app.id == "demo")
        .cloned()
        .unwrap();
    config.apps.push(AppConfig {
        id: "my-game".into(),
        name: "My Awesome Game".into(),
        ..template
    });
    config
}

/// The next text frame, as the exact text the server sent.
async fn recv_text(socket: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Close(frame) => panic!("expected a frame, got close {frame:?}"),
            _ => continue,
        }
    }
}

/// Learns, for every generated value, which recorded value it stands for. One observed value
/// always stands for the same recorded value and the other way round, so a server that mixes
/// up two players fails here.
#[derive(Default)]
struct IdMap {
    observed_to_recorded: HashMap<String, String>,
    recorded_to_observed: HashMap<String, String>,
}

impl IdMap {
    fn pair(&mut self, observed: &str, recorded: &str) {
        let known = self
            .observed_to_recorded
            .entry(observed.to_owned())
            .or_insert_with(|| recorded.to_owned());
        assert_eq!(known, recorded, "{observed} stands for two recorded values");
        let known = self
            .recorded_to_observed
            .entry(recorded.to_owned())
            .or_insert_with(|| observed.to_owned());
        assert_eq!(
            known, observed,
            "{recorded} is answered by two observed values"
        );
    }

    fn learn(&mut self, key: Option<&str>, observed: &Value, recorded: &Value) {
        match (observed, recorded) {
            (Value::Object(o), Value::Object(r)) => {
                for (k, rv) in r {
                    if let Some(ov) = o.get(k) {
                        self.learn(Some(k), ov, rv);
                    }
                }
            }
            (Value::Array(o), Value::Array(r)) => {
                for (ov, rv) in o.iter().zip(r) {
                    self.learn(key, ov, rv);
                }
            }
            (Value::String(o), Value::String(r)) => {
                let generated =
                    key.is_some_and(|k| GENERATED_KEYS.contains(&k) || k == "ready_players");
                if generated {
                    self.pair(o, r);
                }
            }
            _ => {}
        }
    }

    /// The observed text with each generated value replaced by its recorded counterpart.
    fn rewrite(&self, observed: &str) -> String {
        replace_quoted(observed, &self.observed_to_recorded)
    }

    /// A recorded client frame aimed at this run's rooms and players.
    fn aim(&self, recorded: &str) -> String {
        replace_quoted(recorded, &self.recorded_to_observed)
    }
}

fn replace_quoted(text: &str, map: &HashMap<String, String>) -> String {
    // Longest first, so that no value is rewritten inside a longer one.
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let mut text = text.to_owned();
    for (from, to) in pairs {
        text = text.replace(&format!("\"{from}\""), &format!("\"{to}\""));
    }
    text
}

/// relaydeck appends its reconnection token to RoomJoined; the real server has none.
fn without_reconnection_token(text: &str) -> String {
    match text.find(",\"reconnection_token\":\"") {
        Some(start) => {
            let value_start = start + ",\"reconnection_token\":\"".len();
            let end = value_start + text[value_start..].find('"').unwrap() + 1;
            format!("{}{}", &text[..start], &text[end..])
        }
        None => text.to_owned(),
    }
}

#[tokio::test]
async fn the_recorded_session_gets_the_recorded_frames() {
    let server = TestServer::start(recorded_config()).await;
    let mut sockets: BTreeMap<String, Socket> = BTreeMap::new();
    let mut closed: Vec<String> = Vec::new();
    let mut ids = IdMap::default();
    let mut compared = 0;

    for (label, step) in reference_log() {
        if !sockets.contains_key(&label) {
            sockets.insert(label.clone(), server.connect("/v2/ws").await);
        }
        let socket = sockets.get_mut(&label).unwrap();
        match step {
            Step::Send { text } => send_text(socket, &ids.aim(&text)).await,
            Step::Frame { text: recorded } => {
                let observed = without_reconnection_token(&recv_text(socket).await);
                let observed_value: Value = serde_json::from_str(&observed).unwrap();
                let recorded_value: Value = serde_json::from_str(&recorded).unwrap();
                // Printed only when the test fails: which frame broke the id mapping.
                eprintln!("[{label}] observed {observed}\n[{label}] recorded {recorded}");
                ids.learn(None, &observed_value, &recorded_value);
                assert_eq!(
                    ids.rewrite(&observed),
                    recorded,
                    "[{label}] differs from the real server"
                );
                compared += 1;
            }
            Step::Closed { code, reason } => {
                assert_eq!(recv_close(socket).await, (code, reason), "[{label}]");
                closed.push(label);
            }
        }
    }
    assert!(compared >= 40, "only {compared} frames compared");

    // Nothing beyond the recorded frames is waiting on any open socket: a Ping's Pong must be
    // the very next frame.
    for (label, socket) in sockets.iter_mut() {
        if closed.contains(label) {
            continue;
        }
        send_text(socket, r#"{"type":"Ping"}"#).await;
        assert_eq!(recv_text(socket).await, r#"{"type":"Pong"}"#, "[{label}]");
    }
}

#[tokio::test]
async fn v3_accepts_the_same_v2_frames() {
    let server = TestServer::start(recorded_config()).await;
    let mut socket = server.connect("/v3/ws").await;
    send_text(
        &mut socket,
        r#"{"type": "Authenticate", "data": {"app_id": "my-game"}}"#,
    )
    .await;
    assert_eq!(
        recv_text(&mut socket).await,
        r#"{"type":"Authenticated","data":{"app_name":"My Awesome Game","rate_limits":{"per_minute":60,"per_hour":3600,"per_day":86400}}}"#
    );
    assert!(recv_text(&mut socket)
        .await
        .starts_with(r#"{"type":"ProtocolInfo","data":{"capabilities":"#));
    send_text(&mut socket, "{not json").await;
    assert_eq!(
        recv_text(&mut socket).await,
        r#"{"type":"Error","data":{"message":"Invalid client message","error_code":"INVALID_INPUT"}}"#
    );
}
