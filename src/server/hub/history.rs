//! The hub's methods for what the flight recorder holds of a peer, live or closed (the
//! history itself is in `parts/history.rs`).

use super::parts::history::PeerRecord;
use super::Hub;
use crate::protocol::admin::PeerId;

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
