//! One connection as the rest of the server reaches it: a [`PeerHandle`] shared by `Arc`.
//!
//! Rooms, channels and the hub's registry all hold the same handle, so delivering a frame is
//! a push onto the peer's outbox and a few atomic updates: no global lock is taken on the data
//! path. The handle also carries the peer's counters (read by the stats tick) and the flags
//! that change rarely (tapped, closing).
//!
//! # Back-pressure
//! The outbox is unbounded in count and bounded in bytes. A peer whose writer is behind (more
//! than [`OutboxLimits::soft_bytes`] queued) loses relayed frames first ([`Priority::Relay`]:
//! game data, channel messages, stream data), which a realtime client would rather skip than
//! receive late, and keeps getting replies to its own requests. It is closed as a slow
//! consumer only when it has stopped reading: its writer has made no progress for
//! [`OutboxLimits::stall_ms`] while frames wait, or [`OutboxLimits::hard_bytes`] are queued.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use crate::catalog::Dialect;
use crate::protocol::admin::{Direction, PeerId};
use crate::server::recorder::{PeerRecording, Recorder};

/// What a peer's writer task sends.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    /// A binary frame (Signal Fish MessagePack game data).
    Binary(Bytes),
    /// Send this close after the frames queued before it, then stop.
    Close(u16, String),
    /// The connection is over (the client closed or vanished): stop after what is queued.
    End,
    /// A WebSocket ping, the server's keepalive.
    Ping,
}

/// Requests to a peer's connection task, which owns the dialect's per-connection state.
#[derive(Debug, Clone)]
pub enum Control {
    /// An admin kick: send the dialect's notice, then close 4020 admin_disconnect.
    Kick { reason: Option<String> },
    /// The peer's app changed status.
    AppStatus(crate::protocol::admin::AppStatus),
    /// Handle this frame as if the peer had sent it.
    Inject(String),
    /// The server is shutting down.
    Shutdown,
    /// Close with this code and reason: the session that decided it runs on another node
    /// (a Signal Fish player in a room held elsewhere in the cluster).
    Close(u16, String),
}

/// What a connection's session is told. The connection loop turns the other [`Control`]s
/// (an injected frame, a close decided on another node) into input and closes itself, so a
/// session only ever sees these.
#[derive(Debug, Clone)]
pub enum Notice {
    /// An admin kick: send the dialect's notice, then close 4020 admin_disconnect.
    Kick { reason: Option<String> },
    /// The peer's app changed status.
    AppStatus(crate::protocol::admin::AppStatus),
    /// The server is shutting down.
    Shutdown,
}

/// How a frame is treated when its peer is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A reply or notice the client's state depends on: queued while the peer still reads.
    Reply,
    /// Relayed traffic (game data, channel messages, stream data): dropped first.
    Relay,
}

/// What became of one frame handed to [`PeerHandle::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The peer is behind and the frame was relayed traffic.
    Dropped,
    /// The peer is closing or gone.
    Closed,
    /// The peer stopped reading: the caller closes it as a slow consumer.
    Stalled,
}

/// The outbox's byte budget, a server setting (`outbox` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxLimits {
    /// Queued bytes past which relayed frames are dropped.
    pub soft_bytes: usize,
    /// Queued bytes past which the peer is closed whatever its writer does.
    pub hard_bytes: usize,
    /// How long frames may wait with the writer making no progress before the peer is closed.
    pub stall_ms: u64,
    /// How long a woken writer waits for more frames before it writes (0: not at all). Frames
    /// relayed to a peer from several senders within this window go out in one write: fewer
    /// system calls per delivery, for at most this much more latency (the timer's resolution
    /// is a millisecond). Off by default: a game tick should not wait for it.
    pub write_delay_ms: u64,
    /// How many times a woken writer lets the runtime run everything else already ready
    /// before it writes, taking what was relayed to it meanwhile (0: not at all). It stops
    /// early at a round that brought nothing. Costs no timer, and in latency only the rounds
    /// themselves (microseconds); ignored when `write_delay_ms` is set.
    pub gather_rounds: u32,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            soft_bytes: 1 << 20,
            hard_bytes: 16 << 20,
            stall_ms: 10_000,
            write_delay_ms: 0,
            gather_rounds: DEFAULT_GATHER_ROUNDS,
        }
    }
}

