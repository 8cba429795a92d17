//! WebRTC signaling: the SessionPlans a game's members get
//! (at the start, on a late join, when a host leaves), `Signal` relayed between the members of
//! one room and one session, and `ProvideConnectionInfo`.
//!
//! The checks on a Signal and their order are 0.12's: payload size, sender in a room, not to
//! itself, target in a room, the same room, both ends negotiated v3 with the webrtc transport,
//! the signal budget. A refused signal spends the sender's detailed-refusal budget; once it is
//! spent, refusals say SIGNAL_RATE_LIMITED instead. relaydeck adds one rule once a game runs:
//! the two ends must be peers of the room's current plan (upstream relays any pair and leaves
//! the check to the clients, which treat a signal from outside their plan as a violation).
//!
//! 0.12 sends no `NewPeer` of its own; relaydeck sends one to each incumbent paired with a
//! player joining a running WebRTC session, after the fresh SessionPlan that lists the joiner
//! (clients that predate plans learn of the joiner from it; the SDK folds it in as a no-op).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::session_plan::{self, Capabilities, Member, Sticky};
use super::table::{new_id, Membership, Room, RoomPeer};
use super::{refusal, Rooms};
use crate::protocol::signal_fish::{ServerMessage, Topology};
use crate::server::hub::Hub;
use crate::server::rate_limit::FixedWindow;
use crate::server::signal_fish::refusal::{Carrier, Refusal};

/// 0.12's `security.max_signal_bytes`: a signal payload, as compact JSON.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;
/// 0.12's `security.max_connection_info_bytes`.
pub const MAX_CONNECTION_INFO_BYTES: usize = 8 * 1024;
/// 0.12's `rate_limit.max_signals` and `max_signal_errors` per `time_window` (60 s).
pub const SIGNALS_PER_WINDOW: u32 = 600;
pub const SIGNAL_REFUSALS_PER_WINDOW: u32 = 60;
const SIGNAL_WINDOW: Duration = Duration::from_secs(60);

/// The signaling state, locked after the rooms' state and never before it. What a member
/// negotiated is on its [`RoomPeer`], fixed at Authenticate; its signal budget is its
/// session's ([`SignalBudget`]).
#[derive(Default)]
pub(super) struct Signaling {
    /// By room id: the room's running non-relay session (none: the relay floor).
    plans: HashMap<String, Sticky>,
}

/// One connection's signals relayed and detailed refusals this window (0.12's `max_signals`
/// and `max_signal_errors`). Its session holds it: a refused Signal spends it whether or not
/// the sender is in a room, so it belongs to the connection, not to a member's record, and
/// only the connection's own frames, one at a time, spend it.
#[derive(Default)]
pub struct SignalBudget(Option<(FixedWindow, FixedWindow)>);

impl SignalBudget {
    /// Both windows open at the connection's first Signal, relayed or refused.
    fn windows(&mut self, now: Instant) -> &mut (FixedWindow, FixedWindow) {
        self.0.get_or_insert_with(|| {
            (
                FixedWindow::new(SIGNAL_WINDOW, now),
                FixedWindow::new(SIGNAL_WINDOW, now),
            )
        })
    }

    /// A detailed refusal while the budget lasts, SIGNAL_RATE_LIMITED after.
    fn refuse(&mut self, code: &'static str, text: String) -> Refusal {
        let now = Instant::now();
        let (_, refusals) = self.windows(now);
        if refusals.hit(now) <= SIGNAL_REFUSALS_PER_WINDOW {
            return refusal(Carrier::Error, code, Some(text));
        }
        let seconds = refusals.remaining(now).as_millis().div_ceil(1000).max(1);
        refusal(
            Carrier::Error,
            "SIGNAL_RATE_LIMITED",
            Some(format!(
                "Too many rejected signaling messages; further rejections are reported without detail until the window resets. Valid signals are still relayed. Try again in {seconds} seconds."
            )),
        )
    }
}

impl Rooms {
    /// The room is gone: so is its session.
    pub(super) fn forget_plan(&self, room_id: &str) {
        self.signaling().plans.remove(room_id);
    }

