//! What a reconnecting player missed, as signal-fish-server 0.12 keeps it: while a player of a
//! room is disconnected, the room's control events (players and spectators coming and going,
//! lobby and authority changes) are kept in a ring of the last [`EVENT_BUFFER_SIZE`], and a
//! v3 or v2 Reconnected carries those after the player's disconnection as `missed_events`.
//!
//! As upstream: game data, signals, GameStarting and frames meant for one member are never
//! kept; the player's own comings and goings and authority changes the snapshot supersedes are
//! left out; v2 recipients get the events without v3 stamps. The v3 `replay` status says
//! `complete`, or `truncated` when the ring dropped events the player had not seen.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::table::{Player, Room};
use super::Rooms;
use crate::protocol::signal_fish::{PlayerInfo, ReplayStatus, ServerMessage};

/// 0.12's `server.event_buffer_size`: events kept per room.
pub const EVENT_BUFFER_SIZE: usize = 100;

#[derive(Default)]
pub(super) struct Replay(Mutex<ReplayState>);

#[derive(Default)]
struct ReplayState {
    /// The number of the last event kept, in any room.
    last: u64,
    /// By room id: its ring, present while one of its players is away.
    rings: HashMap<String, Ring>,
    /// By player id: its room id and the last event numbered before it left.
    cursors: HashMap<String, (String, u64)>,
}

#[derive(Default)]
struct Ring {
    events: VecDeque<(u64, ServerMessage)>,
    /// The number of the newest event dropped for room.
    evicted: Option<u64>,
}

impl Replay {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Rooms {
    /// A room-wide control event, in its v3 form (AuthorityChanged as others see it); kept
    /// only while one of the room's players is away.
    pub(super) fn record_event(&self, room_id: &str, event: ServerMessage) {
        let mut replay = self.replay.lock();
        let state = &mut *replay;
        let Some(ring) = state.rings.get_mut(room_id) else {
            return;
        };
        state.last += 1;
        ring.events.push_back((state.last, event));
        while ring.events.len() > EVENT_BUFFER_SIZE {
            if let Some((number, _)) = ring.events.pop_front() {
                ring.evicted = Some(number);
            }
        }
    }

    /// A player's connection dropped with its seat kept: from now on its room keeps events.
    pub(super) fn mark_away(&self, room_id: &str, player_id: &str) {
        let mut replay = self.replay.lock();
        let last = replay.last;
        replay.rings.entry(room_id.to_owned()).or_default();
        replay
            .cursors
            .insert(player_id.to_owned(), (room_id.to_owned(), last));
    }

    /// What the player missed, shaped for its version, and the v3 completeness of it.
    pub(super) fn missed_events(
        &self,
        player_id: &str,
        v3: bool,
        authority: Option<&str>,
    ) -> (Vec<ServerMessage>, ReplayStatus) {
        let mut replay = self.replay.lock();
        let Some((room_id, cursor)) = replay.cursors.remove(player_id) else {
            return (Vec::new(), ReplayStatus::Complete);
        };
        let Some(ring) = replay.rings.get(&room_id) else {
            return (Vec::new(), ReplayStatus::Complete);
        };
        let status = if ring.evicted.is_some_and(|evicted| evicted > cursor) {
            ReplayStatus::Truncated
        } else {
            ReplayStatus::Complete
        };
        let events = ring
            .events
            .iter()
            .filter(|(number, _)| *number > cursor)
            .filter_map(|(_, event)| shaped_for(event, player_id, v3, authority))
            .collect();
        (events, status)
    }

