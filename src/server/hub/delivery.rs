//! The data path: frames in and out, error frames and closes. Delivering takes only the
//! peer's own outbox; the hub's lock is taken for what admins must see in order (an error
//! frame, a close, a tapped frame), whose counts are in `parts/errors.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;

use super::parts::errors::{slow_consumer_close, SentError};
use super::{Hub, State, MAX_EVENT_FRAME_BYTES};
use crate::catalog::{self, Delivery, Dialect, Severity};
use crate::protocol::admin::{Direction, Event};
use crate::server::peer::{Enqueued, PeerHandle, Priority};
use crate::text::clip_bytes;

/// What a delivery leaves to record under the hub's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterDelivery {
    /// An admin taps the peer: the frame goes into the journal.
    Tapped,
    /// The peer's outbox is full past its patience: it is closed.
    SlowConsumer,
}

impl Hub {
    fn count_error(&self, error: SentError<'_>) {
        let mut state = self.lock();
        let State {
            journal,
            registry,
            errors,
            ..
        } = &mut *state;
        errors.record(journal, registry, error);
    }

    /// A frame shown to the admins tapping its peer.
    fn tapped(&self, peer: &PeerHandle, direction: Direction, text: &str) {
        self.lock().journal.record(Event::Frame {
            peer: peer.id.clone(),
            direction,
            text: clip_bytes(text, MAX_EVENT_FRAME_BYTES),
        });
    }

