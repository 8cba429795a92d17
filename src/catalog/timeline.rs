//! A player's pasted log turned into a timeline of decoded errors and closes.
//!
//! A log is whatever a support engineer was sent: client console output, lines with
//! timestamps, frames printed by an SDK, a close line from a browser. Each line is searched for
//! JSON objects (every one is offered to the decoder) and, when it has none, the line itself
//! less its timestamp is offered (close codes, HTTP statuses, code names). Only what decodes to
//! a catalogued error or close is kept, with the fields that tie it to a request, a
//! subscription, a room or a player, so it can be matched with live or historic peers.
//!
//! No I/O; bounded: at most [`MAX_LOG_BYTES`] are read and at most [`MAX_OBJECTS_PER_LINE`]
//! objects per line are tried.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::decode::{self, Decoding};
use super::{Dialect, Entry};

/// The largest log considered; a longer paste is cut here (the cut is reported).
pub const MAX_LOG_BYTES: usize = 8 << 20;

/// JSON objects tried per line; a line of a thousand objects is a dump, not a log line.
pub const MAX_OBJECTS_PER_LINE: usize = 16;

/// Fields that tie an error to what caused it, by the names the dialects use.
const CORRELATION_FIELDS: &[(&str, &str)] = &[
    ("requestId", "request"),
    ("request_id", "request"),
    ("subscription_id", "subscription"),
    ("req", "request"),
    ("room_code", "room"),
    ("room_id", "room id"),
    ("player_id", "player"),
    ("from_player", "player"),
    ("peerId", "peer"),
    ("channel", "channel"),
];

/// One decoded error or close in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// 1-based line number in the pasted log.
    pub line: usize,
    /// The timestamp the line starts with, as written.
    pub at: Option<String>,
    /// The part of the line that was decoded.
    pub input: String,
    pub decoding: Decoding,
    /// Correlation fields found in the decoded object (or its `data`), by their meaning.
    pub correlation: BTreeMap<String, String>,
}

/// What a pasted log holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub events: Vec<Event>,
    pub lines: usize,
    /// True when the log was longer than [`MAX_LOG_BYTES`] and only its start was read.
    pub truncated: bool,
}

impl Timeline {
    /// Every room code, player id, request id … mentioned, for finding the peers involved.
    pub fn correlation_values(&self) -> BTreeMap<String, Vec<String>> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for event in &self.events {
            for (name, value) in &event.correlation {
                let list = values.entry(name.clone()).or_default();
                if !list.contains(value) {
                    list.push(value.clone());
                }
            }
        }
        values
    }
}

/// Read a pasted log. `dialect` narrows the decoder's candidates, as `decode --dialect` does.
pub fn timeline(log: &str, dialect: Option<Dialect>) -> Timeline {
    let truncated = log.len() > MAX_LOG_BYTES;
    let mut end = log.len().min(MAX_LOG_BYTES);
    while !log.is_char_boundary(end) {
        end -= 1;
    }
    let log = &log[..end];
    let mut events = Vec::new();
    let mut lines = 0;
    // The dialect the surrounding lines show (a `/v2/ws` URL, a `RoomJoinFailed` frame): a
    // bare `4020` after them is that dialect's 4020, not the first dialect that has one.
    let mut context: Option<Dialect> = None;
    for (index, line) in log.lines().enumerate() {
        lines += 1;
        let (at, rest) = split_timestamp(line);
        if let Some(shown) = dialect_of_url(rest) {
            context = Some(shown);
        }
        let objects = json_objects(rest);
        let plain = objects.is_empty();
        let candidates = if plain {
            plain_candidates(rest)
        } else {
            objects
        };
        for input in candidates {
            if input.is_empty() {
                continue;
            }
            let Some(decoding) = decode_in_context(input, dialect, context) else {
                continue;
            };
            // A frame's shape names its dialect, errors and ordinary frames alike.
            if !plain {
                if let Some(shown) = decoding.dialect {
                    context = Some(shown);
                }
            }
            if decoding.best().is_none() {
                continue;
            }
            let correlation = correlation_of(input);
            events.push(Event {
                line: index + 1,
                at: at.map(str::to_owned),
                input: input.to_owned(),
                decoding,
                correlation,
            });
            // Of the ways to read a plain line, one is enough; every JSON object counts.
            if plain {
                break;
            }
        }
    }
    Timeline {
        events,
        lines,
        truncated,
    }
}

