//! Inactive rooms, reaped as signal-fish-server 0.12 reaps them: a room none of whose members
//! sent anything for `inactive_room_timeout_ms` (0.12: one hour) closes, each connected member
//! told `Error ROOM_NOT_FOUND` and closed 4005 `room_inactive`, its reconnection seats gone.
//!
//! Activity is reported by the sessions, at most once per [`Rooms::activity_interval`] each,
//! so that the relay path takes no lock for it; a room's creation counts as activity.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::table::Membership;
use super::Rooms;
use crate::clock::now_ms;
use crate::protocol::signal_fish::ServerMessage;
use crate::server::hub::Hub;

/// The last reported activity of each room, by room id (milliseconds).
#[derive(Default)]
pub(super) struct Activity(Mutex<HashMap<String, u64>>);

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Rooms {
    /// How often a busy session reports its activity: often enough that a room with one
    /// active member never comes near the timeout (0.12 refreshes every 30 s).
    pub fn activity_interval(&self) -> Duration {
        Duration::from_millis((self.settings.inactive_room_timeout_ms / 4).clamp(1, 30_000))
    }

    /// The peer sent a message: its room (as player or spectator) is active.
    pub fn note_activity(&self, peer: &str) {
        let state = self.lock();
        let room = match state.membership.get(peer) {
            Some(Membership::Player { room, .. } | Membership::Spectator { room, .. }) => room,
            None => return,
        };
        let Some(room) = state.rooms.get(room) else {
            return;
        };
        let id = room.id.clone();
        drop(state);
        self.activity.lock().insert(id, now_ms());
    }

    /// Close the rooms whose members have all been silent for the timeout.
    pub(super) fn reap_inactive(&self, hub: &Hub) {
        let now = now_ms();
        let timeout = self.settings.inactive_room_timeout_ms;
        let mut state = self.lock();
        let stale: Vec<(String, String)> = {
            let activity = self.activity.lock();
            state
                .rooms
                .values()
                .filter(|room| {
                    let last = activity
                        .get(&room.id)
                        .copied()
                        .unwrap_or(0)
                        .max(room.created_at_ms);
                    now.saturating_sub(last) >= timeout
                })
                .map(|room| (room.code.clone(), room.id.clone()))
                .collect()
        };
        if stale.is_empty() {
            return;
        }
        let mut closed = Vec::new();
        for (code, id) in stale {
            let Some(room) = state.rooms.remove(&code) else {
                continue;
            };
            let members = room.audience(None);
            state
                .membership
                .retain(|peer, _| !members.iter().any(|member| member.id() == peer));
            state.seats.retain(|_, seat| seat.room_id != id);
            self.activity.lock().remove(&id);
            closed.push((code, id, members));
        }
        drop(state);
        let farewell = ServerMessage::Error {
            message: "Room closed after exceeding the inactivity timeout".to_owned(),
            error_code: "ROOM_NOT_FOUND".to_owned(),
        };
        for (code, id, members) in closed {
            self.forget_plan(&id);
            for member in &members {
                hub.send_error(&member.handle, "ROOM_NOT_FOUND", None, farewell.text());
                hub.close_peer(&member.handle, 4005, "room_inactive");
                self.seated(member.id(), None);
            }
            self.closed(&code, "inactive");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::server::config::SignalFishSettings;

    #[test]
    fn a_room_whose_members_fall_silent_closes_and_an_active_one_stays() {
        let settings = SignalFishSettings {
            inactive_room_timeout_ms: 0,
            ..SignalFishSettings::default()
        };
        let (hub, rooms) = (hub(), Rooms::new(settings));
        let (mut alice, mut bob) = (peer(&hub, "Alice"), peer(&hub, "Bob"));
        let (code, _, _) = two_players(&rooms, &hub, &mut alice, &mut bob);
        rooms.reap_inactive(&hub);
        assert!(!rooms.holds_code(&code));
        let farewell = last_of(&drain(&mut bob), "Error");
        assert_eq!(farewell["data"]["error_code"], "ROOM_NOT_FOUND");
        assert_eq!(
            rooms.leave(&hub, &alice.handle).unwrap_err().code,
            "NOT_IN_ROOM"
        );

        let settings = SignalFishSettings {
            inactive_room_timeout_ms: 60_000,
            ..SignalFishSettings::default()
        };
        let rooms = Rooms::new(settings);
        let (mut carol, mut dan) = (peer(&hub, "Carol"), peer(&hub, "Dan"));
        let (code, _, _) = two_players(&rooms, &hub, &mut carol, &mut dan);
        rooms.note_activity(carol.id());
        rooms.reap_inactive(&hub);
        assert!(rooms.holds_code(&code));
        assert_eq!(rooms.activity_interval(), Duration::from_millis(15_000));
    }
}