/// `outbox.gather_rounds` unless configured.
pub const DEFAULT_GATHER_ROUNDS: u32 = 1;

/// Milliseconds on a monotonic clock shared by the process; wall-clock jumps must not make a
/// healthy peer look stalled.
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub struct PeerHandle {
    pub id: PeerId,
    pub dialect: Dialect,
    outbox: mpsc::UnboundedSender<Outbound>,
    control: mpsc::UnboundedSender<Control>,
    /// Wakes the writer to give up on a stalled send and close at once.
    abort: Notify,
    closing: OnceLock<(u16, String)>,
    /// The operator's reason for a kick (or a ban), kept for the closed-peer history: the
    /// close frame itself carries only the documented `admin_disconnect`.
    kick_reason: OnceLock<String>,
    limits: OutboxLimits,
    queued_bytes: AtomicUsize,
    /// When the writer last took frames or finished a flush ([`monotonic_ms`]).
    writer_progress_ms: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    /// The last ping's round trip in microseconds; 0 until one was measured.
    round_trip_us: AtomicU64,
    counters_changed: AtomicBool,
    tapped: AtomicBool,
    /// The writer gave up: one write made no progress for `stall_ms`.
    writer_stalled: AtomicBool,
    /// Wakes the connection task when the writer gives up.
    stall: Notify,
    /// The flight recorder's ring, when the recorder is on.
    recording: Option<(Arc<Recorder>, PeerRecording)>,
}

/// The receiving ends a connection task keeps.
pub struct PeerQueues {
    pub outbox: mpsc::UnboundedReceiver<Outbound>,
    pub control: mpsc::UnboundedReceiver<Control>,
}

impl PeerHandle {
    pub fn new(
        id: PeerId,
        dialect: Dialect,
        limits: OutboxLimits,
        tapped: bool,
        recorder: Option<&Arc<Recorder>>,
    ) -> (Arc<PeerHandle>, PeerQueues) {
        let recording =
            recorder.and_then(|recorder| Some((recorder.clone(), recorder.recording()?)));
        let (outbox_tx, outbox) = mpsc::unbounded_channel();
        let (control_tx, control) = mpsc::unbounded_channel();
        let handle = Arc::new(PeerHandle {
            id,
            dialect,
            outbox: outbox_tx,
            control: control_tx,
            abort: Notify::new(),
            closing: OnceLock::new(),
            kick_reason: OnceLock::new(),
            limits,
            queued_bytes: AtomicUsize::new(0),
            writer_progress_ms: AtomicU64::new(monotonic_ms()),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            round_trip_us: AtomicU64::new(0),
            counters_changed: AtomicBool::new(false),
            tapped: AtomicBool::new(tapped),
            writer_stalled: AtomicBool::new(false),
            stall: Notify::new(),
            recording,
        });
        (handle, PeerQueues { outbox, control })
    }

    /// Queue one frame, honouring the byte budget (see the module docs).
    pub fn enqueue(&self, text: &Utf8Bytes, priority: Priority) -> Enqueued {
        self.enqueue_frame(
            text.len(),
            priority,
            || Outbound::Text(text.clone()),
            || text.clone(),
        )
    }

    /// Queue one binary frame like [`PeerHandle::enqueue`]; `shown` is what the flight
    /// recorder keeps of it, made only when the peer is recorded.
    pub fn enqueue_binary(
        &self,
        bytes: &Bytes,
        priority: Priority,
        shown: impl FnOnce() -> Utf8Bytes,
    ) -> Enqueued {
        self.enqueue_frame(
            bytes.len(),
            priority,
            || Outbound::Binary(bytes.clone()),
            shown,
        )
    }

