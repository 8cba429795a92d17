//! The Talo socket on `GET /?ticket=…` and `/talo?ticket=…`.
//!
//! # Check order, as Talo's socket server applies it
//! (TaloDev/backend `src/socket/router/socketRouter.ts`)
//! rate limit → heartbeat (`v1.heartbeat` is echoed and forgives one rate-limit warning) →
//! JSON (ROUTING_ERROR) → envelope (INVALID_MESSAGE, with `req` "unknown" and the raw frame as
//! `cause`) → signature, for an identified player of a game that verifies requests
//! (INVALID_SIGNATURE, [`super::signature`]) → armed faults → player identified (NO_PLAYER_FOUND) → access key scopes
//! (MISSING_ACCESS_KEY_SCOPES) → data schema (INVALID_MESSAGE_DATA, the data as `cause`) →
//! handler (LISTENER_ERROR with its `cause`).
//!
//! Rate limit ([`super::rate_limit`]): 25 requests a second before identifying, 250 after
//! (settings); each excess is a RATE_LIMIT_EXCEEDED frame, and after three warnings the next
//! excess closes 1008 RATE_LIMIT_EXCEEDED. Envelopes and data schemas are
//! [`crate::protocol::talo`]'s. UNHANDLED_REQUEST (which upstream's request list makes
//! unreachable), INVALID_SIGNATURE and LISTENER_ERROR come from armed faults too.
//!
//! # Fan-out
//! A channel message goes to every connection whose player is a member of the channel and whose
//! access key has `read:gameChannels`, the sender's own included; a broadcast to every
//! connection with `read:playerBroadcasts` whose player subscribes to the sender (relaydeck has
//! no relationship graph: every other identified player of the game counts as a confirmed
//! subscriber); presence changes (identify, and the end of an identified connection) to every
//! identified connection of the game with `read:playerPresence`, as
//! `v1.players.presence.updated`. Payloads carry the channel's and alias's full JSON.
//! A bad, used or expired ticket is refused with close 3000; an app leaving `active` closes its
//! players with 3000 as well.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::entities::{self, object};
use axum::extract::ws::WebSocket;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::rate_limit::{SocketRateLimit, Verdict};
use super::signature;
use super::{Alias, SocketPlayer};
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::talo::{
    self as wire, error_frame, frame, ChannelMessageData, IdentifyData, NotAnEnvelope, Request,
    HEARTBEAT,
};
use crate::server::access;
use crate::server::connection::{self, Flow};
use crate::server::hub::{Hub, NewPeer};
use crate::server::peer::{Notice, PeerHandle, Priority};
use crate::server::{probe_nonce, Shared};

const DIALECT: Dialect = Dialect::Talo;

/// The largest frame read. Talo's own socket server leaves this to its WebSocket library's
/// default (100 MiB); requests are a few hundred bytes, so a megabyte is generous.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

pub async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TicketQuery>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), false) {
        return refused;
    }
    if let Some(banned) = crate::server::bans::address_refusal(&shared.hub, addr) {
        return banned;
    }
    let probe_nonce = probe_nonce(&headers);
    let path = crate::server::bans::path_of(&uri);
    connection::configure(upgrade, MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(socket, shared, path, query.ticket, addr, probe_nonce))
}

fn wire_text(code: &str) -> String {
    catalog::get(DIALECT, code)
        .map(|e| e.wire_text.to_owned())
        .unwrap_or_else(|| code.to_owned())
}

struct Session {
    shared: Arc<Shared>,
    peer: Arc<PeerHandle>,
    app: String,
    key: String,
    alias: Option<Alias>,
    rate_limit: SocketRateLimit,
}

async fn serve(
    socket: WebSocket,
    shared: Arc<Shared>,
    path: String,
    ticket: Option<String>,
    addr: SocketAddr,
    probe_nonce: Option<String>,
) {
    let redeemed = ticket.as_deref().and_then(|t| shared.talo.redeem_ticket(t));
    let active = redeemed
        .as_ref()
        .is_some_and(|t| shared.hub.app_status(&t.app) == Some(AppStatus::Active));
    let (Some(ticket), true) = (redeemed, active) else {
        // Talo closes a bad ticket with 3000 and no reason (`closeConnection`'s default).
        return connection::refuse(socket, &shared, DIALECT, 3000, "").await;
    };
    let new_peer = NewPeer {
        dialect: DIALECT,
        app: Some(ticket.app.clone()),
        identity: None,
        addr: addr.to_string(),
        probe_nonce,
    };
    connection::serve(
        socket,
        shared.clone(),
        path,
        new_peer,
        None,
        |_| (1001, "going_away".to_owned()),
        move |peer| {
            let settings = &shared.hub.config().talo;
            let rate_limit = SocketRateLimit::with_limits(
                Instant::now(),
                settings.unidentified_per_second,
                settings.identified_per_second,
            );
            Session {
                shared,
                peer,
                app: ticket.app,
                key: ticket.key,
                alias: None,
                rate_limit,
            }
        },
    )
    .await;
}

