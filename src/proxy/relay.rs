//! One proxied connection: a [`Session`] of the server's connection lifecycle whose frames go
//! to the upstream, and the two tasks that own the upstream socket.
//!
//! Toward the client, frames take the peer's outbox like any frame the server sends: the
//! same byte budget, the same slow-consumer close, the tap and the flight recorder. Toward
//! the upstream, a bounded queue: a client that sends faster than the upstream reads is
//! closed rather than buffered without end. The upstream's frames are read only as fast as
//! the connection task takes them, so a slow client slows its upstream reads, not the
//! proxy's memory.
//!
//! Path faults armed on the peer act on data frames here, one direction each: a frame
//! toward the client is dropped, doubled, damaged, held back or replaced by a close before
//! it reaches the peer's outbox; one toward the upstream before it reaches the writer's
//! queue. A delay holds the frames behind it too, as a stalled connection does.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::signal_fish::{Asked, Observer, Rooms};
use crate::catalog::Dialect;
use crate::protocol::path_fault::{corrupt_binary, corrupt_text, PathFaultKind, Toward};
use crate::server::connection::{Flow, Session, CLOSE_HANDSHAKE_TIMEOUT};
use crate::server::peer::{Notice, PeerHandle, Priority};
use crate::server::signal_fish::refusal::{static_code, Carrier, Refusal};
use crate::server::Shared;
use crate::wsclient::Socket;

/// Frames waiting for the upstream's socket before the client is closed for sending faster
/// than the upstream reads.
const UPSTREAM_QUEUE: usize = 1024;

/// Upstream frames read ahead of the connection task.
const READ_AHEAD: usize = 64;

/// How long one write to the upstream may take.
const UPSTREAM_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame for the upstream's writer, and when a delay fault lets it go.
struct Outgoing {
    message: Message,
    not_before: Option<Instant>,
}

/// What the upstream's reader hands the connection task.
enum FromUpstream {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// The upstream closed, with its code and reason when it gave them.
    Close(Option<(u16, String)>),
    /// The upstream's socket ended without a close frame.
    Ended(String),
}

pub struct Relay {
    handle: Arc<PeerHandle>,
    shared: Arc<Shared>,
    rooms: Rooms,
    to_upstream: mpsc::Sender<Outgoing>,
    /// Each frame with the moment it came off the upstream's socket, which a path delay
    /// counts from.
    from_upstream: mpsc::Receiver<(Instant, FromUpstream)>,
    /// An upstream frame a delay fault holds back until then; nothing behind it is read.
    delayed: Option<(Instant, FromUpstream)>,
    /// A close went to the upstream, or came from it: nothing more is sent there.
    upstream_closed: bool,
    /// Dialects whose frames the proxy reads; the others are relayed as they are.
    signal_fish: Option<Observer>,
}

impl Relay {
    pub fn start(
        handle: Arc<PeerHandle>,
        shared: Arc<Shared>,
        upstream: Socket,
        dialect: Dialect,
        rooms: Rooms,
    ) -> Relay {
        let (sink, stream) = upstream.split();
        let (to_upstream, outgoing) = mpsc::channel(UPSTREAM_QUEUE);
        let (incoming, from_upstream) = mpsc::channel(READ_AHEAD);
        tokio::spawn(write_upstream(sink, outgoing));
        tokio::spawn(read_upstream(stream, incoming));
        Relay {
            handle,
            shared,
            rooms,
            to_upstream,
            from_upstream,
            delayed: None,
            upstream_closed: false,
            signal_fish: (dialect == Dialect::SignalFish).then(Observer::default),
        }
    }

    /// A client's data frame toward the upstream, through the path fault armed that way.
    fn relay_upstream(&mut self, message: Message) -> Flow {
        let Some(fault) = self
            .shared
            .hub
            .take_path_fault(&self.handle, Toward::Upstream)
        else {
            return self.send_upstream(message, None);
        };
        match fault.kind {
            PathFaultKind::Drop => Flow::Continue,
            PathFaultKind::Duplicate => match self.send_upstream(message.clone(), None) {
                Flow::Continue => self.send_upstream(message, None),
                closed => closed,
            },
            PathFaultKind::Corrupt => {
                let damaged = match message {
                    Message::Text(text) => Message::text(corrupt_text(text.as_str())),
                    Message::Binary(bytes) => Message::binary(corrupt_binary(&bytes)),
                    other => other,
                };
                self.send_upstream(damaged, None)
            }
            PathFaultKind::Delay(delay) => {
                self.send_upstream(message, Some(Instant::now() + delay))
            }
            // The upstream sees the client close with the code; the client gets the same
            // code back, as the upstream's echo of it would be.
            PathFaultKind::Close(code) => {
                self.close_upstream(code, "");
                Flow::close(code, "")
            }
        }
    }

