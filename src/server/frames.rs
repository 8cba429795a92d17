//! What unfinished WebSocket frames may hold, server-wide.
//!
//! The WebSocket library buffers a message until its last byte arrives, so each dialect's
//! read limit bounds one connection, not the server: 400 sockets each holding all but the
//! last byte of a 4 MiB frame held 1.6 GB. The socket's read side is therefore counted
//! here, below the library: every byte read from an upgraded socket is held until the
//! connection loop sees a whole message come out of it. Three rules bound what is held:
//!
//! - a connection that has not authenticated or identified yet may hold
//!   `security.unidentified_read_limit_bytes` (an `Authenticate` or `identify` is small);
//! - all connections together hold at most `security.frame_budget_bytes` (plus what each
//!   holds of a frame within [`ALLOWANCE`]); past it, when a connection holding more than
//!   the allowance grows, the newest connection holding more than the allowance is closed:
//!   clients sending ordinary frames, and older ones sending a large frame, are spared;
//! - a message must be complete within `security.frame_deadline_ms` of its first byte; a
//!   ping or pong in between is a frame of its own and extends nothing.
//!
//! A connection over any of them stops being read at once (what it sends next waits in the
//! kernel's buffer, not in ours) and its connection loop closes it with 1009, or 1008 for
//! the deadline, the codes every dialect already uses past its read limit.
//!
//! Bytes are counted after TLS, as the WebSocket library reads them.
//!
//! Cost on the hot path: per socket read, two relaxed loads and two relaxed additions (one
//! on the server-wide total, a cache line every connection shares); per message, a swap and
//! a subtraction from the total; per connection-loop turn, an uncontended `Notify` poll.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::server::config::SecuritySettings;
use crate::server::peer::monotonic_ms;

/// What one connection may hold while the server is over its budget without being the one
/// closed: a frame of the size every dialect accepts, with its header.
pub const ALLOWANCE: usize = 64 * 1024 + 16;

/// How often the deadline of unfinished messages is looked at.
const SWEEP_PERIOD: Duration = Duration::from_millis(250);

/// Why a connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tripped {
    /// Over the read limit of a connection that has not identified.
    Unidentified,
    /// The server's budget is spent and this connection holds the most recent large part.
    Budget,
    /// A message not completed in time.
    Deadline,
}

impl Tripped {
    /// The close every dialect gives for it.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Tripped::Unidentified => (1009, "message too big before authentication"),
            Tripped::Budget => (1009, "server busy: unfinished frames over budget"),
            Tripped::Deadline => (1008, "frame not completed in time"),
        }
    }

    fn code(self) -> u8 {
        match self {
            Tripped::Unidentified => 1,
            Tripped::Budget => 2,
            Tripped::Deadline => 3,
        }
    }

    fn of(code: u8) -> Option<Tripped> {
        match code {
            1 => Some(Tripped::Unidentified),
            2 => Some(Tripped::Budget),
            3 => Some(Tripped::Deadline),
            _ => None,
        }
    }
}

/// Every upgraded socket's count, and the server's total.
pub struct FrameBudget {
    held: AtomicUsize,
    budget: AtomicUsize,
    unidentified_limit: AtomicUsize,
    deadline_ms: AtomicU64,
    next_seq: AtomicU64,
    meters: Mutex<HashMap<SocketAddr, Arc<Meter>>>,
    sweeping: AtomicBool,
}

impl Default for FrameBudget {
    fn default() -> Self {
        let defaults = SecuritySettings::default();
        FrameBudget {
            held: AtomicUsize::new(0),
            budget: AtomicUsize::new(defaults.frame_budget_bytes),
            unidentified_limit: AtomicUsize::new(defaults.unidentified_read_limit_bytes),
            deadline_ms: AtomicU64::new(defaults.frame_deadline_ms),
            next_seq: AtomicU64::new(0),
            meters: Mutex::new(HashMap::new()),
            sweeping: AtomicBool::new(false),
        }
    }
}

impl FrameBudget {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Meter>>> {
        self.meters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take the limits of this server's configuration.
    pub fn configure(&self, limits: &SecuritySettings) {
        self.budget
            .store(limits.frame_budget_bytes, Ordering::Relaxed);
        self.unidentified_limit
            .store(limits.unidentified_read_limit_bytes, Ordering::Relaxed);
        self.deadline_ms
            .store(limits.frame_deadline_ms, Ordering::Relaxed);
    }

