//! The one connection lifecycle every dialect runs: register the peer, split the socket, start
//! its writer, select over inbound frames, control messages, the session's deadline and its own
//! event source, close with the dialect's code, finish the close handshake, remove the peer.
//!
//! A dialect supplies only a [`Session`]: what its frames mean. Everything that is the same for
//! every WebSocket (counting and tapping inbound frames, injected frames, the writer, the close
//! handshake, removal) lives here, once.
//!
//! # The writer
//! The writer task owns the sink, so a client that stops reading only ever blocks its own
//! writer. It takes everything queued at once, feeds it and flushes once: one write (and, with
//! `TCP_NODELAY`, one segment train) per batch instead of one per frame. An abort (a slow
//! consumer, see [`crate::server::peer`]) makes it give up on a stalled send and close. A
//! write that makes no progress for `outbox.stall_ms` ends the writer on its own, and the
//! connection closes as a slow consumer: a client that stops reading just as its traffic
//! stops has no later frame to reveal the stall.
//!
//! # Closing
//! A close from the server is queued behind the frames before it. The connection then keeps
//! reading, and discarding, until the client answers with its own close or
//! [`CLOSE_HANDSHAKE_TIMEOUT`] passes: dropping a socket whose client is still sending makes the
//! kernel answer with a reset, and the reset destroys the close frame in flight, which is the
//! one frame that tells the client why (a pub/sub client flooding into its 4011, say).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use crate::catalog::{self, Dialect, Severity};
use crate::protocol::admin::Direction;
use crate::server::hub::{ChannelKey, NewPeer, RegisterError};
pub use crate::server::keepalive::Keepalive;
use crate::server::keepalive::{Pinger, Tick};
use crate::server::peer::{Control, Notice, Outbound, PeerHandle};
use crate::server::Shared;

/// How long one batch of frames may take to go out before the connection is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a writer that gave up waits for the connection task to decide the close.
const STALL_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long the connection waits for its writer to flush a final close.
pub const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a server-initiated close waits for the client's close before dropping the socket.
pub const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Frames the writer takes off the queue at once.
const WRITE_BATCH: usize = 64;

/// Bytes read from the socket at a time. tungstenite reserves its read buffer up front, and
/// its default (128 KiB) was most of an idle connection's memory; a frame larger than this
/// grows the buffer for as long as it needs.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Bytes of outbound frames gathered before a write; the writer flushes after every batch
/// anyway, so this only bounds how much one write carries.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The socket settings every upgrade shares: small buffers and the dialect's size limit, so
/// the dialect, not the WebSocket library, answers an oversized frame with its own code.
pub fn configure(upgrade: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
}

/// What a connection runs over: a WebSocket, or a tunnel from another node of the cluster
/// that carries one player's frames (see [`crate::server::signal_fish::tunnel`]).
pub trait Transport:
    Stream<Item = Result<Message, axum::Error>>
    + Sink<Message, Error = axum::Error>
    + Send
    + Unpin
    + 'static
{
}

impl<T> Transport for T where
    T: Stream<Item = Result<Message, axum::Error>>
        + Sink<Message, Error = axum::Error>
        + Send
        + Unpin
        + 'static
{
}

/// What a session wants after handling something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Close the connection with this code and reason (after what is queued).
    Close(u16, String),
}

impl Flow {
    pub fn close(code: u16, reason: impl Into<String>) -> Flow {
        Flow::Close(code, reason.into())
    }
}

