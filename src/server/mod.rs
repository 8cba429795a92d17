//! The bundled server: one listener, one hub, a handler per dialect, the admin endpoint.
//!
//! | path | what |
//! |---|---|
//! | `GET /v1?key=…` / `?token=…` (upgrade) | pub/sub relay ([`pubsub`]) |
//! | `GET /v2/ws`, `GET /v3/ws` (upgrade) | Signal Fish ([`signal_fish`]) |
//! | `GET /v1/ws` (upgrade) | Flow streams ([`flow`]) |
//! | `GET /?ticket=…`, `/talo?ticket=…` (upgrade) | Talo socket ([`talo::socket`]) |
//! | `POST /v1/socket-tickets`, `GET /v1/players/identify`, `POST /v1/players/socket-token`, `POST /v1/players/auth/login` | Talo HTTP ([`talo::http`]) |
//! | `GET /admin` (upgrade) | the admin peer ([`admin`]) |
//! | `POST /v1/tokens`, `DELETE /v1/peers/{id}` | pub/sub REST ([`http`]) |
//! | `GET /health`, `GET /metrics` | operations ([`http`]) |
//!
//! The entry point takes its I/O as arguments: [`Server::bind`] takes a bound listener (the
//! binary passes `--listen`, tests pass `127.0.0.1:0`) and [`Server::serve`] a shutdown
//! future. [`spawn`] does both for embedding (tests, the console's embedded mode).
//!
//! The parts, in the order a connection meets them:
//! - [`listener`]: the accept loop: `TCP_NODELAY`, connection caps, header timeout, shutdown.
//! - [`access`]: credentials (admin, viewer, app key) and `Origin`, checked before an upgrade.
//! - [`connection`]: the one connection lifecycle every dialect runs; a dialect supplies a
//!   [`connection::Session`] with its protocol logic only.
//! - [`peer`]: a peer's handle (outbox with its byte budget, counters, flags) shared by `Arc`.
//! - [`hub`]: the numbered admin deltas and the snapshot (its `mod.rs`), with a file per part:
//!   the registry of peers, apps, channels, subscriptions, delivery, faults, probes, the
//!   history of closed peers and rooms, the rooms admins see, ban changes.
//! - [`recorder`]: every peer's last frames in and out (admin `frames` and `export`).
//! - [`bans`]: admin bans in their own store, and how each dialect refuses a banned client.
//! - [`rate_limit`]: the fixed window and token bucket the dialects map to their own codes.
//! - the dialects ([`signal_fish`], [`talo`], [`flow`], [`pubsub`]), [`admin`], [`http`],
//!   [`probe`], [`persist`], [`token`], [`config`].
//! - [`broker`]: how a dialect reaches the other nodes: it publishes its own messages on its
//!   namespace and registers their handler (`pubsub::remote`, `talo::remote`,
//!   `signal_fish::tunnel`); [`cluster`] is the Redis link that carries them, with liveness,
//!   the consoles' view of every node and admin commands, and names no dialect.

pub mod access;
pub(crate) mod admin;
pub(crate) mod auth_failures;
pub(crate) mod bans;
pub(crate) mod broker;
pub(crate) mod cluster;
/// The cluster's wire messages (the bus's envelopes, and each dialect's messages they carry),
/// for the fuzz target that reads them back; the rest of the cluster stays inside the server.
#[doc(hidden)]
pub mod cluster_wire {
    pub use super::broker::Topic;
    pub use super::cluster::bus::{Body, Envelope};
    pub use super::pubsub::remote::{Membership, PubsubMessage, RemotePeer};
    pub use super::signal_fish::tunnel::{TunnelMessage, TunnelOpen};
    pub use super::talo::remote::FanOut;
}
pub mod config;
pub(crate) mod connection;
pub(crate) mod fds;
pub mod flow;
pub(crate) mod frames;
pub(crate) mod host_check;
pub(crate) mod http;
pub(crate) mod hub;
pub(crate) mod keepalive;
pub(crate) mod listener;
pub mod peer;
pub mod persist;
pub(crate) mod probe;
pub mod pubsub;
pub(crate) mod rate_limit;
pub(crate) mod recorder;
pub(crate) mod signal_fish;
pub mod talo;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use self::broker::Topic;
use self::config::Config;
use self::hub::Hub;
use self::persist::Persist;
use crate::protocol::routes;

/// The header a probe connection presents so the server can recognise its own probes.
pub use crate::protocol::routes::PROBE_HEADER;

