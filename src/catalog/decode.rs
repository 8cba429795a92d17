//! Turn what a person pastes into catalog entries.
//!
//! # Accepted input
//! ```text
//! {"res":"v1.error","data":{…,"errorCode":"NO_PLAYER_FOUND"}}      Talo socket error frame
//! {"type":"RoomJoinFailed","data":{"reason":…,"error_code":…}}      Signal Fish (Error, RoomJoinFailed,
//!                                                                   AuthenticationError, ReconnectionFailed,
//!                                                                   SpectatorJoinFailed, AuthorityResponse)
//! {"subscription_id":"s1","error":{"code":404,"message":…},"action":"unsubscribe"}   Flow
//! {"type":"error","requestId":"pub-2","code":"channel_not_authorized",…}             pub/sub
//! {"message":…,"errorCode":"MISSING_SESSION"}  {"errors":{…}}                          Talo HTTP bodies
//! 4020 | close 4020 admin_disconnect | 1008 RATE_LIMIT_EXCEEDED | CLOSED code=1000 reason='x'
//! 429 Retry-After: 60 | HTTP/1.1 401 Unauthorized … | 403 Forbidden - { message: '…' }
//! ROOM_FULL | pubsub:4020 | subscription not found                  a code name, optionally qualified
//! ```
//! A prefix before a JSON frame (`[A] << `, a log timestamp) is ignored. JSON5 object literals
//! (`{ message: 'x' }`, as API docs write them) are accepted too.
//!
//! # Errors
//! Input that is none of the above, or an error of a known shape whose code is not in the
//! catalog, is a [`DecodeError`] with a sentence saying what was understood. Nothing here
//! panics, whatever the input.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Delivery, Dialect, Entry};

/// What the input was understood to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    Frame,
    Close,
    Http,
    /// A bare code name such as `ROOM_FULL`.
    Code,
}

/// The result of decoding one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decoding {
    pub kind: InputKind,
    /// The dialect of the frame's shape, or of the best candidate.
    pub dialect: Option<Dialect>,
    /// The code as it appears in the input (`ROOM_FULL`, `4020`, `429`, a Flow message).
    pub code: Option<String>,
    /// Matching entries, most likely first. Empty for frames that are not errors.
    #[serde(serialize_with = "serialize_entries")]
    pub candidates: Vec<&'static Entry>,
    /// Fields that correlate the error with what caused it: `requestId`, `subscription_id`,
    /// `req`, `cause`, `Retry-After`, `reason`, `message`, `action`, `errors`, …
    pub fields: BTreeMap<String, Value>,
    /// Set when the input is a recognised frame that is not an error, saying what it is.
    pub not_an_error: Option<String>,
}

impl Decoding {
    /// The most likely entry.
    pub fn best(&self) -> Option<&'static Entry> {
        self.candidates.first().copied()
    }
}

fn serialize_entries<S: serde::Serializer>(
    entries: &[&'static Entry],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(entries.iter().copied())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("nothing to decode: the input is empty")]
    Empty,
    #[error("{0}")]
    Unrecognised(String),
    /// A known shape carrying a code the catalog does not have.
    #[error("{} code {code:?} is not in the catalog{}", dialect.display_name(), hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    UnknownCode {
        dialect: Dialect,
        code: String,
        hint: Option<String>,
    },
    /// `--dialect` excluded every candidate.
    #[error("{input_code} is not a {dialect} code; it is known in: {}", known_in.join(", "))]
    NotInDialect {
        input_code: String,
        dialect: Dialect,
        known_in: Vec<String>,
    },
}

/// Longest input considered. Pastes beyond this are log dumps, not one frame; refusing them
/// keeps the decoder's cost bounded.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// JSON5 parsing recurses per nesting level; deeper inputs are only tried as strict JSON,
/// whose parser has its own depth limit.
const MAX_JSON5_DEPTH: usize = 64;

const UNRECOGNISED_HELP: &str =
    "expected a JSON frame, a close code (`close 4020 admin_disconnect`), \
an HTTP status (`429 Retry-After: 60`) or a code name (`ROOM_FULL`)";

