//! `relaydeck proxy`: the console in front of a server relaydeck does not run.
//!
//! The proxy is a [`Server`] whose routes forward instead of serving dialects: admission, TLS,
//! the hub, the flight recorder, the admin endpoint and shutdown are the server's own, so a
//! console connected to the proxy's `/admin` sees each proxied connection as a peer and acts
//! on it with the same commands. Each WebSocket upgrade is dialled on the upstream first (a
//! refusal there is the client's refusal), then runs the server's one connection lifecycle
//! with a [`relay::Relay`] session, which passes frames both ways unchanged and reads the
//! dialect's frames for identity, app, room and errors ([`signal_fish`]). Plain HTTP requests
//! are forwarded as they are ([`http`]).

pub mod command;
mod http;
mod relay;
mod signal_fish;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::catalog::Dialect;
use crate::protocol::routes;
use crate::server::config::Config;
use crate::server::hub::NewPeer;
use crate::server::{RunningServer, Server, ServerOptions, Shared};

/// Request headers a proxied upgrade carries to the upstream: credentials, origin, cookies
/// and the client's name. Hop-by-hop and handshake headers are the proxy's own.
const FORWARDED_UPGRADE_HEADERS: &[&str] = &["authorization", "cookie", "origin", "user-agent"];

/// The largest message a proxied client may send: the proxy does not know each upstream's
/// own limit, so it leaves the answer to a large one to the upstream, up to the size the
/// WebSocket client accepts in return.
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Where proxied connections go.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `ws://HOST[:PORT]` or `wss://HOST[:PORT]`, without a path.
    base: String,
}

impl Upstream {
    /// Check a `ws(s)://HOST[:PORT]` URL; a path or query on it is refused (requests keep
    /// their own).
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("wss://"))
            .ok_or_else(|| format!("{url}: the upstream must be a ws:// or wss:// URL"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{url}: give the upstream as ws(s)://HOST[:PORT]; requests keep their own path"
            ));
        }
        let scheme = if url.starts_with("wss://") {
            "wss"
        } else {
            "ws"
        };
        Ok(Upstream {
            base: format!("{scheme}://{authority}"),
        })
    }

    /// The upstream URL of a WebSocket request for `path_and_query`.
    fn ws_url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// The upstream URL of a plain HTTP request for `path_and_query`.
    fn http_url(&self, path_and_query: &str) -> String {
        let http = match self.base.strip_prefix("wss://") {
            Some(rest) => format!("https://{rest}"),
            None => format!("http://{}", self.base.trim_start_matches("ws://")),
        };
        format!("{http}{path_and_query}")
    }

    pub fn url(&self) -> &str {
        &self.base
    }
}

/// What the forwarding routes share.
struct ProxyState {
    shared: Arc<Shared>,
    upstream: Upstream,
    rooms: signal_fish::Rooms,
    http: reqwest::Client,
}

/// Prepare a proxy on a bound listener: a server whose routes forward to `upstream`.
pub async fn bind(
    listener: TcpListener,
    upstream: Upstream,
    config: Config,
    options: ServerOptions,
) -> anyhow::Result<Server> {
    let server = Server::bind(listener, config, options).await?;
    let http = crate::tls::http_client().map_err(anyhow::Error::msg)?;
    let state = Arc::new(ProxyState {
        shared: server.shared(),
        upstream,
        rooms: signal_fish::Rooms::default(),
        http,
    });
    Ok(server.with_routes(Box::new(move |shared| routes(shared, state))))
}

/// Bind `listen` and proxy to `upstream` in a background task.
pub async fn spawn(
    listen: SocketAddr,
    upstream: Upstream,
    config: Config,
    options: ServerOptions,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(listen).await?;
    let server = bind(listener, upstream, config, options).await?;
    crate::server::spawn_bound(server)
}

fn routes(shared: Arc<Shared>, state: Arc<ProxyState>) -> Router {
    // The server's `Host` check (DNS rebinding) guards what is forwarded as well.
    let hosts = Arc::new(crate::server::host_check::HostPolicy::new(
        &shared.hub.info().listen,
        &shared.hub.config().security.allowed_hosts,
    ));
    let admin = Router::new()
        .route(routes::ADMIN, get(crate::server::admin::upgrade))
        .with_state(shared);
    let forward = Router::new().fallback(forward).with_state(state);
    admin
        .merge(forward)
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            crate::server::host_check::check,
        ))
}

/// The dialect a proxied connection speaks, by its path (as relaydeck's own routes are laid
/// out, which are the upstreams' own).
fn dialect_of(path: &str) -> Dialect {
    match path {
        routes::SIGNAL_FISH | routes::SIGNAL_FISH_V3 => Dialect::SignalFish,
        routes::FLOW => Dialect::Flow,
        routes::PUBSUB => Dialect::Pubsub,
        routes::TALO_ROOT | routes::TALO => Dialect::Talo,
        _ => Dialect::Websocket,
    }
}

fn is_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !is_upgrade(&request) {
        return http::forward(&state.http, &state.upstream, request).await;
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let path = request.uri().path().to_owned();
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let mut dial = crate::wsclient::Request::new(state.upstream.ws_url(&path_and_query));
    for name in FORWARDED_UPGRADE_HEADERS {
        for value in parts.headers.get_all(*name) {
            if let Ok(value) = value.to_str() {
                dial = dial.header(*name, value);
            }
        }
    }
    dial = dial.header("x-forwarded-for", remote.ip().to_string());
    let upstream = match dial.connect().await {
        Ok(client) => client.socket,
        Err(crate::wsclient::ConnectError::Refused { status, body }) => {
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            return (status, body).into_response();
        }
        Err(error) => {
            tracing::info!(%error, "the upstream could not be reached");
            return (
                axum::http::StatusCode::BAD_GATEWAY,
                format!("the upstream could not be reached: {error}\n"),
            )
                .into_response();
        }
    };
    let dialect = dialect_of(&path);
    let shared = state.shared.clone();
    let rooms = state.rooms.clone();
    crate::server::connection::configure(upgrade, MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let new = NewPeer {
                dialect,
                app: None,
                identity: None,
                addr: remote.to_string(),
                probe_nonce: None,
            };
            let hub_shared = shared.clone();
            crate::server::connection::serve(
                socket,
                shared,
                path_and_query,
                new,
                None,
                |_| (1013, "try again later".to_owned()),
                move |handle| relay::Relay::start(handle, hub_shared, upstream, dialect, rooms),
            )
            .await;
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn upstreams_are_a_scheme_and_an_address() {
        let up = Upstream::parse("ws://127.0.0.1:3536/").unwrap();
        assert_eq!(up.ws_url("/v2/ws?x=1"), "ws://127.0.0.1:3536/v2/ws?x=1");
        assert_eq!(up.http_url("/health"), "http://127.0.0.1:3536/health");
        let up = Upstream::parse("wss://example.org").unwrap();
        assert_eq!(up.http_url("/v1"), "https://example.org/v1");
        assert!(Upstream::parse("http://example.org").is_err());
        assert!(Upstream::parse("ws://example.org/v2/ws").is_err());
        assert!(Upstream::parse("ws://").is_err());
    }

    #[test]
    fn the_path_names_the_dialect() {
        assert_eq!(dialect_of("/v2/ws"), Dialect::SignalFish);
        assert_eq!(dialect_of("/v3/ws"), Dialect::SignalFish);
        assert_eq!(dialect_of("/v1/ws"), Dialect::Flow);
        assert_eq!(dialect_of("/elsewhere"), Dialect::Websocket);
    }
}
