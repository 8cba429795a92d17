//! Admin bans: who may not connect, until when.
//!
//! A ban matches an identity (a Signal Fish player name, a Talo player identifier, a pub/sub
//! peer id; within one app or every app) or an IP address. Bans are looked up through two
//! indexes (identity, address), never by walking the list, and only when at least one ban is
//! in force ([`BanStore`] keeps that count in an atomic), so a server without bans pays one atomic
//! load per connection.
//!
//! How each dialect refuses a banned connection:
//! - Signal Fish: an identity ban (the player name, within the app) answers JoinRoom with
//!   `RoomJoinFailed BANNED` ("Player is banned from this room", upstream's text for its own
//!   room bans), JoinAsSpectator with `SpectatorJoinFailed BANNED`, and a Reconnect into the
//!   player's seat with `ReconnectionFailed BANNED`. An address ban answers Authenticate with
//!   `AuthenticationError UNAUTHORIZED`
//!   (upstream: "Access denied by the app-ID handshake policy", the closest documented code to
//!   "this client may not connect") and closes 1000 `unregistered`, as every refused
//!   Authenticate does.
//! - pub/sub, Talo socket, Flow: HTTP 403 before the upgrade, body
//!   `{"message":"Banned: …","errorCode":"BANNED"}` (for pub/sub, an identity ban matches the
//!   `peerId` of a token).
//! - Talo HTTP: the same 403 on every endpoint for an address ban, and on identify, login and
//!   socket-token for a banned player identifier. A Talo socket identifies with the socket
//!   token those hand out, so a banned identifier gets no new socket; live ones (whose
//!   identity is the bare identifier) are kicked. A socket token handed out before the ban
//!   still identifies once.
//!
//! Live peers matching a new ban are kicked with 4020 `admin_disconnect`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::protocol::admin::{BanInfo, BanTarget};

/// The longest a ban may last: 90 days. A longer one is a config change, not a ban.
pub const MAX_BAN_MS: u64 = 90 * 24 * 3_600_000;

/// The longest reason, in bytes: it is shown to the kicked peer and written to the audit log.
pub const MAX_REASON_BYTES: usize = 200;

/// The body of every HTTP 403 refusing a banned client (the catalog's `talo-http:BANNED`).
pub fn http_body(ban: &BanInfo) -> String {
    serde_json::json!({
        "message": format!("Banned: {}", ban.reason),
        "errorCode": "BANNED",
    })
    .to_string()
}

/// HTTP 403 for a banned client, counted and shown to admins like every error response.
pub fn refuse_http(hub: &crate::server::hub::Hub, ban: &BanInfo) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = http_body(ban);
    hub.record_http_error(
        crate::catalog::Dialect::TaloHttp,
        "BANNED",
        format!("403 {body}"),
    );
    (
        axum::http::StatusCode::FORBIDDEN,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The ban on a client's address, as an HTTP 403 ready to send.
pub fn address_refusal(
    hub: &crate::server::hub::Hub,
    addr: std::net::SocketAddr,
) -> Option<axum::response::Response> {
    hub.bans()
        .address(addr.ip())
        .map(|ban| refuse_http(hub, &ban))
}

/// The path and query of an upgrade, as the flight recorder keeps it.
pub fn path_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned())
}

/// An address as a ban names it: IPv4-mapped IPv6 addresses are the IPv4 address.
pub fn ip_of(text: &str) -> Option<IpAddr> {
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}

