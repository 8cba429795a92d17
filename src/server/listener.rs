//! The accept loop: what happens to a TCP connection before the router sees a request.
//!
//! - `TCP_NODELAY` on every socket: realtime frames are small and latency-bound, and Nagle's
//!   algorithm against a client's delayed ACKs put a ~40 ms floor under every relay.
//! - Admission: at most `security.max_connections` open sockets in all and
//!   `security.max_connections_per_ip` from one address. A socket over either cap is answered
//!   at once with a complete HTTP response (503 or 429, `Retry-After: 5`, a sentence saying
//!   which cap) and closed; a WebSocket client sees the handshake refused with that status. A
//!   socket is counted until it closes, upgraded WebSockets included.
//! - A client has `security.header_read_timeout_ms` to send its request headers (slow
//!   clients holding sockets open without ever finishing a request are dropped).
//! - With TLS, the handshake runs in the connection's own task, bounded by the same
//!   `header_read_timeout_ms`, and a client that opens with plain HTTP is answered in plain
//!   HTTP (400, "this port speaks TLS") instead of being left to guess.
//! - Shutdown stops accepting, lets requests in flight finish, and gives up after
//!   `security.shutdown_timeout_ms`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::server::config::SecuritySettings;

/// How long a refused client is given to take its refusal.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Refused sockets being answered at once. Each holds a descriptor until its answer is
/// written, outside the caps; bounded, a flood of refusals fits in the descriptors
/// [`crate::server::fds::RESERVE`] keeps instead of running `accept` out of them. Past it the
/// accept loop waits for one to finish: a refusal is one small write, so the wait is short.
const REFUSALS_IN_FLIGHT: usize = 32;

/// Open sockets, in all and per address.
#[derive(Default)]
pub struct Admission {
    counts: Mutex<Counts>,
    /// Bytes upgraded sockets hold in unfinished messages.
    pub frames: Arc<crate::server::frames::FrameBudget>,
    /// Failed admin authentications per address.
    pub auth_failures: crate::server::auth_failures::AuthFailures,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a socket was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over `max_connections` (HTTP 503).
    ServerFull,
    /// Over `max_connections_per_ip` (HTTP 429).
    AddressFull,
}

impl Refused {
    fn response(self) -> String {
        let (status, body) = match self {
            Refused::ServerFull => (
                "503 Service Unavailable",
                "this server has as many open connections as it accepts (security.max_connections); retry later\n",
            ),
            Refused::AddressFull => (
                "429 Too Many Requests",
                "this address has as many open connections as one address may (security.max_connections_per_ip); close some or retry later\n",
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\nRetry-After: 5\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count a new socket from `ip`, or say which cap it is over.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &SecuritySettings,
    ) -> Result<Permit, Refused> {
        // An IPv6 client gets a whole /64: counting addresses one by one would let it take
        // every place.
        let ip = crate::server::auth_failures::address_key(ip);
        let mut counts = self.lock();
        if counts.total >= limits.max_connections {
            return Err(Refused::ServerFull);
        }
        let from_ip = counts.per_ip.entry(ip).or_default();
        if *from_ip >= limits.max_connections_per_ip {
            return Err(Refused::AddressFull);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }

    pub fn open(&self) -> usize {
        self.lock().total
    }
}

/// One counted socket; dropping it gives the place back.
pub struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A socket that holds its permit for as long as it lives, through an HTTP upgrade too.
/// Fields drop in order: the place is given back before the socket's FIN goes out, so a
/// client that saw its connection close can count on the place being free.
struct Counted {
    _permit: Permit,
    meter: crate::server::frames::MeterGuard,
    stream: TcpStream,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// What hyper reads from: a counted socket, plain or inside TLS.
enum Stream {
    Plain(Counted),
    Tls(Box<tokio_rustls::server::TlsStream<Counted>>),
}

impl Stream {
    fn meter(&self) -> &crate::server::frames::Meter {
        match self {
            Stream::Plain(s) => s.meter.meter(),
            Stream::Tls(s) => s.get_ref().0.meter.meter(),
        }
    }
}

/// Bytes are counted as the WebSocket library reads them, after TLS: what it holds is
/// plaintext, and a ping's size is known only there.
impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A socket over its frame limits is no longer read: what it sends waits in the
        // kernel until its connection loop closes it (which wakes nobody here).
        if !this.meter().readable() {
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let polled = match this {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = polled {
            this.meter().read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The answer to a plain-text request on a TLS port.
const PLAIN_ON_TLS: &str = "this port speaks TLS: use https:// or wss://\n";

/// Open TLS on `counted` within `limit`; `None` when the client went away, spoke plain
/// text (it is told so), or took too long.
async fn accept_tls(
    tls: &crate::tls::ServerTls,
    mut counted: Counted,
    limit: Duration,
    remote: SocketAddr,
) -> Option<Stream> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(limit, counted.stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1..)) if first[0] == crate::tls::HANDSHAKE_RECORD => {}
        Ok(Ok(1..)) => {
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PLAIN_ON_TLS}",
                PLAIN_ON_TLS.len()
            );
            let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
                let _ = counted.stream.write_all(response.as_bytes()).await;
                let _ = counted.stream.shutdown().await;
            })
            .await;
            return None;
        }
        _ => return None,
    }
    match tokio::time::timeout(limit, tls.acceptor().accept(counted)).await {
        Ok(Ok(stream)) => Some(Stream::Tls(Box::new(stream))),
        Ok(Err(error)) => {
            tracing::debug!(%error, %remote, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "TLS handshake timed out");
            None
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting, run
/// `drain` (peers are told to go away), and wait for HTTP requests in flight, all bounded by
/// the shutdown timeout.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: SecuritySettings,
    admission: Arc<Admission>,
    tls: Option<Arc<crate::tls::ServerTls>>,
    shutdown: impl Future<Output = ()> + Send,
    drain: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    // Shutdown by channels, as mini-redis does: `closing` tells every connection to finish its
    // request and stop; each holds a `done` sender, whose last drop says all have.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let mut shutdown = std::pin::pin!(shutdown);
    admission.frames.configure(&limits);
    admission.frames.start_sweeper();
    let mut accept_backoff = AcceptBackoff::default();
    let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT));
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Running out of file descriptors or a connection reset before accept
                    // are conditions of the moment: keep serving the sockets already open,
                    // and wait longer each time it fails again, so that a server out of
                    // descriptors neither spins nor fills its log.
                    let delay = accept_backoff.failed(&error);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            },
        };
        accept_backoff.succeeded();
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let permit = match admission.admit(remote.ip(), &limits) {
            Ok(permit) => permit,
            Err(refused) => {
                let answering = tokio::select! {
                    () = &mut shutdown => break,
                    permit = refusals.clone().acquire_owned() => permit,
                };
                // The semaphore is never closed; were it, the socket is dropped unanswered.
                if let Ok(answering) = answering {
                    tokio::spawn(async move {
                        refuse(stream, refused).await;
                        drop(answering);
                    });
                }
                continue;
            }
        };
        let counted = Counted {
            _permit: permit,
            meter: admission.frames.open(remote),
            stream,
        };
        let service = router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        );
        let http = http.clone();
        let tls = tls.clone();
        let handshake_limit = Duration::from_millis(limits.header_read_timeout_ms);
        let mut closing = closing_rx.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let stream = match &tls {
                None => Stream::Plain(counted),
                Some(tls) => {
                    let accepted = tokio::select! {
                        accepted = accept_tls(tls, counted, handshake_limit, remote) => accepted,
                        _ = closing.wait_for(|closing| *closing) => None,
                    };
                    match accepted {
                        Some(stream) => stream,
                        None => {
                            drop(done);
                            return;
                        }
                    }
                }
            };
            let connection = http
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(done);
        });
    }
    drop(listener);
    let deadline = Duration::from_millis(limits.shutdown_timeout_ms);
    let finished = tokio::time::timeout(deadline, async {
        drain.await;
        let _ = closing.send(true);
        drop(done);
        let _ = all_done.recv().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            timeout_ms = limits.shutdown_timeout_ms,
            "shutdown deadline passed with connections still open; stopping anyway"
        );
    }
    Ok(())
}

