//! A session file from the flight recorder: what a peer went through, as steps that replay it.
//!
//! [`export`] is pure: it takes the recorded frames of the peer (and of the other connections
//! its failure needed, such as the players already in a room that was full) and writes
//! - a `connect` per connection, with the path and query it upgraded with, placed before the
//!   connection's first frame;
//! - a `send` per inbound frame;
//! - an `expect` per answer that matters: every error (by `code`), every answer carrying a
//!   value the server generated that a later frame sends back (`capture`d, and the later frame
//!   says `${name}` instead), and the first answer after each `send` or `connect` (by a small
//!   `match` on its `type` or `res`; after a frame with a `requestId`, the answer carrying it;
//!   never a pub/sub notice another connection caused meanwhile, such as presence), which keeps
//!   the connections in step:
//!   a connection's next `send` waits until the server answered what came before it on
//!   another connection;
//! - the end: for a peer kicked with 4020 an `admin` kick step (before the kick's notice), then
//!   `expect_close` with the code the peer was closed with; a peer that closed itself, `close`.
//!
//! Frames of all connections are interleaved in the order the server recorded them (a
//! server-wide sequence, not a clock, so two frames in the same millisecond keep their order).
//! Other connections contribute only their frames recorded before the peer's last frame; one
//! that closed before then is closed from the client side where it closed (by the clock, to the
//! millisecond), so that a player who reconnects finds its seat free as it did.
//!
//! A generated value is recognised without knowing the dialect: a string in an answer that no
//! earlier inbound frame contained and that a later inbound frame sends (a Signal Fish room
//! code, room id, player id or reconnection token, a pub/sub peer id).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

use super::{Header, Session, Step, FORMAT_VERSION};
use crate::catalog::decode::decode;
use crate::catalog::Dialect;
use crate::protocol::admin::{Direction, RecordedFrame};

/// One recorded frame and its place in the server-wide recording order.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: u64,
    pub frame: RecordedFrame,
}

/// One connection to replay.
#[derive(Debug, Clone)]
pub struct Participant {
    /// The hub's peer id; it names the connection in the session.
    pub peer: String,
    pub dialect: Dialect,
    /// The upgrade's path and query (`/v2/ws`, `/v1?key=pk_demo`).
    pub path: String,
    pub frames: Vec<Recorded>,
    /// `Some` once the peer closed: the close code sent, if any, and the reason.
    pub closed: Option<(Option<u16>, String)>,
    /// When it closed (a history entry's `closed_at_ms`).
    pub closed_at_ms: Option<u64>,
}

/// The error a dialect sends before its admin kick close (Signal Fish's `Error KICKED`).
const KICK_NOTICE: &str = "KICKED";

/// Strings shorter than this are never taken for generated values (`"2"`, `"ok"`).
const MIN_GENERATED_LEN: usize = 4;

struct Event<'a> {
    /// The order: the recording sequence, then closes before frames of the same sequence.
    key: (u64, u8),
    conn: &'a str,
    dialect: Dialect,
    /// `None`: the connection closes here.
    frame: Option<&'a RecordedFrame>,
    is_target: bool,
}

