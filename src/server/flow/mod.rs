//! Flow Access API WebSocket streams on `GET /v1/ws`: subscribe, unsubscribe and
//! list_subscriptions over topics of relaydeck's own live data.
//!
//! [`request`] turns frames into requests or into the error each malformed frame earns (one
//! trigger per message family of Flow's documentation); [`subscriptions`] holds a connection's
//! subscriptions, the topics and their argument rules. This module wires them to the socket and
//! the hub: events come from the hub's admin delta stream, and every error goes through
//! [`Hub::send_error`] so consoles see it. A subscribe that an armed fault fails gets 500
//! `internal error: …`, after every other check has passed (as a provider failing after creation
//! would).

pub mod request;
pub mod subscriptions;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocket;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::catalog::Dialect;
use crate::protocol::admin::{AppStatus, SubscriptionInfo};
use crate::server::connection::{self, Incoming};
use crate::server::hub::{Control, Hub, NewPeer};
use crate::server::{probe_nonce, Shared};

use self::request::{FlowError, Request};
use self::subscriptions::{Subscription, Subscriptions};
pub use self::subscriptions::{MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTION_ID, TOPICS};
use crate::protocol::flow as wire;

const DIALECT: Dialect = Dialect::Flow;

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let probe_nonce = probe_nonce(&headers);
    upgrade.on_upgrade(move |socket| serve(socket, shared, addr, probe_nonce))
}

struct Session {
    shared: Arc<Shared>,
    id: String,
    subscriptions: Subscriptions,
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
        subscriptions: Subscriptions::default(),
    };
    let mut client_close = None;
    loop {
        tokio::select! {
            incoming = connection::next_incoming(&mut stream) => match incoming {
                Incoming::Text(text) => session.handle(&text),
                Incoming::Binary(bytes) => {
                    shared.hub.record_inbound(&session.id, &format!("<{} binary bytes>", bytes.len()));
                    session.fail(&request::binary(bytes.len()));
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

    fn fail(&self, error: &FlowError) {
        self.hub().send_error(
            &self.id,
            DIALECT,
            &family(&error.message),
            error.subscription_id.as_deref(),
            error.frame(),
        );
    }

    fn handle(&mut self, text: &str) {
        self.hub().record_inbound(&self.id, text);
        let outcome = match request::parse(text) {
            Ok(Request::Subscribe {
                subscription_id,
                topic,
                arguments,
            }) => self.subscribe(subscription_id, Subscription { topic, arguments }),
            Ok(Request::Unsubscribe { subscription_id }) => self.unsubscribe(subscription_id),
            Ok(Request::ListSubscriptions) => {
                self.hub().send(&self.id, self.subscriptions.list_frame());
                Ok(())
            }
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            self.fail(&error);
        }
    }

    fn subscribe(
        &mut self,
        subscription_id: Option<String>,
        subscription: Subscription,
    ) -> Result<(), FlowError> {
        self.subscriptions.check_new(
            subscription_id.as_deref(),
            &subscription.topic,
            &subscription.arguments,
        )?;
        if let Some(code) = self.hub().take_fault(&self.id, DIALECT) {
            let status = crate::catalog::get(DIALECT, &code)
                .and_then(|e| e.status)
                .unwrap_or(500);
            return Err(FlowError {
                subscription_id,
                status,
                message: format!("{code}: a fault was armed by an operator"),
                action: Some("subscribe".to_owned()),
            });
        }
        let info_topic = subscription.topic.clone();
        let info_arguments = Value::Object(subscription.arguments.clone());
        let id = self.subscriptions.insert(subscription_id, subscription);
        self.hub().add_subscription(SubscriptionInfo {
            peer: self.id.clone(),
            dialect: DIALECT,
            id: id.clone(),
            topic: info_topic,
            arguments: info_arguments,
        });
        self.hub().send(
            &self.id,
            wire::to_text(&wire::Ack {
                subscription_id: id,
                action: "subscribe".to_owned(),
            }),
        );
        Ok(())
    }

    fn unsubscribe(&mut self, subscription_id: String) -> Result<(), FlowError> {
        self.subscriptions.remove(&subscription_id)?;
        self.hub().remove_subscription(&self.id, &subscription_id);
        self.hub().send(
            &self.id,
            wire::to_text(&wire::Ack {
                subscription_id,
                action: "unsubscribe".to_owned(),
            }),
        );
        Ok(())
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
        for id in self.subscriptions.matching(topic, event) {
            let data = wire::Data {
                subscription_id: id.to_owned(),
                topic: topic.to_owned(),
                payload: event,
            };
            self.hub().send(&self.id, wire::to_text(&data));
        }
    }
}