    /// Count an inbound frame and show it to admins tapping the peer.
    pub fn record_inbound(&self, peer: &PeerHandle, text: &str) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        peer.count_inbound();
        if peer.is_tapped() {
            self.tapped(peer, Direction::In, text);
        }
    }

    /// Queue a frame for one peer without touching the hub's lock (unless an admin taps the
    /// peer or it has to be closed). False when the frame was not queued.
    pub fn deliver(&self, peer: &PeerHandle, text: &Utf8Bytes, priority: Priority) -> bool {
        let (queued, after) = self.enqueue(peer, text, priority);
        if let Some(after) = after {
            self.follow_up(peer, after, text);
        }
        queued
    }

    /// Queue a binary frame for one peer, like [`Hub::deliver`]; `shown` is how it reads to
    /// admins tapping the peer and in the flight recorder, made only when one looks.
    pub fn deliver_binary(
        &self,
        peer: &PeerHandle,
        bytes: &Bytes,
        priority: Priority,
        shown: impl Fn() -> Utf8Bytes,
    ) -> bool {
        let (queued, after) = self.count(peer, peer.enqueue_binary(bytes, priority, &shown));
        if let Some(after) = after {
            self.follow_up(peer, after, &shown());
        }
        queued
    }

    /// Queue a frame for one peer and count it, taking no lock but the peer's outbox; what
    /// must be recorded under the hub's lock is returned, for the caller to do once it holds
    /// no other lock (a channel's members, say: see the lock order in `hub/mod.rs`).
    pub(super) fn enqueue(
        &self,
        peer: &PeerHandle,
        text: &Utf8Bytes,
        priority: Priority,
    ) -> (bool, Option<AfterDelivery>) {
        self.count(peer, peer.enqueue(text, priority))
    }

    /// A queued frame counted; what is left to do under the hub's lock.
    fn count(&self, peer: &PeerHandle, enqueued: Enqueued) -> (bool, Option<AfterDelivery>) {
        match enqueued {
            Enqueued::Queued => {
                self.frames_out.fetch_add(1, Ordering::Relaxed);
                (true, peer.is_tapped().then_some(AfterDelivery::Tapped))
            }
            Enqueued::Dropped => {
                self.frames_dropped.fetch_add(1, Ordering::Relaxed);
                (false, None)
            }
            Enqueued::Closed => (false, None),
            Enqueued::Stalled => (false, Some(AfterDelivery::SlowConsumer)),
        }
    }

    /// What [`Hub::enqueue`] left to do under the hub's lock.
    pub(super) fn follow_up(&self, peer: &PeerHandle, after: AfterDelivery, text: &Utf8Bytes) {
        match after {
            AfterDelivery::Tapped => self.tapped(peer, Direction::Out, text.as_str()),
            AfterDelivery::SlowConsumer => self.close_slow_consumer(peer),
        }
    }

    /// Queue the same bytes for many peers (serialized once by the caller); how many took it.
    pub fn deliver_many<'a>(
        &self,
        peers: impl IntoIterator<Item = &'a Arc<PeerHandle>>,
        text: &Utf8Bytes,
        priority: Priority,
    ) -> usize {
        peers
            .into_iter()
            .filter(|peer| self.deliver(peer, text, priority))
            .count()
    }

    /// Close a peer that stopped reading, with its dialect's code, counted like any error
    /// close. Also for a peer whose writer gave up while nothing more was being queued.
    pub fn close_slow_consumer(&self, peer: &PeerHandle) {
        let (code, reason) = slow_consumer_close(peer.dialect);
        if !peer.begin_close(code, reason) {
            return;
        }
        peer.abort();
        self.count_close(peer, code, reason);
    }

    /// A close this server sent, counted and shown to admins like an error frame.
    fn count_close(&self, peer: &PeerHandle, code: u16, reason: &str) {
        self.count_error(SentError {
            peer: Some(peer),
            dialect: peer.dialect,
            code: &code.to_string(),
            delivery: Delivery::Close,
            request_id: None,
            frame: format!("close {code} {reason}"),
        });
    }

    /// Send an error frame: the single path every dialect's error frames take, so that they
    /// are counted and every console sees them.
    pub fn send_error(
        &self,
        peer: &PeerHandle,
        code: &str,
        request_id: Option<&str>,
        frame: String,
    ) {
        let text: Utf8Bytes = frame.into();
        if self.deliver(peer, &text, Priority::Reply) {
            self.count_error(SentError {
                peer: Some(peer),
                dialect: peer.dialect,
                code,
                delivery: Delivery::Frame,
                request_id,
                frame: text.as_str().to_owned(),
            });
        }
    }

    /// Record an error frame another server sent one of this server's peers (`relaydeck
    /// proxy` relays it): counted and shown as if this server had sent it.
    pub fn record_relayed_error(&self, peer: &PeerHandle, code: &str, frame: String) {
        self.count_error(SentError {
            peer: Some(peer),
            dialect: peer.dialect,
            code,
            delivery: Delivery::Frame,
            request_id: None,
            frame,
        });
    }

    /// Record an error that went out over HTTP (no peer).
    pub fn record_http_error(&self, dialect: Dialect, code: &str, body: String) {
        self.count_error(SentError {
            peer: None,
            dialect,
            code,
            delivery: Delivery::Http,
            request_id: None,
            frame: body,
        });
    }

    /// Record a close sent to a connection refused before it became a peer.
    pub fn record_unattached_error(&self, dialect: Dialect, code: &str, frame: String) {
        self.count_error(SentError {
            peer: None,
            dialect,
            code,
            delivery: Delivery::Close,
            request_id: None,
            frame,
        });
    }

    /// Close a peer after the frames already queued (at once if it is too far behind for
    /// them to matter). Error closes are reported like error frames; normal ones (1000, 1001)
    /// are not.
    pub fn close_peer(&self, peer: &PeerHandle, code: u16, reason: &str) {
        if !peer.begin_close(code, reason) {
            return;
        }
        if peer.queued_bytes() > self.config.outbox.soft_bytes {
            peer.abort();
        } else {
            peer.queue_close(code, reason);
        }
        let is_error =
            catalog::close(peer.dialect, code).is_none_or(|e| e.severity() != Severity::Info);
        if is_error {
            self.count_close(peer, code, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::protocol::admin::ServerMessage;
    use crate::server::config::Config;
    use crate::server::hub::NewPeer;
    use crate::server::peer::OutboxLimits;

    #[test]
    fn a_peer_that_stops_reading_is_closed_as_a_slow_consumer() {
        let mut config = Config::demo();
        config.outbox = OutboxLimits {
            soft_bytes: 4,
            hard_bytes: 8,
            stall_ms: u64::MAX,
            ..Default::default()
        };
        let hub = Hub::new(config, "test".into(), &BTreeMap::new(), 64);
        let (_, _, mut events) = hub.subscribe();
        let link = hub
            .register_peer(
                NewPeer {
                    dialect: Dialect::Pubsub,
                    app: Some("demo".into()),
                    identity: None,
                    addr: "127.0.0.1:1".into(),
                    probe_nonce: None,
                },
                None,
            )
            .unwrap();
        let frame: Utf8Bytes = "{}".into();
        for _ in 0..4 {
            assert!(hub.deliver(&link.handle, &frame, Priority::Reply));
        }
        assert!(
            !hub.deliver(&link.handle, &frame, Priority::Reply),
            "the frame past the hard budget is refused"
        );
        assert_eq!(
            link.handle.closing().cloned(),
            Some((1013, "try_again_later".to_owned()))
        );
        assert!(
            !hub.deliver(&link.handle, &frame, Priority::Reply),
            "a closing peer takes no more frames"
        );
        let mut emitted = None;
        while let Ok(delta) = events.try_recv() {
            let message: ServerMessage = serde_json::from_str(delta.text.as_str()).unwrap();
            if let ServerMessage::Delta {
                event: Event::ErrorEmitted { code, frame, .. },
                ..
            } = message
            {
                emitted = Some((code, frame));
            }
        }
        assert_eq!(
            emitted,
            Some(("1013".to_owned(), "close 1013 try_again_later".to_owned()))
        );
    }

    #[test]
    fn a_code_the_catalog_lacks_is_counted_and_known_codes_are_not() {
        let hub = Hub::new(Config::demo(), "test".into(), &BTreeMap::new(), 64);
        let sent = |code: &str| {
            hub.count_error(SentError {
                peer: None,
                dialect: Dialect::SignalFish,
                code,
                delivery: Delivery::Frame,
                request_id: None,
                frame: String::new(),
            })
        };
        sent("ROOM_FULL");
        sent("1007");
        sent("ROOM_FUL");
        sent("ROOM_FUL");
        assert_eq!(
            hub.uncatalogued_errors(),
            [("signal-fish:ROOM_FUL".to_owned(), 2)]
        );
    }

    #[test]
    fn event_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip_bytes("short", 10), "short");
        assert_eq!(clip_bytes("ééé", 3), "é… (6 bytes in all)");
        assert!(
            clip_bytes(&"x".repeat(100_000), MAX_EVENT_FRAME_BYTES).len()
                < MAX_EVENT_FRAME_BYTES + 32
        );
    }
}
