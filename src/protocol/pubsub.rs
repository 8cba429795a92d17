//! The pub/sub relay's wire format.
//!
//! # Format
//! ```text
//! client → server  {"type":"subscribe","channel":"demo/lobby","requestId":"s-1"}
//!                  {"type":"unsubscribe","channel":"demo/lobby"}
//!                  {"type":"publish","channel":"demo/lobby","data":{…},"requestId":"p-1"}
//!                  {"type":"send","to":"peer-7f3a","data":{…}}
//! server → client  {"type":"welcome","peerId":"peer-7f3a","app":"demo","limits":{…}}
//!                  {"type":"ack","requestId":"p-1"}
//!                  {"type":"error","requestId":"p-1","code":"channel_not_authorized","message":"not authorized: x"}
//!                  {"type":"message","channel":"demo/lobby","from":"peer-1","data":{…}}
//!                  {"type":"direct","from":"peer-1","data":{…}}
//!                  {"type":"presence","channel":"demo/lobby","joined":["peer-2"],"left":[]}
//!                  {"type":"going_away","retryAfterMs":1000}
//! ```
//! `requestId` is optional (at most 128 bytes) and echoed in `ack` and `error`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

pub const MAX_REQUEST_ID_BYTES: usize = 128;
pub const MAX_CHANNEL_BYTES: usize = 256;
pub const MAX_PEER_ID_BYTES: usize = 128;

/// One client request. `data` is kept as the client's own JSON text: the relay forwards it
/// byte for byte and never builds a tree of it.
#[derive(Debug, Clone)]
pub enum ClientFrame<'a> {
    Subscribe {
        channel: Cow<'a, str>,
    },
    Unsubscribe {
        channel: Cow<'a, str>,
    },
    Publish {
        channel: Cow<'a, str>,
        data: Option<&'a RawValue>,
    },
    Send {
        to: Cow<'a, str>,
        data: Option<&'a RawValue>,
    },
}

impl PartialEq for ClientFrame<'_> {
    fn eq(&self, other: &Self) -> bool {
        fn raw<'r>(data: &Option<&'r RawValue>) -> Option<&'r str> {
            data.map(RawValue::get)
        }
        match (self, other) {
            (Self::Subscribe { channel: a }, Self::Subscribe { channel: b })
            | (Self::Unsubscribe { channel: a }, Self::Unsubscribe { channel: b }) => a == b,
            (
                Self::Publish {
                    channel: a,
                    data: x,
                },
                Self::Publish {
                    channel: b,
                    data: y,
                },
            )
            | (Self::Send { to: a, data: x }, Self::Send { to: b, data: y }) => {
                a == b && raw(x) == raw(y)
            }
            _ => false,
        }
    }
}

/// A frame that could not be turned into a request, with the error code to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    pub request_id: Option<String>,
}

/// The fields of any request, each still as JSON text, so a field of the wrong type is a
/// rejection naming that field rather than a generic parse error.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", default, borrow, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    #[serde(rename = "requestId", default, borrow, deserialize_with = "present")]
    request_id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    channel: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    to: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

/// A field that is present, `null` included (plain `Option` would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// A JSON string, borrowed from the frame unless it has escape sequences to decode.
#[derive(Deserialize)]
struct JsonStr<'a>(#[serde(borrow)] Cow<'a, str>);

fn json_str(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    serde_json::from_str::<JsonStr<'_>>(raw?.get())
        .ok()
        .map(|s| s.0)
}