    fn enqueue_frame(
        &self,
        length: usize,
        priority: Priority,
        frame: impl FnOnce() -> Outbound,
        shown: impl FnOnce() -> Utf8Bytes,
    ) -> Enqueued {
        if self.closing.get().is_some() {
            return Enqueued::Closed;
        }
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + length > self.limits.soft_bytes {
            let idle_for =
                monotonic_ms().saturating_sub(self.writer_progress_ms.load(Ordering::Relaxed));
            if queued + length > self.limits.hard_bytes || idle_for >= self.limits.stall_ms {
                return Enqueued::Stalled;
            }
            if priority == Priority::Relay {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.counters_changed.store(true, Ordering::Relaxed);
                return Enqueued::Dropped;
            }
        }
        self.queued_bytes.fetch_add(length, Ordering::Relaxed);
        if self.outbox.send(frame()).is_err() {
            self.queued_bytes.fetch_sub(length, Ordering::Relaxed);
            return Enqueued::Closed;
        }
        self.frames_out.fetch_add(1, Ordering::Relaxed);
        self.counters_changed.store(true, Ordering::Relaxed);
        if self.recording.is_some() {
            self.record(Direction::Out, &shown());
        }
        Enqueued::Queued
    }

    /// Keep a frame in the flight recorder (a no-op when it is off).
    pub fn record(&self, direction: Direction, text: &Utf8Bytes) {
        if let Some((recorder, recording)) = &self.recording {
            recording.record(recorder, direction, text);
        }
    }

    pub fn recording(&self) -> Option<&PeerRecording> {
        self.recording.as_ref().map(|(_, recording)| recording)
    }

    /// Mark the peer closing with this code; false when it already was. Only the first close
    /// counts: it is the one the client sees.
    pub fn begin_close(&self, code: u16, reason: &str) -> bool {
        self.closing.set((code, reason.to_owned())).is_ok()
    }

    /// Close after the frames already queued.
    pub fn queue_close(&self, code: u16, reason: &str) {
        let _ = self.outbox.send(Outbound::Close(code, reason.to_owned()));
    }

    /// Close now, abandoning what is queued (the peer is not reading it anyway).
    pub fn abort(&self) {
        self.abort.notify_one();
    }

    pub async fn aborted(&self) {
        self.abort.notified().await;
    }

    /// Send a keepalive ping after what is queued.
    pub fn queue_ping(&self) {
        let _ = self.outbox.send(Outbound::Ping);
    }

    /// Let the writer finish once what is queued is out.
    pub fn end(&self) {
        let _ = self.outbox.send(Outbound::End);
    }

    pub fn closing(&self) -> Option<&(u16, String)> {
        self.closing.get()
    }

    pub fn control(&self, control: Control) -> bool {
        let reason = match &control {
            Control::Kick {
                reason: Some(reason),
            } => Some(reason.clone()),
            _ => None,
        };
        let sent = self.control.send(control).is_ok();
        if let (true, Some(reason)) = (sent, reason) {
            let _ = self.kick_reason.set(reason);
        }
        sent
    }

    /// The operator's reason, when this peer was kicked with one.
    pub fn kick_reason(&self) -> Option<&str> {
        self.kick_reason.get().map(String::as_str)
    }