    fn signaling(&self) -> std::sync::MutexGuard<'_, Signaling> {
        self.signaling.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The room's players, earliest joiner first (the roster lists the newest first), with
    /// what each connected one negotiated; a disconnected seat counts as the relay floor.
    fn members(room: &Room) -> Vec<Member> {
        room.players
            .iter()
            .rev()
            .map(|p| Member {
                player_id: p.id.clone(),
                name: p.name.clone(),
                is_authority: room.authority.as_deref() == Some(p.id.as_str()),
                capabilities: p.peer.as_ref().map_or_else(
                    || Capabilities::relay_only(2),
                    |peer| Capabilities::clone(&peer.capabilities),
                ),
            })
            .collect()
    }

    /// StartGame: the ladder runs once, and every v3 player gets its view of the outcome.
    pub(super) fn plan_at_start(&self, hub: &Hub, room: &Room) {
        let members = Self::members(room);
        let sticky = session_plan::choose(&members, room.authority.as_deref());
        let mut signaling = self.signaling();
        match &sticky {
            Some(sticky) => signaling.plans.insert(room.id.clone(), sticky.clone()),
            None => signaling.plans.remove(&room.id),
        };
        drop(signaling);
        self.send_plans(hub, room, sticky.as_ref(), &members);
    }

    /// A join into a running game must be able to take part in its session.
    pub(super) fn admits_late_joiner(&self, room: &Room, joiner: &RoomPeer) -> Result<(), Refusal> {
        if !room.started {
            return Ok(());
        }
        let signaling = self.signaling();
        let Some(sticky) = signaling.plans.get(&room.id) else {
            return Ok(());
        };
        if session_plan::admits(sticky, &joiner.capabilities) {
            return Ok(());
        }
        Err(refusal(
            Carrier::RoomJoinFailed,
            "ROOM_SESSION_INCOMPATIBLE",
            Some("Room is running a session this connection's capabilities do not cover".into()),
        ))
    }

    /// A player joined (or reconnected to) a running game: every v3 member gets a fresh plan,
    /// and each incumbent paired with the joiner a NewPeer.
    pub(super) fn plan_after_join(&self, hub: &Hub, room: &Room, joiner: &str) {
        if !room.started {
            return;
        }
        let members = Self::members(room);
        let sticky = self.signaling().plans.get(&room.id).cloned();
        self.send_plans(hub, room, sticky.as_ref(), &members);
        let Some(sticky) =
            sticky.filter(|s| s.transport == crate::protocol::signal_fish::Transport::WebRtc)
        else {
            return;
        };
        for incumbent in room.players.iter().filter(|p| p.id != joiner) {
            let Some(peer) = &incumbent.peer else {
                continue;
            };
            if !session_plan::paired(&sticky, &members, &incumbent.id, joiner) {
                continue;
            }
            let you_initiate = match sticky.topology {
                Topology::Host => sticky.host.as_deref() != Some(incumbent.id.as_str()),
                _ => session_plan::local_initiates(&incumbent.id, joiner),
            };
            Self::send_to(
                hub,
                &peer.handle,
                &ServerMessage::NewPeer {
                    peer_id: joiner.to_owned(),
                    you_initiate,
                },
            );
        }
    }

    /// A player left a running game. Mesh sessions carry on (PlayerLeft says enough); a star
    /// whose host left elects another host, or falls to the relay floor when none can host.
    pub(super) fn plan_after_departure(&self, hub: &Hub, room: &Room) {
        if !room.started {
            return;
        }
        let mut signaling = self.signaling();
        if room.players.is_empty() {
            signaling.plans.remove(&room.id);
            return;
        }
        let members = Self::members(room);
        let Some(stored) = signaling.plans.get(&room.id).cloned() else {
            return;
        };
        let host_present = stored.host.as_deref().is_some_and(|host| {
            members.iter().any(|m| {
                m.player_id == host && m.capabilities.supports(stored.topology, stored.transport)
            })
        });
        if stored.topology != Topology::Host || host_present {
            return;
        }
        let host = session_plan::elect_host(
            room.authority.as_deref(),
            &members,
            stored.topology,
            stored.transport,
        );
        let sticky = host.map(|host| Sticky {
            host: Some(host),
            ..stored
        });
        match &sticky {
            Some(sticky) => signaling.plans.insert(room.id.clone(), sticky.clone()),
            None => signaling.plans.remove(&room.id),
        };
        drop(signaling);
        self.send_plans(hub, room, sticky.as_ref(), &members);
    }