/// Parse one client frame. The request id is read first so that every rejection of a frame
/// that had one can echo it.
pub fn parse_client<'a>(text: &'a str) -> Result<(ClientFrame<'a>, Option<String>), Rejection> {
    let malformed = |message: &str, request_id: Option<String>| Rejection {
        code: "malformed_message",
        message: format!("malformed message: {message}"),
        request_id,
    };
    if !text.trim_start().starts_with('{') {
        let problem = match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => "expected a JSON object".to_owned(),
            Err(e) => e.to_string(),
        };
        return Err(malformed(&problem, None));
    }
    let fields: Fields<'a> =
        serde_json::from_str(text).map_err(|e| malformed(&e.to_string(), None))?;
    let request_id = match fields.request_id {
        None => None,
        Some(raw) if raw.get() == "null" => None,
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(id) if id.len() <= MAX_REQUEST_ID_BYTES => Some(id),
            Ok(_) => {
                return Err(malformed(
                    &format!("requestId is longer than {MAX_REQUEST_ID_BYTES} bytes"),
                    None,
                ))
            }
            Err(_) => return Err(malformed("requestId must be a string", None)),
        },
    };
    let string_field = |raw: Option<&'a RawValue>, name: &str| -> Result<Cow<'a, str>, Rejection> {
        match raw {
            Some(raw) => json_str(Some(raw))
                .ok_or_else(|| malformed(&format!("{name} must be a string"), request_id.clone())),
            None => Err(malformed(&format!("missing {name}"), request_id.clone())),
        }
    };
    let kind = string_field(fields.kind, "type")?;
    // A relayed message holds `data` one object deep.
    let max_depth = super::json::relayable_depth(1);
    let relayable = |data: Option<&'a RawValue>| -> Result<Option<&'a RawValue>, Rejection> {
        match data {
            Some(raw) if super::json::nested_deeper_than(raw.get(), max_depth) => Err(malformed(
                &format!("data is nested deeper than {max_depth} levels"),
                request_id.clone(),
            )),
            other => Ok(other),
        }
    };
    let frame = match kind.as_ref() {
        "subscribe" => ClientFrame::Subscribe {
            channel: string_field(fields.channel, "channel")?,
        },
        "unsubscribe" => ClientFrame::Unsubscribe {
            channel: string_field(fields.channel, "channel")?,
        },
        "publish" => ClientFrame::Publish {
            channel: string_field(fields.channel, "channel")?,
            data: relayable(fields.data)?,
        },
        "send" => ClientFrame::Send {
            to: string_field(fields.to, "to")?,
            data: relayable(fields.data)?,
        },
        other => {
            return Err(Rejection {
                code: "unknown_type",
                message: format!("unknown type: {}", crate::text::one_line(other, 64)),
                request_id,
            })
        }
    };
    Ok((frame, request_id))
}

/// Why a channel name is invalid, if it is.
pub fn channel_problem(channel: &str) -> Option<&'static str> {
    if channel.is_empty() {
        Some("empty name")
    } else if channel.len() > MAX_CHANNEL_BYTES {
        Some("longer than 256 bytes")
    } else if channel.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("non-printable character")
    } else {
        None
    }
}

pub fn peer_id_problem(peer_id: &str) -> Option<&'static str> {
    if peer_id.is_empty() {
        Some("empty peer id")
    } else if peer_id.len() > MAX_PEER_ID_BYTES {
        Some("longer than 128 bytes")
    } else if peer_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("non-printable character")
    } else {
        None
    }
}

pub const RESERVED_PREFIXES: [&str; 3] = ["_metered/", "_internal/", "_system/"];

pub fn welcome(
    peer_id: &str,
    app: &str,
    max_channels: usize,
    rate: u32,
    burst: u32,
    max_frame_bytes: usize,
) -> String {
    json!({
        "type": "welcome",
        "peerId": peer_id,
        "app": app,
        "limits": {
            "maxChannels": max_channels,
            "messagesPerSecond": rate,
            "burst": burst,
            "maxFrameBytes": max_frame_bytes,
        },
    })
    .to_string()
}

pub fn ack(request_id: Option<&str>) -> String {
    match request_id {
        Some(id) => json!({"type": "ack", "requestId": id}).to_string(),
        None => json!({"type": "ack"}).to_string(),
    }
}

pub fn error(request_id: Option<&str>, code: &str, message: &str) -> String {
    let mut object = Map::new();
    object.insert("type".to_owned(), Value::from("error"));
    if let Some(id) = request_id {
        object.insert("requestId".to_owned(), Value::from(id));
    }
    object.insert("code".to_owned(), Value::from(code));
    object.insert("message".to_owned(), Value::from(message));
    Value::Object(object).to_string()
}

#[derive(Serialize)]
struct Relayed<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    from: &'a str,
    data: &'a RawValue,
}

