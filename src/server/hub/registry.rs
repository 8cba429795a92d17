//! The hub's methods for peers: register, update, look up, remove, kick and tap (the peers,
//! their identities and per-app counts are in `parts/registry.rs`).

use std::sync::Arc;

use super::parts::registry::{NewPeer, PeerEntry, PeerLink, RegisterError};
use super::{ChannelKey, Hub, State};
use crate::catalog::Dialect;
use crate::clock::now_ms;
use crate::protocol::admin::{Closed, Event, HistoryEntry, PeerId, PeerInfo};
use crate::server::config::Limits;
use crate::server::peer::{Control, PeerHandle};

impl Hub {
    pub fn register_peer(
        &self,
        new: NewPeer,
        app_limits: Option<&Limits>,
    ) -> Result<PeerLink, RegisterError> {
        let mut state = self.lock();
        if state.shutting_down {
            return Err(RegisterError::ShuttingDown);
        }
        if let (Some(app), Some(limits)) = (&new.app, app_limits) {
            let here = state.registry.app_count(app);
            if here.saturating_add(state.apps.remote_peers(app)) >= limits.max_connections {
                return Err(RegisterError::OverConcurrentLimit {
                    app: app.clone(),
                    limit: limits.max_connections,
                });
            }
            let share = limits.connections_per_address();
            if state.registry.app_address_count(app, &new.addr) >= share {
                return Err(RegisterError::OverAddressShare {
                    app: app.clone(),
                    limit: share,
                });
            }
        }
        let id = state.registry.next_id(self.node());
        let probe = new
            .probe_nonce
            .as_ref()
            .is_some_and(|nonce| state.probes.arrived(nonce, &id));
        let (handle, queues) = PeerHandle::new(
            id.clone(),
            new.dialect,
            self.config.outbox,
            probe,
            Some(&self.recorder),
        );
        let info = PeerInfo {
            id,
            dialect: new.dialect,
            app: new.app,
            identity: new.identity,
            addr: new.addr,
            connected_at_ms: now_ms(),
            room: None,
            probe,
            frames_in: 0,
            frames_out: 0,
            errors: 0,
            frames_dropped: 0,
            round_trip_us: None,
            node: self.node().map(str::to_owned),
        };
        let State {
            journal, registry, ..
        } = &mut *state;
        registry.insert(journal, handle.clone(), info);
        Ok(PeerLink { handle, queues })
    }

    pub fn update_peer(&self, id: &str, change: impl FnOnce(&mut PeerInfo)) {
        let mut state = self.lock();
        let State {
            journal, registry, ..
        } = &mut *state;
        registry.update(journal, id, change);
    }

    pub fn peer(&self, id: &str) -> Option<PeerInfo> {
        self.lock().registry.get(id).map(PeerEntry::info)
    }

    /// The handle of a live peer, for callers that deliver to it repeatedly.
    pub fn handle(&self, id: &str) -> Option<Arc<PeerHandle>> {
        self.lock().registry.get(id).map(|p| p.handle.clone())
    }

    /// The peers of a dialect and app whose identity is `identity` (pub/sub `send` targets).
    pub fn find_peer_by_identity(
        &self,
        dialect: Dialect,
        app: &str,
        identity: &str,
    ) -> Option<Arc<PeerHandle>> {
        let state = self.lock();
        let registry = &state.registry;
        registry
            .identities
            .get(&(dialect, identity.to_owned()))?
            .iter()
            .filter_map(|id| registry.peers.get(id))
            .find(|p| p.info.app.as_deref() == Some(app))
            .map(|p| p.handle.clone())
    }

    /// A peer named by its hub id or, failing that, by its identity in `dialect` (the
    /// pub/sub `peerId` a backend knows). An identity live in several apps is ambiguous.
    pub fn resolve_peer(&self, name: &str, dialect: Dialect) -> Result<PeerId, String> {
        let state = self.lock();
        if state.registry.peers.contains_key(name) {
            return Ok(name.to_owned());
        }
        let matching = state.registry.identities.get(&(dialect, name.to_owned()));
        let mut matching = matching.into_iter().flatten();
        match (matching.next(), matching.next()) {
            (Some(peer), None) => Ok(peer.clone()),
            (Some(_), Some(_)) => Err(format!(
                "{name} is live in several apps; name the peer by its hub id"
            )),
            (None, _) => Err(format!("no peer {name}")),
        }
    }

