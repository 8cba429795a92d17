//! Failed admin authentications, limited per address.
//!
//! Without a limit an admin token could be guessed at ~92,000 tries a second on
//! `DELETE /v1/peers`, and nothing was logged. An address gets [`MAX_FAILURES`] wrong or
//! missing tokens per [`WINDOW`]; past that every request from it that needs the admin or
//! viewer token is answered 429 with `Retry-After`, before the token is even compared (the
//! right token included: a guesser cannot learn it found one). Each failure is logged with
//! the address, never with what was presented. The table is bounded: past [`MAX_ADDRESSES`]
//! the windows that ended go, then the oldest.
//!
//! Keyed by the address as the server sees it, so behind a proxy all clients share one
//! window (see SECURITY.md on proxies); IPv6 addresses are keyed by their /64, the block one
//! host usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Failed authentications one address may have per window.
pub const MAX_FAILURES: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once.
pub const MAX_ADDRESSES: usize = 4_096;

#[derive(Default)]
pub struct AuthFailures {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The key of an address: IPv4 as it is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl AuthFailures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The 429 for `ip` if it has failed too often, with how long until it may try again.
    pub fn refusal(&self, ip: IpAddr) -> Option<Response> {
        let now = Instant::now();
        let windows = self.lock();
        let (start, failures) = windows.get(&address_key(ip))?;
        let ends = *start + WINDOW;
        if *failures < MAX_FAILURES || now >= ends {
            return None;
        }
        let retry = ends.duration_since(now).as_secs().max(1);
        Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry.to_string())],
                "too many failed authentications from this address; retry later\n",
            )
                .into_response(),
        )
    }

    /// A wrong or missing token from `ip` on `endpoint`.
    pub fn failed(&self, ip: IpAddr, endpoint: &str) {
        let now = Instant::now();
        let key = address_key(ip);
        let failures = {
            let mut windows = self.lock();
            if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&key) {
                windows.retain(|_, (start, _)| now < *start + WINDOW);
                if windows.len() >= MAX_ADDRESSES {
                    let oldest = windows
                        .iter()
                        .min_by_key(|(_, (start, _))| *start)
                        .map(|(ip, _)| *ip);
                    if let Some(oldest) = oldest {
                        windows.remove(&oldest);
                    }
                }
            }
            let entry = windows.entry(key).or_insert((now, 0));
            if now >= entry.0 + WINDOW {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            entry.1
        };
        tracing::warn!(address = %ip, endpoint, failures, "failed admin authentication");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_address_is_refused_past_its_failures_and_others_are_not() {
        let failures = AuthFailures::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(failures.refusal(a).is_none());
            failures.failed(a, "test");
        }
        let refused = failures.refusal(a).unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key(header::RETRY_AFTER));
        assert!(failures.refusal(b).is_none());
    }

    #[test]
    fn ipv6_addresses_share_their_64_and_the_table_stays_bounded() {
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let other: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(address_key(one), address_key(other));
        let failures = AuthFailures::default();
        for n in 0..(MAX_ADDRESSES as u32 + 10) {
            failures.failed(IpAddr::V4(n.into()), "test");
        }
        assert!(failures.lock().len() <= MAX_ADDRESSES);
    }
}
