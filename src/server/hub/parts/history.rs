//! The history of closed peers and rooms, and what the flight recorder still holds of each
//! peer (live or closed) for the admin's `frames` and `export`.

use std::collections::VecDeque;

use super::journal::Journal;
use crate::clock::now_ms;
use crate::protocol::admin::{Closed, Event, HistoryEntry, PeerId, PeerInfo};
use crate::server::config::HistorySettings;
use crate::server::recorder::{Record, Ring};

/// One history entry and what only the server keeps of it: the peer's recorded frames.
pub(in crate::server::hub) struct HistoryItem {
    pub(in crate::server::hub) entry: HistoryEntry,
    pub(in crate::server::hub) path: Option<String>,
    /// Dropped with the entry, which gives its bytes back to the recorder's budget.
    pub(in crate::server::hub) ring: Option<Ring>,
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
pub(in crate::server::hub) struct History {
    pub(in crate::server::hub) items: VecDeque<HistoryItem>,
}

impl History {
    pub(in crate::server::hub) fn entries(&self) -> Vec<HistoryEntry> {
        self.items.iter().map(|h| h.entry.clone()).collect()
    }

    pub(in crate::server::hub) fn add(
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
    pub(in crate::server::hub) fn trim(&mut self, limits: HistorySettings, now: u64) {
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
    pub(in crate::server::hub) fn closed_peer(&self, id: &str) -> Option<PeerRecord> {
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
    pub(in crate::server::hub) fn closed_in_room<'a>(
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
