//! Inbound Flow frames turned into requests, or into the error Flow answers them with. No I/O,
//! no clock.
//!
//! flow-go (`engine/access/rest/websockets/controller.go`) reads every data frame, text or
//! binary, as JSON: a frame that is not JSON fails there with `error reading message: …`. A
//! request that is JSON but cannot be handled fails with `error parsing message: ` followed by
//! the specific family. Both carry an empty `subscription_id` and `action`, whatever the frame
//! said: the request was never understood far enough to name them.
//!
//! | frame | message |
//! |---|---|
//! | not JSON (text or binary) | `error reading message: …` |
//! | not an object, `action` or `subscription_id` of the wrong type | `error parsing message: error unmarshalling base message: …` |
//! | subscribe with `topic` not a string, `arguments` not an object | `error parsing message: error unmarshalling subscribe message: …` |
//! | any other action | `error parsing message: unknown action type: …` |
//!
//! Go's decoder ignores missing and unknown fields, so upstream cannot emit the seed's
//! `error unmarshalling unsubscribe message` or `… list subscriptions message`, and reports a
//! missing `action` as an unknown (empty) action type. With `strict` (the default, so that every
//! documented message has a trigger) a missing `action` or `topic`, an unsubscribe without an
//! id and a list_subscriptions with an unknown field are unmarshalling errors of their
//! family; without it (the default), requests are read as flow-go reads them: the first JSON
//! value of the frame, request fields matched without regard to case (see
//! [`super::encoding`]).

use serde_json::{Map, Value};

use crate::protocol::flow as wire;

/// Most characters of the client's own input an error frame quotes back (an id, an action, a
/// field name): enough to recognise it, never the whole of a large frame.
pub const MAX_ECHO_CHARS: usize = 64;

/// `text` cut to [`MAX_ECHO_CHARS`], marked with `…` when cut.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// An error frame `{"subscription_id", "error": {"code", "message"}, "action"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub subscription_id: String,
    pub status: u16,
    pub message: String,
    pub action: String,
}

impl FlowError {
    pub fn new(
        status: u16,
        message: impl Into<String>,
        action: &str,
        subscription_id: &str,
    ) -> FlowError {
        FlowError {
            subscription_id: clip(subscription_id),
            status,
            message: message.into(),
            action: clip(action),
        }
    }

    pub fn bad_request(
        message: impl Into<String>,
        action: &str,
        subscription_id: &str,
    ) -> FlowError {
        FlowError::new(400, message, action, subscription_id)
    }

    /// A frame that is not JSON.
    fn reading(problem: impl std::fmt::Display) -> FlowError {
        FlowError::bad_request(format!("error reading message: {problem}"), "", "")
    }

    /// A JSON request that could not be handled.
    fn parsing(problem: impl std::fmt::Display) -> FlowError {
        FlowError::bad_request(format!("error parsing message: {problem}"), "", "")
    }

