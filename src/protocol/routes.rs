//! Every path the server serves, named once: the router mounts these, and every client (the
//! console's link, probes, replay, the demo traffic) dials them.

use crate::catalog::Dialect;

/// pub/sub relay WebSocket (`?token=` or `?key=`).
pub const PUBSUB: &str = "/v1";
/// Flow streams WebSocket.
pub const FLOW: &str = "/v1/ws";
/// Signal Fish, protocol v2.
pub const SIGNAL_FISH: &str = "/v2/ws";
/// Signal Fish, protocol v3.
pub const SIGNAL_FISH_V3: &str = "/v3/ws";
/// Talo socket at the root, where Talo's own clients connect (`?ticket=`).
pub const TALO_ROOT: &str = "/";
/// Talo socket under its own name, beside the other dialects (`?ticket=`).
pub const TALO: &str = "/talo";
pub const TALO_SOCKET_TICKETS: &str = "/v1/socket-tickets";
pub const TALO_IDENTIFY: &str = "/v1/players/identify";
pub const TALO_SOCKET_TOKEN: &str = "/v1/players/socket-token";
pub const TALO_LOGIN: &str = "/v1/players/auth/login";
/// The admin peer: the console's endpoint.
pub const ADMIN: &str = "/admin";
pub const PUBSUB_TOKENS: &str = "/v1/tokens";
/// `DELETE` kicks a peer; `{id}` is the router's placeholder.
pub const PUBSUB_PEER: &str = "/v1/peers/{id}";
pub const HEALTH: &str = "/health";
pub const METRICS: &str = "/metrics";

/// The header by which the server recognises a probe connection it opened against itself.
pub const PROBE_HEADER: &str = "x-relaydeck-probe";

/// The WebSocket path a dialect is served on.
///
/// # Errors
/// Talo's HTTP API and plain WebSocket close codes have no WebSocket endpoint of their own.
pub fn dialect_path(dialect: Dialect) -> Result<&'static str, String> {
    match dialect {
        Dialect::Pubsub => Ok(PUBSUB),
        Dialect::SignalFish => Ok(SIGNAL_FISH),
        Dialect::Flow => Ok(FLOW),
        Dialect::Talo => Ok(TALO),
        Dialect::TaloHttp | Dialect::Websocket => Err(format!(
            "{dialect} has no WebSocket endpoint to open a probe on"
        )),
    }
}

/// `ws://{addr}{path}` for a server at `addr` (`host:port`).
pub fn ws_url(addr: impl std::fmt::Display, path: &str) -> String {
    format!("ws://{addr}{path}")
}