/// Decode one input. `dialect` narrows the candidates (`--dialect`).
pub fn decode(input: &str, dialect: Option<Dialect>) -> Result<Decoding, DecodeError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DecodeError::Empty);
    }
    if text.len() > MAX_INPUT_BYTES {
        return Err(DecodeError::Unrecognised(format!(
            "input is {} bytes; paste one frame (at most {} bytes)",
            text.len(),
            MAX_INPUT_BYTES
        )));
    }
    let decoding = if let Some(http) = parse_http(text) {
        decode_http(http)?
    } else if let Some(close) = parse_close(text) {
        decode_close(close)
    } else if let Some(value) = parse_json_object(text) {
        decode_frame(&value)?
    } else if let Some(decoding) = decode_code_name(text) {
        decoding
    } else {
        return Err(DecodeError::Unrecognised(format!(
            "could not recognise {:?}: {UNRECOGNISED_HELP}",
            abbreviate(text, 60)
        )));
    };
    narrow(decoding, dialect)
}

fn narrow(mut decoding: Decoding, dialect: Option<Dialect>) -> Result<Decoding, DecodeError> {
    let Some(wanted) = dialect else {
        return Ok(decoding);
    };
    if decoding.candidates.is_empty() {
        return Ok(decoding);
    }
    let in_dialect: Vec<&'static Entry> = decoding
        .candidates
        .iter()
        .copied()
        .filter(|e| e.dialect == wanted)
        .collect();
    let kept = if in_dialect.is_empty() && decoding.kind == InputKind::Close {
        // A dialect without its own meaning for a close code uses the RFC 6455 one.
        decoding
            .candidates
            .iter()
            .copied()
            .filter(|e| e.dialect == Dialect::Websocket)
            .collect()
    } else {
        in_dialect
    };
    if kept.is_empty() {
        let mut known_in: Vec<String> = decoding.candidates.iter().map(|e| e.qualified()).collect();
        known_in.dedup();
        return Err(DecodeError::NotInDialect {
            input_code: decoding.code.unwrap_or_default(),
            dialect: wanted,
            known_in,
        });
    }
    decoding.candidates = kept;
    decoding.dialect = decoding.best().map(|e| e.dialect);
    Ok(decoding)
}

// ---------------------------------------------------------------------------------------------
// Close codes
// ---------------------------------------------------------------------------------------------

struct CloseInput {
    code: u16,
    reason: Option<String>,
}

/// `4020`, `close 4020 admin_disconnect`, `1008 RATE_LIMIT_EXCEEDED`, `close: 4011 (rate)`,
/// `CLOSED code=1000 reason='unregistered'`, `code=4001 reason=invalid_token`.
fn parse_close(text: &str) -> Option<CloseInput> {
    if text.contains('\n') || text.starts_with('{') {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut offset = 0;
    for prefix in ["websocket", "ws", "closed", "close", "frame"] {
        if let Some(r) = rest.strip_prefix(prefix) {
            offset += prefix.len();
            rest = r;
            let trimmed = rest.trim_start_matches([' ', ':', '\t', '-']);
            offset += rest.len() - trimmed.len();
            rest = trimmed;
        }
    }
    if let Some(r) = rest.strip_prefix("code") {
        let trimmed = r.trim_start_matches([' ', '=', ':']);
        offset += rest.len() - trimmed.len();
        rest = trimmed;
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits != 4 {
        return None;
    }
    let code: u16 = rest[..digits].parse().ok()?;
    if !(1000..=4999).contains(&code) {
        return None;
    }
    let after = &text[offset + digits..];
    if after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut reason = after.trim();
    if let Some(r) = reason.strip_prefix("reason") {
        reason = r.trim_start_matches([' ', '=', ':']);
    }
    let reason = reason
        .trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, ':' | '-' | '(' | ')' | '\'' | '"' | ',')
        })
        .to_owned();
    Some(CloseInput {
        code,
        reason: (!reason.is_empty()).then_some(reason),
    })
}