/// Build the session reproducing what `target` went through; `others` are the connections the
/// failure needed.
pub fn export(target: &Participant, others: &[Participant]) -> Result<Session, String> {
    if target.path.is_empty() {
        return Err(format!(
            "{} has no recorded upgrade path; the flight recorder was off when it connected",
            target.peer
        ));
    }
    let cutoff = target.frames.last().map_or(u64::MAX, |f| f.seq);
    let mut events: Vec<Event> = Vec::new();
    let mut participants: Vec<&Participant> = Vec::new();
    for other in others {
        let before: Vec<&Recorded> = other.frames.iter().filter(|f| f.seq < cutoff).collect();
        if before.is_empty() || other.path.is_empty() {
            continue;
        }
        participants.push(other);
        events.extend(before.iter().map(|f| Event {
            key: (f.seq, 1),
            conn: &other.peer,
            dialect: other.dialect,
            frame: Some(&f.frame),
            is_target: false,
        }));
    }
    participants.push(target);
    events.extend(target.frames.iter().map(|f| Event {
        key: (f.seq, 1),
        conn: &target.peer,
        dialect: target.dialect,
        frame: Some(&f.frame),
        is_target: true,
    }));
    // Others that closed before the peer's last frame close where they closed: before the
    // first frame recorded after that millisecond, and after their own last frame.
    let mut closes = Vec::new();
    for other in &participants[..participants.len() - 1] {
        let (Some(closed_at), Some(last)) = (
            other.closed_at_ms,
            other.frames.iter().rfind(|f| f.seq < cutoff),
        ) else {
            continue;
        };
        let next = events
            .iter()
            .filter(|e| e.frame.is_some_and(|f| f.at_ms > closed_at))
            .map(|e| e.key.0)
            .min();
        let Some(next) = next else { continue };
        closes.push(Event {
            key: (next.max(last.seq + 1), 0),
            conn: &other.peer,
            dialect: other.dialect,
            frame: None,
            is_target: false,
        });
    }
    events.extend(closes);
    events.sort_by_key(|e| e.key);

    let generated = generated_values(&events);
    let last_target_in = events
        .iter()
        .rposition(|e| e.is_target && e.frame.is_some_and(|f| f.direction == Direction::In));
    let kicked = matches!(target.closed, Some((Some(4020), _)));

    let mut steps = Vec::new();
    let mut connected: HashSet<&str> = HashSet::new();
    // Connections whose next answer is the reply to what they last did, and the request id
    // that reply carries when the frame had one (pub/sub's `requestId`): what other
    // connections cause in between (a presence notice, a channel message) comes in an order
    // no replay can count on, so it is not the reply.
    let mut awaiting_reply: HashMap<&str, Option<String>> = HashMap::new();
    let mut variables: HashMap<String, String> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut codes: Vec<String> = Vec::new();
    let mut kick_sent = false;
    // A connection without frames before the cut still has to exist (the target always does).
    for participant in &participants {
        if !events.iter().any(|e| e.conn == participant.peer) {
            steps.push(connect_step(participant));
            connected.insert(&participant.peer);
            awaiting_reply.insert(&participant.peer, None);
        }
    }
    for (index, event) in events.iter().enumerate() {
        if connected.insert(event.conn) {
            if let Some(participant) = participants.iter().find(|p| p.peer == event.conn) {
                steps.push(connect_step(participant));
            }
            awaiting_reply.insert(event.conn, None);
        }
        let Some(frame) = event.frame else {
            steps.push(Step::Close {
                conn: event.conn.to_owned(),
                code: None,
            });
            continue;
        };
        let text = frame.text.as_str();
        match frame.direction {
            Direction::In => {
                steps.push(send_step(event.conn, text, &variables));
                awaiting_reply.insert(event.conn, request_id(text));
            }
            Direction::Out => {
                let error = error_code(text, event.dialect);
                let after_last_in = last_target_in.is_none_or(|last| index > last);
                if kicked
                    && event.is_target
                    && !kick_sent
                    && after_last_in
                    && error.as_deref() == Some(KICK_NOTICE)
                {
                    steps.push(kick_step(event.conn));
                    kick_sent = true;
                }
                let value = serde_json::from_str::<Value>(text).ok();
                let mut capture = BTreeMap::new();
                if let Some(value) = &value {
                    for (pointer, found) in strings_of(value) {
                        if generated.contains(found.as_str()) && !variables.contains_key(&found) {
                            let name = variable_name(event.conn, &pointer, &mut names);
                            variables.insert(found.clone(), name.clone());
                            capture.insert(name, pointer);
                        }
                    }
                }
                let reply = !is_notice(value.as_ref(), event.dialect)
                    && match awaiting_reply.get(event.conn) {
                        Some(Some(id)) => request_id(text).as_ref() == Some(id),
                        Some(None) => true,
                        None => false,
                    };
                if reply {
                    awaiting_reply.remove(event.conn);
                }
                if let Some(code) = error {
                    if event.is_target {
                        codes.push(format!("{}:{code}", event.dialect));
                    }
                    steps.push(Step::Expect {
                        conn: event.conn.to_owned(),
                        code: Some(code),
                        matches: None,
                        capture,
                        timeout_ms: None,
                    });
                } else if !capture.is_empty() || reply {
                    let matches = value.as_ref().and_then(key_of);
                    if matches.is_none() && capture.is_empty() {
                        continue;
                    }
                    steps.push(Step::Expect {
                        conn: event.conn.to_owned(),
                        code: None,
                        matches: Some(matches.unwrap_or_else(|| json!({}))),
                        capture,
                        timeout_ms: None,
                    });
                }
            }
        }
    }
    match &target.closed {
        Some((Some(code), reason)) => {
            if kicked && !kick_sent {
                steps.push(kick_step(&target.peer));
            }
            let entry = crate::catalog::close(target.dialect, *code);
            if entry.is_some_and(|e| e.severity() != crate::catalog::Severity::Info) {
                codes.push(format!("{}:{code}", target.dialect));
            }
            steps.push(Step::ExpectClose {
                conn: target.peer.clone(),
                code: *code,
                // Only a catalogued reason is stable from one run to the next.
                reason: entry
                    .filter(|e| e.wire_text == reason)
                    .map(|e| e.wire_text.to_owned()),
                timeout_ms: None,
            });
        }
        Some((None, reason)) if reason.starts_with("closed by the client") => {
            steps.push(Step::Close {
                conn: target.peer.clone(),
                code: None,
            });
        }
        _ => {}
    }
    // The order of first appearance is the order the replay meets them in.
    let mut seen = std::collections::HashSet::new();
    codes.retain(|code| seen.insert(code.clone()));
    let connections = participants.len();
    Ok(Session {
        header: Header {
            session: FORMAT_VERSION,
            name: format!("export of {} ({})", target.peer, target.dialect),
            description: format!(
                "Exported from the flight recorder: what {} went through{}.",
                target.peer,
                if connections > 1 {
                    format!(", with the {} other connections it needed", connections - 1)
                } else {
                    String::new()
                }
            ),
            dialect: target.dialect,
            expect_codes: codes,
            upstream: None,
        },
        steps,
    })
}

