//! The other nodes' peers and rooms, as their admin deltas describe them.
//!
//! Plain data: the hub keeps a `Mirror` under its lock, so that a snapshot lists the cluster's
//! peers and rooms exactly as the deltas numbered before it left them, and records the deltas
//! a change here returns. Nothing here knows the hub or a dialect.

use std::collections::BTreeMap;

use crate::protocol::admin::{Event, PeerId, PeerInfo, RoomInfo};

/// Another node's peers and rooms.
#[derive(Debug, Default)]
struct RemoteNode {
    peers: BTreeMap<PeerId, PeerInfo>,
    rooms: BTreeMap<String, RoomInfo>,
}

/// Every other node's peers and rooms, by node name.
#[derive(Debug, Default)]
pub struct Mirror {
    nodes: BTreeMap<String, RemoteNode>,
}

/// The deltas other nodes' consoles see: peers, rooms and errors. Channels, subscriptions,
/// faults, history and bans stay with the node that holds them.
pub fn shown_to_other_nodes(event: &Event) -> bool {
    matches!(
        event,
        Event::PeerConnected { .. }
            | Event::PeerUpdated { .. }
            | Event::PeerClosed { .. }
            | Event::RoomUpdated { .. }
            | Event::RoomClosed { .. }
            | Event::ErrorEmitted { .. }
            // A console on another node tapped the peer or armed the fault (commands run on
            // the peer's node): it sees what came of it.
            | Event::Frame { .. }
            | Event::FaultArmed { .. }
            | Event::FaultUpdated { .. }
    )
}

impl Mirror {
    pub fn peers(&self) -> impl Iterator<Item = &PeerInfo> + Clone {
        self.nodes.values().flat_map(|n| n.peers.values())
    }

    pub fn rooms(&self) -> impl Iterator<Item = &RoomInfo> + Clone {
        self.nodes.values().flat_map(|n| n.rooms.values())
    }