    /// Bytes held in unfinished messages, all connections together.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// A meter for the socket from `remote`; it counts nothing until the connection loop
    /// takes it ([`FrameBudget::take`]), so plain HTTP requests are never counted.
    pub fn open(self: &Arc<Self>, remote: SocketAddr) -> MeterGuard {
        let meter = Arc::new(Meter {
            budget: self.clone(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            active: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
            started_ms: AtomicU64::new(0),
            tripped: AtomicU8::new(0),
            notify: Notify::new(),
        });
        self.lock().insert(remote, meter.clone());
        MeterGuard {
            meter,
            remote,
            budget: self.clone(),
        }
    }

    /// The meter of the upgraded socket from `addr` (the peer's address as registered),
    /// counting from now on, limited until `identified` is true.
    pub fn take(&self, addr: &str, identified: bool) -> Option<Arc<Meter>> {
        let remote: SocketAddr = addr.parse().ok()?;
        let meter = self.lock().get(&remote).cloned()?;
        if !identified {
            meter.limit.store(
                self.unidentified_limit.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        meter.active.store(true, Ordering::Release);
        Some(meter)
    }

    /// Close the newest connection holding more than [`ALLOWANCE`], unless those already
    /// closed are about to give back enough.
    fn trip_newest(&self) {
        let newest = {
            let meters = self.lock();
            let condemned: usize = meters
                .values()
                .filter(|m| m.tripped.load(Ordering::Relaxed) != 0)
                .map(|m| m.pending.load(Ordering::Relaxed))
                .sum();
            if self.held().saturating_sub(condemned) <= self.budget.load(Ordering::Relaxed) {
                return;
            }
            meters
                .values()
                .filter(|m| {
                    m.pending.load(Ordering::Relaxed) > ALLOWANCE
                        && m.tripped.load(Ordering::Relaxed) == 0
                })
                .max_by_key(|m| m.seq)
                .cloned()
        };
        if let Some(meter) = newest {
            meter.trip(Tripped::Budget);
        }
    }

    /// Close every connection whose unfinished message is older than the deadline. Runs
    /// on one task per server, started with the first socket.
    fn sweep(&self) {
        let deadline = self.deadline_ms.load(Ordering::Relaxed);
        let now = monotonic_ms();
        for meter in self.lock().values() {
            let started = meter.started_ms.load(Ordering::Relaxed);
            if started != 0 && now.saturating_sub(started) >= deadline {
                meter.trip(Tripped::Deadline);
            }
        }
    }

    /// Start the deadline sweeper once, for as long as the budget lives.
    pub fn start_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(budget) = weak.upgrade() else { return };
                budget.sweep();
            }
        });
    }
}

/// One upgraded socket's count.
pub struct Meter {
    /// A strong reference: upgrading a weak one on every read would be a compare-and-swap
    /// on a count every connection shares. The budget's map holds the meter back only until
    /// the socket's guard drops, so the two do not keep each other alive.
    budget: Arc<FrameBudget>,
    seq: u64,
    active: AtomicBool,
    pending: AtomicUsize,
    limit: AtomicUsize,
    /// When the unfinished message's first byte was read ([`monotonic_ms`], 0: none).
    started_ms: AtomicU64,
    tripped: AtomicU8,
    notify: Notify,
}

impl Meter {
    /// Whether the socket may still be read.
    pub fn readable(&self) -> bool {
        self.tripped.load(Ordering::Relaxed) == 0
    }

    /// `bytes` were read from the socket.
    pub fn read(&self, bytes: usize) {
        if bytes == 0 || !self.active.load(Ordering::Relaxed) {
            return;
        }
        let budget = &self.budget;
        let before = self.pending.fetch_add(bytes, Ordering::Relaxed);
        if before == 0 {
            // 0 means "nothing pending"; a clock that reads 0 is taken as 1.
            self.started_ms
                .store(monotonic_ms().max(1), Ordering::Relaxed);
        }
        let pending = before + bytes;
        let held = budget.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if pending > self.limit.load(Ordering::Relaxed) {
            self.trip(Tripped::Unidentified);
        } else if held > budget.budget.load(Ordering::Relaxed) && pending > ALLOWANCE {
            // Ordinary frames (within the allowance) never close anyone: the budget is
            // spent by whoever holds more.
            budget.trip_newest();
        }
    }

