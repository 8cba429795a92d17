//! Inbound Flow frames turned into requests, or into the error Flow answers them with. No I/O,
//! no clock: each message family of Flow's documentation has its own trigger here.
//!
//! | frame | answer |
//! |---|---|
//! | binary | 400 `error reading message: …` |
//! | not JSON | 400 `error parsing message: …` |
//! | JSON but not an object, `action` missing or not a string, `subscription_id` not a string | 400 `error unmarshalling base message: …` |
//! | subscribe with `topic` missing or not a string, `arguments` not an object | 400 `error unmarshalling subscribe message: …` |
//! | unsubscribe without a `subscription_id` | 400 `error unmarshalling unsubscribe message: …` |
//! | list_subscriptions with a field other than `action` and `subscription_id` | 400 `error unmarshalling list subscriptions message: …` |
//! | any other action | 400 `unknown action type: …` |

use serde_json::{Map, Value};

use crate::protocol::flow as wire;

/// Most characters of the client's own input an error frame quotes back (an id, an action, a
/// value of the wrong type): enough to recognise it, never the whole of a large frame.
pub const MAX_ECHO_CHARS: usize = 64;

/// `text` cut to [`MAX_ECHO_CHARS`], marked with `…` when cut.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// An error frame `{"subscription_id"?, "error": {"code", "message"}, "action"?}`;
/// `subscription_id` and `action` are left out when the frame did not carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError {
    pub subscription_id: Option<String>,
    pub status: u16,
    pub message: String,
    pub action: Option<String>,
}

impl FlowError {
    pub fn bad_request(
        subscription_id: Option<&str>,
        message: impl Into<String>,
        action: Option<&str>,
    ) -> FlowError {
        FlowError {
            subscription_id: subscription_id.map(clip),
            status: 400,
            message: message.into(),
            action: action.map(clip),
        }
    }

    pub fn frame(&self) -> String {
        error_frame(
            self.subscription_id.as_deref(),
            self.status,
            &self.message,
            self.action.as_deref(),
        )
    }
}

/// The error frame with Flow's field order.
pub fn error_frame(
    subscription_id: Option<&str>,
    status: u16,
    message: &str,
    action: Option<&str>,
) -> String {
    wire::to_text(&wire::ErrorFrame {
        subscription_id: subscription_id.map(str::to_owned),
        error: wire::ErrorBody {
            code: status,
            message: message.to_owned(),
        },
        action: action.map(str::to_owned),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        subscription_id: Option<String>,
        topic: String,
        arguments: Map<String, Value>,
    },
    Unsubscribe {
        subscription_id: String,
    },
    ListSubscriptions,
}

/// A binary frame: Flow streams speak text only.
pub fn binary(len: usize) -> FlowError {
    FlowError::bad_request(
        None,
        format!("error reading message: binary frame of {len} bytes; frames must be UTF-8 text"),
        None,
    )
}

pub fn parse(text: &str) -> Result<Request, FlowError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FlowError::bad_request(None, format!("error parsing message: {e}"), None))?;
    let Value::Object(object) = value else {
        return Err(FlowError::bad_request(
            None,
            "error unmarshalling base message: expected a JSON object",
            None,
        ));
    };
    let action = match object.get("action") {
        Some(Value::String(action)) => action.clone(),
        Some(other) => {
            return Err(FlowError::bad_request(
                None,
                format!(
                    "error unmarshalling base message: action must be a string, not {}",
                    clip(&other.to_string())
                ),
                None,
            ))
        }
        None => {
            return Err(FlowError::bad_request(
                None,
                "error unmarshalling base message: action is required",
                None,
            ))
        }
    };
    let subscription_id = match object.get("subscription_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(FlowError::bad_request(
                None,
                format!(
                    "error unmarshalling base message: subscription_id must be a string, not {}",
                    clip(&other.to_string())
                ),
                Some(&action),
            ))
        }
    };
    match action.as_str() {
        "subscribe" => subscribe(&object, subscription_id),
        "unsubscribe" => match subscription_id {
            Some(subscription_id) => Ok(Request::Unsubscribe { subscription_id }),
            None => Err(FlowError::bad_request(
                None,
                "error unmarshalling unsubscribe message: subscription_id is required",
                Some("unsubscribe"),
            )),
        },
        "list_subscriptions" => {
            match object
                .keys()
                .find(|k| !matches!(k.as_str(), "action" | "subscription_id"))
            {
                Some(extra) => Err(FlowError::bad_request(
                    subscription_id.as_deref(),
                    format!(
                        "error unmarshalling list subscriptions message: unknown field {:?}",
                        clip(extra)
                    ),
                    Some("list_subscriptions"),
                )),
                None => Ok(Request::ListSubscriptions),
            }
        }
        other => Err(FlowError::bad_request(
            subscription_id.as_deref(),
            format!("unknown action type: {}", clip(other)),
            Some(other),
        )),
    }
}

