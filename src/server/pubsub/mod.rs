//! The pub/sub relay dialect on `GET /v1?key=…` or `/v1?token=…`.
//!
//! # Connect
//! `key` is a public key id from the config; `token` a signed token from `POST /v1/tokens`.
//! `channels=a,b` (or a token's `channels` claim) subscribes at connect. Refusals are close
//! frames right after the upgrade, never error frames:
//! 4001 invalid_token (unknown key, bad token, or an app that is revoked or expired),
//! 4002 token_expired, 4003 channel_not_authorized (a connect-time channel outside the key's
//! patterns), 4010 over_concurrent_limit (the app's `max_connections`), 4012 account_suspended.
//!
//! # Limits
//! 100 channels per connection (`channel_limit_exceeded`); a token bucket per connection, by
//! default the documented 100 messages a second with bursts of 200, set per key as `rate`
//! (close 4011); frames over 64 KiB (close 1009); the app's message quota
//! (`over_message_quota`, the connection stays open). A subscriber that falls behind loses
//! channel messages (never acks, errors or presence) until it catches up; one that stops
//! reading is closed with 1013 try_again_later (see [`crate::server::peer`]).
//!
//! # Several nodes
//! In a cluster ([`crate::server::cluster`]) channel messages, presence and `send` cross
//! nodes through Redis, at most once: [`remote`] holds this dialect's messages between nodes
//! and their handler on the broker, [`directory`] what the other nodes announced. An `ack` to `publish` or `send` means the frame reached
//! the recipients on this node and, for those on other nodes, was queued for Redis.
//!
//! A node has lost Redis from the moment its bus subscription drops or Redis fails to answer
//! it until a heartbeat succeeds again (`relaydeck_cluster_redis_up` and the console's node
//! list say so). Before it notices, publishes are acked and their copies for other nodes may be
//! lost.
//! Once it knows, no channel message or `send` is queued for other nodes, and:
//! - `publish` still reaches the channel's subscribers on this node and counts against the
//!   quota. It is acked when no other node has a member in the channel, as last announced to
//!   this node; otherwise the publisher gets `error` `backend_error` with its `requestId`: the
//!   members elsewhere missed it, and a retry reaches this node's subscribers a second time.
//! - `send` to a peer on this node is delivered and acked; to a peer another node announced it
//!   is `backend_error`, with nothing delivered or charged; to a peer no node announced it is
//!   `peer_not_found`, as always.
//! - `subscribe` and `unsubscribe` are acked: they change this node's state, which the other
//!   nodes learn when Redis returns. The presence list at subscribe names the other nodes'
//!   members as last announced.
//!
//! When Redis returns, every node announces its peers and memberships again, presence
//! listeners hear what changed meanwhile (after an outage longer than `node_timeout_ms`, a node
//! whose heartbeat is not back yet may be taken for gone and its members heard leaving, then
//! joining again), and cross-node traffic resumes on the same connections.

pub mod directory;
pub mod pattern;
pub mod remote;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use self::pattern::Pattern;
use self::remote::{Membership, PubsubMessage, RemotePeer};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::{AppStatus, SubscriptionInfo};
use crate::protocol::pubsub::{self as wire, ClientFrame};
use crate::server::access;
use crate::server::config::PubsubAction;
use crate::server::connection::{self, Flow};
use crate::server::hub::{ChannelKey, Hub, NewPeer, RegisterError};
use crate::server::peer::{Notice, PeerHandle, Priority};
use crate::server::rate_limit::TokenBucket;
use crate::server::{probe_nonce, token, Shared};

pub const MAX_CHANNELS: usize = 100;
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Frames up to this size are read so that the relay, not the WebSocket library, answers an
/// oversized frame with its documented close code.
const READ_LIMIT_BYTES: usize = 4 << 20;
const GOING_AWAY_RETRY_MS: u64 = 1000;

const DIALECT: Dialect = Dialect::Pubsub;

/// Peers whose key allows the presence action; presence notices go only to them.
#[derive(Default)]
pub struct PresenceListeners(Mutex<HashSet<String>>);

