//! Flow Access API WebSocket streams on `GET /v1/ws`: subscribe, unsubscribe and
//! list_subscriptions over topics of relaydeck's own live data.
//!
//! # Topics
//! | topic | arguments | payload |
//! |---|---|---|
//! | `peers` | `dialect` (optional) | a peer connected, changed or closed |
//! | `rooms` | none | a room changed or closed |
//! | `channels` | `dialect` (optional) | a channel member joined or left |
//! | `errors` | `dialect`, `code` (optional) | every error the server sends, as admins see it |
//! | `stats` | none | totals once a second |
//!
//! An unknown argument is refused as Flow does (`error creating data provider: invalid
//! arguments: …`), an unknown topic likewise (`… unknown topic: …`).
//!
//! # Malformed frames and the message families they produce
//! binary frame → `error reading message`; not JSON → `error parsing message`; `action` or
//! `subscription_id` of the wrong type → `error unmarshalling base message`; `topic` not a
//! string or `arguments` not an object → `error unmarshalling subscribe message`; an
//! unsubscribe without a string `subscription_id` → `error unmarshalling unsubscribe
//! message`; a list_subscriptions frame with fields other than `action` →
//! `error unmarshalling list subscriptions message`. A subscribe that an armed fault fails gets
//! 500 `internal error: …`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocket;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

use crate::catalog::Dialect;
use crate::protocol::admin::{AppStatus, SubscriptionInfo};
use crate::server::connection::{self, Incoming};
use crate::server::hub::{Control, Hub, NewPeer};
use crate::server::{probe_nonce, Shared};

const DIALECT: Dialect = Dialect::Flow;
pub const MAX_SUBSCRIPTIONS: usize = 20;
pub const MAX_SUBSCRIPTION_ID: usize = 20;
pub const TOPICS: [&str; 5] = ["peers", "rooms", "channels", "errors", "stats"];

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let probe_nonce = probe_nonce(&headers);
    upgrade.on_upgrade(move |socket| serve(socket, shared, addr, probe_nonce))
}

struct Subscription {
    topic: String,
    arguments: Map<String, Value>,
}

struct Session {
    shared: Arc<Shared>,
    id: String,
    subscriptions: BTreeMap<String, Subscription>,
    next_generated: u64,
}

/// The error frame; `subscription_id` and `action` are left out when unknown.
pub fn error_frame(
    subscription_id: Option<&str>,
    status: u16,
    message: &str,
    action: Option<&str>,
) -> String {
    let mut frame = Map::new();
    if let Some(id) = subscription_id {
        frame.insert("subscription_id".into(), Value::from(id));
    }
    frame.insert("error".into(), json!({"code": status, "message": message}));
    if let Some(action) = action {
        frame.insert("action".into(), Value::from(action));
    }
    Value::Object(frame).to_string()
}

/// The catalog code (message family) a message belongs to.
fn family(message: &str) -> String {
    crate::catalog::of_dialect(DIALECT)
        .filter(|e| message.starts_with(e.code))
        .max_by_key(|e| e.code.len())
        .map(|e| e.code.to_owned())
        .unwrap_or_else(|| message.to_owned())
}

