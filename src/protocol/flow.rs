//! The Flow Access API WebSocket streams' wire format (server → client frames; inbound frames
//! are parsed by the server's Flow handler, which owns the error each malformed one earns).
//!
//! # Format
//! ```text
//! client → server  {"subscription_id":"s1","action":"subscribe","topic":"errors","arguments":{"dialect":"talo"}}
//!                  {"subscription_id":"s1","action":"unsubscribe"}
//!                  {"action":"list_subscriptions"}
//! server → client  {"subscription_id":"s1","action":"subscribe"}
//!                  {"subscriptions":[{"subscription_id":"s1","topic":"errors","arguments":{…}}],"action":"list_subscriptions"}
//!                  {"subscription_id":"s1","topic":"errors","payload":{…}}
//!                  {"subscription_id":"s1","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}
//! ```
//! Fields are written in this order, as Flow writes them; `subscription_id` and `action` are
//! left out of an error when the frame that caused it did not carry them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A subscribe or unsubscribe that succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub subscription_id: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListedSubscription {
    pub subscription_id: String,
    pub topic: String,
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionList {
    pub subscriptions: Vec<ListedSubscription>,
    pub action: String,
}

/// One event on a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Data<P> {
    pub subscription_id: String,
    pub topic: String,
    pub payload: P,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// An HTTP status: 400, 404, 429 or 500.
    pub code: u16,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    pub error: ErrorBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// Serialize a frame; the types above hold only strings, numbers and JSON values, which always
/// serialize, so the empty fallback is never sent.
pub fn to_text<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T>(frame: &T, text: &str)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        assert_eq!(to_text(frame), text);
        assert_eq!(&serde_json::from_str::<T>(text).unwrap(), frame);
    }

    #[test]
    fn every_server_frame_in_flow_field_order() {
        round_trip(
            &Ack {
                subscription_id: "s1".into(),
                action: "subscribe".into(),
            },
            r#"{"subscription_id":"s1","action":"subscribe"}"#,
        );
        round_trip(
            &SubscriptionList {
                subscriptions: vec![ListedSubscription {
                    subscription_id: "s1".into(),
                    topic: "errors".into(),
                    arguments: json!({"dialect": "talo"}).as_object().cloned().unwrap(),
                }],
                action: "list_subscriptions".into(),
            },
            r#"{"subscriptions":[{"subscription_id":"s1","topic":"errors","arguments":{"dialect":"talo"}}],"action":"list_subscriptions"}"#,
        );
        round_trip(
            &Data {
                subscription_id: "s1".into(),
                topic: "stats".into(),
                payload: json!({"peers": 3}),
            },
            r#"{"subscription_id":"s1","topic":"stats","payload":{"peers":3}}"#,
        );
        round_trip(
            &ErrorFrame {
                subscription_id: Some("s1".into()),
                error: ErrorBody {
                    code: 404,
                    message: "subscription not found".into(),
                },
                action: Some("unsubscribe".into()),
            },
            r#"{"subscription_id":"s1","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}"#,
        );
        round_trip(
            &ErrorFrame {
                subscription_id: None,
                error: ErrorBody {
                    code: 400,
                    message: "error parsing message: EOF".into(),
                },
                action: None,
            },
            r#"{"error":{"code":400,"message":"error parsing message: EOF"}}"#,
        );
    }
}