impl PresenceListeners {
    fn set(&self, peer: &str, listening: bool) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if listening {
            set.insert(peer.to_owned());
        } else {
            set.remove(peer);
        }
    }

    fn filter(&self, peers: Vec<Arc<PeerHandle>>) -> Vec<Arc<PeerHandle>> {
        let set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        peers.into_iter().filter(|p| set.contains(&p.id)).collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct ConnectQuery {
    key: Option<String>,
    token: Option<String>,
    channels: Option<String>,
}

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ConnectQuery>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), false) {
        return refused;
    }
    if shared.hub.bans().in_force() {
        if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
            return banned;
        }
        // A token names its peer id before the upgrade; a key gets a fresh one, never banned.
        if query.token.is_some() {
            if let Ok(grant) = authenticate(&shared, &query) {
                if let Some(ban) = shared.hub.bans().identity(Some(&grant.app), &grant.peer_id) {
                    return crate::server::bans::refuse_http(&shared.hub, &ban);
                }
            }
        }
    }
    let probe_nonce = probe_nonce(&headers);
    let path = crate::server::bans::path_of(&uri);
    connection::configure(upgrade, READ_LIMIT_BYTES)
        .on_upgrade(move |socket| serve(socket, shared, path, query, addr, probe_nonce))
}