/// How long the accept loop waits after `accept` fails, and when it says so.
#[derive(Default)]
struct AcceptBackoff {
    /// Failures since the last accepted socket.
    failures: u32,
    /// Failures not yet logged.
    unlogged: u64,
    last_log: Option<std::time::Instant>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const LONGEST: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn failed(&mut self, error: &io::Error) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.unlogged += 1;
        let now = std::time::Instant::now();
        if self
            .last_log
            .is_none_or(|last| now.duration_since(last) >= Self::LOG_EVERY)
        {
            let out_of_files = matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
            tracing::warn!(
                %error,
                failures = self.unlogged,
                hint = if out_of_files { "out of file descriptors: lower security.max_connections or raise `ulimit -n`" } else { "" },
                "accept failed"
            );
            self.unlogged = 0;
            self.last_log = Some(now);
        }
        let doublings = self.failures.saturating_sub(1).min(7);
        (Self::FIRST * 2u32.pow(doublings)).min(Self::LONGEST)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

async fn refuse(mut stream: TcpStream, refused: Refused) {
    let response = refused.response();
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn permits_count_per_address_and_in_all_until_dropped() {
        let admission = Arc::new(Admission::default());
        let limits = SecuritySettings {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..SecuritySettings::default()
        };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.admit(a, &limits).unwrap();
        let _second = admission.admit(a, &limits).unwrap();
        assert_eq!(
            admission.admit(a, &limits).err(),
            Some(Refused::AddressFull)
        );
        let _third = admission.admit(b, &limits).unwrap();
        assert_eq!(admission.admit(b, &limits).err(), Some(Refused::ServerFull));
        drop(first);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(a, &limits).is_ok());
    }

    #[test]
    fn an_ipv6_network_of_64_bits_counts_as_one_address() {
        let admission = Arc::new(Admission::default());
        let limits = SecuritySettings {
            max_connections: 10,
            max_connections_per_ip: 2,
            ..SecuritySettings::default()
        };
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_network: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _first = admission.admit(one, &limits).unwrap();
        let _second = admission.admit(same_network, &limits).unwrap();
        assert_eq!(
            admission.admit(one, &limits).err(),
            Some(Refused::AddressFull)
        );
        assert!(admission.admit(next_network, &limits).is_ok());
    }

    #[test]
    fn accept_failures_back_off_up_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let error = io::Error::from_raw_os_error(libc::EMFILE);
        let delays: Vec<_> = (0..12).map(|_| backoff.failed(&error)).collect();
        assert_eq!(delays[0], Duration::from_millis(10));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[11], Duration::from_secs(1));
        backoff.succeeded();
        assert_eq!(backoff.failed(&error), Duration::from_millis(10));
    }

    #[test]
    fn refusals_are_complete_http_responses() {
        for refused in [Refused::ServerFull, Refused::AddressFull] {
            let response = refused.response();
            let (head, body) = response.split_once("\r\n\r\n").unwrap();
            assert!(head.contains("Retry-After: 5"));
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
        }
    }
}
