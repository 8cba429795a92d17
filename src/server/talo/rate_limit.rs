//! The Talo socket's per-connection request limit, apart from the socket so that the clock is an
//! input and every boundary can be tested exactly.
//!
//! Talo documents 25 requests a second before a player is identified and 250 after. Each request
//! over the limit earns a RATE_LIMIT_EXCEEDED warning frame; once three warnings have been given,
//! the next excess closes the connection (1008, reason RATE_LIMIT_EXCEEDED). A heartbeat
//! (`v1.heartbeat`, or a pong to the server's ping) forgives one warning, as upstream's
//! `SocketConnection.handleHeartbeat` does (TaloDev/backend `src/socket/socketConnection.ts`);
//! otherwise warnings last as long as the connection. The two limits are settings
//! ([`super::TaloSettings`]); upstream runs with other numbers (300 and 3600 a minute), the
//! documented 25 and 250 a second are the defaults.

use std::time::{Duration, Instant};

use crate::server::rate_limit::FixedWindow;

pub const UNIDENTIFIED_PER_SECOND: u32 = 25;
pub const IDENTIFIED_PER_SECOND: u32 = 250;
pub const WARNINGS_BEFORE_CLOSE: u32 = 3;
const WINDOW: Duration = Duration::from_secs(1);

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer with a RATE_LIMIT_EXCEEDED frame and drop the request.
    Warn,
    /// Close 1008 RATE_LIMIT_EXCEEDED.
    Close,
}

#[derive(Debug, Clone)]
pub struct SocketRateLimit {
    window: FixedWindow,
    warnings: u32,
    unidentified: u32,
    identified: u32,
}

impl SocketRateLimit {
    /// The documented limits.
    pub fn new(now: Instant) -> SocketRateLimit {
        SocketRateLimit::with_limits(now, UNIDENTIFIED_PER_SECOND, IDENTIFIED_PER_SECOND)
    }

    pub fn with_limits(now: Instant, unidentified: u32, identified: u32) -> SocketRateLimit {
        SocketRateLimit {
            window: FixedWindow::new(WINDOW, now),
            warnings: 0,
            unidentified,
            identified,
        }
    }

    /// A heartbeat: one warning fewer.
    pub fn forgive(&mut self) {
        self.warnings = self.warnings.saturating_sub(1);
    }

    /// Count one request arriving at `now`.
    pub fn check(&mut self, now: Instant, identified: bool) -> Verdict {
        let limit = if identified {
            self.identified
        } else {
            self.unidentified
        };
        if self.window.hit(now) <= limit {
            return Verdict::Allow;
        }
        if self.warnings >= WARNINGS_BEFORE_CLOSE {
            return Verdict::Close;
        }
        self.warnings += 1;
        Verdict::Warn
    }

    pub fn warnings(&self) -> u32 {
        self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(limit: &mut SocketRateLimit, at: Instant, identified: bool, n: u32) -> Vec<Verdict> {
        (0..n).map(|_| limit.check(at, identified)).collect()
    }

    #[test]
    fn twenty_five_a_second_before_identifying() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        let verdicts = burst(&mut limit, start, false, 26);
        assert!(verdicts[..25].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(verdicts[25], Verdict::Warn);
    }

    #[test]
    fn two_hundred_fifty_a_second_once_identified() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        let verdicts = burst(&mut limit, start, true, 251);
        assert!(verdicts[..250].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(verdicts[250], Verdict::Warn);
    }

    #[test]
    fn three_warnings_then_the_fourth_excess_closes() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        let verdicts = burst(&mut limit, start, false, 29);
        assert_eq!(
            &verdicts[25..],
            &[Verdict::Warn, Verdict::Warn, Verdict::Warn, Verdict::Close]
        );
        assert_eq!(limit.warnings(), 3);
    }

    #[test]
    fn a_new_second_starts_a_new_window_but_keeps_the_warnings() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        assert_eq!(burst(&mut limit, start, false, 26)[25], Verdict::Warn);
        let just_before = start + Duration::from_millis(999);
        assert_eq!(limit.check(just_before, false), Verdict::Warn);
        let next_second = start + WINDOW;
        let verdicts = burst(&mut limit, next_second, false, 27);
        assert!(verdicts[..25].iter().all(|v| *v == Verdict::Allow));
        assert_eq!(&verdicts[25..], &[Verdict::Warn, Verdict::Close]);
    }

    #[test]
    fn a_heartbeat_forgives_one_warning() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        let verdicts = burst(&mut limit, start, false, 28);
        assert_eq!(&verdicts[25..], &[Verdict::Warn; 3]);
        limit.forgive();
        assert_eq!(limit.warnings(), 2);
        assert_eq!(limit.check(start, false), Verdict::Warn);
        assert_eq!(limit.check(start, false), Verdict::Close);
        let mut fresh = SocketRateLimit::new(start);
        fresh.forgive();
        assert_eq!(fresh.warnings(), 0);
    }

    #[test]
    fn limits_are_settings() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::with_limits(start, 2, 5);
        assert_eq!(
            burst(&mut limit, start, false, 3),
            [Verdict::Allow, Verdict::Allow, Verdict::Warn]
        );
    }

    #[test]
    fn identifying_mid_window_raises_the_limit_at_once() {
        let start = Instant::now();
        let mut limit = SocketRateLimit::new(start);
        burst(&mut limit, start, false, 25);
        let verdicts = burst(&mut limit, start, true, 225);
        assert!(verdicts.iter().all(|v| *v == Verdict::Allow));
        assert_eq!(limit.check(start, true), Verdict::Warn);
    }
}