/// The probe nonce a connection presents, if it is one of the server's own probes.
pub fn probe_nonce(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(PROBE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// How long shutdown waits for peers to take their close frames.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where the admin token, app statuses and the audit log live.
    pub data_dir: PathBuf,
    /// Use this admin token instead of the stored (or generated) one.
    pub admin_token: Option<String>,
    /// Deltas buffered per console before it is sent a fresh snapshot instead
    /// (default [`hub::EVENT_CAPACITY`]).
    pub admin_buffer: Option<usize>,
    /// Watch only: every admin command that acts is refused, whatever the token.
    pub readonly: bool,
}

/// What every handler shares.
pub struct Shared {
    pub hub: Hub,
    pub admin_token: String,
    /// Admin consoles may watch but not act (`serve --readonly`).
    pub readonly: bool,
    pub persist: Persist,
    pub presence: pubsub::PresenceListeners,
    /// Signal Fish rooms; admin room commands go to them directly.
    pub signal_fish: Arc<signal_fish::rooms::Rooms>,
    /// Talo tickets, tokens, sessions and aliases.
    pub talo: talo::Talo,
    /// The transactions sent to the simulated Flow chain.
    pub flow_ledger: flow::transactions::Ledger,
    /// An address of this server reachable from itself (the listen address, with an
    /// unspecified IP replaced by loopback), for probes.
    pub loopback: SocketAddr,
    /// Flipped once at shutdown; admin connections close on it.
    pub stopping: watch::Sender<bool>,
    /// Open sockets, for the connection caps.
    pub admission: Arc<listener::Admission>,
    /// This node's link to the other nodes (`cluster` in the config), if any: liveness, the
    /// consoles' view of every node, admin commands, room claims.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// The dialects' messages to the other nodes, through the cluster's link (alone: none).
    pub broker: broker::Broker,
    /// The other nodes' pub/sub peers and memberships, as they announced them.
    pub pubsub_elsewhere: pubsub::directory::Directory,
    /// Signal Fish players whose room is on another node, and players of other nodes whose
    /// room is here.
    pub tunnels: Arc<signal_fish::tunnel::Tunnels>,
    /// The certificate and key when the server speaks TLS (`tls` in the config).
    pub tls: Option<Arc<crate::tls::ServerTls>>,
}

/// Builds the routes a server answers on from what its handlers share.
pub(crate) type Routes = Box<dyn FnOnce(Arc<Shared>) -> Router + Send>;

pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    admin_token_path: Option<PathBuf>,
    /// Routes other than the dialects' (`relaydeck proxy` forwards instead of serving).
    routes: Option<Routes>,
}

