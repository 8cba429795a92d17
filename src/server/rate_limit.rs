//! The two rate limiters the dialects use, with the clock as an input so every boundary can be
//! tested exactly. Each dialect maps a limiter's answer to its own code: Signal Fish counts a
//! fixed minute (RATE_LIMIT_EXCEEDED, then close 4006), Talo a fixed second (warnings, then
//! close 1008) and a fixed minute over HTTP (429), the pub/sub relay a token bucket (close
//! 4011).

use std::time::{Duration, Instant};

/// Counts events in consecutive windows of a fixed length.
#[derive(Debug, Clone)]
pub struct FixedWindow {
    length: Duration,
    start: Instant,
    count: u32,
}

impl FixedWindow {
    pub fn new(length: Duration, now: Instant) -> FixedWindow {
        FixedWindow {
            length,
            start: now,
            count: 0,
        }
    }

    /// Count one event at `now`; returns how many the current window holds, this one included.
    pub fn hit(&mut self, now: Instant) -> u32 {
        if self.rolled_over(now) {
            self.start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count
    }

    /// True when `now` is past the current window (the next hit opens a new one).
    pub fn rolled_over(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.start) >= self.length
    }

    /// How long until the current window ends.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.length
            .saturating_sub(now.saturating_duration_since(self.start))
    }
}

/// Allows `rate` events a second on average and bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_second: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate_per_second),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Take one token at `now`; false when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_window_counts_until_it_rolls_over() {
        let start = Instant::now();
        let mut window = FixedWindow::new(Duration::from_secs(1), start);
        assert_eq!(window.hit(start), 1);
        assert_eq!(window.hit(start + Duration::from_millis(999)), 2);
        assert_eq!(
            window.remaining(start + Duration::from_millis(999)),
            Duration::from_millis(1)
        );
        assert!(window.rolled_over(start + Duration::from_secs(1)));
        assert_eq!(window.hit(start + Duration::from_secs(1)), 1);
    }

    #[test]
    fn a_token_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, 200, start);
        assert_eq!((0..250).filter(|_| bucket.take(start)).count(), 200);
        // 10 ms at 100 a second is one more token.
        let later = start + Duration::from_millis(10);
        assert!(bucket.take(later));
        assert!(!bucket.take(later));
        // It never holds more than the burst, however long it rests.
        let rested = later + Duration::from_secs(3600);
        assert_eq!((0..250).filter(|_| bucket.take(rested)).count(), 200);
    }
}
