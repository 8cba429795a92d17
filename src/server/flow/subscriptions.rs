//! One connection's subscriptions: id rules, the per-connection limit, topics and their
//! arguments, and which subscriptions an event reaches. No I/O.
//!
//! # Topics
//! | topic | arguments (all optional) | payload |
//! |---|---|---|
//! | `peers` | `dialect` | a peer connected, changed or closed |
//! | `rooms` | none | a room changed or closed |
//! | `channels` | `dialect` | a channel member joined or left |
//! | `errors` | `dialect`, `code` | every error the server sends, as admins see it |
//! | `stats` | none | totals once a second |
//!
//! As in Flow, an unknown topic or an unknown or ill-typed argument is refused with
//! `error creating data provider: …` (`invalid arguments: …` for arguments).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::request::FlowError;
use crate::catalog::Dialect;
use crate::protocol::flow as wire;

pub const MAX_SUBSCRIPTIONS: usize = 20;
pub const MAX_SUBSCRIPTION_ID: usize = 20;
pub const TOPICS: [&str; 5] = ["peers", "rooms", "channels", "errors", "stats"];

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub topic: String,
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    by_id: BTreeMap<String, Subscription>,
    generated: u64,
}

fn check_id(id: &str, action: &str) -> Result<(), FlowError> {
    if id.is_empty() || id.chars().count() > MAX_SUBSCRIPTION_ID {
        return Err(FlowError::bad_request(
            Some(id),
            format!(
                "error parsing subscription id: {id:?} must be 1 to {MAX_SUBSCRIPTION_ID} characters"
            ),
            Some(action),
        ));
    }
    Ok(())
}

/// The topic exists and the arguments are the ones it accepts, with the right types.
pub fn check_topic(topic: &str, arguments: &Map<String, Value>) -> Result<(), String> {
    let allowed: &[&str] = match topic {
        "peers" | "channels" => &["dialect"],
        "errors" => &["dialect", "code"],
        "rooms" | "stats" => &[],
        other => {
            return Err(format!(
                "unknown topic: {other} (topics: {})",
                TOPICS.join(", ")
            ))
        }
    };
    for (name, value) in arguments {
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "invalid arguments: unexpected argument {name:?} for topic {topic}"
            ));
        }
        if name == "dialect"
            && value
                .as_str()
                .and_then(|d| d.parse::<Dialect>().ok())
                .is_none()
        {
            return Err(format!(
                "invalid arguments: dialect {value} is not one of signal-fish, talo, talo-http, flow, pubsub"
            ));
        }
        if name == "code" && !value.is_string() {
            return Err("invalid arguments: code must be a string".to_owned());
        }
    }
    Ok(())
}

impl Subscriptions {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Everything that would refuse this subscribe, in Flow's order: the id, its uniqueness,
    /// the limit, then the data provider (topic and arguments).
    pub fn check_new(
        &self,
        subscription_id: Option<&str>,
        topic: &str,
        arguments: &Map<String, Value>,
    ) -> Result<(), FlowError> {
        if let Some(id) = subscription_id {
            check_id(id, "subscribe")?;
            if self.by_id.contains_key(id) {
                return Err(FlowError::bad_request(
                    Some(id),
                    format!("subscription ID is already in use: {id}"),
                    Some("subscribe"),
                ));
            }
        }
        if self.by_id.len() >= MAX_SUBSCRIPTIONS {
            return Err(FlowError {
                subscription_id: subscription_id.map(str::to_owned),
                status: 429,
                message: "error creating new subscription: maximum number of subscriptions reached"
                    .to_owned(),
                action: Some("subscribe".to_owned()),
            });
        }
        check_topic(topic, arguments).map_err(|problem| {
            FlowError::bad_request(
                subscription_id,
                format!("error creating data provider: {problem}"),
                Some("subscribe"),
            )
        })
    }

    /// Add a subscription that passed [`Subscriptions::check_new`]; returns its id, generated
    /// when the client gave none (never one the client already uses).
    pub fn insert(
        &mut self,
        subscription_id: Option<String>,
        subscription: Subscription,
    ) -> String {
        let id = subscription_id.unwrap_or_else(|| loop {
            self.generated += 1;
            let candidate = format!("sub-{}", self.generated);
            if !self.by_id.contains_key(&candidate) {
                break candidate;
            }
        });
        self.by_id.insert(id.clone(), subscription);
        id
    }

    pub fn remove(&mut self, subscription_id: &str) -> Result<Subscription, FlowError> {
        check_id(subscription_id, "unsubscribe")?;
        self.by_id.remove(subscription_id).ok_or_else(|| FlowError {
            subscription_id: Some(subscription_id.to_owned()),
            status: 404,
            message: "subscription not found".to_owned(),
            action: Some("unsubscribe".to_owned()),
        })
    }

    /// The list_subscriptions answer.
    pub fn list_frame(&self) -> String {
        wire::to_text(&wire::SubscriptionList {
            subscriptions: self
                .by_id
                .iter()
                .map(|(id, s)| wire::ListedSubscription {
                    subscription_id: id.clone(),
                    topic: s.topic.clone(),
                    arguments: s.arguments.clone(),
                })
                .collect(),
            action: "list_subscriptions".to_owned(),
        })
    }

