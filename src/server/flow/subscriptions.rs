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
//! The chain topics (`blocks`, `block_headers`, `block_digests`, `events`,
//! `account_statuses`, `transaction_statuses`, `send_and_get_transaction_statuses`) take
//! flow-go's arguments, checked by [`super::chain`]; the topics
//! above show server-wide state and need a credential (the session refuses them otherwise).
//!
//! As in Flow, an unknown topic or an unknown or ill-typed argument is refused with
//! `error creating data provider: …` (`unsupported topic "…"` as flow-go's factory words it,
//! `invalid arguments: …` for arguments).

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
}

/// A client's id, as flow-go's `ParseClientSubscriptionID` takes it: 1 to 20 bytes.
fn parse_client_id(id: &str, action: &str) -> Result<(), FlowError> {
    let problem = if id.is_empty() {
        "subscription ID provided by the client must not be empty".to_owned()
    } else if id.len() > MAX_SUBSCRIPTION_ID {
        format!("subscription ID provided by the client must not exceed {MAX_SUBSCRIPTION_ID} characters")
    } else {
        return Ok(());
    };
    Err(FlowError::bad_request(
        format!("error parsing subscription id: {problem}"),
        action,
        id,
    ))
}

/// The characters of flow-go's generated ids (URL-safe base64).
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn generate_id() -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    (0..MAX_SUBSCRIPTION_ID)
        .map(|_| char::from(ID_ALPHABET[usize::from(rng.random::<u8>() & 63)]))
        .collect()
}

