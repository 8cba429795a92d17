//! The shared harness of the integration tests: a real server on 127.0.0.1:0 in a temporary
//! data folder, real WebSocket clients, and a timeout around every receive.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use relaydeck::protocol::admin::{CommandEnvelope, CommandResult, Event, ServerMessage, Snapshot};
use relaydeck::server::config::Config;
use relaydeck::server::{spawn, RunningServer, ServerOptions};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod proxy;
pub mod redis;
pub mod sdk;
pub mod tmux;

pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub token: String,
    pub data: tempfile::TempDir,
}

/// Every error code a test server sent must be in the catalog: a misspelt code would reach
/// clients as a bare word nobody can decode.
fn assert_every_code_catalogued(server: &RunningServer) {
    let unknown = server.uncatalogued_errors();
    assert!(
        unknown.is_empty(),
        "the server sent codes the catalog lacks: {unknown:?}"
    );
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            if !std::thread::panicking() {
                assert_every_code_catalogued(server);
            }
        }
    }
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        let data = tempfile::tempdir().unwrap();
        TestServer::start_in(config, data).await
    }

    pub async fn start_in(config: Config, data: tempfile::TempDir) -> TestServer {
        TestServer::start_with(config, data, None).await
    }

    pub async fn start_with(
        config: Config,
        data: tempfile::TempDir,
        admin_buffer: Option<usize>,
    ) -> TestServer {
        let options = ServerOptions {
            data_dir: data.path().to_path_buf(),
            admin_token: None,
            admin_buffer,
            readonly: false,
        };
        let server = spawn("127.0.0.1:0".parse().unwrap(), config, options)
            .await
            .unwrap();
        TestServer {
            addr: server.addr,
            token: server.admin_token.clone(),
            server: Some(server),
            data,
        }
    }

    pub async fn demo() -> TestServer {
        TestServer::start(Config::demo()).await
    }

    /// Stop the server, keeping its data folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            assert_every_code_catalogued(&server);
            server.shutdown().await.unwrap();
        }
        // The folder is handed over; an empty one stays behind for `Drop`.
        std::mem::replace(&mut self.data, tempfile::tempdir().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn connect(&self, path: &str) -> Socket {
        let (socket, _) = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            tokio_tungstenite::connect_async(self.url(path)),
        )
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect {path}: {e}"));
        socket
    }

    /// Connect from another loopback address (127.0.0.2, say): per-address limits tell the
    /// two apart.
    pub async fn connect_from(&self, source: std::net::IpAddr, path: &str) -> Socket {
        let tcp = match source {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .unwrap();
        tcp.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = tokio::time::timeout(RECEIVE_TIMEOUT, tcp.connect(self.addr))
            .await
            .expect("connect timed out")
            .unwrap();
        let (socket, _) = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            tokio_tungstenite::client_async(self.url(path), MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("handshake timed out")
        .unwrap_or_else(|e| panic!("connect {path} from {source}: {e}"));
        socket
    }

    /// Connect presenting `Authorization: Bearer token`.
    pub async fn connect_bearer(&self, path: &str, token: &str) -> Socket {
        let mut request = self.url(path).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) =
            tokio::time::timeout(RECEIVE_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .expect("connect timed out")
                .unwrap_or_else(|e| panic!("connect {path}: {e}"));
        socket
    }

    /// A Flow stream with the admin token.
    pub async fn flow(&self) -> Socket {
        self.connect_bearer("/v1/ws", &self.token).await
    }

    /// A Flow stream whose socket takes little before it pushes back, whatever the kernel's
    /// autotuning would allow: one that stops reading stalls the server's writer after a
    /// predictable amount of traffic, not after however much a machine's buffers absorb.
    pub async fn flow_with_small_receive_buffer(&self) -> Socket {
        let mut request = self.url("/v1/ws").into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap(),
        );
        let stream = self.small_receive_buffer_stream().await;
        let (socket, _) = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("handshake timed out")
        .unwrap();
        socket
    }

    async fn small_receive_buffer_stream(&self) -> tokio::net::TcpStream {
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.set_recv_buffer_size(4096).unwrap();
        tokio::time::timeout(RECEIVE_TIMEOUT, tcp.connect(self.addr))
            .await
            .expect("connect timed out")
            .unwrap()
    }

    pub async fn admin(&self) -> Admin {
        let (socket, _) = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            tokio_tungstenite::connect_async(self.admin_request()),
        )
        .await
        .expect("admin connect timed out")
        .unwrap();
        Admin::greeted(socket).await
    }

    /// An admin connection whose socket takes little before it pushes back, whatever the
    /// kernel's autotuning would allow: a console that reads nothing is behind after a
    /// predictable amount of traffic.
    pub async fn admin_with_small_receive_buffer(&self) -> Admin {
        let stream = self.small_receive_buffer_stream().await;
        let (socket, _) = tokio::time::timeout(
            RECEIVE_TIMEOUT,
            tokio_tungstenite::client_async(self.admin_request(), MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("admin handshake timed out")
        .unwrap();
        Admin::greeted(socket).await
    }

    fn admin_request(&self) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = self.url("/admin").into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap(),
        );
        request
    }
}