fn subscribe(
    object: &Map<String, Value>,
    subscription_id: Option<String>,
) -> Result<Request, FlowError> {
    let malformed = |problem: String| {
        FlowError::bad_request(
            subscription_id.as_deref(),
            format!("error unmarshalling subscribe message: {problem}"),
            Some("subscribe"),
        )
    };
    let topic = match object.get("topic") {
        Some(Value::String(topic)) => topic.clone(),
        Some(other) => {
            return Err(malformed(format!(
                "topic must be a string, not {}",
                clip(&other.to_string())
            )))
        }
        None => return Err(malformed("topic is required".to_owned())),
    };
    let arguments = match object.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(other) => {
            return Err(malformed(format!(
                "arguments must be an object, not {}",
                clip(&other.to_string())
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

    fn message(text: &str) -> String {
        match parse(text) {
            Err(e) => {
                assert_eq!(e.status, 400);
                e.message
            }
            Ok(request) => panic!("{text} parsed as {request:?}"),
        }
    }

    #[test]
    fn each_message_family_has_its_trigger() {
        assert!(binary(3).message.starts_with("error reading message: "));
        assert!(message("{nope").starts_with("error parsing message: "));
        assert!(message("[1]").starts_with("error unmarshalling base message: "));
        assert!(message(r#"{"action":7}"#).starts_with("error unmarshalling base message: "));
        assert!(message(r#"{"topic":"peers"}"#).starts_with("error unmarshalling base message: "));
        assert!(message(r#"{"action":"subscribe","subscription_id":5}"#)
            .starts_with("error unmarshalling base message: "));
        assert!(message(r#"{"action":"subscribe","topic":1}"#)
            .starts_with("error unmarshalling subscribe message: "));
        assert!(message(r#"{"action":"subscribe"}"#)
            .starts_with("error unmarshalling subscribe message: "));
        assert!(
            message(r#"{"action":"subscribe","topic":"peers","arguments":[]}"#)
                .starts_with("error unmarshalling subscribe message: ")
        );
        assert!(message(r#"{"action":"unsubscribe"}"#)
            .starts_with("error unmarshalling unsubscribe message: "));
        assert!(message(r#"{"action":"list_subscriptions","topic":"x"}"#)
            .starts_with("error unmarshalling list subscriptions message: "));
        assert_eq!(
            message(r#"{"action":"watch"}"#),
            "unknown action type: watch"
        );
    }

    #[test]
    fn errors_echo_what_the_frame_carried() {
        let error = parse(r#"{"subscription_id":"s1","action":"subscribe","topic":[]}"#)
            .err()
            .unwrap();
        assert_eq!(
            error.frame(),
            r#"{"subscription_id":"s1","error":{"code":400,"message":"error unmarshalling subscribe message: topic must be a string, not []"},"action":"subscribe"}"#
        );
        assert_eq!(
            parse("x").err().unwrap().frame(),
            r#"{"error":{"code":400,"message":"error parsing message: expected value at line 1 column 1"}}"#
        );
    }

    #[test]
    fn echoed_input_is_clipped() {
        let long = "x".repeat(5000);
        for frame in [
            json!({"action": long}),
            json!({"action": "subscribe", "subscription_id": long, "topic": [long]}),
            json!({"action": "subscribe", "topic": "t", "arguments": [long]}),
            json!({"action": vec!["x"; 400]}),
            json!({"action": "list_subscriptions", long.clone(): 1}),
        ] {
            let error = parse(&frame.to_string()).err().unwrap();
            assert!(error.frame().len() < 400, "{}", error.frame());
            assert!(error.frame().contains('…'), "{}", error.frame());
        }
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&"é".repeat(65)).chars().count(), MAX_ECHO_CHARS + 1);
    }

    #[test]
    fn well_formed_requests() {
        assert_eq!(
            parse(
                r#"{"subscription_id":"s1","action":"subscribe","topic":"errors","arguments":{"dialect":"talo"}}"#
            ),
            Ok(Request::Subscribe {
                subscription_id: Some("s1".into()),
                topic: "errors".into(),
                arguments: json!({"dialect":"talo"}).as_object().cloned().unwrap(),
            })
        );
        assert_eq!(
            parse(r#"{"action":"subscribe","topic":"stats","arguments":null}"#),
            Ok(Request::Subscribe {
                subscription_id: None,
                topic: "stats".into(),
                arguments: Map::new(),
            })
        );
        assert_eq!(
            parse(r#"{"subscription_id":"s1","action":"unsubscribe"}"#),
            Ok(Request::Unsubscribe {
                subscription_id: "s1".into()
            })
        );
        assert_eq!(
            parse(r#"{"action":"list_subscriptions"}"#),
            Ok(Request::ListSubscriptions)
        );
    }
}
