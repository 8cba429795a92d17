//! Errors this server sent: counted by code, kept on their peer's entry, told to admins; and
//! how frame text is clipped for an admin event.

use std::collections::BTreeMap;

use super::journal::Journal;
use super::registry::Registry;
use crate::catalog::{Delivery, Dialect};
use crate::clock::now_ms;
use crate::protocol::admin::{Event, RecentError};
use crate::server::peer::PeerHandle;

/// The most of a frame an admin event carries (errors and tapped frames). Clients choose what
/// error frames echo back (a Talo cause is the client's own frame); clipping bounds every
/// event, so the delta ring holds at most [`crate::server::hub::EVENT_CAPACITY`] × this much frame text.
pub const MAX_EVENT_FRAME_BYTES: usize = 4 * 1024;

/// Errors sent since start, for the stats.
#[derive(Default)]
pub(in crate::server::hub) struct ErrorCounts {
    pub(in crate::server::hub) total: u64,
    pub(in crate::server::hub) by_code: BTreeMap<String, u64>,
    /// Codes sent that the catalog does not know (`dialect:code`): a typo in a refusal, or
    /// a code added without its entry. Every test server checks this stays empty.
    pub(in crate::server::hub) uncatalogued: BTreeMap<String, u64>,
}

/// The close code for a peer that cannot keep up, per dialect.
pub fn slow_consumer_close(dialect: Dialect) -> (u16, &'static str) {
    match dialect {
        Dialect::SignalFish => (4002, "slow_consumer"),
        _ => (1013, "try_again_later"),
    }
}

/// One error this server sent, as admins are told of it.
pub(in crate::server::hub) struct SentError<'a> {
    pub(in crate::server::hub) peer: Option<&'a PeerHandle>,
    pub(in crate::server::hub) dialect: Dialect,
    pub(in crate::server::hub) code: &'a str,
    pub(in crate::server::hub) delivery: Delivery,
    pub(in crate::server::hub) request_id: Option<&'a str>,
    pub(in crate::server::hub) frame: String,
}

impl ErrorCounts {
    /// Count an error, keep it on its peer's entry, and tell admins.
    pub(in crate::server::hub) fn record(
        &mut self,
        journal: &mut Journal,
        registry: &mut Registry,
        error: SentError<'_>,
    ) {
        let SentError {
            peer,
            dialect,
            code,
            delivery,
            request_id,
            frame,
        } = error;
        self.total += 1;
        let qualified = format!("{}:{code}", dialect.id());
        let sent = self.by_code.entry(qualified.clone()).or_default();
        *sent += 1;
        // The catalog is searched once per code, the first time it is sent, not per error:
        // a flood of one refusal costs a map lookup.
        if *sent == 1 && crate::catalog::sent(dialect, code).is_none() {
            tracing::warn!(code = %qualified, "sent an error code the catalog does not know");
            self.uncatalogued.insert(qualified.clone(), 0);
        }
        if let Some(unknown) = self.uncatalogued.get_mut(&qualified) {
            *unknown += 1;
        }
        let frame = crate::text::clip_bytes(&frame, MAX_EVENT_FRAME_BYTES);
        if let Some(peer) = peer {
            peer.count_error();
            registry.note_error(
                &peer.id,
                RecentError {
                    at_ms: now_ms(),
                    dialect,
                    code: code.to_owned(),
                    frame: frame.clone(),
                },
            );
        }
        journal.record(Event::ErrorEmitted {
            peer: peer.map(|p| p.id.clone()),
            dialect,
            code: code.to_owned(),
            delivery,
            request_id: request_id.map(|id| crate::text::clip_bytes(id, MAX_EVENT_FRAME_BYTES)),
            frame,
        });
    }
}
