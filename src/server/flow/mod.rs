//! Flow Access API WebSocket streams on `GET /v1/ws`: subscribe, unsubscribe and
//! list_subscriptions over flow-go's chain topics and topics of relaydeck's own live data.
//!
//! [`request`] turns frames into requests or into the error each malformed frame earns (one
//! trigger per message family of Flow's documentation); [`subscriptions`] holds a connection's
//! subscriptions, the topics and their argument rules; [`chain`] and [`transactions`] are the
//! simulated chain the chain topics stream. This module wires them to the socket and the hub:
//! events come from the hub's admin delta stream, blocks, events and transaction statuses
//! from the chain as they fall due, and every error goes through [`Hub::send_error`] so
//! consoles see it. A subscribe that an armed fault fails gets 500 `internal error: …`, after
//! every other check has passed (as a provider failing after creation would); so does a sent
//! transaction that the validator refuses, after its acknowledgement, as flow-go's does.
//!
//! A connection with no subscriptions that has been sent nothing for
//! [`FlowSettings::inactivity_timeout_ms`] (flow-go's `DefaultInactivityTimeout`, a minute) is
//! closed. flow-go drops the TCP connection without a close frame; relaydeck sends close 1000
//! `inactivity_timeout` first, so that a client and the console can tell why.

pub mod address;
pub mod chain;
pub mod encoding;
pub mod event_filter;
pub mod ids;
pub mod request;
pub mod subscriptions;
pub mod transaction_body;
pub mod transactions;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::catalog::Dialect;
use crate::protocol::admin::{Snapshot, SubscriptionInfo};
use crate::server::access;
use crate::server::connection::{self, Flow};
use crate::server::hub::{Delta, Hub, NewPeer};
use crate::server::peer::{Notice, PeerHandle, Priority};
use crate::server::{probe_nonce, Shared};

use self::request::{FlowError, Request};
use self::subscriptions::{Subscription, Subscriptions};
pub use self::subscriptions::{MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTION_ID, TOPICS};
use crate::protocol::flow as wire;

const DIALECT: Dialect = Dialect::Flow;

/// The largest frame read; requests are a few hundred bytes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The close reason of a connection closed for inactivity.
pub const INACTIVITY_REASON: &str = "inactivity_timeout";

/// Server-wide Flow stream settings (`"flow"` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowSettings {
    /// A connection with no subscriptions that has been sent nothing for this long is closed
    /// (1000 `inactivity_timeout`); flow-go's default is a minute.
    pub inactivity_timeout_ms: u64,
    /// Read requests so that every message of Flow's error page has a trigger: a missing
    /// `action` or `topic`, an unsubscribe without an id and a list_subscriptions with an
    /// unknown field are unmarshalling errors, and a frame must be exactly one JSON value with
    /// exact keys. `false` (the default) reads requests as flow-go does: the first value, keys
    /// in any case, missing and unknown fields ignored.
    pub strict_requests: bool,
    /// The simulated chain of the chain topics finalizes a block this often.
    pub block_interval_ms: u64,
    /// The server pings every stream this often (flow-go's `PingPeriod`, 9 s); 0 turns pings
    /// off.
    pub ping_interval_ms: u64,
    /// A stream whose last pong (or its opening) is this old is dropped without a close
    /// (flow-go's `PongWait`, 10 s).
    pub pong_wait_ms: u64,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            inactivity_timeout_ms: 60_000,
            strict_requests: false,
            block_interval_ms: 1_000,
            ping_interval_ms: 9_000,
            pong_wait_ms: 10_000,
        }
    }
}

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let path = crate::server::bans::path_of(&uri);
    // flow-go's streams are open: no credential, any Origin. A credential unlocks relaydeck's
    // own topics, and only from a page the config allows, so a page elsewhere cannot borrow it;
    // a wrong one opens the stream as none would (flow-go ignores the header), and asking for
    // those topics then says what is missing.
    let page_allowed = access::origin_refusal(&headers, shared.hub.config(), true).is_none();
    // A credential that does not match counts as a guess, as on `/admin`: an address past
    // the limit is refused whatever it presents, so guessing here is no faster than there.
    let presented = headers.contains_key(axum::http::header::AUTHORIZATION);
    let failures = &shared.admission.auth_failures;
    if presented {
        if let Some(refused) = failures.refusal(addr.ip()) {
            return refused;
        }
    }
    let granted = page_allowed
        .then(|| access::authorize(&headers, shared.hub.config(), &shared.admin_token, true))
        .flatten();
    if presented && page_allowed && granted.is_none() {
        failures.failed(addr.ip(), "GET /v1/ws");
    }
    let probe_nonce = probe_nonce(&headers);
    connection::configure(upgrade, MAX_MESSAGE_BYTES).on_upgrade(move |socket| {
        let new = NewPeer::anonymous(DIALECT, addr, probe_nonce);
        connection::serve(
            socket,
            shared.clone(),
            path,
            new,
            None,
            |_| (1001, "going_away".to_owned()),
            move |peer| {
                let (_, snapshot, events) = shared.hub.subscribe();
                let scope = granted
                    .as_ref()
                    .and_then(|g| g.app())
                    .map(|app| AppScope::new(app, &snapshot));
                let settings = &shared.hub.config().flow;
                let inactivity = Duration::from_millis(settings.inactivity_timeout_ms);
                let strict = settings.strict_requests;
                let chain = chain::Chain::new(settings.block_interval_ms);
                Session {
                    open: granted.is_none(),
                    chain,
                    streams: BTreeMap::new(),
                    inactivity,
                    strict,
                    last_sent: Instant::now(),
                    shared,
                    peer,
                    events,
                    scope,
                    subscriptions: Subscriptions::default(),
                }
            },
        )
    })
}