impl Admin {
    /// Wrap a fresh admin connection, reading the snapshot every connection starts with.
    async fn greeted(socket: Socket) -> Admin {
        let mut admin = Admin {
            socket,
            snapshot: Snapshot::default(),
            seq: 0,
            next_id: 1,
            seen: Default::default(),
        };
        match admin.next().await {
            ServerMessage::Snapshot { seq, snapshot } => {
                admin.seq = seq;
                admin.snapshot = *snapshot;
            }
            other => panic!("expected a snapshot first, got {other:?}"),
        }
        admin
    }
}

pub async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

pub async fn send_text(socket: &mut Socket, text: &str) {
    socket
        .send(Message::Text(text.to_owned().into()))
        .await
        .unwrap();
}

/// The next text frame as JSON (pings and pongs skipped).
pub async fn recv_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("no frame before the timeout")
            .expect("the connection ended")
            .expect("receive failed");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("expected a frame, got close {frame:?}"),
            _ => continue,
        }
    }
}

/// Skip frames until one has `"type": kind`.
pub async fn recv_type(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = recv_json(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Skip frames until the close; returns its code and reason.
pub async fn recv_close(socket: &mut Socket) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("no close before the timeout");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the connection failed before a close frame: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

pub struct Admin {
    pub socket: Socket,
    pub snapshot: Snapshot,
    pub seq: u64,
    next_id: u64,
    /// Deltas that arrived while waiting for a command's result, not yet looked at.
    seen: std::collections::VecDeque<Event>,
}

/// How long a test waits for an admin event before failing; stats ticks arrive every second,
/// so a per-message timeout alone would never fire.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Admin {
    pub async fn next(&mut self) -> ServerMessage {
        loop {
            let message = tokio::time::timeout(RECEIVE_TIMEOUT, self.socket.next())
                .await
                .expect("no admin message before the timeout")
                .expect("the admin connection ended")
                .expect("admin receive failed");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// Wait for a delta whose event satisfies `wanted`, checking that deltas are numbered
    /// without gaps (or preceded by a snapshot).
    pub async fn wait_event(&mut self, mut wanted: impl FnMut(&Event) -> bool) -> Event {
        while let Some(event) = self.seen.pop_front() {
            if wanted(&event) {
                return event;
            }
        }
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the awaited admin event never came"
            );
            match self.next().await {
                ServerMessage::Delta { seq, event, .. } => {
                    assert_eq!(seq, self.seq + 1, "deltas are numbered without gaps");
                    self.seq = seq;
                    if wanted(&event) {
                        return event;
                    }
                }
                ServerMessage::Snapshot { seq, snapshot } => {
                    self.seq = seq;
                    self.snapshot = *snapshot;
                }
                ServerMessage::Result(_) => {}
            }
        }
    }

    pub async fn command(&mut self, command: relaydeck::protocol::admin::Command) -> CommandResult {
        let id = self.next_id;
        self.next_id += 1;
        let envelope = CommandEnvelope { id, command };
        self.socket
            .send(Message::Text(
                serde_json::to_string(&envelope).unwrap().into(),
            ))
            .await
            .unwrap();
        loop {
            match self.next().await {
                ServerMessage::Result(result) if result.id == id => return result,
                ServerMessage::Delta { seq, event, .. } => {
                    assert_eq!(seq, self.seq + 1, "deltas are numbered without gaps");
                    self.seq = seq;
                    self.seen.push_back(event);
                }
                ServerMessage::Snapshot { seq, snapshot } => {
                    self.seq = seq;
                    self.snapshot = *snapshot;
                }
                ServerMessage::Result(_) => {}
            }
        }
    }
}

// Helpers of the adversarial suites (tests/adversarial_*.rs).

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with its code and reason (1005 when it had none).
    Close(u16, String),
    /// The stream ended or failed without a close frame.
    Dropped,
}