    /// One publication: a fresh generation, each v3 player's own view of it.
    fn send_plans(&self, hub: &Hub, room: &Room, sticky: Option<&Sticky>, members: &[Member]) {
        let generation = new_id();
        for player in &room.players {
            let Some(peer) = player.peer.as_ref().filter(|p| p.wire.v3()) else {
                continue;
            };
            let plan = session_plan::plan_for(
                sticky,
                &generation,
                members,
                &player.id,
                &self.settings.ice_servers,
            );
            Self::send_to(
                hub,
                &peer.handle,
                &ServerMessage::SessionPlan(Box::new(plan)),
            );
        }
    }

    /// `Signal`: relayed to `to` untouched, or refused as 0.12 refuses it; either spends the
    /// sender's budget.
    pub fn signal(
        &self,
        hub: &Hub,
        peer: &str,
        budget: &mut SignalBudget,
        to: &str,
        generation: String,
        signal: Value,
    ) -> Result<(), Refusal> {
        let size = serde_json::to_vec(&signal).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_SIGNAL_BYTES {
            return Err(budget.refuse(
                "SIGNAL_TOO_LARGE",
                format!(
                    "Signal payload is {size} bytes; the maximum allowed is {MAX_SIGNAL_BYTES} bytes"
                ),
            ));
        }
        let state = self.lock();
        let Some(Membership::Player { room, player_id }) = state.membership.get(peer) else {
            drop(state);
            return Err(budget.refuse("NOT_IN_ROOM", "You are not in a room".into()));
        };
        if player_id == to {
            drop(state);
            return Err(budget.refuse("SIGNAL_TARGET_NOT_FOUND", "Cannot signal yourself".into()));
        }
        let Some(room) = state.rooms.get(room) else {
            drop(state);
            return Err(budget.refuse("NOT_IN_ROOM", "You are not in a room".into()));
        };
        let target = room
            .players
            .iter()
            .find(|p| p.id == to)
            .and_then(|p| p.peer.clone());
        let Some(target) = target else {
            let elsewhere = state.rooms.values().any(|r| {
                r.id != room.id && r.players.iter().any(|p| p.id == to && p.peer.is_some())
            });
            drop(state);
            return Err(if elsewhere {
                budget.refuse(
                    "CROSS_ROOM_SIGNAL",
                    "Cannot signal a peer in a different room".into(),
                )
            } else {
                budget.refuse(
                    "SIGNAL_TARGET_NOT_FOUND",
                    "Signal target is not in any room".into(),
                )
            });
        };
        let from = player_id.clone();
        let sender_signals = room
            .players
            .iter()
            .find(|p| p.id == from)
            .and_then(|p| p.peer.as_ref())
            .is_some_and(|sender| sender.capabilities.signals());
        let refused =
            if !sender_signals {
                Some((
                    "UNSUPPORTED_TRANSPORT",
                    "WebRTC transport was not negotiated for this connection",
                ))
            } else if !target.capabilities.signals() {
                Some((
                    "SIGNAL_TARGET_NOT_FOUND",
                    "Signal target does not support WebRTC signaling",
                ))
            } else if room.started
                && !self.signaling().plans.get(&room.id).is_some_and(|sticky| {
                    session_plan::paired(sticky, &Self::members(room), &from, to)
                })
            {
                Some((
                    "SIGNAL_TARGET_NOT_FOUND",
                    "Signal target is not a peer of this room's current session plan",
                ))
            } else {
                None
            };
        drop(state);
        if let Some((code, text)) = refused {
            return Err(budget.refuse(code, text.into()));
        }
        let now = Instant::now();
        let (window, _) = budget.windows(now);
        if window.hit(now) > SIGNALS_PER_WINDOW {
            let seconds = window.remaining(now).as_millis().div_ceil(1000).max(1);
            return Err(refusal(
                Carrier::Error,
                "SIGNAL_RATE_LIMITED",
                Some(format!(
                    "Signaling rate limit exceeded. Try again in {seconds} seconds."
                )),
            ));
        }
        Self::send_to(
            hub,
            &target.handle,
            &ServerMessage::Signal {
                from,
                generation,
                signal,
            },
        );
        Ok(())
    }