    /// Drop what nobody can still ask for: cursors of players back or gone, rings of rooms
    /// with nobody away. `away` lists (room id, player id) of every disconnected seat.
    pub(super) fn prune_replay(&self, away: &[(String, String)]) {
        let mut replay = self.replay.lock();
        replay
            .cursors
            .retain(|player, (room, _)| away.iter().any(|(r, p)| r == room && p == player));
        let ReplayState { rings, cursors, .. } = &mut *replay;
        rings.retain(|room, _| cursors.values().any(|(r, _)| r == room));
    }
}

/// A roster entry as kept: both versions' fields, each recipient's stripped on the way out.
pub(super) fn kept_info(room: &Room, player: &Player) -> PlayerInfo {
    PlayerInfo {
        connected_at: Some(player.connected_at.clone()),
        ..room.player_info(player, true)
    }
}

/// One kept event as this reconnecting player receives it, or None when it is not news to it.
fn shaped_for(
    event: &ServerMessage,
    me: &str,
    v3: bool,
    authority: Option<&str>,
) -> Option<ServerMessage> {
    let mut event = event.clone();
    match &mut event {
        ServerMessage::PlayerJoined { player } => {
            if player.id == me {
                return None;
            }
            if v3 {
                player.connected_at = None;
            } else {
                player.epoch = None;
                player.seq = None;
            }
        }
        ServerMessage::PlayerLeft {
            player_id,
            epoch,
            final_seq,
        } => {
            if player_id == me {
                return None;
            }
            if !v3 {
                *epoch = None;
                *final_seq = None;
            }
        }
        ServerMessage::PlayerReconnected {
            player_id,
            epoch,
            player,
        } => {
            if player_id == me {
                return None;
            }
            if v3 {
                if let Some(player) = player {
                    player.connected_at = None;
                }
            } else {
                *epoch = None;
                *player = None;
            }
        }
        ServerMessage::AuthorityChanged {
            authority_player,
            you_are_authority,
        } => {
            if authority_player.as_deref() != authority {
                return None;
            }
            *you_are_authority = authority == Some(me);
        }
        _ => {}
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::SignalFishSettings;

    fn left(player: &str) -> ServerMessage {
        ServerMessage::PlayerLeft {
            player_id: player.into(),
            epoch: Some(1),
            final_seq: Some(4),
        }
    }

    #[test]
    fn the_ring_keeps_only_while_someone_is_away_and_says_when_it_dropped_some() {
        let rooms = Rooms::new(SignalFishSettings::default());
        rooms.record_event("room", left("x"));
        rooms.mark_away("room", "me");
        for _ in 0..EVENT_BUFFER_SIZE + 1 {
            rooms.record_event("room", left("other"));
        }
        rooms.record_event("elsewhere", left("y"));
        let (missed, status) = rooms.missed_events("me", true, None);
        assert_eq!(missed.len(), EVENT_BUFFER_SIZE);
        assert_eq!(status, ReplayStatus::Truncated);
        assert_eq!(
            rooms.missed_events("me", true, None).0.len(),
            0,
            "asked once"
        );

        rooms.mark_away("room", "me");
        rooms.prune_replay(&[]);
        rooms.record_event("room", left("other"));
        assert_eq!(
            rooms.missed_events("me", true, None),
            (Vec::new(), ReplayStatus::Complete)
        );
    }

    #[test]
    fn events_are_shaped_for_the_reconnecting_player() {
        assert!(
            shaped_for(&left("me"), "me", true, None).is_none(),
            "its own"
        );
        assert_eq!(
            shaped_for(&left("other"), "me", false, None),
            Some(ServerMessage::PlayerLeft {
                player_id: "other".into(),
                epoch: None,
                final_seq: None,
            }),
            "v2 without stamps"
        );
        let changed = |holder: Option<&str>| ServerMessage::AuthorityChanged {
            authority_player: holder.map(str::to_owned),
            you_are_authority: false,
        };
        assert!(
            shaped_for(&changed(Some("other")), "me", true, Some("me")).is_none(),
            "superseded by the snapshot"
        );
        assert_eq!(
            shaped_for(&changed(Some("me")), "me", true, Some("me")),
            Some(ServerMessage::AuthorityChanged {
                authority_player: Some("me".into()),
                you_are_authority: true,
            })
        );
    }
}