struct Session {
    shared: Arc<Shared>,
    peer: Arc<PeerHandle>,
    events: broadcast::Receiver<Arc<Delta>>,
    /// Set for a stream opened with an app's secret key: only that app's data goes out.
    scope: Option<AppScope>,
    subscriptions: Subscriptions,
    inactivity: Duration,
    strict: bool,
    /// When this session last queued a frame for the client: flow-go measures inactivity from
    /// the last message written.
    last_sent: Instant,
    /// Opened without a credential: only the chain topics.
    open: bool,
    chain: chain::Chain,
    /// The chain-topic subscriptions, by id, with the next block each sends.
    streams: BTreeMap<String, ChainStream>,
}

struct ChainStream {
    topic: String,
    status: chain::BlockStatus,
    next: u64,
    /// Events: which of a block's events the stream sends.
    filter: Option<event_filter::EventFilter>,
    /// The transaction topics: the transaction followed.
    transaction: Option<TransactionWatch>,
    /// Events and account statuses: a message when a block has matching events (never, on
    /// the simulated chain) or after this many blocks, as flow-go's providers count them.
    heartbeat: Option<u64>,
    blocks_since_message: u64,
    message_index: u64,
}

/// A transaction status stream's progress (flow-go's `TransactionMetadata`).
struct TransactionWatch {
    id: String,
    /// The last status reported.
    reported: transactions::TxStatus,
    /// The finalized height the stream started at: a transaction still unknown
    /// [`transactions::TRANSACTION_EXPIRY`] blocks later is reported expired.
    start_height: u64,
}

/// Most blocks one stream sends per wake-up, so a start far in the past catches up in steps
/// between other work.
const CATCH_UP_BLOCKS: u64 = 64;

/// What belongs to one app. Closes and errors name only a peer or a room, so the stream keeps
/// track of which of those are the app's, from its snapshot on.
struct AppScope {
    app: String,
    peers: HashSet<String>,
    rooms: HashSet<String>,
}

impl AppScope {
    fn new(app: &str, snapshot: &Snapshot) -> AppScope {
        let mine = |candidate: &Option<String>| candidate.as_deref() == Some(app);
        AppScope {
            app: app.to_owned(),
            peers: snapshot
                .peers
                .iter()
                .filter(|p| mine(&p.app))
                .map(|p| p.id.clone())
                .collect(),
            rooms: snapshot
                .rooms
                .iter()
                .filter(|r| r.app == app)
                .map(|r| r.code.clone())
                .collect(),
        }
    }

    /// Whether an event concerns the app, learning its peers and rooms as they appear.
    fn admits(&mut self, kind: &str, event: &Value) -> bool {
        let app = self.app.as_str();
        match kind {
            "peer_connected" | "peer_updated" => {
                let id = event["peer"]["id"].as_str().unwrap_or_default();
                if event["peer"]["app"].as_str() == Some(app) {
                    self.peers.insert(id.to_owned());
                    true
                } else {
                    self.peers.remove(id)
                }
            }
            "peer_closed" => self
                .peers
                .remove(event["peer"].as_str().unwrap_or_default()),
            "room_updated" => {
                let code = event["room"]["code"].as_str().unwrap_or_default();
                event["room"]["app"].as_str() == Some(app) && {
                    self.rooms.insert(code.to_owned());
                    true
                }
            }
            "room_closed" => self
                .rooms
                .remove(event["code"].as_str().unwrap_or_default()),
            "channel_joined" | "channel_left" => event["app"].as_str() == Some(app),
            "error_emitted" => event["peer"]
                .as_str()
                .is_some_and(|peer| self.peers.contains(peer)),
            // Server-wide totals are not one app's to see.
            _ => false,
        }
    }
}