impl Server {
    /// Prepare a server on a bound listener: load persisted state, settle the admin token.
    pub async fn bind(
        listener: TcpListener,
        config: Config,
        options: ServerOptions,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        // HTTP and Redis clients that build their own TLS configuration (reqwest's
        // `Client::new`, the redis crate) take the process default; ring is the one compiled in.
        crate::tls::install_default_provider();
        // A certificate that cannot be used is said before anything else is set up.
        let tls = match config.tls.pair().map_err(anyhow::Error::msg)? {
            Some((cert, key)) => {
                Some(crate::tls::ServerTls::load(cert, key).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let statuses = persist::load_statuses(&options.data_dir).map_err(anyhow::Error::msg)?;
        let persist = Persist::start(options.data_dir.clone()).map_err(|e| {
            anyhow::anyhow!(
                "cannot use the data folder {}: {e}",
                options.data_dir.display()
            )
        })?;
        let (admin_token, admin_token_path) =
            persist::admin_token(&options.data_dir, options.admin_token).map_err(|e| {
                anyhow::anyhow!(
                    "cannot store the admin token in {}: {e}",
                    options.data_dir.display()
                )
            })?;
        let mut loopback = addr;
        if loopback.ip().is_unspecified() {
            loopback.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let cluster = if config.cluster.enabled() {
            Some(cluster::Cluster::connect(&config.cluster).await?)
        } else {
            None
        };
        let broker = match &cluster {
            Some(cluster) => broker::Broker::linked(Arc::clone(cluster) as Arc<dyn broker::Link>),
            None => broker::Broker::alone(),
        };
        let tunnels = Arc::new(signal_fish::tunnel::Tunnels::default());
        broker.register(
            signal_fish::tunnel::TunnelMessage::NAMESPACE,
            Arc::new(signal_fish::tunnel::Remote(Arc::clone(&tunnels))),
        );
        broker.register(
            pubsub::remote::PubsubMessage::NAMESPACE,
            Arc::new(pubsub::remote::Remote),
        );
        broker.register(
            talo::remote::FanOut::NAMESPACE,
            Arc::new(talo::remote::Remote),
        );
        let (stopping, _) = watch::channel(false);
        let rooms = Arc::new(signal_fish::rooms::Rooms::new(config.signal_fish.clone()));
        let talo = talo::Talo::new(&config);
        let hub = Hub::new(
            config,
            addr.to_string(),
            &statuses,
            options.admin_buffer.unwrap_or(hub::EVENT_CAPACITY),
        );
        let (bans, last_ban_id) =
            persist::load_bans(&options.data_dir).map_err(anyhow::Error::msg)?;
        hub.restore_bans(bans, last_ban_id);
        let shared = Arc::new(Shared {
            hub,
            signal_fish: rooms,
            talo,
            flow_ledger: flow::transactions::Ledger::default(),
            admin_token,
            readonly: options.readonly,
            persist,
            presence: pubsub::PresenceListeners::default(),
            loopback,
            stopping,
            admission: Arc::new(listener::Admission::default()),
            cluster,
            broker,
            pubsub_elsewhere: pubsub::directory::Directory::default(),
            tunnels,
            tls,
        });
        Ok(Server {
            listener,
            shared,
            admin_token_path,
            routes: None,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    /// The server's TLS, whose [`crate::tls::ServerTls::reload`] takes a renewed certificate.
    pub fn tls(&self) -> Option<Arc<crate::tls::ServerTls>> {
        self.shared.tls.clone()
    }

    /// The routes alone, without the listener's admission and connection handling: requests
    /// can then be handed to the handlers in-process, without a socket per request (the HTTP
    /// fuzz target in `tests/fuzz/` sends a million).
    #[doc(hidden)]
    pub fn router(&self) -> Router {
        router(self.shared.clone())
    }

    /// Answer on `routes` instead of the dialects' routes; admission, TLS, the hub and
    /// shutdown stay the server's.
    pub(crate) fn with_routes(mut self, routes: Routes) -> Server {
        self.routes = Some(routes);
        self
    }

    /// What the handlers share, for routes given with [`Server::with_routes`].
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Where the admin token is stored, unless it was given explicitly.
    pub fn admin_token_path(&self) -> Option<&PathBuf> {
        self.admin_token_path.as_ref()
    }

    /// Serve until `shutdown` completes; then peers are told to go away and given a bounded
    /// time to take their close frames.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let shared = self.shared;
        let ticker = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(1));
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    let swept = shared.signal_fish.sweep(&shared.hub);
                    shared.hub.record_rooms(swept.events());
                    drop(swept);
                    shared.hub.emit_stats();
                }
            })
        };
        let cluster_tasks = shared
            .cluster
            .as_ref()
            .map(|cluster| cluster.start(&shared))
            .unwrap_or_default();
        let router = match self.routes {
            Some(routes) => routes(shared.clone()),
            None => router(shared.clone()),
        };
        let draining = shared.clone();
        let drain = async move {
            tracing::info!("shutting down: closing every peer");
            draining.hub.begin_shutdown();
            let _ = draining.stopping.send(true);
            if tokio::time::timeout(DRAIN_TIMEOUT, draining.hub.peers_drained())
                .await
                .is_err()
            {
                tracing::warn!(
                    peers = draining.hub.peer_count(),
                    "peers still open after the drain timeout"
                );
            }
        };
        let mut security = shared.hub.config().security.clone();
        fds::fit(&mut security, fds::raise_limit());
        let served = listener::serve(
            self.listener,
            router,
            security,
            shared.admission.clone(),
            shared.tls.clone(),
            shutdown,
            drain,
        )
        .await;
        ticker.abort();
        // The heartbeat stops before the goodbye, so it cannot bring the node back.
        for task in cluster_tasks {
            task.abort();
        }
        if let Some(cluster) = &shared.cluster {
            cluster.leave().await;
        }
        served.map_err(Into::into)
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(routes::PUBSUB, get(pubsub::upgrade))
        .route(routes::FLOW, get(flow::upgrade))
        .route(routes::SIGNAL_FISH, get(signal_fish::upgrade_v2))
        .route(routes::SIGNAL_FISH_V3, get(signal_fish::upgrade_v3))
        .route(routes::TALO_ROOT, get(talo::socket::upgrade))
        .route(routes::TALO, get(talo::socket::upgrade))
        .route(routes::TALO_SOCKET_TICKETS, post(talo::http::socket_ticket))
        .route(routes::TALO_IDENTIFY, get(talo::http::identify))
        .route(routes::TALO_SOCKET_TOKEN, post(talo::http::socket_token))
        .route(routes::TALO_LOGIN, post(talo::http::login))
        .route(routes::ADMIN, get(admin::upgrade))
        .route(routes::PUBSUB_TOKENS, post(http::mint_token))
        .route(routes::PUBSUB_PEER, delete(http::kick_peer))
        .route(routes::HEALTH, get(http::health))
        .route(routes::METRICS, get(http::metrics))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(host_check::HostPolicy::new(
                &shared.hub.info().listen,
                &shared.hub.config().security.allowed_hosts,
            )),
            host_check::check,
        ))
        .with_state(shared)
}

/// A server running in the background of this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub admin_token: String,
    /// Set when the server speaks TLS.
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    shared: Arc<Shared>,
}

impl RunningServer {
    /// Error codes this server sent that the catalog lacks (`dialect:code`, times sent).
    pub fn uncatalogued_errors(&self) -> Vec<(String, u64)> {
        self.shared.hub.uncatalogued_errors()
    }

    /// Stop the server and wait until it has finished shutting down.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// Bind `listen` and serve in a background task.
pub async fn spawn(
    listen: SocketAddr,
    config: Config,
    options: ServerOptions,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(listen).await?;
    let server = Server::bind(listener, config, options).await?;
    spawn_bound(server)
}

/// Serve a prepared server in a background task.
pub(crate) fn spawn_bound(server: Server) -> anyhow::Result<RunningServer> {
    let addr = server.local_addr()?;
    let admin_token = server.admin_token().to_owned();
    let tls = server.tls();
    let shared = server.shared.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    Ok(RunningServer {
        addr,
        admin_token,
        tls,
        stop: Some(stop),
        task,
        shared,
    })
}
