//! The server's configuration: apps, their credentials and limits.
//!
//! # Format
//! JSON. Unknown fields are refused, so a typo never silently falls back to a default.
//! ```text
//! {
//!   "apps": [
//!     {
//!       "id": "demo", "name": "Demo", "status": "active",
//!       "secret_key": "sk_demo",
//!       "limits": {"max_connections": 500, "message_quota": {"max_messages": 100000, "period_secs": 3600}},
//!       "pubsub_keys": [
//!         {"id": "pk_demo", "channel_patterns": ["demo/**"], "actions": ["publish", "subscribe", "presence", "send"]}
//!       ]
//!     }
//!   ]
//! }
//! ```
//! Each dialect reads its own credentials from an app; an app without them simply cannot be
//! used in that dialect.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::protocol::admin::AppStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub signal_fish: SignalFishSettings,
    /// Every peer's outbox budget: when relayed frames are dropped and when a peer that
    /// stopped reading is closed.
    #[serde(default)]
    pub outbox: crate::server::peer::OutboxLimits,
    /// Who may connect from where, and how many (see SECURITY.md).
    #[serde(default)]
    pub security: SecuritySettings,
    /// Flow streams: inactivity timeout and how strictly requests are read.
    #[serde(default)]
    pub flow: crate::server::flow::FlowSettings,
    /// Talo socket: rate limits and request signatures.
    #[serde(default)]
    pub talo: crate::server::talo::TaloSettings,
    /// Several nodes over one Redis (unset: one process, no Redis).
    #[serde(default)]
    pub cluster: crate::server::cluster::ClusterSettings,
    /// How many closed peers and rooms the server remembers, and for how long.
    #[serde(default)]
    pub history: HistorySettings,
    /// The flight recorder: every peer's last frames (see SECURITY.md for who may read them).
    #[serde(default)]
    pub recorder: crate::server::recorder::RecorderSettings,
    /// Serve https:// and wss:// with this certificate and key (unset: plain text).
    #[serde(default, skip_serializing_if = "TlsSettings::is_unset")]
    pub tls: TlsSettings,
    /// `relaydeck proxy`: upstreams by path (`serve` does not read it).
    #[serde(default, skip_serializing_if = "crate::proxy::ProxySettings::is_unset")]
    pub proxy: crate::proxy::ProxySettings,
    #[serde(default, skip_serializing_if = "RuntimeSettings::is_unset")]
    pub runtime: RuntimeSettings,
}

/// Config key `runtime`: the threads that run connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Worker threads (absent: one per core, or tokio's `TOKIO_WORKER_THREADS`). One thread
    /// spends less CPU per delivery — no frame hands over between threads — and carries at
    /// most one core's worth of traffic: for a server that shares its machine, or whose CPU
    /// bill matters more than its peak rate (docs/PERFORMANCE.md has the figures).
    pub worker_threads: Option<usize>,
}

impl RuntimeSettings {
    /// More threads than this only add switching.
    const MAX_WORKER_THREADS: usize = 1024;

    pub fn is_unset(&self) -> bool {
        self.worker_threads.is_none()
    }

    fn validate(&self) -> Result<(), String> {
        match self.worker_threads {
            Some(n) if n == 0 || n > Self::MAX_WORKER_THREADS => Err(format!(
                "runtime: worker_threads must be within 1..={}",
                Self::MAX_WORKER_THREADS
            )),
            _ => Ok(()),
        }
    }

    /// The runtime `serve` and `proxy` run on.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = self.worker_threads {
            builder.worker_threads(threads);
        }
        builder.enable_all().build()
    }
}

/// Config key `tls`: PEM files of the certificate chain and its private key. Relative paths
/// in a config file are taken from the file's folder. SIGHUP reads both again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsSettings {
    pub fn is_unset(&self) -> bool {
        self.cert.is_none() && self.key.is_none()
    }

    /// Both files, when TLS is on.
    ///
    /// # Errors
    /// One file without the other.
    pub fn pair(&self) -> Result<Option<(&Path, &Path)>, String> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => {
                Err("tls: a certificate without its key (tls.key, --tls-key)".into())
            }
            (None, Some(_)) => {
                Err("tls: a key without its certificate (tls.cert, --tls-cert)".into())
            }
        }
    }
}