    fn send_upstream(&mut self, message: Message, not_before: Option<Instant>) -> Flow {
        if self.upstream_closed {
            return Flow::Continue;
        }
        match self.to_upstream.try_send(Outgoing {
            message,
            not_before,
        }) {
            Ok(()) => Flow::Continue,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Flow::close(1013, "the upstream is not reading: try again later")
            }
            // The writer stops early only when a write to the upstream failed or stalled.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.upstream_closed = true;
                Flow::close(1014, "bad gateway: the upstream stopped taking frames")
            }
        }
    }

    /// Answer a Signal Fish request with the fault armed for this peer, if one is: true when
    /// the request was answered so.
    /// A correlated operation (room_operation_ids) is answered inside its result, as
    /// relaydeck's own server answers it.
    fn answer_fault(&self, asked: &Asked<'_>) -> bool {
        let Some(code) = self.shared.hub.take_fault(&self.handle) else {
            return false;
        };
        let carrier = if asked.request() == Some("JoinRoom") {
            Carrier::RoomJoinFailed
        } else {
            Carrier::Error
        };
        let operation = asked.operation.as_ref().map(|(id, _)| id.as_str());
        self.refuse(carrier, static_code(&code), None, operation);
        true
    }

    /// Send the client a Signal Fish refusal, counted and shown like the upstream's own.
    fn refuse(
        &self,
        carrier: Carrier,
        code: &'static str,
        text: Option<String>,
        operation: Option<&str>,
    ) {
        let refusal = Refusal {
            carrier,
            code,
            text,
        };
        let frame = match operation {
            Some(id) => refusal.correlated(id),
            None => refusal.frame(),
        };
        self.shared
            .hub
            .send_error(&self.handle, refusal.code, None, frame.text());
    }

    fn close_upstream(&mut self, code: u16, reason: &str) {
        if self.upstream_closed {
            return;
        }
        let frame = (code != 1005).then(|| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        });
        // A full queue drops the close: the writer then ends with its queue and closes.
        let _ = self.to_upstream.try_send(Outgoing {
            message: Message::Close(frame),
            not_before: None,
        });
        self.upstream_closed = true;
    }

    /// The ban in force on the identity (in its app) the peer's frames named, if any.
    fn ban_on_identity(&self) -> Option<crate::protocol::admin::BanInfo> {
        if !self.shared.hub.bans().in_force() {
            return None;
        }
        let info = self.shared.hub.peer(&self.handle.id)?;
        let identity = info.identity?;
        self.shared
            .hub
            .bans()
            .identity(info.app.as_deref(), &identity)
    }

    fn take_upstream(&mut self, received: Option<(Instant, FromUpstream)>) -> Flow {
        let hub = &self.shared.hub;
        let (arrived, received) = match received {
            Some((arrived, frame)) => (arrived, Some(frame)),
            None => (Instant::now(), None),
        };
        match received {
            Some(FromUpstream::Text(text)) => {
                let mut named = false;
                if let Some(observer) = &mut self.signal_fish {
                    named = observer.upstream_frame(hub, &self.rooms, &self.handle, text.as_str());
                } else if let Some(code) = error_code(self.handle.dialect, text.as_str()) {
                    hub.record_relayed_error(&self.handle, &code, text.as_str().to_owned());
                } else if let Some((app, identity)) =
                    super::identity::from_upstream(self.handle.dialect, text.as_str())
                {
                    hub.update_peer(&self.handle.id, |info| {
                        info.identity = Some(identity);
                        if app.is_some() {
                            info.app = app;
                        }
                    });
                    named = true;
                }
                // An identity banned from the console learns nothing more through the proxy:
                // the frame that named it is not passed on, and the peer is kicked as a live
                // banned peer is (4020 to the client, a normal close to the upstream).
                if let Some(ban) = named.then(|| self.ban_on_identity()).flatten() {
                    let _ = hub.kick(&self.handle.id, Some(format!("Banned: {}", ban.reason)));
                    return Flow::Continue;
                }
                self.relay_to_client(FromUpstream::Text(text), arrived)
            }
            Some(frame @ FromUpstream::Binary(_)) => self.relay_to_client(frame, arrived),
            Some(FromUpstream::Close(close)) => {
                self.upstream_closed = true;
                match close {
                    Some((code, reason)) => Flow::Close(code, reason),
                    None => Flow::close(1000, ""),
                }
            }
            Some(FromUpstream::Ended(why)) => {
                self.upstream_closed = true;
                tracing::debug!(peer = %self.handle.id, %why, "the upstream ended without a close");
                // RFC 6455's 1014: the gateway's upstream failed.
                Flow::close(1014, "bad gateway: the upstream ended without a close")
            }
            None => {
                self.upstream_closed = true;
                Flow::close(1014, "bad gateway: the upstream ended without a close")
            }
        }
    }

    /// An upstream data frame toward the client, through the path fault armed that way.
    /// The views have read it already: the upstream said it, whatever the client gets.
    fn relay_to_client(&mut self, frame: FromUpstream, arrived: Instant) -> Flow {
        let Some(fault) = self
            .shared
            .hub
            .take_path_fault(&self.handle, Toward::Client)
        else {
            self.deliver(&frame);
            return Flow::Continue;
        };
        match fault.kind {
            PathFaultKind::Drop => {}
            PathFaultKind::Duplicate => {
                self.deliver(&frame);
                self.deliver(&frame);
            }
            PathFaultKind::Corrupt => self.deliver(&match frame {
                FromUpstream::Text(text) => FromUpstream::Text(corrupt_text(text.as_str()).into()),
                FromUpstream::Binary(bytes) => FromUpstream::Binary(corrupt_binary(&bytes).into()),
                other => other,
            }),
            // Held from when it came, not from when the frames delayed before it went: each
            // frame of a counted delay is late by the delay, not by the delays added up.
            PathFaultKind::Delay(delay) => self.delayed = Some((arrived + delay, frame)),
            // The client sees the upstream close with the code; the upstream, a client
            // leaving.
            PathFaultKind::Close(code) => {
                self.close_upstream(1000, "");
                return Flow::close(code, "");
            }
        }
        Flow::Continue
    }

    fn deliver(&self, frame: &FromUpstream) {
        let hub = &self.shared.hub;
        match frame {
            FromUpstream::Text(text) => {
                hub.deliver(&self.handle, text, Priority::Reply);
            }
            FromUpstream::Binary(bytes) => {
                let shown = || self.show_binary(bytes).into();
                hub.deliver_binary(&self.handle, bytes, Priority::Relay, shown);
            }
            FromUpstream::Close(_) | FromUpstream::Ended(_) => {}
        }
    }
}