/// Skip frames until the connection ends, bounded by `RECEIVE_TIMEOUT` per frame.
pub async fn recv_ending(socket: &mut Socket) -> Ending {
    loop {
        let message = tokio::time::timeout(RECEIVE_TIMEOUT, socket.next())
            .await
            .expect("the connection neither closed nor sent anything before the timeout");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return Ending::Close(u16::from(frame.code), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) => return Ending::Close(1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Ending::Dropped,
        }
    }
}

/// Close from the client's side and read until the server's answer ends the stream: the
/// server answers a close only after it has removed the peer, so when this returns the hub no
/// longer holds it.
pub async fn close_and_drain(socket: &mut Socket) {
    let _ = tokio::time::timeout(RECEIVE_TIMEOUT, socket.close(None)).await;
    loop {
        match tokio::time::timeout(RECEIVE_TIMEOUT, socket.next()).await {
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return,
            Err(_) => panic!("the server never finished the close handshake"),
        }
    }
}

pub async fn send_binary(socket: &mut Socket, bytes: Vec<u8>) {
    socket.send(Message::Binary(bytes.into())).await.unwrap();
}

/// A text frame whose payload is not checked on the way out: how a broken client sends
/// invalid UTF-8 as text.
pub async fn send_raw_text(socket: &mut Socket, bytes: Vec<u8>) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let frame = Frame::message(bytes, OpCode::Data(Data::Text), true);
    socket.send(Message::Frame(frame)).await.unwrap();
}

/// `depth` nested JSON arrays around `1`.
pub fn nested_arrays(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The resident set of this process (the server runs in it), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Open a TCP connection and send the first lines of a WebSocket upgrade to `path`, never
/// the blank line that ends the headers; returns what the server sent before closing, and
/// how long it took.
pub async fn slowloris(addr: SocketAddr, path: &str) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A dribble of one more header byte keeps a naive per-read timeout from ever firing.
    let _ = stream.write_all(b"Sec-WebSocket-Version: 1").await;
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server kept a client that never finished its headers");
    // A reset is as good as a close here: the socket is gone either way.
    let _ = read;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Every peer, room, channel and subscription the hub holds, from a fresh admin snapshot.
pub async fn hub_entries(server: &TestServer) -> (usize, usize, usize, usize) {
    let admin = server.admin().await;
    let snapshot = &admin.snapshot;
    (
        snapshot.peers.len(),
        snapshot.rooms.len(),
        snapshot.channels.len(),
        snapshot.subscriptions.len(),
    )
}

/// The server's `/metrics` text.
pub async fn metrics(server: &TestServer) -> String {
    tokio::time::timeout(RECEIVE_TIMEOUT, async {
        reqwest::get(server.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
    .await
    .expect("/metrics answered before the timeout")
}

/// `relaydeck_frames_dropped_total` from `/metrics`: relayed frames dropped because their
/// peer was behind.
pub async fn frames_dropped(server: &TestServer) -> u64 {
    metrics(server)
        .await
        .lines()
        .find_map(|line| line.strip_prefix("relaydeck_frames_dropped_total "))
        .and_then(|count| count.trim().parse().ok())
        .expect("relaydeck_frames_dropped_total in /metrics")
}

/// How long the stall tests wait for the slow-consumer close: the flood that provokes it
/// has to fill a socket's kernel buffers first (on loopback, autotuning lets them take
/// megabytes), which takes a loaded machine a while. A bound, not a wait: the tests go on as
/// soon as the close is seen.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The next text frame as JSON, waiting until `deadline` rather than `RECEIVE_TIMEOUT`: for
/// a frame that comes only once something slow has happened elsewhere.
pub async fn recv_json_before(socket: &mut Socket, deadline: tokio::time::Instant) -> Value {
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("no frame before the deadline")
            .expect("the connection ended")
            .expect("receive failed");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

impl Admin {
    /// Wait until `deadline` for an error event with this code (deltas and snapshots in
    /// between are taken as they come).
    pub async fn wait_error_before(&mut self, code: &str, deadline: tokio::time::Instant) -> Event {
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no error {code} before the deadline"))
                .expect("the admin connection ended")
                .expect("admin receive failed");
            let Message::Text(text) = message else {
                continue;
            };
            if let ServerMessage::Delta { event, .. } = serde_json::from_str(text.as_str()).unwrap()
            {
                if matches!(&event, Event::ErrorEmitted { code: c, .. } if c == code) {
                    return event;
                }
            }
        }
    }
}