/// One dialect's per-connection protocol logic. Every method is synchronous and short: it
/// runs on the connection's task, between two frames.
pub trait Session: Send + 'static {
    /// Once the peer is registered and its writer runs: greetings, initial subscriptions.
    fn on_open(&mut self) -> Flow {
        Flow::Continue
    }

    /// A text frame (or an admin's injected frame, already counted).
    fn on_text(&mut self, text: &str) -> Flow;

    /// A binary frame.
    fn on_binary(&mut self, bytes: &[u8]) -> Flow;

    /// How an inbound binary frame reads to an admin tapping the peer and in the flight
    /// recorder; dialects that know its encoding decode it.
    fn show_binary(&self, bytes: &[u8]) -> String {
        format!("<{} binary bytes>", bytes.len())
    }

    /// A WebSocket ping or pong (answered by the library): the socket is alive.
    fn on_socket_frame(&mut self) {}

    /// Whether the peer has authenticated or identified in-band; until then its socket may
    /// hold only `security.unidentified_read_limit_bytes` of an unfinished message.
    fn identified(&self) -> bool {
        true
    }

    /// A kick, an app status change or shutdown (injected frames arrive as [`Session::on_text`];
    /// a close decided elsewhere is carried out by the loop).
    fn on_control(&mut self, notice: Notice) -> Flow;

    /// The next moment the session wants to act without input (authentication or idle
    /// timeouts). Called after every event; keep it stable between events so the timer is not
    /// re-armed per frame.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn on_deadline(&mut self) -> Flow {
        Flow::Continue
    }

    /// The close for a connection on which nothing arrives for `security.idle_timeout_ms`,
    /// or `None` for a dialect that keeps its own idle timers.
    fn idle_close(&self) -> Option<(u16, &'static str)> {
        Some((1000, "idle_timeout"))
    }

    /// The server's pings for this dialect, as its upstream sends them, or `None` for none.
    fn keepalive(&self) -> Option<Keepalive> {
        None
    }

    /// An event source of the session's own (Flow streams read the hub's deltas here). The
    /// future is dropped and made again around every other event, so it must be cancel-safe.
    fn background(&mut self) -> impl Future<Output = Flow> + Send + '_ {
        std::future::pending()
    }

    /// The client sent a close frame with this code and reason (1005 for none).
    fn on_client_close(&mut self, _code: u16, _reason: &str) {}

    /// The connection is over; the peer is still registered (rooms keep seats here).
    fn on_end(&mut self) {}

    /// The peer has been removed; `left` are the channels it was in (presence notices).
    fn on_removed(&mut self, _left: &[ChannelKey]) {}
}

/// How a refused upgrade is answered: the close code and reason the dialect documents.
pub type Refusal = (u16, String);

