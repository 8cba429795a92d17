//! The one WebSocket client: the console's admin link, the composer's plain exchange, replay's
//! connections and the server's probes all dial through [`Request`].
//!
//! It connects the TCP socket itself (so callers learn their local address, which is how the
//! server names a peer), runs the TLS handshake for `wss://` with the shared configuration of
//! [`crate::tls`] (platform roots and `--ca-file`), bounds the whole handshake by one timeout,
//! and tells a refused upgrade (an HTTP status and body) and an address where nothing answers
//! from every other failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected client socket, plain (`ws://`) or over TLS (`wss://`).
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connection attempt may take, TCP and upgrade together, unless told otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The server answered the upgrade with an HTTP status instead (401 for a bad token…).
    Refused { status: u16, body: String },
    /// The attempt did not finish within its timeout.
    TimedOut(String),
    /// No TCP connection could be made (refused, no route, no such host): nothing at that
    /// address answered.
    Unreachable(String),
    /// Anything else: a bad URL or header, a refused TCP connection, a broken handshake.
    Failed(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused { status, body } if body.trim().is_empty() => {
                write!(f, "the server refused the upgrade with HTTP {status}")
            }
            ConnectError::Refused { status, body } => write!(
                f,
                "the server refused the upgrade with HTTP {status}: {}",
                crate::text::one_line(body, 120)
            ),
            ConnectError::TimedOut(what)
            | ConnectError::Unreachable(what)
            | ConnectError::Failed(what) => f.write_str(what),
        }
    }
}

/// A connection to open: a `ws://` URL, extra headers, a timeout.
#[derive(Debug, Clone)]
pub struct Request {
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    large_messages: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `Sec-WebSocket-Protocol` offered, which the server may also decline.
    subprotocols: Option<String>,
}

/// An open connection and the local address the server sees it from.
pub struct Client {
    pub socket: Socket,
    pub local_addr: SocketAddr,
    /// The subprotocol the server chose, if it chose one.
    pub subprotocol: Option<String>,
}

/// One thing read from a socket, control frames left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame: its code and reason, when it had them.
    Close(Option<(u16, String)>),
    /// The stream ended without a close frame.
    Ended,
    Failed(String),
}

impl Request {
    pub fn new(url: impl Into<String>) -> Request {
        Request {
            url: url.into(),
            headers: Vec::new(),
            timeout: CONNECT_TIMEOUT,
            large_messages: false,
            tls: None,
            subprotocols: None,
        }
    }