/// The topic exists and the arguments are the ones it accepts, with the right types.
pub fn check_topic(topic: &str, arguments: &Map<String, Value>) -> Result<(), String> {
    let allowed: &[&str] = match topic {
        "peers" | "channels" => &["dialect"],
        "errors" => &["dialect", "code"],
        "rooms" | "stats" => &[],
        topic if super::chain::CHAIN_TOPICS.contains(&topic) => {
            // The chain's providers prefix their own problems, each in its own words.
            return super::chain::parse_arguments(topic, arguments).map(|_| ());
        }
        // flow-go's factory words it so; the topics this server has are in the catalog.
        other => return Err(format!("unsupported topic {other:?}")),
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

    /// Everything that would refuse this subscribe, in flow-go's order (`handleSubscribe`):
    /// the per-connection limit, the id (generated when empty, else 1 to 20 bytes and not in
    /// use), then the data provider (topic and arguments). Returns the id to subscribe under.
    pub fn prepare(
        &self,
        subscription_id: &str,
        topic: &str,
        arguments: &Map<String, Value>,
    ) -> Result<String, FlowError> {
        if self.by_id.len() >= MAX_SUBSCRIPTIONS {
            return Err(FlowError::new(
                429,
                "error creating new subscription: maximum number of subscriptions reached",
                "subscribe",
                subscription_id,
            ));
        }
        let id = if subscription_id.is_empty() {
            // A collision among 64^20 ids is not worth a loop; a retry costs nothing though.
            let mut id = generate_id();
            while self.by_id.contains_key(&id) {
                id = generate_id();
            }
            id
        } else {
            parse_client_id(subscription_id, "subscribe")?;
            subscription_id.to_owned()
        };
        if self.by_id.contains_key(&id) {
            return Err(FlowError::bad_request(
                format!("error parsing subscription id: subscription ID is already in use: {id}"),
                "subscribe",
                subscription_id,
            ));
        }
        check_topic(topic, arguments).map_err(|problem| {
            FlowError::bad_request(
                format!("error creating data provider: {problem}"),
                "subscribe",
                &id,
            )
        })?;
        Ok(id)
    }

    /// Add a subscription under an id [`Subscriptions::prepare`] returned.
    pub fn insert(&mut self, id: String, subscription: Subscription) {
        self.by_id.insert(id, subscription);
    }

    pub fn remove(&mut self, subscription_id: &str) -> Result<Subscription, FlowError> {
        parse_client_id(subscription_id, "unsubscribe")?;
        self.by_id.remove(subscription_id).ok_or_else(|| {
            FlowError::new(
                404,
                "subscription not found",
                "unsubscribe",
                subscription_id,
            )
        })
    }

    /// The list_subscriptions answer.
    pub fn list_frame(&self) -> String {
        wire::to_text(&wire::SubscriptionList {
            // flow-go lists a nil slice, `null`, when there is nothing to list.
            subscriptions: (!self.by_id.is_empty()).then(|| {
                self.by_id
                    .iter()
                    .map(|(id, s)| wire::ListedSubscription {
                        subscription_id: id.clone(),
                        topic: s.topic.clone(),
                        arguments: s.arguments.clone(),
                    })
                    .collect()
            }),
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

    fn add(subs: &mut Subscriptions, id: &str, topic: &str, arguments: Value) -> String {
        let arguments = args(arguments);
        let id = subs.prepare(id, topic, &arguments).unwrap();
        subs.insert(
            id.clone(),
            Subscription {
                topic: topic.to_owned(),
                arguments,
            },
        );
        id
    }

    #[test]
    fn ids_are_at_most_twenty_bytes_and_generated_when_empty() {
        let subs = Subscriptions::default();
        let empty = Map::new();
        assert!(subs.prepare(&"x".repeat(20), "stats", &empty).is_ok());
        // Bytes, not characters: ten two-byte characters fit, eleven do not.
        assert!(subs.prepare(&"é".repeat(10), "stats", &empty).is_ok());
        for bad in ["x".repeat(21), "é".repeat(11)] {
            let error = subs.prepare(&bad, "stats", &empty).unwrap_err();
            assert_eq!(error.status, 400);
            assert_eq!(
                error.message,
                "error parsing subscription id: subscription ID provided by the client must not exceed 20 characters"
            );
            assert_eq!(
                (error.subscription_id, error.action.as_str()),
                (bad, "subscribe")
            );
        }
        let generated = subs.prepare("", "stats", &empty).unwrap();
        assert_eq!(generated.len(), 20);
        assert!(generated.bytes().all(|b| ID_ALPHABET.contains(&b)));
    }

    #[test]
    fn an_id_in_use_is_refused() {
        let mut subs = Subscriptions::default();
        add(&mut subs, "s1", "stats", json!({}));
        let error = subs.prepare("s1", "stats", &Map::new()).unwrap_err();
        assert_eq!(
            error.message,
            "error parsing subscription id: subscription ID is already in use: s1"
        );
        add(&mut subs, "", "stats", json!({}));
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn the_limit_is_checked_before_the_id_and_the_topic() {
        let mut subs = Subscriptions::default();
        for _ in 0..MAX_SUBSCRIPTIONS {
            add(&mut subs, "", "peers", json!({}));
        }
        let error = subs
            .prepare(&"x".repeat(30), "blocks", &Map::new())
            .unwrap_err();
        assert_eq!(error.status, 429);
        assert_eq!(
            error.message,
            "error creating new subscription: maximum number of subscriptions reached"
        );
        assert_eq!(error.subscription_id, "x".repeat(30));
    }

    #[test]
    fn the_id_is_checked_before_the_topic_and_a_provider_error_names_the_id() {
        let subs = Subscriptions::default();
        let error = subs
            .prepare(&"x".repeat(21), "blocks", &Map::new())
            .unwrap_err();
        assert!(error.message.starts_with("error parsing subscription id: "));
        let error = subs.prepare("", "blockz", &Map::new()).unwrap_err();
        assert_eq!(
            error.message,
            r#"error creating data provider: unsupported topic "blockz""#
        );
        assert_eq!(error.subscription_id.len(), 20);
    }

    #[test]
    fn unknown_topics_and_arguments_fail_the_data_provider() {
        let subs = Subscriptions::default();
        let cases = [
            ("blockz", json!({})),
            ("blocks", json!({})),
            ("stats", json!({"dialect": "talo"})),
            ("peers", json!({"since": 3})),
            ("peers", json!({"dialect": "klingon"})),
            ("errors", json!({"code": 500})),
        ];
        for (topic, arguments) in cases {
            let error = subs.prepare("s1", topic, &args(arguments)).unwrap_err();
            assert_eq!(error.status, 400);
            assert!(error.message.starts_with("error creating data provider: "));
            assert_eq!(error.subscription_id, "s1");
        }
        let error = subs
            .prepare("", "peers", &args(json!({"since": 3})))
            .unwrap_err();
        assert!(error
            .message
            .starts_with("error creating data provider: invalid arguments: "));
    }

    #[test]
    fn unsubscribe_parses_the_id_then_looks_it_up() {
        let mut subs = Subscriptions::default();
        add(&mut subs, "s1", "rooms", json!({}));
        assert_eq!(
            subs.remove("").unwrap_err().message,
            "error parsing subscription id: subscription ID provided by the client must not be empty"
        );
        assert!(subs
            .remove(&"x".repeat(21))
            .unwrap_err()
            .message
            .starts_with("error parsing subscription id: "));
        let missing = subs.remove("s2").unwrap_err();
        assert_eq!(
            (
                missing.status,
                missing.message.as_str(),
                missing.subscription_id.as_str()
            ),
            (404, "subscription not found", "s2")
        );
        assert!(subs.remove("s1").is_ok());
        assert!(subs.is_empty());
    }

    #[test]
    fn events_reach_the_subscriptions_whose_arguments_match() {
        let mut subs = Subscriptions::default();
        add(&mut subs, "all", "errors", json!({}));
        add(&mut subs, "talo", "errors", json!({"dialect": "talo"}));
        add(
            &mut subs,
            "rate",
            "errors",
            json!({"code": "RATE_LIMIT_EXCEEDED"}),
        );
        add(&mut subs, "peers", "peers", json!({"dialect": "talo"}));
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
    fn list_shows_ids_topics_and_arguments_or_null() {
        let mut subs = Subscriptions::default();
        assert_eq!(
            subs.list_frame(),
            r#"{"subscriptions":null,"action":"list_subscriptions"}"#
        );
        add(&mut subs, "s1", "errors", json!({"dialect": "talo"}));
        assert_eq!(
            subs.list_frame(),
            r#"{"subscriptions":[{"subscription_id":"s1","topic":"errors","arguments":{"dialect":"talo"}}],"action":"list_subscriptions"}"#
        );
    }
}