/// Check a ban command's target and reason; returns the target as stored.
pub fn check(target: &BanTarget, duration_ms: u64, reason: &str) -> Result<BanTarget, String> {
    if duration_ms == 0 || duration_ms > MAX_BAN_MS {
        return Err(format!(
            "duration_ms must be within 1..={MAX_BAN_MS} (90 days)"
        ));
    }
    if reason.trim().is_empty() {
        return Err("a ban needs a reason".to_owned());
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(format!(
            "the reason is {} bytes; at most {MAX_REASON_BYTES} are kept",
            reason.len()
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err("the reason must be one line of printable text".to_owned());
    }
    match target {
        BanTarget::Identity { app, identity } => {
            if identity.trim().is_empty() || identity.len() > 256 {
                return Err("the identity must be 1 to 256 bytes".to_owned());
            }
            Ok(BanTarget::Identity {
                app: app.clone().filter(|a| !a.is_empty()),
                identity: identity.clone(),
            })
        }
        BanTarget::Address { ip } => match ip_of(ip) {
            Some(parsed) => Ok(BanTarget::Address {
                ip: parsed.to_string(),
            }),
            None => Err(format!("{ip:?} is not an IP address")),
        },
    }
}

/// The bans in force, behind a lock of their own: connections look a ban up without the hub's
/// lock, and only while at least one ban is in force (an atomic count says so).
///
/// Changed only by the hub while it holds its own lock, so that a change and its numbered
/// admin delta happen together and a snapshot lists exactly the bans its deltas describe. Lock
/// order: the hub's state, then this; nothing here calls out while holding it.
#[derive(Debug, Default)]
pub struct BanStore {
    bans: Mutex<Bans>,
    active: AtomicUsize,
}

impl BanStore {
    /// A poisoned lock means a panic mid-change; the indexes are updated by plain inserts and
    /// removes, so they are still usable.
    fn lock(&self) -> MutexGuard<'_, Bans> {
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self, bans: &Bans) {
        self.active.store(bans.len(), Ordering::Relaxed);
    }

    pub fn in_force(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// The ban in force on a client address, if any; free while no ban is in force.
    pub fn address(&self, ip: IpAddr) -> Option<BanInfo> {
        if !self.in_force() {
            return None;
        }
        self.lock().address(ip, crate::clock::now_ms()).cloned()
    }

    /// The ban in force on an identity within an app, if any; free while no ban is in force.
    pub fn identity(&self, app: Option<&str>, identity: &str) -> Option<BanInfo> {
        if !self.in_force() {
            return None;
        }
        self.lock()
            .identity(app, identity, crate::clock::now_ms())
            .cloned()
    }

    /// Bans in force, oldest first, and the last id handed out (what the data folder keeps).
    pub fn list(&self) -> (Vec<BanInfo>, u64) {
        let bans = self.lock();
        (bans.list(), bans.next_id())
    }

    pub fn allocate_id(&self) -> u64 {
        self.lock().allocate_id()
    }

    /// Bans read from the data folder at start; those whose time is up are dropped.
    pub fn restore(&self, restored: Vec<BanInfo>, next_id: u64, now_ms: u64) {
        let mut bans = self.lock();
        for ban in restored.into_iter().filter(|b| b.until_ms > now_ms) {
            bans.insert(ban);
        }
        bans.set_next_id(next_id);
        self.changed(&bans);
    }

    pub fn insert(&self, ban: BanInfo) {
        let mut bans = self.lock();
        bans.insert(ban);
        self.changed(&bans);
    }

    pub fn remove(&self, id: u64) -> Option<BanInfo> {
        let mut bans = self.lock();
        let removed = bans.remove(id);
        self.changed(&bans);
        removed
    }

    /// Remove and return the bans whose time is up; free while no ban is in force.
    pub fn expire(&self, now_ms: u64) -> Vec<BanInfo> {
        if !self.in_force() {
            return Vec::new();
        }
        let mut bans = self.lock();
        let expired = bans.expire(now_ms);
        self.changed(&bans);
        expired
    }
}

#[derive(Debug, Default)]
pub struct Bans {
    by_id: BTreeMap<u64, BanInfo>,
    identities: HashMap<String, Vec<u64>>,
    addresses: HashMap<IpAddr, Vec<u64>>,
    next_id: u64,
}

impl Bans {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The id the next ban gets (ids are never reused, across restarts too).
    pub fn allocate_id(&mut self) -> u64 {
        self.next_id = self
            .next_id
            .max(self.by_id.keys().max().copied().unwrap_or(0))
            + 1;
        self.next_id
    }

    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn set_next_id(&mut self, id: u64) {
        self.next_id = self.next_id.max(id);
    }

    pub fn insert(&mut self, ban: BanInfo) {
        match &ban.target {
            BanTarget::Identity { identity, .. } => {
                self.identities
                    .entry(identity.clone())
                    .or_default()
                    .push(ban.id);
            }
            BanTarget::Address { ip } => {
                if let Some(ip) = ip_of(ip) {
                    self.addresses.entry(ip).or_default().push(ban.id);
                }
            }
        }
        self.next_id = self.next_id.max(ban.id);
        self.by_id.insert(ban.id, ban);
    }

    pub fn remove(&mut self, id: u64) -> Option<BanInfo> {
        let ban = self.by_id.remove(&id)?;
        match &ban.target {
            BanTarget::Identity { identity, .. } => {
                if let Some(ids) = self.identities.get_mut(identity) {
                    ids.retain(|i| *i != id);
                    if ids.is_empty() {
                        self.identities.remove(identity);
                    }
                }
            }
            BanTarget::Address { ip } => {
                if let Some(ip) = ip_of(ip) {
                    if let Some(ids) = self.addresses.get_mut(&ip) {
                        ids.retain(|i| *i != id);
                        if ids.is_empty() {
                            self.addresses.remove(&ip);
                        }
                    }
                }
            }
        }
        Some(ban)
    }

    /// The ban in force on `identity` in `app`, if any.
    pub fn identity(&self, app: Option<&str>, identity: &str, now_ms: u64) -> Option<&BanInfo> {
        self.identities
            .get(identity)?
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .find(|ban| {
                ban.until_ms > now_ms
                    && matches!(&ban.target, BanTarget::Identity { app: banned, .. }
                        if banned.is_none() || banned.as_deref() == app)
            })
    }

    pub fn address(&self, ip: IpAddr, now_ms: u64) -> Option<&BanInfo> {
        self.addresses
            .get(&ip.to_canonical())?
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .find(|ban| ban.until_ms > now_ms)
    }

    /// Remove and return the bans whose time is up.
    pub fn expire(&mut self, now_ms: u64) -> Vec<BanInfo> {
        let expired: Vec<u64> = self
            .by_id
            .values()
            .filter(|ban| ban.until_ms <= now_ms)
            .map(|ban| ban.id)
            .collect();
        expired
            .into_iter()
            .filter_map(|id| self.remove(id))
            .collect()
    }

    /// Bans in force, oldest first.
    pub fn list(&self) -> Vec<BanInfo> {
        self.by_id.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ban(id: u64, target: BanTarget, until_ms: u64) -> BanInfo {
        BanInfo {
            id,
            target,
            reason: "r".into(),
            by: "t".into(),
            created_at_ms: 0,
            until_ms,
        }
    }

    #[test]
    fn bans_are_found_by_index_and_expire() {
        let mut bans = Bans::default();
        bans.insert(ban(
            1,
            BanTarget::Identity {
                app: Some("demo".into()),
                identity: "Bob".into(),
            },
            100,
        ));
        bans.insert(ban(
            2,
            BanTarget::Address {
                ip: "10.0.0.1".into(),
            },
            200,
        ));
        assert!(bans.identity(Some("demo"), "Bob", 50).is_some());
        assert!(bans.identity(Some("other"), "Bob", 50).is_none());
        assert!(bans.identity(Some("demo"), "Bob", 100).is_none());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(bans.address(mapped, 50).map(|b| b.id), Some(2));
        assert_eq!(bans.allocate_id(), 3);
        let expired = bans.expire(150);
        assert_eq!(expired.len(), 1);
        assert_eq!(bans.len(), 1);
        assert!(bans.remove(2).is_some());
        assert_eq!(bans.len(), 0);
    }

    #[test]
    fn a_ban_command_is_checked() {
        let who = BanTarget::Identity {
            app: None,
            identity: "x".into(),
        };
        assert!(check(&who, 0, "r").is_err());
        assert!(check(&who, MAX_BAN_MS + 1, "r").is_err());
        assert!(check(&who, 1000, " ").is_err());
        assert!(check(&who, 1000, &"r".repeat(201)).is_err());
        assert!(check(&who, 1000, "a\nb").is_err());
        assert!(check(&BanTarget::Address { ip: "nope".into() }, 1000, "r").is_err());
        assert_eq!(
            check(
                &BanTarget::Address {
                    ip: "::ffff:127.0.0.1".into()
                },
                1000,
                "r"
            )
            .unwrap(),
            BanTarget::Address {
                ip: "127.0.0.1".into()
            }
        );
    }
}