fn connect_step(participant: &Participant) -> Step {
    // A Flow stream needs a credential, and the one the peer used is not recorded: the
    // replay presents its own target's admin token.
    let headers = if participant.dialect == Dialect::Flow {
        BTreeMap::from([(
            "Authorization".to_owned(),
            crate::session::replay::ADMIN_BEARER.to_owned(),
        )])
    } else {
        BTreeMap::new()
    };
    Step::Connect {
        conn: participant.peer.clone(),
        path: participant.path.clone(),
        headers,
        expect_status: None,
    }
}

fn kick_step(conn: &str) -> Step {
    Step::Admin {
        command: json!({"command": "kick", "peer": format!("${{peer:{conn}}}")}),
        expect_ok: None,
        capture: BTreeMap::new(),
    }
}

fn send_step(conn: &str, text: &str, variables: &HashMap<String, String>) -> Step {
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            substitute(&mut value, variables);
            Step::Send {
                conn: conn.to_owned(),
                frame: Some(value),
                text: None,
                repeat: None,
                pad_to: None,
                binary: false,
            }
        }
        Err(_) => {
            let mut text = text.to_owned();
            for (found, name) in variables {
                text = text.replace(found.as_str(), &format!("${{{name}}}"));
            }
            Step::Send {
                conn: conn.to_owned(),
                frame: None,
                text: Some(text),
                repeat: None,
                pad_to: None,
                binary: false,
            }
        }
    }
}

/// The error code a frame carries, as the catalog knows it.
fn error_code(text: &str, dialect: Dialect) -> Option<String> {
    let decoding = decode(text, Some(dialect)).ok()?;
    if decoding.not_an_error.is_some() {
        return None;
    }
    decoding.best().map(|entry| entry.code.to_owned())
}

/// Whether a frame is one the server sends on its own (what another connection did), never the
/// answer to this connection's request: a replay meets those in no order it can count on.
fn is_notice(value: Option<&Value>, dialect: Dialect) -> bool {
    let kind = value.and_then(|v| v.get("type")).and_then(Value::as_str);
    match (dialect, kind) {
        (Dialect::Pubsub, Some(kind)) => crate::protocol::pubsub::NOTICE_TYPES.contains(&kind),
        _ => false,
    }
}

/// The id a frame correlates its answer by (pub/sub's `requestId`), if it has one.
fn request_id(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("requestId")?.as_str().map(str::to_owned)
}

/// The small match that recognises an answer: its `type` (Signal Fish, pub/sub) or `res`
/// (Talo).
fn key_of(value: &Value) -> Option<Value> {
    ["type", "res"].into_iter().find_map(|key| {
        value
            .get(key)
            .filter(|v| v.is_string())
            .map(|v| json!({ key: v }))
    })
}

