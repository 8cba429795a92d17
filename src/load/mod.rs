//! `relaydeck load`: a load generator for WebSocket servers that speak Signal Fish v2 or the
//! pub/sub relay dialect — relaydeck itself or any other implementation (it only needs a URL).
//!
//! # Workloads
//! - [`signal_fish`]: rooms × players, every player sending `GameData` at a rate; the payload
//!   carries the sender, a sequence number and the send time, so receivers measure one-way
//!   latency (same machine, same monotonic clock) and the run counts what was lost.
//! - [`pubsub`]: publishers × subscribers on one channel.
//! - [`idle`]: N authenticated Signal Fish connections; the server's resident memory per
//!   connection (with `--server-pid`).
//!
//! Any of them can attach an admin console (`--attach-admin`) that reads the server's deltas,
//! to measure what watching costs.
//!
//! # Bounds
//! Every run is bounded in time and connections (see the `MAX_*` constants), and refuses a
//! target that is not on this machine unless `--allow-remote` is given: a load generator
//! pointed at someone else's server by a typo is a denial of service.
//!
//! # Cost of the generator
//! Each connection is one task (its reader and writer are joined inside it), frames are
//! built from a pre-serialized template with one allocation, sockets are `TCP_NODELAY`, and a
//! writer that falls behind its schedule feeds every due frame and flushes once. The report
//! carries the generator's own CPU time and how late its senders were, so a run can tell
//! whether the generator rather than the server was the limit.

pub mod idle;
pub mod peer;
pub mod pubsub;
pub mod signal_fish;
pub mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use self::stats::{CpuUse, LatencySummary};

/// Longest measured window of one run.
pub const MAX_DURATION_SECS: f64 = 600.0;
/// Longest warm-up and longest drain.
pub const MAX_WARMUP_SECS: f64 = 60.0;
pub const MAX_DRAIN_SECS: f64 = 30.0;
/// Connections one run may open (a process needs a descriptor for each).
pub const MAX_CONNECTIONS: usize = 20_000;
/// Messages per second per sending connection.
pub const MAX_RATE: f64 = 100_000.0;
/// Largest payload: frames over 64 KiB are refused by both dialects.
pub const MAX_PAYLOAD: usize = 60 * 1024;
/// Connection handshakes in flight at once: a burst beyond the server's accept backlog would
/// measure SYN retransmits, not the server.
const CONNECT_CONCURRENCY: usize = 128;
/// How long one connection may take to connect and finish its dialect's handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(subcommand)]
    pub workload: Workload,
}

#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Signal Fish rooms: every player sends GameData at --rate to the rest of its room.
    Rooms(signal_fish::RoomsArgs),
    /// Pub/sub fan-out: publishers publish at --rate on one channel that subscribers read.
    Pubsub(pubsub::PubsubArgs),
    /// Idle authenticated Signal Fish connections: the server's memory per connection.
    Idle(idle::IdleArgs),
}

/// What every workload takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// The server, `ws://host:port`; each workload adds its dialect's path unless the URL has one.
    #[arg(long, default_value = "ws://127.0.0.1:7878")]
    pub url: String,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    pub allow_remote: bool,
    /// Seconds measured, after the warm-up (at most 600).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts (at most 60).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds to wait after the last send for deliveries still in flight (at most 30).
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// The server's process id, to report its CPU time and resident memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Attach an admin console (`/admin`) that reads the server's deltas during the run.
    #[arg(long)]
    pub attach_admin: bool,
    /// Admin token for --attach-admin.
    #[arg(long, env = "RELAYDECK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file instead (yours, writable by nobody else): unlike
    /// --admin-token, it stays out of the process list.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Worker threads of the generator (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A name for this run in the report.
    #[arg(long)]
    pub label: Option<String>,
    /// The report as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl CommonArgs {
    fn check(&self) -> anyhow::Result<()> {
        let in_range = |value: f64, max: f64| value.is_finite() && (0.0..=max).contains(&value);
        if !in_range(self.duration, MAX_DURATION_SECS) || self.duration <= 0.0 {
            anyhow::bail!("--duration must be more than 0 and at most {MAX_DURATION_SECS} s");
        }
        if !in_range(self.warmup, MAX_WARMUP_SECS) {
            anyhow::bail!("--warmup must be between 0 and {MAX_WARMUP_SECS} s");
        }
        if !in_range(self.drain, MAX_DRAIN_SECS) {
            anyhow::bail!("--drain must be between 0 and {MAX_DRAIN_SECS} s");
        }
        if self.attach_admin && self.admin_token.is_none() {
            anyhow::bail!("--attach-admin needs --admin-token (or RELAYDECK_ADMIN_TOKEN)");
        }
        if self.threads == Some(0) {
            anyhow::bail!("--threads must be at least 1");
        }
        Ok(())
    }

    fn window(&self) -> Window {
        Window {
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
            drain: Duration::from_secs_f64(self.drain),
        }
    }
}