    /// Forget a peer whose connection ended; `client_close` is the close the client sent, if
    /// any. Channel memberships and subscriptions go with it; the channels it left are
    /// returned (for presence notices).
    pub fn remove_peer(&self, id: &str, client_close: Option<(u16, String)>) -> Vec<ChannelKey> {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            subscriptions,
            probes,
            history,
            ..
        } = &mut *state;
        let Some(peer) = registry.remove(id) else {
            return Vec::new();
        };
        probes.forget_peer(id);
        let (code, reason) = match (peer.handle.closing().cloned(), client_close) {
            // An operator's reason goes with the kick into the history and the log, where the
            // person triaging the player looks; the close frame keeps only the wire reason.
            (Some((code, reason)), _) => match peer.handle.kick_reason() {
                Some(why) => (Some(code), format!("{reason} — operator's reason: {why}")),
                None => (Some(code), reason),
            },
            // A client that closes without a code (1005) closed normally as far as it is
            // concerned; reporting 1005 would dress a clean goodbye up as an error.
            (None, Some((1005, _))) => (None, "closed by the client".to_owned()),
            (None, Some((code, reason))) if reason.is_empty() => {
                (Some(code), "closed by the client".to_owned())
            }
            (None, Some((code, reason))) => (Some(code), format!("closed by the client: {reason}")),
            (None, None) => (None, "connection dropped".to_owned()),
        };
        for key in &peer.channels {
            self.channels.leave(journal, key, id);
        }
        for subscription in &peer.subscriptions {
            subscriptions.forget(journal, id, subscription);
        }
        let ring = peer.handle.recording().map(|r| r.take());
        let path = peer
            .handle
            .recording()
            .and_then(|r| r.path().map(str::to_owned));
        let recorded = ring.as_ref().map_or(0, |r| r.len() as u32);
        let entry = HistoryEntry {
            closed_at_ms: now_ms(),
            closed: Closed::Peer(Box::new(peer.closed(code, reason.clone(), recorded))),
        };
        journal.record(Event::PeerClosed {
            peer: id.to_owned(),
            code,
            reason,
        });
        history.add(journal, self.config.history, entry, path, ring);
        if registry.len() == 0 {
            self.peers_gone.notify_waiters();
        }
        peer.channels.into_iter().collect()
    }

    /// Peers of a dialect and app that have said who they are.
    pub fn identified_peers(&self, dialect: Dialect, app: &str) -> Vec<Arc<PeerHandle>> {
        self.lock()
            .registry
            .peers
            .values()
            .filter(|p| {
                p.info.dialect == dialect
                    && p.info.app.as_deref() == Some(app)
                    && p.info.identity.is_some()
            })
            .map(|p| p.handle.clone())
            .collect()
    }

    /// Live peers of an app in one dialect, on every node of a cluster (as their last
    /// heartbeats reported the others).
    pub fn app_peer_count(&self, dialect: Dialect, app: &str) -> usize {
        let state = self.lock();
        let here = state.registry.dialect_app_count(dialect, app);
        here.saturating_add(state.apps.remote_dialect_peers(dialect, app))
    }

    /// Live peers of an app here from the address `peer` connected from (its share of the
    /// app: `limits.max_connections_per_ip`).
    pub fn app_peers_from_address_of(&self, app: &str, peer: &str) -> usize {
        let state = self.lock();
        state.registry.get(peer).map_or(0, |entry| {
            state.registry.app_address_count(app, &entry.info.addr)
        })
    }

    /// A Signal Fish join refused to a peer: its history entry keeps what it asked for.
    pub fn note_refused_join(&self, peer: &str, refused: crate::protocol::admin::RefusedJoin) {
        self.lock().registry.note_refused_join(peer, refused);
    }

    pub fn peer_count(&self) -> usize {
        self.lock().registry.len()
    }

    /// Tell a peer's connection task something.
    pub fn control(&self, id: &str, control: Control) -> bool {
        self.handle(id).is_some_and(|p| p.control(control))
    }

    pub fn kick(&self, id: &str, reason: Option<String>) -> Result<PeerInfo, String> {
        let state = self.lock();
        let peer = state
            .registry
            .get(id)
            .ok_or_else(|| format!("no peer {id}"))?;
        if peer.handle.closing().is_some() || !peer.handle.control(Control::Kick { reason }) {
            return Err(format!("peer {id} is already closing"));
        }
        Ok(peer.info())
    }

    pub fn set_tap(&self, id: &str, on: bool) -> Result<(), String> {
        let state = self.lock();
        let peer = state
            .registry
            .get(id)
            .ok_or_else(|| format!("no peer {id}"))?;
        peer.handle.set_tapped(on);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::server::config::Config;
    use crate::server::peer::Priority;

    #[test]
    fn removing_a_peer_undoes_its_channels_subscriptions_and_counts() {
        let hub = Hub::new(Config::demo(), "test".into(), &BTreeMap::new(), 64);
        let new = |identity: &str| NewPeer {
            dialect: Dialect::Pubsub,
            app: Some("demo".into()),
            identity: Some(identity.into()),
            addr: "127.0.0.1:1".into(),
            probe_nonce: None,
        };
        let limits = Limits {
            max_connections: 2,
            max_connections_per_ip: Some(2),
            message_quota: None,
        };
        let alice = hub.register_peer(new("alice"), None).unwrap();
        let bob = hub.register_peer(new("bob"), Some(&limits)).unwrap();
        assert_eq!(
            hub.register_peer(new("carol"), Some(&limits)).err(),
            Some(RegisterError::OverConcurrentLimit {
                app: "demo".into(),
                limit: 2
            })
        );
        assert!(hub.channel_join(&alice.handle, "demo", "lobby"));
        assert!(hub.channel_join(&bob.handle, "demo", "lobby"));
        assert!(!hub.channel_join(&bob.handle, "demo", "lobby"));
        let text: Utf8Bytes = "hi".into();
        assert_eq!(
            hub.deliver_to_channel(
                Dialect::Pubsub,
                "demo",
                "lobby",
                alice.id(),
                &text,
                Priority::Relay
            ),
            1
        );
        assert_eq!(
            hub.find_peer_by_identity(Dialect::Pubsub, "demo", "bob")
                .map(|p| p.id.clone()),
            Some(bob.id().to_owned())
        );
        let left = hub.remove_peer(bob.id(), None);
        assert_eq!(left, vec![(Dialect::Pubsub, "demo".into(), "lobby".into())]);
        assert!(hub
            .find_peer_by_identity(Dialect::Pubsub, "demo", "bob")
            .is_none());
        assert_eq!(hub.app_peer_count(Dialect::Pubsub, "demo"), 1);
        hub.remove_peer(alice.id(), None);
        assert!(hub
            .channel_members(Dialect::Pubsub, "demo", "lobby")
            .is_empty());
        let (_, snapshot, _) = hub.subscribe();
        assert!(snapshot.channels.is_empty() && snapshot.peers.is_empty());
    }
}