/// The message text the catalog gives for a code, with `{placeholders}` filled in.
fn text_of(code: &str, fill: &[(&str, &str)]) -> String {
    let mut text = catalog::get(DIALECT, code)
        .map(|e| e.wire_text.to_owned())
        .unwrap_or_else(|| code.replace('_', " "));
    for (name, value) in fill {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

fn close_reason(code: u16) -> String {
    catalog::close(DIALECT, code)
        .map(|e| e.wire_text.to_owned())
        .unwrap_or_default()
}

struct Grant {
    app: String,
    /// Messages a second and burst for this connection (its key's, or the documented ones).
    rate: (u32, u32),
    peer_id: String,
    patterns: Vec<Pattern>,
    actions: Vec<PubsubAction>,
    initial_channels: Vec<String>,
}

/// Who the connection is, or the close code refusing it.
fn authenticate(shared: &Shared, query: &ConnectQuery) -> Result<Grant, u16> {
    let config = shared.hub.config();
    let (app, patterns, actions, peer_id, mut channels, rate) = if let Some(key_id) = &query.key {
        let (app, key) = config.pubsub_key(key_id).ok_or(4001u16)?;
        (
            app,
            key.channel_patterns.clone(),
            key.actions.clone(),
            format!("peer-{}", random_hex(4)),
            Vec::new(),
            key.rate,
        )
    } else if let Some(token_text) = &query.token {
        let claims = token::verify(
            token_text,
            |app| config.app(app).and_then(|a| a.secret_key.clone()),
            crate::clock::now_ms() / 1000,
        )
        .map_err(|e| match e {
            token::TokenError::Expired => 4002u16,
            token::TokenError::Invalid => 4001u16,
        })?;
        let app = config.app(&claims.app).ok_or(4001u16)?;
        let patterns: Vec<String> = app
            .pubsub_keys
            .iter()
            .flat_map(|k| k.channel_patterns.iter().cloned())
            .collect();
        let allowed: BTreeSet<PubsubAction> = app
            .pubsub_keys
            .iter()
            .flat_map(|k| k.actions.iter().copied())
            .collect();
        let actions = match &claims.permissions {
            Some(wanted) => wanted
                .iter()
                .copied()
                .filter(|a| allowed.contains(a))
                .collect(),
            None => allowed.into_iter().collect(),
        };
        // A token is minted by the app's backend: it gets the app's most generous key budget.
        let rate = app
            .pubsub_keys
            .iter()
            .map(|k| k.rate)
            .max_by_key(|r| (r.messages_per_second, r.burst))
            .unwrap_or_default();
        (
            app,
            patterns,
            actions,
            claims.sub.clone(),
            claims.channels.clone().unwrap_or_default(),
            rate,
        )
    } else {
        return Err(4001);
    };
    if let Some(extra) = &query.channels {
        channels.extend(
            extra
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        );
    }
    match shared.hub.app_status(&app.id) {
        Some(AppStatus::Active) => {}
        Some(AppStatus::Suspended) => return Err(4012),
        _ => return Err(4001),
    }
    let patterns: Vec<Pattern> = patterns
        .iter()
        .filter_map(|p| Pattern::parse(p).ok())
        .collect();
    for channel in &channels {
        if !patterns.iter().any(|p| p.matches(channel)) {
            return Err(4003);
        }
    }
    Ok(Grant {
        app: app.id.clone(),
        rate: (rate.messages_per_second, rate.burst),
        peer_id,
        patterns,
        actions,
        initial_channels: channels,
    })
}

fn random_hex(bytes: usize) -> String {
    use rand::RngExt as _;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

struct Session {
    shared: Arc<Shared>,
    peer: Arc<PeerHandle>,
    grant: Grant,
    channels: BTreeSet<String>,
    bucket: TokenBucket,
}

async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    path: String,
    query: ConnectQuery,
    addr: SocketAddr,
    probe_nonce: Option<String>,
) {
    let grant = match authenticate(&shared, &query) {
        Ok(grant) => grant,
        Err(code) => {
            return connection::refuse(socket, &shared, DIALECT, code, &close_reason(code)).await
        }
    };
    let limit = shared
        .hub
        .config()
        .app(&grant.app)
        .map(|a| a.limits.clone());
    let new_peer = NewPeer {
        dialect: DIALECT,
        app: Some(grant.app.clone()),
        identity: Some(grant.peer_id.clone()),
        addr: addr.to_string(),
        probe_nonce,
    };
    let refused = |error: &RegisterError| match error {
        RegisterError::OverConcurrentLimit { .. } | RegisterError::OverAddressShare { .. } => {
            (4010, close_reason(4010))
        }
        RegisterError::ShuttingDown => (1001, "going_away".to_owned()),
    };
    let rate = grant.rate;
    connection::serve(
        socket,
        shared.clone(),
        path,
        new_peer,
        limit,
        refused,
        move |peer| Session {
            shared,
            peer,
            channels: BTreeSet::new(),
            bucket: TokenBucket::new(rate.0, rate.1, Instant::now()),
            grant,
        },
    )
    .await;
}

/// Presence notices for a channel's local members who listen for them, except `except`.
fn announce_to_listeners(
    shared: &Shared,
    app: &str,
    channel: &str,
    except: Option<&str>,
    joined: &[&str],
    left: &[&str],
) {
    let members: Vec<Arc<PeerHandle>> = shared
        .hub
        .channel_members(DIALECT, app, channel)
        .into_iter()
        .filter(|m| Some(m.id.as_str()) != except)
        .collect();
    let listeners = shared.presence.filter(members);
    if !listeners.is_empty() {
        let text = wire::presence(channel, joined, left).into();
        shared.hub.deliver_many(&listeners, &text, Priority::Reply);
    }
}

/// Presence on another node of the cluster, told to this node's listeners.
pub fn announce_remote_presence(
    shared: &Shared,
    app: &str,
    channel: &str,
    joined: &[&str],
    left: &[&str],
) {
    announce_to_listeners(shared, app, channel, None, joined, left);
}

impl connection::Session for Session {
    fn on_open(&mut self) -> Flow {
        if self.grant.actions.contains(&PubsubAction::Presence) {
            self.shared.presence.set(&self.peer.id, true);
        }
        self.reply(wire::welcome(
            &self.grant.peer_id,
            &self.grant.app,
            MAX_CHANNELS,
            self.grant.rate.0,
            self.grant.rate.1,
            MAX_FRAME_BYTES,
        ));
        self.shared
            .broker
            .publish(|| PubsubMessage::PeerUp(self.remote_self()));
        for channel in self.grant.initial_channels.clone() {
            self.subscribe(&channel, None);
        }
        Flow::Continue
    }

    fn on_text(&mut self, text: &str) -> Flow {
        self.handle(text)
    }

    fn on_binary(&mut self, bytes: &[u8]) -> Flow {
        self.handle(&String::from_utf8_lossy(bytes))
    }

    fn on_control(&mut self, notice: Notice) -> Flow {
        match notice {
            Notice::Kick { .. } => Flow::close(4020, close_reason(4020)),
            Notice::AppStatus(AppStatus::Active) => Flow::Continue,
            Notice::AppStatus(AppStatus::Suspended) => Flow::close(4012, close_reason(4012)),
            Notice::AppStatus(_) => Flow::close(4001, close_reason(4001)),
            Notice::Shutdown => {
                self.reply(wire::going_away(GOING_AWAY_RETRY_MS));
                Flow::close(1001, "going_away")
            }
        }
    }

    fn on_end(&mut self) {
        self.shared.presence.set(&self.peer.id, false);
    }

    fn on_removed(&mut self, left: &[ChannelKey]) {
        let peer_id = self.grant.peer_id.clone();
        for (_, app, channel) in left {
            self.announce_presence(app, channel, &[], &[peer_id.as_str()]);
        }
        // Other nodes drop its memberships with it.
        self.shared
            .broker
            .publish(|| PubsubMessage::PeerDown(self.remote_self()));
    }
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn error(&self, request_id: Option<&str>, code: &str, message: &str) {
        self.hub().send_error(
            &self.peer,
            code,
            request_id,
            wire::error(request_id, code, message),
        );
    }

    /// The message could not reach the other nodes: this node has lost Redis.
    fn backend_error(&self, request_id: Option<&str>) {
        self.error(request_id, "backend_error", &text_of("backend_error", &[]));
    }

    fn reply(&self, text: String) {
        self.hub()
            .deliver(&self.peer, &text.into(), Priority::Reply);
    }

    fn handle(&mut self, text: &str) -> Flow {
        if text.len() > MAX_FRAME_BYTES {
            return Flow::close(1009, close_reason(1009));
        }
        if !self.bucket.take(Instant::now()) {
            return Flow::close(4011, close_reason(4011));
        }
        let (frame, request_id) = match wire::parse_client(text) {
            Ok(parsed) => parsed,
            Err(rejection) => {
                self.error(
                    rejection.request_id.as_deref(),
                    rejection.code,
                    &rejection.message,
                );
                return Flow::Continue;
            }
        };
        let request_id = request_id.as_deref();
        if let Some(code) = self.hub().take_fault(&self.peer) {
            self.error(request_id, &code, &text_of(&code, &[]));
            return Flow::Continue;
        }
        match frame {
            ClientFrame::Subscribe { channel } => self.subscribe(&channel, request_id),
            ClientFrame::Unsubscribe { channel } => self.unsubscribe(&channel, request_id),
            ClientFrame::Publish { channel, data } => self.publish(&channel, data, request_id),
            ClientFrame::Send { to, data } => self.send(&to, data, request_id),
        }
        Flow::Continue
    }

    /// The checks every channel operation shares, in the order a client would fix them.
    fn check_channel(&self, channel: &str, action: PubsubAction, request_id: Option<&str>) -> bool {
        if let Some(problem) = wire::channel_problem(channel) {
            let shown = crate::text::one_line(channel, 64);
            self.error(
                request_id,
                "invalid_channel",
                &format!(
                    "{}: {problem}",
                    text_of("invalid_channel", &[("channel", &shown)])
                ),
            );
            return false;
        }
        if wire::RESERVED_PREFIXES
            .iter()
            .any(|p| channel.starts_with(p))
        {
            self.error(
                request_id,
                "channel_reserved",
                &text_of("channel_reserved", &[("channel", channel)]),
            );
            return false;
        }
        if !self.grant.actions.contains(&action) {
            self.error(
                request_id,
                "action_not_permitted",
                &text_of("action_not_permitted", &[("action", action.id())]),
            );
            return false;
        }
        if !self.grant.patterns.iter().any(|p| p.matches(channel)) {
            self.error(
                request_id,
                "channel_not_authorized",
                &text_of("channel_not_authorized", &[("channel", channel)]),
            );
            return false;
        }
        true
    }

    fn subscribe(&mut self, channel: &str, request_id: Option<&str>) {
        if !self.check_channel(channel, PubsubAction::Subscribe, request_id) {
            return;
        }
        if !self.channels.contains(channel) && self.channels.len() >= MAX_CHANNELS {
            self.error(
                request_id,
                "channel_limit_exceeded",
                &text_of("channel_limit_exceeded", &[]),
            );
            return;
        }
        if self.channels.insert(channel.to_owned()) {
            let app = self.grant.app.clone();
            let existing = self.hub().channel_members(DIALECT, &app, channel);
            self.hub().channel_join(&self.peer, &app, channel);
            self.hub().add_subscription(SubscriptionInfo {
                peer: self.peer.id.clone(),
                dialect: DIALECT,
                id: channel.to_owned(),
                topic: channel.to_owned(),
                arguments: Value::Object(serde_json::Map::new()),
            });
            self.reply(wire::ack(request_id));
            let remote = self.shared.pubsub_elsewhere.channel_members(&app, channel);
            if self.grant.actions.contains(&PubsubAction::Presence)
                && !(existing.is_empty() && remote.is_empty())
            {
                let names: Vec<String> = existing
                    .iter()
                    .filter_map(|member| self.hub().peer(&member.id).and_then(|p| p.identity))
                    .chain(remote)
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.reply(wire::presence(channel, &names, &[]));
            }
            self.announce_presence(&app, channel, &[self.grant.peer_id.as_str()], &[]);
            self.shared
                .broker
                .publish(|| PubsubMessage::Joined(self.membership(channel)));
        } else {
            self.reply(wire::ack(request_id));
        }
    }

    fn unsubscribe(&mut self, channel: &str, request_id: Option<&str>) {
        if let Some(problem) = wire::channel_problem(channel) {
            self.error(
                request_id,
                "invalid_channel",
                &format!("invalid channel: {problem}"),
            );
            return;
        }
        if self.channels.remove(channel) {
            let app = self.grant.app.clone();
            self.hub().channel_leave(&self.peer, &app, channel);
            self.hub().remove_subscription(&self.peer.id, channel);
            self.announce_presence(&app, channel, &[], &[self.grant.peer_id.as_str()]);
            self.shared
                .broker
                .publish(|| PubsubMessage::Left(self.membership(channel)));
        }
        self.reply(wire::ack(request_id));
    }

    fn announce_presence(&self, app: &str, channel: &str, joined: &[&str], left: &[&str]) {
        announce_to_listeners(
            &self.shared,
            app,
            channel,
            Some(&self.peer.id),
            joined,
            left,
        );
    }

    fn membership(&self, channel: &str) -> Membership {
        Membership {
            app: self.grant.app.clone(),
            channel: channel.to_owned(),
            identity: self.grant.peer_id.clone(),
        }
    }

    fn remote_self(&self) -> RemotePeer {
        RemotePeer {
            app: self.grant.app.clone(),
            identity: self.grant.peer_id.clone(),
        }
    }

    fn publish(&mut self, channel: &str, data: Option<&RawValue>, request_id: Option<&str>) {
        if !self.check_channel(channel, PubsubAction::Publish, request_id) {
            return;
        }
        let Some(data) = data else {
            self.error(request_id, "missing_data", &text_of("missing_data", &[]));
            return;
        };
        if !self.hub().charge_quota(&self.grant.app) {
            self.error(
                request_id,
                "over_message_quota",
                &text_of("over_message_quota", &[]),
            );
            return;
        }
        let text: Utf8Bytes = wire::message(channel, &self.grant.peer_id, data).into();
        self.hub().deliver_to_channel(
            DIALECT,
            &self.grant.app,
            channel,
            &self.peer.id,
            &text,
            Priority::Relay,
        );
        let stranded = if self.shared.broker.can_cross() {
            self.shared
                .broker
                .publish(|| PubsubMessage::ChannelMessage {
                    app: self.grant.app.clone(),
                    channel: channel.to_owned(),
                    text: text.as_str().to_owned(),
                });
            false
        } else {
            // Without Redis the mirror is all this node knows of the other nodes' members: a
            // channel without any is fully served here.
            !self
                .shared
                .pubsub_elsewhere
                .channel_members(&self.grant.app, channel)
                .is_empty()
        };
        if stranded {
            self.backend_error(request_id);
        } else {
            self.reply(wire::ack(request_id));
        }
    }

    fn send(&mut self, to: &str, data: Option<&RawValue>, request_id: Option<&str>) {
        if let Some(problem) = wire::peer_id_problem(to) {
            let shown = crate::text::one_line(to, 64);
            self.error(
                request_id,
                "invalid_peer_id",
                &format!(
                    "{}: {problem}",
                    text_of("invalid_peer_id", &[("to", &shown)])
                ),
            );
            return;
        }
        if !self.grant.actions.contains(&PubsubAction::Send) {
            self.error(
                request_id,
                "action_not_permitted",
                &text_of("action_not_permitted", &[("action", "send")]),
            );
            return;
        }
        let Some(data) = data else {
            self.error(request_id, "missing_data", &text_of("missing_data", &[]));
            return;
        };
        let target = self
            .hub()
            .find_peer_by_identity(DIALECT, &self.grant.app, to);
        let remote = match &target {
            None => self.shared.pubsub_elsewhere.node_of(&self.grant.app, to),
            Some(_) => None,
        };
        if target.is_none() && remote.is_none() {
            self.error(
                request_id,
                "peer_not_found",
                &text_of("peer_not_found", &[("to", to)]),
            );
            return;
        }
        // Refused before the quota is charged: nothing will be delivered.
        if remote.is_some() && !self.shared.broker.can_cross() {
            self.backend_error(request_id);
            return;
        }
        if !self.hub().charge_quota(&self.grant.app) {
            self.error(
                request_id,
                "over_message_quota",
                &text_of("over_message_quota", &[]),
            );
            return;
        }
        let text: Utf8Bytes = wire::direct(&self.grant.peer_id, data).into();
        match (target, remote) {
            (Some(target), _) => {
                self.hub().deliver(&target, &text, Priority::Relay);
            }
            (None, Some(node)) => self.shared.broker.send_to(&node, || PubsubMessage::Direct {
                app: self.grant.app.clone(),
                to: to.to_owned(),
                text: text.as_str().to_owned(),
            }),
            (None, None) => {}
        }
        self.reply(wire::ack(request_id));
    }
}
