//! The history of closed peers and rooms, and what the flight recorder still holds of each
//! peer (live or closed) for the admin's `frames` and `export`.

use std::collections::VecDeque;

use super::{Hub, Journal};
use crate::clock::now_ms;
use crate::protocol::admin::{Closed, Event, HistoryEntry, PeerId, PeerInfo};
use crate::server::config::HistorySettings;
use crate::server::recorder::{Record, Ring};

/// One history entry and what only the server keeps of it: the peer's recorded frames.
struct HistoryItem {
    entry: HistoryEntry,
    path: Option<String>,
    /// Dropped with the entry, which gives its bytes back to the recorder's budget.
    ring: Option<Ring>,
}

/// What the flight recorder holds of one peer, live or closed (for `frames` and `export`).
#[derive(Debug, Clone)]
pub struct PeerRecord {
    pub info: PeerInfo,
    pub path: Option<String>,
    pub frames: Vec<Record>,
    /// `Some` once closed: the close code sent (if any) and the reason.
    pub closed: Option<(Option<u16>, String)>,
    pub closed_at_ms: Option<u64>,
    pub rooms: Vec<String>,
}

/// Closed peers and rooms, oldest first.
#[derive(Default)]
pub(super) struct History {
    items: VecDeque<HistoryItem>,
}

impl History {
    pub(super) fn entries(&self) -> Vec<HistoryEntry> {
        self.items.iter().map(|h| h.entry.clone()).collect()
    }

    pub(super) fn add(
        &mut self,
        journal: &mut Journal,
        limits: HistorySettings,
        entry: HistoryEntry,
        path: Option<String>,
        ring: Option<Ring>,
    ) {
        journal.record(Event::HistoryAdded {
            entry: entry.clone(),
        });
        self.items.push_back(HistoryItem { entry, path, ring });
        self.trim(limits, now_ms());
    }

    /// Drop entries past the count or the age limit; each costs only its own removal.
    pub(super) fn trim(&mut self, limits: HistorySettings, now: u64) {
        while self.items.len() > limits.max_entries as usize
            || self
                .items
                .front()
                .is_some_and(|h| h.entry.closed_at_ms.saturating_add(limits.retain_ms) <= now)
        {
            self.items.pop_front();
        }
    }

    /// The newest closed entry of peer `id`, as the recorder holds it.
    fn closed_peer(&self, id: &str) -> Option<PeerRecord> {
        // The newest entry first: a history holds one entry per peer id, but be sure.
        self.items
            .iter()
            .rev()
            .find_map(|item| match &item.entry.closed {
                Closed::Peer(closed) if closed.peer.id == id => Some(PeerRecord {
                    info: closed.peer.clone(),
                    path: item.path.clone(),
                    frames: item
                        .ring
                        .as_ref()
                        .map(|r| r.records().cloned().collect())
                        .unwrap_or_default(),
                    closed: Some((closed.code, closed.reason.clone())),
                    closed_at_ms: Some(item.entry.closed_at_ms),
                    rooms: closed.rooms.clone(),
                }),
                _ => None,
            })
    }

    /// Closed peers that were in (or tried to join) room `code`, except `except`.
    fn closed_in_room<'a>(
        &'a self,
        code: &'a str,
        except: &'a str,
    ) -> impl Iterator<Item = PeerId> + 'a {
        self.items
            .iter()
            .filter_map(move |item| match &item.entry.closed {
                Closed::Peer(c) if c.peer.id != except && c.rooms.iter().any(|r| r == code) => {
                    Some(c.peer.id.clone())
                }
                _ => None,
            })
    }
}

impl Hub {
    /// What the recorder holds of a peer, live or in the history.
    pub fn peer_record(&self, id: &str) -> Option<PeerRecord> {
        let state = self.lock();
        if let Some(peer) = state.registry.get(id) {
            let recording = peer.handle.recording();
            return Some(PeerRecord {
                info: peer.info(),
                path: recording.and_then(|r| r.path().map(str::to_owned)),
                frames: recording.map(|r| r.records()).unwrap_or_default(),
                closed: None,
                closed_at_ms: None,
                rooms: peer.rooms.clone(),
            });
        }
        state.history.closed_peer(id)
    }

    /// The peers, live and closed, that were in (or tried to join) room `code`, except
    /// `except`. An export of a room failure replays them too.
    pub fn room_participants(&self, code: &str, except: &str) -> Vec<PeerRecord> {
        let ids: Vec<PeerId> = {
            let state = self.lock();
            let live = state
                .registry
                .entries()
                .filter(|(id, p)| id.as_str() != except && p.rooms.iter().any(|r| r == code))
                .map(|(id, _)| id.clone());
            live.chain(state.history.closed_in_room(code, except))
                .collect()
        };
        ids.iter().filter_map(|id| self.peer_record(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use axum::extract::ws::Utf8Bytes;

    use crate::catalog::Dialect;
    use crate::protocol::admin::Direction;
    use crate::server::config::Config;
    use crate::server::hub::{Hub, NewPeer};
    use crate::server::peer::Priority;

    #[test]
    fn a_closed_peers_frames_move_to_its_history_entry_and_leave_with_it() {
        let mut config = Config::demo();
        config.history.max_entries = 1;
        let hub = Hub::new(config, "test".into(), &BTreeMap::new(), 64);
        let new = || NewPeer {
            dialect: Dialect::Pubsub,
            app: Some("demo".into()),
            identity: None,
            addr: "127.0.0.1:1".into(),
            probe_nonce: None,
        };
        let first = hub.register_peer(new(), None).unwrap();
        let frame: Utf8Bytes = "hello".into();
        assert!(hub.deliver(&first.handle, &frame, Priority::Reply));
        first.handle.record(Direction::In, &"hi".into());
        assert_eq!(hub.recorder().used_bytes(), 7);
        hub.remove_peer(first.id(), None);
        let record = hub.peer_record(first.id()).unwrap();
        assert_eq!(record.frames.len(), 2);
        assert_eq!(record.closed, Some((None, "connection dropped".to_owned())));
        assert_eq!(hub.recorder().used_bytes(), 7, "kept while in the history");
        let second = hub.register_peer(new(), None).unwrap();
        hub.remove_peer(second.id(), None);
        assert!(
            hub.peer_record(first.id()).is_none(),
            "pushed out by the newer entry"
        );
        assert_eq!(hub.recorder().used_bytes(), 0, "its frames left with it");
        let (_, snapshot, _) = hub.subscribe();
        assert_eq!(snapshot.history.len(), 1);
    }
}