impl Session for Relay {
    fn on_text(&mut self, text: &str) -> Flow {
        if let Some(observer) = &mut self.signal_fish {
            let asked = observer.client_frame(text);
            // An armed fault answers the request here, as relaydeck's own server would, and
            // the upstream never sees it; pings and authentication are never faulted there.
            if !matches!(asked.kind.as_deref(), Some("Ping" | "Authenticate"))
                && self.answer_fault(&asked)
            {
                return Flow::Continue;
            }
        }
        self.relay_upstream(Message::text(text))
    }

    /// Signal Fish's binary frames are MessagePack game data, shown decoded; other
    /// dialects' are shown by their size.
    fn show_binary(&self, bytes: &[u8]) -> String {
        if self.signal_fish.is_some() {
            crate::server::signal_fish::msgpack::describe(bytes)
        } else {
            format!("<{} binary bytes>", bytes.len())
        }
    }

    fn on_binary(&mut self, bytes: &[u8]) -> Flow {
        if self.signal_fish.is_some() && self.answer_fault(&Asked::default()) {
            return Flow::Continue;
        }
        self.relay_upstream(Message::binary(Bytes::copy_from_slice(bytes)))
    }

    fn on_control(&mut self, notice: Notice) -> Flow {
        match notice {
            // The client is told as relaydeck's own server tells it; the upstream sees a
            // normal close, as if the client had left.
            Notice::Kick { reason } => {
                if self.signal_fish.is_some() {
                    self.refuse(Carrier::Error, "KICKED", reason, None);
                }
                self.close_upstream(1000, "");
                Flow::close(4020, "admin_disconnect")
            }
            Notice::AppStatus(_) => Flow::Continue,
            Notice::Shutdown => {
                self.close_upstream(1001, "going away");
                Flow::close(1001, "going away")
            }
        }
    }

