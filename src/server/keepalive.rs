//! Server pings, with each upstream's rule for a peer that stops answering. No I/O: the
//! connection loop asks [`Pinger`] when to wake and what to do then.
//!
//! | dialect | ping | dropped when | upstream |
//! |---|---|---|---|
//! | Flow | every `flow.ping_interval_ms` (9 s) | no pong for `flow.pong_wait_ms` (10 s) | flow-go `websockets/config.go`, `controller.go`: a read deadline that only a pong moves |
//! | Talo | every `talo.ping_interval_ms` (30 s) | no pong since the previous ping, at the next tick | Talo `src/socket/index.ts` `heartbeat`, `socketConnection.ts` `alive` |
//!
//! Either way the socket is dropped without a close frame (flow-go closes the connection on
//! the failed read, Talo calls `ws.terminate()`), so the client sees 1006.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    /// Ping every `every`; drop a peer whose last pong (or the connection's start) is
    /// `pong_wait` old.
    Deadline {
        every: Duration,
        pong_wait: Duration,
    },
    /// Ping every `every`; drop, at a tick, a peer that has not answered since the last ping.
    SinceLastTick { every: Duration },
}

/// What a connection does at [`Pinger::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Ping,
    Wait,
    /// The peer stopped answering.
    Drop,
}

#[derive(Debug, Clone)]
pub struct Pinger {
    rule: Keepalive,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
    answered: bool,
    /// When the unanswered ping went out, for its round trip.
    pinged_at: Option<Instant>,
}

impl Pinger {
    pub fn new(rule: Keepalive, now: Instant) -> Pinger {
        let (every, pong_deadline) = match rule {
            Keepalive::Deadline { every, pong_wait } => (every, Some(now + pong_wait)),
            Keepalive::SinceLastTick { every } => (every, None),
        };
        Pinger {
            rule,
            next_ping: now + every,
            pong_deadline,
            answered: true,
            pinged_at: None,
        }
    }

    fn every(&self) -> Duration {
        match self.rule {
            Keepalive::Deadline { every, .. } | Keepalive::SinceLastTick { every } => every,
        }
    }

    /// When [`Pinger::tick`] has something to do.
    pub fn next(&self) -> Instant {
        match self.pong_deadline {
            Some(deadline) => deadline.min(self.next_ping),
            None => self.next_ping,
        }
    }

    /// A pong arrived; returns the round trip when it answers a ping of ours (a client may
    /// also send pongs unasked, as heartbeats).
    pub fn answered(&mut self, now: Instant) -> Option<Duration> {
        self.answered = true;
        if let Keepalive::Deadline { pong_wait, .. } = self.rule {
            self.pong_deadline = Some(now + pong_wait);
        }
        self.pinged_at.take().map(|sent| now.duration_since(sent))
    }

    pub fn tick(&mut self, now: Instant) -> Tick {
        if self.pong_deadline.is_some_and(|deadline| now >= deadline) {
            return Tick::Drop;
        }
        if now < self.next_ping {
            return Tick::Wait;
        }
        if matches!(self.rule, Keepalive::SinceLastTick { .. }) && !self.answered {
            return Tick::Drop;
        }
        self.answered = false;
        self.pinged_at = Some(now);
        // A ticker: the next ping one period after this one was due, or after now when the
        // loop was late by more than a period.
        self.next_ping = (self.next_ping + self.every()).max(now + self.every() / 2);
        Tick::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn flow_drops_a_peer_whose_pong_is_late_and_keeps_one_that_answers() {
        let start = Instant::now();
        let rule = Keepalive::Deadline {
            every: S * 9,
            pong_wait: S * 10,
        };
        let mut pinger = Pinger::new(rule, start);
        assert_eq!(pinger.next(), start + S * 9);
        assert_eq!(pinger.tick(start + S), Tick::Wait);
        assert_eq!(pinger.tick(start + S * 9), Tick::Ping);
        assert_eq!(pinger.next(), start + S * 10);
        assert_eq!(pinger.tick(start + S * 10), Tick::Drop);

        let mut answering = Pinger::new(rule, start);
        assert_eq!(answering.answered(start), None, "a pong nobody asked for");
        for round in 1..20u32 {
            let at = start + S * 9 * round;
            assert_eq!(answering.tick(at), Tick::Ping, "round {round}");
            assert_eq!(answering.answered(at + S / 10), Some(S / 10));
            assert_eq!(
                answering.answered(at + S / 5),
                None,
                "one round trip per ping"
            );
        }
    }

    #[test]
    fn talo_drops_at_the_tick_after_an_unanswered_ping() {
        let start = Instant::now();
        let mut pinger = Pinger::new(Keepalive::SinceLastTick { every: S * 30 }, start);
        assert_eq!(pinger.tick(start + S * 30), Tick::Ping);
        pinger.answered(start + S * 31);
        assert_eq!(pinger.tick(start + S * 60), Tick::Ping);
        assert_eq!(pinger.next(), start + S * 90);
        assert_eq!(pinger.tick(start + S * 90), Tick::Drop);
    }
}