/// The catalog code (the most specific message family) a message belongs to.
fn family(message: &str) -> String {
    crate::catalog::flow_family(message)
        .map(|e| e.code.to_owned())
        .unwrap_or_else(|| message.to_owned())
}

impl connection::Session for Session {
    fn on_text(&mut self, text: &str) -> Flow {
        self.handle(text);
        Flow::Continue
    }

    fn on_binary(&mut self, bytes: &[u8]) -> Flow {
        let parsed = request::parse_binary(bytes, self.strict);
        self.handle_request(parsed);
        Flow::Continue
    }

    fn on_control(&mut self, notice: Notice) -> Flow {
        match notice {
            Notice::Kick { .. } => Flow::close(4020, "admin_disconnect"),
            Notice::Shutdown => Flow::close(1001, "going_away"),
            // Streams are not bound to an app.
            Notice::AppStatus(_) => Flow::Continue,
        }
    }

    fn keepalive(&self) -> Option<connection::Keepalive> {
        let settings = &self.shared.hub.config().flow;
        (settings.ping_interval_ms > 0).then(|| connection::Keepalive::Deadline {
            every: Duration::from_millis(settings.ping_interval_ms),
            pong_wait: Duration::from_millis(settings.pong_wait_ms),
        })
    }

    /// flow-go has no timeout for a client that sends nothing: pongs keep a stream, and its
    /// own inactivity close (below) only concerns streams without subscriptions.
    fn idle_close(&self) -> Option<(u16, &'static str)> {
        None
    }

    fn deadline(&self) -> Option<Instant> {
        self.subscriptions
            .is_empty()
            .then(|| self.last_sent + self.inactivity)
    }

    fn on_deadline(&mut self) -> Flow {
        if self.subscriptions.is_empty() && self.last_sent.elapsed() >= self.inactivity {
            Flow::close(1000, INACTIVITY_REASON)
        } else {
            Flow::Continue
        }
    }

    async fn background(&mut self) -> Flow {
        // Without subscriptions to relaydeck's own topics deltas are skipped rather than read
        // (a new subscription sees state from then on, as a fresh subscriber would).
        let own = self.subscriptions.len() > self.streams.len();
        let now = Instant::now();
        let next_block = self.streams.values().map(|s| self.due(s, now)).min();
        let received = tokio::select! {
            received = self.events.recv(), if own => received,
            () = tokio::time::sleep_until(next_block.unwrap_or_else(Instant::now)), if next_block.is_some() => {
                self.send_blocks();
                return Flow::Continue;
            }
            else => std::future::pending().await,
        };
        match received {
            Ok(delta) => {
                self.publish(&delta.text);
                Flow::Continue
            }
            // A stream that fell behind skips ahead; the stats topic catches it up.
            Err(broadcast::error::RecvError::Lagged(_)) => Flow::Continue,
            Err(broadcast::error::RecvError::Closed) => Flow::close(1001, "going_away"),
        }
    }
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn fail(&mut self, error: &FlowError) {
        self.last_sent = Instant::now();
        let subscription_id = Some(error.subscription_id.as_str()).filter(|id| !id.is_empty());
        self.hub().send_error(
            &self.peer,
            &family(&error.message),
            subscription_id,
            encoding::go_encoded(&error.frame()),
        );
    }

    fn reply(&mut self, text: String) {
        self.last_sent = Instant::now();
        self.hub().deliver(
            &self.peer,
            &encoding::go_encoded(&text).into(),
            Priority::Reply,
        );
    }

    fn handle(&mut self, text: &str) {
        let parsed = request::parse(text, self.strict);
        self.handle_request(parsed);
    }