/// Run one connection from upgrade to removal. `refused` maps a registration refusal to the
/// dialect's close; `make` builds the session once the peer has a handle. `path` is the
/// upgrade's path and query, kept by the flight recorder (an export reconnects with it).
#[allow(clippy::too_many_arguments)]
pub async fn serve<S: Session, T: Transport>(
    socket: T,
    shared: Arc<Shared>,
    path: String,
    new: NewPeer,
    app_limits: Option<crate::server::config::Limits>,
    refused: impl FnOnce(&RegisterError) -> Refusal,
    make: impl FnOnce(Arc<PeerHandle>) -> S,
) {
    let dialect = new.dialect;
    let addr = new.addr.clone();
    let link = match shared.hub.register_peer(new, app_limits.as_ref()) {
        Ok(link) => link,
        Err(error) => {
            let (code, reason) = refused(&error);
            return refuse(socket, &shared, dialect, code, &reason).await;
        }
    };
    let handle = link.handle;
    if let Some(recording) = handle.recording() {
        recording.set_path(path);
    }
    let mut control = link.queues.control;
    let (sink, mut stream) = socket.split();
    let mut writer = spawn_writer(sink, link.queues.outbox, handle.clone());
    let mut session = make(handle.clone());
    let hub = &shared.hub;
    let mut identified = session.identified();
    let meter = shared.admission.frames.take(&addr, identified);
    let mut frames_tripped = false;

    let mut client_close = None;
    let mut flow = session.on_open();
    // The loop's own idle timer, for sessions that do not keep one: looked at when it fires,
    // so a busy connection does not re-arm it per frame.
    let idle = session.idle_close().map(|close| {
        (
            Duration::from_millis(shared.hub.config().security.idle_timeout_ms),
            close,
        )
    });
    let mut last_inbound = Instant::now();
    let mut idle_check = idle.map(|(timeout, _)| last_inbound + timeout);
    let mut deadline = earliest(session.deadline(), idle_check);
    let mut timer = pin!(sleep_until(deadline.unwrap_or_else(far_future)));
    let mut pinger = session.keepalive().map(|k| Pinger::new(k, Instant::now()));
    let mut ping_at = pinger.as_ref().map_or_else(far_future, Pinger::next);
    let mut ping_timer = pin!(sleep_until(ping_at));
    // Set when the peer stopped answering pings: dropped without a close, as upstream does.
    let mut unresponsive = false;
    let mut writer_gone = false;
    while flow == Flow::Continue {
        flow = tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(meter) = &meter {
                        meter.message_done();
                    }
                    last_inbound = Instant::now();
                    hub.record_inbound(&handle, text.as_str());
                    handle.record(Direction::In, &text);
                    session.on_text(text.as_str())
                }
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some(meter) = &meter {
                        meter.message_done();
                    }
                    last_inbound = Instant::now();
                    // The text is shown only to admins tapping the peer, and made only then.
                    if handle.is_tapped() {
                        hub.record_inbound(&handle, &session.show_binary(&bytes));
                    } else {
                        hub.record_inbound(&handle, "");
                    }
                    if handle.recording().is_some() {
                        handle.record(Direction::In, &session.show_binary(&bytes).into());
                    }
                    session.on_binary(&bytes)
                }
                Some(Ok(message @ (Message::Ping(_) | Message::Pong(_)))) => {
                    if let (Some(meter), Message::Ping(payload) | Message::Pong(payload)) =
                        (&meter, &message)
                    {
                        meter.control_done(payload.len());
                    }
                    last_inbound = Instant::now();
                    if let (Some(pinger), Message::Pong(_)) = (&mut pinger, &message) {
                        if let Some(round_trip) = pinger.answered(last_inbound) {
                            handle.note_round_trip(round_trip);
                        }
                    }
                    session.on_socket_frame();
                    Flow::Continue
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = client_close_of(frame);
                    session.on_client_close(code, &reason);
                    client_close = Some((code, reason));
                    break;
                }
                // A frame the WebSocket layer itself refuses: say which, with RFC 6455's code,
                // if the socket still takes a close.
                Some(Err(error)) => match protocol_failure(error) {
                    Some((code, reason)) => Flow::close(code, reason),
                    None => break,
                },
                None => break,
            },
            command = control.recv() => match command {
                Some(Control::Close(code, reason)) => Flow::Close(code, reason),
                Some(Control::Inject(text)) => {
                    hub.record_inbound(&handle, &text);
                    if handle.recording().is_some() {
                        handle.record(Direction::In, &text.as_str().into());
                    }
                    session.on_text(&text)
                }
                Some(Control::Kick { reason }) => session.on_control(Notice::Kick { reason }),
                Some(Control::AppStatus(status)) => session.on_control(Notice::AppStatus(status)),
                Some(Control::Shutdown) => session.on_control(Notice::Shutdown),
                // The handle, which holds the sender, lives as long as this task.
                None => break,
            },
            () = &mut timer, if deadline.is_some() => {
                let now = Instant::now();
                match (idle, idle_check) {
                    (Some((timeout, (code, reason))), Some(check)) if now >= check => {
                        if now >= last_inbound + timeout {
                            Flow::close(code, reason)
                        } else {
                            idle_check = Some(last_inbound + timeout);
                            Flow::Continue
                        }
                    }
                    _ => session.on_deadline(),
                }
            }
            () = &mut ping_timer, if pinger.is_some() => match pinger.as_mut().map(|p| p.tick(Instant::now())) {
                Some(Tick::Ping) => {
                    handle.queue_ping();
                    Flow::Continue
                }
                Some(Tick::Drop) => {
                    unresponsive = true;
                    handle.begin_close(1006, "no pong: dropped without a close frame");
                    break;
                }
                _ => Flow::Continue,
            },
            background = session.background() => background,
            why = async {
                match &meter {
                    Some(meter) => meter.tripped().await,
                    None => std::future::pending().await,
                }
            } => {
                frames_tripped = true;
                let (code, reason) = why.close();
                tracing::debug!(peer = %handle.id, %addr, ?why, "closed for its unfinished frames");
                Flow::close(code, reason)
            }
            () = handle.writer_gave_up() => {
                hub.close_slow_consumer(&handle);
                Flow::Continue
            }
            _ = &mut writer => {
                writer_gone = true;
                if handle.writer_stalled() {
                    hub.close_slow_consumer(&handle);
                }
                break;
            }
        };
        if let Some(next) = pinger.as_ref().map(Pinger::next).filter(|n| *n != ping_at) {
            ping_at = next;
            ping_timer.as_mut().reset(ping_at);
        }
        if !identified && session.identified() {
            identified = true;
            if let Some(meter) = &meter {
                meter.identified();
            }
        }
        let next = earliest(session.deadline(), idle_check);
        if next != deadline {
            deadline = next;
            timer.as_mut().reset(deadline.unwrap_or_else(far_future));
        }
    }
    if let Flow::Close(code, reason) = &flow {
        hub.close_peer(&handle, *code, reason);
    }
    // The peer leaves rooms, channels and the registry as soon as the connection is decided
    // over; the handshake below only concerns the socket.
    session.on_end();
    let left = hub.remove_peer(&handle.id, client_close);
    session.on_removed(&left);
    if unresponsive {
        // A peer that stopped answering gets no close frame: the socket is dropped, as flow-go
        // and Talo drop it.
        writer.abort();
        return;
    }
    // A socket closed for its unfinished frames is no longer read, so the client's close
    // could not be seen; its memory goes as soon as the close is written.
    if !writer_gone && handle.closing().is_some() && !frames_tripped {
        finish_close_handshake(&mut stream).await;
    }
    handle.end();
    if !writer_gone {
        finish_writer(writer).await;
    }
}