    /// `ProvideConnectionInfo`: size-checked and acknowledged by silence, as 0.12 does. It
    /// only ever feeds the host-over-direct rung, which relaydeck never takes, so it is not
    /// kept.
    pub fn connection_info(&self, peer: &str, info: &Value) -> Result<(), Refusal> {
        let size = serde_json::to_vec(info).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_CONNECTION_INFO_BYTES {
            return Err(refusal(
                Carrier::Error,
                "MESSAGE_TOO_LARGE",
                Some(format!(
                    "Connection info is {size} bytes; the maximum allowed is {MAX_CONNECTION_INFO_BYTES} bytes"
                )),
            ));
        }
        if !matches!(
            self.lock().membership.get(peer),
            Some(Membership::Player { .. })
        ) {
            return Err(refusal(
                Carrier::Error,
                "NOT_IN_ROOM",
                Some("Not in a room".into()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::test_support::*;
    use super::*;
    use crate::protocol::signal_fish::{GameDataFormat, Transport};
    use crate::server::config::SignalFishSettings;
    use crate::server::hub::PeerLink;

    fn webrtc(link: &PeerLink) -> RoomPeer {
        let capabilities =
            Capabilities::negotiate(3, Some(vec![Transport::WebRtc]), Some(vec![Topology::Mesh]));
        RoomPeer::new(
            link.handle.clone(),
            3,
            GameDataFormat::Json,
            Arc::new(capabilities),
        )
    }

    /// The player's room code and player id once it joined as `negotiated` makes it.
    fn joined(
        rooms: &Rooms,
        hub: &Hub,
        link: &mut PeerLink,
        negotiated: fn(&PeerLink) -> RoomPeer,
        code: Option<&str>,
    ) -> (String, String) {
        rooms
            .join(hub, &negotiated(link), request(code, "Player"))
            .unwrap();
        let joined = data(&drain(link), "RoomJoined");
        (
            joined["room_code"].as_str().unwrap().to_owned(),
            joined["player_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Whether a signal passes is read from what each end negotiated, as its room holds it;
    /// what the sender has left to spend is its own connection's.
    #[test]
    fn signals_follow_each_members_negotiation_and_spend_the_senders_budget() {
        let (hub, rooms) = (hub(), Rooms::new(SignalFishSettings::default()));
        let (mut alice, mut bob, mut carol) =
            (peer(&hub, "Alice"), peer(&hub, "Bob"), peer(&hub, "Carol"));
        let (code, alice_id) = joined(&rooms, &hub, &mut alice, webrtc, None);
        let (_, bob_id) = joined(&rooms, &hub, &mut bob, webrtc, Some(&code));
        let (_, carol_id) = joined(&rooms, &hub, &mut carol, v3, Some(&code));
        drain(&mut alice);
        drain(&mut bob);
        let send = |from: &PeerLink, budget: &mut SignalBudget, to: &str| {
            rooms.signal(
                &hub,
                from.id(),
                budget,
                to,
                new_id(),
                json!({"sdp": "offer"}),
            )
        };
        let (mut alice_budget, mut carol_budget) =
            (SignalBudget::default(), SignalBudget::default());

        send(&alice, &mut alice_budget, &bob_id).unwrap();
        assert_eq!(data(&drain(&mut bob), "Signal")["from"], alice_id.as_str());
        let refused = send(&alice, &mut alice_budget, &carol_id).unwrap_err();
        assert_eq!(
            (refused.code, refused.text.as_deref()),
            (
                "SIGNAL_TARGET_NOT_FOUND",
                Some("Signal target does not support WebRTC signaling")
            )
        );
        for _ in 0..SIGNAL_REFUSALS_PER_WINDOW {
            let refused = send(&carol, &mut carol_budget, &alice_id).unwrap_err();
            assert_eq!(refused.code, "UNSUPPORTED_TRANSPORT");
        }
        let spent = send(&carol, &mut carol_budget, &alice_id).unwrap_err();
        assert_eq!(spent.code, "SIGNAL_RATE_LIMITED");
        assert!(
            drain(&mut alice).is_empty(),
            "nothing of Carol's reaches Alice"
        );

        let refused = send(&alice, &mut alice_budget, &alice_id).unwrap_err();
        assert_eq!(
            refused.code, "SIGNAL_TARGET_NOT_FOUND",
            "Alice's budget is her own"
        );
        send(&alice, &mut alice_budget, &bob_id).unwrap();
        assert_eq!(
            data(&drain(&mut bob), "Signal")["signal"],
            json!({"sdp": "offer"})
        );
    }
}