    fn handle_request(&mut self, parsed: Result<Request, FlowError>) {
        let outcome = match parsed {
            Ok(Request::Subscribe {
                subscription_id,
                topic,
                arguments,
            }) => self.subscribe(subscription_id, Subscription { topic, arguments }),
            Ok(Request::Unsubscribe { subscription_id }) => self.unsubscribe(subscription_id),
            Ok(Request::ListSubscriptions) => {
                let list = self.subscriptions.list_frame();
                self.reply(list);
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
        subscription_id: String,
        subscription: Subscription,
    ) -> Result<(), FlowError> {
        let id = self.subscriptions.prepare(
            &subscription_id,
            &subscription.topic,
            &subscription.arguments,
        )?;
        let is_chain = chain::CHAIN_TOPICS.contains(&subscription.topic.as_str());
        if self.open && !is_chain {
            return Err(FlowError::bad_request(
                format!(
                    "error creating data provider: topic {:?} shows server-wide state and needs Authorization: Bearer <admin token, viewer token or an app's secret key>; without one only {} stream",
                    request::clip(&subscription.topic),
                    chain::CHAIN_TOPICS.join(", ")
                ),
                "subscribe",
                &id,
            ));
        }
        if let Some(code) = self.hub().take_fault(&self.peer) {
            let status = crate::catalog::get(DIALECT, &code)
                .and_then(|e| e.status)
                .unwrap_or(500);
            let message = format!("{code}: a fault was armed by an operator");
            // The message-level families are answered before a request is understood, with
            // no id or action, as flow-go answers them.
            let error = if matches!(
                code.as_str(),
                "error reading message" | "error parsing message"
            ) {
                FlowError::new(status, message, "", "")
            } else {
                FlowError::new(status, message, "subscribe", &id)
            };
            return Err(error);
        }
        let info_topic = subscription.topic.clone();
        let info_arguments = Value::Object(subscription.arguments.clone());
        let mut send_failure = None;
        if is_chain {
            if let Ok(arguments) =
                chain::parse_arguments(&subscription.topic, &subscription.arguments)
            {
                // From the latest block of that status, as flow-go's `…FromLatest` starts.
                let now = Instant::now();
                let head = self.chain.finalized_head(now);
                let next = arguments
                    .start_height
                    .or_else(|| self.chain.head(arguments.status, now))
                    .unwrap_or(0);
                let transaction = match arguments.transaction {
                    Some(chain::TransactionArgument::Watch(tx)) => Some(TransactionWatch {
                        id: tx,
                        reported: transactions::TxStatus::Unknown,
                        start_height: self
                            .chain
                            .head(chain::BlockStatus::Sealed, now)
                            .unwrap_or(0),
                    }),
                    Some(chain::TransactionArgument::Send(tx)) => {
                        match transactions::validate(&tx, head) {
                            Ok(()) => {
                                self.shared.flow_ledger.submit(&tx, head);
                                Some(TransactionWatch {
                                    id: tx.id,
                                    reported: transactions::TxStatus::Unknown,
                                    start_height: head,
                                })
                            }
                            Err(problem) => {
                                send_failure = Some(transactions::send_failure(&problem));
                                None
                            }
                        }
                    }
                    None => None,
                };
                if send_failure.is_none() {
                    self.streams.insert(
                        id.clone(),
                        ChainStream {
                            topic: subscription.topic.clone(),
                            status: arguments.status,
                            next,
                            filter: arguments.filter,
                            transaction,
                            heartbeat: arguments.heartbeat_interval,
                            blocks_since_message: 0,
                            message_index: 0,
                        },
                    );
                }
            }
        }
        if let Some(message) = send_failure {
            // flow-go acknowledges the subscription, then its provider fails: a 500 names it
            // and the subscription is gone.
            self.reply(wire::to_text(&wire::Ack {
                subscription_id: id.clone(),
                action: "subscribe".to_owned(),
            }));
            return Err(FlowError::new(500, message, "subscribe", &id));
        }
        self.subscriptions.insert(id.clone(), subscription);
        self.hub().add_subscription(SubscriptionInfo {
            peer: self.peer.id.clone(),
            dialect: DIALECT,
            id: id.clone(),
            topic: info_topic,
            arguments: info_arguments,
        });
        self.reply(wire::to_text(&wire::Ack {
            subscription_id: id,
            action: "subscribe".to_owned(),
        }));
        Ok(())
    }

    fn unsubscribe(&mut self, subscription_id: String) -> Result<(), FlowError> {
        self.subscriptions.remove(&subscription_id)?;
        self.streams.remove(&subscription_id);
        self.hub()
            .remove_subscription(&self.peer.id, &subscription_id);
        self.reply(wire::to_text(&wire::Ack {
            subscription_id,
            action: "unsubscribe".to_owned(),
        }));
        Ok(())
    }

    /// When a stream has something to send next.
    fn due(&self, stream: &ChainStream, now: Instant) -> Instant {
        let Some(watch) = &stream.transaction else {
            return self.chain.due(stream.next, stream.status);
        };
        let next_block = || {
            self.chain.due(
                self.chain.finalized_head(now).saturating_add(1),
                chain::BlockStatus::Finalized,
            )
        };
        match self.shared.flow_ledger.find(&watch.id) {
            // A transaction seen for the first time is reported at once.
            Some(_) if watch.reported == transactions::TxStatus::Unknown => now,
            Some(included) => included
                .next_change(watch.reported)
                .map_or_else(next_block, |height| {
                    self.chain.due(height, chain::BlockStatus::Finalized)
                }),
            // Unknown so far: looked for at every block, as flow-go does.
            None => next_block(),
        }
    }

    /// Send what every stream has due: blocks that reached the stream's status, events and
    /// heartbeats, and the statuses a transaction went through. A transaction stream that
    /// reported a final status ends without a word, as flow-go's does.
    fn send_blocks(&mut self) {
        let now = Instant::now();
        let head = self.chain.finalized_head(now);
        let ledger = &self.shared.flow_ledger;
        let mut frames = Vec::new();
        let mut finished = Vec::new();
        for (id, stream) in &mut self.streams {
            if let Some(watch) = &mut stream.transaction {
                let included = ledger.find(&watch.id);
                let current = match &included {
                    Some(included) => included.status(head),
                    None if head.saturating_sub(watch.start_height)
                        >= transactions::TRANSACTION_EXPIRY =>
                    {
                        transactions::TxStatus::Expired
                    }
                    None => transactions::TxStatus::Unknown,
                };
                for step in watch.reported.steps_to(current) {
                    frames.push(wire::to_text(&wire::Data {
                        subscription_id: id.clone(),
                        topic: stream.topic.clone(),
                        payload: transactions::TransactionStatusesMessage {
                            transaction_result: transactions::result(
                                &watch.id,
                                included.as_ref(),
                                step,
                            ),
                            message_index: stream.message_index,
                        },
                    }));
                    stream.message_index += 1;
                }
                watch.reported = watch.reported.max(current);
                if watch.reported.is_final() {
                    finished.push(id.clone());
                }
                continue;
            }
            let Some(head) = self.chain.head(stream.status, now) else {
                continue;
            };
            let last = head.min(stream.next.saturating_add(CATCH_UP_BLOCKS - 1));
            while stream.next <= last {
                let height = stream.next;
                stream.next = stream.next.saturating_add(1);
                let events: Vec<transactions::Event> = match &stream.filter {
                    Some(filter) => ledger
                        .events_at(height)
                        .into_iter()
                        .filter(|event| filter.matches(&event.event_type))
                        .collect(),
                    None => Vec::new(),
                };
                if let Some(heartbeat) = stream.heartbeat {
                    stream.blocks_since_message += 1;
                    if events.is_empty() && stream.blocks_since_message < heartbeat {
                        continue;
                    }
                    stream.blocks_since_message = 0;
                }
                let index = stream.message_index;
                if stream.heartbeat.is_some() {
                    stream.message_index += 1;
                }
                if let Some(payload) =
                    self.chain
                        .payload(&stream.topic, height, stream.status, index, events)
                {
                    frames.push(wire::to_text(&wire::Data {
                        subscription_id: id.clone(),
                        topic: stream.topic.clone(),
                        payload,
                    }));
                }
            }
        }
        for text in frames {
            self.last_sent = now;
            self.hub().deliver(
                &self.peer,
                &encoding::go_encoded(&text).into(),
                Priority::Relay,
            );
        }
        for id in finished {
            self.streams.remove(&id);
            // Present: every stream has its subscription; nothing to report if not.
            let _ = self.subscriptions.remove(&id);
            self.hub().remove_subscription(&self.peer.id, &id);
        }
    }

    /// Forward one admin delta to the subscriptions whose topic and arguments it matches.
    fn publish(&mut self, delta: &str) {
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
        if let Some(scope) = &mut self.scope {
            if !scope.admits(kind, event) {
                return;
            }
        }
        // A Flow stream never reports its own frames, so that subscribing to errors cannot
        // feed on itself.
        if event["peer"].as_str() == Some(self.peer.id.as_str())
            || event["peer"]["id"].as_str() == Some(self.peer.id.as_str())
        {
            return;
        }
        for id in self.subscriptions.matching(topic, event) {
            let data = wire::Data {
                subscription_id: id.to_owned(),
                topic: topic.to_owned(),
                payload: event,
            };
            let text = encoding::go_encoded(&wire::to_text(&data)).into();
            self.hub().deliver(&self.peer, &text, Priority::Relay);
        }
    }
}