/// Strings in answers that the client sends back later without having sent them before.
fn generated_values(events: &[Event]) -> HashSet<String> {
    let mut seen_in: HashSet<String> = HashSet::new();
    let mut offered: HashSet<String> = HashSet::new();
    let mut generated = HashSet::new();
    for frame in events.iter().filter_map(|e| e.frame) {
        let Ok(value) = serde_json::from_str::<Value>(&frame.text) else {
            continue;
        };
        let strings = strings_of(&value);
        match frame.direction {
            Direction::Out => {
                for (_, found) in strings {
                    if found.len() >= MIN_GENERATED_LEN && !seen_in.contains(&found) {
                        offered.insert(found);
                    }
                }
            }
            Direction::In => {
                for (_, found) in strings {
                    if offered.contains(&found) {
                        generated.insert(found.clone());
                    }
                    seen_in.insert(found);
                }
            }
        }
    }
    generated
}

/// Every string in a JSON value with its JSON pointer.
fn strings_of(value: &Value) -> Vec<(String, String)> {
    fn walk(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(s) => out.push((pointer, s.clone())),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{pointer}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    walk(item, format!("{pointer}/{escaped}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn variable_name(conn: &str, pointer: &str, names: &mut HashSet<String>) -> String {
    let last = pointer.rsplit('/').next().unwrap_or("value");
    let clean: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let base = format!("{conn}_{clean}");
    let mut name = base.clone();
    let mut n = 2;
    while !names.insert(name.clone()) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// Put `${name}` where a frame sends back a captured value.
fn substitute(value: &mut Value, variables: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(name) = variables.get(s.as_str()) {
                *s = format!("${{{name}}}");
            } else if s.contains("${") {
                // A literal `${` would be read as a variable on replay; it cannot be escaped
                // in the format, so it is broken up.
                *s = s.replace("${", "$ {");
            } else {
                for (found, name) in variables {
                    if found.len() >= 6 && s.contains(found.as_str()) {
                        *s = s.replace(found.as_str(), &format!("${{{name}}}"));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, variables)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, variables)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(seq: u64, direction: Direction, text: &str) -> Recorded {
        Recorded {
            seq,
            frame: RecordedFrame {
                at_ms: seq,
                direction,
                text: text.to_owned(),
            },
        }
    }

    /// The `expect` steps of `peer`'s export, described.
    fn expectations(peer: &Participant) -> Vec<String> {
        export(peer, &[])
            .unwrap()
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Expect { .. }))
            .map(Step::describe)
            .collect()
    }

    #[test]
    fn a_room_full_export_replays_the_players_before_it_with_captures() {
        use Direction::{In, Out};
        let auth = r#"{"type":"Authenticate","data":{"app_id":"demo"}}"#;
        let alice = Participant {
            peer: "p1".into(),
            dialect: Dialect::SignalFish,
            path: "/v2/ws".into(),
            frames: vec![
                frame(1, In, auth),
                frame(
                    2,
                    Out,
                    r#"{"type":"Authenticated","data":{"app_name":"Demo"}}"#,
                ),
                frame(
                    3,
                    In,
                    r#"{"type":"JoinRoom","data":{"game_name":"demo","player_name":"Alice","max_players":1}}"#,
                ),
                frame(
                    4,
                    Out,
                    r#"{"type":"RoomJoined","data":{"room_code":"ABC123","player_id":"x1"}}"#,
                ),
            ],
            closed: None,
            closed_at_ms: None,
        };
        let bob = Participant {
            peer: "p2".into(),
            dialect: Dialect::SignalFish,
            path: "/v2/ws".into(),
            frames: vec![
                frame(5, In, auth),
                frame(
                    6,
                    Out,
                    r#"{"type":"Authenticated","data":{"app_name":"Demo"}}"#,
                ),
                frame(
                    7,
                    In,
                    r#"{"type":"JoinRoom","data":{"game_name":"demo","room_code":"ABC123","player_name":"Bob"}}"#,
                ),
                frame(
                    8,
                    Out,
                    r#"{"type":"RoomJoinFailed","data":{"reason":"Room is full","error_code":"ROOM_FULL"}}"#,
                ),
            ],
            closed: Some((None, "closed by the client".into())),
            closed_at_ms: Some(9),
        };
        let session = export(&bob, &[alice]).unwrap();
        let text = session.to_jsonl();
        assert!(
            text.contains(r#""capture":{"p1_room_code":"/data/room_code"}"#),
            "{text}"
        );
        assert!(text.contains(r#""room_code":"${p1_room_code}""#), "{text}");
        assert!(text.contains(r#""code":"ROOM_FULL""#), "{text}");
        assert!(
            !text.contains("x1"),
            "player ids nobody sends back are not captured"
        );
        assert_eq!(session.header.expect_codes, ["signal-fish:ROOM_FULL"]);
        assert!(matches!(session.steps.first(), Some(Step::Connect { conn, .. }) if conn == "p1"));
        assert!(matches!(session.steps.last(), Some(Step::Close { conn, .. }) if conn == "p2"));
        let parsed = Session::parse(&text, "export").unwrap();
        assert_eq!(parsed, session);
    }

    #[test]
    fn a_kicked_peer_gets_an_admin_step_before_the_notice() {
        use Direction::{In, Out};
        let peer = Participant {
            peer: "p4".into(),
            dialect: Dialect::SignalFish,
            path: "/v2/ws".into(),
            frames: vec![
                frame(1, In, r#"{"type":"Authenticate","data":{"app_id":"demo"}}"#),
                frame(
                    2,
                    Out,
                    r#"{"type":"Authenticated","data":{"app_name":"Demo"}}"#,
                ),
                frame(
                    3,
                    Out,
                    r#"{"type":"Error","data":{"message":"bye","error_code":"KICKED"}}"#,
                ),
            ],
            closed: Some((Some(4020), "admin_disconnect".into())),
            closed_at_ms: Some(4),
        };
        let session = export(&peer, &[]).unwrap();
        let kinds: Vec<String> = session.steps.iter().map(Step::describe).collect();
        let admin = kinds.iter().position(|k| k.starts_with("admin")).unwrap();
        let notice = kinds.iter().position(|k| k.contains("KICKED")).unwrap();
        assert!(admin < notice, "{kinds:?}");
        assert!(matches!(
            session.steps.last(),
            Some(Step::ExpectClose { code: 4020, .. })
        ));
    }

    #[test]
    fn the_reply_to_a_request_is_the_frame_carrying_its_id() {
        use Direction::{In, Out};
        let peer = Participant {
            peer: "p7".into(),
            dialect: Dialect::Pubsub,
            path: "/v1?key=pk_demo".into(),
            frames: vec![
                frame(1, Out, r#"{"type":"welcome","peerId":"peer-1"}"#),
                frame(
                    2,
                    In,
                    r#"{"type":"subscribe","channel":"demo/lobby","requestId":"r1"}"#,
                ),
                // Another chatter joined meanwhile: not something a replay meets in order.
                frame(
                    3,
                    Out,
                    r#"{"type":"presence","channel":"demo/lobby","joined":["peer-9"]}"#,
                ),
                frame(4, Out, r#"{"type":"ack","requestId":"r1"}"#),
            ],
            closed: Some((None, "closed by the client".into())),
            closed_at_ms: Some(5),
        };
        let expected = expectations(&peer);
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert!(expected[0].contains("welcome"), "{expected:?}");
        assert!(expected[1].contains("ack"), "{expected:?}");
    }

    #[test]
    fn without_a_request_id_a_notice_is_still_not_the_reply() {
        use Direction::{In, Out};
        let peer = Participant {
            peer: "p1".into(),
            dialect: Dialect::Pubsub,
            path: "/v1?key=pk_demo".into(),
            frames: vec![
                frame(1, Out, r#"{"type":"welcome","peerId":"peer-1"}"#),
                frame(2, In, r#"{"type":"subscribe","channel":"demo/room-0"}"#),
                // A demo chatter joined the room between the subscribe and its ack.
                frame(
                    3,
                    Out,
                    r#"{"type":"presence","channel":"demo/room-0","joined":["peer-9"]}"#,
                ),
                frame(4, Out, r#"{"type":"ack"}"#),
                frame(
                    5,
                    Out,
                    r#"{"type":"message","channel":"demo/room-0","from":"peer-9","data":1}"#,
                ),
            ],
            closed: Some((None, "closed by the client".into())),
            closed_at_ms: Some(6),
        };
        let expected = expectations(&peer);
        assert_eq!(expected.len(), 2, "{expected:?}");
        assert!(expected[1].contains("ack"), "{expected:?}");
    }
}