fn decode_close(close: CloseInput) -> Decoding {
    let mut candidates: Vec<&'static Entry> = super::all()
        .filter(|e| e.close_code() == Some(close.code))
        .collect();
    let reason_matches = |e: &Entry| {
        close.reason.as_deref().is_some_and(|reason| {
            let reason = normalise_words(reason);
            let wire = normalise_words(e.wire_text);
            let title = normalise_words(e.title);
            (!wire.is_empty() && wire == reason) || title == reason
        })
    };
    // Stable sort: a matching reason wins; without one, the RFC meaning of a 1000–1015 code is
    // the likeliest, otherwise table order (which puts documented dialects first). Among
    // equals, a close a system's own error page names comes before one another dialect also
    // sends (4020 admin_disconnect is pub/sub's, and relaydeck sends it in every dialect).
    candidates.sort_by_key(|e| {
        (
            !reason_matches(e),
            close.reason.is_some() || e.dialect != Dialect::Websocket,
            e.seed().is_none() && e.code == "4020",
        )
    });
    let mut fields = BTreeMap::new();
    if let Some(reason) = &close.reason {
        fields.insert("reason".to_owned(), Value::String(reason.clone()));
    }
    Decoding {
        kind: InputKind::Close,
        dialect: candidates.first().map(|e| e.dialect),
        code: Some(close.code.to_string()),
        candidates,
        fields,
        not_an_error: None,
    }
}