    /// The ids of the subscriptions an event of `topic` reaches: every argument must equal the
    /// event's field of that name (`dialect` is also looked up on the event's peer).
    pub fn matching<'a>(
        &'a self,
        topic: &'a str,
        event: &'a Value,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.by_id
            .iter()
            .filter(move |(_, s)| {
                s.topic == topic
                    && s.arguments.iter().all(|(name, wanted)| {
                        let actual = match name.as_str() {
                            "dialect" => event
                                .get("dialect")
                                .or_else(|| event.get("peer").and_then(|p| p.get("dialect"))),
                            "code" => event.get("code"),
                            _ => None,
                        };
                        actual == Some(wanted)
                    })
            })
            .map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn add(subs: &mut Subscriptions, id: Option<&str>, topic: &str, arguments: Value) -> String {
        let arguments = args(arguments);
        subs.check_new(id, topic, &arguments).unwrap();
        subs.insert(
            id.map(str::to_owned),
            Subscription {
                topic: topic.to_owned(),
                arguments,
            },
        )
    }

    #[test]
    fn ids_are_one_to_twenty_characters() {
        let subs = Subscriptions::default();
        let empty = Map::new();
        assert!(subs
            .check_new(Some(&"x".repeat(20)), "stats", &empty)
            .is_ok());
        assert!(subs
            .check_new(Some(&"é".repeat(20)), "stats", &empty)
            .is_ok());
        for bad in ["", &"x".repeat(21)] {
            let error = subs.check_new(Some(bad), "stats", &empty).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.starts_with("error parsing subscription id: "));
        }
    }

    #[test]
    fn an_id_in_use_is_refused_and_generated_ids_avoid_client_ids() {
        let mut subs = Subscriptions::default();
        add(&mut subs, Some("sub-1"), "stats", json!({}));
        let error = subs
            .check_new(Some("sub-1"), "stats", &Map::new())
            .unwrap_err();
        assert_eq!(error.message, "subscription ID is already in use: sub-1");
        assert_eq!(add(&mut subs, None, "stats", json!({})), "sub-2");
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn twenty_subscriptions_per_connection() {
        let mut subs = Subscriptions::default();
        for _ in 0..MAX_SUBSCRIPTIONS {
            add(&mut subs, None, "peers", json!({}));
        }
        let error = subs
            .check_new(Some("s21"), "peers", &Map::new())
            .unwrap_err();
        assert_eq!(error.status, 429);
        assert_eq!(
            error.message,
            "error creating new subscription: maximum number of subscriptions reached"
        );
        assert_eq!(error.subscription_id.as_deref(), Some("s21"));
    }

    #[test]
    fn unknown_topics_and_arguments_fail_the_data_provider() {
        let subs = Subscriptions::default();
        let cases = [
            ("blocks", json!({})),
            ("stats", json!({"dialect": "talo"})),
            ("peers", json!({"since": 3})),
            ("peers", json!({"dialect": "klingon"})),
            ("errors", json!({"code": 500})),
        ];
        for (topic, arguments) in cases {
            let error = subs.check_new(None, topic, &args(arguments)).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.starts_with("error creating data provider: "));
        }
        let error = subs
            .check_new(None, "peers", &args(json!({"since": 3})))
            .unwrap_err();
        assert!(error
            .message
            .starts_with("error creating data provider: invalid arguments: "));
    }

    #[test]
    fn unsubscribe_parses_the_id_then_looks_it_up() {
        let mut subs = Subscriptions::default();
        add(&mut subs, Some("s1"), "rooms", json!({}));
        assert!(subs
            .remove(&"x".repeat(21))
            .unwrap_err()
            .message
            .starts_with("error parsing subscription id: "));
        let missing = subs.remove("s2").unwrap_err();
        assert_eq!(
            (missing.status, missing.message.as_str()),
            (404, "subscription not found")
        );
        assert!(subs.remove("s1").is_ok());
        assert!(subs.is_empty());
    }

    #[test]
    fn events_reach_the_subscriptions_whose_arguments_match() {
        let mut subs = Subscriptions::default();
        add(&mut subs, Some("all"), "errors", json!({}));
        add(
            &mut subs,
            Some("talo"),
            "errors",
            json!({"dialect": "talo"}),
        );
        add(
            &mut subs,
            Some("rate"),
            "errors",
            json!({"code": "RATE_LIMIT_EXCEEDED"}),
        );
        add(
            &mut subs,
            Some("peers"),
            "peers",
            json!({"dialect": "talo"}),
        );
        let event = json!({"kind": "error_emitted", "dialect": "talo", "code": "NO_PLAYER_FOUND"});
        assert_eq!(
            subs.matching("errors", &event).collect::<Vec<_>>(),
            ["all", "talo"]
        );
        let peer = json!({"kind": "peer_connected", "peer": {"dialect": "talo"}});
        assert_eq!(subs.matching("peers", &peer).collect::<Vec<_>>(), ["peers"]);
        let other = json!({"kind": "peer_connected", "peer": {"dialect": "flow"}});
        assert_eq!(subs.matching("peers", &other).count(), 0);
    }

    #[test]
    fn list_shows_ids_topics_and_arguments() {
        let mut subs = Subscriptions::default();
        add(&mut subs, Some("s1"), "errors", json!({"dialect": "talo"}));
        assert_eq!(
            subs.list_frame(),
            r#"{"subscriptions":[{"subscription_id":"s1","topic":"errors","arguments":{"dialect":"talo"}}],"action":"list_subscriptions"}"#
        );
    }
}
