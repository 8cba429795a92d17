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
//! Fields are written in this order, as Flow writes them. An error always carries
//! `subscription_id` and `action`, empty when the request had none or could not be read that
//! far; a connection with no subscriptions lists `"subscriptions": null` (flow-go
//! `engine/access/rest/websockets/models/`: plain strings and a nil slice).

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
    /// `None` (written `null`) when the connection has no subscriptions.
    pub subscriptions: Option<Vec<ListedSubscription>>,
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
    #[serde(default)]
    pub subscription_id: String,
    pub error: ErrorBody,
    #[serde(default)]
    pub action: String,
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
                subscriptions: Some(vec![ListedSubscription {
                    subscription_id: "s1".into(),
                    topic: "errors".into(),
                    arguments: json!({"dialect": "talo"}).as_object().cloned().unwrap(),
                }]),
                action: "list_subscriptions".into(),
            },
            r#"{"subscriptions":[{"subscription_id":"s1","topic":"errors","arguments":{"dialect":"talo"}}],"action":"list_subscriptions"}"#,
        );
        round_trip(
            &SubscriptionList {
                subscriptions: None,
                action: "list_subscriptions".into(),
            },
            r#"{"subscriptions":null,"action":"list_subscriptions"}"#,
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
                subscription_id: "s1".into(),
                error: ErrorBody {
                    code: 404,
                    message: "subscription not found".into(),
                },
                action: "unsubscribe".into(),
            },
            r#"{"subscription_id":"s1","error":{"code":404,"message":"subscription not found"},"action":"unsubscribe"}"#,
        );
        round_trip(
            &ErrorFrame {
                subscription_id: String::new(),
                error: ErrorBody {
                    code: 400,
                    message: "error reading message: EOF".into(),
                },
                action: String::new(),
            },
            r#"{"subscription_id":"","error":{"code":400,"message":"error reading message: EOF"},"action":""}"#,
        );
    }
}