    /// A whole message came out of the socket: nothing it read is held any more.
    pub fn message_done(&self) {
        let pending = self.pending.swap(0, Ordering::Relaxed);
        self.started_ms.store(0, Ordering::Relaxed);
        self.release(pending);
    }

    /// A ping or pong came out of the socket: its own bytes are no longer held, and a
    /// message it interrupted keeps its deadline. A client's frames are masked, so a
    /// control frame is a 2-byte header, a 4-byte mask and its payload (at most 125 bytes).
    pub fn control_done(&self, payload: usize) {
        let size = 6 + payload;
        let mut released = 0;
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| {
                released = pending.min(size);
                Some(pending - released)
            });
        if self.pending.load(Ordering::Relaxed) == 0 {
            self.started_ms.store(0, Ordering::Relaxed);
        }
        self.release(released);
    }

    /// The peer authenticated or identified: its dialect's own read limit applies.
    pub fn identified(&self) {
        self.limit.store(usize::MAX, Ordering::Relaxed);
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.budget.held.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn trip(&self, why: Tripped) {
        if self
            .tripped
            .compare_exchange(0, why.code(), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// Resolves once the connection must be closed, with why.
    pub async fn tripped(&self) -> Tripped {
        loop {
            if let Some(why) = Tripped::of(self.tripped.load(Ordering::Relaxed)) {
                return why;
            }
            self.notify.notified().await;
        }
    }
}

/// Held by the socket: gives back what it held when the socket goes.
pub struct MeterGuard {
    meter: Arc<Meter>,
    remote: SocketAddr,
    budget: Arc<FrameBudget>,
}

impl MeterGuard {
    pub fn meter(&self) -> &Meter {
        &self.meter
    }
}

impl Drop for MeterGuard {
    fn drop(&mut self) {
        self.budget.lock().remove(&self.remote);
        self.meter.message_done();
        self.meter.active.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn budget(bytes: usize) -> Arc<FrameBudget> {
        let budget = Arc::new(FrameBudget::default());
        budget.configure(&SecuritySettings {
            frame_budget_bytes: bytes,
            unidentified_read_limit_bytes: 1_000,
            ..SecuritySettings::default()
        });
        budget
    }

    #[test]
    fn whole_messages_give_back_what_they_held_and_pings_extend_nothing() {
        let budget = budget(1 << 20);
        let guard = budget.open("127.0.0.1:1".parse().unwrap());
        let meter = budget.take("127.0.0.1:1", true).unwrap();
        meter.read(500);
        meter.control_done(10);
        assert_eq!(budget.held(), 484);
        assert_ne!(meter.started_ms.load(Ordering::Relaxed), 0);
        meter.message_done();
        assert_eq!(budget.held(), 0);
        meter.read(16);
        meter.control_done(10);
        assert_eq!(meter.started_ms.load(Ordering::Relaxed), 0);
        meter.read(100);
        drop(guard);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn the_newest_large_holder_is_closed_not_the_small_one() {
        let budget = budget(200_000);
        let _a = budget.open("127.0.0.1:1".parse().unwrap());
        let _b = budget.open("127.0.0.1:2".parse().unwrap());
        let _c = budget.open("127.0.0.1:3".parse().unwrap());
        let a = budget.take("127.0.0.1:1", true).unwrap();
        let b = budget.take("127.0.0.1:2", true).unwrap();
        let c = budget.take("127.0.0.1:3", true).unwrap();
        b.read(99_000);
        c.read(2_000);
        a.read(100_000);
        assert!(c.readable(), "a small frame is never the one closed");
        assert!(!b.readable(), "the newest large holder is");
        assert!(a.readable(), "the one growing is older");
        a.read(1_000);
        assert!(a.readable(), "b is about to give its part back");
    }

    #[test]
    fn an_unidentified_connection_reads_little() {
        let budget = budget(1 << 20);
        let _guard = budget.open("127.0.0.1:1".parse().unwrap());
        let meter = budget.take("127.0.0.1:1", false).unwrap();
        meter.read(900);
        assert!(meter.readable());
        meter.message_done();
        meter.identified();
        meter.read(5_000);
        assert!(meter.readable());
        let _other = budget.open("127.0.0.1:2".parse().unwrap());
        let other = budget.take("127.0.0.1:2", false).unwrap();
        other.read(1_001);
        assert!(!other.readable());
    }
}