fn relayed(kind: &'static str, channel: Option<&str>, from: &str, data: &RawValue) -> String {
    let frame = Relayed {
        kind,
        channel,
        from,
        data,
    };
    // Strings and already-valid JSON text: serializing cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

/// A published message as subscribers receive it; `data` is spliced in as sent.
pub fn message(channel: &str, from: &str, data: &RawValue) -> String {
    relayed("message", Some(channel), from, data)
}

pub fn direct(from: &str, data: &RawValue) -> String {
    relayed("direct", None, from, data)
}

/// Frame types the server sends on its own, not as the answer to the client's request: what
/// other connections did (a message, a direct frame, presence) or the server going away. A
/// request is answered only by `ack` or `error`.
pub const NOTICE_TYPES: [&str; 4] = ["message", "direct", "presence", "going_away"];

pub fn presence(channel: &str, joined: &[&str], left: &[&str]) -> String {
    json!({"type": "presence", "channel": channel, "joined": joined, "left": left}).to_string()
}

pub fn going_away(retry_after_ms: u64) -> String {
    json!({"type": "going_away", "retryAfterMs": retry_after_ms}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_request_and_keeps_the_request_id() {
        let (frame, id) =
            parse_client(r#"{"type":"publish","channel":"demo/a","data":1,"requestId":"p-1"}"#)
                .unwrap();
        let one = RawValue::from_string("1".to_owned()).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Publish {
                channel: "demo/a".into(),
                data: Some(&one)
            }
        );
        assert_eq!(id.as_deref(), Some("p-1"));
        let (frame, _) = parse_client(r#"{"type":"send","to":"peer-1"}"#).unwrap();
        assert_eq!(
            frame,
            ClientFrame::Send {
                to: "peer-1".into(),
                data: None
            }
        );
    }

    #[test]
    fn rejections_carry_the_documented_codes() {
        for (text, code, echoed) in [
            ("not json", "malformed_message", None),
            ("[1]", "malformed_message", None),
            (
                r#"{"channel":"x","requestId":"r"}"#,
                "malformed_message",
                Some("r"),
            ),
            (r#"{"type":7}"#, "malformed_message", None),
            (
                r#"{"type":"pubish","requestId":"r2"}"#,
                "unknown_type",
                Some("r2"),
            ),
            (
                r#"{"type":"subscribe","channel":5,"requestId":"r3"}"#,
                "malformed_message",
                Some("r3"),
            ),
        ] {
            let rejection = parse_client(text).unwrap_err();
            assert_eq!(rejection.code, code, "{text}");
            assert_eq!(rejection.request_id.as_deref(), echoed, "{text}");
        }
        let long_id = format!(
            r#"{{"type":"subscribe","channel":"a","requestId":"{}"}}"#,
            "x".repeat(129)
        );
        assert_eq!(
            parse_client(&long_id).unwrap_err().code,
            "malformed_message"
        );
    }

    #[test]
    fn relayed_data_is_spliced_byte_for_byte() {
        let text = r#"{"type":"publish","channel":"demo/a","data":{"b":1, "a":[2,3]}}"#;
        let (frame, _) = parse_client(text).unwrap();
        let ClientFrame::Publish {
            data: Some(data), ..
        } = frame
        else {
            panic!("not a publish: {frame:?}");
        };
        assert_eq!(
            message("demo/a", "peer-1", data),
            r#"{"type":"message","channel":"demo/a","from":"peer-1","data":{"b":1, "a":[2,3]}}"#
        );
        let (frame, _) = parse_client(r#"{"type":"publish","channel":"x","data":null}"#).unwrap();
        assert!(
            matches!(frame, ClientFrame::Publish { data: Some(d), .. } if d.get() == "null"),
            "null data is data, not missing"
        );
    }

    #[test]
    fn data_too_deep_for_the_subscribers_parsers_is_refused() {
        let deep = format!(
            r#"{{"type":"publish","channel":"demo/a","data":{}{},"requestId":"d"}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let rejection = parse_client(&deep).unwrap_err();
        assert_eq!(rejection.code, "malformed_message");
        assert_eq!(rejection.request_id.as_deref(), Some("d"));
    }

    #[test]
    fn channel_and_peer_rules() {
        assert_eq!(channel_problem(""), Some("empty name"));
        assert_eq!(
            channel_problem(&"a".repeat(257)),
            Some("longer than 256 bytes")
        );
        assert_eq!(channel_problem("a\u{7}"), Some("non-printable character"));
        assert_eq!(channel_problem("demo/ok-1"), None);
        assert!(peer_id_problem("").is_some());
        assert!(peer_id_problem("peer-1").is_none());
    }
}