    pub fn frame(&self) -> String {
        wire::to_text(&wire::ErrorFrame {
            subscription_id: self.subscription_id.clone(),
            error: wire::ErrorBody {
                code: self.status,
                message: self.message.clone(),
            },
            action: self.action.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `subscription_id` is as sent; empty asks the server to generate one.
    Subscribe {
        subscription_id: String,
        topic: String,
        arguments: Map<String, Value>,
    },
    Unsubscribe {
        subscription_id: String,
    },
    ListSubscriptions,
}

/// A binary frame: read as JSON, as flow-go's reader takes any data frame. Bytes that are not
/// UTF-8 cannot be JSON outside strings, and inside strings Go's decoder replaces them, which
/// the lossy conversion mirrors.
pub fn parse_binary(bytes: &[u8], strict: bool) -> Result<Request, FlowError> {
    parse(&String::from_utf8_lossy(bytes), strict)
}

pub fn parse(text: &str, strict: bool) -> Result<Request, FlowError> {
    let value: Value = if strict {
        serde_json::from_str(text).map_err(FlowError::reading)?
    } else {
        super::encoding::read_first(text).map_err(FlowError::reading)?
    };
    let base = |problem: String| {
        FlowError::parsing(format!("error unmarshalling base message: {problem}"))
    };
    let object = match value {
        Value::Object(object) => object,
        // Unmarshalling null into a Go struct leaves it empty: an empty action.
        Value::Null if !strict => Map::new(),
        other => {
            return Err(base(format!(
                "cannot unmarshal {} into a request object",
                json_kind(&other)
            )))
        }
    };
    let action = match object.get("action") {
        Some(Value::String(action)) => action.clone(),
        None | Some(Value::Null) if !strict => String::new(),
        None | Some(Value::Null) => return Err(base("action is required".to_owned())),
        Some(other) => {
            return Err(base(format!(
                "action must be a string, not {}",
                json_kind(other)
            )))
        }
    };
    let subscription_id = match object.get("subscription_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(id)) => id.clone(),
        Some(other) => {
            return Err(base(format!(
                "subscription_id must be a string, not {}",
                json_kind(other)
            )))
        }
    };
    match action.as_str() {
        "subscribe" => subscribe(&object, subscription_id, strict),
        "unsubscribe" if strict && subscription_id.is_empty() => Err(FlowError::parsing(
            "error unmarshalling unsubscribe message: subscription_id is required",
        )),
        "unsubscribe" => Ok(Request::Unsubscribe { subscription_id }),
        "list_subscriptions" => {
            let extra = object
                .keys()
                .find(|k| !matches!(k.as_str(), "action" | "subscription_id"));
            match extra {
                Some(extra) if strict => Err(FlowError::parsing(format!(
                    "error unmarshalling list subscriptions message: unknown field {:?}",
                    clip(extra)
                ))),
                _ => Ok(Request::ListSubscriptions),
            }
        }
        other => Err(FlowError::parsing(format!(
            "unknown action type: {}",
            clip(other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn subscribe(
    object: &Map<String, Value>,
    subscription_id: String,
    strict: bool,
) -> Result<Request, FlowError> {
    let malformed = |problem: String| {
        FlowError::parsing(format!("error unmarshalling subscribe message: {problem}"))
    };
    let topic = match object.get("topic") {
        Some(Value::String(topic)) => topic.clone(),
        // Upstream leaves the topic empty, and the data provider refuses it.
        None | Some(Value::Null) if !strict => String::new(),
        None | Some(Value::Null) => return Err(malformed("topic is required".to_owned())),
        Some(other) => {
            return Err(malformed(format!(
                "topic must be a string, not {}",
                json_kind(other)
            )))
        }
    };
    let arguments = match object.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(other) => {
            return Err(malformed(format!(
                "arguments must be an object, not {}",
                json_kind(other)
            )))
        }
    };
    Ok(Request::Subscribe {
        subscription_id,
        topic,
        arguments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(text: &str, strict: bool) -> String {
        match parse(text, strict) {
            Err(e) => {
                assert_eq!(e.status, 400);
                assert_eq!((e.subscription_id.as_str(), e.action.as_str()), ("", ""));
                e.message
            }
            Ok(request) => panic!("{text} parsed as {request:?}"),
        }
    }

    #[test]
    fn each_message_family_has_its_trigger() {
        let m = |text| message(text, true);
        assert!(m("{nope").starts_with("error reading message: "));
        assert!(parse_binary(b"\x01\x02", true)
            .unwrap_err()
            .message
            .starts_with("error reading message: "));
        let base = "error parsing message: error unmarshalling base message: ";
        assert!(m("[1]").starts_with(base));
        assert!(m(r#"{"action":7}"#).starts_with(base));
        assert!(m(r#"{"topic":"peers"}"#).starts_with(base));
        assert!(m(r#"{"action":"subscribe","subscription_id":5}"#).starts_with(base));
        let sub = "error parsing message: error unmarshalling subscribe message: ";
        assert!(m(r#"{"action":"subscribe","topic":1}"#).starts_with(sub));
        assert!(m(r#"{"action":"subscribe"}"#).starts_with(sub));
        assert!(m(r#"{"action":"subscribe","topic":"peers","arguments":[]}"#).starts_with(sub));
        assert!(m(r#"{"action":"unsubscribe"}"#)
            .starts_with("error parsing message: error unmarshalling unsubscribe message: "));
        assert!(
            m(r#"{"action":"list_subscriptions","topic":"x"}"#).starts_with(
                "error parsing message: error unmarshalling list subscriptions message: "
            )
        );
        assert_eq!(
            m(r#"{"subscription_id":"s1","action":"watch"}"#),
            "error parsing message: unknown action type: watch"
        );
    }

    #[test]
    fn without_strict_requests_read_as_flow_go_reads_them() {
        let m = |text| message(text, false);
        assert_eq!(
            m(r#"{"topic":"peers"}"#),
            "error parsing message: unknown action type: "
        );
        assert_eq!(m("null"), "error parsing message: unknown action type: ");
        assert_eq!(
            parse(r#"{"action":"subscribe"}"#, false),
            Ok(Request::Subscribe {
                subscription_id: String::new(),
                topic: String::new(),
                arguments: Map::new(),
            })
        );
        assert_eq!(
            parse(r#"{"action":"unsubscribe"}"#, false),
            Ok(Request::Unsubscribe {
                subscription_id: String::new()
            })
        );
        assert_eq!(
            parse(r#"{"action":"list_subscriptions","topic":"x"}"#, false),
            Ok(Request::ListSubscriptions)
        );
    }

    #[test]
    fn errors_always_carry_subscription_id_and_action() {
        let error = parse(
            r#"{"subscription_id":"s1","action":"subscribe","topic":[]}"#,
            true,
        )
        .unwrap_err();
        assert_eq!(
            error.frame(),
            r#"{"subscription_id":"","error":{"code":400,"message":"error parsing message: error unmarshalling subscribe message: topic must be a string, not array"},"action":""}"#
        );
        assert_eq!(
            parse("x", true).unwrap_err().frame(),
            r#"{"subscription_id":"","error":{"code":400,"message":"error reading message: expected value at line 1 column 1"},"action":""}"#
        );
    }

    #[test]
    fn well_formed_requests() {
        assert_eq!(
            parse(
                r#"{"subscription_id":"s1","action":"subscribe","topic":"errors","arguments":{"dialect":"talo"}}"#,
                true
            ),
            Ok(Request::Subscribe {
                subscription_id: "s1".into(),
                topic: "errors".into(),
                arguments: json!({"dialect":"talo"}).as_object().cloned().unwrap(),
            })
        );
        assert_eq!(
            parse_binary(
                br#"{"action":"subscribe","topic":"stats","arguments":null}"#,
                true
            ),
            Ok(Request::Subscribe {
                subscription_id: String::new(),
                topic: "stats".into(),
                arguments: Map::new(),
            })
        );
        assert_eq!(
            parse(r#"{"subscription_id":"s1","action":"unsubscribe"}"#, true),
            Ok(Request::Unsubscribe {
                subscription_id: "s1".into()
            })
        );
        assert_eq!(
            parse(r#"{"action":"list_subscriptions"}"#, true),
            Ok(Request::ListSubscriptions)
        );
    }
}