/// Decode `input` as `dialect` when one was asked for. Otherwise the decoder ranks every
/// dialect's reading, and the dialect of the surrounding lines goes first among them, unless
/// the best reading quotes the input's reason word for word (`close 4001 invalid_token` is
/// pub/sub's, whatever came before it).
fn decode_in_context(
    input: &str,
    dialect: Option<Dialect>,
    context: Option<Dialect>,
) -> Option<Decoding> {
    let mut decoding = decode::decode(input, dialect).ok()?;
    let (None, Some(context)) = (dialect, context) else {
        return Some(decoding);
    };
    let reason = decoding
        .fields
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let quotes = |entry: &Entry| !reason.is_empty() && entry.wire_text == reason;
    let best_quotes = decoding.best().is_some_and(quotes);
    if let Some(at) = decoding
        .candidates
        .iter()
        .position(|e| e.dialect == context)
        .filter(|at| *at > 0)
    {
        // The surrounding lines decide between readings the input itself does not tell
        // apart; a reason that is one dialect's own word does.
        if !best_quotes || decoding.candidates.get(at).is_some_and(|e| quotes(e)) {
            let entry = decoding.candidates.remove(at);
            decoding.candidates.insert(0, entry);
            decoding.dialect = Some(context);
        }
    }
    Some(decoding)
}

/// The dialect a WebSocket URL or path in a log line names, by the server's routes.
fn dialect_of_url(line: &str) -> Option<Dialect> {
    if line.contains("/v2/ws") || line.contains("/v3/ws") {
        Some(Dialect::SignalFish)
    } else if line.contains("/v1/ws") {
        Some(Dialect::Flow)
    } else if line.contains("?ticket=") || line.contains("/talo") {
        Some(Dialect::Talo)
    } else if line.contains("/v1?") {
        Some(Dialect::Pubsub)
    } else {
        None
    }
}

/// A leading timestamp (`2026-12-01T14:02:11.200Z`, `2026-12-01 14:02:11`, `14:02:11.200`,
/// optionally in brackets) and the rest of the line.
fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    let trimmed = line.trim_start();
    let (bracketed, body) = match trimmed.strip_prefix('[') {
        Some(inner) => (true, inner),
        None => (false, trimmed),
    };
    let length = timestamp_length(body);
    if length == 0 {
        return (None, line);
    }
    let at = &body[..length];
    let mut rest = &body[length..];
    if bracketed {
        match rest.strip_prefix(']') {
            Some(after) => rest = after,
            None => return (None, line),
        }
    }
    (Some(at), rest.trim_start())
}

/// How many bytes of `text` form a timestamp at its start (0 when none does).
fn timestamp_length(text: &str) -> usize {
    let bytes = text.as_bytes();
    let digits = |from: usize, count: usize| {
        bytes.len() >= from + count && bytes[from..from + count].iter().all(u8::is_ascii_digit)
    };
    let mut at = 0;
    // An optional date: 2026-12-01, then `T` or a space.
    if digits(0, 4)
        && bytes.get(4) == Some(&b'-')
        && digits(5, 2)
        && bytes.get(7) == Some(&b'-')
        && digits(8, 2)
    {
        at = 10;
        match bytes.get(at) {
            Some(b'T' | b' ') => at += 1,
            _ => return at,
        }
    }
    // A time: 14:02:11, then fractions and a zone.
    if !(digits(at, 2)
        && bytes.get(at + 2) == Some(&b':')
        && digits(at + 3, 2)
        && bytes.get(at + 5) == Some(&b':')
        && digits(at + 6, 2))
    {
        return if at >= 10 { 10 } else { 0 };
    }
    at += 8;
    if matches!(bytes.get(at), Some(b'.' | b',')) {
        at += 1;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
    }
    if bytes.get(at) == Some(&b'Z') {
        at += 1;
    } else if matches!(bytes.get(at), Some(b'+' | b'-')) && digits(at + 1, 2) {
        at += 3;
        if bytes.get(at) == Some(&b':') && digits(at + 1, 2) {
            at += 3;
        }
    }
    at
}

/// Where a line without JSON may say a code: the whole line, then the line from each word that
/// usually introduces a close or a status (`closed: CLOSED code=4020 …`, `error: HTTP 429`),
/// in order of preference.
fn plain_candidates(rest: &str) -> Vec<&str> {
    let rest = rest.trim();
    let mut candidates = vec![rest];
    let lower = rest.to_ascii_lowercase();
    for marker in ["closed", "close", "code=", "code ", "http ", "status"] {
        let mut from = 0;
        while let Some(offset) = lower[from..].find(marker) {
            let start = from + offset;
            if rest.is_char_boundary(start) && start > 0 {
                candidates.push(&rest[start..]);
            }
            from = start + marker.len();
        }
    }
    candidates
}

/// The complete JSON objects in a line, in order.
fn json_objects(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = line[from..].find('{') {
        if found.len() >= MAX_OBJECTS_PER_LINE {
            break;
        }
        let start = from + offset;
        let mut stream = serde_json::Deserializer::from_str(&line[start..])
            .into_iter::<&serde_json::value::RawValue>();
        match stream.next() {
            Some(Ok(raw)) => {
                let end = start + stream.byte_offset();
                found.push(raw.get());
                from = end;
            }
            _ => from = start + 1,
        }
    }
    found
}