impl connection::Session for Session {
    fn on_open(&mut self) -> Flow {
        self.reply(frame("v1.connected", json!({})));
        Flow::Continue
    }

    fn on_text(&mut self, text: &str) -> Flow {
        self.handle(text)
    }

    fn on_binary(&mut self, bytes: &[u8]) -> Flow {
        self.handle(&String::from_utf8_lossy(bytes))
    }

    /// Talo's heartbeat: a ping every `talo.ping_interval_ms`, a socket that did not answer
    /// the last one dropped at the next.
    fn keepalive(&self) -> Option<connection::Keepalive> {
        let every = self.shared.hub.config().talo.ping_interval_ms;
        (every > 0).then(|| connection::Keepalive::SinceLastTick {
            every: std::time::Duration::from_millis(every),
        })
    }

    /// Upstream counts a pong as a heartbeat; the library answers pings and reports both.
    fn on_socket_frame(&mut self) {
        self.rate_limit.forgive();
    }

    fn identified(&self) -> bool {
        self.alias.is_some()
    }

    fn on_end(&mut self) {
        if self.shared.talo.unbind_socket(&self.peer.id).is_none() {
            return;
        }
        if let Some(alias) = self.alias.take() {
            let changed = self.shared.talo.set_presence(alias.id, false);
            // The alias as upstream reloads it on disconnect: without `player.auth`.
            self.send_presence(&alias, changed, None);
        }
    }

    fn on_control(&mut self, notice: Notice) -> Flow {
        match notice {
            Notice::Kick { .. } => Flow::close(4020, "admin_disconnect"),
            Notice::AppStatus(AppStatus::Active) => Flow::Continue,
            Notice::AppStatus(status) => Flow::close(3000, format!("app {}", status.id())),
            Notice::Shutdown => Flow::close(1001, "going_away"),
        }
    }
}

impl Session {
    fn hub(&self) -> &Hub {
        &self.shared.hub
    }

    fn error(&self, req: &str, code: &str, message: &str, cause: Option<&str>) {
        self.hub().send_error(
            &self.peer,
            code,
            None,
            error_frame(req, code, message, cause),
        );
    }

    fn reply(&self, text: String) {
        self.hub()
            .deliver(&self.peer, &text.into(), Priority::Reply);
    }

    fn handle(&mut self, text: &str) -> Flow {
        match self.rate_limit.check(Instant::now(), self.alias.is_some()) {
            Verdict::Allow => {}
            Verdict::Warn => {
                self.error(
                    "unknown",
                    "RATE_LIMIT_EXCEEDED",
                    &wire_text("RATE_LIMIT_EXCEEDED"),
                    None,
                );
                return Flow::Continue;
            }
            Verdict::Close => return Flow::close(1008, "RATE_LIMIT_EXCEEDED"),
        }
        if text == HEARTBEAT {
            self.rate_limit.forgive();
            self.reply(text.to_owned());
            return Flow::Continue;
        }
        let config = self.shared.hub.config();
        let keys = config
            .app(&self.app)
            .and_then(|a| a.talo.as_ref())
            .map(|t| &t.verification_keys)
            .filter(|keys| !keys.is_empty());
        let (signature, json) = match keys {
            Some(_) => signature::split(text),
            None => (None, text),
        };
        let (kind, data) = match wire::envelope(json) {
            Ok(envelope) => envelope,
            Err(NotAnEnvelope::NotJson) => {
                self.error(
                    "unknown",
                    "ROUTING_ERROR",
                    &wire_text("ROUTING_ERROR"),
                    None,
                );
                return Flow::Continue;
            }
            Err(NotAnEnvelope::Invalid) => {
                self.error(
                    "unknown",
                    "INVALID_MESSAGE",
                    &wire_text("INVALID_MESSAGE"),
                    Some(text),
                );
                return Flow::Continue;
            }
        };
        let req = kind.name();
        // Only an identified player's requests are checked, identify never is.
        if let (Some(keys), Some(alias)) = (keys, &self.alias) {
            let verified = signature.is_some_and(|signature| {
                self.shared
                    .talo
                    .verify_signature(keys, alias.id, signature, json)
            });
            if !verified {
                self.error(
                    req,
                    "INVALID_SIGNATURE",
                    &wire_text("INVALID_SIGNATURE"),
                    None,
                );
                return Flow::Continue;
            }
        }
        if let Some(code) = self.hub().take_fault(&self.peer) {
            let cause = (code == "LISTENER_ERROR").then_some("A fault was armed by an operator");
            self.error(req, &code, &wire_text(&code), cause);
            return Flow::Continue;
        }
        if kind.needs_player() && self.alias.is_none() {
            self.error(req, "NO_PLAYER_FOUND", &wire_text("NO_PLAYER_FOUND"), None);
            return Flow::Continue;
        }
        let scope = kind.scope();
        let has_scope = super::Talo::access_key(self.hub().config(), &self.key)
            .is_some_and(|(_, _, key)| key.has_scope(scope));
        if !has_scope {
            self.error(
                req,
                "MISSING_ACCESS_KEY_SCOPES",
                &format!("Missing access key scope(s): {scope}"),
                None,
            );
            return Flow::Continue;
        }
        let Some(request) = wire::request(kind, &data) else {
            // Upstream's words (`socketRouter.ts`; the seed shortens them) and its cause,
            // `JSON.stringify(message.data)`, which keeps the client's key order.
            let cause =
                super::js_json::stringify_member(json, "data").unwrap_or_else(|| data.to_string());
            self.error(
                req,
                "INVALID_MESSAGE_DATA",
                "Invalid message data for request",
                Some(&cause),
            );
            return Flow::Continue;
        };
        match request {
            Request::Identify(IdentifyData {
                player_alias_id,
                socket_token,
                session_token,
            }) => self.identify(
                req,
                player_alias_id,
                &socket_token,
                session_token.as_deref(),
            ),
            Request::ChannelMessage(ChannelMessageData { channel, message }) => {
                self.channel_message(req, channel.id, &message)
            }
            Request::RelationshipBroadcast(broadcast) => self.broadcast(&broadcast.message),
        }
        Flow::Continue
    }

