//! What a proxied Signal Fish connection's frames say about it: the app it authenticated as,
//! the player it joined as, the room it is in (players, authority, lobby state), and the
//! error frames the upstream sent it.
//!
//! The upstream owns the rooms; the proxy only keeps the view its players' frames give of
//! them, shared by every proxied player of a room ([`Rooms`]), so that the admin snapshot
//! shows a proxied room as it shows one of its own.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::Value;

use crate::clock::now_ms;
use crate::protocol::admin::{RoomInfo, RoomMember};
use crate::server::hub::Hub;
use crate::server::peer::PeerHandle;

/// The rooms proxied players are in, by room code, as their frames showed them.
#[derive(Clone, Default)]
pub struct Rooms(Arc<Mutex<HashMap<String, RoomInfo>>>);

impl Rooms {
    /// Change the room `code` (when the proxy knows it) and tell admins.
    fn update(&self, hub: &Hub, code: &str, change: impl FnOnce(&mut RoomInfo)) {
        let updated = {
            let mut rooms = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let Some(room) = rooms.get_mut(code) else {
                return;
            };
            change(room);
            room.clone()
        };
        hub.room_updated(updated);
    }
}

/// One proxied Signal Fish connection's reading of its frames.
#[derive(Default)]
pub struct Observer {
    /// The app the client asked for, until the upstream accepts it.
    asked_app: Option<String>,
    app: Option<String>,
    /// The name the client last asked to join as.
    asked_name: Option<String>,
    player_id: Option<String>,
    room: Option<String>,
}

/// What a client frame asks for: its `type`, and for a correlated `RoomOperation`
/// (room_operation_ids) the operation's id and the request it wraps, which its answer must
/// carry.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Asked<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub operation: Option<(String, String)>,
}

impl Asked<'_> {
    /// The request itself: the one a RoomOperation wraps, or the frame's type.
    pub fn request(&self) -> Option<&str> {
        match &self.operation {
            Some((_, request)) => Some(request),
            None => self.kind.as_deref(),
        }
    }
}

/// A frame's `type`, read without building the rest of it: most frames (game data above all)
/// are only passed on, and only the few the views read are parsed whole.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

fn peek_type(frame: &str) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Peek<'_>>(frame).ok()?.kind
}

/// The upstream frames whose contents change the views.
const VIEWED_UPSTREAM: &[&str] = &[
    "Authenticated",
    "RoomJoined",
    "PlayerJoined",
    "PlayerLeft",
    "AuthorityChanged",
    "LobbyStateChanged",
    "RoomLeft",
    // Correlated answers (room_operation_ids) wrap the frames above.
    "RoomOperationResult",
];