/// The phases of a run, relative to its start.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
}

/// `relaydeck load …`: run one workload on a runtime of its own and print its report.
pub fn main(mut args: LoadArgs) -> anyhow::Result<ExitCode> {
    let common = match &mut args.workload {
        Workload::Rooms(a) => &mut a.common,
        Workload::Pubsub(a) => &mut a.common,
        Workload::Idle(a) => &mut a.common,
    };
    if common.attach_admin {
        common.admin_token = crate::admin_token::resolve(
            common.admin_token.take(),
            common.admin_token_file.as_deref(),
        )
        .map_err(anyhow::Error::msg)?;
    }
    let common = args.common();
    common.check()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = common.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    let json = common.json;
    let output = runtime.block_on(run(args))?;
    let mut out = std::io::stdout().lock();
    let text = if json { output.json()? } else { output.table() };
    writeln!(out, "{text}")?;
    Ok(ExitCode::SUCCESS)
}

/// Run one workload on the current runtime.
pub async fn run(args: LoadArgs) -> anyhow::Result<Output> {
    args.common().check()?;
    match args.workload {
        Workload::Rooms(a) => signal_fish::main(a).await,
        Workload::Pubsub(a) => pubsub::run(&a).await.map(Output::Run),
        Workload::Idle(a) => idle::run(&a).await.map(Output::Run),
    }
}

impl LoadArgs {
    pub fn common(&self) -> &CommonArgs {
        match &self.workload {
            Workload::Rooms(a) => &a.common,
            Workload::Pubsub(a) => &a.common,
            Workload::Idle(a) => &a.common,
        }
    }
}

/// What `main` prints: one run, or the steps of a search.
pub enum Output {
    Run(Box<Report>),
    Search(signal_fish::SearchReport),
}

impl Output {
    pub fn json(&self) -> anyhow::Result<String> {
        let json = match self {
            Output::Run(report) => serde_json::to_string_pretty(report)?,
            Output::Search(search) => serde_json::to_string_pretty(search)?,
        };
        // Close reasons in it come from the server measured.
        Ok(crate::text::printable_json(&json).into_owned())
    }

    pub fn table(&self) -> String {
        match self {
            Output::Run(report) => report.table(),
            Output::Search(search) => search.table(),
        }
    }
}

/// The report of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub url: String,
    /// The workload's own parameters (rooms, players, rate, payload, …).
    pub parameters: serde_json::Value,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Messages per second the workload asked for, over all senders.
    pub offered_per_s: f64,
    /// Time between two messages of one sender.
    pub send_interval_ms: f64,
    /// Measured window only.
    pub sent: u64,
    pub sent_per_s: f64,
    pub expected_deliveries: u64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub lost: u64,
    pub loss_ratio: f64,
    /// One-way latency of the measured deliveries.
    pub latency: LatencySummary,
    /// How late senders were against their schedule (the generator's own delay, or the
    /// server's backpressure through TCP).
    pub send_lag: LatencySummary,
    /// Connections the server closed, by `code reason` (1006: no close frame).
    pub closed_by_server: BTreeMap<String, u64>,
    /// Connections that failed for another reason, by message.
    pub errors: BTreeMap<String, u64>,
    pub generator: ProcessUse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ProcessUse>,
    /// Microseconds of the server's CPU (user + system) per delivery in the measured window:
    /// the cost of the data path, independent of how busy the rest of the machine was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Every process on the machine over the measured window, the two above included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<CpuUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<AdminReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<idle::IdleReport>,
    /// Whether the generator kept up, in a sentence.
    pub verdict: String,
}

/// CPU and memory of one process over the measured window.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessUse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<u64>,
}