    fn identify(&mut self, req: &str, alias_id: u64, token: &str, session_token: Option<&str>) {
        let talo = &self.shared.talo;
        let Some(alias) = talo
            .alias(&self.app, alias_id)
            .filter(|_| talo.socket_token_valid(alias_id, token))
        else {
            self.error(
                req,
                "INVALID_SOCKET_TOKEN",
                &wire_text("INVALID_SOCKET_TOKEN"),
                None,
            );
            return;
        };
        if alias.service == "talo"
            && !session_token.is_some_and(|s| talo.session_valid(alias.id, s))
        {
            self.error(
                req,
                "INVALID_SESSION_TOKEN",
                &wire_text("INVALID_SESSION_TOKEN"),
                None,
            );
            return;
        }
        // The bare identifier, as players are identified over HTTP and banned by operators.
        let identity = alias.identifier.clone();
        self.hub()
            .update_peer(&self.peer.id, |p| p.identity = Some(identity));
        if let Some(talo_app) = self
            .hub()
            .config()
            .app(&self.app)
            .and_then(|a| a.talo.clone())
        {
            for channel in talo_app
                .channels
                .iter()
                .filter(|c| c.members.contains(&alias.identifier))
            {
                self.hub().channel_join(
                    &self.peer,
                    &self.app,
                    &format!("{}:{}", channel.id, channel.name),
                );
            }
        }
        self.shared.talo.bind_socket(
            &self.peer.id,
            SocketPlayer {
                app: self.app.clone(),
                alias: alias.id,
                identifier: alias.identifier.clone(),
                key: self.key.clone(),
            },
        );
        // Upstream marks the player online, and tells the game, before it answers.
        let changed = talo.set_presence(alias.id, true);
        // Upstream's identify loads `player.auth`; its presence message holds the same alias.
        let auth = talo.auth(&alias);
        self.send_presence(&alias, changed, auth);
        let json = alias.entity(talo.presence(alias.id), auth);
        self.reply(frame("v1.players.identify.success", json));
        self.alias = Some(alias);
    }

    /// The identified connections of this game whose access key has `scope`.
    fn recipients(
        &self,
        scope: &str,
        wanted: impl Fn(&SocketPlayer) -> bool,
    ) -> Vec<Arc<PeerHandle>> {
        recipients(&self.shared, &self.app, scope, wanted)
    }

    /// Deliver here, and have every other node of a cluster deliver to its own players.
    fn fan_out(&self, audience: Audience, recipients: &[Arc<PeerHandle>], text: String) {
        self.shared.broker.publish(|| super::remote::FanOut {
            app: self.app.clone(),
            audience: audience.clone(),
            text: text.clone(),
        });
        self.hub()
            .deliver_many(recipients, &text.into(), Priority::Relay);
    }

