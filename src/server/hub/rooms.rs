//! The hub's methods for rooms as admins see them (the view is in `parts/rooms.rs`); admin
//! room commands go to the dialect through [`RoomDirectory`].

use std::sync::Arc;

use super::{Hub, RoomDirectory, State};
use crate::clock::now_ms;
use crate::protocol::admin::{Closed, ClosedRoom, Event, HistoryEntry, RoomInfo};

impl Hub {
    pub fn set_room_directory(&self, directory: Arc<dyn RoomDirectory>) {
        *self.rooms.lock().unwrap_or_else(|p| p.into_inner()) = Some(directory);
    }

    fn room_directory(&self) -> Result<Arc<dyn RoomDirectory>, String> {
        self.rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| "this server has no room-based dialect running".to_owned())
    }

    pub fn room_updated(&self, room: RoomInfo) {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            rooms,
            ..
        } = &mut *state;
        registry.note_player_ids(&room);
        rooms.by_code.insert(room.code.clone(), room.clone());
        journal.record(Event::RoomUpdated { room });
    }

    /// A room closed because its last member left.
    pub fn room_closed(&self, code: &str) {
        self.room_closed_because(code, "empty");
    }

    pub fn room_closed_because(&self, code: &str, reason: &str) {
        let mut state = self.lock();
        let State {
            journal,
            rooms,
            history,
            ..
        } = &mut *state;
        if let Some(room) = rooms.by_code.remove(code) {
            journal.record(Event::RoomClosed {
                code: code.to_owned(),
            });
            let entry = HistoryEntry {
                closed_at_ms: now_ms(),
                closed: Closed::Room(Box::new(ClosedRoom {
                    room,
                    reason: reason.to_owned(),
                })),
            };
            history.add(journal, self.config.history, entry, None, None);
        }
    }

    pub fn close_room(&self, room: &str) -> Result<String, String> {
        self.room_directory()
            .map_err(|why| format!("no room {room}: {why}"))?
            .close_room(self, room)
    }

    pub fn transfer_authority(&self, room: &str, player_id: &str) -> Result<String, String> {
        self.room_directory()
            .map_err(|why| format!("no room {room}: {why}"))?
            .transfer_authority(self, room, player_id)
    }

    pub fn revoke_authority(&self, room: &str) -> Result<String, String> {
        self.room_directory()
            .map_err(|why| format!("no room {room}: {why}"))?
            .revoke_authority(self, room)
    }
}