fn correlation_of(input: &str) -> BTreeMap<String, String> {
    let mut correlation = BTreeMap::new();
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(input) else {
        return correlation;
    };
    let data = object.get("data").and_then(Value::as_object);
    for (field, meaning) in CORRELATION_FIELDS {
        let value = object
            .get(*field)
            .or_else(|| data.and_then(|d| d.get(*field)));
        let text = match value {
            Some(Value::String(text)) if !text.is_empty() => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::Object(inner)) => match inner.get("id") {
                Some(Value::String(id)) => id.clone(),
                Some(Value::Number(id)) => id.to_string(),
                _ => continue,
            },
            _ => continue,
        };
        correlation
            .entry((*meaning).to_owned())
            .or_insert_with(|| crate::text::one_line(&text, 128));
    }
    correlation
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PASTE: &str = r#"[14:01:58.010] connecting to wss://game.example/v2/ws
[14:01:58.200] <- {"type":"Authenticated","data":{"app_name":"Demo"}}
2026-12-01T14:02:03.120Z <- {"type":"RoomJoinFailed","data":{"reason":"Room is full","error_code":"ROOM_FULL"}} (room_code 7KQ2PX)
14:02:09 pubsub <- {"type":"error","requestId":"p-17","code":"channel_not_authorized","message":"not authorized: x"}
14:02:11.5 WebSocket closed: CLOSED code=4020 reason='admin_disconnect'
just a sentence with 429 in it
"#;

    #[test]
    fn a_pasted_log_becomes_a_timeline_of_errors_and_closes() {
        let timeline = timeline(PASTE, None);
        assert_eq!(timeline.lines, 6);
        assert!(!timeline.truncated);
        let summary: Vec<(usize, Option<&str>, String)> = timeline
            .events
            .iter()
            .map(|e| {
                (
                    e.line,
                    e.at.as_deref(),
                    e.decoding.best().unwrap().qualified(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    3,
                    Some("2026-12-01T14:02:03.120Z"),
                    "signal-fish:ROOM_FULL".to_owned()
                ),
                (
                    4,
                    Some("14:02:09"),
                    "pubsub:channel_not_authorized".to_owned()
                ),
                (5, Some("14:02:11.5"), "pubsub:4020".to_owned()),
            ]
        );
        assert_eq!(
            timeline.events[1]
                .correlation
                .get("request")
                .map(String::as_str),
            Some("p-17")
        );
        assert_eq!(
            timeline.correlation_values().get("request"),
            Some(&vec!["p-17".to_owned()])
        );
    }

    #[test]
    fn a_bare_close_code_takes_the_dialect_of_the_lines_around_it() {
        let log = "12:00:00 connecting to wss://game.example/v2/ws\n\
                   12:00:01 {\"type\":\"RoomJoined\",\"data\":{\"room_code\":\"ABC123\"}}\n\
                   12:00:09 closed: 4020\n";
        let timeline = timeline(log, None);
        let event = timeline.events.last().unwrap();
        assert_eq!(
            event.decoding.best().unwrap().qualified(),
            "signal-fish:4020"
        );
        // Without the surrounding lines, the code alone is pub/sub's.
        let alone = timeline_of_one("12:00:09 closed: 4020");
        assert_eq!(alone.decoding.best().unwrap().qualified(), "pubsub:4020");
        // Asked for explicitly, a dialect wins over the context.
        // A reason that is one dialect's own word keeps that dialect.
        let quoted = super::timeline(
            "12:00:00 wss://game.example/v2/ws\n12:00:09 close 4001 invalid_token",
            None,
        );
        assert_eq!(
            quoted.events[0].decoding.best().unwrap().qualified(),
            "pubsub:4001"
        );
        let asked = super::timeline(log, Some(Dialect::Pubsub));
        assert_eq!(
            asked
                .events
                .last()
                .unwrap()
                .decoding
                .best()
                .unwrap()
                .qualified(),
            "pubsub:4020"
        );
    }

    fn timeline_of_one(line: &str) -> Event {
        timeline(line, None).events.remove(0)
    }

    #[test]
    fn timestamps_are_recognised_in_the_usual_spellings() {
        for (line, at) in [
            (
                "2026-12-01T14:02:03.120Z x",
                Some("2026-12-01T14:02:03.120Z"),
            ),
            ("2026-12-01 14:02:03,5 x", Some("2026-12-01 14:02:03,5")),
            ("[14:02:03] x", Some("14:02:03")),
            ("14:02:03+01:00 x", Some("14:02:03+01:00")),
            ("1402 x", None),
            ("[not a time] x", None),
        ] {
            assert_eq!(split_timestamp(line).0, at, "{line}");
        }
    }

    #[test]
    fn hostile_pastes_stay_bounded() {
        let many = "{}".repeat(10_000);
        assert!(json_objects(&many).len() <= MAX_OBJECTS_PER_LINE);
        let nested = format!("{}{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
        let _ = timeline(&nested, None);
        let _ = timeline("\u{feff}[99:99:99] {\"type\":", None);
    }
}