    fn send_presence(&self, alias: &Alias, online_changed: bool, auth: Option<entities::Auth>) {
        let talo = &self.shared.talo;
        let Some(presence) = talo.presence(alias.id) else {
            return;
        };
        let recipients = self.recipients("read:playerPresence", |_| true);
        if recipients.is_empty() && self.shared.broker.is_alone() {
            return;
        }
        let text = frame(
            "v1.players.presence.updated",
            object([
                (
                    "presence",
                    entities::presence_entity(alias.entity(Some(presence), auth), presence),
                ),
                // Upstream compares the previous custom status with the one passed in, which
                // is absent on connect and disconnect: it always reports a change.
                (
                    "meta",
                    object([
                        ("onlineChanged", online_changed.into()),
                        ("customStatusChanged", true.into()),
                    ]),
                ),
            ]),
        );
        self.fan_out(Audience::Presence, &recipients, text);
    }

    fn channel_message(&self, req: &str, channel_id: u64, message: &str) {
        let Some(alias) = &self.alias else { return };
        let Some(channel) = super::Talo::channel(self.hub().config(), &self.app, channel_id) else {
            self.error(
                req,
                "LISTENER_ERROR",
                &wire_text("LISTENER_ERROR"),
                Some("Channel not found"),
            );
            return;
        };
        if !channel.members.contains(&alias.identifier) {
            self.error(
                req,
                "LISTENER_ERROR",
                &wire_text("LISTENER_ERROR"),
                Some("Player not in channel"),
            );
            return;
        }
        let talo = &self.shared.talo;
        let total = talo.count_channel_message(&self.app, channel.id);
        let text = frame(
            "v1.channels.message",
            object([
                (
                    "channel",
                    entities::channel_entity(channel.id, &channel.name, total, talo.started_ms),
                ),
                ("message", message.into()),
                ("playerAlias", alias.entity(talo.presence(alias.id), None)),
            ]),
        );
        let recipients = self.recipients("read:gameChannels", |player| {
            channel.members.contains(&player.identifier)
        });
        self.fan_out(Audience::Channel(channel.id), &recipients, text);
    }

    /// Talo sends this to the players subscribed to the sender; relaydeck has no relationship
    /// graph, so every other identified player of the game counts as a confirmed subscriber.
    fn broadcast(&self, message: &str) {
        let Some(alias) = &self.alias else { return };
        let recipients =
            self.recipients("read:playerBroadcasts", |player| player.alias != alias.id);
        let text = frame(
            "v1.player-relationships.broadcast",
            object([
                ("message", message.into()),
                (
                    "playerAlias",
                    alias.entity(self.shared.talo.presence(alias.id), None),
                ),
            ]),
        );
        self.fan_out(Audience::Broadcast, &recipients, text);
    }
}

/// Who a Talo frame is for, as the nodes of a cluster tell each other ([`super::remote`]): each node picks its
/// own players by the same rule the sender's node used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Identified players whose key may read presence.
    Presence,
    /// Members of this game channel.
    Channel(u64),
    /// Every identified player who may read broadcasts (the sender is on another node).
    Broadcast,
}

/// The identified players of `app` on this node with `scope` that `wanted` accepts.
fn recipients(
    shared: &Shared,
    app: &str,
    scope: &str,
    wanted: impl Fn(&SocketPlayer) -> bool,
) -> Vec<Arc<PeerHandle>> {
    let config = shared.hub.config();
    let talo = &shared.talo;
    shared
        .hub
        .identified_peers(DIALECT, app)
        .into_iter()
        .filter(|peer| {
            talo.socket(&peer.id).is_some_and(|player| {
                player.app == app
                    && wanted(&player)
                    && super::Talo::access_key(config, &player.key)
                        .is_some_and(|(_, _, key)| key.has_scope(scope))
            })
        })
        .collect()
}

/// Another node's Talo frame, for this node's players in its audience.
pub fn deliver_remote(shared: &Shared, app: &str, audience: &Audience, text: String) {
    let peers = match audience {
        Audience::Presence => recipients(shared, app, "read:playerPresence", |_| true),
        Audience::Broadcast => recipients(shared, app, "read:playerBroadcasts", |_| true),
        Audience::Channel(id) => {
            let Some(channel) = super::Talo::channel(shared.hub.config(), app, *id) else {
                return;
            };
            recipients(shared, app, "read:gameChannels", |player| {
                channel.members.contains(&player.identifier)
            })
        }
    };
    shared
        .hub
        .deliver_many(&peers, &text.into(), Priority::Relay);
}