    /// The upstream keeps its own idle timers; the proxy would only guess them.
    fn idle_close(&self) -> Option<(u16, &'static str)> {
        None
    }

    async fn background(&mut self) -> Flow {
        if let Some((until, _)) = &self.delayed {
            // Cancel-safe: the frame stays in `delayed` until its time has come.
            tokio::time::sleep_until(*until).await;
            if let Some((_, frame)) = self.delayed.take() {
                self.deliver(&frame);
            }
            return Flow::Continue;
        }
        // Once a close went either way, what the upstream still sends is not the client's.
        if self.upstream_closed {
            return std::future::pending().await;
        }
        let received = self.from_upstream.recv().await;
        self.take_upstream(received)
    }

    fn on_client_close(&mut self, code: u16, reason: &str) {
        self.close_upstream(code, reason);
    }

    fn on_end(&mut self) {
        self.close_upstream(1000, "");
        if let Some(observer) = &mut self.signal_fish {
            observer.left(&self.shared.hub, &self.rooms, &self.handle);
        }
    }
}

/// The error code of an upstream frame of a dialect whose frames the proxy does not read
/// otherwise (pub/sub, Talo, Flow), as the catalog's decoder reads a pasted frame. Only
/// frames that mention an error are decoded: the others are the traffic itself.
fn error_code(dialect: Dialect, frame: &str) -> Option<String> {
    if dialect == Dialect::Websocket || !frame.contains("rror") {
        return None;
    }
    let decoding = crate::catalog::decode::decode(frame, Some(dialect)).ok()?;
    if decoding.not_an_error.is_some() {
        return None;
    }
    decoding.code
}

/// Write the client's frames to the upstream until a close went out or the client is gone.
async fn write_upstream(
    mut sink: SplitSink<Socket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(Outgoing {
        message,
        not_before,
    }) = outgoing.recv().await
    {
        // A delay fault holds this frame and, by the queue's order, every one behind it.
        if let Some(not_before) = not_before {
            tokio::time::sleep_until(not_before).await;
        }
        let closing = matches!(message, Message::Close(_));
        let sent = tokio::time::timeout(UPSTREAM_WRITE_TIMEOUT, sink.send(message)).await;
        if closing || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
    // The connection ended without a close for the upstream (the queue was full).
    let _ = tokio::time::timeout(UPSTREAM_WRITE_TIMEOUT, sink.send(Message::Close(None))).await;
}

/// Read the upstream's frames for the connection task; once it is gone, read on (bounded)
/// so that the close handshake with the upstream completes.
async fn read_upstream(
    mut stream: SplitStream<Socket>,
    incoming: mpsc::Sender<(Instant, FromUpstream)>,
) {
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            () = incoming.closed() => break,
        };
        let item = match next {
            Some(Ok(Message::Text(text))) => FromUpstream::Text(text.as_str().to_owned().into()),
            Some(Ok(Message::Binary(bytes))) => FromUpstream::Binary(bytes),
            // Answered by the WebSocket library on this hop; the client's own pings are
            // answered by the proxy.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                let close = FromUpstream::Close(crate::wsclient::close_parts(frame));
                let _ = incoming.send((Instant::now(), close)).await;
                break;
            }
            Some(Err(error)) => FromUpstream::Ended(error.to_string()),
            None => FromUpstream::Ended("the socket closed".to_owned()),
        };
        let ended = matches!(item, FromUpstream::Ended(_));
        if incoming.send((Instant::now(), item)).await.is_err() || ended {
            break;
        }
    }
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}