/// Config key `history`: the bounds of the closed-peer and closed-room history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    pub max_entries: u32,
    pub retain_ms: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        let limits = crate::protocol::admin::HistoryLimits::default();
        HistorySettings {
            max_entries: limits.max_entries,
            retain_ms: limits.retain_ms,
        }
    }
}

impl HistorySettings {
    /// The longest the history may be kept: a week.
    pub const MAX_RETAIN_MS: u64 = 7 * 24 * 3_600_000;
    /// The most entries: each holds a peer's recorded frames, so this bounds memory too.
    pub const MAX_ENTRIES: u32 = 100_000;

    pub fn limits(&self) -> crate::protocol::admin::HistoryLimits {
        crate::protocol::admin::HistoryLimits {
            max_entries: self.max_entries,
            retain_ms: self.retain_ms,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=Self::MAX_ENTRIES).contains(&self.max_entries)
            || !(1_000..=Self::MAX_RETAIN_MS).contains(&self.retain_ms)
        {
            return Err(format!(
                "history: max_entries must be within 1..={}, retain_ms within 1000..={}",
                Self::MAX_ENTRIES,
                Self::MAX_RETAIN_MS
            ));
        }
        Ok(())
    }
}

/// Connection admission: browser origins, connection caps, timeouts for idle and slow clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// Browser origins allowed to open sockets (`*` for any). Empty: any origin on the game
    /// endpoints, none on `/admin` and Flow streams.
    pub allowed_origins: Vec<String>,
    /// Host names a loopback-bound server answers besides loopback ones (DNS rebinding;
    /// see [`crate::server::host_check`]).
    pub allowed_hosts: Vec<String>,
    /// Open TCP connections, all clients together (HTTP 503 beyond).
    pub max_connections: usize,
    /// Open TCP connections from one IP address (HTTP 429 beyond).
    pub max_connections_per_ip: usize,
    /// How long a client may take to send its request headers.
    pub header_read_timeout_ms: u64,
    /// A pub/sub, Talo or Flow connection that sends nothing for this long is closed
    /// (Signal Fish has its own `signal_fish.idle_timeout_ms`).
    pub idle_timeout_ms: u64,
    /// How long shutdown waits for peers and HTTP requests before it stops anyway.
    pub shutdown_timeout_ms: u64,
    /// Bytes all WebSocket connections together may hold in messages not yet complete
    /// (see [`crate::server::frames`]).
    pub frame_budget_bytes: usize,
    /// Bytes a WebSocket connection may hold in one message before it has authenticated
    /// (Signal Fish) or identified (Talo socket).
    pub unidentified_read_limit_bytes: usize,
    /// How long a message may take from its first byte to its last; pings in between do
    /// not extend it.
    pub frame_deadline_ms: u64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections: 20_000,
            max_connections_per_ip: 2_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            shutdown_timeout_ms: 5_000,
            frame_budget_bytes: 64 << 20,
            unidentified_read_limit_bytes: 128 << 10,
            frame_deadline_ms: 10_000,
        }
    }
}

/// Server-wide Signal Fish settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalFishSettings {
    /// A connection that has not authenticated by then gets AUTHENTICATION_TIMEOUT, close 4001.
    pub auth_timeout_ms: u64,
    /// A connection that sends no message for this long gets `Error ACTIVITY_TIMEOUT` and
    /// close 4003 activity_timeout (0.12's activity reaper, whose default is 30 s; relaydeck
    /// waits 120 s so that an idle lobby of a client that does not ping survives).
    pub idle_timeout_ms: u64,
    /// A socket on which nothing at all arrives, WebSocket pings included, for this long gets
    /// `Error CONNECTION_IDLE_TIMEOUT` and close 4004 idle_timeout (0.12: 300 s).
    pub socket_idle_timeout_ms: u64,
    /// Refusals and pongs a connection may be sent per minute; past it, `Error
    /// RATE_LIMIT_EXCEEDED` and close 4006 inbound_rate_limited (0.12: 3000).
    pub error_replies_per_minute: u32,
    /// How long a disconnected player's seat is kept for a Reconnect.
    pub reconnect_window_ms: u64,
    /// Largest `GameData.data`, serialized (MESSAGE_TOO_LARGE beyond).
    pub max_game_data_bytes: usize,
    /// Messages per minute per connection (RATE_LIMIT_EXCEEDED beyond, close 4006 at twice).
    pub messages_per_minute: u32,
    /// Spectators per room unless the room says otherwise.
    pub max_spectators: usize,
    /// A room none of whose members sent a message for this long is closed, its members told
    /// `Error ROOM_NOT_FOUND` and closed 4005 `room_inactive` (0.12's `inactive_room_timeout`,
    /// one hour).
    pub inactive_room_timeout_ms: u64,
    /// STUN/TURN servers handed to the members of a WebRTC session in its SessionPlan (0.12's
    /// `session.ice_servers`; none by default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<crate::protocol::signal_fish::IceServer>,
}