    /// The writer took `bytes` off the queue.
    pub fn written(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn writer_progressed(&self) {
        self.writer_progress_ms
            .store(monotonic_ms(), Ordering::Relaxed);
    }

    /// How long one write may make no progress before the peer counts as not reading.
    pub fn stall_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.limits.stall_ms)
    }

    /// How long the writer gathers frames before writing them ([`OutboxLimits::write_delay_ms`]).
    pub fn write_delay(&self) -> Option<std::time::Duration> {
        (self.limits.write_delay_ms > 0)
            .then(|| std::time::Duration::from_millis(self.limits.write_delay_ms))
    }

    /// How many runtime rounds the writer gathers frames for ([`OutboxLimits::gather_rounds`]).
    pub fn gather_rounds(&self) -> u32 {
        self.limits.gather_rounds
    }

    /// Called by the writer when a write made no progress for `stall_ms`; wakes the
    /// connection task, which closes the peer as a slow consumer.
    pub fn mark_writer_stalled(&self) {
        self.writer_stalled.store(true, Ordering::Relaxed);
        self.stall.notify_one();
    }

    /// Resolves once the writer has given up on a stalled write.
    pub async fn writer_gave_up(&self) {
        self.stall.notified().await;
    }

    pub fn writer_stalled(&self) -> bool {
        self.writer_stalled.load(Ordering::Relaxed)
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    pub fn count_inbound(&self) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.counters_changed.store(true, Ordering::Relaxed);
    }

    /// A server ping was answered after `round_trip`.
    pub fn note_round_trip(&self, round_trip: std::time::Duration) {
        let micros = u64::try_from(round_trip.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.round_trip_us.store(micros, Ordering::Relaxed);
        self.counters_changed.store(true, Ordering::Relaxed);
    }

    pub fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.counters_changed.store(true, Ordering::Relaxed);
    }

    pub fn is_tapped(&self) -> bool {
        self.tapped.load(Ordering::Relaxed)
    }

    pub fn set_tapped(&self, on: bool) {
        self.tapped.store(on, Ordering::Relaxed);
    }

    /// True once since the counters last changed; the stats tick reports the peer then.
    pub fn take_counters_changed(&self) -> bool {
        self.counters_changed.swap(false, Ordering::Relaxed)
    }

    pub fn counters(&self) -> Counters {
        Counters {
            frames_in: self.frames_in.load(Ordering::Relaxed),
            frames_out: self.frames_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            round_trip_us: Some(self.round_trip_us.load(Ordering::Relaxed)).filter(|us| *us > 0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub frames_in: u64,
    pub frames_out: u64,
    pub errors: u64,
    pub dropped: u64,
    pub round_trip_us: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn handle(limits: OutboxLimits) -> (Arc<PeerHandle>, PeerQueues) {
        PeerHandle::new("p1".into(), Dialect::Pubsub, limits, false, None)
    }

    #[test]
    fn a_peer_behind_loses_relayed_frames_and_keeps_replies() {
        let (peer, _queues) = handle(OutboxLimits {
            soft_bytes: 10,
            hard_bytes: 100,
            stall_ms: u64::MAX,
            write_delay_ms: 0,
            gather_rounds: 0,
        });
        let frame: Utf8Bytes = "12345678".into();
        assert_eq!(peer.enqueue(&frame, Priority::Relay), Enqueued::Queued);
        assert_eq!(peer.enqueue(&frame, Priority::Relay), Enqueued::Dropped);
        assert_eq!(peer.enqueue(&frame, Priority::Reply), Enqueued::Queued);
        assert_eq!(peer.counters().dropped, 1);
        assert_eq!(peer.queued_bytes(), 16);
        peer.written(16);
        assert_eq!(
            peer.enqueue(&frame, Priority::Relay),
            Enqueued::Queued,
            "once the writer caught up, relayed frames flow again"
        );
    }

    #[test]
    fn a_peer_is_stalled_past_the_hard_budget_or_the_stall_time() {
        let (peer, _queues) = handle(OutboxLimits {
            soft_bytes: 10,
            hard_bytes: 20,
            stall_ms: u64::MAX,
            write_delay_ms: 0,
            gather_rounds: 0,
        });
        let frame: Utf8Bytes = "12345678".into();
        for _ in 0..2 {
            assert_eq!(peer.enqueue(&frame, Priority::Reply), Enqueued::Queued);
        }
        assert_eq!(peer.enqueue(&frame, Priority::Reply), Enqueued::Stalled);

        let (peer, _queues) = handle(OutboxLimits {
            soft_bytes: 10,
            hard_bytes: 1000,
            stall_ms: 0,
            write_delay_ms: 0,
            gather_rounds: 0,
        });
        assert_eq!(peer.enqueue(&frame, Priority::Reply), Enqueued::Queued);
        assert_eq!(peer.enqueue(&frame, Priority::Reply), Enqueued::Stalled);
    }

    #[test]
    fn a_closing_peer_takes_no_more_frames() {
        let (peer, _queues) = handle(OutboxLimits::default());
        assert!(peer.begin_close(4020, "admin_disconnect"));
        assert!(!peer.begin_close(1000, "later"), "the first close wins");
        assert_eq!(peer.enqueue(&"x".into(), Priority::Reply), Enqueued::Closed);
    }
}
