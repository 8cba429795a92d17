//! Wall-clock time in milliseconds since the Unix epoch, the unit of every `at_ms` on the wire.
//! A neutral home, so that clients (the console) need not reach into the server for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
