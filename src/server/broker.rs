//! Messages between nodes by namespace: each dialect publishes its own messages and registers
//! the handler that acts on them where they arrive; the broker carries them without knowing
//! what they say.
//!
//! The shape is Centrifuge's `Broker` (publish on a topic, one handler per namespace):
//!
//! | namespace | owner | what crosses |
//! |---|---|---|
//! | `pubsub` | [`crate::server::pubsub::remote`] | presence (peers, memberships, whole states), channel messages, direct `send` |
//! | `talo` | [`crate::server::talo::remote`] | presence, channel and broadcast frames for each node's players |
//! | `signal_fish` | [`crate::server::signal_fish::tunnel`] | a player's frames to and from the node holding its room |
//!
//! A [`Link`] carries them: a server without a cluster has none (it is alone, and every
//! publish stops here without being built), a cluster has its Redis link
//! ([`crate::server::cluster`]). A publisher serves its own node's clients itself, on its hot
//! path and without encoding anything; the broker takes the message to every other node's
//! handler. Besides messages, a handler hears what only the link knows: a node asks for
//! everything (it joined, or got Redis back), a node is gone, the link is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;

use super::Shared;

/// One dialect's cross-node messages.
pub trait Topic: Serialize {
    const NAMESPACE: &'static str;

    /// The bytes a client chose (relayed frames): what a link bounds its queue by. The rest
    /// of a message is small.
    fn weight(&self) -> usize {
        0
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Every other node.
    Others,
    /// One node.
    Node(&'a str),
}

/// What carries messages to the other nodes.
pub trait Link: Send + Sync {
    /// Queue `message` for `target`; never blocks (a link drops and counts what it cannot hold).
    fn send(&self, target: Target<'_>, namespace: &'static str, message: Value, weight: usize);
    /// Whether messages leave now; when they cannot, the message the caller gives up on is
    /// counted as dropped.
    fn can_cross(&self) -> bool;
    /// A message that arrived could not be handed on (its handler's queue is full).
    fn note_dropped(&self);
}

/// Acts on one namespace's messages from other nodes.
pub trait Handler: Send + Sync {
    /// A message another node published or sent here. One it cannot read is ignored: what
    /// arrives from other nodes is input like any other.
    fn message(&self, shared: &Arc<Shared>, from: &str, message: Value);

    /// Tell `target` everything of this namespace that is on this node: it joined, or came
    /// back after losing Redis.
    fn announce(&self, _shared: &Arc<Shared>, _target: Target<'_>) {}

    /// `node` is gone (it said goodbye, or its heartbeat lapsed).
    fn node_gone(&self, _shared: &Arc<Shared>, _node: &str) {}

    /// Messages can no longer cross (this node lost Redis).
    fn link_lost(&self, _shared: &Arc<Shared>) {}

    /// The messages of this namespace queued one after another for the same destination,
    /// before they leave together: a handler may merge them, keeping what each recipient
    /// gets and in which order.
    fn coalesce(&self, messages: Vec<Value>) -> Vec<Value> {
        messages
    }
}

/// The handlers by namespace; registered once at start-up, read by the link for each message.
#[derive(Default)]
pub struct Handlers {
    // A BTreeMap: node events reach the handlers in the same order on every run.
    by_namespace: RwLock<BTreeMap<&'static str, Arc<dyn Handler>>>,
}

impl Handlers {
    pub fn register(&self, namespace: &'static str, handler: Arc<dyn Handler>) {
        self.by_namespace
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(namespace, handler);
    }

    fn get(&self, namespace: &str) -> Option<Arc<dyn Handler>> {
        self.by_namespace
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(namespace)
            .cloned()
    }

    // A copy, so that no handler runs under the registry's lock.
    fn all(&self) -> Vec<Arc<dyn Handler>> {
        self.by_namespace
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A message from `from`; an unknown namespace (a newer node's) is ignored.
    pub fn deliver(&self, shared: &Arc<Shared>, from: &str, namespace: &str, message: Value) {
        match self.get(namespace) {
            Some(handler) => handler.message(shared, from, message),
            None => tracing::debug!(namespace, "broker: no handler for a namespace"),
        }
    }

    pub fn announce(&self, shared: &Arc<Shared>, target: Target<'_>) {
        for handler in self.all() {
            handler.announce(shared, target);
        }
    }

    pub fn node_gone(&self, shared: &Arc<Shared>, node: &str) {
        for handler in self.all() {
            handler.node_gone(shared, node);
        }
    }

    pub fn link_lost(&self, shared: &Arc<Shared>) {
        for handler in self.all() {
            handler.link_lost(shared);
        }
    }

    pub fn coalesce(&self, namespace: &str, messages: Vec<Value>) -> Vec<Value> {
        match self.get(namespace) {
            Some(handler) if messages.len() > 1 => handler.coalesce(messages),
            _ => messages,
        }
    }
}

/// The dialects' way to the other nodes.
#[derive(Clone)]
pub struct Broker {
    /// `None`: this node is alone.
    link: Option<Arc<dyn Link>>,
    handlers: Arc<Handlers>,
}

impl Broker {
    /// A node without other nodes: messages are not even built.
    pub fn alone() -> Broker {
        Broker {
            link: None,
            handlers: Arc::default(),
        }
    }

    pub fn linked(link: Arc<dyn Link>) -> Broker {
        Broker {
            link: Some(link),
            handlers: Arc::default(),
        }
    }

    pub fn register(&self, namespace: &'static str, handler: Arc<dyn Handler>) {
        self.handlers.register(namespace, handler);
    }

    /// No other node: what a publisher would build for them is not needed.
    pub fn is_alone(&self) -> bool {
        self.link.is_none()
    }

    /// What the link hands incoming messages and node events to.
    pub fn handlers(&self) -> &Arc<Handlers> {
        &self.handlers
    }

    /// To every other node's handler of `T`'s namespace. `message` is built only when there
    /// are other nodes.
    pub fn publish<T: Topic>(&self, message: impl FnOnce() -> T) {
        self.send(Target::Others, message);
    }

    /// To one node's handler of `T`'s namespace.
    pub fn send_to<T: Topic>(&self, node: &str, message: impl FnOnce() -> T) {
        self.send(Target::Node(node), message);
    }

    pub fn send<T: Topic>(&self, target: Target<'_>, message: impl FnOnce() -> T) {
        let Some(link) = &self.link else {
            return;
        };
        let message = message();
        let weight = message.weight();
        match serde_json::to_value(&message) {
            Ok(value) => link.send(target, T::NAMESPACE, value, weight),
            Err(error) => tracing::warn!(%error, "broker: a message could not be encoded"),
        }
    }

    /// Whether a message published now reaches the other nodes (always, alone: there are
    /// none). A caller that gives up on its message because of `false` has it counted.
    pub fn can_cross(&self) -> bool {
        self.link.as_ref().is_none_or(|link| link.can_cross())
    }

    pub fn note_dropped(&self) {
        if let Some(link) = &self.link {
            link.note_dropped();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Serialize)]
    struct Ping {
        text: String,
    }

    impl Topic for Ping {
        const NAMESPACE: &'static str = "ping";
        fn weight(&self) -> usize {
            self.text.len()
        }
    }

    /// What a link was given: the node (`None`: every other), the namespace, the message
    /// and its weight.
    type Sent = (Option<String>, &'static str, Value, usize);

    #[derive(Default)]
    struct Recorded {
        sent: Mutex<Vec<Sent>>,
    }

    impl Link for Recorded {
        fn send(&self, target: Target<'_>, namespace: &'static str, message: Value, weight: usize) {
            let to = match target {
                Target::Others => None,
                Target::Node(node) => Some(node.to_owned()),
            };
            self.sent
                .lock()
                .unwrap()
                .push((to, namespace, message, weight));
        }

        fn can_cross(&self) -> bool {
            false
        }

        fn note_dropped(&self) {}
    }

    #[test]
    fn alone_nothing_is_built_and_everything_crosses() {
        let broker = Broker::alone();
        broker.publish::<Ping>(|| unreachable!("no other node to build it for"));
        assert!(broker.can_cross());
    }

    #[test]
    fn a_link_gets_the_namespace_the_message_and_its_weight() {
        let link = Arc::new(Recorded::default());
        let broker = Broker::linked(link.clone());
        broker.publish(|| Ping { text: "hi".into() });
        broker.send_to("node-b", || Ping { text: "x".into() });
        assert!(!broker.can_cross());
        let sent = link.sent.lock().unwrap();
        assert_eq!(
            *sent,
            [
                (None, "ping", serde_json::json!({"text": "hi"}), 2),
                (
                    Some("node-b".to_owned()),
                    "ping",
                    serde_json::json!({"text": "x"}),
                    1
                ),
            ]
        );
    }
}