/// The RFC 6455 close for a frame the WebSocket layer refused, or `None` when the socket
/// itself failed and nothing more can be sent.
fn protocol_failure(error: axum::Error) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error};
    let inner = error.into_inner();
    match inner.downcast_ref::<Error>()? {
        Error::Utf8(_) => Some((1007, "invalid UTF-8 in a text frame")),
        Error::Capacity(CapacityError::MessageTooLong { .. }) => Some((1009, "message too big")),
        Error::Capacity(_) | Error::Protocol(_) => Some((1002, "protocol error")),
        _ => None,
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn client_close_of(frame: Option<CloseFrame>) -> (u16, String) {
    frame
        .map(|f| (f.code, f.reason.as_str().to_owned()))
        .unwrap_or((1005, String::new()))
}

/// Read (and discard) until the client's close, bounded in time.
async fn finish_close_handshake<T: Transport>(stream: &mut SplitStream<T>) {
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(_) = message {
                return;
            }
        }
    })
    .await;
}

/// Refuse a connection that never became a peer: the dialect's close, counted for admins
/// when it is an error, and a bounded wait for the client's answer.
pub async fn refuse<T: Transport>(
    socket: T,
    shared: &Shared,
    dialect: Dialect,
    code: u16,
    reason: &str,
) {
    let is_error = catalog::close(dialect, code).is_none_or(|e| e.severity() != Severity::Info);
    if is_error {
        shared.hub.record_unattached_error(
            dialect,
            &code.to_string(),
            format!("close {code} {reason}"),
        );
    }
    let (mut sink, mut stream) = socket.split();
    let sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_message(code, reason))).await;
    if matches!(sent, Ok(Ok(()))) {
        finish_close_handshake(&mut stream).await;
    }
}

