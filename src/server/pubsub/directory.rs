//! This node's mirror of the other nodes' pub/sub peers and channel memberships, kept from
//! what they announce through the broker ([`super::remote`]), so that `send`, `presence` and
//! presence notices are answered from memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use super::remote::{Membership, RemotePeer};
use crate::server::cluster::limits;

#[derive(Default)]
pub struct Directory {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Who holds each remote peer.
    peers: HashMap<RemotePeer, String>,
    /// Remote members of each (app, channel): identity → node.
    members: HashMap<(String, String), BTreeMap<String, String>>,
    /// What each node announced, to forget it in one go.
    by_node: HashMap<String, NodeEntries>,
}

#[derive(Default)]
struct NodeEntries {
    peers: BTreeSet<RemotePeer>,
    memberships: BTreeSet<Membership>,
}

impl Inner {
    /// Whether one more entry from `node` fits: Redis is trusted, but what arrives on the bus
    /// is bounded like any other input (see [`limits`]).
    fn admits_node(&self, node: &str) -> bool {
        self.by_node.contains_key(node) || self.by_node.len() < limits::REMOTE_NODES
    }

    fn memberships(&self) -> usize {
        self.by_node.values().map(|e| e.memberships.len()).sum()
    }

    fn add_peer(&mut self, node: &str, peer: RemotePeer) {
        if !self.admits_node(node)
            || (!self.peers.contains_key(&peer) && self.peers.len() >= limits::REMOTE_PEERS)
        {
            tracing::debug!(
                node,
                "cluster: a remote peer over the mirror's bound is ignored"
            );
            return;
        }
        self.peers.insert(peer.clone(), node.to_owned());
        self.by_node
            .entry(node.to_owned())
            .or_default()
            .peers
            .insert(peer);
    }

    fn add_membership(&mut self, node: &str, m: Membership) -> bool {
        if !self.admits_node(node) || self.memberships() >= limits::REMOTE_MEMBERSHIPS {
            tracing::debug!(
                node,
                "cluster: a remote membership over the mirror's bound is ignored"
            );
            return false;
        }
        let fresh = self
            .members
            .entry((m.app.clone(), m.channel.clone()))
            .or_default()
            .insert(m.identity.clone(), node.to_owned())
            .is_none();
        self.by_node
            .entry(node.to_owned())
            .or_default()
            .memberships
            .insert(m);
        fresh
    }

    fn remove_membership(&mut self, node: &str, m: &Membership) -> bool {
        let key = (m.app.clone(), m.channel.clone());
        let mut removed = false;
        if let Some(members) = self.members.get_mut(&key) {
            if members
                .get(&m.identity)
                .is_some_and(|holder| holder == node)
            {
                members.remove(&m.identity);
                removed = true;
            }
            if members.is_empty() {
                self.members.remove(&key);
            }
        }
        if let Some(entries) = self.by_node.get_mut(node) {
            entries.memberships.remove(m);
        }
        removed
    }

    fn remove_peer(&mut self, node: &str, peer: &RemotePeer) {
        if self.peers.get(peer).is_some_and(|holder| holder == node) {
            self.peers.remove(peer);
        }
        if let Some(entries) = self.by_node.get_mut(node) {
            entries.peers.remove(peer);
        }
    }

    /// Everything `node` announced, removed; returns its memberships.
    fn take_node(&mut self, node: &str) -> Vec<Membership> {
        let Some(entries) = self.by_node.remove(node) else {
            return Vec::new();
        };
        for peer in &entries.peers {
            if self.peers.get(peer).is_some_and(|holder| holder == node) {
                self.peers.remove(peer);
            }
        }
        let mut left = Vec::new();
        for m in entries.memberships {
            let key = (m.app.clone(), m.channel.clone());
            if let Some(members) = self.members.get_mut(&key) {
                if members
                    .get(&m.identity)
                    .is_some_and(|holder| holder == node)
                {
                    members.remove(&m.identity);
                    left.push(m);
                }
                if members.is_empty() {
                    self.members.remove(&key);
                }
            }
        }
        left
    }
}

impl Directory {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Every node that announced something.
    pub fn nodes(&self) -> Vec<String> {
        self.read().by_node.keys().cloned().collect()
    }

    /// The node holding a pub/sub peer, if another node announced it.
    pub fn node_of(&self, app: &str, identity: &str) -> Option<String> {
        self.read()
            .peers
            .get(&RemotePeer {
                app: app.to_owned(),
                identity: identity.to_owned(),
            })
            .cloned()
    }

