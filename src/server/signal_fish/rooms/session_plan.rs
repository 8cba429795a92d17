//! Session planning, as signal-fish-server 0.12 decides it: what each connection negotiated,
//! the one topology and transport a room runs once its game starts, and each member's own view
//! of that decision (its peers, and which of them it offers to).
//!
//! The ladder, richest first: mesh over WebRTC, host over WebRTC, then the relay floor. A rung
//! is taken only when every player negotiated protocol v3 and both its topology and its
//! transport. (0.12's host-over-direct rung needs a host's self-declared endpoint; relaydeck
//! keeps none, so that rung is never executable here.) A non-relay decision is sticky for the
//! game: later joins and departures keep its topology and transport and only re-elect a host.

use crate::protocol::signal_fish::{IceServer, SessionPeer, SessionPlan, Topology, Transport};

/// What a connection's Authenticate negotiated for the data path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub version: u16,
    pub transports: Vec<Transport>,
    pub topologies: Vec<Topology>,
}

impl Capabilities {
    /// Relay is the floor of both lists; below v3 it is all there is, whatever the client
    /// advertised; repeats are dropped, the client's order kept.
    pub fn negotiate(
        version: u16,
        transports: Option<Vec<Transport>>,
        topologies: Option<Vec<Topology>>,
    ) -> Capabilities {
        if version < 3 {
            return Capabilities::relay_only(version);
        }
        Capabilities {
            version,
            transports: with_floor(transports.unwrap_or_default(), Transport::Relay),
            topologies: with_floor(topologies.unwrap_or_default(), Topology::Relay),
        }
    }

    /// A connection whose capabilities were never reported (a player hosted for another
    /// cluster node): the relay floor, the safe side.
    pub fn relay_only(version: u16) -> Capabilities {
        Capabilities {
            version,
            transports: vec![Transport::Relay],
            topologies: vec![Topology::Relay],
        }
    }

    pub fn supports(&self, topology: Topology, transport: Transport) -> bool {
        self.version >= 3
            && self.topologies.contains(&topology)
            && self.transports.contains(&transport)
    }

    /// Whether this connection may send and receive WebRTC signals.
    pub fn signals(&self) -> bool {
        self.version >= 3 && self.transports.contains(&Transport::WebRtc)
    }
}

fn with_floor<T: PartialEq>(items: Vec<T>, floor: T) -> Vec<T> {
    let mut unique = Vec::with_capacity(items.len() + 1);
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    if !unique.contains(&floor) {
        unique.push(floor);
    }
    unique
}

/// The WebRTC rungs of 0.12's ladder, richest first.
const LADDER: [(Topology, Transport); 2] = [
    (Topology::Mesh, Transport::WebRtc),
    (Topology::Host, Transport::WebRtc),
];

/// A room's running non-relay session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticky {
    pub topology: Topology,
    pub transport: Transport,
    pub host: Option<String>,
}

/// One player, as planning sees it. Members are listed earliest joiner first.
#[derive(Debug, Clone)]
pub struct Member {
    pub player_id: String,
    pub name: String,
    pub is_authority: bool,
    pub capabilities: Capabilities,
}

/// The room-wide decision at the start of a game; `None` is the relay floor.
pub fn choose(members: &[Member], authority: Option<&str>) -> Option<Sticky> {
    let (topology, transport) = LADDER.into_iter().find(|&(topology, transport)| {
        !members.is_empty()
            && members
                .iter()
                .all(|m| m.capabilities.supports(topology, transport))
    })?;
    let host = (topology == Topology::Host)
        .then(|| elect_host(authority, members, topology, transport))
        .flatten();
    Some(Sticky {
        topology,
        transport,
        host,
    })
}

/// The authority when it can run the session, else the earliest capable joiner.
pub fn elect_host(
    authority: Option<&str>,
    members: &[Member],
    topology: Topology,
    transport: Transport,
) -> Option<String> {
    let capable = || {
        members
            .iter()
            .filter(move |m| m.capabilities.supports(topology, transport))
    };
    capable()
        .find(|m| Some(m.player_id.as_str()) == authority)
        .or_else(|| capable().next())
        .map(|m| m.player_id.clone())
}

