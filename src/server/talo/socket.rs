//! The Talo socket on `GET /?ticket=…` and `/talo?ticket=…`.
//!
//! # Check order, as Talo's socket server applies it
//! rate limit → heartbeat (`v1.heartbeat` is echoed) → JSON envelope (INVALID_MESSAGE, with
//! `req` "unknown" and the raw frame as `cause`) → armed faults → player identified
//! (NO_PLAYER_FOUND) → access key scopes (MISSING_ACCESS_KEY_SCOPES) → data schema
//! (INVALID_MESSAGE_DATA, the data as `cause`) → handler (LISTENER_ERROR with its `cause`).
//!
//! Rate limit ([`super::rate_limit`]): 25 requests a second before identifying, 250 after; each
//! excess is a RATE_LIMIT_EXCEEDED frame, and after three warnings the next excess closes 1008
//! RATE_LIMIT_EXCEEDED. Envelopes and data schemas are [`crate::protocol::talo`]'s. UNHANDLED_REQUEST, ROUTING_ERROR and INVALID_SIGNATURE (server-side
//! conditions of the real Talo server) and LISTENER_ERROR come from armed faults too.
//! A bad, used or expired ticket is refused with close 3000; an app leaving `active` closes its
//! players with 3000 as well.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::WebSocket;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::rate_limit::{SocketRateLimit, Verdict};
use super::Alias;
use crate::catalog::{self, Dialect};
use crate::protocol::admin::AppStatus;
use crate::protocol::talo::{
    self as wire, error_frame, frame, ChannelMessageData, IdentifyData, Request, HEARTBEAT,
};
use crate::server::access;
use crate::server::connection::{self, Flow};
use crate::server::hub::{Hub, NewPeer};
use crate::server::peer::{Control, PeerHandle, Priority};
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
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(refused) = access::origin_refusal(&headers, shared.hub.config(), false) {
        return refused;
    }
    let probe_nonce = probe_nonce(&headers);
    connection::configure(upgrade, MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(socket, shared, query.ticket, addr, probe_nonce))
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
    ticket: Option<String>,
    addr: SocketAddr,
    probe_nonce: Option<String>,
) {
    let redeemed = ticket.as_deref().and_then(|t| shared.talo.redeem_ticket(t));
    let active = redeemed
        .as_ref()
        .is_some_and(|t| shared.hub.app_status(&t.app) == Some(AppStatus::Active));
    let (Some(ticket), true) = (redeemed, active) else {
        let reason = catalog::close(DIALECT, 3000)
            .map(|e| e.wire_text)
            .unwrap_or("Invalid ticket");
        return connection::refuse(socket, &shared, DIALECT, 3000, reason).await;
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
        new_peer,
        None,
        |_| (1001, "going_away".to_owned()),
        move |peer| Session {
            shared,
            peer,
            app: ticket.app,
            key: ticket.key,
            alias: None,
            rate_limit: SocketRateLimit::new(Instant::now()),
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

    fn on_control(&mut self, control: Control) -> Flow {
        match control {
            Control::Kick { .. } => Flow::close(4020, "admin_disconnect"),
            Control::AppStatus(AppStatus::Active) => Flow::Continue,
            Control::AppStatus(status) => Flow::close(3000, format!("app {}", status.id())),
            Control::Shutdown => Flow::close(1001, "going_away"),
            // Injected frames reach `on_text`.
            Control::Inject(_) => Flow::Continue,
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
            self.reply(text.to_owned());
            return Flow::Continue;
        }
        let Some((kind, data)) = wire::envelope(text) else {
            self.error(
                "unknown",
                "INVALID_MESSAGE",
                &wire_text("INVALID_MESSAGE"),
                Some(text),
            );
            return Flow::Continue;
        };
        let req = kind.name();
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
            self.error(
                req,
                "INVALID_MESSAGE_DATA",
                &wire_text("INVALID_MESSAGE_DATA"),
                Some(&data.to_string()),
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
        let identity = format!("{} ({})", alias.identifier, alias.service);
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
        self.reply(frame("v1.players.identify.success", alias.json()));
        self.alias = Some(alias);
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
        let text = frame(
            "v1.channels.message",
            json!({"channel": {"id": channel.id, "name": channel.name}, "message": message, "playerAlias": alias.json()}),
        );
        let name = format!("{}:{}", channel.id, channel.name);
        self.hub().deliver_to_channel(
            DIALECT,
            &self.app,
            &name,
            &self.peer.id,
            &text.into(),
            Priority::Relay,
        );
    }

    /// Talo sends this to the player's relationships; relaydeck has no relationship graph, so
    /// every other identified player of the game receives it.
    fn broadcast(&self, message: &str) {
        let Some(alias) = &self.alias else { return };
        let recipients: Vec<Arc<PeerHandle>> = self
            .hub()
            .identified_peers(DIALECT, &self.app)
            .into_iter()
            .filter(|p| p.id != self.peer.id)
            .collect();
        let text = frame(
            "v1.player-relationships.broadcast",
            json!({"message": message, "playerAlias": alias.json()}),
        );
        self.hub()
            .deliver_many(&recipients, &text.into(), Priority::Relay);
    }
}