async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    addr: SocketAddr,
    probe_nonce: Option<String>,
) {
    let Ok(link) = shared.hub.register_peer(
        NewPeer {
            dialect: DIALECT,
            app: None,
            identity: None,
            addr: addr.to_string(),
            probe_nonce,
        },
        None,
    ) else {
        return;
    };
    let (sink, mut stream) = connection::split(socket);
    let writer = connection::spawn_writer(sink, link.outbox, link.abort);
    let mut control = link.control;
    let (_, _, mut events) = shared.hub.subscribe();
    let mut session = Session {
        shared: shared.clone(),
        id: link.id.clone(),
        subscriptions: BTreeMap::new(),
        next_generated: 0,
    };
    let mut client_close = None;
    loop {
        tokio::select! {
            incoming = connection::next_incoming(&mut stream) => match incoming {
                Incoming::Text(text) => session.handle(&text),
                Incoming::Binary(bytes) => {
                    shared.hub.record_inbound(&session.id, &format!("<{} binary bytes>", bytes.len()));
                    session.error(None, 400, "error reading message: binary frames are not supported", None);
                }
                Incoming::Closed(frame) => {
                    client_close = Some(frame.unwrap_or((1005, String::new())));
                    break;
                }
                Incoming::Dropped => break,
            },
            delta = events.recv(), if !session.subscriptions.is_empty() => match delta {
                Ok(delta) => session.publish(&delta.text),
                // A stream that fell behind skips ahead; the stats topic catches it up.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            command = control.recv() => match command {
                Some(Control::Kick { .. }) => {
                    shared.hub.close_peer(&session.id, 4020, "admin_disconnect");
                    break;
                }
                Some(Control::Inject(text)) => session.handle(&text),
                Some(Control::AppStatus(AppStatus::Active)) => {}
                Some(Control::AppStatus(_)) => {}
                Some(Control::Shutdown) => {
                    shared.hub.close_peer(&session.id, 1001, "going_away");
                    break;
                }
                None => break,
            },
        }
    }
    shared.hub.remove_peer(&session.id, client_close);
    connection::finish_writer(writer).await;
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn error(
        &self,
        subscription_id: Option<&str>,
        status: u16,
        message: &str,
        action: Option<&str>,
    ) {
        let code = family(message);
        self.hub().send_error(
            &self.id,
            DIALECT,
            &code,
            subscription_id,
            error_frame(subscription_id, status, message, action),
        );
    }

    fn handle(&mut self, text: &str) {
        self.hub().record_inbound(&self.id, text);
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return self.error(None, 400, &format!("error parsing message: {e}"), None),
        };
        let Some(object) = value.as_object() else {
            return self.error(
                None,
                400,
                "error unmarshalling base message: expected an object",
                None,
            );
        };
        let action = match object.get("action") {
            Some(Value::String(action)) => action.clone(),
            Some(other) => {
                return self.error(
                    None,
                    400,
                    &format!(
                        "error unmarshalling base message: action must be a string, not {other}"
                    ),
                    None,
                )
            }
            None => {
                return self.error(
                    None,
                    400,
                    "error unmarshalling base message: action is required",
                    None,
                )
            }
        };
        let subscription_id = match object.get("subscription_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(other) => {
                return self.error(None, 400, &format!("error unmarshalling base message: subscription_id must be a string, not {other}"), Some(&action))
            }
        };
        match action.as_str() {
            "subscribe" => self.subscribe(object, subscription_id),
            "unsubscribe" => self.unsubscribe(subscription_id),
            "list_subscriptions" => {
                if let Some(extra) = object
                    .keys()
                    .find(|k| !matches!(k.as_str(), "action" | "subscription_id"))
                {
                    return self.error(None, 400, &format!("error unmarshalling list subscriptions message: unknown field {extra:?}"), Some("list_subscriptions"));
                }
                let list: Vec<Value> = self
                    .subscriptions
                    .iter()
                    .map(|(id, s)| json!({"subscription_id": id, "topic": s.topic, "arguments": s.arguments}))
                    .collect();
                self.hub().send(
                    &self.id,
                    json!({"subscriptions": list, "action": "list_subscriptions"}).to_string(),
                );
            }
            other => self.error(
                subscription_id.as_deref(),
                400,
                &format!("unknown action type: {other}"),
                Some(other),
            ),
        }
    }

    fn subscribe(&mut self, object: &Map<String, Value>, subscription_id: Option<String>) {
        let action = Some("subscribe");
        let topic = match object.get("topic") {
            Some(Value::String(topic)) => topic.clone(),
            Some(other) => {
                return self.error(
                    subscription_id.as_deref(),
                    400,
                    &format!(
                    "error unmarshalling subscribe message: topic must be a string, not {other}"
                ),
                    action,
                )
            }
            None => {
                return self.error(
                    subscription_id.as_deref(),
                    400,
                    "error unmarshalling subscribe message: topic is required",
                    action,
                )
            }
        };
        let arguments = match object.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(arguments)) => arguments.clone(),
            Some(other) => return self.error(subscription_id.as_deref(), 400, &format!("error unmarshalling subscribe message: arguments must be an object, not {other}"), action),
        };
        if let Some(id) = &subscription_id {
            if id.is_empty() || id.chars().count() > MAX_SUBSCRIPTION_ID {
                return self.error(
                    Some(id),
                    400,
                    "error parsing subscription id: subscription ID provided is too long or empty",
                    action,
                );
            }
            if self.subscriptions.contains_key(id) {
                return self.error(
                    Some(id),
                    400,
                    &format!("subscription ID is already in use: {id}"),
                    action,
                );
            }
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return self.error(
                subscription_id.as_deref(),
                429,
                "error creating new subscription: maximum number of subscriptions reached",
                action,
            );
        }
        if let Err(problem) = check_arguments(&topic, &arguments) {
            return self.error(
                subscription_id.as_deref(),
                400,
                &format!("error creating data provider: {problem}"),
                action,
            );
        }
        if let Some(code) = self.hub().take_fault(&self.id, DIALECT) {
            let status = crate::catalog::get(DIALECT, &code)
                .and_then(|e| e.status)
                .unwrap_or(500);
            return self.error(
                subscription_id.as_deref(),
                status,
                &format!("{code}: a fault was armed by an operator"),
                action,
            );
        }
        let id = subscription_id.unwrap_or_else(|| {
            self.next_generated += 1;
            format!("sub-{}", self.next_generated)
        });
        self.hub().add_subscription(SubscriptionInfo {
            peer: self.id.clone(),
            dialect: DIALECT,
            id: id.clone(),
            topic: topic.clone(),
            arguments: Value::Object(arguments.clone()),
        });
        self.subscriptions
            .insert(id.clone(), Subscription { topic, arguments });
        self.hub().send(
            &self.id,
            json!({"subscription_id": id, "action": "subscribe"}).to_string(),
        );
    }

    fn unsubscribe(&mut self, subscription_id: Option<String>) {
        let action = Some("unsubscribe");
        let Some(id) = subscription_id else {
            return self.error(
                None,
                400,
                "error unmarshalling unsubscribe message: subscription_id is required",
                action,
            );
        };
        if id.is_empty() || id.chars().count() > MAX_SUBSCRIPTION_ID {
            return self.error(
                Some(&id),
                400,
                "error parsing subscription id: subscription ID provided is too long or empty",
                action,
            );
        }
        if self.subscriptions.remove(&id).is_none() {
            return self.error(Some(&id), 404, "subscription not found", action);
        }
        self.hub().remove_subscription(&self.id, &id);
        self.hub().send(
            &self.id,
            json!({"subscription_id": id, "action": "unsubscribe"}).to_string(),
        );
    }

    /// Forward one admin delta to the subscriptions whose topic and arguments it matches.
    fn publish(&self, delta: &str) {
        let Ok(value) = serde_json::from_str::<Value>(delta) else {
            return;
        };
        let event = &value["event"];
        let kind = event["kind"].as_str().unwrap_or_default();
        let topic = match kind {
            "peer_connected" | "peer_updated" | "peer_closed" => "peers",
            "room_updated" | "room_closed" => "rooms",
            "channel_joined" | "channel_left" => "channels",
            "error_emitted" => "errors",
            "stats" => "stats",
            _ => return,
        };
        // A Flow stream never reports its own frames, so that subscribing to errors cannot
        // feed on itself.
        if event["peer"].as_str() == Some(self.id.as_str())
            || event["peer"]["id"].as_str() == Some(self.id.as_str())
        {
            return;
        }
        for (id, subscription) in &self.subscriptions {
            if subscription.topic != topic {
                continue;
            }
            let matches = subscription.arguments.iter().all(|(name, wanted)| {
                let actual = match name.as_str() {
                    "dialect" => event
                        .get("dialect")
                        .or_else(|| event["peer"].get("dialect")),
                    "code" => event.get("code"),
                    _ => None,
                };
                actual == Some(wanted)
            });
            if matches {
                let payload = json!({"subscription_id": id, "topic": topic, "payload": event});
                self.hub().send(&self.id, payload.to_string());
            }
        }
    }
}

fn check_arguments(topic: &str, arguments: &Map<String, Value>) -> Result<(), String> {
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
            return Err(format!("invalid arguments: dialect {value} is not one of signal-fish, talo, talo-http, flow, pubsub"));
        }
        if name == "code" && !value.is_string() {
            return Err("invalid arguments: code must be a string".to_owned());
        }
    }
    Ok(())
}