impl Report {
    /// Fill in the rates, the loss and the verdict from the counts.
    pub fn finish(&mut self) {
        let secs = self.duration_s.max(f64::EPSILON);
        self.sent_per_s = self.sent as f64 / secs;
        self.deliveries_per_s = self.deliveries as f64 / secs;
        self.lost = self.expected_deliveries.saturating_sub(self.deliveries);
        self.loss_ratio = if self.expected_deliveries == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected_deliveries as f64
        };
        self.server_cpu_us_per_delivery = self
            .server
            .and_then(|s| s.cpu)
            .filter(|_| self.deliveries > 0)
            .map(|c| c.cpu_seconds * 1e6 / self.deliveries as f64);
        self.verdict = self.assess();
    }

    /// Was the generator the limit? Not when it sent on schedule. Otherwise the biggest
    /// consumer of CPU is blamed: other processes when the machine was busy mostly with
    /// them, else the server or the generator, whichever used more.
    fn assess(&self) -> String {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as f64)
            .unwrap_or(1.0);
        let generator = self.generator.cpu.map(|c| c.cores).unwrap_or(0.0);
        let server = self.server.and_then(|s| s.cpu).map(|c| c.cores);
        let machine = self.machine.map(|c| c.cores);
        let mut busy = format!("generator {generator:.2}");
        if let Some(server) = server {
            busy.push_str(&format!(", server {server:.2}"));
        }
        if let Some(machine) = machine {
            busy.push_str(&format!(", machine {machine:.2}"));
        }
        busy.push_str(&format!(" of {cores:.0} cores"));
        if self.offered_per_s <= 0.0 {
            return busy;
        }
        let kept_up = self.sent_per_s >= 0.97 * self.offered_per_s;
        // Late by less than a tick of the timer or one interval is still on schedule.
        let punctual = self.send_lag.p99_ms <= self.send_interval_ms.max(5.0);
        let ours = generator + server.unwrap_or(0.0);
        if kept_up && punctual {
            format!("generator kept up ({busy})")
        } else if machine.is_some_and(|m| m >= 0.85 * cores && ours < 0.6 * m) {
            format!("senders fell behind: the machine was busy with other processes ({busy})")
        } else if server.is_some_and(|s| s > generator) {
            format!("senders fell behind, held back by the server ({busy})")
        } else {
            format!("generator-bound: senders fell behind ({busy})")
        }
    }

    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        row(
            "workload",
            match &self.label {
                Some(label) => format!("{} ({label})", self.workload),
                None => self.workload.clone(),
            },
        );
        row("target", self.url.clone());
        row("parameters", self.parameters.to_string());
        row("connections", self.connections.to_string());
        row(
            "window",
            format!(
                "{} s warm-up, {} s measured",
                self.warmup_s, self.duration_s
            ),
        );
        if let Some(idle) = &self.idle {
            row(
                "connected",
                format!("{} of {}", idle.connected, idle.requested),
            );
            if let (Some(before), Some(after)) =
                (idle.server_rss_before_kib, idle.server_rss_after_kib)
            {
                row("server RSS", format!("{before} KiB → {after} KiB"));
            }
            if let Some(per) = idle.server_kib_per_connection {
                row("server RSS per connection", format!("{per:.1} KiB"));
            }
            if let Some(per) = idle.generator_kib_per_connection {
                row("generator RSS per connection", format!("{per:.1} KiB"));
            }
        } else {
            row(
                "sent",
                format!(
                    "{} ({:.0}/s of {:.0}/s offered)",
                    self.sent, self.sent_per_s, self.offered_per_s
                ),
            );
            row(
                "deliveries",
                format!(
                    "{} of {} expected ({:.0}/s)",
                    self.deliveries, self.expected_deliveries, self.deliveries_per_s
                ),
            );
            row(
                "lost",
                format!("{} ({:.3}%)", self.lost, self.loss_ratio * 100.0),
            );
            let l = &self.latency;
            row(
                "latency p50/p99/p999/max",
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} ms ({} samples)",
                    l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
                ),
            );
            let s = &self.send_lag;
            row(
                "send lag p50/p99/max",
                format!("{:.2} / {:.2} / {:.2} ms", s.p50_ms, s.p99_ms, s.max_ms),
            );
        }
        let closes = if self.closed_by_server.is_empty() {
            "none".to_owned()
        } else {
            join_counts(&self.closed_by_server)
        };
        row("closed by the server", closes);
        if !self.errors.is_empty() {
            row("errors", join_counts(&self.errors));
        }
        let process = |p: &ProcessUse| {
            let cpu = p
                .cpu
                .map(|c| format!("{:.2} cores ({:.1} s CPU)", c.cores, c.cpu_seconds))
                .unwrap_or_else(|| "CPU unknown".to_owned());
            match p.rss_kib {
                Some(rss) => format!("{cpu}, RSS {rss} KiB"),
                None => cpu,
            }
        };
        row("generator", process(&self.generator));
        if let Some(server) = &self.server {
            row("server", process(server));
        }
        if let Some(per) = self.server_cpu_us_per_delivery {
            row("server CPU per delivery", format!("{per:.2} µs"));
        }
        if let Some(machine) = &self.machine {
            row("machine", format!("{:.2} cores busy", machine.cores));
        }
        if let Some(admin) = &self.admin {
            row(
                "admin console",
                format!(
                    "{} frames, {} bytes{}",
                    admin.frames,
                    admin.bytes,
                    admin
                        .closed
                        .as_deref()
                        .map(|c| format!(", closed: {c}"))
                        .unwrap_or_default()
                ),
            );
        }
        row("verdict", self.verdict.clone());
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        // Close reasons and error messages come from the server measured, which may be
        // anyone's.
        rows.iter()
            .map(|(k, v)| format!("{k:<width$}  {}", crate::text::printable(v)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A resolved target: where to connect and what URL to ask for.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ws://host:port` (or `wss://`) without a path.
    pub base: String,
    /// The path and query the URL was given with, if any beyond `/`.
    pub path: Option<String>,
    pub addr: SocketAddr,
    /// The host as given, which a server's certificate is checked against.
    pub host: String,
    /// For `wss://`: the shared client configuration (platform roots and `--ca-file`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    /// Parse and resolve `url`; refuse anything not on this machine unless `allow_remote`.
    pub async fn resolve(url: &str, allow_remote: bool) -> anyhow::Result<Target> {
        let uri: Uri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("{url:?} is not a URL: {e}"))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => anyhow::bail!("{url:?}: the URL must start with ws:// or wss://"),
        };
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("{url:?} has no host"))?;
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let authority = match uri.authority() {
            Some(authority) => authority.as_str().to_owned(),
            None => format!("{host}:{port}"),
        };
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host, port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}"))?
            .collect();
        let Some(addr) = addrs.first().copied() else {
            anyhow::bail!("{host} resolves to no address");
        };
        if !allow_remote && addrs.iter().any(|a| !a.ip().is_loopback()) {
            anyhow::bail!(
                "{host} is not a loopback address; pass --allow-remote to load a server on another machine"
            );
        }
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|p| !p.is_empty() && p != "/");
        let tls = if secure {
            Some(crate::tls::client_config().map_err(anyhow::Error::msg)?)
        } else {
            None
        };
        Ok(Target {
            base: format!("{}://{authority}", if secure { "wss" } else { "ws" }),
            path,
            addr,
            host: lookup_host.to_owned(),
            tls,
        })
    }

    /// The URL for a workload: the given path if the URL had one, else the dialect's.
    pub fn url(&self, default_path: &str) -> String {
        format!(
            "{}{}",
            self.base,
            self.path.as_deref().unwrap_or(default_path)
        )
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Buffer sizes per connection: loaded connections read bursts, idle ones should cost the
/// generator little (tungstenite's default is 128 KiB each way).
#[derive(Debug, Clone, Copy)]
pub enum Buffers {
    Busy,
    Idle,
}

/// Connect with `TCP_NODELAY` and small buffers, optionally with a Bearer token.
pub async fn connect(
    target: &Target,
    url: &str,
    bearer: Option<&str>,
    buffers: Buffers,
) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let config = match buffers {
        Buffers::Busy => WebSocketConfig::default()
            .read_buffer_size(32 * 1024)
            .write_buffer_size(16 * 1024),
        Buffers::Idle => WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0),
    };
    let stream = TcpStream::connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let stream = match &target.tls {
        Some(tls) => MaybeTlsStream::Rustls(
            crate::tls::connect(tls.clone(), &target.host, stream)
                .await
                .map_err(anyhow::Error::msg)?,
        ),
        None => MaybeTlsStream::Plain(stream),
    };
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(socket)
}