    /// Offer these subprotocols (`Sec-WebSocket-Protocol`'s value) and accept the server's
    /// choice of one of them or of none, as a relay must: the WebSocket library fails a
    /// handshake whose answer chooses none, so that answer is taken by dialling again
    /// without the offer, which the server then accepts the same way.
    pub fn subprotocols(mut self, offered: impl Into<String>) -> Request {
        self.subprotocols = Some(offered.into());
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer {token}`.
    pub fn bearer(self, token: &str) -> Request {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// Accept messages and frames up to 64 MiB instead of the library's defaults, for clients
    /// that provoke oversized frames on purpose.
    pub fn large_messages(mut self) -> Request {
        self.large_messages = true;
        self
    }

    /// Use this TLS configuration for a `wss://` URL instead of the shared one (platform
    /// roots and `--ca-file`).
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Request {
        self.tls = Some(config);
        self
    }

    /// Connect and upgrade.
    ///
    /// # Errors
    /// [`ConnectError::Refused`] when the server answers the upgrade with an HTTP status,
    /// [`ConnectError::TimedOut`] past the timeout, [`ConnectError::Unreachable`] when no TCP
    /// connection could be made, [`ConnectError::Failed`] otherwise.
    pub async fn connect(mut self) -> Result<Client, ConnectError> {
        // One timeout for the whole connect, the second attempt below included.
        let deadline = Instant::now() + self.timeout;
        let offered = self.subprotocols.take();
        let Some(offered) = offered else {
            return self.handshake(deadline).await.map_err(Attempt::into_error);
        };
        let without_offer = self.clone();
        match self
            .header("sec-websocket-protocol", offered)
            .handshake(deadline)
            .await
        {
            Err(Attempt::NoSubprotocol(_)) => without_offer
                .handshake(deadline)
                .await
                .map_err(Attempt::into_error),
            other => other.map_err(Attempt::into_error),
        }
    }

    async fn handshake(self, deadline: Instant) -> Result<Client, Attempt> {
        let url = self.url.as_str();
        let mut request = url
            .into_client_request()
            .map_err(|e| ConnectError::Failed(format!("{url}: {e}")))?;
        for (name, value) in &self.headers {
            let name: HeaderName = name.parse().map_err(|_| {
                ConnectError::Failed(format!("{name:?} is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                ConnectError::Failed(format!("the value of header {name} is not valid"))
            })?;
            request.headers_mut().insert(name, value);
        }
        let secure = request.uri().scheme_str() == Some("wss");
        let host = request
            .uri()
            .host()
            .ok_or_else(|| ConnectError::Failed(format!("{url}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = request
            .uri()
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        let tcp = timeout_at(deadline, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| ConnectError::TimedOut(format!("connecting to {url} timed out")))?
            .map_err(|e| ConnectError::Unreachable(format!("connecting to {url}: {e}")))?;
        // Frames here are small and interactive; waiting to batch them only adds latency.
        let _ = tcp.set_nodelay(true);
        let local_addr = tcp
            .local_addr()
            .map_err(|e| ConnectError::Failed(format!("local address: {e}")))?;
        let mut config = WebSocketConfig::default();
        if self.large_messages {
            config.max_message_size = Some(64 << 20);
            config.max_frame_size = Some(64 << 20);
        }
        let stream = if secure {
            let tls = match self.tls {
                Some(tls) => tls,
                None => crate::tls::client_config().map_err(ConnectError::Failed)?,
            };
            let tls = timeout_at(deadline, crate::tls::connect(tls, &host, tcp))
                .await
                .map_err(|_| {
                    ConnectError::TimedOut(format!("the TLS handshake with {url} timed out"))
                })?
                .map_err(|e| ConnectError::Failed(format!("{url}: {e}")))?;
            MaybeTlsStream::Rustls(tls)
        } else {
            MaybeTlsStream::Plain(tcp)
        };
        let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
        match timeout_at(deadline, handshake).await {
            Err(_) => Err(ConnectError::TimedOut(format!(
                "the WebSocket handshake with {url} timed out"
            ))
            .into()),
            Ok(Ok((socket, response))) => Ok(Client {
                socket,
                local_addr,
                subprotocol: response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }),
            Ok(Err(Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::NoSubProtocol,
            )))) => Err(Attempt::NoSubprotocol(ConnectError::Failed(format!(
                "{url}: the server chose none of the subprotocols offered"
            )))),
            Ok(Err(Error::Http(response))) => Err(ConnectError::Refused {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }
            .into()),
            Ok(Err(error)) => Err(ConnectError::Failed(format!("{url}: {error}")).into()),
        }
    }
}

/// How one handshake failed: a server that chose no subprotocol is answered by dialling
/// again without the offer ([`Request::subprotocols`]).
enum Attempt {
    Failed(ConnectError),
    NoSubprotocol(ConnectError),
}

impl Attempt {
    fn into_error(self) -> ConnectError {
        match self {
            Attempt::Failed(error) | Attempt::NoSubprotocol(error) => error,
        }
    }
}

impl From<ConnectError> for Attempt {
    fn from(error: ConnectError) -> Attempt {
        Attempt::Failed(error)
    }
}

impl Client {
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), String> {
        self.socket
            .send(Message::Text(text.into().into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next data or close frame; pings and pongs are answered by the library and skipped.
    pub async fn receive(&mut self) -> Received {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return Received::Text(text.to_string()),
                Some(Ok(Message::Binary(bytes))) => return Received::Binary(bytes.to_vec()),
                Some(Ok(Message::Close(frame))) => return Received::Close(close_parts(frame)),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Received::Failed(error.to_string()),
                None => return Received::Ended,
            }
        }
    }

    /// [`Client::receive`], or `None` once `deadline` passes.
    pub async fn receive_until(&mut self, deadline: Instant) -> Option<Received> {
        timeout_at(deadline, self.receive()).await.ok()
    }

    /// Close politely; a peer that already left is not an error worth reporting.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The code and reason of a close frame.
pub fn close_parts(frame: Option<CloseFrame>) -> Option<(u16, String)> {
    frame.map(|f| (u16::from(f.code), f.reason.to_string()))
}

/// `close 4020 admin_disconnect`, or `close` without a frame.
pub fn describe_close(parts: Option<&(u16, String)>) -> String {
    match parts {
        Some((code, reason)) if reason.is_empty() => format!("close {code}"),
        Some((code, reason)) => format!("close {code} {reason}"),
        None => "close".to_owned(),
    }
}