    /// The identities of a channel's members on other nodes.
    pub fn channel_members(&self, app: &str, channel: &str) -> Vec<String> {
        self.read()
            .members
            .get(&(app.to_owned(), channel.to_owned()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn peer_up(&self, node: &str, peer: RemotePeer) {
        self.write().add_peer(node, peer);
    }

    /// A remote peer left; returns the memberships it had, which leave with it.
    pub fn peer_down(&self, node: &str, peer: &RemotePeer) -> Vec<Membership> {
        let mut inner = self.write();
        inner.remove_peer(node, peer);
        let held: Vec<Membership> = inner
            .by_node
            .get(node)
            .map(|e| {
                e.memberships
                    .iter()
                    .filter(|m| m.app == peer.app && m.identity == peer.identity)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        held.into_iter()
            .filter(|m| inner.remove_membership(node, m))
            .collect()
    }

    /// True when the membership is new to this node.
    pub fn joined(&self, node: &str, m: Membership) -> bool {
        self.write().add_membership(node, m)
    }

    /// True when the membership was known.
    pub fn left(&self, node: &str, m: &Membership) -> bool {
        self.write().remove_membership(node, m)
    }

    /// Replace what `node` announced; returns the memberships that appeared and those that
    /// went, so presence listeners hear only the difference.
    pub fn replace_node(
        &self,
        node: &str,
        peers: Vec<RemotePeer>,
        memberships: Vec<Membership>,
    ) -> (Vec<Membership>, Vec<Membership>) {
        let mut inner = self.write();
        let before: BTreeSet<Membership> = inner.take_node(node).into_iter().collect();
        for peer in peers {
            inner.add_peer(node, peer);
        }
        for m in memberships {
            inner.add_membership(node, m);
        }
        // What was kept, not what was sent: entries over the bound were not.
        let after: BTreeSet<Membership> = inner
            .by_node
            .get(node)
            .map(|e| e.memberships.clone())
            .unwrap_or_default();
        let joined = after.difference(&before).cloned().collect();
        let left = before.difference(&after).cloned().collect();
        (joined, left)
    }

    /// Forget a node that went away; returns its memberships grouped by channel.
    pub fn forget_node(&self, node: &str) -> Vec<(String, String, Vec<String>)> {
        let left = self.write().take_node(node);
        let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for m in left {
            grouped
                .entry((m.app, m.channel))
                .or_default()
                .push(m.identity);
        }
        grouped
            .into_iter()
            .map(|((app, channel), identities)| (app, channel, identities))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(channel: &str, identity: &str) -> Membership {
        Membership {
            app: "demo".into(),
            channel: channel.into(),
            identity: identity.into(),
        }
    }

    fn p(identity: &str) -> RemotePeer {
        RemotePeer {
            app: "demo".into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn a_node_is_forgotten_with_everything_it_announced() {
        let directory = Directory::default();
        directory.peer_up("b", p("x"));
        assert!(directory.joined("b", m("demo/a", "x")));
        assert!(!directory.joined("b", m("demo/a", "x")), "announced twice");
        directory.peer_up("c", p("y"));
        directory.joined("c", m("demo/a", "y"));
        assert_eq!(directory.channel_members("demo", "demo/a"), ["x", "y"]);
        assert_eq!(directory.node_of("demo", "x").as_deref(), Some("b"));

        let gone = directory.forget_node("b");
        assert_eq!(
            gone,
            [("demo".into(), "demo/a".into(), vec!["x".to_owned()])]
        );
        assert_eq!(directory.channel_members("demo", "demo/a"), ["y"]);
        assert_eq!(directory.node_of("demo", "x"), None);
    }

    #[test]
    fn a_state_replaces_and_reports_only_the_difference() {
        let directory = Directory::default();
        directory.peer_up("b", p("x"));
        directory.joined("b", m("demo/a", "x"));
        directory.joined("b", m("demo/b", "x"));
        let (joined, left) =
            directory.replace_node("b", vec![p("x")], vec![m("demo/b", "x"), m("demo/c", "x")]);
        assert_eq!(joined, [m("demo/c", "x")]);
        assert_eq!(left, [m("demo/a", "x")]);
        assert!(directory.channel_members("demo", "demo/a").is_empty());
    }

    #[test]
    fn a_peer_going_down_leaves_its_channels() {
        let directory = Directory::default();
        directory.peer_up("b", p("x"));
        directory.joined("b", m("demo/a", "x"));
        directory.joined("b", m("demo/a", "z"));
        assert_eq!(directory.peer_down("b", &p("x")), [m("demo/a", "x")]);
        assert_eq!(directory.channel_members("demo", "demo/a"), ["z"]);
    }

    #[test]
    fn nodes_past_the_bound_are_not_mirrored() {
        let directory = Directory::default();
        for n in 0..limits::REMOTE_NODES {
            directory.peer_up(&format!("node-{n}"), p("a"));
        }
        directory.peer_up("one-too-many", p("b"));
        assert!(directory.joined("node-0", m("demo/lobby", "a")));
        assert!(!directory.joined("one-too-many", m("demo/lobby", "b")));
        assert_eq!(directory.node_of("demo", "b"), None);
        assert_eq!(directory.nodes().len(), limits::REMOTE_NODES);
    }
}
