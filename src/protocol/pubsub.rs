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

use serde_json::{json, Map, Value};

pub const MAX_REQUEST_ID_BYTES: usize = 128;
pub const MAX_CHANNEL_BYTES: usize = 256;
pub const MAX_PEER_ID_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Subscribe {
        channel: String,
    },
    Unsubscribe {
        channel: String,
    },
    Publish {
        channel: String,
        data: Option<Value>,
    },
    Send {
        to: String,
        data: Option<Value>,
    },
}

/// A frame that could not be turned into a request, with the error code to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    pub request_id: Option<String>,
}

/// Parse one client frame. The request id is read first so that every rejection of a frame
/// that had one can echo it.
pub fn parse_client(text: &str) -> Result<(ClientFrame, Option<String>), Rejection> {
    let malformed = |message: &str, request_id: Option<String>| Rejection {
        code: "malformed_message",
        message: format!("malformed message: {message}"),
        request_id,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| malformed(&e.to_string(), None))?;
    let Value::Object(object) = value else {
        return Err(malformed("expected a JSON object", None));
    };
    let request_id = match object.get("requestId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.len() <= MAX_REQUEST_ID_BYTES => Some(id.clone()),
        Some(Value::String(_)) => {
            return Err(malformed(
                &format!("requestId is longer than {MAX_REQUEST_ID_BYTES} bytes"),
                None,
            ))
        }
        Some(_) => return Err(malformed("requestId must be a string", None)),
    };
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(malformed("type must be a string", request_id)),
        None => return Err(malformed("missing type", request_id)),
    };
    let string_field = |object: &Map<String, Value>, name: &str| -> Result<String, Rejection> {
        match object.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(malformed(
                &format!("{name} must be a string"),
                request_id.clone(),
            )),
            None => Err(malformed(&format!("missing {name}"), request_id.clone())),
        }
    };
    let data = object.get("data").cloned();
    let frame = match kind {
        "subscribe" => ClientFrame::Subscribe {
            channel: string_field(&object, "channel")?,
        },
        "unsubscribe" => ClientFrame::Unsubscribe {
            channel: string_field(&object, "channel")?,
        },
        "publish" => ClientFrame::Publish {
            channel: string_field(&object, "channel")?,
            data,
        },
        "send" => ClientFrame::Send {
            to: string_field(&object, "to")?,
            data,
        },
        other => {
            return Err(Rejection {
                code: "unknown_type",
                message: format!("unknown type: {}", crate::report::one_line(other, 64)),
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

pub fn message(channel: &str, from: &str, data: &Value) -> String {
    json!({"type": "message", "channel": channel, "from": from, "data": data}).to_string()
}

pub fn direct(from: &str, data: &Value) -> String {
    json!({"type": "direct", "from": from, "data": data}).to_string()
}

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
        assert_eq!(
            frame,
            ClientFrame::Publish {
                channel: "demo/a".into(),
                data: Some(json!(1))
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
