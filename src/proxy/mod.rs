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
mod identity;
mod relay;
mod signal_fish;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
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

/// The `proxy` section of the config: upstreams by path, for a proxy in front of several
/// servers (a Signal Fish server and a Talo backend, say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// The longest `path` that a request's path starts with (whole segments) picks its
    /// upstream; `--upstream` takes the requests no entry matches.
    pub upstreams: Vec<ProxyRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRoute {
    /// A path prefix: `/v2/ws`, `/v1`, `/`.
    pub path: String,
    /// `ws://HOST[:PORT]` or `wss://HOST[:PORT]`.
    pub upstream: String,
}

impl ProxySettings {
    pub fn is_unset(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// Every path absolute, every upstream a `ws(s)://` address.
    pub fn check(&self) -> Result<(), String> {
        for route in &self.upstreams {
            if !route.path.starts_with('/') {
                return Err(format!(
                    "proxy.upstreams: the path {:?} must start with /",
                    route.path
                ));
            }
            Upstream::parse(&route.upstream).map_err(|e| format!("proxy.upstreams: {e}"))?;
        }
        Ok(())
    }
}

/// Where each request goes: the config's routes by path, then the default.
#[derive(Debug, Clone)]
pub struct Upstreams {
    routes: Vec<(String, Upstream)>,
    default: Option<Upstream>,
}

impl Upstreams {
    /// The config's routes and `default` (`--upstream`); at least one upstream is needed.
    pub fn new(settings: &ProxySettings, default: Option<Upstream>) -> Result<Upstreams, String> {
        let routes = settings
            .upstreams
            .iter()
            .map(|r| {
                Ok((
                    r.path.trim_end_matches('/').to_owned(),
                    Upstream::parse(&r.upstream)?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if routes.is_empty() && default.is_none() {
            return Err("give --upstream, or upstreams in the config's proxy section".to_owned());
        }
        Ok(Upstreams { routes, default })
    }

    /// `ws://a` or `/v1 → ws://a, the rest → ws://b`, for the start-up line.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .routes
            .iter()
            .map(|(path, up)| {
                format!(
                    "{} → {}",
                    if path.is_empty() { "/" } else { path },
                    up.url()
                )
            })
            .collect();
        match (&self.default, parts.is_empty()) {
            (Some(up), true) => return up.url().to_owned(),
            (Some(up), false) => parts.push(format!("the rest → {}", up.url())),
            (None, _) => {}
        }
        parts.join(", ")
    }

    fn pick(&self, path: &str) -> Option<&Upstream> {
        self.routes
            .iter()
            .filter(|(prefix, _)| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, upstream)| upstream)
            .or(self.default.as_ref())
    }
}

impl From<Upstream> for Upstreams {
    fn from(upstream: Upstream) -> Upstreams {
        Upstreams {
            routes: Vec::new(),
            default: Some(upstream),
        }
    }
}

/// What the forwarding routes share.
struct ProxyState {
    shared: Arc<Shared>,
    upstreams: Upstreams,
    rooms: signal_fish::Rooms,
    http: reqwest::Client,
}

/// Prepare a proxy on a bound listener: a server whose routes forward to `upstream`.
pub async fn bind(
    listener: TcpListener,
    upstreams: impl Into<Upstreams>,
    config: Config,
    options: ServerOptions,
) -> anyhow::Result<Server> {
    let server = Server::bind(listener, config, options).await?;
    server.shared().hub.allow_path_faults();
    let http = crate::tls::http_client().map_err(anyhow::Error::msg)?;
    let state = Arc::new(ProxyState {
        shared: server.shared(),
        upstreams: upstreams.into(),
        rooms: signal_fish::Rooms::default(),
        http,
    });
    Ok(server.with_routes(Box::new(move |shared| routes(shared, state))))
}

/// Bind `listen` and proxy to `upstream` in a background task.
pub async fn spawn(
    listen: SocketAddr,
    upstream: impl Into<Upstreams>,
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
    // An address banned from the console is refused here as the server refuses it, before
    // the upstream hears of it (its live peers were kicked when the ban was made).
    if let Some(banned) = crate::server::bans::address_refusal(&state.shared.hub, remote) {
        return banned;
    }
    let Some(upstream) = state.upstreams.pick(request.uri().path()) else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "no upstream for this path\n",
        )
            .into_response();
    };
    if !is_upgrade(&request) {
        return http::forward(&state.shared.hub, &state.http, upstream, request).await;
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
    let mut dial = crate::wsclient::Request::new(upstream.ws_url(&path_and_query));
    for name in FORWARDED_UPGRADE_HEADERS {
        for value in parts.headers.get_all(*name) {
            if let Ok(value) = value.to_str() {
                dial = dial.header(*name, value);
            }
        }
    }
    dial = dial.header("x-forwarded-for", remote.ip().to_string());
    // The upstream chooses among the client's subprotocols; the client gets its choice.
    let offered: Vec<&str> = parts
        .headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !offered.is_empty() {
        dial = dial.subprotocols(offered.join(", "));
    }
    let (upstream, chosen) = match dial.connect().await {
        Ok(client) => (client.socket, client.subprotocol),
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
    let mut upgrade = crate::server::connection::configure(upgrade, MAX_MESSAGE_BYTES);
    if let Some(chosen) = chosen {
        upgrade = upgrade.protocols([chosen]);
    }
    upgrade
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
    fn the_longest_whole_segment_prefix_picks_the_upstream() {
        let settings = ProxySettings {
            upstreams: vec![
                ProxyRoute {
                    path: "/v1".into(),
                    upstream: "ws://pubsub:1".into(),
                },
                ProxyRoute {
                    path: "/v1/ws/".into(),
                    upstream: "wss://flow:2".into(),
                },
            ],
        };
        assert!(settings.check().is_ok());
        let fallback = Upstream::parse("ws://default:3").unwrap();
        let upstreams = Upstreams::new(&settings, Some(fallback)).unwrap();
        let url = |path: &str| upstreams.pick(path).map(|u| u.url().to_owned());
        assert_eq!(url("/v1").as_deref(), Some("ws://pubsub:1"));
        assert_eq!(url("/v1/ws").as_deref(), Some("wss://flow:2"));
        assert_eq!(url("/v1/socket-tickets").as_deref(), Some("ws://pubsub:1"));
        assert_eq!(url("/v1x").as_deref(), Some("ws://default:3"));
        assert_eq!(url("/v2/ws").as_deref(), Some("ws://default:3"));
        let bare = Upstreams::new(&settings, None).unwrap();
        assert!(bare.pick("/v2/ws").is_none());
        assert!(Upstreams::new(&ProxySettings::default(), None).is_err());
        let relative = ProxySettings {
            upstreams: vec![ProxyRoute {
                path: "v1".into(),
                upstream: "ws://a".into(),
            }],
        };
        assert!(relative.check().is_err());
    }

    #[test]
    fn the_path_names_the_dialect() {
        assert_eq!(dialect_of("/v2/ws"), Dialect::SignalFish);
        assert_eq!(dialect_of("/v3/ws"), Dialect::SignalFish);
        assert_eq!(dialect_of("/v1/ws"), Dialect::Flow);
        assert_eq!(dialect_of("/elsewhere"), Dialect::Websocket);
    }
}