    /// The other node holding a room, by its code.
    pub fn room_node(&self, code: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|(_, node)| node.rooms.contains_key(code))
            .map(|(name, _)| name.clone())
    }

    /// The other node holding a room, by its id.
    pub fn room_node_by_id(&self, room_id: &str) -> Option<String> {
        self.nodes
            .iter()
            .find(|(_, node)| node.rooms.values().any(|room| room.room_id == room_id))
            .map(|(name, _)| name.clone())
    }

    /// A peer of another node, as its deltas last described it.
    pub fn peer(&self, id: &str) -> Option<PeerInfo> {
        self.nodes
            .values()
            .find_map(|node| node.peers.get(id).cloned())
    }

    fn peer_count(&self) -> usize {
        self.nodes.values().map(|n| n.peers.len()).sum()
    }

    fn room_count(&self) -> usize {
        self.nodes.values().map(|n| n.rooms.len()).sum()
    }

    /// Keep what a delta from `node` says about its peers and rooms. Entries past the bounds
    /// of [`super::limits`] are not kept: the bus is input like any other.
    pub fn apply(&mut self, node: &str, event: &Event) {
        if !self.nodes.contains_key(node) && self.nodes.len() >= super::limits::REMOTE_NODES {
            return;
        }
        let peers = self.peer_count();
        let rooms = self.room_count();
        let mirror = self.nodes.entry(node.to_owned()).or_default();
        match event {
            Event::PeerConnected { peer } | Event::PeerUpdated { peer }
                if mirror.peers.contains_key(&peer.id) || peers < super::limits::REMOTE_PEERS =>
            {
                mirror.peers.insert(peer.id.clone(), peer.clone());
            }
            Event::PeerClosed { peer, .. } => {
                mirror.peers.remove(peer);
            }
            Event::RoomUpdated { room }
                if mirror.rooms.contains_key(&room.code) || rooms < super::limits::REMOTE_ROOMS =>
            {
                mirror.rooms.insert(room.code.clone(), room.clone());
            }
            Event::RoomClosed { code } => {
                mirror.rooms.remove(code);
            }
            _ => {}
        }
    }

    /// Everything `node` has now (when it joins, or after Redis came back); returns the
    /// difference as deltas for this node's consoles.
    pub fn replace(
        &mut self,
        node: &str,
        peers: Vec<PeerInfo>,
        rooms: Vec<RoomInfo>,
    ) -> Vec<Event> {
        let before = self.nodes.remove(node).unwrap_or_default();
        let mut after = RemoteNode::default();
        if self.nodes.len() < super::limits::REMOTE_NODES {
            let peer_room = super::limits::REMOTE_PEERS.saturating_sub(self.peer_count());
            let room_room = super::limits::REMOTE_ROOMS.saturating_sub(self.room_count());
            for peer in peers.into_iter().take(peer_room) {
                after.peers.insert(peer.id.clone(), peer);
            }
            for room in rooms.into_iter().take(room_room) {
                after.rooms.insert(room.code.clone(), room);
            }
        }
        let mut events = Vec::new();
        for id in before
            .peers
            .keys()
            .filter(|id| !after.peers.contains_key(*id))
        {
            events.push(Event::PeerClosed {
                peer: id.clone(),
                code: None,
                reason: String::new(),
            });
        }
        for code in before
            .rooms
            .keys()
            .filter(|c| !after.rooms.contains_key(*c))
        {
            events.push(Event::RoomClosed { code: code.clone() });
        }
        for (id, peer) in &after.peers {
            match before.peers.get(id) {
                Some(known) if known == peer => {}
                Some(_) => events.push(Event::PeerUpdated { peer: peer.clone() }),
                None => events.push(Event::PeerConnected { peer: peer.clone() }),
            }
        }
        for (code, room) in &after.rooms {
            if before.rooms.get(code) != Some(room) {
                events.push(Event::RoomUpdated { room: room.clone() });
            }
        }
        self.nodes.insert(node.to_owned(), after);
        events
    }

    /// A node went away: its peers and rooms close, as deltas for this node's consoles.
    pub fn forget(&mut self, node: &str) -> Vec<Event> {
        let Some(gone) = self.nodes.remove(node) else {
            return Vec::new();
        };
        let peers = gone.peers.into_keys().map(|id| Event::PeerClosed {
            peer: id,
            code: None,
            reason: format!("node {node} gone"),
        });
        let rooms = gone
            .rooms
            .into_keys()
            .map(|code| Event::RoomClosed { code });
        peers.chain(rooms).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str) -> PeerInfo {
        PeerInfo {
            id: id.to_owned(),
            dialect: crate::catalog::Dialect::Pubsub,
            app: Some("demo".to_owned()),
            identity: None,
            addr: "10.0.0.1:1".to_owned(),
            connected_at_ms: 0,
            room: None,
            probe: false,
            frames_in: 0,
            frames_out: 0,
            errors: 0,
            frames_dropped: 0,
            round_trip_us: None,
            node: None,
        }
    }

    #[test]
    fn a_mirror_keeps_at_most_its_bound_of_nodes() {
        let mut mirror = Mirror::default();
        for n in 0..super::super::limits::REMOTE_NODES {
            mirror.apply(
                &format!("node-{n}"),
                &Event::PeerConnected {
                    peer: peer(&format!("p{n}")),
                },
            );
        }
        mirror.apply("one-too-many", &Event::PeerConnected { peer: peer("x") });
        assert!(mirror
            .replace("another", vec![peer("y")], Vec::new())
            .is_empty());
        assert_eq!(mirror.peers().count(), super::super::limits::REMOTE_NODES);
        assert_eq!(mirror.peer("x"), None);
        // A known node still changes.
        mirror.apply("node-0", &Event::PeerConnected { peer: peer("z") });
        assert!(mirror.peer("z").is_some());
    }
}