impl SignalFishSettings {
    /// As 0.12 checks its own: a timeout of zero would reap every room at once, and an ICE
    /// server without a URL gives clients nothing to gather against.
    fn validate(&self) -> Result<(), String> {
        if self.inactive_room_timeout_ms == 0 {
            return Err("signal_fish.inactive_room_timeout_ms must be positive".to_owned());
        }
        for (index, server) in self.ice_servers.iter().enumerate() {
            if server.urls.is_empty() || server.urls.iter().any(|url| url.trim().is_empty()) {
                return Err(format!(
                    "signal_fish.ice_servers[{index}].urls must list at least one URL, none blank"
                ));
            }
        }
        Ok(())
    }
}

impl Default for SignalFishSettings {
    fn default() -> Self {
        SignalFishSettings {
            auth_timeout_ms: 10_000,
            idle_timeout_ms: 120_000,
            socket_idle_timeout_ms: 300_000,
            error_replies_per_minute: 3_000,
            reconnect_window_ms: 300_000,
            max_game_data_bytes: 16 * 1024,
            messages_per_minute: 600,
            max_spectators: 8,
            inactive_room_timeout_ms: 3_600_000,
            ice_servers: Vec::new(),
        }
    }
}

/// An app's Signal Fish access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalFishApp {
    /// When set, Authenticate must carry this `connect_token`, as signal-fish-server 0.12's
    /// apps that require one: CONNECT_TOKEN_REQUIRED without it, CONNECT_TOKEN_INVALID when
    /// wrong, both AuthenticationErrors that leave the connection open for another try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_token: Option<String>,
    /// relaydeck's addition: when set, Authenticate must carry this `token`
    /// (AUTHENTICATION_REQUIRED without one, INVALID_TOKEN when malformed, UNAUTHORIZED when
    /// wrong; each closes 1000). Clients of apps without it never see these codes.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default = "default_max_rooms")]
    pub max_rooms_per_game: usize,
    /// Older `sdk_version`s get SDK_VERSION_UNSUPPORTED.
    #[serde(default)]
    pub min_sdk_version: Option<String>,
}

fn default_max_rooms() -> usize {
    crate::server::signal_fish::rooms::DEFAULT_MAX_ROOMS_PER_GAME
}

