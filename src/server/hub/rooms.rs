//! The hub's methods for rooms as admins see them (the view is in `parts/rooms.rs`): the
//! dialect that owns rooms hands its changes to its callers as [`RoomEvent`]s, which they
//! record here.

use super::{Hub, State};
use crate::clock::now_ms;
use crate::protocol::admin::{Closed, ClosedRoom, Event, HistoryEntry, PeerId, RoomInfo};

/// What admins learn of a room change; the rooms hand these back to whoever made the change,
/// which records them here.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// The room as it is now.
    Updated(RoomInfo),
    /// The room is gone.
    Closed { code: String, reason: String },
    /// The room a peer is in now (none: it left its room), and the name it plays under when
    /// that became known with the change (a reconnect takes its seat's name back).
    Seated {
        peer: PeerId,
        room: Option<String>,
        identity: Option<String>,
    },
}

impl Hub {
    /// Room changes, in the order they happened.
    pub fn record_rooms(&self, events: &[RoomEvent]) {
        for event in events {
            match event {
                RoomEvent::Updated(room) => self.room_updated(room.clone()),
                RoomEvent::Closed { code, reason } => self.room_closed_because(code, reason),
                RoomEvent::Seated {
                    peer,
                    room,
                    identity,
                } => self.update_peer(peer, |p| {
                    p.room = room.clone();
                    if let Some(identity) = identity {
                        p.identity = Some(identity.clone());
                    }
                }),
            }
        }
    }

    /// A room as it is now (the proxy's view of the real server's rooms, too).
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

    fn room_closed_because(&self, code: &str, reason: &str) {
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
}