/// Whether a joiner can take part in a running session (ROOM_SESSION_INCOMPATIBLE if not).
pub fn admits(sticky: &Sticky, joiner: &Capabilities) -> bool {
    joiner.supports(sticky.topology, sticky.transport)
}

/// The mesh offerer rule: of two peers exactly one offers, the one whose id sorts first
/// (ids are lowercase UUIDs, whose text order is their byte order).
pub fn local_initiates(local: &str, remote: &str) -> bool {
    local < remote
}

/// `recipient`'s view of the room's session under `generation`.
pub fn plan_for(
    sticky: Option<&Sticky>,
    generation: &str,
    members: &[Member],
    recipient: &str,
    ice_servers: &[IceServer],
) -> SessionPlan {
    let Some(sticky) = sticky else {
        return SessionPlan::relay(generation.to_owned());
    };
    let pairable = |m: &Member| m.capabilities.supports(sticky.topology, sticky.transport);
    let recipient_pairable = members
        .iter()
        .any(|m| m.player_id == recipient && pairable(m));
    let peers = if !recipient_pairable {
        Vec::new()
    } else {
        match (sticky.topology, sticky.host.as_deref()) {
            (Topology::Mesh, _) => members
                .iter()
                .filter(|m| m.player_id != recipient && pairable(m))
                .map(|m| SessionPeer {
                    player_id: m.player_id.clone(),
                    player_name: m.name.clone(),
                    is_authority: m.is_authority,
                    initiate: local_initiates(recipient, &m.player_id),
                })
                .collect(),
            // The host answers every client; each client offers to the host alone.
            (Topology::Host, Some(host)) if host == recipient => members
                .iter()
                .filter(|m| m.player_id != host && pairable(m))
                .map(|m| SessionPeer {
                    player_id: m.player_id.clone(),
                    player_name: m.name.clone(),
                    is_authority: false,
                    initiate: false,
                })
                .collect(),
            (Topology::Host, Some(host)) => members
                .iter()
                .filter(|m| m.player_id == host && pairable(m))
                .map(|m| SessionPeer {
                    player_id: m.player_id.clone(),
                    player_name: m.name.clone(),
                    is_authority: true,
                    initiate: true,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let ice_servers = if recipient_pairable && sticky.transport == Transport::WebRtc {
        ice_servers.to_vec()
    } else {
        Vec::new()
    };
    SessionPlan {
        generation: generation.to_owned(),
        topology: sticky.topology,
        transport: sticky.transport,
        host: sticky.host.clone(),
        peers,
        ice_servers,
        fallback: Transport::Relay,
    }
}

/// Whether `a` and `b` are connected by the session: both in it, and (in a star) one of them
/// the host.
pub fn paired(sticky: &Sticky, members: &[Member], a: &str, b: &str) -> bool {
    let in_session = |id: &str| {
        members.iter().any(|m| {
            m.player_id == id && m.capabilities.supports(sticky.topology, sticky.transport)
        })
    };
    if a == b || !in_session(a) || !in_session(b) {
        return false;
    }
    match sticky.topology {
        Topology::Mesh => true,
        Topology::Host => sticky
            .host
            .as_deref()
            .is_some_and(|host| host == a || host == b),
        Topology::Relay => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, caps: Capabilities) -> Member {
        Member {
            player_id: id.into(),
            name: id.to_uppercase(),
            is_authority: false,
            capabilities: caps,
        }
    }

    fn mesh() -> Capabilities {
        Capabilities::negotiate(
            3,
            Some(vec![Transport::WebRtc, Transport::Relay]),
            Some(vec![Topology::Mesh, Topology::Host, Topology::Relay]),
        )
    }

    fn host_only() -> Capabilities {
        Capabilities::negotiate(3, Some(vec![Transport::WebRtc]), Some(vec![Topology::Host]))
    }

    #[test]
    fn negotiation_forces_the_relay_floor_and_keeps_v2_on_it() {
        let caps =
            Capabilities::negotiate(3, Some(vec![Transport::WebRtc, Transport::WebRtc]), None);
        assert_eq!(caps.transports, vec![Transport::WebRtc, Transport::Relay]);
        assert_eq!(caps.topologies, vec![Topology::Relay]);
        let v2 =
            Capabilities::negotiate(2, Some(vec![Transport::WebRtc]), Some(vec![Topology::Mesh]));
        assert_eq!(v2, Capabilities::relay_only(2));
        assert!(!v2.signals());
    }

    #[test]
    fn the_ladder_takes_the_richest_rung_every_member_supports() {
        let both = [member("a", mesh()), member("b", mesh())];
        let sticky = choose(&both, None).unwrap();
        assert_eq!((sticky.topology, sticky.host), (Topology::Mesh, None));

        let star = [member("a", mesh()), member("b", host_only())];
        let sticky = choose(&star, Some("b")).unwrap();
        assert_eq!(
            (sticky.topology, sticky.host.as_deref()),
            (Topology::Host, Some("b")),
            "the authority hosts"
        );
        let sticky = choose(&star, None).unwrap();
        assert_eq!(
            sticky.host.as_deref(),
            Some("a"),
            "else the earliest joiner"
        );

        let mixed = [
            member("a", mesh()),
            member("b", Capabilities::relay_only(3)),
        ];
        assert_eq!(
            choose(&mixed, None),
            None,
            "one relay-only member floors the room"
        );
        assert_eq!(choose(&[], None), None);
    }

    #[test]
    fn each_member_sees_its_own_peers_and_exactly_one_side_offers() {
        let members = [
            member("a", mesh()),
            member("b", mesh()),
            member("c", mesh()),
        ];
        let sticky = choose(&members, None).unwrap();
        let plan_a = plan_for(Some(&sticky), "g", &members, "a", &[]);
        let plan_b = plan_for(Some(&sticky), "g", &members, "b", &[]);
        let ids: Vec<&str> = plan_a.peers.iter().map(|p| p.player_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        let a_offers_b = plan_a.peers[0].initiate;
        let b_offers_a = plan_b
            .peers
            .iter()
            .find(|p| p.player_id == "a")
            .unwrap()
            .initiate;
        assert!(a_offers_b != b_offers_a);
        assert!(paired(&sticky, &members, "a", "c"));
        assert!(!paired(&sticky, &members, "a", "a"));
        assert!(!paired(&sticky, &members, "a", "z"));
    }

    #[test]
    fn a_star_pairs_clients_with_the_host_only() {
        let members = [
            member("h", host_only()),
            member("b", mesh()),
            member("c", mesh()),
        ];
        let sticky = choose(&members, None).unwrap();
        assert_eq!(sticky.host.as_deref(), Some("h"));
        let host_plan = plan_for(Some(&sticky), "g", &members, "h", &[]);
        assert_eq!(host_plan.peers.len(), 2);
        assert!(host_plan.peers.iter().all(|p| !p.initiate));
        let client_plan = plan_for(Some(&sticky), "g", &members, "b", &[]);
        assert_eq!(client_plan.peers.len(), 1);
        assert!(client_plan.peers[0].initiate && client_plan.peers[0].is_authority);
        assert!(!paired(&sticky, &members, "b", "c"));
        assert!(paired(&sticky, &members, "c", "h"));
    }

    #[test]
    fn the_relay_floor_is_an_explicit_plan_without_peers_or_ice() {
        let ice = [IceServer {
            urls: vec!["stun:stun.example.com:3478".into()],
            username: None,
            credential: None,
        }];
        let members = [member("a", mesh())];
        let plan = plan_for(None, "g", &members, "a", &ice);
        assert_eq!(plan, SessionPlan::relay("g".into()));
        let sticky = choose(&members, None).unwrap();
        assert_eq!(
            plan_for(Some(&sticky), "g", &members, "a", &ice).ice_servers,
            ice
        );
    }
}