impl Default for SignalFishApp {
    fn default() -> Self {
        SignalFishApp {
            connect_token: None,
            token: None,
            max_rooms_per_game: default_max_rooms(),
            min_sdk_version: Some("0.0.1".to_owned()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub id: String,
    pub name: String,
    /// The status at first start; later changes made by an admin are persisted and win.
    #[serde(default = "active")]
    pub status: AppStatus,
    /// The secret that signs pub/sub tokens (`POST /v1/tokens` takes it as a Bearer key).
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub pubsub_keys: Vec<PubsubKey>,
    /// Signal Fish access; an app without it is unknown to Signal Fish clients.
    #[serde(default)]
    pub signal_fish: Option<SignalFishApp>,
    /// Talo access keys, players and game channels.
    #[serde(default)]
    pub talo: Option<TaloApp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaloApp {
    pub access_keys: Vec<TaloAccessKey>,
    #[serde(default)]
    pub players: Vec<TaloPlayer>,
    #[serde(default)]
    pub channels: Vec<TaloChannel>,
    /// Request verification keys by version (`{"1": "…"}`): when there are any, the game
    /// verifies requests and an identified player's socket frames must be signed
    /// (`<signature>\n<json>`, see `server::talo::signature`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub verification_keys: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaloAccessKey {
    /// The key as clients send it (`Authorization: Bearer <key>`).
    pub key: String,
    /// `read:players`, `write:gameChannels`, … or `*` for every scope.
    pub scopes: Vec<String>,
}

impl TaloAccessKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == "*" || s == scope)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaloPlayer {
    /// `username`, `steam`, … or `talo` for players who log in with a password.
    pub service: String,
    pub identifier: String,
    /// Only for service `talo`: a plain password, hashed with a fresh salt when the server
    /// starts and never kept. Prefer `password_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Only for service `talo`: an Argon2id PHC string (`$argon2id$v=19$…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// Argon2id of `demo-password`, the demo player `bob`'s password.
pub const DEMO_BOB_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Pbu5e+hnSNZCmdppxEkxAg$XZ6m8rnETo8B+DPdtcM64FsrsSC8hemI0CoqyoiBgxM";

/// The longest `outbox.write_delay_ms`: past a game tick's share, gathering frames costs more
/// than the writes it saves.
const MAX_WRITE_DELAY_MS: u64 = 20;

/// The most `outbox.gather_rounds`: each round is one pass of the runtime over its ready
/// tasks, and a frame waits for all of them.
const MAX_GATHER_ROUNDS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaloChannel {
    pub id: u64,
    pub name: String,
    /// Player identifiers.
    #[serde(default)]
    pub members: Vec<String>,
}

fn active() -> AppStatus {
    AppStatus::Active
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Concurrent connections of the app across dialects; beyond it pub/sub refuses with 4010.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How many of them one address may hold (IPv6: one /64), on this node; the same refusal
    /// as `max_connections`. Unset: half of `max_connections`, so that one address cannot take
    /// an app's whole budget. Behind a reverse proxy every client shares the proxy's address:
    /// raise it to `max_connections` there (SECURITY.md).
    #[serde(default)]
    pub max_connections_per_ip: Option<usize>,
    /// Messages (publish and send) per period; beyond it `over_message_quota`.
    #[serde(default)]
    pub message_quota: Option<MessageQuota>,
}

fn default_max_connections() -> usize {
    1000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            max_connections_per_ip: None,
            message_quota: None,
        }
    }
}

impl Limits {
    /// The connections of the app one address may hold.
    pub fn connections_per_address(&self) -> usize {
        self.max_connections_per_ip
            .unwrap_or_else(|| self.max_connections.div_ceil(2))
            .max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageQuota {
    pub max_messages: u64,
    pub period_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubsubKey {
    /// The public key id a client passes as `?key=`.
    pub id: String,
    /// Channels the key may use: `*` is one path segment, `**` any number, `\` escapes.
    pub channel_patterns: Vec<String>,
    pub actions: Vec<PubsubAction>,
    /// Messages a connection on this key may send: a token bucket. Defaults to the documented
    /// 100 a second with bursts of 200.
    #[serde(default)]
    pub rate: PubsubRate,
}

/// A pub/sub connection's message budget (close 4011 when it runs out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PubsubRate {
    pub messages_per_second: u32,
    pub burst: u32,
}

impl Default for PubsubRate {
    fn default() -> Self {
        PubsubRate {
            messages_per_second: 100,
            burst: 200,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PubsubAction {
    Publish,
    Subscribe,
    Presence,
    Send,
}

impl PubsubAction {
    pub const ALL: [PubsubAction; 4] = [
        PubsubAction::Publish,
        PubsubAction::Subscribe,
        PubsubAction::Presence,
        PubsubAction::Send,
    ];

    pub fn id(self) -> &'static str {
        match self {
            PubsubAction::Publish => "publish",
            PubsubAction::Subscribe => "subscribe",
            PubsubAction::Presence => "presence",
            PubsubAction::Send => "send",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: display.clone(),
            source,
        })?;
        let mut config = Config::parse(&text, &display)?;
        if let Some(folder) = path.parent() {
            for file in [&mut config.tls.cert, &mut config.tls.key]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = folder.join(&*file);
                }
            }
        }
        Ok(config)
    }

    /// Parse and check a config; errors name the file and the line and column.
    pub fn parse(text: &str, location: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_str(text).map_err(|e| ConfigError::Invalid {
            path: location.to_owned(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: location.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.cluster.check()?;
        self.proxy.check()?;
        self.tls.pair()?;
        let security = &self.security;
        if security.max_connections == 0
            || security.max_connections_per_ip == 0
            || security.header_read_timeout_ms == 0
            || security.idle_timeout_ms == 0
        {
            return Err(
                "security: max_connections, max_connections_per_ip, header_read_timeout_ms and idle_timeout_ms must be positive"
                    .to_owned(),
            );
        }
        if security.frame_budget_bytes < crate::server::frames::ALLOWANCE
            || security.unidentified_read_limit_bytes < 1024
            || security.frame_deadline_ms == 0
        {
            return Err(format!(
                "security: frame_budget_bytes must be at least {}, unidentified_read_limit_bytes at least 1024, frame_deadline_ms positive",
                crate::server::frames::ALLOWANCE
            ));
        }
        let outbox = &self.outbox;
        if outbox.soft_bytes == 0 || outbox.hard_bytes < outbox.soft_bytes || outbox.stall_ms == 0 {
            return Err(
                "outbox: soft_bytes must be positive, hard_bytes at least soft_bytes, stall_ms positive"
                    .to_owned(),
            );
        }
        // A writer gathering frames makes no progress meanwhile: it must not look stalled.
        if outbox.write_delay_ms > MAX_WRITE_DELAY_MS || outbox.write_delay_ms >= outbox.stall_ms {
            return Err(format!(
                "outbox: write_delay_ms must be at most {MAX_WRITE_DELAY_MS} and less than stall_ms"
            ));
        }
        if outbox.gather_rounds > MAX_GATHER_ROUNDS {
            return Err(format!(
                "outbox: gather_rounds must be at most {MAX_GATHER_ROUNDS}"
            ));
        }
        self.history.validate()?;
        self.recorder.validate()?;
        self.runtime.validate()?;
        self.signal_fish.validate()?;
        let mut app_ids = std::collections::HashSet::new();
        let mut key_ids = std::collections::HashSet::new();
        for app in &self.apps {
            if app.id.trim().is_empty() {
                return Err("an app has an empty id".to_owned());
            }
            if !app_ids.insert(app.id.as_str()) {
                return Err(format!("app id {:?} is used twice", app.id));
            }
            if app.limits.max_connections_per_ip == Some(0) {
                return Err(format!(
                    "app {:?}: limits.max_connections_per_ip must be positive",
                    app.id
                ));
            }
            if let Some(quota) = app.limits.message_quota {
                if quota.period_secs == 0 {
                    return Err(format!(
                        "app {:?}: message_quota.period_secs must be positive",
                        app.id
                    ));
                }
            }
            for player in app.talo.iter().flat_map(|t| &t.players) {
                let who = format!("app {:?}: player {:?}", app.id, player.identifier);
                if player.password.is_some() && player.password_hash.is_some() {
                    return Err(format!("{who}: give password or password_hash, not both"));
                }
                if let Some(phc) = &player.password_hash {
                    crate::server::talo::password::check(phc)
                        .map_err(|e| format!("{who}: password_hash: {e}"))?;
                }
            }
            for key in &app.pubsub_keys {
                if !key_ids.insert(key.id.as_str()) {
                    return Err(format!("pub/sub key {:?} is used twice", key.id));
                }
                for pattern in &key.channel_patterns {
                    crate::server::pubsub::pattern::Pattern::parse(pattern)
                        .map_err(|e| format!("key {:?}: pattern {pattern:?}: {e}", key.id))?;
                }
                if key.rate.messages_per_second == 0 || key.rate.burst == 0 {
                    return Err(format!(
                        "key {:?}: rate.messages_per_second and rate.burst must be positive",
                        key.id
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn app(&self, id: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// The app and key with this pub/sub key id.
    pub fn pubsub_key(&self, key_id: &str) -> Option<(&AppConfig, &PubsubKey)> {
        self.apps.iter().find_map(|app| {
            app.pubsub_keys
                .iter()
                .find(|k| k.id == key_id)
                .map(|key| (app, key))
        })
    }

    /// The demo configuration with short Signal Fish timers (authentication 1 s, activity
    /// 2.5 s, reconnection window 0.8 s), so that sessions reproducing the timer codes replay in
    /// seconds. `relaydeck replay` without `--url` runs each session on a fresh server with it.
    pub fn for_replay() -> Config {
        let mut config = Config::demo();
        config.signal_fish.auth_timeout_ms = 1_000;
        config.signal_fish.idle_timeout_ms = 2_500;
        config.signal_fish.reconnect_window_ms = 800;
        // The seed's Flow unmarshalling errors have a trigger only when requests are read
        // strictly, and every shipped session reproduces one.
        config.flow.strict_requests = true;
        config
    }

    /// The built-in demo configuration, used when no `--config` is given. Every credential in
    /// it is listed in the README.
    pub fn demo() -> Config {
        let all_actions = PubsubAction::ALL.to_vec();
        let signal_fish_only = |id: &str, name: &str, status: AppStatus| AppConfig {
            id: id.to_owned(),
            name: name.to_owned(),
            status,
            secret_key: None,
            limits: Limits::default(),
            pubsub_keys: Vec::new(),
            signal_fish: Some(SignalFishApp::default()),
            talo: None,
        };
        Config {
            signal_fish: SignalFishSettings::default(),
            outbox: Default::default(),
            security: Default::default(),
            flow: Default::default(),
            talo: Default::default(),
            cluster: Default::default(),
            history: Default::default(),
            recorder: Default::default(),
            tls: Default::default(),
            proxy: Default::default(),
            runtime: Default::default(),
            apps: vec![
                AppConfig {
                    id: "demo".to_owned(),
                    name: "Demo".to_owned(),
                    status: AppStatus::Active,
                    secret_key: Some("sk_demo".to_owned()),
                    limits: Limits {
                        max_connections: 1000,
                        max_connections_per_ip: None,
                        message_quota: Some(MessageQuota {
                            max_messages: 1_000_000,
                            period_secs: 3600,
                        }),
                    },
                    pubsub_keys: vec![
                        PubsubKey {
                            id: "pk_demo".to_owned(),
                            channel_patterns: vec!["demo/**".to_owned()],
                            actions: all_actions.clone(),
                            rate: PubsubRate::default(),
                        },
                        PubsubKey {
                            id: "pk_demo_ro".to_owned(),
                            channel_patterns: vec!["demo/public/*".to_owned()],
                            actions: vec![PubsubAction::Subscribe],
                            rate: PubsubRate::default(),
                        },
                    ],
                    signal_fish: Some(SignalFishApp::default()),
                    talo: Some(TaloApp {
                        access_keys: vec![
                            TaloAccessKey {
                                key: "talo_demo_full".to_owned(),
                                scopes: vec!["*".to_owned()],
                            },
                            TaloAccessKey {
                                key: "talo_demo_ro".to_owned(),
                                scopes: [
                                    "read:players",
                                    "read:gameChannels",
                                    "read:playerRelationships",
                                    "read:events",
                                    "read:gameStats",
                                ]
                                .map(str::to_owned)
                                .to_vec(),
                            },
                        ],
                        players: vec![
                            TaloPlayer {
                                service: "username".to_owned(),
                                identifier: "alice".to_owned(),
                                password: None,
                                password_hash: None,
                            },
                            TaloPlayer {
                                service: "talo".to_owned(),
                                identifier: "bob".to_owned(),
                                password: None,
                                password_hash: Some(DEMO_BOB_PASSWORD_HASH.to_owned()),
                            },
                        ],
                        channels: vec![
                            TaloChannel {
                                id: 1,
                                name: "general".to_owned(),
                                members: vec!["alice".to_owned(), "bob".to_owned()],
                            },
                            TaloChannel {
                                id: 2,
                                name: "staff".to_owned(),
                                members: vec![],
                            },
                        ],
                        verification_keys: Default::default(),
                    }),
                },
                AppConfig {
                    id: "suspended-app".to_owned(),
                    name: "Suspended app".to_owned(),
                    status: AppStatus::Suspended,
                    secret_key: Some("sk_suspended".to_owned()),
                    limits: Limits::default(),
                    pubsub_keys: vec![PubsubKey {
                        id: "pk_suspended".to_owned(),
                        channel_patterns: vec!["**".to_owned()],
                        actions: all_actions.clone(),
                        rate: PubsubRate::default(),
                    }],
                    signal_fish: Some(SignalFishApp::default()),
                    talo: None,
                },
                // Small limits, so that the quota and concurrency codes can be reproduced by
                // hand and by the shipped sessions.
                AppConfig {
                    id: "limited-app".to_owned(),
                    name: "Limited app".to_owned(),
                    status: AppStatus::Active,
                    secret_key: Some("sk_limited".to_owned()),
                    limits: Limits {
                        max_connections: 2,
                        // Reproducing the app's own limit by hand takes both from one address.
                        max_connections_per_ip: Some(2),
                        message_quota: Some(MessageQuota {
                            max_messages: 3,
                            period_secs: 3600,
                        }),
                    },
                    pubsub_keys: vec![PubsubKey {
                        id: "pk_limited".to_owned(),
                        channel_patterns: vec!["limited/**".to_owned()],
                        actions: all_actions,
                        rate: PubsubRate::default(),
                    }],
                    signal_fish: Some(SignalFishApp {
                        max_rooms_per_game: 1,
                        ..SignalFishApp::default()
                    }),
                    talo: None,
                },
                signal_fish_only("expired-app", "Expired app", AppStatus::Expired),
                signal_fish_only("revoked-app", "Revoked app", AppStatus::Revoked),
                AppConfig {
                    signal_fish: Some(SignalFishApp {
                        token: Some("sf-demo-token".to_owned()),
                        ..SignalFishApp::default()
                    }),
                    ..signal_fish_only("secure-game", "Secure game", AppStatus::Active)
                },
                AppConfig {
                    signal_fish: Some(SignalFishApp {
                        connect_token: Some("sf-connect-token".to_owned()),
                        ..SignalFishApp::default()
                    }),
                    ..signal_fish_only("tenant-game", "Tenant game", AppStatus::Active)
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_are_taken_from_the_config_files_folder_and_come_in_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apps.json");
        std::fs::write(
            &path,
            r#"{"apps":[],"tls":{"cert":"tls/fullchain.pem","key":"/etc/key.pem"}}"#,
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.tls.cert.as_deref(),
            Some(dir.path().join("tls/fullchain.pem").as_path())
        );
        assert_eq!(config.tls.key.as_deref(), Some(Path::new("/etc/key.pem")));
        let half = Config::parse(r#"{"apps":[],"tls":{"cert":"c.pem"}}"#, "c").unwrap_err();
        assert!(half.to_string().contains("without its key"), "{half}");
        // A config without TLS says nothing about it when written back.
        assert!(!serde_json::to_string(&Config::demo())
            .unwrap()
            .contains("\"tls\""));
    }

    #[test]
    fn the_demo_config_is_valid_and_round_trips() {
        let demo = Config::demo();
        demo.validate().unwrap();
        let text = serde_json::to_string(&demo).unwrap();
        assert_eq!(Config::parse(&text, "demo").unwrap(), demo);
    }

    #[test]
    fn history_and_recorder_are_range_checked() {
        let with = |extra: &str| format!(r#"{{"apps":[],{extra}}}"#);
        let ok = Config::parse(
            &with(r#""history":{"max_entries":10,"retain_ms":60000},"recorder":{"enabled":false}"#),
            "c",
        )
        .unwrap();
        assert_eq!(ok.history.max_entries, 10);
        assert!(!ok.recorder.enabled);
        assert_eq!(ok.recorder.frames_per_peer, 64);
        assert_eq!(
            ok.outbox.write_delay_ms, 0,
            "gathering frames is off by default"
        );
        let delayed = Config::parse(&with(r#""outbox":{"write_delay_ms":20}"#), "c").unwrap();
        assert_eq!(delayed.outbox.write_delay_ms, 20);
        assert_eq!(
            ok.runtime.worker_threads, None,
            "one thread per core unless set"
        );
        let one = Config::parse(&with(r#""runtime":{"worker_threads":1}"#), "c").unwrap();
        assert_eq!(one.runtime.worker_threads, Some(1));
        for bad in [
            r#""history":{"max_entries":0}"#,
            r#""history":{"retain_ms":5}"#,
            r#""recorder":{"frames_per_peer":0}"#,
            r#""recorder":{"bytes_per_peer":100}"#,
            r#""runtime":{"worker_threads":0}"#,
            r#""runtime":{"threads":2}"#,
            r#""recorder":{"budget_bytes":1024}"#,
            r#""recorder":{"enable":true}"#,
            r#""outbox":{"write_delay_ms":21}"#,
            r#""outbox":{"write_delay_ms":5,"stall_ms":5}"#,
            r#""outbox":{"gather_rounds":17}"#,
        ] {
            assert!(Config::parse(&with(bad), "c").is_err(), "{bad}");
        }
    }

    #[test]
    fn signal_fish_ice_servers_and_the_inactivity_timeout_are_checked() {
        let with = |extra: &str| format!(r#"{{"apps":[],"signal_fish":{{{extra}}}}}"#);
        let ok = Config::parse(
            &with(r#""ice_servers":[{"urls":["stun:stun.example.com:3478"]},{"urls":["turn:t.example.com"],"username":"u","credential":"c"}]"#),
            "c",
        )
        .unwrap();
        assert_eq!(ok.signal_fish.ice_servers.len(), 2);
        assert_eq!(ok.signal_fish.inactive_room_timeout_ms, 3_600_000);
        for bad in [
            r#""ice_servers":[{"urls":[]}]"#,
            r#""ice_servers":[{"urls":[" "]}]"#,
            r#""inactive_room_timeout_ms":0"#,
        ] {
            assert!(Config::parse(&with(bad), "c").is_err(), "{bad}");
        }
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_a_location() {
        let typo = r#"{"apps":[{"id":"a","name":"A","statuss":"active"}]}"#;
        let error = Config::parse(typo, "c.json").unwrap_err().to_string();
        assert!(
            error.contains("c.json") && error.contains("statuss"),
            "{error}"
        );

        let duplicate = r#"{"apps":[{"id":"a","name":"A"},{"id":"a","name":"B"}]}"#;
        assert!(Config::parse(duplicate, "c")
            .unwrap_err()
            .to_string()
            .contains("used twice"));

        let pattern = r#"{"apps":[{"id":"a","name":"A","pubsub_keys":[{"id":"k","channel_patterns":["a\\"],"actions":[]}]}]}"#;
        assert!(Config::parse(pattern, "c")
            .unwrap_err()
            .to_string()
            .contains("pattern"));
    }

    #[test]
    fn talo_passwords_are_hashes_or_a_single_plain_password() {
        let player = |fields: &str| {
            format!(
                r#"{{"apps":[{{"id":"a","name":"A","talo":{{"access_keys":[],"players":[{{"service":"talo","identifier":"bob",{fields}}}]}}}}]}}"#
            )
        };
        let plain = Config::parse(&player(r#""password":"pw""#), "c").unwrap();
        let talo = crate::server::talo::Talo::new(&plain);
        assert!(talo.login("a", "bob", "pw").is_some());
        assert!(talo.login("a", "bob", "wrong").is_none());

        let hashed = player(&format!(r#""password_hash":"{DEMO_BOB_PASSWORD_HASH}""#));
        let talo = crate::server::talo::Talo::new(&Config::parse(&hashed, "c").unwrap());
        assert!(talo.login("a", "bob", "demo-password").is_some());

        let not_a_hash = Config::parse(&player(r#""password_hash":"demo-password""#), "c");
        assert!(not_a_hash
            .unwrap_err()
            .to_string()
            .contains("password_hash"));
        let both = player(&format!(
            r#""password":"pw","password_hash":"{DEMO_BOB_PASSWORD_HASH}""#
        ));
        assert!(Config::parse(&both, "c")
            .unwrap_err()
            .to_string()
            .contains("not both"));
    }
}
