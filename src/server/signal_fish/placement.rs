//! In a cluster: which node holds the room a request names, and the tunnel to it when it is
//! another node; a room's node runs a hosted session for a player of another node.

use std::borrow::Cow;
use std::sync::Arc;

use super::operations::canonical_operation_id;
use super::refusal::{Carrier, Refusal};
use super::tunnel::TunnelOpen;
use super::{rooms, Resolved, Session};
use crate::protocol::signal_fish::Request;
use crate::server::cluster::rooms::Placement;
use crate::server::connection::Flow;

impl Session {
    /// In a cluster, a request naming a room that is not on this node: forwarded to the
    /// room's node, looked up in Redis first when no node has announced it, or (creating a
    /// room) given a code claimed cluster-wide. `None`: handle it here.
    pub(super) fn route(&mut self, request: &Request, text: &str) -> Option<Flow> {
        let cluster = self.shared.cluster.clone()?;
        let rooms = self.rooms();
        // A correlated membership request is placed as the plain one; a RoomOperation from
        // a session without the capability stays on this node, to be refused.
        let (request, operation) = match request {
            Request::RoomOperation {
                operation_id,
                operation,
            } if self.room_operation_ids && canonical_operation_id(operation_id) => (
                Cow::Owned(operation.placed_as()?),
                Some(operation_id.clone()),
            ),
            _ => (Cow::Borrowed(request), None),
        };
        let (carrier, code, claim) = match &*request {
            Request::JoinRoom(join) => match &join.room_code {
                // A malformed code is refused here, as on a single node.
                Some(code) if !rooms::valid_room_code(code) || rooms.holds_code(code) => {
                    return None
                }
                Some(code) => (
                    Carrier::RoomJoinFailed,
                    Some(code.clone()),
                    !join.join_only.unwrap_or(false),
                ),
                None => (Carrier::RoomJoinFailed, None, true),
            },
            Request::JoinAsSpectator(spectate) => {
                if !rooms::valid_room_code(&spectate.room_code)
                    || rooms.holds_code(&spectate.room_code)
                {
                    return None;
                }
                (
                    Carrier::SpectatorJoinFailed,
                    Some(spectate.room_code.clone()),
                    false,
                )
            }
            // Seats are found by the room id the player was given; a room gone everywhere is
            // refused here as on a single node.
            Request::Reconnect(reconnect) => {
                if rooms.holds_room_id(&reconnect.room_id) {
                    return None;
                }
                let node = self.hub().remote_room_node_by_id(&reconnect.room_id)?;
                return Some(self.open_tunnel(
                    &node,
                    text,
                    Carrier::ReconnectionFailed,
                    operation.as_deref(),
                ));
            }
            _ => return None,
        };
        if !cluster.redis_ok() {
            return Some(self.storage_unreachable(carrier, operation.as_deref()));
        }
        if let Some(node) = code.as_deref().and_then(|c| self.hub().remote_room_node(c)) {
            return Some(self.open_tunnel(&node, text, carrier, operation.as_deref()));
        }
        let text = text.to_owned();
        self.pending = Some(Box::pin(async move {
            let placement = match code {
                Some(code) => cluster.place_room(&code, claim).await,
                None => cluster
                    .claim_new_room(rooms::room_code)
                    .await
                    .map(|code| Placement::Here(Some(code))),
            };
            Resolved {
                text,
                carrier,
                operation,
                placement: placement.map_err(|error| {
                    tracing::warn!(%error, "cluster: room lookup failed");
                }),
            }
        }));
        Some(Flow::Continue)
    }

    pub(super) fn resolved(&mut self, resolved: Resolved) -> Flow {
        let Resolved {
            text,
            carrier,
            operation,
            placement,
        } = resolved;
        let claimed = match placement {
            Err(()) => return self.storage_unreachable(carrier, operation.as_deref()),
            Ok(Placement::There(node)) => {
                return self.open_tunnel(&node, &text, carrier, operation.as_deref())
            }
            Ok(Placement::Here(claimed)) => claimed,
            Ok(Placement::Nowhere) => None,
        };
        // The frame parsed before it was held.
        let Ok(mut request) = serde_json::from_str::<Request>(&text) else {
            return Flow::Continue;
        };
        if let (Some(join), Some(code)) = (request.join_mut(), &claimed) {
            join.room_code = Some(code.clone());
            join.join_only = Some(false);
        }
        let flow = self.dispatch(request, &text, true);
        // A claim the join did not use (a refused name, say) is freed at once.
        if let (Some(code), Some(cluster)) = (claimed, &self.shared.cluster) {
            if !self.rooms().holds_code(&code) {
                cluster.release_room(&code);
            }
        }
        flow
    }

    /// From now on this player's frames go to `node`, which holds its room.
    pub(super) fn open_tunnel(
        &mut self,
        node: &str,
        text: &str,
        carrier: Carrier,
        operation: Option<&str>,
    ) -> Flow {
        let Some(cluster) = self.shared.cluster.clone() else {
            return Flow::Continue;
        };
        // A player served for another node stays with this node's rooms: one hop only.
        if self.hosted.is_some() {
            return self.answer_placement_refusal(
                operation,
                &Refusal {
                    carrier,
                    code: "ROOM_NOT_FOUND",
                    text: Some(
                        "The room is held by another node; connect again to join it".to_owned(),
                    ),
                },
            );
        }
        if !cluster.redis_ok() {
            return self.storage_unreachable(carrier, operation);
        }
        let address = self
            .hub()
            .peer(&self.peer.id)
            .map(|p| p.addr)
            .unwrap_or_default();
        self.shared.tunnels.open(
            &self.shared.broker,
            node,
            Arc::clone(&self.peer),
            TunnelOpen {
                peer: self.peer.id.clone(),
                app: self.app.clone().unwrap_or_default(),
                address,
                version: self.version,
                first: text.to_owned(),
                room_operation_ids: self.room_operation_ids,
            },
        );
        self.tunnel = Some(node.to_owned());
        Flow::Continue
    }

    /// Redis, which says where rooms live, cannot be reached.
    pub(super) fn storage_unreachable(
        &mut self,
        carrier: Carrier,
        operation: Option<&str>,
    ) -> Flow {
        self.answer_placement_refusal(
            operation,
            &Refusal {
                carrier,
                code: "STORAGE_ERROR",
                text: Some(
                    "The cluster's room directory cannot be reached; try again in a few seconds"
                        .to_owned(),
                ),
            },
        )
    }

    /// A request refused before any room saw it: inside its RoomOperationResult when it is
    /// a correlated operation.
    fn answer_placement_refusal(&mut self, operation: Option<&str>, refusal: &Refusal) -> Flow {
        match operation {
            Some(operation_id) => self.answer_operation_refusal(operation_id, refusal),
            None => self.answer_refusal(refusal),
        }
    }
}