/// Whether a frame may carry an error code: every refusal names it in an `error_code` key.
fn may_carry_error_code(frame: &str) -> bool {
    frame.contains("\"error_code\"")
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn member_of(player: &Value) -> Option<RoomMember> {
    Some(RoomMember {
        player_id: text(player, "id")?.to_owned(),
        name: text(player, "name").unwrap_or_default().to_owned(),
        peer: None,
        ready: player
            .get("is_ready")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The error code an upstream frame carries, in any of Signal Fish's refusals: `Error`,
/// `AuthenticationError`, `RoomJoinFailed` and the like carry `data.error_code`; a failed
/// room operation carries it in `data.result.data`.
fn error_code(data: &Value) -> Option<&str> {
    text(data, "error_code").or_else(|| {
        data.get("result")
            .and_then(|r| r.get("data"))
            .and_then(|d| text(d, "error_code"))
    })
}

impl Observer {
    /// A frame the client sent toward the upstream; its `type`, when it has one.
    pub fn client_frame<'a>(&mut self, frame: &'a str) -> Asked<'a> {
        let Some(kind) = peek_type(frame) else {
            return Asked::default();
        };
        let mut operation = None;
        if matches!(kind.as_ref(), "Authenticate" | "JoinRoom" | "RoomOperation") {
            let Ok(value) = serde_json::from_str::<Value>(frame) else {
                return Asked {
                    kind: Some(kind),
                    operation,
                };
            };
            let data = value.get("data").unwrap_or(&Value::Null);
            // A client granted room_operation_ids wraps its join in a RoomOperation.
            let (request, request_data) = match kind.as_ref() {
                "RoomOperation" => {
                    let wrapped = data.get("operation").unwrap_or(&Value::Null);
                    let request = text(wrapped, "type").unwrap_or_default();
                    if let Some(id) = text(data, "operation_id") {
                        operation = Some((id.to_owned(), request.to_owned()));
                    }
                    (request, wrapped.get("data").unwrap_or(&Value::Null))
                }
                other => (other, data),
            };
            match request {
                "Authenticate" => self.asked_app = text(request_data, "app_id").map(str::to_owned),
                "JoinRoom" => {
                    self.asked_name = text(request_data, "player_name").map(str::to_owned)
                }
                _ => {}
            }
        }
        Asked {
            kind: Some(kind),
            operation,
        }
    }

    /// A frame the upstream sent toward the client.
    /// Read one upstream frame into the views; true when it named the peer (its app or its
    /// player name), so that bans on the identity are checked then and only then.
    pub fn upstream_frame(
        &mut self,
        hub: &Hub,
        rooms: &Rooms,
        peer: &PeerHandle,
        frame: &str,
    ) -> bool {
        let Some(kind) = peek_type(frame) else {
            return false;
        };
        if !VIEWED_UPSTREAM.contains(&kind.as_ref()) && !may_carry_error_code(frame) {
            return false;
        }
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            return false;
        };
        let data = value.get("data").unwrap_or(&Value::Null);
        if let Some(code) = error_code(data) {
            hub.record_relayed_error(peer, code, frame.to_owned());
        }
        // The answer to a correlated RoomOperation says what the plain answer would.
        let (kind, data) = match kind.as_ref() {
            "RoomOperationResult" => {
                let result = data.get("result").unwrap_or(&Value::Null);
                (
                    text(result, "type"),
                    result.get("data").unwrap_or(&Value::Null),
                )
            }
            kind => (Some(kind), data),
        };
        match kind {
            Some("Authenticated") => {
                self.app = self.asked_app.take();
                let app = self.app.clone();
                hub.update_peer(&peer.id, |info| info.app = app);
            }
            Some("RoomJoined") => self.joined(hub, rooms, peer, data),
            Some("PlayerJoined") => {
                if let (Some(code), Some(member)) =
                    (&self.room, data.get("player").and_then(member_of))
                {
                    rooms.update(hub, code, |room| {
                        if !room.players.iter().any(|m| m.player_id == member.player_id) {
                            room.players.push(member);
                        }
                    });
                }
            }
            Some("PlayerLeft") => {
                if let (Some(code), Some(gone)) = (&self.room, text(data, "player_id")) {
                    rooms.update(hub, code, |room| {
                        room.players.retain(|m| m.player_id != gone)
                    });
                }
            }
            Some("AuthorityChanged") => {
                if let Some(code) = &self.room {
                    let authority = text(data, "authority_player").map(str::to_owned);
                    rooms.update(hub, code, |room| room.authority = authority);
                }
            }
            Some("LobbyStateChanged") => {
                if let Some(code) = &self.room {
                    let state = text(data, "lobby_state").map(str::to_owned);
                    let ready: Vec<String> = data
                        .get("ready_players")
                        .and_then(Value::as_array)
                        .map(|ids| {
                            ids.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    rooms.update(hub, code, |room| {
                        if let Some(state) = state {
                            room.lobby_state = state;
                        }
                        for member in &mut room.players {
                            member.ready = ready.contains(&member.player_id);
                        }
                    });
                }
            }
            Some("RoomLeft") => self.left(hub, rooms, peer),
            _ => {}
        }
        matches!(kind, Some("Authenticated" | "RoomJoined"))
    }

    fn joined(&mut self, hub: &Hub, rooms: &Rooms, peer: &PeerHandle, data: &Value) {
        let (Some(code), Some(player_id)) = (text(data, "room_code"), text(data, "player_id"))
        else {
            return;
        };
        if self.room.as_deref().is_some_and(|r| r != code) {
            self.left(hub, rooms, peer);
        }
        let members = |key: &str| -> Vec<RoomMember> {
            data.get(key)
                .and_then(Value::as_array)
                .map(|all| all.iter().filter_map(member_of).collect())
                .unwrap_or_default()
        };
        let mut players = members("current_players");
        let spectators = members("current_spectators");
        let authority = players
            .iter()
            .zip(
                data.get("current_players")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .find(|(_, raw)| raw.get("is_authority").and_then(Value::as_bool) == Some(true))
            .map(|(m, _)| m.player_id.clone());
        let name = players
            .iter()
            .find(|m| m.player_id == player_id)
            .map(|m| m.name.clone())
            .or_else(|| self.asked_name.clone());
        let room = {
            let mut all = rooms.0.lock().unwrap_or_else(|p| p.into_inner());
            let known = all.get(code);
            // Players already seen through the proxy keep their peers.
            for member in &mut players {
                member.peer = if member.player_id == player_id {
                    Some(peer.id.clone())
                } else {
                    known
                        .and_then(|k| k.players.iter().find(|m| m.player_id == member.player_id))
                        .and_then(|m| m.peer.clone())
                };
            }
            let room = RoomInfo {
                code: code.to_owned(),
                room_id: text(data, "room_id").unwrap_or_default().to_owned(),
                app: self.app.clone().unwrap_or_default(),
                game: text(data, "game_name").unwrap_or_default().to_owned(),
                max_players: data
                    .get("max_players")
                    .and_then(Value::as_u64)
                    .and_then(|n| u8::try_from(n).ok())
                    .unwrap_or(0),
                supports_authority: data
                    .get("supports_authority")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                lobby_state: text(data, "lobby_state").unwrap_or("waiting").to_owned(),
                players,
                spectators,
                authority,
                created_at_ms: known.map_or_else(now_ms, |k| k.created_at_ms),
            };
            all.insert(code.to_owned(), room.clone());
            room
        };
        self.room = Some(code.to_owned());
        self.player_id = Some(player_id.to_owned());
        let room_code = code.to_owned();
        hub.update_peer(&peer.id, |info| {
            info.room = Some(room_code);
            if name.is_some() {
                info.identity = name;
            }
        });
        hub.room_updated(room);
    }

    /// The player left its room (or its connection ended): it leaves the proxy's view, which
    /// closes once no proxied player is left to watch it.
    pub fn left(&mut self, hub: &Hub, rooms: &Rooms, peer: &PeerHandle) {
        let Some(code) = self.room.take() else {
            return;
        };
        let player_id = self.player_id.take();
        let (remaining, watched) = {
            let mut all = rooms.0.lock().unwrap_or_else(|p| p.into_inner());
            let Some(room) = all.get_mut(&code) else {
                return;
            };
            room.players.retain(|m| {
                Some(&m.player_id) != player_id.as_ref() && m.peer.as_ref() != Some(&peer.id)
            });
            let watched = room.players.iter().any(|m| m.peer.is_some());
            let remaining = room.clone();
            if !watched {
                all.remove(&code);
            }
            (remaining, watched)
        };
        hub.update_peer(&peer.id, |info| info.room = None);
        if watched {
            hub.room_updated(remaining);
        } else {
            hub.room_closed(&code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_frames_the_views_read_are_parsed_whole() {
        assert_eq!(
            peek_type(r#"{"type":"GameData","data":{"from_player":"p","data":{"x":[1,2]}}}"#)
                .as_deref(),
            Some("GameData")
        );
        assert_eq!(
            peek_type(r#"{"data":{},"type":"Room\u004aoined"}"#).as_deref(),
            Some("RoomJoined"),
            "escaped, wherever it is"
        );
        assert_eq!(peek_type(r#"{"data":{}}"#), None);
        assert_eq!(peek_type("not json"), None);
        assert!(may_carry_error_code(
            r#"{"type":"RoomJoinFailed","data":{"reason":"full","error_code":"ROOM_FULL"}}"#
        ));
        assert!(!may_carry_error_code(r#"{"type":"Pong"}"#));

        let mut observer = Observer::default();
        let asked = observer.client_frame(r#"{"type":"Authenticate","data":{"app_id":"demo"}}"#);
        assert_eq!(asked.request(), Some("Authenticate"));
        assert_eq!(observer.asked_app.as_deref(), Some("demo"));
        let asked = observer.client_frame(r#"{"type":"JoinRoom","data":{"player_name":"Alice"}}"#);
        assert_eq!(asked.request(), Some("JoinRoom"));
        assert_eq!(asked.operation, None);
        assert_eq!(observer.asked_name.as_deref(), Some("Alice"));
        let asked = observer.client_frame(
            r#"{"type":"RoomOperation","data":{"operation_id":"0b7c1d2e-0000-4000-8000-000000000001","operation":{"type":"JoinRoom","data":{"player_name":"Bob"}}}}"#,
        );
        assert_eq!(asked.kind.as_deref(), Some("RoomOperation"));
        assert_eq!(asked.request(), Some("JoinRoom"));
        assert_eq!(
            asked.operation,
            Some((
                "0b7c1d2e-0000-4000-8000-000000000001".to_owned(),
                "JoinRoom".to_owned()
            ))
        );
        assert_eq!(observer.asked_name.as_deref(), Some("Bob"));
    }

    #[test]
    fn refusals_carry_their_code_where_signal_fish_puts_it() {
        let error: Value = serde_json::json!({"message": "x", "error_code": "ROOM_NOT_FOUND"});
        assert_eq!(error_code(&error), Some("ROOM_NOT_FOUND"));
        let op: Value = serde_json::json!({"operation_id": "op", "result": {"type": "OperationFailed", "data": {"reason": "r", "error_code": "NOT_ROOM_AUTHORITY"}}});
        assert_eq!(error_code(&op), Some("NOT_ROOM_AUTHORITY"));
        assert_eq!(error_code(&serde_json::json!({"room_code": "ABC"})), None);
    }
}