fn spawn_writer<T: Transport>(
    mut sink: SplitSink<T, Message>,
    mut outbox: tokio::sync::mpsc::UnboundedReceiver<Outbound>,
    peer: Arc<PeerHandle>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        loop {
            let taken = tokio::select! {
                biased;
                () = peer.aborted() => {
                    send_abort_close(&mut sink, &peer).await;
                    return;
                }
                taken = gather(&mut outbox, &mut batch, peer.write_delay(), peer.gather_rounds()) => taken,
            };
            if taken == 0 {
                break;
            }
            peer.writer_progressed();
            let written = tokio::select! {
                biased;
                () = peer.aborted() => {
                    send_abort_close(&mut sink, &peer).await;
                    return;
                }
                written = write_batch(&mut sink, &mut batch, &peer) => written,
            };
            match written {
                Ok(Batch::Continue) => peer.writer_progressed(),
                Ok(Batch::Finished) => break,
                Err(WriteFailure::Socket) => return,
                // The client stopped reading and nothing newer arrived to notice it: the
                // connection task closes it as a slow consumer, and the close still goes out
                // if the client reads again in time.
                Err(WriteFailure::Stalled) => {
                    peer.mark_writer_stalled();
                    let _ = tokio::time::timeout(STALL_CLOSE_WAIT, peer.aborted()).await;
                    send_abort_close(&mut sink, &peer).await;
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
    })
}

/// Take what is queued, up to [`WRITE_BATCH`] frames.
///
/// Without a write delay the writer then lets the runtime run everything else already ready,
/// and its sockets' readiness, up to `rounds` times (`outbox.gather_rounds`): a sender read
/// meanwhile may relay another frame to this peer, which then shares the write instead of
/// waking the writer and costing a `write(2)` of its own. That costs no timer, and in latency
/// only the rounds themselves; a round that brought nothing ends the gathering. With a write
/// delay (`outbox.write_delay_ms`) the writer waits that long for more: frames relayed to
/// this peer by several senders meanwhile then go out in one write and one wake-up instead of
/// one each.
async fn gather(
    outbox: &mut tokio::sync::mpsc::UnboundedReceiver<Outbound>,
    batch: &mut Vec<Outbound>,
    delay: Option<Duration>,
    rounds: u32,
) -> usize {
    let mut taken = outbox.recv_many(batch, WRITE_BATCH).await;
    let ends = |frame: &Outbound| matches!(frame, Outbound::Close(..) | Outbound::End);
    if taken == 0 || taken == WRITE_BATCH || batch.last().is_some_and(ends) {
        return taken;
    }
    let Some(delay) = delay else {
        for _ in 0..rounds {
            // Tokio runs a yielded task only after the tasks already queued and a poll of
            // the I/O driver.
            tokio::task::yield_now().await;
            let before = taken;
            while taken < WRITE_BATCH {
                let Ok(frame) = outbox.try_recv() else {
                    break;
                };
                let ended = ends(&frame);
                batch.push(frame);
                taken += 1;
                if ended {
                    return taken;
                }
            }
            if taken == before || taken == WRITE_BATCH {
                break;
            }
        }
        return taken;
    };
    let until = Instant::now() + delay;
    while taken < WRITE_BATCH {
        match tokio::time::timeout_at(until, outbox.recv()).await {
            Ok(Some(frame)) => {
                let ended = ends(&frame);
                batch.push(frame);
                taken += 1;
                if ended {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    taken
}

enum Batch {
    Continue,
    /// A close went out, or the connection ended: nothing more to write.
    Finished,
}

enum WriteFailure {
    /// One write made no progress for `outbox.stall_ms`: the client stopped reading.
    Stalled,
    /// The socket failed.
    Socket,
}

/// Write one batch. Each write is timed on its own, so a client that reads, however slowly,
/// is never taken for one that stopped: only a single write stuck for `stall_ms` is.
async fn write_batch<T: Transport>(
    sink: &mut SplitSink<T, Message>,
    batch: &mut Vec<Outbound>,
    peer: &PeerHandle,
) -> Result<Batch, WriteFailure> {
    let stall = peer.stall_timeout();
    let mut outcome = Batch::Continue;
    for item in batch.drain(..) {
        match item {
            Outbound::Text(text) => {
                let length = text.len();
                let waited = timed(stall, sink.feed(Message::Text(text))).await?;
                peer.written(length);
                if waited {
                    peer.writer_progressed();
                }
            }
            Outbound::Binary(bytes) => {
                let length = bytes.len();
                let waited = timed(stall, sink.feed(Message::Binary(bytes))).await?;
                peer.written(length);
                if waited {
                    peer.writer_progressed();
                }
            }
            Outbound::Close(code, reason) => {
                timed(stall, sink.feed(close_message(code, &reason))).await?;
                outcome = Batch::Finished;
                break;
            }
            Outbound::End => {
                outcome = Batch::Finished;
                break;
            }
            Outbound::Ping => {
                timed(stall, sink.feed(Message::Ping(Default::default()))).await?;
            }
        }
    }
    timed(stall, sink.flush()).await?;
    Ok(outcome)
}

/// One write, failed as stalled when it makes no progress for `stall`; true when it had to
/// wait. Most writes only fill the WebSocket's buffer and finish at once: those arm no timer,
/// and the writer's progress stamp (a clock read) is left to the end of the batch, a few
/// microseconds later.
async fn timed(
    stall: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Result<bool, WriteFailure> {
    let mut write = pin!(write);
    let (written, waited) = match futures_util::poll!(write.as_mut()) {
        std::task::Poll::Ready(written) => (written, false),
        std::task::Poll::Pending => (
            tokio::time::timeout(stall, write)
                .await
                .map_err(|_| WriteFailure::Stalled)?,
            true,
        ),
    };
    written.map_err(|_| WriteFailure::Socket)?;
    Ok(waited)
}

async fn send_abort_close<T: Transport>(sink: &mut SplitSink<T, Message>, peer: &PeerHandle) {
    let (code, reason) = peer
        .closing()
        .cloned()
        .unwrap_or((1011, "internal error".to_owned()));
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close_message(code, &reason))).await;
}

pub fn close_message(code: u16, reason: &str) -> Message {
    // Close reasons are limited to 123 bytes by RFC 6455; cut on a character boundary.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    }))
}

/// Wait (bounded) for the writer to send what is queued, including a final close.
async fn finish_writer(writer: JoinHandle<()>) {
    let abort = writer.abort_handle();
    if tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn texts(batch: &[Outbound]) -> Vec<String> {
        batch
            .iter()
            .map(|frame| match frame {
                Outbound::Text(text) => text.as_str().to_owned(),
                Outbound::End => "end".to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// With a write delay, frames queued while the writer waits join the same batch, and the
    /// end of the connection stops the wait rather than the timer.
    #[tokio::test]
    async fn a_write_delay_gathers_frames_queued_meanwhile() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(Outbound::Text("1".into())).unwrap();
        let late = tokio::spawn(async move {
            tx.send(Outbound::Text("2".into())).unwrap();
            tx.send(Outbound::End).unwrap();
            tx.send(Outbound::Text("after the end".into())).unwrap();
        });
        let mut batch = Vec::new();
        let gathering = gather(&mut rx, &mut batch, Some(Duration::from_secs(60)), 0);
        let taken = tokio::time::timeout(Duration::from_secs(30), gathering)
            .await
            .unwrap();
        late.await.unwrap();
        assert_eq!(taken, 3);
        assert_eq!(texts(&batch), ["1", "2", "end"]);
    }

    /// A gathering pass takes what a task already ready relays meanwhile; without one the
    /// writer writes what it found.
    #[tokio::test]
    async fn a_gathering_pass_takes_what_ready_tasks_relay_meanwhile() {
        for (rounds, expected) in [(1, vec!["1", "2"]), (0, vec!["1"])] {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tx.send(Outbound::Text("1".into())).unwrap();
            let sender = tokio::spawn(async move {
                tx.send(Outbound::Text("2".into())).unwrap();
                tx
            });
            let mut batch = Vec::new();
            let gathering = gather(&mut rx, &mut batch, None, rounds);
            tokio::time::timeout(Duration::from_secs(30), gathering)
                .await
                .unwrap();
            assert_eq!(texts(&batch), expected, "{rounds} rounds");
            drop(sender.await.unwrap());
        }
    }

    /// Without one, the writer takes only what is already queued.
    #[tokio::test]
    async fn without_a_write_delay_the_writer_takes_what_is_queued() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(Outbound::Text("1".into())).unwrap();
        let mut batch = Vec::new();
        let taken = tokio::time::timeout(
            Duration::from_secs(30),
            gather(&mut rx, &mut batch, None, 0),
        )
        .await
        .unwrap();
        assert_eq!(taken, 1);
        assert_eq!(texts(&batch), ["1"]);
        drop(tx);
    }
}
