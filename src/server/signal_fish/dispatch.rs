//! One request, from the frame to the rooms: held while a room lookup runs, forwarded when
//! the room is on another node, otherwise parsed and handed to the request kind's handler.

use std::sync::Arc;

use serde_json::value::RawValue;

use super::operations::canonical_operation_id;
use super::refusal::{static_code, Carrier, Refusal};
use super::rooms::{JoinOptions, JoinRequest};
use super::{rooms, Session, MAX_HELD_FRAMES};
use crate::protocol::signal_fish::{
    DeliveryClass, JoinAsSpectator, JoinRoom, Reconnect, Request, RoomOperationRequest,
    ServerMessage,
};
use crate::server::connection::Flow;

/// The longest name of a refused join kept as the peer's identity (upstream's own limit for
/// player names is lower; a longer one was refused for it and is not worth keeping).
const REFUSED_NAME_KEPT: usize = 64;

impl Session {
    /// A frame past the size and rate limits: held while a room lookup runs, forwarded when
    /// the player's room is on another node, handled here otherwise.
    pub(super) fn process(&mut self, text: &str) -> Flow {
        if self.pending.is_some() {
            if self.held.len() >= MAX_HELD_FRAMES {
                return self.budget_spent();
            }
            self.held.push_back(text.to_owned());
            return Flow::Continue;
        }
        if let Some(node) = &self.tunnel {
            self.shared
                .tunnels
                .forward(&self.shared.broker, node, &self.peer.id, text);
            return Flow::Continue;
        }
        if self.app.is_some() {
            if let Some(frame) = crate::protocol::game_data::payload(text) {
                if let Err(refusal) = self.game_data(frame.data(), frame.class, frame.key) {
                    return self.answer_refusal(&refusal);
                }
                return Flow::Continue;
            }
        }
        let request = match serde_json::from_str::<Request>(text) {
            Ok(request) => request,
            Err(_) => {
                return self.answer_refusal(&Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: Some("Invalid client message".to_owned()),
                });
            }
        };
        if self.app.is_none() && !matches!(request, Request::Authenticate(_)) {
            self.refuse(&Refusal {
                carrier: Carrier::Error,
                code: "MISSING_APP_ID",
                text: None,
            });
            return Flow::close(1000, "unregistered");
        }
        if !matches!(request, Request::Ping | Request::Authenticate(_)) {
            if let Some(code) = self.hub().take_fault(&self.peer) {
                let carrier = match &request {
                    Request::JoinRoom(_) => Carrier::RoomJoinFailed,
                    // Without room_operation_ids the operation has no result to carry a
                    // join's refusal: the refusal goes out as an Error, as 0.12's would.
                    Request::RoomOperation { operation, .. }
                        if self.room_operation_ids
                            && matches!(**operation, RoomOperationRequest::JoinRoom(_)) =>
                    {
                        Carrier::RoomJoinFailed
                    }
                    _ => Carrier::Error,
                };
                let refusal = Refusal {
                    carrier,
                    code: static_code(&code),
                    text: None,
                };
                return match &request {
                    Request::RoomOperation { operation_id, .. } if self.room_operation_ids => {
                        self.answer_operation_refusal(operation_id, &refusal)
                    }
                    _ => self.answer_refusal(&refusal),
                };
            }
        }
        self.dispatch(request, text, false)
    }

    /// Act on one request; `placed` once the cluster said the room it names is here.
    pub(super) fn dispatch(&mut self, request: Request, text: &str, placed: bool) -> Flow {
        if !placed {
            if let Some(flow) = self.route(&request, text) {
                return flow;
            }
        }
        let peer = self.peer.id.clone();
        let outcome = match request {
            Request::Authenticate(authenticate) => return self.authenticate(authenticate),
            Request::Ping => {
                if !self.charge_reply() {
                    return self.budget_spent();
                }
                self.reply(&ServerMessage::Pong);
                Ok(())
            }
            Request::JoinRoom(join) => self.join(join),
            Request::LeaveRoom => self
                .rooms()
                .leave(self.hub(), &self.peer)
                .map(|change| self.record(change)),
            // Reached only by GameData frames the fast path could not read (the fault was
            // taken above).
            Request::GameData { data, class, key } => serde_json::value::to_raw_value(&data)
                .map_err(|_| Refusal {
                    carrier: Carrier::Error,
                    code: "INVALID_INPUT",
                    text: None,
                })
                .and_then(|raw| self.relay_game_data(&raw, class, key)),
            Request::AuthorityRequest { become_authority } => self
                .rooms()
                .authority_request(self.hub(), &self.peer, become_authority)
                .map(|change| self.record(change)),
            Request::PlayerReady => self
                .rooms()
                .ready(self.hub(), &peer)
                .map(|change| self.record(change)),
            Request::StartGame => self
                .rooms()
                .start(self.hub(), &peer)
                .map(|change| self.record(change)),
            Request::Reconnect(reconnect) => self.reconnect(reconnect),
            Request::JoinAsSpectator(spectate) => self.spectate(spectate),
            Request::LeaveSpectator => self
                .rooms()
                .leave_spectator(self.hub(), &self.peer)
                .map(|change| self.record(change)),
            Request::RoomOperation {
                operation_id,
                operation,
            } => {
                if !canonical_operation_id(&operation_id) {
                    Err(Refusal {
                        carrier: Carrier::Error,
                        code: "INVALID_INPUT",
                        text: Some("Invalid client message".to_owned()),
                    })
                } else {
                    return self.room_operation(&operation_id, *operation);
                }
            }
            Request::Signal {
                to,
                generation,
                signal,
            } => {
                // 0.12 types both as UUIDs: anything else fails to parse there.
                if uuid::Uuid::parse_str(&to).is_err()
                    || uuid::Uuid::parse_str(&generation).is_err()
                {
                    Err(Refusal {
                        carrier: Carrier::Error,
                        code: "INVALID_INPUT",
                        text: Some("Invalid client message".to_owned()),
                    })
                } else {
                    let shared = Arc::clone(&self.shared);
                    shared.signal_fish.signal(
                        &shared.hub,
                        &peer,
                        &mut self.signal_budget,
                        &to,
                        generation,
                        signal,
                    )
                }
            }
            Request::ProvideConnectionInfo { connection_info } => {
                self.rooms().connection_info(&peer, &connection_info)
            }
            // A transport report for the relay changes nothing.
            Request::TransportStatus { .. } => Ok(()),
        };
        match outcome {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.answer_refusal(&refusal),
        }
    }

    pub(super) fn reconnect(&mut self, reconnect: Reconnect) -> Result<(), Refusal> {
        let Reconnect {
            player_id,
            room_id,
            auth_token,
        } = reconnect;
        let app = self.app.clone();
        let hub = self.hub();
        self.rooms()
            .reconnect(
                hub,
                &self.room_peer(),
                &player_id,
                &room_id,
                &auth_token,
                |name| hub.bans().identity(app.as_deref(), name).is_some(),
            )
            .map(|change| self.record(change))
    }

    pub(super) fn spectate(&mut self, spectate: JoinAsSpectator) -> Result<(), Refusal> {
        let JoinAsSpectator {
            game_name,
            room_code,
            spectator_name,
            password: _,
        } = spectate;
        let app = self.app.clone().unwrap_or_default();
        if self
            .hub()
            .bans()
            .identity(Some(&app), &spectator_name)
            .is_some()
        {
            return Err(Refusal {
                carrier: Carrier::SpectatorJoinFailed,
                code: "BANNED",
                text: None,
            });
        }
        let joined = self
            .rooms()
            .spectate(
                self.hub(),
                &self.room_peer(),
                &app,
                &game_name,
                &room_code,
                &spectator_name,
            )
            .map(|change| self.record(change));
        if joined.is_ok() {
            self.hub()
                .update_peer(&self.peer.id, |p| p.identity = Some(spectator_name));
        }
        joined
    }

    pub(super) fn join(&mut self, join: JoinRoom) -> Result<(), Refusal> {
        let app = self.app.clone().unwrap_or_default();
        let max_rooms_per_game = self
            .hub()
            .config()
            .app(&app)
            .and_then(|a| a.signal_fish.as_ref())
            .map(|sf| sf.max_rooms_per_game)
            .unwrap_or(rooms::DEFAULT_MAX_ROOMS_PER_GAME);
        // A room is opened by a connected player: an app needs no more rooms than it may
        // have connections, whatever game names its clients make up.
        let max_rooms_per_app = self
            .hub()
            .config()
            .app(&app)
            .map_or(rooms::DEFAULT_MAX_ROOMS_PER_GAME, |a| {
                a.limits.max_connections.max(1)
            });
        let player_name = join.player_name.clone();
        let asked = crate::protocol::admin::RefusedJoin {
            game: crate::text::clip(&join.game_name, REFUSED_NAME_KEPT * 2).into_owned(),
            room: join
                .room_code
                .as_deref()
                .map(|code| crate::text::clip(code, REFUSED_NAME_KEPT).into_owned()),
            code: String::new(),
        };
        if let Some(_ban) = self.hub().bans().identity(Some(&app), &player_name) {
            return Err(Refusal {
                carrier: Carrier::RoomJoinFailed,
                code: "BANNED",
                text: None,
            });
        }
        let request = JoinRequest {
            app,
            game_name: join.game_name,
            room_code: join.room_code,
            player_name: join.player_name,
            max_players: join.max_players,
            supports_authority: join.supports_authority,
            join_only: join.join_only.unwrap_or(false),
            allow_spectators: join.allow_spectators,
            max_spectators: join.max_spectators,
            max_rooms_per_game,
            max_rooms_per_app,
        };
        let joined = self
            .rooms()
            .join_with(
                self.hub(),
                &self.room_peer(),
                request,
                JoinOptions {
                    password: join.password,
                },
            )
            .map(|change| self.record(change));
        if joined.is_err() {
            // A refused join may have closed an abandoned room to make way first.
            self.record(self.rooms().changes());
        }
        match &joined {
            Ok(()) => self
                .hub()
                .update_peer(&self.peer.id, |p| p.identity = Some(player_name)),
            // A refused player still said who they are: a support engineer looking for
            // "Latecomer" finds the peer that was turned away. Not a name the refusal was
            // about, and never over a name the peer already has.
            Err(refusal)
                if !matches!(refusal.code, "INVALID_PLAYER_NAME" | "BANNED")
                    && !player_name.is_empty()
                    && player_name.chars().count() <= REFUSED_NAME_KEPT =>
            {
                self.hub().update_peer(&self.peer.id, |p| {
                    if p.identity.is_none() {
                        p.identity = Some(player_name);
                    }
                });
            }
            Err(_) => {}
        }
        if let Err(refusal) = &joined {
            self.hub().note_refused_join(
                &self.peer.id,
                crate::protocol::admin::RefusedJoin {
                    code: refusal.code.to_owned(),
                    ..asked
                },
            );
        }
        joined
    }

    /// The hot path: a GameData frame read without building a tree of its payload.
    pub(super) fn game_data(
        &mut self,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if let Some(code) = self.hub().take_fault(&self.peer) {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: static_code(&code),
                text: None,
            });
        }
        self.relay_game_data(data, class, key)
    }

    pub(super) fn relay_game_data(
        &self,
        data: &RawValue,
        class: Option<DeliveryClass>,
        key: Option<u32>,
    ) -> Result<(), Refusal> {
        if data.get().len() > self.hub().config().signal_fish.max_game_data_bytes {
            return Err(Refusal {
                carrier: Carrier::Error,
                code: "MESSAGE_TOO_LARGE",
                text: None,
            });
        }
        self.rooms()
            .game_data_with(self.hub(), &self.peer.id, data, class, key)
    }
}