/// How a connection ended, as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// We closed it at the end of the run.
    Ours,
    /// The server sent a close frame, or dropped the connection (1006).
    Server(String),
    Error(String),
}

impl Ending {
    /// The ending of a read loop that saw `message` (or the end of the stream).
    pub fn from_close(
        frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>,
    ) -> Ending {
        Ending::Server(match frame {
            Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
            None => "1005 (no code)".to_owned(),
        })
    }

    pub fn dropped() -> Ending {
        Ending::Server("1006 (no close frame)".to_owned())
    }

    pub fn tally(self, closed: &mut BTreeMap<String, u64>, errors: &mut BTreeMap<String, u64>) {
        match self {
            Ending::Ours => {}
            Ending::Server(code) => *closed.entry(code).or_default() += 1,
            Ending::Error(error) => *errors.entry(error).or_default() += 1,
        }
    }
}

/// Connections still being established by `connect_all`.
pub fn connect_limit() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY))
}

/// Run `handshake` under the connect limit and the handshake timeout.
pub async fn limited<T>(
    limit: &tokio::sync::Semaphore,
    handshake: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let _permit = limit.acquire().await?;
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))?
}

/// Wait for the first text frame `accept` returns `Some` for, skipping the rest; a close or
/// error ends the wait with a description.
pub async fn await_frame<T>(
    socket: &mut Socket,
    mut accept: impl FnMut(&str) -> Result<Option<T>, String>,
) -> anyhow::Result<T> {
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => match accept(text.as_str()) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(refusal) => anyhow::bail!("refused: {refusal}"),
            },
            Message::Close(frame) => match Ending::from_close(frame.as_ref()) {
                Ending::Server(code) => anyhow::bail!("closed by the server: {code}"),
                _ => anyhow::bail!("closed by the server"),
            },
            _ => {}
        }
    }
    anyhow::bail!("the server closed the connection")
}