fn normalise_words(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| match c {
            '_' | '-' | ' ' => ' ',
            other => other.to_ascii_lowercase(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// HTTP statuses
// ---------------------------------------------------------------------------------------------

struct HttpInput {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    raw_body: Option<String>,
}

/// `429`, `429 Retry-After: 60`, `HTTP/1.1 401 Unauthorized` plus header lines and a body,
/// `401 {"message":…}`, `403 Forbidden - { message: '…' }`.
fn parse_http(text: &str) -> Option<HttpInput> {
    let mut lines = text.lines();
    let first = lines.next()?.trim();
    let mut rest_of_first = first;
    if let Some(r) = first.strip_prefix("HTTP/") {
        rest_of_first = r.split_once(' ')?.1.trim_start();
    }
    let digits = rest_of_first
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    if digits != 3 {
        return None;
    }
    let status: u16 = rest_of_first[..digits].parse().ok()?;
    if !(100..=599).contains(&status) {
        return None;
    }
    let after_status = &rest_of_first[digits..];
    if after_status.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut headers = Vec::new();
    let mut body_text: Option<String> = None;
    if let Some(brace) = after_status.find('{') {
        body_text = Some(after_status[brace..].to_owned());
    } else if let Some(header) = parse_header(after_status.trim()) {
        headers.push(header);
    }
    let mut in_body = false;
    let mut body_lines: Vec<&str> = Vec::new();
    for line in lines {
        if in_body {
            body_lines.push(line);
        } else if line.trim().is_empty() {
            in_body = true;
        } else if let Some(header) = parse_header(line.trim()) {
            headers.push(header);
        } else {
            in_body = true;
            body_lines.push(line);
        }
    }
    if !body_lines.is_empty() {
        let joined = body_lines.join("\n");
        body_text = Some(match body_text {
            Some(first_part) => format!("{first_part}\n{joined}"),
            None => joined,
        });
    }
    let body = body_text.as_deref().and_then(parse_json_object);
    Some(HttpInput {
        status,
        headers,
        body,
        raw_body: body_text
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty()),
    })
}

fn parse_header(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid_name.then(|| (name.to_owned(), value.trim().to_owned()))
}

fn decode_http(http: HttpInput) -> Result<Decoding, DecodeError> {
    let mut fields = BTreeMap::new();
    fields.insert("status".to_owned(), Value::from(http.status));
    for (name, value) in &http.headers {
        if name.eq_ignore_ascii_case("retry-after") {
            fields.insert("Retry-After".to_owned(), Value::String(value.clone()));
        } else if name.to_ascii_lowercase().starts_with("x-talo-") {
            fields.insert(name.to_ascii_lowercase(), Value::String(value.clone()));
        }
    }
    let body = http.body.as_ref().and_then(Value::as_object);
    if let Some(body) = body {
        copy_field(body, "message", &mut fields);
        copy_field(body, "errorCode", &mut fields);
        copy_field(body, "errors", &mut fields);
    } else if let Some(raw) = &http.raw_body {
        fields.insert("body".to_owned(), Value::String(raw.clone()));
    }
    let error_code = body
        .and_then(|b| b.get("errorCode"))
        .and_then(Value::as_str);
    let status_text = http.status.to_string();
    let code = error_code.unwrap_or(&status_text).to_owned();

    let mut candidates: Vec<&'static Entry> = Vec::new();
    if let Some(error_code) = error_code {
        candidates.extend(
            super::of_dialect(Dialect::TaloHttp)
                .filter(|e| e.code == error_code && e.status == Some(http.status)),
        );
        if candidates.is_empty() {
            return Err(DecodeError::UnknownCode {
                dialect: Dialect::TaloHttp,
                code: error_code.to_owned(),
                hint: Some(format!("with HTTP {}", http.status)),
            });
        }
    } else {
        candidates.extend(
            super::of_dialect(Dialect::TaloHttp)
                .filter(|e| e.code == status_text && e.status == Some(http.status)),
        );
        if candidates.is_empty() {
            // Flow reports its errors with HTTP status numbers inside frames; a bare 404 or 500
            // most likely came from there.
            candidates.extend(super::of_dialect(Dialect::Flow).filter(|e| {
                e.status == Some(http.status)
                    && body
                        .and_then(|b| b.get("message"))
                        .and_then(Value::as_str)
                        .is_none_or(|m| flow_message_matches(e, m))
            }));
        }
        if candidates.is_empty() {
            return Err(DecodeError::Unrecognised(format!(
                "HTTP {} is not a status any documented dialect uses for an error",
                http.status
            )));
        }
    }
    Ok(Decoding {
        kind: InputKind::Http,
        dialect: candidates.first().map(|e| e.dialect),
        code: Some(code),
        candidates,
        fields,
        not_an_error: None,
    })
}

// ---------------------------------------------------------------------------------------------
// JSON frames
// ---------------------------------------------------------------------------------------------

/// A JSON object, from the first `{` on (a log prefix before it is ignored), as strict JSON or,
/// failing that, JSON5.
fn parse_json_object(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let prefix = &text[..start];
    if prefix.len() > 80 || prefix.contains('\n') {
        return None;
    }
    let candidate = text[start..].trim();
    if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(candidate) {
        return Some(value);
    }
    if nesting_depth(candidate) > MAX_JSON5_DEPTH {
        return None;
    }
    match json5::from_str::<Value>(candidate) {
        Ok(value @ Value::Object(_)) => Some(value),
        _ => None,
    }
}

/// An upper bound of the nesting depth (brackets inside strings count too).
fn nesting_depth(text: &str) -> usize {
    let mut depth: usize = 0;
    let mut deepest = 0;
    for byte in text.bytes() {
        match byte {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The Signal Fish message types that carry an `error_code`, and the field holding the text.
const SIGNAL_FISH_ERROR_TYPES: [(&str, &str); 6] = [
    ("Error", "message"),
    ("RoomJoinFailed", "reason"),
    ("AuthenticationError", "error"),
    ("ReconnectionFailed", "reason"),
    ("SpectatorJoinFailed", "reason"),
    ("AuthorityResponse", "reason"),
];

/// Every other message type Signal Fish (v2 and v3) defines, client and server.
const SIGNAL_FISH_OTHER_TYPES: [&str; 41] = [
    "Authenticate",
    "JoinRoom",
    "LeaveRoom",
    "GameData",
    "AuthorityRequest",
    "PlayerReady",
    "StartGame",
    "Ping",
    "Reconnect",
    "JoinAsSpectator",
    "LeaveSpectator",
    "Authenticated",
    "ProtocolInfo",
    "RoomJoined",
    "RoomLeft",
    "PlayerJoined",
    "PlayerLeft",
    "AuthorityChanged",
    "LobbyStateChanged",
    "GameStarting",
    "Pong",
    "Reconnected",
    "PlayerReconnected",
    "SpectatorJoined",
    "SpectatorLeft",
    "NewSpectatorJoined",
    "SpectatorDisconnected",
    "ProvideConnectionInfo",
    "GameDataBinary",
    "RoomClosed",
    "Kicked",
    "Signal",
    "NewPeer",
    "SessionPlan",
    "RoomOperation",
    "TransportStatus",
    "PeerTransportStatus",
    "RelayStats",
    "GoingAway",
    "DeliveryReport",
    "RoomOperationResult",
];

/// pub/sub message types other than `error`.
const PUBSUB_TYPES: [&str; 11] = [
    "welcome",
    "ack",
    "message",
    "direct",
    "presence",
    "subscribe",
    "unsubscribe",
    "publish",
    "send",
    "ping",
    "pong",
];

fn decode_frame(value: &Value) -> Result<Decoding, DecodeError> {
    let Some(object) = value.as_object() else {
        return Err(DecodeError::Unrecognised(
            "a JSON value that is not an object is not a frame of any dialect".to_owned(),
        ));
    };
    if let Some(res) = object.get("res").and_then(Value::as_str) {
        return decode_talo_response(res, object);
    }
    if let Some(req) = object.get("req").and_then(Value::as_str) {
        return Ok(not_an_error(
            Dialect::Talo,
            format!("a Talo socket request ({req}), sent by a client"),
        ));
    }
    if let Some(kind) = object.get("type").and_then(Value::as_str) {
        if let Some(decoding) = decode_signal_fish(kind, object)? {
            return Ok(decoding);
        }
        if let Some(decoding) = decode_pubsub(kind, object)? {
            return Ok(decoding);
        }
    }
    if object.contains_key("error") || object.contains_key("action") || object.contains_key("topic")
    {
        if let Some(decoding) = decode_flow(object)? {
            return Ok(decoding);
        }
    }
    if object.contains_key("errorCode") || object.contains_key("errors") {
        return decode_talo_http_body(object);
    }
    if let Some(message) = object.get("message").and_then(Value::as_str) {
        if message.starts_with("Missing access key scope(s)") {
            return decode_talo_http_body(object);
        }
    }
    Err(DecodeError::Unrecognised(format!(
        "a JSON object with keys {} matches no dialect's frame shape",
        object
            .keys()
            .take(8)
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn not_an_error(dialect: Dialect, what: String) -> Decoding {
    Decoding {
        kind: InputKind::Frame,
        dialect: Some(dialect),
        code: None,
        candidates: Vec::new(),
        fields: BTreeMap::new(),
        not_an_error: Some(what),
    }
}

fn copy_field(object: &Map<String, Value>, key: &str, fields: &mut BTreeMap<String, Value>) {
    if let Some(value) = object.get(key).filter(|v| !v.is_null()) {
        fields.insert(key.to_owned(), value.clone());
    }
}

fn frame_decoding(
    dialect: Dialect,
    code: &str,
    fields: BTreeMap<String, Value>,
) -> Result<Decoding, DecodeError> {
    let entry = super::of_dialect(dialect)
        .find(|e| e.code == code && e.delivery == Delivery::Frame)
        .or_else(|| super::get(dialect, code))
        .ok_or_else(|| DecodeError::UnknownCode {
            dialect,
            code: code.to_owned(),
            hint: None,
        })?;
    Ok(Decoding {
        kind: InputKind::Frame,
        dialect: Some(dialect),
        code: Some(code.to_owned()),
        candidates: vec![entry],
        fields,
        not_an_error: None,
    })
}

fn decode_talo_response(res: &str, object: &Map<String, Value>) -> Result<Decoding, DecodeError> {
    if res != "v1.error" {
        return Ok(not_an_error(
            Dialect::Talo,
            format!("a Talo socket response ({res})"),
        ));
    }
    let data = object.get("data").and_then(Value::as_object);
    let mut fields = BTreeMap::new();
    if let Some(data) = data {
        for key in ["req", "message", "cause"] {
            copy_field(data, key, &mut fields);
        }
    }
    let code = data
        .and_then(|d| d.get("errorCode"))
        .and_then(Value::as_str);
    match code {
        Some(code) => frame_decoding(Dialect::Talo, code, fields),
        None => Err(DecodeError::Unrecognised(
            "a Talo v1.error frame without data.errorCode".to_owned(),
        )),
    }
}

fn decode_signal_fish(
    kind: &str,
    object: &Map<String, Value>,
) -> Result<Option<Decoding>, DecodeError> {
    let data = object.get("data").and_then(Value::as_object);
    // Refusals of correlated v3 operations (room_operation_ids) travel inside the
    // operation's result: OperationFailed, or the join and reconnection refusals.
    let failed_operation = data
        .and_then(|d| d.get("result"))
        .and_then(Value::as_object)
        .filter(|result| {
            matches!(
                result.get("type").and_then(Value::as_str),
                Some(
                    "OperationFailed"
                        | "RoomJoinFailed"
                        | "ReconnectionFailed"
                        | "SpectatorJoinFailed"
                )
            )
        });
    if let (Some(result), true) = (failed_operation, kind == "RoomOperationResult") {
        let mut fields = BTreeMap::new();
        fields.insert("type".to_owned(), Value::String(kind.to_owned()));
        if let Some(data) = data {
            copy_field(data, "operation_id", &mut fields);
        }
        let inner = result.get("data").and_then(Value::as_object);
        if let Some(inner) = inner {
            copy_field(inner, "reason", &mut fields);
        }
        return match inner
            .and_then(|d| d.get("error_code"))
            .and_then(Value::as_str)
        {
            Some(code) => frame_decoding(Dialect::SignalFish, code, fields).map(Some),
            None => Err(DecodeError::Unrecognised(
                "a Signal Fish operation refusal without error_code".to_owned(),
            )),
        };
    }
    if let Some((_, text_field)) = SIGNAL_FISH_ERROR_TYPES.iter().find(|(t, _)| *t == kind) {
        let mut fields = BTreeMap::new();
        fields.insert("type".to_owned(), Value::String(kind.to_owned()));
        if let Some(data) = data {
            copy_field(data, text_field, &mut fields);
            if kind == "AuthorityResponse" {
                copy_field(data, "granted", &mut fields);
                if data.get("granted").and_then(Value::as_bool) == Some(true) {
                    return Ok(Some(not_an_error(
                        Dialect::SignalFish,
                        "a Signal Fish AuthorityResponse granting authority".to_owned(),
                    )));
                }
            }
        }
        let code = data
            .and_then(|d| d.get("error_code"))
            .and_then(Value::as_str);
        if let Some(code) = code {
            return frame_decoding(Dialect::SignalFish, code, fields).map(Some);
        }
        // error_code is optional in these messages; the text may still identify the code.
        let text = data
            .and_then(|d| d.get(*text_field))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(entry) = super::of_dialect(Dialect::SignalFish)
            .find(|e| !e.wire_text.is_empty() && e.wire_text.eq_ignore_ascii_case(text.trim()))
        {
            return frame_decoding(Dialect::SignalFish, entry.code, fields).map(Some);
        }
        return Err(DecodeError::Unrecognised(format!(
            "a Signal Fish {kind} message without error_code, and its {text_field} {:?} names no documented code",
            abbreviate(text, 60)
        )));
    }
    if SIGNAL_FISH_OTHER_TYPES.contains(&kind) {
        return Ok(Some(not_an_error(
            Dialect::SignalFish,
            format!("a Signal Fish {kind} message"),
        )));
    }
    Ok(None)
}

fn decode_pubsub(kind: &str, object: &Map<String, Value>) -> Result<Option<Decoding>, DecodeError> {
    let mut fields = BTreeMap::new();
    for key in ["requestId", "message", "channel", "retryAfterMs"] {
        copy_field(object, key, &mut fields);
    }
    match kind {
        "error" => match object.get("code").and_then(Value::as_str) {
            Some(code) => frame_decoding(Dialect::Pubsub, code, fields).map(Some),
            None => Err(DecodeError::Unrecognised(
                "a pub/sub error frame without a code".to_owned(),
            )),
        },
        "going_away" => frame_decoding(Dialect::Pubsub, "going_away", fields).map(Some),
        other if PUBSUB_TYPES.contains(&other) => Ok(Some(not_an_error(
            Dialect::Pubsub,
            format!("a pub/sub {other} message"),
        ))),
        _ => Ok(None),
    }
}

fn flow_message_matches(entry: &Entry, message: &str) -> bool {
    let prefix_len = entry.code.len();
    message.len() >= prefix_len
        && message.is_char_boundary(prefix_len)
        && message[..prefix_len].eq_ignore_ascii_case(entry.code)
}

fn decode_flow(object: &Map<String, Value>) -> Result<Option<Decoding>, DecodeError> {
    let subscription_id = object
        .get("subscription_id")
        .or_else(|| object.get("subscriptionID"));
    let action = object.get("action").and_then(Value::as_str);
    let Some(error) = object.get("error") else {
        if object.contains_key("topic") && object.contains_key("payload") {
            return Ok(Some(not_an_error(
                Dialect::Flow,
                "a Flow streams data message".to_owned(),
            )));
        }
        return Ok(action.map(|action| {
            not_an_error(
                Dialect::Flow,
                if subscription_id.is_some() || object.contains_key("subscriptions") {
                    format!("a Flow streams {action} message")
                } else {
                    format!("a Flow streams {action} request")
                },
            )
        }));
    };
    let Some(error) = error.as_object() else {
        return Ok(None);
    };
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status = error.get("code").and_then(Value::as_u64);
    let mut fields = BTreeMap::new();
    if let Some(id) = subscription_id.filter(|v| !v.is_null()) {
        fields.insert("subscription_id".to_owned(), id.clone());
    }
    if let Some(action) = action {
        fields.insert("action".to_owned(), Value::String(action.to_owned()));
    }
    fields.insert("message".to_owned(), Value::String(message.to_owned()));
    if let Some(status) = status {
        fields.insert("status".to_owned(), Value::from(status));
    }
    // The most specific family wins: the longest prefix, and within it a nested family
    // ("error parsing message: unknown action type: …").
    let entry = super::entries::flow::family(message);
    match entry {
        Some(entry) => Ok(Some(Decoding {
            kind: InputKind::Frame,
            dialect: Some(Dialect::Flow),
            code: Some(entry.code.to_owned()),
            candidates: vec![entry],
            fields,
            not_an_error: None,
        })),
        None => Err(DecodeError::UnknownCode {
            dialect: Dialect::Flow,
            code: message.to_owned(),
            hint: status.map(|s| format!("status {s}")),
        }),
    }
}

fn decode_talo_http_body(object: &Map<String, Value>) -> Result<Decoding, DecodeError> {
    let mut fields = BTreeMap::new();
    for key in ["message", "errorCode", "errors"] {
        copy_field(object, key, &mut fields);
    }
    let code = if let Some(code) = object.get("errorCode").and_then(Value::as_str) {
        code.to_owned()
    } else if object.contains_key("errors") {
        "400".to_owned()
    } else {
        "403".to_owned()
    };
    let entry = super::get(Dialect::TaloHttp, &code).ok_or_else(|| DecodeError::UnknownCode {
        dialect: Dialect::TaloHttp,
        code: code.clone(),
        hint: None,
    })?;
    if let Some(status) = entry.status {
        fields.insert("status".to_owned(), Value::from(status));
    }
    Ok(Decoding {
        kind: InputKind::Http,
        dialect: Some(Dialect::TaloHttp),
        code: Some(code),
        candidates: vec![entry],
        fields,
        not_an_error: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Code names
// ---------------------------------------------------------------------------------------------

/// `ROOM_FULL`, `channel_not_authorized`, `signal-fish:ROOM_FULL`, `pubsub:4020`,
/// `subscription not found`.
fn decode_code_name(text: &str) -> Option<Decoding> {
    if text.contains('\n') || text.len() > 120 {
        return None;
    }
    let (dialect, code) = match text.split_once(':') {
        Some((d, c)) => match d.parse::<Dialect>() {
            Ok(dialect) => (Some(dialect), c.trim()),
            Err(_) => (None, text),
        },
        None => (None, text),
    };
    let candidates: Vec<&'static Entry> = match dialect {
        Some(dialect) => super::get(dialect, code).into_iter().collect(),
        None => super::by_code(code),
    };
    let best = candidates.first()?;
    let kind = match best.delivery {
        Delivery::Frame => InputKind::Code,
        Delivery::Close => InputKind::Close,
        Delivery::Http => InputKind::Http,
    };
    Some(Decoding {
        kind,
        dialect: Some(best.dialect),
        code: Some(code.to_owned()),
        candidates,
        fields: BTreeMap::new(),
        not_an_error: None,
    })
}

fn abbreviate(text: &str, max_chars: usize) -> String {
    let mut out: String = text.chars().take(max_chars).collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Frame => "frame",
            InputKind::Close => "close",
            InputKind::Http => "http",
            InputKind::Code => "code",
        })
    }
}

#[cfg(test)]
mod tests;