/// What the attached admin console saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdminReport {
    pub frames: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<String>,
}

/// An admin console that only reads, until `stop` flips; `None` unless asked for.
pub async fn attach_admin(
    common: &CommonArgs,
    target: &Target,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<AdminReport>>> {
    let (true, Some(token)) = (common.attach_admin, common.admin_token.as_deref()) else {
        return Ok(None);
    };
    let url = format!("{}/admin", target.base);
    let mut socket = connect(target, &url, Some(token), Buffers::Busy)
        .await
        .map_err(|e| anyhow::anyhow!("cannot attach an admin console to {url}: {e}"))?;
    let mut stop = stop;
    Ok(Some(tokio::spawn(async move {
        let mut report = AdminReport::default();
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        report.frames += 1;
                        report.bytes += text.len() as u64;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        if let Ending::Server(code) = Ending::from_close(frame.as_ref()) {
                            report.closed = Some(code);
                        }
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        report.closed = Some(e.to_string());
                        break;
                    }
                    None => {
                        report.closed = Some("1006 (no close frame)".to_owned());
                        break;
                    }
                },
            }
        }
        close(&mut socket).await;
        report
    })))
}

/// Close politely, without waiting long for the server's answer.
pub async fn close(socket: &mut Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
}

/// The process-wide clock that send times in payloads count from: senders and receivers are
/// in this process, so one monotonic origin makes one-way latency exact.
pub fn clock() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remote_targets_are_refused_unless_allowed() {
        let error = Target::resolve("ws://192.0.2.1:7878", false)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("--allow-remote"), "{error}");
        assert!(Target::resolve("ws://192.0.2.1:7878", true).await.is_ok());
        assert!(Target::resolve("ws://127.0.0.1:7878", false).await.is_ok());
        assert!(Target::resolve("ws://[::1]:7878", false).await.is_ok());
    }

    #[tokio::test]
    async fn the_dialect_path_is_added_unless_the_url_has_one() {
        let plain = Target::resolve("ws://127.0.0.1:9", false).await.unwrap();
        assert_eq!(plain.url("/v2/ws"), "ws://127.0.0.1:9/v2/ws");
        let slash = Target::resolve("ws://127.0.0.1:9/", false).await.unwrap();
        assert_eq!(slash.url("/v2/ws"), "ws://127.0.0.1:9/v2/ws");
        let own = Target::resolve("ws://127.0.0.1:9/v3/ws", false)
            .await
            .unwrap();
        assert_eq!(own.url("/v2/ws"), "ws://127.0.0.1:9/v3/ws");
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        for url in ["http://127.0.0.1:9", "127.0.0.1:9", ""] {
            assert!(Target::resolve(url, false).await.is_err(), "{url}");
        }
    }
}
